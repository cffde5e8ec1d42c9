#include "doppel/eventstore/event_log.h"

#include <fmt/format.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/options_util.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <future>
#include <unordered_set>

#include "doppel/core/log.h"
#include "doppel/eventstore/append_rules.h"
#include "doppel/eventstore/log_format.h"
#include "event_log_internal.h"
#include "sync_point.h"

namespace doppel::eventstore {
namespace {

using internal::AsView;
using internal::FromRocks;
using internal::View;
constexpr const char* kComponent = internal::kEventLogComponent;

// Default-family keys of accepted data loss (LostEvents::kAccept), beside log_format.h's:
//   "lost"               be64 count of acknowledged positions accepted as lost
//   "lost_until"         be64 position: the log resumes here, so lost positions stay unused
//   "loss/" be64(first)  text: what was lost, when it was accepted, and RocksDB's complaint
constexpr char kLostKey[] = "lost";
constexpr char kLostUntilKey[] = "lost_until";
constexpr char kLossRecordPrefix[] = "loss/";

// Every file operation of the log goes through its Env, so a log opened on another Env (an
// in-memory one, a fault-injecting one) touches nothing else.

// False when `dir` is missing or empty.
bool HasEntries(rocksdb::Env& env, const std::string& dir) {
  std::vector<std::string> children;
  if (!env.GetChildren(dir, &children).ok()) return false;
  return std::any_of(children.begin(), children.end(),
                     [](const std::string& c) { return c != "." && c != ".."; });
}

// Whether every entry of `dir` is a file RocksDB writes while it creates a database, before
// CURRENT names its manifest: a creation killed that early, which holds nothing yet.
bool OnlyUnfinishedRocksDbFiles(rocksdb::Env& env, const std::string& dir) {
  std::vector<std::string> children;
  if (!env.GetChildren(dir, &children).ok()) return false;
  const auto numbered = [](std::string_view name, std::string_view prefix,
                           std::string_view suffix) {
    if (!name.starts_with(prefix) || !name.ends_with(suffix)) return false;
    const std::string_view digits =
        name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
    return !digits.empty() &&
           std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  return std::all_of(children.begin(), children.end(), [&](const std::string& c) {
    return c == "." || c == ".." || c == "LOCK" || c == "IDENTITY" || c == "LOG" ||
           numbered(c, "MANIFEST-", "") || numbered(c, "OPTIONS-", "") || numbered(c, "", ".log") ||
           numbered(c, "", ".dbtmp");
  });
}

// `dir` and its missing parents.
rocksdb::Status CreateDirectories(rocksdb::Env& env, const std::string& dir) {
  for (size_t slash = dir.find('/', 1);; slash = dir.find('/', slash + 1)) {
    const std::string part = dir.substr(0, slash);
    if (!part.empty()) {
      rocksdb::Status s = env.CreateDirIfMissing(part);
      if (!s.ok()) return s;
    }
    if (slash == std::string::npos) return rocksdb::Status::OK();
  }
}

// RocksDB's own diagnostics go through doppel's logger rather than a LOG file in the data
// directory: one log for operators, and nothing for RocksDB to write on a full disk.
class RocksDbLogger final : public rocksdb::Logger {
 public:
  RocksDbLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel()) return;
    char buf[1024];
    std::vsnprintf(buf, sizeof(buf), format, ap);
    const log::Level ours = level >= rocksdb::InfoLogLevel::ERROR_LEVEL  ? log::Level::kError
                            : level >= rocksdb::InfoLogLevel::WARN_LEVEL ? log::Level::kWarn
                                                                         : log::Level::kDebug;
    log::Write(ours, "rocksdb", buf);
  }
};

rocksdb::ColumnFamilyOptions FamilyOptions(bool point_lookups, bool hashed_ids,
                                           size_t memtable_bytes, bool flush_only_on_request) {
  rocksdb::ColumnFamilyOptions cf;
  cf.write_buffer_size = memtable_bytes;
  if (flush_only_on_request) {
    // A memtable that never fills (its arena grows in small blocks as it is used), and no
    // compaction that a background thread would start.
    cf.write_buffer_size = size_t{1} << 30;
    cf.arena_block_size = 64 << 10;
    cf.disable_auto_compactions = true;
  }
  rocksdb::BlockBasedTableOptions table;
  if (point_lookups) {
    // Idempotency checks look up random ids that are almost never there: a bloom filter
    // answers "not there" without touching data blocks.
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    table.whole_key_filtering = true;
    // The same for the memtable, where recent ids live: an absent id costs a bloom probe
    // instead of a skiplist search.
    cf.memtable_prefix_bloom_size_ratio =
        0.1 * static_cast<double>(memtable_bytes) / static_cast<double>(cf.write_buffer_size);
    cf.memtable_whole_key_filtering = true;
  }
  if (hashed_ids) {
    // Ids are random 16-byte keys, only ever looked up whole: a hash memtable inserts and
    // finds them in O(1), where a skiplist spends most of the commit searching for splices.
    cf.prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(16));
    // One bucket per 256 bytes of memtable (an id's entry is about that): 2^18 at 64 MB.
    cf.memtable_factory.reset(rocksdb::NewHashLinkListRepFactory(
        std::clamp<size_t>(memtable_bytes / 256, 1024, 1 << 18)));
  }
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  cf.compression = rocksdb::kNoCompression;
  // Room for bursts: with the default of two memtables a long ingest stalls on flushes.
  cf.max_write_buffer_number = 4;
  return cf;
}

