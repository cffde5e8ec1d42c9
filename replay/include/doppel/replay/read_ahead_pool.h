// ReadAheadPool: a few threads that read ahead for many ReadAheads (read_ahead.h) at once, so
// that a server with hundreds of replay sessions runs two reader threads, not hundreds. Jobs
// run in the order posted, one page each, so readers take turns. Shared by owning pointer:
// it lives while any ReadAhead uses it, and its destructor runs what is queued before it
// stops.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace doppel::replay {

class ReadAheadPool {
 public:
  explicit ReadAheadPool(size_t threads = 2);
  ~ReadAheadPool();
  ReadAheadPool(const ReadAheadPool&) = delete;
  ReadAheadPool& operator=(const ReadAheadPool&) = delete;

  void Post(std::function<void()> job);
  size_t threads() const { return threads_.size(); }

 private:
  void Run();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace doppel::replay
