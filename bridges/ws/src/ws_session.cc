#include "ws_session.h"

#include <fmt/format.h>

#include <bit>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstring>

#include "client_command.h"
#include "client_json.h"
#include "doppel/core/log.h"
#include "foxglove_messages.h"

namespace doppel::gateway {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using nlohmann::json;

static_assert(std::endian::native == std::endian::little, "frames are written little-endian");

namespace {

constexpr std::string_view kComponent = "gateway";
constexpr uint32_t kTimeKey = 0xffffffff;  // the time frame's latest-value slot

// A client that breaks the protocol can reconnect and do it again: the log says so a few
// times, then counts.
log::RateLimitedWarning& ProtocolWarning() {
  static log::RateLimitedWarning warning(kComponent);
  return warning;
}

}  // namespace

WsSession::WsSession(tcp::socket socket, doppel::net::ConnectionTicket ticket,
                     Gateway::Impl& gateway, Token who, WsProtocol protocol,
                     std::string subprotocol, std::unique_ptr<ReplaySession> replay)
    : protocol_(protocol),
      subprotocol_(std::move(subprotocol)),
      replay_(std::move(replay)),
      tick_timer_(gateway.io()),
      handshake_(std::move(socket)),
      socket_(handshake_.get_executor()),
      close_timer_(handshake_.get_executor()),
      gateway_(gateway),
      who_(std::move(who)),
      ticket_(std::move(ticket)) {
  if (protocol_ == WsProtocol::kRosbridge) {
    rosbridge_ = std::make_unique<RosbridgeSession>(
        who_.role, [&gateway](std::string_view robot) { return gateway.KnowsRobot(robot); });
  }
}

WsSession::~WsSession() = default;

void WsSession::Start(http::request<http::string_body> request) {
  // rosbridge has no subprotocol: its clients (roslibjs) offer none.
  handshake_.set_option(websocket::stream_base::decorator(
      [subprotocol = subprotocol_](websocket::response_type& res) {
        if (!subprotocol.empty()) res.set(http::field::sec_websocket_protocol, subprotocol);
        res.set(http::field::server, "doppel-gateway");
      }));
  handshake_.async_accept(request, [self = shared_from_this()](beast::error_code ec) {
    if (ec) {
      log::Warn(kComponent, "websocket handshake failed: {}", ec.message());
      return;
    }
    self->socket_ = std::move(self->handshake_.next_layer());
    if (self->replay_) {
      // A timeline of its own, not part of the live catalogue, opened off the network thread.
      self->gateway_.ReplayJoined(self);
      const std::string name = self->gateway_.options().name;
      const std::string id = fmt::format("replay-{}", self->gateway_.port());
      auto opened = std::make_shared<bool>(false);
      self->OnReplayWorker(
          [name, id, opened](ReplaySession& replay, ReplayFrames& frames) {
            if (Status s = replay.Open(); !s.ok()) {
              frames.texts.push_back(StatusJson(2, "Replay unavailable: " + s.message()));
              return;
            }
            *opened = true;
            frames.texts.push_back(replay.ServerInfo(name, id));
            frames.texts.push_back(replay.Advertise());
          },
          [self, opened] {
            if (*opened) {
              self->ReplayTick();
            } else {
              self->SendClose(1011, "replay unavailable");
            }
          });
    } else {
      self->gateway_.Joined(self);
    }
    self->Read();
  });
}

void WsSession::SendText(std::string text) {
  SendText(std::make_shared<const std::string>(std::move(text)));
}

void WsSession::SendText(std::shared_ptr<const std::string> text) {
  Frame f;
  f.body = std::move(text);
  f.opcode = WsOpcode::kText;
  Enqueue(std::move(f), false);
}

void WsSession::SendMessage(uint32_t subscription, uint32_t channel, TimeNs stamp,
                            const std::shared_ptr<const std::string>& payload) {
  Frame f;
  f.body = payload;
  f.header[0] = 0x01;
  std::memcpy(&f.header[1], &subscription, 4);
  const uint64_t ts = static_cast<uint64_t>(stamp);
  std::memcpy(&f.header[5], &ts, 8);
  f.header_len = 13;
  f.key = channel;
  f.stamp = stamp;
  Enqueue(std::move(f), true);
}

void WsSession::SendTime(TimeNs now) {
  if (rosbridge_) return;
  Frame f;
  f.header[0] = 0x02;
  const uint64_t ts = static_cast<uint64_t>(now);
  std::memcpy(&f.header[1], &ts, 8);
  f.header_len = 9;
  f.key = kTimeKey;
  Enqueue(std::move(f), true);
}

void WsSession::PullAdvertisements() {
  // rosbridge has no catalogue; a replay session has its own (replay_session.h).
  if (closed_ || closing_ || rosbridge_ || replay_) return;
  bool queued = false;
  while (advertise_bytes_ < kAdvertiseWindow && advertised_end_ < gateway_.channel_end()) {
    uint32_t next = 0;
    auto page = gateway_.AdvertisePage(advertised_end_, next);
    advertised_end_ = next;
    if (!page) break;
    Frame f;
    f.body = std::move(page);
    f.opcode = WsOpcode::kText;
    f.advertise_page = true;
    Push(std::move(f));
    queued = true;
  }
  if (queued) Write();
}

void WsSession::Unadvertise(const std::vector<uint32_t>& ids) {
  if (rosbridge_ || replay_) return;
  std::vector<uint32_t> told;
  for (uint32_t id : ids) {
    if (id < advertised_end_) told.push_back(id);
  }
  if (!told.empty()) SendText(UnadvertiseJson(told));
}

void WsSession::Close() {
  if (closed_) return;
  closed_ = true;
  close_timer_.cancel();
  tick_timer_.cancel();
  if (replay_) {
    // Its pending replay jobs are not run. They hold this session: keep it alive until the end.
    auto keep = weak_from_this().lock();
    gateway_.replay_worker().Drop(this);
  }
  beast::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

void WsSession::Enqueue(Frame f, bool droppable) {
  if (closed_ || closing_) return;
  const auto& o = gateway_.options();
  const int64_t now = MonotonicNowNs();
  // Slow: over the byte budget, or the oldest queued message waited too long. Catalogue
  // pages are left out: the window bounds them.
  const size_t budgeted = queued_bytes_ - advertise_bytes_;
  const bool slow =
      budgeted + f.size() > o.send_budget_bytes ||
      (!queue_.empty() && now - queue_.front().queued_mono > o.max_send_delay_s * 1e9);
  if (droppable && (slow || !held_.empty())) {
    // Keep only the newest message per channel until the client has caught up.
    auto [it, inserted] = held_.insert_or_assign(f.key, std::move(f));
    if (!inserted) gateway_.NoteDropped();
    if (!warned_) {
      warned_ = true;
      SendText(rosbridge_ ? RosbridgeSession::SlowClientWarning()
                          : StatusJson(1,
                                       "Send buffer limit reached: this client is slow, so only "
                                       "the newest message per channel is kept until it catches up",
                                       "backpressure"));
    }
    return;
  }
  Push(std::move(f));
  if (queued_bytes_ - advertise_bytes_ > o.hard_limit_bytes) {
    log::Warn(kComponent, "client {}: send queue past {} bytes, disconnecting", who_.name,
              o.hard_limit_bytes);
    Close();
    return;
  }
  Write();
}

void WsSession::Push(Frame f) {
  f.queued_mono = MonotonicNowNs();
  f.ws_len = f.raw ? 0 : static_cast<uint8_t>(EncodeFrameHeader(f.opcode, f.size(), f.ws));
  queued_bytes_ += f.size();
  if (f.advertise_page) advertise_bytes_ += f.size();
  queue_.push_back(std::move(f));
}

void WsSession::Write() {
  if (writing_ || queue_.empty() || closed_) return;
  writing_ = true;
  gather_.clear();
  size_t frames = 0, bytes = 0;
  for (const Frame& f : queue_) {
    if (frames == kMaxGather || (frames > 0 && bytes > 256 * 1024)) break;
    if (f.ws_len) gather_.push_back(net::buffer(f.ws.data(), f.ws_len));
    if (f.header_len) gather_.push_back(net::buffer(f.header.data(), f.header_len));
    if (f.body && !f.body->empty()) gather_.push_back(net::buffer(*f.body));
    bytes += f.size();
    ++frames;
  }
  net::async_write(socket_, gather_,
                   [self = shared_from_this(), frames](beast::error_code ec, size_t) {
                     self->OnWritten(ec, frames);
                   });
}

void WsSession::OnWritten(beast::error_code ec, size_t frames) {
  writing_ = false;
  if (ec) {
    Close();
    return;
  }
  for (size_t i = 0; i < frames; ++i) {
    const Frame& f = queue_.front();
    gateway_.NoteSent(f.size(), f.opcode == WsOpcode::kBinary ? f.stamp : 0);
    queued_bytes_ -= f.size();
    if (f.advertise_page) advertise_bytes_ -= f.size();
    if (f.opcode == WsOpcode::kClose) {
      // Our close frame went out: the server closes TCP first (RFC 6455 7.1.1), by sending
      // FIN; the read loop ends on the client's FIN, or the close timer ends it all.
      beast::error_code ignored;
      socket_.shutdown(tcp::socket::shutdown_send, ignored);
      queued_bytes_ = advertise_bytes_ = 0;
      queue_.clear();
      return;
    }
    queue_.pop_front();
  }
  if (!held_.empty() && queue_.empty()) {
    // Caught up: send the newest value of each channel that was held back.
    for (auto& [key, frame] : held_) Push(std::move(frame));
    held_.clear();
    warned_ = false;
  }
  PullAdvertisements();
  Write();
}

void WsSession::Read() {
  socket_.async_read_some(
      net::buffer(in_), [self = shared_from_this()](beast::error_code ec, size_t n) {
        if (ec) {
          self->Close();
          self->gateway_.Left(self.get());
          return;
        }
        // Once the connection is ending, what the client still sends is read and dropped
        // (the reader is done): closing a socket with unread bytes would reset it, and the
        // client could lose our close frame.
        if (!self->closing_ && !self->closed_) {
          for (WsEvent& event : self->reader_.Feed(std::string_view(self->in_.data(), n))) {
            if (!self->OnEvent(event)) {
              self->gateway_.Left(self.get());
              break;
            }
          }
        }
        if (!self->closed_) self->Read();
      });
}

bool WsSession::OnEvent(WsEvent& event) {
  switch (event.kind) {
    case WsEvent::Kind::kText:
      OnText(event.payload);
      break;
    case WsEvent::Kind::kBinary:
      OnBinary(event.payload);
      break;
    case WsEvent::Kind::kPing: {
      Frame pong;
      pong.body = std::make_shared<const std::string>(std::move(event.payload));
      pong.opcode = WsOpcode::kPong;
      Enqueue(std::move(pong), false);
      break;
    }
    case WsEvent::Kind::kPong:
      break;
    case WsEvent::Kind::kClose:
      SendClose(event.code, "");
      break;
    case WsEvent::Kind::kFail:
      ProtocolWarning().Warn("client {}: {}; closing the connection with {}", who_.name,
                             event.payload, event.code);
      SendClose(event.code, event.payload);
      break;
  }
  return !closing_ && !closed_;
}

void WsSession::SendClose(uint16_t code, std::string_view reason) {
  if (closed_ || closing_) return;
  Frame f;
  // A close without a status is answered without one (1005 is never sent).
  f.body = std::make_shared<const std::string>(
      code == kCloseNoStatus ? std::string() : EncodeClosePayload(code, reason));
  f.opcode = WsOpcode::kClose;
  Push(std::move(f));
  closing_ = true;
  held_.clear();
  close_timer_.expires_after(std::chrono::milliseconds(kCloseTimeoutMs));
  close_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (!ec) self->Close();
  });
  Write();
}

