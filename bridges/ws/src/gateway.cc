#include "doppel/bridges/gateway.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <array>
#include <atomic>
#include <bit>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "channels.h"
#include "doppel/core/log.h"
#include "doppel/eventstore/store_client.h"
#include "doppel/schemas/robot_events_generated.h"
#include "fleet_feed.h"

namespace doppel::gateway {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using nlohmann::json;

static_assert(std::endian::native == std::endian::little, "frames are written little-endian");

class WsSession;

namespace {

constexpr std::string_view kComponent = "gateway";
constexpr std::string_view kSubprotocol = "foxglove.websocket.v1";
constexpr uint32_t kTimeKey = 0xffffffff;      // the time frame's latest-value slot
constexpr size_t kMaxBacklogMessages = 20000;  // handed to the network thread, not yet sent

std::string PercentDecode(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size() && std::isxdigit(static_cast<unsigned char>(in[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(in.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += in[i] == '+' ? ' ' : in[i];
    }
  }
  return out;
}

std::string QueryParam(std::string_view target, std::string_view key) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) return "";
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    const auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) == key && eq != std::string_view::npos) {
      return PercentDecode(pair.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    query = query.substr(amp + 1);
  }
  return "";
}

std::string_view MimeType(std::string_view path) {
  auto ends = [&](std::string_view s) {
    return path.size() >= s.size() && path.substr(path.size() - s.size()) == s;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js") || ends(".mjs")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".json")) return "application/json";
  if (ends(".png")) return "image/png";
  if (ends(".svg")) return "image/svg+xml";
  return "application/octet-stream";
}

std::string RandomToken() {
  std::random_device rd;
  std::string out;
  for (int i = 0; i < 4; ++i) out += fmt::format("{:08x}", rd());
  return out;
}

// One outgoing WebSocket message: an optional per-client header (opcode, subscription id,
// timestamp) in front of a payload shared by every client that gets it.
struct Frame {
  std::shared_ptr<const std::string> body;
  std::array<uint8_t, 13> header{};
  uint8_t header_len = 0;
  bool text = false;
  uint8_t control = 0;  // a WebSocket control opcode (pong, close) instead of a data frame
  uint32_t key = 0;     // latest-value slot (channel id or kTimeKey); 0 for control messages
  TimeNs stamp = 0;
  int64_t queued_mono = 0;
  std::array<uint8_t, 10> ws{};  // the WebSocket frame header, filled when queued
  uint8_t ws_len = 0;
  size_t size() const { return header_len + (body ? body->size() : 0); }

  // RFC 6455 server frame header (FIN, opcode, unmasked length).
  void Seal() {
    ws[0] = 0x80 | (control ? control : text ? 0x1 : 0x2);
    const uint64_t n = size();
    if (n < 126) {
      ws[1] = static_cast<uint8_t>(n);
      ws_len = 2;
    } else if (n <= 0xffff) {
      ws[1] = 126;
      ws[2] = static_cast<uint8_t>(n >> 8);
      ws[3] = static_cast<uint8_t>(n);
      ws_len = 4;
    } else {
      ws[1] = 127;
      for (int i = 0; i < 8; ++i) ws[2 + i] = static_cast<uint8_t>(n >> (56 - 8 * i));
      ws_len = 10;
    }
  }
};

Frame TextFrame(std::string text) {
  Frame f;
  f.body = std::make_shared<const std::string>(std::move(text));
  f.text = true;
  return f;
}

std::string StatusJson(int level, std::string_view message, std::string_view id = "") {
  json j = {{"op", "status"}, {"level", level}, {"message", message}};
  if (!id.empty()) j["id"] = id;
  return j.dump();
}

struct Channel {
  uint32_t id = 0;
  std::string topic;
  ChannelSpec spec;
  std::unordered_map<WsSession*, uint32_t> subscribers;  // session -> subscription id
  // The newest messages, sent to a new subscriber at once (state channels keep one, event
  // channels their last 20), the way ROS latches with transient-local durability.
  std::deque<std::pair<std::shared_ptr<const std::string>, TimeNs>> recent;
  size_t keep = 1;
  json Advertisement() const {
    return {{"id", id},
            {"topic", topic},
            {"encoding", spec.encoding},
            {"schemaName", spec.schema_name},
            {"schema", spec.schema},
            {"schemaEncoding", spec.schema_encoding}};
  }
};

}  // namespace

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kViewer:
      return "viewer";
    case Role::kOperator:
      return "operator";
    case Role::kAdmin:
      return "admin";
  }
  return "viewer";
}

