// doppel events as the ROS 2 messages a robot would have published: the reverse of
// observations.h, used where history leaves doppel (MCAP export, replay into ROS 2).
#pragma once

#include <string_view>

#include "doppel/ros2/messages.h"
#include "doppel/schemas/robot_events_generated.h"

namespace doppel::ros2 {

// An observation as the CDR of the message the robot published, encoded straight from the
// payload (no intermediate message: the export's hot path). Header frame of a JointState: "".
void EncodeJointState(const events::JointStateObserved& e, TimeNs stamp, CdrWriter& w);
void EncodeOdometry(const events::PoseObserved& e, TimeNs stamp, CdrWriter& w);
// REQUIRES: e.kind() == Velocity (other commands have no Twist meaning)
Twist ToTwist(const events::CommandIssued& e);
// A prediction's base path in `frame`, each pose stamped at start + offset.
Path ToPath(const events::PredictionMade& e, std::string_view frame);
// A fault raised (WARN, or ERROR for Error and Critical) or cleared (OK) as one status.
DiagnosticStatus FaultStatus(std::string_view robot, const events::FaultRaised& e);
DiagnosticStatus FaultStatus(std::string_view robot, const events::FaultCleared& e);

}  // namespace doppel::ros2
