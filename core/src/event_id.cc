#include "doppel/core/event_id.h"

#include <fmt/format.h>

#include <random>

namespace doppel {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

EventId EventId::Random() {
  thread_local std::mt19937_64 rng = [] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
    return std::mt19937_64(seq);
  }();
  uint64_t hi = rng();
  uint64_t lo = rng();
  hi = (hi & ~0xF000ULL) | 0x4000ULL;              // version 4
  lo = (lo & ~(0xC0ULL << 56)) | (0x80ULL << 56);  // variant 1
  return EventId(hi, lo);
}

Result<EventId> EventId::Parse(std::string_view text) {
  const bool dashed = text.size() == 36;
  if (!dashed && text.size() != 32) {
    return Status::InvalidArgument(fmt::format("bad UUID '{}': expected 36 characters", text));
  }
  uint64_t parts[2] = {0, 0};
  int nibbles = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (dashed && (i == 8 || i == 13 || i == 18 || i == 23)) {
      if (text[i] != '-') {
        return Status::InvalidArgument(fmt::format("bad UUID '{}': expected '-' at {}", text, i));
      }
      continue;
    }
    const int v = HexValue(text[i]);
    if (v < 0) {
      return Status::InvalidArgument(
          fmt::format("bad UUID '{}': '{}' is not a hex digit", text, text[i]));
    }
    parts[nibbles / 16] = (parts[nibbles / 16] << 4) | static_cast<uint64_t>(v);
    ++nibbles;
  }
  return EventId(parts[0], parts[1]);
}

EventId EventId::FromBytes(std::string_view bytes) {
  uint64_t parts[2] = {0, 0};
  for (size_t i = 0; i < 16 && i < bytes.size(); ++i) {
    parts[i / 8] = (parts[i / 8] << 8) | static_cast<uint8_t>(bytes[i]);
  }
  return EventId(parts[0], parts[1]);
}

std::string EventId::ToString() const {
  return fmt::format("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", hi_ >> 32, (hi_ >> 16) & 0xFFFF,
                     hi_ & 0xFFFF, lo_ >> 48, lo_ & 0xFFFFFFFFFFFFULL);
}

std::array<char, 16> EventId::ToBytes() const {
  std::array<char, 16> out{};
  for (int i = 0; i < 8; ++i) {
    out[i] = static_cast<char>(hi_ >> (56 - 8 * i));
    out[8 + i] = static_cast<char>(lo_ >> (56 - 8 * i));
  }
  return out;
}

}  // namespace doppel
