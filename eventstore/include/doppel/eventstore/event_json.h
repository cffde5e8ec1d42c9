// The JSON of a stored event, one shape for every place an event leaves doppel as text: the
// CLI's jsonl (`doppel read`, `subscribe`) and the MCAP export's /doppel/events channel.
#pragma once

#include <string>

#include "doppel/eventstore/types.h"

namespace doppel::eventstore {

// {"position":..,"stream":..,"version":..,"type":..,"id":..,"recorded_ns":..,
//  "occurred_ns":..,"payload":{..}}: strict JSON whatever the payload holds.
std::string EventJson(const RecordedEvent& event);
// The payload alone: its JSON through the schema, {"base64":..} for unknown types, or
// {"error":..,"base64":..} when JSON cannot carry it (NaN, invalid UTF-8).
std::string PayloadJson(const RecordedEvent& event);

}  // namespace doppel::eventstore
