#include "doppel/eventstore/store_client.h"

#include <fmt/format.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <deque>
#include <future>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "doppel/core/log.h"
#include "protocol.h"

namespace doppel::eventstore {
namespace {

constexpr char kComponent[] = "store-client";
using ResponseCallback = std::function<void(Result<std::string>)>;

}  // namespace

class StoreClient::Impl {
 public:
  explicit Impl(StoreClientOptions options) : options_(std::move(options)) {}

  Status Start() {
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) return Status::IOError("eventfd failed");
    try {
      dealer_ = zmq::socket_t(SharedZmqContext(), zmq::socket_type::dealer);
      dealer_.set(zmq::sockopt::sndhwm, 0);
      dealer_.set(zmq::sockopt::rcvhwm, 0);
      ConfigureClientSocket(dealer_, options_.endpoint, options_.curve);
      dealer_.connect(options_.endpoint);
    } catch (const zmq::error_t& e) {
      return Status::InvalidArgument(
          fmt::format("cannot connect to store {}: {}", options_.endpoint, e.what()));
    }
    io_ = std::thread([this] { IoLoop(); });
    return Status::Ok();
  }

  ~Impl() {
    stop_ = true;
    Wake();
    if (io_.joinable()) io_.join();
    if (wake_fd_ >= 0) ::close(wake_fd_);
  }

  // Sends a request built for a fresh request id; `done` gets the verified response bytes
  // (or why there is none) on the client's I/O thread.
  void Submit(const std::function<std::string(uint64_t)>& build, ResponseCallback done,
              std::chrono::milliseconds attempt_timeout = std::chrono::milliseconds(0)) {
    const uint64_t id = next_id_.fetch_add(1);
    Outgoing out{id, build(id), std::move(done),
                 attempt_timeout.count() > 0 ? attempt_timeout : options_.attempt_timeout};
    bool was_empty;
    {
      std::lock_guard lock(outgoing_mu_);
      was_empty = outgoing_.empty();
      outgoing_.push_back(std::move(out));
    }
    // Only the first request into an empty queue needs to wake the I/O thread; it takes
    // everything queued when it wakes. Under load this saves a syscall per request.
    if (was_empty) Wake();
  }

  Result<std::string> Call(const std::function<std::string(uint64_t)>& build,
                           std::chrono::milliseconds attempt_timeout = {}) {
    std::promise<Result<std::string>> promise;
    auto future = promise.get_future();
    Submit(
        build, [&promise](Result<std::string> r) { promise.set_value(std::move(r)); },
        attempt_timeout);
    return future.get();
  }

  const std::string& endpoint() const { return options_.endpoint; }

 private:
  struct Outgoing {
    uint64_t id;
    std::string bytes;
    ResponseCallback done;
    std::chrono::milliseconds attempt_timeout;
  };
  struct InFlight {
    std::string bytes;
    ResponseCallback done;
    std::chrono::milliseconds attempt_timeout;
    int64_t attempt_deadline_ns;
    int64_t deadline_ns;
    int attempts;
  };

