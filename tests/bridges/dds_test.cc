// The CycloneDDS layer with real DDS on loopback: ROS 2 type names, a JointState round trip,
// and a transient-local late joiner on rt/tf_static getting the static frames.
#include "doppel/bridges/dds.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "ros2_msgs.h"

namespace doppel::dds {
namespace {

// Unique topic names per test run keep parallel test processes apart.
std::string Unique(const std::string& base) { return base + "_" + std::to_string(::getpid()); }

bool WaitUntil(const std::function<bool()>& done, int timeout_ms = 10000) {
  for (int waited = 0; waited < timeout_ms; waited += 10) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

TEST(DdsTest, TypesCarryTheRos2DdsNames) {
  EXPECT_STREQ(sensor_msgs_msg_dds__JointState__desc.m_typename,
               "sensor_msgs::msg::dds_::JointState_");
  EXPECT_STREQ(tf2_msgs_msg_dds__TFMessage__desc.m_typename, "tf2_msgs::msg::dds_::TFMessage_");
  EXPECT_STREQ(nav_msgs_msg_dds__Odometry__desc.m_typename, "nav_msgs::msg::dds_::Odometry_");
  EXPECT_STREQ(geometry_msgs_msg_dds__Twist__desc.m_typename, "geometry_msgs::msg::dds_::Twist_");
}

TEST(DdsTest, JointStateMakesTheRoundTripOnLoopback) {
  auto publisher = Participant::Create();
  auto subscriber = Participant::Create();
  ASSERT_TRUE(publisher.ok()) << publisher.status().ToString();
  ASSERT_TRUE(subscriber.ok());
  const std::string topic = Unique("rt/robot7/joint_states");
  auto writer = Writer::Create(*publisher, &sensor_msgs_msg_dds__JointState__desc, topic);
  auto reader = Reader::Create(*subscriber, &sensor_msgs_msg_dds__JointState__desc, topic);
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  ASSERT_TRUE(WaitUntil([&] { return writer->MatchedReaders() == 1; })) << "no match on loopback";

  char* names[] = {const_cast<char*>("shoulder"), const_cast<char*>("elbow")};
  double positions[] = {0.5, -1.25};
  sensor_msgs_msg_dds__JointState_ msg{};
  msg.header.stamp.sec = 1700000000;
  msg.header.stamp.nanosec = 42;
  msg.header.frame_id = const_cast<char*>("base_link");
  msg.name = {2, 2, names, false};
  msg.position = {2, 2, positions, false};
  ASSERT_TRUE(writer->Write(&msg).ok());

  std::vector<std::string> got_names;
  std::vector<double> got_positions;
  int32_t sec = 0;
  ASSERT_TRUE(WaitUntil([&] {
    auto n = reader->Take(
        [&](const void* sample) {
          const auto* js = static_cast<const sensor_msgs_msg_dds__JointState_*>(sample);
          sec = js->header.stamp.sec;
          for (uint32_t i = 0; i < js->name._length; ++i)
            got_names.emplace_back(js->name._buffer[i]);
          for (uint32_t i = 0; i < js->position._length; ++i)
            got_positions.push_back(js->position._buffer[i]);
        },
        std::chrono::milliseconds(50));
    return n.ok() && !got_names.empty();
  }));
  EXPECT_EQ(got_names, (std::vector<std::string>{"shoulder", "elbow"}));
  EXPECT_EQ(got_positions, (std::vector<double>{0.5, -1.25}));
  EXPECT_EQ(sec, 1700000000);
}

TEST(DdsTest, LateJoinerOnTfStaticGetsTheStaticFrames) {
  auto publisher = Participant::Create();
  ASSERT_TRUE(publisher.ok());
  const std::string topic = Unique("rt/tf_static");
  const QosSpec latched{true, true, 1};
  auto writer = Writer::Create(*publisher, &tf2_msgs_msg_dds__TFMessage__desc, topic, latched);
  ASSERT_TRUE(writer.ok());
  geometry_msgs_msg_dds__TransformStamped_ frames[2]{};
  frames[0].header.frame_id = const_cast<char*>("robot7/base_link");
  frames[0].child_frame_id = const_cast<char*>("robot7/lidar");
  frames[0].transform.translation.z = 0.785;
  frames[0].transform.rotation.w = 1;
  frames[1].header.frame_id = const_cast<char*>("robot7/base_link");
  frames[1].child_frame_id = const_cast<char*>("robot7/mast");
  frames[1].transform.rotation.w = 1;
  tf2_msgs_msg_dds__TFMessage_ msg{};
  msg.transforms = {2, 2, frames, false};
  ASSERT_TRUE(writer->Write(&msg).ok());

  // Joins after the frames were published.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto subscriber = Participant::Create();
  ASSERT_TRUE(subscriber.ok());
  auto reader = Reader::Create(*subscriber, &tf2_msgs_msg_dds__TFMessage__desc, topic, latched);
  ASSERT_TRUE(reader.ok());
  std::vector<std::string> children;
  double lidar_z = 0;
  ASSERT_TRUE(WaitUntil([&] {
    (void)reader->Take(
        [&](const void* sample) {
          const auto* tf = static_cast<const tf2_msgs_msg_dds__TFMessage_*>(sample);
          for (uint32_t i = 0; i < tf->transforms._length; ++i) {
            children.emplace_back(tf->transforms._buffer[i].child_frame_id);
            if (children.back() == "robot7/lidar")
              lidar_z = tf->transforms._buffer[i].transform.translation.z;
          }
        },
        std::chrono::milliseconds(50));
    return children.size() >= 2;
  })) << "the late joiner got no static frames";
  EXPECT_EQ(children, (std::vector<std::string>{"robot7/lidar", "robot7/mast"}));
  EXPECT_DOUBLE_EQ(lidar_z, 0.785);
}

}  // namespace
}  // namespace doppel::dds
