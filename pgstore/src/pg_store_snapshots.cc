// PgEventStore snapshots (the latest per stream, and a history keyed by the recorded time of
// the last event each covers, as the embedded log keeps them) and stream metadata.
#include <fmt/format.h>

#include "pg_store_impl.h"

namespace doppel::pgstore {

using eventstore::Snapshot;
using eventstore::StreamMetadata;

namespace {

constexpr char kSaveLatest[] =
    "INSERT INTO doppel_snapshots (stream, version, schema_version, recorded_ns, state) "
    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (stream) DO UPDATE SET version = excluded.version, "
    "schema_version = excluded.schema_version, recorded_ns = excluded.recorded_ns, "
    "state = excluded.state";
// Kept under the recorded time of the event it covers, when the stream holds that version.
constexpr char kSaveHistory[] =
    "INSERT INTO doppel_snapshot_history (stream, covered_ns, version, schema_version, "
    "recorded_ns, state) SELECT $1, e.recorded_ns, $2, $3, $4, $5 FROM events e "
    "WHERE e.stream = $1 AND e.version = $2 ON CONFLICT (stream, covered_ns, version) DO UPDATE "
    "SET schema_version = excluded.schema_version, recorded_ns = excluded.recorded_ns, "
    "state = excluded.state";
constexpr char kLoadLatest[] =
    "SELECT version, schema_version, recorded_ns, state, "
    "(SELECT e.recorded_ns FROM events e WHERE e.stream = s.stream AND e.version = s.version) "
    "FROM doppel_snapshots s WHERE s.stream = $1";
constexpr char kLoadAt[] =
    "SELECT version, schema_version, recorded_ns, state FROM doppel_snapshot_history "
    "WHERE stream = $1 AND covered_ns <= $2 ORDER BY covered_ns DESC, version DESC LIMIT 1";
constexpr char kSetMetadata[] =
    "INSERT INTO doppel_stream_metadata (stream, max_age_ns, max_count, truncate_before) "
    "VALUES ($1, $2, $3, $4) ON CONFLICT (stream) DO UPDATE SET max_age_ns = excluded.max_age_ns, "
    "max_count = excluded.max_count, truncate_before = excluded.truncate_before";
constexpr char kGetMetadata[] =
    "SELECT max_age_ns, max_count, truncate_before FROM doppel_stream_metadata WHERE stream = $1";

Snapshot SnapshotFromRow(std::string_view stream, const PgResult& rows) {
  Snapshot snap;
  snap.stream = std::string(stream);
  snap.version = static_cast<eventstore::StreamVersion>(rows.Int8(0, 0));
  snap.schema_version = static_cast<uint32_t>(rows.Int8(0, 1));
  snap.recorded_ns = rows.Int8(0, 2);
  snap.state = rows.Text(0, 3);
  return snap;
}

}  // namespace

Status PgStoreImpl::SaveSnapshot(const Snapshot& snapshot) {
  DOPPEL_RETURN_IF_ERROR(eventstore::ValidateStreamName(snapshot.stream));
  auto conn = pool_.Acquire();
  if (!conn.ok()) return conn.status();
  PgConnection& c = **conn;
  const std::string what = fmt::format("saving a snapshot of {}", snapshot.stream);
  PgParams params;
  params.Text(snapshot.stream)
      .Int8(static_cast<int64_t>(snapshot.version))
      .Int8(snapshot.schema_version)
      .Int8(snapshot.recorded_ns ? snapshot.recorded_ns : Now())
      .Bytea(snapshot.state);
  auto run = [&]() -> Status {
    auto begun = c.Exec("BEGIN", what);
    if (!begun.ok()) return begun.status();
    // A snapshot is derived from durable events; like the log, it is not waited for on disk.
    auto async = c.Exec("SET LOCAL synchronous_commit = off", what);
    if (!async.ok()) return async.status();
    auto latest = c.Query(kSaveLatest, params, what);
    if (!latest.ok()) return latest.status();
    auto history = c.Query(kSaveHistory, params, what);
    if (!history.ok()) return history.status();
    auto committed = c.Exec("COMMIT", what);
    return committed.ok() ? Status::Ok() : committed.status();
  };
  Status s = run();
  if (!s.ok() && !c.broken()) (void)c.Exec("ROLLBACK", what);
  return s;
}

Result<Snapshot> PgStoreImpl::LoadSnapshot(std::string_view stream) {
  DOPPEL_RETURN_IF_ERROR(eventstore::ValidateStreamName(stream));
  auto conn = pool_.Acquire();
  if (!conn.ok()) return conn.status();
  auto rows = (*conn)->Query(kLoadLatest, PgParams().Text(stream),
                             fmt::format("loading the snapshot of {}", stream));
  if (!rows.ok()) return rows.status();
  if (rows->rows() == 0) return Status::NotFound(fmt::format("no snapshot of {}", stream));
  return SnapshotFromRow(stream, *rows);
}

Result<Snapshot> PgStoreImpl::LoadSnapshotAt(std::string_view stream, TimeNs at) {
  if (at == eventstore::kTimeMax) return LoadSnapshot(stream);
  DOPPEL_RETURN_IF_ERROR(eventstore::ValidateStreamName(stream));
  auto conn = pool_.Acquire();
  if (!conn.ok()) return conn.status();
  const std::string what = fmt::format("loading the snapshot history of {}", stream);
  auto rows = (*conn)->Query(kLoadAt, PgParams().Text(stream).Int8(at), what);
  if (!rows.ok()) return rows.status();
  if (rows->rows() == 1) return SnapshotFromRow(stream, *rows);
  // None in the history: the latest may still do, if what it covers was recorded by then.
  auto latest = (*conn)->Query(kLoadLatest, PgParams().Text(stream), what);
  if (!latest.ok()) return latest.status();
  if (latest->rows() == 1 && !latest->IsNull(0, 4) && latest->Int8(0, 4) <= at) {
    return SnapshotFromRow(stream, *latest);
  }
  return Status::NotFound(fmt::format("no snapshot of {} at or before that time", stream));
}

Status PgStoreImpl::SetStreamMetadata(std::string_view stream, const StreamMetadata& metadata) {
  DOPPEL_RETURN_IF_ERROR(eventstore::ValidateStreamName(stream));
  if (metadata.max_age_ns < 0) return Status::InvalidArgument("max age must not be negative");
  auto conn = pool_.Acquire();
  if (!conn.ok()) return conn.status();
  auto done = (*conn)->Query(kSetMetadata,
                             PgParams()
                                 .Text(stream)
                                 .Int8(metadata.max_age_ns)
                                 .Int8(static_cast<int64_t>(metadata.max_count))
                                 .Int8(static_cast<int64_t>(metadata.truncate_before)),
                             fmt::format("saving metadata of {}", stream));
  return done.ok() ? Status::Ok() : done.status();
}

Result<StreamMetadata> PgStoreImpl::GetStreamMetadata(std::string_view stream) {
  DOPPEL_RETURN_IF_ERROR(eventstore::ValidateStreamName(stream));
  auto conn = pool_.Acquire();
  if (!conn.ok()) return conn.status();
  auto rows = (*conn)->Query(kGetMetadata, PgParams().Text(stream),
                             fmt::format("reading metadata of {}", stream));
  if (!rows.ok()) return rows.status();
  if (rows->rows() == 0) return StreamMetadata{};
  return StreamMetadata{rows->Int8(0, 0), static_cast<uint64_t>(rows->Int8(0, 1)),
                        static_cast<eventstore::StreamVersion>(rows->Int8(0, 2))};
}

}  // namespace doppel::pgstore