  void Wake() {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof(one));
  }

  bool Send(const std::string& bytes) {
    try {
      return dealer_.send(zmq::buffer(bytes), zmq::send_flags::dontwait).has_value();
    } catch (const zmq::error_t& e) {
      log::Warn(kComponent, "send to {} failed: {}", options_.endpoint, e.what());
      return false;
    }
  }

  void IoLoop() {
    std::deque<Outgoing> batch;
    while (!stop_) {
      zmq::pollitem_t items[] = {{dealer_.handle(), 0, ZMQ_POLLIN, 0},
                                 {nullptr, wake_fd_, ZMQ_POLLIN, 0}};
      try {
        zmq::poll(items, 2, std::chrono::milliseconds(20));
      } catch (const zmq::error_t& e) {
        if (e.num() != EINTR) log::Error(kComponent, "poll failed: {}", e.what());
        continue;
      }
      if (items[1].revents & ZMQ_POLLIN) {
        uint64_t ignored;
        [[maybe_unused]] ssize_t n = ::read(wake_fd_, &ignored, sizeof(ignored));
      }
      {
        std::lock_guard lock(outgoing_mu_);
        batch.swap(outgoing_);
      }
      const int64_t now = MonotonicNowNs();
      for (Outgoing& out : batch) {
        Send(out.bytes);
        const int64_t attempt = std::chrono::nanoseconds(out.attempt_timeout).count();
        in_flight_.emplace(
            out.id,
            InFlight{
                std::move(out.bytes), std::move(out.done), out.attempt_timeout, now + attempt,
                now + std::chrono::nanoseconds(std::max(options_.deadline, out.attempt_timeout))
                          .count(),
                1});
      }
      batch.clear();
      for (int i = 0; i < 1024; ++i) {
        zmq::message_t message;
        std::optional<size_t> got;
        try {
          got = dealer_.recv(message, zmq::recv_flags::dontwait);
        } catch (const zmq::error_t& e) {
          break;
        }
        if (!got) break;
        Deliver(message.to_string());
      }
      ExpireOrRetry();
    }
    for (auto& [id, f] : in_flight_) f.done(Status::Unavailable("store client closed"));
    in_flight_.clear();
  }

  void Deliver(std::string bytes) {
    auto response = protocol::VerifyResponse(bytes);
    if (!response.ok()) {
      log::Warn(kComponent, "ignoring a reply from {} that does not verify", options_.endpoint);
      return;
    }
    const uint64_t id = (*response)->request_id();
    if (id == 0 && (*response)->response_type() == fb::Response::ErrorResponse) {
      log::Warn(kComponent, "store {} refused a request: {}", options_.endpoint,
                protocol::ToStatus(*(*response)->response_as_ErrorResponse()).ToString());
      return;
    }
    auto it = in_flight_.find(id);
    if (it == in_flight_.end()) return;  // a late reply to a request answered already
    ResponseCallback done = std::move(it->second.done);
    in_flight_.erase(it);
    done(std::move(bytes));
  }

  void ExpireOrRetry() {
    const int64_t now = MonotonicNowNs();
    for (auto it = in_flight_.begin(); it != in_flight_.end();) {
      InFlight& f = it->second;
      if (now < f.attempt_deadline_ns) {
        ++it;
        continue;
      }
      if (now >= f.deadline_ns) {
        ResponseCallback done = std::move(f.done);
        const int attempts = f.attempts;
        it = in_flight_.erase(it);
        done(Status::Unavailable(fmt::format("store {} did not answer ({} attempts over {} ms)",
                                             options_.endpoint, attempts,
                                             options_.deadline.count())));
        continue;
      }
      // No answer yet: the store may have restarted; send the same request again.
      Send(f.bytes);
      ++f.attempts;
      f.attempt_deadline_ns = now + std::chrono::nanoseconds(f.attempt_timeout).count();
      ++it;
    }
  }

  StoreClientOptions options_;
  zmq::socket_t dealer_;
  int wake_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> next_id_{1};
  std::thread io_;
  std::mutex outgoing_mu_;
  std::deque<Outgoing> outgoing_;
  std::unordered_map<uint64_t, InFlight> in_flight_;  // I/O thread only
};

namespace {

// Decodes a verified response of the expected type, or the error it carries.
template <typename T>
Result<const T*> As(const std::string& bytes, fb::Response type) {
  const auto* response = flatbuffers::GetRoot<fb::StoreResponse>(bytes.data());
  if (response->response_type() == fb::Response::ErrorResponse) {
    return protocol::ToStatus(*response->response_as_ErrorResponse());
  }
  if (response->response_type() != type) {
    return Status::Corruption(fmt::format("store replied with response type {} (expected {})",
                                          static_cast<int>(response->response_type()),
                                          static_cast<int>(type)));
  }
  return static_cast<const T*>(response->response());
}

Result<AppendResult> ToAppendResult(Result<std::string> bytes) {
  if (!bytes.ok()) return bytes.status();
  auto r = As<fb::AppendResponse>(*bytes, fb::Response::AppendResponse);
  if (!r.ok()) return r.status();
  AppendResult result;
  result.first_version = (*r)->first_version();
  result.last_version = (*r)->last_version();
  result.first_position = (*r)->first_position();
  result.last_position = (*r)->last_position();
  result.recorded_ns = (*r)->recorded_ns();
  result.duplicate = (*r)->duplicate();
  if ((*r)->ids() != nullptr) {
    for (const fb::Uuid* id : *(*r)->ids()) result.ids.push_back(schemas::FromFb(id));
  }
  return result;
}

Result<ReadPage> ToReadPage(Result<std::string> bytes) {
  if (!bytes.ok()) return bytes.status();
  auto r = As<fb::ReadResponse>(*bytes, fb::Response::ReadResponse);
  if (!r.ok()) return r.status();
  ReadPage page;
  page.next = (*r)->next();
  page.end = (*r)->end();
  if ((*r)->events() != nullptr) {
    page.events.reserve((*r)->events()->size());
    for (const fb::EventBytes* e : *(*r)->events()) {
      if (e->envelope() == nullptr) return Status::Corruption("read reply holds an empty event");
      auto event = RecordedEvent::FromBytes(
          std::string(reinterpret_cast<const char*>(e->envelope()->data()), e->envelope()->size()));
      if (!event.ok()) return event.status();
      page.events.push_back(std::move(event).value());
    }
  }
  return page;
}

Status ToStatusOnly(Result<std::string> bytes) {
  if (!bytes.ok()) return bytes.status();
  return As<fb::OkResponse>(*bytes, fb::Response::OkResponse).status();
}

}  // namespace

