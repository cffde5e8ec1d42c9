#include "doppel/bridges/sim_fleet.h"

#include <fmt/format.h>

#include <atomic>
#include <cmath>
#include <random>
#include <thread>
#include <vector>

#include "doppel/bridges/dds.h"
#include "doppel/core/clock.h"
#include "doppel/core/log.h"
#include "ros2_msgs.h"

namespace doppel::dds {
namespace {

constexpr double kWheelRadius = 0.1, kWheelSeparation = 0.45;  // doppel_base.urdf

const char* kArmJoints[] = {"shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint",
                            "wrist_1_joint",      "wrist_2_joint",       "wrist_3_joint"};
const char* kWheelJoints[] = {"left_wheel_joint", "right_wheel_joint"};

}  // namespace

class SimFleet::Impl {
 public:
  explicit Impl(SimFleetOptions options) : options_(std::move(options)), rng_(options_.seed) {}

  Status Start() {
    auto participant = Participant::Create(options_.domain);
    if (!participant.ok()) return participant.status();
    participant_ = std::make_unique<Participant>(std::move(participant).value());
    for (int i = 0; i < options_.robots; ++i) {
      Robot r;
      r.arm = i % 2 == 0;
      r.index = i / 2;
      r.name = fmt::format("{}_{}_{}", options_.prefix, r.arm ? "arm" : "base", r.index);
      r.phase = std::uniform_real_distribution<double>(0, 6.28)(rng_);
      auto joints = Writer::Create(*participant_, &sensor_msgs_msg_dds__JointState__desc,
                                   "rt/" + r.name + "/joint_states");
      if (!joints.ok()) return joints.status();
      r.joints = std::make_unique<Writer>(std::move(joints).value());
      auto diagnostics =
          Writer::Create(*participant_, &diagnostic_msgs_msg_dds__DiagnosticArray__desc,
                         "rt/" + r.name + "/diagnostics");
      if (!diagnostics.ok()) return diagnostics.status();
      r.diagnostics = std::make_unique<Writer>(std::move(diagnostics).value());
      // The robot's mode as a latched std_msgs/String (what a late reader gets at once).
      auto mode = Writer::Create(*participant_, &std_msgs_msg_dds__String__desc,
                                 "rt/" + r.name + "/mode", QosSpec{true, true, 1});
      if (!mode.ok()) return mode.status();
      r.mode = std::make_unique<Writer>(std::move(mode).value());
      if (!r.arm) {
        auto odom = Writer::Create(*participant_, &nav_msgs_msg_dds__Odometry__desc,
                                   "rt/" + r.name + "/odom");
        auto cmd = Writer::Create(*participant_, &geometry_msgs_msg_dds__Twist__desc,
                                  "rt/" + r.name + "/cmd_vel");
        if (!odom.ok()) return odom.status();
        if (!cmd.ok()) return cmd.status();
        r.odom = std::make_unique<Writer>(std::move(odom).value());
        r.cmd = std::make_unique<Writer>(std::move(cmd).value());
        // Commands from anyone but ourselves.
        auto reader = Reader::Create(*participant_, &geometry_msgs_msg_dds__Twist__desc,
                                     "rt/" + r.name + "/cmd_vel", QosSpec{true, false, 10},
                                     /*ignore_local=*/true);
        if (!reader.ok()) return reader.status();
        r.external = std::make_unique<Reader>(std::move(reader).value());
        r.x = r.index == 0 ? 0 : 4.0 * std::cos(r.phase);
        r.y = r.index == 0 ? 0 : 4.0 * std::sin(r.phase);
      }
      robots_.push_back(std::move(r));
    }
    thread_ = std::thread([this] { Run(); });
    log::Info("sim-fleet", "{} simulated robots at {} Hz", options_.robots, options_.rate_hz);
    return Status::Ok();
  }

  ~Impl() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

  uint64_t published() const { return published_.load(); }

 private:
  struct Robot {
    bool arm = true;
    int index = 0;
    std::string name;
    double phase = 0;
    std::unique_ptr<Writer> joints, odom, cmd;
    std::unique_ptr<Reader> external;
    std::unique_ptr<Writer> diagnostics;
    std::unique_ptr<Writer> mode;
    const char* mode_now = nullptr;  // last mode published
    double mode_published_at = -1;
    double fault_until = -1;  // a simulated fault is active until then
    double x = 0, y = 0, yaw = 0, left = 0, right = 0;
    double override_until = -1, override_v = 0, override_w = 0;
    double silent_until = -1;
    double direction = 1;  // the shuttling base
  };

  void Run() {
    const double dt = 1.0 / options_.rate_hz;
    const int64_t start = MonotonicNowNs();
    int64_t next = start;
    std::uniform_real_distribution<double> unit(0, 1);
    while (!stop_) {
      const double t = (MonotonicNowNs() - start) / 1e9;
      const TimeNs now = WallNowNs();
      for (Robot& r : robots_) {
        if (t < r.silent_until) continue;
        if (r.fault_until < 0 && unit(rng_) < options_.fault_chance_per_s * dt) {
          r.fault_until = t + 5.0;
          PublishDiagnostics(r, 2, now);
        } else if (r.fault_until >= 0 && t >= r.fault_until) {
          r.fault_until = -1;
          PublishDiagnostics(r, 0, now);
        }
        if (unit(rng_) < options_.silence_chance_per_s * dt) {
          r.silent_until = t + 3.0;
          continue;
        }
        r.arm ? StepArm(r, t, now) : StepBase(r, t, dt, now);
        PublishMode(r, t);
      }
      next += static_cast<int64_t>(dt * 1e9);
      const int64_t wait = next - MonotonicNowNs();
      if (wait > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(wait));
    }
  }

