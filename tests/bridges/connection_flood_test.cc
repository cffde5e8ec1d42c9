// Idle TCP connections without a token against a real `doppel gateway` process: they get a
// share of the connection budget and no more, are closed when they send nothing, and a
// client with a token is served throughout or right after. The total budget follows the
// process's file limit (ulimit -n), so a flood meets a 503 instead of EMFILE. The same for a
// store's --metrics-port: a flood there leaves its appends alone.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "doppel/eventstore/store_client.h"
#include "doppel/eventstore/zmq_security.h"
#include "gateway_client.h"
#include "loopback_socket.h"
#include "test_support.h"

namespace doppel {
namespace {

using nlohmann::json;
using testing::ConnectFrom;  // an idle client: it connects and says nothing
using testing::HttpGet;
using testing::WsClient;

// Whether the gateway closed `fd` within `timeout_ms`, and what it said first.
struct Ending {
  bool closed = false;
  std::string said;
};
Ending WaitForClose(int fd, int timeout_ms) {
  Ending ending;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  // timeout_ms == 0: what has arrived already.
  do {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms == 0 ? 0 : 50) <= 0) {
      if (timeout_ms == 0) break;
      continue;
    }
    char buf[512];
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) {
      ending.closed = true;
      return ending;
    }
    ending.said.append(buf, static_cast<size_t>(n));
  } while (timeout_ms == 0 || std::chrono::steady_clock::now() < deadline);
  return ending;
}

// The value of an unlabelled metric in a Prometheus page; -1 if absent.
int64_t MetricValue(const std::string& page, const std::string& name) {
  const auto at = page.find("\n" + name + " ");
  return at == std::string::npos ? -1 : std::stoll(page.substr(at + name.size() + 2));
}

class ConnectionFloodTest : public ::testing::Test {
 protected:
  // Starts the gateway with `extra` flags and, if `open_files` > 0, that file limit.
  void StartGateway(const std::vector<std::string>& extra, rlim_t open_files = 0) {
    std::ofstream(dir_.Sub("tokens")) << "viewtok viewer watcher\n";
    pub_ = zmq::socket_t(eventstore::SharedZmqContext(), zmq::socket_type::pub);
    pub_.bind("tcp://127.0.0.1:0");
    std::vector<std::string> args = {
        "gateway",  "--twin-publish",  pub_.get(zmq::sockopt::last_endpoint), "--port", "0",
        "--tokens", dir_.Sub("tokens")};
    args.insert(args.end(), extra.begin(), extra.end());
    // The child inherits this process's limit: lower it around the start only.
    rlimit saved{};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
    if (open_files > 0) {
      rlimit lowered{open_files, saved.rlim_max};
      ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &lowered), 0);
    }
    gateway_ = std::make_unique<testing::DoppelProcess>(args);
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &saved), 0);
    auto line = gateway_->ReadLine(10000);
    ASSERT_TRUE(line.has_value());
    port_ = json::parse(*line)["port"];
  }
  void TearDown() override {
    for (int fd : idle_) ::close(fd);
  }

  testing::TempDir dir_;
  zmq::socket_t pub_;
  std::unique_ptr<testing::DoppelProcess> gateway_;
  uint16_t port_ = 0;
  std::vector<int> idle_;
};

TEST_F(ConnectionFloodTest, OneAddressGetsItsShareAndATokenClientIsServedMeanwhile) {
  StartGateway({"--max-connections-per-address", "20"});
  const auto start = std::chrono::steady_clock::now();  // before any accept
  for (int i = 0; i < 30; ++i) idle_.push_back(ConnectFrom(port_, "127.0.0.2"));
  // The ten over the share are answered 503 and closed at once.
  int refused = 0;
  for (size_t i = 20; i < idle_.size(); ++i) {
    const Ending e = WaitForClose(idle_[i], 2000);
    if (e.closed && e.said.rfind("HTTP/1.1 503", 0) == 0) ++refused;
  }
  EXPECT_EQ(refused, 10);
  // Another address, with a token, is served while the twenty are held.
  WsClient viewer(port_, {.target = "/?token=viewtok"});
  EXPECT_EQ(viewer.Next()["op"], "serverInfo");
  // The twenty said nothing: closed after the first-request timeout (5 s), not before.
  int closed = 0;
  for (size_t i = 0; i < 20; ++i) closed += WaitForClose(idle_[i], 12000).closed ? 1 : 0;
  EXPECT_EQ(closed, 20);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(4500));
  auto [status, metrics] = HttpGet(port_, "/metrics");
  EXPECT_EQ(status, 200);
  EXPECT_EQ(MetricValue(metrics, "doppel_gateway_tcp_refused_per_address_total"), 10) << metrics;
  // The viewer was never disturbed: it still gets answers.
  viewer.Send({{"op", "doSomething"}});
  EXPECT_NE(viewer.NextOp("status")["message"].get<std::string>().find("Unsupported"),
            std::string::npos);
}

