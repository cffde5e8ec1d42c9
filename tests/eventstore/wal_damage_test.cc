// Damage to RocksDB's write-ahead log after acknowledged appends: never a silently shorter
// history. Opening refuses and names what is missing, verify reports it, and an operator can
// accept the loss explicitly; a normal reopen is unaffected.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "doppel/eventstore/event_log.h"
#include "test_support.h"

namespace doppel::eventstore {
namespace {

using testing::JointStateEvent;
using testing::RunDoppel;
using testing::TempDir;

constexpr int kEvents = 400;

// Appends kEvents acknowledged events (sync) to robot-1 in batches of 4, then closes.
void WriteAcknowledgedEvents(const std::string& dir) {
  auto log = EventLog::Open(dir);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  for (int i = 0; i < kEvents / 4; ++i) {
    AppendRequest r{"robot-1", ExpectedVersion::Any(), {}};
    for (int j = 0; j < 4; ++j) r.events.push_back(JointStateEvent(i * 4 + j));
    ASSERT_TRUE((*log)->Append(std::move(r)).ok());
  }
}

// The newest (live) WAL file: RocksDB names them with increasing numbers.
std::string LiveWal(const std::string& dir) {
  std::string newest;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string p = e.path().string();
    if (e.path().extension() == ".log" && (newest.empty() || p > newest)) newest = p;
  }
  return newest;
}

void FlipMiddle(const std::string& path) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  const auto size = std::filesystem::file_size(path);
  f.seekg(static_cast<std::streamoff>(size / 2));
  char bytes[64];
  f.read(bytes, sizeof(bytes));
  for (char& b : bytes) b = static_cast<char>(~b);
  f.seekp(static_cast<std::streamoff>(size / 2));
  f.write(bytes, sizeof(bytes));
}

void TruncateToHalf(const std::string& path) {
  std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
}

// The checks shared by both kinds of damage.
void ExpectLossRefusedReportedThenAccepted(const std::string& dir) {
  // Opening, read-write or read-only, refuses and names the positions.
  for (bool read_only : {false, true}) {
    EventLogOptions options;
    options.read_only = read_only;
    auto log = EventLog::Open(dir, options);
    ASSERT_FALSE(log.ok()) << "read_only=" << read_only << " served a damaged log";
    EXPECT_EQ(log.status().code(), Status::Code::kCorruption);
    EXPECT_NE(log.status().message().find("acknowledged"), std::string::npos)
        << log.status().message();
    EXPECT_NE(log.status().message().find(std::to_string(kEvents - 1)), std::string::npos)
        << log.status().message();
  }
  // Verify reports it (and leaves the log as it was).
  {
    EventLogOptions options;
    options.read_only = true;
    options.lost_events = LostEvents::kReport;
    auto log = EventLog::Open(dir, options);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    const VerifyReport report = (*log)->Verify();
    ASSERT_FALSE(report.ok());
    EXPECT_NE(report.problems[0].find("acknowledged"), std::string::npos) << report.problems[0];
  }
  ASSERT_FALSE(EventLog::Open(dir).ok());
  // The operator accepts the loss: the log opens, the loss is on record, positions stay unique.
  GlobalPosition recovered = 0;
  {
    EventLogOptions options;
    options.lost_events = LostEvents::kAccept;
    auto log = EventLog::Open(dir, options);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    const VerifyReport report = (*log)->Verify();
    EXPECT_TRUE(report.ok()) << report.problems.front();
    EXPECT_GT(report.lost, 0u);
    EXPECT_LT(report.events, static_cast<uint64_t>(kEvents));
    EXPECT_EQ(report.events + report.lost, static_cast<uint64_t>(kEvents));
    recovered = report.events;
    EXPECT_EQ((*log)->NextPosition(), static_cast<uint64_t>(kEvents));
  }
  auto log = EventLog::Open(dir);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  auto next = (*log)->Append({"robot-1", ExpectedVersion::Any(), {JointStateEvent(1)}});
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(next->first_position, static_cast<uint64_t>(kEvents));  // lost positions unused
  EXPECT_EQ(next->first_version, recovered);
  const VerifyReport report = (*log)->Verify();
  EXPECT_TRUE(report.ok()) << report.problems.front();
}

TEST(WalDamageTest, FlippedBytesInTheLiveWalAreRefusedNotDropped) {
  TempDir dir;
  WriteAcknowledgedEvents(dir.path());
  const std::string wal = LiveWal(dir.path());
  ASSERT_FALSE(wal.empty());
  FlipMiddle(wal);
  ExpectLossRefusedReportedThenAccepted(dir.path());
}

TEST(WalDamageTest, TruncatedLiveWalIsRefusedNotDropped) {
  TempDir dir;
  WriteAcknowledgedEvents(dir.path());
  const std::string wal = LiveWal(dir.path());
  ASSERT_FALSE(wal.empty());
  TruncateToHalf(wal);
  ExpectLossRefusedReportedThenAccepted(dir.path());
}

TEST(WalDamageTest, TornTailOfUnacknowledgedWritesStillOpens) {
  TempDir dir;
  WriteAcknowledgedEvents(dir.path());
  // A crash mid-write leaves a partial record after the last acknowledged one.
  const std::string wal = LiveWal(dir.path());
  {
    std::ofstream f(wal, std::ios::app | std::ios::binary);
    const char partial[] = {'\x12', '\x34', '\x56', '\x78', '\x40', '\x00', '\x01'};
    f.write(partial, sizeof(partial));
  }
  auto log = EventLog::Open(dir.path());
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  EXPECT_EQ((*log)->NextPosition(), static_cast<uint64_t>(kEvents));
  EXPECT_TRUE((*log)->Verify().ok());
}

TEST(WalDamageTest, CliVerifyReportsLossAndAcceptDataLossRecordsIt) {
  TempDir dir;
  WriteAcknowledgedEvents(dir.path());
  FlipMiddle(LiveWal(dir.path()));
  auto read = RunDoppel({"read", "--data", dir.path()});
  EXPECT_EQ(read.exit_code, 1);
  EXPECT_NE(read.err.find("acknowledged"), std::string::npos) << read.err;
  auto verify = RunDoppel({"verify", "--data", dir.path()});
  EXPECT_EQ(verify.exit_code, 5) << verify.out << verify.err;
  EXPECT_NE(verify.out.find("problem: acknowledged events are missing"), std::string::npos)
      << verify.out;
  auto accept = RunDoppel({"verify", "--data", dir.path(), "--accept-data-loss"});
  EXPECT_EQ(accept.exit_code, 0) << accept.out << accept.err;
  EXPECT_NE(accept.out.find("accepted as lost"), std::string::npos) << accept.out;
  EXPECT_EQ(RunDoppel({"verify", "--data", dir.path()}).exit_code, 0);
  EXPECT_EQ(RunDoppel({"read", "--data", dir.path()}).exit_code, 0);
}

}  // namespace
}  // namespace doppel::eventstore
