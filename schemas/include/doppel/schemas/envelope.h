// The one FlatBuffers verification path for what the event log stores: envelopes,
// snapshots and stream metadata, plus conversions between EventId and fb::Uuid.
#pragma once

#include <string_view>

#include "doppel/core/event_id.h"
#include "doppel/core/status.h"
#include "doppel/schemas/envelope_generated.h"
#include "doppel/schemas/log_records_generated.h"

namespace doppel::schemas {

inline fb::Uuid ToFb(const EventId& id) { return fb::Uuid(id.hi(), id.lo()); }
inline EventId FromFb(const fb::Uuid* id) {
  return id == nullptr ? EventId() : EventId(id->hi(), id->lo());
}

// Verifies an envelope (structure, required fields) and, for known event types, its
// payload. Returns the root on success; Corruption with the reason otherwise.
Result<const fb::EventEnvelope*> VerifyEnvelope(std::string_view bytes);
Result<const fb::SnapshotRecord*> VerifySnapshotRecord(std::string_view bytes);
Result<const fb::StreamMetadataRecord*> VerifyStreamMetadataRecord(std::string_view bytes);

inline std::string_view PayloadBytes(const fb::EventEnvelope& e) {
  return e.payload() == nullptr
             ? std::string_view()
             : std::string_view(reinterpret_cast<const char*>(e.payload()->data()),
                                e.payload()->size());
}

}  // namespace doppel::schemas
