#include "doppel/bridges/dds_egress.h"

#include <fmt/format.h>

#include <atomic>
#include <cctype>
#include <map>
#include <mutex>
#include <thread>

#include "command_relay.h"
#include "doppel/bridges/dds.h"
#include "doppel/core/log.h"
#include "doppel/eventstore/subscription.h"
#include "doppel/schemas/robot_events_generated.h"
#include "doppel/schemas/twin_state_generated.h"
#include "ros2_msgs.h"

namespace doppel::dds {
namespace {

constexpr char kComponent[] = "dds-egress";

void SetPose(geometry_msgs_msg_dds__Pose_& out, const events::Pose& in) {
  out.position = {in.position().x(), in.position().y(), in.position().z()};
  out.orientation = {in.orientation().x(), in.orientation().y(), in.orientation().z(),
                     in.orientation().w()};
}

}  // namespace

class DdsEgress::Impl {
 public:
  explicit Impl(EgressOptions options) : options_(std::move(options)) {}

  Status Start() {
    auto participant = Participant::Create(options_.domain);
    if (!participant.ok()) return participant.status();
    participant_ = std::make_unique<Participant>(std::move(participant).value());
    auto tf = Writer::Create(*participant_, &tf2_msgs_msg_dds__TFMessage__desc, "rt/tf",
                             QosSpec{true, false, 100});
    auto diagnostics = Writer::Create(
        *participant_, &diagnostic_msgs_msg_dds__DiagnosticArray__desc, "rt/diagnostics");
    if (!tf.ok()) return tf.status();
    if (!diagnostics.ok()) return diagnostics.status();
    tf_ = std::make_unique<Writer>(std::move(tf).value());
    diagnostics_ = std::make_unique<Writer>(std::move(diagnostics).value());
    auto sub = eventstore::ConnectSubscriber(options_.twin_publish, "twin/");
    if (!sub.ok()) return sub.status();
    sub_ = std::move(sub).value();
    if (!options_.store.empty()) {
      eventstore::SubscriptionOptions so;
      so.store = options_.store;
      so.publish = options_.publish;
      so.stream_prefix = "robot-";
      so.event_type = "PredictionMade";
      auto predictions = eventstore::Subscription::Start(so);
      if (!predictions.ok()) return predictions.status();
      predictions_ = std::move(predictions).value();
      // Operators' commands, from now on (a command issued while the egress was down is
      // stale: it is not replayed into a robot).
      so.event_type = "CommandIssued";
      auto commands = eventstore::Subscription::Start(so);
      if (!commands.ok()) return commands.status();
      commands_ = std::move(commands).value();
      relay_ = std::make_unique<CommandRelay>(*participant_, options_.stop_hold);
    }
    thread_ = std::thread([this] { Run(); });
    return Status::Ok();
  }

  ~Impl() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

  Counters counters() const {
    std::lock_guard lock(mu_);
    return counters_;
  }

 private:
  struct RobotWriters {
    std::unique_ptr<Writer> joints, odom, path;
  };

  RobotWriters* WritersFor(const std::string& robot) {
    auto it = robots_.find(robot);
    if (it != robots_.end()) return &it->second;
    RobotWriters w;
    // ROS names allow [A-Za-z0-9_/] only; anything else in a robot id becomes '_'.
    std::string ros_name = robot;
    for (char& c : ros_name) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') c = '_';
    }
    const std::string base = "rt/twin/" + ros_name;
    auto joints = Writer::Create(*participant_, &sensor_msgs_msg_dds__JointState__desc,
                                 base + "/joint_states");
    auto odom = Writer::Create(*participant_, &nav_msgs_msg_dds__Odometry__desc, base + "/odom");
    auto path =
        Writer::Create(*participant_, &nav_msgs_msg_dds__Path__desc, base + "/predicted_path");
    if (!joints.ok() || !odom.ok() || !path.ok()) {
      log::Warn(kComponent, "cannot publish for {}", robot);
      return nullptr;
    }
    w.joints = std::make_unique<Writer>(std::move(joints).value());
    w.odom = std::make_unique<Writer>(std::move(odom).value());
    w.path = std::make_unique<Writer>(std::move(path).value());
    auto [inserted, ok] = robots_.emplace(robot, std::move(w));
    Count([&](Counters& c) { c.robots = robots_.size(); });
    return &inserted->second;
  }

  void Run() {
    while (!stop_) {
      zmq::pollitem_t item = {sub_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(predictions_ ? 5 : 50));
      zmq::message_t topic, body;
      while (sub_.recv(topic, zmq::recv_flags::dontwait)) {
        if (!topic.more() || !sub_.recv(body, zmq::recv_flags::dontwait)) continue;
        PublishState(std::string(topic.to_string_view().substr(5)), body);
      }
      if (predictions_) {
        auto next = predictions_->Next(std::chrono::milliseconds(0));
        while (next.ok() && next->has_value()) {
          PublishPath(**next);
          next = predictions_->Next(std::chrono::milliseconds(0));
        }
      }
      if (commands_) {
        auto next = commands_->Next(std::chrono::milliseconds(0));
        while (next.ok() && next->has_value()) {
          relay_->OnCommand(**next, WallNowNs());
          next = commands_->Next(std::chrono::milliseconds(0));
        }
        relay_->Tick(WallNowNs());
        Count([this](Counters& c) { c.commands_relayed = relay_->relayed(); });
      }
    }
  }

