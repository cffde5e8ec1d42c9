// EventLog retention: per-stream metadata (max age, max count, truncate-before), which events
// it still admits, and the scavenge that removes the rest with their index entries and the
// snapshot history they covered.
#include <fmt/format.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include "doppel/core/log.h"
#include "doppel/eventstore/append_rules.h"
#include "doppel/eventstore/event_log.h"
#include "doppel/eventstore/log_format.h"
#include "doppel/schemas/payloads.h"
#include "event_log_internal.h"

namespace doppel::eventstore {

using internal::AsView;
using internal::FromRocks;
using internal::View;
namespace {

constexpr const char* kComponent = internal::kEventLogComponent;

std::string EncodeMetadata(const StreamMetadata& m) {
  flatbuffers::FlatBufferBuilder fbb(64);
  fbb.Finish(fb::CreateStreamMetadataRecord(fbb, m.max_age_ns, m.max_count, m.truncate_before));
  return std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
}

}  // namespace

bool EventLog::Retained(std::string_view stream, StreamVersion version, TimeNs recorded_ns,
                        TimeNs now) const {
  StreamMetadata meta;
  {
    std::lock_guard lock(cache_mu_);
    auto it = metadata_.find(std::string(stream));
    if (it != metadata_.end()) {
      meta = it->second;
    } else {
      std::string value;
      rocksdb::Status s =
          db_->Get(rocksdb::ReadOptions(), stream_meta_cf_, std::string(stream), &value);
      if (s.ok()) {
        if (auto rec = schemas::VerifyStreamMetadataRecord(value); rec.ok()) {
          meta = {(*rec)->max_age_ns(), (*rec)->max_count(), (*rec)->truncate_before()};
        }
      }
      metadata_.emplace(std::string(stream), meta);
    }
  }
  if (meta == StreamMetadata{}) return true;
  std::optional<StreamVersion> head;
  if (meta.max_count > 0) {
    auto loaded = LoadHead(stream);
    if (loaded.ok()) head = *loaded;
  }
  return eventstore::Retained(meta, version, recorded_ns, now, head);
}

Status EventLog::SetStreamMetadata(std::string_view stream, const StreamMetadata& metadata) {
  if (options_.read_only) return Status::InvalidArgument("event log is open read-only");
  DOPPEL_RETURN_IF_ERROR(ValidateStreamName(stream));
  if (metadata.max_age_ns < 0) return Status::InvalidArgument("max age must not be negative");
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync;
  DOPPEL_RETURN_IF_ERROR(
      FromRocks(db_->Put(wo, stream_meta_cf_, std::string(stream), EncodeMetadata(metadata)),
                fmt::format("saving metadata of {}", stream)));
  std::lock_guard lock(cache_mu_);
  metadata_[std::string(stream)] = metadata;
  return Status::Ok();
}

Result<StreamMetadata> EventLog::GetStreamMetadata(std::string_view stream) const {
  DOPPEL_RETURN_IF_ERROR(ValidateStreamName(stream));
  std::string value;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), stream_meta_cf_, std::string(stream), &value);
  if (s.IsNotFound()) return StreamMetadata{};
  if (!s.ok()) return FromRocks(s, fmt::format("reading metadata of {}", stream));
  auto rec = schemas::VerifyStreamMetadataRecord(value);
  if (!rec.ok()) {
    return Status::Corruption(fmt::format("metadata of {}: {}", stream, rec.status().message()));
  }
  return StreamMetadata{(*rec)->max_age_ns(), (*rec)->max_count(), (*rec)->truncate_before()};
}