// Whether the database in `dir`, with column families `existing`, is a log whose creation was
// killed part-way: only doppel's families (`ours`), nothing in any of them, no format marker.
Result<bool> IsHalfCreated(const rocksdb::DBOptions& options, const std::string& dir,
                           const std::vector<std::string>& existing,
                           const std::vector<std::string>& ours) {
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& f : existing) {
    if (std::find(ours.begin(), ours.end(), f) == ours.end()) return false;
    descriptors.emplace_back(f, rocksdb::ColumnFamilyOptions());
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::OpenForReadOnly(options, dir, descriptors, &handles, &raw);
  if (!s.ok()) return FromRocks(s, fmt::format("reading {}", dir));
  std::unique_ptr<rocksdb::DB> db(raw);
  bool empty = true;
  for (auto* h : handles) {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), h));
    it->SeekToFirst();
    if (it->Valid() || !it->status().ok()) empty = false;
  }
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  db->Close();
  return empty;
}

// A log record's bytes as a verified event that says it is at `position`.
Result<RecordedEvent> DecodeLogRecord(GlobalPosition position, std::string bytes) {
  auto event = RecordedEvent::FromBytes(std::move(bytes));
  if (!event.ok()) {
    return Status::Corruption(
        fmt::format("record at position {}: {}", position, event.status().message()));
  }
  if (event->position() != position) {
    return Status::Corruption(fmt::format("record at position {} says it is at position {}",
                                          position, event->position()));
  }
  return event;
}

}  // namespace

EventLog::EventLog(const std::string& dir, const EventLogOptions& options)
    : dir_(dir), options_(options) {}

EventLog::~EventLog() {
  if (committer_.joinable()) {
    {
      std::lock_guard lock(queue_mu_);
      stopping_ = true;
    }
    queue_cv_.notify_all();
    committer_.join();
  }
  if (sync_point_thread_.joinable()) {
    {
      std::lock_guard lock(sync_point_mu_);
      sync_point_stopping_ = true;
    }
    sync_point_cv_.notify_all();
    sync_point_thread_.join();
  }
  if (sync_point_ != nullptr && write_error_.ok()) {
    // A clean close leaves an exact, durable sync point. Without sync, make the WAL durable
    // first: the sync point must never name events the disk does not hold.
    Status s = options_.sync ? Status::Ok() : FromRocks(db_->SyncWAL(), "syncing the WAL");
    if (s.ok()) s = sync_point_->Record(next_position_);
    if (s.ok()) s = sync_point_->Sync();
    if (!s.ok()) log::Warn(kComponent, "closing {}: {}", dir_, s.ToString());
  }
  sync_point_.reset();
  if (db_ != nullptr) {
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
    db_->Close();
  }
}

Result<std::unique_ptr<EventLog>> EventLog::Open(const std::string& dir,
                                                 const EventLogOptions& options) {
  if (options.lost_events == LostEvents::kReport && !options.read_only) {
    return Status::InvalidArgument("reporting lost events needs a read-only open");
  }
  if (options.lost_events == LostEvents::kAccept && options.read_only) {
    return Status::InvalidArgument("accepting lost events needs a read-write open");
  }
  std::unique_ptr<EventLog> log(new EventLog(dir, options));
  // First strictly: RocksDB refuses a WAL with a damaged record before its end, and leaves
  // it as it is (a torn final record, left by a crash mid-write, is still dropped).
  Status opened = log->OpenDb(/*point_in_time=*/false);
  std::string wal_damage;
  if (!opened.ok() && log->db_ == nullptr && opened.code() == Status::Code::kCorruption) {
    // Recover up to the damage: to report or accept the loss, or (read-only, so nothing is
    // written) just to name the positions in the refusal.
    wal_damage = opened.message();
    EventLogOptions salvage = options;
    if (options.lost_events == LostEvents::kRefuse) salvage.read_only = true;
    log.reset(new EventLog(dir, salvage));
    opened = log->OpenDb(/*point_in_time=*/true);
  }
  DOPPEL_RETURN_IF_ERROR(opened);
  DOPPEL_RETURN_IF_ERROR(log->LoadState());
  DOPPEL_RETURN_IF_ERROR(log->CheckSyncPoint(wal_damage));
  if (!options.read_only) {
    EventLog* raw = log.get();
    log->committer_ = std::thread([raw] { raw->CommitterLoop(); });
    log->sync_point_thread_ = std::thread([raw] { raw->SyncPointLoop(); });
  }
  return log;
}

