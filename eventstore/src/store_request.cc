#include "store_request.h"

#include <fmt/format.h>

#include <algorithm>
#include <string_view>

#include "doppel/eventstore/wire_format.h"
#include "doppel/schemas/verify_root.h"
#include "protocol.h"

namespace doppel::eventstore::protocol {
namespace {

// Nesting of a StoreRequest is at most 4 deep (request, body, events, event); anything
// deeper is not ours. Tables: one per event plus the request and its body.
constexpr flatbuffers::uoffset_t kMaxDepth = 16;
constexpr flatbuffers::uoffset_t kMaxTables = kMaxEventsPerAppend + 16;

std::string_view View(const flatbuffers::Vector<uint8_t>* v) {
  return v == nullptr ? std::string_view()
                      : std::string_view(reinterpret_cast<const char*>(v->data()), v->size());
}

std::string_view Str(const flatbuffers::String* s) {
  return s == nullptr ? std::string_view() : s->string_view();
}

// True when the union body matches its type tag: a type with no table (the Verifier accepts
// a tag whose table is absent) would otherwise be dereferenced as null.
bool HasBody(const fb::StoreRequest& r) {
  switch (r.request_type()) {
    case fb::Request::AppendRequest:
      return r.request_as_AppendRequest() != nullptr;
    case fb::Request::ReadStreamRequest:
      return r.request_as_ReadStreamRequest() != nullptr;
    case fb::Request::ReadAllRequest:
      return r.request_as_ReadAllRequest() != nullptr;
    case fb::Request::PositionAtTimeRequest:
      return r.request_as_PositionAtTimeRequest() != nullptr;
    case fb::Request::StreamHeadRequest:
      return r.request_as_StreamHeadRequest() != nullptr;
    case fb::Request::SaveSnapshotRequest:
      return r.request_as_SaveSnapshotRequest() != nullptr;
    case fb::Request::LoadSnapshotRequest:
      return r.request_as_LoadSnapshotRequest() != nullptr;
    case fb::Request::SetStreamMetadataRequest:
      return r.request_as_SetStreamMetadataRequest() != nullptr;
    case fb::Request::GetStreamMetadataRequest:
      return r.request_as_GetStreamMetadataRequest() != nullptr;
    case fb::Request::ServerInfoRequest:
      return r.request_as_ServerInfoRequest() != nullptr;
    case fb::Request::VerifyLogRequest:
      return r.request_as_VerifyLogRequest() != nullptr;
    case fb::Request::ListStreamsRequest:
      return r.request_as_ListStreamsRequest() != nullptr;
    case fb::Request::AppendCopiedRequest:
      return r.request_as_AppendCopiedRequest() != nullptr;
    case fb::Request::CopyCheckpointRequest:
      return r.request_as_CopyCheckpointRequest() != nullptr;
    case fb::Request::CopiedPositionRequest:
      return r.request_as_CopiedPositionRequest() != nullptr;
    default:
      return false;
  }
}

}  // namespace

Status CheckRequestFrame(const uint8_t* bytes, size_t size, const fb::StoreRequest** request,
                         uint64_t* request_id) {
  *request = nullptr;
  *request_id = 0;
  if (size > wire::kMaxRequestBytes) {
    return Status::InvalidArgument(
        fmt::format("request of {} bytes is larger than {}", size, wire::kMaxRequestBytes));
  }
  auto verified = schemas::VerifyRoot<fb::StoreRequest>(
      std::string_view(reinterpret_cast<const char*>(bytes), size), "request", nullptr,
      {kMaxDepth, kMaxTables});
  if (verified.status().code() == Status::Code::kInvalidArgument) return verified.status();
  if (!verified.ok()) {
    return Status::InvalidArgument(fmt::format(
        "malformed request: {} bytes that do not verify as a StoreRequest (at most {} tables, "
        "{} deep)",
        size, kMaxTables, kMaxDepth));
  }
  const fb::StoreRequest* r = *verified;
  *request_id = r->request_id();
  const auto type = static_cast<int>(r->request_type());
  if (r->request_type() == fb::Request::NONE || type > static_cast<int>(fb::Request::MAX)) {
    return Status::InvalidArgument(fmt::format("unknown request type {}", type));
  }
  if (!HasBody(*r)) {
    return Status::InvalidArgument(fmt::format("request type {} ({}) carries no request table",
                                               type, fb::EnumNameRequest(r->request_type())));
  }
  *request = r;
  return Status::Ok();
}

Result<AppendRequest> DecodeAppend(const fb::AppendRequest& r) {
  const auto* list = r.events();
  const size_t count = list == nullptr ? 0 : list->size();
  if (count > kMaxEventsPerAppend) {
    return Status::InvalidArgument(
        fmt::format("append of {} events; at most {} per request", count, kMaxEventsPerAppend));
  }
  // Sum first, copy after: shared offsets make the decoded size unrelated to the frame's.
  size_t decoded = Str(r.stream()).size();
  for (size_t i = 0; i < count; ++i) {
    const fb::NewEventMsg* m = list->Get(i);
    decoded += Str(m->event_type()).size() + View(m->payload()).size();
    if (decoded > kMaxDecodedAppendBytes) {
      return Status::InvalidArgument(
          fmt::format("append decodes to more than {} bytes (at event {} of {})",
                      kMaxDecodedAppendBytes, i, count));
    }
  }
  AppendRequest request;
  request.stream = std::string(Str(r.stream()));
  const auto kind = static_cast<int>(r.expected_kind());
  if (kind < 0 || kind > 3) {
    return Status::InvalidArgument(fmt::format("unknown expected-version kind {}", kind));
  }
  request.expected.kind = static_cast<ExpectedVersion::Kind>(kind);
  request.expected.version = r.expected_version();
  request.events.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    const fb::NewEventMsg* m = list->Get(i);
    NewEvent e;
    e.id = schemas::FromFb(m->id());
    e.type = std::string(Str(m->event_type()));
    e.payload = std::string(View(m->payload()));
    e.payload_schema_version = m->payload_schema_version();
    e.occurred_ns = m->occurred_ns();
    e.causation_id = schemas::FromFb(m->causation_id());
    e.correlation_id = schemas::FromFb(m->correlation_id());
    request.events.push_back(std::move(e));
  }
  return request;
}

