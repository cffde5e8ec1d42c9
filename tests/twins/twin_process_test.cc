// The twin process with the real store: `doppel store` and `doppel twin` as child
// processes on loopback; events go in through StoreClient, TwinState comes out on the twin's
// PUB socket and is decoded here.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "doppel/eventstore/store_client.h"
#include "doppel/schemas/payloads.h"
#include "doppel/schemas/twin_state_generated.h"
#include "doppel/twins/twin_service.h"
#include "test_support.h"

namespace doppel::twins {
namespace {

using eventstore::ExpectedVersion;
using eventstore::NewEvent;

using testing::StartTwin;

// Latest TwinState per robot seen on a twin's PUB socket.
class TwinWatcher {
 public:
  explicit TwinWatcher(const std::string& endpoint)
      : sub_(eventstore::SharedZmqContext(), zmq::socket_type::sub) {
    sub_.set(zmq::sockopt::linger, 0);
    sub_.set(zmq::sockopt::subscribe, "twin/");
    sub_.connect(endpoint);
    // ZeroMQ subscriptions take effect asynchronously ("slow joiner"): a TwinState published
    // before then is not delivered. Give the subscription time to reach the twin.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  // Waits until `done(states)` holds or the timeout passes; returns whether it held.
  bool WaitFor(const std::function<bool(const std::map<std::string, std::string>&)>& done,
               int timeout_ms = 20000) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      if (done(states_)) return true;
      zmq::pollitem_t item = {sub_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(50));
      zmq::message_t topic, body;
      while (sub_.recv(topic, zmq::recv_flags::dontwait)) {
        if (!sub_.recv(body, zmq::recv_flags::dontwait)) break;
        // ZeroMQ hands out a message at any offset: verify from aligned bytes.
        flatbuffers::Verifier v(eventstore::AlignedBytes(body, scratch_), body.size());
        EXPECT_TRUE(twin::VerifyTwinStateBuffer(v)) << "TwinState does not verify";
        states_[topic.to_string().substr(5)] = body.to_string();
      }
    }
    return done(states_);
  }
  const twin::TwinState* State(const std::string& robot) const {
    auto it = states_.find(robot);
    return it == states_.end() ? nullptr : twin::GetTwinState(it->second.data());
  }
  const std::map<std::string, std::string>& states() const { return states_; }

