#include "doppel/replay/fleet_state.h"

#include "doppel/twins/state_report.h"

namespace doppel::replay {

const twins::RobotModel& RobotTwin::model_or_generic() const {
  static const twins::RobotModel generic = twins::RobotModel::Generic("generic", {});
  return model ? *model : generic;
}

Result<FleetState> FleetState::At(const eventstore::EventStore& store, const Window& window,
                                  TimeNs at) {
  FleetState fleet;
  std::string after;
  for (;;) {
    auto page = store.ListStreams("robot-", after, 1024);
    if (!page.ok()) return page.status();
    for (const std::string& stream : page->streams) {
      const std::string robot(RobotOfStream(stream));
      if (!window.AdmitsRobot(robot)) continue;
      auto folded = twins::RebuildAt(store, robot, at);
      if (folded.status().code() == Status::Code::kNotFound) continue;  // no events by then
      if (!folded.ok()) return folded.status();
      RobotTwin twin{std::move(folded->state), nullptr};
      if (folded->model) {
        twin.model = fleet.ModelNamed(twin.state.model);
      }
      fleet.robots_.emplace(robot, std::move(twin));
    }
    if (page->end || page->streams.empty()) break;
    after = page->streams.back();
  }
  return fleet;
}

std::shared_ptr<const twins::RobotModel> FleetState::ModelNamed(const std::string& name) {
  auto it = models_.find(name);
  if (it != models_.end()) return it->second;
  std::shared_ptr<const twins::RobotModel> model;
  if (auto built = twins::RobotModel::Builtin(name); built.ok()) {
    model = std::make_shared<const twins::RobotModel>(std::move(built).value());
  }
  models_.emplace(name, model);
  return model;
}

void FleetState::Apply(const eventstore::RecordedEvent& e) {
  const std::string_view robot = RobotOfStream(e.stream());
  if (robot.empty()) return;
  auto it = robots_.find(robot);
  if (it == robots_.end()) {
    RobotTwin twin;
    twin.state.robot_id = std::string(robot);
    it = robots_.emplace(std::string(robot), std::move(twin)).first;
  }
  RobotTwin& twin = it->second;
  const std::string model_before = twin.state.model;
  twins::Apply(twin.state, e, twin.model_or_generic(), upcasters_);
  if (twin.state.model != model_before || (!twin.model && e.type() == "RobotRegistered")) {
    twin.model = ModelNamed(twin.state.model);
  }
}

const RobotTwin* FleetState::Find(std::string_view robot) const {
  auto it = robots_.find(robot);
  return it == robots_.end() ? nullptr : &it->second;
}

}  // namespace doppel::replay
