// What copies change in the embedded log (the destination contract itself is in
// tests/pgstore/copy_contract_test.cc): copied events keep source times that go back, and the
// time index still finds the first position recorded at or after a time, Verify still checks
// it, a reopened log still never records an append before the latest time, and a copied batch
// survives a reopen with its checkpoint.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "doppel/eventstore/append_rules.h"
#include "doppel/eventstore/event_log.h"
#include "test_support.h"

namespace doppel::eventstore {
namespace {

using testing::JointStateEvent;
using testing::TempDir;

RecordedEvent SourceEvent(const std::string& stream, StreamVersion version, GlobalPosition position,
                          TimeNs recorded_ns) {
  return testing::RecordedAt(stream, version, position, recorded_ns, JointStateEvent(1.0));
}

TEST(EventLogCopyTest, SourceTimesThatGoBackKeepTheTimeIndexRightAcrossAReopen) {
  TempDir dir;
  TimeNs now = 10;  // the log's own clock is far behind the copied times
  EventLogOptions options;
  options.wall_clock = [&now] { return now; };
  {
    auto log = EventLog::Open(dir.path(), options).value();
    // Positions 0..4 here, recorded 3000, 1000, 2000, 4000, 3500.
    std::vector<RecordedEvent> source = {
        SourceEvent("robot-a", 0, 0, 3'000), SourceEvent("robot-b", 0, 1, 1'000),
        SourceEvent("robot-a", 1, 2, 2'000), SourceEvent("robot-b", 1, 3, 4'000),
        SourceEvent("robot-c", 0, 4, 3'500)};
    auto copied = log->AppendCopied(CopiedBatch{"c", 0, source, 5});
    ASSERT_TRUE(copied.ok()) << copied.status().ToString();
    // The first position recorded at or after t.
    EXPECT_EQ(*log->PositionAtTime(500), 0u);
    EXPECT_EQ(*log->PositionAtTime(1'500), 0u);
    EXPECT_EQ(*log->PositionAtTime(3'000), 0u);
    EXPECT_EQ(*log->PositionAtTime(3'001), 3u);
    EXPECT_EQ(*log->PositionAtTime(4'000), 3u);
    EXPECT_EQ(*log->PositionAtTime(4'001), 5u);
    // A read up to a time stops at the first event recorded after it: a prefix of the log.
    auto until = log->ReadAll(0, 100, 3'000);
    ASSERT_TRUE(until.ok());
    EXPECT_EQ(until->events.size(), 3u);
    EXPECT_EQ(until->next, 3u);
    const VerifyReport report = log->Verify();
    EXPECT_TRUE(report.ok()) << (report.problems.empty() ? "" : report.problems[0]);
  }
  auto log = EventLog::Open(dir.path(), options).value();
  EXPECT_EQ(log->LoadCopyCheckpoint("c")->source_next, 5u);
  EXPECT_EQ(log->LoadCopyCheckpoint("c")->events, 5u);
  // An append after the reopen is recorded no earlier than the latest copied time, though the
  // last event (3500) is earlier than that and the clock says 10.
  auto appended =
      log->Append(AppendRequest{"robot-c", ExpectedVersion::Exact(0), {JointStateEvent(2)}});
  ASSERT_TRUE(appended.ok()) << appended.status().ToString();
  EXPECT_EQ(appended->recorded_ns, 4'000);
  EXPECT_EQ(appended->first_position, 5u);
  EXPECT_EQ(*log->PositionAtTime(4'000), 3u);
  const VerifyReport report = log->Verify();
  EXPECT_TRUE(report.ok()) << (report.problems.empty() ? "" : report.problems[0]);
  EXPECT_EQ(report.events, 6u);
}

TEST(EventLogCopyTest, CopiedEventsReachTheCommitListenerInOrder) {
  TempDir dir;
  auto log = EventLog::Open(dir.path()).value();
  std::vector<GlobalPosition> published;
  log->SetCommitListener([&](std::span<const std::string> envelopes) {
    for (const std::string& e : envelopes) {
      published.push_back(RecordedEvent::FromBytes(e).value().position());
    }
  });
  ASSERT_TRUE(
      log->Append(AppendRequest{"robot-a", ExpectedVersion::Any(), {JointStateEvent(1)}}).ok());
  auto copied = log->AppendCopied(
      CopiedBatch{"c", 0, {SourceEvent("robot-x", 4, 7, 5), SourceEvent("robot-x", 5, 9, 6)}, 10});
  ASSERT_TRUE(copied.ok()) << copied.status().ToString();
  EXPECT_EQ(published, (std::vector<GlobalPosition>{0, 1, 2}));
  EXPECT_EQ(*log->CopiedPosition("c", 8), 2u);
}

}  // namespace
}  // namespace doppel::eventstore