StoreClient::StoreClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
StoreClient::~StoreClient() = default;

Result<std::unique_ptr<StoreClient>> StoreClient::Connect(StoreClientOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  DOPPEL_RETURN_IF_ERROR(impl->Start());
  return std::unique_ptr<StoreClient>(new StoreClient(std::move(impl)));
}

Result<AppendResult> StoreClient::Append(AppendRequest request) {
  std::promise<Result<AppendResult>> promise;
  auto future = promise.get_future();
  AppendAsync(std::move(request),
              [&promise](Result<AppendResult> r) { promise.set_value(std::move(r)); });
  return future.get();
}

void StoreClient::AppendAsync(AppendRequest request, AppendCallback done) {
  // Ids before the first attempt make every resend an idempotent duplicate.
  for (NewEvent& e : request.events) {
    if (e.id.is_nil()) e.id = EventId::Random();
  }
  auto shared = std::make_shared<AppendRequest>(std::move(request));
  impl_->Submit([shared](uint64_t id) { return protocol::AppendRequestBytes(id, *shared); },
                [done = std::move(done)](Result<std::string> bytes) {
                  done(ToAppendResult(std::move(bytes)));
                });
}

Result<ReadPage> StoreClient::ReadStream(std::string_view stream, StreamVersion from,
                                         Direction direction, size_t max_count) const {
  const std::string s(stream);
  const auto count = static_cast<uint32_t>(std::min<size_t>(max_count, UINT32_MAX));
  return ToReadPage(impl_->Call([&](uint64_t id) {
    return protocol::ReadStreamRequestBytes(id, s, from, direction, count);
  }));
}

Result<ReadPage> StoreClient::ReadAll(GlobalPosition from, size_t max_count,
                                      TimeNs until_ns) const {
  const auto count = static_cast<uint32_t>(std::min<size_t>(max_count, UINT32_MAX));
  return ToReadPage(impl_->Call(
      [&](uint64_t id) { return protocol::ReadAllRequestBytes(id, from, count, until_ns); }));
}

Result<GlobalPosition> StoreClient::PositionAtTime(TimeNs t) const {
  auto bytes =
      impl_->Call([&](uint64_t id) { return protocol::PositionAtTimeRequestBytes(id, t); });
  if (!bytes.ok()) return bytes.status();
  auto r = As<fb::PositionResponse>(*bytes, fb::Response::PositionResponse);
  if (!r.ok()) return r.status();
  return (*r)->position();
}

Result<StreamVersion> StoreClient::StreamHead(std::string_view stream) const {
  const std::string s(stream);
  auto bytes = impl_->Call([&](uint64_t id) { return protocol::StreamHeadRequestBytes(id, s); });
  if (!bytes.ok()) return bytes.status();
  auto r = As<fb::VersionResponse>(*bytes, fb::Response::VersionResponse);
  if (!r.ok()) return r.status();
  return (*r)->version();
}

Result<CopyResult> StoreClient::AppendCopied(const CopiedBatch& batch) {
  auto bytes =
      impl_->Call([&](uint64_t id) { return protocol::AppendCopiedRequestBytes(id, batch); });
  if (!bytes.ok()) return bytes.status();
  auto r = As<fb::CopyResponse>(*bytes, fb::Response::CopyResponse);
  if (!r.ok()) return r.status();
  return CopyResult{(*r)->written(), (*r)->present(),
                    CopyCheckpoint{(*r)->source_next(), (*r)->events()}};
}

Result<CopyCheckpoint> StoreClient::LoadCopyCheckpoint(std::string_view copier) const {
  const std::string c(copier);
  auto bytes =
      impl_->Call([&](uint64_t id) { return protocol::CopyCheckpointRequestBytes(id, c); });
  if (!bytes.ok()) return bytes.status();
  auto r = As<fb::CopyResponse>(*bytes, fb::Response::CopyResponse);
  if (!r.ok()) return r.status();
  return CopyCheckpoint{(*r)->source_next(), (*r)->events()};
}

