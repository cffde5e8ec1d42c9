// One contract for every store: the same typed tests run against the embedded log, the store
// server's client (an in-process server over loopback ZeroMQ) and PgEventStore (a PostgreSQL
// server of the test's own). A difference a store is allowed is stated in its traits, never
// skipped silently:
//   - dense_positions: PostgreSQL positions start at 1 and have gaps (a rolled-back
//     transaction burns its sequence values); the others are dense from 0.
//   - a feed (catch-up then live, event_feed.h): an embedded log has none of its own (in-process
//     consumers take its commit listener; other processes subscribe through a store server).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "contract_stores.h"
#include "test_support.h"

namespace doppel::eventstore {
namespace {

using testing::JointStateEvent;

template <typename T>
class StoreContractTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status opened = holder_.Open(clock_);
    ASSERT_TRUE(opened.ok()) << T::kName << ": " << opened.ToString();
  }
  EventStore& store() { return holder_.store(); }

  AppendRequest Request(const std::string& stream, ExpectedVersion expected, int events,
                        double first_value = 0) {
    AppendRequest r{stream, expected, {}};
    for (int i = 0; i < events; ++i) r.events.push_back(JointStateEvent(first_value + i));
    return r;
  }
  // Every event of $all, page by page.
  std::vector<RecordedEvent> ReadEverything(size_t page_size = 7) {
    return testing::ReadEverything(store(), page_size);
  }

  TestClock clock_;
  T holder_;
};

TYPED_TEST_SUITE(StoreContractTest, Stores, StoreNames);

TYPED_TEST(StoreContractTest, AppendGivesDenseVersionsAndGrowingPositions) {
  auto first = this->store().Append(this->Request("robot-1", ExpectedVersion::NoStream(), 3));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->first_version, 0u);
  EXPECT_EQ(first->last_version, 2u);
  EXPECT_FALSE(first->duplicate);
  EXPECT_EQ(first->ids.size(), 3u);
  EXPECT_GE(first->first_position, TypeParam::kFirstPosition);
  EXPECT_GT(first->last_position, first->first_position);
  if (TypeParam::kDensePositions) {
    EXPECT_EQ(first->first_position, 0u);
    EXPECT_EQ(first->last_position, 2u);
  }
  auto second = this->store().Append(this->Request("robot-2", ExpectedVersion::Any(), 2));
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->first_version, 0u);
  EXPECT_GT(second->first_position, first->last_position);
  EXPECT_EQ(second->recorded_ns, this->clock_.now.load());

  auto page = this->store().ReadStream("robot-1", 0, Direction::kForward, 10);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->events.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(page->events[i].version(), i);
    EXPECT_EQ(page->events[i].id(), first->ids[i]);
    EXPECT_EQ(page->events[i].stream(), "robot-1");
    EXPECT_EQ(page->events[i].recorded_ns(), this->clock_.now.load());
  }
  EXPECT_EQ(page->events[0].position(), first->first_position);
  EXPECT_EQ(page->events[2].position(), first->last_position);
}

TYPED_TEST(StoreContractTest, EventsKeepWhatTheWriterGave) {
  AppendRequest request{"robot-1", ExpectedVersion::Any(), {}};
  NewEvent e = JointStateEvent(1.5);
  e.occurred_ns = 1'700'000'000'123'456'789;
  e.payload_schema_version = 3;
  e.causation_id = EventId(1, 2);
  e.correlation_id = EventId(3, 4);
  request.events.push_back(e);
  request.events.push_back(JointStateEvent(2.5));  // nil causation and correlation
  auto appended = this->store().Append(request);
  ASSERT_TRUE(appended.ok()) << appended.status().ToString();
  auto page = this->store().ReadStream("robot-1", 0, Direction::kForward, 10);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->events.size(), 2u);
  const RecordedEvent& got = page->events[0];
  EXPECT_EQ(got.id(), e.id);
  EXPECT_EQ(got.type(), e.type);
  EXPECT_EQ(got.payload(), e.payload);
  EXPECT_EQ(got.occurred_ns(), e.occurred_ns);
  EXPECT_EQ(got.envelope().payload_schema_version(), 3);
  EXPECT_EQ(schemas::FromFb(got.envelope().causation_id()), EventId(1, 2));
  EXPECT_EQ(schemas::FromFb(got.envelope().correlation_id()), EventId(3, 4));
  EXPECT_TRUE(schemas::FromFb(page->events[1].envelope().causation_id()).is_nil());
  EXPECT_TRUE(schemas::FromFb(page->events[1].envelope().correlation_id()).is_nil());
}

