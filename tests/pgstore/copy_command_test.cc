// doppel copy between real stores, as an operator runs it: PostgreSQL -> embedded log ->
// PostgreSQL keeps every event verbatim and in order, a second run writes nothing, a row
// committed late in PostgreSQL is copied in its place and never skipped, and bad input (an
// unreachable or unprepared database, a row that is not a valid event) stops the copy with a
// clear error and nothing half-written.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "doppel/eventstore/event_log.h"
#include "doppel/eventstore/store_client.h"
#include "doppel/pgstore/pg_event_store.h"
#include "legacy_rows.h"
#include "pg_connection.h"
#include "pg_server.h"
#include "test_support.h"

namespace doppel {
namespace {

using eventstore::AppendRequest;
using eventstore::EventLog;
using eventstore::ExpectedVersion;
using eventstore::NewEvent;
using eventstore::RecordedEvent;
using pgstore::PgEventStore;
using testing::DoppelProcess;
using testing::JointStateEvent;
using testing::LegacyInsert;
using testing::ReadEverything;
using testing::RunDoppel;
using testing::SharedPgServer;
using testing::TempDir;

std::string NewDatabase(const std::string& name, bool init = true) {
  auto url = SharedPgServer().CreateDatabase(name);
  EXPECT_TRUE(url.ok()) << url.status().ToString();
  if (!url.ok()) return std::string();
  if (init) {
    EXPECT_TRUE(PgEventStore::InitSchema(*url).ok());
  }
  return *url;
}

std::unique_ptr<PgEventStore> OpenPg(const std::string& url) {
  auto store = PgEventStore::Open(url);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(store).value() : nullptr;
}

std::unique_ptr<EventLog> OpenLogReadOnly(const std::string& dir) {
  eventstore::EventLogOptions options;
  options.read_only = true;
  auto log = EventLog::Open(dir, options);
  EXPECT_TRUE(log.ok()) << log.status().ToString();
  return log.ok() ? std::move(log).value() : nullptr;
}

// Every event of `copy` is the event of `original` at the same index, but for its position.
void ExpectVerbatim(const std::vector<RecordedEvent>& original,
                    const std::vector<RecordedEvent>& copy) {
  ASSERT_EQ(copy.size(), original.size());
  for (size_t i = 0; i < copy.size(); ++i) {
    SCOPED_TRACE(fmt::format("event {} (source position {})", i, original[i].position()));
    const auto& a = original[i].envelope();
    const auto& b = copy[i].envelope();
    EXPECT_EQ(copy[i].id(), original[i].id());
    EXPECT_EQ(copy[i].stream(), original[i].stream());
    EXPECT_EQ(copy[i].version(), original[i].version());
    EXPECT_EQ(copy[i].type(), original[i].type());
    EXPECT_EQ(copy[i].payload(), original[i].payload());
    EXPECT_EQ(copy[i].recorded_ns(), original[i].recorded_ns());
    EXPECT_EQ(copy[i].occurred_ns(), original[i].occurred_ns());
    EXPECT_EQ(b.payload_schema_version(), a.payload_schema_version());
    EXPECT_EQ(schemas::FromFb(b.causation_id()), schemas::FromFb(a.causation_id()));
    EXPECT_EQ(schemas::FromFb(b.correlation_id()), schemas::FromFb(a.correlation_id()));
    if (i > 0) {
      EXPECT_GT(copy[i].position(), copy[i - 1].position());
    }
  }
}

// The last JSON status line a `doppel copy --json` printed.
nlohmann::json LastStatus(const std::string& out) {
  nlohmann::json last;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty() && line[0] == '{') last = nlohmann::json::parse(line);
  }
  return last;
}

