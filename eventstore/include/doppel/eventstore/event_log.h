// EventLog: the durable, embedded event log of one store node, on RocksDB.
//
// Appends are atomic per request, checked against an expected version, idempotent by
// event id, and acknowledged only after their WriteBatch is fsync'd. One committer thread
// owns all writes: it takes every append queued since its last commit, stages them into one
// WriteBatch, writes it with sync=true (group commit), then completes them in order. While
// it waits for the disk, new appends queue up and form the next group.
// The key layout is in log_format.h.
//
// Thread-safe: any number of threads may append and read concurrently.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "doppel/core/log.h"
#include "doppel/core/metrics.h"
#include "doppel/eventstore/event_store.h"
#include "doppel/eventstore/types.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
class Env;
class WriteBatch;
}  // namespace rocksdb

namespace doppel::eventstore {

class SyncPoint;
struct StoredEvent;

// What Open does when acknowledged events are missing: RocksDB found a damaged record in its
// write-ahead log, or the log it recovered ends before the sync point (sync_point.h), the
// log's own record of what it acknowledged. A torn final record from a crash held only
// unacknowledged writes and is dropped silently in every mode.
enum class LostEvents {
  // Refuse to open (Corruption), naming the acknowledged and the recovered positions.
  kRefuse,
  // Open read-only with what can be recovered; Verify() reports the loss. REQUIRES read_only.
  kReport,
  // Keep what can be recovered, record the loss in the log (Verify() then counts the lost
  // positions like scavenged ones) and carry on. Lost positions are never reused; the lost
  // events' stream versions are (their streams resume after the last recovered version).
  // REQUIRES !read_only. The operator's escape: `doppel verify --accept-data-loss`.
  kAccept,
};

struct EventLogOptions {
  // fsync every commit group before acknowledging it. Turning this off makes acknowledged
  // events losable on power failure; benchmarks that do so label their figures.
  bool sync = true;
  // Open without the ability to write (and without taking the directory lock).
  bool read_only = false;
  // Create an empty log when the directory is missing or empty.
  bool create_if_missing = true;
  // Upper bounds on one commit group.
  size_t max_group_events = 8192;
  size_t max_group_bytes = 8 << 20;
  LostEvents lost_events = LostEvents::kRefuse;
  // How often a changed sync point is fsync'd, off the commit path. It bounds how far the
  // sync point can lag after a power cut (after a process crash it is exact).
  int sync_point_interval_ms = 1000;
  // The size of one memtable of each column family (RocksDB's write_buffer_size); the ids'
  // hash table and the memtable bloom filters scale with it. Smaller suits a log that stays
  // small and is opened often (the fuzz target opens one per input).
  size_t memtable_bytes = 64 << 20;
  // RocksDB flushes memtables only when Flush() is called and never compacts on its own:
  // memtables are made large enough to hold the whole log (memtable_bytes then sizes only the
  // ids' hash table and the blooms). For the fuzz target, where a flush that a background
  // thread starts at a moment of its choosing would change which branches an input reaches.
  bool flush_only_on_request = false;
  // The environment RocksDB and the sync point use (tests inject simulated power cuts);
  // nullptr = rocksdb::Env::Default(). Not owned; must outlive the log.
  rocksdb::Env* env = nullptr;
  // Where the log takes the time it records (recorded_ns) and judges retention by, and the
  // ids it gives events that arrive without one. Empty = the wall clock and random ids.
  // Fuzzing and tests set both, so one input gives the same log, and the same code paths,
  // on every run.
  std::function<TimeNs()> wall_clock;
  std::function<EventId()> new_event_id;
};

struct ScavengeStats {
  uint64_t events_removed = 0;
  uint64_t streams_visited = 0;
};

// What EventLog::Verify found. ok() only when every invariant holds.
struct VerifyReport {
  uint64_t events = 0;
  uint64_t streams = 0;
  uint64_t scavenged = 0;
  uint64_t next_position = 0;
  uint64_t lost = 0;  // positions an operator accepted as lost (LostEvents::kAccept)
  std::vector<std::string> problems;  // the first ones found (bounded)
  uint64_t problem_count = 0;
  bool ok() const { return problem_count == 0; }
};

class EventLog final : public EventStore {
 public:
  // Opens (or creates) the log in `dir`. A non-empty directory that is not a doppel log
  // is refused with NotADoppelLog and left untouched. Missing acknowledged events are
  // handled as options.lost_events says (by default: Corruption, naming what is missing).
  static Result<std::unique_ptr<EventLog>> Open(const std::string& dir,
                                                const EventLogOptions& options = {});
  ~EventLog() override;
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  // Appends `request.events` to `request.stream` if `request.expected` holds. Blocks until
  // the events are durable. Errors: InvalidArgument (bad stream name, empty batch, payload
  // that does not verify, repeated id), WrongExpectedVersion, IdempotencyConflict (an id
  // already stored for a different event, or a batch only partly stored), IOError.
  Result<AppendResult> Append(AppendRequest request) override;