Result<std::vector<Token>> LoadTokens(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound(fmt::format("cannot read token file {}", path));
  std::vector<Token> tokens;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (const auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream words(line);
    Token t;
    std::string role;
    if (!(words >> t.token)) continue;
    if (!(words >> role)) {
      return Status::InvalidArgument(fmt::format("{}:{}: want TOKEN ROLE [NAME]", path, n));
    }
    if (role == "viewer") {
      t.role = Role::kViewer;
    } else if (role == "operator") {
      t.role = Role::kOperator;
    } else if (role == "admin") {
      t.role = Role::kAdmin;
    } else {
      return Status::InvalidArgument(
          fmt::format("{}:{}: role '{}' is not viewer, operator or admin", path, n, role));
    }
    words >> t.name;
    if (t.name.empty()) t.name = role;
    tokens.push_back(std::move(t));
  }
  return tokens;
}

Result<std::vector<Token>> CreateTokenFile(const std::string& path) {
  std::vector<Token> tokens = {{RandomToken(), Role::kViewer, "viewer"},
                               {RandomToken(), Role::kOperator, "operator"},
                               {RandomToken(), Role::kAdmin, "admin"}};
  const mode_t old = ::umask(077);
  std::ofstream out(path, std::ios::trunc);
  ::umask(old);
  if (!out) return Status::IOError(fmt::format("cannot write token file {}", path));
  out << "# doppel gateway tokens: TOKEN ROLE [NAME]; roles: viewer, operator, admin\n";
  for (const auto& t : tokens) out << t.token << ' ' << RoleName(t.role) << ' ' << t.name << '\n';
  if (!out.flush()) return Status::IOError(fmt::format("cannot write token file {}", path));
  return tokens;
}

// Everything below runs on the one network thread, except FleetFeed (its own thread, hands
// batches over with post) and store appends (complete on the client's thread, post back).
class Gateway::Impl {
 public:
  explicit Impl(GatewayOptions options) : options_(std::move(options)), acceptor_(io_) {}

  Status Start();
  ~Impl();

  uint16_t port() const { return port_; }
  Counters counters() const {
    Counters c;
    c.connections = connections_.load();
    c.accepted = accepted_.load();
    c.refused = refused_.load();
    c.messages_sent = sent_.load();
    c.messages_dropped = dropped_.load();
    c.bytes_sent = bytes_sent_.load();
    c.commands = commands_.load();
    c.robots = robots_.load();
    return c;
  }

  // Called by sessions (network thread).
  const GatewayOptions& options() const { return options_; }
  std::optional<Token> Authorize(std::string_view token);
  void Joined(const std::shared_ptr<WsSession>& session);
  void Left(WsSession* session);
  void Subscribe(WsSession* session, uint32_t subscription, uint32_t channel);
  void Unsubscribe(WsSession* session, uint32_t subscription);
  bool KnowsRobot(const std::string& robot) const { return known_robots_.count(robot) > 0; }
  void Command(const std::shared_ptr<WsSession>& session, const std::string& robot,
               eventstore::NewEvent event);
  std::string Metrics() const;
  void NoteSent(const Frame& f) {
    ++sent_;
    bytes_sent_ += f.size();
    if (f.stamp != 0 && !f.text) {
      const int64_t lag = WallNowNs() - f.stamp;
      int64_t seen = max_lag_ns_.load();
      while (lag > seen && !max_lag_ns_.compare_exchange_weak(seen, lag)) {
      }
    }
  }
  void NoteDropped() { ++dropped_; }
  net::io_context& io() { return io_; }

 private:
  void Accept();
  void OnBatch(FeedBatch batch);
  void AddRobot(const std::string& robot, std::vector<json>& advertised);
  uint32_t AddChannel(const std::string& topic, std::vector<json>& advertised);

  GatewayOptions options_;
  net::io_context io_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::unique_ptr<FleetFeed> feed_;
  std::unique_ptr<eventstore::StoreClient> store_;
  std::thread thread_;

