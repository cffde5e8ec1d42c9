// PostgreSQL as a store: durable appends through PgEventStore beside the anchor, plain
// prepared INSERTs of the same rows over libpq, on one PostgreSQL server of the benchmark's
// own (fsync on, synchronous_commit on), side by side in one run.
//
//   pgstore_bench [--seconds S] [--clients N] [--batch B]
//
// Both sides: N client threads, one connection each, one request in flight each, B events
// per request, each request one durable transaction. PgEventStore adds what an event store
// owes its clients: the idempotency lookup by id, the expected-version check under a
// per-stream lock, and the positions returned.
#include <fmt/format.h>
#include <poll.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "doppel/core/latency.h"
#include "doppel/pgstore/pg_event_store.h"
#include "doppel/pgstore/pg_subscription.h"
#include "pg_connection.h"
#include "pg_server.h"
#include "test_support.h"

namespace {

using doppel::EventId;
using doppel::LatencySamples;
using doppel::eventstore::AppendRequest;
using doppel::eventstore::ExpectedVersion;
using doppel::pgstore::PgConnection;
using doppel::pgstore::PgParams;

struct Figures {
  double events_per_s = 0;
  int64_t p50_us = 0;
  int64_t p99_us = 0;
  uint64_t errors = 0;
};

// Runs `op` (one request of `batch` events on thread t) from `clients` threads for `seconds`.
template <typename Op>
Figures Drive(int clients, int batch, double seconds, Op op) {
  std::atomic<bool> stop{false};
  std::vector<LatencySamples> samples(clients);
  std::vector<uint64_t> errors(clients, 0);
  std::vector<std::thread> threads;
  const auto start = std::chrono::steady_clock::now();
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        const auto begin = std::chrono::steady_clock::now();
        if (!op(t, i)) ++errors[t];
        samples[t].Add(std::chrono::duration_cast<std::chrono::nanoseconds>(
                           std::chrono::steady_clock::now() - begin)
                           .count());
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& th : threads) th.join();
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  LatencySamples all;
  Figures f;
  for (int t = 0; t < clients; ++t) {
    all.Merge(samples[t]);
    f.errors += errors[t];
  }
  f.events_per_s = static_cast<double>(all.count()) * batch / elapsed;
  f.p50_us = all.Quantile(0.5) / 1000;
  f.p99_us = all.Quantile(0.99) / 1000;
  return f;
}

