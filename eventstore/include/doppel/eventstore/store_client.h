// StoreClient: the one way the rest of doppel reaches a store server. It implements
// EventStore over ZeroMQ, so code written against EventStore runs embedded or remote.
//
// Requests go out on one DEALER socket owned by a background thread; many may be in flight,
// matched to replies by request id. A request with no reply within `attempt_timeout` is sent
// again (ZeroMQ reconnects by itself when the store restarts) until `deadline`. Appends are
// safe to resend because every event carries an id: the client assigns random ids to events
// that have none before the first attempt, so a retry is an idempotent duplicate.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "doppel/eventstore/event_log.h"
#include "doppel/eventstore/event_store.h"
#include "doppel/eventstore/zmq_security.h"

namespace doppel::eventstore {

struct StoreClientOptions {
  std::string endpoint = "tcp://127.0.0.1:7600";  // the server's ROUTER
  std::optional<CurveClientConfig> curve;         // for tcp:// endpoints
  std::chrono::milliseconds attempt_timeout{2000};
  std::chrono::milliseconds deadline{30000};
};

class StoreClient final : public EventStore {
 public:
  // Creates the socket and starts connecting; does not wait for the server.
  static Result<std::unique_ptr<StoreClient>> Connect(StoreClientOptions options);
  ~StoreClient() override;

  Result<AppendResult> Append(AppendRequest request) override;
  void AppendAsync(AppendRequest request, AppendCallback done) override;
  Result<ReadPage> ReadStream(std::string_view stream, StreamVersion from, Direction direction,
                              size_t max_count) const override;
  Result<ReadPage> ReadAll(GlobalPosition from, size_t max_count,
                           TimeNs until_ns = kTimeMax) const override;
  Result<GlobalPosition> PositionAtTime(TimeNs t) const override;
  Result<StreamVersion> StreamHead(std::string_view stream) const override;
  Result<StreamList> ListStreams(std::string_view prefix, std::string_view after,
                                 size_t max_count) const override;
  Status SaveSnapshot(const Snapshot& snapshot) override;
  Result<Snapshot> LoadSnapshot(std::string_view stream) const override;
  Result<Snapshot> LoadSnapshotAt(std::string_view stream, TimeNs at) const override;
  Status SetStreamMetadata(std::string_view stream, const StreamMetadata& metadata) override;
  Result<StreamMetadata> GetStreamMetadata(std::string_view stream) const override;
  Result<GlobalPosition> EndPosition() const override { return NextPosition(); }
  // Copies into the server's log. A page resent after a lost answer is answered as written
  // (the log recognises it), so the client's resends are safe.
  Result<CopyResult> AppendCopied(const CopiedBatch& batch) override;
  Result<CopyCheckpoint> LoadCopyCheckpoint(std::string_view copier) const override;
  Result<GlobalPosition> CopiedPosition(std::string_view copier,
                                        GlobalPosition source_position) const override;

  // The position the next appended event will get.
  Result<GlobalPosition> NextPosition() const;
  // Runs EventLog::Verify on the server.
  Result<VerifyReport> Verify() const;

 private:
  class Impl;
  explicit StoreClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace doppel::eventstore
