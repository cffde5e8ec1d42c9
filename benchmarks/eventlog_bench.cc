// Durable append throughput of doppel's EventLog against raw RocksDB doing the same
// durable writes, side by side in one run on one machine. Prints one table.
//
//   eventlog_bench [--seconds S] [--dir DIR]
//
// Anchors: raw RocksDB Put with sync=true from the same number of threads (RocksDB groups
// concurrent writers itself), and WriteBatches of 100 with sync=true. Payloads are 200 bytes.
#include <fmt/format.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <optional>
#include <thread>
#include <vector>

#include "append_load.h"
#include "bench_support.h"
#include "doppel/core/clock.h"
#include "doppel/core/latency.h"
#include "doppel/core/log.h"
#include "doppel/eventstore/event_log.h"

namespace {

using doppel::LatencySamples;
using doppel::MonotonicNowNs;

struct Figure {
  double per_second = 0;
  int64_t p99_us = 0;
};

std::string FreshDir(const std::string& base, const std::string& name) {
  const std::string dir = base + "/" + name;
  std::filesystem::remove_all(dir);
  return dir;
}

Figure RunOurs(const std::string& dir, int clients, int batch, bool in_flight, double seconds) {
  auto log = doppel::eventstore::EventLog::Open(dir);
  if (!log.ok()) {
    std::cerr << log.status().ToString() << "\n";
    std::exit(1);
  }
  doppel::tools::AppendLoadOptions o;
  o.clients = clients;
  o.batch = batch;
  o.payload_bytes = 200;
  o.duration_s = seconds;
  o.in_flight = in_flight;
  auto r = doppel::tools::RunAppendLoad(**log, o);
  if (!r.ok()) {
    std::cerr << r.status().ToString() << "\n";
    std::exit(1);
  }
  return {r->events_per_second(), r->ack_latency_ns.Quantile(0.99) / 1000};
}

Figure RunRaw(const std::string& dir, int threads, int batch, double seconds) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.IncreaseParallelism(2);
  options.compression = rocksdb::kNoCompression;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, dir, &raw);
  if (!s.ok()) {
    std::cerr << s.ToString() << "\n";
    std::exit(1);
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  const std::string value(200, 'v');
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> written{0};
  std::vector<LatencySamples> latency(static_cast<size_t>(threads));
  std::vector<std::thread> workers;
  const int64_t start = MonotonicNowNs();
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      rocksdb::WriteOptions wo;
      wo.sync = true;
      uint64_t n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        rocksdb::WriteBatch wb;
        for (int i = 0; i < batch; ++i) {
          wb.Put(fmt::format("{:04}-{:016}", t, n++), value);
        }
        const int64_t t0 = MonotonicNowNs();
        rocksdb::Status ws = db->Write(wo, &wb);
        latency[static_cast<size_t>(t)].Add(MonotonicNowNs() - t0);
        if (!ws.ok()) {
          std::cerr << ws.ToString() << "\n";
          std::exit(1);
        }
        written.fetch_add(static_cast<uint64_t>(batch), std::memory_order_relaxed);
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& w : workers) w.join();
  const double elapsed = (MonotonicNowNs() - start) / 1e9;
  LatencySamples all;
  for (auto& l : latency) all.Merge(l);
  return {written.load() / elapsed, all.Quantile(0.99) / 1000};
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 3;
  std::string base;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--seconds") seconds = std::atof(argv[i + 1]);
    if (flag == "--dir") base = argv[i + 1];
  }
  doppel::log::SetLevel(doppel::log::Level::kWarn);
  // Without --dir, a directory of its own that goes however the run ends (BenchDir).
  std::optional<doppel::bench::BenchDir> temp;
  if (base.empty()) base = temp.emplace("eventlog").path();
  std::filesystem::create_directories(base);

  struct Row {
    std::string name;
    int clients;
    int batch;
    bool in_flight;
    std::string anchor;
  };
  // "threads": one blocking thread per client. "in flight": closed-loop async clients, one
  // append in flight each, as the store server drives the log.
  const std::vector<Row> rows = {
      {"1 client, 1 event/append", 1, 1, false, "Put sync, 1 thread"},
      {"16 client threads, 1 event", 16, 1, false, "Put sync, 16 threads"},
      {"64 client threads, 1 event", 64, 1, false, "Put sync, 64 threads"},
      {"64 clients in flight, 1 event", 64, 1, true, "Put sync, 64 threads"},
      {"4 client threads, batch 100", 4, 100, false, "WriteBatch(100) sync, 4 threads"},
      {"16 clients in flight, batch 100", 16, 100, true, "WriteBatch(100) sync, 16 threads"},
  };
  std::cout << "eventlog: durable appends, 200-byte payloads, " << seconds
            << " s per run, same machine, same run\n";
  std::cout << fmt::format("| {:<38} | {:>12} | {:>9} | {:<36} | {:>12} | {:>9} | {:>6} |\n",
                           "doppel EventLog (durable)", "events/s", "p99 us", "raw RocksDB anchor",
                           "writes/s", "p99 us", "ratio");
  std::cout << fmt::format("|{:-<40}|{:-<14}|{:-<11}|{:-<38}|{:-<14}|{:-<11}|{:-<8}|\n", "", "", "",
                           "", "", "", "");
  for (const Row& r : rows) {
    const Figure ours = RunOurs(FreshDir(base, "ours"), r.clients, r.batch, r.in_flight, seconds);
    const Figure raw = RunRaw(FreshDir(base, "raw"), r.clients, r.batch, seconds);
    std::cout << fmt::format(
                     "| {:<38} | {:>12.0f} | {:>9} | {:<36} | {:>12.0f} | {:>9} | {:>5.2f}x |\n",
                     r.name, ours.per_second, ours.p99_us, r.anchor, raw.per_second, raw.p99_us,
                     ours.per_second / raw.per_second)
              << std::flush;
  }
  std::filesystem::remove_all(base);
  return 0;
}
