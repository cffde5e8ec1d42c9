#include "doppel/ros2/event_messages.h"

namespace doppel::ros2 {
namespace {

std::string Str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }

std::vector<double> Doubles(const flatbuffers::Vector<double>* v) {
  return v ? std::vector<double>(v->begin(), v->end()) : std::vector<double>();
}

Vector3 V(const events::Vec3& v) { return {v.x(), v.y(), v.z()}; }
Pose P(const events::Pose& p) {
  const auto& q = p.orientation();
  return {V(p.position()), {q.x(), q.y(), q.z(), q.w()}};
}

}  // namespace

JointState ToJointState(const events::JointStateObserved& e, TimeNs stamp) {
  JointState m;
  m.header.stamp = ToRosTime(stamp);
  if (e.names()) {
    m.name.reserve(e.names()->size());
    for (const auto* n : *e.names()) m.name.push_back(n->str());
  }
  m.position = Doubles(e.position());
  m.velocity = Doubles(e.velocity());
  m.effort = Doubles(e.effort());
  return m;
}

Odometry ToOdometry(const events::PoseObserved& e, TimeNs stamp) {
  Odometry m;
  m.header.stamp = ToRosTime(stamp);
  m.header.frame_id = Str(e.frame_id());
  m.child_frame_id = Str(e.child_frame_id());
  if (e.pose()) m.pose = P(*e.pose());
  if (e.twist()) m.twist = {V(e.twist()->linear()), V(e.twist()->angular())};
  return m;
}

Twist ToTwist(const events::CommandIssued& e) {
  if (!e.twist()) return {};
  return {V(e.twist()->linear()), V(e.twist()->angular())};
}

Path ToPath(const events::PredictionMade& e, std::string_view frame) {
  Path m;
  m.header.stamp = ToRosTime(e.start_ns());
  m.header.frame_id = frame;
  if (!e.trajectory()) return m;
  m.poses.reserve(e.trajectory()->size());
  for (const auto* s : *e.trajectory()) {
    if (!s->base_pose()) continue;
    PoseStamped p;
    p.header.stamp = ToRosTime(e.start_ns() + s->t_offset_ns());
    p.header.frame_id = frame;
    p.pose = P(*s->base_pose());
    m.poses.push_back(std::move(p));
  }
  return m;
}

DiagnosticStatus FaultStatus(std::string_view robot, const events::FaultRaised& e) {
  DiagnosticStatus s;
  s.level =
      e.severity() >= events::Severity::Error ? DiagnosticStatus::kError : DiagnosticStatus::kWarn;
  s.name = Str(e.code());
  s.message = Str(e.message());
  s.hardware_id = robot;
  return s;
}

DiagnosticStatus FaultStatus(std::string_view robot, const events::FaultCleared& e) {
  DiagnosticStatus s;
  s.level = DiagnosticStatus::kOk;
  s.name = Str(e.code());
  s.message = "cleared";
  s.hardware_id = robot;
  return s;
}

}  // namespace doppel::ros2