void WsSession::OnText(const std::string& text) {
  if (rosbridge_) {
    rosbridge_->OnText(text, MonotonicNowNs());
    RunRosbridge();
    return;
  }
  auto parsed = ParseClientJson(text);
  if (!parsed.ok()) {
    SendText(StatusJson(2, fmt::format("{} message: {}", ClientJsonVerdict(parsed.status()),
                                       parsed.status().message())));
    return;
  }
  const json& j = *parsed;
  if (!j.is_object() || !j.contains("op") || !j["op"].is_string()) {
    SendText(StatusJson(2, "Malformed message: want a JSON object with an \"op\""));
    return;
  }
  const std::string op = j["op"];
  try {
    if (op == "subscribe" && replay_) {
      std::vector<std::pair<uint32_t, uint32_t>> subscriptions;
      for (const auto& s : j.at("subscriptions")) {
        subscriptions.emplace_back(s.at("id").get<uint32_t>(), s.at("channelId").get<uint32_t>());
      }
      OnReplayWorker(
          [subscriptions](ReplaySession& replay, ReplayFrames& frames) {
            for (const auto& [id, channel] : subscriptions) replay.Subscribe(id, channel, frames);
          },
          {}, ReplayWorker::Kind::kSubscription);
    } else if (op == "unsubscribe" && replay_) {
      std::vector<uint32_t> ids;
      for (const auto& id : j.at("subscriptionIds")) ids.push_back(id.get<uint32_t>());
      OnReplayWorker(
          [ids](ReplaySession& replay, ReplayFrames&) {
            for (uint32_t id : ids) replay.Unsubscribe(id);
          },
          {}, ReplayWorker::Kind::kSubscription);
    } else if (op == "subscribe") {
      for (const auto& s : j.at("subscriptions")) {
        gateway_.Subscribe(this, s.at("id").get<uint32_t>(), s.at("channelId").get<uint32_t>());
      }
    } else if (op == "unsubscribe") {
      for (const auto& id : j.at("subscriptionIds")) {
        gateway_.Unsubscribe(this, id.get<uint32_t>());
      }
    } else if (op == "advertise" && replay_) {
      SendText(StatusJson(2, "A replay session does not take client channels"));
    } else if (op == "advertise") {
      OnClientAdvertise(j);
    } else if (op == "unadvertise") {
      for (const auto& id : j.at("channelIds")) client_channels_.erase(id.get<uint32_t>());
    } else {
      SendText(StatusJson(2, fmt::format("Unsupported op '{}'", op)));
    }
  } catch (const json::exception& e) {
    SendText(StatusJson(2, fmt::format("Malformed '{}': {}", op, e.what())));
  }
}

