// What the EventLog's translation units share (event_log.cc: opening, appending, reading;
// event_log_copy.cc; event_log_snapshots.cc; event_log_retention.cc; event_log_verify.cc):
// RocksDB statuses as doppel's, slices as views, and the state of a commit being staged.
#pragma once

#include <flatbuffers/flatbuffers.h>
#include <fmt/format.h>
#include <rocksdb/slice.h>
#include <rocksdb/status.h>
#include <rocksdb/write_batch.h>

#include <array>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "doppel/core/status.h"
#include "doppel/eventstore/event_log.h"

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

namespace doppel::eventstore {

struct EventLog::Pending {
  AppendRequest request;
  AppendCallback done;
  // Set instead of `request` for a copied batch, which is committed in a group of its own.
  std::shared_ptr<CopyJob> copy;
};

struct EventLog::CopyJob {
  const CopiedBatch* batch;
  std::promise<Result<CopyResult>> result;
};

// An event staged in the current commit group, so later requests in the same group see it.
struct EventLog::StagedEvent {
  std::string stream;
  StreamVersion version;
  GlobalPosition position;
  const NewEvent* event;
};

struct EventLog::GroupState {
  rocksdb::WriteBatch batch;
  GlobalPosition next_position;
  TimeNs recorded_ns;
  std::unordered_map<std::string, std::optional<StreamVersion>> heads;  // looked up or staged
  std::unordered_map<EventId, StagedEvent, EventIdHash> staged_ids;
  std::vector<std::string> envelopes;  // for the commit listener
  flatbuffers::FlatBufferBuilder fbb{1024};
  bool keep_envelopes = false;
};

}  // namespace doppel::eventstore