  std::map<uint32_t, Channel> channels_;
  std::unordered_map<std::string, uint32_t> topics_;
  std::set<std::string> known_robots_;
  uint32_t next_channel_ = 1;
  std::unordered_map<WsSession*, std::shared_ptr<WsSession>> sessions_;
  std::shared_ptr<const std::string> advertise_all_;

  std::atomic<size_t> backlog_{0};
  std::atomic<uint64_t> connections_{0}, accepted_{0}, refused_{0}, sent_{0}, dropped_{0},
      bytes_sent_{0}, commands_{0}, robots_{0};
  mutable std::atomic<int64_t> max_lag_ns_{0};
};

// A foxglove.websocket.v1 client connection.
class WsSession : public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(tcp::socket socket, Gateway::Impl& gateway, Token who)
      : handshake_(std::move(socket)),
        socket_(handshake_.get_executor()),
        gateway_(gateway),
        who_(std::move(who)) {}

  // Beast answers the upgrade; after that the session frames and parses WebSocket itself, so
  // that everything queued for a client goes out in one gathered write.
  void Start(http::request<http::string_body> request) {
    handshake_.set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
      res.set(http::field::sec_websocket_protocol, kSubprotocol);
      res.set(http::field::server, "doppel-gateway");
    }));
    handshake_.async_accept(request, [self = shared_from_this()](beast::error_code ec) {
      if (ec) {
        log::Warn(kComponent, "websocket handshake failed: {}", ec.message());
        return;
      }
      self->socket_ = std::move(self->handshake_.next_layer());
      self->gateway_.Joined(self);
      self->Read();
    });
  }

  Role role() const { return who_.role; }
  const Token& who() const { return who_; }

  // Control messages (serverInfo, advertise, status): always sent, in order.
  void SendText(std::string text) { Enqueue(TextFrame(std::move(text)), false); }
  void SendText(std::shared_ptr<const std::string> text) {
    Frame f;
    f.body = std::move(text);
    f.text = true;
    Enqueue(std::move(f), false);
  }

  void SendMessage(uint32_t subscription, uint32_t channel, TimeNs stamp,
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

  void SendTime(TimeNs now) {
    Frame f;
    f.header[0] = 0x02;
    const uint64_t ts = static_cast<uint64_t>(now);
    std::memcpy(&f.header[1], &ts, 8);
    f.header_len = 9;
    f.key = kTimeKey;
    Enqueue(std::move(f), true);
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

 private:
  static constexpr size_t kMaxMessage = 1 << 20;
  static constexpr size_t kMaxGather = 64;

  void Enqueue(Frame f, bool droppable) {
    if (closed_ || closing_) return;
    const auto& o = gateway_.options();
    const int64_t now = MonotonicNowNs();
    // Slow: over the byte budget, or the oldest queued message waited too long.
    const bool slow =
        queued_bytes_ + f.size() > o.send_budget_bytes ||
        (!queue_.empty() && now - queue_.front().queued_mono > o.max_send_delay_s * 1e9);
    if (droppable && (slow || !held_.empty())) {
      // Keep only the newest message per channel until the client has caught up.
      auto [it, inserted] = held_.insert_or_assign(f.key, std::move(f));
      if (!inserted) gateway_.NoteDropped();
      if (!warned_) {
        warned_ = true;
        SendText(StatusJson(1,
                            "Send buffer limit reached: this client is slow, so only the "
                            "newest message per channel is kept until it catches up",
                            "backpressure"));
      }
      return;
    }
    f.queued_mono = now;
    f.Seal();
    queued_bytes_ += f.size();
    queue_.push_back(std::move(f));
    if (queued_bytes_ > o.hard_limit_bytes) {
      log::Warn(kComponent, "client {}: send queue past {} bytes, disconnecting", who_.name,
                o.hard_limit_bytes);
      Close();
      return;
    }
    Write();
  }

  void Write() {
    if (writing_ || queue_.empty() || closed_) return;
    writing_ = true;
    gather_.clear();
    size_t frames = 0, bytes = 0;
    for (const Frame& f : queue_) {
      if (frames == kMaxGather || (frames > 0 && bytes > 256 * 1024)) break;
      gather_.push_back(net::buffer(f.ws.data(), f.ws_len));
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

  void OnWritten(beast::error_code ec, size_t frames) {
    writing_ = false;
    if (ec) {
      Close();
      return;
    }
    for (size_t i = 0; i < frames; ++i) {
      gateway_.NoteSent(queue_.front());
      queued_bytes_ -= queue_.front().size();
      if (queue_.front().control == 0x8) {  // our close frame went out
        Close();
        return;
      }
      queue_.pop_front();
    }
    if (!held_.empty() && queue_.empty()) {
      // Caught up: send the newest value of each channel that was held back.
      for (auto& [key, frame] : held_) {
        frame.queued_mono = MonotonicNowNs();
        frame.Seal();
        queued_bytes_ += frame.size();
        queue_.push_back(std::move(frame));
      }
      held_.clear();
      warned_ = false;
    }
    Write();
  }

  void Read() {
    if (in_.size() - in_used_ < 16384) in_.resize(in_used_ + 65536);
    socket_.async_read_some(net::buffer(in_.data() + in_used_, in_.size() - in_used_),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              if (ec) {
                                self->Close();
                                self->gateway_.Left(self.get());
                                return;
                              }
                              self->in_used_ += n;
                              if (!self->ParseFrames()) {
                                self->gateway_.Left(self.get());
                                return;
                              }
                              if (!self->closed_) self->Read();
                            });
  }

  void SendControl(uint8_t opcode, std::string payload) {
    Frame f;
    f.body = std::make_shared<const std::string>(std::move(payload));
    f.control = opcode;
    Enqueue(std::move(f), false);
  }

  // Fails the connection with a close frame carrying `code` and `reason`.
  bool Fail(uint16_t code, std::string_view reason) {
    std::string payload = {static_cast<char>(code >> 8), static_cast<char>(code & 0xff)};
    payload += reason;
    SendControl(0x8, std::move(payload));
    closing_ = true;
    return false;
  }

  // Takes every whole frame from in_ (RFC 6455 client frames: masked, maybe fragmented).
  // Returns false when the connection is being closed.
  bool ParseFrames() {
    size_t at = 0;
    while (in_used_ - at >= 2) {
      const uint8_t* p = reinterpret_cast<const uint8_t*>(in_.data()) + at;
      const bool fin = p[0] & 0x80;
      const uint8_t opcode = p[0] & 0x0f;
      const bool masked = p[1] & 0x80;
      uint64_t length = p[1] & 0x7f;
      size_t header = 2;
      if (length == 126) {
        if (in_used_ - at < 4) break;
        length = (uint64_t{p[2]} << 8) | p[3];
        header = 4;
      } else if (length == 127) {
        if (in_used_ - at < 10) break;
        length = 0;
        for (int i = 0; i < 8; ++i) length = (length << 8) | p[2 + i];
        header = 10;
      }
      if (!masked) return Fail(1002, "client frames must be masked");
      if (length > kMaxMessage || message_.size() + length > kMaxMessage) {
        return Fail(1009, "message too big");
      }
      if (in_used_ - at < header + 4 + length) break;
      const uint8_t* mask = p + header;
      std::string payload(reinterpret_cast<const char*>(p + header + 4), length);
      for (size_t i = 0; i < payload.size(); ++i) payload[i] ^= static_cast<char>(mask[i % 4]);
      at += header + 4 + length;
      if (opcode == 0x8) {  // close: answer and end
        SendControl(0x8, payload.substr(0, 2));
        closing_ = true;
        return false;
      } else if (opcode == 0x9) {
        SendControl(0xA, std::move(payload));
      } else if (opcode == 0xA) {
        // pong: nothing to do
      } else if (opcode == 0x0 || opcode == 0x1 || opcode == 0x2) {
        if (opcode != 0x0) message_text_ = opcode == 0x1;
        message_ += payload;
        if (fin) {
          std::string message = std::move(message_);
          message_.clear();
          message_text_ ? OnText(message) : OnBinary(message);
          if (closed_) return false;
        }
      } else {
        return Fail(1002, "unknown opcode");
      }
    }
    in_.erase(0, at);
    in_used_ -= at;
    return true;
  }

  void OnText(const std::string& text) {
    const json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("op") || !j["op"].is_string()) {
      SendText(StatusJson(2, "Malformed message: want a JSON object with an \"op\""));
      return;
    }
    const std::string op = j["op"];
    try {
      if (op == "subscribe") {
        for (const auto& s : j.at("subscriptions")) {
          gateway_.Subscribe(this, s.at("id").get<uint32_t>(), s.at("channelId").get<uint32_t>());
        }
      } else if (op == "unsubscribe") {
        for (const auto& id : j.at("subscriptionIds")) {
          gateway_.Unsubscribe(this, id.get<uint32_t>());
        }
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

  void OnClientAdvertise(const json& j) {
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
            2, fmt::format("Channel {}: clients may publish /<robot>/cmd_vel or /<robot>/stop",
                           topic)));
        continue;
      }
      client_channels_[id] = {topic.substr(1, slash - 1), leaf};
    }
  }

  void OnBinary(const std::string& data) {
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
    const json msg = json::parse(data.substr(5), nullptr, false);
    if (msg.is_discarded() || !msg.is_object()) {
      SendText(StatusJson(2, fmt::format("Malformed {} message: want a JSON object", kind)));
      return;
    }
    auto num = [&](const char* a, const char* b) {
      const auto& v = msg.contains(a) && msg[a].is_object() ? msg[a] : json::object();
      return v.contains(b) && v[b].is_number() ? v[b].get<double>() : 0.0;
    };
    flatbuffers::FlatBufferBuilder fbb(128);
    const events::Twist twist(
        events::Vec3(num("linear", "x"), num("linear", "y"), num("linear", "z")),
        events::Vec3(num("angular", "x"), num("angular", "y"), num("angular", "z")));
    const bool stop = kind == "stop";
    fbb.Finish(events::CreateCommandIssued(
        fbb, stop ? events::CommandKind::Stop : events::CommandKind::Velocity, &twist, 0, 0,
        fbb.CreateString(fmt::format("gateway:{}", who_.name))));
    eventstore::NewEvent e;
    e.id = EventId::Random();
    e.type = "CommandIssued";
    e.payload.assign(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
    e.occurred_ns = WallNowNs();
    gateway_.Command(shared_from_this(), robot, std::move(e));
  }

  websocket::stream<tcp::socket> handshake_;
  tcp::socket socket_;
  Gateway::Impl& gateway_;
  Token who_;
  std::string in_;  // received bytes, in_used_ of them valid
  size_t in_used_ = 0;
  std::string message_;  // a fragmented message being assembled
  bool message_text_ = false;
  bool closing_ = false;
  std::vector<net::const_buffer> gather_;
  std::deque<Frame> queue_;
  size_t queued_bytes_ = 0;
  std::map<uint32_t, Frame> held_;
  bool writing_ = false;
  bool warned_ = false;
  bool closed_ = false;
  std::map<uint32_t, std::pair<std::string, std::string>> client_channels_;  // robot, kind
};

// A plain HTTP connection: pages, /healthz, /metrics, or an upgrade to WebSocket.
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket socket, Gateway::Impl& gateway)
      : stream_(std::move(socket)), gateway_(gateway) {}

  void Read() {
    request_ = {};
    stream_.expires_after(std::chrono::seconds(30));
    http::async_read(stream_, buffer_, request_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) return;
                       self->OnRequest();
                     });
  }

 private:
  void OnRequest() {
    if (websocket::is_upgrade(request_)) {
      Upgrade();
      return;
    }
    const std::string target(request_.target());
    const std::string path = target.substr(0, target.find('?'));
    if (request_.method() != http::verb::get && request_.method() != http::verb::head) {
      Reply(http::status::method_not_allowed, "text/plain", "GET only\n");
    } else if (path == "/healthz") {
      Reply(http::status::ok, "application/json",
            json({{"status", "ok"}, {"robots", gateway_.counters().robots}}).dump() + "\n");
    } else if (path == "/metrics") {
      Reply(http::status::ok, "text/plain; version=0.0.4", gateway_.Metrics());
    } else if (path == "/api/scene") {
      Reply(http::status::ok, "application/json",
            gateway_.options().scene_json.empty() ? "{}" : gateway_.options().scene_json);
    } else {
      ServeFile(path);
    }
  }

  void ServeFile(std::string path) {
    const std::string& root = gateway_.options().web_root;
    if (path == "/") path = "/index.html";
    if (root.empty() || path.find("..") != std::string::npos) {
      Reply(http::status::not_found, "text/plain", "not found\n");
      return;
    }
    std::ifstream in(root + path, std::ios::binary);
    if (!in) {
      Reply(http::status::not_found, "text/plain", "not found\n");
      return;
    }
    std::ostringstream body;
    body << in.rdbuf();
    Reply(http::status::ok, MimeType(path), body.str());
  }

  void Refuse(http::status status, std::string reason) {
    log::Info(kComponent, "refused a WebSocket client: {}", reason);
    Reply(status, "text/plain", "doppel gateway: " + reason + "\n", false);
  }

  void Upgrade() {
    const std::string offered(request_[http::field::sec_websocket_protocol]);
    if (offered.find(kSubprotocol) == std::string::npos) {
      Refuse(http::status::bad_request,
             fmt::format("WebSocket subprotocol {} is required", kSubprotocol));
      return;
    }
    std::string token = QueryParam(request_.target(), "token");
    const std::string auth(request_[http::field::authorization]);
    if (token.empty() && auth.rfind("Bearer ", 0) == 0) token = auth.substr(7);
    auto who = gateway_.Authorize(token);
    if (!who) {
      Refuse(http::status::unauthorized,
             token.empty() ? "a token is required (add ?token=... to the URL)" : "invalid token");
      return;
    }
    stream_.expires_never();
    std::make_shared<WsSession>(stream_.release_socket(), gateway_, *who)
        ->Start(std::move(request_));
  }

  void Reply(http::status status, std::string_view type, std::string body, bool keep_alive = true) {
    auto res = std::make_shared<http::response<http::string_body>>(status, request_.version());
    res->set(http::field::server, "doppel-gateway");
    res->set(http::field::content_type, type);
    res->set(http::field::cache_control, "no-cache");
    res->keep_alive(keep_alive && request_.keep_alive());
    if (request_.method() != http::verb::head) res->body() = std::move(body);
    res->prepare_payload();
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](beast::error_code ec, size_t) {
                        if (ec || !res->keep_alive()) {
                          beast::error_code ignored;
                          self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
                          return;
                        }
                        self->Read();
                      });
  }

  beast::tcp_stream stream_;
  Gateway::Impl& gateway_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
};

