// EndToEndLoad: appends at a steady rate through a store server while K subscribers receive
// them, measuring append -> delivered latency at each subscriber and checking that every
// acknowledged event reached every subscriber exactly once, in order. Shared by
// `doppel bench e2e` and benchmarks/.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "doppel/core/latency.h"
#include "doppel/eventstore/zmq_security.h"

namespace doppel::tools {

struct EndToEndOptions {
  std::string store;    // ROUTER endpoint
  std::string publish;  // PUB endpoint
  std::optional<eventstore::CurveClientConfig> curve;
  int clients = 4;  // client connections, each appending to its own stream
  int subscribers = 4;
  double rate = 10000;  // events per second, all clients together
  int batch = 1;        // events per append
  int payload_bytes = 200;
  double duration_s = 5;
};

struct EndToEndResult {
  uint64_t appended = 0;  // acknowledged events
  double seconds = 0;
  double delivered_per_second = 0;  // per subscriber
  LatencySamples latency_ns;        // append sent -> received, every event at every subscriber
  uint64_t lost = 0;                // acknowledged but not delivered (summed over subscribers)
  uint64_t duplicated = 0;
  uint64_t out_of_order = 0;
  uint64_t gaps_healed = 0;  // gaps the subscriptions detected and filled by reading
};

Result<EndToEndResult> RunEndToEnd(const EndToEndOptions& options);

}  // namespace doppel::tools