  // The same append without blocking: `done` runs once the events are durable or the append
  // failed. It runs on the committer thread (or inline, for requests refused up front), so
  // it must be quick and must not wait for another append. Completions run in commit order.
  void AppendAsync(AppendRequest request, AppendCallback done) override;

  // Many appends at once, for a server thread that gathered them from the network. When no
  // commit is running they are committed on the calling thread (no thread hand-off: the
  // caller blocks for the fsync while more requests queue up behind it); otherwise they join
  // the queue like AppendAsync. Callbacks run before this returns in the first case.
  void AppendMany(std::vector<std::pair<AppendRequest, AppendCallback>> appends);

  // Reads up to `max_count` events of `stream` from version `from` (inclusive) in
  // `direction`; kStreamEnd as `from` with kBackward starts at the newest event.
  // Honours the stream's retention.
  Result<ReadPage> ReadStream(std::string_view stream, StreamVersion from, Direction direction,
                              size_t max_count) const override;
  // Reads up to `max_count` events in global order from `from` (inclusive), stopping
  // before the first event recorded after `until_ns`. Honours every stream's retention.
  Result<ReadPage> ReadAll(GlobalPosition from, size_t max_count,
                           TimeNs until_ns = kTimeMax) const override;
  // The first position recorded at or after `t` (NextPosition() if none).
  Result<GlobalPosition> PositionAtTime(TimeNs t) const override;

  // The stream's last version, or NotFound if it has no events.
  Result<StreamVersion> StreamHead(std::string_view stream) const override;
  Result<StreamList> ListStreams(std::string_view prefix, std::string_view after,
                                 size_t max_count) const override;
  // The position the next appended event will get (= events ever appended).
  GlobalPosition NextPosition() const;

  Status SaveSnapshot(const Snapshot& snapshot) override;
  // The latest snapshot of `stream`, NotFound if none, Corruption if unreadable.
  Result<Snapshot> LoadSnapshot(std::string_view stream) const override;
  Result<Snapshot> LoadSnapshotAt(std::string_view stream, TimeNs at) const override;

  Status SetStreamMetadata(std::string_view stream, const StreamMetadata& metadata) override;
  Result<StreamMetadata> GetStreamMetadata(std::string_view stream) const override;

  Result<GlobalPosition> EndPosition() const override { return NextPosition(); }

  // Copies (copied_batch.h), committed by the committer like appends: the batch, its map
  // entries and the checkpoint in one WriteBatch, fsync'd as appends are. Copied events keep
  // their source's recorded times, which may go back (another store's clocks and commit
  // order); the time index then names each position whose time is later than every earlier
  // one, so PositionAtTime still finds the first position recorded at or after a time.
  Result<CopyResult> AppendCopied(const CopiedBatch& batch) override;
  Result<CopyCheckpoint> LoadCopyCheckpoint(std::string_view copier) const override;
  Result<GlobalPosition> CopiedPosition(std::string_view copier,
                                        GlobalPosition source_position) const override;

  // Removes events hidden by retention (each stream keeps its newest event so its head
  // version survives), then compacts so the space is returned. Logs progress.
  Result<ScavengeStats> Scavenge();

  // Writes every column family's memtable to table files and waits until they are written.
  Status Flush();

  // Checks every invariant of log_format.h over the whole log, and that no acknowledged
  // event is missing (sync_point.h). Logs progress.
  VerifyReport Verify() const;

  // Called by the committer after each durable commit group, in position order, with the
  // committed envelopes. Must not call Append. Set before appends start.
  using CommitListener = std::function<void(std::span<const std::string> envelopes)>;
  void SetCommitListener(CommitListener listener);

  // What the group commit did, for metrics. Histograms are updated by the committer and may
  // be read from any thread.
  struct CommitStats {
    std::atomic<uint64_t> groups{0};        // commit groups written
    std::atomic<uint64_t> events{0};        // events written (duplicates are not)
    std::atomic<uint64_t> write_errors{0};  // failed WriteBatch writes (appends then refused)
    Histogram group_events{Histogram::ExponentialBounds(1, 2, 14)};  // 1 .. 8192
    // The WriteBatch write with sync = options.sync: the fsync, when on.
    Histogram write_seconds{
        {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}};
  };
  const CommitStats& commit_stats() const { return commit_stats_; }

