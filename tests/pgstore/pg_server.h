// A PostgreSQL 15 server of the test's own: initdb in a temporary folder, the server run as
// the `postgres` user (it refuses root) and reachable only on a unix socket in that folder.
// The server is the test process's child with a parent-death signal, so it dies with the test
// whatever happens to it, and the folder goes with the PgServer.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "doppel/core/status.h"
#include "test_support.h"

namespace doppel::testing {

class PgServer {
 public:
  // Creates a cluster and starts its server; Unavailable (with the log's tail) if it cannot.
  static Result<std::unique_ptr<PgServer>> Start();
  // A hot standby of `primary` (pg_basebackup, then streaming replication), read-only.
  static Result<std::unique_ptr<PgServer>> StartStandbyOf(const PgServer& primary);
  ~PgServer();
  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;

  // The folder of the server's unix socket.
  const std::string& socket_dir() const { return dir_.path(); }
  // A libpq URL of database `db` on this server.
  std::string Url(const std::string& db) const;
  // Creates an empty UTF8 database and returns its URL.
  Result<std::string> CreateDatabase(const std::string& db);
  // Runs SQL statements on database `db` (text protocol); the error when one fails.
  Status Run(const std::string& db, const std::string& sql) const;

  // Immediate shutdown (pg_ctl stop -m immediate: no checkpoint, crash recovery at the next
  // start), then a new server on the same data.
  Status Crash();
  Status StartServer();
  bool running() const { return pid_ > 0; }

 private:
  PgServer() = default;
  Status Initdb();
  TempDir dir_;
  pid_t pid_ = -1;
};

// One server for the whole test binary, started at the first call (a failure to start aborts
// with the reason) and stopped at exit. Tests take a database each.
PgServer& SharedPgServer();

}  // namespace doppel::testing