Status EventLog::CheckSyncPoint(const std::string& wal_damage) {
  rocksdb::Env* env = options_.env != nullptr ? options_.env : rocksdb::Env::Default();
  rocksdb::FileSystem& fs = *env->GetFileSystem();
  auto recorded = SyncPoint::Read(fs, dir_);
  if (!recorded.ok()) return recorded.status();
  const GlobalPosition recovered = next_position_;
  std::string what;
  if (recorded->has_value() && **recorded > recovered) {
    what = fmt::format(
        "acknowledged events are missing from event log {}: positions {}..{} ({} events) were "
        "acknowledged (sync point {}) but the log recovered only positions below {}",
        dir_, recovered, **recorded - 1, **recorded - recovered, **recorded, recovered);
    if (!wal_damage.empty())
      what += fmt::format("; the write-ahead log is damaged ({})", wal_damage);
  } else if (!wal_damage.empty()) {
    // The sync point can lag after a power cut, so it may not know what the damaged part
    // held: still not a history to serve silently.
    what = fmt::format(
        "the write-ahead log of event log {} is damaged ({}); recovering up to the damage "
        "keeps positions below {}, and events acknowledged after them may be lost",
        dir_, wal_damage, recovered);
  }
  if (!what.empty()) {
    switch (options_.lost_events) {
      case LostEvents::kRefuse:
        return Status::Corruption(fmt::format(
            "{}. Refusing to open. `doppel verify --data {}` shows the damage; `doppel verify "
            "--data {} --accept-data-loss` keeps what is left and records the loss",
            what, dir_, dir_));
      case LostEvents::kReport:
        lost_problem_ = what;
        break;
      case LostEvents::kAccept:
        DOPPEL_RETURN_IF_ERROR(RecordLoss(recovered, recorded->value_or(recovered), what));
        break;
    }
  }
  if (options_.read_only) return Status::Ok();
  auto sync_point = SyncPoint::OpenForWrite(fs, dir_);
  if (!sync_point.ok()) return sync_point.status();
  sync_point_ = std::move(sync_point).value();
  DOPPEL_RETURN_IF_ERROR(sync_point_->Record(next_position_));
  return sync_point_->Sync();
}

Status EventLog::RecordLoss(GlobalPosition recovered, GlobalPosition acknowledged,
                            const std::string& what) {
  const uint64_t count = acknowledged - recovered;
  std::string lost, until, key = kLossRecordPrefix;
  format::PutBigEndian64(&lost, lost_ + count);
  format::PutBigEndian64(&until, acknowledged);
  format::PutBigEndian64(&key, recovered);
  const std::string record = fmt::format("accepted at {}: {}", FormatTime(Now()), what);
  rocksdb::WriteBatch batch;
  batch.Put(meta_cf_, kLostKey, lost);
  batch.Put(meta_cf_, kLostUntilKey, until);
  batch.Put(meta_cf_, key, record);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  DOPPEL_RETURN_IF_ERROR(FromRocks(db_->Write(wo, &batch), "recording accepted data loss"));
  log::Error(kComponent, "data loss {}", record);
  std::lock_guard lock(cache_mu_);
  lost_ += count;
  lost_until_ = acknowledged;
  next_position_ = std::max(next_position_, acknowledged);
  published_next_position_.store(next_position_);
  return Status::Ok();
}

void EventLog::SyncPointLoop() {
  GlobalPosition synced = next_position_;
  std::unique_lock lock(sync_point_mu_);
  while (!sync_point_stopping_) {
    sync_point_cv_.wait_for(lock, std::chrono::milliseconds(options_.sync_point_interval_ms),
                            [this] { return sync_point_stopping_; });
    if (sync_point_stopping_) break;
    const GlobalPosition current = published_next_position_.load();
    if (current == synced) continue;
    lock.unlock();
    Status s;
    if (!options_.sync) {
      // Without sync the committer records nothing (its writes are not durable yet): make
      // the WAL durable up to `current`, then record it.
      s = FromRocks(db_->SyncWAL(), "syncing the WAL");
      if (s.ok()) s = sync_point_->Record(current);
    }
    if (s.ok()) s = sync_point_->Sync();
    if (s.ok()) {
      synced = current;
    } else {
      log::Warn(kComponent, "{}: the sync point lags (appends are unaffected)", s.ToString());
    }
    lock.lock();
  }
}

