#include "doppel/bridges/ws_framing.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "doppel/core/utf8.h"

namespace doppel::gateway {

bool IsValidCloseCode(uint16_t code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

std::vector<WsEvent> WsFrameReader::Feed(std::string_view bytes) {
  std::vector<WsEvent> out;
  if (done_) return out;
  buffer_.append(bytes);
  while (ParseOne(out)) {
  }
  // Erased once per call, not per frame: many tiny frames in one read stay linear.
  buffer_.erase(0, std::min(parsed_, buffer_.size()));
  parsed_ = 0;
  return out;
}

bool WsFrameReader::Fail(std::vector<WsEvent>& out, uint16_t code, std::string reason) {
  out.push_back({WsEvent::Kind::kFail, std::move(reason), code});
  done_ = true;
  message_.clear();
  return false;
}

bool WsFrameReader::ParseOne(std::vector<WsEvent>& out) {
  const size_t available = buffer_.size() - parsed_;
  if (done_ || available < 2) return false;
  const auto* p = reinterpret_cast<const uint8_t*>(buffer_.data() + parsed_);
  const bool fin = p[0] & 0x80;
  const uint8_t opcode = p[0] & 0x0f;
  const bool masked = p[1] & 0x80;
  const uint8_t length7 = p[1] & 0x7f;
  const bool control = opcode & 0x8;

  // Everything the first two bytes decide is checked before waiting for more, so a bad frame
  // fails at once and never makes the reader buffer its payload.
  if (p[0] & 0x70) return Fail(out, kCloseProtocolError, "reserved bits set (no extension)");
  if (opcode > 0x2 && !(opcode >= 0x8 && opcode <= 0xA)) {
    return Fail(out, kCloseProtocolError, fmt::format("unknown opcode {:#x}", opcode));
  }
  if (!masked) return Fail(out, kCloseProtocolError, "client frames must be masked");
  if (control && !fin) return Fail(out, kCloseProtocolError, "fragmented control frame");
  if (control && length7 > kMaxControlPayload) {
    return Fail(out, kCloseProtocolError, "control frame payload over 125 bytes");
  }
  if (opcode == 0x0 && !in_message_) {
    return Fail(out, kCloseProtocolError, "continuation frame without a message to continue");
  }
  if ((opcode == 0x1 || opcode == 0x2) && in_message_) {
    return Fail(out, kCloseProtocolError, "new message before the fragmented one ended");
  }

  uint64_t length = length7;
  size_t header = 2;
  if (length7 == 126) {
    if (available < 4) return false;
    length = (uint64_t{p[2]} << 8) | p[3];
    header = 4;
  } else if (length7 == 127) {
    if (available < 10) return false;
    if (p[2] & 0x80) return Fail(out, kCloseProtocolError, "64-bit length with the top bit set");
    length = 0;
    for (int i = 0; i < 8; ++i) length = (length << 8) | p[2 + i];
    header = 10;
  }
  if (!control && (length > max_message_ || message_.size() + length > max_message_)) {
    return Fail(out, kCloseTooBig, fmt::format("message over {} bytes", max_message_));
  }
  if (available < header + 4 + length) return false;

  const uint8_t* mask = p + header;
  std::string payload(reinterpret_cast<const char*>(p + header + 4), length);
  for (size_t i = 0; i < payload.size(); ++i) payload[i] ^= static_cast<char>(mask[i % 4]);
  parsed_ += header + 4 + length;

  switch (static_cast<WsOpcode>(opcode)) {
    case WsOpcode::kPing:
      out.push_back({WsEvent::Kind::kPing, std::move(payload)});
      return true;
    case WsOpcode::kPong:
      out.push_back({WsEvent::Kind::kPong, std::move(payload)});
      return true;
    case WsOpcode::kClose: {
      if (payload.empty()) {
        out.push_back({WsEvent::Kind::kClose, "", kCloseNoStatus});
        done_ = true;
        return false;
      }
      if (payload.size() == 1) {
        return Fail(out, kCloseProtocolError, "close frame with a 1-byte payload");
      }
      const uint16_t code = static_cast<uint16_t>((static_cast<uint8_t>(payload[0]) << 8) |
                                                  static_cast<uint8_t>(payload[1]));
      if (!IsValidCloseCode(code)) {
        return Fail(out, kCloseProtocolError, fmt::format("invalid close code {}", code));
      }
      std::string reason = payload.substr(2);
      if (!IsValidUtf8(reason)) {
        return Fail(out, kCloseInvalidPayload, "close reason is not UTF-8");
      }
      out.push_back({WsEvent::Kind::kClose, std::move(reason), code});
      done_ = true;
      return false;
    }
    case WsOpcode::kText:
    case WsOpcode::kBinary:
      message_text_ = opcode == 0x1;
      in_message_ = true;
      [[fallthrough]];
    case WsOpcode::kContinuation:
      message_ += payload;
      break;
  }
  if (!fin) return true;
  in_message_ = false;
  std::string message = std::exchange(message_, {});
  // The whole message is checked, so a character split across fragments is fine.
  if (message_text_ && !IsValidUtf8(message)) {
    return Fail(out, kCloseInvalidPayload, "text message is not UTF-8");
  }
  out.push_back(
      {message_text_ ? WsEvent::Kind::kText : WsEvent::Kind::kBinary, std::move(message)});
  return true;
}

size_t EncodeFrameHeader(WsOpcode opcode, uint64_t payload_size, std::array<uint8_t, 10>& out) {
  out[0] = 0x80 | static_cast<uint8_t>(opcode);
  if (payload_size < 126) {
    out[1] = static_cast<uint8_t>(payload_size);
    return 2;
  }
  if (payload_size <= 0xffff) {
    out[1] = 126;
    out[2] = static_cast<uint8_t>(payload_size >> 8);
    out[3] = static_cast<uint8_t>(payload_size);
    return 4;
  }
  out[1] = 127;
  for (int i = 0; i < 8; ++i) out[2 + i] = static_cast<uint8_t>(payload_size >> (56 - 8 * i));
  return 10;
}

std::string EncodeClosePayload(uint16_t code, std::string_view reason) {
  size_t keep = std::min(reason.size(), kMaxControlPayload - 2);
  // Cut on a character boundary: the peer checks the reason is UTF-8.
  while (keep < reason.size() && keep > 0 && (static_cast<uint8_t>(reason[keep]) & 0xc0) == 0x80) {
    --keep;
  }
  std::string out = {static_cast<char>(code >> 8), static_cast<char>(code & 0xff)};
  out.append(reason.substr(0, keep));
  return out;
}

}  // namespace doppel::gateway
