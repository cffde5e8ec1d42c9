// DDS bridge benchmarks, CycloneDDS on loopback, same machine, same run:
// 1. Ingest: 100 robots x 100 Hz JointState (10k samples/s) into `doppel bridge-dds` writing
//    a durable embedded log; every sample must be appended (decimation off), and the bridge's
//    CPU per 1k samples/s is reported. (No like-for-like anchor: the row reports loss and
//    CPU; the latency rows below carry the raw-DDS anchor.)
// 2. Latency DDS in -> event (fsync) -> twin -> DDS out: a JointState written here comes back
//    on rt/twin/<robot>/joint_states from `doppel up --robots 0`; p50/p99. Anchor: the same
//    sample written and read back over raw CycloneDDS (one hop), in the same run.
// 3. Egress rate: TwinState fed over ZeroMQ as fast as the bridge takes it; JointState samples
//    per second arriving on rt/twin/<robot>/joint_states. Anchor: `ddsperf pub size 256` to
//    `ddsperf sub` (raw CycloneDDS, a sample of about the same size), in the same run.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <zmq.hpp>

#include "bench_support.h"
#include "doppel/bridges/dds.h"
#include "doppel/core/clock.h"
#include "doppel/core/latency.h"
#include "doppel/eventstore/store_client.h"
#include "doppel/eventstore/zmq_security.h"
#include "doppel/schemas/robot_events_generated.h"
#include "doppel/schemas/twin_state_generated.h"

