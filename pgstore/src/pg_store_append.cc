// PgEventStore appends: one READ COMMITTED transaction per try. The ids are looked up first
// (a resent batch gets its original places back), then the stream's head under a per-stream
// advisory lock (doppel writers to one stream take turns instead of colliding), then one
// INSERT of the whole batch. A unique violation (a writer that bypasses the lock took the
// version or the id), a serialization failure or a deadlock runs the whole append again,
// which then answers as the log would. A COMMIT whose answer was lost is resolved by asking
// the server what became of the transaction, never by appending blindly.
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

constexpr char kFindIds[] =
    "SELECT event_id, stream, version, position, type, payload FROM events "
    "WHERE event_id = ANY($1::uuid[])";
constexpr char kLockStream[] = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))";
constexpr char kHead[] = "SELECT max(version) FROM events WHERE stream = $1";
constexpr char kInsert[] =
    "INSERT INTO events (stream, version, event_id, type, payload, payload_schema_version, "
    "occurred_ns, causation_id, correlation_id, recorded_ns) "
    "SELECT $1, $2 + u.o - 1, u.i, u.t, u.p, u.s, u.oc, u.c, u.r, $10 "
    "FROM unnest($3::uuid[], $4::text[], $5::bytea[], $6::int4[], $7::int8[], $8::uuid[], "
    "$9::uuid[]) WITH ORDINALITY AS u(i, t, p, s, oc, c, r, o) ORDER BY u.o "
    "RETURNING position, version";
constexpr char kXactStatus[] = "SELECT pg_xact_status($1::text::xid8)";

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
  for (int attempt = 0; attempt < kMaxTries; ++attempt) {
    if (attempt > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(1 << attempt, 100)));
    }
    auto conn = pool_.Acquire();
    if (!conn.ok()) return conn.status();
    bool retry = false;
    auto result = TryAppend(**conn, request, Now(), &retry);
    if (result.ok() || !retry) return result;
    last = result.status();
  }
  return Status::Unavailable(fmt::format("append to {} kept colliding with other writers: {}",
                                         request.stream, last.message()));
}

Result<AppendResult> PgStoreImpl::TryAppend(PgConnection& conn, const AppendRequest& request,
                                            TimeNs recorded_ns, bool* retry) {
  *retry = false;
  const std::string what = fmt::format("appending to {}", request.stream);
  const auto fail = [&](const Status& s) -> Status {
    *retry = IsRetryableSqlState(conn.last_sqlstate());
    if (!conn.broken()) (void)conn.Exec("ROLLBACK", what);
    return s;
  };
  auto begun = conn.Exec("BEGIN", what);
  if (!begun.ok()) return fail(begun.status());
  auto xid = conn.Exec("SELECT pg_current_xact_id()::text", what);
  if (!xid.ok()) return fail(xid.status());
  const uint64_t xid_value = std::stoull(xid->Text(0, 0));

  // Idempotency.
  std::vector<std::optional<std::string>> ids;
  for (const NewEvent& e : request.events) ids.push_back(UuidBytes(e.id));
  auto found = conn.Query(kFindIds, PgParams().Array(kUuidArrayOid, kUuidOid, ids), what);
  if (!found.ok()) return fail(found.status());
  std::vector<std::optional<StoredEvent>> stored(request.events.size());
  for (int r = 0; r < found->rows(); ++r) {
    const EventId id = found->Uuid(r, 0);
    for (size_t i = 0; i < request.events.size(); ++i) {
      if (request.events[i].id != id) continue;
      stored[i] = StoredEvent{found->Text(r, 1), static_cast<StreamVersion>(found->Int8(r, 2)),
                              static_cast<uint64_t>(found->Int8(r, 3)), found->Text(r, 4),
                              found->Text(r, 5)};
    }
  }
  auto resent = eventstore::MatchResentBatch(request, stored);
  if (!resent.ok()) return fail(resent.status());
  if (resent->has_value()) {
    (void)conn.Exec("ROLLBACK", what);
    return std::move(**resent);
  }

  // Optimistic concurrency, one doppel writer per stream at a time.
  auto locked = conn.Query(kLockStream, PgParams().Text(request.stream), what);
  if (!locked.ok()) return fail(locked.status());
  auto head = conn.Query(kHead, PgParams().Text(request.stream), what);
  if (!head.ok()) return fail(head.status());
  std::optional<StreamVersion> current;
  if (head->rows() == 1 && !head->IsNull(0, 0)) current = head->Int8(0, 0);
  if (Status s = eventstore::CheckExpectedVersion(request.stream, request.expected, current);
      !s.ok()) {
    return fail(s);
  }

  // The batch in one statement.
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
  const StreamVersion first = current ? *current + 1 : 0;
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
  auto inserted = conn.Query(kInsert, insert, what);
  if (!inserted.ok()) return fail(inserted.status());
  if (inserted->rows() != static_cast<int>(request.events.size())) {
    return fail(Status::Corruption(fmt::format("{}: {} rows inserted for {} events", what,
                                               inserted->rows(), request.events.size())));
  }
  std::vector<std::pair<StreamVersion, uint64_t>> placed;  // version, position
  for (int r = 0; r < inserted->rows(); ++r) {
    placed.emplace_back(inserted->Int8(r, 1), inserted->Int8(r, 0));
  }
  std::sort(placed.begin(), placed.end());
  AppendResult result;
  result.first_version = placed.front().first;
  result.last_version = placed.back().first;
  result.first_position = placed.front().second;
  result.last_position = placed.back().second;
  result.recorded_ns = recorded_ns;
  for (const NewEvent& e : request.events) result.ids.push_back(e.id);

  auto committed = conn.Exec("COMMIT", what);
  if (committed.ok()) return result;
  if (!conn.broken()) return fail(committed.status());
  // The COMMIT went out and no answer came back: ask what became of the transaction.
  for (int attempt = 0; attempt < 20; ++attempt) {
    const std::optional<bool> outcome = Committed(xid_value);
    if (outcome.has_value()) {
      if (*outcome) return result;
      *retry = true;  // rolled back: nothing of it is stored
      return Status::Unavailable(fmt::format("{}: the connection was lost before COMMIT", what));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + 100 * attempt));
  }
  return Status::Unavailable(fmt::format(
      "{}: the connection was lost during COMMIT and the server cannot be asked whether it "
      "committed (transaction {}); retry with the same event ids, which is safe",
      what, xid_value));
}

std::optional<bool> PgStoreImpl::Committed(uint64_t xid) {
  auto conn = pool_.Acquire();
  if (!conn.ok()) return std::nullopt;
  auto status = (*conn)->Query(kXactStatus, PgParams().Text(std::to_string(xid)),
                               "asking whether a commit went through");
  if (!status.ok() || status->rows() != 1 || status->IsNull(0, 0)) return std::nullopt;
  const std::string text = status->Text(0, 0);
  if (text == "committed") return true;
  if (text == "aborted") return false;
  return std::nullopt;  // in progress: the server has not noticed the lost client yet
}

}  // namespace doppel::pgstore
