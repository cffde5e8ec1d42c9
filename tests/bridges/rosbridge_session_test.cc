// RosbridgeSession driven directly (sans-I/O): text in, actions out, time as a number.
#include "rosbridge_session.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "ros_messages.h"

namespace doppel::gateway {
namespace {

using nlohmann::json;
constexpr int64_t kMs = 1'000'000;

class RosbridgeSessionTest : public ::testing::Test {
 protected:
  RosbridgeSession Make(Role role) {
    return RosbridgeSession(
        role, [this](std::string_view r) { return robots.count(std::string(r)) > 0; });
  }
  // Every text sent (fragments as they are), parsed.
  static std::vector<json> Sent(std::vector<RosbridgeAction>& actions) {
    std::vector<json> out;
    for (auto& a : actions) {
      if (auto* s = std::get_if<RosbridgeSend>(&a)) {
        for (const auto& t : s->texts) out.push_back(json::parse(*t));
      }
    }
    return out;
  }
  static std::shared_ptr<const std::string> Publish(const std::string& topic, int n) {
    return std::make_shared<const std::string>(
        json({{"op", "publish"}, {"topic", topic}, {"msg", {{"n", n}}}}).dump());
  }
  std::set<std::string> robots = {"base1", "arm1"};
};

TEST_F(RosbridgeSessionTest, BadJsonUnknownOpAndUnknownTopicGetErrorStatusAndServingGoesOn) {
  auto s = Make(Role::kViewer);
  s.OnText("{not json", 0);
  s.OnText(R"({"op":"teleport","id":"t1"})", 0);
  s.OnText(R"({"op":"subscribe","id":"s1","topic":"/base1/camera"})", 0);
  s.OnText(R"({"op":"subscribe","id":"s2","topic":"/nobody/odom"})", 0);
  s.OnText(R"({"op":"subscribe","id":"s3","topic":"/base1/odom","type":"std_msgs/String"})", 0);
  s.OnText(R"({"op":"subscribe","id":"s4","topic":"/base1/odom","type":"nav_msgs/Odometry"})", 0);
  auto actions = s.TakeActions();
  auto sent = Sent(actions);
  ASSERT_EQ(sent.size(), 5u);
  for (const auto& m : sent) {
    EXPECT_EQ(m["op"], "status");
    EXPECT_EQ(m["level"], "error");
    EXPECT_TRUE(m["msg"].is_string());
  }
  EXPECT_EQ(sent[1]["id"], "t1");
  EXPECT_EQ(sent[2]["id"], "s1");
  // The last subscribe (its type in ROS 1 spelling) was accepted: the topic is watched.
  ASSERT_TRUE(std::holds_alternative<RosbridgeWatch>(actions.back()));
  EXPECT_EQ(std::get<RosbridgeWatch>(actions.back()).topic, "/base1/odom");
}

TEST_F(RosbridgeSessionTest, SubscriptionGetsEveryMessageAsDroppableTextPerTopicSlot) {
  auto s = Make(Role::kViewer);
  s.OnText(R"({"op":"subscribe","id":"a","topic":"/base1/odom"})", 0);
  s.OnText(R"({"op":"subscribe","id":"b","topic":"/tf"})", 0);
  s.TakeActions();
  s.OnMessage("/base1/odom", "base1", Publish("/base1/odom", 1), 1 * kMs);
  s.OnMessage("/base1/odom", "base1", Publish("/base1/odom", 2), 2 * kMs);
  s.OnMessage("/tf", "base1", Publish("/tf", 3), 2 * kMs);
  s.OnMessage("/tf", "arm1", Publish("/tf", 4), 2 * kMs);
  s.OnMessage("/arm1/odom", "arm1", Publish("/arm1/odom", 5), 2 * kMs);  // not subscribed
  auto actions = s.TakeActions();
  ASSERT_EQ(actions.size(), 4u);
  std::set<uint32_t> slots;
  for (auto& a : actions) {
    const auto& send = std::get<RosbridgeSend>(a);
    EXPECT_TRUE(send.droppable);
    slots.insert(send.slot);
  }
  EXPECT_EQ(slots.size(), 3u);  // odom, tf of base1, tf of arm1
  EXPECT_EQ(Sent(actions)[1]["msg"]["n"], 2);
  EXPECT_FALSE(s.next_deadline().has_value());
}

TEST_F(RosbridgeSessionTest, ThrottleRateSendsAtMostOnePerPeriodAndTheLatestWins) {
  auto s = Make(Role::kViewer);
  s.OnText(R"({"op":"subscribe","id":"a","topic":"/base1/odom","throttle_rate":1000})", 0);
  s.TakeActions();
  int sent = 0;
  int last = 0;
  // 30 Hz for 5 s.
  for (int i = 0; i < 150; ++i) {
    const int64_t now = 1000 * kMs + i * 33 * kMs;
    if (auto due = s.next_deadline(); due && *due <= now) s.OnTick(now);
    s.OnMessage("/base1/odom", "base1", Publish("/base1/odom", i), now);
    auto actions = s.TakeActions();
    for (auto& m : Sent(actions)) {
      ++sent;
      last = m["msg"]["n"];
    }
  }
  EXPECT_GE(sent, 5);
  EXPECT_LE(sent, 6);
  // What waited was the newest, not the first of its period.
  s.OnTick(100'000 * kMs);
  auto actions = s.TakeActions();
  auto tail = Sent(actions);
  ASSERT_EQ(tail.size(), 1u);
  EXPECT_EQ(tail[0]["msg"]["n"], 149);
  EXPECT_LT(last, 149);
}

TEST_F(RosbridgeSessionTest, QueueLengthKeepsTheNewestNAndSendsThemOnePerThrottlePeriod) {
  auto s = Make(Role::kViewer);
  s.OnText(
      R"({"op":"subscribe","id":"a","topic":"/base1/odom","throttle_rate":100,"queue_length":3})",
      0);
  s.TakeActions();
  for (int i = 0; i < 10; ++i) s.OnMessage("/base1/odom", "base1", Publish("/base1/odom", i), kMs);
  std::vector<int> got;
  for (int64_t t = kMs; t < 1000 * kMs; t += 10 * kMs) {
    s.OnTick(t);
    auto actions = s.TakeActions();
    for (auto& m : Sent(actions)) got.push_back(m["msg"]["n"]);
  }
  // The first went at once; of the nine that waited, the oldest were dropped.
  EXPECT_EQ(got, (std::vector<int>{0, 7, 8, 9}));
}

TEST_F(RosbridgeSessionTest, FragmentSizeSplitsAMessageIntoFragmentsThatJoinBackWhole) {
  auto s = Make(Role::kViewer);
  s.OnText(R"({"op":"subscribe","id":"a","topic":"/base1/joint_states","fragment_size":100})", 0);
  s.TakeActions();
  std::string big =
      json({{"op", "publish"},
            {"topic", "/base1/joint_states"},
            {"msg", {{"name", std::vector<std::string>(40, "gelenk_ü_\xe2\x82\xac")}}}})
          .dump();
  s.OnMessage("/base1/joint_states", "base1", std::make_shared<const std::string>(big), kMs);
  auto actions = s.TakeActions();
  ASSERT_EQ(actions.size(), 1u);  // one unit: dropped or sent whole
  auto fragments = Sent(actions);
  ASSERT_GT(fragments.size(), 5u);
  std::string joined;
  for (size_t i = 0; i < fragments.size(); ++i) {
    EXPECT_EQ(fragments[i]["op"], "fragment");
    EXPECT_EQ(fragments[i]["num"], i);
    EXPECT_EQ(fragments[i]["total"], fragments.size());
    EXPECT_EQ(fragments[i]["id"], fragments[0]["id"]);
    EXPECT_LE(fragments[i]["data"].get<std::string>().size(), 100u);
    joined += fragments[i]["data"].get<std::string>();
  }
  EXPECT_EQ(joined, big);
}

TEST_F(RosbridgeSessionTest, AViewersAdvertiseAndPublishGetErrorStatusAndIssueNothing) {
  auto s = Make(Role::kViewer);
  s.OnText(R"({"op":"advertise","id":"a","topic":"/base1/cmd_vel","type":"geometry_msgs/Twist"})",
           0);
  s.OnText(R"({"op":"publish","id":"p","topic":"/base1/cmd_vel","msg":{"linear":{"x":1}}})", 0);
  auto actions = s.TakeActions();
  ASSERT_EQ(actions.size(), 2u);
  for (auto& m : Sent(actions)) {
    EXPECT_EQ(m["level"], "error");
    EXPECT_NE(m["msg"].get<std::string>().find("viewer"), std::string::npos);
  }
}

TEST_F(RosbridgeSessionTest, AnOperatorsCmdVelBecomesACommandAndItsOutcomeAStatus) {
  auto s = Make(Role::kOperator);
  s.OnText(R"({"op":"advertise","id":"a","topic":"/base1/cmd_vel","type":"geometry_msgs/Twist"})",
           0);
  s.OnText(
      R"({"op":"publish","id":"p1","topic":"/base1/cmd_vel","msg":{"linear":{"x":0.5,"y":0,"z":0},"angular":{"x":0,"y":0,"z":0.2}}})",
      0);
  s.OnText(R"({"op":"publish","id":"p2","topic":"/ghost/cmd_vel","msg":{}})", 0);
  s.OnText(R"({"op":"publish","id":"p3","topic":"/base1/cmd_vel","msg":{"linear":{"x":"fast"}}})",
           0);
  s.OnText(R"({"op":"publish","id":"p4","topic":"/base1/odom","msg":{}})", 0);
  auto actions = s.TakeActions();
  ASSERT_EQ(actions.size(), 4u);
  const auto& c = std::get<RosbridgeCommand>(actions[0]);
  EXPECT_EQ(c.robot, "base1");
  EXPECT_FALSE(c.stop);
  EXPECT_EQ(c.request_id, "p1");
  EXPECT_EQ(c.twist["angular"]["z"], 0.2);
  for (size_t i = 1; i < 4; ++i) {
    EXPECT_EQ(json::parse(*std::get<RosbridgeSend>(actions[i]).texts[0])["level"], "error");
  }
  s.OnCommandDone("p1", "base1", uint64_t{42});
  s.OnCommandDone("p5", "base1", Status::InvalidArgument("linear.x 99 is beyond 50 m/s"));
  actions = s.TakeActions();
  auto sent = Sent(actions);
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0]["level"], "info");
  EXPECT_EQ(sent[0]["id"], "p1");
  EXPECT_EQ(sent[1]["level"], "error");
  EXPECT_EQ(sent[1]["id"], "p5");
  EXPECT_NE(sent[1]["msg"].get<std::string>().find("50 m/s"), std::string::npos);
}

TEST_F(RosbridgeSessionTest, ServicesAreCalledAndAnsweredInRosbridgesShape) {
  auto s = Make(Role::kViewer);
  s.OnText(R"({"op":"call_service","id":"c1","service":"/doppel/list_robots","args":{}})", 0);
  s.OnText(
      R"({"op":"call_service","id":"c2","service":"/doppel/robot_state","args":{"robot":"base1","at":"2026-01-01T00:00:00Z"}})",
      0);
  s.OnText(R"({"op":"call_service","id":"c3","service":"/doppel/robot_state","args":{}})", 0);
  s.OnText(R"({"op":"call_service","id":"c4","service":"/rosapi/topics"})", 0);
  auto actions = s.TakeActions();
  ASSERT_EQ(actions.size(), 4u);
  EXPECT_EQ(std::get<RosbridgeServiceCall>(actions[0]).service, "/doppel/list_robots");
  EXPECT_EQ(std::get<RosbridgeServiceCall>(actions[1]).args["robot"], "base1");
  for (size_t i = 2; i < 4; ++i) {
    const auto m = json::parse(*std::get<RosbridgeSend>(actions[i]).texts[0]);
    EXPECT_EQ(m["op"], "service_response");
    EXPECT_EQ(m["result"], false);
    EXPECT_TRUE(m["values"].is_string());
  }
  s.OnServiceDone("c1", "/doppel/list_robots", json{{"robots", {"arm1", "base1"}}});
  actions = s.TakeActions();
  const auto m = json::parse(*std::get<RosbridgeSend>(actions[0]).texts[0]);
  EXPECT_EQ(m, json::parse(R"({"op":"service_response","id":"c1","service":"/doppel/list_robots",
                               "values":{"robots":["arm1","base1"]},"result":true})"));
}

TEST_F(RosbridgeSessionTest, SubscriptionsOfOneTopicMergeAndTheLastUnsubscribeStopsTheWatch) {
  auto s = Make(Role::kViewer);
  s.OnText(R"({"op":"subscribe","id":"a","topic":"/tf","throttle_rate":500})", 0);
  s.OnText(R"({"op":"subscribe","id":"b","topic":"/tf","throttle_rate":0})", 0);
  auto actions = s.TakeActions();
  ASSERT_EQ(actions.size(), 1u);  // one watch for both
  // The lowest throttle wins: both messages go at once, once each.
  s.OnMessage("/tf", "base1", Publish("/tf", 1), kMs);
  s.OnMessage("/tf", "base1", Publish("/tf", 2), 2 * kMs);
  actions = s.TakeActions();
  EXPECT_EQ(Sent(actions).size(), 2u);
  s.OnText(R"({"op":"unsubscribe","id":"b","topic":"/tf"})", 0);
  EXPECT_TRUE(s.TakeActions().empty());
  s.OnText(R"({"op":"unsubscribe","id":"a","topic":"/tf"})", 0);
  actions = s.TakeActions();
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_FALSE(std::get<RosbridgeWatch>(actions[0]).watch);
  s.OnMessage("/tf", "base1", Publish("/tf", 3), 3 * kMs);
  EXPECT_TRUE(s.TakeActions().empty());
}

// Issue 26: 100,000 subscribes to /tf with distinct ids from one viewer re-merged all of the
// topic's subscriptions each time (5e9 steps on the network thread). Now those past the cap
// are refused and change nothing, and the merge of those held is kept incrementally.
TEST_F(RosbridgeSessionTest, SubscriptionsPastTheCapAreRefusedAndTheMergeIsIncremental) {
  constexpr size_t kCap = RosbridgeSession::kMaxSubscriptions;
  constexpr size_t kAttack = 100'000;
  auto s = Make(Role::kViewer);
  // Held ones throttle 1000 + i ms with queue_length 1; the refused ones ask for 1 ms and 100,
  // which would change the merge if any of them were taken.
  auto subscribe = [&s](size_t i, bool held) {
    s.OnText(json({{"op", "subscribe"},
                   {"id", "s" + std::to_string(i)},
                   {"topic", "/tf"},
                   {"throttle_rate", held ? 1000 + i : 1},
                   {"queue_length", held ? 1 : 100}})
                 .dump(),
             0);
  };
  for (size_t i = 0; i < kCap; ++i) {
    subscribe(i, true);
    auto actions = s.TakeActions();
    // The first starts the watch; no other is answered (rosbridge acks no subscribe).
    ASSERT_EQ(actions.size(), i == 0 ? 1u : 0u) << "subscribe " << i;
  }
  for (size_t i = kCap; i < kAttack; ++i) {
    subscribe(i, false);
    auto actions = s.TakeActions();
    // Fatal, so that without the cap this stops here instead of running quadratic.
    ASSERT_EQ(actions.size(), 1u) << "subscribe " << i << " past the cap was not refused";
    const auto m = json::parse(*std::get<RosbridgeSend>(actions[0]).texts[0]);
    ASSERT_EQ(m["op"], "status");
    ASSERT_EQ(m["level"], "error");
    ASSERT_EQ(m["id"], "s" + std::to_string(i));
    if (i == kCap) {
      EXPECT_NE(m["msg"].get<std::string>().find("holds 10000 subscriptions"), std::string::npos)
          << m["msg"];
    }
  }
  EXPECT_EQ(s.subscription_count(), kCap);
  // The work is one merge step per subscription held, not one per subscription per subscribe
  // (without the incremental merge: kCap * (kCap + 1) / 2 for these alone).
  EXPECT_EQ(s.merge_steps(), kCap);

  // Messages flow at the merge of the held ones: 1000 ms (s0's), one waiting (queue_length 1).
  const int64_t t0 = 10'000 * kMs;
  s.OnMessage("/tf", "base1", Publish("/tf", 1), t0);
  for (int n = 2; n <= 4; ++n) s.OnMessage("/tf", "base1", Publish("/tf", n), t0 + n * kMs);
  auto actions = s.TakeActions();
  auto sent = Sent(actions);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0]["msg"]["n"], 1);
  ASSERT_TRUE(s.next_deadline().has_value());
  EXPECT_EQ(*s.next_deadline(), t0 + 1000 * kMs);
  s.OnTick(t0 + 1000 * kMs);
  s.OnTick(t0 + 100'000 * kMs);
  actions = s.TakeActions();
  sent = Sent(actions);
  ASSERT_EQ(sent.size(), 1u);  // only the newest waited
  EXPECT_EQ(sent[0]["msg"]["n"], 4);

  // Unsubscribing s0 by id takes its 1000 ms out: the merge is s1's 1001 ms. Unsubscribing
  // a refused id changes nothing.
  s.OnText(R"({"op":"unsubscribe","id":"s0","topic":"/tf"})", 0);
  s.OnText(
      json({{"op", "unsubscribe"}, {"id", "s" + std::to_string(kCap)}, {"topic", "/tf"}}).dump(),
      0);
  EXPECT_TRUE(s.TakeActions().empty());
  EXPECT_EQ(s.subscription_count(), kCap - 1);
  const int64_t t1 = 200'000 * kMs;
  s.OnMessage("/tf", "base1", Publish("/tf", 5), t1);
  s.OnMessage("/tf", "base1", Publish("/tf", 6), t1 + kMs);
  ASSERT_EQ(Sent(actions = s.TakeActions()).size(), 1u);
  EXPECT_EQ(*s.next_deadline(), t1 + 1001 * kMs);
  s.OnTick(t1 + 1001 * kMs);
  ASSERT_EQ(Sent(actions = s.TakeActions()).size(), 1u);

  // Room again for one; at the cap a held id may still be re-subscribed (its values replace
  // the old ones: s1's 1001 ms becomes 5000, so s2's 1002 ms is the merge).
  subscribe(kAttack, true);
  subscribe(1, true);
  EXPECT_TRUE(s.TakeActions().empty());
  s.OnText(R"({"op":"subscribe","id":"s1","topic":"/tf","throttle_rate":5000})", 0);
  EXPECT_TRUE(s.TakeActions().empty());
  EXPECT_EQ(s.subscription_count(), kCap);
  const int64_t t2 = 400'000 * kMs;
  s.OnMessage("/tf", "base1", Publish("/tf", 7), t2);
  s.OnMessage("/tf", "base1", Publish("/tf", 8), t2 + kMs);
  ASSERT_EQ(Sent(actions = s.TakeActions()).size(), 1u);
  EXPECT_EQ(*s.next_deadline(), t2 + 1002 * kMs);
  EXPECT_LE(s.merge_steps(), kCap + 10);

  // An unsubscribe without id ends them all and the watch.
  s.OnText(R"({"op":"unsubscribe","topic":"/tf"})", 0);
  actions = s.TakeActions();
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_FALSE(std::get<RosbridgeWatch>(actions[0]).watch);
  EXPECT_EQ(s.subscription_count(), 0u);
}

