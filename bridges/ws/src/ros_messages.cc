#include "ros_messages.h"

#include <nlohmann/json.hpp>

#include "doppel/core/json_text.h"
#include "event_json_values.h"

namespace doppel::gateway {
namespace {

using nlohmann::json;

json RosTime(TimeNs ns) { return {{"sec", ns / 1'000'000'000}, {"nanosec", ns % 1'000'000'000}}; }

json Header(TimeNs ns, std::string_view frame) {
  return {{"stamp", RosTime(ns)}, {"frame_id", frame}};
}

std::shared_ptr<const std::string> Publish(std::string_view topic, json msg) {
  return std::make_shared<const std::string>(
      SafeJsonDump({{"op", "publish"}, {"topic", topic}, {"msg", std::move(msg)}}));
}

std::string Str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }

// diagnostic_msgs/DiagnosticStatus levels.
constexpr int kOk = 0, kWarn = 1, kError = 2, kStale = 3;

}  // namespace

std::string RosTopicType(std::string_view topic, std::string* robot) {
  if (topic == kRosTf) return "tf2_msgs/msg/TFMessage";
  if (topic == kRosDiagnostics) return "diagnostic_msgs/msg/DiagnosticArray";
  const auto slash = topic.rfind('/');
  if (topic.size() < 2 || topic[0] != '/' || slash == 0 || slash == std::string_view::npos) {
    return "";
  }
  const std::string_view leaf = topic.substr(slash + 1);
  std::string type;
  if (leaf == kRosJointStates) {
    type = "sensor_msgs/msg/JointState";
  } else if (leaf == kRosOdom) {
    type = "nav_msgs/msg/Odometry";
  } else if (leaf == kRosPredictedPath) {
    type = "nav_msgs/msg/Path";
  } else {
    return "";
  }
  if (robot != nullptr) *robot = std::string(topic.substr(1, slash - 1));
  return type;
}

std::shared_ptr<const std::string> RosJointStatePublish(const std::string& robot,
                                                        const twin::TwinState& s, TimeNs stamp) {
  json names = json::array();
  if (s.joint_names()) {
    for (const auto* n : *s.joint_names()) names.push_back(n->str());
  }
  // ROS allows empty velocity/effort arrays; doppel's twin keeps one per joint.
  return Publish("/" + robot + "/" + std::string(kRosJointStates),
                 {{"header", Header(stamp, "")},
                  {"name", std::move(names)},
                  {"position", Doubles(s.joint_position())},
                  {"velocity", Doubles(s.joint_velocity())},
                  {"effort", Doubles(s.joint_effort())}});
}

std::shared_ptr<const std::string> RosOdometryPublish(const std::string& robot,
                                                      const twin::TwinState& s, TimeNs stamp,
                                                      std::string_view frame) {
  const json zeros = json(std::vector<double>(36, 0.0));
  json twist = {{"linear", {{"x", 0.0}, {"y", 0.0}, {"z", 0.0}}},
                {"angular", {{"x", 0.0}, {"y", 0.0}, {"z", 0.0}}}};
  // The twin keeps the base twist in the base frame, as nav_msgs/Odometry wants it (in
  // child_frame_id).
  if (const auto* t = s.base_twist())
    twist = {{"linear", Vec(t->linear())}, {"angular", Vec(t->angular())}};
  return Publish("/" + robot + "/" + std::string(kRosOdom),
                 {{"header", Header(stamp, frame)},
                  {"child_frame_id", robot + "/base_link"},
                  {"pose", {{"pose", PoseJson(s.base_pose())}, {"covariance", zeros}}},
                  {"twist", {{"twist", std::move(twist)}, {"covariance", zeros}}}});
}

std::shared_ptr<const std::string> RosTfPublish(const std::string& robot, const twin::TwinState& s,
                                                TimeNs stamp, std::string_view frame) {
  if (!s.link_names() || !s.link_poses()) return nullptr;
  const size_t n = std::min(s.link_names()->size(), s.link_poses()->size());
  if (n == 0) return nullptr;
  json transforms = json::array();
  for (size_t i = 0; i < n; ++i) {
    const auto* p = s.link_poses()->Get(i);
    // Link poses are in the site frame (base pose x forward kinematics), so each link hangs
    // off the fixed frame directly: a client needs no robot description to place it.
    transforms.push_back(
        {{"header", Header(stamp, frame)},
         {"child_frame_id", robot + "/" + s.link_names()->Get(i)->str()},
         {"transform",
          {{"translation", Vec(p->position())}, {"rotation", Quat(p->orientation())}}}});
  }
  return Publish(kRosTf, {{"transforms", std::move(transforms)}});
}

std::shared_ptr<const std::string> RosDiagnosticsPublish(const std::string& robot,
                                                         const twin::TwinState& s, TimeNs stamp) {
  int level = kOk;
  std::string message = "ok";
  json values = json::array();
  std::string codes;
  if (s.faults()) {
    for (const auto* f : *s.faults()) {
      const int l = f->severity() >= events::Severity::Error     ? kError
                    : f->severity() == events::Severity::Warning ? kWarn
                                                                 : kOk;
      level = std::max(level, l);
      if (!codes.empty()) codes += ", ";
      codes += Str(f->code());
      values.push_back({{"key", "fault " + Str(f->code())},
                        {"value", std::string(events::EnumNameSeverity(f->severity())) + ": " +
                                      Str(f->message())}});
    }
  }
  if (!codes.empty()) message = "faults: " + codes;
  if (s.silent()) {
    level = kStale;
    message = "silent: no observations";
  }
  values.push_back({{"key", "model"}, {"value", Str(s.model())}});
  values.push_back({{"key", "mode"}, {"value", events::EnumNameRobotMode(s.mode())}});
  values.push_back({{"key", "alerts"}, {"value", std::to_string(s.alerts())}});
  json status = {{"level", level},
                 {"name", "doppel/" + robot},
                 {"message", message},
                 {"hardware_id", robot},
                 {"values", std::move(values)}};
  return Publish(kRosDiagnostics,
                 {{"header", Header(stamp, "")}, {"status", json::array({std::move(status)})}});
}

std::shared_ptr<const std::string> RosPathPublish(const std::string& robot,
                                                  const events::PredictionMade& m,
                                                  std::string_view frame) {
  json poses = json::array();
  if (m.trajectory()) {
    for (const auto* sample : *m.trajectory()) {
      poses.push_back({{"header", Header(m.start_ns() + sample->t_offset_ns(), frame)},
                       {"pose", PoseJson(sample->base_pose())}});
    }
  }
  return Publish("/" + robot + "/" + std::string(kRosPredictedPath),
                 {{"header", Header(m.start_ns(), frame)}, {"poses", std::move(poses)}});
}

}  // namespace doppel::gateway
