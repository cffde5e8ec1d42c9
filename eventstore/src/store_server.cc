#include "doppel/eventstore/store_server.h"

#include <fmt/format.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "doppel/core/log.h"
#include "doppel/eventstore/wire_format.h"
#include "protocol.h"
#include "store_request.h"

namespace doppel::eventstore {
namespace {

constexpr char kComponent[] = "store";

// Answers ZeroMQ's authentication requests (ZAP, RFC 27) for CURVE: a client is let in only
// if its public key is on the allowed list.
class ZapHandler {
 public:
  ZapHandler(zmq::context_t& context, std::vector<std::string> allowed_z85) {
    for (const auto& key : allowed_z85) {
      std::string raw(32, '\0');
      zmq_z85_decode(reinterpret_cast<uint8_t*>(raw.data()), key.c_str());
      allowed_.insert(raw);
    }
    socket_ = zmq::socket_t(context, zmq::socket_type::rep);
    socket_.bind("inproc://zeromq.zap.01");
    socket_.set(zmq::sockopt::rcvtimeo, 100);
    thread_ = std::thread([this] { Run(); });
  }
  ~ZapHandler() {
    stop_ = true;
    thread_.join();
  }

 private:
  void Run() {
    while (!stop_) {
      std::vector<zmq::message_t> frames;
      auto got = zmq::recv_multipart(socket_, std::back_inserter(frames));
      if (!got) continue;
      // version, request id, domain, address, identity, mechanism, credentials...
      const std::string request_id = frames.size() > 1 ? frames[1].to_string() : "";
      bool ok = false;
      if (frames.size() >= 7 && frames[5].to_string_view() == "CURVE") {
        ok = allowed_.count(frames[6].to_string()) > 0;
      }
      if (!ok) refused_.Warn("refused a client whose CURVE key is not allowed");
      std::array<zmq::const_buffer, 6> reply = {
          zmq::str_buffer("1.0"),
          zmq::buffer(request_id),
          ok ? zmq::str_buffer("200") : zmq::str_buffer("400"),
          ok ? zmq::str_buffer("OK") : zmq::str_buffer("client key not allowed"),
          zmq::str_buffer(""),
          zmq::str_buffer("")};
      zmq::send_multipart(socket_, reply);
    }
  }

  std::set<std::string> allowed_;
  log::RateLimitedWarning refused_{kComponent};  // a client retrying cannot flood the log
  zmq::socket_t socket_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

class StoreServer::Impl {
 public:
  Impl(EventLog& log, StoreServerOptions options) : log_(log), options_(std::move(options)) {}

  Status Start() {
    zmq::context_t& context = SharedZmqContext();
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) return Status::IOError("eventfd failed");
    try {
      if (options_.curve && (IsTcpEndpoint(options_.listen) || IsTcpEndpoint(options_.publish))) {
        if (options_.curve->server.secret_key.empty()) {
          return Status::InvalidArgument("CURVE needs the server's secret key");
        }
        zap_ = std::make_unique<ZapHandler>(context, options_.curve->allowed_clients);
      }
      router_ = zmq::socket_t(context, zmq::socket_type::router);
      router_.set(zmq::sockopt::maxmsgsize, wire::kHardMaxMessageBytes);
      router_.set(zmq::sockopt::router_mandatory, false);
      router_.set(zmq::sockopt::sndhwm, 0);  // replies are never dropped
      router_.set(zmq::sockopt::linger, 0);
      Secure(router_, options_.listen);
      router_.bind(options_.listen);
      listen_ = router_.get(zmq::sockopt::last_endpoint);

      pub_ = zmq::socket_t(context, zmq::socket_type::pub);
      pub_.set(zmq::sockopt::sndhwm, options_.publish_hwm);
      pub_.set(zmq::sockopt::linger, 0);
      Secure(pub_, options_.publish);
      pub_.bind(options_.publish);
      publish_ = pub_.get(zmq::sockopt::last_endpoint);
    } catch (const zmq::error_t& e) {
      return Status::Unavailable(fmt::format("cannot bind store endpoints {} / {}: {}",
                                             options_.listen, options_.publish, e.what()));
    }
    log_.SetCommitListener([this](std::span<const std::string> envelopes) {
      std::lock_guard lock(outbox_mu_);
      const bool was_empty = outbox_.empty();
      for (const auto& e : envelopes) outbox_.push_back(Out{true, {}, e});
      if (was_empty) Wake();
    });
    for (int i = 0; i < std::max(1, options_.reader_threads); ++i) {
      readers_.emplace_back([this] { ReaderLoop(); });
    }
    io_ = std::thread([this] { IoLoop(); });
    log::Info(kComponent, "serving requests on {}, publishing on {}{}", listen_, publish_,
              zap_ ? " (CURVE)" : "");
    return Status::Ok();
  }

