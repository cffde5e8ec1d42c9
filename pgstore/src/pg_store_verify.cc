// PgEventStore::Verify: what `doppel verify` checks over a PostgreSQL store. The schema
// (layout and position default), every row as a verified envelope (payload valid for its
// type), and each stream's versions dense from 0. Ids and (stream, version) pairs are unique
// by the table's constraints, positions by its key.
#include <fmt/format.h>

#include "doppel/core/log.h"
#include "pg_schema.h"
#include "pg_store_impl.h"

namespace doppel::pgstore {

namespace {

constexpr char kComponent[] = "pgstore";
constexpr char kPage[] =
    "SELECT e.position, e.stream, e.version, e.event_id, e.type, e.payload, "
    "e.payload_schema_version, e.recorded_ns, e.occurred_ns, e.causation_id, e.correlation_id "
    "FROM events e WHERE e.position > $1 ORDER BY e.position LIMIT 1000";
constexpr char kCounts[] =
    "SELECT count(*), coalesce(max(position), 0), count(DISTINCT stream) FROM events";
// Streams whose versions are not 0..n-1.
constexpr char kHoles[] =
    "SELECT stream, count(*), min(version), max(version) FROM events GROUP BY stream "
    "HAVING min(version) <> 0 OR max(version) + 1 <> count(*) ORDER BY stream LIMIT 50";

}  // namespace

eventstore::VerifyReport PgStoreImpl::Verify() {
  eventstore::VerifyReport report;
  auto problem = [&report](std::string text) {
    ++report.problem_count;
    if (report.problems.size() < 50) report.problems.push_back(std::move(text));
  };
  auto conn = pool_.Acquire();
  if (!conn.ok()) {
    problem(conn.status().ToString());
    return report;
  }
  PgConnection& c = **conn;
  if (Status schema = CheckSchema(c); !schema.ok()) {
    problem(schema.ToString());
    return report;
  }
  // One snapshot for the whole check.
  auto begun = c.Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "verifying");
  if (!begun.ok()) {
    problem(begun.status().ToString());
    return report;
  }
  auto counts = c.Query(kCounts, PgParams(), "counting events");
  if (!counts.ok()) {
    problem(counts.status().ToString());
    return report;
  }
  const auto total = static_cast<uint64_t>(counts->Int8(0, 0));
  report.next_position = static_cast<uint64_t>(counts->Int8(0, 1)) + 1;
  report.streams = static_cast<uint64_t>(counts->Int8(0, 2));

  log::Progress progress(kComponent, "verify PostgreSQL events", total);
  int64_t after = 0;
  for (;;) {
    auto rows = c.Query(kPage, PgParams().Int8(after), "reading events");
    if (!rows.ok()) {
      problem(rows.status().ToString());
      break;
    }
    for (int r = 0; r < rows->rows(); ++r) {
      ++report.events;
      auto event = EventFromRow(*rows, r);
      if (!event.ok()) problem(event.status().message());
    }
    if (rows->rows() == 0) break;
    after = rows->Int8(rows->rows() - 1, 0);
    progress.Update(report.events);
  }
  progress.Finish(report.events);

  auto holes = c.Query(kHoles, PgParams(), "checking stream versions");
  if (!holes.ok()) {
    problem(holes.status().ToString());
  } else {
    for (int r = 0; r < holes->rows(); ++r) {
      problem(fmt::format("stream {} has {} events with versions {}..{}, not 0..{}",
                          holes->Text(r, 0), holes->Int8(r, 1), holes->Int8(r, 2),
                          holes->Int8(r, 3), holes->Int8(r, 1) - 1));
    }
  }
  (void)c.Exec("COMMIT", "verifying");
  return report;
}

}  // namespace doppel::pgstore
