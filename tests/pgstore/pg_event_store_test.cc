// What only PgEventStore has to get right: the commit horizon (a row committed late is never
// skipped by a tail), its schema (created idempotently, another layout refused and left
// alone), bad rows and URLs named clearly, and a server that goes away and comes back.
#include "doppel/pgstore/pg_event_store.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <iterator>
#include <random>
#include <set>
#include <thread>

#include "commit_horizon.h"
#include "legacy_rows.h"
#include "pg_connection.h"
#include "pg_proxy.h"
#include "pg_server.h"
#include "test_support.h"

namespace doppel::pgstore {
namespace {

using eventstore::AppendRequest;
using eventstore::ExpectedVersion;
using eventstore::GlobalPosition;
using testing::JointStateEvent;
using testing::LegacyInsert;
using testing::SharedPgServer;

std::string NewDatabase() {
  static std::atomic<int> n{0};
  auto url = SharedPgServer().CreateDatabase(fmt::format("pgstore_{}", n++));
  EXPECT_TRUE(url.ok()) << url.status().ToString();
  return url.ok() ? *url : std::string();
}

std::unique_ptr<PgEventStore> OpenStore(const std::string& url) {
  EXPECT_TRUE(PgEventStore::InitSchema(url).ok());
  auto store = PgEventStore::Open(url);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(store).value() : nullptr;
}

AppendRequest Request(const std::string& stream, int events) {
  AppendRequest r{stream, ExpectedVersion::Any(), {}};
  for (int i = 0; i < events; ++i) r.events.push_back(JointStateEvent(i));
  return r;
}

// Everything a tail delivers from `from` until the store says it is at the end.
std::vector<GlobalPosition> Drain(PgEventStore& store, GlobalPosition* from) {
  std::vector<GlobalPosition> got;
  for (int pages = 0; pages < 10'000; ++pages) {
    auto page = store.ReadAll(*from, 50);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    if (!page.ok()) break;
    for (const auto& e : page->events) got.push_back(e.position());
    *from = page->next;
    if (page->end) break;
  }
  return got;
}

TEST(CommitHorizonTest, ParsesTransactionIdListsAndRefusesGarbage) {
  auto ids = ParseXidList("100,102");
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, (std::vector<uint64_t>{100, 102}));
  EXPECT_TRUE(ParseXidList("")->empty());
  for (const char* bad : {",", "1,", "a", "1,,2", "-1"}) {
    EXPECT_EQ(ParseXidList(bad).status().code(), Status::Code::kCorruption) << bad;
  }
}

TEST(CommitHorizonTest, WaitsForEveryWriterThatMayHoldALowerPosition) {
  CommitHorizon h;
  // Transaction 10 writes and may hold a position below the visible 20.
  EXPECT_EQ(h.Observe(20, {10}), 0u);
  // Still running, more rows committed: the horizon does not move.
  EXPECT_EQ(h.Observe(30, {10, 13}), 0u);
  // 10 finished (13 still runs): everything up to 20 is final; 35 waits for 13.
  EXPECT_EQ(h.Observe(35, {13}), 20u);
  EXPECT_EQ(h.Observe(36, {13, 16}), 20u);
  EXPECT_EQ(h.Observe(37, {16}), 35u);
  // Nobody writing: everything visible is final.
  EXPECT_EQ(h.Observe(40, {}), 40u);
  // Never backwards.
  EXPECT_EQ(h.Observe(39, {}), 40u);
}

TEST(PgEventStoreTest, SchemaIsCreatedOnceAndADatabaseWithoutItIsRefused) {
  const std::string url = NewDatabase();
  auto bare = PgEventStore::Open(url);
  ASSERT_EQ(bare.status().code(), Status::Code::kNotADoppelLog);
  EXPECT_NE(bare.status().message().find("pg-store init"), std::string::npos)
      << bare.status().message();
  ASSERT_TRUE(PgEventStore::InitSchema(url).ok());
  ASSERT_TRUE(PgEventStore::InitSchema(url).ok());  // idempotent
  auto store = PgEventStore::Open(url);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ASSERT_TRUE((*store)->Append(Request("r", 2)).ok());
  ASSERT_TRUE(PgEventStore::InitSchema(url).ok());  // and leaves the events alone
  auto head = (*store)->StreamHead("r");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(*head, 1u);
}

TEST(PgEventStoreTest, AnotherLayoutIsRefusedNamingTheDifferenceAndLeftAlone) {
  const std::string url = NewDatabase();
  auto conn = PgConnection::Connect(url);
  ASSERT_TRUE(conn.ok());
  ASSERT_TRUE((*conn)
                  ->Exec("CREATE TABLE events (position bigserial PRIMARY KEY, stream text, "
                         "body jsonb); INSERT INTO events (stream, body) VALUES ('x', '{}')",
                         "making a foreign table")
                  .ok());
  Status init = PgEventStore::InitSchema(url);
  ASSERT_EQ(init.code(), Status::Code::kNotADoppelLog);
  EXPECT_NE(init.message().find("no column version"), std::string::npos) << init.message();
  auto open = PgEventStore::Open(url);
  EXPECT_EQ(open.status().code(), Status::Code::kNotADoppelLog);
  auto rows = (*conn)->Exec("SELECT count(*) FROM events WHERE body IS NOT NULL", "counting");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->Text(0, 0), "1");
  // A column of another type is named with both types.
  const std::string url2 = NewDatabase();
  auto conn2 = PgConnection::Connect(url2);
  ASSERT_TRUE(conn2.ok());
  ASSERT_TRUE(PgEventStore::InitSchema(url2).ok());
  ASSERT_TRUE(
      (*conn2)->Exec("ALTER TABLE events ALTER COLUMN recorded_ns TYPE numeric", "altering").ok());
  auto typed = PgEventStore::Open(url2);
  ASSERT_EQ(typed.status().code(), Status::Code::kNotADoppelLog);
  EXPECT_NE(typed.status().message().find("recorded_ns is numeric, doppel needs bigint"),
            std::string::npos)
      << typed.status().message();
}

