// doppel copy, PostgreSQL -> embedded log, beside its anchor: reading the same rows out of
// PostgreSQL with `COPY events TO STDOUT (FORMAT binary)` over libpq, the fastest way a row
// leaves PostgreSQL. Both on one server of the benchmark's own, in one run, after VACUUM so
// both read the same settled table.
//
//   copy_bench [--events N] [--streams S] [--batch B]
//
// Ours reads the rows in pages at the commit horizon, turns each into a verified envelope,
// and writes each page durably (fsync) into the log with its checkpoint and position map.
#include <fmt/format.h>
#include <libpq-fe.h>

#include <iostream>
#include <string>
#include <vector>

#include "doppel/core/clock.h"
#include "doppel/eventstore/event_log.h"
#include "doppel/migrate/copy_engine.h"
#include "doppel/pgstore/pg_event_store.h"
#include "legacy_rows.h"
#include "pg_server.h"
#include "test_support.h"

namespace {

bool Exec(PGconn* conn, const std::string& sql) {
  PGresult* r = PQexec(conn, sql.c_str());
  const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
  if (!ok) std::cerr << "copy_bench: " << PQerrorMessage(conn);
  PQclear(r);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t events = 200'000;
  int streams = 200;
  size_t batch = 1000;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--events") events = std::stoll(argv[i + 1]);
    if (flag == "--streams") streams = std::stoi(argv[i + 1]);
    if (flag == "--batch") batch = std::stoul(argv[i + 1]);
  }
  auto server = doppel::testing::PgServer::Start();
  if (!server.ok()) {
    std::cerr << "copy_bench: " << server.status().ToString() << "\n";
    return 1;
  }
  auto url = (*server)->CreateDatabase("copy_source");
  if (!url.ok() || !doppel::pgstore::PgEventStore::InitSchema(*url).ok()) return 1;
  PGconn* conn = PQconnectdb(url->c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::cerr << "copy_bench: " << PQerrorMessage(conn);
    return 1;
  }
  // The rows, as a fleet's table would hold them: `streams` robots taking turns.
  const auto event = doppel::testing::JointStateEvent(0.5);
  const int64_t t0 = doppel::WallNowNs();
  if (!Exec(conn, fmt::format("INSERT INTO events (stream, version, event_id, type, payload, "
                              "recorded_ns, occurred_ns) SELECT 'robot-' || (g % {0}), g / {0}, "
                              "gen_random_uuid(), '{1}', decode('{2}', 'hex'), {3} + g, {3} + g "
                              "FROM generate_series(0, {4}) g",
                              streams, event.type, doppel::testing::Hex(event.payload), t0,
                              events - 1)) ||
      !Exec(conn, "VACUUM ANALYZE events")) {
    return 1;
  }

  // The anchor: every row out through COPY, binary.
  int64_t start = doppel::MonotonicNowNs();
  if (!Exec(conn, "COPY events TO STDOUT (FORMAT binary)")) {
    // PQexec returns PGRES_COPY_OUT, which Exec counts as a failure; read the rows below.
  }
  int64_t rows = 0, bytes = 0;
  for (;;) {
    char* buffer = nullptr;
    const int n = PQgetCopyData(conn, &buffer, 0);
    if (n < 0) break;
    ++rows;
    bytes += n;
    PQfreemem(buffer);
  }
  PQclear(PQgetResult(conn));
  const double anchor_s = (doppel::MonotonicNowNs() - start) / 1e9;
  PQfinish(conn);
  // The binary format's header arrives with the first row and its trailer as one more message.
  rows -= 1;

  // Ours: the copy engine into a durable log.
  doppel::testing::TempDir dir;
  auto source = doppel::pgstore::PgEventStore::Open(*url);
  auto log = doppel::eventstore::EventLog::Open(dir.Sub("log"));
  if (!source.ok() || !log.ok()) return 1;
  doppel::migrate::CopyOptions options;
  options.batch = batch;
  options.until_caught_up = true;
  doppel::migrate::CopyEngine engine(**source, **log, options);
  start = doppel::MonotonicNowNs();
  auto copied = engine.Run();
  const double ours_s = (doppel::MonotonicNowNs() - start) / 1e9;

  // Where the time goes: the source's side alone (pages of $all from PostgreSQL) and the
  // destination's alone (the same pages written into a second log).
  std::vector<doppel::eventstore::ReadPage> pages;
  start = doppel::MonotonicNowNs();
  for (doppel::eventstore::GlobalPosition from = 0;;) {
    auto page = (*source)->ReadAll(from, batch);
    if (!page.ok()) return 1;
    from = page->next;
    const bool end = page->end;
    pages.push_back(std::move(page).value());
    if (end) break;
  }
  const double read_s = (doppel::MonotonicNowNs() - start) / 1e9;
  auto second = doppel::eventstore::EventLog::Open(dir.Sub("second"));
  if (!second.ok()) return 1;
  start = doppel::MonotonicNowNs();
  doppel::eventstore::GlobalPosition from = 0;
  for (auto& page : pages) {
    const doppel::eventstore::GlobalPosition next = page.next;
    if (!(*second)->AppendCopied({"bench", from, std::move(page.events), next}).ok()) return 1;
    from = next;
  }
  const double write_s = (doppel::MonotonicNowNs() - start) / 1e9;
  if (!copied.ok()) {
    std::cerr << "copy_bench: " << copied.status().ToString() << "\n";
    return 1;
  }
  const double ours = static_cast<double>(copied->events) / ours_s;
  const double anchor = static_cast<double>(rows) / anchor_s;
  std::cout << fmt::format(
      "| copy {} events of {} streams out of PostgreSQL | events/s | seconds |\n|---|---|---|\n",
      events, streams);
  std::cout << fmt::format(
      "| doppel copy -> embedded log (pages of {}, fsync'd with checkpoint and map) | {:.0f} | "
      "{:.2f} |\n",
      batch, ours, ours_s);
  std::cout << fmt::format(
      "| anchor: COPY events TO STDOUT (FORMAT binary), {} rows, {} MB | "
      "{:.0f} | {:.2f} |\n",
      rows, bytes >> 20, anchor, anchor_s);
  std::cout << fmt::format("| ratio (ours / anchor) | {:.2f}x | |\n",
                           anchor > 0 ? ours / anchor : 0);
  std::cout << fmt::format(
      "| ours, the source's side alone: PgEventStore::ReadAll pages | {:.0f} | {:.2f} |\n",
      events / read_s, read_s);
  std::cout << fmt::format(
      "| ours, the destination's side alone: EventLog::AppendCopied pages | {:.0f} | {:.2f} |\n",
      events / write_s, write_s);
  return copied->events == static_cast<uint64_t>(events) && rows == events ? 0 : 1;
}
