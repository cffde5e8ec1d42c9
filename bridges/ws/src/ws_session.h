// A WebSocket client connection: the I/O around WsFrameReader (ws_framing.h) for both
// protocols the gateway speaks. A foxglove.websocket.v1 client's ops (subscribe,
// unsubscribe, advertise, unadvertise, binary client messages that become commands) are
// handled here; a rosbridge v2 client's (at /rosbridge) by its RosbridgeSession, whose
// actions this class carries out (send, watch topics, commands, services, its throttle timer).
//
// Sending: each client has a queue. Data messages are droppable: past the send budget (or
// when the oldest queued message is too old) only the newest per channel is kept. Control
// messages (serverInfo, status, unadvertise, close) are never dropped; a client whose queue
// passes the hard limit is disconnected. The channel catalogue goes out as pages pulled from
// the gateway as the client drains them (at most kAdvertiseWindow bytes queued at a time),
// so they count against neither limit: a new client joins a fleet of any size.
#pragma once

#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "doppel/bridges/ws_framing.h"
#include "doppel/net/guarded_acceptor.h"
#include "gateway_impl.h"
#include "replay_session.h"
#include "rosbridge_session.h"

namespace doppel::gateway {

inline constexpr std::string_view kFoxgloveSubprotocol = "foxglove.websocket.v1";
// The same protocol under the Foxglove SDK's name (foxglove_bridge 3.x, the current app).
inline constexpr std::string_view kFoxgloveSdkSubprotocol = "foxglove.sdk.v1";

// kReplay: a Foxglove client on its own timeline over a window (/replay, replay_session.h).
enum class WsProtocol { kFoxglove, kRosbridge, kReplay };

class WsSession : public std::enable_shared_from_this<WsSession> {
 public:
  // `subprotocol`: the one the client offered that the session answers with ("" for
  // rosbridge); `replay`: an opened ReplaySession for kReplay; `ticket`: the connection's
  // place in the gateway's budget, held until the session ends.
  WsSession(boost::asio::ip::tcp::socket socket, net::ConnectionTicket ticket,
            Gateway::Impl& gateway, Token who, WsProtocol protocol = WsProtocol::kFoxglove,
            std::string subprotocol = std::string(kFoxgloveSubprotocol),
            std::unique_ptr<ReplaySession> replay = nullptr);
  ~WsSession();

  // Beast answers the upgrade; after that the session frames and parses WebSocket itself, so
  // that everything queued for a client goes out in one gathered write.
  void Start(boost::beast::http::request<boost::beast::http::string_body> request);

  Role role() const { return who_.role; }
  const Token& who() const { return who_; }
  WsProtocol protocol() const { return protocol_; }

  // rosbridge clients only (no-ops for others): a message of a topic the session watches
  // (RosbridgeWatch), and the answers to its commands and service calls.
  void SendRos(std::string_view topic, std::string_view slot,
               const std::shared_ptr<const std::string>& publish);
  void ServiceDone(const std::string& id, const std::string& service,
                   const Result<nlohmann::json>& values);
  // The store's answer to a command this client sent (request_id: rosbridge's op id).
  void CommandRecorded(const std::string& robot, const std::string& request_id,
                       const Result<uint64_t>& position);

  // Control messages (serverInfo, status, unadvertise): always sent, in order.
  void SendText(std::string text);
  void SendText(std::shared_ptr<const std::string> text);
  // Data: droppable, latest value per channel wins when the client is slow.
  void SendMessage(uint32_t subscription, uint32_t channel, TimeNs stamp,
                   const std::shared_ptr<const std::string>& payload);
  void SendTime(TimeNs now);

  // Queues pages of channels this client has not been told about yet, as far as the
  // advertise window allows; the rest follows as the client reads. Called when the client
  // joins, when the catalogue grows, and after each write.
  void PullAdvertisements();
  // Tells the client that `ids` are gone (those it was told about).
  void Unadvertise(const std::vector<uint32_t>& ids);

  void Close();

