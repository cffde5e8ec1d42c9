// What the EventLog's translation units share (event_log.cc: opening, appending, reading;
// event_log_snapshots.cc; event_log_retention.cc; event_log_verify.cc): RocksDB statuses as
// doppel's, and slices as views.
#pragma once

#include <fmt/format.h>
#include <rocksdb/slice.h>
#include <rocksdb/status.h>

#include <array>
#include <string_view>

#include "doppel/core/status.h"

namespace doppel::eventstore::internal {

inline constexpr char kEventLogComponent[] = "eventlog";

inline Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return Status::Ok();
  if (s.IsNotFound()) return Status::NotFound(fmt::format("{}: {}", what, s.ToString()));
  if (s.IsCorruption()) return Status::Corruption(fmt::format("{}: {}", what, s.ToString()));
  return Status::IOError(fmt::format("{}: {}", what, s.ToString()));
}

inline std::string_view View(const rocksdb::Slice& s) {
  return std::string_view(s.data(), s.size());
}

inline std::string_view AsView(const std::array<char, 16>& bytes) {
  return std::string_view(bytes.data(), bytes.size());
}

}  // namespace doppel::eventstore::internal