// Subscription lag at 1,000 appends/s: from an append's acknowledgement to a subscriber
// holding the event. Ours: PgEventStore::Append, PgSubscription. The anchor: what a
// hand-written PostgreSQL listener gets, an INSERT and a NOTIFY in one transaction and a
// LISTEN connection taking the notification.
int SubscriptionLag(doppel::testing::PgServer& server, double seconds) {
  constexpr int kRate = 1000;
  const auto event = doppel::testing::JointStateEvent(0.5);
  auto url = server.CreateDatabase("bench_lag");
  if (!url.ok() || !doppel::pgstore::PgEventStore::InitSchema(*url).ok()) return 1;

  // Paces `op(i)` at kRate for `seconds`; returns how many ran.
  auto paced = [&](auto op) {
    const auto start = std::chrono::steady_clock::now();
    const int total = static_cast<int>(seconds * kRate);
    for (int i = 0; i < total; ++i) {
      std::this_thread::sleep_until(start + std::chrono::microseconds(i * 1'000'000 / kRate));
      if (!op(i)) return i;
    }
    return total;
  };
  using Clock = std::chrono::steady_clock;
  auto lag_of = [](std::vector<Clock::time_point>& acked, std::vector<Clock::time_point>& got,
                   int n) {
    LatencySamples lag;
    int missing = 0;
    for (int i = 0; i < n; ++i) {
      if (got[i] == Clock::time_point{}) {
        ++missing;
        continue;
      }
      lag.Add(std::max<int64_t>(
          0, std::chrono::duration_cast<std::chrono::nanoseconds>(got[i] - acked[i]).count()));
    }
    return std::pair{lag, missing};
  };
  const int n = static_cast<int>(seconds * kRate);

  // Ours.
  auto store = doppel::pgstore::PgEventStore::Open(*url);
  if (!store.ok()) return 1;
  doppel::pgstore::PgSubscriptionOptions options;
  options.url = *url;
  auto sub = doppel::pgstore::PgSubscription::Start(options);
  if (!sub.ok()) return 1;
  std::vector<Clock::time_point> acked(n), got(n);
  std::mutex mu;
  std::unordered_map<EventId, int, doppel::EventIdHash> index;
  std::atomic<bool> done{false};
  std::thread reader([&] {
    int seen = 0;
    while (seen < n) {
      auto next = (*sub)->Next(std::chrono::milliseconds(200));
      const auto now = Clock::now();
      if (!next.ok() || !next->has_value()) {
        if (done) break;
        continue;
      }
      std::lock_guard lock(mu);
      auto it = index.find((**next).id());
      if (it != index.end()) got[it->second] = now;
      ++seen;
    }
  });
  const int appended = paced([&](int i) {
    AppendRequest r{"robot-1", ExpectedVersion::Any(), {}};
    auto e = event;
    e.id = EventId::Random();
    {
      std::lock_guard lock(mu);
      index[e.id] = i;
    }
    r.events.push_back(std::move(e));
    auto result = (*store)->Append(std::move(r));
    acked[i] = Clock::now();
    return result.ok();
  });
  std::this_thread::sleep_for(std::chrono::seconds(1));
  done = true;
  reader.join();
  auto [ours, ours_missing] = lag_of(acked, got, appended);

  // The anchor.
  auto writer = PgConnection::Connect(*url);
  auto listener = PgConnection::Connect(*url);
  if (!writer.ok() || !listener.ok()) return 1;
  if (!(*listener)->Exec("LISTEN bench_anchor", "listening").ok()) return 1;
  std::vector<Clock::time_point> anchor_acked(n), anchor_got(n);
  std::atomic<bool> anchor_done{false};
  std::thread anchor_reader([&] {
    while (!anchor_done) {
      pollfd fd{(*listener)->socket(), POLLIN, 0};
      ::poll(&fd, 1, 100);
      const auto now = Clock::now();
      for (const std::string& payload : (*listener)->TakeNotificationPayloads()) {
        const int i = std::stoi(payload);
        if (i >= 0 && i < n) anchor_got[i] = now;
      }
    }
  });
  const std::string insert =
      "INSERT INTO events (stream, version, event_id, type, payload, recorded_ns) "
      "VALUES ($1, $2, $3, $4, $5, $6)";
  const int anchor_appended = paced([&](int i) {
    PgParams p;
    p.Text("anchor-1")
        .Int8(i)
        .Uuid(EventId::Random())
        .Text(event.type)
        .Bytea(event.payload)
        .Int8(doppel::WallNowNs());
    const bool ok = (*writer)->Exec("BEGIN", "anchor").ok() &&
                    (*writer)->Query(insert, p, "anchor").ok() &&
                    (*writer)->Exec(fmt::format("NOTIFY bench_anchor, '{}'", i), "anchor").ok() &&
                    (*writer)->Exec("COMMIT", "anchor").ok();
    anchor_acked[i] = Clock::now();
    return ok;
  });
  std::this_thread::sleep_for(std::chrono::seconds(1));
  anchor_done = true;
  anchor_reader.join();
  auto [anchor, anchor_missing] = lag_of(anchor_acked, anchor_got, anchor_appended);

  std::cout << fmt::format(
      "| subscription lag at {}/s, ack -> subscriber | events | p50 us | p99 us | missing |\n"
      "|---|---|---|---|---|\n",
      kRate);
  std::cout << fmt::format("| doppel PgSubscription | {} | {} | {} | {} |\n", appended,
                           ours.Quantile(0.5) / 1000, ours.Quantile(0.99) / 1000, ours_missing);
  std::cout << fmt::format("| anchor: INSERT + NOTIFY, a LISTEN connection | {} | {} | {} | {} |\n",
                           anchor_appended, anchor.Quantile(0.5) / 1000,
                           anchor.Quantile(0.99) / 1000, anchor_missing);
  std::cout << fmt::format("| ratio of p99 (anchor / ours) | {:.2f}x | | | |\n\n",
                           ours.Quantile(0.99) > 0 ? static_cast<double>(anchor.Quantile(0.99)) /
                                                         static_cast<double>(ours.Quantile(0.99))
                                                   : 0.0);
  return ours_missing == 0 && anchor_missing == 0 && appended == n ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 5;
  int clients = 8;
  int batch = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--seconds") seconds = std::stod(argv[i + 1]);
    if (flag == "--clients") clients = std::stoi(argv[i + 1]);
    if (flag == "--batch") batch = std::stoi(argv[i + 1]);
  }
  auto server = doppel::testing::PgServer::Start();
  if (!server.ok()) {
    std::cerr << "pgstore_bench: " << server.status().ToString() << "\n";
    return 1;
  }
  auto ours_url = (*server)->CreateDatabase("bench_ours");
  auto anchor_url = (*server)->CreateDatabase("bench_anchor");
  if (!ours_url.ok() || !anchor_url.ok()) return 1;
  if (auto s = doppel::pgstore::PgEventStore::InitSchema(*ours_url); !s.ok()) return 1;
  if (auto s = doppel::pgstore::PgEventStore::InitSchema(*anchor_url); !s.ok()) return 1;

  doppel::pgstore::PgEventStoreOptions options;
  options.connections = static_cast<size_t>(clients);
  auto store = doppel::pgstore::PgEventStore::Open(*ours_url, options);
  if (!store.ok()) {
    std::cerr << "pgstore_bench: " << store.status().ToString() << "\n";
    return 1;
  }
  const auto event = doppel::testing::JointStateEvent(0.5);

  // Ours: one robot stream per client, as a fleet appends.
  const Figures ours = Drive(clients, batch, seconds, [&](int t, uint64_t) {
    AppendRequest r{fmt::format("robot-{}", t), ExpectedVersion::Any(), {}};
    for (int b = 0; b < batch; ++b) {
      auto e = event;
      e.id = EventId::Random();
      r.events.push_back(std::move(e));
    }
    return (*store)->Append(std::move(r)).ok();
  });

  // The anchor: the same rows, one prepared multi-row INSERT per request, autocommit.
  std::vector<std::unique_ptr<PgConnection>> conns;
  for (int t = 0; t < clients; ++t) {
    auto c = PgConnection::Connect(*anchor_url);
    if (!c.ok()) return 1;
    conns.push_back(std::move(c).value());
  }
  std::vector<uint64_t> next_version(clients, 0);
  const std::string insert =
      "INSERT INTO events (stream, version, event_id, type, payload, recorded_ns) "
      "SELECT $1, $2 + o - 1, i, $4, $5, $6 FROM unnest($3::uuid[]) WITH ORDINALITY AS u(i, o)";
  const Figures anchor = Drive(clients, batch, seconds, [&](int t, uint64_t) {
    std::vector<std::optional<std::string>> ids;
    for (int b = 0; b < batch; ++b) ids.push_back(doppel::pgstore::UuidBytes(EventId::Random()));
    PgParams p;
    p.Text(fmt::format("robot-{}", t))
        .Int8(static_cast<int64_t>(next_version[t]))
        .Array(doppel::pgstore::kUuidArrayOid, doppel::pgstore::kUuidOid, ids)
        .Text(event.type)
        .Bytea(event.payload)
        .Int8(doppel::WallNowNs());
    next_version[t] += batch;
    return conns[t]->Query(insert, p, "anchor insert").ok();
  });

  const int lag_rc = batch == 1 ? SubscriptionLag(**server, seconds) : 0;
  std::cout << fmt::format(
      "| durable appends to PostgreSQL, {} clients x {} event(s) per request | events/s | p50 us "
      "| p99 us | errors |\n|---|---|---|---|---|\n",
      clients, batch);
  std::cout << fmt::format("| doppel PgEventStore::Append | {:.0f} | {} | {} | {} |\n",
                           ours.events_per_s, ours.p50_us, ours.p99_us, ours.errors);
  std::cout << fmt::format("| anchor: prepared INSERT over libpq | {:.0f} | {} | {} | {} |\n",
                           anchor.events_per_s, anchor.p50_us, anchor.p99_us, anchor.errors);
  std::cout << fmt::format("| ratio (ours / anchor) | {:.2f}x | | | |\n",
                           anchor.events_per_s > 0 ? ours.events_per_s / anchor.events_per_s : 0);
  return ours.errors + anchor.errors == 0 && lag_rc == 0 ? 0 : 1;
}
