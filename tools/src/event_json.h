// The table shape of events printed by the CLI (jsonl: doppel/eventstore/event_json.h).
#pragma once

#include <string>

#include "doppel/eventstore/types.h"

namespace doppel::tools {

// One row of `--format table`.
std::string EventToTableRow(const eventstore::RecordedEvent& event);
std::string TableHeader();

}  // namespace doppel::tools
