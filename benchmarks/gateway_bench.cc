// Gateway fan-out: N concurrent WebSocket clients on loopback, each subscribed to
// /fleet/summary and one robot's /<robot>/pose, while a fleet of twins publishes TwinState.
// Measured: messages delivered per second (all clients), latency from twin publish to client
// receipt (p50/p99), server CPU and RSS, and how many clients the server still holds.
//
// Anchor, same run, same machine, same clients: a Node `ws` server (npm) broadcasting the same
// messages (benchmarks/node/ws_broadcast_server.js), fed the same poses and summaries.
//
// The clients are Beast WebSocket clients on one thread of this process; the server runs as
// its own process (`doppel gateway`, or node), so its CPU and memory are its own.
#include <fmt/format.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <cstring>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>
#include <zmq.hpp>

#include "bench_support.h"
#include "doppel/core/clock.h"
#include "doppel/core/latency.h"
#include "doppel/eventstore/zmq_security.h"
#include "doppel/schemas/twin_state_generated.h"

namespace {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using doppel::LatencySamples;
using doppel::MonotonicNowNs;
using doppel::TimeNs;
using doppel::WallNowNs;
using doppel::bench::Child;

struct Load {
  int robots = 20;
  double rate_hz = 10;  // TwinState per robot per second (a dashboard-typical rate)
  double warmup_s = 2;
  double seconds = 5;
};

struct Stats {
  bool measuring = false;
  uint64_t delivered = 0;
  LatencySamples latency;
  int connected = 0;
  int subscribed = 0;
  int failed_connect = 0;      // TCP connect or WebSocket handshake failed
  int dropped = 0;             // connection lost after subscribing
  std::string summary_sample;  // one summary payload, to feed the anchor the same
};

std::string RobotName(int i) { return fmt::format("bench_{}", i); }

// The id of the channel advertised for `topic` in an advertise message (keys come sorted, so
// "id" precedes "topic" in each channel object).
int ChannelId(std::string_view advertise, const std::string& topic) {
  const auto at = advertise.find("\"topic\":\"" + topic + "\"");
  if (at == std::string_view::npos) return -1;
  const auto id = advertise.rfind("\"id\":", at);
  if (id == std::string_view::npos) return -1;
  return std::atoi(advertise.data() + id + 5);
}

class LoadClient : public std::enable_shared_from_this<LoadClient> {
 public:
  LoadClient(net::io_context& io, Stats& stats, bool foxglove, int robot)
      : ws_(io), stats_(stats), foxglove_(foxglove), robot_(robot) {}

  void Start(const tcp::endpoint& server) {
    beast::get_lowest_layer(ws_).async_connect(
        server, [self = shared_from_this()](beast::error_code ec) {
          if (ec) return self->Fail();
          self->ws_.set_option(websocket::stream_base::decorator([](websocket::request_type& r) {
            r.set(beast::http::field::sec_websocket_protocol, "foxglove.websocket.v1");
          }));
          self->ws_.async_handshake("127.0.0.1", "/", [self](beast::error_code ec2) {
            if (ec2) return self->Fail();
            ++self->stats_.connected;
            if (!self->foxglove_) {
              self->Subscribe(
                  nlohmann::json({{"op", "subscribe"}, {"robot", RobotName(self->robot_)}}).dump());
            }
            self->Read();
          });
        });
  }

 private:
  void Fail() { subscribed_ ? ++stats_.dropped : ++stats_.failed_connect; }

  void Subscribe(std::string text) {
    out_ = std::move(text);
    ws_.text(true);
    ws_.async_write(net::buffer(out_), [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->Fail();
      self->subscribed_ = true;
      ++self->stats_.subscribed;
    });
  }

