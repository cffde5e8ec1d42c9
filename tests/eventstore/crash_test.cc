// Crash test with real processes: a child `doppel bench append` appends from many threads
// and logs each acknowledged event; the parent kills it with SIGKILL at random moments,
// reopens the log and proves every acknowledged event is at its acknowledged position,
// positions are dense, nothing is duplicated, and verify passes.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>
#include <unordered_set>

#include "doppel/eventstore/event_log.h"
#include "test_support.h"

namespace doppel::eventstore {
namespace {

struct Ack {
  EventId id;
  std::string stream;
  StreamVersion version;
  GlobalPosition position;
};

// Complete lines only: SIGKILL can cut the last line short.
std::vector<Ack> ReadAcks(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  std::vector<Ack> acks;
  size_t start = 0;
  while (true) {
    const size_t end = text.find('\n', start);
    if (end == std::string::npos) break;
    std::istringstream line(text.substr(start, end - start));
    std::string id, stream;
    Ack ack;
    line >> id >> ack.stream >> ack.version >> ack.position;
    auto parsed = EventId::Parse(id);
    EXPECT_TRUE(parsed.ok()) << "ack line: " << text.substr(start, end - start);
    if (parsed.ok()) {
      ack.id = *parsed;
      acks.push_back(ack);
    }
    start = end + 1;
  }
  return acks;
}

pid_t SpawnAppender(const std::string& data, const std::string& ack_log, int cycle, int batch) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const std::string bin = testing::DoppelBinary();
    const std::string batch_text = std::to_string(batch);
    const std::string prefix = "crash-" + std::to_string(cycle);
    ::setenv("DOPPEL_LOG", "warn", 1);
    // A killed test takes its appender with it: an orphan would go on writing into the test's
    // directory while a later test removes it.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::execl(bin.c_str(), bin.c_str(), "bench", "append", "--data", data.c_str(), "--clients", "16",
            "--batch", batch_text.c_str(), "--payload-bytes", "200", "--duration", "60",
            "--ack-log", ack_log.c_str(), "--stream-prefix", prefix.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

TEST(CrashTest, AcknowledgedEventsSurviveSigkill) {
  testing::TempDir dir;
  const std::string data = dir.Sub("log");
  const std::string ack_log = dir.Sub("acks");
  // When to kill: a fixed seed, so a failure comes with the seed that replays its schedule
  // (thread timing still varies from run to run).
  const uint32_t seed = testing::TestSeed(20251123);
  SCOPED_TRACE(testing::SeedTrace(seed));
  std::mt19937 rng(seed);
  constexpr int kCycles = 12;
  size_t acked_before = 0;
  std::uintmax_t ack_bytes_before = 0;
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    const pid_t child = SpawnAppender(data, ack_log, cycle, 1 + cycle % 3 * 4);
    ASSERT_GT(child, 0);
    // Wait until the child is acknowledging appends, then kill it at a random moment
    // while it is under load.
    const auto started = std::chrono::steady_clock::now();
    auto acking = [&] {
      std::error_code ec;
      const auto size = std::filesystem::file_size(ack_log, ec);
      return !ec && size > ack_bytes_before;
    };
    while (!acking() && std::chrono::steady_clock::now() - started < std::chrono::seconds(30)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 500));
    ASSERT_EQ(::kill(child, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status))
        << "the appender ended by itself (exit " << WEXITSTATUS(status) << ") in cycle " << cycle;

    const std::vector<Ack> acks = ReadAcks(ack_log);
    ASSERT_GT(acks.size(), acked_before) << "no progress in cycle " << cycle;
    acked_before = acks.size();
    ack_bytes_before = std::filesystem::file_size(ack_log);

    auto opened = EventLog::Open(data);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    const EventLog& log = **opened;
    // One pass over $all: positions are dense and no id appears twice.
    struct Stored {
      EventId id;
      std::string stream;
      StreamVersion version;
    };
    std::vector<Stored> stored;
    std::unordered_set<EventId, EventIdHash> ids;
    GlobalPosition expect = 0;
    while (true) {
      auto page = log.ReadAll(expect, 4096);
      ASSERT_TRUE(page.ok()) << page.status().ToString();
      for (const RecordedEvent& e : page->events) {
        ASSERT_EQ(e.position(), expect);
        ASSERT_TRUE(ids.insert(e.id()).second) << "duplicate id at " << e.position();
        stored.push_back({e.id(), std::string(e.stream()), e.version()});
        ++expect;
      }
      if (page->end) break;
    }
    // Every acknowledged event is where the ack said, with its id, stream and version.
    for (const Ack& ack : acks) {
      ASSERT_LT(ack.position, stored.size()) << "acknowledged position " << ack.position << " lost";
      const Stored& s = stored[ack.position];
      ASSERT_EQ(s.id, ack.id) << "position " << ack.position;
      ASSERT_EQ(s.stream, ack.stream);
      ASSERT_EQ(s.version, ack.version);
    }
    // And the stream index agrees for a sample of them.
    for (size_t i = 0; i < acks.size(); i += 97) {
      auto page = log.ReadStream(acks[i].stream, acks[i].version, Direction::kForward, 1);
      ASSERT_TRUE(page.ok());
      ASSERT_EQ(page->events.size(), 1u);
      ASSERT_EQ(page->events[0].position(), acks[i].position);
    }
    ASSERT_EQ(expect, log.NextPosition());
    ASSERT_GE(expect, acks.size());
    const VerifyReport report = log.Verify();
    ASSERT_TRUE(report.ok()) << report.problems.front();
  }
  RecordProperty("acknowledged_events", static_cast<int>(acked_before));
}

}  // namespace
}  // namespace doppel::eventstore
