#include "pg_listener.h"

#include <poll.h>

#include <thread>

namespace doppel::pgstore {

Result<std::unique_ptr<PgListener>> PgListener::Start(const std::string& url) {
  std::unique_ptr<PgListener> listener(new PgListener(url));
  DOPPEL_RETURN_IF_ERROR(listener->Connect());
  return listener;
}

Status PgListener::Connect() {
  auto conn = PgConnection::Connect(url_);
  if (!conn.ok()) return conn.status();
  auto listening = (*conn)->Exec(std::string("LISTEN ") + kNotifyChannel, "listening");
  if (!listening.ok()) return listening.status();
  conn_ = std::move(conn).value();
  return Status::Ok();
}

bool PgListener::Wait(std::chrono::milliseconds timeout) {
  if (conn_ == nullptr || conn_->broken()) {
    conn_.reset();
    if (!Connect().ok()) {
      std::this_thread::sleep_for(timeout);
      return false;
    }
  }
  if (conn_->TakeNotifications() > 0) return true;
  pollfd fd{conn_->socket(), POLLIN, 0};
  if (::poll(&fd, 1, static_cast<int>(timeout.count())) <= 0) return false;
  return conn_->TakeNotifications() > 0;
}

}  // namespace doppel::pgstore