  ~Impl() {
    stop_ = true;
    Wake();
    if (io_.joinable()) io_.join();
    {
      std::lock_guard lock(tasks_mu_);
      tasks_stop_ = true;
    }
    tasks_cv_.notify_all();
    for (auto& t : readers_) t.join();
    // The log may outlive us; completions still in flight must not reach a dead outbox.
    log_.SetCommitListener(nullptr);
    if (wake_fd_ >= 0) ::close(wake_fd_);
  }

  const std::string& listen() const { return listen_; }
  const std::string& publish() const { return publish_; }
  Counters counters() const {
    return {requests_.load(), malformed_.load(), published_.load(), append_requests_.load(),
            append_errors_.load()};
  }

 private:
  struct Out {
    bool publish;          // true: a committed envelope for PUB; false: a reply
    std::string identity;  // the client (reply only)
    std::string bytes;
  };

  void Secure(zmq::socket_t& socket, const std::string& endpoint) {
    if (!options_.curve || !IsTcpEndpoint(endpoint)) return;
    socket.set(zmq::sockopt::zap_domain, "doppel");
    socket.set(zmq::sockopt::curve_server, true);
    socket.set(zmq::sockopt::curve_secretkey, options_.curve->server.secret_key);
  }

  void Wake() {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof(one));
  }

  void Reply(const std::string& identity, std::string bytes) {
    std::lock_guard lock(outbox_mu_);
    const bool was_empty = outbox_.empty();
    outbox_.push_back(Out{false, identity, std::move(bytes)});
    if (was_empty) Wake();  // the I/O thread drains everything queued when it wakes
  }