Status Gateway::Impl::Start() {
  beast::error_code ec;
  const auto address = net::ip::make_address(options_.address, ec);
  if (ec) return Status::InvalidArgument(fmt::format("bad address {}", options_.address));
  const tcp::endpoint endpoint(address, options_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::IOError(
        fmt::format("cannot listen on {}:{}: {}", options_.address, options_.port, ec.message()));
  }
  port_ = acceptor_.local_endpoint().port();

  if (!options_.store.empty()) {
    eventstore::StoreClientOptions so;
    so.endpoint = options_.store;
    auto client = eventstore::StoreClient::Connect(so);
    if (!client.ok()) return client.status();
    store_ = std::move(client).value();
  }
  std::vector<json> ignored;
  AddChannel("/fleet/summary", ignored);
  AddChannel("/fleet/alerts", ignored);

  FeedOptions fo;
  fo.twin_publish = options_.twin_publish;
  fo.store = options_.store;
  fo.publish = options_.publish;
  fo.frame = options_.frame;
  fo.summary_hz = options_.summary_hz;
  fo.time_hz = options_.time_hz;
  fo.forget_after_s = options_.forget_after_s;
  auto feed = FleetFeed::Start(fo, [this](FeedBatch batch) {
    if (backlog_.load() > kMaxBacklogMessages) {
      // The network thread is far behind: shed this batch's messages (counted), keep the
      // robots and the clock.
      dropped_ += batch.messages.size();
      batch.messages.clear();
    }
    const size_t n = batch.messages.size();
    backlog_ += n;
    net::post(io_, [this, n, b = std::move(batch)]() mutable {
      backlog_ -= n;
      OnBatch(std::move(b));
    });
  });
  if (!feed.ok()) return feed.status();
  feed_ = std::move(feed).value();

  Accept();
  thread_ = std::thread([this] { io_.run(); });
  log::Info(kComponent, "serving http://{}:{}/ (foxglove.websocket.v1 on the same port)",
            options_.address, port_);
  return Status::Ok();
}

