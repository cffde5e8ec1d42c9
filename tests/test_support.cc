#include "test_support.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "doppel/core/stale_dirs.h"
#include "doppel/eventstore/append_rules.h"
#include "doppel/schemas/payloads.h"
#include "doppel/schemas/robot_events_generated.h"

namespace doppel::testing {

namespace {

namespace fs = std::filesystem;

constexpr std::string_view kTempPrefix = "doppel-test-";

std::string TempRoot() {
  const char* base = std::getenv("TMPDIR");
  return base != nullptr && *base != '\0' ? base : "/tmp";
}

// The test program's name (crash_test), so that a listing shows whose a directory is.
std::string ProgramName() {
  std::error_code ec;
  std::string name = fs::read_symlink("/proc/self/exe", ec).filename().string();
  for (char& c : name) {
    if (std::isalnum(static_cast<unsigned char>(c)) == 0) c = '_';
  }
  return name.empty() ? "unknown" : name;
}

}  // namespace

TempDir::TempDir() {
  const std::string root = TempRoot();
  {
    // Once per folder and process: a sweep costs a listing of the temporary folder.
    static std::mutex mu;
    static std::set<std::string> swept;
    std::lock_guard lock(mu);
    if (swept.insert(root).second) RemoveStaleDirs(root, kTempPrefix);
  }
  std::string pattern = root + "/" + std::string(kTempPrefix) + ProgramName() + "-" +
                        std::to_string(::getpid()) + "-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    std::fprintf(stderr, "TempDir: mkdtemp %s: %s\n", pattern.c_str(), std::strerror(errno));
    std::abort();
  }
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string SeedTrace(uint32_t seed) {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string test = "<test>";
  if (info != nullptr) {
    std::string name = info->name();
    // gtest_discover_tests names a parameterized test by its value, not its index (Name/4 is
    // Name/7 in ctest for the fifth value, 7).
    if (info->value_param() != nullptr) {
      name = name.substr(0, name.rfind('/') + 1) + info->value_param();
    }
    test = std::string(info->test_suite_name()) + "." + name;
  }
  // The test binary is BUILD/tests/<name>: ctest runs from BUILD.
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  const std::string build = ec ? "<build dir>" : exe.parent_path().parent_path().string();
  return "seed " + std::to_string(seed) + "; replay: DOPPEL_TEST_SEED=" + std::to_string(seed) +
         " ctest --test-dir " + build + " -R '^" + test + "$'";
}

uint32_t TestSeed(uint32_t fallback) {
  uint32_t seed = fallback;
  const char* from = "fixed";
  if (const char* env = std::getenv("DOPPEL_TEST_SEED"); env != nullptr && *env != '\0') {
    char* end = nullptr;
    errno = 0;
    const unsigned long long value = std::strtoull(env, &end, 0);  // NOLINT(runtime/int)
    if (*end != '\0' || errno != 0 || value > UINT32_MAX) {
      ADD_FAILURE() << "DOPPEL_TEST_SEED=" << env << " is not a number from 0 to 4294967295";
    } else {
      seed = static_cast<uint32_t>(value);
      from = "DOPPEL_TEST_SEED";
    }
  }
  // Printed whether the test passes or not: a flaky pass shows its seed in the log too.
  std::printf("[   SEED   ] %s (%s)\n", SeedTrace(seed).c_str(), from);
  std::fflush(stdout);
  return seed;
}

std::string JointStatePayload(const std::vector<std::string>& names,
                              const std::vector<double>& positions) {
  flatbuffers::FlatBufferBuilder fbb;
  auto n = fbb.CreateVectorOfStrings(names);
  auto p = fbb.CreateVector(positions);
  fbb.Finish(events::CreateJointStateObserved(fbb, n, p));
  return std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
}

eventstore::RecordedEvent RecordedAt(const std::string& stream, eventstore::StreamVersion version,
                                     eventstore::GlobalPosition position, TimeNs recorded_ns,
                                     const eventstore::NewEvent& event) {
  flatbuffers::FlatBufferBuilder fbb;
  eventstore::BuildEnvelope(fbb, stream, version, position, recorded_ns, event);
  auto recorded = eventstore::RecordedEvent::FromBytes(
      std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize()));
  EXPECT_TRUE(recorded.ok()) << recorded.status().ToString();
  return std::move(recorded).value();
}

std::vector<eventstore::RecordedEvent> ReadEverything(const eventstore::EventStore& store,
                                                      size_t page_size) {
  std::vector<eventstore::RecordedEvent> all;
  eventstore::GlobalPosition from = 0;
  for (int pages = 0; pages < 100'000; ++pages) {
    auto page = store.ReadAll(from, page_size);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    if (!page.ok()) break;
    EXPECT_GE(page->next, from);
    for (auto& e : page->events) all.push_back(std::move(e));
    from = page->next;
    if (page->end) break;
  }
  return all;
}

