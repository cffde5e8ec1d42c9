// Subscriptions over PostgreSQL: catch-up then live without a gap or a duplicate, a row that
// commits late delivered in its place, resuming from a checkpoint, and appends waking
// subscribers through NOTIFY rather than their timer.
#include "doppel/pgstore/pg_subscription.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "doppel/pgstore/pg_event_store.h"
#include "pg_connection.h"
#include "pg_server.h"
#include "test_support.h"

namespace doppel::pgstore {
namespace {

using eventstore::AppendRequest;
using eventstore::ExpectedVersion;
using eventstore::GlobalPosition;
using eventstore::StreamVersion;
using testing::JointStateEvent;
using testing::SharedPgServer;

std::string NewStore(std::unique_ptr<PgEventStore>* store) {
  static std::atomic<int> n{0};
  auto url = SharedPgServer().CreateDatabase(fmt::format("sub_{}", n++));
  EXPECT_TRUE(url.ok());
  EXPECT_TRUE(PgEventStore::InitSchema(*url).ok());
  auto opened = PgEventStore::Open(*url);
  EXPECT_TRUE(opened.ok()) << opened.status().ToString();
  *store = std::move(opened).value();
  return *url;
}

AppendRequest Request(const std::string& stream, int events) {
  AppendRequest r{stream, ExpectedVersion::Any(), {}};
  for (int i = 0; i < events; ++i) r.events.push_back(JointStateEvent(i));
  return r;
}

std::unique_ptr<PgSubscription> Subscribe(
    const std::string& url, std::optional<GlobalPosition> from, std::string prefix = "",
    std::chrono::milliseconds poll = std::chrono::milliseconds(200)) {
  PgSubscriptionOptions options;
  options.url = url;
  options.from = from;
  options.stream_prefix = std::move(prefix);
  options.poll = poll;
  options.read_page = 16;
  auto sub = PgSubscription::Start(options);
  EXPECT_TRUE(sub.ok()) << sub.status().ToString();
  return sub.ok() ? std::move(sub).value() : nullptr;
}

TEST(PgSubscriptionTest, CatchesUpThenGoesLiveWithoutAGapOrADuplicate) {
  std::unique_ptr<PgEventStore> store;
  const std::string url = NewStore(&store);
  std::set<EventId> expected;
  for (int i = 0; i < 20; ++i) {
    auto r = store->Append(Request(fmt::format("robot-{}", i % 4), 2));
    ASSERT_TRUE(r.ok());
    expected.insert(r->ids.begin(), r->ids.end());
    ASSERT_TRUE(store->Append(Request("arm-1", 1)).ok());  // filtered out
  }
  auto sub = Subscribe(url, 0, "robot-");
  ASSERT_NE(sub, nullptr);
  std::thread writer([&] {
    for (int i = 0; i < 20; ++i) {
      auto r = store->Append(Request(fmt::format("robot-{}", i % 4), 2));
      ASSERT_TRUE(r.ok());
      ASSERT_TRUE(store->Append(Request("arm-1", 1)).ok());
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  std::vector<eventstore::RecordedEvent> got;
  while (got.size() < 80) {
    auto next = sub->Next(std::chrono::seconds(10));
    ASSERT_TRUE(next.ok()) << next.status().ToString();
    ASSERT_TRUE(next->has_value()) << "no event within 10 s after " << got.size();
    got.push_back(std::move(**next));
  }
  writer.join();
  std::set<EventId> seen;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_TRUE(got[i].stream().starts_with("robot-"));
    if (i > 0) {
      EXPECT_LT(got[i - 1].position(), got[i].position());
    }
    EXPECT_TRUE(seen.insert(got[i].id()).second) << "delivered twice: " << got[i].position();
  }
  for (const EventId& id : expected) EXPECT_EQ(seen.count(id), 1u);
  auto more = sub->Next(std::chrono::milliseconds(300));
  ASSERT_TRUE(more.ok());
  EXPECT_FALSE(more->has_value());
}

TEST(PgSubscriptionTest, ARowCommittedLateIsDeliveredInItsPlace) {
  std::unique_ptr<PgEventStore> store;
  const std::string url = NewStore(&store);
  ASSERT_TRUE(store->Append(Request("a", 2)).ok());  // 1, 2
  auto sub = Subscribe(url, 0);
  ASSERT_NE(sub, nullptr);
  std::vector<GlobalPosition> got;
  for (int i = 0; i < 2; ++i) {
    auto next = sub->Next(std::chrono::seconds(10));
    ASSERT_TRUE(next.ok() && next->has_value());
    got.push_back((*next)->position());
  }
  auto late = PgConnection::Connect(url);
  ASSERT_TRUE(late.ok());
  const auto event = JointStateEvent(1);
  std::string hex;
  for (unsigned char c : event.payload) hex += fmt::format("{:02x}", c);
  ASSERT_TRUE((*late)
                  ->Exec(fmt::format("BEGIN; INSERT INTO events (stream, version, event_id, "
                                     "type, payload, recorded_ns) VALUES ('late', 0, "
                                     "gen_random_uuid(), '{}', decode('{}', 'hex'), 1)",
                                     event.type, hex),
                         "late writer")
                  .ok());                            // position 3, not committed
  ASSERT_TRUE(store->Append(Request("b", 2)).ok());  // 4, 5, committed
  auto held = sub->Next(std::chrono::milliseconds(500));
  ASSERT_TRUE(held.ok());
  EXPECT_FALSE(held->has_value()) << "delivered " << (*held)->position() << " before 3 committed";
  ASSERT_TRUE((*late)->Exec("COMMIT", "late writer").ok());
  for (int i = 0; i < 3; ++i) {
    auto next = sub->Next(std::chrono::seconds(10));
    ASSERT_TRUE(next.ok() && next->has_value());
    got.push_back((*next)->position());
  }
  EXPECT_EQ(got, (std::vector<GlobalPosition>{1, 2, 3, 4, 5}));
  EXPECT_EQ(sub->checkpoint(), 6u);
}

TEST(PgSubscriptionTest, ResumesFromItsCheckpointAndAppendsWakeItWithoutItsTimer) {
  std::unique_ptr<PgEventStore> store;
  const std::string url = NewStore(&store);
  ASSERT_TRUE(store->Append(Request("r", 5)).ok());
  GlobalPosition checkpoint = 0;
  {
    auto sub = Subscribe(url, 0);
    ASSERT_NE(sub, nullptr);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(sub->Next(std::chrono::seconds(10))->has_value());
    checkpoint = sub->checkpoint();
  }
  // A timer of a minute: only a notification can wake it within the 20 s allowed.
  auto sub = Subscribe(url, checkpoint, "", std::chrono::minutes(1));
  ASSERT_NE(sub, nullptr);
  std::vector<StreamVersion> versions;
  for (int i = 0; i < 2; ++i) {
    auto next = sub->Next(std::chrono::seconds(10));
    ASSERT_TRUE(next.ok() && next->has_value());
    versions.push_back((*next)->version());
  }
  EXPECT_EQ(versions, (std::vector<StreamVersion>{3, 4}));
  std::thread later([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ASSERT_TRUE(store->Append(Request("r", 1)).ok());
  });
  auto woken = sub->Next(std::chrono::seconds(20));
  later.join();
  ASSERT_TRUE(woken.ok());
  ASSERT_TRUE(woken->has_value()) << "the append did not wake the subscriber";
  EXPECT_EQ((*woken)->version(), 5u);
}

// "From now" on a busy store: an append in flight at the start holds a position below the
// visible ones; the subscription starts after all of them once they are final, and delivers
// what comes next, not the history.
TEST(PgSubscriptionTest, FromNowWithAnAppendInFlightStartsAfterItNotAtTheBeginning) {
  std::unique_ptr<PgEventStore> store;
  const std::string url = NewStore(&store);
  ASSERT_TRUE(store->Append(Request("old", 3)).ok());
  auto held = PgConnection::Connect(url);
  ASSERT_TRUE(held.ok());
  const auto event = JointStateEvent(1);
  std::string hex;
  for (unsigned char c : event.payload) hex += fmt::format("{:02x}", c);
  ASSERT_TRUE((*held)
                  ->Exec(fmt::format("BEGIN; INSERT INTO events (stream, version, event_id, "
                                     "type, payload, recorded_ns) VALUES ('held', 0, "
                                     "gen_random_uuid(), '{}', decode('{}', 'hex'), 1)",
                                     event.type, hex),
                         "held writer")
                  .ok());
  ASSERT_TRUE(store->Append(Request("old", 1)).ok());  // visible, above the held position
  std::thread commit_later([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ASSERT_TRUE((*held)->Exec("COMMIT", "held writer").ok());
  });
  auto sub = Subscribe(url, std::nullopt);
  commit_later.join();
  ASSERT_NE(sub, nullptr);
  auto fresh = store->Append(Request("new", 1));
  ASSERT_TRUE(fresh.ok());
  auto next = sub->Next(std::chrono::seconds(10));
  ASSERT_TRUE(next.ok() && next->has_value());
  EXPECT_EQ((*next)->id(), fresh->ids[0]) << "delivered position " << (*next)->position();
}

}  // namespace
}  // namespace doppel::pgstore