TYPED_TEST(StoreContractTest, ExpectedVersionsHoldOrRefuse) {
  auto& s = this->store();
  EXPECT_EQ(s.Append(this->Request("r", ExpectedVersion::StreamExists(), 1)).status().code(),
            Status::Code::kWrongExpectedVersion);
  EXPECT_EQ(s.Append(this->Request("r", ExpectedVersion::Exact(0), 1)).status().code(),
            Status::Code::kWrongExpectedVersion);
  ASSERT_TRUE(s.Append(this->Request("r", ExpectedVersion::NoStream(), 2)).ok());
  EXPECT_EQ(s.Append(this->Request("r", ExpectedVersion::NoStream(), 1)).status().code(),
            Status::Code::kWrongExpectedVersion);
  EXPECT_EQ(s.Append(this->Request("r", ExpectedVersion::Exact(0), 1)).status().code(),
            Status::Code::kWrongExpectedVersion);
  auto exact = s.Append(this->Request("r", ExpectedVersion::Exact(1), 1));
  ASSERT_TRUE(exact.ok()) << exact.status().ToString();
  EXPECT_EQ(exact->first_version, 2u);
  auto exists = s.Append(this->Request("r", ExpectedVersion::StreamExists(), 1));
  ASSERT_TRUE(exists.ok());
  EXPECT_EQ(exists->first_version, 3u);
  auto any = s.Append(this->Request("r", ExpectedVersion::Any(), 1));
  ASSERT_TRUE(any.ok());
  EXPECT_EQ(any->first_version, 4u);
  auto head = s.StreamHead("r");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(*head, 4u);
  EXPECT_EQ(s.StreamHead("nobody").status().code(), Status::Code::kNotFound);
}

TYPED_TEST(StoreContractTest, ResentBatchGetsItsOriginalPlacesAndWritesNothing) {
  auto& s = this->store();
  AppendRequest request = this->Request("r", ExpectedVersion::NoStream(), 3);
  auto first = s.Append(request);
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(s.Append(this->Request("other", ExpectedVersion::Any(), 2)).ok());
  auto again = s.Append(request);  // expected "none" no longer holds, but it is a resend
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->duplicate);
  EXPECT_EQ(again->first_version, first->first_version);
  EXPECT_EQ(again->last_version, first->last_version);
  EXPECT_EQ(again->first_position, first->first_position);
  EXPECT_EQ(again->last_position, first->last_position);
  EXPECT_EQ(again->ids, first->ids);
  EXPECT_EQ(this->ReadEverything().size(), 5u);
}

TYPED_TEST(StoreContractTest, ReusedIdsAreConflicts) {
  auto& s = this->store();
  AppendRequest request = this->Request("r", ExpectedVersion::Any(), 2);
  ASSERT_TRUE(s.Append(request).ok());
  // The same id for a different event.
  AppendRequest different = this->Request("r", ExpectedVersion::Any(), 1, 99.0);
  different.events[0].id = request.events[0].id;
  EXPECT_EQ(s.Append(different).status().code(), Status::Code::kIdempotencyConflict);
  // The same event under another stream.
  AppendRequest elsewhere = request;
  elsewhere.stream = "r2";
  EXPECT_EQ(s.Append(elsewhere).status().code(), Status::Code::kIdempotencyConflict);
  // Part of the original batch with a new event.
  AppendRequest partial = this->Request("r", ExpectedVersion::Any(), 2, 50.0);
  partial.events[0] = request.events[1];
  EXPECT_EQ(s.Append(partial).status().code(), Status::Code::kIdempotencyConflict);
  EXPECT_EQ(this->ReadEverything().size(), 2u);
}

