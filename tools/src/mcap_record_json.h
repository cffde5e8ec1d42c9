// One MCAP record as JSON, for `doppel mcap-info --records`: what the reader decoded, field by
// field, so that tools and tests can compare it with what a file was written with.
#pragma once

#include <nlohmann/json.hpp>

#include "doppel/core/status.h"
#include "doppel/mcap/reader.h"

namespace doppel::tools {

// {"offset", "type" (the spec's record name), "in_chunk", "fields": {spec field name: value}}
// ("offset_in_chunk" too for records inside a chunk). Integers are JSON numbers, strings are
// strings, bytes are lowercase hex, maps are objects (integer keys in decimal). A Chunk's
// records field is left out (its records are listed after it); an unknown opcode has no fields.
// Corruption when the body does not decode.
Result<nlohmann::json> RecordJson(const mcap::RecordRef& ref);

}  // namespace doppel::tools
