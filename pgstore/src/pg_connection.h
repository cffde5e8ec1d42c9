// One libpq connection: statements with binary parameters and results, each prepared once
// per connection, and PostgreSQL's errors as doppel's Status (by SQLSTATE). The only file
// besides its .cc that sees libpq.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "doppel/core/event_id.h"
#include "doppel/core/status.h"

namespace doppel::pgstore {

// Type OIDs (pg_type.dat) of what doppel sends and reads.
inline constexpr Oid kBoolOid = 16;
inline constexpr Oid kByteaOid = 17;
inline constexpr Oid kInt8Oid = 20;
inline constexpr Oid kInt4Oid = 23;
inline constexpr Oid kTextOid = 25;
inline constexpr Oid kUuidOid = 2950;
inline constexpr Oid kInt4ArrayOid = 1007;
inline constexpr Oid kTextArrayOid = 1009;
inline constexpr Oid kByteaArrayOid = 1001;
inline constexpr Oid kInt8ArrayOid = 1016;
inline constexpr Oid kUuidArrayOid = 2951;

// A statement's parameters in the binary format.
class PgParams {
 public:
  PgParams& Int8(int64_t v);
  PgParams& Int4(int32_t v);
  PgParams& Text(std::string_view v);
  PgParams& Bytea(std::string_view v);
  PgParams& Uuid(const EventId& id);  // the nil id is sent as NULL
  // A one-dimensional array of `element`s, each already in its binary form (nullopt: NULL).
  PgParams& Array(Oid array_type, Oid element,
                  const std::vector<std::optional<std::string>>& items);

  int count() const { return static_cast<int>(types_.size()); }
  const Oid* types() const { return types_.data(); }
  const char* const* values() const;
  const int* lengths() const { return lengths_.data(); }
  const int* formats() const { return formats_.data(); }

 private:
  PgParams& Add(Oid type, std::optional<std::string> bytes);
  std::vector<Oid> types_;
  std::vector<std::optional<std::string>> bytes_;
  std::vector<int> lengths_;
  std::vector<int> formats_;
  mutable std::vector<const char*> values_;
};

// Binary forms of single values, for arrays.
std::string Int8Bytes(int64_t v);
std::string Int4Bytes(int32_t v);
std::optional<std::string> UuidBytes(const EventId& id);  // nil: NULL

// A result, binary unless it came from Exec.
class PgResult {
 public:
  explicit PgResult(PGresult* result) : result_(result, &PQclear) {}
  int rows() const { return PQntuples(result_.get()); }
  bool IsNull(int row, int col) const { return PQgetisnull(result_.get(), row, col) != 0; }
  std::string_view Bytes(int row, int col) const;
  int64_t Int8(int row, int col) const;
  int32_t Int4(int row, int col) const;
  EventId Uuid(int row, int col) const;  // NULL: the nil id
  std::string Text(int row, int col) const { return std::string(Bytes(row, col)); }

 private:
  std::unique_ptr<PGresult, void (*)(PGresult*)> result_;
};

class PgConnection {
 public:
  // `url`: a postgres:// URL or libpq connection string. doppel's own settings (timeouts,
  // application name, keepalives) are added unless the URL sets them.
  static Result<std::unique_ptr<PgConnection>> Connect(const std::string& url);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // A statement without parameters, text results (BEGIN, COMMIT, DDL, SHOW).
  Result<PgResult> Exec(const std::string& sql, std::string_view what);
  // A statement with binary parameters and results; prepared on first use.
  Result<PgResult> Query(const std::string& sql, const PgParams& params, std::string_view what);
  // The prepared statement for `sql`, made now if it is new (so that sending it later cannot
  // fail before it went out).
  Status Prepare(const std::string& sql, const PgParams& params, std::string_view what);
  // Several statements sent at once and answered together (libpq's pipeline mode): one round
  // trip. Each gets its own result; after the first error the rest are skipped (their result
  // says so) and last_sqlstate() keeps the first error's state.
  struct Step {
    std::string sql;
    PgParams params;
  };
  std::vector<Result<PgResult>> Pipeline(const std::vector<Step>& steps, std::string_view what);

  // Whether the connection is gone; a broken connection is never reused.
  bool broken() const;
  // Reads what the server sent and counts (and drops) the notifications in it.
  int TakeNotifications() { return static_cast<int>(TakeNotificationPayloads().size()); }
  // The same, with each notification's payload.
  std::vector<std::string> TakeNotificationPayloads();
  // The socket, to wait on for a notification.
  int socket() const { return PQsocket(conn_); }
  // Whether it is outside any transaction (a connection left inside one is not reused).
  bool idle() const;
  // Where it is connected, without the password: "host:port/database".
  std::string where() const;
  // The SQLSTATE of the last failed statement ("" after a success; "08006" when the
  // connection broke).
  const std::string& last_sqlstate() const { return last_sqlstate_; }

 private:
  explicit PgConnection(PGconn* conn) : conn_(conn) {}
  Result<PgResult> Check(PGresult* result, std::string_view what);
  // The prepared statement's name for `sql` (prepared now if it is new).
  Result<std::string> Prepared(const std::string& sql, const PgParams& params,
                               std::string_view what);
  PGconn* conn_;
  std::string last_sqlstate_;
  bool poisoned_ = false;  // out of step with the server: never used again
  std::unordered_map<std::string, std::string> prepared_;  // SQL -> statement name
};

// The kind of error a SQLSTATE stands for (NotFound is never returned).
Status::Code CodeOfSqlState(std::string_view sqlstate);
// SQLSTATEs after which the whole transaction is run again: unique violation (a concurrent
// append took the version or the id), serialization failure, deadlock.
bool IsRetryableSqlState(std::string_view sqlstate);

}  // namespace doppel::pgstore
