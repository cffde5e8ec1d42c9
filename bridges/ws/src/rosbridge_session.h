// rosbridge v2 (ROSBRIDGE_PROTOCOL.md in RobotWebTools/rosbridge_suite), the JSON protocol of
// roslibjs clients, sans-I/O: one client's protocol state. It takes the client's text
// messages, the feed's ROS messages and the time, and returns actions: text to send, topics
// to start or stop feeding it, commands to issue, services to call. The socket, the timer and
// the send queue (with its latest-value-wins backpressure) are WsSession's.
//
// Ops served: subscribe (throttle_rate, queue_length, fragment_size; several subscriptions of
// one topic merge as the spec says: the lowest throttle and fragment size, the longest
// queue), unsubscribe, advertise/unadvertise/publish (operators, on /<robot>/cmd_vel and
// /<robot>/stop), call_service, set_level (accepted, ignored). Everything else, bad JSON and
// unknown topics are answered with a `status` error and the connection keeps being served.
//
// Throttling works per robot ("slot") within a topic: /tf and /diagnostics carry one
// message per robot, as if each robot published its own, so a throttled /tf subscriber still
// sees every robot at the throttled rate.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "doppel/bridges/gateway.h"
#include "doppel/core/status.h"

namespace doppel::gateway {

// Text to send, in order: one message, or the fragments of one.
struct RosbridgeSend {
  std::vector<std::shared_ptr<const std::string>> texts;
  // A topic message: for a slow client only the newest per `slot` is kept. Otherwise a
  // reply (status, service_response), never dropped.
  bool droppable = false;
  uint32_t slot = 0;
};

// Start (or stop) handing this session the feed's messages of `topic`. On start, the newest
// message of each of the topic's slots should be handed over at once (latched).
struct RosbridgeWatch {
  std::string topic;
  bool watch = true;
};

// Append a CommandIssued to robot-<robot>; answer with OnCommandDone(request_id, ...).
struct RosbridgeCommand {
  std::string robot;
  bool stop = false;
  nlohmann::json twist;
  std::string request_id;
};

// Call a doppel service (/doppel/list_robots, /doppel/robot_state); answer with
// OnServiceDone(id, service, ...).
struct RosbridgeServiceCall {
  std::string id;
  std::string service;
  nlohmann::json args;
};

using RosbridgeAction =
    std::variant<RosbridgeSend, RosbridgeWatch, RosbridgeCommand, RosbridgeServiceCall>;

// `{"op":"status","level":level,"msg":msg[,"id":id]}`; level is error, warning or info.
std::string RosbridgeStatusJson(std::string_view level, std::string_view msg,
                                std::string_view id = "");

class RosbridgeSession {
 public:
  // A subscription's queue_length is capped here: each queued message is held for the
  // client, and a client must not be able to make the gateway hold a fleet's history.
  static constexpr size_t kMaxQueueLength = 100;
  // Subscriptions one connection may hold, over all topics (a re-subscribe of a held id
  // replaces it and does not count twice); one past it is refused with an error status and
  // changes nothing. Each costs a map entry (its id, up to kMaxSubscriptionIdBytes) and O(log
  // n) per subscribe/unsubscribe, so this bounds the memory and work one client can make the
  // network thread spend. A real page needs one per widget and topic: a roslibjs fleet view of
  // the 1,000 robots `make bench` runs subscribes 3 topics each plus /tf and /diagnostics
  // (3,002); 10,000 leaves room for several widgets on one topic.
  static constexpr size_t kMaxSubscriptions = 10'000;
  // A subscription's id is held for as long as it lives, so its size is bounded too (roslibjs
  // sends "subscribe:<topic>:<n>", under 600 bytes for the longest robot name): at most
  // kMaxSubscriptions x 1 KiB of ids per connection.
  static constexpr size_t kMaxSubscriptionIdBytes = 1024;
  // The services served.
  static constexpr std::string_view kListRobots = "/doppel/list_robots";
  static constexpr std::string_view kRobotState = "/doppel/robot_state";

  // `knows_robot` says whether the gateway serves a robot (its topics exist).
  RosbridgeSession(Role role, std::function<bool(std::string_view robot)> knows_robot);

