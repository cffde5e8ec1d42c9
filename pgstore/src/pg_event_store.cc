// PgEventStore: opening (the schema checked), AppendAsync's workers, and the calls handed to
// PgStoreImpl.
#include "doppel/pgstore/pg_event_store.h"

#include <fmt/format.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "pg_schema.h"
#include "pg_store_impl.h"

namespace doppel::pgstore {

using namespace eventstore;  // NOLINT: the interface's vocabulary

// AppendAsync's queues and the threads serving them. A stream always goes to the same queue,
// so its appends are stored, and answered, in the order they were handed in, as the embedded
// log does; different streams go on in parallel.
class AsyncAppender {
 public:
  AsyncAppender(PgStoreImpl& impl, size_t threads) : impl_(impl), shards_(threads) {
    for (auto& shard : shards_) shard.worker = std::thread([this, &shard] { Run(shard); });
  }
  ~AsyncAppender() {
    for (auto& shard : shards_) {
      {
        std::lock_guard lock(shard.mu);
        shard.stopping = true;
      }
      shard.cv.notify_all();
    }
    for (auto& shard : shards_) shard.worker.join();
  }
  void Push(AppendRequest request, EventStore::AppendCallback done) {
    Shard& shard = shards_[std::hash<std::string>()(request.stream) % shards_.size()];
    {
      std::lock_guard lock(shard.mu);
      if (!shard.stopping) {
        shard.queue.emplace_back(std::move(request), std::move(done));
        shard.cv.notify_one();
        return;
      }
    }
    done(Status::Unavailable("the PostgreSQL store is closing"));
  }

 private:
  struct Shard {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::pair<AppendRequest, EventStore::AppendCallback>> queue;
    bool stopping = false;
    std::thread worker;
  };
  void Run(Shard& shard) {
    for (;;) {
      std::pair<AppendRequest, EventStore::AppendCallback> job;
      {
        std::unique_lock lock(shard.mu);
        shard.cv.wait(lock, [&] { return shard.stopping || !shard.queue.empty(); });
        if (shard.queue.empty()) return;  // stopping, and every queued append answered
        job = std::move(shard.queue.front());
        shard.queue.pop_front();
      }
      job.second(impl_.Append(std::move(job.first)));
    }
  }
  PgStoreImpl& impl_;
  std::vector<Shard> shards_;
};

Status PgEventStore::InitSchema(const std::string& url) {
  auto conn = PgConnection::Connect(url);
  if (!conn.ok()) return conn.status();
  return CreateSchema(**conn);
}

Result<std::unique_ptr<PgEventStore>> PgEventStore::Open(const std::string& url,
                                                         PgEventStoreOptions options) {
  if (options.connections == 0) return Status::InvalidArgument("a store needs a connection");
  auto impl = std::make_unique<PgStoreImpl>(url, std::move(options));
  {
    auto conn = impl->pool().Acquire();
    if (!conn.ok()) return conn.status();
    auto encoding = (*conn)->Exec("SHOW server_encoding", "reading the database's encoding");
    if (!encoding.ok()) return encoding.status();
    if (encoding->Text(0, 0) != "UTF8") {
      return Status::NotADoppelLog(
          fmt::format("the database's encoding is {}; doppel's stream names and types need UTF8",
                      encoding->Text(0, 0)));
    }
    // A standby's snapshots and locks do not show the primary's writers: the commit horizon
    // could not hold a tail back there.
    auto recovery = (*conn)->Exec("SELECT pg_is_in_recovery()", "checking for a standby");
    if (!recovery.ok()) return recovery.status();
    if (recovery->Text(0, 0) == "t") {
      return Status::InvalidArgument(
          "this PostgreSQL server is a standby (in recovery); point --store at the primary");
    }
    DOPPEL_RETURN_IF_ERROR(CheckSchema(**conn));
  }
  return std::unique_ptr<PgEventStore>(new PgEventStore(std::move(impl)));
}

PgEventStore::PgEventStore(std::unique_ptr<PgStoreImpl> impl)
    : impl_(std::move(impl)),
      async_(std::make_unique<AsyncAppender>(*impl_, impl_->options().connections)) {}

PgEventStore::~PgEventStore() { async_.reset(); }

Result<AppendResult> PgEventStore::Append(AppendRequest request) {
  return impl_->Append(std::move(request));
}
void PgEventStore::AppendAsync(AppendRequest request, AppendCallback done) {
  async_->Push(std::move(request), std::move(done));
}
Result<ReadPage> PgEventStore::ReadStream(std::string_view stream, StreamVersion from,
                                          Direction direction, size_t max_count) const {
  return impl_->ReadStream(stream, from, direction, max_count);
}
Result<ReadPage> PgEventStore::ReadAll(GlobalPosition from, size_t max_count,
                                       TimeNs until_ns) const {
  return impl_->ReadAll(from, max_count, until_ns);
}
Result<GlobalPosition> PgEventStore::PositionAtTime(TimeNs t) const {
  return impl_->PositionAtTime(t);
}
Result<StreamVersion> PgEventStore::StreamHead(std::string_view stream) const {
  return impl_->StreamHead(stream);
}
Result<StreamList> PgEventStore::ListStreams(std::string_view prefix, std::string_view after,
                                             size_t max_count) const {
  return impl_->ListStreams(prefix, after, max_count);
}
Status PgEventStore::SaveSnapshot(const Snapshot& snapshot) {
  return impl_->SaveSnapshot(snapshot);
}
Result<Snapshot> PgEventStore::LoadSnapshot(std::string_view stream) const {
  return impl_->LoadSnapshot(stream);
}
Result<Snapshot> PgEventStore::LoadSnapshotAt(std::string_view stream, TimeNs at) const {
  return impl_->LoadSnapshotAt(stream, at);
}
Status PgEventStore::SetStreamMetadata(std::string_view stream, const StreamMetadata& metadata) {
  return impl_->SetStreamMetadata(stream, metadata);
}
Result<StreamMetadata> PgEventStore::GetStreamMetadata(std::string_view stream) const {
  return impl_->GetStreamMetadata(stream);
}
GlobalPosition PgEventStore::CommitHorizon() const { return impl_->horizon(); }
Result<GlobalPosition> PgEventStore::MaxPosition() const { return impl_->MaxPosition(); }

Result<GlobalPosition> PgEventStore::EndPosition() const {
  auto max = impl_->MaxPosition();
  if (!max.ok()) return max.status();
  return *max + 1;
}

Result<eventstore::CopyResult> PgEventStore::AppendCopied(const eventstore::CopiedBatch& batch) {
  return impl_->AppendCopied(batch);
}

Result<eventstore::CopyCheckpoint> PgEventStore::LoadCopyCheckpoint(std::string_view copier) const {
  return impl_->LoadCopyCheckpoint(copier);
}

Result<GlobalPosition> PgEventStore::CopiedPosition(std::string_view copier,
                                                    GlobalPosition source_position) const {
  return impl_->CopiedPosition(copier, source_position);
}
VerifyReport PgEventStore::Verify() const { return impl_->Verify(); }

}  // namespace doppel::pgstore
