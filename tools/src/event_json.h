// The JSON shapes of events printed by the CLI (one line per event in jsonl).
#pragma once

#include <string>

#include "doppel/eventstore/types.h"

namespace doppel::tools {

// {"position":..,"stream":..,"version":..,"type":..,"id":..,"recorded_ns":..,
//  "occurred_ns":..,"payload":{..}}
std::string EventToJsonLine(const eventstore::RecordedEvent& event);
// One row of `--format table`.
std::string EventToTableRow(const eventstore::RecordedEvent& event);
std::string TableHeader();

}  // namespace doppel::tools