 private:
  zmq::socket_t sub_;
  std::vector<uint64_t> scratch_;  // for messages at misaligned addresses
  std::map<std::string, std::string> states_;
};

std::unique_ptr<eventstore::StoreClient> Client(const std::string& endpoint) {
  eventstore::StoreClientOptions o;
  o.endpoint = endpoint;
  return std::move(eventstore::StoreClient::Connect(o)).value();
}

TEST(TwinProcessTest, EventsInTwinStateOutWithTheRightValues) {
  testing::TempDir dir;
  auto store = testing::StartStore(dir.Sub("log"));
  auto twin = StartTwin(store);
  TwinWatcher watcher(twin.publish);
  auto client = Client(store.listen);
  ASSERT_TRUE(
      client
          ->Append(
              {"robot-a1",
               ExpectedVersion::NoStream(),
               {testing::EventFromJson("RobotRegistered",
                                       R"({"robot_id":"a1","model":"doppel_arm6"})"),
                testing::EventFromJson(
                    "JointStateObserved",
                    R"({"names":["shoulder_pan_joint","elbow_joint"],"position":[0.25,-0.5]})"),
                testing::EventFromJson("ModeChanged", R"({"mode":"Autonomous"})"),
                testing::EventFromJson("FaultRaised", R"({"code":"E7","severity":"Error"})")}})
          .ok());
  ASSERT_TRUE(watcher.WaitFor([](const auto& s) {
    if (!s.count("a1")) return false;
    return twin::GetTwinState(s.at("a1").data())->stream_version() == 3;
  })) << "no TwinState for a1 at version 3";
  const auto* state = watcher.State("a1");
  EXPECT_EQ(state->model()->str(), "doppel_arm6");
  EXPECT_EQ(state->mode(), events::RobotMode::Autonomous);
  ASSERT_EQ(state->faults()->size(), 1u);
  EXPECT_EQ(state->faults()->Get(0)->code()->str(), "E7");
  std::map<std::string, double> joints;
  for (uint32_t i = 0; i < state->joint_names()->size(); ++i) {
    joints[state->joint_names()->Get(i)->str()] = state->joint_position()->Get(i);
  }
  EXPECT_EQ(joints["shoulder_pan_joint"], 0.25);
  EXPECT_EQ(joints["elbow_joint"], -0.5);
  EXPECT_EQ(joints.size(), 6u);  // the registered model's joints
  // Published views: link poses from forward kinematics, and staleness.
  ASSERT_NE(state->link_names(), nullptr);
  const RobotModel arm = *RobotModel::Builtin("doppel_arm6");
  ASSERT_EQ(state->link_names()->size(), arm.links().size());
  std::vector<double> q(6, 0.0);
  q[0] = 0.25;
  q[2] = -0.5;
  const Eigen::Vector3d tool = arm.LinkPoses(q)[arm.end_effector_link()].translation();
  const auto& published = state->link_poses()->Get(arm.end_effector_link())->position();
  EXPECT_EQ(state->link_names()->Get(arm.end_effector_link())->str(), "tool0");
  EXPECT_NEAR(published.x(), tool.x(), 1e-9);
  EXPECT_NEAR(published.y(), tool.y(), 1e-9);
  EXPECT_NEAR(published.z(), tool.z(), 1e-9);
  EXPECT_GT(state->published_ns(), 0);
  EXPECT_GE(state->staleness_ns(), 0);
}

TEST(TwinProcessTest, CommandPastAJointLimitIsPredictedAndAlertedWithCausation) {
  testing::TempDir dir;
  auto store = testing::StartStore(dir.Sub("log"));
  auto twin = StartTwin(store);
  auto client = Client(store.listen);
  NewEvent command = testing::EventFromJson(
      "CommandIssued",
      R"({"kind":"JointTargets","joint_names":["shoulder_lift_joint"],"joint_targets":[2.2],"issued_by":"test"})");
  const EventId command_id = EventId::Random();
  command.id = command_id;
  ASSERT_TRUE(client
                  ->Append({"robot-a2",
                            ExpectedVersion::Any(),
                            {testing::EventFromJson("RobotRegistered",
                                                    R"({"robot_id":"a2","model":"doppel_arm6"})"),
                             command}})
                  .ok());
  // The twin appends PredictionMade and a PredictionAlert, both caused by the command.
  std::vector<eventstore::RecordedEvent> derived;
  for (int i = 0; i < 200 && derived.size() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto page = client->ReadStream("robot-a2", 2, eventstore::Direction::kForward, 10);
    ASSERT_TRUE(page.ok());
    derived = page->events;
  }
  ASSERT_GE(derived.size(), 2u);
  EXPECT_EQ(derived[0].type(), "PredictionMade");
  EXPECT_EQ(derived[1].type(), "PredictionAlert");
  for (const auto& e : derived) EXPECT_EQ(schemas::FromFb(e.envelope().causation_id()), command_id);
  const testing::PayloadOf<events::PredictionAlert> alert(derived[1]);
  EXPECT_EQ(alert->kind(), events::AlertKind::PredictedJointLimit);
  EXPECT_EQ(alert->link()->str(), "shoulder_lift_joint");
}

TEST(TwinProcessTest, RestartResumesWithoutDoubleApplyingOrRederiving) {
  testing::TempDir dir;
  auto store = testing::StartStore(dir.Sub("log"));
  auto client = Client(store.listen);
  int appended = 0;
  auto observe = [&](int n) {
    for (int i = 0; i < n; ++i, ++appended) {
      ASSERT_TRUE(
          client
              ->Append(
                  {"robot-b7",
                   ExpectedVersion::Any(),
                   {testing::EventFromJson(
                       "PoseObserved",
                       fmt::format(
                           R"({{"pose":{{"position":{{"x":{},"y":0,"z":0}},"orientation":{{"x":0,"y":0,"z":0,"w":1}}}}}})",
                           appended * 0.01))}})
              .ok());
    }
  };
  ASSERT_TRUE(client
                  ->Append({"robot-b7",
                            ExpectedVersion::Any(),
                            {testing::EventFromJson("RobotRegistered",
                                                    R"({"robot_id":"b7","model":"doppel_base"})")}})
                  .ok());
  ++appended;
  {
    auto twin = StartTwin(store, "0/1", {"--snapshot-every", "7", "--silent-after", "60"});
    TwinWatcher watcher(twin.publish);
    observe(40);
    ASSERT_TRUE(watcher.WaitFor([&](const auto& s) {
      return s.count("b7") &&
             twin::GetTwinState(s.at("b7").data())->stream_version() == appended - 1;
    }));
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));  // a checkpoint is saved
    twin.process->Kill(SIGKILL);
    twin.process->Wait();
  }
  observe(25);  // while no twin runs
  auto twin = StartTwin(store, "0/1", {"--snapshot-every", "7", "--silent-after", "60"});
  TwinWatcher watcher(twin.publish);
  observe(15);
  ASSERT_TRUE(watcher.WaitFor([&](const auto& s) {
    return s.count("b7") && twin::GetTwinState(s.at("b7").data())->stream_version() == appended - 1;
  })) << "twin did not catch up to version "
      << appended - 1;
  const auto* state = watcher.State("b7");
  // Every event applied once: applied counts all of them, and the pose is the last one.
  EXPECT_EQ(state->counters()->applied(), static_cast<uint64_t>(appended));
  EXPECT_NEAR(state->base_pose()->position().x(), (appended - 1) * 0.01, 1e-9);
  // The store holds only what we appended: observations trigger no derived events here.
  auto page = client->ReadStream("robot-b7", 0, eventstore::Direction::kForward, 1000);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->events.size(), static_cast<size_t>(appended));
  auto snapshot = client->LoadSnapshot("robot-b7");
  ASSERT_TRUE(snapshot.ok()) << "the twin snapshots every 7 events";
}

