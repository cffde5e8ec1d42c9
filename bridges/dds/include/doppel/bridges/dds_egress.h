// DdsEgress: twin state out to ROS 2. Subscribes to a twin's TwinState PUB socket (and to
// the store for PredictionMade events) and publishes per robot, with frames prefixed by the
// robot id:
//   rt/twin/<robot>/joint_states   sensor_msgs/JointState
//   rt/twin/<robot>/odom           nav_msgs/Odometry (frame `frame`, child <robot>/base_link)
//   rt/twin/<robot>/predicted_path nav_msgs/Path (the latest prediction's base poses)
//   rt/tf                          tf2_msgs/TFMessage: every link as <robot>/<link> in `frame`
//   rt/diagnostics                 diagnostic_msgs/DiagnosticArray: health and alerts
// All writers are reliable and volatile (tf depth 100), as ROS expects.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "doppel/core/status.h"
#include "doppel/eventstore/event_feed.h"

namespace doppel::dds {

struct EgressOptions {
  uint32_t domain = 0;
  std::string twin_publish = "tcp://127.0.0.1:7602";  // the twin's TwinState PUB
  std::string store;    // store ROUTER, for predicted paths (empty: no paths)
  std::string publish;  // store PUB
  // A store other than a store server (PostgreSQL), handed in by the command line.
  eventstore::FeedOpener open_feed;
  std::string frame = "map";
  // How long a Stop's zero twist is repeated on rt/<robot>/cmd_vel (with a store).
  std::chrono::milliseconds stop_hold{500};
};

class DdsEgress {
 public:
  static Result<std::unique_ptr<DdsEgress>> Start(EgressOptions options);
  ~DdsEgress();

  struct Counters {
    uint64_t robots = 0;
    uint64_t states = 0;
    uint64_t paths = 0;
    uint64_t bad = 0;
    uint64_t commands_relayed = 0;  // Twists sent on rt/<robot>/cmd_vel for operators
  };
  Counters counters() const;

 private:
  class Impl;
  explicit DdsEgress(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace doppel::dds
