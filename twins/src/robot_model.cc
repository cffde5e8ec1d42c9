#include "doppel/twins/robot_model.h"

#include <fmt/format.h>
#include <urdf_parser/urdf_parser.h>

#include <functional>
#include <set>

#include "doppel/core/utf8.h"

namespace doppel::twins {

// Defined in the file CMake generates from twins/models/*.urdf.
std::string_view BuiltinUrdf(std::string_view name);

namespace {

Eigen::Isometry3d ToIsometry(const urdf::Pose& p) {
  Eigen::Isometry3d t = Eigen::Isometry3d::Identity();
  t.translate(Eigen::Vector3d(p.position.x, p.position.y, p.position.z));
  t.rotate(Eigen::Quaterniond(p.rotation.w, p.rotation.x, p.rotation.y, p.rotation.z));
  return t;
}

CollisionShape ToShape(const urdf::Collision& c) {
  CollisionShape shape;
  shape.origin = ToIsometry(c.origin);
  switch (c.geometry->type) {
    case urdf::Geometry::BOX: {
      auto box = std::dynamic_pointer_cast<urdf::Box>(c.geometry);
      shape.kind = CollisionShape::Kind::kBox;
      shape.size = Eigen::Vector3d(box->dim.x, box->dim.y, box->dim.z);
      break;
    }
    case urdf::Geometry::CYLINDER: {
      auto cyl = std::dynamic_pointer_cast<urdf::Cylinder>(c.geometry);
      shape.kind = CollisionShape::Kind::kCylinder;
      shape.size = Eigen::Vector3d(cyl->radius, cyl->length, 0);
      break;
    }
    case urdf::Geometry::SPHERE: {
      auto sphere = std::dynamic_pointer_cast<urdf::Sphere>(c.geometry);
      shape.kind = CollisionShape::Kind::kSphere;
      shape.size = Eigen::Vector3d(sphere->radius, 0, 0);
      break;
    }
    case urdf::Geometry::MESH: {
      auto mesh = std::dynamic_pointer_cast<urdf::Mesh>(c.geometry);
      shape.kind = CollisionShape::Kind::kBox;
      shape.size = Eigen::Vector3d(mesh->scale.x, mesh->scale.y, mesh->scale.z);
      shape.approximated = true;
      break;
    }
  }
  return shape;
}

}  // namespace

Result<RobotModel> RobotModel::FromUrdf(std::string_view urdf) {
  // XML text is UTF-8 without NUL. TinyXML 2.6.2 (urdfdom's parser) steps a whole UTF-8
  // sequence at a time from its lead byte, so a sequence cut short by the end of the text
  // carries it past the terminator and it reads beyond the buffer (found by fuzz_urdf):
  // such text never reaches it.
  if (urdf.find('\0') != std::string_view::npos || !IsValidUtf8(urdf)) {
    return Status::InvalidArgument("URDF is not XML text: it holds a NUL or ill-formed UTF-8");
  }
  urdf::ModelInterfaceSharedPtr parsed = urdf::parseURDF(std::string(urdf));
  if (parsed == nullptr || parsed->getRoot() == nullptr) {
    return Status::InvalidArgument("URDF does not parse (see the log for urdfdom's reason)");
  }
  RobotModel model;
  model.name_ = parsed->getName();
  // Depth first from the root: parents before children, children in URDF order. A link met
  // twice (urdfdom accepts a joint whose child is its own parent) would recurse forever: the
  // model is refused instead.
  std::set<std::string> seen;
  std::string cycle;
  std::function<void(const urdf::LinkConstSharedPtr&, int)> visit =
      [&](const urdf::LinkConstSharedPtr& link, int parent_joint) {
        if (!cycle.empty()) return;
        if (!seen.insert(link->name).second) {
          cycle = link->name;
          return;
        }
        const int index = static_cast<int>(model.links_.size());
        LinkSpec spec;
        spec.name = link->name;
        spec.parent_joint = parent_joint;
        if (link->inertial) {
          spec.mass = link->inertial->mass;
          const Eigen::Isometry3d com = ToIsometry(link->inertial->origin);
          spec.center_of_mass = com.translation();
          Eigen::Matrix3d i;
          i << link->inertial->ixx, link->inertial->ixy, link->inertial->ixz, link->inertial->ixy,
              link->inertial->iyy, link->inertial->iyz, link->inertial->ixz, link->inertial->iyz,
              link->inertial->izz;
          spec.inertia = com.rotation() * i * com.rotation().transpose();
        }
        for (const auto& c : link->collision_array) {
          if (c && c->geometry) spec.collisions.push_back(ToShape(*c));
        }
        model.links_.push_back(std::move(spec));
        if (parent_joint >= 0) model.joints_[parent_joint].child_link = index;
        for (const auto& joint : link->child_joints) {
          JointSpec j;
          j.name = joint->name;
          j.parent_link = index;
          j.origin = ToIsometry(joint->parent_to_joint_origin_transform);
          j.axis = Eigen::Vector3d(joint->axis.x, joint->axis.y, joint->axis.z);
          if (j.axis.norm() > 0) j.axis.normalize();
          switch (joint->type) {
            case urdf::Joint::REVOLUTE:
              j.type = JointSpec::Type::kRevolute;
              break;
            case urdf::Joint::CONTINUOUS:
              j.type = JointSpec::Type::kContinuous;
              break;
            case urdf::Joint::PRISMATIC:
              j.type = JointSpec::Type::kPrismatic;
              break;
            default:
              j.type = JointSpec::Type::kFixed;
              break;  // floating/planar: not modelled
          }
          if (joint->limits) {
            j.velocity_limit = joint->limits->velocity;
            j.effort_limit = joint->limits->effort;
            if (j.type == JointSpec::Type::kRevolute || j.type == JointSpec::Type::kPrismatic) {
              j.limited = true;
              j.lower = joint->limits->lower;
              j.upper = joint->limits->upper;
            }
          }
          if (j.movable()) {
            j.movable_index = static_cast<int>(model.joint_names_.size());
            model.joint_names_.push_back(j.name);
          }
          const int joint_index = static_cast<int>(model.joints_.size());
          model.joints_.push_back(std::move(j));
          auto child = parsed->getLink(joint->child_link_name);
          if (child) visit(child, joint_index);
        }
      };
  visit(parsed->getRoot(), -1);
  if (!cycle.empty()) {
    return Status::InvalidArgument(
        fmt::format("URDF link '{}' is reached twice from the root (its joints form a cycle)",
                    ScrubUtf8(cycle.substr(0, 128))));
  }

  for (int i = static_cast<int>(model.links_.size()) - 1; i >= 0; --i) {
    bool has_child = false;
    for (const auto& j : model.joints_) has_child |= j.parent_link == i;
    if (!has_child) {
      model.end_effector_ = i;
      break;
    }
  }
  auto left = model.MovableIndex("left_wheel_joint");
  auto right = model.MovableIndex("right_wheel_joint");
  if (left && right) {
    DiffDrive dd;
    dd.left_joint = *left;
    dd.right_joint = *right;
    const JointSpec* lj = nullptr;
    const JointSpec* rj = nullptr;
    for (const auto& j : model.joints_) {
      if (j.name == "left_wheel_joint") lj = &j;
      if (j.name == "right_wheel_joint") rj = &j;
    }
    dd.wheel_separation = (lj->origin.translation() - rj->origin.translation()).norm();
    for (const auto& shape : model.links_[lj->child_link].collisions) {
      if (shape.kind == CollisionShape::Kind::kCylinder) dd.wheel_radius = shape.size.x();
      if (shape.kind == CollisionShape::Kind::kSphere) dd.wheel_radius = shape.size.x();
    }
    if (dd.wheel_radius <= 0) {
      return Status::InvalidArgument(
          fmt::format("{}: wheel link {} has no cylinder or sphere to take the wheel radius from",
                      model.name_, model.links_[lj->child_link].name));
    }
    model.diff_drive_ = dd;
  }
  return model;
}

Result<RobotModel> RobotModel::Builtin(std::string_view name) {
  const std::string_view urdf = BuiltinUrdf(name);
  if (urdf.empty()) {
    return Status::NotFound(
        fmt::format("no built-in model '{}' (built in: doppel_arm6, doppel_base)", name));
  }
  return FromUrdf(urdf);
}

std::vector<std::string> RobotModel::BuiltinNames() { return {"doppel_arm6", "doppel_base"}; }

RobotModel RobotModel::Generic(std::string name, std::vector<std::string> joint_names) {
  RobotModel model;
  model.name_ = std::move(name);
  model.joint_names_ = std::move(joint_names);
  return model;
}

std::optional<int> RobotModel::MovableIndex(std::string_view joint_name) const {
  for (size_t i = 0; i < joint_names_.size(); ++i) {
    if (joint_names_[i] == joint_name) return static_cast<int>(i);
  }
  return std::nullopt;
}

std::optional<int> RobotModel::LinkIndex(std::string_view link_name) const {
  for (size_t i = 0; i < links_.size(); ++i) {
    if (links_[i].name == link_name) return static_cast<int>(i);
  }
  return std::nullopt;
}

std::vector<Eigen::Isometry3d> RobotModel::LinkPoses(std::span<const double> positions) const {
  std::vector<Eigen::Isometry3d> poses(links_.size(), Eigen::Isometry3d::Identity());
  // Links are in depth-first order, so a link's parent pose is always computed first.
  for (size_t i = 1; i < links_.size(); ++i) {
    const JointSpec& j = joints_[links_[i].parent_joint];
    Eigen::Isometry3d motion = Eigen::Isometry3d::Identity();
    const double q = j.movable_index >= 0 && static_cast<size_t>(j.movable_index) < positions.size()
                         ? positions[j.movable_index]
                         : 0.0;
    if (j.type == JointSpec::Type::kRevolute || j.type == JointSpec::Type::kContinuous) {
      motion.rotate(Eigen::AngleAxisd(q, j.axis));
    } else if (j.type == JointSpec::Type::kPrismatic) {
      motion.translate(j.axis * q);
    }
    poses[i] = poses[j.parent_link] * j.origin * motion;
  }
  return poses;
}

}  // namespace doppel::twins
