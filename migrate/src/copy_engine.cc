#include "doppel/migrate/copy_engine.h"

#include <fmt/format.h>

#include <algorithm>
#include <future>
#include <thread>

#include "doppel/core/clock.h"
#include "doppel/core/log.h"

namespace doppel::migrate {

using eventstore::CopiedBatch;
using eventstore::GlobalPosition;

namespace {

constexpr char kComponent[] = "copy";

// Errors after which the copy waits for the store and goes on: the store is down, restarting
// or unreachable. The checkpoint says where to go on from.
bool Transient(const Status& s) { return s.code() == Status::Code::kUnavailable; }

// Sleeps up to `ms`, in slices, returning early when `stop` says so.
void SleepUnlessStopped(int ms, const std::function<bool()>& stop) {
  const int64_t until = MonotonicNowNs() + int64_t{ms} * 1'000'000;
  while (MonotonicNowNs() < until) {
    if (stop && stop()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(ms, 20)));
  }
}

}  // namespace

CopyEngine::CopyEngine(eventstore::EventStore& source, eventstore::EventStore& destination,
                       CopyOptions options, ProgressFn progress)
    : source_(source),
      destination_(destination),
      options_(std::move(options)),
      progress_fn_(std::move(progress)) {}

Result<CopyProgress> CopyEngine::Run() {
  if (options_.batch == 0) return Status::InvalidArgument("a copy's batch must be at least 1");
  if (options_.rate < 0) return Status::InvalidArgument("a copy's rate cannot be negative");
  start_ns_ = MonotonicNowNs();
  while (!Stopping()) {
    auto more = CopyPage();
    if (!more.ok()) {
      if (!Transient(more.status())) return more.status();
      Backoff(more.status());
      continue;
    }
    backoff_ms_ = 0;
    if (progress_fn_) progress_fn_(progress_);
    if (!*more) {
      if (options_.until_caught_up) break;
      SleepUnlessStopped(static_cast<int>(options_.idle_wait.count()), options_.stop);
    }
  }
  if (ahead_.valid()) ahead_.wait();
  return progress_;
}

CopyEngine::Fetched CopyEngine::Fetch(GlobalPosition from) const {
  Fetched f;
  f.from = from;
  auto page = source_.ReadAll(from, options_.batch);
  if (!page.ok()) {
    f.status = page.status();
    return f;
  }
  f.page = std::move(page).value();
  return f;
}

Result<bool> CopyEngine::CopyPage() {
  if (!have_checkpoint_) {
    // At the start, and after any failure: the destination knows where the copy stands
    // (a write whose answer was lost may or may not be in it).
    auto checkpoint = destination_.LoadCopyCheckpoint(options_.name);
    if (!checkpoint.ok()) return checkpoint.status();
    progress_.source_next = checkpoint->source_next;
    progress_.events = checkpoint->events;
    have_checkpoint_ = true;
  }
  const GlobalPosition from = progress_.source_next;
  // The page read ahead while the last one was written, if it starts here.
  Fetched fetched;
  if (ahead_.valid()) {
    Fetched early = ahead_.get();
    if (early.from == from) fetched = std::move(early);
  }
  if (fetched.from != from || !fetched.status.ok()) fetched = Fetch(from);
  if (!fetched.status.ok()) return fetched.status;
  eventstore::ReadPage& page = fetched.page;
  if (MonotonicNowNs() >= next_end_check_ns_ || page.end) {
    // The source's end, for the lag: twice a second is enough.
    auto end = source_.EndPosition();
    if (!end.ok()) return end.status();
    progress_.source_end = *end;
    next_end_check_ns_ = MonotonicNowNs() + 500'000'000;
  }
  if (page.events.empty() && page.next <= from) {
    progress_.caught_up = page.end;
    progress_.lag_events = progress_.source_end > from ? progress_.source_end - from : 0;
    if (progress_.caught_up) progress_.lag_seconds = 0;
    return !page.end;
  }
  // Read the next page while this one is written.
  if (!page.end) {
    ahead_ = std::async(std::launch::async, [this, next = page.next] { return Fetch(next); });
  }
  const TimeNs newest = page.events.empty() ? 0 : page.events.back().recorded_ns();
  const size_t count = page.events.size();
  const bool end = page.end;
  CopiedBatch batch{options_.name, from, std::move(page.events), page.next};
  have_checkpoint_ = false;  // until this write is known to have happened
  auto copied = destination_.AppendCopied(batch);
  if (!copied.ok()) return copied.status();
  have_checkpoint_ = true;
  progress_.source_next = copied->checkpoint.source_next;
  progress_.events = copied->checkpoint.events;
  progress_.written += copied->written;
  progress_.present += copied->present;
  progress_.caught_up = end;
  if (count > 0) UpdateLag(newest);
  if (progress_.caught_up) progress_.lag_seconds = 0;

  // Throttle: never ahead of `rate` events per second over the run.
  progress_.throttle.clear();
  const double elapsed_s = (MonotonicNowNs() - start_ns_) / 1e9;
  const uint64_t done = progress_.written + progress_.present;
  if (options_.rate > 0) {
    const double due_s = static_cast<double>(done) / options_.rate;
    if (due_s > elapsed_s) {
      progress_.throttle = fmt::format("--rate {}", options_.rate);
      SleepUnlessStopped(static_cast<int>((due_s - elapsed_s) * 1000), options_.stop);
    }
  }
  const double now_s = (MonotonicNowNs() - start_ns_) / 1e9;
  progress_.events_per_s = now_s > 0 ? static_cast<double>(done) / now_s : 0;
  progress_.eta_seconds = progress_.events_per_s > 0
                              ? static_cast<double>(progress_.lag_events) / progress_.events_per_s
                              : 0;
  return !end;
}

void CopyEngine::UpdateLag(TimeNs newest_recorded_ns) {
  progress_.lag_events = progress_.source_end > progress_.source_next
                             ? progress_.source_end - progress_.source_next
                             : 0;
  progress_.lag_seconds = std::max(0.0, (WallNowNs() - newest_recorded_ns) / 1e9);
}

void CopyEngine::Backoff(const Status& why) {
  backoff_ms_ = backoff_ms_ == 0 ? 100 : std::min(backoff_ms_ * 2, 5000);
  ++progress_.retries;
  progress_.throttle = "waiting for a store";
  log::Warn(kComponent, "copy {}: {}; trying again in {} ms from the destination's checkpoint",
            options_.name, why.ToString(), backoff_ms_);
  have_checkpoint_ = false;
  if (progress_fn_) progress_fn_(progress_);
  SleepUnlessStopped(backoff_ms_, options_.stop);
}

}  // namespace doppel::migrate