void WsSession::OnClientAdvertise(const json& j) {
  if (who_.role == Role::kViewer) {
    SendText(StatusJson(2, "Publishing is not allowed for role viewer (needs an operator token)",
                        "publish-denied"));
    return;
  }
  for (const auto& c : j.at("channels")) {
    const uint32_t id = c.at("id").get<uint32_t>();
    const std::string topic = c.at("topic").get<std::string>();
    const std::string encoding = c.value("encoding", "json");
    if (encoding != "json") {
      SendText(StatusJson(2, fmt::format("Channel {}: only json is accepted", topic)));
      continue;
    }
    const auto slash = topic.rfind('/');
    const std::string leaf = slash == std::string::npos ? topic : topic.substr(slash + 1);
    if (topic.size() < 2 || topic[0] != '/' || slash == 0 ||
        (leaf != "cmd_vel" && leaf != "stop")) {
      SendText(StatusJson(
          2,
          fmt::format("Channel {}: clients may publish /<robot>/cmd_vel or /<robot>/stop", topic)));
      continue;
    }
    client_channels_[id] = {topic.substr(1, slash - 1), leaf};
  }
}

void WsSession::OnBinary(const std::string& data) {
  if (rosbridge_) {
    SendText(RosbridgeStatusJson("error",
                                 "rosbridge messages are JSON text; binary (CBOR/BSON) "
                                 "is not supported"));
    return;
  }
  if (replay_) {
    if (data.empty() || static_cast<uint8_t>(data[0]) != kPlaybackControlOpcode) {
      SendText(StatusJson(2, "A replay session takes PlaybackControlRequest (opcode 0x03) only"));
      return;
    }
    // Only the latest seek matters: a seek not yet started is replaced by the next one. A
    // malformed request goes as a plain request, for Control to answer.
    auto request = DecodePlaybackControl(data);
    OnReplayWorker([data](ReplaySession& replay,
                          ReplayFrames& frames) { replay.Control(data, MonotonicNowNs(), frames); },
                   {},
                   request.ok() && request->had_seek ? ReplayWorker::Kind::kSeek
                                                     : ReplayWorker::Kind::kRequest);
    return;
  }
  if (data.size() < 5 || static_cast<uint8_t>(data[0]) != 0x01) {
    SendText(StatusJson(2, "Malformed binary message: want 0x01 | channel id | payload"));
    return;
  }
  if (who_.role == Role::kViewer) {
    SendText(StatusJson(2, "Publishing is not allowed for role viewer", "publish-denied"));
    return;
  }
  uint32_t channel = 0;
  std::memcpy(&channel, data.data() + 1, 4);
  auto it = client_channels_.find(channel);
  if (it == client_channels_.end()) {
    SendText(StatusJson(2, fmt::format("Channel {} was not advertised by this client", channel)));
    return;
  }
  const auto& [robot, kind] = it->second;
  if (!gateway_.KnowsRobot(robot)) {
    SendText(StatusJson(2, fmt::format("Unknown robot '{}'", robot)));
    return;
  }
  auto parsed = ParseClientJson(std::string_view(data).substr(5));
  if (!parsed.ok()) {
    SendText(StatusJson(2, fmt::format("{} {} message: {}", ClientJsonVerdict(parsed.status()),
                                       kind, parsed.status().message())));
    return;
  }
  const json& msg = *parsed;
  if (!msg.is_object()) {
    SendText(StatusJson(2, fmt::format("Malformed {} message: want a JSON object", kind)));
    return;
  }
  eventstore::NewEvent e =
      CommandIssuedEvent(kind == "stop", msg, fmt::format("gateway:{}", who_.name));
  gateway_.Command(shared_from_this(), robot, std::move(e));
}

