#include "doppel/schemas/envelope.h"

#include <fmt/format.h>

#include "doppel/schemas/payloads.h"
#include "doppel/schemas/verify_root.h"

namespace doppel::schemas {

Result<const fb::EventEnvelope*> VerifyEnvelope(std::string_view bytes) {
  auto root = VerifyRoot<fb::EventEnvelope>(bytes, "event envelope");
  if (!root.ok()) return root.status();
  const fb::EventEnvelope* e = *root;
  Status payload = VerifyPayload(e->event_type()->string_view(), PayloadBytes(*e));
  if (!payload.ok()) return payload;
  return e;
}

Result<const fb::SnapshotRecord*> VerifySnapshotRecord(std::string_view bytes) {
  return VerifyRoot<fb::SnapshotRecord>(bytes, "snapshot record");
}

Result<const fb::StreamMetadataRecord*> VerifyStreamMetadataRecord(std::string_view bytes) {
  return VerifyRoot<fb::StreamMetadataRecord>(bytes, "stream metadata record");
}

}  // namespace doppel::schemas