namespace {

using doppel::LatencySamples;
using doppel::MonotonicNowNs;
using doppel::WallNowNs;
using doppel::bench::Child;
namespace dds = doppel::dds;

const char* kArmJoints[] = {"shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint",
                            "wrist_1_joint",      "wrist_2_joint",       "wrist_3_joint"};

void WriteJoints(dds::Writer& w, const double* q, doppel::TimeNs stamp) {
  sensor_msgs_msg_dds__JointState_ js{};
  js.header.stamp = dds::ToRosTime(stamp);
  js.header.frame_id = const_cast<char*>("base_link");
  js.name = {6, 6, const_cast<char**>(kArmJoints), false};
  js.position = {6, 6, const_cast<double*>(q), false};
  js.velocity = {0, 0, nullptr, false};
  js.effort = {0, 0, nullptr, false};
  (void)w.Write(&js);
}

// Waits until every writer has a matched reader (the ingest found its robot).
bool WaitMatched(std::vector<std::unique_ptr<dds::Writer>>& writers, double seconds) {
  const int64_t deadline = MonotonicNowNs() + static_cast<int64_t>(seconds * 1e9);
  for (auto& w : writers) {
    while (w->MatchedReaders() == 0) {
      if (MonotonicNowNs() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  return true;
}

void Ingest(const std::string& doppel, int robots, double rate, double seconds, int domain) {
  // Before the servers: removed after they stopped, on every way out of the function.
  const doppel::bench::BenchDir temp("dds");
  const std::string& dir = temp.path();
  uint64_t sent = 0;
  double cpu = 0, elapsed = 0;
  {
    Child bridge(
        {doppel, "bridge-dds", "--data", dir + "/log", "--max-rate", "0", "--domain",
         std::to_string(domain), "--robots", "ingest_*", "--model", "ingest_*=doppel_arm6"},
        true);
    bridge.ReadLine();
    auto participant = dds::Participant::Create(domain);
    std::vector<std::unique_ptr<dds::Writer>> writers;
    for (int r = 0; r < robots; ++r) {
      auto w = dds::Writer::Create(*participant, &sensor_msgs_msg_dds__JointState__desc,
                                   fmt::format("rt/ingest_{}/joint_states", r),
                                   dds::QosSpec{true, false, 100});
      writers.push_back(std::make_unique<dds::Writer>(std::move(w).value()));
    }
    if (!WaitMatched(writers, 30)) std::cerr << "dds_bench: not every robot was discovered\n";
    const double cpu0 = doppel::bench::CpuSeconds(bridge.pid());
    const int64_t start = MonotonicNowNs();
    const int64_t period = static_cast<int64_t>(1e9 / rate);
    int64_t next = start;
    double q[6] = {0, 0, 0, 0, 0, 0};
    while (MonotonicNowNs() - start < static_cast<int64_t>(seconds * 1e9)) {
      for (auto& w : writers) {
        q[0] = sent * 1e-6;
        WriteJoints(*w, q, WallNowNs());
        ++sent;
      }
      next += period;
      const int64_t wait = next - MonotonicNowNs();
      if (wait > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(wait));
    }
    elapsed = (MonotonicNowNs() - start) / 1e9;
    std::this_thread::sleep_for(std::chrono::seconds(2));  // let the last batches commit
    cpu = doppel::bench::CpuSeconds(bridge.pid()) - cpu0;
  }  // the bridge stops (SIGTERM) and closes the log
  // Count what the log holds.
  const std::string out = dir + "/count.jsonl";
  const std::string cmd = fmt::format("{} read --data {}/log > {}", doppel, dir, out);
  if (std::system(cmd.c_str()) != 0) std::cerr << "dds_bench: read failed\n";
  std::ifstream in(out);
  std::string line;
  uint64_t appended = 0;
  while (std::getline(in, line))
    appended += line.find("\"JointStateObserved\"") != std::string::npos;
  const double offered = sent / elapsed;
  std::cout << fmt::format(
      "| ingest {} robots x {:.0f} Hz | {:.0f} samples/s offered | {} sent, {} appended, {} lost "
      "| bridge CPU {:.0f}% = {:.1f}% of a core per 1k samples/s |\n",
      robots, rate, offered, sent, appended, sent > appended ? sent - appended : 0,
      100 * cpu / elapsed, 100 * cpu / elapsed / (offered / 1000));
}

struct LatencyResult {
  LatencySamples samples;
  uint64_t sent = 0;
};

// Writes `robot`'s joint states to `writer` at `rate` and times each one until it comes back on
// `reader` (matched by a sequence number in position[0]).
LatencyResult RoundTrips(dds::Writer& writer, dds::Reader& reader, double rate, double seconds) {
  LatencyResult r;
  std::mutex mu;
  std::map<int64_t, int64_t> sent_at;  // sequence -> wall ns
  std::atomic<bool> stop{false};
  std::thread receiver([&] {
    while (!stop) {
      (void)reader.Take(
          [&](const void* sample) {
            const auto* js = static_cast<const sensor_msgs_msg_dds__JointState_*>(sample);
            if (js->position._length == 0) return;
            const auto seq = static_cast<int64_t>(std::llround(js->position._buffer[0] * 1e4));
            std::lock_guard lock(mu);
            auto it = sent_at.find(seq);
            if (it == sent_at.end()) return;  // a repeat of one already timed
            r.samples.Add(WallNowNs() - it->second);
            sent_at.erase(it);
          },
          std::chrono::milliseconds(20));
    }
  });
  const int64_t start = MonotonicNowNs();
  const int64_t period = static_cast<int64_t>(1e9 / rate);
  int64_t next = start;
  int64_t seq = 1;
  while (MonotonicNowNs() - start < static_cast<int64_t>(seconds * 1e9)) {
    double q[6] = {seq * 1e-4, 0.1, 0.2, 0.3, 0.4, 0.5};
    {
      std::lock_guard lock(mu);
      sent_at[seq] = WallNowNs();
    }
    WriteJoints(writer, q, WallNowNs());
    ++r.sent;
    ++seq;
    next += period;
    const int64_t wait = next - MonotonicNowNs();
    if (wait > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(wait));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  stop = true;
  receiver.join();
  return r;
}

void Latency(const std::string& doppel, double rate, double seconds, int domain) {
  // Before the servers: removed after they stopped, on every way out of the function.
  const doppel::bench::BenchDir temp("dds");
  const std::string& dir = temp.path();
  LatencyResult ours, raw;
  {
    Child up({doppel, "up", "--data", dir, "--robots", "0", "--port", "0", "--domain",
              std::to_string(domain)},
             true);
    up.ReadLine();
    auto participant = dds::Participant::Create(domain);
    auto writer = dds::Writer::Create(*participant, &sensor_msgs_msg_dds__JointState__desc,
                                      "rt/lat_arm_0/joint_states");
    auto reader = dds::Reader::Create(*participant, &sensor_msgs_msg_dds__JointState__desc,
                                      "rt/twin/lat_arm_0/joint_states", {}, true);
    // Warm up: the ingest discovers the robot and registers it, the twin starts publishing.
    double q[6] = {0, 0.1, 0.2, 0.3, 0.4, 0.5};
    for (int i = 0; i < 100 && reader->MatchedWriters() == 0; ++i) {
      WriteJoints(*writer, q, WallNowNs());
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
    ours = RoundTrips(*writer, *reader, rate, seconds);
    // Anchor: one raw CycloneDDS hop, same type and QoS, in the same run.
    auto raw_writer = dds::Writer::Create(*participant, &sensor_msgs_msg_dds__JointState__desc,
                                          "rt/raw_anchor/joint_states");
    auto raw_participant = dds::Participant::Create(domain);
    auto raw_reader = dds::Reader::Create(*raw_participant, &sensor_msgs_msg_dds__JointState__desc,
                                          "rt/raw_anchor/joint_states");
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    raw = RoundTrips(*raw_writer, *raw_reader, rate, seconds);
  }
  auto row = [](const char* name, LatencyResult& r) {
    std::cout << fmt::format("| {:44} | {:6} | {:6} | {:8.2f} | {:8.2f} |\n", name, r.sent,
                             r.samples.count(), r.samples.Quantile(0.5) / 1e6,
                             r.samples.Quantile(0.99) / 1e6);
  };
  std::cout
      << "| path                                         | sent   | back   | p50 ms   | p99 ms "
         "  |\n|----------------------------------------------|-------:|-------:|---------:|--"
         "-------:|\n";
  row("doppel: DDS in -> event (fsync) -> twin -> DDS out", ours);
  row("raw CycloneDDS: one hop, same sample", raw);
  const double p99 = ours.samples.Quantile(0.99) / 1e6;
  std::cout << fmt::format("target: p99 under 10 ms: {}\n", p99 < 10 ? "met" : "MISSED");
}

std::string ArmState(const std::string& robot, int64_t seq) {
  flatbuffers::FlatBufferBuilder fbb(512);
  std::vector<std::string> names(std::begin(kArmJoints), std::end(kArmJoints));
  std::vector<double> q = {seq * 1e-6, 0.1, 0.2, 0.3, 0.4, 0.5};
  auto n = fbb.CreateVectorOfStrings(names);
  auto p = fbb.CreateVector(q);
  auto id = fbb.CreateString(robot);
  auto model = fbb.CreateString("doppel_arm6");
  doppel::twin::TwinStateBuilder b(fbb);
  b.add_robot_id(id);
  b.add_model(model);
  b.add_joint_names(n);
  b.add_joint_position(p);
  b.add_joint_velocity(p);
  b.add_stream_version(seq);
  b.add_last_observation_ns(WallNowNs());
  b.add_published_ns(WallNowNs());
  doppel::twin::FinishTwinStateBuffer(fbb, b.Finish());
  return {reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize()};
}

// Operator command -> robot: a CommandIssued appended through the store client (as the
// gateway does), committed (fsync), relayed by `doppel bridge-dds` as a Twist on
// rt/<robot>/cmd_vel; timed from the append call to the Twist arriving here. Anchor: one raw
// CycloneDDS hop of a Twist in the same run.
void CommandLatency(const std::string& doppel, double rate, double seconds, int domain) {
  // Before the servers: removed after they stopped, on every way out of the function.
  const doppel::bench::BenchDir temp("dds");
  const std::string& dir = temp.path();
  LatencySamples ours, raw;
  uint64_t sent = 0, raw_sent = 0;
  auto time_twists = [&](dds::Reader& reader, LatencySamples& out, std::mutex& mu,
                         std::map<int64_t, int64_t>& sent_at, std::atomic<bool>& stop) {
    while (!stop) {
      (void)reader.Take(
          [&](const void* sample) {
            const auto* t = static_cast<const geometry_msgs_msg_dds__Twist_*>(sample);
            const auto seq = static_cast<int64_t>(std::llround(t->angular.z * 1e3));
            std::lock_guard lock(mu);
            auto it = sent_at.find(seq);
            if (it == sent_at.end()) return;
            out.Add(WallNowNs() - it->second);
            sent_at.erase(it);
          },
          std::chrono::milliseconds(20));
    }
  };
  {
    Child store({doppel, "store", "--data", dir + "/log", "--listen", "tcp://127.0.0.1:0",
                 "--publish", "tcp://127.0.0.1:0"},
                true);
    const auto info = nlohmann::json::parse(store.ReadLine());
    const std::string listen = info["listen"], publish = info["publish"];
    Child bridge({doppel, "bridge-dds", "--store", listen, "--publish", publish, "--domain",
                  std::to_string(domain), "--robots", "none", "--twin-publish",
                  "tcp://127.0.0.1:9"});
    doppel::eventstore::StoreClientOptions co;
    co.endpoint = listen;
    auto client = doppel::eventstore::StoreClient::Connect(co);
    auto participant = dds::Participant::Create(domain);
    auto reader = dds::Reader::Create(*participant, &geometry_msgs_msg_dds__Twist__desc,
                                      "rt/cmd_bench/cmd_vel", dds::QosSpec{true, false, 100});
    auto command = [&](int64_t seq) {
      flatbuffers::FlatBufferBuilder fbb;
      const doppel::events::Twist twist(doppel::events::Vec3(0.1, 0, 0),
                                        doppel::events::Vec3(0, 0, seq * 1e-3));
      fbb.Finish(doppel::events::CreateCommandIssued(fbb, doppel::events::CommandKind::Velocity,
                                                     &twist, 0, 0,
                                                     fbb.CreateString("gateway:bench")));
      doppel::eventstore::NewEvent e;
      e.type = "CommandIssued";
      e.payload.assign(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
      (void)(*client)->Append({"robot-cmd_bench", doppel::eventstore::ExpectedVersion::Any(), {e}});
    };
    // Warm up until the relay's writer (made with the robot's first command) has matched.
    for (int i = 0; i < 200 && reader->MatchedWriters() == 0; ++i) {
      command(0);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    std::mutex mu;
    std::map<int64_t, int64_t> sent_at;
    std::atomic<bool> stop{false};
    std::thread receiver([&] { time_twists(*reader, ours, mu, sent_at, stop); });
    const int64_t start = MonotonicNowNs();
    for (int64_t seq = 1; MonotonicNowNs() - start < static_cast<int64_t>(seconds * 1e9); ++seq) {
      {
        std::lock_guard lock(mu);
        sent_at[seq] = WallNowNs();
      }
      command(seq);
      ++sent;
      std::this_thread::sleep_for(std::chrono::nanoseconds(static_cast<int64_t>(1e9 / rate)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    stop = true;
    receiver.join();

    // Anchor: the same Twist over one raw CycloneDDS hop.
    auto raw_writer = dds::Writer::Create(*participant, &geometry_msgs_msg_dds__Twist__desc,
                                          "rt/raw_cmd/cmd_vel");
    auto raw_participant = dds::Participant::Create(domain);
    auto raw_reader = dds::Reader::Create(*raw_participant, &geometry_msgs_msg_dds__Twist__desc,
                                          "rt/raw_cmd/cmd_vel", dds::QosSpec{true, false, 100});
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    std::map<int64_t, int64_t> raw_sent_at;
    std::atomic<bool> raw_stop{false};
    std::thread raw_receiver([&] { time_twists(*raw_reader, raw, mu, raw_sent_at, raw_stop); });
    const int64_t raw_start = MonotonicNowNs();
    for (int64_t seq = 1; MonotonicNowNs() - raw_start < static_cast<int64_t>(seconds * 1e9);
         ++seq) {
      geometry_msgs_msg_dds__Twist_ t{};
      t.angular.z = seq * 1e-3;
      {
        std::lock_guard lock(mu);
        raw_sent_at[seq] = WallNowNs();
      }
      (void)raw_writer->Write(&t);
      ++raw_sent;
      std::this_thread::sleep_for(std::chrono::nanoseconds(static_cast<int64_t>(1e9 / rate)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    raw_stop = true;
    raw_receiver.join();
  }
  std::cout << fmt::format(
      "| command -> robot: append (fsync) -> relay -> rt/<robot>/cmd_vel | {} sent, {} arrived | "
      "p50 {:.2f} ms, p99 {:.2f} ms | raw CycloneDDS hop: p50 {:.2f} ms, p99 {:.2f} ms ({} sent) | "
      "p50 ratio {:.1f} |\n",
      sent, ours.count(), ours.Quantile(0.5) / 1e6, ours.Quantile(0.99) / 1e6,
      raw.Quantile(0.5) / 1e6, raw.Quantile(0.99) / 1e6, raw_sent,
      raw.Quantile(0.5) > 0 ? ours.Quantile(0.5) / raw.Quantile(0.5) : 0.0);
}

double EgressRate(const std::string& doppel, double seconds, int domain) {
  // Before the servers: removed after they stopped, on every way out of the function.
  const doppel::bench::BenchDir temp("dds");
  const std::string& dir = temp.path();
  zmq::socket_t pub(doppel::eventstore::SharedZmqContext(), zmq::socket_type::pub);
  pub.set(zmq::sockopt::sndhwm, 1000);
  pub.bind("tcp://127.0.0.1:0");
  uint64_t received = 0;
  double elapsed = 0;
  {
    Child bridge({doppel, "bridge-dds", "--data", dir + "/log", "--domain", std::to_string(domain),
                  "--robots", "none", "--twin-publish", pub.get(zmq::sockopt::last_endpoint)},
                 true);
    bridge.ReadLine();
    auto participant = dds::Participant::Create(domain);
    auto reader =
        dds::Reader::Create(*participant, &sensor_msgs_msg_dds__JointState__desc,
                            "rt/twin/egress_arm/joint_states", dds::QosSpec{true, false, 1000});
    for (int i = 0; i < 200 && reader->MatchedWriters() == 0; ++i) {
      pub.send(zmq::buffer(std::string("twin/egress_arm")), zmq::send_flags::sndmore);
      pub.send(zmq::buffer(ArmState("egress_arm", 0)), zmq::send_flags::none);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> count{0};
    std::thread taker([&] {
      while (!stop) {
        (void)reader->Take([&](const void*) { ++count; }, std::chrono::milliseconds(20), 4096);
      }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const uint64_t base = count.load();
    const int64_t start = MonotonicNowNs();
    int64_t seq = 1;
    while (MonotonicNowNs() - start < static_cast<int64_t>(seconds * 1e9)) {
      pub.send(zmq::buffer(std::string("twin/egress_arm")), zmq::send_flags::sndmore);
      pub.send(zmq::buffer(ArmState("egress_arm", seq++)), zmq::send_flags::none);
    }
    elapsed = (MonotonicNowNs() - start) / 1e9;
    received = count.load() - base;
    stop = true;
    taker.join();
  }
  return received / elapsed;
}

// ddsperf's own publisher and subscriber (raw CycloneDDS) for `seconds`; the subscriber's
// median per-second rate, samples/s.
double DdsperfRate(double seconds, int domain, int size) {
  // Before the servers: removed after they stopped, on every way out of the function.
  const doppel::bench::BenchDir temp("dds");
  const std::string& dir = temp.path();
  const std::string out = dir + "/sub.txt";
  const std::string d = fmt::format("{:.0f}", seconds + 2);
  const std::string cmd = fmt::format(
      "(ddsperf -D {} -i {} sub > {} 2>&1 &) ; sleep 0.5; ddsperf -D {:.0f} -i {} pub size {} "
      ">/dev/null 2>&1; sleep 2",
      d, domain, out, seconds, domain, size);
  if (std::system(cmd.c_str()) != 0) std::cerr << "dds_bench: ddsperf failed\n";
  std::ifstream in(out);
  std::string line;
  std::vector<double> rates;
  while (std::getline(in, line)) {
    const auto at = line.find(" rate ");
    if (at == std::string::npos) continue;
    const double kps = std::atof(line.c_str() + at + 6);
    if (kps > 0) rates.push_back(kps * 1000);
  }
  if (rates.empty()) return 0;
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

void Egress(const std::string& doppel, double seconds, int domain) {
  const double ours = EgressRate(doppel, seconds, domain);
  const double anchor = DdsperfRate(seconds, domain + 1, 256);
  std::cout << fmt::format(
      "| egress: TwinState -> rt/twin/<robot>/joint_states (+ odom, tf, diagnostics each) | "
      "{:.0f} samples/s | ddsperf pub->sub, 256-byte samples: {:.0f} samples/s | ratio {:.3f} "
      "|\n",
      ours, anchor, anchor > 0 ? ours / anchor : 0.0);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("DDS bridge: ingest and round-trip latency");
  int robots = 100;
  double rate = 100, seconds = 5, latency_rate = 20;
  int domain = 90;
  app.add_option("--robots", robots)->capture_default_str();
  app.add_option("--rate", rate, "Samples/s per robot (ingest)")->capture_default_str();
  app.add_option("--seconds", seconds)->capture_default_str();
  app.add_option("--latency-rate", latency_rate)->capture_default_str();
  app.add_option("--domain", domain, "DDS domain (loopback)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  // ddsperf reads its configuration from CYCLONEDDS_URI: keep it on loopback too, with
  // doppel's own (deploy/dds/loopback.xml, built in; CYCLONEDDS_URI takes XML text as well).
  if (const char* uri = std::getenv("CYCLONEDDS_URI"); uri == nullptr || *uri == '\0') {
    ::setenv("CYCLONEDDS_URI", std::string(dds::LoopbackConfig()).c_str(), 1);
  }
  std::cout << "dds: CycloneDDS on loopback, same machine, same run\n";
  Ingest(DOPPEL_BINARY, robots, rate, seconds, domain);
  Latency(DOPPEL_BINARY, latency_rate, seconds, domain + 1);
  Egress(DOPPEL_BINARY, seconds, domain + 2);
  CommandLatency(DOPPEL_BINARY, latency_rate, seconds, domain + 3);
  return 0;
}
