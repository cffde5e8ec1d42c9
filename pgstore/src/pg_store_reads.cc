// PgEventStore reads. Rows become the same verified envelopes the embedded log stores, so
// readers cannot tell the stores apart. $all reads stop at the commit horizon
// (commit_horizon.h) and read rows in snapshots taken after it was observed.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "doppel/eventstore/append_rules.h"
#include "pg_store_impl.h"

namespace doppel::pgstore {

using eventstore::Direction;
using eventstore::GlobalPosition;
using eventstore::ReadPage;
using eventstore::RecordedEvent;
using eventstore::StreamMetadata;
using eventstore::StreamVersion;

namespace {

// Rows per page are at most max_count + 1 (the extra one says whether more follow).
int64_t Limit(size_t max_count) {
  return static_cast<int64_t>(std::min<size_t>(max_count, 1'000'000) + 1);
}

const std::string& StreamSql(Direction direction) {
  static const auto* const kForward = new std::string(fmt::format(
      "SELECT {}, {} FROM events e LEFT JOIN doppel_stream_metadata m ON m.stream = e.stream "
      "WHERE e.stream = $1 AND e.version >= $2 ORDER BY e.version LIMIT $3",
      kEventColumns, kRetentionColumns));
  static const auto* const kBackward = new std::string(fmt::format(
      "SELECT {}, {} FROM events e LEFT JOIN doppel_stream_metadata m ON m.stream = e.stream "
      "WHERE e.stream = $1 AND e.version <= $2 ORDER BY e.version DESC LIMIT $3",
      kEventColumns, kRetentionColumns));
  return direction == Direction::kForward ? *kForward : *kBackward;
}

const std::string& AllSql() {
  static const auto* const kSql = new std::string(fmt::format(
      "SELECT {}, {} FROM events e LEFT JOIN doppel_stream_metadata m ON m.stream = e.stream "
      "WHERE e.position >= $1 AND e.position <= $2 ORDER BY e.position LIMIT $3",
      kEventColumns, kRetentionColumns));
  return *kSql;
}

// The highest visible position, then the transactions writing events (holding a transaction
// id and a row-write lock on the table), from one read of pg_locks made after the statement's
// snapshot was taken (commit_horizon.h). Readers of events, and transactions in other
// databases or on other tables, do not count.
constexpr char kObserve[] =
    "WITH l AS MATERIALIZED (SELECT locktype, mode, granted, virtualtransaction, transactionid, "
    "relation, database FROM pg_locks) "
    "SELECT coalesce((SELECT max(position) FROM events), 0), "
    "coalesce((SELECT string_agg(DISTINCT x.transactionid::text, ',') FROM l x "
    "JOIN l r ON r.virtualtransaction = x.virtualtransaction "
    "WHERE x.locktype = 'transactionid' AND x.mode = 'ExclusiveLock' AND x.granted "
    "AND r.locktype = 'relation' AND r.mode = 'RowExclusiveLock' "
    "AND r.relation = 'events'::regclass "
    "AND r.database = (SELECT oid FROM pg_database WHERE datname = current_database())), '')";
constexpr char kPositionAtTime[] =
    "SELECT position FROM events WHERE recorded_ns >= $1 ORDER BY recorded_ns, position LIMIT 1";
constexpr char kMaxPosition[] = "SELECT coalesce(max(position), 0) FROM events";
constexpr char kHead[] = "SELECT max(version) FROM events WHERE stream = $1";
// The streams after a name, one index probe each (a loose index scan), while they start with
// the prefix.
constexpr char kListStreams[] = R"sql(
WITH RECURSIVE s(stream) AS (
  (SELECT e.stream FROM events e WHERE e.stream >= $1 AND e.stream > $2 ORDER BY e.stream LIMIT 1)
  UNION ALL
  SELECT (SELECT e.stream FROM events e WHERE e.stream > s.stream ORDER BY e.stream LIMIT 1)
  FROM s WHERE s.stream IS NOT NULL AND starts_with(s.stream, $1))
SELECT stream FROM s WHERE stream IS NOT NULL AND starts_with(stream, $1) LIMIT $3)sql";

}  // namespace

