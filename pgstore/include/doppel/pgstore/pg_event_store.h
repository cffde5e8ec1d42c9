// PgEventStore: doppel's EventStore over a PostgreSQL database (libpq), with exactly the
// embedded log's semantics (append_rules.h): expected versions, atomic batches, idempotency by
// event id, retention, snapshots with a history. The table is the layout a fleet would
// already keep its events in (`doppel pg-store init` creates it; see pg_schema.cc):
//
//   events(position bigserial, stream, version, event_id uuid UNIQUE, type, payload bytea,
//          payload_schema_version, recorded_ns, occurred_ns, causation_id, correlation_id,
//          UNIQUE (stream, version))
//
// Copies (copied_batch.h) keep their checkpoints and position maps in doppel_copy_checkpoints
// and doppel_copy_map, written in the same transaction as the events they cover.
//
// Differences from the embedded log, each a property of PostgreSQL: positions start at 1 and
// have gaps (a rolled-back transaction burns its sequence values), so a batch's positions
// grow but need not be contiguous; ReadAll delivers a position only once every lower one is
// final (commit_horizon.h), so a row committed late is never skipped.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "doppel/eventstore/event_log.h"
#include "doppel/eventstore/event_store.h"

namespace doppel::pgstore {

struct PgEventStoreOptions {
  // Connections, and threads serving AppendAsync.
  size_t connections = 4;
  // The time recorded with appends and retention judges by, and ids for events sent without
  // one. Empty: the wall clock and random ids.
  std::function<TimeNs()> wall_clock;
  std::function<EventId()> new_event_id;
};

class PgStoreImpl;
class AsyncAppender;

class PgEventStore final : public eventstore::EventStore {
 public:
  // Creates doppel's tables in the database at `url` where missing (idempotent). An existing
  // events table of another layout is refused with NotADoppelLog naming the difference.
  static Status InitSchema(const std::string& url);
  // Connects and checks the schema (NotADoppelLog when it is missing or different).
  static Result<std::unique_ptr<PgEventStore>> Open(const std::string& url,
                                                    PgEventStoreOptions options = {});
  ~PgEventStore() override;

  Result<eventstore::AppendResult> Append(eventstore::AppendRequest request) override;
  void AppendAsync(eventstore::AppendRequest request, AppendCallback done) override;
  Result<eventstore::ReadPage> ReadStream(std::string_view stream, eventstore::StreamVersion from,
                                          eventstore::Direction direction,
                                          size_t max_count) const override;
  Result<eventstore::ReadPage> ReadAll(eventstore::GlobalPosition from, size_t max_count,
                                       TimeNs until_ns = eventstore::kTimeMax) const override;
  Result<eventstore::GlobalPosition> PositionAtTime(TimeNs t) const override;
  Result<eventstore::StreamVersion> StreamHead(std::string_view stream) const override;
  Result<eventstore::StreamList> ListStreams(std::string_view prefix, std::string_view after,
                                             size_t max_count) const override;
  Status SaveSnapshot(const eventstore::Snapshot& snapshot) override;
  Result<eventstore::Snapshot> LoadSnapshot(std::string_view stream) const override;
  Result<eventstore::Snapshot> LoadSnapshotAt(std::string_view stream, TimeNs at) const override;
  Status SetStreamMetadata(std::string_view stream,
                           const eventstore::StreamMetadata& metadata) override;
  Result<eventstore::StreamMetadata> GetStreamMetadata(std::string_view stream) const override;
  Result<eventstore::GlobalPosition> EndPosition() const override;

  // Copies, in one transaction per batch (pg_store_copy.cc).
  Result<eventstore::CopyResult> AppendCopied(const eventstore::CopiedBatch& batch) override;
  Result<eventstore::CopyCheckpoint> LoadCopyCheckpoint(std::string_view copier) const override;
  Result<eventstore::GlobalPosition> CopiedPosition(
      std::string_view copier, eventstore::GlobalPosition source_position) const override;

  // Checks the schema, that every row is a valid event and that each stream's versions are
  // dense from 0; logs progress.
  eventstore::VerifyReport Verify() const;

  // The highest position visible now (0: none), final or not.
  Result<eventstore::GlobalPosition> MaxPosition() const;

  // The highest position ReadAll has found final (every lower row committed or never to be).
  eventstore::GlobalPosition CommitHorizon() const;

 private:
  explicit PgEventStore(std::unique_ptr<PgStoreImpl> impl);
  std::unique_ptr<PgStoreImpl> impl_;
  std::unique_ptr<AsyncAppender> async_;
};

}  // namespace doppel::pgstore
