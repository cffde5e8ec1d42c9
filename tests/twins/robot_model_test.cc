// Robot models from URDF and forward kinematics, checked against positions worked out by
// hand from the link lengths written in twins/models/*.urdf.
#include "doppel/twins/robot_model.h"

#include <gtest/gtest.h>

#include <numbers>

namespace doppel::twins {
namespace {

constexpr double kHalfPi = std::numbers::pi / 2;

RobotModel Arm() {
  auto model = RobotModel::Builtin("doppel_arm6");
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  return *model;
}

Eigen::Vector3d Tool(const RobotModel& arm, std::vector<double> q) {
  return arm.LinkPoses(q)[arm.end_effector_link()].translation();
}

TEST(RobotModelTest, AJointWhoseChildIsItsOwnParentIsRefusedNotRecursedForever) {
  // Found by fuzz_urdf: urdfdom accepts it, and the depth-first walk never ended.
  auto model = RobotModel::FromUrdf(
      R"(<robot name="r"><link name="a"/><link name="b"/>
         <joint name="j1" type="fixed"><parent link="a"/><child link="b"/></joint>
         <joint name="j2" type="fixed"><parent link="b"/><child link="b"/></joint></robot>)");
  ASSERT_EQ(model.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(model.status().message().find("cycle"), std::string::npos) << model.status().message();
}

TEST(RobotModelTest, ArmHasSixLimitedJointsAndATool) {
  const RobotModel arm = Arm();
  EXPECT_EQ(arm.name(), "doppel_arm6");
  ASSERT_EQ(arm.joint_names().size(), 6u);
  EXPECT_EQ(arm.joint_names()[0], "shoulder_pan_joint");
  EXPECT_EQ(arm.links()[arm.end_effector_link()].name, "tool0");
  const JointSpec& lift = arm.joints()[1];
  EXPECT_EQ(lift.name, "shoulder_lift_joint");
  EXPECT_TRUE(lift.limited);
  EXPECT_NEAR(lift.lower, -1.5708, 1e-9);
  EXPECT_NEAR(lift.upper, 1.5708, 1e-9);
  EXPECT_GT(arm.links()[2].mass, 0);
  EXPECT_EQ(arm.links()[2].collisions.at(0).kind, CollisionShape::Kind::kCylinder);
  EXPECT_FALSE(arm.diff_drive().has_value());
}

TEST(RobotModelTest, ArmForwardKinematicsMatchesHandComputedPoses) {
  const RobotModel arm = Arm();
  // Straight up: 0.10 + 0.15 + 0.45 + 0.40 + 0.10 + 0.10 + 0.06.
  EXPECT_TRUE(Tool(arm, {0, 0, 0, 0, 0, 0}).isApprox(Eigen::Vector3d(0, 0, 1.36), 1e-9));
  // Shoulder lifted 90 degrees about +y: everything above z = 0.25 now points along +x.
  EXPECT_TRUE(Tool(arm, {0, kHalfPi, 0, 0, 0, 0}).isApprox(Eigen::Vector3d(1.11, 0, 0.25), 1e-9));
  // And panned 90 degrees about +z: along +y.
  EXPECT_TRUE(
      Tool(arm, {kHalfPi, kHalfPi, 0, 0, 0, 0}).isApprox(Eigen::Vector3d(0, 1.11, 0.25), 1e-9));
  // Elbow bent 90 degrees: the upper arm stays vertical to z = 0.70, the rest along +x.
  EXPECT_TRUE(Tool(arm, {0, 0, kHalfPi, 0, 0, 0}).isApprox(Eigen::Vector3d(0.66, 0, 0.70), 1e-9));
  // Wrist 2 spins about the tool's own axis: the tool does not move.
  EXPECT_TRUE(Tool(arm, {0, 0, 0, 0, 1.0, 0}).isApprox(Eigen::Vector3d(0, 0, 1.36), 1e-9));
}

TEST(RobotModelTest, BaseIsADiffDriveWithWheelGeometryFromTheUrdf) {
  auto base = RobotModel::Builtin("doppel_base");
  ASSERT_TRUE(base.ok()) << base.status().ToString();
  ASSERT_TRUE(base->diff_drive().has_value());
  EXPECT_NEAR(base->diff_drive()->wheel_radius, 0.1, 1e-12);
  EXPECT_NEAR(base->diff_drive()->wheel_separation, 0.45, 1e-12);
  EXPECT_EQ(base->joint_names(),
            (std::vector<std::string>{"left_wheel_joint", "right_wheel_joint"}));
  const auto lidar = base->LinkIndex("lidar");
  ASSERT_TRUE(lidar.has_value());
  const auto poses = base->LinkPoses(std::vector<double>{1.0, -2.0});  // wheels turned
  EXPECT_TRUE(poses[*lidar].translation().isApprox(Eigen::Vector3d(0.15, 0, 0.785), 1e-9));
  const auto box = base->links()[*base->LinkIndex("base_link")].collisions.at(0);
  EXPECT_EQ(box.kind, CollisionShape::Kind::kBox);
  EXPECT_TRUE(box.size.isApprox(Eigen::Vector3d(0.6, 0.4, 0.2)));
}

TEST(RobotModelTest, BadUrdfAndUnknownModelsAreClearErrors) {
  EXPECT_EQ(RobotModel::FromUrdf("<robot name='x'><link").status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(RobotModel::FromUrdf("not xml at all").status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(RobotModel::Builtin("doppel_teapot").status().code(), Status::Code::kNotFound);
}

TEST(RobotModelTest, TextThatIsNotUtf8XmlIsRefusedBeforeParsing) {
  const std::string good = "<robot name=\"m\"><link name=\"base\"/></robot>";
  ASSERT_TRUE(RobotModel::FromUrdf(good).ok());
  // A three-byte sequence cut short by the end of the text (TinyXML would step past the
  // terminator), a lone continuation byte, and a NUL inside the document.
  for (const std::string& bad : {good + "<a \xE5\x37", good + "\x80",
                                 good.substr(0, 10) + std::string(1, '\0') + good.substr(10)}) {
    auto model = RobotModel::FromUrdf(bad);
    ASSERT_FALSE(model.ok());
    EXPECT_EQ(model.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(model.status().message().find("UTF-8"), std::string::npos);
  }
}

TEST(RobotModelTest, MeshesBecomeFlaggedBoxes) {
  auto model = RobotModel::FromUrdf(R"(<robot name="m">
    <link name="a"><collision><geometry><mesh filename="package://x/a.stl" scale="0.2 0.3 0.4"/>
    </geometry></collision></link></robot>)");
  ASSERT_TRUE(model.ok());
  const CollisionShape& shape = model->links()[0].collisions.at(0);
  EXPECT_TRUE(shape.approximated);
  EXPECT_EQ(shape.kind, CollisionShape::Kind::kBox);
  EXPECT_TRUE(shape.size.isApprox(Eigen::Vector3d(0.2, 0.3, 0.4)));
}

TEST(RobotModelTest, GenericModelTracksJointNamesWithoutKinematics) {
  const RobotModel generic = RobotModel::Generic("unknown-bot", {"a", "b"});
  EXPECT_FALSE(generic.has_kinematics());
  EXPECT_EQ(generic.MovableIndex("b"), 1);
  EXPECT_FALSE(generic.MovableIndex("c").has_value());
}

}  // namespace
}  // namespace doppel::twins
