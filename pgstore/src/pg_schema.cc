#include "pg_schema.h"

#include <fmt/format.h>

#include <map>
#include <string>

namespace doppel::pgstore {
namespace {

// The events table's columns and their types as information_schema names them.
const std::vector<std::pair<std::string, std::string>>& EventColumns() {
  static const auto* const kColumns = new std::vector<std::pair<std::string, std::string>>{
      {"position", "bigint"},
      {"stream", "text"},
      {"version", "bigint"},
      {"event_id", "uuid"},
      {"type", "text"},
      {"payload", "bytea"},
      {"payload_schema_version", "integer"},
      {"recorded_ns", "bigint"},
      {"occurred_ns", "bigint"},
      {"causation_id", "uuid"},
      {"correlation_id", "uuid"},
  };
  return *kColumns;
}

// Positions are nanosecond-free integers; times are ns since the epoch as bigint (timestamptz
// keeps microseconds, which a verbatim copy cannot afford). Uuid columns hold NULL for "none".
constexpr char kCreate[] = R"sql(
CREATE TABLE IF NOT EXISTS events (
  position bigserial PRIMARY KEY,
  stream text COLLATE "C" NOT NULL,
  version bigint NOT NULL CHECK (version >= 0),
  event_id uuid NOT NULL CONSTRAINT events_event_id_key UNIQUE,
  type text NOT NULL,
  payload bytea NOT NULL,
  payload_schema_version integer NOT NULL DEFAULT 1,
  recorded_ns bigint NOT NULL,
  occurred_ns bigint NOT NULL DEFAULT 0,
  causation_id uuid,
  correlation_id uuid,
  CONSTRAINT events_stream_version_key UNIQUE (stream, version));
CREATE INDEX IF NOT EXISTS events_recorded_idx ON events (recorded_ns, position);
CREATE OR REPLACE FUNCTION events_next_position() RETURNS bigint LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
  -- The transaction id first, then the position: see doppel's commit horizon.
  PERFORM pg_current_xact_id();
  RETURN nextval(pg_get_serial_sequence('events', 'position'));
END $$;
ALTER TABLE events ALTER COLUMN position SET DEFAULT events_next_position();
CREATE TABLE IF NOT EXISTS doppel_snapshots (
  stream text COLLATE "C" PRIMARY KEY,
  version bigint NOT NULL,
  schema_version bigint NOT NULL,
  recorded_ns bigint NOT NULL,
  state bytea NOT NULL);
CREATE TABLE IF NOT EXISTS doppel_snapshot_history (
  stream text COLLATE "C" NOT NULL,
  covered_ns bigint NOT NULL,
  version bigint NOT NULL,
  schema_version bigint NOT NULL,
  recorded_ns bigint NOT NULL,
  state bytea NOT NULL,
  PRIMARY KEY (stream, covered_ns, version));
CREATE TABLE IF NOT EXISTS doppel_stream_metadata (
  stream text COLLATE "C" PRIMARY KEY,
  max_age_ns bigint NOT NULL,
  max_count bigint NOT NULL,
  truncate_before bigint NOT NULL);
CREATE TABLE IF NOT EXISTS doppel_copy_checkpoints (
  name text COLLATE "C" PRIMARY KEY,
  source_next bigint NOT NULL,
  events bigint NOT NULL);
CREATE TABLE IF NOT EXISTS doppel_copy_map (
  name text COLLATE "C" NOT NULL,
  source_position bigint NOT NULL,
  position bigint NOT NULL,
  PRIMARY KEY (name, source_position));
CREATE TABLE IF NOT EXISTS doppel_schema (version integer PRIMARY KEY);
)sql";

// What differs between the events table and doppel's layout ("" when it matches, or when
// there is no table yet and `missing_ok`).
Result<std::string> EventsTableDifference(PgConnection& conn, bool missing_ok) {
  auto columns = conn.Exec(
      "SELECT column_name, data_type FROM information_schema.columns "
      "WHERE table_schema = current_schema() AND table_name = 'events'",
      "reading the events table's columns");
  if (!columns.ok()) return columns.status();
  if (columns->rows() == 0) {
    return missing_ok ? std::string()
                      : std::string(
                            "the database has no events table (doppel pg-store init "
                            "creates one)");
  }
  std::map<std::string, std::string> found;
  for (int r = 0; r < columns->rows(); ++r) found[columns->Text(r, 0)] = columns->Text(r, 1);
  for (const auto& [name, type] : EventColumns()) {
    auto it = found.find(name);
    if (it == found.end()) return fmt::format("table events has no column {} ({})", name, type);
    if (it->second != type) {
      return fmt::format("column events.{} is {}, doppel needs {}", name, it->second, type);
    }
  }
  return std::string();
}

}  // namespace

