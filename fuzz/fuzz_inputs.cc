#include "fuzz_inputs.h"

#include <flatbuffers/flatbuffers.h>

#include <algorithm>

#include "doppel/schemas/envelope_generated.h"
#include "doppel/schemas/payloads.h"

namespace doppel::fuzz {

// Not a name in robot_events.fbs: stands for event types doppel stores without judging.
constexpr std::string_view kUnknownType = "ThirdPartyEvent";

std::string_view PayloadTypeName(uint8_t selector) {
  const auto types = schemas::AllPayloadTypes();
  const size_t i = selector % (types.size() + 1);
  return i == types.size() ? kUnknownType : types[i].name;
}

uint8_t PayloadTypeSelector(std::string_view type) {
  const auto types = schemas::AllPayloadTypes();
  for (size_t i = 0; i < types.size(); ++i) {
    if (types[i].name == type) return static_cast<uint8_t>(i);
  }
  DOPPEL_FUZZ_CHECK(type == kUnknownType, "not a payload type: %.*s", static_cast<int>(type.size()),
                    type.data());
  return static_cast<uint8_t>(types.size());
}

std::vector<FuzzEvent> SplitEvents(std::string_view bytes) {
  std::vector<FuzzEvent> events;
  while (!bytes.empty()) {
    FuzzEvent e;
    e.type = std::string(PayloadTypeName(static_cast<uint8_t>(bytes[0])));
    size_t n = 0;
    if (bytes.size() >= 3) {
      n = static_cast<uint8_t>(bytes[1]) | static_cast<size_t>(static_cast<uint8_t>(bytes[2])) << 8;
    }
    bytes.remove_prefix(std::min<size_t>(3, bytes.size()));
    n = std::min(n, bytes.size());
    e.payload = std::string(bytes.substr(0, n));
    bytes.remove_prefix(n);
    events.push_back(std::move(e));
  }
  return events;
}

std::string JoinEvents(const std::vector<FuzzEvent>& events) {
  std::string out;
  for (const FuzzEvent& e : events) {
    DOPPEL_FUZZ_CHECK(e.payload.size() < 65536, "payload of %zu bytes", e.payload.size());
    out.push_back(static_cast<char>(PayloadTypeSelector(e.type)));
    out.push_back(static_cast<char>(e.payload.size() & 0xff));
    out.push_back(static_cast<char>(e.payload.size() >> 8));
    out += e.payload;
  }
  return out;
}

std::vector<std::string> SplitFrames(std::string_view bytes) {
  std::vector<std::string> frames;
  while (!bytes.empty() && frames.size() < kMaxSessionFrames) {
    size_t n = 0;
    if (bytes.size() >= 2) {
      n = static_cast<uint8_t>(bytes[0]) | static_cast<size_t>(static_cast<uint8_t>(bytes[1])) << 8;
    }
    bytes.remove_prefix(std::min<size_t>(2, bytes.size()));
    n = std::min(n, bytes.size());
    frames.emplace_back(bytes.substr(0, n));
    bytes.remove_prefix(n);
  }
  return frames;
}

std::string JoinFrames(const std::vector<std::string>& frames) {
  std::string out;
  for (const std::string& f : frames) {
    DOPPEL_FUZZ_CHECK(f.size() < 65536, "frame of %zu bytes", f.size());
    out.push_back(static_cast<char>(f.size() & 0xff));
    out.push_back(static_cast<char>(f.size() >> 8));
    out += f;
  }
  return out;
}

std::string EnvelopeBytes(std::string_view stream, uint64_t version, uint64_t position,
                          std::string_view type, std::string_view payload, int64_t recorded_ns) {
  flatbuffers::FlatBufferBuilder fbb;
  const fb::Uuid id(0x0123456789abcdefULL, position + 1);
  auto stream_off = fbb.CreateString(stream.data(), stream.size());
  auto type_off = fbb.CreateString(type.data(), type.size());
  auto payload_off =
      fbb.CreateVector(reinterpret_cast<const uint8_t*>(payload.data()), payload.size());
  fb::EventEnvelopeBuilder b(fbb);
  b.add_id(&id);
  b.add_stream(stream_off);
  b.add_stream_version(version);
  b.add_global_position(position);
  b.add_event_type(type_off);
  b.add_recorded_ns(recorded_ns);
  b.add_occurred_ns(recorded_ns);
  b.add_payload(payload_off);
  fbb.Finish(b.Finish(), fb::EventEnvelopeIdentifier());
  return std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
}

}  // namespace doppel::fuzz
