#include "doppel/replay/fleet_state.h"

#include <algorithm>
#include <atomic>
#include <functional>
#include <thread>
#include <unordered_map>

#include "doppel/twins/robot_aggregate.h"

namespace doppel::replay {

const twins::RobotModel& RobotTwin::model_or_generic() const {
  static const twins::RobotModel generic = twins::RobotModel::Generic("generic", {});
  return model ? *model : generic;
}

namespace {

using eventstore::GlobalPosition;

// Models by name for one fold worker (null: not built in).
using ModelCache = std::map<std::string, std::shared_ptr<const twins::RobotModel>, std::less<>>;

std::shared_ptr<const twins::RobotModel> CachedModel(ModelCache& cache, const std::string& name) {
  auto it = cache.find(name);
  if (it != cache.end()) return it->second;
  std::shared_ptr<const twins::RobotModel> model;
  if (auto built = twins::RobotModel::Builtin(name); built.ok()) {
    model = std::make_shared<const twins::RobotModel>(std::move(built).value());
  }
  return cache.emplace(name, model).first->second;
}

void Fold(RobotTwin& twin, const eventstore::RecordedEvent& e, ModelCache& models,
          const schemas::Upcasters& upcasters) {
  // Only a registration names a model (twins::Apply).
  if (e.type() != "RobotRegistered") {
    twins::Apply(twin.state, e, twin.model_or_generic(), upcasters);
    return;
  }
  const std::string model_before = twin.state.model;
  twins::Apply(twin.state, e, twin.model_or_generic(), upcasters);
  if (twin.state.model != model_before || !twin.model) {
    twin.model = CachedModel(models, twin.state.model);
  }
}

// The robot's newest usable snapshot before `at`, or the empty state.
Result<RobotTwin> StartOf(const eventstore::EventStore& store, const std::string& robot, TimeNs at,
                          ModelCache& models) {
  RobotTwin twin;
  twin.state.robot_id = robot;
  auto snapshot = store.LoadSnapshotAt(twins::RobotStream(robot), at);
  if (snapshot.ok() && snapshot->schema_version == twins::kSnapshotSchemaVersion) {
    auto decoded = twins::DecodeState(snapshot->state, snapshot->schema_version);
    if (decoded.ok() && decoded->last_event_ns <= at &&
        static_cast<uint64_t>(decoded->stream_version) == snapshot->version) {
      twin.state = std::move(decoded).value();
      twin.model = CachedModel(models, twin.state.model);
    }
  } else if (!snapshot.ok() && snapshot.status().code() != Status::Code::kNotFound) {
    return snapshot.status();
  }
  return twin;
}

// Folds the robot's own stream from after its start up to `at`.
Status FoldStream(const eventstore::EventStore& store, RobotTwin& twin, TimeNs at,
                  ModelCache& models, const schemas::Upcasters& upcasters) {
  const std::string stream = twins::RobotStream(twin.state.robot_id);
  auto next = static_cast<eventstore::StreamVersion>(twin.state.stream_version + 1);
  // Pages start short and double, so what is read past `at` stays below what is folded.
  size_t page_size = 16;
  for (;; page_size = std::min<size_t>(page_size * 2, 1024)) {
    auto page = store.ReadStream(stream, next, eventstore::Direction::kForward, page_size);
    if (!page.ok() && page.status().code() == Status::Code::kNotFound) return Status::Ok();
    if (!page.ok()) return page.status();
    for (const auto& e : page->events) {
      if (e.recorded_ns() > at) return Status::Ok();
      Fold(twin, e, models, upcasters);
    }
    if (page->end || page->events.empty()) return Status::Ok();
    next = page->next;
  }
}

// Runs job(i, worker) for i in [0, n) on up to `workers` threads (this one included).
Status ForEach(size_t n, size_t workers, const std::function<Status(size_t, size_t)>& job) {
  std::vector<Status> failures(workers, Status::Ok());
  std::atomic<size_t> claimed{0};
  auto work = [&](size_t w) {
    for (size_t i; (i = claimed.fetch_add(1)) < n;) {
      if (Status s = job(i, w); !s.ok()) {
        failures[w] = s;
        claimed = n;
        return;
      }
    }
  };
  std::vector<std::thread> threads;
  for (size_t w = 1; w < workers; ++w) threads.emplace_back(work, w);
  work(0);
  for (auto& t : threads) t.join();
  for (const Status& s : failures) DOPPEL_RETURN_IF_ERROR(s);
  return Status::Ok();
}

}  // namespace

Result<FleetState> FleetState::At(const eventstore::EventStore& store, const Window& window,
                                  TimeNs at) {
  // Each robot starts from its newest snapshot before T (the store keeps a history of them,
  // one every snapshot_every_events of a robot as its twin saves them) and folds its events
  // after it up to T, as `doppel state --at T` does. Those events mostly lie together at the
  // end of the log before T: one sequential pass from the earliest start reads them for every
  // robot at once. A robot starting far behind the rest (no snapshot: a history recorded
  // without a twin; an idle robot) reads its own stream instead, on other threads meanwhile.
  std::vector<std::string> robots;
  std::string after;
  for (;;) {
    auto page = store.ListStreams("robot-", after, 1024);
    if (!page.ok()) return page.status();
    for (const std::string& stream : page->streams) {
      std::string robot(RobotOfStream(stream));
      if (window.AdmitsRobot(robot)) robots.push_back(std::move(robot));
    }
    if (page->end || page->streams.empty()) break;
    after = page->streams.back();
  }
  const size_t workers =
      robots.size() < 64 ? 1 : std::clamp<size_t>(std::thread::hardware_concurrency(), 1, 4);
  std::vector<ModelCache> caches(workers);

  std::vector<RobotTwin> twins(robots.size());
  DOPPEL_RETURN_IF_ERROR(ForEach(robots.size(), workers, [&](size_t i, size_t w) {
    auto start = StartOf(store, robots[i], at, caches[w]);
    if (!start.ok()) return start.status();
    twins[i] = std::move(start).value();
    return Status::Ok();
  }));

  auto end = store.PositionAtTime(at == eventstore::kTimeMax ? at : at + 1);
  if (!end.ok()) return end.status();
  // Scanning costs a read of every event in the range; a robot's own stream a lookup per
  // event of it. A few dozen positions per robot is what its twin's snapshots leave between
  // them; further back than that, its own stream is cheaper.
  const uint64_t budget = std::max<uint64_t>(65'536, 128 * robots.size());
  const GlobalPosition floor = *end > budget ? *end - budget : 0;
  GlobalPosition scan_from = UINT64_MAX;
  std::vector<size_t> own_stream;
  std::unordered_map<std::string_view, RobotTwin*> scanned;
  for (size_t i = 0; i < robots.size(); ++i) {
    const twins::RobotState& s = twins[i].state;
    if (s.stream_version < 0 || s.last_position + 1 < floor) {
      own_stream.push_back(i);
    } else if (s.last_position + 1 < *end) {
      scan_from = std::min(scan_from, s.last_position + 1);
      scanned.emplace(robots[i], &twins[i]);
    }
  }

  // The scan here, the robots that read their own streams on the other workers meanwhile.
  FleetState fleet;
  Status others = Status::Ok();
  std::thread other_workers;
  if (!own_stream.empty()) {
    const size_t helpers = scanned.empty() ? workers : std::max<size_t>(1, workers - 1);
    other_workers = std::thread([&, helpers] {
      others = ForEach(own_stream.size(), helpers, [&](size_t k, size_t w) {
        // Caches from the last: the first is the scan's.
        return FoldStream(store, twins[own_stream[k]], at, caches[workers - 1 - w],
                          fleet.upcasters_);
      });
    });
  }
  Status scan = Status::Ok();
  for (GlobalPosition next = scan_from; !scanned.empty() && next < *end;) {
    auto page = store.ReadAll(next, 4096, at);
    if (!page.ok()) {
      scan = page.status();
      break;
    }
    for (const auto& e : page->events) {
      auto it = scanned.find(RobotOfStream(e.stream()));
      if (it == scanned.end()) continue;
      RobotTwin& twin = *it->second;
      if (static_cast<int64_t>(e.version()) > twin.state.stream_version) {
        Fold(twin, e, caches[0], fleet.upcasters_);
      }
    }
    if (page->end || page->events.empty()) break;
    next = page->next;
  }
  if (other_workers.joinable()) other_workers.join();
  DOPPEL_RETURN_IF_ERROR(scan);
  DOPPEL_RETURN_IF_ERROR(others);

  for (ModelCache& cache : caches) fleet.models_.merge(cache);
  for (size_t i = 0; i < robots.size(); ++i) {
    RobotTwin& twin = twins[i];
    if (twin.state.stream_version < 0) continue;                      // nothing recorded by then
    if (twin.model) twin.model = fleet.ModelNamed(twin.state.model);  // one instance per model
    fleet.robots_.emplace(std::move(robots[i]), std::move(twin));
  }
  return fleet;
}

std::shared_ptr<const twins::RobotModel> FleetState::ModelNamed(const std::string& name) {
  auto it = models_.find(name);
  if (it != models_.end()) return it->second;
  std::shared_ptr<const twins::RobotModel> model;
  if (auto built = twins::RobotModel::Builtin(name); built.ok()) {
    model = std::make_shared<const twins::RobotModel>(std::move(built).value());
  }
  models_.emplace(name, model);
  return model;
}

void FleetState::Apply(const eventstore::RecordedEvent& e) {
  const std::string_view robot = RobotOfStream(e.stream());
  if (robot.empty()) return;
  auto it = robots_.find(robot);
  if (it == robots_.end()) {
    RobotTwin twin;
    twin.state.robot_id = std::string(robot);
    it = robots_.emplace(std::string(robot), std::move(twin)).first;
  }
  ApplyTo(it->second, e);
}

void FleetState::ApplyTo(RobotTwin& twin, const eventstore::RecordedEvent& e) {
  if (e.type() != "RobotRegistered") {  // only a registration names a model
    twins::Apply(twin.state, e, twin.model_or_generic(), upcasters_);
    return;
  }
  const std::string model_before = twin.state.model;
  twins::Apply(twin.state, e, twin.model_or_generic(), upcasters_);
  if (twin.state.model != model_before || !twin.model) twin.model = ModelNamed(twin.state.model);
}

const RobotTwin* FleetState::Find(std::string_view robot) const {
  auto it = robots_.find(robot);
  return it == robots_.end() ? nullptr : &it->second;
}

}  // namespace doppel::replay
