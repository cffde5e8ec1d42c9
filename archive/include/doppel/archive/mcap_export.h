// MCAP export: a window of the fleet's history as a file Foxglove, Lichtblick and `ros2 bag`
// open (profile `ros2`, as rosbag2 writes it), with doppel's own channels beside the ROS ones.
//
// Channels (created as first used):
//   /<robot>/joint_states        sensor_msgs/msg/JointState  one per JointStateObserved
//   /<robot>/odom                nav_msgs/msg/Odometry       one per PoseObserved
//   /<robot>/cmd_vel             geometry_msgs/msg/Twist     one per velocity CommandIssued
//   /diagnostics                 diagnostic_msgs/msg/DiagnosticArray  faults raised/cleared
//   /twin/<robot>/joint_states   sensor_msgs/msg/JointState  the twin's folded joints   (*)
//   /tf                          tf2_msgs/msg/TFMessage      the twin's links in `map` (*)
//   /tf_static                   tf2_msgs/msg/TFMessage      map -> <robot>/odom, once
//   /twin/<robot>/predicted_path nav_msgs/msg/Path           one per PredictionMade
//   /doppel/events               json (jsonschema)           every event of the window
//   /doppel/twin_state/<robot>   flatbuffer (.bfbs)          TwinState                (*)
// (*) after observations, at most once per `twin_period_ns` of recorded time per robot.
// ROS messages are CDR, schemas ros2msg with their dependencies, channel metadata
// `offered_qos_profiles`. log_time = recorded time, publish_time = occurred time; messages
// in timeline order (recorded time, ties by position).
//
// The file opens with complete state: before the window's first message, every state topic's
// latest value before `from` (the fleet folded to just before `from`, as `doppel state --at`),
// each at the recorded time of the event it comes from, as `mcap filter -l` keeps latched
// messages. Metadata: `doppel.export` (provenance) and one `doppel.incident` per alert, fault
// raised and robot gone silent in the window.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "doppel/eventstore/event_store.h"
#include "doppel/mcap/compression.h"
#include "doppel/replay/window.h"

namespace doppel::archive {

struct ExportOptions {
  replay::Window window;
  std::string out;  // the .mcap file: created, or replaced if a regular file (output_file.h)
  mcap::Compression compression = mcap::Compression::kZstd;
  uint64_t chunk_size = 4 << 20;
  int64_t twin_period_ns = 100'000'000;  // 0: no twin channels
  bool events_channel = true;            // /doppel/events
  std::string source;  // where the events come from, for provenance ("--data DIR", endpoint)
  // Called every few thousand events: log positions done so far of the window's span.
  std::function<void(uint64_t done, uint64_t total)> progress;
};

struct ExportReport {
  uint64_t events = 0;    // window events exported (each once on /doppel/events)
  uint64_t messages = 0;  // every message written, latched ones included
  uint64_t latched = 0;   // messages of the opening state
  uint64_t robots = 0;
  uint64_t incidents = 0;
  uint64_t bytes = 0;
  uint64_t first_position = 0, last_position = 0;  // of the exported events (0, 0 if none)
  std::map<std::string, uint64_t> topics;          // messages per topic
};

// Writes the window to options.out (through a temporary file renamed at the end, so a failed
// export never leaves a half file under that name). InvalidArgument, before anything is
// written, when options.out (or its .partial) exists and is not a regular file.
Result<ExportReport> ExportMcap(const eventstore::EventStore& store, const ExportOptions& options);

}  // namespace doppel::archive
