// FleetFeed: what the gateway publishes, computed on its own thread. It reads TwinState from
// a twin's PUB socket and events from the store (a Subscription from "now"), and hands the
// gateway batches of ready-to-send channel payloads: JSON (and TwinState's own FlatBuffer)
// per robot, /fleet/alerts, a periodic /fleet/summary, and the twin clock; and, while
// rosbridge clients are connected, the same states and predictions as ROS messages
// (ros_messages.h).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "doppel/core/clock.h"
#include "doppel/core/status.h"
#include "doppel/eventstore/event_feed.h"

namespace doppel::gateway {

struct FeedMessage {
  std::string topic;
  std::shared_ptr<const std::string> payload;
  TimeNs stamp = 0;
};

// A ROS message for rosbridge clients: `publish` is its whole `publish` op; `slot` the robot
// it is about (/tf and /diagnostics carry every robot's).
struct RosFeedMessage {
  std::string topic;
  std::string slot;
  std::shared_ptr<const std::string> publish;
};

struct FeedBatch {
  std::vector<std::string> new_robots;   // advertise these robots' channels first
  std::vector<std::string> gone_robots;  // unseen for forget_after_s
  std::vector<FeedMessage> messages;
  std::vector<RosFeedMessage> ros_messages;  // only while rosbridge clients are connected
  TimeNs clock = 0;                          // the twin clock, when a time frame is due; 0 = none
};

struct FeedOptions {
  std::string twin_publish;
  std::string store;
  std::string publish;
  eventstore::FeedOpener open_feed;  // set: the store's events come through it instead
  std::string frame = "map";
  double summary_hz = 2;
  double time_hz = 10;
  double forget_after_s = 0;
};

// The topics of a robot's channels.
std::vector<std::string> RobotTopics(const std::string& robot);

class FleetFeed {
 public:
  using Sink = std::function<void(FeedBatch)>;
  static Result<std::unique_ptr<FleetFeed>> Start(FeedOptions options, Sink sink);
  ~FleetFeed();

  // Whether rosbridge clients are connected: ROS messages are only made while some are
  // (any thread).
  void SetRosDemand(bool wanted);

 private:
  class Impl;
  explicit FleetFeed(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace doppel::gateway