eventstore::NewEvent JointStateEvent(double position, EventId id) {
  eventstore::NewEvent e;
  e.id = id;
  e.type = "JointStateObserved";
  e.payload = JointStatePayload({"j1"}, {position});
  return e;
}

eventstore::NewEvent EventFromJson(const std::string& type, const std::string& json) {
  eventstore::NewEvent e;
  e.type = type;
  auto payload = schemas::PayloadFromJson(type, json);
  EXPECT_TRUE(payload.ok()) << payload.status().ToString();
  if (payload.ok()) e.payload = std::move(payload).value();
  e.occurred_ns = WallNowNs();
  return e;
}

std::string DoppelBinary() { return DOPPEL_BINARY; }

namespace {

// In a forked child: becomes `doppel args...`; never returns.
[[noreturn]] void ExecDoppel(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  std::string bin = DoppelBinary();
  argv.push_back(bin.data());
  std::vector<std::string> copy = args;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  // A test that dies (an assertion, a sanitizer report) takes its doppel processes with it:
  // an orphan would keep the test's output pipe open and hang ctest.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  ::execv(bin.c_str(), argv.data());
  ::_exit(127);
}

}  // namespace

CommandResult RunDoppel(const std::vector<std::string>& args) {
  TempDir io;
  const std::string out_path = io.Sub("out"), err_path = io.Sub("err");
  const pid_t pid = ::fork();
  if (pid == 0) {
    FILE* out = std::freopen(out_path.c_str(), "w", stdout);
    FILE* err = std::freopen(err_path.c_str(), "w", stderr);
    if (out == nullptr || err == nullptr) ::_exit(127);
    ExecDoppel(args);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::stringstream out, err;
  out << std::ifstream(out_path).rdbuf();
  err << std::ifstream(err_path).rdbuf();
  r.out = out.str();
  r.err = err.str();
  return r;
}

DoppelProcess::DoppelProcess(const std::vector<std::string>& args) {
  int fds[2];
  if (::pipe(fds) != 0) std::abort();
  pid_ = ::fork();
  if (pid_ == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    ::close(fds[0]);
    ::close(fds[1]);
    ExecDoppel(args);
  }
  ::close(fds[1]);
  out_fd_ = fds[0];
}

DoppelProcess::~DoppelProcess() {
  if (!waited_) {
    ::kill(pid_, SIGKILL);
    Wait();
  }
  if (out_fd_ >= 0) ::close(out_fd_);
}

std::optional<std::string> DoppelProcess::ReadLine(int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    const size_t nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{out_fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char chunk[65536];
    const ssize_t n = ::read(out_fd_, chunk, sizeof(chunk));
    if (n <= 0) return std::nullopt;  // closed
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

void DoppelProcess::Kill(int signal) { ::kill(pid_, signal); }

int DoppelProcess::Wait() {
  if (waited_) return exit_code_;
  int status = 0;
  ::waitpid(pid_, &status, 0);
  waited_ = true;
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return exit_code_;
}

StoreProcess StartStore(const std::string& data_dir, const std::string& listen,
                        const std::string& publish, const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"store", "--data",    data_dir, "--listen",
                                   listen,  "--publish", publish};
  args.insert(args.end(), extra.begin(), extra.end());
  StoreProcess store;
  store.process = std::make_unique<DoppelProcess>(args);
  auto line = store.process->ReadLine(20000);
  if (!line) {
    ADD_FAILURE() << "doppel store did not start";
    return store;
  }
  auto json = nlohmann::json::parse(*line);
  store.listen = json["listen"];
  store.publish = json["publish"];
  return store;
}

TwinProcess StartTwin(const StoreProcess& store, const std::string& partition,
                      const std::vector<std::string>& extra) {
  std::vector<std::string> args = {
      "twin",           "--store",           store.listen,  "--publish", store.publish,
      "--twin-publish", "tcp://127.0.0.1:0", "--partition", partition};
  args.insert(args.end(), extra.begin(), extra.end());
  TwinProcess twin;
  twin.process = std::make_unique<DoppelProcess>(args);
  auto line = twin.process->ReadLine(20000);
  if (!line) {
    ADD_FAILURE() << "doppel twin did not start";
    return twin;
  }
  twin.publish = nlohmann::json::parse(*line)["twin_publish"];
  return twin;
}

}  // namespace doppel::testing
