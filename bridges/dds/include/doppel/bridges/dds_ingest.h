// DdsIngest: live robot state in from ROS 2. Watches DDS publication discovery for robots
// publishing rt/<robot>/joint_states, rt/<robot>/odom, rt/<robot>/cmd_vel and
// rt/<robot>/diagnostics (ROS 2 types; a status going to WARN/ERROR is FaultRaised, back to OK
// FaultCleared),
// registers each new robot once, and turns samples into events on robot-<robot>:
// JointStateObserved, PoseObserved, CommandIssued (source stamp = occurred time). Samples are
// batched into one append per robot per turn and decimated per robot and topic to at most
// max_rate_hz; every sample is either appended, decimated or rejected as bad (NaN, arrays
// that disagree with the joint names), and each of those is counted.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "doppel/eventstore/event_store.h"

namespace doppel::dds {

struct IngestOptions {
  uint32_t domain = 0;
  std::string robots = "*";  // robot name pattern (fnmatch glob)
  double max_rate_hz = 100;  // per robot and topic; 0 = no limit
  // Which model a new robot registers with: the first (glob, model) whose glob matches its
  // name. A robot matching none registers without a model (generic: tracked, no physics).
  std::vector<std::pair<std::string, std::string>> models;
  // Robots this ingest takes on; topics of further robots are ignored (counted in
  // robots_refused, logged at a bounded rate) so a flood of fake names cannot grow the fleet.
  size_t max_robots = 10000;
};

class DdsIngest {
 public:
  // `store` must outlive the ingest.
  static Result<std::unique_ptr<DdsIngest>> Start(eventstore::EventStore& store,
                                                  IngestOptions options);
  ~DdsIngest();

  // The topic kinds read per robot, in the order of Counters::kinds.
  static constexpr std::array<std::string_view, 5> kKindNames = {"joint_states", "odom", "cmd_vel",
                                                                 "diagnostics", "mode"};
  struct KindCounters {
    uint64_t samples = 0;
    uint64_t appended = 0;
    uint64_t decimated = 0;
    uint64_t bad = 0;
  };

  struct Counters {
    uint64_t robots = 0;
    uint64_t samples = 0;
    uint64_t appended = 0;
    uint64_t decimated = 0;
    uint64_t bad = 0;
    uint64_t append_errors = 0;
    uint64_t own_commands = 0;         // cmd_vel samples doppel itself wrote (not samples, skipped)
    uint64_t robots_refused = 0;       // topics of robots past max_robots or with bad names
    uint64_t warnings_suppressed = 0;  // warnings not logged by the rate limit
    std::array<KindCounters, kKindNames.size()> kinds;  // the totals above, per topic kind
  };
  Counters counters() const;

 private:
  class Impl;
  explicit DdsIngest(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace doppel::dds
