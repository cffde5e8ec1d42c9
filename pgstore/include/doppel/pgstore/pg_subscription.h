// PgSubscription: every matching event of a PostgreSQL store exactly once, in position order,
// from a start position (or "now"), with nothing skipped: it reads `$all` up to the commit
// horizon (commit_horizon.h), so a row that commits late is delivered in its place, never
// jumped over. Between reads it waits on LISTEN doppel_events (PgEventStore notifies after its
// appends), and reads anyway every `poll` so writers that do not notify are seen too.
//
// Not thread-safe: one consumer thread calls Next().
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "doppel/eventstore/event_feed.h"
#include "doppel/pgstore/pg_event_store.h"

namespace doppel::pgstore {

struct PgSubscriptionOptions {
  std::string url;                                 // the database (postgres://...)
  std::optional<eventstore::GlobalPosition> from;  // first position to deliver; nullopt = now
  std::string stream_prefix;                       // only streams starting with this
  std::string event_type;                          // only this type; empty = all
  std::chrono::milliseconds poll{200};             // read at least this often
  size_t read_page = 1024;
};

class PgListener;

class PgSubscription final : public eventstore::EventFeed {
 public:
  static Result<std::unique_ptr<PgSubscription>> Start(PgSubscriptionOptions options);
  ~PgSubscription() override;
  // The next matching event, or nullopt when none came within `timeout`. An error means the
  // database could not be read (the next call tries again).
  Result<std::optional<eventstore::RecordedEvent>> Next(std::chrono::milliseconds timeout) override;
  // Where to resume: nothing delivered is delivered again and nothing is skipped.
  eventstore::GlobalPosition checkpoint() const override {
    return ready_.empty() ? next_ : ready_.front().position();
  }

 private:
  PgSubscription(PgSubscriptionOptions options, std::unique_ptr<PgEventStore> store,
                 std::unique_ptr<PgListener> listener);
  bool Matches(const eventstore::RecordedEvent& e) const;
  PgSubscriptionOptions options_;
  std::unique_ptr<PgEventStore> store_;
  std::unique_ptr<PgListener> listener_;
  eventstore::GlobalPosition next_ = 0;
  std::deque<eventstore::RecordedEvent> ready_;
};

}  // namespace doppel::pgstore
