// EventStore: what every part of doppel can ask of a store, whether it is embedded
// (EventLog, a data directory) or remote (the store server's client). Tools and services
// are written against this interface so only the way the store is reached differs.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "doppel/eventstore/copied_batch.h"
#include "doppel/eventstore/types.h"

namespace doppel::eventstore {

class EventStore {
 public:
  virtual ~EventStore() = default;

  // Appends atomically if request.expected holds; returns once durable. See EventLog.
  virtual Result<AppendResult> Append(AppendRequest request) = 0;
  // Appends without blocking; `done` runs once the append is durable or failed, possibly on
  // an internal thread, so it must be quick. Many appends may be in flight.
  using AppendCallback = std::function<void(Result<AppendResult>)>;
  virtual void AppendAsync(AppendRequest request, AppendCallback done) = 0;
  virtual Result<ReadPage> ReadStream(std::string_view stream, StreamVersion from,
                                      Direction direction, size_t max_count) const = 0;
  virtual Result<ReadPage> ReadAll(GlobalPosition from, size_t max_count,
                                   TimeNs until_ns = kTimeMax) const = 0;
  virtual Result<GlobalPosition> PositionAtTime(TimeNs t) const = 0;
  virtual Result<StreamVersion> StreamHead(std::string_view stream) const = 0;
  // Names of the streams that start with `prefix`, in byte order, after `after` (exclusive;
  // empty: from the first), at most `max_count`. How replay, export and the twins find robots.
  virtual Result<StreamList> ListStreams(std::string_view prefix, std::string_view after,
                                         size_t max_count) const = 0;
  virtual Status SaveSnapshot(const Snapshot& snapshot) = 0;
  virtual Result<Snapshot> LoadSnapshot(std::string_view stream) const = 0;
  // The newest snapshot of `stream` that covers only events recorded at or before `at`
  // (NotFound when there is none): where the state at a past moment starts from. A store
  // that keeps only the latest snapshot returns it, and the caller checks its time.
  virtual Result<Snapshot> LoadSnapshotAt(std::string_view stream, TimeNs at) const {
    (void)at;
    return LoadSnapshot(stream);
  }
  virtual Status SetStreamMetadata(std::string_view stream, const StreamMetadata& metadata) = 0;
  virtual Result<StreamMetadata> GetStreamMetadata(std::string_view stream) const = 0;

  // The position after the newest event (where a reader of $all reaches the end for now).
  virtual Result<GlobalPosition> EndPosition() const = 0;

  // Copies (copied_batch.h). A store that cannot take copies answers Unavailable.
  // Writes the batch's events verbatim and moves the copy's checkpoint and position map, in one
  // atomic write; an event the store already holds is not written again. Errors:
  // InvalidArgument (a bad batch), WrongExpectedVersion (the checkpoint moved, or a version
  // that does not follow the stream's head), IdempotencyConflict, IOError, Unavailable.
  virtual Result<CopyResult> AppendCopied(const CopiedBatch& batch) {
    (void)batch;
    return Status::Unavailable("this store cannot take copies");
  }
  // Where the copy `copier` stands (zeros when it has not started).
  virtual Result<CopyCheckpoint> LoadCopyCheckpoint(std::string_view copier) const {
    (void)copier;
    return Status::Unavailable("this store cannot take copies");
  }
  // The position here of the first event the copy took from source position
  // `source_position` or later (NotFound when it has taken none yet): what a consumer's
  // checkpoint in the source becomes here.
  virtual Result<GlobalPosition> CopiedPosition(std::string_view copier,
                                                GlobalPosition source_position) const {
    (void)copier;
    (void)source_position;
    return Status::Unavailable("this store cannot take copies");
  }
};

// Opens a store: how a service is handed a store other than a store server (PostgreSQL).
using StoreOpener = std::function<Result<std::unique_ptr<EventStore>>()>;

}  // namespace doppel::eventstore
