// Shared helpers for doppel tests: temporary directories, payload builders, and running
// the doppel binary as a real child process.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "doppel/eventstore/event_store.h"
#include "doppel/eventstore/types.h"

namespace doppel::testing {

// A fresh directory $TMPDIR/doppel-test-<program>-<pid>-XXXXXX (TMPDIR defaults to /tmp),
// removed with everything in it on destruction, so also when an assertion ends the test
// early. A process that is killed (a ctest timeout sends SIGKILL) or crashes cannot clean
// up: the first TempDir of every later test process in the same folder removes the
// doppel-test-* directories whose process is gone, which the pid in the name tells.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// The seed of a randomized test. DOPPEL_TEST_SEED, when set, replaces `fallback` so that a
// failure can be replayed or other cases explored; otherwise the fixed `fallback`, never a
// random one, so that the same commit runs the same cases every time. Prints the seed and
// the command that replays the current test.
uint32_t TestSeed(uint32_t fallback);

// "seed N; replay: DOPPEL_TEST_SEED=N ctest --test-dir BUILD -R '^Suite.Test$'" for the
// current test, for SCOPED_TRACE: a failure then names the seed it needs to happen again.
std::string SeedTrace(uint32_t seed);

// A JointStateObserved payload with one position per joint.
std::string JointStatePayload(const std::vector<std::string>& names,
                              const std::vector<double>& positions);
eventstore::NewEvent JointStateEvent(double position, EventId id = EventId::Random());
// `event` as a store would have recorded it at (stream, version, position, recorded_ns): a
// source's event for tests of copies (a failure to verify fails the test).
eventstore::RecordedEvent RecordedAt(const std::string& stream, eventstore::StreamVersion version,
                                     eventstore::GlobalPosition position, TimeNs recorded_ns,
                                     const eventstore::NewEvent& event);
// Every event of `store`'s $all, in pages of `page_size` (a failed read fails the test).
std::vector<eventstore::RecordedEvent> ReadEverything(const eventstore::EventStore& store,
                                                      size_t page_size = 1000);
// An event of `type` whose payload is `json` through the schema (a parse failure fails the
// test), occurring now.
eventstore::NewEvent EventFromJson(const std::string& type, const std::string& json);

// An event's payload as its root table T, read from an 8-aligned copy: a payload inside its
// envelope is only 4-aligned, and FlatBuffers reads doubles in place (UBSan: misaligned load).
template <typename T>
class PayloadOf {
 public:
  explicit PayloadOf(const eventstore::RecordedEvent& event)
      : bytes_((event.payload().size() + 7) / 8) {
    std::memcpy(bytes_.data(), event.payload().data(), event.payload().size());
  }
  const T* operator->() const { return flatbuffers::GetRoot<T>(bytes_.data()); }
  const T* get() const { return operator->(); }

 private:
  std::vector<uint64_t> bytes_;
};

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs the doppel binary (path from the DOPPEL_BINARY compile definition) with `args`,
// waits, and captures stdout and stderr.
CommandResult RunDoppel(const std::vector<std::string>& args);
std::string DoppelBinary();

// A doppel child process whose stdout is read line by line. Killed (SIGKILL) on destruction.
class DoppelProcess {
 public:
  explicit DoppelProcess(const std::vector<std::string>& args);
  ~DoppelProcess();
  DoppelProcess(const DoppelProcess&) = delete;
  DoppelProcess& operator=(const DoppelProcess&) = delete;

  // The next whole line of stdout, or nullopt if none came within `timeout_ms`.
  std::optional<std::string> ReadLine(int timeout_ms);
  void Kill(int signal);
  // Waits for exit; returns the exit code (128 + signal when killed).
  int Wait();
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string buffer_;
  bool waited_ = false;
  int exit_code_ = -1;
};

// A `doppel store` child process on loopback with ports chosen by the system.
struct StoreProcess {
  std::unique_ptr<DoppelProcess> process;
  std::string listen;
  std::string publish;
};
// Starts `doppel store --data DIR` on the given endpoints (default: free loopback ports) plus
// any extra flags, and waits until it prints its endpoints.
StoreProcess StartStore(const std::string& data_dir,
                        const std::string& listen = "tcp://127.0.0.1:0",
                        const std::string& publish = "tcp://127.0.0.1:0",
                        const std::vector<std::string>& extra = {});

// A `doppel twin` child process following `store`, publishing TwinState on a free port.
struct TwinProcess {
  std::unique_ptr<DoppelProcess> process;
  std::string publish;
};
TwinProcess StartTwin(const StoreProcess& store, const std::string& partition = "0/1",
                      const std::vector<std::string>& extra = {});

}  // namespace doppel::testing