Status EventLog::OpenDb(bool point_in_time) {
  rocksdb::Env& env = options_.env != nullptr ? *options_.env : *rocksdb::Env::Default();
  const bool has_db = env.FileExists(dir_ + "/CURRENT").ok();
  if (!has_db && HasEntries(env, dir_) && !OnlyUnfinishedRocksDbFiles(env, dir_)) {
    return Status::NotADoppelLog(
        fmt::format("{} is not empty and holds no doppel event log; refusing to touch it", dir_));
  }
  const std::vector<std::string> families = {rocksdb::kDefaultColumnFamilyName,
                                             format::kLogFamily,
                                             format::kStreamsFamily,
                                             format::kIdsFamily,
                                             format::kTimeFamily,
                                             format::kSnapshotsFamily,
                                             format::kStreamMetaFamily};
  bool half_created = false;
  if (has_db) {
    std::vector<std::string> existing;
    rocksdb::DBOptions list_options;
    if (options_.env != nullptr) list_options.env = options_.env;
    rocksdb::Status s = rocksdb::DB::ListColumnFamilies(list_options, dir_, &existing);
    if (!s.ok()) return FromRocks(s, fmt::format("reading {}", dir_));
    for (const auto& f : families) {
      if (std::find(existing.begin(), existing.end(), f) != existing.end()) continue;
      // RocksDB creates column families one at a time: a creation killed part-way leaves some
      // of them, empty, and no format marker. Finish it; refuse anything else.
      auto half = IsHalfCreated(list_options, dir_, existing, families);
      if (!half.ok()) return half.status();
      if (!*half) {
        return Status::NotADoppelLog(
            fmt::format("{} is a RocksDB database without doppel's column family '{}'", dir_, f));
      }
      if (options_.read_only || !options_.create_if_missing) {
        return Status::NotFound(fmt::format(
            "no event log in {}: its creation was interrupted (opening it to write finishes it)",
            dir_));
      }
      half_created = true;
      break;
    }
  } else if (!options_.create_if_missing || options_.read_only) {
    return Status::NotFound(fmt::format("no event log in {}", dir_));
  }

  if (!has_db) {
    rocksdb::Status s = CreateDirectories(env, dir_);
    if (!s.ok()) return FromRocks(s, fmt::format("creating {}", dir_));
  }
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = options_.create_if_missing;
  db_options.create_missing_column_families = true;
  db_options.IncreaseParallelism(2);
  db_options.max_background_jobs = 2;
  db_options.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  db_options.info_log = std::make_shared<RocksDbLogger>();
  // One committer writes; hash memtables (ids) do not support concurrent inserts anyway.
  db_options.allow_concurrent_memtable_write = false;
  // Not the default point-in-time mode: that stops replay at the first damaged record and
  // silently drops the rest of the WAL, acknowledged events included. This mode refuses a
  // damaged record and only drops a torn final one, which a crash mid-write leaves and which
  // held no acknowledged event. CheckSyncPoint catches what looks torn but is not (a
  // truncated WAL).
  db_options.wal_recovery_mode = point_in_time
                                     ? rocksdb::WALRecoveryMode::kPointInTimeRecovery
                                     : rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  db_options.paranoid_checks = true;
  if (options_.env != nullptr) db_options.env = options_.env;

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& f : families) {
    const bool lookups = f == format::kIdsFamily || f == format::kStreamsFamily;
    descriptors.emplace_back(
        f, FamilyOptions(lookups, f == format::kIdsFamily, options_.memtable_bytes,
                         options_.flush_only_on_request));
  }
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s =
      options_.read_only
          ? rocksdb::DB::OpenForReadOnly(db_options, dir_, descriptors, &handles_, &raw)
          : rocksdb::DB::Open(db_options, dir_, descriptors, &handles_, &raw);
  if (!s.ok()) {
    if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
      return Status::Unavailable(
          fmt::format("{} is in use by another doppel process ({})", dir_, s.ToString()));
    }
    return FromRocks(s, fmt::format("opening event log {}", dir_));
  }
  db_.reset(raw);
  meta_cf_ = handles_[0];
  log_cf_ = handles_[1];
  streams_cf_ = handles_[2];
  ids_cf_ = handles_[3];
  time_cf_ = handles_[4];
  snapshots_cf_ = handles_[5];
  stream_meta_cf_ = handles_[6];

  std::string marker;
  s = db_->Get(rocksdb::ReadOptions(), meta_cf_, format::kFormatKey, &marker);
  if (s.IsNotFound()) {
    if (has_db && !half_created) {
      // Every family there but no marker: a creation killed before its last step, if nothing
      // else is in it either.
      for (auto* h : handles_) {
        std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), h));
        it->SeekToFirst();
        if (it->Valid() || !it->status().ok()) {
          return Status::NotADoppelLog(fmt::format("{} has no doppel format marker", dir_));
        }
      }
      if (options_.read_only) {
        return Status::NotFound(fmt::format(
            "no event log in {}: its creation was interrupted (opening it to write finishes it)",
            dir_));
      }
      half_created = true;
    }
    if (half_created) {
      log::Warn(kComponent, "{}: finishing the creation of a log that was interrupted", dir_);
    }
    rocksdb::WriteOptions wo;
    wo.sync = true;
    s = db_->Put(wo, meta_cf_, format::kFormatKey, format::kFormatValue);
    if (!s.ok()) return FromRocks(s, "writing format marker");
    log::Info(kComponent, "created event log in {}", dir_);
  } else if (!s.ok()) {
    return FromRocks(s, "reading format marker");
  } else if (marker != format::kFormatValue) {
    return Status::NotADoppelLog(fmt::format("{} has format '{}'; this build reads '{}'", dir_,
                                             marker, format::kFormatValue));
  }
  return Status::Ok();
}

