// TwinService: the twin process. It owns the robots whose id hashes to partition I of N,
// folds their events into aggregates (from the store's snapshots after a restart), predicts
// with physics when a command arrives and periodically while new events arrive, appends what
// it derives (PredictionMade, PredictionAlert, RobotWentSilent, RobotResumed) with
// causation = the triggering event, and publishes each robot's TwinState on its own PUB
// socket (topic "twin/<robot>", at most publish_hz per robot, latest value wins).
//
// Exactly-once application across restarts: the service checkpoints the next global
// position it has not applied (a snapshot of stream "twin-checkpoint-<I>-of-<N>"). After a
// restart a robot's state is rebuilt from the store up to the version before the first
// event it sees again. Derived events get ids computed from the twin partition and the
// causing event, so deriving them again after a crash is an idempotent duplicate.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "doppel/core/metrics.h"
#include "doppel/eventstore/event_feed.h"
#include "doppel/eventstore/event_store.h"
#include "doppel/eventstore/zmq_security.h"
#include "doppel/twins/predictor.h"
#include "doppel/twins/scene.h"

namespace doppel::twins {

struct TwinServiceOptions {
  std::string store = "tcp://127.0.0.1:7600";    // store ROUTER
  std::string publish = "tcp://127.0.0.1:7601";  // store PUB
  std::string twin_publish = "tcp://127.0.0.1:7602";
  std::optional<eventstore::CurveClientConfig> curve;
  int partition = 0;
  int partitions = 1;
  std::shared_ptr<const Scene> scene = std::make_shared<Scene>();
  // Also the spacing of the store's snapshot history, so the state at any past moment (a replay
  // seek, `doppel state --at`) folds at most this many events of a robot.
  uint64_t snapshot_every_events = 32;
  double snapshot_every_s = 30;
  double publish_hz = 30;
  double predict_hz = 10;
  double silent_after_s = 2.0;
  PredictionOptions prediction;
  // How to reach a store other than a store server (PostgreSQL): the command line passes
  // these, so this library links no database client. Empty: a store server at `store` and
  // `publish`.
  eventstore::StoreOpener open_store;
  eventstore::FeedOpener open_feed;
};

// Which partition of `partitions` owns `robot_id` (a stable FNV-1a hash).
int PartitionOf(std::string_view robot_id, int partitions);

class TwinService {
 public:
  static Result<std::unique_ptr<TwinService>> Start(TwinServiceOptions options);
  ~TwinService();  // stops, saves the checkpoint

  struct Counters {
    uint64_t robots = 0;
    uint64_t applied = 0;
    uint64_t other_partition = 0;
    uint64_t predictions = 0;
    uint64_t alerts = 0;
    uint64_t published = 0;
    uint64_t append_errors = 0;
    uint64_t skipped = 0;              // events counted and skipped (bad values, unknown type)
    uint64_t predictions_refused = 0;  // non-finite state or command: ODE never sees it
    uint64_t warnings_suppressed = 0;  // skip/refusal warnings not logged (rate limit)
    uint64_t checkpoint = 0;           // next global position not yet applied
    uint64_t position = 0;       // next global position not yet seen (live; checkpoint is saved)
    uint64_t silent_robots = 0;  // robots now silent (checked once a second)
  };
  Counters counters() const;
  // Wall time of each Predictor::Predict, in seconds.
  const Histogram& prediction_seconds() const;
  const std::string& twin_publish_endpoint() const;

 private:
  class Impl;
  explicit TwinService(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace doppel::twins
