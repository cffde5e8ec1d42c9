// The gateway seen from outside, for tests that run it as a real process: a synchronous
// WebSocket client (Foxglove or rosbridge), a one-shot HTTP GET, and the TwinState a twin
// publishes to it.
#pragma once

#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "doppel/core/clock.h"
#include "doppel/schemas/twin_state_generated.h"

namespace doppel::testing {

namespace gateway_client {
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using nlohmann::json;

// A TwinState as a twin publishes it, with `joints` joints.
inline std::string TwinStateBytes(const std::string& robot, int joints, TimeNs published) {
  flatbuffers::FlatBufferBuilder fbb(joints * 40 + 256);
  std::vector<std::string> names;
  std::vector<double> q;
  for (int i = 0; i < joints; ++i) {
    names.push_back("joint_" + std::to_string(i));
    q.push_back(0.001 * i + published % 1000);
  }
  auto n = fbb.CreateVectorOfStrings(names);
  auto p = fbb.CreateVector(q);
  auto id = fbb.CreateString(robot);
  auto model = fbb.CreateString("doppel_arm6");
  twin::TwinStateBuilder b(fbb);
  b.add_robot_id(id);
  b.add_model(model);
  b.add_joint_names(n);
  b.add_joint_position(p);
  b.add_joint_velocity(p);
  b.add_stream_version(1);
  b.add_last_observation_ns(published);
  b.add_published_ns(published);
  twin::FinishTwinStateBuffer(fbb, b.Finish());
  return {reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize()};
}

struct WsClientOptions {
  std::string target = "/";                           // with ?token=... when the gateway has tokens
  std::string subprotocol = "foxglove.websocket.v1";  // empty: none (rosbridge)
  int receive_buffer = 0;                             // SO_RCVBUF; 0 = the system's
  // Reads give up after this long, so a gateway that died or went silent fails the test
  // instead of hanging it; 0 = wait forever.
  int read_timeout_s = 20;
};

// A synchronous WebSocket client of the gateway on 127.0.0.1.
class WsClient {
 public:
  explicit WsClient(uint16_t port, WsClientOptions options = {}) : ws_(io_) {
    tcp::socket& s = ws_.next_layer();
    s.open(tcp::v4());
    if (options.receive_buffer > 0) {
      s.set_option(net::socket_base::receive_buffer_size(options.receive_buffer));
    }
    s.connect({net::ip::make_address("127.0.0.1"), port});
    if (options.read_timeout_s > 0) {
      const timeval timeout{options.read_timeout_s, 0};
      setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    }
    if (!options.subprotocol.empty()) {
      ws_.set_option(websocket::stream_base::decorator(
          [subprotocol = options.subprotocol](websocket::request_type& req) {
            req.set(http::field::sec_websocket_protocol, subprotocol);
          }));
    }
    ws_.read_message_max(64 << 20);
    ws_.handshake("127.0.0.1", options.target);
  }

  // The next message: text as JSON, binary as {"op": opcode, "sub":..., "stamp":..., "size"}.
  json Next() {
    beast::flat_buffer buffer;
    ws_.read(buffer);
    const std::string data = beast::buffers_to_string(buffer.data());
    if (ws_.got_text()) return json::parse(data);
    json out = {{"op", static_cast<uint8_t>(data[0])}, {"size", data.size()}};
    if (data[0] == 0x01) {
      uint32_t sub;
      uint64_t stamp;
      std::memcpy(&sub, data.data() + 1, 4);
      std::memcpy(&stamp, data.data() + 5, 8);
      out["sub"] = sub;
      out["stamp"] = stamp;
    }
    return out;
  }

  // Reads until a text message with "op" == `op` arrives.
  json NextOp(const std::string& op) {
    for (;;) {
      json m = Next();
      if (m.is_object() && m.value("op", json()) == op) return m;
    }
  }
  // Reads until a channel with `topic` is advertised; returns its id.
  uint32_t WaitForChannel(const std::string& topic) {
    for (;;) {
      json m = NextOp("advertise");
      for (const auto& c : m["channels"]) {
        if (c["topic"] == topic) return c["id"];
      }
    }
  }

  void Send(const json& j) { SendText(j.dump()); }
  void SendText(const std::string& text) {
    ws_.text(true);
    ws_.write(net::buffer(text));
  }
  // Sends a ping and reads until its pong comes back (Beast reports it to the callback).
  bool PingPong() {
    bool ponged = false;
    ws_.control_callback([&](websocket::frame_type kind, beast::string_view) {
      if (kind == websocket::frame_type::pong) ponged = true;
    });
    ws_.ping({});
    while (!ponged) Next();
    ws_.control_callback();
    return ponged;
  }
  // Sends `j` split into WebSocket continuation frames of a few bytes each.
  void SendFragmented(const json& j) {
    const std::string text = j.dump();
    ws_.text(true);
    for (size_t at = 0; at < text.size(); at += 7) {
      const bool last = at + 7 >= text.size();
      ws_.write_some(last, net::buffer(text.data() + at, std::min<size_t>(7, text.size() - at)));
    }
  }
  void SendBinary(const std::string& bytes) {
    ws_.binary(true);
    ws_.write(net::buffer(bytes));
  }
  // Writes `bytes` on the socket as they are, bypassing Beast's framing (which would refuse
  // to send what a hostile client sends).
  void SendRaw(const std::string& bytes) { net::write(ws_.next_layer(), net::buffer(bytes)); }
  // Reads until the server closes; returns its close code (0 if the connection ended without
  // a close frame) and counts the pongs seen on the way.
  uint16_t ReadUntilClosed(int& pongs) {
    ws_.control_callback([&](websocket::frame_type kind, beast::string_view) {
      if (kind == websocket::frame_type::pong) ++pongs;
    });
    beast::flat_buffer buffer;
    beast::error_code ec;
    while (!ec) {
      buffer.clear();
      ws_.read(buffer, ec);
    }
    ws_.control_callback();
    return ec == websocket::error::closed ? ws_.reason().code : 0;
  }

 private:
  net::io_context io_;
  websocket::stream<tcp::socket> ws_;
};

inline std::pair<int, std::string> HttpGet(uint16_t port, const std::string& target,
                                           const std::string& subprotocol = "",
                                           bool upgrade = false) {
  net::io_context io;
  tcp::socket s(io);
  s.connect({net::ip::make_address("127.0.0.1"), port});
  http::request<http::empty_body> req(http::verb::get, target, 11);
  req.set(http::field::host, "127.0.0.1");
  if (upgrade) {
    req.set(http::field::connection, "Upgrade");
    req.set(http::field::upgrade, "websocket");
    req.set(http::field::sec_websocket_version, "13");
    req.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
    if (!subprotocol.empty()) req.set(http::field::sec_websocket_protocol, subprotocol);
  }
  http::write(s, req);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(s, buffer, res);
  return {res.result_int(), res.body()};
}

}  // namespace gateway_client

using gateway_client::HttpGet;
using gateway_client::TwinStateBytes;
using gateway_client::WsClient;
using gateway_client::WsClientOptions;

}  // namespace doppel::testing