Result<GlobalPosition> StoreClient::CopiedPosition(std::string_view copier,
                                                   GlobalPosition source_position) const {
  const std::string c(copier);
  auto bytes = impl_->Call(
      [&](uint64_t id) { return protocol::CopiedPositionRequestBytes(id, c, source_position); });
  if (!bytes.ok()) return bytes.status();
  auto r = As<fb::PositionResponse>(*bytes, fb::Response::PositionResponse);
  if (!r.ok()) return r.status();
  return (*r)->position();
}

Result<StreamList> StoreClient::ListStreams(std::string_view prefix, std::string_view after,
                                            size_t max_count) const {
  const std::string p(prefix), a(after);
  const auto count = static_cast<uint32_t>(std::min<size_t>(max_count, UINT32_MAX));
  auto bytes =
      impl_->Call([&](uint64_t id) { return protocol::ListStreamsRequestBytes(id, p, a, count); });
  if (!bytes.ok()) return bytes.status();
  auto r = As<fb::StreamListResponse>(*bytes, fb::Response::StreamListResponse);
  if (!r.ok()) return r.status();
  StreamList list;
  list.end = (*r)->end();
  if ((*r)->streams()) {
    for (const auto* s : *(*r)->streams()) list.streams.emplace_back(s->string_view());
  }
  return list;
}

Status StoreClient::SaveSnapshot(const Snapshot& snapshot) {
  return ToStatusOnly(
      impl_->Call([&](uint64_t id) { return protocol::SaveSnapshotRequestBytes(id, snapshot); }));
}

Result<Snapshot> StoreClient::LoadSnapshot(std::string_view stream) const {
  return LoadSnapshotAt(stream, kTimeMax);
}

Result<Snapshot> StoreClient::LoadSnapshotAt(std::string_view stream, TimeNs at) const {
  const std::string s(stream);
  auto bytes =
      impl_->Call([&](uint64_t id) { return protocol::LoadSnapshotRequestBytes(id, s, at); });
  if (!bytes.ok()) return bytes.status();
  auto r = As<fb::SnapshotResponse>(*bytes, fb::Response::SnapshotResponse);
  if (!r.ok()) return r.status();
  Snapshot snap;
  snap.stream = (*r)->stream() ? (*r)->stream()->str() : s;
  snap.version = (*r)->version();
  snap.schema_version = (*r)->schema_version();
  snap.recorded_ns = (*r)->recorded_ns();
  if ((*r)->state()) {
    snap.state.assign(reinterpret_cast<const char*>((*r)->state()->data()), (*r)->state()->size());
  }
  return snap;
}

Status StoreClient::SetStreamMetadata(std::string_view stream, const StreamMetadata& metadata) {
  const std::string s(stream);
  return ToStatusOnly(impl_->Call(
      [&](uint64_t id) { return protocol::SetStreamMetadataRequestBytes(id, s, metadata); }));
}

Result<StreamMetadata> StoreClient::GetStreamMetadata(std::string_view stream) const {
  const std::string s(stream);
  auto bytes =
      impl_->Call([&](uint64_t id) { return protocol::GetStreamMetadataRequestBytes(id, s); });
  if (!bytes.ok()) return bytes.status();
  auto r = As<fb::StreamMetadataResponse>(*bytes, fb::Response::StreamMetadataResponse);
  if (!r.ok()) return r.status();
  return StreamMetadata{(*r)->max_age_ns(), (*r)->max_count(), (*r)->truncate_before()};
}

Result<GlobalPosition> StoreClient::NextPosition() const {
  auto bytes = impl_->Call([](uint64_t id) { return protocol::ServerInfoRequestBytes(id); });
  if (!bytes.ok()) return bytes.status();
  auto r = As<fb::ServerInfoResponse>(*bytes, fb::Response::ServerInfoResponse);
  if (!r.ok()) return r.status();
  return (*r)->next_position();
}

Result<VerifyReport> StoreClient::Verify() const {
  // Verification reads the whole log: give it time instead of resending.
  auto bytes = impl_->Call([](uint64_t id) { return protocol::VerifyLogRequestBytes(id); },
                           std::chrono::minutes(30));
  if (!bytes.ok()) return bytes.status();
  auto r = As<fb::VerifyLogResponse>(*bytes, fb::Response::VerifyLogResponse);
  if (!r.ok()) return r.status();
  VerifyReport report;
  report.events = (*r)->events();
  report.streams = (*r)->streams();
  report.scavenged = (*r)->scavenged();
  report.next_position = (*r)->next_position();
  report.problem_count = (*r)->problem_count();
  if ((*r)->problems()) {
    for (const auto* p : *(*r)->problems()) report.problems.push_back(p->str());
  }
  return report;
}

}  // namespace doppel::eventstore
