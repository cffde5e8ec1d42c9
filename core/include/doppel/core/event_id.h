// EventId: the 128-bit identity of an event, written and read as an RFC 4122 UUID string.
//
// Ids make appends idempotent: a client that retries an append with the same ids gets the
// original positions back. Ids a client does not choose are random (version 4).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "doppel/core/status.h"

namespace doppel {

class EventId {
 public:
  EventId() = default;  // the nil id: "no id given"
  EventId(uint64_t hi, uint64_t lo) : hi_(hi), lo_(lo) {}

  // A fresh random (version 4, variant 1) id. Thread-safe.
  static EventId Random();
  // Parses "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (hex, either case) or 32 bare hex digits.
  static Result<EventId> Parse(std::string_view text);
  // REQUIRES: bytes.size() == 16 (big-endian: hi then lo)
  static EventId FromBytes(std::string_view bytes);

  bool is_nil() const { return hi_ == 0 && lo_ == 0; }
  uint64_t hi() const { return hi_; }
  uint64_t lo() const { return lo_; }

  // Lowercase canonical form with dashes.
  std::string ToString() const;
  // 16 bytes, big-endian, so byte order equals numeric order.
  std::array<char, 16> ToBytes() const;

  friend bool operator==(const EventId&, const EventId&) = default;
  friend auto operator<=>(const EventId&, const EventId&) = default;

 private:
  uint64_t hi_ = 0;
  uint64_t lo_ = 0;
};

struct EventIdHash {
  size_t operator()(const EventId& id) const { return id.hi() ^ (id.lo() * 0x9E3779B97F4A7C15ULL); }
};

}  // namespace doppel