TYPED_TEST(StoreContractTest, BadBatchesWriteNothing) {
  auto& s = this->store();
  AppendRequest bad = this->Request("r", ExpectedVersion::Any(), 3);
  bad.events[1].payload = "not a flatbuffer";
  EXPECT_EQ(s.Append(bad).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(s.Append(this->Request("$all", ExpectedVersion::Any(), 1)).status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(s.Append(AppendRequest{"r", ExpectedVersion::Any(), {}}).status().code(),
            Status::Code::kInvalidArgument);
  AppendRequest twice = this->Request("r", ExpectedVersion::Any(), 2);
  twice.events[1].id = twice.events[0].id;
  EXPECT_EQ(s.Append(twice).status().code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(this->ReadEverything().empty());
  EXPECT_EQ(s.StreamHead("r").status().code(), Status::Code::kNotFound);
}

TYPED_TEST(StoreContractTest, StreamsReadForwardAndBackwardInPages) {
  auto& s = this->store();
  ASSERT_TRUE(s.Append(this->Request("r", ExpectedVersion::Any(), 10)).ok());
  ASSERT_TRUE(s.Append(this->Request("r-longer", ExpectedVersion::Any(), 3)).ok());
  std::vector<StreamVersion> seen;
  StreamVersion from = 0;
  for (;;) {
    auto page = s.ReadStream("r", from, Direction::kForward, 4);
    ASSERT_TRUE(page.ok());
    for (const auto& e : page->events) seen.push_back(e.version());
    from = page->next;
    if (page->end) break;
  }
  EXPECT_EQ(seen, (std::vector<StreamVersion>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(from, 10u);
  seen.clear();
  from = kStreamEnd;
  for (;;) {
    auto page = s.ReadStream("r", from, Direction::kBackward, 3);
    ASSERT_TRUE(page.ok());
    for (const auto& e : page->events) seen.push_back(e.version());
    from = page->next;
    if (page->end) break;
  }
  EXPECT_EQ(seen, (std::vector<StreamVersion>{9, 8, 7, 6, 5, 4, 3, 2, 1, 0}));
  auto empty = s.ReadStream("nobody", 0, Direction::kForward, 10);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->events.empty());
  EXPECT_TRUE(empty->end);
}

TYPED_TEST(StoreContractTest, AllReadsEveryEventOnceInPositionOrderAndStopsAtATime) {
  auto& s = this->store();
  std::vector<EventId> appended;
  std::vector<TimeNs> times;
  for (int i = 0; i < 12; ++i) {
    auto r = s.Append(this->Request(fmt::format("robot-{}", i % 3), ExpectedVersion::Any(), 2));
    ASSERT_TRUE(r.ok());
    appended.insert(appended.end(), r->ids.begin(), r->ids.end());
    times.push_back(this->clock_.now.load());
    this->clock_.now += 1'000'000;
  }
  const auto all = this->ReadEverything(5);
  ASSERT_EQ(all.size(), appended.size());
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].id(), appended[i]);
    if (i > 0) {
      EXPECT_LT(all[i - 1].position(), all[i].position());
    }
    if (TypeParam::kDensePositions) {
      EXPECT_EQ(all[i].position(), i);
    }
  }
  // Up to the sixth append's time: its two events and everything before.
  auto until = s.ReadAll(0, 1000, times[5]);
  ASSERT_TRUE(until.ok());
  ASSERT_EQ(until->events.size(), 12u);
  EXPECT_EQ(until->next, all[12].position());
  // The position at a time is the first event recorded then or later.
  auto at = s.PositionAtTime(times[3]);
  ASSERT_TRUE(at.ok());
  EXPECT_EQ(*at, all[6].position());
  auto after_all = s.PositionAtTime(times.back() + 1);
  ASSERT_TRUE(after_all.ok());
  EXPECT_GT(*after_all, all.back().position());
}

TYPED_TEST(StoreContractTest, ListStreamsPagesThroughAPrefixInByteOrder) {
  auto& s = this->store();
  for (const char* name : {"robot-b", "robot-a", "robot-c", "rob", "robotz", "arm-1", "robot-a2"}) {
    ASSERT_TRUE(s.Append(this->Request(name, ExpectedVersion::Any(), 2)).ok());
  }
  std::vector<std::string> seen;
  std::string after;
  for (;;) {
    auto list = s.ListStreams("robot-", after, 2);
    ASSERT_TRUE(list.ok()) << list.status().ToString();
    for (const auto& name : list->streams) seen.push_back(name);
    if (list->end) break;
    ASSERT_FALSE(list->streams.empty());
    after = list->streams.back();
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"robot-a", "robot-a2", "robot-b", "robot-c"}));
  auto everything = s.ListStreams("", "", 100);
  ASSERT_TRUE(everything.ok());
  EXPECT_EQ(everything->streams, (std::vector<std::string>{"arm-1", "rob", "robot-a", "robot-a2",
                                                           "robot-b", "robot-c", "robotz"}));
  EXPECT_TRUE(everything->end);
}