Gateway::Impl::~Impl() {
  feed_.reset();
  net::post(io_, [this] {
    beast::error_code ignored;
    acceptor_.close(ignored);
    for (auto& [ptr, session] : sessions_) session->Close();
  });
  // Let the closes run, then stop.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  io_.stop();
  if (thread_.joinable()) thread_.join();
  sessions_.clear();
  channels_.clear();
  store_.reset();
}

void Gateway::Impl::Accept() {
  acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec != net::error::operation_aborted) {
        log::Warn(kComponent, "accept: {}", ec.message());
        Accept();
      }
      return;
    }
    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    std::make_shared<HttpSession>(std::move(socket), *this)->Read();
    Accept();
  });
}

std::optional<Token> Gateway::Impl::Authorize(std::string_view token) {
  if (options_.tokens.empty()) return Token{"", Role::kViewer, "anonymous"};
  for (const auto& t : options_.tokens) {
    if (!token.empty() && t.token == token) return t;
  }
  ++refused_;
  return std::nullopt;
}

void Gateway::Impl::Joined(const std::shared_ptr<WsSession>& session) {
  sessions_[session.get()] = session;
  ++accepted_;
  connections_ = sessions_.size();
  json capabilities = json::array({"time"});
  if (session->role() != Role::kViewer) capabilities.push_back("clientPublish");
  session->SendText(json({{"op", "serverInfo"},
                          {"name", options_.name},
                          {"capabilities", capabilities},
                          {"supportedEncodings", json::array({"json"})},
                          {"metadata", {{"role", RoleName(session->role())}}},
                          {"sessionId", fmt::format("{}", port_)}})
                        .dump());
  if (!advertise_all_) {
    // Every channel, made once and shared by every client that joins until channels change.
    json list = json::array();
    for (const auto& [id, c] : channels_) list.push_back(c.Advertisement());
    advertise_all_ =
        std::make_shared<const std::string>(json({{"op", "advertise"}, {"channels", list}}).dump());
  }
  session->SendText(advertise_all_);
  log::Debug(kComponent, "client {} ({}) joined; {} connected", session->who().name,
             RoleName(session->role()), sessions_.size());
}

