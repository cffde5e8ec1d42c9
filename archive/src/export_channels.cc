#include "export_channels.h"

#include "doppel/schemas/twin_state_bfbs.h"

namespace doppel::archive {
namespace {

// The JSON Schema of an exported event: the envelope's fields and the payload as
// `doppel read --json` shows it.
constexpr char kEventSchema[] = R"({
  "title": "doppel.Event",
  "description": "One event of the doppel event log: its envelope and its payload",
  "type": "object",
  "required": ["position", "stream", "version", "type", "id", "recorded_ns", "occurred_ns", "payload"],
  "properties": {
    "position": {"type": "integer", "minimum": 0, "description": "global position in the log"},
    "stream": {"type": "string"},
    "version": {"type": "integer", "minimum": 0, "description": "version in its stream"},
    "type": {"type": "string"},
    "id": {"type": "string", "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"},
    "recorded_ns": {"type": "integer", "description": "when the store committed it, ns since the epoch"},
    "occurred_ns": {"type": "integer", "description": "when it happened at its source, ns since the epoch"},
    "payload": {"type": "object"}
  }
})";

}  // namespace

uint16_t ExportChannels::Schema(const std::string& name, std::string encoding, std::string data) {
  auto it = schemas_.find(name);
  if (it != schemas_.end()) return it->second;
  const uint16_t id = writer_.AddSchema(name, std::move(encoding), std::move(data));
  schemas_.emplace(name, id);
  return id;
}

uint16_t ExportChannels::Channel(const std::string& topic, uint16_t schema, std::string encoding,
                                 std::map<std::string, std::string> metadata) {
  auto it = channels_.find(topic);
  if (it != channels_.end()) return it->second;
  const uint16_t id = writer_.AddChannel(schema, topic, std::move(encoding), std::move(metadata));
  channels_.emplace(topic, id);
  if (counts_.size() <= id) counts_.resize(id + 1);
  counts_[id].first = topic;
  return id;
}

Result<uint16_t> ExportChannels::Ros(const std::string& topic, std::string_view type,
                                     const ros2::QosProfile& qos) {
  if (auto it = channels_.find(topic); it != channels_.end()) return it->second;
  const std::string name(type);
  uint16_t schema = 0;
  if (auto it = schemas_.find(name); it != schemas_.end()) {
    schema = it->second;
  } else {
    auto text = ros2::Ros2MsgDefinition(type);
    if (!text.ok()) return text.status();
    schema = Schema(name, "ros2msg", std::move(text).value());
  }
  return Channel(topic, schema, "cdr",
                 {{"offered_qos_profiles", ros2::OfferedQosProfilesYaml(qos)}});
}

uint16_t ExportChannels::Events() {
  if (events_ == 0) {
    events_ =
        Channel("/doppel/events", Schema("doppel.Event", "jsonschema", kEventSchema), "json", {});
  }
  return events_;
}

uint16_t ExportChannels::TwinState(const std::string& topic) {
  if (auto it = channels_.find(topic); it != channels_.end()) return it->second;
  const std::string_view bfbs = schemas::TwinStateBfbs();
  return Channel(topic, Schema("doppel.twin.TwinState", "flatbuffer", std::string(bfbs)),
                 "flatbuffer", {});
}

uint32_t ExportChannels::NextSequence(uint16_t channel) {
  if (counts_.size() <= channel) counts_.resize(channel + 1);
  return static_cast<uint32_t>(++counts_[channel].second);
}

std::map<std::string, uint64_t> ExportChannels::MessagesPerTopic() const {
  std::map<std::string, uint64_t> out;
  for (const auto& [topic, count] : counts_) {
    if (!topic.empty()) out[topic] = count;
  }
  return out;
}

}  // namespace doppel::archive
