#include "doppel/twins/state_report.h"

#include <fmt/format.h>

namespace doppel::twins {

nlohmann::json StateJson(const RobotState& s) {
  nlohmann::json j;
  j["robot_id"] = s.robot_id;
  j["version"] = s.stream_version;
  j["position"] = s.last_position;
  j["registered"] = s.registered;
  j["model"] = s.model;
  j["mode"] = events::EnumNameRobotMode(s.mode);
  j["silent"] = s.silent;
  j["last_observation"] = s.last_observation_ns ? FormatTime(s.last_observation_ns) : "";
  j["last_event"] = s.last_event_ns ? FormatTime(s.last_event_ns) : "";
  for (size_t i = 0; i < s.joint_names.size(); ++i) {
    j["joints"][s.joint_names[i]] = {{"position", s.joint_position[i]},
                                     {"velocity", s.joint_velocity[i]},
                                     {"effort", s.joint_effort[i]}};
  }
  j["base"] = {{"position", {s.base_position.x(), s.base_position.y(), s.base_position.z()}},
               {"orientation_xyzw",
                {s.base_orientation.x(), s.base_orientation.y(), s.base_orientation.z(),
                 s.base_orientation.w()}},
               {"linear", {s.base_linear.x(), s.base_linear.y(), s.base_linear.z()}},
               {"angular", {s.base_angular.x(), s.base_angular.y(), s.base_angular.z()}}};
  j["faults"] = nlohmann::json::object();
  for (const auto& [code, fault] : s.faults) {
    j["faults"][code] = {{"severity", events::EnumNameSeverity(fault.severity)},
                         {"message", fault.message},
                         {"raised", FormatTime(fault.raised_ns)}};
  }
  if (s.last_command.present) {
    const auto& c = s.last_command;
    j["last_command"] = {{"kind", events::EnumNameCommandKind(c.kind)},
                         {"linear", {c.linear.x(), c.linear.y(), c.linear.z()}},
                         {"angular", {c.angular.x(), c.angular.y(), c.angular.z()}},
                         {"joint_names", c.joint_names},
                         {"joint_targets", c.joint_targets},
                         {"issued_by", c.issued_by}};
  }
  if (s.prediction.present) {
    const auto& p = s.prediction;
    j["prediction"] = {
        {"start", FormatTime(p.start_ns)},        {"horizon_s", p.horizon_ns / 1e9},
        {"based_on_version", p.based_on_version}, {"collision", p.collision},
        {"limit_violations", p.limit_violations}, {"event_id", p.prediction_id.ToString()}};
    if (p.collision) {
      j["prediction"]["collision_in_s"] = p.collision_t_offset_ns / 1e9;
      j["prediction"]["collision_link"] = p.collision_link;
      j["prediction"]["collision_obstacle"] = p.collision_obstacle;
    }
  }
  const char* horizons[] = {"0.5s", "1s", "2s"};
  for (int h = 0; h < 3; ++h) {
    j["accuracy"][horizons[h]] = {{"base_scored", s.accuracy.base_scored[h]},
                                  {"mean_base_error_m", s.accuracy.mean_base_error_m[h]},
                                  {"max_base_error_m", s.accuracy.max_base_error_m[h]},
                                  {"tool_scored", s.accuracy.tool_scored[h]},
                                  {"mean_tool_error_m", s.accuracy.mean_tool_error_m[h]}};
  }
  j["alerts"] = s.alerts;
  j["counters"] = {{"applied", s.counters.applied},
                   {"skipped_unknown_type", s.counters.skipped_unknown_type},
                   {"skipped_bad_payload", s.counters.skipped_bad_payload},
                   {"upcast", s.counters.upcast}};
  return j;
}

Result<FoldedRobot> RebuildAt(const eventstore::EventStore& store, std::string_view robot,
                              TimeNs at) {
  // The model comes from the robot's own registration: its first event names it, so one
  // pass usually does; a robot that registered again with another model takes a second.
  schemas::Upcasters upcasters;
  std::string model_name;
  auto first_page = store.ReadStream(RobotStream(robot), 0, eventstore::Direction::kForward, 1);
  if (!first_page.ok() && first_page.status().code() != Status::Code::kNotFound) {
    return first_page.status();
  }
  if (first_page.ok() && !first_page->events.empty() &&
      first_page->events[0].type() == "RobotRegistered") {
    RobotState probe;
    Apply(probe, first_page->events[0], RobotModel::Generic("generic", {}), upcasters);
    model_name = probe.model;
  }
  for (int pass = 0; pass < 2; ++pass) {
    auto model = RobotModel::Builtin(model_name);
    auto state = Rebuild(store, robot, model.ok() ? *model : RobotModel::Generic("generic", {}),
                         upcasters, nullptr, INT64_MAX, at);
    if (!state.ok()) return state.status();
    if (state->stream_version < 0) {
      return Status::NotFound(fmt::format("robot {} has no events{}", robot,
                                          at == eventstore::kTimeMax ? "" : " by then"));
    }
    if (state->model == model_name || pass == 1) {
      FoldedRobot folded{std::move(state).value(), std::nullopt};
      if (auto final_model = RobotModel::Builtin(folded.state.model); final_model.ok()) {
        folded.model = std::move(final_model).value();
      }
      return folded;
    }
    model_name = state->model;  // registered again with another model: fold with that one
  }
  return Status::NotFound(std::string(robot));  // not reached
}

Result<nlohmann::json> StateReport(const eventstore::EventStore& store, std::string_view robot,
                                   TimeNs at) {
  auto folded = RebuildAt(store, robot, at);
  if (!folded.ok()) return folded.status();
  const RobotState& state = folded->state;
  nlohmann::json j = StateJson(state);
  const bool now = at == eventstore::kTimeMax;
  j["at"] = now ? "now" : FormatTime(at);
  const TimeNs reference = now ? WallNowNs() : at;
  j["staleness_s"] = state.last_observation_ns ? (reference - state.last_observation_ns) / 1e9 : -1;
  if (folded->model) {
    const auto poses = SiteLinkPoses(state, *folded->model);
    for (size_t i = 0; i < poses.size(); ++i) {
      const auto& t = poses[i].translation();
      j["link_positions"][folded->model->links()[i].name] = {t.x(), t.y(), t.z()};
    }
  }
  return j;
}

}  // namespace doppel::twins
