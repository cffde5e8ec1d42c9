#include "pg_connection.h"

#include <fmt/format.h>

#include <cstring>

namespace doppel::pgstore {
namespace {

void PutBig32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

uint64_t GetBig(std::string_view bytes) {
  uint64_t v = 0;
  for (char c : bytes) v = (v << 8) | static_cast<uint8_t>(c);
  return v;
}

// A libpq message without its trailing newline.
std::string Trimmed(const char* message) {
  std::string text = message == nullptr ? std::string() : std::string(message);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

}  // namespace

std::string Int8Bytes(int64_t v) {
  std::string out;
  const auto u = static_cast<uint64_t>(v);
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(u >> shift));
  return out;
}

std::string Int4Bytes(int32_t v) {
  std::string out;
  PutBig32(out, static_cast<uint32_t>(v));
  return out;
}

std::optional<std::string> UuidBytes(const EventId& id) {
  if (id.is_nil()) return std::nullopt;
  const auto bytes = id.ToBytes();
  return std::string(bytes.data(), bytes.size());
}

PgParams& PgParams::Add(Oid type, std::optional<std::string> bytes) {
  types_.push_back(type);
  lengths_.push_back(bytes ? static_cast<int>(bytes->size()) : 0);
  formats_.push_back(1);
  bytes_.push_back(std::move(bytes));
  return *this;
}

PgParams& PgParams::Int8(int64_t v) { return Add(kInt8Oid, Int8Bytes(v)); }
PgParams& PgParams::Int4(int32_t v) { return Add(kInt4Oid, Int4Bytes(v)); }
PgParams& PgParams::Text(std::string_view v) { return Add(kTextOid, std::string(v)); }
PgParams& PgParams::Bytea(std::string_view v) { return Add(kByteaOid, std::string(v)); }
PgParams& PgParams::Uuid(const EventId& id) { return Add(kUuidOid, UuidBytes(id)); }

PgParams& PgParams::Array(Oid array_type, Oid element,
                          const std::vector<std::optional<std::string>>& items) {
  // array_send: ndim, has-nulls flag, element type, then per dimension its length and lower
  // bound, then each element as its length (-1: NULL) and bytes.
  std::string out;
  bool nulls = false;
  for (const auto& item : items) nulls |= !item.has_value();
  PutBig32(out, 1);
  PutBig32(out, nulls ? 1 : 0);
  PutBig32(out, element);
  PutBig32(out, static_cast<uint32_t>(items.size()));
  PutBig32(out, 1);
  for (const auto& item : items) {
    if (!item) {
      PutBig32(out, 0xFFFFFFFFu);
      continue;
    }
    PutBig32(out, static_cast<uint32_t>(item->size()));
    out += *item;
  }
  return Add(array_type, std::move(out));
}

const char* const* PgParams::values() const {
  values_.clear();
  for (const auto& b : bytes_) values_.push_back(b ? b->data() : nullptr);
  return values_.data();
}

std::string_view PgResult::Bytes(int row, int col) const {
  return std::string_view(PQgetvalue(result_.get(), row, col),
                          static_cast<size_t>(PQgetlength(result_.get(), row, col)));
}

// Every query selects its columns with the types doppel reads them as; a wrong width would be
// a bug in a query, never data, so it stops the process instead of reading a wrong number.
int64_t PgResult::Int8(int row, int col) const {
  const std::string_view b = Bytes(row, col);
  if (b.size() != 8) std::abort();
  return static_cast<int64_t>(GetBig(b));
}

int32_t PgResult::Int4(int row, int col) const {
  const std::string_view b = Bytes(row, col);
  if (b.size() != 4) std::abort();
  return static_cast<int32_t>(static_cast<uint32_t>(GetBig(b)));
}

EventId PgResult::Uuid(int row, int col) const {
  if (IsNull(row, col)) return EventId();
  return EventId::FromBytes(Bytes(row, col));
}

Result<std::unique_ptr<PgConnection>> PgConnection::Connect(const std::string& url) {
  // Later keywords override earlier ones only where the URL is silent: the URL goes last and
  // expand_dbname expands it in place.
  const char* keys[] = {"connect_timeout", "application_name", "keepalives", "keepalives_idle",
                        "options",         "dbname",           nullptr};
  const char* values[] = {"10",
                          "doppel",
                          "1",
                          "30",
                          "-c statement_timeout=30s -c lock_timeout=10s "
                          "-c idle_in_transaction_session_timeout=60s",
                          url.c_str(),
                          nullptr};
  PGconn* conn = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (conn == nullptr) return Status::Unavailable("cannot allocate a PostgreSQL connection");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = Trimmed(PQerrorMessage(conn));
    PQfinish(conn);
    // libpq's message names host and port and never the password.
    return Status::Unavailable(fmt::format("cannot connect to PostgreSQL: {}", message));
  }
  // Notices ("relation already exists, skipping") are not errors; libpq would print them.
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);
  return std::unique_ptr<PgConnection>(new PgConnection(conn));
}

