// A plain HTTP connection to the gateway: the dashboard's files, /api/scene, /healthz,
// /metrics, or an upgrade to WebSocket, which it checks (subprotocol, token) and hands to a
// WsSession.
#pragma once

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "doppel/net/guarded_acceptor.h"
#include "gateway_impl.h"
#include "replay_session.h"

namespace doppel::gateway {

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  // `first_request_timeout`: how long a new connection may take to send its first request
  // (later requests on a kept-alive connection get 30 s).
  HttpSession(boost::asio::ip::tcp::socket socket, net::ConnectionTicket ticket,
              Gateway::Impl& gateway, std::chrono::milliseconds first_request_timeout)
      : stream_(std::move(socket)),
        ticket_(std::move(ticket)),
        gateway_(gateway),
        first_request_timeout_(first_request_timeout) {}

  // Reads the next request (and serves it, and so on while the client keeps the connection).
  void Read();

 private:
  void OnRequest();
  void ServeFile(std::string path);
  void Refuse(boost::beast::http::status status, std::string reason);
  void Upgrade();
  // GET /api/incidents?from=..&to=..[&robots=..]&token=..: a window's markers (alerts,
  // faults, silences) for the dashboard's replay timeline, read off the network thread.
  void Incidents();
  // The ReplaySession a /replay?from=..&to=..[&robots=..][&types=..] URL asks for (not yet
  // opened: that happens on the replay worker).
  Result<std::unique_ptr<ReplaySession>> OpenReplay();
  void Reply(boost::beast::http::status status, std::string_view type, std::string body,
             bool keep_alive = true);

  boost::beast::tcp_stream stream_;
  // The connection's place in the gateway's budget; a WebSocket session takes it over.
  net::ConnectionTicket ticket_;
  Gateway::Impl& gateway_;
  std::chrono::milliseconds first_request_timeout_;
  bool first_request_ = true;
  boost::beast::flat_buffer buffer_;
  boost::beast::http::request<boost::beast::http::string_body> request_;
};

}  // namespace doppel::gateway