TYPED_TEST(StoreContractTest, SnapshotsKeepTheLatestAndAHistoryByTime) {
  auto& s = this->store();
  EXPECT_EQ(s.LoadSnapshot("r").status().code(), Status::Code::kNotFound);
  ASSERT_TRUE(s.Append(this->Request("r", ExpectedVersion::Any(), 2)).ok());
  const TimeNs t0 = this->clock_.now.load();
  ASSERT_TRUE(s.SaveSnapshot({"r", 1, 7, 0, "state at 1"}).ok());
  this->clock_.now += 1'000'000'000;
  ASSERT_TRUE(s.Append(this->Request("r", ExpectedVersion::Any(), 2)).ok());
  const TimeNs t1 = this->clock_.now.load();
  ASSERT_TRUE(s.SaveSnapshot({"r", 3, 7, 0, "state at 3"}).ok());
  auto latest = s.LoadSnapshot("r");
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->version, 3u);
  EXPECT_EQ(latest->schema_version, 7u);
  EXPECT_EQ(latest->state, "state at 3");
  auto before = s.LoadSnapshotAt("r", t1 - 1);
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  EXPECT_EQ(before->state, "state at 1");
  auto at = s.LoadSnapshotAt("r", t1);
  ASSERT_TRUE(at.ok());
  EXPECT_EQ(at->state, "state at 3");
  EXPECT_EQ(s.LoadSnapshotAt("r", t0 - 1).status().code(), Status::Code::kNotFound);
}

TYPED_TEST(StoreContractTest, RetentionHidesByCountAgeAndTruncation) {
  auto& s = this->store();
  ASSERT_TRUE(s.Append(this->Request("r", ExpectedVersion::Any(), 5)).ok());
  this->clock_.now += 60'000'000;
  ASSERT_TRUE(s.Append(this->Request("r", ExpectedVersion::Any(), 5)).ok());
  auto count = [&](const std::string& stream) {
    auto page = s.ReadStream(stream, 0, Direction::kForward, 100);
    EXPECT_TRUE(page.ok());
    return page.ok() ? page->events.size() : 0;
  };
  EXPECT_EQ(*s.GetStreamMetadata("r"), StreamMetadata{});
  ASSERT_TRUE(s.SetStreamMetadata("r", {0, 4, 0}).ok());
  EXPECT_EQ(*s.GetStreamMetadata("r"), (StreamMetadata{0, 4, 0}));
  EXPECT_EQ(count("r"), 4u);
  ASSERT_TRUE(s.SetStreamMetadata("r", {0, 0, 7}).ok());
  EXPECT_EQ(count("r"), 3u);
  ASSERT_TRUE(s.SetStreamMetadata("r", {50'000'000, 0, 0}).ok());
  EXPECT_EQ(count("r"), 5u);  // the first five are 60 ms old
  auto backward = s.ReadStream("r", kStreamEnd, Direction::kBackward, 100);
  ASSERT_TRUE(backward.ok());
  EXPECT_EQ(backward->events.size(), 5u);
  EXPECT_TRUE(backward->end);
  // $all hides them too, and still moves past them.
  EXPECT_EQ(this->ReadEverything().size(), 5u);
  EXPECT_EQ(s.SetStreamMetadata("r", {-1, 0, 0}).code(), Status::Code::kInvalidArgument);
}

