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

// AppendAsync's queue and the threads serving it, one connection each at a time.
class AsyncAppender {
 public:
  AsyncAppender(PgStoreImpl& impl, size_t threads) : impl_(impl) {
    for (size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { Run(); });
  }
  ~AsyncAppender() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }
  void Push(AppendRequest request, EventStore::AppendCallback done) {
    {
      std::lock_guard lock(mu_);
      if (!stopping_) {
        queue_.emplace_back(std::move(request), std::move(done));
        cv_.notify_one();
        return;
      }
    }
    done(Status::Unavailable("the PostgreSQL store is closing"));
  }

 private:
  void Run() {
    for (;;) {
      std::pair<AppendRequest, EventStore::AppendCallback> job;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping, and every queued append answered
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      job.second(impl_.Append(std::move(job.first)));
    }
  }
  PgStoreImpl& impl_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<AppendRequest, EventStore::AppendCallback>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
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
VerifyReport PgEventStore::Verify() const { return impl_->Verify(); }

}  // namespace doppel::pgstore
