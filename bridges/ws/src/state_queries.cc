#include "state_queries.h"

#include "doppel/twins/state_report.h"

namespace doppel::gateway {

StateQueries::StateQueries(const eventstore::EventStore& store, size_t max_pending)
    : store_(store), max_pending_(max_pending), thread_([this] { Run(); }) {}

StateQueries::~StateQueries() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void StateQueries::Query(std::string robot, TimeNs at, Done done) {
  {
    std::lock_guard lock(mu_);
    if (jobs_.size() < max_pending_) {
      jobs_.push_back({std::move(robot), at, std::move(done)});
      cv_.notify_one();
      return;
    }
  }
  done(Status::Unavailable("too many robot_state queries are waiting; try again"));
}

void StateQueries::Run() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
      if (stop_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job.done(twins::StateReport(store_, job.robot, job.at));
  }
}

}  // namespace doppel::gateway