Status EventLog::LoadState() {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), log_cf_));
  it->SeekToLast();
  if (!it->status().ok()) return FromRocks(it->status(), "reading the end of the log");
  GlobalPosition next = 0;
  TimeNs last_recorded = 0;
  if (it->Valid()) {
    const GlobalPosition last = format::GetBigEndian64(View(it->key()));
    auto event = RecordedEvent::FromBytes(it->value().ToString());
    if (!event.ok()) {
      return Status::Corruption(
          fmt::format("last record, at position {}: {}", last, event.status().message()));
    }
    next = last + 1;
    last_recorded = event->recorded_ns();
  }
  // Copied events keep their source's times, which may go back: the latest time recorded is
  // the time index's last entry (it names every position later than all before it).
  std::unique_ptr<rocksdb::Iterator> times(db_->NewIterator(rocksdb::ReadOptions(), time_cf_));
  times->SeekToLast();
  if (!times->status().ok()) return FromRocks(times->status(), "reading the time index");
  if (times->Valid() && times->key().size() == 16) {
    last_recorded = std::max(last_recorded, format::TimeKeyNs(View(times->key())));
  }
  std::string scavenged, lost, lost_until;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), meta_cf_, format::kScavengedKey, &scavenged);
  if (!s.ok() && !s.IsNotFound()) return FromRocks(s, "reading scavenge count");
  for (auto [key, value] : {std::pair{kLostKey, &lost}, std::pair{kLostUntilKey, &lost_until}}) {
    s = db_->Get(rocksdb::ReadOptions(), meta_cf_, key, value);
    if (!s.ok() && !s.IsNotFound()) return FromRocks(s, "reading accepted data loss");
  }
  {
    std::lock_guard lock(cache_mu_);
    heads_.clear();
    metadata_.clear();
    scavenged_ = scavenged.size() == 8 ? format::GetBigEndian64(scavenged) : 0;
    lost_ = lost.size() == 8 ? format::GetBigEndian64(lost) : 0;
    lost_until_ = lost_until.size() == 8 ? format::GetBigEndian64(lost_until) : 0;
  }
  // After an accepted loss the log resumes after the lost positions, never reusing them.
  next = std::max(next, lost_until_);
  next_position_ = next;
  last_recorded_ns_ = last_recorded;
  published_next_position_.store(next);
  return Status::Ok();
}

void EventLog::SetCommitListener(CommitListener listener) { listener_ = std::move(listener); }

GlobalPosition EventLog::NextPosition() const { return published_next_position_.load(); }

Status EventLog::CheckRequest(const AppendRequest& request) const {
  if (options_.read_only) return Status::InvalidArgument("event log is open read-only");
  return CheckAppendRequest(request);
}

TimeNs EventLog::Now() const { return options_.wall_clock ? options_.wall_clock() : WallNowNs(); }

void EventLog::AssignIds(AppendRequest& request) const {
  for (NewEvent& e : request.events) {
    if (e.id.is_nil()) e.id = options_.new_event_id ? options_.new_event_id() : EventId::Random();
  }
}

Result<AppendResult> EventLog::Append(AppendRequest request) {
  if (Status s = CheckRequest(request); !s.ok()) return s;
  AssignIds(request);
  std::promise<Result<AppendResult>> promise;
  std::future<Result<AppendResult>> future = promise.get_future();
  AppendCallback done = [&promise](Result<AppendResult> result) {
    promise.set_value(std::move(result));
  };
  DOPPEL_RETURN_IF_ERROR(Submit(Pending{std::move(request), std::move(done), nullptr}));
  return future.get();
}

Status EventLog::Submit(Pending pending) {
  std::unique_lock lock(queue_mu_);
  if (stopping_) return Status::Unavailable("event log is closing");
  queue_.push_back(std::move(pending));
  if (!committing_ && queue_.size() == 1) {
    // Nobody is committing: commit on this thread and skip two thread hand-offs, which
    // dominate a lone writer's latency. Busy periods go through the committer thread.
    CommitOneGroup(lock);
    if (!queue_.empty()) queue_cv_.notify_one();
  } else {
    queue_cv_.notify_one();
  }
  return Status::Ok();
}

void EventLog::AppendAsync(AppendRequest request, AppendCallback done) {
  // Cheap checks run in the caller's thread, in parallel, before joining the queue.
  if (Status s = CheckRequest(request); !s.ok()) {
    done(std::move(s));
    return;
  }
  AssignIds(request);
  {
    std::lock_guard lock(queue_mu_);
    if (!stopping_) {
      queue_.push_back(Pending{std::move(request), std::move(done), nullptr});
      queue_cv_.notify_one();
      return;
    }
  }
  done(Status::Unavailable("event log is closing"));
}

void EventLog::AppendMany(std::vector<std::pair<AppendRequest, AppendCallback>> appends) {
  std::vector<Pending> accepted;
  accepted.reserve(appends.size());
  for (auto& [request, done] : appends) {
    if (Status s = CheckRequest(request); !s.ok()) {
      done(std::move(s));
      continue;
    }
    AssignIds(request);
    accepted.push_back(Pending{std::move(request), std::move(done), nullptr});
  }
  if (accepted.empty()) return;
  std::unique_lock lock(queue_mu_);
  if (stopping_) {
    lock.unlock();
    for (Pending& p : accepted) p.done(Status::Unavailable("event log is closing"));
    return;
  }
  for (Pending& p : accepted) queue_.push_back(std::move(p));
  if (committing_) {
    queue_cv_.notify_one();
    return;
  }
  // Commit here until what we queued is done (a few groups at most: the group limits).
  size_t left = queue_.size();
  while (left > 0 && !queue_.empty()) {
    const size_t taken = CommitOneGroup(lock);
    left = taken >= left ? 0 : left - taken;
  }
  if (!queue_.empty()) queue_cv_.notify_one();
}

