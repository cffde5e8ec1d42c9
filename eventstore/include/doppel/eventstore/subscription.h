// Subscription: every matching committed event exactly once, in global order, from a start
// position (or "now"), across PUB drops, slow consumers and store restarts.
//
// It subscribes to the store's PUB socket first, then catches up by reading from the start
// position, then delivers live events. Live events are checked against the next expected
// global position: an older one is a duplicate and skipped; a newer one (or a heartbeat
// ahead of us) means a gap, which is healed by reading from the store before going on.
// Filtering by stream prefix and event type happens here, not on the server, so gaps are
// detectable by dense global positions whatever the filter.
//
// Not thread-safe: one consumer thread calls Next().
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "doppel/eventstore/event_feed.h"
#include "doppel/eventstore/store_client.h"

namespace doppel::eventstore {

struct SubscriptionOptions {
  std::string store = "tcp://127.0.0.1:7600";    // ROUTER, for catch-up and healing reads
  std::string publish = "tcp://127.0.0.1:7601";  // PUB
  std::optional<GlobalPosition> from;            // first position to deliver; nullopt = from now
  std::string stream_prefix;                     // deliver only streams starting with this
  std::string event_type;                        // deliver only this type; empty = all
  std::optional<CurveClientConfig> curve;
  int receive_hwm = 100000;  // messages buffered before PUB drops (then healed by reads)
  size_t read_page = 1024;
};

class Subscription final : public EventFeed {
 public:
  static Result<std::unique_ptr<Subscription>> Start(SubscriptionOptions options);
  ~Subscription() override;

  // The next matching event, or nullopt when none arrived within `timeout`. An error means
  // the store could not be read to fill a gap (it keeps trying on the next call).
  Result<std::optional<RecordedEvent>> Next(std::chrono::milliseconds timeout) override;

  // Where to resume so that nothing delivered is delivered again and nothing is skipped:
  // save it after handling an event and pass it as `from` next time.
  GlobalPosition checkpoint() const override;

  struct Stats {
    uint64_t delivered = 0;
    uint64_t live = 0;        // events taken from PUB
    uint64_t read = 0;        // events taken from catch-up or healing reads
    uint64_t gaps = 0;        // gaps detected (drops, restarts, slow consumer)
    uint64_t duplicates = 0;  // live events already seen
  };
  const Stats& stats() const { return stats_; }

 private:
  explicit Subscription(SubscriptionOptions options);
  Status Open();
  bool Matches(const RecordedEvent& e) const;
  Status CatchUp();
  void TakeLive(zmq::message_t& topic, zmq::message_t& body);

  SubscriptionOptions options_;
  std::unique_ptr<StoreClient> client_;
  zmq::socket_t sub_;
  GlobalPosition next_ = 0;  // next position not yet accounted for
  bool catching_up_ = true;
  std::deque<RecordedEvent> ready_;  // matched, not yet handed out
  Stats stats_;
};

}  // namespace doppel::eventstore
