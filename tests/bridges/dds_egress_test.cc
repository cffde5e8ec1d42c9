// DDS egress with a real store, a real twin and real DDS readers on loopback: what the twin
// knows shows up on rt/twin/<robot>/..., rt/tf and rt/diagnostics as ROS 2 messages.
#include "doppel/bridges/dds_egress.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <functional>
#include <thread>

#include "doppel/bridges/dds.h"
#include "doppel/bridges/dds_ingest.h"
#include "doppel/eventstore/store_client.h"
#include "doppel/schemas/payloads.h"
#include "doppel/schemas/robot_events_generated.h"
#include "ros2_msgs.h"
#include "test_support.h"

namespace doppel::dds {
namespace {

bool WaitUntil(const std::function<bool()>& done, int timeout_ms = 20000) {
  for (int waited = 0; waited < timeout_ms; waited += 20) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

TEST(DdsEgressTest, TwinStateAndPredictionsReachRos2Topics) {
  testing::TempDir dir;
  auto store = testing::StartStore(dir.Sub("log"));
  auto twin = testing::StartTwin(store);
  EgressOptions options;
  options.twin_publish = twin.publish;
  options.store = store.listen;
  options.publish = store.publish;
  auto egress = DdsEgress::Start(options);
  ASSERT_TRUE(egress.ok()) << egress.status().ToString();

  const std::string robot = "e" + std::to_string(::getpid()) + "b";
  auto participant = Participant::Create();
  ASSERT_TRUE(participant.ok());
  auto joints = Reader::Create(*participant, &sensor_msgs_msg_dds__JointState__desc,
                               "rt/twin/" + robot + "/joint_states");
  auto tf = Reader::Create(*participant, &tf2_msgs_msg_dds__TFMessage__desc, "rt/tf",
                           QosSpec{true, false, 100});
  auto path = Reader::Create(*participant, &nav_msgs_msg_dds__Path__desc,
                             "rt/twin/" + robot + "/predicted_path");
  ASSERT_TRUE(joints.ok() && tf.ok() && path.ok());

  eventstore::StoreClientOptions co;
  co.endpoint = store.listen;
  auto client = std::move(eventstore::StoreClient::Connect(co)).value();
  // Keep the robot's state changing until the readers have matched and seen it.
  std::vector<std::string> joint_names;
  double footprint_x = -1, last_path_x = -1;
  size_t path_poses = 0;
  ASSERT_TRUE(client
                  ->Append({"robot-" + robot,
                            eventstore::ExpectedVersion::Any(),
                            {testing::EventFromJson("RobotRegistered",
                                                    R"({"robot_id":"x","model":"doppel_base"})")}})
                  .ok());
  int round = 0;
  ASSERT_TRUE(WaitUntil([&] {
    if (round++ % 10 == 0) {
      EXPECT_TRUE(
          client
              ->Append(
                  {"robot-" + robot,
                   eventstore::ExpectedVersion::Any(),
                   {testing::EventFromJson(
                        "PoseObserved",
                        R"({"pose":{"position":{"x":0.5,"y":0,"z":0},"orientation":{"x":0,"y":0,"z":0,"w":1}}})"),
                    testing::EventFromJson(
                        "CommandIssued",
                        R"({"kind":"Velocity","twist":{"linear":{"x":1,"y":0,"z":0},"angular":{"x":0,"y":0,"z":0}}})")}})
              .ok());
    }
    (void)joints->Take(
        [&](const void* s) {
          const auto* js = static_cast<const sensor_msgs_msg_dds__JointState_*>(s);
          joint_names.clear();
          for (uint32_t i = 0; i < js->name._length; ++i)
            joint_names.emplace_back(js->name._buffer[i]);
        },
        std::chrono::milliseconds(0));
    (void)tf->Take(
        [&](const void* s) {
          const auto* m = static_cast<const tf2_msgs_msg_dds__TFMessage_*>(s);
          for (uint32_t i = 0; i < m->transforms._length; ++i) {
            if (std::string(m->transforms._buffer[i].child_frame_id) == robot + "/base_footprint") {
              footprint_x = m->transforms._buffer[i].transform.translation.x;
            }
          }
        },
        std::chrono::milliseconds(0));
    (void)path->Take(
        [&](const void* s) {
          const auto* p = static_cast<const nav_msgs_msg_dds__Path_*>(s);
          path_poses = p->poses._length;
          if (path_poses > 0) last_path_x = p->poses._buffer[path_poses - 1].pose.position.x;
        },
        std::chrono::milliseconds(0));
    // Wait for the state after the pose (the first TwinState is from the registration).
    return !joint_names.empty() && footprint_x > 0.25 && path_poses > 0 && last_path_x > 1.0;
  })) << "joints "
      << joint_names.size() << " footprint " << footprint_x << " path " << path_poses;
  EXPECT_EQ(joint_names, (std::vector<std::string>{"left_wheel_joint", "right_wheel_joint"}));
  EXPECT_NEAR(footprint_x, 0.5, 1e-9);
  EXPECT_EQ(path_poses, 21u);                 // 2 s sampled every 0.1 s, plus t = 0
  EXPECT_NEAR(last_path_x, 0.5 + 2.0, 0.01);  // 1 m/s for 2 s from x = 0.5
  EXPECT_GT((*egress)->counters().states, 0u);
  EXPECT_GT((*egress)->counters().paths, 0u);
}

// Operators' commands reach the robot: a Velocity becomes one Twist on rt/<robot>/cmd_vel,
// a Stop a zero Twist repeated through its hold time; commands the ingest recorded from the
// robot itself (issued_by "ros2") are not sent back; and an ingest on the same store does not
// record doppel's own Twist a second time.
TEST(DdsEgressTest, OperatorCommandsArePublishedToTheRobotAndNotRecordedTwice) {
  testing::TempDir dir;
  auto store = testing::StartStore(dir.Sub("log"));
  auto twin = testing::StartTwin(store);
  const std::string robot = fmt::format("c{}b", ::getpid());
  EgressOptions options;
  options.twin_publish = twin.publish;
  options.store = store.listen;
  options.publish = store.publish;
  options.stop_hold = std::chrono::milliseconds(500);
  auto egress = DdsEgress::Start(options);
  ASSERT_TRUE(egress.ok()) << egress.status().ToString();
  eventstore::StoreClientOptions co;
  co.endpoint = store.listen;
  auto client = std::move(eventstore::StoreClient::Connect(co)).value();
  IngestOptions io;
  io.robots = robot;
  auto ingest = DdsIngest::Start(*client, io);
  ASSERT_TRUE(ingest.ok()) << ingest.status().ToString();

  // The robot: reads its cmd_vel (and publishes joint states, so the ingest knows it).
  auto participant = Participant::Create();
  ASSERT_TRUE(participant.ok());
  auto cmd = Reader::Create(*participant, &geometry_msgs_msg_dds__Twist__desc,
                            "rt/" + robot + "/cmd_vel", QosSpec{true, false, 100});
  auto robot_cmd =
      Writer::Create(*participant, &geometry_msgs_msg_dds__Twist__desc, "rt/" + robot + "/cmd_vel");
  ASSERT_TRUE(cmd.ok() && robot_cmd.ok());
  const std::string stream = "robot-" + robot;
  auto command = [&](const std::string& json) {
    ASSERT_TRUE(client
                    ->Append({stream,
                              eventstore::ExpectedVersion::Any(),
                              {testing::EventFromJson("CommandIssued", json)}})
                    .ok());
  };
  std::vector<std::pair<double, int64_t>> received;  // linear.x, receipt time
  auto take = [&] {
    (void)cmd->Take(
        [&](const void* sample) {
          received.emplace_back(static_cast<const geometry_msgs_msg_dds__Twist_*>(sample)->linear.x,
                                MonotonicNowNs());
        },
        std::chrono::milliseconds(10));
  };
  // The relay's writer appears with the first command: keep commanding until it matched.
  ASSERT_TRUE(WaitUntil([&] {
    command(
        R"({"kind":"Velocity","twist":{"linear":{"x":0.4,"y":0,"z":0},"angular":{"x":0,"y":0,"z":0.1}},"issued_by":"gateway:op"})");
    for (int i = 0; i < 5; ++i) take();
    return !received.empty();
  }));
  EXPECT_DOUBLE_EQ(received.back().first, 0.4);
  received.clear();
  command(R"({"kind":"Stop","issued_by":"gateway:op"})");
  const int64_t stop_sent = MonotonicNowNs();
  while (MonotonicNowNs() - stop_sent < 1'000'000'000) take();
  ASSERT_GE(received.size(), 5u) << "a stop is repeated through its hold time";
  for (const auto& [v, t] : received) EXPECT_EQ(v, 0.0);
  EXPECT_LT(received.back().second - stop_sent, 700'000'000) << "and only through it";
  received.clear();
  command(
      R"({"kind":"Velocity","twist":{"linear":{"x":0.9,"y":0,"z":0},"angular":{"x":0,"y":0,"z":0}},"issued_by":"ros2"})");
  for (int i = 0; i < 30; ++i) take();
  EXPECT_TRUE(received.empty()) << "the robot's own command is not sent back to it";

  // The robot's own cmd_vel is recorded; doppel's relayed ones are not.
  geometry_msgs_msg_dds__Twist_ own{};
  own.linear.x = 0.25;
  ASSERT_TRUE(WaitUntil([&] {
    (void)robot_cmd->Write(&own);
    return (*ingest)->counters().appended >= 1;
  }));
  ASSERT_TRUE(WaitUntil([&] { return (*ingest)->counters().own_commands >= 1; }))
      << "the ingest saw doppel's relayed twists and skipped them";
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto page = client->ReadStream(stream, 0, eventstore::Direction::kForward, 1000);
  ASSERT_TRUE(page.ok());
  int from_ros = 0, from_gateway = 0;
  for (const auto& e : page->events) {
    if (e.type() != "CommandIssued") continue;
    const std::string payload(e.payload());
    const auto* c = flatbuffers::GetRoot<events::CommandIssued>(payload.data());
    const std::string by = c->issued_by() ? c->issued_by()->str() : "";
    if (by == "ros2") {
      ++from_ros;
      EXPECT_TRUE(c->twist()->linear().x() == 0.25 || c->twist()->linear().x() == 0.9)
          << "only the robot's own twists (and the one appended as ros2) are recorded from DDS";
    } else {
      ++from_gateway;
    }
  }
  EXPECT_GE(from_ros, 2);
  EXPECT_GE(from_gateway, 2);
  EXPECT_EQ((*ingest)->counters().bad, 0u);
}

}  // namespace
}  // namespace doppel::dds
