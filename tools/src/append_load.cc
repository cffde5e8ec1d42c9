#include "append_load.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "doppel/schemas/robot_events_generated.h"

namespace doppel::tools {

std::string BlobPayload(int bytes) {
  flatbuffers::FlatBufferBuilder fbb(static_cast<size_t>(bytes) + 64);
  std::vector<uint8_t> data(static_cast<size_t>(std::max(0, bytes - 24)));
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 131);
  fbb.Finish(events::CreateBlob(fbb, fbb.CreateVector(data)));
  return std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
}

Result<AppendLoadResult> RunAppendLoad(eventstore::EventStore& store, const AppendLoadOptions& o) {
  if (o.clients < 1 || o.batch < 1 || o.payload_bytes < 0 || o.duration_s <= 0) {
    return Status::InvalidArgument("clients, batch and duration must be positive");
  }
  int ack_fd = -1;
  if (!o.ack_log.empty()) {
    ack_fd = ::open(o.ack_log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (ack_fd < 0) {
      return Status::IOError(
          fmt::format("cannot open ack log {}: {}", o.ack_log, std::strerror(errno)));
    }
  }
  const std::string payload = BlobPayload(o.payload_bytes);
  const std::string prefix =
      o.stream_prefix.empty() ? fmt::format("bench-{}", EventId::Random().ToString().substr(0, 8))
                              : o.stream_prefix;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> appended{0};
  std::mutex error_mu;
  Status first_error;
  auto fail = [&](Status s) {
    std::lock_guard lock(error_mu);
    if (first_error.ok()) first_error = std::move(s);
    stop = true;
  };
  std::vector<LatencySamples> latencies(static_cast<size_t>(o.clients));
  auto make_request = [&](const std::string& stream) {
    eventstore::AppendRequest request{stream, eventstore::ExpectedVersion::Any(), {}};
    for (int i = 0; i < o.batch; ++i) {
      eventstore::NewEvent e;
      e.id = EventId::Random();  // client-chosen ids, as a retrying client sends them
      e.type = "Blob";
      e.payload = payload;
      request.events.push_back(std::move(e));
    }
    return request;
  };
  // Records an acknowledged append; returns false when the load must stop.
  auto acknowledge = [&](int c, const std::string& stream, int64_t t0,
                         const Result<eventstore::AppendResult>& result) {
    if (!result.ok()) {
      fail(result.status());
      return false;
    }
    latencies[static_cast<size_t>(c)].Add(MonotonicNowNs() - t0);
    appended.fetch_add(result->ids.size(), std::memory_order_relaxed);
    if (ack_fd >= 0) {
      std::string lines;
      for (size_t i = 0; i < result->ids.size(); ++i) {
        lines += fmt::format("{} {} {} {}\n", result->ids[i].ToString(), stream,
                             result->first_version + i, result->first_position + i);
      }
      // One write(2) per batch: O_APPEND keeps lines whole across threads.
      if (::write(ack_fd, lines.data(), lines.size()) != static_cast<ssize_t>(lines.size())) {
        fail(Status::IOError("writing the ack log failed"));
        return false;
      }
    }
    return true;
  };

  std::vector<std::string> streams;
  for (int c = 0; c < o.clients; ++c) streams.push_back(fmt::format("{}-{}", prefix, c));
  std::vector<std::thread> threads;
  std::mutex in_flight_mu;
  std::condition_variable in_flight_cv;
  int in_flight = 0;
  std::function<void(int)> send;  // in-flight mode: one closed loop per client
  send = [&](int c) {
    if (stop.load(std::memory_order_relaxed)) {
      std::lock_guard lock(in_flight_mu);
      --in_flight;
      in_flight_cv.notify_all();
      return;
    }
    const int64_t t0 = MonotonicNowNs();
    store.AppendAsync(make_request(streams[c]),
                      [&, c, t0](Result<eventstore::AppendResult> result) {
                        acknowledge(c, streams[c], t0, result);
                        send(c);
                      });
  };
  const int64_t start = MonotonicNowNs();
  if (o.in_flight) {
    in_flight = o.clients;
    for (int c = 0; c < o.clients; ++c) send(c);
  } else {
    for (int c = 0; c < o.clients; ++c) {
      threads.emplace_back([&, c] {
        while (!stop.load(std::memory_order_relaxed)) {
          const int64_t t0 = MonotonicNowNs();
          if (!acknowledge(c, streams[c], t0, store.Append(make_request(streams[c])))) break;
        }
      });
    }
  }
  const int64_t deadline = start + static_cast<int64_t>(o.duration_s * 1e9);
  while (!stop.load() && MonotonicNowNs() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  stop = true;
  for (auto& t : threads) t.join();
  {
    std::unique_lock lock(in_flight_mu);
    in_flight_cv.wait(lock, [&] { return in_flight == 0; });
  }
  if (ack_fd >= 0) ::close(ack_fd);
  if (!first_error.ok()) return first_error;
  AppendLoadResult result;
  result.seconds = (MonotonicNowNs() - start) / 1e9;
  result.events = appended.load();
  for (const auto& l : latencies) result.ack_latency_ns.Merge(l);
  return result;
}

}  // namespace doppel::tools
