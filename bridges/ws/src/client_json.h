// The one way the gateway parses JSON a client sent (rosbridge ops, Foxglove client ops and
// client messages). A client's JSON is bounded before anything walks it: nlohmann's copy,
// comparison and dump recurse once per nesting level on the network thread, so 100,000
// nested arrays (200 KB) would overflow its stack and kill the process. Both budgets are
// enforced before the tree exists: the size before parsing, the depth while parsing (the
// parse stops at the first container past it), so no deep tree is ever built, copied or
// destroyed.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string_view>

#include "doppel/core/status.h"

namespace doppel::gateway {

// Nesting levels of objects and arrays at most. Every message of either protocol needs fewer
// than 8 (a rosbridge publish of a Twist: 3); 64 leaves room for any real client and keeps
// each recursive walk a few kilobytes of stack.
inline constexpr size_t kClientJsonMaxDepth = 64;
// Bytes at most: the largest WebSocket message a client may send (WsSession::kMaxMessage);
// checked here too so that a caller without the framing (the sans-I/O sessions, the fuzzer)
// gets the same bound.
inline constexpr size_t kClientJsonMaxBytes = size_t{1} << 20;

struct ClientJsonLimits {
  size_t max_depth = kClientJsonMaxDepth;
  size_t max_bytes = kClientJsonMaxBytes;
};

// The JSON value in `text`; InvalidArgument when it breaks a budget (larger than max_bytes,
// nested deeper than max_depth), Corruption when it is not JSON (nlohmann's message, with the
// byte offset).
Result<nlohmann::json> ParseClientJson(std::string_view text, ClientJsonLimits limits = {});

// How a session names a message ParseClientJson turned down: "Malformed" (not JSON) or
// "Refused" (over a budget).
inline const char* ClientJsonVerdict(const Status& status) {
  return status.code() == Status::Code::kCorruption ? "Malformed" : "Refused";
}

}  // namespace doppel::gateway