TEST_F(ConnectionFloodTest, AFloodMeetsTheBudgetOfTheFileLimitAndTheGatewayRecovers) {
  // 512 files: the budget is 256 connections (512 less 256 kept for the process's own).
  StartGateway({}, 512);
  for (int i = 0; i < 300; ++i) {
    idle_.push_back(ConnectFrom(port_, "127.0.0." + std::to_string(2 + i / 50)));
  }
  // The refused ones are answered and closed as they come (well before the 5 s the others
  // get to speak).
  std::vector<bool> answered(idle_.size(), false);
  int refused = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (refused < 300 - 256 && std::chrono::steady_clock::now() < until) {
    for (size_t i = 0; i < idle_.size(); ++i) {
      if (answered[i]) continue;
      const Ending e = WaitForClose(idle_[i], 0);
      if (e.closed && e.said.rfind("HTTP/1.1 503", 0) == 0) answered[i] = true, ++refused;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(refused, 300 - 256);
  // Full: a newcomer is told so, not left hanging.
  const int newcomer = ConnectFrom(port_, "127.0.0.1");
  const Ending told = WaitForClose(newcomer, 2000);
  EXPECT_TRUE(told.closed);
  EXPECT_EQ(told.said.rfind("HTTP/1.1 503", 0), 0u) << told.said;
  ::close(newcomer);
  // The idle ones are closed after 5 s; then the gateway serves again.
  int closed = 0;
  for (int fd : idle_) closed += WaitForClose(fd, 9000).closed ? 1 : 0;
  EXPECT_EQ(closed, 300);
  WsClient viewer(port_, {.target = "/?token=viewtok"});
  EXPECT_EQ(viewer.Next()["op"], "serverInfo");
  auto [status, metrics] = HttpGet(port_, "/metrics");
  EXPECT_EQ(status, 200);
  EXPECT_EQ(MetricValue(metrics, "doppel_gateway_tcp_refused_total"), 300 - 256 + 1) << metrics;
  EXPECT_EQ(MetricValue(metrics, "doppel_gateway_tcp_accept_errors_total"), 0) << metrics;
}

// A port nobody listens on now.
uint16_t FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

TEST(MetricsFloodTest, IdleConnectionsToAStoresMetricsPortGetItsBudgetAndAppendsGoOn) {
  testing::TempDir dir;
  const uint16_t port = FreePort();
  auto store = testing::StartStore(dir.Sub("log"), "tcp://127.0.0.1:0", "tcp://127.0.0.1:0",
                                   {"--metrics-port", std::to_string(port)});
  ASSERT_NE(store.process, nullptr);
  ASSERT_EQ(HttpGet(port, "/healthz").first, 200);
  // 100 idle connections from ten addresses: the endpoint keeps 64 (16 per address at most).
  std::vector<int> idle;
  for (int i = 0; i < 100; ++i) {
    idle.push_back(ConnectFrom(port, "127.0.0." + std::to_string(2 + i / 10)));
  }
  std::vector<bool> answered(idle.size(), false);
  int refused = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (refused < 100 - 64 && std::chrono::steady_clock::now() < until) {
    for (size_t i = 0; i < idle.size(); ++i) {
      if (answered[i]) continue;
      const Ending e = WaitForClose(idle[i], 0);
      if (e.closed && e.said.rfind("HTTP/1.1 503", 0) == 0) answered[i] = true, ++refused;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(refused, 100 - 64);
  // The store answers appends from a new client meanwhile.
  eventstore::StoreClientOptions options;
  options.endpoint = store.listen;
  auto client = eventstore::StoreClient::Connect(options);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  auto appended = (*client)->Append(
      {"robot-metrics-flood", eventstore::ExpectedVersion::Any(), {testing::JointStateEvent(1)}});
  EXPECT_TRUE(appended.ok()) << appended.status().ToString();
  // The silent ones are closed after 5 s; then a scrape is served and counts the refusals.
  int closed = 0;
  for (size_t i = 0; i < idle.size(); ++i) closed += WaitForClose(idle[i], 9000).closed ? 1 : 0;
  EXPECT_EQ(closed, 100);
  auto [status, metrics] = HttpGet(port, "/metrics");
  EXPECT_EQ(status, 200);
  EXPECT_EQ(MetricValue(metrics, "doppel_metrics_http_refused_total"), 100 - 64) << metrics;
  for (int fd : idle) ::close(fd);
}

}  // namespace
}  // namespace doppel
