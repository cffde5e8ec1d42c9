#include "doppel/ros2/event_messages.h"

namespace doppel::ros2 {
namespace {

std::string Str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }

Vector3 V(const events::Vec3& v) { return {v.x(), v.y(), v.z()}; }
Pose P(const events::Pose& p) {
  const auto& q = p.orientation();
  return {V(p.position()), {q.x(), q.y(), q.z(), q.w()}};
}

}  // namespace

void EncodeJointState(const events::JointStateObserved& e, TimeNs stamp, CdrWriter& w) {
  const Time t = ToRosTime(stamp);
  w.I32(t.sec);
  w.U32(t.nanosec);
  w.String("");
  const auto* names = e.names();
  w.U32(names ? names->size() : 0);
  if (names) {
    for (const auto* n : *names) w.String(n->string_view());
  }
  for (const auto* v : {e.position(), e.velocity(), e.effort()}) {
    w.Doubles(v ? v->data() : nullptr, v ? v->size() : 0);
  }
}

void EncodeOdometry(const events::PoseObserved& e, TimeNs stamp, CdrWriter& w) {
  const Time t = ToRosTime(stamp);
  w.I32(t.sec);
  w.U32(t.nanosec);
  w.String(e.frame_id() ? e.frame_id()->string_view() : std::string_view());
  w.String(e.child_frame_id() ? e.child_frame_id()->string_view() : std::string_view());
  auto vec = [&](const events::Vec3& v) {
    w.F64(v.x());
    w.F64(v.y());
    w.F64(v.z());
  };
  if (e.pose()) {
    vec(e.pose()->position());
    const auto& q = e.pose()->orientation();
    w.F64(q.x());
    w.F64(q.y());
    w.F64(q.z());
    w.F64(q.w());
  } else {
    for (double v : {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0}) w.F64(v);
  }
  for (int i = 0; i < 36; ++i) w.F64(0);
  if (e.twist()) {
    vec(e.twist()->linear());
    vec(e.twist()->angular());
  } else {
    for (int i = 0; i < 6; ++i) w.F64(0);
  }
  for (int i = 0; i < 36; ++i) w.F64(0);
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
