// The input formats of doppel's fuzz targets, shared by the targets and the seed corpus
// generator so that seeds are exactly what the targets parse.
//
// payload:    byte 0 selects the event type (PayloadTypeName), the rest is the payload.
// twin_apply: byte 0 selects the model (bit 0: 0 = doppel_arm6, 1 = doppel_base), then events
//             until the input ends, each:
//               byte 0: event type selector (PayloadTypeName)
//               bytes 1-2: payload length n, little-endian (cut to what is left)
//               n bytes: the payload
// store_request: a client's session against a fresh, empty log: up to kMaxSessionFrames
//             frames until the input ends, each:
//               bytes 0-1: frame length n, little-endian (cut to what is left)
//               n bytes: the frame (a StoreRequest, as a client sends it)
// The other targets take their format as is: an EventEnvelope, scene JSON, URDF text, a
// client's WebSocket byte stream.
//
// Every target is stateless: an input gives the same result whatever ran before it, so an
// input libFuzzer saves reproduces its crash alone.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

// A property the target asserts: a violation aborts, so libFuzzer reports it as a crash
// with the input. (assert() would vanish under NDEBUG.)
#define DOPPEL_FUZZ_CHECK(cond, ...)                                                \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                            \
      std::fprintf(stderr, "\n");                                                   \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

namespace doppel::fuzz {

// The event type a selector byte names: every known payload type, then one type doppel does
// not know (its payloads are opaque bytes), cycling.
std::string_view PayloadTypeName(uint8_t selector);
// The selector of a known type name (for the seed generator). REQUIRES: the name is known.
uint8_t PayloadTypeSelector(std::string_view type);

struct FuzzEvent {
  std::string type;
  std::string payload;
};
// Splits a twin_apply body (after the model byte) into events; never fails.
std::vector<FuzzEvent> SplitEvents(std::string_view bytes);
// The inverse, for seeds. REQUIRES: every payload is shorter than 65536 bytes.
std::string JoinEvents(const std::vector<FuzzEvent>& events);

// A store_request session's frames (at most kMaxSessionFrames; the rest is ignored).
constexpr size_t kMaxSessionFrames = 16;
std::vector<std::string> SplitFrames(std::string_view bytes);
// The inverse, for seeds. REQUIRES: every frame is shorter than 65536 bytes.
std::string JoinFrames(const std::vector<std::string>& frames);

// A stored event's envelope as EventLog writes it (identifier "DPEV"), at `version` of
// `stream` and global `position`.
std::string EnvelopeBytes(std::string_view stream, uint64_t version, uint64_t position,
                          std::string_view type, std::string_view payload, int64_t recorded_ns);

}  // namespace doppel::fuzz
