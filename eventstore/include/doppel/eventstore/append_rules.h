// The rules of an append that every store applies the same way, so a request gets the same
// answer from the embedded log, the store server and PostgreSQL: what a valid request is,
// when an expected version holds, when a resent batch is a duplicate and when a conflict,
// how an event is written down as an envelope, and which events retention hides.
#pragma once

#include <flatbuffers/flatbuffers.h>

#include <optional>
#include <string>
#include <vector>

#include "doppel/eventstore/types.h"

namespace doppel::eventstore {

// A valid stream name, at least one event, types and payloads valid, no id twice.
Status CheckAppendRequest(const AppendRequest& request);

// Whether `expected` holds for a stream whose last version is `current` (nullopt: no
// events); WrongExpectedVersion naming both otherwise.
Status CheckExpectedVersion(const std::string& stream, const ExpectedVersion& expected,
                            std::optional<StreamVersion> current);

// An event already stored under one of the request's ids.
struct StoredEvent {
  std::string stream;
  StreamVersion version = 0;
  GlobalPosition position = 0;
  std::string type;
  std::string payload;
};

// The idempotency rule. `stored[i]` is what is stored under request.events[i].id, if
// anything. None stored: nullopt (append it). All stored, each the same event, as one batch:
// the original places with duplicate = true. Anything else: IdempotencyConflict.
Result<std::optional<AppendResult>> MatchResentBatch(
    const AppendRequest& request, const std::vector<std::optional<StoredEvent>>& stored);

// Writes `event` as it is stored at (stream, version, position) into `fbb` (cleared first and
// finished with the envelope's identifier).
void BuildEnvelope(flatbuffers::FlatBufferBuilder& fbb, std::string_view stream,
                   StreamVersion version, GlobalPosition position, TimeNs recorded_ns,
                   const NewEvent& event);

// Whether retention `meta` keeps version `version` of a stream recorded at `recorded_ns`,
// judged at `now`; `head` is the stream's last version (max_count counts back from it).
bool Retained(const StreamMetadata& meta, StreamVersion version, TimeNs recorded_ns, TimeNs now,
              std::optional<StreamVersion> head);

}  // namespace doppel::eventstore