void WsSession::SendReplay(ReplayFrames& frames) {
  for (auto& text : frames.texts) SendText(std::move(text));
  for (auto& binary : frames.binaries) {
    Frame f;
    f.body = std::make_shared<const std::string>(std::move(binary));
    f.opcode = WsOpcode::kBinary;
    Enqueue(std::move(f), false);
  }
  for (auto& d : frames.data) {
    Frame f;
    f.body = std::move(d.payload);
    f.header[0] = 0x01;
    std::memcpy(&f.header[1], &d.subscription, 4);
    const uint64_t ts = static_cast<uint64_t>(d.stamp);
    std::memcpy(&f.header[5], &ts, 8);
    f.header_len = 13;
    f.key = d.channel;
    f.stamp = d.stamp;
    Enqueue(std::move(f), false);  // a replay never drops: its clock waits instead
  }
  for (auto& binary : frames.after_data) {
    Frame f;
    f.body = std::make_shared<const std::string>(std::move(binary));
    f.opcode = WsOpcode::kBinary;
    Enqueue(std::move(f), false);
  }
}

void WsSession::OnReplayWorker(std::function<void(ReplaySession&, ReplayFrames&)> work,
                               std::function<void()> after, ReplayWorker::Kind kind) {
  if (closed_) return;
  const auto posted = gateway_.replay_worker().Post(
      this, kind, [self = shared_from_this(), work = std::move(work), after = std::move(after)] {
        auto frames = std::make_shared<ReplayFrames>();
        work(*self->replay_, *frames);
        net::post(self->gateway_.io(), [self, frames, after] {
          if (self->closed_) return;
          self->SendReplay(*frames);
          if (after) after();
        });
      });
  if (posted == ReplayWorker::Posted::kRefused) {
    SendText(StatusJson(
        2,
        fmt::format("Replay request refused: {} of this session's requests are already "
                    "waiting; send the next when one is answered",
                    kind == ReplayWorker::Kind::kSubscription ? ReplayWorker::kMaxSubscriptionOps
                                                              : ReplayWorker::kMaxRequests),
        "replay-busy"));
  }
}

