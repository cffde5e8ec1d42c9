// Robot event payload types: the registry that maps an event type name to its FlatBuffers
// table, verifies payload bytes, converts them to and from JSON through the schema, and
// upcasts payloads written under an older payload schema version.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "doppel/core/status.h"

namespace doppel::schemas {

struct PayloadType {
  std::string_view name;     // event type, e.g. "JointStateObserved"
  std::string_view table;    // fully qualified table, e.g. "doppel.events.JointStateObserved"
  uint16_t current_version;  // payload schema version written today
  bool (*verify)(const uint8_t* data, size_t size);
};

// Every known payload type.
std::span<const PayloadType> AllPayloadTypes();
// The type named `event_type`, or nullptr when doppel does not know it.
const PayloadType* FindPayloadType(std::string_view event_type);

// OK if `payload` is a valid FlatBuffer of the known type `event_type`; Corruption if not.
// Unknown event types are opaque to doppel and pass (the store is not their judge).
Status VerifyPayload(std::string_view event_type, std::string_view payload);

// JSON -> payload bytes through the schema. Unknown type, unknown field or malformed
// JSON: InvalidArgument naming what is wrong. Thread-safe.
Result<std::string> PayloadFromJson(std::string_view event_type, std::string_view json);
// Payload bytes -> compact strict JSON, each number the shortest text that reads back to the
// stored value (payload_json_writer.h). Unknown types render as {"base64":"..."}.
// REQUIRES: VerifyPayload(event_type, payload).ok()
Result<std::string> PayloadToJson(std::string_view event_type, std::string_view payload);

// The text of schemas/robot_events.fbs, embedded at build time.
std::string_view RobotEventsSchemaText();

// Upcasting: turns a payload written under an older payload schema version into the
// current one, one version step at a time. Fields are only ever added (schemas/README.md),
// so most steps are not needed; a step is registered when a meaning changed.
class Upcasters {
 public:
  // fn takes a payload of version `from_version` and returns one of `from_version + 1`.
  using Step = std::function<Result<std::string>(std::string_view payload)>;
  void Register(std::string event_type, uint16_t from_version, Step fn);

  // Returns the payload at the type's current version. Versions with no registered step
  // pass through unchanged (additive evolution). Unknown types pass through.
  Result<std::string> Upcast(std::string_view event_type, uint16_t version,
                             std::string_view payload) const;
  // Whether Upcast would change a payload of this type and version (a registered step lies
  // between it and the current version); folds skip the copy when it would not.
  bool Changes(std::string_view event_type, uint16_t version) const;

 private:
  std::map<std::pair<std::string, uint16_t>, Step, std::less<>> steps_;
};

}  // namespace doppel::schemas
