// Rows as a writer that knows nothing of doppel would write them into the events table: plain
// SQL, the position from the column's default.
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

#include "test_support.h"

namespace doppel::testing {

inline std::string Hex(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) out += fmt::format("{:02x}", c);
  return out;
}

// An INSERT of a JointStateObserved event at `version` of `stream`, with a new random id.
inline std::string LegacyInsert(const std::string& stream, int version) {
  const auto event = JointStateEvent(version);
  return fmt::format(
      "INSERT INTO events (stream, version, event_id, type, payload, recorded_ns) VALUES "
      "('{}', {}, gen_random_uuid(), '{}', decode('{}', 'hex'), 1)",
      stream, version, event.type, Hex(event.payload));
}

}  // namespace doppel::testing
