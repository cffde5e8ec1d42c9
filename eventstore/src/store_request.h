// The store protocol's request side, without sockets: checking a received frame, decoding an
// append with bounded memory, and executing every other request against an EventLog. The
// server (store_server.cc) only moves frames; tests and fuzz targets drive this directly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "doppel/core/status.h"
#include "doppel/eventstore/copied_batch.h"
#include "doppel/eventstore/event_log.h"
#include "doppel/eventstore/types.h"
#include "doppel/schemas/store_protocol_generated.h"

namespace doppel::eventstore::protocol {

// Bounds on what one request may make the server hold. A request that verifies can still
// reference one sub-object many times (FlatBuffers offsets may be shared), so the decoded
// size is bounded, not just the frame size.
inline constexpr size_t kMaxEventsPerAppend = 65536;
inline constexpr size_t kMaxDecodedAppendBytes = 16 << 20;

// Verifies `size` bytes at `bytes` as a StoreRequest (bounded depth and table count) and
// checks that its body is present and of a known type. On success, *request points into
// `bytes`. REQUIRES: `bytes` is aligned to 8 and outlives *request.
// On failure, *request_id is the request's id if the frame got that far, else 0.
Status CheckRequestFrame(const uint8_t* bytes, size_t size, const fb::StoreRequest** request,
                         uint64_t* request_id);

// The append a verified AppendRequest carries. InvalidArgument, before copying anything,
// when it holds more than kMaxEventsPerAppend events or more than kMaxDecodedAppendBytes of
// decoded strings and payloads.
Result<AppendRequest> DecodeAppend(const fb::AppendRequest& request);

// The page of copied events a verified AppendCopiedRequest carries, each envelope verified.
// InvalidArgument, before copying anything, over the same bounds as an append.
Result<CopiedBatch> DecodeAppendCopied(const fb::AppendCopiedRequest& request);

// Runs a verified non-append request against `log` and returns the response frame (an
// ErrorResponse for anything the log refuses). REQUIRES: CheckRequestFrame accepted it.
std::string ExecuteRequest(EventLog& log, const fb::StoreRequest& request);

}  // namespace doppel::eventstore::protocol