Result<CopiedBatch> DecodeAppendCopied(const fb::AppendCopiedRequest& r) {
  const auto* list = r.events();
  const size_t count = list == nullptr ? 0 : list->size();
  if (count > kMaxEventsPerAppend) {
    return Status::InvalidArgument(fmt::format("copied page of {} events; at most {} per request",
                                               count, kMaxEventsPerAppend));
  }
  size_t decoded = Str(r.copier()).size();
  for (size_t i = 0; i < count; ++i) {
    decoded += View(list->Get(i)->envelope()).size();
    if (decoded > kMaxDecodedAppendBytes) {
      return Status::InvalidArgument(
          fmt::format("copied page decodes to more than {} bytes (at event {} of {})",
                      kMaxDecodedAppendBytes, i, count));
    }
  }
  CopiedBatch batch;
  batch.copier = std::string(Str(r.copier()));
  batch.source_from = r.source_from();
  batch.source_next = r.source_next();
  batch.events.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    auto event = RecordedEvent::FromBytes(std::string(View(list->Get(i)->envelope())));
    if (!event.ok()) {
      return Status::InvalidArgument(
          fmt::format("copied event {} of {}: {}", i, count, event.status().message()));
    }
    batch.events.push_back(std::move(event).value());
  }
  return batch;
}

