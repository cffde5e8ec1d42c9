// Wakes PgSubscriptions after appends: NOTIFY doppel_events from a connection of its own,
// outside the appends' transactions (a NOTIFY inside them would serialize their commits on
// PostgreSQL's notification queue lock). Pokes that come while one is being sent are folded
// into the next. Best effort: subscribers also read on a timer.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "pg_connection.h"

namespace doppel::pgstore {

class PgNotifier {
 public:
  explicit PgNotifier(std::string url);
  ~PgNotifier();
  // Something was appended.
  void Poke();

 private:
  void Run();
  const std::string url_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool poked_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace doppel::pgstore
