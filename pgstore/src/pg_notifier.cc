#include "pg_notifier.h"

#include "pg_listener.h"

namespace doppel::pgstore {

PgNotifier::PgNotifier(std::string url) : url_(std::move(url)) {
  thread_ = std::thread([this] { Run(); });
}

PgNotifier::~PgNotifier() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void PgNotifier::Poke() {
  {
    std::lock_guard lock(mu_);
    if (poked_) return;
    poked_ = true;
  }
  cv_.notify_one();
}

void PgNotifier::Run() {
  std::unique_ptr<PgConnection> conn;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || poked_; });
      if (stopping_) return;
      poked_ = false;
    }
    if (conn == nullptr || conn->broken()) {
      auto connected = PgConnection::Connect(url_);
      if (!connected.ok()) continue;  // subscribers still read on their timer
      conn = std::move(connected).value();
      // The notification carries nothing durable: it need not wait for a disk.
      (void)conn->Exec("SET synchronous_commit = off", "notifying");
    }
    (void)conn->Exec(std::string("NOTIFY ") + kNotifyChannel, "notifying subscribers");
  }
}

}  // namespace doppel::pgstore
