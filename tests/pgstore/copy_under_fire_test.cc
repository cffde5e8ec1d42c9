// doppel copy under fire: writers append to PostgreSQL (50 robots; every acknowledged event id
// goes to a ledger file, fsync'd before it counts) while the copier (PostgreSQL -> embedded
// log) is SIGKILLed at random moments twenty times and started again, and PostgreSQL itself is
// stopped once with an immediate shutdown (pg_ctl stop -m immediate) and started again.
// Afterwards the destination holds every ledger id exactly once, each stream dense and in the
// source's order, payload bytes identical (per-stream hashes agree), and doppel verify is
// clean on both sides.
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "doppel/eventstore/event_log.h"
#include "doppel/pgstore/pg_event_store.h"
#include "pg_server.h"
#include "test_support.h"

namespace doppel {
namespace {

using eventstore::AppendRequest;
using eventstore::ExpectedVersion;
using eventstore::RecordedEvent;
using testing::DoppelProcess;
using testing::JointStateEvent;
using testing::PgServer;
using testing::ReadEverything;
using testing::RunDoppel;
using testing::TempDir;

constexpr int kRobots = 50;
constexpr int kWriters = 5;
constexpr int kKills = 20;

// Acknowledged event ids, one per line, each line fsync'd before the append counts.
class Ledger {
 public:
  explicit Ledger(const std::string& path)
      : path_(path), fd_(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644)) {}
  ~Ledger() { ::close(fd_); }
  void Record(const std::vector<EventId>& ids) {
    std::string lines;
    for (const EventId& id : ids) lines += id.ToString() + "\n";
    std::lock_guard lock(mu_);
    ASSERT_EQ(::write(fd_, lines.data(), lines.size()), static_cast<ssize_t>(lines.size()));
    ASSERT_EQ(::fdatasync(fd_), 0);
  }
  std::vector<std::string> Read() const {
    std::ifstream in(path_);
    std::vector<std::string> ids;
    for (std::string line; std::getline(in, line);) ids.push_back(line);
    return ids;
  }

 private:
  std::string path_;
  int fd_;
  std::mutex mu_;
};

// Per stream: its versions in order and a hash of its payload bytes (FNV-1a).
struct StreamDigest {
  std::vector<uint64_t> versions;
  uint64_t hash = 1469598103934665603ULL;
  bool operator==(const StreamDigest&) const = default;
};
std::map<std::string, StreamDigest> Digest(const std::vector<RecordedEvent>& events) {
  std::map<std::string, StreamDigest> streams;
  for (const RecordedEvent& e : events) {
    StreamDigest& d = streams[std::string(e.stream())];
    d.versions.push_back(e.version());
    for (unsigned char c : e.payload()) d.hash = (d.hash ^ c) * 1099511628211ULL;
  }
  return streams;
}

TEST(CopyUnderFireTest, KilledCopiesAndACrashedServerLoseNothingAndWriteNothingTwice) {
  const uint32_t seed = testing::TestSeed(20261207);
  SCOPED_TRACE(testing::SeedTrace(seed));
  std::mt19937 rng(seed);
  auto server = PgServer::Start();
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  auto created = (*server)->CreateDatabase("fleet");
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  const std::string url = *created;
  ASSERT_TRUE(pgstore::PgEventStore::InitSchema(url).ok());
  auto source = pgstore::PgEventStore::Open(url);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  TempDir dir;
  const std::string log_dir = dir.Sub("log");
  Ledger ledger(dir.Sub("ledger"));

  // Writers: each owns ten robots and appends batches of 1..3 events, retrying with the same
  // ids while PostgreSQL is down (an append is idempotent by id).
  std::atomic<bool> writing{true};
  std::atomic<int> acknowledged{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      std::mt19937 local(seed + w);
      for (int n = 0; writing.load(); ++n) {
        const int robot = w + kWriters * static_cast<int>(local() % (kRobots / kWriters));
        AppendRequest request{fmt::format("robot-{}", robot), ExpectedVersion::Any(), {}};
        const int count = 1 + static_cast<int>(local() % 3);
        for (int k = 0; k < count; ++k) request.events.push_back(JointStateEvent(n + k));
        for (int attempt = 0;; ++attempt) {
          auto appended = (*source)->Append(request);
          if (appended.ok()) {
            ledger.Record(appended->ids);
            acknowledged += count;
            break;
          }
          if (!writing.load() && attempt > 100) return;  // gave up: never acknowledged
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
      }
    });
  }

  // The copier, killed at random moments and started again; PostgreSQL crashed halfway.
  auto start_copy = [&] {
    return std::make_unique<DoppelProcess>(std::vector<std::string>{
        "copy", "--from", url, "--to", log_dir, "--batch", std::to_string(20 + rng() % 80)});
  };
  for (int kill = 0; kill < kKills; ++kill) {
    auto copy = start_copy();
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 400));
    if (kill == kKills / 2) {
      // Under the running copier and writers: they wait for the server and go on.
      ASSERT_TRUE((*server)->Crash().ok());
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      ASSERT_TRUE((*server)->StartServer().ok());
      std::this_thread::sleep_for(std::chrono::milliseconds(1000));
    }
    copy->Kill(SIGKILL);
    copy->Wait();
  }
  writing = false;
  for (auto& t : writers) t.join();
  ASSERT_GT(acknowledged.load(), 200) << "the writers hardly wrote: the test proves little";

  // A last copy to the end, then the checks.
  auto last = RunDoppel({"copy", "--from", url, "--to", log_dir, "--until-caught-up"});
  ASSERT_EQ(last.exit_code, 0) << last.err;
  const std::vector<RecordedEvent> original = ReadEverything(**source);
  std::vector<RecordedEvent> copied;
  {
    eventstore::EventLogOptions options;
    options.read_only = true;
    auto log = eventstore::EventLog::Open(log_dir, options);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    copied = ReadEverything(**log);
  }
  std::set<std::string> copied_ids;
  for (const RecordedEvent& e : copied) {
    EXPECT_TRUE(copied_ids.insert(e.id().ToString()).second)
        << "copied twice: " << e.id().ToString();
  }
  const std::vector<std::string> acked = ledger.Read();
  EXPECT_EQ(static_cast<int>(acked.size()), acknowledged.load());
  for (const std::string& id : acked) EXPECT_TRUE(copied_ids.count(id)) << "lost: " << id;
  ASSERT_EQ(copied.size(), original.size());
  for (size_t i = 0; i < copied.size(); ++i) {
    ASSERT_EQ(copied[i].id(), original[i].id()) << "order differs at " << i;
  }
  const auto source_digest = Digest(original);
  const auto copy_digest = Digest(copied);
  EXPECT_EQ(copy_digest.size(), static_cast<size_t>(kRobots));
  for (const auto& [stream, digest] : copy_digest) {
    for (size_t v = 0; v < digest.versions.size(); ++v) {
      ASSERT_EQ(digest.versions[v], v) << stream << " is not dense";
    }
    EXPECT_TRUE(digest == source_digest.at(stream)) << stream << " differs from the source";
  }
  for (const auto& args : {std::vector<std::string>{"verify", "--data", log_dir},
                           std::vector<std::string>{"verify", "--store", url}}) {
    auto verify = RunDoppel(args);
    EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  }
}

}  // namespace
}  // namespace doppel
