// The gateway's channel messages of a robot: what a TwinState and an event become on
// /<robot>/twin, twin_fb, joint_states, pose, events, prediction and /fleet/alerts. One
// mapping for the live feed (fleet_feed.h) and replay sessions (replay_session.h), so a
// replayed channel carries exactly what the live one carried.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "doppel/eventstore/types.h"
#include "doppel/schemas/twin_state_generated.h"
#include "fleet_feed.h"

namespace doppel::gateway {

nlohmann::json Stamp(TimeNs ns);
std::shared_ptr<const std::string> Shared(const nlohmann::json& j);
// The /<robot>/twin JSON of a state; staleness as seen at `now`.
nlohmann::json TwinJson(const twin::TwinState& s, TimeNs now);
bool IsObservation(std::string_view type);

// A robot's state on twin_fb (`raw`: the verified TwinState bytes), joint_states, pose and
// twin, each stamped `stamp`. `twin` (optional) receives the twin JSON.
void AppendStateMessages(const std::string& robot, const twin::TwinState& s,
                         std::shared_ptr<const std::string> raw, TimeNs stamp, TimeNs now,
                         const std::string& frame, std::vector<FeedMessage>& out,
                         nlohmann::json* twin = nullptr);

// A robot's event (a robot stream's; observations show through the state instead) on
// /<robot>/events, alerts and faults also on /fleet/alerts, predictions on /<robot>/prediction;
// stamped with its recorded time.
void AppendEventMessages(const eventstore::RecordedEvent& e, const std::string& frame,
                         std::vector<FeedMessage>& out, std::vector<uint64_t>& scratch);

}  // namespace doppel::gateway
