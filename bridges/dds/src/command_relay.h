// CommandRelay: operators' commands, recorded in the store as CommandIssued, carried to the
// robot as ROS 2 does it: geometry_msgs/Twist on rt/<robot>/cmd_vel.
//
// - A Velocity command is one Twist. A Stop is a zero Twist, repeated every
//   kStopRepeatInterval for `stop_hold` so a robot whose driver missed one sample (best-effort
//   transport, a reader that joined late) still stops.
// - Commands that came from the robot side (issued_by "ros2": the ingest recorded a robot's or
//   planner's own cmd_vel) are not sent back. JointTargets have no standard ROS topic and are
//   not relayed.
// - Every writer carries USER_DATA kDoppelWriterUserData, so doppel's ingest can tell these
//   samples from the robot's and does not record the command a second time.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "doppel/bridges/dds.h"
#include "doppel/core/clock.h"
#include "doppel/eventstore/types.h"

namespace doppel::dds {

inline constexpr std::chrono::milliseconds kStopRepeatInterval{50};

class CommandRelay {
 public:
  // `participant` must outlive the relay.
  CommandRelay(const Participant& participant, std::chrono::milliseconds stop_hold);

  // A CommandIssued event committed in the store.
  void OnCommand(const eventstore::RecordedEvent& event, TimeNs now);
  // Repeats the zero Twist of stops still within their hold time. Call every few ms.
  void Tick(TimeNs now);

  uint64_t relayed() const { return relayed_; }

 private:
  struct Target {
    std::unique_ptr<Writer> cmd_vel;
    TimeNs stop_until = 0, last_stop_sent = 0;
  };
  Target* TargetFor(const std::string& robot);
  void SendTwist(Target& target, double v_x, double v_y, double v_z, double w_x, double w_y,
                 double w_z);

  const Participant& participant_;
  std::chrono::milliseconds stop_hold_;
  std::map<std::string, Target> targets_;  // by robot id
  std::vector<uint64_t> scratch_;          // payloads aligned before reading
  uint64_t relayed_ = 0;
};

}  // namespace doppel::dds
