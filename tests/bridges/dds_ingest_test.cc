// DDS ingest with real DDS on loopback and a real store process: robots are discovered from
// their publications, registered once, and their samples become events; bad samples and
// decimated samples are counted, never appended as good data.
#include "doppel/bridges/dds_ingest.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <functional>
#include <thread>

#include "doppel/bridges/dds.h"
#include "doppel/eventstore/store_client.h"
#include "doppel/schemas/robot_events_generated.h"
#include "ros2_msgs.h"
#include "test_support.h"

namespace doppel::dds {
namespace {

bool WaitUntil(const std::function<bool()>& done, int timeout_ms = 15000) {
  for (int waited = 0; waited < timeout_ms; waited += 20) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

class DdsIngestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = testing::StartStore(dir_.Sub("log"));
    eventstore::StoreClientOptions o;
    o.endpoint = store_.listen;
    client_ = std::move(eventstore::StoreClient::Connect(o)).value();
    // Robot names unique to this process: DDS discovery spans every process on loopback.
    // fmt, not "t" + std::to_string(...): GCC 12 -O3 warns -Wrestrict on that (a false
    // positive in libstdc++), and a Release build must stay clean.
    prefix_ = fmt::format("t{}x", ::getpid());
  }

  std::unique_ptr<DdsIngest> StartIngest(double max_rate_hz, size_t max_robots = 10000) {
    IngestOptions options;
    options.robots = prefix_ + "*";
    options.max_rate_hz = max_rate_hz;
    options.max_robots = max_robots;
    options.models = {{prefix_ + "arm", "doppel_arm6"}};
    auto ingest = DdsIngest::Start(*client_, options);
    EXPECT_TRUE(ingest.ok()) << ingest.status().ToString();
    return std::move(ingest).value();
  }

  std::vector<eventstore::RecordedEvent> Events(const std::string& robot) {
    auto page = client_->ReadStream("robot-" + robot, 0, eventstore::Direction::kForward, 10000);
    EXPECT_TRUE(page.ok());
    return page.ok() ? page->events : std::vector<eventstore::RecordedEvent>{};
  }