  void IoLoop() {
    int64_t next_heartbeat = MonotonicNowNs();
    std::deque<Out> batch;
    while (!stop_) {
      zmq::pollitem_t items[] = {{router_.handle(), 0, ZMQ_POLLIN, 0},
                                 {nullptr, wake_fd_, ZMQ_POLLIN, 0}};
      const int64_t wait_ms = std::max<int64_t>(0, (next_heartbeat - MonotonicNowNs()) / 1'000'000);
      try {
        zmq::poll(items, 2, std::chrono::milliseconds(wait_ms));
      } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) continue;
        log::Error(kComponent, "poll failed: {}", e.what());
        break;
      }
      if (items[1].revents & ZMQ_POLLIN) {
        uint64_t ignored;
        [[maybe_unused]] ssize_t n = ::read(wake_fd_, &ignored, sizeof(ignored));
      }
      // Every event below this position is in the outbox by now (the log hands events to
      // the publisher before advancing it), so a heartbeat sent after draining never
      // announces an event that was not published.
      const GlobalPosition published_below = log_.NextPosition();
      // Drain the outbox first: replies and publications in the order they were queued.
      {
        std::lock_guard lock(outbox_mu_);
        batch.swap(outbox_);
      }
      for (Out& out : batch) {
        if (out.publish) {
          Publish(out.bytes);
        } else {
          SendReply(out.identity, out.bytes);
        }
      }
      batch.clear();
      if (MonotonicNowNs() >= next_heartbeat) {
        PublishHeartbeat(published_below);
        next_heartbeat =
            MonotonicNowNs() + std::chrono::nanoseconds(wire::kHeartbeatInterval).count();
      }
      // Then take what clients sent, a bounded number per turn so replies keep flowing.
      for (int i = 0; i < 256; ++i) {
        std::vector<zmq::message_t> frames;
        std::optional<size_t> got;
        try {
          got = zmq::recv_multipart(router_, std::back_inserter(frames), zmq::recv_flags::dontwait);
        } catch (const zmq::error_t& e) {
          log::Warn(kComponent, "receive failed: {}", e.what());
          break;
        }
        if (!got) break;
        HandleFrames(frames);
      }
      if (!appends_.empty()) {
        std::vector<std::pair<AppendRequest, EventLog::AppendCallback>> appends;
        appends.swap(appends_);
        log_.AppendMany(std::move(appends));
      }
    }
  }

  void Publish(const std::string& envelope) {
    auto event = schemas::VerifyEnvelope(envelope);
    if (!event.ok()) return;  // the log built it; cannot happen, but never publish garbage
    const std::string topic = wire::EventTopic((*event)->stream()->string_view());
    std::array<zmq::const_buffer, 2> frames = {zmq::buffer(topic), zmq::buffer(envelope)};
    zmq::send_multipart(pub_, frames, zmq::send_flags::dontwait);
    ++published_;
  }

  void PublishHeartbeat(GlobalPosition next) {
    std::string position;
    for (int i = 0; i < 8; ++i) position.push_back(static_cast<char>(next >> (56 - 8 * i)));
    std::array<zmq::const_buffer, 2> frames = {zmq::str_buffer(wire::kHeartbeatTopic),
                                               zmq::buffer(position)};
    zmq::send_multipart(pub_, frames, zmq::send_flags::dontwait);
  }

  void SendReply(const std::string& identity, const std::string& bytes) {
    std::array<zmq::const_buffer, 2> frames = {zmq::buffer(identity), zmq::buffer(bytes)};
    try {
      zmq::send_multipart(router_, frames, zmq::send_flags::dontwait);
    } catch (const zmq::error_t& e) {
      log::Warn(kComponent, "reply dropped: {}", e.what());
    }
  }

  void HandleFrames(std::vector<zmq::message_t>& frames) {
    ++requests_;
    if (frames.empty()) return;
    const std::string identity = frames[0].to_string();
    // DEALER clients send one frame; REQ clients add an empty delimiter.
    size_t body = 1;
    if (frames.size() == 3 && frames[1].size() == 0) body = 2;
    if (frames.size() != body + 1) {
      ++malformed_;
      Reply(identity,
            protocol::ErrorBytes(0, Status::InvalidArgument(fmt::format(
                                        "expected one request frame, got {}", frames.size() - 1))));
      return;
    }
    const zmq::message_t& frame = frames[body];
    std::vector<uint64_t> scratch;
    const uint8_t* bytes =
        frame.size() > wire::kMaxRequestBytes ? nullptr : AlignedBytes(frame, scratch);
    const fb::StoreRequest* request = nullptr;
    uint64_t id = 0;
    if (Status st = protocol::CheckRequestFrame(bytes, frame.size(), &request, &id); !st.ok()) {
      ++malformed_;
      Reply(identity, protocol::ErrorBytes(id, st));
      return;
    }
    if (request->request_type() == fb::Request::AppendRequest) {
      auto append = protocol::DecodeAppend(*request->request_as_AppendRequest());
      if (!append.ok()) {
        ++malformed_;
        Reply(identity, protocol::ErrorBytes(id, append.status()));
        return;
      }
      // Gathered for one AppendMany after this turn's receives: one commit group, committed
      // on this thread when the log is idle.
      ++append_requests_;
      appends_.emplace_back(
          std::move(append).value(), [this, identity, id](Result<AppendResult> result) {
            if (!result.ok()) ++append_errors_;
            Reply(identity, result.ok() ? protocol::AppendResponseBytes(id, *result)
                                        : protocol::ErrorBytes(id, result.status()));
          });
      return;
    }
    // Everything else reads (or is rare): run it off the I/O thread. The frame is copied
    // into 8-aligned storage so the task owns its bytes.
    auto copy = std::make_shared<std::vector<uint64_t>>((frame.size() + 7) / 8);
    std::memcpy(copy->data(), frame.data(), frame.size());
    std::lock_guard lock(tasks_mu_);
    tasks_.push_back([this, identity, copy] {
      Reply(identity,
            protocol::ExecuteRequest(log_, *flatbuffers::GetRoot<fb::StoreRequest>(copy->data())));
    });
    tasks_cv_.notify_one();
  }

  void ReaderLoop() {
    while (true) {
      std::function<void()> task;
      {
        std::unique_lock lock(tasks_mu_);
        tasks_cv_.wait(lock, [this] { return tasks_stop_ || !tasks_.empty(); });
        if (tasks_stop_) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }

  EventLog& log_;
  StoreServerOptions options_;
  std::unique_ptr<ZapHandler> zap_;
  zmq::socket_t router_;
  zmq::socket_t pub_;
  std::string listen_, publish_;
  int wake_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread io_;

  std::mutex outbox_mu_;
  std::deque<Out> outbox_;
  std::vector<std::pair<AppendRequest, EventLog::AppendCallback>> appends_;  // I/O thread only

  std::mutex tasks_mu_;
  std::condition_variable tasks_cv_;
  std::deque<std::function<void()>> tasks_;
  bool tasks_stop_ = false;
  std::vector<std::thread> readers_;

  std::atomic<uint64_t> requests_{0}, malformed_{0}, published_{0};
  std::atomic<uint64_t> append_requests_{0}, append_errors_{0};
};

StoreServer::StoreServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
StoreServer::~StoreServer() = default;

Result<std::unique_ptr<StoreServer>> StoreServer::Start(EventLog& log, StoreServerOptions options) {
  auto impl = std::make_unique<Impl>(log, std::move(options));
  DOPPEL_RETURN_IF_ERROR(impl->Start());
  return std::unique_ptr<StoreServer>(new StoreServer(std::move(impl)));
}

const std::string& StoreServer::listen_endpoint() const { return impl_->listen(); }
const std::string& StoreServer::publish_endpoint() const { return impl_->publish(); }
StoreServer::Counters StoreServer::counters() const { return impl_->counters(); }

}  // namespace doppel::eventstore
