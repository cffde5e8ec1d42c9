// PgEventStore appends: one READ COMMITTED transaction per try. Under a per-stream advisory
// lock (doppel writers to one stream take turns instead of colliding, and a resend waits for
// its original), the ids are looked up (a resent batch gets its original places back), then
// the stream's head, then one INSERT of the whole batch. A unique violation (a writer that
// bypasses the lock took the version or the id), a serialization failure or a deadlock runs
// the whole append again, which then answers as the log would. A COMMIT whose answer was
// lost is resolved by idempotency: the same events, same ids, are appended again on a new
// connection; if the first COMMIT went through, that finds them and answers with their places.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "doppel/core/log.h"
#include "doppel/eventstore/append_rules.h"
#include "pg_store_impl.h"

namespace doppel::pgstore {

using eventstore::AppendRequest;
using eventstore::AppendResult;
using eventstore::NewEvent;
using eventstore::StoredEvent;
using eventstore::StreamVersion;

namespace {

constexpr char kComponent[] = "pgstore";
constexpr int kMaxTries = 16;

constexpr char kLockStream[] = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))";
constexpr char kHead[] = "SELECT max(version) FROM events WHERE stream = $1";
constexpr char kInsert[] =
    "INSERT INTO events (stream, version, event_id, type, payload, payload_schema_version, "
    "occurred_ns, causation_id, correlation_id, recorded_ns) "
    "SELECT $1, $2 + u.o - 1, u.i, u.t, u.p, u.s, u.oc, u.c, u.r, $10 "
    "FROM unnest($3::uuid[], $4::text[], $5::bytea[], $6::int4[], $7::int8[], $8::uuid[], "
    "$9::uuid[]) WITH ORDINALITY AS u(i, t, p, s, oc, c, r, o) ORDER BY u.o "
    "RETURNING position, version";

}  // namespace

TimeNs PgStoreImpl::Now() const {
  return options_.wall_clock ? options_.wall_clock() : WallNowNs();
}

Result<AppendResult> PgStoreImpl::Append(AppendRequest request) {
  DOPPEL_RETURN_IF_ERROR(eventstore::CheckAppendRequest(request));
  // Ids before the first try: every retry is then idempotent.
  for (NewEvent& e : request.events) {
    if (e.id.is_nil()) e.id = options_.new_event_id ? options_.new_event_id() : EventId::Random();
  }
  Status last;
  bool commit_unknown = false;     // a COMMIT of ours went out and its answer never came
  TimeNs unknown_recorded_ns = 0;  // the time that try stored
  const int64_t give_up_ns = MonotonicNowNs() + 30'000'000'000;
  for (int attempt = 0;; ++attempt) {
    if (attempt > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(1 << attempt, 500)));
    }
    TryOutcome outcome;
    const TimeNs recorded_ns = Now();
    Result<AppendResult> result = Status::Unavailable("no connection");
    {
      auto conn = pool_.Acquire();
      if (!conn.ok()) {
        result = conn.status();
        outcome.connection_lost = true;
      } else {
        result = TryAppend(**conn, request, recorded_ns, &outcome);
      }
    }  // the connection goes back (or, broken, away) before any wait
    if (result.ok()) {
      // Our own lost COMMIT went through: these are our events, not a client's resend, and
      // they were stored with that try's time.
      if (commit_unknown && result->duplicate) {
        result->duplicate = false;
        result->recorded_ns = unknown_recorded_ns;
      }
      if (!result->duplicate) notifier_.Poke();
      return result;
    }
    last = result.status();
    if (!commit_unknown && outcome.commit_sent && outcome.connection_lost) {
      commit_unknown = true;
      unknown_recorded_ns = recorded_ns;
    }
    const bool again = commit_unknown ? outcome.connection_lost || outcome.retry : outcome.retry;
    if (!again) return result;
    if (MonotonicNowNs() > give_up_ns || (!commit_unknown && attempt + 1 >= kMaxTries)) break;
  }
  if (commit_unknown) {
    return Status::Unavailable(fmt::format(
        "append to {}: the connection was lost during COMMIT and PostgreSQL could not be "
        "reached again to find out whether it went through ({}); retry with the same event "
        "ids, which is safe",
        request.stream, last.message()));
  }
  return Status::Unavailable(fmt::format("append to {} kept colliding with other writers: {}",
                                         request.stream, last.message()));
}