  void Read() {
    ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) {
        if (self->stats_.dropped < 3) std::cerr << "client lost: " << ec.message() << "\n";
        return self->Fail();
      }
      self->OnMessage();
      self->Read();
    });
  }

  void OnMessage() {
    const auto data = buffer_.cdata();
    const auto* bytes = static_cast<const char*>(data.data());
    const size_t size = data.size();
    if (ws_.got_text()) {
      const std::string_view text(bytes, size);
      if (foxglove_ && robot_sub_ < 0 && text.find("\"op\":\"advertise\"") != std::string::npos) {
        const int summary = ChannelId(text, "/fleet/summary");
        const int pose = ChannelId(text, "/" + RobotName(robot_) + "/pose");
        if (summary > 0 && pose > 0) {
          robot_sub_ = 2;
          Subscribe(nlohmann::json(
                        {{"op", "subscribe"},
                         {"subscriptions",
                          {{{"id", 1}, {"channelId", summary}}, {{"id", 2}, {"channelId", pose}}}}})
                        .dump());
        }
      }
      buffer_.consume(size);
      buffer_.shrink_to_fit();  // the advertisement is big; do not keep its buffer per client
      return;
    }
    if (size >= 13 && bytes[0] == 0x01) {
      uint32_t sub;
      uint64_t stamp;
      std::memcpy(&sub, bytes + 1, 4);
      std::memcpy(&stamp, bytes + 5, 8);
      const std::string_view payload(bytes + 13, size - 13);
      const bool summary = foxglove_ ? sub == 1 : payload.find("\"robots\"") != std::string::npos;
      if (stats_.measuring) {
        ++stats_.delivered;
        if (!summary) stats_.latency.Add(WallNowNs() - static_cast<TimeNs>(stamp));
      }
      if (summary && stats_.summary_sample.empty()) stats_.summary_sample = payload;
    }
    buffer_.consume(size);
  }

  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
  Stats& stats_;
  bool foxglove_;
  int robot_;
  int robot_sub_ = -1;
  bool subscribed_ = false;
  std::string out_;
};

std::string TwinStateBytes(const std::string& robot, double t, TimeNs published) {
  flatbuffers::FlatBufferBuilder fbb(1024);
  std::vector<std::string> names = {"left_wheel", "right_wheel"};
  std::vector<double> q = {t, t * 1.1};
  auto n = fbb.CreateVectorOfStrings(names);
  auto p = fbb.CreateVector(q);
  auto id = fbb.CreateString(robot);
  auto model = fbb.CreateString("doppel_base");
  const doppel::events::Pose pose(doppel::events::Vec3(std::cos(t), std::sin(t), 0),
                                  doppel::events::Quat(0, 0, std::sin(t / 2), std::cos(t / 2)));
  doppel::twin::TwinStateBuilder b(fbb);
  b.add_robot_id(id);
  b.add_model(model);
  b.add_joint_names(n);
  b.add_joint_position(p);
  b.add_base_pose(&pose);
  b.add_stream_version(static_cast<int64_t>(t * 100));
  b.add_last_observation_ns(published);
  b.add_published_ns(published);
  doppel::twin::FinishTwinStateBuffer(fbb, b.Finish());
  return {reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize()};
}

// What the anchor gets for one TwinState: the same pose JSON the gateway makes.
std::string PoseJson(double t, TimeNs published) {
  nlohmann::json j = {
      {"timestamp", {{"sec", published / 1'000'000'000}, {"nsec", published % 1'000'000'000}}},
      {"frame_id", "map"},
      {"pose",
       {{"position", {{"x", std::cos(t)}, {"y", std::sin(t)}, {"z", 0.0}}},
        {"orientation",
         {{"x", 0.0}, {"y", 0.0}, {"z", std::sin(t / 2)}, {"w", std::cos(t / 2)}}}}}};
  return j.dump();
}

struct Result {
  int clients = 0;
  int held = 0;
  int failed = 0;
  double delivered_per_s = 0;
  double p50_ms = 0, p99_ms = 0;
  double cpu_pct = 0;
  double rss_mb = 0;
};

