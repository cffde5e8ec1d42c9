#include "doppel/twins/predictor.h"

#include <cmath>

#include "doppel/schemas/limits.h"
#include "doppel/twins/ode_world.h"

namespace doppel::twins {
namespace {

// Attaches a link's collision shapes to `body`; `link_in_body` places the link frame in the
// body's link frame (identity when the body is the link itself).
void AddLinkShapes(OdeWorld& world, OdeWorld::Body body, const LinkSpec& link,
                   const Eigen::Isometry3d& link_in_body) {
  for (size_t i = 0; i < link.collisions.size(); ++i) {
    const CollisionShape& shape = link.collisions[i];
    const Eigen::Isometry3d offset = link_in_body * shape.origin;
    switch (shape.kind) {
      case CollisionShape::Kind::kBox:
        world.AddBox(body, OdeWorld::Group::kRobot, shape.size, offset, link.name);
        break;
      case CollisionShape::Kind::kCylinder:
        world.AddCylinder(body, OdeWorld::Group::kRobot, shape.size.x(), shape.size.y(), offset,
                          link.name);
        break;
      case CollisionShape::Kind::kSphere:
        world.AddSphere(body, OdeWorld::Group::kRobot, shape.size.x(), offset, link.name);
        break;
    }
  }
}

// Keeps the first robot-environment contact of the prediction.
void RecordFirstContact(const OdeWorld& world, double t, Prediction& out) {
  if (out.collision) return;
  if (auto contact = world.FirstContact()) {
    out.collision =
        PredictedCollision{t, contact->robot_geom, contact->environment_geom, contact->point};
  }
}

bool Finite(const Eigen::Isometry3d& pose) { return pose.matrix().allFinite(); }

bool Finite(const std::vector<double>& values, bool nan_allowed = false) {
  for (double v : values) {
    if (!std::isfinite(v) && !(nan_allowed && std::isnan(v))) return false;
  }
  return true;
}

// Why `request` cannot be predicted, or empty. NaN joint targets mean "hold" and are fine.
std::string RefusalOf(const PredictionRequest& r) {
  if (!Finite(r.base_pose)) return "base pose is not finite";
  if (!Finite(r.joint_positions)) return "a joint position is not finite";
  if (!r.linear.allFinite() || !r.angular.allFinite()) return "commanded twist is not finite";
  if (!Finite(r.joint_targets, /*nan_allowed=*/true)) return "a joint target is infinite";
  return "";
}

double Yaw(const Eigen::Isometry3d& pose) {
  const Eigen::Matrix3d r = pose.rotation();
  return std::atan2(r(1, 0), r(0, 0));
}

}  // namespace

Predictor::Predictor(std::shared_ptr<const RobotModel> model, std::shared_ptr<const Scene> scene)
    : model_(std::move(model)), scene_(std::move(scene)) {
  // A chain is never longer than the sum of its joint offsets (a prismatic joint is held
  // fixed); add the largest collision shape at the end of it.
  double shape = 0;
  for (const LinkSpec& link : model_->links()) {
    for (const CollisionShape& c : link.collisions) {
      shape = std::max(shape, c.origin.translation().norm() + c.size.norm());
    }
  }
  for (const JointSpec& j : model_->joints()) extent_ += j.origin.translation().norm();
  extent_ += shape;
}

void Predictor::AddScene(OdeWorld& world, const Eigen::Vector3d& center, double reach) const {
  if (!scene_) return;
  for (const Obstacle& o : scene_->obstacles) {
    if ((o.pose.translation() - center).norm() > reach + o.bounding_radius) continue;
    if (o.kind == Obstacle::Kind::kBox) {
      world.AddBox(nullptr, OdeWorld::Group::kEnvironment, o.size, o.pose, o.name);
    } else {
      world.AddCylinder(nullptr, OdeWorld::Group::kEnvironment, o.size.x(), o.size.y(), o.pose,
                        o.name);
    }
  }
}

Prediction Predictor::Predict(const PredictionRequest& request,
                              const PredictionOptions& options) const {
  if (std::string refusal = RefusalOf(request); !refusal.empty()) {
    Prediction refused;
    refused.refused = std::move(refusal);
    return refused;
  }
  return model_->diff_drive() ? PredictBase(request, options) : PredictArm(request, options);
}

Prediction Predictor::PredictBase(const PredictionRequest& request,
                                  const PredictionOptions& options) const {
  const RobotModel& model = *model_;
  const DiffDrive& dd = *model.diff_drive();
  OdeWorld world;
  std::vector<double> q = request.joint_positions;
  q.resize(model.joint_names().size(), 0.0);
  // The whole robot is one kinematic body in its root frame.
  OdeWorld::Body body = world.AddBody(request.base_pose, 1.0, Eigen::Vector3d::Zero(),
                                      Eigen::Matrix3d::Identity(), /*kinematic=*/true);
  const auto poses = model.LinkPoses(q);
  for (size_t i = 0; i < model.links().size(); ++i) {
    AddLinkShapes(world, body, model.links()[i], poses[i]);
  }
  double v = 0, w = 0;
  if (request.command == PredictionRequest::Command::kVelocity) {
    v = request.linear.x();
    w = request.angular.z();
  }
  Prediction out;
  // Wheel speeds within the wheel joints' limits; beyond them both are scaled down together,
  // so the base still drives the commanded arc.
  double wheel_limit = 0;
  for (const auto& j : model.joints()) {
    if ((j.movable_index == dd.left_joint || j.movable_index == dd.right_joint) &&
        j.velocity_limit > 0) {
      wheel_limit = wheel_limit == 0 ? j.velocity_limit : std::min(wheel_limit, j.velocity_limit);
    }
  }
  if (wheel_limit == 0) wheel_limit = schemas::kMaxCommandLinear / dd.wheel_radius;
  const double fastest_wheel = std::max(std::fabs(v - w * dd.wheel_separation / 2),
                                        std::fabs(v + w * dd.wheel_separation / 2)) /
                               dd.wheel_radius;
  if (fastest_wheel > wheel_limit) {
    const double scale = wheel_limit / fastest_wheel;
    v *= scale;
    w *= scale;
    out.command_limited = true;
  }
  AddScene(world, request.base_pose.translation(),
           extent_ + std::fabs(v) * options.horizon_s + 1e-3);
  const int steps = static_cast<int>(std::lround(options.horizon_s / options.step_s));
  const int sample_every =
      std::max(1, static_cast<int>(std::lround(options.sample_every_s / options.step_s)));
  auto sample = [&](int step) {
    out.trajectory.push_back({step * options.step_s, world.Pose(body), q});
  };
  sample(0);
  for (int step = 1; step <= steps; ++step) {
    // Heading at the middle of the step: second-order accurate on arcs.
    const double yaw = Yaw(world.Pose(body)) + w * options.step_s / 2;
    world.SetVelocity(body, Eigen::Vector3d(v * std::cos(yaw), v * std::sin(yaw), 0),
                      Eigen::Vector3d(0, 0, w));
    world.Step(options.step_s);
    q[dd.left_joint] += (v - w * dd.wheel_separation / 2) / dd.wheel_radius * options.step_s;
    q[dd.right_joint] += (v + w * dd.wheel_separation / 2) / dd.wheel_radius * options.step_s;
    RecordFirstContact(world, step * options.step_s, out);
    if (step % sample_every == 0) sample(step);
    out.steps = step;
  }
  return out;
}

Prediction Predictor::PredictArm(const PredictionRequest& request,
                                 const PredictionOptions& options) const {
  const RobotModel& model = *model_;
  OdeWorld world;
  AddScene(world, request.base_pose.translation(), extent_ + 1e-3);
  const size_t n = model.joint_names().size();
  std::vector<double> q0 = request.joint_positions;
  q0.resize(n, 0.0);
  const auto poses = model.LinkPoses(q0);
  // One body per link; the root is kinematic and holds still (a fixed base).
  std::vector<OdeWorld::Body> bodies(model.links().size(), nullptr);
  std::vector<OdeWorld::Joint> hinges(n, nullptr);
  // A link on a fixed joint rides on its parent's body (its shapes move with it; its mass
  // is left out, small next to the motors): fewer bodies and constraint rows per step.
  std::vector<int> owner(model.links().size(), -1);  // link whose body carries this link
  for (size_t i = 0; i < model.links().size(); ++i) {
    const LinkSpec& link = model.links()[i];
    const Eigen::Isometry3d pose = request.base_pose * poses[i];
    if (i > 0 && model.joints()[link.parent_joint].type == JointSpec::Type::kFixed) {
      const int carrier = owner[model.joints()[link.parent_joint].parent_link];
      owner[i] = carrier;
      bodies[i] = bodies[carrier];
      AddLinkShapes(world, bodies[i], link, poses[carrier].inverse() * poses[i]);
      continue;
    }
    owner[i] = static_cast<int>(i);
    bodies[i] = world.AddBody(pose, link.mass, link.center_of_mass, link.inertia,
                              /*kinematic=*/i == 0);
    AddLinkShapes(world, bodies[i], link, Eigen::Isometry3d::Identity());
    if (i == 0) continue;
    const JointSpec& j = model.joints()[link.parent_joint];
    OdeWorld::Body parent = bodies[j.parent_link];
    if (j.type == JointSpec::Type::kRevolute || j.type == JointSpec::Type::kContinuous) {
      hinges[j.movable_index] =
          world.AddHinge(parent, bodies[i], pose.translation(), pose.rotation() * j.axis);
    } else {
      world.AddFixed(parent, bodies[i]);  // prismatic: held fixed
    }
  }
  std::vector<double> targets = q0;
  if (request.command == PredictionRequest::Command::kJointTargets) {
    for (size_t k = 0; k < n && k < request.joint_targets.size(); ++k) {
      if (!std::isnan(request.joint_targets[k])) targets[k] = request.joint_targets[k];
    }
  }
  const int steps = static_cast<int>(std::lround(options.horizon_s / options.step_s));
  const int sample_every =
      std::max(1, static_cast<int>(std::lround(options.sample_every_s / options.step_s)));
  Prediction out;
  std::vector<bool> violated(n, false);
  std::vector<const JointSpec*> specs(n, nullptr);
  for (const auto& j : model.joints()) {
    if (j.movable_index >= 0) specs[j.movable_index] = &j;
  }
  std::vector<double> q = q0;
  auto sample = [&](int step) {
    out.trajectory.push_back({step * options.step_s, request.base_pose, q});
  };
  sample(0);
  for (int step = 1; step <= steps; ++step) {
    for (size_t k = 0; k < n; ++k) {
      if (!hinges[k]) continue;
      const JointSpec* spec = specs[k];
      const double limit = spec->velocity_limit > 0 ? spec->velocity_limit : 2.0;
      const double velocity = std::clamp(options.joint_gain * (targets[k] - q[k]), -limit, limit);
      world.SetHingeMotor(hinges[k], velocity, std::max(spec->effort_limit, 1000.0));
    }
    world.Step(options.step_s, false, options.arm_solver_iterations);
    for (size_t k = 0; k < n; ++k) {
      if (hinges[k]) q[k] = q0[k] + world.HingeAngle(hinges[k]);
    }
    for (const auto& j : model.joints()) {
      if (!j.limited || j.movable_index < 0 || violated[j.movable_index]) continue;
      const double value = q[j.movable_index];
      if (value < j.lower || value > j.upper) {
        violated[j.movable_index] = true;
        out.limit_violations.push_back(
            {j.name, step * options.step_s, value, value < j.lower ? j.lower : j.upper});
      }
    }
    RecordFirstContact(world, step * options.step_s, out);
    if (step % sample_every == 0) sample(step);
    out.steps = step;
  }
  return out;
}

}  // namespace doppel::twins
