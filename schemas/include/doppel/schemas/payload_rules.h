// What a well-formed payload may hold, beyond verifying as a FlatBuffer: the one validation
// every entry point applies (the event log refuses an append that breaks it, whatever sent
// it: store protocol, CLI, DDS ingest, gateway, import) and the twin applies again to events
// already stored by an older doppel.
//
// Rules (limits in limits.h):
// - every string is UTF-8 and within its length bound;
// - every double is finite; poses within kMaxCoordinate;
// - JointStateObserved: 1..kMaxJointsPerRobot names, each array empty or one value per name;
// - CommandIssued: a known kind, speeds within kMaxCommandLinear/Angular, joint targets
//   finite and within kMaxJointTarget, one target per joint name;
// - RobotRegistered and PredictionMade: bounded joint and sample counts; enums in range.
#pragma once

#include <string_view>

#include "doppel/core/status.h"

namespace doppel::schemas {

// OK if the payload of the known type `event_type` keeps the rules above; InvalidArgument
// naming the first field that does not. Unknown types pass (doppel does not judge them).
// REQUIRES: VerifyPayload(event_type, payload).ok()
Status CheckPayloadValues(std::string_view event_type, std::string_view payload);

}  // namespace doppel::schemas