// Publishes the fleet's twin state at load.rate_hz per robot until `stop`, through `send`.
template <typename Send>
void Publish(const Load& load, std::atomic<bool>& stop, Send send) {
  const int64_t period = static_cast<int64_t>(1e9 / load.rate_hz);
  int64_t next = MonotonicNowNs();
  const int64_t start = next;
  while (!stop) {
    const double t = (MonotonicNowNs() - start) / 1e9;
    for (int r = 0; r < load.robots; ++r) send(r, t + r, WallNowNs());
    next += period;
    const int64_t wait = next - MonotonicNowNs();
    if (wait > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(wait));
  }
}

// Connects `clients` clients to `port`, waits until they are subscribed, measures.
Result Measure(const Load& load, int clients, uint16_t port, pid_t server, bool foxglove,
               Stats& stats) {
  net::io_context io;
  const tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), port);
  // Connect in batches so the server's accept backlog is not overrun.
  for (int i = 0; i < clients; ++i) {
    std::make_shared<LoadClient>(io, stats, foxglove, i % load.robots)->Start(endpoint);
    if (i % 200 == 199) io.run_for(std::chrono::milliseconds(50));
  }
  const int64_t connect_deadline = MonotonicNowNs() + 120'000'000'000;
  while (stats.subscribed + stats.failed_connect < clients && MonotonicNowNs() < connect_deadline) {
    io.run_for(std::chrono::milliseconds(100));
  }
  io.run_for(std::chrono::milliseconds(static_cast<int64_t>(load.warmup_s * 1000)));
  Result r;
  r.clients = clients;
  const double cpu0 = doppel::bench::CpuSeconds(server);
  const int64_t t0 = MonotonicNowNs();
  stats.measuring = true;
  io.run_for(std::chrono::milliseconds(static_cast<int64_t>(load.seconds * 1000)));
  stats.measuring = false;
  const double elapsed = (MonotonicNowNs() - t0) / 1e9;
  r.cpu_pct = 100 * (doppel::bench::CpuSeconds(server) - cpu0) / elapsed;
  r.rss_mb = doppel::bench::RssBytes(server) / 1048576.0;
  r.delivered_per_s = stats.delivered / elapsed;
  r.p50_ms = stats.latency.Quantile(0.5) / 1e6;
  r.p99_ms = stats.latency.Quantile(0.99) / 1e6;
  r.held = stats.subscribed - stats.dropped;
  r.failed = stats.failed_connect;
  io.stop();
  return r;
}

