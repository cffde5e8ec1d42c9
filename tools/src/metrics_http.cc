#include "metrics_http.h"

#include <fmt/format.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <thread>

#include "doppel/core/log.h"

namespace doppel::tools {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

constexpr std::string_view kComponent = "metrics";

// One connection: read a request, answer it, and again while the client keeps it alive.
class MetricsConnection : public std::enable_shared_from_this<MetricsConnection> {
 public:
  MetricsConnection(tcp::socket socket, const MetricsHttp::Render& render)
      : stream_(std::move(socket)), render_(render) {}

  void Read() {
    request_ = {};
    // A scraper that goes quiet is dropped; Prometheus reconnects on its next scrape.
    stream_.expires_after(std::chrono::seconds(60));
    http::async_read(stream_, buffer_, request_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (!ec) self->Answer();
                     });
  }

 private:
  void Answer() {
    const std::string target(request_.target());
    const std::string path = target.substr(0, target.find('?'));
    auto response = std::make_shared<http::response<http::string_body>>();
    response->version(request_.version());
    response->keep_alive(request_.keep_alive());
    if (request_.method() != http::verb::get && request_.method() != http::verb::head) {
      response->result(http::status::method_not_allowed);
      response->set(http::field::content_type, "text/plain");
      response->body() = "GET only\n";
    } else if (path == "/metrics") {
      response->result(http::status::ok);
      response->set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      response->body() = render_();
    } else if (path == "/healthz") {
      response->result(http::status::ok);
      response->set(http::field::content_type, "application/json");
      response->body() = "{\"status\":\"ok\"}\n";
    } else {
      response->result(http::status::not_found);
      response->set(http::field::content_type, "text/plain");
      response->body() = "not found: try /metrics or /healthz\n";
    }
    response->prepare_payload();
    if (request_.method() == http::verb::head) response->body().clear();
    http::async_write(stream_, *response,
                      [self = shared_from_this(), response](beast::error_code ec, size_t) {
                        if (ec || !response->keep_alive()) {
                          beast::error_code ignored;
                          self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
                          return;
                        }
                        self->Read();
                      });
  }

  beast::tcp_stream stream_;
  const MetricsHttp::Render& render_;  // owned by MetricsHttp::Impl, which outlives the thread
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
};

}  // namespace

class MetricsHttp::Impl {
 public:
  explicit Impl(Render render) : render_(std::move(render)), acceptor_(io_) {}

  ~Impl() {
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

  Status Start(const std::string& address, uint16_t port) {
    beast::error_code ec;
    const auto ip = net::ip::make_address(address, ec);
    if (ec) return Status::InvalidArgument(fmt::format("bad metrics address {}", address));
    const tcp::endpoint endpoint(ip, port);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      return Status::Unavailable(
          fmt::format("cannot serve metrics on {}:{}: {}", address, port, ec.message()));
    }
    port_ = acceptor_.local_endpoint().port();
    Accept();
    thread_ = std::thread([this] { io_.run(); });
    return Status::Ok();
  }

  uint16_t port() const { return port_; }

 private:
  void Accept() {
    acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec == net::error::operation_aborted) return;
      if (!ec) std::make_shared<MetricsConnection>(std::move(socket), render_)->Read();
      Accept();
    });
  }

  const Render render_;
  net::io_context io_{1};
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::thread thread_;
};

MetricsHttp::MetricsHttp(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MetricsHttp::~MetricsHttp() = default;

Result<std::unique_ptr<MetricsHttp>> MetricsHttp::Start(const std::string& address, uint16_t port,
                                                        Render render) {
  auto impl = std::make_unique<Impl>(std::move(render));
  DOPPEL_RETURN_IF_ERROR(impl->Start(address, port));
  return std::unique_ptr<MetricsHttp>(new MetricsHttp(std::move(impl)));
}

uint16_t MetricsHttp::port() const { return impl_->port(); }

void AddMetricsOptions(CLI::App& cmd, MetricsFlags& flags) {
  cmd.add_option("--metrics-port", flags.port,
                 "Serve Prometheus /metrics and /healthz on this port (0: off)")
      ->capture_default_str();
  cmd.add_option("--metrics-address", flags.address, "Address the metrics server listens on")
      ->capture_default_str();
}

Result<std::unique_ptr<MetricsHttp>> StartMetricsHttp(const MetricsFlags& flags,
                                                      MetricsHttp::Render render) {
  if (flags.port == 0) return std::unique_ptr<MetricsHttp>();
  auto server = MetricsHttp::Start(flags.address, flags.port, std::move(render));
  if (!server.ok()) return server.status();
  log::Info(kComponent, "metrics on http://{}:{}/metrics", flags.address, (*server)->port());
  return server;
}

}  // namespace doppel::tools