PgConnection::~PgConnection() { PQfinish(conn_); }

bool PgConnection::broken() const { return poisoned_ || PQstatus(conn_) != CONNECTION_OK; }

Status PgConnection::Prepare(const std::string& sql, const PgParams& params,
                             std::string_view what) {
  auto name = Prepared(sql, params, what);
  return name.ok() ? Status::Ok() : name.status();
}

std::vector<std::string> PgConnection::TakeNotificationPayloads() {
  std::vector<std::string> payloads;
  if (PQconsumeInput(conn_) != 1) return payloads;
  while (PGnotify* notify = PQnotifies(conn_)) {
    payloads.emplace_back(notify->extra == nullptr ? "" : notify->extra);
    PQfreemem(notify);
  }
  return payloads;
}

bool PgConnection::idle() const { return PQtransactionStatus(conn_) == PQTRANS_IDLE; }

std::string PgConnection::where() const {
  const char* host = PQhost(conn_);
  const char* port = PQport(conn_);
  const char* db = PQdb(conn_);
  return fmt::format("{}:{}/{}", host ? host : "?", port ? port : "?", db ? db : "?");
}

Result<PgResult> PgConnection::Check(PGresult* raw, std::string_view what) {
  PgResult result(raw);
  const ExecStatusType status = raw == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(raw);
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
    last_sqlstate_.clear();
    return result;
  }
  const char* state = raw == nullptr ? nullptr : PQresultErrorField(raw, PG_DIAG_SQLSTATE);
  if (state == nullptr || broken()) {
    last_sqlstate_ = "08006";  // connection failure
    return Status::Unavailable(fmt::format("{}: the connection to PostgreSQL at {} was lost: {}",
                                           what, where(), Trimmed(PQerrorMessage(conn_))));
  }
  last_sqlstate_ = state;
  const char* primary = PQresultErrorField(raw, PG_DIAG_MESSAGE_PRIMARY);
  return Status::WithCode(
      CodeOfSqlState(last_sqlstate_),
      fmt::format("{}: PostgreSQL says: {} (SQLSTATE {})", what, Trimmed(primary), last_sqlstate_));
}

Result<PgResult> PgConnection::Exec(const std::string& sql, std::string_view what) {
  return Check(PQexec(conn_, sql.c_str()), what);
}

Result<std::string> PgConnection::Prepared(const std::string& sql, const PgParams& params,
                                           std::string_view what) {
  auto it = prepared_.find(sql);
  if (it != prepared_.end()) return it->second;
  std::string name = fmt::format("doppel_{}", prepared_.size());
  auto prepared =
      Check(PQprepare(conn_, name.c_str(), sql.c_str(), params.count(), params.types()), what);
  if (!prepared.ok()) return prepared.status();
  prepared_.emplace(sql, name);
  return name;
}

