// Encoding and decoding of store protocol messages (schemas/store_protocol.fbs), shared by
// StoreServer and StoreClient so both sides agree by construction.
#pragma once

#include <string>
#include <string_view>

#include "doppel/eventstore/copied_batch.h"
#include "doppel/eventstore/event_log.h"
#include "doppel/eventstore/types.h"
#include "doppel/schemas/store_protocol_generated.h"

namespace doppel::eventstore::protocol {

using Bytes = std::string;

inline Bytes Finish(flatbuffers::FlatBufferBuilder& fbb) {
  return Bytes(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
}

// Requests.
Bytes AppendRequestBytes(uint64_t request_id, const AppendRequest& request);
Bytes ReadStreamRequestBytes(uint64_t request_id, std::string_view stream, StreamVersion from,
                             Direction direction, uint32_t max_count);
Bytes ReadAllRequestBytes(uint64_t request_id, GlobalPosition from, uint32_t max_count,
                          TimeNs until_ns);
Bytes PositionAtTimeRequestBytes(uint64_t request_id, TimeNs t);
Bytes StreamHeadRequestBytes(uint64_t request_id, std::string_view stream);
Bytes SaveSnapshotRequestBytes(uint64_t request_id, const Snapshot& snapshot);
Bytes LoadSnapshotRequestBytes(uint64_t request_id, std::string_view stream,
                               TimeNs at_ns = kTimeMax);
Bytes SetStreamMetadataRequestBytes(uint64_t request_id, std::string_view stream,
                                    const StreamMetadata& metadata);
Bytes GetStreamMetadataRequestBytes(uint64_t request_id, std::string_view stream);
Bytes ServerInfoRequestBytes(uint64_t request_id);
Bytes VerifyLogRequestBytes(uint64_t request_id);
Bytes ListStreamsRequestBytes(uint64_t request_id, std::string_view prefix, std::string_view after,
                              uint32_t max_count);
Bytes AppendCopiedRequestBytes(uint64_t request_id, const CopiedBatch& batch);
Bytes CopyCheckpointRequestBytes(uint64_t request_id, std::string_view copier);
Bytes CopiedPositionRequestBytes(uint64_t request_id, std::string_view copier,
                                 GlobalPosition source_position);

// Responses.
Bytes ErrorBytes(uint64_t request_id, const Status& status);
Bytes OkBytes(uint64_t request_id);
Bytes AppendResponseBytes(uint64_t request_id, const AppendResult& result);
// Keeps the page under wire::kMaxReadBytes; a cut page continues where it was cut.
Bytes ReadResponseBytes(uint64_t request_id, const ReadPage& page, bool stream_read);
Bytes PositionBytes(uint64_t request_id, GlobalPosition position);
Bytes VersionBytes(uint64_t request_id, StreamVersion version);
Bytes SnapshotBytes(uint64_t request_id, const Snapshot& snapshot);
Bytes StreamMetadataBytes(uint64_t request_id, const StreamMetadata& metadata);
Bytes ServerInfoBytes(uint64_t request_id, GlobalPosition next_position);
Bytes VerifyBytes(uint64_t request_id, const VerifyReport& report);
Bytes StreamListBytes(uint64_t request_id, const StreamList& list);
Bytes CopyResponseBytes(uint64_t request_id, const CopyResult& result);

// Verifies a response frame. Corruption if it does not verify.
Result<const fb::StoreResponse*> VerifyResponse(std::string_view bytes);
// The Status an ErrorResponse carries.
Status ToStatus(const fb::ErrorResponse& error);

}  // namespace doppel::eventstore::protocol