Result<RecordedEvent> EventFromRow(const PgResult& rows, int row) {
  eventstore::NewEvent e;
  const auto position = static_cast<GlobalPosition>(rows.Int8(row, 0));
  const std::string stream = rows.Text(row, 1);
  const auto version = static_cast<StreamVersion>(rows.Int8(row, 2));
  e.id = rows.Uuid(row, 3);
  e.type = rows.Text(row, 4);
  e.payload = rows.Text(row, 5);
  const int32_t schema_version = rows.Int4(row, 6);
  if (schema_version < 0 || schema_version > UINT16_MAX) {
    return Status::Corruption(fmt::format(
        "events row at position {} ({} version {}): payload_schema_version {} is not 0..65535",
        position, stream, version, schema_version));
  }
  e.payload_schema_version = static_cast<uint16_t>(schema_version);
  const TimeNs recorded_ns = rows.Int8(row, 7);
  e.occurred_ns = rows.Int8(row, 8);
  e.causation_id = rows.Uuid(row, 9);
  e.correlation_id = rows.Uuid(row, 10);
  flatbuffers::FlatBufferBuilder fbb(e.payload.size() + 256);
  eventstore::BuildEnvelope(fbb, stream, version, position, recorded_ns, e);
  auto event = RecordedEvent::FromBytes(
      std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize()));
  if (!event.ok()) {
    return Status::Corruption(fmt::format("events row at position {} ({} version {}): {}", position,
                                          stream, version, event.status().message()));
  }
  return event;
}

StreamMetadata MetadataFromRow(const PgResult& rows, int row, int first,
                               std::optional<StreamVersion>* head) {
  head->reset();
  if (rows.IsNull(row, first)) return StreamMetadata{};
  StreamMetadata meta{rows.Int8(row, first), static_cast<uint64_t>(rows.Int8(row, first + 1)),
                      static_cast<StreamVersion>(rows.Int8(row, first + 2))};
  if (!rows.IsNull(row, first + 3)) *head = static_cast<StreamVersion>(rows.Int8(row, first + 3));
  return meta;
}

Result<ReadPage> PgStoreImpl::ReadStream(std::string_view stream, StreamVersion from,
                                         Direction direction, size_t max_count) {
  DOPPEL_RETURN_IF_ERROR(eventstore::ValidateStreamName(stream));
  auto conn = pool_.Acquire();
  if (!conn.ok()) return conn.status();
  const bool forward = direction == Direction::kForward;
  const auto bound = static_cast<int64_t>(std::min<uint64_t>(from, INT64_MAX));
  auto rows = (*conn)->Query(StreamSql(direction),
                             PgParams().Text(stream).Int8(bound).Int8(Limit(max_count)),
                             fmt::format("reading stream {}", stream));
  if (!rows.ok()) return rows.status();
  ReadPage page;
  page.next = from;
  page.end = true;
  const TimeNs now = Now();
  for (int r = 0; r < rows->rows(); ++r) {
    const auto version = static_cast<StreamVersion>(rows->Int8(r, 2));
    if (page.events.size() >= max_count) {
      page.end = false;
      page.next = version;
      break;
    }
    std::optional<StreamVersion> head;
    const StreamMetadata meta = MetadataFromRow(*rows, r, kEventColumnCount, &head);
    const bool retained = eventstore::Retained(meta, version, rows->Int8(r, 7), now, head);
    if (retained) {
      auto event = EventFromRow(*rows, r);
      if (!event.ok()) return event.status();
      page.events.push_back(std::move(event).value());
    } else if (!forward) {
      return page;  // everything older is hidden too
    }
    page.next = forward ? version + 1 : (version == 0 ? 0 : version - 1);
  }
  // Every row of a full result was hidden or taken: there may be more past it.
  const bool reached_zero = !forward && rows->rows() > 0 && rows->Int8(rows->rows() - 1, 2) == 0;
  if (page.end && rows->rows() == Limit(max_count) && !reached_zero) {
    page.end = false;
  }
  return page;
}

Result<uint64_t> PgStoreImpl::ObserveHorizon(PgConnection& conn, uint64_t* max_visible) {
  // Observations are made in the order they are taken (commit_horizon.h).
  std::lock_guard lock(horizon_mu_);
  auto taken = conn.Query(kObserve, PgParams(), "reading the commit horizon");
  if (!taken.ok()) return taken.status();
  *max_visible = static_cast<uint64_t>(taken->Int8(0, 0));
  auto writing = ParseXidList(taken->Bytes(0, 1));
  if (!writing.ok()) return writing.status();
  return horizon_.Observe(*max_visible, *writing);
}

uint64_t PgStoreImpl::horizon() const {
  std::lock_guard lock(horizon_mu_);
  return horizon_.horizon();
}

