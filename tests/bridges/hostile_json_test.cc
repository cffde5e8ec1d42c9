// Deeply nested and oversized JSON from clients (issue 26): the budgets of ParseClientJson at
// their edges, and a real `doppel gateway` process attacked over loopback through every
// parser a client feeds (rosbridge call_service args and an operator's publish msg, Foxglove
// client ops and client messages): each attack gets a clear refusal and the process keeps
// serving the attacker and everyone else.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <zmq.hpp>

#include "client_json.h"
#include "doppel/core/clock.h"
#include "doppel/eventstore/zmq_security.h"
#include "doppel/schemas/twin_state_generated.h"
#include "gateway_client.h"
#include "test_support.h"

namespace doppel {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using gateway::ClientJsonLimits;
using gateway::kClientJsonMaxBytes;
using gateway::kClientJsonMaxDepth;
using gateway::ParseClientJson;
using nlohmann::json;
using testing::HttpGet;
using testing::TwinStateBytes;
using testing::WsClient;

// The attack of issue 26: 100,000 nested arrays, 200 KB.
constexpr size_t kAttackDepth = 100'000;

std::string NestedArrays(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

TEST(ParseClientJsonTest, AcceptsTheDepthBudgetAndRefusesOneLevelMore) {
  auto at_budget = ParseClientJson(NestedArrays(kClientJsonMaxDepth));
  ASSERT_TRUE(at_budget.ok()) << at_budget.status().message();
  EXPECT_TRUE(at_budget->is_array());
  // Objects count as levels too, mixed with arrays.
  std::string mixed;
  for (size_t i = 0; i < kClientJsonMaxDepth; ++i) mixed += i % 2 ? "[" : R"({"k":)";
  for (size_t i = kClientJsonMaxDepth; i-- > 0;) mixed += i % 2 ? "]" : "}";
  EXPECT_TRUE(ParseClientJson(mixed).ok());
  auto past = ParseClientJson("[" + mixed + "]");
  ASSERT_FALSE(past.ok());
  EXPECT_NE(past.status().message().find("nested deeper than 64"), std::string::npos)
      << past.status().message();
  EXPECT_FALSE(ParseClientJson(NestedArrays(kClientJsonMaxDepth + 1)).ok());
  // Scalars and strings are not levels.
  EXPECT_TRUE(ParseClientJson(R"("[[[[")").ok());
}

TEST(ParseClientJsonTest, RefusesTheAttackAndOversizedTextWithoutBuildingATree) {
  auto deep = ParseClientJson(NestedArrays(kAttackDepth));
  ASSERT_FALSE(deep.ok());
  EXPECT_NE(deep.status().message().find("nested deeper"), std::string::npos);
  // Unclosed: the parse stops at the budget, before it could notice the end of the text.
  deep = ParseClientJson(std::string(kAttackDepth, '['));
  ASSERT_FALSE(deep.ok());
  EXPECT_NE(deep.status().message().find("nested deeper"), std::string::npos);

  const std::string big = "\"" + std::string(kClientJsonMaxBytes, 'x') + "\"";
  auto too_big = ParseClientJson(big);
  ASSERT_FALSE(too_big.ok());
  EXPECT_NE(too_big.status().message().find("larger than the 1048576-byte limit"),
            std::string::npos)
      << too_big.status().message();
  EXPECT_TRUE(ParseClientJson("[1,2]", ClientJsonLimits{.max_depth = 1, .max_bytes = 5}).ok());
  EXPECT_FALSE(ParseClientJson("[1, 2]", ClientJsonLimits{.max_depth = 1, .max_bytes = 5}).ok());

  auto garbage = ParseClientJson("{not json");
  ASSERT_FALSE(garbage.ok());
  EXPECT_NE(garbage.status().message().find("not valid JSON"), std::string::npos);
}

class HostileJsonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(dir_.Sub("tokens")) << "viewtok viewer watcher\nopstok operator alice\n";
    pub_ = zmq::socket_t(eventstore::SharedZmqContext(), zmq::socket_type::pub);
    pub_.set(zmq::sockopt::sndhwm, 0);
    pub_.bind("tcp://127.0.0.1:0");
    const std::string endpoint = pub_.get(zmq::sockopt::last_endpoint);
    gateway_ = std::make_unique<testing::DoppelProcess>(std::vector<std::string>{
        "gateway", "--twin-publish", endpoint, "--port", "0", "--tokens", dir_.Sub("tokens")});
    auto line = gateway_->ReadLine(10000);
    ASSERT_TRUE(line.has_value());
    port_ = json::parse(*line)["port"];
    publisher_ = std::thread([this] {
      while (!stop_) {
        pub_.send(zmq::buffer(std::string("twin/robot_h")), zmq::send_flags::sndmore);
        pub_.send(zmq::buffer(TwinStateBytes("robot_h", 2, WallNowNs())), zmq::send_flags::none);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    });
  }
  void TearDown() override {
    stop_ = true;
    if (publisher_.joinable()) publisher_.join();
  }

  testing::TempDir dir_;
  zmq::socket_t pub_;
  std::unique_ptr<testing::DoppelProcess> gateway_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread publisher_;
};

// Reads `c` until a data message of subscription `sub` arrives.
void WaitForData(WsClient& c, uint32_t sub) {
  for (;;) {
    json m = c.Next();
    if (m.value("op", json()) == 1 && m.value("sub", json()) == sub) return;
  }
}

// The next status of a Foxglove client: its message.
std::string FoxgloveStatus(WsClient& c) {
  json m = c.NextOp("status");
  EXPECT_EQ(m["level"], 2) << m.dump();
  return m["message"].get<std::string>();
}

// The next status of a rosbridge client, which must be an error: its msg.
std::string RosbridgeError(WsClient& c) {
  json m = c.NextOp("status");
  EXPECT_EQ(m["level"], "error") << m.dump();
  return m["msg"].get<std::string>();
}

constexpr auto kNpos = std::string::npos;

TEST_F(HostileJsonTest, DeeplyNestedJsonIsRefusedOnEveryParserAndTheGatewayKeepsServing) {
  // A live viewer, there before the attacks: it must keep getting data through them.
  WsClient live(port_, {.target = "/?token=viewtok"});
  const uint32_t joint_states = live.WaitForChannel("/robot_h/joint_states");
  live.SendText(
      json({{"op", "subscribe"}, {"subscriptions", {{{"id", 1}, {"channelId", joint_states}}}}})
          .dump());
  WaitForData(live, 1);
  const std::string deep = NestedArrays(kAttackDepth);

  // rosbridge, as a viewer: the issue's call_service, its args 100,000 arrays deep.
  WsClient ros_viewer(port_, {.target = "/rosbridge?token=viewtok", .subprotocol = ""});
  ros_viewer.SendText(
      R"({"op":"call_service","id":"deep","service":"/doppel/robot_state","args":)" + deep + "}");
  std::string refusal = RosbridgeError(ros_viewer);
  EXPECT_NE(refusal.find("Refused message: JSON nested deeper than 64 levels"), kNpos) << refusal;
  // The attacker's connection is served on: a normal call is answered.
  ros_viewer.SendText(R"({"op":"call_service","id":"list","service":"/doppel/list_robots"})");
  json listed = ros_viewer.NextOp("service_response");
  EXPECT_EQ(listed["id"], "list");
  EXPECT_EQ(listed["result"], true) << listed.dump();
  EXPECT_NE(listed["values"].dump().find("robot_h"), kNpos) << listed.dump();

  // rosbridge, as an operator: a publish whose msg carries the deep value.
  WsClient ros_operator(port_, {.target = "/rosbridge?token=opstok", .subprotocol = ""});
  ros_operator.SendText(
      R"({"op":"publish","id":"p1","topic":"/robot_h/cmd_vel","msg":{"linear":{"x":1},"pad":)" +
      deep + "}}");
  refusal = RosbridgeError(ros_operator);
  EXPECT_NE(refusal.find("nested deeper than 64"), kNpos) << refusal;
  // A normal publish is still taken (this gateway has no store, so its answer is that).
  ros_operator.SendText(
      R"({"op":"publish","id":"p2","topic":"/robot_h/cmd_vel","msg":{"linear":{"x":0.5}}})");
  json answered = ros_operator.NextOp("status");
  EXPECT_EQ(answered["id"], "p2") << answered.dump();
  EXPECT_NE(answered["msg"].get<std::string>().find("Command for robot_h"), kNpos)
      << answered.dump();

  // Foxglove, as an operator: a deep client op, and a deep client message on an advertised
  // cmd_vel channel.
  WsClient fox_operator(port_, {.target = "/?token=opstok"});
  fox_operator.NextOp("serverInfo");
  fox_operator.SendText(R"({"op":"subscribe","subscriptions":)" + deep + "}");
  refusal = FoxgloveStatus(fox_operator);
  EXPECT_NE(refusal.find("Refused message: JSON nested deeper than 64 levels"), kNpos) << refusal;
  fox_operator.SendText(
      json({{"op", "advertise"},
            {"channels", {{{"id", 5}, {"topic", "/robot_h/cmd_vel"}, {"encoding", "json"}}}}})
          .dump());
  std::string message("\x01\x05\x00\x00\x00", 5);
  fox_operator.SendBinary(message + R"({"linear":{"x":1},"pad":)" + deep + "}");
  refusal = FoxgloveStatus(fox_operator);
  EXPECT_NE(refusal.find("Refused cmd_vel message: JSON nested deeper than 64"), kNpos) << refusal;
  fox_operator.SendBinary(message + R"({"linear":{"x":0.5}})");
  refusal = FoxgloveStatus(fox_operator);
  EXPECT_NE(refusal.find("Command for robot_h failed"), kNpos) << refusal;

  // Everyone else is served on: health, and the live client's data.
  auto [status, body] = HttpGet(port_, "/healthz");
  EXPECT_EQ(status, 200);
  EXPECT_EQ(json::parse(body)["status"], "ok");
  WaitForData(live, 1);
  WsClient late(port_, {.target = "/?token=viewtok"});
  EXPECT_EQ(late.NextOp("serverInfo")["op"], "serverInfo");
}

}  // namespace
}  // namespace doppel