  // Autonomous while following its own plan, Manual while an operator's cmd_vel drives it.
  // Published on every change and once a second.
  void PublishMode(Robot& r, double t) {
    const char* mode = t < r.override_until ? "Manual" : "Autonomous";
    if (mode == r.mode_now && t - r.mode_published_at < 1.0) return;
    std_msgs_msg_dds__String_ msg{};
    msg.data = const_cast<char*>(mode);
    if (r.mode->Write(&msg).ok()) {
      r.mode_now = mode;
      r.mode_published_at = t;
    }
  }

  // ROS diagnostics as a robot's driver reports them: one status whose level goes to ERROR
  // while the simulated motor overheats and back to OK after.
  void PublishDiagnostics(Robot& r, uint8_t level, TimeNs now) {
    const std::string name = r.arm ? "joint_3_motor_overtemp" : "drive_motor_overtemp";
    diagnostic_msgs_msg_dds__DiagnosticStatus_ st{};
    st.level = level;
    st.name = const_cast<char*>(name.c_str());
    st.message = const_cast<char*>(level == 0 ? "OK" : "motor temperature above 90 C");
    st.hardware_id = const_cast<char*>(r.name.c_str());
    diagnostic_msgs_msg_dds__DiagnosticArray_ d{};
    d.header.stamp = ToRosTime(now);
    d.header.frame_id = const_cast<char*>("");
    d.status = {1, 1, &st, false};
    (void)r.diagnostics->Write(&d);
  }

  void StepArm(Robot& r, double t, TimeNs now) {
    double q[6], qd[6];
    for (int j = 0; j < 6; ++j) {
      const double w = 0.3 + 0.1 * j, a = j == 1 ? 0.8 : 1.0;
      q[j] = a * std::sin(w * t + r.phase + j);
      qd[j] = a * w * std::cos(w * t + r.phase + j);
    }
    PublishJoints(r, kArmJoints, q, qd, 6, now);
  }

  void StepBase(Robot& r, double t, double dt, TimeNs now) {
    (void)r.external->Take(
        [&](const void* sample) {
          const auto* tw = static_cast<const geometry_msgs_msg_dds__Twist_*>(sample);
          r.override_v = tw->linear.x;
          r.override_w = tw->angular.z;
          r.override_until = t + 3.0;
        },
        std::chrono::milliseconds(0));
    double v, w;
    if (t < r.override_until) {
      v = r.override_v;
      w = r.override_w;
    } else if (r.index == 0) {
      // Shuttle along +x between 0 and 3 m.
      if (r.x > 3.0) r.direction = -1;
      if (r.x < 0.0) r.direction = 1;
      v = 0.6 * r.direction;
      w = 0;
    } else {
      const double radius = 2.0 + r.index;
      v = 0.5;
      w = v / radius;
    }
    // Integrate (midpoint heading) and publish what the robot would report.
    r.x += v * std::cos(r.yaw + w * dt / 2) * dt;
    r.y += v * std::sin(r.yaw + w * dt / 2) * dt;
    r.yaw += w * dt;
    r.left += (v - w * kWheelSeparation / 2) / kWheelRadius * dt;
    r.right += (v + w * kWheelSeparation / 2) / kWheelRadius * dt;
    nav_msgs_msg_dds__Odometry_ odom{};
    odom.header.stamp = ToRosTime(now);
    odom.header.frame_id = const_cast<char*>("map");
    odom.child_frame_id = const_cast<char*>("base_footprint");
    odom.pose.pose.position = {r.x, r.y, 0};
    odom.pose.pose.orientation = {0, 0, std::sin(r.yaw / 2), std::cos(r.yaw / 2)};
    odom.twist.twist.linear = {v, 0, 0};
    odom.twist.twist.angular = {0, 0, w};
    if (r.odom->Write(&odom).ok()) ++published_;
    double q[2] = {r.left, r.right};
    double qd[2] = {(v - w * kWheelSeparation / 2) / kWheelRadius,
                    (v + w * kWheelSeparation / 2) / kWheelRadius};
    PublishJoints(r, kWheelJoints, q, qd, 2, now);
    // The planner's command, a few times a second (the twin predicts from it).
    if (t >= r.override_until && std::fmod(t, 0.5) < 1.0 / options_.rate_hz) {
      geometry_msgs_msg_dds__Twist_ cmd{};
      cmd.linear.x = v;
      cmd.angular.z = w;
      if (r.cmd->Write(&cmd).ok()) ++published_;
    }
  }

  void PublishJoints(Robot& r, const char* const* names, double* q, double* qd, uint32_t n,
                     TimeNs now) {
    sensor_msgs_msg_dds__JointState_ js{};
    js.header.stamp = ToRosTime(now);
    js.header.frame_id = const_cast<char*>("base_link");
    js.name = {n, n, const_cast<char**>(names), false};
    js.position = {n, n, q, false};
    js.velocity = {n, n, qd, false};
    if (r.joints->Write(&js).ok()) ++published_;
  }

  SimFleetOptions options_;
  std::mt19937_64 rng_;
  std::unique_ptr<Participant> participant_;
  std::vector<Robot> robots_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> published_{0};
  std::thread thread_;
};

SimFleet::SimFleet(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SimFleet::~SimFleet() = default;

Result<std::unique_ptr<SimFleet>> SimFleet::Start(SimFleetOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  DOPPEL_RETURN_IF_ERROR(impl->Start());
  return std::unique_ptr<SimFleet>(new SimFleet(std::move(impl)));
}

uint64_t SimFleet::samples_published() const { return impl_->published(); }

}  // namespace doppel::dds
