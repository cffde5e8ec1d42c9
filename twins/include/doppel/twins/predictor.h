// Predictor: looks a few seconds ahead with ODE. Each call builds a deterministic world for
// one robot (its URDF links and joints) plus the site's static obstacles, runs it with a
// fixed step to the horizon while motors follow the last command, and reports a decimated
// trajectory, the first predicted contact with an obstacle, and joint-limit crossings.
//
// Two kinds of robot:
// - a differential-drive base (RobotModel::diff_drive()) moves as one kinematic rigid body
//   made of all its collision shapes, following the commanded twist without wheel slip;
//   wheel angles follow from the twist;
// - anything else is an articulated arm on a fixed base: links are dynamic bodies on hinges
//   whose velocity motors track the commanded joint targets. Joint limits are not enforced
//   in the simulation: a crossing is what the prediction is for.
// Prismatic joints are held fixed (no shipped model has one).
#pragma once

#include <Eigen/Geometry>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "doppel/twins/robot_model.h"
#include "doppel/twins/scene.h"

namespace doppel::twins {

struct PredictionRequest {
  Eigen::Isometry3d base_pose = Eigen::Isometry3d::Identity();  // site frame
  std::vector<double> joint_positions;                          // RobotModel::joint_names() order
  // What the robot was told to do. kHold keeps joints where they are and the base still.
  enum class Command { kHold, kVelocity, kJointTargets, kStop };
  Command command = Command::kHold;
  Eigen::Vector3d linear = Eigen::Vector3d::Zero();   // base frame, for kVelocity
  Eigen::Vector3d angular = Eigen::Vector3d::Zero();  // base frame, for kVelocity
  std::vector<double> joint_targets;                  // model order, for kJointTargets (NaN = hold)
};

struct PredictionOptions {
  double step_s = 0.001;
  double horizon_s = 2.0;
  double sample_every_s = 0.1;
  double joint_gain = 8.0;        // 1/s: commanded joint velocity = gain * (target - position)
  int arm_solver_iterations = 0;  // > 0: ODE quick-step with this many iterations (arms)
};

struct PredictedSample {
  double t = 0;
  Eigen::Isometry3d base_pose = Eigen::Isometry3d::Identity();
  std::vector<double> joint_positions;
};

struct PredictedCollision {
  double t = 0;
  std::string link;
  std::string obstacle;
  Eigen::Vector3d point = Eigen::Vector3d::Zero();
};

struct PredictedLimitViolation {
  std::string joint;
  double t = 0;
  double value = 0;
  double limit = 0;
};

struct Prediction {
  std::vector<PredictedSample> trajectory;  // t = 0 first, then every sample_every_s
  std::optional<PredictedCollision> collision;
  std::vector<PredictedLimitViolation> limit_violations;  // first crossing per joint
  int steps = 0;
  // Why nothing was predicted (a non-finite pose, joint or command reached the predictor:
  // ODE asserts on such values, so they never reach it). Empty when predicted.
  std::string refused;
  // The command was beyond the robot's limits and was predicted at the limit.
  bool command_limited = false;
};

// Commands are followed within the robot's own limits: a base's wheel speeds within its
// wheel joints' velocity limits (the commanded arc kept), an arm's joints within theirs.
class Predictor {
 public:
  // REQUIRES: model.has_kinematics()
  Predictor(std::shared_ptr<const RobotModel> model, std::shared_ptr<const Scene> scene);
  Prediction Predict(const PredictionRequest& request, const PredictionOptions& options = {}) const;

 private:
  Prediction PredictBase(const PredictionRequest& request, const PredictionOptions& options) const;
  Prediction PredictArm(const PredictionRequest& request, const PredictionOptions& options) const;
  // Adds the obstacles that something within `reach` of `center` can touch (the broad
  // phase: a prediction costs what is near the robot, not the size of the site).
  void AddScene(class OdeWorld& world, const Eigen::Vector3d& center, double reach) const;

  std::shared_ptr<const RobotModel> model_;
  std::shared_ptr<const Scene> scene_;
  double extent_ = 0;  // radius about the root that holds every link at any joint position
};

}  // namespace doppel::twins