  void PublishState(const std::string& robot, const zmq::message_t& body) {
    const uint8_t* bytes = eventstore::AlignedBytes(body, scratch_);
    flatbuffers::Verifier verifier(bytes, body.size());
    if (!twin::VerifyTwinStateBuffer(verifier)) {
      Count([](Counters& c) { ++c.bad; });
      return;
    }
    const auto* s = twin::GetTwinState(bytes);
    RobotWriters* w = WritersFor(robot);
    if (w == nullptr) return;
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
    js.name = {static_cast<uint32_t>(names.size()), static_cast<uint32_t>(names.size()),
               names.data(), false};
    js.position = seq(position);
    js.velocity = seq(velocity);
    js.effort = seq(effort);
    (void)w->joints->Write(&js);

    // Odometry.
    nav_msgs_msg_dds__Odometry_ odom{};
    odom.header.stamp = stamp;
    odom.header.frame_id = const_cast<char*>(options_.frame.c_str());
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
      t.header.frame_id = const_cast<char*>(options_.frame.c_str());
      t.child_frame_id = children[i].data();
      const events::Pose* pose =
          s->link_poses() && s->link_names() && s->link_names()->size() == s->link_poses()->size()
              ? s->link_poses()->Get(static_cast<uint32_t>(i))
              : s->base_pose();
      if (pose) {
        t.transform.translation = {pose->position().x(), pose->position().y(),
                                   pose->position().z()};
        t.transform.rotation = {pose->orientation().x(), pose->orientation().y(),
                                pose->orientation().z(), pose->orientation().w()};
      }
    }
    tf2_msgs_msg_dds__TFMessage_ tf{};
    tf.transforms = {static_cast<uint32_t>(transforms.size()),
                     static_cast<uint32_t>(transforms.size()), transforms.data(), false};
    (void)tf_->Write(&tf);

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
      message = fmt::format("collision with {} predicted in {:.2f} s",
                            s->prediction()->collision_obstacle()
                                ? s->prediction()->collision_obstacle()->str()
                                : "?",
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
    (void)diagnostics_->Write(&array);
    Count([](Counters& c) { ++c.states; });
  }

  void PublishPath(const eventstore::RecordedEvent& e) {
    const std::string robot(e.stream().substr(6));
    RobotWriters* w = WritersFor(robot);
    if (w == nullptr) return;
    const auto* p =
        flatbuffers::GetRoot<events::PredictionMade>(AlignedBytes(e.payload(), payload_scratch_));
    std::vector<geometry_msgs_msg_dds__PoseStamped_> poses;
    if (p->trajectory()) {
      for (const auto* sample : *p->trajectory()) {
        geometry_msgs_msg_dds__PoseStamped_ ps{};
        ps.header.stamp = ToRosTime(p->start_ns() + sample->t_offset_ns());
        ps.header.frame_id = const_cast<char*>(options_.frame.c_str());
        if (sample->base_pose()) SetPose(ps.pose, *sample->base_pose());
        poses.push_back(ps);
      }
    }
    nav_msgs_msg_dds__Path_ path{};
    path.header.stamp = ToRosTime(p->start_ns());
    path.header.frame_id = const_cast<char*>(options_.frame.c_str());
    path.poses = {static_cast<uint32_t>(poses.size()), static_cast<uint32_t>(poses.size()),
                  poses.data(), false};
    (void)w->path->Write(&path);
    Count([](Counters& c) { ++c.paths; });
  }

  template <typename F>
  void Count(F f) {
    std::lock_guard lock(mu_);
    f(counters_);
  }

  EgressOptions options_;
  std::unique_ptr<Participant> participant_;
  std::unique_ptr<Writer> tf_, diagnostics_;
  zmq::socket_t sub_;
  std::vector<uint64_t> scratch_;          // for misaligned messages
  std::vector<uint64_t> payload_scratch_;  // for payloads nested in envelopes
  std::unique_ptr<eventstore::Subscription> predictions_, commands_;
  std::unique_ptr<CommandRelay> relay_;  // after participant_: its writers use it
  std::map<std::string, RobotWriters> robots_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  Counters counters_;
};

DdsEgress::DdsEgress(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DdsEgress::~DdsEgress() = default;

Result<std::unique_ptr<DdsEgress>> DdsEgress::Start(EgressOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  DOPPEL_RETURN_IF_ERROR(impl->Start());
  return std::unique_ptr<DdsEgress>(new DdsEgress(std::move(impl)));
}

DdsEgress::Counters DdsEgress::counters() const { return impl_->counters(); }

}  // namespace doppel::dds