TEST(TwinProcessTest, TwoPartitionsSplitRobotsWithNoOverlapAndNoGap) {
  testing::TempDir dir;
  auto store = testing::StartStore(dir.Sub("log"));
  auto first = StartTwin(store, "0/2");
  auto second = StartTwin(store, "1/2");
  TwinWatcher watch_first(first.publish), watch_second(second.publish);
  auto client = Client(store.listen);
  std::set<std::string> robots;
  for (int r = 0; r < 20; ++r) {
    const std::string id = fmt::format("r{}", r);
    robots.insert(id);
    ASSERT_TRUE(client
                    ->Append({"robot-" + id,
                              ExpectedVersion::Any(),
                              {testing::EventFromJson("ModeChanged", R"({"mode":"Idle"})")}})
                    .ok());
  }
  auto total = [&] { return watch_first.states().size() + watch_second.states().size(); };
  for (int i = 0; i < 200 && total() < 20; ++i) {
    watch_first.WaitFor([](const auto&) { return false; }, 50);
    watch_second.WaitFor([](const auto&) { return false; }, 50);
    if (i % 40 == 39) {
      // A state missed while a subscription was still connecting is published again on the
      // robot's next event.
      for (const auto& id : robots) {
        if (!watch_first.states().count(id) && !watch_second.states().count(id)) {
          ASSERT_TRUE(client
                          ->Append({"robot-" + id,
                                    ExpectedVersion::Any(),
                                    {testing::EventFromJson("ModeChanged", R"({"mode":"Idle"})")}})
                          .ok());
        }
      }
    }
  }
  std::set<std::string> seen;
  for (const auto& [id, bytes] : watch_first.states()) {
    EXPECT_EQ(PartitionOf(id, 2), 0) << id;
    seen.insert(id);
  }
  for (const auto& [id, bytes] : watch_second.states()) {
    EXPECT_EQ(PartitionOf(id, 2), 1) << id;
    EXPECT_FALSE(seen.count(id)) << id << " owned by both partitions";
    seen.insert(id);
  }
  EXPECT_EQ(seen, robots);
  EXPECT_GT(watch_first.states().size(), 0u);
  EXPECT_GT(watch_second.states().size(), 0u);
}

TEST(TwinProcessTest, GarbageAndUnknownRobotsAreCountedNotFatal) {
  testing::TempDir dir;
  auto store = testing::StartStore(dir.Sub("log"));
  auto twin = StartTwin(store);
  TwinWatcher watcher(twin.publish);
  auto client = Client(store.listen);
  NewEvent unknown;
  unknown.type = "Teleported";
  unknown.payload = "opaque";
  // Joints past the per-robot limit: each sample is valid alone (the store takes both), but
  // the second would take the robot past kMaxJointsPerRobot, so the twin skips it.
  auto joints = [](const std::string& prefix) {
    std::string json = R"({"names":[)";
    for (int i = 0; i < 200; ++i) json += (i ? ",\"" : "\"") + prefix + std::to_string(i) + "\"";
    json += R"(],"position":[)";
    for (int i = 0; i < 200; ++i) json += i ? ",0.5" : "0.5";
    return testing::EventFromJson("JointStateObserved", json + "]}");
  };
  // A robot nobody registered, with a model nobody knows.
  ASSERT_TRUE(client
                  ->Append({"robot-stranger",
                            ExpectedVersion::Any(),
                            {unknown, joints("a"), joints("b"),
                             testing::EventFromJson("JointStateObserved",
                                                    R"({"names":["x"],"position":[3]})")}})
                  .ok());
  ASSERT_TRUE(watcher.WaitFor([](const auto& s) {
    return s.count("stranger") &&
           twin::GetTwinState(s.at("stranger").data())->stream_version() == 3;
  }));
  const auto* state = watcher.State("stranger");
  EXPECT_EQ(state->counters()->skipped_unknown_type(), 1u);
  EXPECT_EQ(state->counters()->skipped_bad_payload(), 1u);
  ASSERT_EQ(state->joint_names()->size(), 201u) << "a0..a199 and x; b* were skipped";
  EXPECT_EQ(state->joint_names()->Get(200)->str(), "x");
  EXPECT_EQ(state->joint_position()->Get(200), 3.0);
  EXPECT_FALSE(state->registered());
  // Still serving.
  ASSERT_TRUE(client
                  ->Append({"robot-stranger",
                            ExpectedVersion::Any(),
                            {testing::EventFromJson("ModeChanged", R"({"mode":"Idle"})")}})
                  .ok());
  EXPECT_TRUE(watcher.WaitFor([](const auto& s) {
    return twin::GetTwinState(s.at("stranger").data())->stream_version() == 4;
  }));
}

}  // namespace
}  // namespace doppel::twins