TEST(PgEventStoreTest, ALegacyTableGetsThePositionDefaultThatKeepsTailsExact) {
  const std::string url = NewDatabase();
  auto conn = PgConnection::Connect(url);
  ASSERT_TRUE(conn.ok());
  ASSERT_TRUE(PgEventStore::InitSchema(url).ok());
  // As a fleet's own table would be: the plain bigserial default.
  ASSERT_TRUE((*conn)
                  ->Exec("ALTER TABLE events ALTER COLUMN position SET DEFAULT "
                         "nextval('events_position_seq')",
                         "resetting the default")
                  .ok());
  auto refused = PgEventStore::Open(url);
  ASSERT_EQ(refused.status().code(), Status::Code::kNotADoppelLog);
  EXPECT_NE(refused.status().message().find("events_next_position"), std::string::npos);
  ASSERT_TRUE(PgEventStore::InitSchema(url).ok());
  EXPECT_TRUE(PgEventStore::Open(url).ok());
}

TEST(PgEventStoreTest, BadUrlsAndBadRowsGetClearErrors) {
  auto nowhere = PgEventStore::Open("postgresql:///doppel?host=/nonexistent-doppel-dir");
  ASSERT_EQ(nowhere.status().code(), Status::Code::kUnavailable);
  EXPECT_NE(nowhere.status().message().find("cannot connect to PostgreSQL"), std::string::npos)
      << nowhere.status().message();
  EXPECT_EQ(PgEventStore::Open(SharedPgServer().Url("no_such_database")).status().code(),
            Status::Code::kUnavailable);

  const std::string url = NewDatabase();
  auto store = OpenStore(url);
  ASSERT_NE(store, nullptr);
  auto conn = PgConnection::Connect(url);
  ASSERT_TRUE(conn.ok());
  ASSERT_TRUE((*conn)
                  ->Exec("INSERT INTO events (stream, version, event_id, type, payload, "
                         "recorded_ns) VALUES ('r', 0, gen_random_uuid(), 'JointStateObserved', "
                         "'\\x0102'::bytea, 1)",
                         "inserting a bad row")
                  .ok());
  auto read = store->ReadAll(0, 10);
  ASSERT_EQ(read.status().code(), Status::Code::kCorruption);
  EXPECT_NE(read.status().message().find("events row at position 1 (r version 0)"),
            std::string::npos)
      << read.status().message();
  // The store keeps serving.
  EXPECT_TRUE(store->Append(Request("fine", 1)).ok());
}

