// AppendLoad: N client threads appending to their own streams for a duration. Shared by
// `doppel bench append` and benchmarks/ so both measure the same thing.
#pragma once

#include <cstdint>
#include <string>

#include "doppel/core/latency.h"
#include "doppel/eventstore/event_store.h"

namespace doppel::tools {

struct AppendLoadOptions {
  int clients = 16;
  int batch = 1;
  int payload_bytes = 200;
  double duration_s = 5;
  std::string ack_log;        // optional: one line per acknowledged event, after the ack
  std::string stream_prefix;  // streams are <prefix>-<client>; random when empty
  // false: one thread per client, each blocking on Append.
  // true: clients are closed loops of AppendAsync (one append in flight per client, the
  // next sent from the previous one's completion), as the store server drives the log.
  bool in_flight = false;
};

struct AppendLoadResult {
  uint64_t events = 0;
  double seconds = 0;
  LatencySamples ack_latency_ns;  // one sample per append call
  double events_per_second() const { return seconds > 0 ? events / seconds : 0; }
};

// A Blob payload whose encoded size is close to `bytes`.
std::string BlobPayload(int bytes);

Result<AppendLoadResult> RunAppendLoad(eventstore::EventStore& store,
                                       const AppendLoadOptions& options);

}  // namespace doppel::tools
