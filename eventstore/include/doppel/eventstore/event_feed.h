// EventFeed: every matching event of a store exactly once, in global order, from a start
// position, catching up and then following live: what a consumer (a twin, a copier, a
// dashboard's tail) reads, whichever store is behind it. A store server's feed is a
// Subscription (subscription.h); PostgreSQL's a PgSubscription (pgstore/pg_subscription.h).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "doppel/eventstore/types.h"

namespace doppel::eventstore {

class EventFeed {
 public:
  virtual ~EventFeed() = default;
  // The next matching event, or nullopt when none came within `timeout`. An error means the
  // store could not be read (the next call tries again).
  virtual Result<std::optional<RecordedEvent>> Next(std::chrono::milliseconds timeout) = 0;
  // Where to resume so that nothing delivered is delivered again and nothing is skipped.
  virtual GlobalPosition checkpoint() const = 0;
};

// Opens a feed from a position (nullopt: from now) of the streams starting with a prefix and
// of one event type (empty: all): how a service that follows a store is handed a store other
// than a store server (PostgreSQL), so its library links no database client.
using FeedOpener = std::function<Result<std::unique_ptr<EventFeed>>(
    std::optional<GlobalPosition> from, const std::string& stream_prefix,
    const std::string& event_type)>;

}  // namespace doppel::eventstore
