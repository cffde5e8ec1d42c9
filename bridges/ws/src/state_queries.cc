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
  Submit([robot = std::move(robot),
          at](const eventstore::EventStore& store) { return twins::StateReport(store, robot, at); },
         std::move(done));
}

void StateQueries::Submit(Work work, Done done) {
  {
    std::lock_guard lock(mu_);
    if (jobs_.size() < max_pending_) {
      jobs_.push_back({std::move(work), std::move(done)});
      cv_.notify_one();
      return;
    }
  }
  done(Status::Unavailable("too many store queries are waiting; try again"));
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
    job.done(job.work(store_));
  }
}

}  // namespace doppel::gateway
