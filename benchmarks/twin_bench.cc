// Twin figures, each beside an anchor measured in the same run:
// - apply throughput for joint-state events on one core, against a bare FlatBuffers fold
//   (read the payload, copy the positions: the least any fold must do);
// - rebuild of R robots x E events from snapshots and from the first event (on RocksDB);
// - prediction cost of a 2 s horizon for the arm and the base, against stepping an empty
//   ODE world for the same number of steps;
// - CPU used by 100 robots predicted at 10 Hz.
//
//   twin_bench [--robots R] [--events E] [--seconds S]
#include <fmt/format.h>
#include <sys/resource.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <thread>

#include "bench_support.h"
#include "doppel/core/clock.h"
#include "doppel/core/log.h"
#include "doppel/eventstore/event_log.h"
#include "doppel/schemas/robot_events_generated.h"
#include "doppel/twins/ode_world.h"
#include "doppel/twins/predictor.h"
#include "doppel/twins/robot_aggregate.h"

namespace {

using namespace doppel;

std::string JointPayload(const std::vector<std::string>& names, double v) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<double> q(names.size()), qd(names.size(), 0.1), e(names.size(), 1.0);
  for (size_t i = 0; i < q.size(); ++i) q[i] = v + i * 0.01;
  auto n = fbb.CreateVectorOfStrings(names);
  fbb.Finish(events::CreateJointStateObserved(fbb, n, fbb.CreateVector(q), fbb.CreateVector(qd),
                                              fbb.CreateVector(e)));
  return std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
}

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  int robots = 1000, events_per_robot = 1000;
  double seconds = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--robots") robots = std::atoi(argv[i + 1]);
    if (flag == "--events") events_per_robot = std::atoi(argv[i + 1]);
    if (flag == "--seconds") seconds = std::atof(argv[i + 1]);
  }
  log::SetLevel(log::Level::kWarn);
  const auto arm =
      std::make_shared<const twins::RobotModel>(*twins::RobotModel::Builtin("doppel_arm6"));
  const auto base =
      std::make_shared<const twins::RobotModel>(*twins::RobotModel::Builtin("doppel_base"));
  const schemas::Upcasters upcasters;
  std::cout << fmt::format("| {:<58} | {:>14} | {:<40} | {:>14} | {:>7} |\n", "doppel twins",
                           "figure", "anchor", "figure", "ratio");
  std::cout << fmt::format("|{:-<60}|{:-<16}|{:-<42}|{:-<16}|{:-<9}|\n", "", "", "", "", "");
  auto row = [](std::string name, double ours, std::string unit, std::string anchor,
                double theirs) {
    std::cout << fmt::format(
                     "| {:<58} | {:>10.0f} {:<3} | {:<40} | {:>10.0f} {:<3} | {:>6.2f}x |\n", name,
                     ours, unit, anchor, theirs, unit, theirs > 0 ? ours / theirs : 0)
              << std::flush;
  };

  // 1. Apply throughput, one core.
  {
    std::vector<eventstore::RecordedEvent> events;
    for (int i = 0; i < 1000; ++i) {
      flatbuffers::FlatBufferBuilder fbb;
      const fb::Uuid id = schemas::ToFb(EventId::Random());
      const std::string payload = JointPayload(arm->joint_names(), i * 0.001);
      auto envelope = fb::CreateEventEnvelope(
          fbb, &id, fbb.CreateString("robot-bench"), static_cast<uint64_t>(i),
          static_cast<uint64_t>(i), fbb.CreateString("JointStateObserved"), 1, 1, nullptr, nullptr,
          1, fbb.CreateVector(reinterpret_cast<const uint8_t*>(payload.data()), payload.size()));
      fbb.Finish(envelope);
      events.push_back(*eventstore::RecordedEvent::FromBytes(
          std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize())));
    }
    twins::RobotState state;
    twins::Apply(state, events[0], *arm, upcasters);
    const int rounds = 2000;
    int64_t t0 = MonotonicNowNs();
    for (int r = 0; r < rounds; ++r) {
      for (const auto& e : events) twins::Apply(state, e, *arm, upcasters);
    }
    const double ours = rounds * events.size() / ((MonotonicNowNs() - t0) / 1e9);
    std::vector<double> q(6);
    double sink = 0;
    t0 = MonotonicNowNs();
    for (int r = 0; r < rounds; ++r) {
      for (const auto& e : events) {
        const auto* js = flatbuffers::GetRoot<events::JointStateObserved>(e.payload().data());
        for (uint32_t i = 0; i < js->position()->size() && i < q.size(); ++i)
          q[i] = js->position()->Get(i);
        sink += q[0];
      }
    }
    const double anchor = rounds * events.size() / ((MonotonicNowNs() - t0) / 1e9);
    row("apply JointStateObserved (6 joints), one core", ours, "/s", "bare FlatBuffers fold",
        anchor);
    if (sink == 42) std::cout << "";
  }

  // 2. Rebuild R robots x E events: from snapshots vs from the first event.
  {
    const bench::BenchDir temp("twin");  // removed on every way out of this block
    const std::string dir = temp.Sub("log");
    eventstore::EventLogOptions options;
    options.sync = false;  // loading the fixture only; the rebuild is what is measured
    auto log = eventstore::EventLog::Open(dir, options);
    if (!log.ok()) {
      std::cerr << log.status().ToString() << "\n";
      return 1;
    }
    const std::string payload = JointPayload(arm->joint_names(), 0.5);
    log::Progress progress("bench", "loading robots", static_cast<uint64_t>(robots));
    for (int r = 0; r < robots; ++r) {
      for (int done = 0; done < events_per_robot;) {
        eventstore::AppendRequest req{
            fmt::format("robot-{}", r), eventstore::ExpectedVersion::Any(), {}};
        for (int k = 0; k < 500 && done < events_per_robot; ++k, ++done) {
          eventstore::NewEvent e;
          e.type = "JointStateObserved";
          e.payload = payload;
          req.events.push_back(std::move(e));
        }
        (*log)->AppendAsync(std::move(req), [](Result<eventstore::AppendResult>) {});
      }
      progress.Update(static_cast<uint64_t>(r));
    }
    // Appends commit in queue order: once this one is back, everything before it is in.
    eventstore::NewEvent last;
    last.type = "JointStateObserved";
    last.payload = payload;
    if (auto r = (*log)->Append({"robot-sync", eventstore::ExpectedVersion::Any(), {last}});
        !r.ok()) {
      std::cerr << r.status().ToString() << "\n";
      return 1;
    }
    int64_t t0 = MonotonicNowNs();
    for (int r = 0; r < robots; ++r) {
      auto s = twins::Rebuild(**log, std::to_string(r), *arm, upcasters);
      if (!s.ok() || s->stream_version != events_per_robot - 1) {
        std::cerr << "rebuild failed\n";
        return 1;
      }
      (void)(*log)->SaveSnapshot({fmt::format("robot-{}", r),
                                  static_cast<uint64_t>(s->stream_version),
                                  twins::kSnapshotSchemaVersion, 0, twins::EncodeState(*s)});
    }
    const double from_first = (MonotonicNowNs() - t0) / 1e9;
    t0 = MonotonicNowNs();
    for (int r = 0; r < robots; ++r) {
      twins::RebuildStats stats;
      auto s = twins::Rebuild(**log, std::to_string(r), *arm, upcasters, &stats);
      if (!s.ok() || !stats.from_snapshot) {
        std::cerr << "snapshot rebuild failed\n";
        return 1;
      }
    }
    const double from_snapshots = (MonotonicNowNs() - t0) / 1e9;
    std::cout << fmt::format("| {:<58} | {:>10.3f} s   | {:<40} | {:>10.3f} s   | {:>6.2f}x |\n",
                             fmt::format("rebuild {} robots x {} events from snapshots", robots,
                                         events_per_robot),
                             from_snapshots, "the same from the first event", from_first,
                             from_first / from_snapshots)
              << std::flush;
    log->reset();  // closed before its directory goes
  }

  // 3. Prediction cost, 2 s horizon at 1 ms steps.
  auto scene = std::make_shared<twins::Scene>(*twins::Scene::FromJson(
      R"({"obstacles":[{"name":"wall","type":"wall","from":[3,-3],"to":[3,3]},
                       {"name":"rack","type":"box","size":[1,0.5,2],"position":[-2,1,1]},
                       {"name":"pillar","type":"cylinder","radius":0.2,"height":3,"position":[0,3,1.5]}]})"));
  twins::PredictionRequest arm_request;
  arm_request.joint_positions.assign(6, 0.1);
  arm_request.command = twins::PredictionRequest::Command::kJointTargets;
  arm_request.joint_targets = {1.0, 0.8, -0.6, 0.3, 0.2, 0.1};
  twins::PredictionRequest base_request;
  base_request.command = twins::PredictionRequest::Command::kVelocity;
  base_request.linear = Eigen::Vector3d(0.8, 0, 0);
  base_request.angular = Eigen::Vector3d(0, 0, 0.3);
  double empty_ms = 0;
  {
    const int64_t t0 = MonotonicNowNs();
    for (int k = 0; k < 20; ++k) {
      twins::OdeWorld world;
      auto body = world.AddBody(Eigen::Isometry3d::Identity(), 1, Eigen::Vector3d::Zero(),
                                Eigen::Matrix3d::Identity() * 0.01);
      (void)body;
      for (int s = 0; s < 2000; ++s) world.Step(0.001);
    }
    empty_ms = (MonotonicNowNs() - t0) / 1e6 / 20;
  }
  double arm_ms = 0, base_ms = 0;
  for (auto [name, model, request, out] :
       {std::tuple{"arm (6 hinges, motors)", arm, &arm_request, &arm_ms},
        std::tuple{"base (kinematic, 3 obstacles)", base, &base_request, &base_ms}}) {
    twins::Predictor predictor(model, scene);
    const int n = 20;
    const int64_t t0 = MonotonicNowNs();
    for (int k = 0; k < n; ++k) (void)predictor.Predict(*request);
    *out = (MonotonicNowNs() - t0) / 1e6 / n;
    std::cout << fmt::format("| {:<58} | {:>9.0f}x rt | {:<40} | {:>9.0f}x rt | {:>6.2f}x |\n",
                             fmt::format("predict 2 s ahead, {}: {:.2f} ms", name, *out),
                             2000.0 / *out,
                             fmt::format("empty ODE world, 2000 steps: {:.2f} ms", empty_ms),
                             2000.0 / empty_ms, empty_ms / *out)
              << std::flush;
  }

  // 4. CPU for 100 robots (half arms, half bases) predicted at 10 Hz.
  {
    twins::Predictor arm_predictor(arm, scene), base_predictor(base, scene);
    const double cpu0 = CpuSeconds();
    const int64_t t0 = MonotonicNowNs();
    int64_t next = t0;
    while (MonotonicNowNs() - t0 < seconds * 1e9) {
      for (int r = 0; r < 100; ++r) {
        (void)(r % 2 ? arm_predictor.Predict(arm_request) : base_predictor.Predict(base_request));
      }
      next += 100'000'000;
      const int64_t wait = next - MonotonicNowNs();
      if (wait > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(wait));
    }
    const double wall = (MonotonicNowNs() - t0) / 1e9;
    const double cores = (CpuSeconds() - cpu0) / wall;
    std::cout << fmt::format("| {:<58} | {:>8.2f} cores | {:<40} | {:>8.2f} cores | {:>6.2f}x |\n",
                             "100 robots predicted at 10 Hz (target < 1 core)", cores, "one core",
                             1.0, cores)
              << std::flush;
  }
  return 0;
}
