// OdeWorld: the one thin layer over ODE's C API in doppel. A world, two collision groups
// (robot and environment), bodies, primitive geoms, hinge and fixed joints with velocity
// motors, fixed-step integration, and contact queries between the groups. Nothing else in
// doppel calls d* functions.
//
// Not thread-safe; one OdeWorld per thread at a time. Worlds on different threads are fine.
#pragma once

#include <Eigen/Geometry>
#include <memory>
#include <optional>
#include <string>
#include <vector>

struct dxWorld;
struct dxSpace;
struct dxBody;
struct dxGeom;
struct dxJoint;
struct dxJointGroup;

namespace doppel::twins {

class OdeWorld {
 public:
  using Body = dxBody*;
  using Joint = dxJoint*;
  enum class Group { kRobot, kEnvironment };

  explicit OdeWorld(const Eigen::Vector3d& gravity = Eigen::Vector3d(0, 0, -9.81));
  ~OdeWorld();
  OdeWorld(const OdeWorld&) = delete;
  OdeWorld& operator=(const OdeWorld&) = delete;

  // A rigid body at `pose`, with mass, center of mass and inertia (about the center of mass,
  // in the body frame). A kinematic body follows the velocity it is given and ignores forces.
  Body AddBody(const Eigen::Isometry3d& pose, double mass, const Eigen::Vector3d& center_of_mass,
               const Eigen::Matrix3d& inertia, bool kinematic = false);
  // Geoms: attached to `body` at `offset` (body frame), or static in the world at `offset`
  // when body is nullptr. `label` names the geom in contacts.
  void AddBox(Body body, Group group, const Eigen::Vector3d& size, const Eigen::Isometry3d& offset,
              const std::string& label);
  void AddSphere(Body body, Group group, double radius, const Eigen::Isometry3d& offset,
                 const std::string& label);
  // A cylinder along its local z axis.
  void AddCylinder(Body body, Group group, double radius, double length,
                   const Eigen::Isometry3d& offset, const std::string& label);
  // The static plane n . p = d.
  void AddPlane(Group group, const Eigen::Vector3d& normal, double d, const std::string& label);

  // A hinge between `parent` (nullptr = the world) and `child`, through `anchor` about
  // `axis` (both in world coordinates).
  Joint AddHinge(Body parent, Body child, const Eigen::Vector3d& anchor,
                 const Eigen::Vector3d& axis);
  Joint AddFixed(Body parent, Body child);
  // Angle and rate relative to the configuration when the hinge was made.
  double HingeAngle(Joint joint) const;
  double HingeRate(Joint joint) const;
  // Drives the hinge toward `velocity` with at most `max_torque`.
  void SetHingeMotor(Joint joint, double velocity, double max_torque);

  void SetVelocity(Body body, const Eigen::Vector3d& linear, const Eigen::Vector3d& angular);
  Eigen::Isometry3d Pose(Body body) const;
  Eigen::Vector3d LinearVelocity(Body body) const;
  void SetPose(Body body, const Eigen::Isometry3d& pose);

  // One fixed step of `dt` seconds. With `contacts` on, robot-environment contacts push
  // back (rigid, frictional); otherwise bodies pass through and contacts are only reported.
  // `quick_iterations` > 0 uses ODE's iterative solver (dWorldQuickStep) with that many
  // iterations: much cheaper for articulated chains, slightly less exact than the default
  // direct solver.
  void Step(double dt, bool contacts = false, int quick_iterations = 0);

  struct Contact {
    std::string robot_geom;
    std::string environment_geom;
    Eigen::Vector3d point;
  };
  // The first contact between the robot group and the environment group, if any now.
  std::optional<Contact> FirstContact() const;

 private:
  void AddGeom(dxGeom* geom, Body body, Group group, const Eigen::Isometry3d& offset,
               const std::string& label);

  dxWorld* world_ = nullptr;
  dxSpace* robot_ = nullptr;
  dxSpace* environment_ = nullptr;
  dxJointGroup* contact_joints_ = nullptr;
  std::vector<std::unique_ptr<std::string>> labels_;            // geom data pointers
  std::vector<std::unique_ptr<Eigen::Vector3d>> body_offsets_;  // body data: center of mass
};

}  // namespace doppel::twins
