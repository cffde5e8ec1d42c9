#include "doppel/replay/read_ahead.h"

namespace doppel::replay {

ReadAhead::ReadAhead(const eventstore::EventStore& store, Window window, ReadAheadOptions options)
    : reader_(store, std::move(window)),
      page_events_(std::max<size_t>(1, options.page_events)),
      max_pages_(std::max<size_t>(1, options.max_pages)),
      pool_(std::move(options.pool)) {}

ReadAhead::~ReadAhead() {
  std::unique_lock lock(mu_);
  stop_ = true;
  cv_.notify_all();
  if (pool_) {
    // A queued job sees stop_ and returns at once; a running one finishes its page.
    cv_.wait(lock, [&] { return !in_flight_; });
    return;
  }
  lock.unlock();
  if (thread_.joinable()) thread_.join();
}

Status ReadAhead::Open() {
  DOPPEL_RETURN_IF_ERROR(reader_.Open());
  if (pool_) {
    std::lock_guard lock(mu_);
    Schedule();
  } else {
    thread_ = std::thread([this] { Run(); });
  }
  return Status::Ok();
}

void ReadAhead::Schedule() {
  if (in_flight_ || stop_ || finished_ || pages_.size() >= max_pages_) return;
  in_flight_ = true;
  pool_->Post([this] {
    bool stopping;
    {
      std::lock_guard lock(mu_);
      stopping = stop_;
    }
    if (!stopping) ReadPage();
    std::lock_guard lock(mu_);
    in_flight_ = false;
    Schedule();
    cv_.notify_all();
  });
}

bool ReadAhead::ReadPage() {
  const bool at_end = reader_.done();
  auto page =
      at_end
          ? Result<std::vector<eventstore::RecordedEvent>>(std::vector<eventstore::RecordedEvent>())
          : reader_.Next(page_events_);
  std::lock_guard lock(mu_);
  if (!page.ok()) {
    failed_ = page.status();
    finished_ = true;
  } else if (at_end) {
    finished_ = true;
  } else {
    pages_.push_back(std::move(page).value());
  }
  cv_.notify_all();
  return !finished_;
}

void ReadAhead::Run() {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || pages_.size() < max_pages_; });
      if (stop_) return;
    }
    // The reader is this thread's alone once Open() has returned.
    if (!ReadPage()) return;
  }
}

Result<std::vector<eventstore::RecordedEvent>> ReadAhead::Next() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !pages_.empty() || finished_; });
  if (!pages_.empty()) {
    std::vector<eventstore::RecordedEvent> page = std::move(pages_.front());
    pages_.pop_front();
    if (pool_) Schedule();  // room for another page
    cv_.notify_all();
    return page;
  }
  if (!failed_.ok()) return failed_;
  return std::vector<eventstore::RecordedEvent>();
}

bool ReadAhead::done() const {
  std::lock_guard lock(mu_);
  return finished_ && pages_.empty();
}

}  // namespace doppel::replay
