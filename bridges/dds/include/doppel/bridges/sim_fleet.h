// SimFleet: a simulated fleet speaking ROS 2 over DDS, the live fleet of `make up` and of
// end-to-end tests. Robots alternate between the repo's two models:
// - arms (`<prefix>_arm_<i>`) cycle their six joints through smooth trajectories and
//   publish rt/<robot>/joint_states;
// - bases (`<prefix>_base_<i>`) drive circles of different radii, publishing rt/<robot>/odom,
//   their wheel joint_states, and the cmd_vel their "planner" gives them (so twins predict
//   from commands). Base 1 shuttles along +x between 0 and 3 m: with a wall in the scene its
//   twin predicts collisions. A cmd_vel from anyone else overrides a base for 3 s (obeyed).
// Now and then (seeded) a robot goes silent for a few seconds, or reports a motor fault on
// rt/<robot>/diagnostics (diagnostic_msgs/DiagnosticArray, ERROR for 5 s, then OK).
#pragma once

#include <memory>
#include <string>

#include "doppel/core/status.h"

namespace doppel::dds {

struct SimFleetOptions {
  int robots = 20;
  double rate_hz = 20;
  uint64_t seed = 1;
  uint32_t domain = 0;
  std::string prefix = "sim";
  double silence_chance_per_s = 0.01;  // per robot
  double fault_chance_per_s = 0.005;   // per robot: ERROR on rt/<robot>/diagnostics for 5 s
};

class SimFleet {
 public:
  static Result<std::unique_ptr<SimFleet>> Start(SimFleetOptions options);
  ~SimFleet();
  uint64_t samples_published() const;

 private:
  class Impl;
  explicit SimFleet(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace doppel::dds
