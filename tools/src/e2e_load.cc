#include "e2e_load.h"

#include <fmt/format.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <unordered_set>
#include <vector>

#include "append_load.h"
#include "doppel/eventstore/store_client.h"
#include "doppel/eventstore/subscription.h"

namespace doppel::tools {

Result<EndToEndResult> RunEndToEnd(const EndToEndOptions& o) {
  if (o.clients < 1 || o.subscribers < 0 || o.rate <= 0 || o.batch < 1 || o.duration_s <= 0) {
    return Status::InvalidArgument("clients, rate, batch and duration must be positive");
  }
  const std::string prefix = fmt::format("e2e-{}", EventId::Random().ToString().substr(0, 8));
  std::vector<std::unique_ptr<eventstore::StoreClient>> clients;
  for (int c = 0; c < o.clients; ++c) {
    eventstore::StoreClientOptions co;
    co.endpoint = o.store;
    co.curve = o.curve;
    auto client = eventstore::StoreClient::Connect(co);
    if (!client.ok()) return client.status();
    clients.push_back(std::move(client).value());
  }

  // Subscribers start at "now" and take only this run's streams.
  struct Receiver {
    std::unique_ptr<eventstore::Subscription> sub;
    LatencySamples latency;
    std::unordered_set<eventstore::GlobalPosition> seen;
    eventstore::GlobalPosition last = 0;
    bool any = false;
    uint64_t duplicated = 0, out_of_order = 0;
  };
  std::vector<Receiver> receivers(static_cast<size_t>(o.subscribers));
  for (auto& r : receivers) {
    eventstore::SubscriptionOptions so;
    so.store = o.store;
    so.publish = o.publish;
    so.curve = o.curve;
    so.stream_prefix = prefix;
    auto sub = eventstore::Subscription::Start(so);
    if (!sub.ok()) return sub.status();
    r.sub = std::move(sub).value();
  }
  std::atomic<bool> receiving{true};
  std::vector<std::thread> receiver_threads;
  for (auto& r : receivers) {
    receiver_threads.emplace_back([&r, &receiving] {
      while (receiving.load()) {
        auto next = r.sub->Next(std::chrono::milliseconds(50));
        if (!next.ok() || !next->has_value()) continue;
        const auto& e = **next;
        r.latency.Add(WallNowNs() - e.occurred_ns());
        if (!r.seen.insert(e.position()).second) ++r.duplicated;
        if (r.any && e.position() <= r.last) ++r.out_of_order;
        r.last = e.position();
        r.any = true;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // let subscriptions connect

  // One pacing thread sends appends at the target rate, round-robin over the clients, with
  // many in flight (as many independent robots would).
  const std::string payload = BlobPayload(o.payload_bytes);
  std::mutex acked_mu;
  std::vector<eventstore::GlobalPosition> acked;
  std::atomic<int64_t> in_flight{0};
  Status first_error;
  const double appends_per_second = o.rate / o.batch;
  const int64_t interval_ns = static_cast<int64_t>(1e9 / appends_per_second);
  const int64_t start = MonotonicNowNs();
  const int64_t end = start + static_cast<int64_t>(o.duration_s * 1e9);
  int64_t next_send = start;
  uint64_t sent = 0;
  while (MonotonicNowNs() < end) {
    // Sleep about a millisecond, then send every append that has come due: steady rate
    // without a spinning thread stealing a core from the system under test.
    std::this_thread::sleep_for(std::chrono::microseconds(500));
    const int64_t now = MonotonicNowNs();
    while (next_send <= now) {
      next_send += interval_ns;
      const int c = static_cast<int>(sent++ % clients.size());
      eventstore::AppendRequest request{
          fmt::format("{}-{}", prefix, c), eventstore::ExpectedVersion::Any(), {}};
      const TimeNs occurred = WallNowNs();
      for (int i = 0; i < o.batch; ++i) {
        eventstore::NewEvent e;
        e.type = "Blob";
        e.payload = payload;
        e.occurred_ns = occurred;
        request.events.push_back(std::move(e));
      }
      ++in_flight;
      clients[c]->AppendAsync(std::move(request), [&](Result<eventstore::AppendResult> r) {
        std::lock_guard lock(acked_mu);
        if (r.ok()) {
          for (auto p = r->first_position; p <= r->last_position; ++p) acked.push_back(p);
        } else if (first_error.ok()) {
          first_error = r.status();
        }
        --in_flight;
      });
    }
  }
  while (in_flight.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const double seconds = (MonotonicNowNs() - start) / 1e9;

  // Give subscribers time to receive everything acknowledged.
  const auto wait_until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  auto all_delivered = [&] {
    for (auto& r : receivers) {
      if (r.seen.size() < acked.size()) return false;
    }
    return true;
  };
  while (!all_delivered() && std::chrono::steady_clock::now() < wait_until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  receiving = false;
  for (auto& t : receiver_threads) t.join();
  if (!first_error.ok()) return first_error;

  EndToEndResult result;
  result.appended = acked.size();
  result.seconds = seconds;
  uint64_t delivered = 0;
  for (auto& r : receivers) {
    for (auto p : acked) result.lost += r.seen.count(p) ? 0 : 1;
    result.duplicated += r.duplicated;
    result.out_of_order += r.out_of_order;
    result.gaps_healed += r.sub->stats().gaps;
    result.latency_ns.Merge(r.latency);
    delivered += r.seen.size();
  }
  result.delivered_per_second =
      receivers.empty() ? 0 : delivered / static_cast<double>(receivers.size()) / seconds;
  return result;
}

}  // namespace doppel::tools
