// What the twin believed against what happened: each PredictionMade's base position at the
// scored horizons (0.5, 1, 2 s, as the aggregate scores accuracy) set against the robot's
// folded base position once its observations pass that moment. Replay's
// /<robot>/prediction_vs_actual channel and `doppel incident` both report these.
#pragma once

#include <Eigen/Core>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "doppel/schemas/robot_events_generated.h"
#include "doppel/twins/robot_aggregate.h"

namespace doppel::replay {

struct PredictionCheck {
  TimeNs prediction_start = 0;
  TimeNs due = 0;  // prediction_start + horizon
  double horizon_s = 0;
  Eigen::Vector3d predicted = Eigen::Vector3d::Zero();
  Eigen::Vector3d actual = Eigen::Vector3d::Zero();
  double error_m = 0;
};

class PredictionChecks {
 public:
  // The prediction's horizons to score for `robot` (at most 64 pending per robot: the oldest go).
  void Add(std::string_view robot, const events::PredictionMade& m);
  // The checks of `robot` that its folded state `s` has reached (its newest observation is at
  // or past their due time), scored against its base position; they are no longer pending.
  std::vector<PredictionCheck> Due(std::string_view robot, const twins::RobotState& s);
  // Checks still waiting for observations (a prediction near the end of a window).
  std::vector<PredictionCheck> Pending(std::string_view robot) const;
  void Clear() { pending_.clear(); }

 private:
  std::map<std::string, std::vector<PredictionCheck>, std::less<>> pending_;
};

}  // namespace doppel::replay
