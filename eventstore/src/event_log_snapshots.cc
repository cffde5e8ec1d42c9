// EventLog snapshots: the latest of each stream, and a history of them keyed by the recorded
// time of the last event each covers, so the state at any moment starts from the nearest one
// before it (replay seeks, `doppel state --at`).
#include <fmt/format.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include "doppel/core/aligned_bytes.h"
#include "doppel/core/log.h"
#include "doppel/eventstore/event_log.h"
#include "doppel/eventstore/log_format.h"
#include "doppel/schemas/payloads.h"
#include "event_log_internal.h"

namespace doppel::eventstore {

using internal::AsView;
using internal::FromRocks;
using internal::View;

namespace {

// `value` may be a RocksDB value in place (pinned in a block, at any address): everything is
// copied out, from an aligned copy when it is not 8-aligned.
Result<Snapshot> DecodeSnapshot(std::string_view stream, std::string_view value) {
  std::vector<uint64_t> scratch;
  auto rec = schemas::VerifySnapshotRecord(
      std::string_view(reinterpret_cast<const char*>(AlignedBytes(value, scratch)), value.size()));
  if (!rec.ok()) {
    return Status::Corruption(fmt::format("snapshot of {}: {}", stream, rec.status().message()));
  }
  Snapshot snap;
  snap.stream = (*rec)->stream()->str();
  snap.version = (*rec)->stream_version();
  snap.schema_version = (*rec)->schema_version();
  snap.recorded_ns = (*rec)->recorded_ns();
  if ((*rec)->state() != nullptr) {
    snap.state.assign(reinterpret_cast<const char*>((*rec)->state()->data()),
                      (*rec)->state()->size());
  }
  return snap;
}

}  // namespace

Result<std::optional<TimeNs>> EventLog::RecordedTimeOf(std::string_view stream,
                                                       StreamVersion version) const {
  std::string value;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), streams_cf_, format::StreamKey(stream, version), &value);
  if (s.IsNotFound()) return std::optional<TimeNs>();
  if (!s.ok()) return FromRocks(s, fmt::format("reading {} at version {}", stream, version));
  if (value.size() != 8) {
    return Status::Corruption(fmt::format("stream index of {} at version {}", stream, version));
  }
  auto event = ReadAt(format::GetBigEndian64(value));
  if (event.status().code() == Status::Code::kNotFound) return std::optional<TimeNs>();
  if (!event.ok()) return event.status();
  return std::optional<TimeNs>(event->recorded_ns());
}

Status EventLog::SaveSnapshot(const Snapshot& snapshot) {
  if (options_.read_only) return Status::InvalidArgument("event log is open read-only");
  DOPPEL_RETURN_IF_ERROR(ValidateStreamName(snapshot.stream));
  flatbuffers::FlatBufferBuilder fbb(snapshot.state.size() + 128);
  auto stream = fbb.CreateString(snapshot.stream);
  auto state = fbb.CreateVector(reinterpret_cast<const uint8_t*>(snapshot.state.data()),
                                snapshot.state.size());
  fbb.Finish(fb::CreateSnapshotRecord(fbb, stream, snapshot.version, snapshot.schema_version,
                                      snapshot.recorded_ns ? snapshot.recorded_ns : Now(), state));
  const rocksdb::Slice value(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
  rocksdb::WriteBatch batch;
  batch.Put(snapshots_cf_, snapshot.stream, value);
  // The history keeps it under the time of the last event it covers; a snapshot of a version
  // the stream does not hold (a consumer's checkpoint, a stream scavenged past it) is only the
  // latest.
  auto covered_until = RecordedTimeOf(snapshot.stream, snapshot.version);
  if (!covered_until.ok()) return covered_until.status();
  if (covered_until->has_value()) {
    batch.Put(snapshots_cf_,
              format::SnapshotHistoryKey(snapshot.stream, **covered_until, snapshot.version),
              value);
  }
  // Not synced: a snapshot is derived (the events it folds are the durable truth) and a crash
  // that loses one only makes a fold start further back. The WAL is one file, so the next
  // synced append makes it durable anyway; twins save one every few dozen events and must not
  // wait for a disk flush each time.
  rocksdb::WriteOptions wo;
  wo.sync = false;
  return FromRocks(db_->Write(wo, &batch), fmt::format("saving snapshot of {}", snapshot.stream));
}

Result<Snapshot> EventLog::LoadSnapshot(std::string_view stream) const {
  DOPPEL_RETURN_IF_ERROR(ValidateStreamName(stream));
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), snapshots_cf_, std::string(stream), &value);
  if (s.IsNotFound()) return Status::NotFound(fmt::format("no snapshot of {}", stream));
  if (!s.ok()) return FromRocks(s, fmt::format("loading snapshot of {}", stream));
  return DecodeSnapshot(stream, value);
}

Result<Snapshot> EventLog::LoadSnapshotAt(std::string_view stream, TimeNs at) const {
  DOPPEL_RETURN_IF_ERROR(ValidateStreamName(stream));
  if (at == kTimeMax) return LoadSnapshot(stream);
  const std::string prefix = format::StreamPrefix(stream);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), snapshots_cf_));
  it->SeekForPrev(format::SnapshotHistoryKey(stream, at, UINT64_MAX));
  if (it->Valid() && it->key().starts_with(prefix)) {
    return DecodeSnapshot(stream, View(it->value()));
  }
  if (!it->status().ok()) {
    return FromRocks(it->status(), fmt::format("loading snapshot history of {}", stream));
  }
  // None in the history: the latest may still do (saved before the log kept a history).
  auto latest = LoadSnapshot(stream);
  if (!latest.ok()) return latest.status();
  auto covered_until = RecordedTimeOf(stream, latest->version);
  if (!covered_until.ok()) return covered_until.status();
  if (covered_until->has_value() && **covered_until <= at) return latest;
  return Status::NotFound(fmt::format("no snapshot of {} at or before that time", stream));
}

}  // namespace doppel::eventstore