// One tick at a time: the next is armed when this one's frames are queued.
void WsSession::ReplayTick() {
  if (closed_ || closing_ || !replay_) return;
  const size_t queued = queue_.size();
  const size_t room = queued < kReplayQueueFrames ? kReplayQueueFrames - queued : 0;
  OnReplayWorker([room](ReplaySession& replay,
                        ReplayFrames& frames) { replay.Tick(MonotonicNowNs(), room, frames); },
                 [self = shared_from_this()] {
                   self->tick_timer_.expires_after(std::chrono::milliseconds(10));
                   self->tick_timer_.async_wait([self](beast::error_code ec) {
                     if (!ec) self->ReplayTick();
                   });
                 });
}

void WsSession::CommandRecorded(const std::string& robot, const std::string& request_id,
                                const Result<uint64_t>& position) {
  if (rosbridge_) {
    rosbridge_->OnCommandDone(request_id, robot, position);
    RunRosbridge();
    return;
  }
  SendText(
      position.ok()
          ? StatusJson(0, fmt::format("Command for {} recorded at position {}", robot, *position),
                       "command")
          : StatusJson(2,
                       fmt::format("Command for {} failed: {}", robot, position.status().message()),
                       "command"));
}

void WsSession::SendRos(std::string_view topic, std::string_view slot,
                        const std::shared_ptr<const std::string>& publish) {
  if (!rosbridge_) return;
  rosbridge_->OnMessage(topic, slot, publish, MonotonicNowNs());
  RunRosbridge();
}

