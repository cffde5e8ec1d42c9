// PgEventStore's insides, shared by its files: appends (pg_store_append.cc), reads
// (pg_store_reads.cc), snapshots and metadata (pg_store_snapshots.cc).
#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "commit_horizon.h"
#include "doppel/eventstore/event_log.h"
#include "doppel/eventstore/types.h"
#include "doppel/pgstore/pg_event_store.h"
#include "pg_notifier.h"
#include "pg_pool.h"

namespace doppel::pgstore {

// The events table's columns as every read selects them, in this order.
inline constexpr char kEventColumns[] =
    "e.position, e.stream, e.version, e.event_id, e.type, e.payload, e.payload_schema_version, "
    "e.recorded_ns, e.occurred_ns, e.causation_id, e.correlation_id";
inline constexpr int kEventColumnCount = 11;

// The events stored under any of the ids in $1: event_id, stream, version, position, type,
// payload (what the idempotency rules compare).
inline constexpr char kFindIds[] =
    "SELECT event_id, stream, version, position, type, payload FROM events "
    "WHERE event_id = ANY($1::uuid[])";

// Retention columns that follow kEventColumns in reads that judge it.
inline constexpr char kRetentionColumns[] =
    "m.max_age_ns, m.max_count, m.truncate_before, CASE WHEN m.max_count <> 0 THEN "
    "(SELECT max(h.version) FROM events h WHERE h.stream = e.stream) END";

class PgStoreImpl {
 public:
  PgStoreImpl(const std::string& url, PgEventStoreOptions options)
      : options_(std::move(options)), pool_(url, options_.connections), notifier_(url) {}

  TimeNs Now() const;
  Result<eventstore::AppendResult> Append(eventstore::AppendRequest request);
  Result<eventstore::ReadPage> ReadStream(std::string_view stream, eventstore::StreamVersion from,
                                          eventstore::Direction direction, size_t max_count);
  Result<eventstore::ReadPage> ReadAll(eventstore::GlobalPosition from, size_t max_count,
                                       TimeNs until_ns);
  Result<eventstore::GlobalPosition> PositionAtTime(TimeNs t);
  Result<eventstore::StreamVersion> StreamHead(std::string_view stream);
  Result<eventstore::StreamList> ListStreams(std::string_view prefix, std::string_view after,
                                             size_t max_count);
  Status SaveSnapshot(const eventstore::Snapshot& snapshot);
  Result<eventstore::Snapshot> LoadSnapshot(std::string_view stream);
  Result<eventstore::Snapshot> LoadSnapshotAt(std::string_view stream, TimeNs at);
  Status SetStreamMetadata(std::string_view stream, const eventstore::StreamMetadata& metadata);
  Result<eventstore::StreamMetadata> GetStreamMetadata(std::string_view stream);
  uint64_t horizon() const;
  // The highest position visible now (0: none).
  Result<uint64_t> MaxPosition();
  eventstore::VerifyReport Verify();
  // Copies (pg_store_copy.cc).
  Result<eventstore::CopyResult> AppendCopied(const eventstore::CopiedBatch& batch);
  Result<eventstore::CopyCheckpoint> LoadCopyCheckpoint(std::string_view copier);
  Result<eventstore::GlobalPosition> CopiedPosition(std::string_view copier,
                                                    eventstore::GlobalPosition source_position);

  PgPool& pool() { return pool_; }
  const PgEventStoreOptions& options() const { return options_; }

 private:
  // How one try of an append ended, besides its result.
  struct TryOutcome {
    bool retry = false;            // a collision: running it again may succeed
    bool connection_lost = false;  // the connection broke
    bool commit_sent = false;      // COMMIT went out (its answer may not have come back)
  };
  // One try of an append in one transaction.
  Result<eventstore::AppendResult> TryAppend(PgConnection& conn,
                                             const eventstore::AppendRequest& request,
                                             TimeNs recorded_ns, TryOutcome* outcome);
  // One try of a copied batch in one transaction; `retry` when running it again may succeed.
  Result<eventstore::CopyResult> TryCopy(PgConnection& conn, const eventstore::CopiedBatch& batch,
                                         bool* retry);
  // The INSERT's parameters for `request` at versions from `first`.
  static PgParams InsertParams(const eventstore::AppendRequest& request,
                               const std::vector<std::optional<std::string>>& ids,
                               eventstore::StreamVersion first, TimeNs recorded_ns);
  // The INSERT's RETURNING rows as the append's result (and the stream's head remembered).
  Result<eventstore::AppendResult> Placed(const PgResult& inserted,
                                          const eventstore::AppendRequest& request,
                                          TimeNs recorded_ns, const std::string& what);
  // Stream heads this store saw last, for the one-statement fast path; a guess that the
  // table's unique keys check, never trusted for correctness.
  std::optional<eventstore::StreamVersion> CachedHead(const std::string& stream);
  void RememberHead(const std::string& stream, eventstore::StreamVersion head);
  void ForgetHead(const std::string& stream);
  // The commit horizon as of a new observation made on `conn` (commit_horizon.h).
  Result<uint64_t> ObserveHorizon(PgConnection& conn, uint64_t* max_visible);

  const PgEventStoreOptions options_;
  PgPool pool_;
  PgNotifier notifier_;  // wakes subscribers after appends
  static constexpr size_t kMaxCachedHeads = 1 << 16;
  std::mutex heads_mu_;
  std::unordered_map<std::string, eventstore::StreamVersion> heads_;
  mutable std::mutex horizon_mu_;
  CommitHorizon horizon_;
};

// A row of kEventColumns (from column `first`) as a verified RecordedEvent.
Result<eventstore::RecordedEvent> EventFromRow(const PgResult& rows, int row);
// Retention columns (kRetentionColumns at `first`) as metadata and the stream's head.
eventstore::StreamMetadata MetadataFromRow(const PgResult& rows, int row, int first,
                                           std::optional<eventstore::StreamVersion>* head);

}  // namespace doppel::pgstore