Result<ReadPage> PgStoreImpl::ReadAll(GlobalPosition from, size_t max_count, TimeNs until_ns) {
  // Rows past the horizon wait for the transactions that may still fill a gap below them:
  // a few short looks before answering "not the end yet".
  for (int look = 0;; ++look) {
    // A connection per look: none is held while waiting.
    auto conn = pool_.Acquire();
    if (!conn.ok()) return conn.status();
    PgConnection& c = **conn;
    uint64_t max_visible = 0;
    auto horizon = ObserveHorizon(c, &max_visible);
    if (!horizon.ok()) return horizon.status();
    ReadPage page;
    page.next = from;
    page.end = true;
    if (max_count == 0) {
      page.end = max_visible < from;
      return page;
    }
    // Each query runs in a snapshot taken after the observation: every row up to the
    // horizon is in it. Pages of rows hidden by retention are read past, as the log does.
    GlobalPosition cursor = from;
    bool stopped = false;
    while (!stopped && cursor <= *horizon) {
      auto rows = c.Query(AllSql(),
                          PgParams()
                              .Int8(static_cast<int64_t>(std::min<uint64_t>(cursor, INT64_MAX)))
                              .Int8(static_cast<int64_t>(*horizon))
                              .Int8(Limit(max_count)),
                          "reading $all");
      if (!rows.ok()) return rows.status();
      const TimeNs now = Now();
      for (int r = 0; r < rows->rows(); ++r) {
        const auto position = static_cast<GlobalPosition>(rows->Int8(r, 0));
        if (page.events.size() >= max_count) {
          page.end = false;
          page.next = position;
          stopped = true;
          break;
        }
        if (rows->Int8(r, 7) > until_ns) {
          page.next = position;
          stopped = true;
          break;
        }
        page.next = position + 1;
        std::optional<StreamVersion> head;
        const StreamMetadata meta = MetadataFromRow(*rows, r, kEventColumnCount, &head);
        if (eventstore::Retained(meta, rows->Int8(r, 2), rows->Int8(r, 7), now, head)) {
          auto event = EventFromRow(*rows, r);
          if (!event.ok()) return event.status();
          page.events.push_back(std::move(event).value());
        }
      }
      if (stopped) break;
      if (rows->rows() < Limit(max_count)) {
        // Everything up to the horizon was read: the next read starts past it (gaps included).
        page.next = std::max<uint64_t>(page.next, *horizon + 1);
        break;
      }
      cursor = page.next;
    }
    const bool waiting = !stopped && max_visible > *horizon && page.next <= max_visible;
    if (!waiting) return page;
    page.end = false;
    if (!page.events.empty() || look >= 10) return page;
    // An append in flight usually commits within a millisecond: look again soon, then back
    // off (0.25 ms doubling, about a quarter of a second in all).
    std::this_thread::sleep_for(std::chrono::microseconds(250 << look));
  }
}

Result<uint64_t> PgStoreImpl::MaxPosition() {
  auto conn = pool_.Acquire();
  if (!conn.ok()) return conn.status();
  auto max = (*conn)->Query(kMaxPosition, PgParams(), "finding the last position");
  if (!max.ok()) return max.status();
  return static_cast<uint64_t>(max->Int8(0, 0));
}

Result<GlobalPosition> PgStoreImpl::PositionAtTime(TimeNs t) {
  auto conn = pool_.Acquire();
  if (!conn.ok()) return conn.status();
  auto rows = (*conn)->Query(kPositionAtTime, PgParams().Int8(t), "finding a position by time");
  if (!rows.ok()) return rows.status();
  if (rows->rows() == 1) return static_cast<GlobalPosition>(rows->Int8(0, 0));
  auto max = (*conn)->Query(kMaxPosition, PgParams(), "finding the last position");
  if (!max.ok()) return max.status();
  return static_cast<GlobalPosition>(max->Int8(0, 0)) + 1;
}

Result<StreamVersion> PgStoreImpl::StreamHead(std::string_view stream) {
  DOPPEL_RETURN_IF_ERROR(eventstore::ValidateStreamName(stream));
  auto conn = pool_.Acquire();
  if (!conn.ok()) return conn.status();
  auto rows =
      (*conn)->Query(kHead, PgParams().Text(stream), fmt::format("reading the head of {}", stream));
  if (!rows.ok()) return rows.status();
  if (rows->rows() != 1 || rows->IsNull(0, 0)) {
    return Status::NotFound(fmt::format("stream {} has no events", stream));
  }
  return static_cast<StreamVersion>(rows->Int8(0, 0));
}

Result<eventstore::StreamList> PgStoreImpl::ListStreams(std::string_view prefix,
                                                        std::string_view after, size_t max_count) {
  auto conn = pool_.Acquire();
  if (!conn.ok()) return conn.status();
  auto rows = (*conn)->Query(
      kListStreams, PgParams().Text(prefix).Text(after).Int8(Limit(max_count)), "listing streams");
  if (!rows.ok()) return rows.status();
  eventstore::StreamList list;
  list.end = true;
  for (int r = 0; r < rows->rows(); ++r) {
    if (list.streams.size() >= max_count) {
      list.end = false;
      break;
    }
    list.streams.push_back(rows->Text(r, 0));
  }
  return list;
}

}  // namespace doppel::pgstore
