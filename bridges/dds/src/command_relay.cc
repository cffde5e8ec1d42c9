#include "command_relay.h"

#include "doppel/core/aligned_bytes.h"
#include "doppel/core/log.h"
#include "doppel/schemas/robot_events_generated.h"

namespace doppel::dds {

CommandRelay::CommandRelay(const Participant& participant, std::chrono::milliseconds stop_hold)
    : participant_(participant), stop_hold_(stop_hold) {}

CommandRelay::Target* CommandRelay::TargetFor(const std::string& robot) {
  auto it = targets_.find(robot);
  if (it != targets_.end()) return &it->second;
  auto writer = Writer::Create(participant_, &geometry_msgs_msg_dds__Twist__desc,
                               "rt/" + robot + "/cmd_vel", QosSpec{}, kDoppelWriterUserData);
  if (!writer.ok()) {
    log::Warn("dds-egress", "cannot command {}: {}", robot, writer.status().ToString());
    return nullptr;
  }
  Target t;
  t.cmd_vel = std::make_unique<Writer>(std::move(writer).value());
  return &targets_.emplace(robot, std::move(t)).first->second;
}

void CommandRelay::SendTwist(Target& target, double v_x, double v_y, double v_z, double w_x,
                             double w_y, double w_z) {
  geometry_msgs_msg_dds__Twist_ twist{};
  twist.linear = {v_x, v_y, v_z};
  twist.angular = {w_x, w_y, w_z};
  if (target.cmd_vel->Write(&twist).ok()) ++relayed_;
}

void CommandRelay::OnCommand(const eventstore::RecordedEvent& event, TimeNs now) {
  if (!event.stream().starts_with("robot-")) return;
  const auto* c =
      flatbuffers::GetRoot<events::CommandIssued>(AlignedBytes(event.payload(), scratch_));
  const std::string_view by = c->issued_by() ? c->issued_by()->string_view() : "";
  if (by == "ros2") return;  // the robot's own (or its planner's) command, recorded by the ingest
  if (c->kind() != events::CommandKind::Velocity && c->kind() != events::CommandKind::Stop) return;
  Target* target = TargetFor(std::string(event.stream().substr(6)));
  if (target == nullptr) return;
  if (c->kind() == events::CommandKind::Stop) {
    target->stop_until = now + std::chrono::nanoseconds(stop_hold_).count();
    target->last_stop_sent = now;
    SendTwist(*target, 0, 0, 0, 0, 0, 0);
    return;
  }
  target->stop_until = 0;  // a newer velocity command ends a stop's hold
  const auto* t = c->twist();
  if (t == nullptr) {
    SendTwist(*target, 0, 0, 0, 0, 0, 0);
  } else {
    SendTwist(*target, t->linear().x(), t->linear().y(), t->linear().z(), t->angular().x(),
              t->angular().y(), t->angular().z());
  }
}

void CommandRelay::Tick(TimeNs now) {
  const int64_t interval = std::chrono::nanoseconds(kStopRepeatInterval).count();
  for (auto& [robot, target] : targets_) {
    if (now >= target.stop_until || now - target.last_stop_sent < interval) continue;
    target.last_stop_sent = now;
    SendTwist(target, 0, 0, 0, 0, 0, 0);
  }
}

}  // namespace doppel::dds
