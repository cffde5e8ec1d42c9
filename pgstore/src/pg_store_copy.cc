// PgEventStore copies (copied_batch.h): one READ COMMITTED transaction per batch. It takes the
// events table's row-write lock before anything else (so a tail that observes the commit
// horizon counts it as a writer from the moment it holds positions), then the copy's advisory
// lock; it checks the checkpoint, looks up the batch's ids and its streams' heads, takes one
// position per new event from the sequence (in order: the copy keeps the source's order), and
// inserts the events, the position map and the checkpoint before one COMMIT. A COMMIT whose
// answer was lost needs no resend by id: the checkpoint says whether it went through.
//
//   doppel_copy_checkpoints(name PRIMARY KEY, source_next, events)
//   doppel_copy_map(name, source_position, position, PRIMARY KEY (name, source_position))
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <unordered_map>

#include "doppel/eventstore/copy_rules.h"
#include "pg_store_impl.h"

namespace doppel::pgstore {

using eventstore::CopiedBatch;
using eventstore::CopyCheckpoint;
using eventstore::CopyResult;
using eventstore::GlobalPosition;
using eventstore::RecordedEvent;
using eventstore::StoredEvent;
using eventstore::StreamVersion;

namespace {

constexpr int kMaxTries = 8;

constexpr char kLockEvents[] = "LOCK TABLE events IN ROW EXCLUSIVE MODE";
constexpr char kLockCopier[] =
    "SELECT pg_advisory_xact_lock(hashtextextended('doppel copy ' || $1, 0))";
constexpr char kCheckpoint[] =
    "SELECT source_next, events FROM doppel_copy_checkpoints WHERE name = $1";
constexpr char kHeads[] =
    "SELECT s.stream, (SELECT max(e.version) FROM events e WHERE e.stream = s.stream) "
    "FROM unnest($1::text[]) AS s(stream)";
constexpr char kPositions[] = "SELECT events_next_position() FROM generate_series(1, $1)";
constexpr char kInsertEvents[] =
    "INSERT INTO events (position, stream, version, event_id, type, payload, "
    "payload_schema_version, recorded_ns, occurred_ns, causation_id, correlation_id) "
    "SELECT * FROM unnest($1::int8[], $2::text[], $3::int8[], $4::uuid[], $5::text[], "
    "$6::bytea[], $7::int4[], $8::int8[], $9::int8[], $10::uuid[], $11::uuid[])";
constexpr char kInsertMap[] =
    "INSERT INTO doppel_copy_map (name, source_position, position) "
    "SELECT $1, m.s, m.p FROM unnest($2::int8[], $3::int8[]) AS m(s, p)";
constexpr char kSaveCheckpoint[] =
    "INSERT INTO doppel_copy_checkpoints (name, source_next, events) VALUES ($1, $2, $3) "
    "ON CONFLICT (name) DO UPDATE SET source_next = EXCLUDED.source_next, events = "
    "EXCLUDED.events";
constexpr char kCopiedPosition[] =
    "SELECT position FROM doppel_copy_map WHERE name = $1 AND source_position >= $2 "
    "ORDER BY source_position LIMIT 1";

int64_t AsInt8(uint64_t v) { return static_cast<int64_t>(std::min<uint64_t>(v, INT64_MAX)); }

}  // namespace

Result<CopyCheckpoint> PgStoreImpl::LoadCopyCheckpoint(std::string_view copier) {
  auto conn = pool_.Acquire();
  if (!conn.ok()) return conn.status();
  auto row = (*conn)->Query(kCheckpoint, PgParams().Text(copier),
                            fmt::format("reading the checkpoint of copy {}", copier));
  if (!row.ok()) return row.status();
  if (row->rows() == 0) return CopyCheckpoint{};
  return CopyCheckpoint{static_cast<GlobalPosition>(row->Int8(0, 0)),
                        static_cast<uint64_t>(row->Int8(0, 1))};
}

Result<GlobalPosition> PgStoreImpl::CopiedPosition(std::string_view copier,
                                                   GlobalPosition source_position) {
  auto conn = pool_.Acquire();
  if (!conn.ok()) return conn.status();
  auto row = (*conn)->Query(kCopiedPosition, PgParams().Text(copier).Int8(AsInt8(source_position)),
                            fmt::format("reading the position map of copy {}", copier));
  if (!row.ok()) return row.status();
  if (row->rows() == 0) {
    return Status::NotFound(fmt::format("copy {} has taken nothing from source position {} on",
                                        copier, source_position));
  }
  return static_cast<GlobalPosition>(row->Int8(0, 0));
}

Result<CopyResult> PgStoreImpl::AppendCopied(const CopiedBatch& batch) {
  DOPPEL_RETURN_IF_ERROR(eventstore::CheckCopiedBatch(batch));
  Status last;
  for (int attempt = 0; attempt < kMaxTries; ++attempt) {
    if (attempt > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(1 << attempt, 200)));
    }
    auto conn = pool_.Acquire();
    if (!conn.ok()) return conn.status();
    bool retry = false;
    auto result = TryCopy(**conn, batch, &retry);
    if (result.ok()) {
      if (result->written > 0) notifier_.Poke();
      return result;
    }
    last = result.status();
    if (!retry) return result;
  }
  return Status::Unavailable(
      fmt::format("copy {} kept colliding with other writers: {}", batch.copier, last.message()));
}

