// Fuzzes the store protocol's request side as the server runs it, over a client's session: each
// frame from the network is checked (CheckRequestFrame), an append is decoded (DecodeAppend)
// and goes through EventLog::Append, anything else runs through ExecuteRequest. Every
// response must verify as a StoreResponse that echoes the request id.
//
// Each input is a whole session (fuzz_inputs.h) against a fresh, empty log held in memory
// (RocksDB's in-memory Env): later requests read what earlier ones wrote, nothing carries
// over from one input to the next, and nothing is written to disk, so a saved input
// reproduces its crash alone and a killed run leaves nothing behind. The log's clock and the
// ids it gives events sent without one count up from fixed values for each input, so an input
// takes the same paths on every run and every day (retention compares recorded times with now).
#include <rocksdb/env.h>

#include <atomic>
#include <cstdint>
#include <cstring>
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

// One frame as the server handles it; the response must verify.
void Serve(EventLog& log, const std::string& frame) {
  // The server hands CheckRequestFrame 8-aligned bytes (AlignedBytes); so do we.
  std::vector<uint64_t> aligned((frame.size() + 7) / 8);
  if (!frame.empty()) std::memcpy(aligned.data(), frame.data(), frame.size());
  const auto* bytes = reinterpret_cast<const uint8_t*>(aligned.data());

  const doppel::fb::StoreRequest* request = nullptr;
  uint64_t request_id = 0;
  if (!protocol::CheckRequestFrame(bytes, frame.size(), &request, &request_id).ok()) {
    DOPPEL_FUZZ_CHECK(request == nullptr, "a refused frame left a request");
    return;
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
}

constexpr char kDir[] = "/doppel-fuzz/log";

// Every so many frames the log's memtables are written to table files, so later requests
// also read from them.
constexpr size_t kFramesPerFlush = 4;

// The log's time: 2026-01-01T00:00:00Z, then one millisecond later at each reading.
constexpr doppel::TimeNs kStartNs = 1'767'225'600'000'000'000;
std::atomic<int64_t> clock_readings{0};
// The ids the log gives events sent without one: 1, 2, 3, ... (high word fixed).
std::atomic<uint64_t> ids_given{0};

doppel::eventstore::EventLogOptions LogOptions(rocksdb::Env* env) {
  doppel::eventstore::EventLogOptions options;
  options.env = env;
  options.wall_clock = [] { return kStartNs + clock_readings.fetch_add(1) * 1'000'000; };
  options.new_event_id = [] { return doppel::EventId(0xD0BBE1F0ULL << 32, ++ids_given); };
  // The sync point's timer must not fire in some runs and not in others.
  options.sync_point_interval_ms = 3'600'000;
  // A sync of an in-memory file costs nothing, so the log runs as in production.
  options.sync = true;
  // A log per input must open fast: the defaults allocate and clear megabytes of hash
  // buckets and bloom filters.
  options.memtable_bytes = 256 << 10;
  // Memtables go to table files where the session says (kFramesPerFlush), never when a
  // background thread decides: which branches an input reaches must not depend on when a
  // flush ran.
  options.flush_only_on_request = true;
  return options;
}

// The files of an empty log, made once. A log per input starts from a copy: opening one is
// several times faster than creating one (RocksDB writes and reads back its OPTIONS file for
// every column family it creates).
std::vector<std::pair<std::string, std::string>> EmptyLogFiles() {
  std::unique_ptr<rocksdb::Env> env(rocksdb::NewMemEnv(rocksdb::Env::Default()));
  {
    auto log = EventLog::Open(kDir, LogOptions(env.get()));
    DOPPEL_FUZZ_CHECK(log.ok(), "cannot create an in-memory log: %s",
                      log.status().ToString().c_str());
  }
  std::vector<std::string> names;
  DOPPEL_FUZZ_CHECK(env->GetChildren(kDir, &names).ok(), "cannot list the empty log");
  std::vector<std::pair<std::string, std::string>> files;
  for (const std::string& name : names) {
    if (name == "." || name == ".." || name == "LOCK") continue;  // the lock is RocksDB's own
    std::string bytes;
    DOPPEL_FUZZ_CHECK(
        rocksdb::ReadFileToString(env.get(), std::string(kDir) + "/" + name, &bytes).ok(),
        "cannot read %s of the empty log", name.c_str());
    files.emplace_back(name, std::move(bytes));
  }
  return files;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto* const kEmptyLog =
      new std::vector<std::pair<std::string, std::string>>(EmptyLogFiles());
  const std::vector<std::string> frames =
      doppel::fuzz::SplitFrames(std::string_view(reinterpret_cast<const char*>(data), size));
  if (frames.empty()) return 0;

  clock_readings = 0;
  ids_given = 0;
  std::unique_ptr<rocksdb::Env> memory(rocksdb::NewMemEnv(rocksdb::Env::Default()));
  DOPPEL_FUZZ_CHECK(
      memory->CreateDirIfMissing("/doppel-fuzz").ok() && memory->CreateDirIfMissing(kDir).ok(),
      "cannot make the log's directory");
  for (const auto& [name, bytes] : *kEmptyLog) {
    DOPPEL_FUZZ_CHECK(
        rocksdb::WriteStringToFile(memory.get(), bytes, std::string(kDir) + "/" + name).ok(),
        "cannot copy %s of the empty log", name.c_str());
  }
  auto opened = EventLog::Open(kDir, LogOptions(memory.get()));
  DOPPEL_FUZZ_CHECK(opened.ok(), "cannot open an in-memory log: %s",
                    opened.status().ToString().c_str());
  std::unique_ptr<EventLog> log = std::move(opened).value();
  for (size_t i = 0; i < frames.size(); ++i) {
    Serve(*log, frames[i]);
    if ((i + 1) % kFramesPerFlush == 0) {
      auto flushed = log->Flush();
      DOPPEL_FUZZ_CHECK(flushed.ok(), "cannot flush the in-memory log: %s",
                        flushed.ToString().c_str());
    }
  }
  log.reset();  // before the Env it lives in
  return 0;
}
