#include "doppel/eventstore/types.h"

#include <fmt/format.h>

#include <charconv>

#include "doppel/core/utf8.h"
#include "doppel/eventstore/log_format.h"

namespace doppel::eventstore {

Result<ExpectedVersion> ExpectedVersion::Parse(std::string_view text) {
  if (text == "any") return Any();
  if (text == "none" || text == "no-stream") return NoStream();
  if (text == "exists") return StreamExists();
  StreamVersion v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size()) {
    return Status::InvalidArgument(
        fmt::format("bad expected version '{}': want any, none, exists or a version number", text));
  }
  return Exact(v);
}

std::string ExpectedVersion::ToString() const {
  switch (kind) {
    case Kind::kAny:
      return "any";
    case Kind::kNoStream:
      return "none";
    case Kind::kStreamExists:
      return "exists";
    case Kind::kExact:
      return std::to_string(version);
  }
  return "?";
}

Result<RecordedEvent> RecordedEvent::FromBytes(std::string bytes) {
  auto verified = schemas::VerifyEnvelope(bytes);
  if (!verified.ok()) return verified.status();
  return RecordedEvent(std::move(bytes));
}

Status ValidateStreamName(std::string_view stream) {
  if (stream.empty()) return Status::InvalidArgument("stream name is empty");
  if (stream.size() > format::kMaxStreamNameBytes) {
    return Status::InvalidArgument(fmt::format("stream name of {} bytes is longer than {}",
                                               stream.size(), format::kMaxStreamNameBytes));
  }
  if (stream.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("stream name contains a NUL byte");
  }
  if (!IsValidUtf8(stream)) {
    return Status::InvalidArgument(
        fmt::format("stream name '{}' is not valid UTF-8", ScrubUtf8(stream)));
  }
  if (stream.front() == '$') {
    return Status::InvalidArgument(
        fmt::format("stream name '{}': names starting with '$' are reserved", stream));
  }
  return Status::Ok();
}

}  // namespace doppel::eventstore
