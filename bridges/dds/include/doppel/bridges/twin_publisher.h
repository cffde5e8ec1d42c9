// TwinPublisher: a twin's view of robots as the ROS 2 topics doppel's egress publishes, with
// frames prefixed by the robot id:
//   rt/<prefix>twin/<robot>/joint_states   sensor_msgs/JointState
//   rt/<prefix>twin/<robot>/odom           nav_msgs/Odometry (frame `frame`, child
//   <robot>/base_link) rt/<prefix>twin/<robot>/predicted_path nav_msgs/Path rt/<prefix>tf
//   tf2_msgs/TFMessage: every link as <robot>/<link> rt/<prefix>diagnostics
//   diagnostic_msgs/DiagnosticArray: health and alerts
// The live egress publishes through one (prefix ""), `doppel replay --to-dds` through another
// (prefix "<namespace>/"), so a replayed robot looks exactly like a live one.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "doppel/bridges/dds.h"
#include "doppel/schemas/robot_events_generated.h"
#include "doppel/schemas/twin_state_generated.h"

namespace doppel::dds {

class TwinPublisher {
 public:
  // REQUIRES: `participant` outlives the publisher.
  static Result<std::unique_ptr<TwinPublisher>> Create(const Participant& participant,
                                                       std::string prefix, std::string frame);

  // REQUIRES: `s` verified. False when the robot's writers cannot be made.
  bool PublishState(const std::string& robot, const twin::TwinState& s);
  bool PublishPath(const std::string& robot, const events::PredictionMade& p);
  size_t robots() const { return robots_.size(); }

 private:
  struct RobotWriters {
    std::unique_ptr<Writer> joints, odom, path;
  };
  TwinPublisher(const Participant& participant, std::string prefix, std::string frame, Writer tf,
                Writer diagnostics);
  RobotWriters* WritersFor(const std::string& robot);

  const Participant& participant_;
  std::string prefix_;
  std::string frame_;
  Writer tf_, diagnostics_;
  std::map<std::string, RobotWriters> robots_;
};

}  // namespace doppel::dds
