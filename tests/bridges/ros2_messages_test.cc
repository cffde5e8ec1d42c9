// ROS 2 messages outside DDS: CDR bytes as rmw writes them, decoding of either byte order,
// refusal of damaged messages, the ros2msg definitions rosbag2 stores, and the events a
// robot's messages become.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "doppel/ros2/cdr.h"
#include "doppel/ros2/event_messages.h"
#include "doppel/ros2/message_definitions.h"
#include "doppel/ros2/messages.h"
#include "doppel/ros2/observations.h"
#include "test_support.h"

namespace doppel::ros2 {
namespace {

// A payload's root table read from an 8-aligned copy.
template <typename T>
struct Aligned {
  explicit Aligned(const std::string& bytes) : words((bytes.size() + 7) / 8) {
    std::memcpy(words.data(), bytes.data(), bytes.size());
  }
  const T& operator*() const { return *flatbuffers::GetRoot<T>(words.data()); }
  std::vector<uint64_t> words;
};

template <typename M>
std::string Cdr(const M& m) {
  CdrWriter w;
  Encode(m, w);
  return w.bytes();
}

TEST(CdrTest, TwistIsTheEncapsulationHeaderThenSixAlignedDoubles) {
  Twist t{{1, 2, 3}, {4, 5, 6}};
  const std::string bytes = Cdr(t);
  ASSERT_EQ(bytes.size(), 4u + 6 * 8);
  EXPECT_EQ(bytes.substr(0, 4), std::string("\x00\x01\x00\x00", 4));  // CDR little-endian
  double third;
  std::memcpy(&third, bytes.data() + 4 + 16, 8);
  EXPECT_EQ(third, 3.0);
}

TEST(CdrTest, StringsCarryTheirNulAndDoublesAlignFromTheBodyStart) {
  JointState js;
  js.header.stamp = {7, 9};
  js.header.frame_id = "ab";
  js.name = {"j"};
  js.position = {0.5};
  const std::string b = Cdr(js);
  // body: sec(4) nsec(4) len=3(4) "ab\0"(3) pad(1) count=1(4) len=2(4) "j\0"(2) pad(2)
  //       count=1(4) 0.5 at offset 32, already 8-aligned (8) count 0 (4) count 0 (4)
  ASSERT_EQ(b.size(), 4u + 4 + 4 + 4 + 3 + 1 + 4 + 4 + 2 + 2 + 4 + 8 + 4 + 4);
  uint32_t len;
  std::memcpy(&len, b.data() + 4 + 8, 4);
  EXPECT_EQ(len, 3u);
  EXPECT_EQ(b[4 + 12 + 2], '\0');
  double p;
  std::memcpy(&p, b.data() + 4 + 32, 8);
  EXPECT_EQ(p, 0.5);
}

TEST(CdrTest, EveryMessageRoundTrips) {
  JointState js;
  js.header = {{12, 34}, "base"};
  js.name = {"a", "bb", "ccc"};
  js.position = {1.5, -2.25, 3};
  js.velocity = {0.1, 0.2, 0.3};
  JointState js2;
  ASSERT_TRUE(Decode(Cdr(js), js2).ok());
  EXPECT_EQ(js2.name, js.name);
  EXPECT_EQ(js2.position, js.position);
  EXPECT_EQ(js2.velocity, js.velocity);
  EXPECT_TRUE(js2.effort.empty());
  EXPECT_EQ(js2.header.frame_id, "base");
  EXPECT_EQ(js2.header.stamp.nanosec, 34u);

  Odometry o;
  o.header.frame_id = "odom";
  o.child_frame_id = "base_link";
  o.pose.position = {1, 2, 3};
  o.pose.orientation = {0, 0, 0.7071, 0.7071};
  o.pose_covariance[35] = 9;
  o.twist.linear = {0.5, 0, 0};
  Odometry o2;
  ASSERT_TRUE(Decode(Cdr(o), o2).ok());
  EXPECT_EQ(o2.child_frame_id, "base_link");
  EXPECT_EQ(o2.pose.orientation.z, 0.7071);
  EXPECT_EQ(o2.pose_covariance[35], 9);
  EXPECT_EQ(o2.twist.linear.x, 0.5);

  TFMessage tf;
  tf.transforms.push_back({{{1, 2}, "map"}, "r/link", {1, 2, 3}, {0, 0, 0, 1}});
  TFMessage tf2;
  ASSERT_TRUE(Decode(Cdr(tf), tf2).ok());
  ASSERT_EQ(tf2.transforms.size(), 1u);
  EXPECT_EQ(tf2.transforms[0].child_frame_id, "r/link");
  EXPECT_EQ(tf2.transforms[0].translation.z, 3);

  DiagnosticArray d;
  d.status.push_back({DiagnosticStatus::kError, "motor", "hot", "r1", {{"t", "90"}}});
  DiagnosticArray d2;
  ASSERT_TRUE(Decode(Cdr(d), d2).ok());
  ASSERT_EQ(d2.status.size(), 1u);
  EXPECT_EQ(d2.status[0].level, DiagnosticStatus::kError);
  EXPECT_EQ(d2.status[0].values[0].value, "90");
}

TEST(CdrTest, BigEndianMessagesDecode) {
  std::string b("\x00\x00\x00\x00", 4);
  for (double v : {1.0, 2.0, 3.0, 4.0, 5.0, 6.0}) {
    char raw[8];
    std::memcpy(raw, &v, 8);
    std::reverse(raw, raw + 8);
    b.append(raw, 8);
  }
  Twist t;
  ASSERT_TRUE(Decode(b, t).ok());
  EXPECT_EQ(t.linear.x, 1.0);
  EXPECT_EQ(t.angular.z, 6.0);
}

TEST(CdrTest, DamagedMessagesAreRefusedNamingTheField) {
  JointState js;
  js.name = {"a", "b"};
  js.position = {1, 2};
  const std::string b = Cdr(js);
  JointState out;
  for (size_t cut : {size_t{0}, size_t{3}, size_t{10}, b.size() - 1}) {
    EXPECT_FALSE(Decode(b.substr(0, cut), out).ok()) << cut;
  }
  // A sequence claiming more elements than the bytes could hold.
  std::string huge = b;
  const uint32_t n = 0x7fffffff;
  std::memcpy(huge.data() + 4 + 8 + 4 + 1 + 3, &n, 4);  // the names count
  const Status s = Decode(huge, out);
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("name"), std::string::npos) << s.message();
  // XCDR2 encapsulations are not plain CDR.
  EXPECT_EQ(Decode(std::string("\x00\x07\x00\x00", 4) + b.substr(4), out).code(),
            Status::Code::kInvalidArgument);
}

TEST(MessageDefinitionTest, JointStateCarriesEachDependencyOnceAfterEightyEquals) {
  auto text = Ros2MsgDefinition("sensor_msgs/msg/JointState");
  ASSERT_TRUE(text.ok());
  const std::string sep = std::string(80, '=') + "\n";
  EXPECT_EQ(text->find("std_msgs/Header header\n"), 0u);
  EXPECT_NE(text->find(sep + "MSG: std_msgs/Header\n"), std::string::npos);
  EXPECT_NE(text->find(sep + "MSG: builtin_interfaces/Time\nint32 sec\nuint32 nanosec\n"),
            std::string::npos);
  auto odom = Ros2MsgDefinition("nav_msgs/msg/Odometry");
  ASSERT_TRUE(odom.ok());
  for (const char* dep : {"geometry_msgs/Pose", "geometry_msgs/Point", "geometry_msgs/Quaternion",
                          "geometry_msgs/Twist", "geometry_msgs/Vector3",
                          "geometry_msgs/PoseWithCovariance", "std_msgs/Header"}) {
    const std::string line = std::string("MSG: ") + dep + "\n";
    const auto at = odom->find(line);
    ASSERT_NE(at, std::string::npos) << dep;
    EXPECT_EQ(odom->find(line, at + 1), std::string::npos) << dep << " twice";
  }
  EXPECT_EQ(Ros2MsgDefinition("sensor_msgs/msg/Imu").status().code(), Status::Code::kNotFound);
}

TEST(MessageDefinitionTest, QosYamlIsRosbag2sListOfOneProfile) {
  const std::string yaml = OfferedQosProfilesYaml({true, true, 1});
  EXPECT_EQ(yaml.rfind("- history: 1\n  depth: 1\n  reliability: 1\n  durability: 1\n", 0), 0u);
  EXPECT_NE(yaml.find("avoid_ros_namespace_conventions: false"), std::string::npos);
}

TEST(ObservationsTest, PayloadEncodedDirectlyEqualsTheMessageItCameFrom) {
  JointState js;
  js.header.stamp = ToRosTime(1'700'000'000'123'456'789);
  js.name = {"shoulder", "elbow"};
  js.position = {0.25, -1.5};
  js.velocity = {0, 0.1};
  js.effort = {};
  const std::string payload = JointStateObservedPayload(js);
  Aligned<events::JointStateObserved> p(payload);
  CdrWriter w;
  EncodeJointState(*p, FromRosTime(js.header.stamp), w);
  EXPECT_EQ(w.bytes(), Cdr(js));

  Odometry o;
  o.header.stamp = ToRosTime(42);
  o.header.frame_id = "odom";
  o.child_frame_id = "base";
  o.pose.position = {1, 2, 0};
  o.twist.angular = {0, 0, 0.3};
  const std::string pose = PoseObservedPayload(o);
  Aligned<events::PoseObserved> q(pose);
  CdrWriter w2;
  EncodeOdometry(*q, 42, w2);
  EXPECT_EQ(w2.bytes(), Cdr(o));
}

TEST(ObservationsTest, DiagnosticsRaiseOnWarnOrErrorOnceAndClearOnOk) {
  DiagnosticsFaults faults;
  DiagnosticArray d;
  d.status = {{DiagnosticStatus::kWarn, "motor", "warm", "", {}}};
  auto a = faults.Apply(d, 10);
  ASSERT_TRUE(a.ok());
  ASSERT_EQ(a->size(), 1u);
  EXPECT_EQ((*a)[0].type, "FaultRaised");
  EXPECT_EQ((*a)[0].occurred_ns, 10);
  d.status[0].level = DiagnosticStatus::kError;
  EXPECT_TRUE(faults.Apply(d, 11)->empty());  // already raised
  d.status[0].level = DiagnosticStatus::kOk;
  auto c = faults.Apply(d, 12);
  ASSERT_EQ(c->size(), 1u);
  EXPECT_EQ((*c)[0].type, "FaultCleared");
  EXPECT_TRUE(faults.Apply(d, 13)->empty());  // nothing to clear
  d.status[0].name.clear();
  EXPECT_EQ(faults.Apply(d, 14).status().code(), Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace doppel::ros2