// The race of issue 27: a transaction takes a lower position and stays open while others
// commit higher ones. A tail must deliver nothing past it until it commits, then everything,
// in position order, none skipped and none twice.
TEST(PgEventStoreTest, ATailNeverSkipsARowCommittedLate) {
  const std::string url = NewDatabase();
  auto store = OpenStore(url);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Append(Request("a", 2)).ok());  // positions 1, 2
  GlobalPosition from = 0;
  std::vector<GlobalPosition> delivered = Drain(*store, &from);
  EXPECT_EQ(delivered, (std::vector<GlobalPosition>{1, 2}));

  auto late = PgConnection::Connect(url);
  ASSERT_TRUE(late.ok());
  ASSERT_TRUE((*late)->Exec("BEGIN", "late writer").ok());
  ASSERT_TRUE((*late)->Exec(LegacyInsert("legacy", 0), "late writer").ok());  // position 3
  auto after = store->Append(Request("b", 3));                                // 4, 5, 6
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->first_position, 4u);

  for (int look = 0; look < 3; ++look) {
    auto page = store->ReadAll(from, 50);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    for (const auto& e : page->events) delivered.push_back(e.position());
    from = page->next;
    EXPECT_FALSE(page->end) << "rows 4..6 are committed and not delivered yet";
  }
  EXPECT_EQ(delivered, (std::vector<GlobalPosition>{1, 2}));
  EXPECT_EQ(from, 3u);

  ASSERT_TRUE((*late)->Exec("COMMIT", "late writer").ok());
  auto rest = Drain(*store, &from);
  delivered.insert(delivered.end(), rest.begin(), rest.end());
  EXPECT_EQ(delivered, (std::vector<GlobalPosition>{1, 2, 3, 4, 5, 6}));

  // A position whose transaction rolled back is a gap the tail moves past.
  ASSERT_TRUE((*late)->Exec("BEGIN", "late writer").ok());
  ASSERT_TRUE((*late)->Exec(LegacyInsert("legacy", 1), "late writer").ok());  // 7
  ASSERT_TRUE(store->Append(Request("b", 1)).ok());                           // 8
  auto held = store->ReadAll(from, 50);
  ASSERT_TRUE(held.ok());
  EXPECT_TRUE(held->events.empty());
  EXPECT_FALSE(held->end);
  ASSERT_TRUE((*late)->Exec("ROLLBACK", "late writer").ok());
  std::vector<GlobalPosition> after_gap;
  for (int i = 0; i < 50 && after_gap.empty(); ++i) after_gap = Drain(*store, &from);
  EXPECT_EQ(after_gap, (std::vector<GlobalPosition>{8}));
}

// Many writers, doppel's and legacy ones that sleep inside their transactions, while a tail
// follows: the tail ends with every row exactly once, in position order.
TEST(PgEventStoreTest, ATailUnderConcurrentWritersDeliversEveryRowOnceInOrder) {
  const uint32_t seed = testing::TestSeed(27);
  SCOPED_TRACE(testing::SeedTrace(seed));
  const std::string url = NewDatabase();
  auto store = OpenStore(url);
  ASSERT_NE(store, nullptr);
  std::atomic<bool> writing{true};
  std::vector<std::thread> writers;
  for (int t = 0; t < 3; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < 30; ++i) {
        auto r = store->Append(Request(fmt::format("robot-{}", t), 1 + i % 3));
        if (!r.ok()) ADD_FAILURE() << r.status().ToString();
      }
    });
  }
  writers.emplace_back([&] {
    std::mt19937 rng(seed);
    auto conn = PgConnection::Connect(url);
    ASSERT_TRUE(conn.ok());
    for (int i = 0; i < 15; ++i) {
      const int sleep_ms = 5 + static_cast<int>(rng() % 40);
      auto done = (*conn)->Exec(fmt::format("BEGIN; {}; SELECT pg_sleep({}); COMMIT",
                                            LegacyInsert("legacy", i), sleep_ms / 1000.0),
                                "legacy writer");
      if (!done.ok()) ADD_FAILURE() << done.status().ToString();
    }
  });
  std::vector<GlobalPosition> delivered;
  GlobalPosition from = 0;
  std::thread tail([&] {
    while (writing.load()) {
      auto page = store->ReadAll(from, 20);
      if (!page.ok()) {
        ADD_FAILURE() << page.status().ToString();
        return;
      }
      for (const auto& e : page->events) delivered.push_back(e.position());
      from = page->next;
    }
  });
  for (auto& w : writers) w.join();
  writing = false;
  tail.join();
  auto rest = Drain(*store, &from);
  delivered.insert(delivered.end(), rest.begin(), rest.end());

  auto conn = PgConnection::Connect(url);
  ASSERT_TRUE(conn.ok());
  auto rows = (*conn)->Exec("SELECT position FROM events ORDER BY position", "listing");
  ASSERT_TRUE(rows.ok());
  std::vector<GlobalPosition> expected;
  for (int r = 0; r < rows->rows(); ++r) expected.push_back(std::stoull(rows->Text(r, 0)));
  EXPECT_EQ(expected.size(), size_t{3 * (10 * (1 + 2 + 3)) + 15});
  EXPECT_EQ(delivered, expected);
  std::vector<GlobalPosition> missing, extra;
  std::set_difference(expected.begin(), expected.end(), delivered.begin(), delivered.end(),
                      std::back_inserter(missing));
  std::set_difference(delivered.begin(), delivered.end(), expected.begin(), expected.end(),
                      std::back_inserter(extra));
  EXPECT_TRUE(missing.empty()) << "missing: " << fmt::format("{}", fmt::join(missing, ","));
  EXPECT_TRUE(extra.empty()) << "extra: " << fmt::format("{}", fmt::join(extra, ","));
}