 private:
  // Largest incoming message (RFC 6455 close 1009 past it).
  static constexpr size_t kMaxMessage = 1 << 20;
  static constexpr size_t kMaxGather = 64;
  // Catalogue pages queued at once; a page is at most kAdvertisePageBytes (and one more
  // channel).
  static constexpr size_t kAdvertiseWindow = 1 << 20;
  // A client that does not read our close frame is cut off after this long.
  static constexpr int kCloseTimeoutMs = 5000;

  // One outgoing WebSocket message: an optional per-client header (opcode, subscription id,
  // timestamp) in front of a payload shared by every client that gets it.
  struct Frame {
    std::shared_ptr<const std::string> body;
    std::array<uint8_t, 13> header{};
    uint8_t header_len = 0;
    WsOpcode opcode = WsOpcode::kBinary;
    bool advertise_page = false;  // counted in advertise_bytes_, not against the budgets
    // `body` is already whole WebSocket frames (a fragmented rosbridge message): dropped or
    // sent as one.
    bool raw = false;
    uint32_t key = 0;  // latest-value slot (channel id or kTimeKey)
    TimeNs stamp = 0;
    int64_t queued_mono = 0;
    std::array<uint8_t, 10> ws{};  // the WebSocket frame header, filled when queued
    uint8_t ws_len = 0;
    size_t size() const { return header_len + (body ? body->size() : 0); }
  };

  void Enqueue(Frame f, bool droppable);
  void Push(Frame f);
  void Write();
  void OnWritten(boost::beast::error_code ec, size_t frames);
  void Read();
  // Acts on what the client sent; false when the connection is ending.
  bool OnEvent(WsEvent& event);
  // Sends a close frame, then closes the TCP connection once it is written (or after
  // kCloseTimeoutMs).
  void SendClose(uint16_t code, std::string_view reason);
  void OnText(const std::string& text);
  void OnClientAdvertise(const nlohmann::json& j);
  void OnBinary(const std::string& data);
  // Carries out what the rosbridge session asked for, and arms its throttle timer.
  void RunRosbridge();
  // Replay: sends what the ReplaySession produced (data never dropped) and ticks it again.
  void SendReplay(ReplayFrames& frames);
  void ReplayTick();
  // Runs `work` on the gateway's replay worker (the ReplaySession is only ever touched
  // there, one job at a time), then sends its frames and runs `after` on the network thread.
  // `kind` says whether the worker may coalesce (a seek) or refuse it (a client request: the
  // client is told); see replay_worker.h.
  void OnReplayWorker(std::function<void(ReplaySession&, ReplayFrames&)> work,
                      std::function<void()> after = {},
                      ReplayWorker::Kind kind = ReplayWorker::Kind::kInternal);
  // Data frames queued at most for a replay client before its playback waits (buffering).
  static constexpr size_t kReplayQueueFrames = 1000;

  WsProtocol protocol_;
  std::string subprotocol_;
  std::unique_ptr<RosbridgeSession> rosbridge_;
  std::unique_ptr<ReplaySession> replay_;
  boost::asio::steady_timer tick_timer_;
  int64_t tick_at_ = 0;  // when tick_timer_ fires; 0: not armed

  boost::beast::websocket::stream<boost::asio::ip::tcp::socket> handshake_;
  boost::asio::ip::tcp::socket socket_;
  boost::asio::steady_timer close_timer_;
  Gateway::Impl& gateway_;
  Token who_;
  net::ConnectionTicket ticket_;
  std::array<char, 65536> in_{};
  WsFrameReader reader_{kMaxMessage};
  bool closing_ = false;  // our close frame is queued: nothing more is sent
  std::vector<boost::asio::const_buffer> gather_;
  std::deque<Frame> queue_;
  size_t queued_bytes_ = 0;
  size_t advertise_bytes_ = 0;   // of queued_bytes_, catalogue pages
  uint32_t advertised_end_ = 0;  // channels with lower ids were advertised (or are gone)
  std::map<uint32_t, Frame> held_;
  bool writing_ = false;
  bool warned_ = false;
  bool closed_ = false;
  std::map<uint32_t, std::pair<std::string, std::string>> client_channels_;  // robot, kind
};

}  // namespace doppel::gateway
