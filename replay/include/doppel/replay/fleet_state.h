// FleetState: every robot of a window folded to one moment, then carried forward event by
// event. A seek, an export's opening state and `doppel incident` start from it, and it gives
// exactly what `doppel state --at T` gives for each robot (twins/state_report.h RebuildAt):
// the latest snapshot before T plus the events up to T, with the robot's own model.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "doppel/eventstore/event_store.h"
#include "doppel/replay/window.h"
#include "doppel/twins/robot_aggregate.h"

namespace doppel::replay {

struct RobotTwin {
  twins::RobotState state;
  // The robot's built-in model; null when doppel does not ship it (no kinematics).
  std::shared_ptr<const twins::RobotModel> model;
  // The model to fold and publish with: the built-in one, or a generic one without kinematics.
  const twins::RobotModel& model_or_generic() const;
};

class FleetState {
 public:
  // Every robot the window admits that has events recorded at or before `at`, folded to `at`.
  static Result<FleetState> At(const eventstore::EventStore& store, const Window& window,
                               TimeNs at);

  // Folds `e` into its robot (a robot stream's event, the next of that stream); a robot not
  // seen before starts from the empty state. A registration with another model switches it.
  void Apply(const eventstore::RecordedEvent& e);

  const std::map<std::string, RobotTwin, std::less<>>& robots() const { return robots_; }
  const RobotTwin* Find(std::string_view robot) const;

 private:
  std::shared_ptr<const twins::RobotModel> ModelNamed(const std::string& name);
  void ApplyTo(RobotTwin& twin, const eventstore::RecordedEvent& e);

  std::map<std::string, RobotTwin, std::less<>> robots_;
  std::map<std::string, std::shared_ptr<const twins::RobotModel>, std::less<>>
      models_;  // null: not built in
  schemas::Upcasters upcasters_;
};

}  // namespace doppel::replay
