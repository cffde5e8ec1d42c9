#include "doppel/eventstore/event_json.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "doppel/core/base64.h"
#include "doppel/core/json_text.h"
#include "doppel/schemas/payloads.h"

namespace doppel::eventstore {

std::string PayloadJson(const RecordedEvent& event) {
  auto json = schemas::PayloadToJson(event.type(), event.payload());
  if (!json.ok()) {
    // Still strict JSON, with the bytes for whoever needs to look closer.
    return SafeJsonDump(nlohmann::json(
        {{"error", json.status().message()}, {"base64", Base64Encode(event.payload())}}));
  }
  return json->empty() ? "{}" : *json;
}

std::string EventJson(const RecordedEvent& event) {
  return fmt::format(
      "{{\"position\":{},\"stream\":{},\"version\":{},\"type\":{},\"id\":\"{}\","
      "\"recorded_ns\":{},\"occurred_ns\":{},\"payload\":{}}}",
      event.position(), SafeJsonDump(nlohmann::json(std::string(event.stream()))), event.version(),
      SafeJsonDump(nlohmann::json(std::string(event.type()))), event.id().ToString(),
      event.recorded_ns(), event.occurred_ns(), PayloadJson(event));
}

}  // namespace doppel::eventstore
