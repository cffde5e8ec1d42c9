#include "http_session.h"

#include <fmt/format.h>

#include <boost/beast/websocket.hpp>
#include <cctype>
#include <fstream>
#include <sstream>

#include "doppel/core/json_text.h"
#include "doppel/core/log.h"
#include "doppel/replay/incident_report.h"
#include "ws_session.h"

namespace doppel::gateway {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = boost::asio::ip::tcp;

namespace {

constexpr std::string_view kComponent = "gateway";

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

}  // namespace

void HttpSession::Read() {
  request_ = {};
  // A connection that says nothing is closed quickly: idle sockets are how a client without
  // a token would hold the gateway's connections.
  stream_.expires_after(first_request_ ? first_request_timeout_
                                       : std::chrono::milliseconds(std::chrono::seconds(30)));
  first_request_ = false;
  http::async_read(stream_, buffer_, request_,
                   [self = shared_from_this()](beast::error_code ec, size_t) {
                     if (ec) return;
                     self->OnRequest();
                   });
}

void HttpSession::OnRequest() {
  // The first-request deadline covered the read; the answer (a store query, a large file to a
  // slow client) gets the usual 30 s.
  stream_.expires_after(std::chrono::seconds(30));
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
          SafeJsonDump({{"status", "ok"}, {"robots", gateway_.counters().robots}}) + "\n");
  } else if (path == "/metrics") {
    Reply(http::status::ok, "text/plain; version=0.0.4", gateway_.Metrics());
  } else if (path == "/api/incidents") {
    Incidents();
  } else if (path == "/api/scene") {
    Reply(http::status::ok, "application/json",
          gateway_.options().scene_json.empty() ? "{}" : gateway_.options().scene_json);
  } else {
    ServeFile(path);
  }
}

void HttpSession::ServeFile(std::string path) {
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

void HttpSession::Refuse(http::status status, std::string reason) {
  log::Info(kComponent, "refused a WebSocket client: {}", reason);
  Reply(status, "text/plain", "doppel gateway: " + reason + "\n", false);
}

void HttpSession::Upgrade() {
  const std::string target(request_.target());
  const std::string path = target.substr(0, target.find('?'));
  // /rosbridge speaks rosbridge v2 (roslibjs), with no subprotocol; every other path speaks
  // Foxglove's protocol, under either of its names, which the client must offer; the answer
  // is the first of them the client listed.
  const bool rosbridge = path == "/rosbridge";
  const std::string offered(request_[http::field::sec_websocket_protocol]);
  std::string subprotocol;
  if (!rosbridge) {
    const auto old_name = offered.find(kFoxgloveSubprotocol);
    const auto sdk_name = offered.find(kFoxgloveSdkSubprotocol);
    if (old_name == std::string::npos && sdk_name == std::string::npos) {
      Refuse(http::status::bad_request, fmt::format("WebSocket subprotocol {} or {} is required",
                                                    kFoxgloveSdkSubprotocol, kFoxgloveSubprotocol));
      return;
    }
    subprotocol = std::string(sdk_name < old_name ? kFoxgloveSdkSubprotocol : kFoxgloveSubprotocol);
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
  std::unique_ptr<ReplaySession> replay;
  if (path == "/replay") {
    // Sessions are counted per token, or per address when the gateway has no tokens.
    beast::error_code ec;
    const std::string client =
        gateway_.options().tokens.empty()
            ? "address " + stream_.socket().remote_endpoint(ec).address().to_string()
            : "token " + who->token;
    bool client_full = false;
    auto slot = gateway_.replay_slots().Take(client, &client_full);
    if (!slot.ok()) {
      Refuse(client_full ? http::status::too_many_requests : http::status::service_unavailable,
             slot.status().message());
      return;
    }
    auto opened = OpenReplay();
    if (!opened.ok()) {
      Refuse(http::status::bad_request, opened.status().message());
      return;
    }
    replay = std::move(opened).value();
    replay->HoldSlot(std::move(slot).value());
  }
  stream_.expires_never();
  const WsProtocol protocol = rosbridge ? WsProtocol::kRosbridge
                              : replay  ? WsProtocol::kReplay
                                        : WsProtocol::kFoxglove;
  std::make_shared<WsSession>(stream_.release_socket(), std::move(ticket_), gateway_, *who,
                              protocol, std::move(subprotocol), std::move(replay))
      ->Start(std::move(request_));
}

void HttpSession::Incidents() {
  const std::string target(request_.target());
  if (!gateway_.Authorize(QueryParam(target, "token"))) {
    Reply(http::status::unauthorized, "text/plain", "a valid token is required\n");
    return;
  }
  const std::string from = QueryParam(target, "from"), to = QueryParam(target, "to"),
                    robots = QueryParam(target, "robots");
  auto window = replay::MakeWindow(from.empty() ? "-15m" : from, to.empty() ? "now" : to,
                                   robots.empty() ? "*" : robots, {});
  if (!window.ok()) {
    Reply(http::status::bad_request, "text/plain", window.status().message() + "\n");
    return;
  }
  gateway_.QueryStore(
      [w = *window](const eventstore::EventStore& store) {
        return replay::WindowIncidents(store, w);
      },
      [self = shared_from_this()](Result<nlohmann::json> r) {
        if (r.ok()) {
          self->Reply(http::status::ok, "application/json", SafeJsonDump(*r) + "\n");
        } else {
          self->Reply(http::status::service_unavailable, "text/plain", r.status().message() + "\n");
        }
      });
}

Result<std::unique_ptr<ReplaySession>> HttpSession::OpenReplay() {
  const eventstore::EventStore* store = gateway_.store();
  if (store == nullptr) return Status::Unavailable("replay needs the gateway to reach a store");
  const std::string target(request_.target());
  const std::string from = QueryParam(target, "from"), to = QueryParam(target, "to");
  if (from.empty()) {
    return Status::InvalidArgument(
        "replay needs ?from=T (ISO 8601, ns since the epoch, or relative such as -15m)");
  }
  std::vector<std::string> types;
  for (std::string rest = QueryParam(target, "types"); !rest.empty();) {
    const auto comma = rest.find(',');
    types.push_back(rest.substr(0, comma));
    rest = comma == std::string::npos ? "" : rest.substr(comma + 1);
  }
  const std::string robots = QueryParam(target, "robots");
  auto window = replay::MakeWindow(from, to.empty() ? "now" : to, robots.empty() ? "*" : robots,
                                   std::move(types));
  if (!window.ok()) return window.status();
  log::Info(kComponent, "replay session over {}", window->Describe());
  // Opened on the replay worker once the WebSocket is up (ws_session.cc).
  return std::make_unique<ReplaySession>(*store, *window, gateway_.options().frame,
                                         gateway_.replay_read_ahead());
}

void HttpSession::Reply(http::status status, std::string_view type, std::string body,
                        bool keep_alive) {
  auto res = std::make_shared<http::response<http::string_body>>(status, request_.version());
  res->set(http::field::server, "doppel-gateway");
  res->set(http::field::content_type, type);
  res->set(http::field::cache_control, "no-cache");
  res->keep_alive(keep_alive && request_.keep_alive());
  if (request_.method() != http::verb::head) res->body() = std::move(body);
  res->prepare_payload();
  http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, size_t) {
    if (ec || !res->keep_alive()) {
      beast::error_code ignored;
      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      return;
    }
    self->Read();
  });
}
}  // namespace doppel::gateway
