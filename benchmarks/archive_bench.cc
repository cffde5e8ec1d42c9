// MCAP export and import against their anchors, side by side in one run on one machine.
// Prints one table.
//
//   archive_bench [--events N] [--dir DIR] [--history-only]
//
// Without --dir the files go to a $TMPDIR/doppel-bench-archive-* directory removed at the
// end; --history-only keeps the history for profiling, so it needs --dir.
// History: N events of six robots (60% JointStateObserved of six joints, 40% PoseObserved),
// appended to an embedded log in batches of 1,000 per stream, all streams in flight: doppel's
// own batched append path, which is also the import's anchor.
// Export: `doppel export` of the whole history as ROS topics only (no /doppel/events, no twin
// channels: the same messages the anchor writes), zstd and uncompressed, against @mcap/core's
// McapWriter in Node (benchmarks/node/mcap_write_bench.js) writing as many messages of the
// same shapes, each CDR-encoded in its loop as ours are. Also the full export (JSON events
// and twin channels at 10 Hz), ours alone.
// Import: the zstd file into an empty log, events/s against the batched append above.
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <future>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "bench_support.h"
#include "doppel/archive/mcap_export.h"
#include "doppel/archive/mcap_import.h"
#include "doppel/core/clock.h"
#include "doppel/core/log.h"
#include "doppel/eventstore/event_log.h"
#include "doppel/ros2/observations.h"

namespace {

using namespace doppel;

constexpr int kRobots = 6;
constexpr size_t kBatch = 1000;

[[noreturn]] void Die(const Status& s) {
  std::cerr << "archive_bench: " << s.ToString() << "\n";
  std::exit(1);
}

std::string RobotName(int r) {
  return r < 3 ? fmt::format("sim_arm_{}", r) : fmt::format("sim_base_{}", r - 3);
}

// The history: returns events appended per second.
double MakeHistory(eventstore::EventLog& log, uint64_t events) {
  const TimeNs t0 = WallNowNs() - static_cast<TimeNs>(events) * 1'000'000;
  for (int r = 0; r < kRobots; ++r) {
    eventstore::NewEvent e;
    e.type = "RobotRegistered";
    e.payload = ros2::RobotRegisteredPayload(RobotName(r), "");
    e.occurred_ns = t0;
    if (auto a = log.Append({"robot-" + RobotName(r), eventstore::ExpectedVersion::Any(), {e}});
        !a.ok()) {
      Die(a.status());
    }
  }
  ros2::JointState js;
  js.name = {"shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint",
             "wrist_1_joint",      "wrist_2_joint",       "wrist_3_joint"};
  ros2::Odometry odom;
  odom.header.frame_id = "odom";
  const int64_t start = MonotonicNowNs();
  std::vector<std::vector<eventstore::NewEvent>> pending(kRobots);
  std::vector<std::future<Result<eventstore::AppendResult>>> inflight;
  auto flush = [&](int r) {
    auto done = std::make_shared<std::promise<Result<eventstore::AppendResult>>>();
    inflight.push_back(done->get_future());
    log.AppendAsync(
        {"robot-" + RobotName(r), eventstore::ExpectedVersion::Any(), std::move(pending[r])},
        [done](Result<eventstore::AppendResult> a) { done->set_value(std::move(a)); });
    pending[r].clear();
  };
  for (uint64_t i = 0; i < events; ++i) {
    const int r = static_cast<int>(i % kRobots);
    const double x = static_cast<double>(i) * 1e-4;
    eventstore::NewEvent e;
    e.occurred_ns = t0 + static_cast<TimeNs>(i) * 1'000'000;
    if (i % 5 < 3) {
      js.position = {x, x + 0.1, x + 0.2, x + 0.3, x + 0.4, x + 0.5};
      js.velocity = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6};
      js.effort = {1, 2, 3, 4, 5, 6};
      e.type = "JointStateObserved";
      e.payload = ros2::JointStateObservedPayload(js);
    } else {
      odom.pose.position = {x, 2 * x, 0};
      odom.twist.linear = {0.5, 0, 0};
      e.type = "PoseObserved";
      e.payload = ros2::PoseObservedPayload(odom);
    }
    pending[r].push_back(std::move(e));
    if (pending[r].size() == kBatch) flush(r);
    if (inflight.size() >= 64) {
      for (auto& f : inflight) {
        if (auto a = f.get(); !a.ok()) Die(a.status());
      }
      inflight.clear();
    }
  }
  for (int r = 0; r < kRobots; ++r) {
    if (!pending[r].empty()) flush(r);
  }
  for (auto& f : inflight) {
    if (auto a = f.get(); !a.ok()) Die(a.status());
  }
  return events / ((MonotonicNowNs() - start) / 1e9);
}

struct Figure {
  double messages_per_s = 0, seconds = 0;
  uint64_t messages = 0, bytes = 0;
};

Figure Export(const eventstore::EventStore& store, const std::string& out,
              mcap::Compression compression, bool ros_only) {
  archive::ExportOptions o;
  o.window.from = 0;
  o.out = out;
  o.compression = compression;
  if (ros_only) {
    o.events_channel = false;
    o.twin_period_ns = 0;
  }
  const int64_t start = MonotonicNowNs();
  auto r = archive::ExportMcap(store, o);
  if (!r.ok()) Die(r.status());
  const double s = (MonotonicNowNs() - start) / 1e9;
  return {r->messages / s, s, r->messages, r->bytes};
}

