// ROS 2 messages as doppel events: what a robot's topics mean in the event log. The MCAP
// import uses these; they are the same mapping the DDS ingest applies to live samples
// (bridges/dds/src/dds_ingest.cc): JointState -> JointStateObserved, Odometry ->
// PoseObserved, Twist on cmd_vel -> CommandIssued, DiagnosticArray -> FaultRaised/Cleared.
// Values are judged afterwards by schemas::CheckPayloadValues, like every entry point's.
#pragma once

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "doppel/eventstore/types.h"
#include "doppel/ros2/messages.h"

namespace doppel::ros2 {

std::string JointStateObservedPayload(const JointState& m);
std::string PoseObservedPayload(const Odometry& m);
std::string CommandIssuedPayload(const Twist& m, std::string_view issued_by);
std::string RobotRegisteredPayload(std::string_view robot, std::string_view model);

// One robot's diagnostics: a status going to WARN or ERROR raises a fault named after it,
// going back to OK clears it; a status that changes nothing yields no event.
class DiagnosticsFaults {
 public:
  // The events `m` causes, each occurring at `occurred_ns`. InvalidArgument (and no change)
  // when a status has no name or a level above STALE.
  Result<std::vector<eventstore::NewEvent>> Apply(const DiagnosticArray& m, TimeNs occurred_ns);

 private:
  std::set<std::string> active_;
};

}  // namespace doppel::ros2
