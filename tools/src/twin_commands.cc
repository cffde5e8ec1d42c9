// doppel twin | state: the twin process, and a robot's state at any moment (time travel).
#include <fmt/format.h>
#include <signal.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "command.h"
#include "doppel/core/json_text.h"
#include "doppel/core/log.h"
#include "doppel/twins/robot_aggregate.h"
#include "doppel/twins/twin_service.h"
#include "store_access.h"

namespace doppel::tools {
namespace {

struct TwinFlags {
  StoreOptions store;
  std::string publish;
  std::string twin_publish = "tcp://127.0.0.1:7602";
  std::string partition = "0/1";
  std::string scene;
  uint64_t snapshot_every = 1000;
  double publish_hz = 30;
  double predict_hz = 10;
  double silent_after = 2.0;
};

int RunTwin(const TwinFlags& f) {
  ShutdownSignal shutdown;  // before any thread starts, so they inherit the mask

  twins::TwinServiceOptions o;
  o.store = f.store.store;
  o.publish = f.publish;
  o.twin_publish = f.twin_publish;
  if (std::sscanf(f.partition.c_str(), "%d/%d", &o.partition, &o.partitions) != 2) {
    return Fail(Status::InvalidArgument("--partition wants I/N, e.g. 0/2"));
  }
  if (!f.scene.empty()) {
    auto scene = twins::Scene::FromFile(f.scene);
    if (!scene.ok()) return Fail(scene.status());
    o.scene = std::make_shared<twins::Scene>(std::move(scene).value());
  }
  auto curve = CurveClient(f.store);
  if (!curve.ok()) return Fail(curve.status());
  o.curve = *curve;
  o.snapshot_every_events = f.snapshot_every;
  o.publish_hz = f.publish_hz;
  o.predict_hz = f.predict_hz;
  o.silent_after_s = f.silent_after;
  auto service = twins::TwinService::Start(o);
  if (!service.ok()) return Fail(service.status());
  std::cout << fmt::format("{{\"twin_publish\":\"{}\",\"partition\":\"{}/{}\"}}",
                           (*service)->twin_publish_endpoint(), o.partition, o.partitions)
            << std::endl;
  const int signal = shutdown.Wait();
  const auto c = (*service)->counters();
  log::Info("twin", "signal {}: stopping after {} events for {} robots, {} predictions", signal,
            c.applied, c.robots, c.predictions);
  service->reset();
  return kExitOk;
}

nlohmann::json StateJson(const twins::RobotState& s) {
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

struct StateFlags {
  StoreOptions store;
  std::string robot;
  std::string at;
  std::string format = "json";
};

int RunState(const StateFlags& f) {
  if (f.format != "json") return Fail(Status::InvalidArgument("--format must be json"));
  TimeNs at = eventstore::kTimeMax;
  if (!f.at.empty()) {
    auto t = ParseTime(f.at);
    if (!t.ok()) return Fail(t.status());
    at = *t;
  }
  auto store = OpenStore(f.store, Access::kReadOnly);
  if (!store.ok()) return Fail(store.status());
  // The model comes from the robot's own registration (a first pass without kinematics).
  schemas::Upcasters upcasters;
  auto first = twins::Rebuild(**store, f.robot, twins::RobotModel::Generic("generic", {}),
                              upcasters, nullptr, INT64_MAX, at);
  if (!first.ok()) return Fail(first.status());
  if (first->stream_version < 0) {
    return Fail(Status::NotFound(
        fmt::format("robot {} has no events{}", f.robot, f.at.empty() ? "" : " by then")));
  }
  twins::RobotState state = std::move(first).value();
  if (auto model = twins::RobotModel::Builtin(state.model); model.ok()) {
    twins::RebuildStats stats;
    auto full = twins::Rebuild(**store, f.robot, *model, upcasters, &stats, INT64_MAX, at);
    if (!full.ok()) return Fail(full.status());
    state = std::move(full).value();
  }
  nlohmann::json j = StateJson(state);
  j["at"] = f.at.empty() ? "now" : FormatTime(at);
  const TimeNs reference = f.at.empty() ? WallNowNs() : at;
  j["staleness_s"] = state.last_observation_ns ? (reference - state.last_observation_ns) / 1e9 : -1;
  if (auto model = twins::RobotModel::Builtin(state.model); model.ok()) {
    const auto poses = twins::SiteLinkPoses(state, *model);
    for (size_t i = 0; i < poses.size(); ++i) {
      const auto& t = poses[i].translation();
      j["link_positions"][model->links()[i].name] = {t.x(), t.y(), t.z()};
    }
  }
  std::cout << SafeJsonDump(j, 2) << std::endl;
  return kExitOk;
}

}  // namespace

void AddTwinCommands(CLI::App& app) {
  auto t = std::make_shared<TwinFlags>();
  CLI::App* twin = app.add_subcommand(
      "twin", "Run a twin: fold robot events, predict with physics, publish TwinState");
  twin->add_option("--store", t->store.store, "Store server endpoint")->required();
  twin->add_option("--publish", t->publish, "Store PUB endpoint")->required();
  twin->add_option("--twin-publish", t->twin_publish, "PUB endpoint for TwinState")
      ->capture_default_str();
  twin->add_option("--partition", t->partition, "I/N: own robots whose id hashes to I of N")
      ->capture_default_str();
  twin->add_option("--scene", t->scene, "Scene file (JSON obstacles)");
  twin->add_option("--snapshot-every", t->snapshot_every, "Snapshot a robot every N events")
      ->capture_default_str();
  twin->add_option("--publish-hz", t->publish_hz, "Max TwinState rate per robot")
      ->capture_default_str();
  twin->add_option("--predict-hz", t->predict_hz, "Prediction rate while a robot moves")
      ->capture_default_str();
  twin->add_option("--silent-after", t->silent_after, "Seconds without observations = silent")
      ->capture_default_str();
  AddCurveClientOptions(*twin, t->store);
  twin->callback([t] { ExitCode() = RunTwin(*t); });

  auto s = std::make_shared<StateFlags>();
  CLI::App* state = app.add_subcommand(
      "state", "A robot's state now or at a past moment (nearest snapshot + events up to it)");
  AddStoreOptions(*state, s->store);
  state->add_option("--robot", s->robot, "Robot id (its stream is robot-<ID>)")->required();
  state->add_option("--at", s->at, "Moment: ISO 8601 or ns since epoch (default: now)");
  state->add_option("--format", s->format, "json")->capture_default_str();
  state->callback([s] { ExitCode() = RunState(*s); });
}

}  // namespace doppel::tools
