// ROS 2 messages as rosbridge writes them in JSON (field names exactly as the .msg files,
// ROS 2 time as {sec, nanosec}), built from what the twins publish, for roslibjs clients:
//   sensor_msgs/JointState, nav_msgs/Odometry, tf2_msgs/TFMessage, nav_msgs/Path,
//   diagnostic_msgs/DiagnosticArray.
// Each builder returns the whole rosbridge `publish` text for its topic, made once and shared
// by every client that subscribes.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "doppel/core/clock.h"
#include "doppel/schemas/robot_events_generated.h"
#include "doppel/schemas/twin_state_generated.h"

namespace doppel::gateway {

// The ROS topics of a robot that rosbridge clients may subscribe to, and their types.
inline constexpr std::string_view kRosJointStates = "joint_states";      // sensor_msgs/JointState
inline constexpr std::string_view kRosOdom = "odom";                     // nav_msgs/Odometry
inline constexpr std::string_view kRosPredictedPath = "predicted_path";  // nav_msgs/Path
// Fleet-wide topics: one message per robot (as if each robot published its own).
inline constexpr std::string_view kRosTf = "/tf";                    // tf2_msgs/TFMessage
inline constexpr std::string_view kRosDiagnostics = "/diagnostics";  // DiagnosticArray

// The ROS type of a topic doppel serves to rosbridge clients ("pkg/msg/Name"), or "" when it
// serves no such topic. `robot` gets the robot of a per-robot topic.
std::string RosTopicType(std::string_view topic, std::string* robot = nullptr);

// `{"op":"publish","topic":topic,"msg":msg}` of each message; `frame` is the fixed frame
// (the twins' site frame, "map"), robots' own frames are "<robot>/<link>".
std::shared_ptr<const std::string> RosJointStatePublish(const std::string& robot,
                                                        const twin::TwinState& s, TimeNs stamp);
std::shared_ptr<const std::string> RosOdometryPublish(const std::string& robot,
                                                      const twin::TwinState& s, TimeNs stamp,
                                                      std::string_view frame);
// Null when the state has no link poses.
std::shared_ptr<const std::string> RosTfPublish(const std::string& robot, const twin::TwinState& s,
                                                TimeNs stamp, std::string_view frame);
std::shared_ptr<const std::string> RosDiagnosticsPublish(const std::string& robot,
                                                         const twin::TwinState& s, TimeNs stamp);
std::shared_ptr<const std::string> RosPathPublish(const std::string& robot,
                                                  const events::PredictionMade& m,
                                                  std::string_view frame);

}  // namespace doppel::gateway