TEST(CopyCommandTest, PostgresToLogToPostgresKeepsEveryEventVerbatimAndInOrder) {
  const std::string source_url = NewDatabase("copy_source");
  auto source = OpenPg(source_url);
  ASSERT_NE(source, nullptr);
  EventId previous;
  for (int i = 0; i < 60; ++i) {
    AppendRequest r{fmt::format("robot-{}", i % 5), ExpectedVersion::Any(), {}};
    for (int k = 0; k <= i % 3; ++k) {
      NewEvent e = JointStateEvent(i + k * 0.5);
      e.occurred_ns = 1'700'000'000'000'000'000 + i;
      e.causation_id = previous;
      e.correlation_id = EventId(42, static_cast<uint64_t>(i));
      e.payload_schema_version = static_cast<uint16_t>(1 + k);
      r.events.push_back(e);
    }
    auto appended = source->Append(r);
    ASSERT_TRUE(appended.ok()) << appended.status().ToString();
    previous = appended->ids.back();
  }
  ASSERT_TRUE(SharedPgServer().Run("copy_source", LegacyInsert("legacy", 0)).ok());
  const std::vector<RecordedEvent> original = ReadEverything(*source);
  ASSERT_EQ(original.size(), 121u);

  TempDir dir;
  const std::string log_dir = dir.Sub("log");
  auto first = RunDoppel(
      {"copy", "--from", source_url, "--to", log_dir, "--until-caught-up", "--batch", "7"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_NE(first.out.find("121 events copied in all; this run wrote 121 and found 0"),
            std::string::npos)
      << first.out;
  // A second run over a finished copy writes nothing.
  auto second = RunDoppel({"copy", "--from", source_url, "--to", log_dir, "--until-caught-up"});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_NE(second.out.find("this run wrote 0 and found 0"), std::string::npos) << second.out;
  {
    auto log = OpenLogReadOnly(log_dir);
    ASSERT_NE(log, nullptr);
    const std::vector<RecordedEvent> copied = ReadEverything(*log);
    ExpectVerbatim(original, copied);
    for (size_t i = 0; i < copied.size(); ++i) {
      auto mapped = log->CopiedPosition("main", original[i].position());
      ASSERT_TRUE(mapped.ok()) << mapped.status().ToString();
      EXPECT_EQ(*mapped, copied[i].position());
    }
  }

  // And back into another database, under another name, with JSON status lines.
  const std::string back_url = NewDatabase("copy_back");
  auto back = RunDoppel({"copy", "--from", log_dir, "--to", back_url, "--until-caught-up", "--name",
                         "back", "--json", "--batch", "50"});
  ASSERT_EQ(back.exit_code, 0) << back.err;
  const nlohmann::json status = LastStatus(back.out);
  EXPECT_EQ(status["copy"], "back");
  EXPECT_EQ(status["events"], 121);
  EXPECT_EQ(status["caught_up"], true);
  EXPECT_EQ(status["lag_events"], 0);
  auto returned = OpenPg(back_url);
  ASSERT_NE(returned, nullptr);
  ExpectVerbatim(original, ReadEverything(*returned));

  for (const auto& args : {std::vector<std::string>{"verify", "--data", log_dir},
                           std::vector<std::string>{"verify", "--store", back_url}}) {
    auto verify = RunDoppel(args);
    EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  }
}

TEST(CopyCommandTest, IntoARunningStoreServerWhoseSubscribersSeeTheCopies) {
  const std::string url = NewDatabase("copy_to_server");
  auto source = OpenPg(url);
  ASSERT_NE(source, nullptr);
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(
        source
            ->Append(AppendRequest{
                fmt::format("robot-{}", i % 3), ExpectedVersion::Any(), {JointStateEvent(i)}})
            .ok());
  }
  TempDir dir;
  auto server = testing::StartStore(dir.Sub("log"));
  DoppelProcess subscriber({"subscribe", "--store", server.listen, "--publish", server.publish,
                            "--from", "0", "--count", "30"});
  auto copied = RunDoppel(
      {"copy", "--from", url, "--to", server.listen, "--until-caught-up", "--batch", "8"});
  ASSERT_EQ(copied.exit_code, 0) << copied.err;
  EXPECT_NE(copied.out.find("30 events copied in all"), std::string::npos) << copied.out;
  int seen = 0;
  while (seen < 30) {
    auto line = subscriber.ReadLine(10'000);
    ASSERT_TRUE(line.has_value()) << "the subscriber saw " << seen << " of 30";
    ++seen;
  }
  EXPECT_EQ(subscriber.Wait(), 0);
  eventstore::StoreClientOptions options;
  options.endpoint = server.listen;
  auto client = eventstore::StoreClient::Connect(options);
  ASSERT_TRUE(client.ok());
  ExpectVerbatim(ReadEverything(*source), ReadEverything(**client));
}

TEST(CopyCommandTest, ARowCommittedLateIsCopiedInItsPlaceNeverSkipped) {
  const std::string url = NewDatabase("copy_late");
  auto store = OpenPg(url);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(
      store->Append(AppendRequest{"robot-1", ExpectedVersion::Any(), {JointStateEvent(0)}}).ok());
  TempDir dir;
  const std::string log_dir = dir.Sub("log");
  DoppelProcess copy({"copy", "--from", url, "--to", log_dir, "--json"});

  // A writer takes the next position and holds its transaction open...
  auto late = pgstore::PgConnection::Connect(url);
  ASSERT_TRUE(late.ok());
  ASSERT_TRUE((*late)->Exec("BEGIN; " + LegacyInsert("legacy", 0), "late writer").ok());
  // ...while others commit after it.
  for (int i = 1; i <= 10; ++i) {
    ASSERT_TRUE(
        store->Append(AppendRequest{"robot-1", ExpectedVersion::Any(), {JointStateEvent(i)}}).ok());
  }
  // The copy may not pass the open transaction's position: it covers only the first event.
  const int64_t hold_until = MonotonicNowNs() + 1'000'000'000;
  while (MonotonicNowNs() < hold_until) {
    if (auto line = copy.ReadLine(100); line && !line->empty() && (*line)[0] == '{') {
      EXPECT_LE(nlohmann::json::parse(*line)["events"].get<int>(), 1) << *line;
    }
  }
  ASSERT_TRUE((*late)->Exec("COMMIT", "late writer").ok());
  // Then everything arrives.
  bool all = false;
  const int64_t deadline = MonotonicNowNs() + 20'000'000'000;
  while (!all && MonotonicNowNs() < deadline) {
    if (auto line = copy.ReadLine(500); line && !line->empty() && (*line)[0] == '{') {
      all = nlohmann::json::parse(*line)["events"].get<int>() == 12;
    }
  }
  ASSERT_TRUE(all) << "the copy did not reach 12 events within 20 s";
  copy.Kill(SIGINT);
  EXPECT_EQ(copy.Wait(), 0);

  const std::vector<RecordedEvent> original = ReadEverything(*store);
  ASSERT_EQ(original.size(), 12u);
  EXPECT_EQ(original[1].stream(), "legacy");  // the late row's position is the second
  auto log = OpenLogReadOnly(log_dir);
  ASSERT_NE(log, nullptr);
  ExpectVerbatim(original, ReadEverything(*log));
}

TEST(CopyCommandTest, BadInputStopsWithAClearErrorAndNothingHalfWritten) {
  TempDir dir;
  const std::string log_dir = dir.Sub("log");
  // A server that is not there.
  auto unreachable = RunDoppel({"copy", "--from", "postgres:///nowhere?host=/nonexistent-dir",
                                "--to", log_dir, "--until-caught-up"});
  EXPECT_EQ(unreachable.exit_code, 1);
  EXPECT_NE(unreachable.err.find("--from postgres:///nowhere"), std::string::npos)
      << unreachable.err;
  // The same store twice: a usage error.
  EXPECT_EQ(RunDoppel({"copy", "--from", log_dir, "--to", log_dir}).exit_code, 2);

  // A row that is not a valid event for its type: the page holding it is refused whole.
  const std::string url = NewDatabase("copy_bad_row");
  auto store = OpenPg(url);
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(
        store->Append(AppendRequest{"robot-1", ExpectedVersion::Any(), {JointStateEvent(i)}}).ok());
  }
  ASSERT_TRUE(
      SharedPgServer()
          .Run("copy_bad_row", "UPDATE events SET payload = '\\x00'::bytea WHERE version = 6")
          .ok());
  auto bad =
      RunDoppel({"copy", "--from", url, "--to", log_dir, "--until-caught-up", "--batch", "4"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("version 6"), std::string::npos) << bad.err;
  {
    auto log = OpenLogReadOnly(log_dir);
    ASSERT_NE(log, nullptr);
    EXPECT_EQ(ReadEverything(*log).size(), 4u);  // the first page; the second held the bad row
    EXPECT_EQ(log->LoadCopyCheckpoint("main")->source_next, 5u);
  }
  // A database without doppel's tables.
  const std::string bare = NewDatabase("copy_bare", /*init=*/false);
  auto unprepared = RunDoppel({"copy", "--from", url, "--to", bare, "--until-caught-up"});
  EXPECT_NE(unprepared.exit_code, 0);
  EXPECT_NE(unprepared.err.find("--to postgres"), std::string::npos) << unprepared.err;
  EXPECT_NE(unprepared.err.find("pg-store init"), std::string::npos) << unprepared.err;

  // Repaired at the source, the copy resumes where it stopped.
  const auto good = JointStateEvent(6);
  ASSERT_TRUE(
      SharedPgServer()
          .Run("copy_bad_row",
               fmt::format("UPDATE events SET payload = decode('{}', 'hex') WHERE version = 6",
                           testing::Hex(good.payload)))
          .ok());
  auto resumed = RunDoppel({"copy", "--from", url, "--to", log_dir, "--until-caught-up"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.out.find("10 events copied in all; this run wrote 6"), std::string::npos)
      << resumed.out;
}

}  // namespace
}  // namespace doppel
