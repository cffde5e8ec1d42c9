// The simulated fleet with the real ingest and a real store: every robot's topics turn into
// events, bases move and command, and an external cmd_vel is obeyed.
#include "doppel/bridges/sim_fleet.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <functional>
#include <thread>

#include "doppel/bridges/dds.h"
#include "doppel/bridges/dds_ingest.h"
#include "doppel/eventstore/store_client.h"
#include "doppel/schemas/robot_events_generated.h"
#include "ros2_msgs.h"
#include "test_support.h"

namespace doppel::dds {
namespace {

bool WaitUntil(const std::function<bool()>& done, int timeout_ms = 20000) {
  for (int waited = 0; waited < timeout_ms; waited += 50) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

TEST(SimFleetTest, EveryRobotBecomesEventsAndBasesObeyCmdVel) {
  testing::TempDir dir;
  auto store = testing::StartStore(dir.Sub("log"));
  eventstore::StoreClientOptions co;
  co.endpoint = store.listen;
  auto client = std::move(eventstore::StoreClient::Connect(co)).value();
  const std::string prefix = "f" + std::to_string(::getpid());
  IngestOptions io;
  io.robots = prefix + "_*";
  io.max_rate_hz = 0;
  auto ingest = DdsIngest::Start(*client, io);
  ASSERT_TRUE(ingest.ok());
  SimFleetOptions so;
  so.robots = 4;
  so.rate_hz = 20;
  so.prefix = prefix;
  so.silence_chance_per_s = 0;
  auto fleet = SimFleet::Start(so);
  ASSERT_TRUE(fleet.ok()) << fleet.status().ToString();

  auto events_of = [&](const std::string& robot) {
    auto page = client->ReadStream("robot-" + robot, 0, eventstore::Direction::kForward, 100000);
    return page.ok() ? page->events : std::vector<eventstore::RecordedEvent>{};
  };
  auto count = [&](const std::string& robot, std::string_view type) {
    int n = 0;
    for (const auto& e : events_of(robot)) n += e.type() == type;
    return n;
  };
  const std::string arm = prefix + "_arm_0", base = prefix + "_base_1";
  ASSERT_TRUE(WaitUntil([&] {
    return (*ingest)->counters().robots == 4 && count(arm, "JointStateObserved") > 5 &&
           count(base, "PoseObserved") > 5 && count(base, "CommandIssued") > 0;
  })) << "robots "
      << (*ingest)->counters().robots;
  // Every robot reports its mode on rt/<robot>/mode: Autonomous, recorded once (republishing
  // the same mode is not a change).
  ASSERT_TRUE(
      WaitUntil([&] { return count(arm, "ModeChanged") == 1 && count(base, "ModeChanged") == 1; }));
  for (const auto& e : events_of(base)) {
    if (e.type() != "ModeChanged") continue;
    EXPECT_EQ(testing::PayloadOf<events::ModeChanged>(e)->mode(), events::RobotMode::Autonomous);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  EXPECT_EQ(count(arm, "ModeChanged"), 1) << "a republished mode is not a change";
  // Arms report six joints; bases move.
  for (const auto& e : events_of(arm)) {
    if (e.type() != "JointStateObserved") continue;
    EXPECT_EQ(testing::PayloadOf<events::JointStateObserved>(e)->names()->size(), 6u);
  }
  auto base_x = [&] {
    double x = 0;
    for (const auto& e : events_of(base)) {
      if (e.type() == "PoseObserved") {
        x = testing::PayloadOf<events::PoseObserved>(e)->pose()->position().x();
      }
    }
    return x;
  };
  const double before = base_x();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_NE(base_x(), before) << "the base should be driving";

  // An operator's stop on cmd_vel: the base holds still.
  auto participant = Participant::Create();
  auto stop =
      Writer::Create(*participant, &geometry_msgs_msg_dds__Twist__desc, "rt/" + base + "/cmd_vel");
  ASSERT_TRUE(stop.ok());
  geometry_msgs_msg_dds__Twist_ zero{};
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(stop->Write(&zero).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const double held = base_x();
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  EXPECT_NEAR(base_x(), held, 1e-9) << "the base did not obey the stop";
}

}  // namespace
}  // namespace doppel::dds