void Gateway::Impl::Left(WsSession* session) {
  for (auto& [id, c] : channels_) c.subscribers.erase(session);
  sessions_.erase(session);
  connections_ = sessions_.size();
}

void Gateway::Impl::Subscribe(WsSession* session, uint32_t subscription, uint32_t channel) {
  auto it = channels_.find(channel);
  if (it == channels_.end()) {
    session->SendText(StatusJson(2, fmt::format("Unknown channel {}", channel)));
    return;
  }
  it->second.subscribers[session] = subscription;
  for (const auto& [payload, stamp] : it->second.recent) {
    session->SendMessage(subscription, channel, stamp, payload);
  }
}

void Gateway::Impl::Unsubscribe(WsSession* session, uint32_t subscription) {
  for (auto& [id, c] : channels_) {
    auto it = c.subscribers.find(session);
    if (it != c.subscribers.end() && it->second == subscription) c.subscribers.erase(it);
  }
}

uint32_t Gateway::Impl::AddChannel(const std::string& topic, std::vector<json>& advertised) {
  Channel c;
  c.id = next_channel_++;
  c.topic = topic;
  c.spec = SpecFor(topic);
  const bool events = topic == "/fleet/alerts" || topic.ends_with("/events");
  c.keep = events ? 20 : 1;
  advertised.push_back(c.Advertisement());
  topics_[topic] = c.id;
  channels_.emplace(c.id, std::move(c));
  advertise_all_.reset();
  return next_channel_ - 1;
}

