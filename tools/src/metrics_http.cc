#include "metrics_http.h"

#include <fmt/format.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <thread>

#include "doppel/core/log.h"
#include "doppel/core/metrics.h"
#include "doppel/net/guarded_acceptor.h"

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
  MetricsConnection(tcp::socket socket, doppel::net::ConnectionTicket ticket,
                    const MetricsHttp::Render& render)
      : stream_(std::move(socket)), ticket_(std::move(ticket)), render_(render) {}

  void Read() {
    request_ = {};
    // A new connection must ask within 5 s (idle sockets would hold the budget); a scraper
    // that keeps its connection between scrapes gets 60 s, and reconnects after that.
    stream_.expires_after(first_request_ ? std::chrono::seconds(5) : std::chrono::seconds(60));
    first_request_ = false;
    http::async_read(stream_, buffer_, request_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (!ec) self->Answer();
                     });
  }

 private:
  void Answer() {
    stream_.expires_after(std::chrono::seconds(60));  // the read's deadline no longer applies
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
  doppel::net::ConnectionTicket ticket_;  // the connection's place in the server's budget
  bool first_request_ = true;
  const MetricsHttp::Render& render_;  // owned by MetricsHttp::Impl, which outlives the thread
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
};

}  // namespace

class MetricsHttp::Impl {
 public:
  // Each scrape serves `render`'s page and this server's own connection counts.
  explicit Impl(Render render)
      : render_([this, page = std::move(render)] { return page() + ConnectionMetrics(); }),
        acceptor_(io_, std::string(kComponent), kLimits,
                  "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\n"
                  "Content-Length: 0\r\n\r\n") {}

  ~Impl() {
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

  Status Start(const std::string& address, uint16_t port) {
    if (Status s = acceptor_.Listen(address, port); !s.ok()) {
      return Status::Unavailable(fmt::format("cannot serve metrics: {}", s.message()));
    }
    acceptor_.Start([this](tcp::socket socket, doppel::net::ConnectionTicket ticket) {
      std::make_shared<MetricsConnection>(std::move(socket), std::move(ticket), render_)->Read();
    });
    thread_ = std::thread([this] { io_.run(); });
    return Status::Ok();
  }

  uint16_t port() const { return acceptor_.port(); }

 private:
  std::string ConnectionMetrics() const {
    const doppel::net::AcceptCounters c = acceptor_.counters();
    MetricsPage page;
    page.Gauge("doppel_metrics_http_connections", "Connections open to this metrics endpoint",
               c.open);
    page.Counter("doppel_metrics_http_refused_total",
                 "Connections to this metrics endpoint closed at once: over its budget of 64, or "
                 "16 from one address",
                 c.refused_total + c.refused_per_address);
    page.Counter("doppel_metrics_http_accept_errors_total",
                 "accept(2) failures on this metrics endpoint (EMFILE, ...)", c.accept_errors);
    return page.text();
  }

  // Scrapers are few: a budget this small cannot be mistaken for one, and a flood of idle
  // connections to a metrics port cannot take the descriptors its process needs.
  static constexpr doppel::net::AcceptLimits kLimits{.max_connections = 64, .max_per_address = 16};

  const Render render_;
  net::io_context io_{1};
  doppel::net::GuardedAcceptor acceptor_;
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