Figure NodeAnchor(uint64_t messages, const std::string& compression, const std::string& out) {
  const std::string cmd = fmt::format("node {} --messages {} --compression {} --out {}",
                                      DOPPEL_NODE_MCAP_WRITER, messages, compression, out);
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) Die(Status::IOError("cannot run node"));
  std::string text;
  char buf[4096];
  while (std::fgets(buf, sizeof(buf), p)) text += buf;
  if (::pclose(p) != 0) Die(Status::IOError("node anchor failed: " + text));
  auto j = nlohmann::json::parse(text.substr(text.rfind('{')));
  return {j["messages_per_s"].get<double>(), j["seconds"].get<double>(),
          j["messages"].get<uint64_t>(), j["bytes"].get<uint64_t>()};
}

std::unique_ptr<eventstore::EventLog> OpenLog(const std::string& dir) {
  std::filesystem::remove_all(dir);
  auto log = eventstore::EventLog::Open(dir);
  if (!log.ok()) Die(log.status());
  return std::move(log).value();
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t events = 1'000'000;
  std::string dir;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--events") events = std::stoull(argv[i + 1]);
    if (flag == "--dir") dir = argv[i + 1];
  }
  const bool history_only = argc > 1 && std::string(argv[argc - 1]) == "--history-only";
  if (history_only && dir.empty()) {
    // The history is kept for profiling, so it needs a place the user chose and will remove.
    std::cerr << "archive_bench: --history-only keeps the history: give --dir DIR\n";
    return 2;
  }
  log::SetLevel(log::Level::kWarn);
  // Without --dir, a directory of its own that goes however the run ends (BenchDir).
  std::optional<bench::BenchDir> temp;
  if (dir.empty()) dir = temp.emplace("archive").path();
  std::filesystem::create_directories(dir);
  auto log = OpenLog(dir + "/history");
  const double append_rate = MakeHistory(*log, events);
  if (history_only) {  // for profiling `doppel export` / `import` on the same history
    std::cout << fmt::format("{} events in {}/history ({:.0f} appended/s)\n", events, dir,
                             append_rate);
    return 0;
  }

  const Figure zstd = Export(*log, dir + "/ros-zstd.mcap", mcap::Compression::kZstd, true);
  const Figure none = Export(*log, dir + "/ros-none.mcap", mcap::Compression::kNone, true);
  const Figure full = Export(*log, dir + "/full-zstd.mcap", mcap::Compression::kZstd, false);
  const Figure node_zstd = NodeAnchor(zstd.messages, "zstd", dir + "/node-zstd.mcap");
  const Figure node_none = NodeAnchor(none.messages, "none", dir + "/node-none.mcap");

  auto target = OpenLog(dir + "/imported");
  archive::ImportOptions io;
  io.file = dir + "/ros-zstd.mcap";
  const int64_t start = MonotonicNowNs();
  auto imported = archive::ImportMcap(*target, io);
  if (!imported.ok()) Die(imported.status());
  const double import_rate = imported->appended / ((MonotonicNowNs() - start) / 1e9);

  auto row = [](std::string_view what, double ours, double anchor, std::string_view anchor_name) {
    std::cout << fmt::format("| {:<38} | {:>12.0f} | {:>12.0f} | {:>6.2f}x | {} |\n", what, ours,
                             anchor, anchor > 0 ? ours / anchor : 0.0, anchor_name);
  };
  std::cout << fmt::format("\nMCAP export and import, {} events of {} robots\n\n", events, kRobots);
  std::cout << "| measure                                |         ours |       anchor |  ratio | "
               "anchor |\n"
               "|----------------------------------------|--------------|--------------|--------|--"
               "------|\n";
  row("export zstd, messages/s", zstd.messages_per_s, node_zstd.messages_per_s,
      "@mcap/core McapWriter (node)");
  // MB/s of message data: each writer's uncompressed file size over its time (compressed files
  // differ in size, the data written does not).
  const double ours_data = none.bytes / 1e6, node_data = node_none.bytes / 1e6;
  row("export zstd, MB/s of message data", ours_data / zstd.seconds, node_data / node_zstd.seconds,
      "@mcap/core McapWriter (node)");
  row("export none, messages/s", none.messages_per_s, node_none.messages_per_s,
      "@mcap/core McapWriter (node)");
  row("export none, MB/s of message data", ours_data / none.seconds, node_data / node_none.seconds,
      "@mcap/core McapWriter (node)");
  row("import zstd, events/s", import_rate, append_rate, "doppel batched append (1,000/stream)");
  std::cout << fmt::format(
      "\nfull export (ROS topics + /doppel/events JSON + twin channels at 10 Hz, zstd): {:.0f} "
      "messages/s, {} messages, {:.1f} MB\n",
      full.messages_per_s, full.messages, full.bytes / 1e6);
  std::cout << fmt::format(
      "files: ours zstd {:.1f} MB / node {:.1f} MB; ours none {:.1f} MB / node {:.1f} MB\n",
      zstd.bytes / 1e6, node_zstd.bytes / 1e6, none.bytes / 1e6, node_none.bytes / 1e6);
  target.reset();  // closed before their files go
  log.reset();
  std::filesystem::remove_all(dir);
  return 0;
}
