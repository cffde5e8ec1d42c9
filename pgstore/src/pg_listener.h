// A connection that LISTENs on doppel's channel and waits for a notification (or a timeout).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "pg_connection.h"

namespace doppel::pgstore {

inline constexpr char kNotifyChannel[] = "doppel_events";

class PgListener {
 public:
  static Result<std::unique_ptr<PgListener>> Start(const std::string& url);
  // True when a notification arrived within `timeout` (all pending ones are taken); false on
  // timeout or a lost connection (reconnected on the next call).
  bool Wait(std::chrono::milliseconds timeout);

 private:
  explicit PgListener(std::string url) : url_(std::move(url)) {}
  Status Connect();
  std::string url_;
  std::unique_ptr<PgConnection> conn_;
};

}  // namespace doppel::pgstore
