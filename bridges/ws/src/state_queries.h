// StateQueries: the gateway's reads of the store off the network thread: the
// /doppel/robot_state service and the replay timeline's markers (/api/incidents). A query
// rebuilds a robot from the store (twins::StateReport, what `doppel state` prints), which
// takes store round trips, so one worker thread runs them in turn; at most `max_pending` wait,
// and further queries are refused at once instead of queueing without bound.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "doppel/core/clock.h"
#include "doppel/core/status.h"
#include "doppel/eventstore/event_store.h"

namespace doppel::gateway {

class StateQueries {
 public:
  using Done = std::function<void(Result<nlohmann::json>)>;

  // REQUIRES: `store` outlives this object and may be used from another thread.
  StateQueries(const eventstore::EventStore& store, size_t max_pending = 16);
  ~StateQueries();  // waits for the running query; pending ones are dropped

  // `robot`'s state at `at` (kTimeMax: now). `done` runs on the worker thread, or at once
  // with Unavailable when max_pending queries already wait.
  void Query(std::string robot, TimeNs at, Done done);
  // Any other read of the store, run the same way (the replay timeline's markers).
  using Work = std::function<Result<nlohmann::json>(const eventstore::EventStore&)>;
  void Submit(Work work, Done done);

 private:
  struct Job {
    Work work;
    Done done;
  };
  void Run();

  const eventstore::EventStore& store_;
  size_t max_pending_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace doppel::gateway