std::vector<EventLog::Pending> EventLog::TakeGroup() {
  std::vector<Pending> group;
  size_t events = 0, bytes = 0;
  while (!queue_.empty()) {
    if (queue_.front().copy != nullptr) {
      // A copied batch commits alone.
      if (group.empty()) {
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      break;
    }
    const AppendRequest& next = queue_.front().request;
    size_t next_bytes = 0;
    for (const NewEvent& e : next.events) next_bytes += e.payload.size() + 128;
    if (!group.empty() && (events + next.events.size() > options_.max_group_events ||
                           bytes + next_bytes > options_.max_group_bytes)) {
      break;
    }
    events += next.events.size();
    bytes += next_bytes;
    group.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return group;
}

size_t EventLog::CommitOneGroup(std::unique_lock<std::mutex>& lock) {
  committing_ = true;
  std::vector<Pending> group = TakeGroup();
  lock.unlock();
  RunGroup(group);
  lock.lock();
  committing_ = false;
  return group.size();
}

void EventLog::RunGroup(std::vector<Pending>& group) {
  if (group.size() == 1 && group[0].copy != nullptr) {
    CopyJob& job = *group[0].copy;
    job.result.set_value(CommitCopy(*job.batch));
    return;
  }
  std::vector<Result<AppendResult>> results;
  results.reserve(group.size());
  CommitGroup(group, results);
  for (size_t i = 0; i < group.size(); ++i) group[i].done(std::move(results[i]));
}

void EventLog::CommitterLoop() {
  while (true) {
    std::unique_lock lock(queue_mu_);
    queue_cv_.wait(lock, [this] { return stopping_ || (!queue_.empty() && !committing_); });
    if (queue_.empty() || committing_) {
      if (stopping_ && queue_.empty() && !committing_) return;
      continue;
    }
    CommitOneGroup(lock);
  }
}

void EventLog::CommitGroup(std::vector<Pending>& group,
                           std::vector<Result<AppendResult>>& results) {
  if (!write_error_.ok()) {
    // RocksDB must not be written again after a failed WAL write (its file writer is in an
    // error state); acknowledged data is safe, and reopening the log recovers.
    for (size_t i = 0; i < group.size(); ++i) results.emplace_back(write_error_);
    return;
  }
  GroupState state;
  state.next_position = next_position_;
  state.recorded_ns = std::max(Now(), last_recorded_ns_);
  state.keep_envelopes = static_cast<bool>(listener_);
  const GlobalPosition first_position = state.next_position;

  std::vector<size_t> staged;
  for (size_t i = 0; i < group.size(); ++i) {
    results.push_back(StageRequest(group[i].request, state));
    if (results.back().ok() && !results.back()->duplicate) staged.push_back(i);
  }
  if (staged.empty()) return;

  state.batch.Put(time_cf_, format::TimeKey(state.recorded_ns, first_position), "");
  if (Status written = WriteGroup(state, first_position); !written.ok()) {
    for (size_t i : staged) results[i] = written;
  }
}

Status EventLog::WriteGroup(GroupState& state, GlobalPosition first_position) {
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync;
  const int64_t write_start = MonotonicNowNs();
  rocksdb::Status s = db_->Write(wo, &state.batch);
  commit_stats_.write_seconds.Observe((MonotonicNowNs() - write_start) / 1e9);
  if (!s.ok()) {
    ++commit_stats_.write_errors;
    Status failed = FromRocks(s, fmt::format("committing {} events at position {}",
                                             state.next_position - first_position, first_position));
    log::Error(kComponent, "{}; refusing further appends until the log is reopened",
               failed.ToString());
    write_error_ = Status::IOError(fmt::format(
        "event log stopped taking appends after a write error ({}); free space or fix the "
        "disk, then restart: acknowledged events are safe",
        failed.message()));
    return failed;
  }
  next_position_ = state.next_position;
  last_recorded_ns_ = state.recorded_ns;
  ++commit_stats_.groups;
  commit_stats_.events += next_position_ - first_position;
  commit_stats_.group_events.Observe(static_cast<double>(next_position_ - first_position));
  {
    std::lock_guard lock(cache_mu_);
    for (auto& [stream, head] : state.heads) {
      if (head.has_value()) heads_[stream] = *head;
    }
  }
  // Hand the events to the publisher before advertising the new position, so a heartbeat
  // never announces a position whose event has not been queued for publication.
  if (listener_) listener_(state.envelopes);
  published_next_position_.store(next_position_);
  if (options_.sync) {
    // The group is durable: record it, without an fsync (SyncPointLoop does those).
    if (Status recorded = sync_point_->Record(next_position_); !recorded.ok()) {
      sync_point_warning_.Warn("{}: the sync point lags (appends are unaffected)",
                               recorded.ToString());
    }
  }
  return Status::Ok();
}

Result<std::optional<StreamVersion>> EventLog::LoadHead(std::string_view stream) const {
  {
    std::lock_guard lock(cache_mu_);
    auto it = heads_.find(std::string(stream));
    if (it != heads_.end()) return std::optional<StreamVersion>(it->second);
  }
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), streams_cf_));
  const std::string last_key = format::StreamKey(stream, kStreamEnd);
  it->SeekForPrev(last_key);
  if (!it->status().ok()) return FromRocks(it->status(), "reading stream head");
  const std::string prefix = format::StreamPrefix(stream);
  if (!it->Valid() || !it->key().starts_with(prefix) || it->key().size() != prefix.size() + 8) {
    return std::optional<StreamVersion>();
  }
  return std::optional<StreamVersion>(
      format::GetBigEndian64(View(it->key()).substr(prefix.size())));
}

