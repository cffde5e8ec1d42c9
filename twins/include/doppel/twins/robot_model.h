// RobotModel: a robot's kinematic tree, joint limits, link inertias and collision shapes,
// read from URDF (urdfdom), with forward kinematics on Eigen.
//
// Conventions: links are ordered root first (depth first, children in URDF order), and
// "movable joints" (revolute, continuous, prismatic) keep that order; joint position
// vectors are indexed by it. Poses are in the model's root frame.
// Collision meshes cannot be loaded here (no mesh files ship with a URDF string), so a mesh
// becomes a box the size of its scale vector, flagged `approximated`.
#pragma once

#include <Eigen/Geometry>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "doppel/core/status.h"

namespace doppel::twins {

struct CollisionShape {
  enum class Kind { kBox, kCylinder, kSphere };
  Kind kind = Kind::kBox;
  Eigen::Vector3d size = Eigen::Vector3d::Zero();  // box: x y z; cylinder: radius, length, 0;
                                                   // sphere: radius, 0, 0
  Eigen::Isometry3d origin = Eigen::Isometry3d::Identity();  // in the link frame
  bool approximated = false;                                 // a mesh replaced by a box
};

struct LinkSpec {
  std::string name;
  int parent_joint = -1;  // index into joints(), -1 for the root
  double mass = 0;
  Eigen::Vector3d center_of_mass = Eigen::Vector3d::Zero();
  Eigen::Matrix3d inertia = Eigen::Matrix3d::Zero();  // about the center of mass
  std::vector<CollisionShape> collisions;
};

struct JointSpec {
  enum class Type { kFixed, kRevolute, kContinuous, kPrismatic };
  std::string name;
  Type type = Type::kFixed;
  int parent_link = -1;
  int child_link = -1;
  Eigen::Isometry3d origin = Eigen::Isometry3d::Identity();  // child frame in parent frame at 0
  Eigen::Vector3d axis = Eigen::Vector3d::UnitZ();
  bool limited = false;  // revolute and prismatic joints have position limits
  double lower = 0, upper = 0;
  double velocity_limit = 0, effort_limit = 0;
  int movable_index = -1;  // index into joint position vectors; -1 for fixed joints

  bool movable() const { return type != Type::kFixed; }
};

// A differential-drive base, recognised by continuous joints named left_wheel_joint and
// right_wheel_joint.
struct DiffDrive {
  int left_joint = -1;  // movable indices
  int right_joint = -1;
  double wheel_radius = 0;
  double wheel_separation = 0;
};

class RobotModel {
 public:
  static Result<RobotModel> FromUrdf(std::string_view urdf);
  // The models that ship with doppel: "doppel_arm6", "doppel_base".
  static Result<RobotModel> Builtin(std::string_view name);
  static std::vector<std::string> BuiltinNames();
  // A model known only by its joint names (a robot that registered without a URDF): its
  // state is tracked, but it has no kinematics or physics.
  static RobotModel Generic(std::string name, std::vector<std::string> joint_names);

  const std::string& name() const { return name_; }
  bool has_kinematics() const { return !links_.empty(); }
  const std::vector<LinkSpec>& links() const { return links_; }
  const std::vector<JointSpec>& joints() const { return joints_; }
  // Names of the movable joints, in position-vector order.
  const std::vector<std::string>& joint_names() const { return joint_names_; }
  std::optional<int> MovableIndex(std::string_view joint_name) const;
  std::optional<int> LinkIndex(std::string_view link_name) const;
  const std::optional<DiffDrive>& diff_drive() const { return diff_drive_; }

  // The pose of every link (links() order) in the root frame, for joint positions in
  // joint_names() order. REQUIRES: positions.size() == joint_names().size()
  std::vector<Eigen::Isometry3d> LinkPoses(std::span<const double> positions) const;
  // The last link in depth-first order that has no children: the tool of an arm.
  int end_effector_link() const { return end_effector_; }

 private:
  std::string name_;
  std::vector<LinkSpec> links_;
  std::vector<JointSpec> joints_;
  std::vector<std::string> joint_names_;
  std::optional<DiffDrive> diff_drive_;
  int end_effector_ = -1;
};

}  // namespace doppel::twins
