// WebSocket framing (RFC 6455 sections 5 and 7), sans-I/O: the server side of the protocol
// after the opening handshake. WsFrameReader turns the bytes a client sent into messages and
// control events, and decides when the connection must fail; the Encode functions make the
// frames a server sends. Sockets, timers and queues live in the gateway's session, so tests
// and fuzzers drive this file directly.
//
// Client frame layout (section 5.2), all lengths in network byte order:
//   byte 0: FIN(1) RSV1(1) RSV2(1) RSV3(1) opcode(4)
//   byte 1: MASK(1) length(7): 0..125 the payload length, 126: a 16-bit length follows,
//           127: a 64-bit length follows (most significant bit 0)
//   then a 4-byte masking key (clients MUST mask), then the payload XOR the key.
// Server frames are the same without MASK and key.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace doppel::gateway {

enum class WsOpcode : uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

// Close codes the server sends (section 7.4.1).
inline constexpr uint16_t kCloseNormal = 1000;
inline constexpr uint16_t kCloseProtocolError = 1002;
inline constexpr uint16_t kCloseInvalidPayload = 1007;  // e.g. a text message not UTF-8
inline constexpr uint16_t kCloseTooBig = 1009;
// "No status code was present" (1005): reported for a close frame with an empty payload; it
// must never be sent on the wire.
inline constexpr uint16_t kCloseNoStatus = 1005;

// Largest control frame payload (section 5.5).
inline constexpr size_t kMaxControlPayload = 125;

// What a client's bytes meant.
struct WsEvent {
  enum class Kind {
    kText,    // a whole text message, valid UTF-8: `payload`
    kBinary,  // a whole binary message: `payload`
    kPing,    // answer with a pong carrying `payload`
    kPong,    // nothing to do
    kClose,   // the client closes with `code` (kCloseNoStatus if none) and `payload` (reason)
    kFail,    // the client broke the protocol: send a close with `code` and `payload` (the
              // reason, for the peer and the log), then close the TCP connection
  };
  Kind kind;
  std::string payload;
  uint16_t code = 0;
};

// True for a close code a peer may send (section 7.4): 1000-1003, 1007-1014 (the IANA
// registry's), 3000-4999 (libraries and applications). 1004-1006 and 1015 are reserved or
// only for reporting; the rest is unassigned.
bool IsValidCloseCode(uint16_t code);

// Reassembles a client's frames into messages. Every frame is checked as soon as its header
// is complete; the first violation yields one kFail event, and so does a client close: after
// either, done() is true and further input is ignored. Memory is bounded by one message of
// `max_message` bytes plus one frame header: a frame that would pass the limit fails at once
// (1009) instead of being buffered.
class WsFrameReader {
 public:
  explicit WsFrameReader(size_t max_message = size_t{1} << 20) : max_message_(max_message) {}

  // Takes the next bytes of the stream (any split: a frame may span calls) and returns the
  // events of every frame they complete, in order.
  std::vector<WsEvent> Feed(std::string_view bytes);

  // A close or a failure was returned: the connection is ending.
  bool done() const { return done_; }

 private:
  // Parses one frame from the front of buffer_, appending its event (if any) to `out`.
  // Returns false when more bytes are needed or the reader is done.
  bool ParseOne(std::vector<WsEvent>& out);
  bool Fail(std::vector<WsEvent>& out, uint16_t code, std::string reason);

  size_t max_message_;
  std::string buffer_;  // received bytes; the first parsed_ of them are consumed
  size_t parsed_ = 0;
  std::string message_;  // the fragmented data message being reassembled
  bool in_message_ = false;
  bool message_text_ = false;
  bool done_ = false;
};

// The header of an unmasked, final server frame with `opcode` and `payload_size`; returns
// its length (2, 4 or 10 bytes of `out`).
size_t EncodeFrameHeader(WsOpcode opcode, uint64_t payload_size, std::array<uint8_t, 10>& out);

// The payload of a close frame: `code` (network byte order) and `reason`, cut so that the
// frame fits the 125-byte control limit. REQUIRES: code is not kCloseNoStatus.
std::string EncodeClosePayload(uint16_t code, std::string_view reason);

}  // namespace doppel::gateway