void Gateway::Impl::AddRobot(const std::string& robot, std::vector<json>& advertised) {
  if (!known_robots_.insert(robot).second) return;
  for (const auto& topic : RobotTopics(robot)) AddChannel(topic, advertised);
  robots_ = known_robots_.size();
}

void Gateway::Impl::OnBatch(FeedBatch batch) {
  std::vector<json> advertised;
  for (const auto& robot : batch.new_robots) AddRobot(robot, advertised);
  if (!advertised.empty()) {
    auto text = std::make_shared<const std::string>(
        json({{"op", "advertise"}, {"channels", advertised}}).dump());
    for (auto& [ptr, session] : sessions_) session->SendText(text);
  }
  if (!batch.gone_robots.empty()) {
    json ids = json::array();
    for (const auto& robot : batch.gone_robots) {
      if (known_robots_.erase(robot) == 0) continue;
      for (const auto& topic : RobotTopics(robot)) {
        auto t = topics_.find(topic);
        if (t == topics_.end()) continue;
        ids.push_back(t->second);
        channels_.erase(t->second);
        topics_.erase(t);
        advertise_all_.reset();
      }
    }
    robots_ = known_robots_.size();
    auto text = std::make_shared<const std::string>(
        json({{"op", "unadvertise"}, {"channelIds", ids}}).dump());
    for (auto& [ptr, session] : sessions_) session->SendText(text);
  }
  for (const auto& m : batch.messages) {
    auto t = topics_.find(m.topic);
    if (t == topics_.end()) continue;
    Channel& c = channels_.at(t->second);
    for (const auto& [session, subscription] : c.subscribers) {
      session->SendMessage(subscription, c.id, m.stamp, m.payload);
    }
    c.recent.emplace_back(m.payload, m.stamp);
    if (c.recent.size() > c.keep) c.recent.pop_front();
  }
  if (batch.clock != 0) {
    for (auto& [ptr, session] : sessions_) session->SendTime(batch.clock);
  }
}

