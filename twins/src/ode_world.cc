#include "doppel/twins/ode_world.h"

#include <ode/ode.h>

#include <mutex>

namespace doppel::twins {
namespace {

void EnsureOde() {
  static std::once_flag once;
  std::call_once(once, [] { dInitODE2(0); });
  thread_local bool allocated = [] { return dAllocateODEDataForThread(dAllocateMaskAll) != 0; }();
  (void)allocated;
}

void ToOde(const Eigen::Matrix3d& r, dMatrix3 out) {
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) out[i * 4 + j] = r(i, j);
    out[i * 4 + 3] = 0;
  }
}

Eigen::Matrix3d FromOde(const dReal* r) {
  Eigen::Matrix3d m;
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) m(i, j) = r[i * 4 + j];
  }
  return m;
}

struct ContactSearch {
  dSpaceID robot;
  std::optional<OdeWorld::Contact> found;
};

void FirstContactCallback(void* data, dGeomID a, dGeomID b) {
  auto* search = static_cast<ContactSearch*>(data);
  if (search->found) return;
  dContactGeom contact;
  if (dCollide(a, b, 1, &contact, sizeof(dContactGeom)) > 0) {
    const bool a_is_robot = dGeomGetSpace(a) == search->robot;
    const auto* robot_label = static_cast<const std::string*>(dGeomGetData(a_is_robot ? a : b));
    const auto* env_label = static_cast<const std::string*>(dGeomGetData(a_is_robot ? b : a));
    search->found =
        OdeWorld::Contact{robot_label ? *robot_label : "", env_label ? *env_label : "",
                          Eigen::Vector3d(contact.pos[0], contact.pos[1], contact.pos[2])};
  }
}

struct StepContacts {
  dWorldID world;
  dJointGroupID group;
};

void ContactJointCallback(void* data, dGeomID a, dGeomID b) {
  auto* step = static_cast<StepContacts*>(data);
  dContact contacts[4];
  const int n = dCollide(a, b, 4, &contacts[0].geom, sizeof(dContact));
  for (int i = 0; i < n; ++i) {
    contacts[i].surface.mode = dContactBounce;
    contacts[i].surface.mu = 1.0;
    contacts[i].surface.bounce = 0.0;
    contacts[i].surface.bounce_vel = 0.0;
    dJointID c = dJointCreateContact(step->world, step->group, &contacts[i]);
    dJointAttach(c, dGeomGetBody(a), dGeomGetBody(b));
  }
}

}  // namespace

OdeWorld::OdeWorld(const Eigen::Vector3d& gravity) {
  EnsureOde();
  world_ = dWorldCreate();
  dWorldSetGravity(world_, gravity.x(), gravity.y(), gravity.z());
  robot_ = dSimpleSpaceCreate(nullptr);
  environment_ = dSimpleSpaceCreate(nullptr);
  contact_joints_ = dJointGroupCreate(0);
}

OdeWorld::~OdeWorld() {
  dJointGroupDestroy(contact_joints_);
  dSpaceDestroy(robot_);
  dSpaceDestroy(environment_);
  dWorldDestroy(world_);
}

OdeWorld::Body OdeWorld::AddBody(const Eigen::Isometry3d& pose, double mass,
                                 const Eigen::Vector3d& com, const Eigen::Matrix3d& inertia,
                                 bool kinematic) {
  dBodyID body = dBodyCreate(world_);
  // ODE wants the center of mass at the body origin: the body frame is the link frame moved
  // to the center of mass; geoms are offset back accordingly (SetPose/Pose undo it).
  const Eigen::Vector3d world_com = pose * com;
  dBodySetPosition(body, world_com.x(), world_com.y(), world_com.z());
  dMatrix3 r;
  ToOde(pose.rotation(), r);
  dBodySetRotation(body, r);
  if (kinematic) {
    dBodySetKinematic(body);
  } else {
    dMass m;
    dMassSetParameters(&m, mass > 0 ? mass : 1e-3, 0, 0, 0, inertia(0, 0), inertia(1, 1),
                       inertia(2, 2), inertia(0, 1), inertia(0, 2), inertia(1, 2));
    if (m.I[0] <= 0 || m.I[5] <= 0 || m.I[10] <= 0) {
      dMassSetSphereTotal(&m, mass > 0 ? mass : 1e-3, 0.01);
    }
    dBodySetMass(body, &m);
  }
  body_offsets_.push_back(std::make_unique<Eigen::Vector3d>(com));  // link origin is at -com
  dBodySetData(body, body_offsets_.back().get());
  return body;
}

void OdeWorld::AddGeom(dGeomID geom, Body body, Group group, const Eigen::Isometry3d& offset,
                       const std::string& label) {
  dSpaceAdd(group == Group::kRobot ? robot_ : environment_, geom);
  labels_.push_back(std::make_unique<std::string>(label));
  dGeomSetData(geom, labels_.back().get());
  dMatrix3 r;
  ToOde(offset.rotation(), r);
  if (body != nullptr) {
    dGeomSetBody(geom, body);
    const auto* com = static_cast<const Eigen::Vector3d*>(dBodyGetData(body));
    const Eigen::Vector3d p = offset.translation() - *com;
    dGeomSetOffsetPosition(geom, p.x(), p.y(), p.z());
    dGeomSetOffsetRotation(geom, r);
  } else {
    dGeomSetPosition(geom, offset.translation().x(), offset.translation().y(),
                     offset.translation().z());
    dGeomSetRotation(geom, r);
  }
}

