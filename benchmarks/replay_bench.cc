// Replay against its anchors, side by side in one run on one machine. Prints one table.
//
//   replay_bench [--robots R] [--events E] [--seeks N] [--snapshot-every S] [--dir DIR]
//
// History: R robots x E events each (JointStateObserved of six joints; every tenth robot a
// base with PoseObserved), appended in batches, then each robot folded as its twin does and
// snapshotted every S events (default: the twin service's own policy), which the store keeps
// as a history. --snapshot-every 0: no snapshots (history written with no twin running).
// - Seek: time until the complete state at a random T is out (the fleet folded to T: what a
//   replay client gets after a seek), p50/p99 over N seeks; anchor: reading $all from the
//   window's start up to T, which a player without state restore must do to reach T.
// - Replay at --max: events/s handed out by the player (each folded into its robot, then
//   visited) against a plain $all read of the same window.
// - 100 robots at 50 Hz replayed at 100x through the replay clock: events skipped (target 0)
//   and time spent holding the clock back (buffering).
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <future>
#include <iostream>
#include <optional>
#include <random>

#include "bench_support.h"
#include "doppel/core/clock.h"
#include "doppel/core/log.h"
#include "doppel/eventstore/event_log.h"
#include "doppel/replay/fleet_state.h"
#include "doppel/replay/player.h"
#include "doppel/replay/replay_clock.h"
#include "doppel/ros2/observations.h"
#include "doppel/twins/robot_aggregate.h"
#include "doppel/twins/twin_service.h"

namespace {

using namespace doppel;

[[noreturn]] void Die(const Status& s) {
  std::cerr << "replay_bench: " << s.ToString() << "\n";
  std::exit(1);
}

// Appends `events` per robot round-robin; returns [first recorded, last recorded].
std::pair<TimeNs, TimeNs> MakeHistory(eventstore::EventLog& log, int robots, int events,
                                      int per_batch) {
  ros2::JointState js;
  js.name = {"j1", "j2", "j3", "j4", "j5", "j6"};
  ros2::Odometry odom;
  TimeNs first = 0, last = 0;
  std::vector<std::future<Result<eventstore::AppendResult>>> inflight;
  for (int r = 0; r < robots; ++r) {
    eventstore::NewEvent e;
    e.type = "RobotRegistered";
    e.payload = ros2::RobotRegisteredPayload(fmt::format("r{}", r), "");
    if (auto a = log.Append({fmt::format("robot-r{}", r), eventstore::ExpectedVersion::Any(), {e}});
        !a.ok()) {
      Die(a.status());
    } else if (first == 0) {
      first = a->recorded_ns;
    }
  }
  for (int i = 0; i < events; i += per_batch) {
    for (int r = 0; r < robots; ++r) {
      std::vector<eventstore::NewEvent> batch;
      for (int k = i; k < std::min(events, i + per_batch); ++k) {
        eventstore::NewEvent e;
        e.occurred_ns = WallNowNs();
        const double x = k * 1e-3 + r;
        if (r % 10 == 0 && k % 2 == 1) {
          odom.pose.position = {x, 0, 0};
          e.type = "PoseObserved";
          e.payload = ros2::PoseObservedPayload(odom);
        } else {
          js.position = {x, x, x, x, x, x};
          e.type = "JointStateObserved";
          e.payload = ros2::JointStateObservedPayload(js);
        }
        batch.push_back(std::move(e));
      }
      auto done = std::make_shared<std::promise<Result<eventstore::AppendResult>>>();
      inflight.push_back(done->get_future());
      log.AppendAsync(
          {fmt::format("robot-r{}", r), eventstore::ExpectedVersion::Any(), std::move(batch)},
          [done](Result<eventstore::AppendResult> a) { done->set_value(std::move(a)); });
      if (inflight.size() >= 64) {
        for (auto& f : inflight) {
          auto a = f.get();
          if (!a.ok()) Die(a.status());
          last = std::max(last, a->recorded_ns);
        }
        inflight.clear();
      }
    }
  }
  for (auto& f : inflight) {
    auto a = f.get();
    if (!a.ok()) Die(a.status());
    last = std::max(last, a->recorded_ns);
  }
  return {first, last};
}

// What the twin service does while the history is recorded: folds each robot's events and
// saves a snapshot every `every` of them. Returns the number of snapshots saved.
uint64_t SnapshotAsTwinsDo(eventstore::EventLog& log, int robots, uint64_t every) {
  const twins::RobotModel generic = twins::RobotModel::Generic("generic", {});
  schemas::Upcasters upcasters;
  uint64_t saved = 0;
  for (int r = 0; r < robots; ++r) {
    const std::string stream = fmt::format("robot-r{}", r);
    twins::RobotState state;
    state.robot_id = fmt::format("r{}", r);
    eventstore::StreamVersion next = 0;
    uint64_t since = 0;
    for (;;) {
      auto page = log.ReadStream(stream, next, eventstore::Direction::kForward, 1024);
      if (!page.ok()) Die(page.status());
      for (const auto& e : page->events) {
        twins::Apply(state, e, generic, upcasters);
        if (++since >= every) {
          since = 0;
          if (Status s = log.SaveSnapshot({stream, e.version(), twins::kSnapshotSchemaVersion, 0,
                                           twins::EncodeState(state)});
              !s.ok()) {
            Die(s);
          }
          ++saved;
        }
      }
      if (page->end || page->events.empty()) break;
      next = page->next;
    }
  }
  return saved;
}

double Quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))];
}

}  // namespace