Status EventLog::PruneSnapshotHistory(std::string_view stream, StreamVersion first_kept,
                                      rocksdb::WriteBatch& batch) const {
  auto kept_since = RecordedTimeOf(stream, first_kept);
  if (!kept_since.ok()) return kept_since.status();
  if (!kept_since->has_value()) return Status::Ok();
  // Snapshots of what retention removes go with it, except the newest of them: the state the
  // first kept event applies to, without which the stream could not be folded any more.
  const std::string prefix = format::StreamPrefix(stream);
  const std::string limit = format::SnapshotHistoryKey(stream, **kept_since, first_kept);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), snapshots_cf_));
  std::string previous;
  for (it->Seek(prefix); it->Valid() && it->key().compare(limit) < 0; it->Next()) {
    if (!previous.empty()) batch.Delete(snapshots_cf_, previous);
    previous = it->key().ToString();
  }
  return FromRocks(it->status(), fmt::format("pruning snapshot history of {}", stream));
}

Status EventLog::Flush() {
  if (options_.read_only) return Status::InvalidArgument("event log is open read-only");
  rocksdb::FlushOptions flush;
  flush.wait = true;
  return FromRocks(db_->Flush(flush, handles_), fmt::format("flushing {}", dir_));
}

Result<ScavengeStats> EventLog::Scavenge() {
  if (options_.read_only) return Status::InvalidArgument("event log is open read-only");
  ScavengeStats stats;
  std::vector<std::string> streams;
  {
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), stream_meta_cf_));
    for (it->SeekToFirst(); it->Valid(); it->Next()) streams.push_back(it->key().ToString());
    if (!it->status().ok()) return FromRocks(it->status(), "listing stream metadata");
  }
  log::Progress progress(kComponent, "scavenge (streams with retention)", streams.size());
  const TimeNs now = Now();
  for (const std::string& stream : streams) {
    ++stats.streams_visited;
    auto head = LoadHead(stream);
    if (!head.ok()) return head.status();
    if (!head->has_value()) continue;
    rocksdb::WriteBatch batch;
    uint64_t removed = 0;
    StreamVersion first_kept = **head;
    const std::string prefix = format::StreamPrefix(stream);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), streams_cf_));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      if (it->key().size() != prefix.size() + 8) continue;
      const StreamVersion version = format::GetBigEndian64(View(it->key()).substr(prefix.size()));
      first_kept = version;
      if (version >= **head) break;  // the newest event always stays
      const GlobalPosition position = format::GetBigEndian64(View(it->value()));
      auto event = ReadAt(position);
      if (!event.ok()) return event.status();
      if (Retained(stream, version, event->recorded_ns(), now)) break;  // the rest are newer
      batch.Delete(log_cf_, format::LogKey(position));
      batch.Delete(streams_cf_, it->key());
      batch.Delete(ids_cf_, AsView(event->id().ToBytes()));
      ++removed;
    }
    if (!it->status().ok()) return FromRocks(it->status(), "scanning stream for scavenge");
    if (removed > 0) {
      DOPPEL_RETURN_IF_ERROR(PruneSnapshotHistory(stream, first_kept, batch));
    }
    if (removed > 0) {
      std::lock_guard lock(cache_mu_);
      std::string count;
      format::PutBigEndian64(&count, scavenged_ + removed);
      batch.Put(meta_cf_, format::kScavengedKey, count);
      rocksdb::WriteOptions wo;
      wo.sync = options_.sync;
      DOPPEL_RETURN_IF_ERROR(FromRocks(db_->Write(wo, &batch), "writing scavenge deletions"));
      scavenged_ += removed;
      stats.events_removed += removed;
    }
    progress.Update(stats.streams_visited);
  }
  progress.Finish(stats.streams_visited);
  log::Info(kComponent, "scavenge removed {} events; compacting", stats.events_removed);
  for (auto* cf : {log_cf_, streams_cf_, ids_cf_}) {
    rocksdb::CompactRangeOptions co;
    co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    DOPPEL_RETURN_IF_ERROR(FromRocks(db_->CompactRange(co, cf, nullptr, nullptr), "compacting"));
  }
  return stats;
}

}  // namespace doppel::eventstore
