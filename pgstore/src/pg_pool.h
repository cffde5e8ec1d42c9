// A bounded pool of connections to one database. A caller leases a connection for one
// operation; a connection that broke is dropped instead of returned, and the next lease opens
// a new one, so a restarted server is reached again without anyone reconnecting by hand.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "pg_connection.h"

namespace doppel::pgstore {

class PgPool {
 public:
  class Lease {
   public:
    Lease(PgPool* pool, std::unique_ptr<PgConnection> conn) : pool_(pool), conn_(std::move(conn)) {}
    Lease(Lease&&) = default;
    ~Lease();
    PgConnection& operator*() { return *conn_; }
    PgConnection* operator->() { return conn_.get(); }

   private:
    PgPool* pool_;
    std::unique_ptr<PgConnection> conn_;
  };

  PgPool(std::string url, size_t max_connections) : url_(std::move(url)), max_(max_connections) {}
  // Waits while every connection is leased; Unavailable when a new one cannot be opened.
  Result<Lease> Acquire();

 private:
  void Release(std::unique_ptr<PgConnection> conn);
  const std::string url_;
  const size_t max_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<PgConnection>> idle_;
  size_t open_ = 0;
};

}  // namespace doppel::pgstore