void WsSession::ServiceDone(const std::string& id, const std::string& service,
                            const Result<nlohmann::json>& values) {
  if (!rosbridge_) return;
  rosbridge_->OnServiceDone(id, service, values);
  RunRosbridge();
}

void WsSession::RunRosbridge() {
  if (closed_) return;
  for (auto& action : rosbridge_->TakeActions()) {
    if (auto* send = std::get_if<RosbridgeSend>(&action)) {
      if (send->texts.size() == 1) {
        Frame f;
        f.body = std::move(send->texts[0]);
        f.opcode = WsOpcode::kText;
        f.key = send->slot;
        Enqueue(std::move(f), send->droppable);
      } else if (!send->droppable) {
        for (auto& text : send->texts) SendText(std::move(text));
      } else {
        // The fragments of one message go as one unit: a slow client loses a whole message
        // or none of it, never the fragment that would let it rebuild one.
        std::string frames;
        for (const auto& text : send->texts) {
          std::array<uint8_t, 10> header{};
          const size_t n = EncodeFrameHeader(WsOpcode::kText, text->size(), header);
          frames.append(reinterpret_cast<const char*>(header.data()), n);
          frames += *text;
        }
        Frame f;
        f.body = std::make_shared<const std::string>(std::move(frames));
        f.opcode = WsOpcode::kText;
        f.raw = true;
        f.key = send->slot;
        Enqueue(std::move(f), true);
      }
    } else if (auto* watch = std::get_if<RosbridgeWatch>(&action)) {
      gateway_.RosWatch(this, watch->topic, watch->watch);
    } else if (auto* command = std::get_if<RosbridgeCommand>(&action)) {
      gateway_.Command(
          shared_from_this(), command->robot,
          CommandIssuedEvent(command->stop, command->twist, fmt::format("rosbridge:{}", who_.name)),
          command->request_id);
    } else if (auto* call = std::get_if<RosbridgeServiceCall>(&action)) {
      gateway_.CallService(shared_from_this(), call->id, call->service, call->args);
    }
  }
  // Throttled messages wait for their turn: wake up when the first is due.
  const auto due = rosbridge_->next_deadline();
  if (!due || (tick_at_ != 0 && tick_at_ <= *due)) return;
  tick_at_ = *due;
  tick_timer_.expires_after(
      std::chrono::nanoseconds(std::max<int64_t>(0, *due - MonotonicNowNs())));
  tick_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec) return;  // cancelled: a nearer deadline re-armed it, or the session closed
    self->tick_at_ = 0;
    if (self->closed_ || self->closing_) return;
    self->rosbridge_->OnTick(MonotonicNowNs());
    self->RunRosbridge();
  });
}

}  // namespace doppel::gateway