  // A text message from the client; `now_ns` is a monotonic clock.
  void OnText(std::string_view text, int64_t now_ns);
  // A message of a watched topic: `publish` is its whole `publish` op text, `slot` the robot
  // it is about.
  void OnMessage(std::string_view topic, std::string_view slot,
                 const std::shared_ptr<const std::string>& publish, int64_t now_ns);
  // Time passed: sends throttled messages that are due.
  void OnTick(int64_t now_ns);
  // The store's answer to a RosbridgeCommand: the position, or why not.
  void OnCommandDone(std::string_view request_id, std::string_view robot,
                     const Result<uint64_t>& position);
  // A service's answer: its values, or why it failed (result false).
  void OnServiceDone(std::string_view id, std::string_view service,
                     const Result<nlohmann::json>& values);

  // When OnTick should be called next (monotonic ns), if anything waits for time.
  std::optional<int64_t> next_deadline() const;
  // What to do, in order; the session forgets it.
  std::vector<RosbridgeAction> TakeActions();

  // The warning a client gets when its send queue falls behind.
  static std::string SlowClientWarning();

  // Subscriptions held, over all topics.
  size_t subscription_count() const { return subscription_count_; }
  // For tests: how many times one subscription's parameters were added to or taken out of its
  // topic's merge. Each step is O(log n); a subscribe or unsubscribe takes at most two, so the
  // work of merging is linear in the ops, never a walk over every subscription.
  uint64_t merge_steps() const { return merge_steps_; }

 private:
  struct Params {
    int64_t throttle_ns = 0;
    size_t queue_length = 0;
    size_t fragment_size = 0;  // 0: never fragment
  };
  struct Slot {
    int64_t last_sent_ns = 0;
    bool sent = false;
    std::deque<std::shared_ptr<const std::string>> queue;
    uint32_t key = 0;  // WsSession's latest-value slot
  };
  struct Topic {
    std::map<std::string, Params> subscriptions;  // by subscription id
    // Every subscription's values, so that the merge is the ends of these, kept as
    // subscriptions come and go instead of recomputed over all of them.
    std::multiset<int64_t> throttles_ns;
    std::multiset<size_t> queue_lengths;
    std::multiset<size_t> fragment_sizes;  // the nonzero ones (0 is "never fragment")
    Params merged;
    std::map<std::string, Slot, std::less<>> slots;  // by robot
  };

  // Adds one subscription's values to (or takes them out of) `topic`'s merge and updates
  // `merged`: O(log n).
  void AddToMerge(Topic& topic, const Params& p);
  void RemoveFromMerge(Topic& topic, const Params& p);
  void Subscribe(const nlohmann::json& j, const std::string& id);
  void Unsubscribe(const nlohmann::json& j, const std::string& id);
  void Advertise(const nlohmann::json& j, const std::string& id);
  void Publish(const nlohmann::json& j, const std::string& id);
  void CallService(const nlohmann::json& j, const std::string& id);
  // Checks that this client may publish on `topic`; on success sets robot and stop.
  bool CheckPublishTopic(const std::string& topic, const std::string& id, std::string& robot,
                         bool& stop);
  void SendStatus(std::string_view level, std::string_view msg, std::string_view id);
  void Reply(std::string text, size_t fragment_size = 0);
  void Deliver(Topic& topic, Slot& slot, std::shared_ptr<const std::string> publish,
               int64_t now_ns);
  // `text` as fragments of at most `fragment_size` bytes (never splitting a UTF-8 sequence).
  std::vector<std::shared_ptr<const std::string>> Fragments(
      const std::shared_ptr<const std::string>& text, size_t fragment_size);

  Role role_;
  std::function<bool(std::string_view)> knows_robot_;
  std::map<std::string, Topic, std::less<>> topics_;
  std::map<std::string, std::string> advertised_;  // topic -> advertise id
  std::vector<RosbridgeAction> actions_;
  uint32_t next_key_ = 1;
  uint64_t next_fragment_id_ = 1;
  uint64_t next_subscription_ = 1;  // ids for subscriptions that came without one
  size_t subscription_count_ = 0;
  uint64_t merge_steps_ = 0;
};

}  // namespace doppel::gateway
