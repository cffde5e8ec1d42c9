// SerialWorker: one thread running posted jobs in order. The gateway runs replay sessions on
// one (their seeks fold whole fleets and their ticks read the store), so the network thread,
// and every live client with it, never waits for a replay.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace doppel::gateway {

class SerialWorker {
 public:
  SerialWorker() : thread_([this] { Run(); }) {}
  // Waits for the running job; jobs not started are dropped (outside the lock: dropping one
  // may release what it held).
  ~SerialWorker() {
    std::deque<std::function<void()>> dropped;
    {
      std::lock_guard lock(mu_);
      stop_ = true;
      dropped.swap(jobs_);
    }
    cv_.notify_all();
    thread_.join();
  }

  void Post(std::function<void()> job) {
    {
      std::lock_guard lock(mu_);
      if (stop_) return;
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
  }

 private:
  void Run() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
        if (stop_) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stop_ = false;
  std::thread thread_;  // last: starts once the rest exists
};

}  // namespace doppel::gateway