Result<std::optional<StreamVersion>> EventLog::HeadFor(std::string_view stream, GroupState& group) {
  auto it = group.heads.find(std::string(stream));
  if (it != group.heads.end()) return it->second;
  auto head = LoadHead(stream);
  if (!head.ok()) return head.status();
  group.heads.emplace(std::string(stream), *head);
  return *head;
}

Result<AppendResult> EventLog::StageRequest(AppendRequest& request, GroupState& group) {
  const std::vector<NewEvent>& events = request.events;

  // Idempotency: have these ids been stored before (or staged earlier in this group)?
  std::vector<std::optional<StoredEvent>> stored(events.size());
  for (size_t i = 0; i < events.size(); ++i) {
    const NewEvent& e = events[i];
    if (auto staged = group.staged_ids.find(e.id); staged != group.staged_ids.end()) {
      stored[i] =
          StoredEvent{staged->second.stream, staged->second.version, staged->second.position,
                      staged->second.event->type, staged->second.event->payload};
      continue;
    }
    auto original = StoredUnder(e.id);
    if (!original.ok()) return original.status();
    stored[i] = std::move(original).value();
  }
  auto resent = MatchResentBatch(request, stored);
  if (!resent.ok()) return resent.status();
  if (resent->has_value()) return std::move(**resent);

  // Optimistic concurrency.
  auto head = HeadFor(request.stream, group);
  if (!head.ok()) return head.status();
  const std::optional<StreamVersion> current = *head;
  DOPPEL_RETURN_IF_ERROR(CheckExpectedVersion(request.stream, request.expected, current));

  // Stage the events.
  AppendResult result;
  result.recorded_ns = group.recorded_ns;
  StreamVersion version = current ? *current + 1 : 0;
  result.first_version = version;
  result.first_position = group.next_position;
  for (const NewEvent& e : events) {
    const GlobalPosition position = group.next_position++;
    flatbuffers::FlatBufferBuilder& fbb = group.fbb;
    BuildEnvelope(fbb, request.stream, version, position, group.recorded_ns, e);
    const rocksdb::Slice envelope(reinterpret_cast<const char*>(fbb.GetBufferPointer()),
                                  fbb.GetSize());
    const std::string log_key = format::LogKey(position);
    group.batch.Put(log_cf_, log_key, envelope);
    group.batch.Put(streams_cf_, format::StreamKey(request.stream, version), log_key);
    group.batch.Put(ids_cf_, AsView(e.id.ToBytes()), log_key);
    if (group.keep_envelopes) group.envelopes.emplace_back(envelope.data(), envelope.size());
    group.staged_ids.emplace(e.id, StagedEvent{request.stream, version, position, &e});
    result.ids.push_back(e.id);
    result.last_version = version;
    result.last_position = position;
    ++version;
  }
  group.heads[request.stream] = result.last_version;
  return result;
}

Result<std::optional<StoredEvent>> EventLog::StoredUnder(const EventId& id) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), ids_cf_, AsView(id.ToBytes()), &value);
  if (s.IsNotFound()) return std::optional<StoredEvent>();
  if (!s.ok()) return FromRocks(s, "looking up event id");
  if (value.size() != 8) {
    return Status::Corruption(fmt::format("id index entry of {} bytes", value.size()));
  }
  const GlobalPosition position = format::GetBigEndian64(value);
  auto original = ReadAt(position);
  if (!original.ok()) return original.status();
  return std::optional<StoredEvent>(
      StoredEvent{std::string(original->stream()), original->version(), position,
                  std::string(original->type()), std::string(original->payload())});
}

Result<RecordedEvent> EventLog::ReadAt(GlobalPosition position) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), log_cf_, format::LogKey(position), &value);
  if (s.IsNotFound()) return Status::NotFound(fmt::format("no event at position {}", position));
  if (!s.ok()) return FromRocks(s, fmt::format("reading position {}", position));
  return DecodeLogRecord(position, std::move(value));
}

