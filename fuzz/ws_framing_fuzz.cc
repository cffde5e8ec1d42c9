// Fuzzes the gateway's RFC 6455 frame reader (bridges/ws ws_framing.h, sans-I/O) with a
// client's byte stream. What must hold:
// - the events do not depend on how the stream is split into reads (a reader fed the whole
//   input and one fed it in small uneven pieces agree);
// - text messages are UTF-8, control payloads at most 125 bytes, messages within the limit;
// - the stream ends with at most one close or failure, after which the reader is done;
// - the close frame the server answers a failure with fits a control frame and is UTF-8.
#include <string>
#include <string_view>
#include <vector>

#include "doppel/bridges/ws_framing.h"
#include "doppel/core/utf8.h"
#include "fuzz_inputs.h"

namespace {

using doppel::gateway::WsEvent;
using doppel::gateway::WsFrameReader;

// Small, so that inputs libFuzzer can reach exercise the 1009 (too big) path.
constexpr size_t kMaxMessage = 1024;

bool Ends(WsEvent::Kind kind) {
  return kind == WsEvent::Kind::kClose || kind == WsEvent::Kind::kFail;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace doppel::gateway;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);

  WsFrameReader whole(kMaxMessage);
  const std::vector<WsEvent> events = whole.Feed(bytes);

  WsFrameReader pieces(kMaxMessage);
  std::vector<WsEvent> piece_events;
  size_t at = 0;
  for (size_t i = 0; at < size; ++i) {
    // Pieces of 1 to 7 bytes, a different pattern per input length.
    const size_t n = std::min(size - at, (i * 5 + size) % 7 + 1);
    for (WsEvent& e : pieces.Feed(bytes.substr(at, n))) piece_events.push_back(std::move(e));
    at += n;
  }
  DOPPEL_FUZZ_CHECK(events.size() == piece_events.size(), "%zu events whole, %zu in pieces",
                    events.size(), piece_events.size());
  DOPPEL_FUZZ_CHECK(whole.done() == pieces.done(), "done differs with the split");

  for (size_t i = 0; i < events.size(); ++i) {
    const WsEvent& e = events[i];
    const WsEvent& p = piece_events[i];
    DOPPEL_FUZZ_CHECK(e.kind == p.kind && e.code == p.code && e.payload == p.payload,
                      "event %zu differs with the split", i);
    DOPPEL_FUZZ_CHECK(!Ends(e.kind) || i + 1 == events.size(), "event after a close or failure");
    switch (e.kind) {
      case WsEvent::Kind::kText:
        DOPPEL_FUZZ_CHECK(doppel::IsValidUtf8(e.payload), "text message not UTF-8");
        [[fallthrough]];
      case WsEvent::Kind::kBinary:
        DOPPEL_FUZZ_CHECK(e.payload.size() <= kMaxMessage, "message of %zu bytes",
                          e.payload.size());
        break;
      case WsEvent::Kind::kPing:
      case WsEvent::Kind::kPong:
        DOPPEL_FUZZ_CHECK(e.payload.size() <= kMaxControlPayload, "control payload %zu",
                          e.payload.size());
        break;
      case WsEvent::Kind::kClose:
        DOPPEL_FUZZ_CHECK(e.code == kCloseNoStatus || IsValidCloseCode(e.code), "close code %u",
                          e.code);
        DOPPEL_FUZZ_CHECK(doppel::IsValidUtf8(e.payload), "close reason not UTF-8");
        break;
      case WsEvent::Kind::kFail: {
        DOPPEL_FUZZ_CHECK(IsValidCloseCode(e.code), "failure with code %u", e.code);
        const std::string close = EncodeClosePayload(e.code, e.payload);
        DOPPEL_FUZZ_CHECK(close.size() <= kMaxControlPayload, "close payload %zu", close.size());
        DOPPEL_FUZZ_CHECK(doppel::IsValidUtf8(std::string_view(close).substr(2)),
                          "close reason not UTF-8");
        break;
      }
    }
  }
  DOPPEL_FUZZ_CHECK(whole.done() == (!events.empty() && Ends(events.back().kind)),
                    "done() without a close or failure, or the reverse");
  const bool was_done = whole.done();
  DOPPEL_FUZZ_CHECK(!was_done || whole.Feed(bytes).empty(), "events after done()");
  return 0;
}