Result<AppendResult> PgStoreImpl::TryAppend(PgConnection& conn, const AppendRequest& request,
                                            TimeNs recorded_ns, TryOutcome* outcome) {
  const std::string what = fmt::format("appending to {}", request.stream);
  const auto fail = [&](const Status& s) -> Status {
    outcome->retry = IsRetryableSqlState(conn.last_sqlstate());
    outcome->connection_lost = conn.broken();
    if (!conn.broken()) (void)conn.Exec("ROLLBACK", what);
    return s;
  };
  std::vector<std::optional<std::string>> ids;
  for (const NewEvent& e : request.events) ids.push_back(UuidBytes(e.id));

  // The fast path, one statement as a plain INSERT would be: a stream this store appended to
  // before, whose last version it remembers, and an expected version that holds on it. The
  // table's keys check the guess: a version another writer took, or an id stored before,
  // fails the INSERT with a unique violation, and the full path below answers.
  if (const auto cached = CachedHead(request.stream);
      cached && eventstore::CheckExpectedVersion(request.stream, request.expected, cached).ok()) {
    PgParams insert = InsertParams(request, ids, *cached + 1, recorded_ns);
    if (Status prepared = conn.Prepare(kInsert, insert, what); !prepared.ok()) {
      outcome->connection_lost = conn.broken();
      return prepared;
    }
    outcome->commit_sent = true;  // autocommit: the INSERT is its own COMMIT
    auto inserted = conn.Query(kInsert, insert, what);
    if (inserted.ok()) return Placed(*inserted, request, recorded_ns, what);
    outcome->connection_lost = conn.broken();
    if (outcome->connection_lost || conn.last_sqlstate() != "23505") {
      outcome->retry = IsRetryableSqlState(conn.last_sqlstate());
      return inserted.status();
    }
    outcome->commit_sent = false;
    ForgetHead(request.stream);
  }

  // One round trip: the transaction, the stream's lock (one doppel writer per stream at a
  // time; a resend waits here for its original), then, in snapshots taken after the lock,
  // the ids (idempotency) and the stream's head.
  auto looked = conn.Pipeline({{"BEGIN", PgParams()},
                               {kLockStream, PgParams().Text(request.stream)},
                               {kFindIds, PgParams().Array(kUuidArrayOid, kUuidOid, ids)},
                               {kHead, PgParams().Text(request.stream)}},
                              what);
  for (const auto& step : looked) {
    if (!step.ok()) return fail(step.status());
  }
  const PgResult& found = *looked[2];
  const PgResult& head = *looked[3];
  std::vector<std::optional<StoredEvent>> stored(request.events.size());
  for (int r = 0; r < found.rows(); ++r) {
    const EventId id = found.Uuid(r, 0);
    for (size_t i = 0; i < request.events.size(); ++i) {
      if (request.events[i].id != id) continue;
      stored[i] =
          StoredEvent{found.Text(r, 1), static_cast<StreamVersion>(found.Int8(r, 2)),
                      static_cast<uint64_t>(found.Int8(r, 3)), found.Text(r, 4), found.Text(r, 5)};
    }
  }
  auto resent = eventstore::MatchResentBatch(request, stored);
  if (!resent.ok()) return fail(resent.status());
  if (resent->has_value()) {
    (void)conn.Exec("ROLLBACK", what);
    return std::move(**resent);
  }

  // Optimistic concurrency.
  std::optional<StreamVersion> current;
  if (head.rows() == 1 && !head.IsNull(0, 0)) current = head.Int8(0, 0);
  if (Status s = eventstore::CheckExpectedVersion(request.stream, request.expected, current);
      !s.ok()) {
    return fail(s);
  }

  // The batch in one statement.
  PgParams insert = InsertParams(request, ids, current ? *current + 1 : 0, recorded_ns);
  // One round trip: the batch and the COMMIT.
  if (Status prepared = conn.Prepare(kInsert, insert, what); !prepared.ok()) return fail(prepared);
  outcome->commit_sent = true;
  auto second = conn.Pipeline({{kInsert, std::move(insert)}, {"COMMIT", PgParams()}}, what);
  if (!second[0].ok()) {
    outcome->commit_sent = conn.broken();  // the INSERT failed: the COMMIT was skipped
    return fail(second[0].status());
  }
  if (!second[1].ok()) return fail(second[1].status());
  return Placed(*second[0], request, recorded_ns, what);
}

