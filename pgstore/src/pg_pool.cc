#include "pg_pool.h"

namespace doppel::pgstore {

PgPool::Lease::~Lease() {
  if (pool_ != nullptr && conn_ != nullptr) pool_->Release(std::move(conn_));
}

Result<PgPool::Lease> PgPool::Acquire() {
  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !idle_.empty() || open_ < max_; });
    if (!idle_.empty()) {
      auto conn = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(conn));
    }
    ++open_;
  }
  auto conn = PgConnection::Connect(url_);
  if (!conn.ok()) {
    std::lock_guard lock(mu_);
    --open_;
    cv_.notify_one();
    return conn.status();
  }
  return Lease(this, std::move(conn).value());
}

void PgPool::Release(std::unique_ptr<PgConnection> conn) {
  std::lock_guard lock(mu_);
  if (conn->broken() || !conn->idle()) {
    --open_;  // closed as it goes out of scope (a transaction left open ends with it)
  } else {
    idle_.push_back(std::move(conn));
  }
  cv_.notify_one();
}

}  // namespace doppel::pgstore
