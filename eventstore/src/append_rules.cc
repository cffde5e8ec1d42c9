#include "doppel/eventstore/append_rules.h"

#include <fmt/format.h>

#include <unordered_set>

#include "doppel/core/utf8.h"
#include "doppel/schemas/envelope.h"
#include "doppel/schemas/limits.h"
#include "doppel/schemas/payload_rules.h"
#include "doppel/schemas/payloads.h"

namespace doppel::eventstore {

Status CheckAppendRequest(const AppendRequest& request) {
  DOPPEL_RETURN_IF_ERROR(ValidateStreamName(request.stream));
  if (request.events.empty()) {
    return Status::InvalidArgument(fmt::format("append to {} has no events", request.stream));
  }
  std::unordered_set<EventId, EventIdHash> ids;
  for (size_t i = 0; i < request.events.size(); ++i) {
    const NewEvent& e = request.events[i];
    if (e.type.empty()) {
      return Status::InvalidArgument(fmt::format("event {} of the batch has no type", i));
    }
    if (e.type.size() > schemas::kMaxEventTypeBytes || !IsValidUtf8(e.type)) {
      return Status::InvalidArgument(
          fmt::format("event {} of the batch: its type must be UTF-8 of at most {} bytes", i,
                      schemas::kMaxEventTypeBytes));
    }
    Status payload = schemas::VerifyPayload(e.type, e.payload);
    if (payload.ok()) payload = schemas::CheckPayloadValues(e.type, e.payload);
    if (!payload.ok()) {
      return Status::InvalidArgument(
          fmt::format("event {} of the batch: {}", i, payload.message()));
    }
    if (!e.id.is_nil() && !ids.insert(e.id).second) {
      return Status::InvalidArgument(
          fmt::format("event id {} appears twice in one batch", e.id.ToString()));
    }
  }
  return Status::Ok();
}

Status CheckExpectedVersion(const std::string& stream, const ExpectedVersion& expected,
                            std::optional<StreamVersion> current) {
  switch (expected.kind) {
    case ExpectedVersion::Kind::kAny:
      return Status::Ok();
    case ExpectedVersion::Kind::kNoStream:
      if (current) {
        return Status::WrongExpectedVersion(
            fmt::format("{}: expected no stream, but it is at version {}", stream, *current));
      }
      return Status::Ok();
    case ExpectedVersion::Kind::kStreamExists:
      if (!current) {
        return Status::WrongExpectedVersion(
            fmt::format("{}: expected the stream to exist, but it has no events", stream));
      }
      return Status::Ok();
    case ExpectedVersion::Kind::kExact:
      if (!current || *current != expected.version) {
        return Status::WrongExpectedVersion(
            fmt::format("{}: expected version {}, but it is at {}", stream, expected.version,
                        current ? std::to_string(*current) : std::string("no stream")));
      }
      return Status::Ok();
  }
  return Status::InvalidArgument("unknown kind of expected version");
}

Result<std::optional<AppendResult>> MatchResentBatch(
    const AppendRequest& request, const std::vector<std::optional<StoredEvent>>& stored) {
  const std::vector<NewEvent>& events = request.events;
  size_t found = 0;
  AppendResult dup;
  dup.duplicate = true;
  for (size_t i = 0; i < events.size() && i < stored.size(); ++i) {
    if (!stored[i]) continue;
    const NewEvent& e = events[i];
    const StoredEvent& s = *stored[i];
    ++found;
    if (s.stream != request.stream || s.type != e.type || s.payload != e.payload) {
      return Status::IdempotencyConflict(fmt::format(
          "event id {} is already stored at position {} as a different event ({} in {})",
          e.id.ToString(), s.position, s.type, s.stream));
    }
    if (i == 0) {
      dup.first_version = s.version;
      dup.first_position = s.position;
    } else if (s.version != dup.first_version + i) {
      return Status::IdempotencyConflict(
          fmt::format("event id {} was stored by a different batch (version {} of {})",
                      e.id.ToString(), s.version, request.stream));
    }
    dup.last_version = s.version;
    dup.last_position = s.position;
  }
  if (found == 0) return std::optional<AppendResult>();
  if (found < events.size()) {
    return Status::IdempotencyConflict(fmt::format(
        "{} of the {} events in this batch to {} were appended before; a retry must resend "
        "exactly the original batch",
        found, events.size(), request.stream));
  }
  for (const NewEvent& e : events) dup.ids.push_back(e.id);
  return std::optional<AppendResult>(std::move(dup));
}

void BuildEnvelope(flatbuffers::FlatBufferBuilder& fbb, std::string_view stream,
                   StreamVersion version, GlobalPosition position, TimeNs recorded_ns,
                   const NewEvent& e) {
  fbb.Clear();
  const fb::Uuid id = schemas::ToFb(e.id);
  const fb::Uuid causation = schemas::ToFb(e.causation_id);
  const fb::Uuid correlation = schemas::ToFb(e.correlation_id);
  auto stream_off = fbb.CreateString(stream.data(), stream.size());
  auto type_off = fbb.CreateString(e.type);
  auto payload_off =
      fbb.CreateVector(reinterpret_cast<const uint8_t*>(e.payload.data()), e.payload.size());
  fb::EventEnvelopeBuilder b(fbb);
  b.add_id(&id);
  b.add_stream(stream_off);
  b.add_stream_version(version);
  b.add_global_position(position);
  b.add_event_type(type_off);
  b.add_recorded_ns(recorded_ns);
  b.add_occurred_ns(e.occurred_ns);
  b.add_causation_id(&causation);
  b.add_correlation_id(&correlation);
  b.add_payload_schema_version(e.payload_schema_version);
  b.add_payload(payload_off);
  fbb.Finish(b.Finish(), fb::EventEnvelopeIdentifier());
}

bool Retained(const StreamMetadata& meta, StreamVersion version, TimeNs recorded_ns, TimeNs now,
              std::optional<StreamVersion> head) {
  if (meta == StreamMetadata{}) return true;
  if (version < meta.truncate_before) return false;
  // Overflow-safe: a cutoff before the earliest representable time hides nothing by age, and
  // the count check subtracts instead of adding (version + max_count wraps for huge counts).
  TimeNs cutoff;
  if (meta.max_age_ns > 0 && !__builtin_sub_overflow(now, meta.max_age_ns, &cutoff) &&
      recorded_ns < cutoff) {
    return false;
  }
  if (meta.max_count > 0 && head && version <= *head && *head - version >= meta.max_count) {
    return false;
  }
  return true;
}

}  // namespace doppel::eventstore
