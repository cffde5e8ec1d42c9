#include "doppel/pgstore/pg_subscription.h"

#include <fmt/format.h>

#include <thread>

#include "pg_listener.h"

namespace doppel::pgstore {

using eventstore::RecordedEvent;

PgSubscription::PgSubscription(PgSubscriptionOptions options, std::unique_ptr<PgEventStore> store,
                               std::unique_ptr<PgListener> listener)
    : options_(std::move(options)), store_(std::move(store)), listener_(std::move(listener)) {}

PgSubscription::~PgSubscription() = default;

Result<std::unique_ptr<PgSubscription>> PgSubscription::Start(PgSubscriptionOptions options) {
  PgEventStoreOptions store_options;
  store_options.connections = 1;
  auto store = PgEventStore::Open(options.url, store_options);
  if (!store.ok()) return store.status();
  // Listen before the first read: a notification for anything after it is not missed.
  auto listener = PgListener::Start(options.url);
  if (!listener.ok()) return listener.status();
  std::unique_ptr<PgSubscription> sub(new PgSubscription(
      std::move(options), std::move(store).value(), std::move(listener).value()));
  if (sub->options_.from) {
    sub->next_ = *sub->options_.from;
  } else {
    // "Now": after everything visible at the start, once all of it is final (appends in
    // flight then hold a lower position until they commit).
    auto visible = sub->store_->MaxPosition();
    if (!visible.ok()) return visible.status();
    for (int look = 0; sub->store_->CommitHorizon() < *visible; ++look) {
      if (look >= 200) {
        return Status::Unavailable(
            "subscribing from now: transactions writing events kept positions open for 10 s");
      }
      auto page = sub->store_->ReadAll(0, 0);
      if (!page.ok()) return page.status();
      if (sub->store_->CommitHorizon() < *visible) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
    sub->next_ = sub->store_->CommitHorizon() + 1;
  }
  return sub;
}

bool PgSubscription::Matches(const RecordedEvent& e) const {
  if (!options_.stream_prefix.empty() && !e.stream().starts_with(options_.stream_prefix)) {
    return false;
  }
  return options_.event_type.empty() || e.type() == options_.event_type;
}

Result<std::optional<RecordedEvent>> PgSubscription::Next(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (!ready_.empty()) {
      RecordedEvent e = std::move(ready_.front());
      ready_.pop_front();
      return std::optional<RecordedEvent>(std::move(e));
    }
    auto page = store_->ReadAll(next_, options_.read_page);
    if (!page.ok()) return page.status();
    for (auto& e : page->events) {
      if (Matches(e)) ready_.push_back(std::move(e));
    }
    next_ = page->next;
    // Events, or a full page with more behind it: go on. Nothing yet (the end, or rows
    // waiting for a lower position to commit): wait for a notification or the timer.
    if (!ready_.empty() || (!page->end && !page->events.empty())) continue;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return std::optional<RecordedEvent>();
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    listener_->Wait(std::min(left, options_.poll));
  }
}

}  // namespace doppel::pgstore
