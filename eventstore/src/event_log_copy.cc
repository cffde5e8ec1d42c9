// EventLog copies (copied_batch.h): a copied batch is committed by the committer in a group of
// its own, as one WriteBatch holding its events, their index entries, the copy's position map
// and its checkpoint, so a copy stopped anywhere resumes exactly where its last batch ended.
//
// Default-family keys of copies, beside log_format.h's:
//   "copy/" name                      be64 source_next, be64 events covered (the checkpoint)
//   "copymap/" name 0x00 be64(source)  be64 position here of the event copied from there
#include <fmt/format.h>
#include <rocksdb/db.h>

#include <limits>

#include "doppel/eventstore/copy_rules.h"
#include "doppel/eventstore/log_format.h"
#include "event_log_internal.h"

namespace doppel::eventstore {
namespace {

using internal::AsView;
using internal::FromRocks;
using internal::View;

std::string CheckpointKey(std::string_view copier) { return fmt::format("copy/{}", copier); }

std::string MapPrefix(std::string_view copier) {
  std::string k = fmt::format("copymap/{}", copier);
  k.push_back('\0');
  return k;
}

std::string MapKey(std::string_view copier, GlobalPosition source_position) {
  std::string k = MapPrefix(copier);
  format::PutBigEndian64(&k, source_position);
  return k;
}

}  // namespace

Result<CopyResult> EventLog::AppendCopied(const CopiedBatch& batch) {
  DOPPEL_RETURN_IF_ERROR(CheckCopiedBatch(batch));
  if (options_.read_only) return Status::InvalidArgument("the log is open read-only");
  auto job = std::make_shared<CopyJob>();
  job->batch = &batch;
  std::future<Result<CopyResult>> result = job->result.get_future();
  Pending pending;
  pending.copy = std::move(job);
  DOPPEL_RETURN_IF_ERROR(Submit(std::move(pending)));
  return result.get();
}

Result<CopyCheckpoint> EventLog::LoadCopyCheckpoint(std::string_view copier) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), meta_cf_, CheckpointKey(copier), &value);
  if (s.IsNotFound()) return CopyCheckpoint{};
  if (!s.ok()) return FromRocks(s, fmt::format("reading the checkpoint of copy {}", copier));
  if (value.size() != 16) {
    return Status::Corruption(
        fmt::format("the checkpoint of copy {} has {} bytes (want 16)", copier, value.size()));
  }
  return CopyCheckpoint{format::GetBigEndian64(value),
                        format::GetBigEndian64(std::string_view(value).substr(8))};
}

Result<GlobalPosition> EventLog::CopiedPosition(std::string_view copier,
                                                GlobalPosition source_position) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), meta_cf_));
  it->Seek(MapKey(copier, source_position));
  if (!it->status().ok()) return FromRocks(it->status(), "reading a copy's position map");
  const std::string prefix = MapPrefix(copier);
  if (!it->Valid() || !it->key().starts_with(prefix) || it->value().size() != 8) {
    return Status::NotFound(fmt::format("copy {} has taken nothing from source position {} on",
                                        copier, source_position));
  }
  return format::GetBigEndian64(View(it->value()));
}

Result<CopyResult> EventLog::CommitCopy(const CopiedBatch& batch) {
  if (!write_error_.ok()) return write_error_;
  auto current = LoadCopyCheckpoint(batch.copier);
  if (!current.ok()) return current.status();
  if (MaybeResentCopy(batch, *current)) {
    uint64_t there = 0;
    for (const RecordedEvent& e : batch.events) {
      auto stored = StoredUnder(e.id());
      if (!stored.ok()) return stored.status();
      auto place = PlaceCopiedEvent(e, *stored, std::nullopt);
      if (place.ok() && place->has_value()) ++there;
    }
    if (there == batch.events.size()) return CopyResult{0, there, *current};
  }
  DOPPEL_RETURN_IF_ERROR(CheckCopyCheckpoint(batch, *current));

  GroupState state;
  state.next_position = next_position_;
  state.keep_envelopes = static_cast<bool>(listener_);
  const GlobalPosition first_position = next_position_;
  // The latest time recorded so far: a copied event later than it gets a time index entry.
  TimeNs latest = next_position_ == 0 ? std::numeric_limits<TimeNs>::min() : last_recorded_ns_;
  CopyResult result;
  for (const RecordedEvent& e : batch.events) {
    auto stored = StoredUnder(e.id());
    if (!stored.ok()) return stored.status();
    auto head = HeadFor(e.stream(), state);
    if (!head.ok()) return head.status();
    auto place = PlaceCopiedEvent(e, *stored, *head);
    if (!place.ok()) return place.status();
    std::string map_value;
    if (place->has_value()) {
      format::PutBigEndian64(&map_value, **place);
      state.batch.Put(meta_cf_, MapKey(batch.copier, e.position()), map_value);
      ++result.present;
      continue;
    }
    const GlobalPosition position = state.next_position++;
    BuildEnvelope(state.fbb, e.stream(), e.version(), position, e.recorded_ns(), AsNewEvent(e));
    const rocksdb::Slice envelope(reinterpret_cast<const char*>(state.fbb.GetBufferPointer()),
                                  state.fbb.GetSize());
    const std::string log_key = format::LogKey(position);
    state.batch.Put(log_cf_, log_key, envelope);
    state.batch.Put(streams_cf_, format::StreamKey(e.stream(), e.version()), log_key);
    state.batch.Put(ids_cf_, AsView(e.id().ToBytes()), log_key);
    state.batch.Put(meta_cf_, MapKey(batch.copier, e.position()), log_key);
    if (e.recorded_ns() > latest) {
      state.batch.Put(time_cf_, format::TimeKey(e.recorded_ns(), position), "");
      latest = e.recorded_ns();
    }
    if (state.keep_envelopes) state.envelopes.emplace_back(envelope.data(), envelope.size());
    state.heads[std::string(e.stream())] = e.version();
    ++result.written;
  }
  result.checkpoint = CopyCheckpoint{batch.source_next, current->events + batch.events.size()};
  std::string checkpoint;
  format::PutBigEndian64(&checkpoint, result.checkpoint.source_next);
  format::PutBigEndian64(&checkpoint, result.checkpoint.events);
  state.batch.Put(meta_cf_, CheckpointKey(batch.copier), checkpoint);
  state.recorded_ns = next_position_ == 0 && result.written == 0 ? last_recorded_ns_ : latest;
  DOPPEL_RETURN_IF_ERROR(WriteGroup(state, first_position));
  return result;
}

}  // namespace doppel::eventstore
