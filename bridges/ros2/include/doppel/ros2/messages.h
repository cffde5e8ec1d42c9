// The ROS 2 messages doppel reads and writes outside DDS (MCAP files): plain structs that
// mirror ros2/common_interfaces field by field, with their CDR encoding beside them. The DDS
// bridge uses idlc's C types for the same messages (bridges/dds/idl/ros2_msgs.idl).
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "doppel/core/clock.h"
#include "doppel/ros2/cdr.h"

namespace doppel::ros2 {

struct Time {  // builtin_interfaces/msg/Time
  int32_t sec = 0;
  uint32_t nanosec = 0;
};
Time ToRosTime(TimeNs ns);
TimeNs FromRosTime(const Time& t);

struct Header {  // std_msgs/msg/Header
  Time stamp;
  std::string frame_id;
};
struct Vector3 {
  double x = 0, y = 0, z = 0;
};
struct Quaternion {
  double x = 0, y = 0, z = 0, w = 1;
};
struct Pose {
  Vector3 position;  // geometry_msgs/Point has Vector3's layout
  Quaternion orientation;
};
struct Twist {
  Vector3 linear, angular;
};
struct PoseStamped {
  Header header;
  Pose pose;
};
struct TransformStamped {
  Header header;
  std::string child_frame_id;
  Vector3 translation;
  Quaternion rotation;
};

struct JointState {  // sensor_msgs/msg/JointState
  Header header;
  std::vector<std::string> name;
  std::vector<double> position, velocity, effort;
};
struct Odometry {  // nav_msgs/msg/Odometry
  Header header;
  std::string child_frame_id;
  Pose pose;
  std::array<double, 36> pose_covariance{};
  Twist twist;
  std::array<double, 36> twist_covariance{};
};
struct Path {  // nav_msgs/msg/Path
  Header header;
  std::vector<PoseStamped> poses;
};
struct TFMessage {  // tf2_msgs/msg/TFMessage
  std::vector<TransformStamped> transforms;
};
struct KeyValue {
  std::string key, value;
};
struct DiagnosticStatus {  // diagnostic_msgs/msg/DiagnosticStatus
  enum Level : uint8_t { kOk = 0, kWarn = 1, kError = 2, kStale = 3 };
  uint8_t level = kOk;
  std::string name, message, hardware_id;
  std::vector<KeyValue> values;
};
struct DiagnosticArray {  // diagnostic_msgs/msg/DiagnosticArray
  Header header;
  std::vector<DiagnosticStatus> status;
};
struct Clock {  // rosgraph_msgs/msg/Clock
  Time clock;
};

// Encoding appends the message's fields to `w` (after the header CdrWriter starts with).
void Encode(const JointState& m, CdrWriter& w);
void Encode(const Odometry& m, CdrWriter& w);
void Encode(const Twist& m, CdrWriter& w);
void Encode(const Path& m, CdrWriter& w);
void Encode(const TFMessage& m, CdrWriter& w);
void Encode(const DiagnosticArray& m, CdrWriter& w);
void Encode(const Clock& m, CdrWriter& w);

// Decoding a whole CDR message (header included).
Status Decode(std::string_view cdr, JointState& m);
Status Decode(std::string_view cdr, Odometry& m);
Status Decode(std::string_view cdr, Twist& m);
Status Decode(std::string_view cdr, TFMessage& m);
Status Decode(std::string_view cdr, DiagnosticArray& m);

}  // namespace doppel::ros2
