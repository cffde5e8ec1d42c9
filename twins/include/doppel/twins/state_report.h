// A robot's state as `doppel state` reports it, at any moment: the one JSON shape the CLI and
// the gateway's /doppel/robot_state service both answer with, so the two never disagree.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

#include "doppel/core/clock.h"
#include "doppel/core/status.h"
#include "doppel/eventstore/event_store.h"
#include "doppel/twins/robot_aggregate.h"

namespace doppel::twins {

// A robot folded as of a moment, with the kinematics of the model it registered with
// (`model` is empty when doppel does not ship that model: the state is then tracked without
// kinematics).
struct FoldedRobot {
  RobotState state;
  std::optional<RobotModel> model;
};
// Events recorded at or before `at` (kTimeMax: now), from the latest usable snapshot.
// NotFound when the robot has no events by then.
Result<FoldedRobot> RebuildAt(const eventstore::EventStore& store, std::string_view robot,
                              TimeNs at = eventstore::kTimeMax);

// The JSON of a folded state: joints, base, faults, last command, prediction summary,
// accuracy per horizon, counters.
nlohmann::json StateJson(const RobotState& state);

// Rebuilds `robot` from `store` as of `at` (events recorded at or before it; kTimeMax: now)
// with the kinematics of the model it registered with (a generic model if doppel does not
// ship it), and reports StateJson plus `at`, `staleness_s` and the links' site positions.
// NotFound when the robot has no events by then.
Result<nlohmann::json> StateReport(const eventstore::EventStore& store, std::string_view robot,
                                   TimeNs at = eventstore::kTimeMax);

}  // namespace doppel::twins