int main(int argc, char** argv) {
  int robots = 1000, events = 10000, seeks = 20;
  uint64_t snapshot_every = twins::TwinServiceOptions{}.snapshot_every_events;
  std::string dir;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--robots") robots = std::stoi(argv[i + 1]);
    if (flag == "--events") events = std::stoi(argv[i + 1]);
    if (flag == "--seeks") seeks = std::stoi(argv[i + 1]);
    if (flag == "--dir") dir = argv[i + 1];
    if (flag == "--snapshot-every") snapshot_every = std::stoull(argv[i + 1]);
  }
  log::SetLevel(log::Level::kWarn);
  // Without --dir, a directory of its own that goes however the run ends (BenchDir).
  std::optional<bench::BenchDir> temp;
  if (dir.empty()) dir = temp.emplace("replay").path();
  std::filesystem::remove_all(dir + "/fleet");
  std::filesystem::remove_all(dir + "/fast");
  auto log = std::move(eventstore::EventLog::Open(dir + "/fleet").value());
  const int64_t t0 = MonotonicNowNs();
  const auto [from, to] = MakeHistory(*log, robots, events, 10);
  const double make_s = (MonotonicNowNs() - t0) / 1e9;
  const int64_t t1 = MonotonicNowNs();
  const uint64_t snapshots = snapshot_every ? SnapshotAsTwinsDo(*log, robots, snapshot_every) : 0;
  const double snapshot_s = (MonotonicNowNs() - t1) / 1e9;
  replay::Window window{from, to, "*", {}};

  // Seeks.
  std::mt19937_64 rng(42);
  std::vector<double> seek_ms, read_ms;
  for (int i = 0; i < seeks; ++i) {
    const TimeNs t = from + static_cast<TimeNs>(rng() % static_cast<uint64_t>(to - from));
    int64_t s = MonotonicNowNs();
    auto fleet = replay::FleetState::At(*log, window, t);
    if (!fleet.ok()) Die(fleet.status());
    seek_ms.push_back((MonotonicNowNs() - s) / 1e6);
    s = MonotonicNowNs();
    auto start = log->PositionAtTime(from);
    uint64_t next = *start;
    for (;;) {
      auto page = log->ReadAll(next, 4096, t);
      if (!page.ok()) Die(page.status());
      next = page->next;
      if (page->end || page->events.empty()) break;
    }
    read_ms.push_back((MonotonicNowNs() - s) / 1e6);
  }

  // The whole window at --max, three times each, alternating with the anchor; the medians.
  std::vector<double> play_rates, read_rates;
  uint64_t played = 0, read = 0;
  for (int round = 0; round < 3; ++round) {
    replay::Player player(*log, window);
    if (Status st = player.Open(); !st.ok()) Die(st);
    int64_t s = MonotonicNowNs();
    played = 0;
    for (;;) {
      // As the gateway's replay session takes them: each event visited in place, the fleet
      // folded to it.
      auto n = player.Next(to, 4096, [&](const eventstore::RecordedEvent&) {});
      if (!n.ok()) Die(n.status());
      played += *n;
      if (*n == 0 && player.AtEnd()) break;
    }
    play_rates.push_back(played / ((MonotonicNowNs() - s) / 1e9));
    s = MonotonicNowNs();
    read = 0;
    uint64_t next = *log->PositionAtTime(from);
    for (;;) {
      auto page = log->ReadAll(next, 4096, to);
      if (!page.ok()) Die(page.status());
      read += page->events.size();
      next = page->next;
      if (page->end || page->events.empty()) break;
    }
    read_rates.push_back(read / ((MonotonicNowNs() - s) / 1e9));
  }
  if (played != read) {
    Die(Status::Corruption(fmt::format("the player handed out {} events of {}", played, read)));
  }

  // 100 robots at 50 Hz, 10 s of history, replayed at 100x on the replay clock.
  auto fast = std::move(eventstore::EventLog::Open(dir + "/fast").value());
  TimeNs ffrom = 0, fto = 0;
  {
    ros2::JointState js;
    js.name = {"j1"};
    for (int step = 0; step < 500; ++step) {  // 10 s at 50 Hz, paced
      const int64_t due = MonotonicNowNs() + 20'000'000;
      for (int r = 0; r < 100; ++r) {
        js.position = {step * 0.01};
        eventstore::NewEvent e;
        e.type = "JointStateObserved";
        e.payload = ros2::JointStateObservedPayload(js);
        auto a =
            fast->Append({fmt::format("robot-f{}", r), eventstore::ExpectedVersion::Any(), {e}});
        if (!a.ok()) Die(a.status());
        if (ffrom == 0) ffrom = a->recorded_ns;
        fto = a->recorded_ns;
      }
      while (MonotonicNowNs() < due) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
  replay::Player paced(*fast, replay::Window{ffrom, fto, "*", {}});
  if (Status st = paced.Open(); !st.ok()) Die(st);
  replay::ReplayClock clock(ffrom);
  (void)clock.SetSpeed(100, MonotonicNowNs());
  clock.Play(MonotonicNowNs());
  uint64_t delivered = 0;
  int64_t held_ns = 0;
  const int64_t p0 = MonotonicNowNs();
  while (!paced.AtEnd() || paced.time() < fto) {
    const int64_t now = MonotonicNowNs();
    const TimeNs target = std::min(clock.Now(now), fto);
    auto page = paced.Next(target, 2000);  // a consumer taking 2,000 events per 1 ms tick
    if (!page.ok()) Die(page.status());
    delivered += page->size();
    auto next = paced.NextTime();
    if (next.ok() && *next <= target) {
      clock.Set(paced.time(), now);  // behind: hold the clock (buffering)
      held_ns += 1'000'000;
    }
    if (paced.AtEnd() && target >= fto) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const double paced_s = (MonotonicNowNs() - p0) / 1e9;
  const uint64_t expected = 100 * 500;

  std::cout << fmt::format(
      "\nReplay: {} robots x {} events ({} events, history made in {:.1f} s); {} snapshots, one "
      "every {} events of a robot as its twin saves them ({:.1f} s)\n\n",
      robots, events, static_cast<uint64_t>(robots) * events, make_s, snapshots, snapshot_every,
      snapshot_s);
  std::cout << "| measure                                   |         ours |       anchor |  ratio "
               "| anchor |\n"
               "|-------------------------------------------|--------------|--------------|--------"
               "|--------|\n";
  auto row = [](std::string_view what, double ours, double anchor, std::string_view name) {
    std::cout << fmt::format("| {:<41} | {:>12.1f} | {:>12.1f} | {:>5.2f}x | {} |\n", what, ours,
                             anchor, anchor > 0 ? ours / anchor : 0.0, name);
  };
  row("seek: complete state at T, p50 ms", Quantile(seek_ms, 0.5), Quantile(read_ms, 0.5),
      "read $all from the window start to T");
  row("seek: complete state at T, p99 ms", Quantile(seek_ms, 0.99), Quantile(read_ms, 0.99),
      "read $all from the window start to T");
  row("replay at --max, events/s (folded)", Quantile(play_rates, 0.5), Quantile(read_rates, 0.5),
      "plain $all read of the window");
  std::cout << fmt::format(
      "\n100 robots at 50 Hz, {:.1f} s of history replayed at 100x: {} of {} events delivered ({} "
      "skipped), "
      "{:.2f} s of wall time, clock held back {:.0f} ms\n",
      (fto - ffrom) / 1e9, delivered, expected, expected - delivered, paced_s, held_ns / 1e6);
  fast.reset();
  log.reset();
  std::filesystem::remove_all(dir);
  return 0;
}
