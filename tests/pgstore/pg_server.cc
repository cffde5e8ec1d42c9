#include "pg_server.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

extern char** environ;

namespace doppel::testing {
namespace {

constexpr char kBin[] = "/usr/lib/postgresql/15/bin";

// argv run as the postgres user through setpriv (no fork in between, so `pdeathsig` binds
// the program itself to this process), output to `log`.
Result<pid_t> Spawn(const std::vector<std::string>& argv, const std::string& log,
                    bool die_with_parent) {
  std::vector<std::string> full = {"/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres",
                                   "--init-groups"};
  if (die_with_parent) full.push_back("--pdeathsig=KILL");
  full.insert(full.end(), argv.begin(), argv.end());
  std::vector<char*> args;
  for (auto& a : full) args.push_back(a.data());
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return Status::Unavailable(fmt::format("cannot run {}: {}", argv[0], strerror(rc)));
  return pid;
}

std::string Tail(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::string all = text.str();
  return all.size() > 2000 ? all.substr(all.size() - 2000) : all;
}

Status Chown(const std::string& path) {
  const passwd* pw = getpwnam("postgres");
  if (pw == nullptr) return Status::Unavailable("no postgres user (install postgresql-15)");
  if (chown(path.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
    return Status::IOError(fmt::format("chown {}: {}", path, strerror(errno)));
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<PgServer>> PgServer::Start() {
  std::unique_ptr<PgServer> server(new PgServer());
  DOPPEL_RETURN_IF_ERROR(Chown(server->dir_.path()));
  DOPPEL_RETURN_IF_ERROR(server->Initdb());
  DOPPEL_RETURN_IF_ERROR(server->StartServer());
  return server;
}

Result<std::unique_ptr<PgServer>> PgServer::StartStandbyOf(const PgServer& primary) {
  std::unique_ptr<PgServer> server(new PgServer());
  DOPPEL_RETURN_IF_ERROR(Chown(server->dir_.path()));
  const std::string log = server->dir_.Sub("basebackup.log");
  auto pid = Spawn({fmt::format("{}/pg_basebackup", kBin), "-h", primary.socket_dir(), "-p", "5432",
                    "-U", "postgres", "-D", server->dir_.Sub("data"), "-R", "-X", "stream",
                    "--no-sync", "--checkpoint=fast"},
                   log, /*die_with_parent=*/true);
  if (!pid.ok()) return pid.status();
  int status = 0;
  waitpid(*pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Status::Unavailable(fmt::format("pg_basebackup failed:\n{}", Tail(log)));
  }
  DOPPEL_RETURN_IF_ERROR(server->StartServer());
  return server;
}

Status PgServer::Initdb() {
  const std::string log = dir_.Sub("initdb.log");
  auto pid = Spawn({fmt::format("{}/initdb", kBin), "-D", dir_.Sub("data"), "-A", "trust", "-E",
                    "UTF8", "--locale=C", "-U", "postgres", "--no-sync", "--no-instructions"},
                   log, /*die_with_parent=*/true);
  if (!pid.ok()) return pid.status();
  int status = 0;
  waitpid(*pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Status::Unavailable(fmt::format("initdb failed:\n{}", Tail(log)));
  }
  return Status::Ok();
}

Status PgServer::StartServer() {
  const std::string log = dir_.Sub("server.log");
  auto pid = Spawn({fmt::format("{}/postgres", kBin), "-D", dir_.Sub("data"), "-k", dir_.path(),
                    "-c", "listen_addresses=", "-p", "5432", "-c", "max_connections=60", "-c",
                    "shared_buffers=32MB", "-c", "fsync=on", "-c", "log_min_messages=warning",
                    // Shared memory segments in the data folder, never in /dev/shm, where a
                    // killed server would leave them.
                    "-c", "dynamic_shared_memory_type=mmap"},
                   log, /*die_with_parent=*/true);
  if (!pid.ok()) return pid.status();
  pid_ = *pid;
  // Up when it answers; a server that exits or takes a minute has failed.
  const std::string conninfo = fmt::format(
      "host={} port=5432 dbname=postgres user=postgres "
      "connect_timeout=2",
      dir_.path());
  for (int i = 0; i < 600; ++i) {
    if (PQping(conninfo.c_str()) == PQPING_OK) return Status::Ok();
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return Status::Unavailable(fmt::format("PostgreSQL exited at start:\n{}", Tail(log)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return Status::Unavailable(fmt::format("PostgreSQL did not start in 60 s:\n{}", Tail(log)));
}

Status PgServer::Crash() {
  if (pid_ <= 0) return Status::Ok();
  kill(pid_, SIGQUIT);  // immediate shutdown
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return Status::Ok();
}

PgServer::~PgServer() {
  if (pid_ > 0) {
    kill(pid_, SIGINT);  // fast shutdown: backends end, no waiting for clients
    int status = 0;
    for (int i = 0; i < 100 && waitpid(pid_, &status, WNOHANG) == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (waitpid(pid_, &status, WNOHANG) == 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
    }
  }
}

std::string PgServer::Url(const std::string& db) const {
  return fmt::format("postgresql:///{}?host={}&port=5432&user=postgres", db, dir_.path());
}

Status PgServer::Run(const std::string& db, const std::string& sql) const {
  PGconn* conn = PQconnectdb(
      fmt::format("host={} port=5432 dbname={} user=postgres", dir_.path(), db).c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = PQerrorMessage(conn);
    PQfinish(conn);
    return Status::Unavailable(message);
  }
  PGresult* result = PQexec(conn, sql.c_str());
  const ExecStatusType status = PQresultStatus(result);
  Status s = (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)
                 ? Status::Ok()
                 : Status::InvalidArgument(PQresultErrorMessage(result));
  PQclear(result);
  PQfinish(conn);
  return s;
}

Result<std::string> PgServer::CreateDatabase(const std::string& db) {
  DOPPEL_RETURN_IF_ERROR(
      Run("postgres", fmt::format("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'", db)));
  return Url(db);
}

PgServer& SharedPgServer() {
  static const std::unique_ptr<PgServer> server = [] {
    auto started = PgServer::Start();
    if (!started.ok()) {
      fmt::print(stderr, "cannot start PostgreSQL: {}\n", started.status().ToString());
      std::abort();
    }
    return std::move(started).value();
  }();
  return *server;
}

}  // namespace doppel::testing
