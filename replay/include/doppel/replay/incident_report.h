// IncidentReport: what happened to one robot around a moment, in time order: its state
// before the window, observations summarised into runs, commands and who issued them, faults,
// silences, alerts, and each prediction made with how wrong it turned out to be. The data
// behind `doppel incident`.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "doppel/eventstore/event_store.h"
#include "doppel/replay/window.h"

namespace doppel::replay {

struct IncidentQuery {
  std::string robot;
  TimeNs at = 0;
  int64_t window_ns = 30'000'000'000;  // centred on `at`
};

// {"robot","at","from","to","state_before":{..},"entries":[{"t","offset_s","kind",...}],
//  "predictions":{"made","scored","mean_error_m":{"0.5s",..},"max_error_m":{..}}}.
// NotFound when the robot has no events by the window's end.
Result<nlohmann::json> IncidentReport(const eventstore::EventStore& store, const IncidentQuery& q);
// The markers of a window for a timeline: every alert (PredictionAlert), fault raised and
// robot gone silent, in time order, at most `limit` (then "truncated": true).
// {"from_ns","to_ns","incidents":[{"t_ns","robot","kind","type","position","summary"}]}
Result<nlohmann::json> WindowIncidents(const eventstore::EventStore& store, const Window& window,
                                       size_t limit = 10000);

// The same as lines of text, one per entry.
std::string IncidentText(const nlohmann::json& report);

}  // namespace doppel::replay
