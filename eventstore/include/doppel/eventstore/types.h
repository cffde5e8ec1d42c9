// The vocabulary of the event store: positions, versions, expected versions, new and
// recorded events. Shared by the embedded EventLog and the network client.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "doppel/core/clock.h"
#include "doppel/core/event_id.h"
#include "doppel/core/status.h"
#include "doppel/schemas/envelope.h"

namespace doppel::eventstore {

// Index of an event in the store-wide order; dense from 0.
using GlobalPosition = uint64_t;
// Index of an event in its stream; dense from 0.
using StreamVersion = uint64_t;

inline constexpr StreamVersion kStreamEnd = std::numeric_limits<StreamVersion>::max();
inline constexpr TimeNs kTimeMax = std::numeric_limits<TimeNs>::max();

// The optimistic concurrency condition of an append.
struct ExpectedVersion {
  enum class Kind { kAny, kNoStream, kStreamExists, kExact };
  Kind kind = Kind::kAny;
  StreamVersion version = 0;  // for kExact: the stream's current last version

  static ExpectedVersion Any() { return {}; }
  static ExpectedVersion NoStream() { return {Kind::kNoStream, 0}; }
  static ExpectedVersion StreamExists() { return {Kind::kStreamExists, 0}; }
  static ExpectedVersion Exact(StreamVersion v) { return {Kind::kExact, v}; }
  // "any", "none" (or "no-stream"), "exists", or a version number.
  static Result<ExpectedVersion> Parse(std::string_view text);
  std::string ToString() const;
};

// An event as a writer hands it in. The store fills in position, version and recorded time.
struct NewEvent {
  EventId id;  // nil: the store assigns a random id (such appends cannot be retried safely)
  std::string type;
  std::string payload;  // FlatBuffer bytes whose root is the table named by `type`
  uint16_t payload_schema_version = 1;
  TimeNs occurred_ns = 0;
  EventId causation_id;
  EventId correlation_id;
};

struct AppendRequest {
  std::string stream;
  ExpectedVersion expected;
  std::vector<NewEvent> events;  // appended atomically, in order
};

struct AppendResult {
  StreamVersion first_version = 0;
  StreamVersion last_version = 0;
  GlobalPosition first_position = 0;
  GlobalPosition last_position = 0;
  TimeNs recorded_ns = 0;
  bool duplicate = false;  // every event was already stored: these are the original places
  std::vector<EventId> ids;
};

// A stored event: its verified envelope bytes. Cheap accessors read the FlatBuffer.
class RecordedEvent {
 public:
  // Verifies `bytes` (envelope and, for known types, payload).
  static Result<RecordedEvent> FromBytes(std::string bytes);

  const fb::EventEnvelope& envelope() const {
    return *flatbuffers::GetRoot<fb::EventEnvelope>(bytes_.data());
  }
  const std::string& bytes() const { return bytes_; }
  GlobalPosition position() const { return envelope().global_position(); }
  StreamVersion version() const { return envelope().stream_version(); }
  std::string_view stream() const { return envelope().stream()->string_view(); }
  std::string_view type() const { return envelope().event_type()->string_view(); }
  EventId id() const { return schemas::FromFb(envelope().id()); }
  TimeNs recorded_ns() const { return envelope().recorded_ns(); }
  TimeNs occurred_ns() const { return envelope().occurred_ns(); }
  std::string_view payload() const { return schemas::PayloadBytes(envelope()); }

 private:
  explicit RecordedEvent(std::string bytes) : bytes_(std::move(bytes)) {}
  std::string bytes_;
};

// One page of a read. `next` continues the read (a version for stream reads, a position
// for $all reads); `end` says there was nothing more when the page was read.
struct ReadPage {
  std::vector<RecordedEvent> events;
  uint64_t next = 0;
  bool end = true;
};

enum class Direction { kForward, kBackward };

// One page of stream names (ListStreams), in byte order; `end` when there were no more.
struct StreamList {
  std::vector<std::string> streams;
  bool end = true;
};

// Retention of a stream; 0 = no limit.
struct StreamMetadata {
  int64_t max_age_ns = 0;
  uint64_t max_count = 0;
  StreamVersion truncate_before = 0;
  bool operator==(const StreamMetadata&) const = default;
};

struct Snapshot {
  std::string stream;
  StreamVersion version = 0;  // last event folded into `state`
  uint32_t schema_version = 0;
  TimeNs recorded_ns = 0;
  std::string state;
};

// Stream names: 1..512 bytes, no NUL, not starting with '$' (reserved for $all etc.).
Status ValidateStreamName(std::string_view stream);

}  // namespace doppel::eventstore
