#include "doppel/replay/prediction_checks.h"

namespace doppel::replay {

void PredictionChecks::Add(std::string_view robot, const events::PredictionMade& m) {
  if (!m.trajectory()) return;
  auto it = pending_.find(robot);
  if (it == pending_.end())
    it = pending_.emplace(std::string(robot), std::vector<PredictionCheck>{}).first;
  auto& pending = it->second;
  for (const int64_t horizon : twins::kScoredHorizonsNs) {
    // The last sample at or before the horizon, if it is within one step of it.
    const events::PredictedSample* best = nullptr;
    for (const auto* sample : *m.trajectory()) {
      if (sample->base_pose() && sample->t_offset_ns() <= horizon) best = sample;
    }
    if (best == nullptr || best->t_offset_ns() < horizon - std::max<int64_t>(m.step_ns(), 1))
      continue;
    const auto& p = best->base_pose()->position();
    PredictionCheck c;
    c.prediction_start = m.start_ns();
    c.due = m.start_ns() + horizon;
    c.horizon_s = horizon / 1e9;
    c.predicted = {p.x(), p.y(), p.z()};
    pending.push_back(c);
  }
  constexpr size_t kMaxPending = 64;
  if (pending.size() > kMaxPending) pending.erase(pending.begin(), pending.end() - kMaxPending);
}

std::vector<PredictionCheck> PredictionChecks::Due(std::string_view robot,
                                                   const twins::RobotState& s) {
  std::vector<PredictionCheck> due;
  auto it = pending_.find(robot);
  if (it == pending_.end()) return due;
  auto& pending = it->second;
  for (auto c = pending.begin(); c != pending.end();) {
    if (s.last_observation_ns < c->due) {
      ++c;
      continue;
    }
    c->actual = s.base_position;
    c->error_m = (c->actual - c->predicted).norm();
    due.push_back(*c);
    c = pending.erase(c);
  }
  return due;
}

std::vector<PredictionCheck> PredictionChecks::Pending(std::string_view robot) const {
  auto it = pending_.find(robot);
  return it == pending_.end() ? std::vector<PredictionCheck>{} : it->second;
}

}  // namespace doppel::replay