PgParams PgStoreImpl::InsertParams(const AppendRequest& request,
                                   const std::vector<std::optional<std::string>>& ids,
                                   StreamVersion first, TimeNs recorded_ns) {
  std::vector<std::optional<std::string>> types, payloads, schema_versions, occurred, causes,
      correlations;
  for (const NewEvent& e : request.events) {
    types.emplace_back(e.type);
    payloads.emplace_back(e.payload);
    schema_versions.emplace_back(Int4Bytes(e.payload_schema_version));
    occurred.emplace_back(Int8Bytes(e.occurred_ns));
    causes.push_back(UuidBytes(e.causation_id));
    correlations.push_back(UuidBytes(e.correlation_id));
  }
  PgParams insert;
  insert.Text(request.stream)
      .Int8(static_cast<int64_t>(first))
      .Array(kUuidArrayOid, kUuidOid, ids)
      .Array(kTextArrayOid, kTextOid, types)
      .Array(kByteaArrayOid, kByteaOid, payloads)
      .Array(kInt4ArrayOid, kInt4Oid, schema_versions)
      .Array(kInt8ArrayOid, kInt8Oid, occurred)
      .Array(kUuidArrayOid, kUuidOid, causes)
      .Array(kUuidArrayOid, kUuidOid, correlations)
      .Int8(recorded_ns);
  return insert;
}

Result<AppendResult> PgStoreImpl::Placed(const PgResult& inserted, const AppendRequest& request,
                                         TimeNs recorded_ns, const std::string& what) {
  if (inserted.rows() != static_cast<int>(request.events.size())) {
    return Status::Corruption(fmt::format("{}: {} rows inserted for {} events", what,
                                          inserted.rows(), request.events.size()));
  }
  std::vector<std::pair<StreamVersion, uint64_t>> placed;  // version, position
  for (int r = 0; r < inserted.rows(); ++r) {
    placed.emplace_back(inserted.Int8(r, 1), inserted.Int8(r, 0));
  }
  std::sort(placed.begin(), placed.end());
  AppendResult result;
  result.first_version = placed.front().first;
  result.last_version = placed.back().first;
  result.first_position = placed.front().second;
  result.last_position = placed.back().second;
  result.recorded_ns = recorded_ns;
  for (const NewEvent& e : request.events) result.ids.push_back(e.id);
  RememberHead(request.stream, result.last_version);
  return result;
}

std::optional<StreamVersion> PgStoreImpl::CachedHead(const std::string& stream) {
  std::lock_guard lock(heads_mu_);
  auto it = heads_.find(stream);
  return it == heads_.end() ? std::nullopt : std::optional<StreamVersion>(it->second);
}

void PgStoreImpl::RememberHead(const std::string& stream, StreamVersion head) {
  std::lock_guard lock(heads_mu_);
  if (heads_.size() >= kMaxCachedHeads && !heads_.count(stream)) heads_.clear();
  StreamVersion& known = heads_[stream];
  known = std::max(known, head);
}

void PgStoreImpl::ForgetHead(const std::string& stream) {
  std::lock_guard lock(heads_mu_);
  heads_.erase(stream);
}

}  // namespace doppel::pgstore
