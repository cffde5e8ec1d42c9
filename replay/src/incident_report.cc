#include "doppel/replay/incident_report.h"

#include <fmt/format.h>

#include <array>
#include <cmath>

#include "doppel/core/aligned_bytes.h"
#include "doppel/eventstore/event_json.h"
#include "doppel/replay/fleet_state.h"
#include "doppel/replay/prediction_checks.h"
#include "doppel/replay/window_reader.h"
#include "doppel/schemas/robot_events_generated.h"
#include "doppel/twins/state_report.h"

namespace doppel::replay {
namespace {

using nlohmann::json;

json Xyz(const Eigen::Vector3d& v) { return {v.x(), v.y(), v.z()}; }

// A run of observations: consecutive JointStateObserved / PoseObserved with nothing else in
// between, reported as one entry.
struct ObservationRun {
  TimeNs first = 0, last = 0;
  uint64_t joint_states = 0, poses = 0;
  Eigen::Vector3d base_from = Eigen::Vector3d::Zero();
};

}  // namespace

Result<json> IncidentReport(const eventstore::EventStore& store, const IncidentQuery& q) {
  Window w;
  w.from = q.at - q.window_ns / 2;
  w.to = q.at + q.window_ns / 2;
  w.robots = q.robot;
  auto before = FleetState::At(store, w, w.from - 1);
  if (!before.ok()) return before.status();
  FleetState fleet = std::move(before).value();
  json report = {{"robot", q.robot},
                 {"at", FormatTime(q.at)},
                 {"from", FormatTime(w.from)},
                 {"to", FormatTime(w.to)},
                 {"entries", json::array()}};
  if (const RobotTwin* twin = fleet.Find(q.robot)) {
    report["state_before"] = twins::StateJson(twin->state);
  } else {
    report["state_before"] = nullptr;
  }
  WindowReader reader(store, w);
  DOPPEL_RETURN_IF_ERROR(reader.Open());
  PredictionChecks checks;
  std::vector<uint64_t> scratch;
  std::array<double, 3> sum{}, max{};
  std::array<uint64_t, 3> scored{};
  uint64_t made = 0, events = 0;
  ObservationRun run;
  auto entry = [&](TimeNs t, std::string kind, json details) {
    details["t"] = FormatTime(t);
    details["offset_s"] = (t - q.at) / 1e9;
    details["kind"] = std::move(kind);
    report["entries"].push_back(std::move(details));
  };
  auto close_run = [&]() {
    if (run.joint_states + run.poses == 0) return;
    const RobotTwin* twin = fleet.Find(q.robot);
    json d = {{"joint_states", run.joint_states},
              {"poses", run.poses},
              {"until", FormatTime(run.last)},
              {"seconds", (run.last - run.first) / 1e9}};
    if (twin && run.poses > 0) {
      d["base_from"] = Xyz(run.base_from);
      d["base_to"] = Xyz(twin->state.base_position);
      d["moved_m"] = (twin->state.base_position - run.base_from).norm();
    }
    entry(run.first, "observations", std::move(d));
    run = ObservationRun{};
  };
  while (!reader.done()) {
    auto page = reader.Next();
    if (!page.ok()) return page.status();
    for (const auto& e : *page) {
      ++events;
      const std::string_view type = e.type();
      const bool observation = type == "JointStateObserved" || type == "PoseObserved";
      if (observation && run.joint_states + run.poses == 0) {
        run.first = e.recorded_ns();
        if (const RobotTwin* twin = fleet.Find(q.robot)) run.base_from = twin->state.base_position;
      }
      if (!observation) close_run();
      fleet.Apply(e);
      const RobotTwin* twin = fleet.Find(q.robot);
      if (observation) {
        ++(type == "JointStateObserved" ? run.joint_states : run.poses);
        run.last = e.recorded_ns();
      } else if (type == "PredictionMade") {
        const auto* m =
            flatbuffers::GetRoot<events::PredictionMade>(AlignedBytes(e.payload(), scratch));
        checks.Add(q.robot, *m);
        ++made;
        json d = {{"start", FormatTime(m->start_ns())},
                  {"horizon_s", m->horizon_ns() / 1e9},
                  {"collision", m->collision() != nullptr}};
        if (const auto* c = m->collision()) {
          d["collision_in_s"] = c->t_offset_ns() / 1e9;
          d["collision_link"] = c->link() ? c->link()->str() : "";
          d["collision_obstacle"] = c->obstacle() ? c->obstacle()->str() : "";
        }
        entry(e.recorded_ns(), "prediction", std::move(d));
      } else {
        json payload = json::parse(eventstore::PayloadJson(e), nullptr, false);
        std::string kind = "event";
        if (type == "CommandIssued") kind = "command";
        if (type == "FaultRaised" || type == "FaultCleared") kind = "fault";
        if (type == "RobotWentSilent" || type == "RobotResumed") kind = "silence";
        if (type == "PredictionAlert") kind = "alert";
        if (type == "ModeChanged") kind = "mode";
        if (type == "RobotRegistered") kind = "registered";
        entry(e.recorded_ns(), kind, {{"type", type}, {"payload", payload}});
      }
      if (twin) {
        for (const auto& c : checks.Due(q.robot, twin->state)) {
          const size_t h = c.horizon_s < 0.75 ? 0 : c.horizon_s < 1.5 ? 1 : 2;
          sum[h] += c.error_m;
          max[h] = std::max(max[h], c.error_m);
          ++scored[h];
          entry(c.due, "prediction_check",
                {{"prediction_start", FormatTime(c.prediction_start)},
                 {"horizon_s", c.horizon_s},
                 {"predicted", Xyz(c.predicted)},
                 {"actual", Xyz(c.actual)},
                 {"error_m", c.error_m}});
        }
      }
    }
  }
  close_run();
  if (events == 0 && report["state_before"].is_null()) {
    return Status::NotFound(fmt::format("robot {} has no events by {}", q.robot, FormatTime(w.to)));
  }
  const char* names[] = {"0.5s", "1s", "2s"};
  json predictions = {{"made", made}, {"events", events}};
  for (int h = 0; h < 3; ++h) {
    predictions["scored"][names[h]] = scored[h];
    predictions["mean_error_m"][names[h]] = scored[h] ? json(sum[h] / scored[h]) : json(nullptr);
    predictions["max_error_m"][names[h]] = scored[h] ? json(max[h]) : json(nullptr);
  }
  predictions["unscored"] = checks.Pending(q.robot).size();
  report["predictions"] = predictions;
  // Entries in time order (a check is reported at its due time, before the event that
  // revealed it when they tie).
  auto& entries = report["entries"];
  std::stable_sort(entries.begin(), entries.end(), [](const json& a, const json& b) {
    return a["offset_s"].get<double>() < b["offset_s"].get<double>();
  });
  return report;
}

Result<json> WindowIncidents(const eventstore::EventStore& store, const Window& window,
                             size_t limit) {
  Window w = window;
  w.types = {"PredictionAlert", "FaultRaised", "RobotWentSilent"};
  WindowReader reader(store, w);
  DOPPEL_RETURN_IF_ERROR(reader.Open());
  json out = {{"from_ns", w.from}, {"to_ns", w.to}, {"incidents", json::array()}};
  auto& list = out["incidents"];
  while (!reader.done()) {
    auto page = reader.Next();
    if (!page.ok()) return page.status();
    for (const auto& e : *page) {
      if (list.size() == limit) {
        out["truncated"] = true;
        return out;
      }
      const std::string_view type = e.type();
      const json payload = json::parse(eventstore::PayloadJson(e), nullptr, false);
      std::string summary;
      if (type == "PredictionAlert" && payload.is_object()) {
        summary = fmt::format("{} {} {} in {:.2f} s", payload.value("kind", "PredictedCollision"),
                              payload.value("link", ""), payload.value("obstacle", ""),
                              payload.value("t_offset_ns", int64_t{0}) / 1e9);
      } else if (type == "FaultRaised" && payload.is_object()) {
        summary = fmt::format("{}: {}", payload.value("code", ""), payload.value("message", ""));
      } else {
        summary = "no observations";
      }
      list.push_back({{"t_ns", e.recorded_ns()},
                      {"robot", std::string(RobotOfStream(e.stream()))},
                      {"kind", type == "PredictionAlert" ? "alert"
                               : type == "FaultRaised"   ? "fault"
                                                         : "silence"},
                      {"type", type},
                      {"position", e.position()},
                      {"summary", summary}});
    }
  }
  return out;
}

std::string IncidentText(const json& r) {
  std::string out = fmt::format("robot {} around {} ({} .. {})\n", r["robot"].get<std::string>(),
                                r["at"].get<std::string>(), r["from"].get<std::string>(),
                                r["to"].get<std::string>());
  if (r["state_before"].is_object()) {
    const auto& s = r["state_before"];
    const auto& p = s["base"]["position"];
    out += fmt::format("  before: mode {}, {} fault(s), base at ({:.2f}, {:.2f}), version {}\n",
                       s["mode"].get<std::string>(), s["faults"].size(), p[0].get<double>(),
                       p[1].get<double>(), s["version"].dump());
  }
  // Routine entries (observations, predictions without a collision, their checks) are
  // summarised per stretch between the entries an analyst looks for.
  struct Stretch {
    double from = 0;
    uint64_t joint_states = 0, poses = 0, predictions = 0, checks = 0;
    double moved = 0, error_sum = 0, error_max = 0;
  } st;
  auto flush = [&]() {
    if (st.joint_states + st.poses + st.predictions + st.checks == 0) return;
    std::string what = fmt::format("{} joint states, {} poses", st.joint_states, st.poses);
    if (st.moved > 0) what += fmt::format(", base moved {:.2f} m", st.moved);
    if (st.predictions) what += fmt::format("; {} predictions (no collision)", st.predictions);
    if (st.checks) {
      what += fmt::format("; {} checked: mean error {:.3f} m, max {:.3f} m", st.checks,
                          st.error_sum / st.checks, st.error_max);
    }
    out += fmt::format("  {:>+9.3f} s  {:<17} {}\n", st.from, "routine", what);
    st = Stretch{};
  };
  for (const auto& e : r["entries"]) {
    const std::string kind = e["kind"];
    const double offset = e["offset_s"].get<double>();
    const bool routine = kind == "observations" || kind == "prediction_check" ||
                         (kind == "prediction" && !e["collision"].get<bool>());
    if (routine) {
      if (st.joint_states + st.poses + st.predictions + st.checks == 0) st.from = offset;
      if (kind == "observations") {
        st.joint_states += e["joint_states"].get<uint64_t>();
        st.poses += e["poses"].get<uint64_t>();
        st.moved += e.value("moved_m", 0.0);
      } else if (kind == "prediction") {
        ++st.predictions;
      } else {
        ++st.checks;
        st.error_sum += e["error_m"].get<double>();
        st.error_max = std::max(st.error_max, e["error_m"].get<double>());
      }
      continue;
    }
    flush();
    std::string what;
    if (kind == "prediction") {
      what = fmt::format("prediction over {:.1f} s: COLLISION in {:.2f} s ({} with {})",
                         e["horizon_s"].get<double>(), e["collision_in_s"].get<double>(),
                         e["collision_link"].get<std::string>(),
                         e["collision_obstacle"].get<std::string>());
    } else {
      what = fmt::format("{} {}", e["type"].get<std::string>(), e["payload"].dump());
    }
    out += fmt::format("  {:>+9.3f} s  {:<17} {}\n", offset, kind, what);
  }
  flush();
  const auto& p = r["predictions"];
  out += fmt::format(
      "  predictions: {} made; mean error 0.5 s {}, 1 s {}, 2 s {} (m); {} unscored\n",
      p["made"].dump(), p["mean_error_m"]["0.5s"].dump(), p["mean_error_m"]["1s"].dump(),
      p["mean_error_m"]["2s"].dump(), p["unscored"].dump());
  return out;
}

}  // namespace doppel::replay