 private:
  // The time to record and to judge retention by (options_.wall_clock or the wall clock).
  TimeNs Now() const;
  // Gives every event of `request` without an id a new one.
  void AssignIds(AppendRequest& request) const;
  struct Pending;
  struct CopyJob;
  struct StagedEvent;
  struct GroupState;

  EventLog(const std::string& dir, const EventLogOptions& options);
  // point_in_time: recover the WAL up to its first damaged record instead of refusing it.
  Status OpenDb(bool point_in_time);
  Status LoadState();
  // Compares the recovered log with the sync point and acts on options_.lost_events;
  // `wal_damage` is RocksDB's complaint when it refused the WAL (empty if none).
  Status CheckSyncPoint(const std::string& wal_damage);
  Status RecordLoss(GlobalPosition recovered, GlobalPosition acknowledged, const std::string& what);
  void SyncPointLoop();
  Status CheckRequest(const AppendRequest& request) const;
  // Queues `pending` for the committer, or commits it on this thread when nobody is
  // committing. Unavailable when the log is closing.
  Status Submit(Pending pending);
  void CommitterLoop();
  // REQUIRES: queue_mu_ held. Takes the queued appends that fit in one commit group.
  std::vector<Pending> TakeGroup();
  void RunGroup(std::vector<Pending>& group);
  // REQUIRES: lock holds queue_mu_ and nobody is committing. Takes one group and commits it
  // on this thread (releasing the lock meanwhile); returns how many appends it took.
  size_t CommitOneGroup(std::unique_lock<std::mutex>& lock);
  void CommitGroup(std::vector<Pending>& group, std::vector<Result<AppendResult>>& results);
  Result<AppendResult> StageRequest(AppendRequest& request, GroupState& group);
  // Writes a staged commit of positions [first, group.next_position) durably, then makes it
  // visible: heads, the commit listener, the sync point. On failure nothing is visible and the
  // log takes no more writes.
  Status WriteGroup(GroupState& group, GlobalPosition first);
  // The committer's part of AppendCopied (event_log_copy.cc).
  Result<CopyResult> CommitCopy(const CopiedBatch& batch);
  // What the log holds under `id` (nullopt: nothing).
  Result<std::optional<StoredEvent>> StoredUnder(const EventId& id) const;
  Result<std::optional<StreamVersion>> HeadFor(std::string_view stream, GroupState& group);
  Result<std::optional<StreamVersion>> LoadHead(std::string_view stream) const;
  // The recorded time of `stream`'s event at `version`; nullopt when it is not in the log.
  Result<std::optional<TimeNs>> RecordedTimeOf(std::string_view stream,
                                               StreamVersion version) const;
  // Adds to `batch` the deletion of `stream`'s history snapshots older than its event at
  // `first_kept`, all but the newest of them.
  Status PruneSnapshotHistory(std::string_view stream, StreamVersion first_kept,
                              rocksdb::WriteBatch& batch) const;
  bool Retained(std::string_view stream, StreamVersion version, TimeNs recorded_ns,
                TimeNs now) const;
  Result<RecordedEvent> ReadAt(GlobalPosition position) const;

  const std::string dir_;
  const EventLogOptions options_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* meta_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* log_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* streams_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* ids_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* time_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* snapshots_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* stream_meta_cf_ = nullptr;

  // Appends waiting for the committer.
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<Pending> queue_;
  bool stopping_ = false;
  bool committing_ = false;  // a group is being committed (by the committer or a caller)
  std::thread committer_;

  // Committer state: only the current committer changes these.
  GlobalPosition next_position_ = 0;
  TimeNs last_recorded_ns_ = 0;
  Status write_error_;  // set when a commit failed: no more writes through this instance
  CommitListener listener_;

  // The sync point: the committer records each durable group; sync_point_thread_ fsyncs it.
  std::unique_ptr<SyncPoint> sync_point_;
  std::thread sync_point_thread_;
  std::mutex sync_point_mu_;
  std::condition_variable sync_point_cv_;
  bool sync_point_stopping_ = false;
  log::RateLimitedWarning sync_point_warning_{"eventlog"};
  std::string lost_problem_;       // what LostEvents::kReport found, for Verify()
  GlobalPosition lost_until_ = 0;  // positions below it that are missing may have been lost

  // Caches shared with readers.
  mutable std::mutex cache_mu_;
  std::unordered_map<std::string, StreamVersion> heads_;
  mutable std::unordered_map<std::string, StreamMetadata> metadata_;
  uint64_t scavenged_ = 0;
  uint64_t lost_ = 0;
  std::atomic<GlobalPosition> published_next_position_{0};
  CommitStats commit_stats_;
};

}  // namespace doppel::eventstore
