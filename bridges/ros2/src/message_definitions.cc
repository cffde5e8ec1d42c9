#include "doppel/ros2/message_definitions.h"

#include <fmt/format.h>

#include <map>
#include <set>
#include <vector>

namespace doppel::ros2 {
namespace {

// Each type's .msg fields (constants included where ROS defines them), and the types its
// fields name. Field types are fully qualified so no reader has to resolve a package.
struct MsgText {
  const char* fields;
  std::vector<const char*> uses;
};

const std::map<std::string_view, MsgText>& Types() {
  static const std::map<std::string_view, MsgText> types = {
      {"builtin_interfaces/Time", {"int32 sec\nuint32 nanosec\n", {}}},
      {"std_msgs/Header",
       {"builtin_interfaces/Time stamp\nstring frame_id\n", {"builtin_interfaces/Time"}}},
      {"geometry_msgs/Vector3", {"float64 x\nfloat64 y\nfloat64 z\n", {}}},
      {"geometry_msgs/Point", {"float64 x\nfloat64 y\nfloat64 z\n", {}}},
      {"geometry_msgs/Quaternion", {"float64 x 0\nfloat64 y 0\nfloat64 z 0\nfloat64 w 1\n", {}}},
      {"geometry_msgs/Pose",
       {"geometry_msgs/Point position\ngeometry_msgs/Quaternion orientation\n",
        {"geometry_msgs/Point", "geometry_msgs/Quaternion"}}},
      {"geometry_msgs/PoseStamped",
       {"std_msgs/Header header\ngeometry_msgs/Pose pose\n",
        {"std_msgs/Header", "geometry_msgs/Pose"}}},
      {"geometry_msgs/PoseWithCovariance",
       {"geometry_msgs/Pose pose\nfloat64[36] covariance\n", {"geometry_msgs/Pose"}}},
      {"geometry_msgs/Twist",
       {"geometry_msgs/Vector3 linear\ngeometry_msgs/Vector3 angular\n",
        {"geometry_msgs/Vector3"}}},
      {"geometry_msgs/TwistWithCovariance",
       {"geometry_msgs/Twist twist\nfloat64[36] covariance\n", {"geometry_msgs/Twist"}}},
      {"geometry_msgs/Transform",
       {"geometry_msgs/Vector3 translation\ngeometry_msgs/Quaternion rotation\n",
        {"geometry_msgs/Vector3", "geometry_msgs/Quaternion"}}},
      {"geometry_msgs/TransformStamped",
       {"std_msgs/Header header\nstring child_frame_id\ngeometry_msgs/Transform transform\n",
        {"std_msgs/Header", "geometry_msgs/Transform"}}},
      {"sensor_msgs/JointState",
       {"std_msgs/Header header\nstring[] name\nfloat64[] position\nfloat64[] velocity\n"
        "float64[] effort\n",
        {"std_msgs/Header"}}},
      {"nav_msgs/Odometry",
       {"std_msgs/Header header\nstring child_frame_id\ngeometry_msgs/PoseWithCovariance pose\n"
        "geometry_msgs/TwistWithCovariance twist\n",
        {"std_msgs/Header", "geometry_msgs/PoseWithCovariance",
         "geometry_msgs/TwistWithCovariance"}}},
      {"nav_msgs/Path",
       {"std_msgs/Header header\ngeometry_msgs/PoseStamped[] poses\n",
        {"std_msgs/Header", "geometry_msgs/PoseStamped"}}},
      {"tf2_msgs/TFMessage",
       {"geometry_msgs/TransformStamped[] transforms\n", {"geometry_msgs/TransformStamped"}}},
      {"diagnostic_msgs/KeyValue", {"string key\nstring value\n", {}}},
      {"diagnostic_msgs/DiagnosticStatus",
       {"byte OK=0\nbyte WARN=1\nbyte ERROR=2\nbyte STALE=3\nbyte level\nstring name\n"
        "string message\nstring hardware_id\ndiagnostic_msgs/KeyValue[] values\n",
        {"diagnostic_msgs/KeyValue"}}},
      {"diagnostic_msgs/DiagnosticArray",
       {"std_msgs/Header header\ndiagnostic_msgs/DiagnosticStatus[] status\n",
        {"std_msgs/Header", "diagnostic_msgs/DiagnosticStatus"}}},
      {"rosgraph_msgs/Clock", {"builtin_interfaces/Time clock\n", {"builtin_interfaces/Time"}}},
  };
  return types;
}

void CollectDependencies(std::string_view type, std::vector<std::string_view>& order,
                         std::set<std::string_view>& seen) {
  for (const char* dep : Types().at(type).uses) {
    if (!seen.insert(dep).second) continue;
    order.push_back(dep);
    CollectDependencies(dep, order, seen);
  }
}

}  // namespace

Result<std::string> Ros2MsgDefinition(std::string_view type) {
  // "pkg/msg/Type" -> "pkg/Type", the spelling of MSG: lines.
  std::string key(type);
  if (const auto at = key.find("/msg/"); at != std::string::npos) key.erase(at, 4);
  auto it = Types().find(key);
  if (it == Types().end()) {
    return Status::NotFound(fmt::format("doppel has no message definition for {}", type));
  }
  std::string text = it->second.fields;
  std::vector<std::string_view> order;
  std::set<std::string_view> seen{it->first};
  CollectDependencies(it->first, order, seen);
  for (std::string_view dep : order) {
    text += std::string(80, '=');
    text += fmt::format("\nMSG: {}\n", dep);
    text += Types().at(dep).fields;
  }
  return text;
}

std::string OfferedQosProfilesYaml(const QosProfile& qos) {
  constexpr char kInfinite[] = "\n    sec: 2147483647\n    nsec: 4294967295";
  // rmw enums: history 1 keep-last; reliability 1 reliable, 2 best effort; durability
  // 1 transient local, 2 volatile; liveliness 1 automatic.
  return fmt::format(
      "- history: 1\n  depth: {}\n  reliability: {}\n  durability: {}\n  deadline:{}\n"
      "  lifespan:{}\n  liveliness: 1\n  liveliness_lease_duration:{}\n"
      "  avoid_ros_namespace_conventions: false",
      qos.depth, qos.reliable ? 1 : 2, qos.transient_local ? 1 : 2, kInfinite, kInfinite,
      kInfinite);
}

}  // namespace doppel::ros2
