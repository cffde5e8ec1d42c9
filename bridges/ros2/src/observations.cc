#include "doppel/ros2/observations.h"

#include <fmt/format.h>

#include "doppel/schemas/robot_events_generated.h"

namespace doppel::ros2 {
namespace {

std::string Finish(flatbuffers::FlatBufferBuilder& fbb) {
  return std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
}

events::Twist ToEvents(const Twist& t) {
  return events::Twist(events::Vec3(t.linear.x, t.linear.y, t.linear.z),
                       events::Vec3(t.angular.x, t.angular.y, t.angular.z));
}

}  // namespace

std::string JointStateObservedPayload(const JointState& m) {
  flatbuffers::FlatBufferBuilder fbb(256);
  auto names = fbb.CreateVectorOfStrings(m.name);
  auto p = fbb.CreateVector(m.position), v = fbb.CreateVector(m.velocity),
       e = fbb.CreateVector(m.effort);
  fbb.Finish(events::CreateJointStateObserved(fbb, names, p, v, e));
  return Finish(fbb);
}

std::string PoseObservedPayload(const Odometry& m) {
  flatbuffers::FlatBufferBuilder fbb(256);
  const auto& p = m.pose;
  const events::Pose pose(
      events::Vec3(p.position.x, p.position.y, p.position.z),
      events::Quat(p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w));
  const events::Twist twist = ToEvents(m.twist);
  auto frame = fbb.CreateString(m.header.frame_id);
  auto child = fbb.CreateString(m.child_frame_id);
  fbb.Finish(events::CreatePoseObserved(fbb, frame, child, &pose, &twist));
  return Finish(fbb);
}

std::string CommandIssuedPayload(const Twist& m, std::string_view issued_by) {
  flatbuffers::FlatBufferBuilder fbb(128);
  const events::Twist twist = ToEvents(m);
  auto by = fbb.CreateString(issued_by);
  fbb.Finish(events::CreateCommandIssued(fbb, events::CommandKind::Velocity, &twist, 0, 0, by));
  return Finish(fbb);
}

std::string RobotRegisteredPayload(std::string_view robot, std::string_view model) {
  flatbuffers::FlatBufferBuilder fbb(128);
  auto r = fbb.CreateString(robot);
  auto m = fbb.CreateString(model);
  fbb.Finish(events::CreateRobotRegistered(fbb, r, m));
  return Finish(fbb);
}

Result<std::vector<eventstore::NewEvent>> DiagnosticsFaults::Apply(const DiagnosticArray& m,
                                                                   TimeNs occurred_ns) {
  for (const auto& s : m.status) {
    if (s.name.empty() || s.level > DiagnosticStatus::kStale) {
      return Status::InvalidArgument(
          fmt::format("diagnostics status without a name or with level {}", s.level));
    }
  }
  std::vector<eventstore::NewEvent> out;
  for (const auto& s : m.status) {
    flatbuffers::FlatBufferBuilder fbb(128);
    eventstore::NewEvent e;
    e.occurred_ns = occurred_ns;
    if ((s.level == DiagnosticStatus::kWarn || s.level == DiagnosticStatus::kError) &&
        active_.insert(s.name).second) {
      auto code = fbb.CreateString(s.name);
      auto text = fbb.CreateString(s.message);
      fbb.Finish(events::CreateFaultRaised(
          fbb, code,
          s.level == DiagnosticStatus::kError ? events::Severity::Error : events::Severity::Warning,
          text));
      e.type = "FaultRaised";
    } else if (s.level == DiagnosticStatus::kOk && active_.erase(s.name) > 0) {
      fbb.Finish(events::CreateFaultCleared(fbb, fbb.CreateString(s.name)));
      e.type = "FaultCleared";
    } else {
      continue;
    }
    e.payload = Finish(fbb);
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace doppel::ros2