TEST_F(RosbridgeSessionTest, ASubscriptionIdPastItsBudgetIsRefusedAndNothingIsHeld) {
  auto s = Make(Role::kViewer);
  const std::string id(RosbridgeSession::kMaxSubscriptionIdBytes + 1, 'x');
  s.OnText(json({{"op", "subscribe"}, {"id", id}, {"topic", "/tf"}}).dump(), 0);
  auto actions = s.TakeActions();
  ASSERT_EQ(actions.size(), 1u);
  const auto m = json::parse(*std::get<RosbridgeSend>(actions[0]).texts[0]);
  EXPECT_EQ(m["level"], "error");
  EXPECT_NE(m["msg"].get<std::string>().find("1024"), std::string::npos) << m["msg"];
  EXPECT_EQ(s.subscription_count(), 0u);
  s.OnText(json({{"op", "subscribe"}, {"id", id.substr(1)}, {"topic", "/tf"}}).dump(), 0);
  actions = s.TakeActions();
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<RosbridgeWatch>(actions[0]));
}

TEST(RosTopicTypeTest, NamesTheTopicsDoppelServes) {
  std::string robot;
  EXPECT_EQ(RosTopicType("/tf"), "tf2_msgs/msg/TFMessage");
  EXPECT_EQ(RosTopicType("/diagnostics"), "diagnostic_msgs/msg/DiagnosticArray");
  EXPECT_EQ(RosTopicType("/site/a/base1/odom", &robot), "nav_msgs/msg/Odometry");
  EXPECT_EQ(robot, "site/a/base1");
  EXPECT_EQ(RosTopicType("/base1/joint_states"), "sensor_msgs/msg/JointState");
  EXPECT_EQ(RosTopicType("/base1/predicted_path"), "nav_msgs/msg/Path");
  EXPECT_EQ(RosTopicType("/odom"), "");
  EXPECT_EQ(RosTopicType("/base1/twin"), "");
}

}  // namespace
}  // namespace doppel::gateway
