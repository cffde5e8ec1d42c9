#include "doppel/schemas/payloads.h"

#include <flatbuffers/idl.h>
#include <fmt/format.h>

#include <array>
#include <memory>

#include "doppel/core/aligned_bytes.h"
#include "doppel/core/base64.h"
#include "doppel/schemas/robot_events_generated.h"
#include "payload_json_writer.h"

namespace doppel::schemas {
namespace {

// FlatBuffers 2.0.8's Verifier checks a vector's length prefix for 4-byte alignment, not its
// elements: a [double] vector can verify at an offset of 4 mod 8, and reading it is then a
// misaligned load (UB) even from an 8-aligned copy. A builder never writes that; refuse it.
// (An empty vector has nothing to read, and builders leave it 4-aligned.)
bool Aligned(const uint8_t* base, const flatbuffers::Vector<double>* v) {
  return v == nullptr || v->size() == 0 ||
         (reinterpret_cast<const uint8_t*>(v->data()) - base) % alignof(double) == 0;
}

template <typename Table>
bool DoublesAligned(const Table&, const uint8_t*) {
  return true;
}
template <>
bool DoublesAligned(const events::JointStateObserved& t, const uint8_t* base) {
  return Aligned(base, t.position()) && Aligned(base, t.velocity()) && Aligned(base, t.effort());
}
template <>
bool DoublesAligned(const events::CommandIssued& t, const uint8_t* base) {
  return Aligned(base, t.joint_targets());
}
template <>
bool DoublesAligned(const events::PredictionMade& t, const uint8_t* base) {
  if (t.trajectory() == nullptr) return true;
  for (const auto* sample : *t.trajectory()) {
    if (!Aligned(base, sample->joint_positions())) return false;
  }
  return true;
}

template <typename Table>
bool VerifyTable(const uint8_t* data, size_t size) {
  if (size < sizeof(flatbuffers::uoffset_t)) return false;
  flatbuffers::Verifier verifier(data, size);
  return verifier.VerifyBuffer<Table>(nullptr) &&
         DoublesAligned(*flatbuffers::GetRoot<Table>(data), data);
}

#define DOPPEL_PAYLOAD(Name, Version) \
  PayloadType { #Name, "doppel.events." #Name, Version, &VerifyTable < events::Name> }

const std::array kPayloadTypes = {
    DOPPEL_PAYLOAD(RobotRegistered, 1), DOPPEL_PAYLOAD(JointStateObserved, 1),
    DOPPEL_PAYLOAD(PoseObserved, 1),    DOPPEL_PAYLOAD(CommandIssued, 1),
    DOPPEL_PAYLOAD(ModeChanged, 1),     DOPPEL_PAYLOAD(FaultRaised, 1),
    DOPPEL_PAYLOAD(FaultCleared, 1),    DOPPEL_PAYLOAD(PredictionMade, 1),
    DOPPEL_PAYLOAD(RobotWentSilent, 1), DOPPEL_PAYLOAD(RobotResumed, 1),
    DOPPEL_PAYLOAD(PredictionAlert, 1), DOPPEL_PAYLOAD(Blob, 1),
};

#undef DOPPEL_PAYLOAD

// A flatbuffers::Parser loaded with robot_events.fbs. Parsers are not thread-safe and
// keep state after an error, so each thread has one and replaces it after a failure.
class SchemaParser {
 public:
  flatbuffers::Parser& Get() {
    if (parser_ == nullptr) {
      flatbuffers::IDLOptions opts;
      opts.strict_json = true;
      opts.indent_step = -1;  // one line
      parser_ = std::make_unique<flatbuffers::Parser>(opts);
      const std::string text(RobotEventsSchemaText());
      if (!parser_->Parse(text.c_str())) {
        // The schema is compiled by flatc at build time, so this cannot fail at run time
        // unless the binary is broken; keep the error visible anyway.
        std::fprintf(stderr, "doppel: embedded schema does not parse: %s\n",
                     parser_->error_.c_str());
        std::abort();
      }
    }
    return *parser_;
  }
  void Reset() { parser_.reset(); }

 private:
  std::unique_ptr<flatbuffers::Parser> parser_;
};

SchemaParser& ThreadParser() {
  thread_local SchemaParser parser;
  return parser;
}

}  // namespace

std::span<const PayloadType> AllPayloadTypes() { return kPayloadTypes; }

const PayloadType* FindPayloadType(std::string_view event_type) {
  for (const PayloadType& t : kPayloadTypes) {
    if (t.name == event_type) return &t;
  }
  return nullptr;
}

Status VerifyPayload(std::string_view event_type, std::string_view payload) {
  const PayloadType* type = FindPayloadType(event_type);
  if (type == nullptr) return Status::Ok();
  if (!type->verify(reinterpret_cast<const uint8_t*>(payload.data()), payload.size())) {
    return Status::Corruption(
        fmt::format("{} payload of {} bytes does not verify", event_type, payload.size()));
  }
  return Status::Ok();
}

Result<std::string> PayloadFromJson(std::string_view event_type, std::string_view json) {
  const PayloadType* type = FindPayloadType(event_type);
  if (type == nullptr) {
    std::string known;
    for (const PayloadType& t : kPayloadTypes) {
      known += known.empty() ? "" : ", ";
      known += t.name;
    }
    return Status::InvalidArgument(
        fmt::format("unknown event type '{}' (known: {})", event_type, known));
  }
  SchemaParser& holder = ThreadParser();
  flatbuffers::Parser& parser = holder.Get();
  const std::string table(type->table);
  if (!parser.SetRootType(table.c_str())) {
    holder.Reset();
    return Status::InvalidArgument(fmt::format("schema has no table {}", table));
  }
  const std::string text(json);
  if (!parser.Parse(text.c_str())) {
    std::string error = parser.error_;
    holder.Reset();
    return Status::InvalidArgument(fmt::format("{} payload JSON: {}", event_type, error));
  }
  std::string out(reinterpret_cast<const char*>(parser.builder_.GetBufferPointer()),
                  parser.builder_.GetSize());
  parser.builder_.Clear();
  return out;
}

Result<std::string> PayloadToJson(std::string_view event_type, std::string_view payload) {
  const PayloadType* type = FindPayloadType(event_type);
  if (type == nullptr) {
    return fmt::format("{{\"base64\":\"{}\"}}", Base64Encode(payload));
  }

  const flatbuffers::StructDef* def = ThreadParser().Get().LookupStruct(std::string(type->table));
  std::vector<uint64_t> scratch;
  const auto* root = flatbuffers::GetRoot<flatbuffers::Table>(AlignedBytes(payload, scratch));
  std::string text;
  switch (def == nullptr ? PayloadJsonError::kNotShowable : WritePayloadJson(*def, *root, text)) {
    case PayloadJsonError::kNone:
      return text;
    case PayloadJsonError::kNonFinite:
      // Such a payload (stored by an older doppel, or damaged; the log refuses them today) is
      // not rendered: JSON has no NaN or infinities.
      return Status::InvalidArgument(
          fmt::format("{} payload holds values JSON cannot carry (NaN or infinities)", event_type));
    case PayloadJsonError::kNotShowable:
      break;
  }
  return Status::InvalidArgument(fmt::format("{} payload cannot be shown as JSON", event_type));
}

void Upcasters::Register(std::string event_type, uint16_t from_version, Step fn) {
  steps_[{std::move(event_type), from_version}] = std::move(fn);
}

bool Upcasters::Changes(std::string_view event_type, uint16_t version) const {
  if (steps_.empty()) return false;
  const PayloadType* type = FindPayloadType(event_type);
  if (type == nullptr || version >= type->current_version) return false;
  for (uint16_t v = version; v < type->current_version; ++v) {
    if (steps_.find(std::pair<std::string, uint16_t>(std::string(event_type), v)) != steps_.end())
      return true;
  }
  return false;
}

Result<std::string> Upcasters::Upcast(std::string_view event_type, uint16_t version,
                                      std::string_view payload) const {
  const PayloadType* type = FindPayloadType(event_type);
  std::string current(payload);
  if (type == nullptr) return current;
  if (version > type->current_version) {
    // Written by a newer doppel: additive evolution means we can read what we know.
    return current;
  }
  for (uint16_t v = version; v < type->current_version; ++v) {
    auto it = steps_.find(std::pair<std::string, uint16_t>(std::string(event_type), v));
    if (it == steps_.end()) continue;
    Result<std::string> next = it->second(current);
    if (!next.ok()) return next.status();
    current = std::move(next).value();
  }
  return current;
}

}  // namespace doppel::schemas