Result<ReadPage> EventLog::ReadStream(std::string_view stream, StreamVersion from,
                                      Direction direction, size_t max_count) const {
  DOPPEL_RETURN_IF_ERROR(ValidateStreamName(stream));
  ReadPage page;
  page.next = from;
  const std::string prefix = format::StreamPrefix(stream);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), streams_cf_));
  const std::string start = format::StreamKey(stream, from);
  const bool forward = direction == Direction::kForward;
  if (forward) {
    it->Seek(start);
  } else {
    it->SeekForPrev(start);
  }
  // The stream index first, then the events in one MultiGet: a stream's events lie apart in
  // the log (other streams between them), and a batch of lookups shares index and block reads.
  page.end = true;
  std::optional<StreamVersion> stopped_at;
  std::vector<std::pair<StreamVersion, std::string>> refs;  // version, log key
  for (; it->Valid() && it->key().starts_with(prefix); forward ? it->Next() : it->Prev()) {
    if (it->key().size() != prefix.size() + 8) continue;  // a longer name sharing the prefix
    const StreamVersion version = format::GetBigEndian64(View(it->key()).substr(prefix.size()));
    if (refs.size() >= max_count) {
      page.end = false;
      stopped_at = version;
      break;
    }
    if (it->value().size() != 8) {
      return Status::Corruption(fmt::format("stream {} version {}: index entry of {} bytes", stream,
                                            version, it->value().size()));
    }
    refs.emplace_back(version, it->value().ToString());
  }
  if (!it->status().ok()) return FromRocks(it->status(), fmt::format("reading stream {}", stream));
  std::vector<rocksdb::Slice> keys;
  keys.reserve(refs.size());
  for (const auto& ref : refs) keys.emplace_back(ref.second);
  std::vector<rocksdb::PinnableSlice> values(refs.size());
  std::vector<rocksdb::Status> statuses(refs.size());
  if (!refs.empty()) {
    // A stream's positions grow with its versions: sorted when reading forward.
    db_->MultiGet(rocksdb::ReadOptions(), log_cf_, refs.size(), keys.data(), values.data(),
                  statuses.data(), /*sorted_input=*/forward);
  }
  const TimeNs now = Now();
  page.events.reserve(refs.size());
  for (size_t i = 0; i < refs.size(); ++i) {
    const StreamVersion version = refs[i].first;
    const GlobalPosition position = format::GetBigEndian64(refs[i].second);
    if (statuses[i].IsNotFound()) {
      return Status::Corruption(
          fmt::format("stream {} version {}: no event at position {}", stream, version, position));
    }
    if (!statuses[i].ok()) {
      return FromRocks(statuses[i],
                       fmt::format("reading stream {} at position {}", stream, position));
    }
    auto event = DecodeLogRecord(position, values[i].ToString());
    if (!event.ok()) {
      return Status::Corruption(
          fmt::format("stream {} version {}: {}", stream, version, event.status().message()));
    }
    if (event->stream() != stream || event->version() != version) {
      return Status::Corruption(
          fmt::format("stream {} version {} points at position {}, which holds {} version {}",
                      stream, version, position, event->stream(), event->version()));
    }
    if (Retained(stream, version, event->recorded_ns(), now)) {
      page.events.push_back(std::move(event).value());
    } else if (!forward) {
      page.end = true;  // everything older is hidden too
      return page;
    }
    page.next = forward ? version + 1 : (version == 0 ? 0 : version - 1);
  }
  if (stopped_at) page.next = *stopped_at;
  return page;
}

Result<ReadPage> EventLog::ReadAll(GlobalPosition from, size_t max_count, TimeNs until_ns) const {
  ReadPage page;
  page.next = from;
  page.end = true;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), log_cf_));
  const TimeNs now = Now();
  for (it->Seek(format::LogKey(from)); it->Valid(); it->Next()) {
    const GlobalPosition position = format::GetBigEndian64(View(it->key()));
    if (page.events.size() >= max_count) {
      page.end = false;
      page.next = position;
      break;
    }
    auto event = DecodeLogRecord(position, it->value().ToString());
    if (!event.ok()) return event.status();
    if (event->recorded_ns() > until_ns) {
      page.next = position;
      break;
    }
    page.next = position + 1;
    if (Retained(event->stream(), event->version(), event->recorded_ns(), now)) {
      page.events.push_back(std::move(event).value());
    }
  }
  if (!it->status().ok()) return FromRocks(it->status(), "reading $all");
  return page;
}

Result<GlobalPosition> EventLog::PositionAtTime(TimeNs t) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), time_cf_));
  it->Seek(format::TimeKey(t, 0));
  if (!it->status().ok()) return FromRocks(it->status(), "reading the time index");
  if (!it->Valid()) return NextPosition();
  return format::GetBigEndian64(View(it->key()).substr(8));
}

Result<StreamVersion> EventLog::StreamHead(std::string_view stream) const {
  DOPPEL_RETURN_IF_ERROR(ValidateStreamName(stream));
  auto head = LoadHead(stream);
  if (!head.ok()) return head.status();
  if (!head->has_value()) return Status::NotFound(fmt::format("stream {} has no events", stream));
  return **head;
}

Result<StreamList> EventLog::ListStreams(std::string_view prefix, std::string_view after,
                                         size_t max_count) const {
  StreamList list;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), streams_cf_));
  // Keys are "<stream> 0x00 be64(version)": seeking to "<stream> 0x01" skips a stream's
  // versions (names hold no 0x00, so every longer name sorts at or after it).
  std::string seek =
      after.empty() || after < prefix ? std::string(prefix) : std::string(after) + '\x01';
  for (it->Seek(seek); it->Valid(); it->Seek(seek)) {
    const std::string_view key = View(it->key());
    if (!key.starts_with(prefix)) break;
    if (key.size() < 9 || key[key.size() - 9] != '\0') {
      return Status::Corruption(
          fmt::format("stream index key of {} bytes has no version", key.size()));
    }
    if (list.streams.size() == max_count) {
      list.end = false;
      break;
    }
    list.streams.emplace_back(key.substr(0, key.size() - 9));
    seek = list.streams.back() + '\x01';
  }
  if (!it->status().ok()) return FromRocks(it->status(), "listing streams");
  return list;
}

}  // namespace doppel::eventstore
