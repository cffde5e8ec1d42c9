// The gateway's replay worker (issue 26 item 4): a session's pending seeks coalesce, a closed
// session's jobs are not run, client requests are bounded per session, and sessions take
// turns, so one client's storm does not hold up another's replay.
#include "replay_worker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <string>
#include <vector>

namespace doppel::gateway {
namespace {

using Kind = ReplayWorker::Kind;
using Posted = ReplayWorker::Posted;

// Jobs record themselves here, in the order the worker ran them (only the worker writes).
struct Log {
  std::mutex mu;
  std::vector<std::string> ran;
  void Add(std::string s) {
    std::lock_guard lock(mu);
    ran.push_back(std::move(s));
  }
  std::vector<std::string> Get() {
    std::lock_guard lock(mu);
    return ran;
  }
};

// Holds the worker in a job of session `key` until released, so that posts pile up.
struct Gate {
  std::promise<void> entered, release;
  void Hold(ReplayWorker& w, ReplayWorker::Key key) {
    w.Post(key, Kind::kInternal, [this] {
      entered.set_value();
      release.get_future().wait();
    });
    entered.get_future().wait();
  }
};

// Waits until the worker has run everything posted so far: each job of a session of its own
// runs after one more turn of every other session, and no test queues 64 jobs in a session.
void Drain(ReplayWorker& w) {
  for (int i = 0; i < 64; ++i) {
    std::promise<void> done;
    static int key;
    w.Post(&key, Kind::kInternal, [&] { done.set_value(); });
    done.get_future().wait();
  }
}

TEST(ReplayWorkerTest, ASeekStormRunsOneSeekAndDoesNotHoldUpAnotherSession) {
  ReplayWorker w;
  Log log;
  int a = 0, b = 0;
  Gate gate;
  gate.Hold(w, &a);
  constexpr int kSeeks = 5000;
  for (int i = 0; i < kSeeks; ++i) {
    const Posted p = w.Post(&a, Kind::kSeek, [&log, i] { log.Add("a-seek " + std::to_string(i)); });
    ASSERT_EQ(p, i == 0 ? Posted::kQueued : Posted::kReplaced);
  }
  w.Post(&b, Kind::kInternal, [&log] { log.Add("b-open"); });
  gate.release.set_value();
  Drain(w);
  EXPECT_EQ(log.Get(), (std::vector<std::string>{"a-seek 4999", "b-open"}));
  const auto c = w.counters();
  EXPECT_EQ(c.seeks_run, 1u);
  EXPECT_EQ(c.seeks_coalesced, uint64_t{kSeeks - 1});
}

TEST(ReplayWorkerTest, SessionsTakeTurnsAndKeepTheirOwnOrder) {
  ReplayWorker w;
  Log log;
  int a = 0, b = 0, hold = 0;
  Gate gate;
  gate.Hold(w, &hold);
  for (int i = 0; i < 4; ++i)
    w.Post(&a, Kind::kRequest, [&log, i] { log.Add("a" + std::to_string(i)); });
  // A seek keeps its place after the requests sent before it; the replaced one goes.
  w.Post(&a, Kind::kSeek, [&log] { log.Add("a-seek old"); });
  w.Post(&a, Kind::kRequest, [&log] { log.Add("a4"); });
  w.Post(&a, Kind::kSeek, [&log] { log.Add("a-seek new"); });
  for (int i = 0; i < 2; ++i)
    w.Post(&b, Kind::kRequest, [&log, i] { log.Add("b" + std::to_string(i)); });
  gate.release.set_value();
  Drain(w);
  EXPECT_EQ(log.Get(),
            (std::vector<std::string>{"a0", "b0", "a1", "b1", "a2", "a3", "a4", "a-seek new"}));
}

TEST(ReplayWorkerTest, AClosedSessionsJobsAreNotRun) {
  ReplayWorker w;
  Log log;
  int a = 0, b = 0;
  Gate gate;
  gate.Hold(w, &b);
  w.Post(&a, Kind::kSeek, [&log] { log.Add("a-seek"); });
  for (int i = 0; i < 3; ++i) w.Post(&a, Kind::kRequest, [&log] { log.Add("a-request"); });
  w.Post(&b, Kind::kRequest, [&log] { log.Add("b-request"); });
  w.Drop(&a);
  gate.release.set_value();
  Drain(w);
  EXPECT_EQ(log.Get(), std::vector<std::string>{"b-request"});
  EXPECT_EQ(w.counters().jobs_dropped, 4u);
  EXPECT_EQ(w.counters().seeks_run, 0u);
}

TEST(ReplayWorkerTest, ClientRequestsAreBoundedPerSession) {
  ReplayWorker w;
  int a = 0, b = 0, hold = 0;
  std::atomic<int> ran = 0;
  Gate gate;
  gate.Hold(w, &hold);
  int refused = 0;
  for (size_t i = 0; i < ReplayWorker::kMaxRequests + 5; ++i) {
    if (w.Post(&a, Kind::kRequest, [&ran] { ++ran; }) == Posted::kRefused) ++refused;
  }
  EXPECT_EQ(refused, 5);
  // Subscription changes have their own, larger bound: a dashboard subscribes to three
  // channels per robot at once.
  for (size_t i = 0; i < ReplayWorker::kMaxRequests + 5; ++i) {
    EXPECT_EQ(w.Post(&a, Kind::kSubscription, [&ran] { ++ran; }), Posted::kQueued);
  }
  // Another session's requests, a seek and the session's own work are not affected.
  EXPECT_EQ(w.Post(&b, Kind::kRequest, [&ran] { ++ran; }), Posted::kQueued);
  EXPECT_EQ(w.Post(&a, Kind::kSeek, [&ran] { ++ran; }), Posted::kQueued);
  EXPECT_EQ(w.Post(&a, Kind::kInternal, [&ran] { ++ran; }), Posted::kQueued);
  gate.release.set_value();
  Drain(w);
  EXPECT_EQ(ran.load(), 2 * static_cast<int>(ReplayWorker::kMaxRequests) + 5 + 3);
  EXPECT_EQ(w.counters().requests_refused, 5u);
  // Once answered, the session may send again.
  EXPECT_EQ(w.Post(&a, Kind::kRequest, [&ran] { ++ran; }), Posted::kQueued);
}

}  // namespace
}  // namespace doppel::gateway
