#include "event_json.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "doppel/core/base64.h"
#include "doppel/core/json_text.h"
#include "doppel/schemas/payloads.h"

namespace doppel::tools {
namespace {

std::string PayloadJson(const eventstore::RecordedEvent& event) {
  auto json = schemas::PayloadToJson(event.type(), event.payload());
  if (!json.ok()) {
    // Still strict JSON, with the bytes for whoever needs to look closer.
    return SafeJsonDump(nlohmann::json(
        {{"error", json.status().message()}, {"base64", Base64Encode(event.payload())}}));
  }
  return json->empty() ? "{}" : *json;
}

}  // namespace

std::string EventToJsonLine(const eventstore::RecordedEvent& event) {
  return fmt::format(
      "{{\"position\":{},\"stream\":{},\"version\":{},\"type\":{},\"id\":\"{}\","
      "\"recorded_ns\":{},\"occurred_ns\":{},\"payload\":{}}}",
      event.position(), SafeJsonDump(nlohmann::json(std::string(event.stream()))), event.version(),
      SafeJsonDump(nlohmann::json(std::string(event.type()))), event.id().ToString(),
      event.recorded_ns(), event.occurred_ns(), PayloadJson(event));
}

std::string TableHeader() {
  return fmt::format("{:>10}  {:<20} {:>8}  {:<20} {:<30}  {}", "POSITION", "STREAM", "VERSION",
                     "TYPE", "RECORDED", "PAYLOAD");
}

std::string EventToTableRow(const eventstore::RecordedEvent& event) {
  std::string payload = PayloadJson(event);
  if (payload.size() > 60) payload = payload.substr(0, 57) + "...";
  return fmt::format("{:>10}  {:<20} {:>8}  {:<20} {:<30}  {}", event.position(), event.stream(),
                     event.version(), event.type(), FormatTime(event.recorded_ns()), payload);
}

}  // namespace doppel::tools
