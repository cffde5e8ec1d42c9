// The gateway's channel catalogue: for each topic, its encoding, schema name and schema
// (JSON Schema for JSON channels, the base64 .bfbs for TwinState as a FlatBuffer).
#pragma once

#include <string>
#include <string_view>

namespace doppel::gateway {

struct ChannelSpec {
  std::string encoding;  // "json" or "flatbuffer"
  std::string schema_name;
  std::string schema;           // JSON Schema text, or base64 of a .bfbs
  std::string schema_encoding;  // "jsonschema" or "flatbuffer"
};

// The spec of a topic the gateway publishes (/<robot>/..., /fleet/...).
ChannelSpec SpecFor(std::string_view topic);

}  // namespace doppel::gateway
