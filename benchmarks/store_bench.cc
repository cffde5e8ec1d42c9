// The store server side by side with Redis Streams and NATS JetStream, in one run on one
// machine: durable appends from 64 connections, 200-byte payloads. Then doppel's
// append -> subscriber delivery at 10k events/s with 4 subscribers, and fan-out of 100k
// events/s to 8 subscribers. Every server listens on 127.0.0.1 only and is stopped after.
//
//   store_bench [--seconds S]
#include <fmt/format.h>
#include <hiredis/hiredis.h>
#include <nats/nats.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "append_load.h"
#include "bench_support.h"
#include "doppel/core/clock.h"
#include "doppel/core/latency.h"
#include "doppel/core/log.h"
#include "doppel/eventstore/store_client.h"
#include "e2e_load.h"

namespace {

using doppel::LatencySamples;
using doppel::MonotonicNowNs;
using doppel::bench::Child;
using doppel::bench::FreePort;

constexpr int kConnections = 64;
constexpr int kPayloadBytes = 200;

struct Figure {
  double per_second = 0;
  int64_t p50_us = 0;
  int64_t p99_us = 0;
};

// Runs `op` from kConnections threads for `seconds`; op(thread) does one durable write and
// returns false on failure.
template <typename Setup>
Figure Drive(double seconds, Setup setup) {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> done{0};
  std::vector<LatencySamples> latency(kConnections);
  std::vector<std::thread> threads;
  std::atomic<int> ready{0};
  int64_t start = 0;
  for (int t = 0; t < kConnections; ++t) {
    threads.emplace_back([&, t] {
      auto op = setup(t);
      ++ready;
      while (ready.load() < kConnections) std::this_thread::yield();
      while (!stop.load(std::memory_order_relaxed)) {
        const int64_t t0 = MonotonicNowNs();
        if (!op()) {
          std::cerr << "write failed\n";
          std::exit(1);
        }
        latency[t].Add(MonotonicNowNs() - t0);
        done.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  while (ready.load() < kConnections) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  start = MonotonicNowNs();
  const uint64_t base = done.load();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  const uint64_t total = done.load() - base;
  const double elapsed = (MonotonicNowNs() - start) / 1e9;
  stop = true;
  for (auto& t : threads) t.join();
  LatencySamples all;
  for (auto& l : latency) all.Merge(l);
  return {total / elapsed, all.Quantile(0.5) / 1000, all.Quantile(0.99) / 1000};
}

// shared_connection: 64 client threads multiplex one StoreClient (the intended model: one
// connection per process, many requests in flight). Otherwise 64 StoreClients, like the
// 64 connections of the anchors.
Figure RunDoppel(const std::string& base, double seconds, bool shared_connection) {
  Child store(
      {DOPPEL_BINARY, "store", "--data", base + (shared_connection ? "/doppel-shared" : "/doppel"),
       "--listen", "tcp://127.0.0.1:0", "--publish", "tcp://127.0.0.1:0"},
      true);
  const auto info = nlohmann::json::parse(store.ReadLine());
  const std::string endpoint = info["listen"];
  const std::string payload = doppel::tools::BlobPayload(kPayloadBytes);
  std::vector<std::unique_ptr<doppel::eventstore::StoreClient>> clients(kConnections);
  return Drive(seconds, [&](int t) {
    doppel::eventstore::StoreClientOptions o;
    o.endpoint = endpoint;
    static std::mutex mu;
    {
      std::lock_guard lock(mu);
      if (!shared_connection || t == 0 || clients[0] == nullptr) {
        clients[shared_connection ? 0 : t] =
            std::move(doppel::eventstore::StoreClient::Connect(o)).value();
      }
    }
    return [&, t] {
      doppel::eventstore::AppendRequest r{
          fmt::format("bench-{}", t), doppel::eventstore::ExpectedVersion::Any(), {}};
      doppel::eventstore::NewEvent e;
      e.type = "Blob";
      e.payload = payload;
      r.events.push_back(std::move(e));
      return clients[shared_connection ? 0 : t]->Append(std::move(r)).ok();
    };
  });
}

Figure RunRedis(const std::string& base, double seconds) {
  const int port = FreePort();
  std::filesystem::create_directories(base + "/redis");
  Child server({"/usr/bin/redis-server", "--port", std::to_string(port), "--bind", "127.0.0.1",
                "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--dir",
                base + "/redis", "--loglevel", "warning", "--protected-mode", "yes"});
  for (int i = 0; i < 100; ++i) {
    redisContext* probe = redisConnect("127.0.0.1", port);
    const bool ok = probe != nullptr && probe->err == 0;
    if (probe) redisFree(probe);
    if (ok) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const std::string value(kPayloadBytes, 'v');
  std::vector<redisContext*> connections(kConnections, nullptr);
  Figure f = Drive(seconds, [&](int t) {
    connections[t] = redisConnect("127.0.0.1", port);
    return [&, t] {
      auto* reply = static_cast<redisReply*>(
          redisCommand(connections[t], "XADD bench-%d * f %b", t, value.data(), value.size()));
      const bool ok = reply != nullptr && reply->type == REDIS_REPLY_STRING;
      if (reply) freeReplyObject(reply);
      return ok;
    };
  });
  for (auto* c : connections) redisFree(c);
  return f;
}

Figure RunNats(const std::string& base, double seconds) {
  const int port = FreePort();
  Child server({"/usr/sbin/nats-server", "-a", "127.0.0.1", "-p", std::to_string(port), "-js",
                "-sd", base + "/nats"});
  const std::string url = fmt::format("nats://127.0.0.1:{}", port);
  natsConnection* admin = nullptr;
  for (int i = 0; i < 100 && natsConnection_ConnectTo(&admin, url.c_str()) != NATS_OK; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  jsCtx* js = nullptr;
  natsConnection_JetStream(&js, admin, nullptr);
  jsStreamConfig config;
  jsStreamConfig_Init(&config);
  config.Name = "BENCH";
  const char* subjects[] = {"bench.>"};
  config.Subjects = subjects;
  config.SubjectsLen = 1;
  config.Storage = js_FileStorage;
  jsErrCode jerr;
  jsStreamInfo* info = nullptr;
  if (js_AddStream(&info, js, &config, nullptr, &jerr) != NATS_OK) {
    std::cerr << "nats: cannot create stream\n";
    std::exit(1);
  }
  jsStreamInfo_Destroy(info);
  const std::string value(kPayloadBytes, 'v');
  std::vector<natsConnection*> connections(kConnections, nullptr);
  std::vector<jsCtx*> contexts(kConnections, nullptr);
  Figure f = Drive(seconds, [&](int t) {
    natsConnection_ConnectTo(&connections[t], url.c_str());
    natsConnection_JetStream(&contexts[t], connections[t], nullptr);
    const std::string subject = fmt::format("bench.{}", t);
    return [&, t, subject] {
      jsPubAck* ack = nullptr;
      jsErrCode e;
      const bool ok = js_Publish(&ack, contexts[t], subject.c_str(), value.data(),
                                 static_cast<int>(value.size()), nullptr, &e) == NATS_OK;
      jsPubAck_Destroy(ack);
      return ok;
    };
  });
  for (int t = 0; t < kConnections; ++t) {
    jsCtx_Destroy(contexts[t]);
    natsConnection_Destroy(connections[t]);
  }
  jsCtx_Destroy(js);
  natsConnection_Destroy(admin);
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--seconds") seconds = std::atof(argv[i + 1]);
  }
  doppel::log::SetLevel(doppel::log::Level::kWarn);
  ::setenv("DOPPEL_LOG", "warn", 1);
  // Before the servers: destroyed after them, so they have stopped writing when it goes.
  const doppel::bench::BenchDir dir("store");
  const std::string& base = dir.path();

  std::cout << fmt::format(
      "store: 64 connections, one 200-byte event per write, {} s per run, "
      "same machine, same run\n",
      seconds);
  std::cout << fmt::format("| {:<52} | {:>10} | {:>7} | {:>7} |\n", "system", "writes/s", "p50 us",
                           "p99 us");
  std::cout << fmt::format("|{:-<54}|{:-<12}|{:-<9}|{:-<9}|\n", "", "", "", "");
  auto row = [](const std::string& name, const Figure& f) {
    std::cout << fmt::format("| {:<52} | {:>10.0f} | {:>7} | {:>7} |\n", name, f.per_second,
                             f.p50_us, f.p99_us)
              << std::flush;
  };
  const Figure ours = RunDoppel(base, seconds, false);
  row("doppel store, 64 connections (fsync per commit)", ours);
  const Figure shared = RunDoppel(base, seconds, true);
  row("doppel store, 64 threads on 1 connection (fsync)", shared);
  const Figure redis = RunRedis(base, seconds);
  row("Redis Streams XADD (appendfsync always)", redis);
  const Figure nats = RunNats(base, seconds);
  row("NATS JetStream file storage (not fsynced)", nats);
  const double best = std::max(redis.per_second, nats.per_second);
  std::cout << fmt::format(
      "doppel / faster anchor: {:.2f}x (64 connections), {:.2f}x (one shared connection)\n\n",
      ours.per_second / best, shared.per_second / best);

  // Delivery through the store to subscribers.
  Child store({DOPPEL_BINARY, "store", "--data", base + "/e2e", "--listen", "tcp://127.0.0.1:0",
               "--publish", "tcp://127.0.0.1:0"},
              true);
  const auto info = nlohmann::json::parse(store.ReadLine());
  std::cout << "| doppel append -> subscriber (durable)            | events/s | p50 us | "
               "p99 us | lost | dup | out of order |\n";
  std::cout << "|--------------------------------------------------|----------|--------|"
               "--------|------|-----|--------------|\n";
  for (auto [rate, batch, subscribers] : {std::tuple{10000.0, 1, 4}, std::tuple{100000.0, 20, 8}}) {
    doppel::tools::EndToEndOptions o;
    o.store = info["listen"];
    o.publish = info["publish"];
    o.rate = rate;
    o.batch = batch;
    o.subscribers = subscribers;
    o.duration_s = seconds;
    auto r = doppel::tools::RunEndToEnd(o);
    if (!r.ok()) {
      std::cerr << r.status().ToString() << "\n";
      return 1;
    }
    std::cout << fmt::format("| {:<48} | {:>8.0f} | {:>6} | {:>6} | {:>4} | {:>3} | {:>12} |\n",
                             fmt::format("{:.0f}/s offered, batch {}, {} subscribers", rate, batch,
                                         subscribers),
                             r->delivered_per_second, r->latency_ns.Quantile(0.5) / 1000,
                             r->latency_ns.Quantile(0.99) / 1000, r->lost, r->duplicated,
                             r->out_of_order)
              << std::flush;
  }
  return 0;
}
