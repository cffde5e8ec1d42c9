#include "doppel/eventstore/copy_rules.h"

#include <fmt/format.h>

#include <unordered_set>

#include "doppel/core/utf8.h"

namespace doppel::eventstore {

Status CheckCopiedBatch(const CopiedBatch& batch) {
  if (batch.copier.empty() || batch.copier.size() > 128 || !IsValidUtf8(batch.copier) ||
      batch.copier.find('\0') != std::string::npos) {
    return Status::InvalidArgument("a copy's name must be 1..128 bytes of UTF-8 without NUL");
  }
  if (batch.source_next < batch.source_from) {
    return Status::InvalidArgument(fmt::format("copy {}: the batch ends ({}) before it starts ({})",
                                               batch.copier, batch.source_next, batch.source_from));
  }
  std::unordered_set<EventId, EventIdHash> ids;
  GlobalPosition next = batch.source_from;
  for (const RecordedEvent& e : batch.events) {
    if (e.position() < next || e.position() >= batch.source_next) {
      return Status::InvalidArgument(
          fmt::format("copy {}: source position {} is out of order or outside the batch [{}, {})",
                      batch.copier, e.position(), batch.source_from, batch.source_next));
    }
    next = e.position() + 1;
    if (!ids.insert(e.id()).second) {
      return Status::InvalidArgument(fmt::format("copy {}: event id {} appears twice in a batch",
                                                 batch.copier, e.id().ToString()));
    }
  }
  return Status::Ok();
}

Status CheckCopyCheckpoint(const CopiedBatch& batch, const CopyCheckpoint& current) {
  if (current.source_next != batch.source_from) {
    return Status::WrongExpectedVersion(fmt::format(
        "copy {}: the destination's checkpoint is at source position {}, not {}: another copier "
        "of this name is running, or this one read a stale checkpoint",
        batch.copier, current.source_next, batch.source_from));
  }
  return Status::Ok();
}

bool MaybeResentCopy(const CopiedBatch& batch, const CopyCheckpoint& current) {
  return current.source_next == batch.source_next && current.source_next != batch.source_from;
}

Result<std::optional<GlobalPosition>> PlaceCopiedEvent(const RecordedEvent& event,
                                                       const std::optional<StoredEvent>& stored,
                                                       std::optional<StreamVersion> head) {
  if (stored) {
    if (stored->stream == event.stream() && stored->version == event.version() &&
        stored->type == event.type() && stored->payload == event.payload()) {
      return std::optional<GlobalPosition>(stored->position);
    }
    return Status::IdempotencyConflict(fmt::format(
        "event {} ({} version {} at source position {}) is in the destination as another "
        "event ({} version {})",
        event.id().ToString(), event.stream(), event.version(), event.position(), stored->stream,
        stored->version));
  }
  if (head && *head + 1 != event.version()) {
    return Status::WrongExpectedVersion(fmt::format(
        "{}: the copy of version {} (source position {}) does not follow the destination's "
        "version {}",
        event.stream(), event.version(), event.position(), *head));
  }
  return std::optional<GlobalPosition>();
}

NewEvent AsNewEvent(const RecordedEvent& event) {
  const fb::EventEnvelope& env = event.envelope();
  NewEvent e;
  e.id = event.id();
  e.type = std::string(event.type());
  e.payload = std::string(event.payload());
  e.payload_schema_version = env.payload_schema_version();
  e.occurred_ns = event.occurred_ns();
  e.causation_id = schemas::FromFb(env.causation_id());
  e.correlation_id = schemas::FromFb(env.correlation_id());
  return e;
}

}  // namespace doppel::eventstore
