#include "doppel/bridges/twin_publisher.h"

#include <fmt/format.h>

#include <cctype>

#include "doppel/core/log.h"
#include "doppel/schemas/robot_events_generated.h"

namespace doppel::dds {
namespace {

void SetPose(geometry_msgs_msg_dds__Pose_& out, const events::Pose& in) {
  out.position = {in.position().x(), in.position().y(), in.position().z()};
  out.orientation = {in.orientation().x(), in.orientation().y(), in.orientation().z(),
                     in.orientation().w()};
}

}  // namespace

Result<std::unique_ptr<TwinPublisher>> TwinPublisher::Create(const Participant& participant,
                                                             std::string prefix,
                                                             std::string frame) {
  auto tf = Writer::Create(participant, &tf2_msgs_msg_dds__TFMessage__desc, "rt/" + prefix + "tf",
                           QosSpec{true, false, 100});
  if (!tf.ok()) return tf.status();
  auto diagnostics = Writer::Create(participant, &diagnostic_msgs_msg_dds__DiagnosticArray__desc,
                                    "rt/" + prefix + "diagnostics");
  if (!diagnostics.ok()) return diagnostics.status();
  return std::unique_ptr<TwinPublisher>(new TwinPublisher(participant, std::move(prefix),
                                                          std::move(frame), std::move(tf).value(),
                                                          std::move(diagnostics).value()));
}

TwinPublisher::TwinPublisher(const Participant& participant, std::string prefix, std::string frame,
                             Writer tf, Writer diagnostics)
    : participant_(participant),
      prefix_(std::move(prefix)),
      frame_(std::move(frame)),
      tf_(std::move(tf)),
      diagnostics_(std::move(diagnostics)) {}

TwinPublisher::RobotWriters* TwinPublisher::WritersFor(const std::string& robot) {
  auto it = robots_.find(robot);
  if (it != robots_.end()) return &it->second;
  RobotWriters w;
  // ROS names allow [A-Za-z0-9_/] only; anything else in a robot id becomes '_'.
  std::string ros_name = robot;
  for (char& c : ros_name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') c = '_';
  }
  const std::string base = "rt/" + prefix_ + "twin/" + ros_name;
  auto joints =
      Writer::Create(participant_, &sensor_msgs_msg_dds__JointState__desc, base + "/joint_states");
  auto odom = Writer::Create(participant_, &nav_msgs_msg_dds__Odometry__desc, base + "/odom");
  auto path = Writer::Create(participant_, &nav_msgs_msg_dds__Path__desc, base + "/predicted_path");
  if (!joints.ok() || !odom.ok() || !path.ok()) {
    log::Warn("dds", "cannot publish for {}", robot);
    return nullptr;
  }
  w.joints = std::make_unique<Writer>(std::move(joints).value());
  w.odom = std::make_unique<Writer>(std::move(odom).value());
  w.path = std::make_unique<Writer>(std::move(path).value());
  auto [inserted, ok] = robots_.emplace(robot, std::move(w));
  return &inserted->second;
}

bool TwinPublisher::PublishState(const std::string& robot, const twin::TwinState& state) {
  const twin::TwinState* s = &state;
  RobotWriters* w = WritersFor(robot);
  if (w == nullptr) return false;
  const std::string base_frame = robot + "/base_link";
  const auto stamp =
      ToRosTime(s->last_observation_ns() ? s->last_observation_ns() : s->published_ns());

  // Joint states.
  std::vector<char*> names;
  std::vector<std::string> name_storage;
  if (s->joint_names()) {
    for (const auto* n : *s->joint_names()) name_storage.push_back(n->str());
  }
  for (auto& n : name_storage) names.push_back(n.data());
  std::vector<double> position, velocity, effort;
  if (s->joint_position())
    position.assign(s->joint_position()->begin(), s->joint_position()->end());
  if (s->joint_velocity())
    velocity.assign(s->joint_velocity()->begin(), s->joint_velocity()->end());
  if (s->joint_effort()) effort.assign(s->joint_effort()->begin(), s->joint_effort()->end());
  sensor_msgs_msg_dds__JointState_ js{};
  js.header.stamp = stamp;
  js.header.frame_id = const_cast<char*>(base_frame.c_str());
  auto seq = [](std::vector<double>& v) {
    return dds_sequence_double{static_cast<uint32_t>(v.size()), static_cast<uint32_t>(v.size()),
                               v.data(), false};
  };
  js.name = {static_cast<uint32_t>(names.size()), static_cast<uint32_t>(names.size()), names.data(),
             false};
  js.position = seq(position);
  js.velocity = seq(velocity);
  js.effort = seq(effort);
  (void)w->joints->Write(&js);

  // Odometry.
  nav_msgs_msg_dds__Odometry_ odom{};
  odom.header.stamp = stamp;
  odom.header.frame_id = const_cast<char*>(frame_.c_str());
  odom.child_frame_id = const_cast<char*>(base_frame.c_str());
  if (s->base_pose()) SetPose(odom.pose.pose, *s->base_pose());
  if (s->base_twist()) {
    const auto& t = *s->base_twist();
    odom.twist.twist.linear = {t.linear().x(), t.linear().y(), t.linear().z()};
    odom.twist.twist.angular = {t.angular().x(), t.angular().y(), t.angular().z()};
  }
  (void)w->odom->Write(&odom);

  // Transforms: every link (or just the base) as <robot>/<link> in the site frame.
  std::vector<std::string> children;
  std::vector<geometry_msgs_msg_dds__TransformStamped_> transforms;
  if (s->link_names() && s->link_poses() && s->link_names()->size() == s->link_poses()->size()) {
    for (uint32_t i = 0; i < s->link_names()->size(); ++i)
      children.push_back(robot + "/" + s->link_names()->Get(i)->str());
  } else {
    children.push_back(base_frame);
  }
  transforms.resize(children.size());
  for (size_t i = 0; i < children.size(); ++i) {
    auto& t = transforms[i];
    t.header.stamp = stamp;
    t.header.frame_id = const_cast<char*>(frame_.c_str());
    t.child_frame_id = children[i].data();
    const events::Pose* pose =
        s->link_poses() && s->link_names() && s->link_names()->size() == s->link_poses()->size()
            ? s->link_poses()->Get(static_cast<uint32_t>(i))
            : s->base_pose();
    if (pose) {
      t.transform.translation = {pose->position().x(), pose->position().y(), pose->position().z()};
      t.transform.rotation = {pose->orientation().x(), pose->orientation().y(),
                              pose->orientation().z(), pose->orientation().w()};
    }
  }
  tf2_msgs_msg_dds__TFMessage_ tf{};
  tf.transforms = {static_cast<uint32_t>(transforms.size()),
                   static_cast<uint32_t>(transforms.size()), transforms.data(), false};
  (void)tf_.Write(&tf);

  // Diagnostics: one status per robot.
  uint8_t level = 0;  // OK
  std::string message = "ok";
  if (s->faults() && s->faults()->size() > 0) {
    level = 2;
    message = fmt::format("{} active fault(s)", s->faults()->size());
  } else if (s->silent()) {
    level = 3;
    message = "silent: no observations";
  } else if (s->prediction() && s->prediction()->collision_predicted()) {
    level = 1;
    message = fmt::format(
        "collision with {} predicted in {:.2f} s",
        s->prediction()->collision_obstacle() ? s->prediction()->collision_obstacle()->str() : "?",
        s->prediction()->collision_t_offset_ns() / 1e9);
  }
  std::string status_name = "doppel/" + robot, hardware = robot;
  std::string mode = events::EnumNameRobotMode(s->mode());
  std::string staleness = fmt::format("{:.3f}", s->staleness_ns() / 1e9);
  diagnostic_msgs_msg_dds__KeyValue_ values[2] = {
      {const_cast<char*>("mode"), mode.data()},
      {const_cast<char*>("staleness_s"), staleness.data()}};
  diagnostic_msgs_msg_dds__DiagnosticStatus_ status{};
  status.level = level;
  status.name = status_name.data();
  status.message = message.data();
  status.hardware_id = hardware.data();
  status.values = {2, 2, values, false};
  diagnostic_msgs_msg_dds__DiagnosticArray_ array{};
  array.header.stamp = stamp;
  array.status = {1, 1, &status, false};
  (void)diagnostics_.Write(&array);
  return true;
}

bool TwinPublisher::PublishPath(const std::string& robot,
                                const events::PredictionMade& prediction) {
  const events::PredictionMade* p = &prediction;
  RobotWriters* w = WritersFor(robot);
  if (w == nullptr) return false;
  std::vector<geometry_msgs_msg_dds__PoseStamped_> poses;
  if (p->trajectory()) {
    for (const auto* sample : *p->trajectory()) {
      geometry_msgs_msg_dds__PoseStamped_ ps{};
      ps.header.stamp = ToRosTime(p->start_ns() + sample->t_offset_ns());
      ps.header.frame_id = const_cast<char*>(frame_.c_str());
      if (sample->base_pose()) SetPose(ps.pose, *sample->base_pose());
      poses.push_back(ps);
    }
  }
  nav_msgs_msg_dds__Path_ path{};
  path.header.stamp = ToRosTime(p->start_ns());
  path.header.frame_id = const_cast<char*>(frame_.c_str());
  path.poses = {static_cast<uint32_t>(poses.size()), static_cast<uint32_t>(poses.size()),
                poses.data(), false};
  (void)w->path->Write(&path);
  return true;
}

}  // namespace doppel::dds