void OdeWorld::AddBox(Body body, Group group, const Eigen::Vector3d& size,
                      const Eigen::Isometry3d& offset, const std::string& label) {
  AddGeom(dCreateBox(nullptr, size.x(), size.y(), size.z()), body, group, offset, label);
}

void OdeWorld::AddSphere(Body body, Group group, double radius, const Eigen::Isometry3d& offset,
                         const std::string& label) {
  AddGeom(dCreateSphere(nullptr, radius), body, group, offset, label);
}

void OdeWorld::AddCylinder(Body body, Group group, double radius, double length,
                           const Eigen::Isometry3d& offset, const std::string& label) {
  AddGeom(dCreateCylinder(nullptr, radius, length), body, group, offset, label);
}

void OdeWorld::AddPlane(Group group, const Eigen::Vector3d& n, double d, const std::string& label) {
  dGeomID plane = dCreatePlane(nullptr, n.x(), n.y(), n.z(), d);
  dSpaceAdd(group == Group::kRobot ? robot_ : environment_, plane);
  labels_.push_back(std::make_unique<std::string>(label));
  dGeomSetData(plane, labels_.back().get());
}

OdeWorld::Joint OdeWorld::AddHinge(Body parent, Body child, const Eigen::Vector3d& anchor,
                                   const Eigen::Vector3d& axis) {
  dJointID j = dJointCreateHinge(world_, nullptr);
  dJointAttach(j, child, parent);
  dJointSetHingeAnchor(j, anchor.x(), anchor.y(), anchor.z());
  dJointSetHingeAxis(j, axis.x(), axis.y(), axis.z());
  return j;
}

OdeWorld::Joint OdeWorld::AddFixed(Body parent, Body child) {
  dJointID j = dJointCreateFixed(world_, nullptr);
  dJointAttach(j, child, parent);
  dJointSetFixed(j);
  return j;
}

double OdeWorld::HingeAngle(Joint joint) const { return dJointGetHingeAngle(joint); }
double OdeWorld::HingeRate(Joint joint) const { return dJointGetHingeAngleRate(joint); }

void OdeWorld::SetHingeMotor(Joint joint, double velocity, double max_torque) {
  dJointSetHingeParam(joint, dParamVel, velocity);
  dJointSetHingeParam(joint, dParamFMax, max_torque);
}

void OdeWorld::SetVelocity(Body body, const Eigen::Vector3d& linear,
                           const Eigen::Vector3d& angular) {
  dBodySetLinearVel(body, linear.x(), linear.y(), linear.z());
  dBodySetAngularVel(body, angular.x(), angular.y(), angular.z());
}

Eigen::Isometry3d OdeWorld::Pose(Body body) const {
  const dReal* p = dBodyGetPosition(body);
  const Eigen::Matrix3d r = FromOde(dBodyGetRotation(body));
  const auto* com = static_cast<const Eigen::Vector3d*>(dBodyGetData(body));
  Eigen::Isometry3d pose = Eigen::Isometry3d::Identity();
  pose.linear() = r;
  pose.translation() = Eigen::Vector3d(p[0], p[1], p[2]) - r * *com;
  return pose;
}

Eigen::Vector3d OdeWorld::LinearVelocity(Body body) const {
  const dReal* v = dBodyGetLinearVel(body);
  return {v[0], v[1], v[2]};
}

void OdeWorld::SetPose(Body body, const Eigen::Isometry3d& pose) {
  const auto* com = static_cast<const Eigen::Vector3d*>(dBodyGetData(body));
  const Eigen::Vector3d c = pose * *com;
  dBodySetPosition(body, c.x(), c.y(), c.z());
  dMatrix3 r;
  ToOde(pose.rotation(), r);
  dBodySetRotation(body, r);
}

void OdeWorld::Step(double dt, bool contacts, int quick_iterations) {
  if (contacts) {
    StepContacts data{world_, contact_joints_};
    dSpaceCollide2(reinterpret_cast<dGeomID>(robot_), reinterpret_cast<dGeomID>(environment_),
                   &data, &ContactJointCallback);
  }
  if (quick_iterations > 0) {
    dWorldSetQuickStepNumIterations(world_, quick_iterations);
    dWorldQuickStep(world_, dt);
  } else {
    dWorldStep(world_, dt);
  }
  dJointGroupEmpty(contact_joints_);
}

std::optional<OdeWorld::Contact> OdeWorld::FirstContact() const {
  ContactSearch search{robot_, std::nullopt};
  dSpaceCollide2(reinterpret_cast<dGeomID>(robot_), reinterpret_cast<dGeomID>(environment_),
                 &search, &FirstContactCallback);
  return search.found;
}

}  // namespace doppel::twins
