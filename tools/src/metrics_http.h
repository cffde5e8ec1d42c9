// MetricsHttp: the small HTTP server that long-running doppel commands (store, twin,
// bridge-dds) start with --metrics-port, for Prometheus. It answers
//   GET /metrics  the text the render callback returns (exposition format 0.0.4)
//   GET /healthz  {"status":"ok"}
// and 404 for anything else. One thread runs Asio; connections are kept alive, as
// Prometheus keeps them between scrapes. It lives in tools so that no library depends on an
// HTTP stack; the gateway serves /metrics on its own port.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "doppel/core/status.h"

namespace doppel::tools {

class MetricsHttp {
 public:
  // Runs on the server's thread for each scrape: must be thread-safe with respect to the
  // components it reads.
  using Render = std::function<std::string()>;

  // Binds address:port (port 0: the system picks one, see port()) and starts serving.
  static Result<std::unique_ptr<MetricsHttp>> Start(const std::string& address, uint16_t port,
                                                    Render render);
  ~MetricsHttp();  // stops serving and joins the thread
  MetricsHttp(const MetricsHttp&) = delete;
  MetricsHttp& operator=(const MetricsHttp&) = delete;

  uint16_t port() const;

 private:
  class Impl;
  explicit MetricsHttp(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// --metrics-port and --metrics-address, shared by every command that serves metrics.
struct MetricsFlags {
  uint16_t port = 0;  // 0: no metrics server
  std::string address = "127.0.0.1";
};
void AddMetricsOptions(CLI::App& cmd, MetricsFlags& flags);

// Starts the server when flags.port is set (nullptr when not), and logs where it listens.
Result<std::unique_ptr<MetricsHttp>> StartMetricsHttp(const MetricsFlags& flags,
                                                      MetricsHttp::Render render);

}  // namespace doppel::tools
