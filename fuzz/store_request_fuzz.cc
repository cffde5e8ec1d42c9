// Fuzzes the store protocol's request side as the server runs it: a frame from the network is
// checked (CheckRequestFrame), an append is decoded (DecodeAppend) and goes through
// EventLog::Append, anything else runs through ExecuteRequest. Every response must verify as
// a StoreResponse that echoes the request id.
//
// One EventLog per process, in a fresh directory (tmpfs when there is one), reused across
// inputs so that reads find what earlier appends wrote. A crash may therefore depend on
// earlier inputs; libFuzzer's reproducer replays just the last one.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "doppel/eventstore/event_log.h"
#include "fuzz_inputs.h"
#include "protocol.h"
#include "store_request.h"

namespace {

using doppel::eventstore::EventLog;
namespace protocol = doppel::eventstore::protocol;
namespace fs = std::filesystem;

// The log is recreated past this many events: VerifyLogRequest reads the whole log, and a
// log that grows for the length of a long run would make it ever slower.
constexpr uint64_t kMaxLogEvents = 20000;

struct FuzzLog {
  std::string dir;
  std::unique_ptr<EventLog> log;

  ~FuzzLog() {
    log.reset();
    std::error_code ec;
    fs::remove_all(fs::path(dir).parent_path(), ec);
  }

  void Open() {
    log.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
    doppel::eventstore::EventLogOptions options;
    // Durability is not under test; an fsync per append would cost most of the run.
    options.sync = false;
    auto opened = EventLog::Open(dir, options);
    DOPPEL_FUZZ_CHECK(opened.ok(), "cannot open a log in %s: %s", dir.c_str(),
                      opened.status().ToString().c_str());
    log = std::move(opened).value();
  }
};

FuzzLog* g_log = nullptr;

void RemoveLog() { delete g_log; }

// DOPPEL_FUZZ_TMPDIR, else tmpfs, else TMPDIR, else /tmp.
std::string TempRoot() {
  if (const char* dir = std::getenv("DOPPEL_FUZZ_TMPDIR")) return dir;
  if (fs::is_directory("/dev/shm")) return "/dev/shm";
  const char* tmp = std::getenv("TMPDIR");
  return tmp != nullptr ? tmp : "/tmp";
}

constexpr std::string_view kDirPrefix = "doppel-fuzz-store-";

// A run that crashed (or was killed) leaves its log behind; its directory is named after its
// process id, so later runs remove those whose process is gone.
void RemoveStaleLogs(const std::string& root) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(kDirPrefix, 0) != 0) continue;
    const std::string pid = name.substr(kDirPrefix.size());
    if (!fs::exists("/proc/" + pid)) fs::remove_all(entry.path(), ec);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const std::string root = TempRoot();
  RemoveStaleLogs(root);
  const std::string dir = root + "/" + std::string(kDirPrefix) + std::to_string(getpid());
  std::error_code ec;
  fs::create_directories(dir, ec);
  DOPPEL_FUZZ_CHECK(!ec, "cannot create %s: %s", dir.c_str(), ec.message().c_str());
  g_log = new FuzzLog{dir + "/log", nullptr};
  g_log->Open();
  std::atexit(RemoveLog);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (g_log->log->NextPosition() > kMaxLogEvents) g_log->Open();
  EventLog& log = *g_log->log;

  // The server hands CheckRequestFrame 8-aligned bytes (AlignedBytes); so do we.
  std::vector<uint64_t> aligned((size + 7) / 8);
  if (size > 0) std::memcpy(aligned.data(), data, size);
  const auto* bytes = reinterpret_cast<const uint8_t*>(aligned.data());

  const doppel::fb::StoreRequest* request = nullptr;
  uint64_t request_id = 0;
  if (!protocol::CheckRequestFrame(bytes, size, &request, &request_id).ok()) {
    DOPPEL_FUZZ_CHECK(request == nullptr, "a refused frame left a request");
    return 0;
  }
  DOPPEL_FUZZ_CHECK(request != nullptr, "an accepted frame has no request");
  DOPPEL_FUZZ_CHECK(request->request_id() == request_id, "request id not reported");

  std::string response;
  if (request->request_type() == doppel::fb::Request::AppendRequest) {
    auto append = protocol::DecodeAppend(*request->request_as_AppendRequest());
    if (!append.ok()) {
      response = protocol::ErrorBytes(request_id, append.status());
    } else {
      const size_t count = append->events.size();
      auto result = log.Append(std::move(append).value());
      if (result.ok()) {
        DOPPEL_FUZZ_CHECK(result->ids.size() == count, "%zu ids for %zu events", result->ids.size(),
                          count);
        // A new batch is contiguous; a duplicate reports where its events were stored before.
        DOPPEL_FUZZ_CHECK(
            result->duplicate || result->last_position - result->first_position + 1 == count,
            "positions %llu..%llu for %zu events",
            static_cast<unsigned long long>(result->first_position),
            static_cast<unsigned long long>(result->last_position), count);
      }
      response = result.ok() ? protocol::AppendResponseBytes(request_id, *result)
                             : protocol::ErrorBytes(request_id, result.status());
    }
  } else {
    response = protocol::ExecuteRequest(log, *request);
  }

  // Clients verify what they receive; a response the server makes must pass.
  std::vector<uint64_t> response_aligned((response.size() + 7) / 8);
  std::memcpy(response_aligned.data(), response.data(), response.size());
  auto verified = protocol::VerifyResponse(
      std::string_view(reinterpret_cast<const char*>(response_aligned.data()), response.size()));
  DOPPEL_FUZZ_CHECK(verified.ok(), "response does not verify: %s",
                    verified.status().ToString().c_str());
  DOPPEL_FUZZ_CHECK((*verified)->request_id() == request_id, "response id %llu for request %llu",
                    static_cast<unsigned long long>((*verified)->request_id()),
                    static_cast<unsigned long long>(request_id));
  return 0;
}
