#include "event_json.h"

#include <fmt/format.h>

#include "doppel/eventstore/event_json.h"

namespace doppel::tools {

std::string TableHeader() {
  return fmt::format("{:>10}  {:<20} {:>8}  {:<20} {:<30}  {}", "POSITION", "STREAM", "VERSION",
                     "TYPE", "RECORDED", "PAYLOAD");
}

std::string EventToTableRow(const eventstore::RecordedEvent& event) {
  std::string payload = eventstore::PayloadJson(event);
  if (payload.size() > 60) payload = payload.substr(0, 57) + "...";
  return fmt::format("{:>10}  {:<20} {:>8}  {:<20} {:<30}  {}", event.position(), event.stream(),
                     event.version(), event.type(), FormatTime(event.recorded_ns()), payload);
}

}  // namespace doppel::tools
