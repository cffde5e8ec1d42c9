#include "protocol.h"

#include <fmt/format.h>

#include "doppel/eventstore/wire_format.h"
#include "doppel/schemas/verify_root.h"

namespace doppel::eventstore::protocol {
namespace {

using flatbuffers::FlatBufferBuilder;

flatbuffers::Offset<flatbuffers::Vector<uint8_t>> ByteVector(FlatBufferBuilder& fbb,
                                                             std::string_view bytes) {
  return fbb.CreateVector(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

std::string Str(const flatbuffers::String* s) { return s == nullptr ? std::string() : s->str(); }

Bytes WrapRequest(FlatBufferBuilder& fbb, uint64_t request_id, fb::Request type,
                  flatbuffers::Offset<void> request) {
  fbb.Finish(fb::CreateStoreRequest(fbb, request_id, type, request));
  return Finish(fbb);
}

Bytes WrapResponse(FlatBufferBuilder& fbb, uint64_t request_id, fb::Response type,
                   flatbuffers::Offset<void> response) {
  fbb.Finish(fb::CreateStoreResponse(fbb, request_id, type, response));
  return Finish(fbb);
}

}  // namespace

Bytes AppendRequestBytes(uint64_t request_id, const AppendRequest& request) {
  FlatBufferBuilder fbb(256);
  std::vector<flatbuffers::Offset<fb::NewEventMsg>> events;
  events.reserve(request.events.size());
  for (const NewEvent& e : request.events) {
    const fb::Uuid id = schemas::ToFb(e.id), causation = schemas::ToFb(e.causation_id),
                   correlation = schemas::ToFb(e.correlation_id);
    auto type = fbb.CreateString(e.type);
    auto payload = ByteVector(fbb, e.payload);
    events.push_back(fb::CreateNewEventMsg(fbb, &id, type, payload, e.payload_schema_version,
                                           e.occurred_ns, &causation, &correlation));
  }
  auto stream = fbb.CreateString(request.stream);
  auto list = fbb.CreateVector(events);
  auto body =
      fb::CreateAppendRequest(fbb, stream, static_cast<fb::ExpectedKind>(request.expected.kind),
                              request.expected.version, list);
  return WrapRequest(fbb, request_id, fb::Request::AppendRequest, body.Union());
}

Bytes ReadStreamRequestBytes(uint64_t request_id, std::string_view stream, StreamVersion from,
                             Direction direction, uint32_t max_count) {
  FlatBufferBuilder fbb(128);
  auto s = fbb.CreateString(stream);
  auto body =
      fb::CreateReadStreamRequest(fbb, s, from, direction == Direction::kBackward, max_count);
  return WrapRequest(fbb, request_id, fb::Request::ReadStreamRequest, body.Union());
}

Bytes ReadAllRequestBytes(uint64_t request_id, GlobalPosition from, uint32_t max_count,
                          TimeNs until_ns) {
  FlatBufferBuilder fbb(64);
  auto body = fb::CreateReadAllRequest(fbb, from, max_count, until_ns);
  return WrapRequest(fbb, request_id, fb::Request::ReadAllRequest, body.Union());
}

Bytes PositionAtTimeRequestBytes(uint64_t request_id, TimeNs t) {
  FlatBufferBuilder fbb(64);
  auto body = fb::CreatePositionAtTimeRequest(fbb, t);
  return WrapRequest(fbb, request_id, fb::Request::PositionAtTimeRequest, body.Union());
}

Bytes ListStreamsRequestBytes(uint64_t request_id, std::string_view prefix, std::string_view after,
                              uint32_t max_count) {
  FlatBufferBuilder fbb(64 + prefix.size() + after.size());
  auto p = fbb.CreateString(prefix);
  auto a = fbb.CreateString(after);
  auto body = fb::CreateListStreamsRequest(fbb, p, a, max_count);
  return WrapRequest(fbb, request_id, fb::Request::ListStreamsRequest, body.Union());
}

Bytes AppendCopiedRequestBytes(uint64_t request_id, const CopiedBatch& batch) {
  size_t size = 128 + batch.copier.size();
  for (const RecordedEvent& e : batch.events) size += e.bytes().size() + 16;
  FlatBufferBuilder fbb(size);
  std::vector<flatbuffers::Offset<fb::EventBytes>> events;
  events.reserve(batch.events.size());
  for (const RecordedEvent& e : batch.events) {
    auto envelope =
        fbb.CreateVector(reinterpret_cast<const uint8_t*>(e.bytes().data()), e.bytes().size());
    events.push_back(fb::CreateEventBytes(fbb, envelope));
  }
  auto list = fbb.CreateVector(events);
  auto copier = fbb.CreateString(batch.copier);
  auto body =
      fb::CreateAppendCopiedRequest(fbb, copier, batch.source_from, batch.source_next, list);
  return WrapRequest(fbb, request_id, fb::Request::AppendCopiedRequest, body.Union());
}

Bytes CopyCheckpointRequestBytes(uint64_t request_id, std::string_view copier) {
  FlatBufferBuilder fbb(64 + copier.size());
  auto c = fbb.CreateString(copier);
  auto body = fb::CreateCopyCheckpointRequest(fbb, c);
  return WrapRequest(fbb, request_id, fb::Request::CopyCheckpointRequest, body.Union());
}

Bytes CopiedPositionRequestBytes(uint64_t request_id, std::string_view copier,
                                 GlobalPosition source_position) {
  FlatBufferBuilder fbb(64 + copier.size());
  auto c = fbb.CreateString(copier);
  auto body = fb::CreateCopiedPositionRequest(fbb, c, source_position);
  return WrapRequest(fbb, request_id, fb::Request::CopiedPositionRequest, body.Union());
}

Bytes CopyResponseBytes(uint64_t request_id, const CopyResult& result) {
  FlatBufferBuilder fbb(64);
  auto body = fb::CreateCopyResponse(fbb, result.written, result.present,
                                     result.checkpoint.source_next, result.checkpoint.events);
  return WrapResponse(fbb, request_id, fb::Response::CopyResponse, body.Union());
}

Bytes StreamListBytes(uint64_t request_id, const StreamList& list) {
  FlatBufferBuilder fbb(256);
  auto streams = fbb.CreateVectorOfStrings(list.streams);
  auto body = fb::CreateStreamListResponse(fbb, streams, list.end);
  return WrapResponse(fbb, request_id, fb::Response::StreamListResponse, body.Union());
}

Bytes StreamHeadRequestBytes(uint64_t request_id, std::string_view stream) {
  FlatBufferBuilder fbb(64);
  auto s = fbb.CreateString(stream);
  auto body = fb::CreateStreamHeadRequest(fbb, s);
  return WrapRequest(fbb, request_id, fb::Request::StreamHeadRequest, body.Union());
}

Bytes SaveSnapshotRequestBytes(uint64_t request_id, const Snapshot& snapshot) {
  FlatBufferBuilder fbb(snapshot.state.size() + 128);
  auto s = fbb.CreateString(snapshot.stream);
  auto state = ByteVector(fbb, snapshot.state);
  auto body = fb::CreateSaveSnapshotRequest(fbb, s, snapshot.version, snapshot.schema_version,
                                            snapshot.recorded_ns, state);
  return WrapRequest(fbb, request_id, fb::Request::SaveSnapshotRequest, body.Union());
}

Bytes LoadSnapshotRequestBytes(uint64_t request_id, std::string_view stream, TimeNs at_ns) {
  FlatBufferBuilder fbb(64);
  auto s = fbb.CreateString(stream);
  auto body = fb::CreateLoadSnapshotRequest(fbb, s, at_ns);
  return WrapRequest(fbb, request_id, fb::Request::LoadSnapshotRequest, body.Union());
}

Bytes SetStreamMetadataRequestBytes(uint64_t request_id, std::string_view stream,
                                    const StreamMetadata& m) {
  FlatBufferBuilder fbb(64);
  auto s = fbb.CreateString(stream);
  auto body =
      fb::CreateSetStreamMetadataRequest(fbb, s, m.max_age_ns, m.max_count, m.truncate_before);
  return WrapRequest(fbb, request_id, fb::Request::SetStreamMetadataRequest, body.Union());
}

Bytes GetStreamMetadataRequestBytes(uint64_t request_id, std::string_view stream) {
  FlatBufferBuilder fbb(64);
  auto s = fbb.CreateString(stream);
  auto body = fb::CreateGetStreamMetadataRequest(fbb, s);
  return WrapRequest(fbb, request_id, fb::Request::GetStreamMetadataRequest, body.Union());
}

Bytes ServerInfoRequestBytes(uint64_t request_id) {
  FlatBufferBuilder fbb(32);
  auto body = fb::CreateServerInfoRequest(fbb);
  return WrapRequest(fbb, request_id, fb::Request::ServerInfoRequest, body.Union());
}

Bytes VerifyLogRequestBytes(uint64_t request_id) {
  FlatBufferBuilder fbb(32);
  auto body = fb::CreateVerifyLogRequest(fbb);
  return WrapRequest(fbb, request_id, fb::Request::VerifyLogRequest, body.Union());
}

Bytes ErrorBytes(uint64_t request_id, const Status& status) {
  FlatBufferBuilder fbb(128);
  auto message = fbb.CreateString(status.message());
  auto body = fb::CreateErrorResponse(fbb, static_cast<uint16_t>(status.code()), message);
  return WrapResponse(fbb, request_id, fb::Response::ErrorResponse, body.Union());
}

Bytes OkBytes(uint64_t request_id) {
  FlatBufferBuilder fbb(32);
  auto body = fb::CreateOkResponse(fbb);
  return WrapResponse(fbb, request_id, fb::Response::OkResponse, body.Union());
}

Bytes AppendResponseBytes(uint64_t request_id, const AppendResult& r) {
  FlatBufferBuilder fbb(64 + r.ids.size() * 16);
  std::vector<fb::Uuid> ids;
  ids.reserve(r.ids.size());
  for (const EventId& id : r.ids) ids.push_back(schemas::ToFb(id));
  auto id_vector = fbb.CreateVectorOfStructs(ids);
  auto body = fb::CreateAppendResponse(fbb, r.first_version, r.last_version, r.first_position,
                                       r.last_position, r.recorded_ns, r.duplicate, id_vector);
  return WrapResponse(fbb, request_id, fb::Response::AppendResponse, body.Union());
}

Bytes ReadResponseBytes(uint64_t request_id, const ReadPage& page, bool stream_read) {
  FlatBufferBuilder fbb(4096);
  std::vector<flatbuffers::Offset<fb::EventBytes>> events;
  size_t bytes = 0;
  uint64_t next = page.next;
  bool end = page.end;
  for (const RecordedEvent& e : page.events) {
    if (!events.empty() && bytes + e.bytes().size() > wire::kMaxReadBytes) {
      next = stream_read ? e.version() : e.position();
      end = false;
      break;
    }
    bytes += e.bytes().size();
    events.push_back(fb::CreateEventBytes(fbb, ByteVector(fbb, e.bytes())));
  }
  auto list = fbb.CreateVector(events);
  auto body = fb::CreateReadResponse(fbb, list, next, end);
  return WrapResponse(fbb, request_id, fb::Response::ReadResponse, body.Union());
}

Bytes PositionBytes(uint64_t request_id, GlobalPosition position) {
  FlatBufferBuilder fbb(32);
  auto body = fb::CreatePositionResponse(fbb, position);
  return WrapResponse(fbb, request_id, fb::Response::PositionResponse, body.Union());
}

Bytes VersionBytes(uint64_t request_id, StreamVersion version) {
  FlatBufferBuilder fbb(32);
  auto body = fb::CreateVersionResponse(fbb, version);
  return WrapResponse(fbb, request_id, fb::Response::VersionResponse, body.Union());
}

Bytes SnapshotBytes(uint64_t request_id, const Snapshot& s) {
  FlatBufferBuilder fbb(s.state.size() + 128);
  auto stream = fbb.CreateString(s.stream);
  auto state = ByteVector(fbb, s.state);
  auto body =
      fb::CreateSnapshotResponse(fbb, stream, s.version, s.schema_version, s.recorded_ns, state);
  return WrapResponse(fbb, request_id, fb::Response::SnapshotResponse, body.Union());
}

Bytes StreamMetadataBytes(uint64_t request_id, const StreamMetadata& m) {
  FlatBufferBuilder fbb(64);
  auto body = fb::CreateStreamMetadataResponse(fbb, m.max_age_ns, m.max_count, m.truncate_before);
  return WrapResponse(fbb, request_id, fb::Response::StreamMetadataResponse, body.Union());
}

Bytes ServerInfoBytes(uint64_t request_id, GlobalPosition next_position) {
  FlatBufferBuilder fbb(64);
  auto version = fbb.CreateString("doppel 0.1.0");
  auto body = fb::CreateServerInfoResponse(fbb, next_position, version);
  return WrapResponse(fbb, request_id, fb::Response::ServerInfoResponse, body.Union());
}

Bytes VerifyBytes(uint64_t request_id, const VerifyReport& report) {
  FlatBufferBuilder fbb(256);
  auto problems = fbb.CreateVectorOfStrings(report.problems);
  auto body = fb::CreateVerifyLogResponse(fbb, report.events, report.streams, report.scavenged,
                                          report.next_position, report.problem_count, problems);
  return WrapResponse(fbb, request_id, fb::Response::VerifyLogResponse, body.Union());
}

Result<const fb::StoreResponse*> VerifyResponse(std::string_view bytes) {
  return schemas::VerifyRoot<fb::StoreResponse>(bytes, "store response");
}

Status ToStatus(const fb::ErrorResponse& error) {
  const std::string message = Str(error.message());
  switch (static_cast<Status::Code>(error.code())) {
    case Status::Code::kNotFound:
      return Status::NotFound(message);
    case Status::Code::kInvalidArgument:
      return Status::InvalidArgument(message);
    case Status::Code::kWrongExpectedVersion:
      return Status::WrongExpectedVersion(message);
    case Status::Code::kIdempotencyConflict:
      return Status::IdempotencyConflict(message);
    case Status::Code::kCorruption:
      return Status::Corruption(message);
    case Status::Code::kIOError:
      return Status::IOError(message);
    case Status::Code::kNotADoppelLog:
      return Status::NotADoppelLog(message);
    default:
      return Status::Unavailable(message);
  }
}

}  // namespace doppel::eventstore::protocol