void Gateway::Impl::Command(const std::shared_ptr<WsSession>& session, const std::string& robot,
                            eventstore::NewEvent event) {
  if (!store_) {
    session->SendText(StatusJson(2, "This gateway has no store: commands are not accepted"));
    return;
  }
  ++commands_;
  std::weak_ptr<WsSession> weak = session;
  store_->AppendAsync(
      {"robot-" + robot, eventstore::ExpectedVersion::Any(), {std::move(event)}},
      [this, weak, robot](Result<eventstore::AppendResult> r) {
        std::string text =
            r.ok() ? StatusJson(0,
                                fmt::format("Command for {} recorded at position {}", robot,
                                            r->first_position),
                                "command")
                   : StatusJson(
                         2, fmt::format("Command for {} failed: {}", robot, r.status().message()),
                         "command");
        if (!r.ok()) log::Warn(kComponent, "command for {}: {}", robot, r.status().message());
        net::post(io_, [weak, text = std::move(text)]() mutable {
          if (auto s = weak.lock()) s->SendText(std::move(text));
        });
      });
}

std::string Gateway::Impl::Metrics() const {
  const Counters c = counters();
  const double lag = max_lag_ns_.exchange(0) / 1e9;
  std::string out;
  auto metric = [&](std::string_view name, std::string_view type, std::string_view help,
                    auto value) {
    out += fmt::format("# HELP {0} {1}\n# TYPE {0} {2}\n{0} {3}\n", name, help, type, value);
  };
  metric("doppel_gateway_connections", "gauge", "WebSocket clients connected now", c.connections);
  metric("doppel_gateway_connections_accepted_total", "counter", "WebSocket clients accepted",
         c.accepted);
  metric("doppel_gateway_connections_refused_total", "counter",
         "WebSocket clients refused (bad or missing token)", c.refused);
  metric("doppel_gateway_messages_sent_total", "counter", "WebSocket messages sent",
         c.messages_sent);
  metric("doppel_gateway_messages_dropped_total", "counter",
         "Messages replaced by a newer value for a slow client", c.messages_dropped);
  metric("doppel_gateway_bytes_sent_total", "counter", "WebSocket bytes sent", c.bytes_sent);
  metric("doppel_gateway_commands_total", "counter", "Operator commands received", c.commands);
  metric("doppel_gateway_robots", "gauge", "Robots with advertised channels", c.robots);
  metric("doppel_gateway_lag_seconds", "gauge",
         "Largest delay from twin publish to send since the last scrape", lag);
  return out;
}

Result<std::unique_ptr<Gateway>> Gateway::Start(GatewayOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  if (Status s = impl->Start(); !s.ok()) return s;
  return std::unique_ptr<Gateway>(new Gateway(std::move(impl)));
}

Gateway::Gateway(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Gateway::~Gateway() = default;
uint16_t Gateway::port() const { return impl_->port(); }
Gateway::Counters Gateway::counters() const { return impl_->counters(); }

}  // namespace doppel::gateway