  testing::TempDir dir_;
  testing::StoreProcess store_;
  std::unique_ptr<eventstore::StoreClient> client_;
  std::string prefix_;
};

void WriteJointState(Writer& writer, std::vector<double> positions, int32_t sec,
                     std::vector<const char*> names = {"j1", "j2"}) {
  sensor_msgs_msg_dds__JointState_ msg{};
  msg.header.stamp.sec = sec;
  msg.header.frame_id = const_cast<char*>("base_link");
  msg.name = {static_cast<uint32_t>(names.size()), static_cast<uint32_t>(names.size()),
              const_cast<char**>(names.data()), false};
  msg.position = {static_cast<uint32_t>(positions.size()), static_cast<uint32_t>(positions.size()),
                  positions.data(), false};
  ASSERT_TRUE(writer.Write(&msg).ok());
}

TEST_F(DdsIngestTest, NewRobotIsDiscoveredRegisteredAndItsSamplesBecomeEvents) {
  auto ingest = StartIngest(0);
  auto participant = Participant::Create();
  ASSERT_TRUE(participant.ok());
  const std::string robot = prefix_ + "arm";
  auto joints = Writer::Create(*participant, &sensor_msgs_msg_dds__JointState__desc,
                               "rt/" + robot + "/joint_states");
  auto odom =
      Writer::Create(*participant, &nav_msgs_msg_dds__Odometry__desc, "rt/" + robot + "/odom");
  auto cmd =
      Writer::Create(*participant, &geometry_msgs_msg_dds__Twist__desc, "rt/" + robot + "/cmd_vel");
  ASSERT_TRUE(joints.ok() && odom.ok() && cmd.ok());
  ASSERT_TRUE(WaitUntil([&] {
    return joints->MatchedReaders() >= 1 && odom->MatchedReaders() >= 1 &&
           cmd->MatchedReaders() >= 1;
  })) << "the ingest did not discover the robot's topics";

  for (int i = 0; i < 5; ++i) WriteJointState(*joints, {0.1 * i, -0.2 * i}, 1700000000 + i);
  nav_msgs_msg_dds__Odometry_ o{};
  o.header.frame_id = const_cast<char*>("odom");
  o.child_frame_id = const_cast<char*>("base_link");
  o.pose.pose.position.x = 1.5;
  o.pose.pose.orientation.w = 1;
  o.twist.twist.linear.x = 0.3;
  ASSERT_TRUE(odom->Write(&o).ok());
  geometry_msgs_msg_dds__Twist_ t{};
  t.linear.x = 0.5;
  t.angular.z = -0.25;
  ASSERT_TRUE(cmd->Write(&t).ok());

  ASSERT_TRUE(WaitUntil([&] { return ingest->counters().appended >= 7; }));
  const auto events = Events(robot);
  ASSERT_EQ(events.size(), 8u);  // registration + 7 samples
  EXPECT_EQ(events[0].type(), "RobotRegistered");
  const testing::PayloadOf<events::RobotRegistered> registered(events[0]);
  EXPECT_EQ(registered->model()->str(), "doppel_arm6");  // from the configured models
  EXPECT_EQ(registered->robot_id()->str(), robot);
  int joint_states = 0;
  for (const auto& e : events) {
    if (e.type() == "JointStateObserved") {
      const testing::PayloadOf<events::JointStateObserved> js(e);
      EXPECT_EQ(js->names()->Get(1)->str(), "j2");
      EXPECT_DOUBLE_EQ(js->position()->Get(0), 0.1 * joint_states);
      EXPECT_EQ(e.occurred_ns(), (1700000000LL + joint_states) * 1'000'000'000LL);
      ++joint_states;
    } else if (e.type() == "PoseObserved") {
      const testing::PayloadOf<events::PoseObserved> p(e);
      EXPECT_DOUBLE_EQ(p->pose()->position().x(), 1.5);
      EXPECT_DOUBLE_EQ(p->twist()->linear().x(), 0.3);
    } else if (e.type() == "CommandIssued") {
      const testing::PayloadOf<events::CommandIssued> c(e);
      EXPECT_EQ(c->kind(), events::CommandKind::Velocity);
      EXPECT_DOUBLE_EQ(c->twist()->angular().z(), -0.25);
    }
  }
  EXPECT_EQ(joint_states, 5);
  EXPECT_EQ(ingest->counters().robots, 1u);
  EXPECT_EQ(ingest->counters().bad, 0u);
}

void WriteDiagnostics(Writer& writer, uint8_t level, const char* name) {
  diagnostic_msgs_msg_dds__DiagnosticStatus_ st{};
  st.level = level;
  st.name = const_cast<char*>(name);
  st.message = const_cast<char*>(level == 0 ? "OK" : "too hot");
  st.hardware_id = const_cast<char*>("");
  diagnostic_msgs_msg_dds__DiagnosticArray_ d{};
  d.header.stamp.sec = 1700000100;
  d.header.frame_id = const_cast<char*>("");
  d.status = {1, 1, &st, false};
  ASSERT_TRUE(writer.Write(&d).ok());
}

TEST_F(DdsIngestTest, DiagnosticsRaiseAndClearFaultsOnTransitionsOnly) {
  // Decimation on, at a low rate: faults must get through regardless.
  auto ingest = StartIngest(1);
  auto participant = Participant::Create();
  ASSERT_TRUE(participant.ok());
  const std::string robot = prefix_ + "diag";
  auto diag = Writer::Create(*participant, &diagnostic_msgs_msg_dds__DiagnosticArray__desc,
                             "rt/" + robot + "/diagnostics", QosSpec{true, false, 100});
  ASSERT_TRUE(diag.ok());
  ASSERT_TRUE(WaitUntil([&] { return diag->MatchedReaders() >= 1; }));
  WriteDiagnostics(*diag, 2, "motor");  // raise
  WriteDiagnostics(*diag, 2, "motor");  // unchanged: nothing new
  WriteDiagnostics(*diag, 0, "motor");  // clear
  WriteDiagnostics(*diag, 2, "");       // bad: a status with no name
  ASSERT_TRUE(WaitUntil([&] {
    const auto c = ingest->counters();
    return c.appended + c.decimated + c.bad >= 4;
  }));
  const auto events = Events(robot);
  ASSERT_EQ(events.size(), 3u);  // registration, raised, cleared
  EXPECT_EQ(events[1].type(), "FaultRaised");
  const testing::PayloadOf<events::FaultRaised> raised(events[1]);
  EXPECT_EQ(raised->code()->str(), "motor");
  EXPECT_EQ(raised->severity(), events::Severity::Error);
  EXPECT_EQ(raised->message()->str(), "too hot");
  EXPECT_EQ(events[1].occurred_ns(), 1700000100LL * 1'000'000'000LL);
  EXPECT_EQ(events[2].type(), "FaultCleared");
  const auto c = ingest->counters();
  EXPECT_EQ(c.samples, 4u);
  EXPECT_EQ(c.appended, 2u);
  EXPECT_EQ(c.decimated, 1u);
  EXPECT_EQ(c.bad, 1u);
}

TEST_F(DdsIngestTest, BadSamplesAreCountedAndNotAppended) {
  auto ingest = StartIngest(0);
  auto participant = Participant::Create();
  const std::string robot = prefix_ + "bad";
  auto joints = Writer::Create(*participant, &sensor_msgs_msg_dds__JointState__desc,
                               "rt/" + robot + "/joint_states");
  ASSERT_TRUE(joints.ok());
  ASSERT_TRUE(WaitUntil([&] { return joints->MatchedReaders() >= 1; }));
  WriteJointState(*joints, {std::nan(""), 1.0}, 1);  // NaN
  WriteJointState(*joints, {1.0}, 2);                // one value for two joints
  WriteJointState(*joints, {1.0, 2.0}, 3);           // good
  ASSERT_TRUE(WaitUntil(
      [&] { return ingest->counters().samples >= 3 && ingest->counters().appended >= 1; }));
  EXPECT_EQ(ingest->counters().bad, 2u);
  const auto events = Events(robot);
  ASSERT_EQ(events.size(), 2u);  // registration + the good sample
  EXPECT_EQ(events[1].occurred_ns(), 3'000'000'000LL);
}

TEST_F(DdsIngestTest, DecimationIsCountedSoEverySampleIsAccountedFor) {
  auto ingest = StartIngest(/*max_rate_hz=*/10);
  auto participant = Participant::Create();
  const std::string robot = prefix_ + "fast";
  QosSpec qos;
  qos.depth = 1000;
  auto joints = Writer::Create(*participant, &sensor_msgs_msg_dds__JointState__desc,
                               "rt/" + robot + "/joint_states", qos);
  ASSERT_TRUE(joints.ok());
  ASSERT_TRUE(WaitUntil([&] { return joints->MatchedReaders() >= 1; }));
  for (int i = 0; i < 200; ++i) {
    WriteJointState(*joints, {1.0 * i, 0.0}, i + 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_TRUE(WaitUntil([&] {
    const auto c = ingest->counters();
    return c.samples == 200 && c.appended + c.decimated + c.bad == 200;
  })) << "samples "
      << ingest->counters().samples << " appended " << ingest->counters().appended << " decimated "
      << ingest->counters().decimated;
  const auto c = ingest->counters();
  EXPECT_GT(c.decimated, 100u);  // ~0.4 s of samples at 10 Hz keeps only a handful
  EXPECT_GT(c.appended, 0u);
  EXPECT_EQ(Events(robot).size(), c.appended + 1);  // + registration (not a sample)
}

// Finding 2: a joint name that is not UTF-8 was stored and then aborted every JSON writer
// (and `doppel up` on each restart). Finding 1: a cmd_vel of 1e200 was stored and aborted the
// twin. Both are refused at the ingest, counted, and the next good sample goes through.
TEST_F(DdsIngestTest, SamplesWithTextThatIsNotUtf8OrAbsurdCommandsAreRefused) {
  auto ingest = StartIngest(0);
  auto participant = Participant::Create();
  const std::string robot = prefix_ + "hostile";
  auto joints = Writer::Create(*participant, &sensor_msgs_msg_dds__JointState__desc,
                               "rt/" + robot + "/joint_states");
  auto cmd =
      Writer::Create(*participant, &geometry_msgs_msg_dds__Twist__desc, "rt/" + robot + "/cmd_vel");
  ASSERT_TRUE(joints.ok() && cmd.ok());
  ASSERT_TRUE(
      WaitUntil([&] { return joints->MatchedReaders() >= 1 && cmd->MatchedReaders() >= 1; }));
  WriteJointState(*joints, {1.0, 2.0}, 1, {"j1", "j\xff\xfe"});
  geometry_msgs_msg_dds__Twist_ t{};
  t.linear.x = 1e200;
  t.angular.z = 1e200;
  ASSERT_TRUE(cmd->Write(&t).ok());
  WriteJointState(*joints, {1.0, 2.0}, 3);  // good
  ASSERT_TRUE(WaitUntil(
      [&] { return ingest->counters().samples >= 3 && ingest->counters().appended >= 1; }));
  EXPECT_EQ(ingest->counters().bad, 2u);
  const auto events = Events(robot);
  ASSERT_EQ(events.size(), 2u);  // registration + the good sample
  EXPECT_EQ(events[1].type(), "JointStateObserved");
}

// Finding 6: every robot name seen on DDS was taken on with no limit.
TEST_F(DdsIngestTest, RobotsBeyondTheCapAreIgnoredAndCounted) {
  auto ingest = StartIngest(0, /*max_robots=*/3);
  auto participant = Participant::Create();
  std::vector<Writer> writers;
  for (int i = 0; i < 6; ++i) {
    auto w = Writer::Create(*participant, &sensor_msgs_msg_dds__JointState__desc,
                            "rt/" + prefix_ + "many" + std::to_string(i) + "/joint_states");
    ASSERT_TRUE(w.ok());
    writers.push_back(std::move(w).value());
  }
  ASSERT_TRUE(WaitUntil([&] { return ingest->counters().robots_refused >= 3; }))
      << "refused " << ingest->counters().robots_refused;
  EXPECT_EQ(ingest->counters().robots, 3u);
  size_t registered = 0;
  ASSERT_TRUE(WaitUntil([&] {
    registered = 0;
    for (int i = 0; i < 6; ++i) registered += Events(prefix_ + "many" + std::to_string(i)).size();
    return registered >= 3;
  }));
  EXPECT_EQ(registered, 3u) << "a robot past the cap got a stream";
}

}  // namespace
}  // namespace doppel::dds
