// ReplayWorker: the one thread the gateway runs replay sessions on (their seeks fold whole
// fleets and their ticks read the store), so the network thread, and every live client with
// it, never waits for a replay. One client must not make every other replay wait either:
//
// - Each session has its own queue, and the worker takes one job from each session with work
//   in turn (round-robin). A session's jobs still run in the order posted (the ReplaySession
//   is touched by one job at a time), and another session's next job waits for at most one
//   job of each other session, however many that session has posted.
// - A seek that has not started is replaced by the session's next seek (kSeek): only the
//   latest position matters, so a storm of seeks costs one fold per job the worker runs, not
//   one per seek sent.
// - Other client requests are bounded per session: playback requests (kRequest) at
//   kMaxRequests pending, subscription changes (kSubscription: cheap, no fold, but the dashboard
//   sends one per channel, three per robot, all at once) at kMaxSubscriptionOps. Beyond that
//   Post refuses and the caller tells the client.
// - Drop(session) forgets a closed session's pending jobs: a job of a session that is gone is
//   not run.
//
// Round-robin on one thread rather than a strand per session on a pool: the cost is a seek
// (a fold), the machine has few cores, and one thread keeps the store's readers and the
// CPU a replay may take bounded; fairness only needs the turn-taking.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace doppel::gateway {

class ReplayWorker {
 public:
  enum class Kind {
    kInternal,      // the session's own work (open, the next tick): at most one at a time, never
                    // refused
    kSeek,          // a request with a seek: replaces the session's seek not yet started
    kRequest,       // a playback request without a seek: at most kMaxRequests pending
    kSubscription,  // subscribe or unsubscribe: at most kMaxSubscriptionOps pending
  };
  enum class Posted { kQueued, kReplaced, kRefused };
  // Client requests without a seek pending per session; a client that waits for its answers
  // never gets near it.
  static constexpr size_t kMaxRequests = 16;
  // Three per robot of the largest fleet a gateway serves (--max-robots 10000), with room.
  static constexpr size_t kMaxSubscriptionOps = 32768;
  using Key = const void*;

  struct Counters {
    uint64_t seeks_run = 0;        // seek jobs run
    uint64_t seeks_coalesced = 0;  // seeks replaced by a later one of the same session
    uint64_t jobs_dropped = 0;     // jobs of closed sessions, not run
    uint64_t requests_refused = 0;
  };

  ReplayWorker() : thread_([this] { Run(); }) {}
  // Waits for the running job; jobs not started are dropped (outside the lock: dropping one
  // may release what it held).
  ~ReplayWorker() {
    std::unordered_map<Key, Queue> dropped;
    {
      std::lock_guard lock(mu_);
      stop_ = true;
      dropped.swap(queues_);
    }
    cv_.notify_all();
    thread_.join();
  }

  Posted Post(Key session, Kind kind, std::function<void()> job) {
    std::function<void()> replaced;  // destroyed after the lock is released
    Posted posted = Posted::kQueued;
    {
      std::lock_guard lock(mu_);
      if (stop_) return Posted::kQueued;
      auto [it, fresh] = queues_.try_emplace(session);
      Queue& q = it->second;
      if ((kind == Kind::kRequest && q.requests >= kMaxRequests) ||
          (kind == Kind::kSubscription && q.subscription_ops >= kMaxSubscriptionOps)) {
        ++counters_.requests_refused;
        if (fresh) queues_.erase(it);
        return Posted::kRefused;
      }
      if (kind == Kind::kSeek) {
        for (auto j = q.jobs.begin(); j != q.jobs.end(); ++j) {
          if (j->kind != Kind::kSeek) continue;
          // Appended rather than swapped in place: the new seek keeps its place after the
          // requests the client sent before it.
          replaced = std::move(j->fn);
          q.jobs.erase(j);
          ++counters_.seeks_coalesced;
          posted = Posted::kReplaced;
          break;
        }
      }
      if (kind == Kind::kRequest) ++q.requests;
      if (kind == Kind::kSubscription) ++q.subscription_ops;
      q.jobs.push_back({kind, std::move(job)});
      if (!q.ready) {
        q.ready = true;
        ready_.push_back(session);
      }
    }
    cv_.notify_one();
    return posted;
  }

  // The session is closed: its pending jobs are dropped (released here, outside the lock).
  void Drop(Key session) {
    Queue dropped;
    {
      std::lock_guard lock(mu_);
      auto it = queues_.find(session);
      if (it == queues_.end()) return;
      dropped = std::move(it->second);
      queues_.erase(it);
      counters_.jobs_dropped += dropped.jobs.size();
      if (dropped.ready) std::erase(ready_, session);
    }
  }

  Counters counters() const {
    std::lock_guard lock(mu_);
    return counters_;
  }

 private:
  struct Job {
    Kind kind;
    std::function<void()> fn;
  };
  struct Queue {
    std::deque<Job> jobs;
    size_t requests = 0;          // kRequest jobs in `jobs`
    size_t subscription_ops = 0;  // kSubscription jobs in `jobs`
    bool ready = false;           // in ready_
  };

  void Run() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stop_ || !ready_.empty(); });
        if (stop_) return;
        const Key session = ready_.front();
        ready_.pop_front();
        auto it = queues_.find(session);
        Queue& q = it->second;
        Job next = std::move(q.jobs.front());
        q.jobs.pop_front();
        if (next.kind == Kind::kRequest) --q.requests;
        if (next.kind == Kind::kSubscription) --q.subscription_ops;
        if (next.kind == Kind::kSeek) ++counters_.seeks_run;
        if (q.jobs.empty()) {
          queues_.erase(it);
        } else {
          ready_.push_back(session);  // its next job after every other session's
        }
        job = std::move(next.fn);
      }
      job();
    }
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<Key, Queue> queues_;  // sessions with jobs pending
  std::deque<Key> ready_;                  // their turns
  Counters counters_;
  bool stop_ = false;
  std::thread thread_;  // last: starts once the rest exists
};

}  // namespace doppel::gateway