std::string ExecuteRequest(EventLog& log, const fb::StoreRequest& request) {
  const uint64_t id = request.request_id();
  switch (request.request_type()) {
    case fb::Request::ReadStreamRequest: {
      const auto* r = request.request_as_ReadStreamRequest();
      auto page = log.ReadStream(Str(r->stream()), r->from(),
                                 r->backward() ? Direction::kBackward : Direction::kForward,
                                 std::min(r->max_count(), wire::kMaxReadCount));
      return page.ok() ? ReadResponseBytes(id, *page, true) : ErrorBytes(id, page.status());
    }
    case fb::Request::ReadAllRequest: {
      const auto* r = request.request_as_ReadAllRequest();
      auto page =
          log.ReadAll(r->from(), std::min(r->max_count(), wire::kMaxReadCount), r->until_ns());
      return page.ok() ? ReadResponseBytes(id, *page, false) : ErrorBytes(id, page.status());
    }
    case fb::Request::PositionAtTimeRequest: {
      auto p = log.PositionAtTime(request.request_as_PositionAtTimeRequest()->time_ns());
      return p.ok() ? PositionBytes(id, *p) : ErrorBytes(id, p.status());
    }
    case fb::Request::StreamHeadRequest: {
      auto v = log.StreamHead(Str(request.request_as_StreamHeadRequest()->stream()));
      return v.ok() ? VersionBytes(id, *v) : ErrorBytes(id, v.status());
    }
    case fb::Request::SaveSnapshotRequest: {
      const auto* r = request.request_as_SaveSnapshotRequest();
      Snapshot s{std::string(Str(r->stream())), r->version(), r->schema_version(), r->recorded_ns(),
                 std::string(View(r->state()))};
      Status st = log.SaveSnapshot(s);
      return st.ok() ? OkBytes(id) : ErrorBytes(id, st);
    }
    case fb::Request::LoadSnapshotRequest: {
      const auto* r = request.request_as_LoadSnapshotRequest();
      auto s = r->at_ns() == kTimeMax ? log.LoadSnapshot(Str(r->stream()))
                                      : log.LoadSnapshotAt(Str(r->stream()), r->at_ns());
      return s.ok() ? SnapshotBytes(id, *s) : ErrorBytes(id, s.status());
    }
    case fb::Request::SetStreamMetadataRequest: {
      const auto* r = request.request_as_SetStreamMetadataRequest();
      Status st = log.SetStreamMetadata(Str(r->stream()),
                                        {r->max_age_ns(), r->max_count(), r->truncate_before()});
      return st.ok() ? OkBytes(id) : ErrorBytes(id, st);
    }
    case fb::Request::GetStreamMetadataRequest: {
      auto m = log.GetStreamMetadata(Str(request.request_as_GetStreamMetadataRequest()->stream()));
      return m.ok() ? StreamMetadataBytes(id, *m) : ErrorBytes(id, m.status());
    }
    case fb::Request::ServerInfoRequest:
      return ServerInfoBytes(id, log.NextPosition());
    case fb::Request::VerifyLogRequest:
      return VerifyBytes(id, log.Verify());
    case fb::Request::ListStreamsRequest: {
      const auto* r = request.request_as_ListStreamsRequest();
      auto list = log.ListStreams(Str(r->prefix()), Str(r->after()),
                                  std::min(r->max_count(), wire::kMaxReadCount));
      return list.ok() ? StreamListBytes(id, *list) : ErrorBytes(id, list.status());
    }
    case fb::Request::AppendCopiedRequest: {
      auto batch = DecodeAppendCopied(*request.request_as_AppendCopiedRequest());
      if (!batch.ok()) return ErrorBytes(id, batch.status());
      auto copied = log.AppendCopied(*batch);
      return copied.ok() ? CopyResponseBytes(id, *copied) : ErrorBytes(id, copied.status());
    }
    case fb::Request::CopyCheckpointRequest: {
      auto checkpoint =
          log.LoadCopyCheckpoint(Str(request.request_as_CopyCheckpointRequest()->copier()));
      return checkpoint.ok() ? CopyResponseBytes(id, CopyResult{0, 0, *checkpoint})
                             : ErrorBytes(id, checkpoint.status());
    }
    case fb::Request::CopiedPositionRequest: {
      const auto* r = request.request_as_CopiedPositionRequest();
      auto p = log.CopiedPosition(Str(r->copier()), r->source_position());
      return p.ok() ? PositionBytes(id, *p) : ErrorBytes(id, p.status());
    }
    default:
      return ErrorBytes(id, Status::InvalidArgument("not a request ExecuteRequest runs"));
  }
}

}  // namespace doppel::eventstore::protocol
