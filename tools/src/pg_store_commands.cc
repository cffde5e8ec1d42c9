// doppel pg-store init: prepares a PostgreSQL database as a doppel store (the events table in
// the layout a fleet would already keep, doppel's own tables beside it). Idempotent; an
// events table of another layout is refused, named, and left as it is.
#include <fmt/format.h>

#include <iostream>
#include <memory>

#include "command.h"
#include "doppel/pgstore/pg_event_store.h"
#include "store_access.h"

namespace doppel::tools {
namespace {

int RunInit(const std::string& url) {
  if (!IsPostgresUrl(url)) {
    return Fail(Status::InvalidArgument(
        fmt::format("--url wants a postgres:// or postgresql:// URL, not '{}'", url)));
  }
  if (Status s = pgstore::PgEventStore::InitSchema(url); !s.ok()) return Fail(s);
  auto store = pgstore::PgEventStore::Open(url);
  if (!store.ok()) return Fail(store.status());
  std::cout << "pg-store: doppel's tables are ready (events, doppel_snapshots, "
               "doppel_snapshot_history, doppel_stream_metadata, doppel_copy_checkpoints, "
               "doppel_copy_map, doppel_schema)"
            << std::endl;
  return kExitOk;
}

}  // namespace

void AddPgStoreCommands(CLI::App& app) {
  auto* pg = app.add_subcommand("pg-store", "PostgreSQL as a doppel store");
  pg->require_subcommand(1);
  auto url = std::make_shared<std::string>();
  auto* init = pg->add_subcommand(
      "init", "Create doppel's tables in a database where missing (safe to run again)");
  init->add_option("--url", *url, "The database: postgres://USER@HOST:PORT/DB?...")->required();
  init->callback([url] { ExitCode() = RunInit(*url); });
}

}  // namespace doppel::tools
