// Fuzzes what a reader does with a stored or received event: RecordedEvent::FromBytes
// (envelope and payload verification), the accessors, and the JSON line the CLI prints
// (tools/src/event_json.cc, compiled in). An accepted event's line must be valid JSON.
#include <nlohmann/json.hpp>
#include <string>

#include "doppel/eventstore/event_json.h"
#include "doppel/eventstore/types.h"
#include "event_json.h"
#include "fuzz_inputs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace doppel;
  // FromBytes takes a std::string: its buffer is 8-aligned whatever libFuzzer's was.
  auto event =
      eventstore::RecordedEvent::FromBytes(std::string(reinterpret_cast<const char*>(data), size));
  if (!event.ok()) return 0;
  // The accessors read the verified FlatBuffer in place.
  (void)event->stream();
  (void)event->type();
  (void)event->id();
  (void)event->payload();

  const std::string line = eventstore::EventJson(*event);
  // Strict JSON whatever the payload holds: one that breaks the value rules (a NaN from a
  // damaged or older log) is shown as an error with its bytes, never as a bare nan.
  const auto parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  DOPPEL_FUZZ_CHECK(!parsed.is_discarded(), "event line is not JSON:\n%s", line.c_str());
  DOPPEL_FUZZ_CHECK(parsed.is_object() && parsed.contains("payload"),
                    "event line lacks a payload:\n%s", line.c_str());
  (void)tools::EventToTableRow(*event);
  return 0;
}