TYPED_TEST(StoreContractTest, ConcurrentWritersToOneStreamGetDenseVersionsAndEachEventOnce) {
  auto& s = this->store();
  constexpr int kThreads = 4;
  constexpr int kAppends = 25;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  std::mutex mu;
  std::map<EventId, int> batch_of;  // each event's batch
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kAppends; ++i) {
        auto r = s.Append(this->Request("shared", ExpectedVersion::Any(), 2, t * 1000 + i));
        if (!r.ok()) {
          ADD_FAILURE() << r.status().ToString();
          ++failures;
          continue;
        }
        std::lock_guard lock(mu);
        for (const EventId& id : r->ids) batch_of[id] = t * kAppends + i;
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(failures.load(), 0);
  auto page = s.ReadStream("shared", 0, Direction::kForward, 1000);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->events.size(), size_t{kThreads * kAppends * 2});
  std::set<EventId> ids;
  for (size_t i = 0; i < page->events.size(); ++i) {
    EXPECT_EQ(page->events[i].version(), i);
    ids.insert(page->events[i].id());
    ASSERT_EQ(batch_of.count(page->events[i].id()), 1u);
    // A batch stays together: versions 2k and 2k+1 are one append's.
    if (i % 2 == 1) {
      EXPECT_EQ(batch_of[page->events[i].id()], batch_of[page->events[i - 1].id()]);
    }
  }
  EXPECT_EQ(ids.size(), page->events.size());
}

TYPED_TEST(StoreContractTest, AsyncAppendsAllAnswer) {
  auto& s = this->store();
  constexpr int kAppends = 40;
  std::vector<std::promise<Result<AppendResult>>> done(kAppends);
  for (int i = 0; i < kAppends; ++i) {
    s.AppendAsync(this->Request(fmt::format("r-{}", i % 4), ExpectedVersion::Any(), 1),
                  [&done, i](Result<AppendResult> r) { done[i].set_value(std::move(r)); });
  }
  for (auto& d : done) {
    auto r = d.get_future().get();
    EXPECT_TRUE(r.ok()) << r.status().ToString();
  }
  EXPECT_EQ(this->ReadEverything().size(), size_t{kAppends});
}

// Retention hiding more events than a page holds: a page still comes back with events (the
// store reads past the hidden ones), never an empty page a reader would take for the end.
TYPED_TEST(StoreContractTest, PagesOfAllSkipHiddenEventsInsteadOfComingBackEmpty) {
  auto& s = this->store();
  ASSERT_TRUE(s.Append(this->Request("old", ExpectedVersion::Any(), 30)).ok());
  ASSERT_TRUE(s.SetStreamMetadata("old", {0, 0, 25}).ok());
  auto page = s.ReadAll(0, 3);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->events.size(), 3u);
  EXPECT_EQ(page->events[0].version(), 25u);
  EXPECT_FALSE(page->end);
  EXPECT_EQ(this->ReadEverything(3).size(), 5u);
}