Status CreateSchema(PgConnection& conn) {
  auto begun = conn.Exec("BEGIN", "creating doppel's tables");
  if (!begun.ok()) return begun.status();
  auto run = [&]() -> Status {
    // Two inits at once must not both create.
    auto locked =
        conn.Exec("SELECT pg_advisory_xact_lock(7450221606364751943)", "locking the schema");
    if (!locked.ok()) return locked.status();
    auto difference = EventsTableDifference(conn, /*missing_ok=*/true);
    if (!difference.ok()) return difference.status();
    if (!difference->empty()) {
      return Status::NotADoppelLog(fmt::format(
          "{}: doppel leaves this table as it is; point --store at another database or schema",
          *difference));
    }
    auto created = conn.Exec(kCreate, "creating doppel's tables");
    if (!created.ok()) return created.status();
    auto version = conn.Exec(fmt::format("INSERT INTO doppel_schema VALUES ({}) ON CONFLICT DO "
                                         "NOTHING",
                                         kSchemaVersion),
                             "recording the schema version");
    if (!version.ok()) return version.status();
    auto committed = conn.Exec("COMMIT", "creating doppel's tables");
    return committed.ok() ? Status::Ok() : committed.status();
  };
  Status s = run();
  if (!s.ok()) (void)conn.Exec("ROLLBACK", "creating doppel's tables");
  return s;
}

Status CheckSchema(PgConnection& conn) {
  auto difference = EventsTableDifference(conn, /*missing_ok=*/false);
  if (!difference.ok()) return difference.status();
  if (!difference->empty()) return Status::NotADoppelLog(*difference);
  auto table = conn.Exec("SELECT to_regclass('doppel_schema')", "looking for doppel's tables");
  if (!table.ok()) return table.status();
  if (table->rows() != 1 || table->IsNull(0, 0)) {
    return Status::NotADoppelLog(
        "the events table is there but doppel's own tables are not (doppel pg-store init adds "
        "them)");
  }
  auto version = conn.Exec("SELECT max(version) FROM doppel_schema", "reading the schema version");
  if (!version.ok()) return version.status();
  if (version->Text(0, 0) != std::to_string(kSchemaVersion)) {
    return Status::NotADoppelLog(
        fmt::format("doppel schema version {} here, this doppel needs {} (doppel pg-store init "
                    "adds what is missing)",
                    version->Text(0, 0), kSchemaVersion));
  }
  // What the columns do not say: the keys that make ids and versions unique, byte order for
  // stream names (prefix scans), and positions handed out one at a time in order.
  auto rules = conn.Exec(
      "SELECT (SELECT coalesce(collation_name, '') FROM information_schema.columns WHERE "
      "table_schema = current_schema() AND table_name = 'events' AND column_name = 'stream'), "
      "EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = 'events'::regclass AND i.indisunique "
      "AND i.indnatts = 1 AND (SELECT attname FROM pg_attribute WHERE attrelid = i.indrelid AND "
      "attnum = i.indkey[0]) = 'event_id'), "
      "EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = 'events'::regclass AND i.indisunique "
      "AND i.indnatts = 2 AND (SELECT attname FROM pg_attribute WHERE attrelid = i.indrelid AND "
      "attnum = i.indkey[0]) = 'stream' AND (SELECT attname FROM pg_attribute WHERE attrelid = "
      "i.indrelid AND attnum = i.indkey[1]) = 'version'), "
      "(SELECT seqcache FROM pg_sequence WHERE seqrelid = "
      "pg_get_serial_sequence('events', 'position')::regclass)",
      "checking the events table's keys");
  if (!rules.ok()) return rules.status();
  if (rules->Text(0, 0) != "C") {
    return Status::NotADoppelLog(
        "events.stream must sort bytewise: ALTER TABLE events ALTER COLUMN stream TYPE text "
        "COLLATE \"C\"");
  }
  if (rules->Text(0, 1) != "t") {
    return Status::NotADoppelLog("events.event_id is not UNIQUE: event ids could be stored twice");
  }
  if (rules->Text(0, 2) != "t") {
    return Status::NotADoppelLog(
        "events has no UNIQUE (stream, version): two events could take one version");
  }
  if (rules->IsNull(0, 3) || rules->Text(0, 3) != "1") {
    return Status::NotADoppelLog(
        "events.position needs its own sequence with CACHE 1 (a cache hands positions out of "
        "order between connections)");
  }
  // The position default must take the transaction id first, or tails could skip rows.
  auto position_default = conn.Exec(
      "SELECT column_default FROM information_schema.columns WHERE table_schema = "
      "current_schema() AND table_name = 'events' AND column_name = 'position'",
      "reading the position default");
  if (!position_default.ok()) return position_default.status();
  if (position_default->rows() != 1 ||
      position_default->Text(0, 0).find("events_next_position()") == std::string::npos) {
    return Status::NotADoppelLog(
        "events.position does not default to events_next_position() (doppel pg-store init sets "
        "it; without it a tail could skip a row committed late)");
  }
  return Status::Ok();
}

}  // namespace doppel::pgstore