Result<PgResult> PgConnection::Query(const std::string& sql, const PgParams& params,
                                     std::string_view what) {
  auto name = Prepared(sql, params, what);
  if (!name.ok()) return name.status();
  return Check(PQexecPrepared(conn_, name->c_str(), params.count(), params.values(),
                              params.lengths(), params.formats(), /*resultFormat=*/1),
               what);
}

std::vector<Result<PgResult>> PgConnection::Pipeline(const std::vector<Step>& steps,
                                                     std::string_view what) {
  std::vector<Result<PgResult>> results;
  const auto lost = [&](size_t from) {
    last_sqlstate_ = "08006";
    const Status s =
        Status::Unavailable(fmt::format("{}: the connection to PostgreSQL at {} was lost: {}", what,
                                        where(), Trimmed(PQerrorMessage(conn_))));
    for (size_t i = from; i < steps.size(); ++i) results.emplace_back(s);
  };
  std::vector<std::string> names;
  for (const Step& step : steps) {
    auto name = Prepared(step.sql, step.params, what);
    if (!name.ok()) {
      for (size_t i = 0; i < steps.size(); ++i) results.emplace_back(name.status());
      return results;
    }
    names.push_back(std::move(name).value());
  }
  if (PQenterPipelineMode(conn_) != 1) {
    lost(0);
    return results;
  }
  for (size_t i = 0; i < steps.size(); ++i) {
    const PgParams& p = steps[i].params;
    if (PQsendQueryPrepared(conn_, names[i].c_str(), p.count(), p.values(), p.lengths(),
                            p.formats(), /*resultFormat=*/1) != 1) {
      PQexitPipelineMode(conn_);
      lost(0);
      return results;
    }
  }
  if (PQpipelineSync(conn_) != 1) {
    lost(0);
    return results;
  }
  std::string first_error;
  for (size_t i = 0; i < steps.size(); ++i) {
    PGresult* raw = PQgetResult(conn_);
    if (raw == nullptr) {
      lost(i);
      return results;
    }
    if (PQresultStatus(raw) == PGRES_PIPELINE_ABORTED) {
      PQclear(raw);
      results.emplace_back(
          Status::Unavailable(fmt::format("{}: skipped after an earlier statement failed", what)));
    } else {
      results.push_back(Check(raw, what));
      if (!results.back().ok() && first_error.empty()) first_error = last_sqlstate_;
    }
    // Each statement's results end with a null.
    while (PGresult* extra = PQgetResult(conn_)) PQclear(extra);
  }
  // The sync point ends the pipeline.
  PGresult* sync = PQgetResult(conn_);
  const bool synced = sync != nullptr && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
  if (sync != nullptr) PQclear(sync);
  if (!synced || PQexitPipelineMode(conn_) != 1) {
    // Out of step with the server: whatever it did is unknown, and the connection is done.
    poisoned_ = true;
    results.clear();
    lost(0);
    return results;
  }
  last_sqlstate_ = first_error;
  return results;
}

Status::Code CodeOfSqlState(std::string_view s) {
  if (s.starts_with("08") || s.starts_with("57P") || s == "57014" || s == "53300" || s == "55P03") {
    return Status::Code::kUnavailable;  // connection, shutdown, cancel, too many, lock timeout
  }
  if (s.starts_with("53") || s.starts_with("58")) return Status::Code::kIOError;  // disk, system
  if (s == "XX001" || s == "XX002") return Status::Code::kCorruption;  // damaged data or index
  if (s == "42P01" || s == "42703" || s == "42883") {
    return Status::Code::kNotADoppelLog;  // no such table, column or function
  }
  if (s.starts_with("22") || s.starts_with("23")) return Status::Code::kInvalidArgument;
  return Status::Code::kUnavailable;
}

bool IsRetryableSqlState(std::string_view s) {
  return s == "23505" || s == "40001" || s == "40P01";
}

}  // namespace doppel::pgstore
