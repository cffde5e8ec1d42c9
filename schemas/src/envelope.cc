#include "doppel/schemas/envelope.h"

#include <fmt/format.h>

#include "doppel/schemas/payloads.h"

namespace doppel::schemas {
namespace {

template <typename Table>
Result<const Table*> VerifyRoot(std::string_view bytes, const char* what) {
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  flatbuffers::Verifier verifier(data, bytes.size());
  if (bytes.size() < sizeof(flatbuffers::uoffset_t) || !verifier.VerifyBuffer<Table>(nullptr)) {
    return Status::Corruption(fmt::format("{} of {} bytes does not verify", what, bytes.size()));
  }
  return flatbuffers::GetRoot<Table>(data);
}

}  // namespace

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