// A client that times out resends its batch while the original is still in flight: the resend
// waits for the original and gets its places back (duplicate), as over the embedded log, not
// a wrong expected version.
TEST(PgEventStoreTest, AResendWhileTheOriginalIsInFlightIsADuplicate) {
  const std::string url = NewDatabase();
  auto store = OpenStore(url);
  ASSERT_NE(store, nullptr);
  auto holder = PgConnection::Connect(url);
  ASSERT_TRUE(holder.ok());
  // Hold the stream's lock so both appends queue behind it, in order.
  ASSERT_TRUE((*holder)
                  ->Exec("BEGIN; SELECT pg_advisory_xact_lock(hashtextextended('r', 0))",
                         "holding the stream")
                  .ok());
  AppendRequest request = Request("r", 2);
  request.expected = ExpectedVersion::NoStream();
  auto waiting = [&] {
    auto rows = (*holder)->Exec(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted", "counting");
    return rows.ok() ? std::stoi(rows->Text(0, 0)) : -1;
  };
  Result<eventstore::AppendResult> original = Status::Unavailable("not run");
  Result<eventstore::AppendResult> resend = Status::Unavailable("not run");
  std::thread first([&] { original = store->Append(request); });
  while (waiting() < 1) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::thread second([&] { resend = store->Append(request); });
  while (waiting() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_TRUE((*holder)->Exec("COMMIT", "releasing the stream").ok());
  first.join();
  second.join();
  ASSERT_TRUE(original.ok()) << original.status().ToString();
  ASSERT_TRUE(resend.ok()) << resend.status().ToString();
  EXPECT_FALSE(original->duplicate);
  EXPECT_TRUE(resend->duplicate);
  EXPECT_EQ(resend->first_position, original->first_position);
  EXPECT_EQ(resend->last_version, 1u);
}

// The store remembers stream heads to append in one statement; a writer behind its back makes
// the guess wrong, and the table's keys catch it: the answers stay the log's.
TEST(PgEventStoreTest, AWriterBehindTheStoresBackIsNoticedByTheKeys) {
  const std::string url = NewDatabase();
  auto store = OpenStore(url);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Append(Request("r", 2)).ok());  // versions 0, 1: the store remembers 1
  auto legacy = PgConnection::Connect(url);
  ASSERT_TRUE(legacy.ok());
  ASSERT_TRUE((*legacy)->Exec(LegacyInsert("r", 2), "writing behind the store's back").ok());
  AppendRequest exact = Request("r", 1);
  exact.expected = ExpectedVersion::Exact(1);  // true by the store's memory, false in the table
  auto refused = store->Append(exact);
  EXPECT_EQ(refused.status().code(), Status::Code::kWrongExpectedVersion)
      << refused.status().ToString();
  auto any = store->Append(Request("r", 1));
  ASSERT_TRUE(any.ok()) << any.status().ToString();
  EXPECT_EQ(any->first_version, 3u);
  // A resend of a stored batch through the fast path is still a duplicate.
  AppendRequest batch = Request("r", 2);
  auto stored = store->Append(batch);
  ASSERT_TRUE(stored.ok());
  auto resent = store->Append(batch);
  ASSERT_TRUE(resent.ok());
  EXPECT_TRUE(resent->duplicate);
  EXPECT_EQ(resent->first_version, 4u);
  EXPECT_EQ(*store->StreamHead("r"), 5u);
}

// The connection breaks after the server got a request and before its answer came back. A
// commit whose answer was lost is resolved by the events' ids: the append is sent again, finds
// them, and reports them stored once (not a duplicate: they are this append's). A connection
// lost before anything committed gives a clear error and stores nothing.
TEST(PgEventStoreTest, ACommitWhoseAnswerIsLostIsResolvedByItsIdsAndNeverRepeated) {
  testing::TempDir proxy_dir;
  testing::PgProxy proxy(proxy_dir.path(), SharedPgServer().socket_dir());
  ASSERT_TRUE(proxy.ok());
  static int runs = 0;
  const std::string db = fmt::format("lost_commit_{}", runs++);
  ASSERT_TRUE(SharedPgServer().CreateDatabase(db).ok());
  const std::string url =
      fmt::format("postgresql:///{}?host={}&port=5432&user=postgres", db, proxy_dir.path());
  auto store = OpenStore(url);
  ASSERT_NE(store, nullptr);
  auto direct = PgConnection::Connect(SharedPgServer().Url(db));
  ASSERT_TRUE(direct.ok());
  auto count = [&](const std::string& where) {
    auto rows = (*direct)->Exec("SELECT count(*) FROM events WHERE " + where, "counting");
    return rows.ok() ? std::stoi(rows->Text(0, 0)) : -1;
  };

  // The answer to the INSERT (which committed) is lost.
  ASSERT_TRUE(store->Append(Request("r", 1)).ok());
  AppendRequest lost = Request("r", 2);
  const auto id = lost.events[0].id.ToBytes();
  proxy.CutAfter(std::string(id.data(), id.size()));
  auto resolved = store->Append(lost);
  ASSERT_TRUE(resolved.ok()) << resolved.status().ToString();
  EXPECT_EQ(proxy.cuts(), 1);
  EXPECT_FALSE(resolved->duplicate);
  EXPECT_EQ(resolved->first_version, 1u);
  EXPECT_EQ(resolved->last_version, 2u);
  EXPECT_EQ(count(fmt::format("event_id IN ('{}', '{}')", lost.events[0].id.ToString(),
                              lost.events[1].id.ToString())),
            2);
  EXPECT_EQ(count("stream = 'r'"), 3);

  // The connection breaks before the transaction could commit.
  AppendRequest early = Request("fresh-stream", 1);
  early.expected = ExpectedVersion::NoStream();
  proxy.CutAfter("fresh-stream");
  auto refused = store->Append(early);
  ASSERT_EQ(refused.status().code(), Status::Code::kUnavailable);
  EXPECT_NE(refused.status().message().find("connection to PostgreSQL"), std::string::npos)
      << refused.status().message();
  EXPECT_EQ(proxy.cuts(), 2);
  EXPECT_EQ(count("stream = 'fresh-stream'"), 0);
  auto again = store->Append(early);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_FALSE(again->duplicate);
  EXPECT_EQ(count("stream = 'fresh-stream'"), 1);
}

// A standby's snapshots and locks do not show the primary's writers, so a tail there could
// skip rows: opening one is refused, naming why.
TEST(PgEventStoreTest, AStandbyIsRefused) {
  const std::string url = NewDatabase();
  ASSERT_TRUE(PgEventStore::InitSchema(url).ok());
  auto standby = testing::PgServer::StartStandbyOf(SharedPgServer());
  ASSERT_TRUE(standby.ok()) << standby.status().ToString();
  const std::string db = url.substr(std::string("postgresql:///").size(),
                                    url.find('?') - std::string("postgresql:///").size());
  auto opened = PgEventStore::Open((*standby)->Url(db));
  ASSERT_EQ(opened.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(opened.status().message().find("standby"), std::string::npos)
      << opened.status().message();
}

TEST(PgEventStoreTest, AServerThatGoesAwayGivesClearErrorsAndIsReachedAgain) {
  auto server = testing::PgServer::Start();
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  auto url = (*server)->CreateDatabase("crash");
  ASSERT_TRUE(url.ok());
  auto store = OpenStore(*url);
  ASSERT_NE(store, nullptr);
  auto kept = store->Append(Request("r", 3));
  ASSERT_TRUE(kept.ok());

  ASSERT_TRUE((*server)->Crash().ok());
  auto refused = store->Append(Request("r", 1));
  ASSERT_EQ(refused.status().code(), Status::Code::kUnavailable);
  EXPECT_NE(refused.status().message().find("PostgreSQL"), std::string::npos)
      << refused.status().message();
  EXPECT_EQ(store->ReadAll(0, 10).status().code(), Status::Code::kUnavailable);

  ASSERT_TRUE((*server)->StartServer().ok());
  Result<eventstore::AppendResult> again = Status::Unavailable("not tried");
  for (int i = 0; i < 10 && !again.ok(); ++i) {
    again = store->Append(Request("r", 1));  // broken connections are dropped as they fail
  }
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  auto page = store->ReadStream("r", 0, eventstore::Direction::kForward, 10);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->events.size(), 4u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(page->events[i].id(), kept->ids[i]);
}

}  // namespace
}  // namespace doppel::pgstore