Result<CopyResult> PgStoreImpl::TryCopy(PgConnection& conn, const CopiedBatch& batch, bool* retry) {
  const std::string what = fmt::format("copy {}", batch.copier);
  const auto fail = [&](const Status& s) -> Status {
    *retry = IsRetryableSqlState(conn.last_sqlstate());
    if (!conn.broken()) (void)conn.Exec("ROLLBACK", what);
    // A connection lost during COMMIT leaves the outcome to the checkpoint: the caller reads
    // it again before its next batch.
    if (conn.broken()) {
      return Status::Unavailable(
          fmt::format("{}: the connection was lost ({}); the copy's "
                      "checkpoint says whether the batch went in",
                      what, s.message()));
    }
    return s;
  };
  std::vector<std::optional<std::string>> ids, streams;
  {
    std::unordered_map<std::string_view, bool> seen;
    for (const RecordedEvent& e : batch.events) {
      ids.push_back(UuidBytes(e.id()));
      if (seen.emplace(e.stream(), true).second) streams.emplace_back(std::string(e.stream()));
    }
  }
  auto looked = conn.Pipeline({{"BEGIN", PgParams()},
                               {kLockEvents, PgParams()},
                               {kLockCopier, PgParams().Text(batch.copier)},
                               {kCheckpoint, PgParams().Text(batch.copier)},
                               {kFindIds, PgParams().Array(kUuidArrayOid, kUuidOid, ids)},
                               {kHeads, PgParams().Array(kTextArrayOid, kTextOid, streams)}},
                              what);
  for (const auto& step : looked) {
    if (!step.ok()) return fail(step.status());
  }
  CopyCheckpoint current;
  if (looked[3]->rows() == 1) {
    current = CopyCheckpoint{static_cast<GlobalPosition>(looked[3]->Int8(0, 0)),
                             static_cast<uint64_t>(looked[3]->Int8(0, 1))};
  }
  std::unordered_map<EventId, StoredEvent, EventIdHash> stored;
  const PgResult& found = *looked[4];
  for (int r = 0; r < found.rows(); ++r) {
    stored.emplace(
        found.Uuid(r, 0),
        StoredEvent{found.Text(r, 1), static_cast<StreamVersion>(found.Int8(r, 2)),
                    static_cast<uint64_t>(found.Int8(r, 3)), found.Text(r, 4), found.Text(r, 5)});
  }
  if (eventstore::MaybeResentCopy(batch, current)) {
    uint64_t there = 0;
    for (const RecordedEvent& e : batch.events) {
      auto it = stored.find(e.id());
      if (it == stored.end()) break;
      auto place = eventstore::PlaceCopiedEvent(e, it->second, std::nullopt);
      if (place.ok() && place->has_value()) ++there;
    }
    if (there == batch.events.size()) {
      (void)conn.Exec("ROLLBACK", what);
      return CopyResult{0, there, current};
    }
  }
  if (Status s = eventstore::CheckCopyCheckpoint(batch, current); !s.ok()) return fail(s);
  std::unordered_map<std::string, std::optional<StreamVersion>> heads;
  const PgResult& head_rows = *looked[5];
  for (int r = 0; r < head_rows.rows(); ++r) {
    std::optional<StreamVersion> head;
    if (!head_rows.IsNull(r, 1)) head = static_cast<StreamVersion>(head_rows.Int8(r, 1));
    heads[head_rows.Text(r, 0)] = head;
  }

  // Which events are new, and where the others already are.
  size_t fresh = 0;  // events to write
  std::vector<std::optional<GlobalPosition>> placed(batch.events.size());
  for (size_t i = 0; i < batch.events.size(); ++i) {
    const RecordedEvent& e = batch.events[i];
    auto it = stored.find(e.id());
    std::optional<StoredEvent> there;
    if (it != stored.end()) there = it->second;
    std::optional<StreamVersion>& head = heads[std::string(e.stream())];
    auto place = eventstore::PlaceCopiedEvent(e, there, head);
    if (!place.ok()) return fail(place.status());
    placed[i] = *place;
    if (!place->has_value()) {
      ++fresh;
      head = e.version();
    }
  }

  CopyResult result;
  result.written = fresh;
  result.present = batch.events.size() - fresh;
  result.checkpoint = CopyCheckpoint{batch.source_next, current.events + batch.events.size()};
  std::vector<PgConnection::Step> steps;
  if (fresh > 0) {
    auto positions = conn.Query(kPositions, PgParams().Int8(static_cast<int64_t>(fresh)), what);
    if (!positions.ok()) return fail(positions.status());
    if (positions->rows() != static_cast<int>(fresh)) {
      return fail(Status::Corruption(
          fmt::format("{}: {} positions for {} events", what, positions->rows(), fresh)));
    }
    std::vector<int64_t> taken;
    for (int r = 0; r < positions->rows(); ++r) taken.push_back(positions->Int8(r, 0));
    std::sort(taken.begin(), taken.end());
    std::vector<std::optional<std::string>> pos, strs, versions, fresh_ids, types, payloads,
        schema_versions, recorded, occurred, causes, correlations;
    for (size_t i = 0, f = 0; i < batch.events.size(); ++i) {
      if (placed[i].has_value()) continue;
      const RecordedEvent& e = batch.events[i];
      const eventstore::NewEvent n = eventstore::AsNewEvent(e);
      placed[i] = static_cast<GlobalPosition>(taken[f++]);
      pos.emplace_back(Int8Bytes(static_cast<int64_t>(*placed[i])));
      strs.emplace_back(std::string(e.stream()));
      versions.emplace_back(Int8Bytes(AsInt8(e.version())));
      fresh_ids.push_back(UuidBytes(n.id));
      types.emplace_back(n.type);
      payloads.emplace_back(n.payload);
      schema_versions.emplace_back(Int4Bytes(n.payload_schema_version));
      recorded.emplace_back(Int8Bytes(e.recorded_ns()));
      occurred.emplace_back(Int8Bytes(n.occurred_ns));
      causes.push_back(UuidBytes(n.causation_id));
      correlations.push_back(UuidBytes(n.correlation_id));
    }
    PgParams insert;
    insert.Array(kInt8ArrayOid, kInt8Oid, pos)
        .Array(kTextArrayOid, kTextOid, strs)
        .Array(kInt8ArrayOid, kInt8Oid, versions)
        .Array(kUuidArrayOid, kUuidOid, fresh_ids)
        .Array(kTextArrayOid, kTextOid, types)
        .Array(kByteaArrayOid, kByteaOid, payloads)
        .Array(kInt4ArrayOid, kInt4Oid, schema_versions)
        .Array(kInt8ArrayOid, kInt8Oid, recorded)
        .Array(kInt8ArrayOid, kInt8Oid, occurred)
        .Array(kUuidArrayOid, kUuidOid, causes)
        .Array(kUuidArrayOid, kUuidOid, correlations);
    steps.push_back({kInsertEvents, std::move(insert)});
  }
  if (!batch.events.empty()) {
    std::vector<std::optional<std::string>> sources, targets;
    for (size_t i = 0; i < batch.events.size(); ++i) {
      sources.emplace_back(Int8Bytes(AsInt8(batch.events[i].position())));
      targets.emplace_back(Int8Bytes(static_cast<int64_t>(*placed[i])));
    }
    steps.push_back({kInsertMap, PgParams()
                                     .Text(batch.copier)
                                     .Array(kInt8ArrayOid, kInt8Oid, sources)
                                     .Array(kInt8ArrayOid, kInt8Oid, targets)});
  }
  steps.push_back({kSaveCheckpoint, PgParams()
                                        .Text(batch.copier)
                                        .Int8(AsInt8(result.checkpoint.source_next))
                                        .Int8(AsInt8(result.checkpoint.events))});
  steps.push_back({"COMMIT", PgParams()});
  auto written = conn.Pipeline(steps, what);
  for (const auto& step : written) {
    if (!step.ok()) return fail(step.status());
  }
  for (size_t i = 0; i < batch.events.size(); ++i) {
    if (placed[i].has_value()) {
      RememberHead(std::string(batch.events[i].stream()), batch.events[i].version());
    }
  }
  return result;
}

}  // namespace doppel::pgstore