Result RunGateway(const Load& load, int clients, const std::string& doppel, Stats& stats) {
  zmq::socket_t pub(doppel::eventstore::SharedZmqContext(), zmq::socket_type::pub);
  pub.set(zmq::sockopt::sndhwm, 0);
  pub.bind("tcp://127.0.0.1:0");
  // Every client comes from 127.0.0.1: no connection budget (the file limit still clamps it,
  // and this benchmark raises that).
  Child server({doppel, "gateway", "--twin-publish", pub.get(zmq::sockopt::last_endpoint), "--port",
                "0", "--max-connections", "0", "--max-connections-per-address", "0"},
               true);
  const auto port = nlohmann::json::parse(server.ReadLine())["port"].get<uint16_t>();
  std::atomic<bool> stop{false};
  std::thread publisher([&] {
    Publish(load, stop, [&](int r, double t, TimeNs now) {
      const std::string robot = RobotName(r);
      pub.send(zmq::buffer("twin/" + robot), zmq::send_flags::sndmore);
      pub.send(zmq::buffer(TwinStateBytes(robot, t, now)), zmq::send_flags::none);
    });
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // robots get advertised
  Result r = Measure(load, clients, port, server.pid(), true, stats);
  stop = true;
  publisher.join();
  return r;
}

Result RunNode(const Load& load, int clients, const std::string& node_script,
               const std::string& summary, Stats& stats) {
  Child server({"/usr/bin/env", "node", node_script, "0"}, true);
  const auto port = nlohmann::json::parse(server.ReadLine())["port"].get<uint16_t>();
  net::io_context feed_io;
  websocket::stream<tcp::socket> feed(feed_io);
  feed.next_layer().connect({net::ip::make_address("127.0.0.1"), port});
  feed.handshake("127.0.0.1", "/feed");
  feed.text(true);
  std::atomic<bool> stop{false};
  std::thread publisher([&] {
    int64_t next_summary = 0;
    Publish(load, stop, [&](int r, double t, TimeNs now) {
      feed.write(net::buffer(
          nlohmann::json({{"robot", RobotName(r)}, {"stamp", now}, {"payload", PoseJson(t, now)}})
              .dump()));
      if (r == 0 && MonotonicNowNs() >= next_summary) {  // 2 Hz, as the gateway's
        next_summary = MonotonicNowNs() + 500'000'000;
        feed.write(net::buffer(
            nlohmann::json({{"robot", nullptr}, {"stamp", now}, {"payload", summary}}).dump()));
      }
    });
  });
  Result r = Measure(load, clients, port, server.pid(), false, stats);
  stop = true;
  publisher.join();
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("gateway fan-out vs a Node ws server");
  Load load;
  std::vector<int> clients = {1000, 10000};
  std::string doppel = DOPPEL_BINARY;
  std::string node_script = DOPPEL_NODE_SERVER;
  app.add_option("--clients", clients, "Client counts to run")->capture_default_str();
  app.add_option("--robots", load.robots)->capture_default_str();
  app.add_option("--rate", load.rate_hz, "TwinState per robot per second")->capture_default_str();
  app.add_option("--seconds", load.seconds, "Measured seconds per run")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  ::setenv("NODE_PATH", DOPPEL_NODE_MODULES, 1);  // the anchor's `ws` package
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;
  setrlimit(RLIMIT_NOFILE, &files);  // the servers inherit it

  std::cout << fmt::format(
      "gateway: WebSocket fan-out, {} robots x {} Hz twin state; each client subscribes to "
      "/fleet/summary (2 Hz) and one robot's pose; loopback, same machine, same run\n",
      load.robots, load.rate_hz);
  std::cout << "| clients | server         | held   | refused | delivered msg/s | p50 ms | p99 ms "
               "| CPU % | RSS MB | delivered ratio |\n";
  std::cout << "|--------:|----------------|-------:|--------:|----------------:|-------:|-------:"
               "|------:|-------:|----------------:|\n";
  for (int n : clients) {
    Stats ours_stats;
    const Result ours = RunGateway(load, n, doppel, ours_stats);
    Stats node_stats;
    const Result node = RunNode(load, n, node_script, ours_stats.summary_sample, node_stats);
    auto row = [&](const char* name, const Result& r, const std::string& ratio) {
      std::cout << fmt::format(
                       "| {:7} | {:14} | {:6} | {:7} | {:15.0f} | {:6.1f} | {:6.1f} | "
                       "{:5.0f} | {:6.0f} | {:>15} |\n",
                       r.clients, name, r.held, r.failed, r.delivered_per_s, r.p50_ms, r.p99_ms,
                       r.cpu_pct, r.rss_mb, ratio)
                << std::flush;
    };
    row("doppel gateway", ours,
        fmt::format("{:.2f}x",
                    node.delivered_per_s > 0 ? ours.delivered_per_s / node.delivered_per_s : 0.0));
    row("node ws", node, "1.00x");
  }
  std::cout << "held: clients still connected and subscribed at the end; refused: connect or "
               "handshake failed\n";
  std::cout << "delivered ratio: doppel's delivered messages/s over the Node ws server's (targets: "
               "10,000 clients held with p99 < 100 ms; ratio >= 5x)\n";
  return 0;
}
