// MCAP import: a robot's own rosbag2 recording (or any conformant MCAP file) into the store,
// as the DDS ingest would have recorded the same messages live.
//
//   sensor_msgs/msg/JointState            -> JointStateObserved
//   nav_msgs/msg/Odometry                 -> PoseObserved
//   geometry_msgs/msg/Twist on */cmd_vel  -> CommandIssued (issued_by "import")
//   diagnostic_msgs/msg/DiagnosticArray   -> FaultRaised / FaultCleared (per status name)
// Occurred time = the header stamp (a Twist has none: the message's publish time). The robot
// comes from the topic: `/<robot>/<leaf>` by default, the first group of
// `robot_from_topic`, or `robot` for every topic of a single-robot recording. A robot new to
// the store is registered first (RobotRegistered, generic model).
//
// Idempotent: event ids are derived from the file's content hash (BLAKE2b), the channel's topic
// and the message's ordinal in the file, and events are appended in batches fixed by the
// file (per chunk and stream), so importing a file again appends nothing and an interrupted
// import resumes where it stopped. Messages of other types are counted per schema, never
// guessed at. A chunk that fails its CRC, its framing or its decompression ends the import
// with an error naming it and its offset; nothing of it is appended (chunks before it are).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>

#include "doppel/eventstore/event_store.h"

namespace doppel::archive {

struct ImportOptions {
  std::string file;
  std::string robots = "*";      // glob: robots to import
  std::string robot_from_topic;  // RE2 regex, searched in each topic; group 1 names the robot
  std::string robot;             // every mapped topic belongs to this robot
  std::function<void(uint64_t done, uint64_t total)> progress;  // bytes of the file
};

struct ImportReport {
  uint64_t messages = 0;    // messages in the file
  uint64_t appended = 0;    // events appended now
  uint64_t duplicates = 0;  // events already in the store (an earlier import of the file)
  uint64_t registered = 0;  // robots registered now
  uint64_t bad = 0;         // messages refused by the value rules or undecodable
  std::map<std::string, uint64_t> skipped_types;    // by schema name
  std::map<std::string, uint64_t> unmapped_topics;  // known type, no robot to file it under
  std::set<std::string> robots;
  std::string file_hash;  // hex BLAKE2b-128 of the file's bytes
};

// InvalidArgument for a robot_from_topic RE2 refuses or without a group; the reader's
// Corruption/InvalidArgument for a damaged file (with `partial` holding what was appended
// before it, when given).
Result<ImportReport> ImportMcap(eventstore::EventStore& store, const ImportOptions& options,
                                ImportReport* partial = nullptr);

}  // namespace doppel::archive