// Appends handed in one after another to one stream are stored in that order.
TYPED_TEST(StoreContractTest, AsyncAppendsToAStreamAreStoredInTheOrderGiven) {
  auto& s = this->store();
  constexpr int kAppends = 60;
  std::vector<EventId> sent;
  std::vector<std::promise<Result<AppendResult>>> done(kAppends);
  for (int i = 0; i < kAppends; ++i) {
    AppendRequest r = this->Request("ordered", ExpectedVersion::Any(), 1, i);
    sent.push_back(r.events[0].id);
    s.AppendAsync(std::move(r), [&done, i](Result<AppendResult> result) {
      done[i].set_value(std::move(result));
    });
  }
  for (auto& d : done) ASSERT_TRUE(d.get_future().get().ok());
  auto page = s.ReadStream("ordered", 0, Direction::kForward, 1000);
  ASSERT_TRUE(page.ok());
  std::vector<EventId> stored;
  for (const auto& e : page->events) stored.push_back(e.id());
  EXPECT_EQ(stored, sent);
}

// A feed catches up on what is stored, then follows appends made while it runs: every event
// once, in global order, and a feed started at its checkpoint goes on without a repeat.
TYPED_TEST(StoreContractTest, AFeedHandsOverFromCatchUpToLiveWithoutAGapOrARepeat) {
  if constexpr (TypeParam::kNoFeed != nullptr) {
    EXPECT_EQ(this->holder_.Feed(0).status().code(), Status::Code::kInvalidArgument);
    GTEST_SKIP() << TypeParam::kNoFeed;
  } else {
    auto& s = this->store();
    std::set<EventId> appended;
    for (int i = 0; i < 15; ++i) {
      auto r = s.Append(this->Request(fmt::format("robot-{}", i % 3), ExpectedVersion::Any(), 2));
      ASSERT_TRUE(r.ok());
      appended.insert(r->ids.begin(), r->ids.end());
    }
    auto feed = this->holder_.Feed(0);
    ASSERT_TRUE(feed.ok()) << feed.status().ToString();
    std::mutex mu;
    std::thread writer([&] {
      for (int i = 0; i < 15; ++i) {
        auto r = s.Append(this->Request(fmt::format("robot-{}", i % 3), ExpectedVersion::Any(), 2));
        ASSERT_TRUE(r.ok());
        {
          std::lock_guard lock(mu);
          appended.insert(r->ids.begin(), r->ids.end());
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(3));
      }
    });
    std::vector<RecordedEvent> got;
    while (got.size() < 60) {
      auto next = (*feed)->Next(std::chrono::seconds(10));
      ASSERT_TRUE(next.ok()) << next.status().ToString();
      ASSERT_TRUE(next->has_value()) << "nothing within 10 s after " << got.size() << " events";
      got.push_back(std::move(**next));
    }
    writer.join();
    std::set<EventId> seen;
    for (size_t i = 0; i < got.size(); ++i) {
      if (i > 0) {
        EXPECT_LT(got[i - 1].position(), got[i].position());
      }
      EXPECT_TRUE(seen.insert(got[i].id()).second);
    }
    EXPECT_EQ(seen, appended);
    const GlobalPosition checkpoint = (*feed)->checkpoint();
    EXPECT_GT(checkpoint, got.back().position());
    feed->reset();
    auto resumed = this->holder_.Feed(checkpoint);
    ASSERT_TRUE(resumed.ok());
    auto none = (*resumed)->Next(std::chrono::milliseconds(300));
    ASSERT_TRUE(none.ok());
    EXPECT_FALSE(none->has_value()) << "repeated " << (*none)->position();
    auto last = s.Append(this->Request("robot-9", ExpectedVersion::Any(), 1));
    ASSERT_TRUE(last.ok());
    auto next = (*resumed)->Next(std::chrono::seconds(10));
    ASSERT_TRUE(next.ok() && next->has_value());
    EXPECT_EQ((*next)->id(), last->ids[0]);
  }
}

}  // namespace
}  // namespace doppel::eventstore
