#include "doppel/twins/twin_service.h"

#include <fmt/format.h>

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "doppel/core/log.h"
#include "doppel/core/utf8.h"
#include "doppel/eventstore/log_format.h"
#include "doppel/eventstore/store_client.h"
#include "doppel/eventstore/subscription.h"
#include "doppel/twins/robot_aggregate.h"

namespace doppel::twins {
namespace {

constexpr char kComponent[] = "twin";

uint64_t Fnv1a(std::string_view text, uint64_t seed = 14695981039346656037ULL) {
  uint64_t h = seed;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

// A name-based id for something this twin derives from `cause`, stable across restarts.
EventId DerivedId(int partition, int partitions, const EventId& cause, std::string_view kind) {
  const std::string key = fmt::format("{}/{}/{}/{}", partition, partitions, cause.ToString(), kind);
  uint64_t hi = Fnv1a(key), lo = Fnv1a(key, 0x9E3779B97F4A7C15ULL);
  hi = (hi & ~0xF000ULL) | 0x5000ULL;  // version 5 style: name-based
  lo = (lo & ~(0xC0ULL << 56)) | (0x80ULL << 56);
  return EventId(hi, lo);
}

std::string Finish(flatbuffers::FlatBufferBuilder& fbb) {
  return std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
}

events::Pose ToPose(const Eigen::Isometry3d& p) {
  const Eigen::Quaterniond q(p.rotation());
  return events::Pose(events::Vec3(p.translation().x(), p.translation().y(), p.translation().z()),
                      events::Quat(q.x(), q.y(), q.z(), q.w()));
}

}  // namespace

int PartitionOf(std::string_view robot_id, int partitions) {
  return partitions <= 1 ? 0
                         : static_cast<int>(Fnv1a(robot_id) % static_cast<uint64_t>(partitions));
}

class TwinService::Impl {
 public:
  explicit Impl(TwinServiceOptions options) : options_(std::move(options)) {}

  Status Start() {
    if (options_.partitions < 1 || options_.partition < 0 ||
        options_.partition >= options_.partitions) {
      return Status::InvalidArgument(
          fmt::format("partition {}/{} is not valid", options_.partition, options_.partitions));
    }
    checkpoint_stream_ =
        fmt::format("twin-checkpoint-{}-of-{}", options_.partition, options_.partitions);
    if (options_.open_store) {
      auto store = options_.open_store();
      if (!store.ok()) return store.status();
      client_ = std::move(store).value();
    } else {
      eventstore::StoreClientOptions client_options;
      client_options.endpoint = options_.store;
      client_options.curve = options_.curve;
      auto client = eventstore::StoreClient::Connect(client_options);
      if (!client.ok()) return client.status();
      client_ = std::move(client).value();
    }
    // Where to resume: the saved checkpoint, or the beginning.
    auto saved = client_->LoadSnapshot(checkpoint_stream_);
    if (saved.ok() && saved->state.size() == 8) {
      checkpoint_ = eventstore::format::GetBigEndian64(saved->state);
    } else if (!saved.ok() && saved.status().code() != Status::Code::kNotFound) {
      return saved.status();
    }
    if (options_.open_feed) {
      auto feed = options_.open_feed(checkpoint_, "robot-", "");
      if (!feed.ok()) return feed.status();
      subscription_ = std::move(feed).value();
    } else {
      eventstore::SubscriptionOptions sub;
      sub.store = options_.store;
      sub.publish = options_.publish;
      sub.curve = options_.curve;
      sub.from = checkpoint_;
      sub.stream_prefix = "robot-";
      auto subscription = eventstore::Subscription::Start(sub);
      if (!subscription.ok()) return subscription.status();
      subscription_ = std::move(subscription).value();
    }
    try {
      pub_ = zmq::socket_t(eventstore::SharedZmqContext(), zmq::socket_type::pub);
      pub_.set(zmq::sockopt::linger, 0);
      pub_.set(zmq::sockopt::sndhwm, 10000);
      pub_.bind(options_.twin_publish);
      twin_publish_ = pub_.get(zmq::sockopt::last_endpoint);
    } catch (const zmq::error_t& e) {
      return Status::Unavailable(
          fmt::format("cannot bind {}: {}", options_.twin_publish, e.what()));
    }
    log::Info(kComponent, "partition {}/{} resuming at position {}; TwinState on {}",
              options_.partition, options_.partitions, checkpoint_, twin_publish_);
    predictions_ = std::thread([this] { PredictionLoop(); });
    thread_ = std::thread([this] { Run(); });
    return Status::Ok();
  }

  ~Impl() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    {
      std::lock_guard lock(jobs_mu_);
      stop_predictions_ = true;
      jobs_.clear();
    }
    jobs_cv_.notify_all();
    if (predictions_.joinable()) predictions_.join();
    if (client_) SaveCheckpoint();
  }

  Counters counters() const {
    std::lock_guard lock(counters_mu_);
    Counters c = counters_;
    c.position = position_.load(std::memory_order_relaxed);
    c.warnings_suppressed = skipped_warning_.suppressed() + refused_warning_.suppressed();
    return c;
  }
  const Histogram& prediction_seconds() const { return prediction_seconds_; }
  const std::string& twin_publish() const { return twin_publish_; }

 private:
  struct Robot {
    RobotState state;
    std::shared_ptr<const RobotModel> model;
    std::shared_ptr<Predictor> predictor;
    EventId last_event_id;
    TimeNs last_event_occurred_ns = 0;
    int64_t last_observation_wall_ns = 0;
    int64_t last_publish_ns = 0;
    int64_t last_predict_ns = 0;
    int64_t last_snapshot_ns = 0;
    uint64_t events_since_snapshot = 0;
    bool dirty = false;
    bool predicted_latest = true;  // no event since the last prediction
  };

  void Run() {
    int64_t last_housekeeping = MonotonicNowNs();
    while (!stop_) {
      auto next = subscription_->Next(std::chrono::milliseconds(5));
      if (!next.ok()) {
        log::Warn(kComponent, "subscription: {}", next.status().ToString());
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      } else if (next->has_value()) {
        Handle(**next);
      }
      position_.store(subscription_->checkpoint(), std::memory_order_relaxed);
      const int64_t now = MonotonicNowNs();
      PublishDue(now);
      PredictDue(now);
      if (now - last_housekeeping > 1'000'000'000) {
        last_housekeeping = now;
        CheckSilence();
        SaveCheckpoint();
      }
    }
  }

  static std::shared_ptr<const RobotModel> ModelFor(const RobotState& state) {
    if (!state.model.empty()) {
      if (auto builtin = RobotModel::Builtin(state.model); builtin.ok()) {
        return std::make_shared<const RobotModel>(std::move(builtin).value());
      }
    }
    return std::make_shared<const RobotModel>(
        RobotModel::Generic(state.model.empty() ? "generic" : state.model, state.joint_names));
  }

  void SetModel(Robot& robot) {
    robot.model = ModelFor(robot.state);
    robot.predictor = robot.model->has_kinematics()
                          ? std::make_shared<Predictor>(robot.model, options_.scene)
                          : nullptr;
  }

  void Handle(const eventstore::RecordedEvent& e) {
    checkpoint_ = e.position() + 1;
    const std::string robot_id(e.stream().substr(6));  // after "robot-"
    if (PartitionOf(robot_id, options_.partitions) != options_.partition) {
      Count([](Counters& c) { ++c.other_partition; });
      return;
    }
    auto it = robots_.find(robot_id);
    if (it == robots_.end() ||
        it->second.state.stream_version + 1 < static_cast<int64_t>(e.version())) {
      // First sight since start (or a hole): rebuild up to the version before this event.
      Robot robot;
      auto state = Rebuild(*client_, robot_id, *ModelFor(RobotState{}), upcasters_, nullptr,
                           static_cast<int64_t>(e.version()) - 1);
      if (!state.ok()) {
        log::Warn(kComponent, "rebuilding {}: {}", robot_id, state.status().ToString());
        return;
      }
      robot.state = std::move(state).value();
      robot.state.robot_id = robot_id;
      SetModel(robot);
      if (robot.model->has_kinematics() && robot.state.stream_version >= 0) {
        // Replay with the real model so end-effector scoring matches a full rebuild.
        auto again = Rebuild(*client_, robot_id, *robot.model, upcasters_, nullptr,
                             static_cast<int64_t>(e.version()) - 1);
        if (again.ok()) robot.state = std::move(again).value();
      }
      it = robots_.insert_or_assign(robot_id, std::move(robot)).first;
      Count([&](Counters& c) { c.robots = robots_.size(); });
    }
    Robot& robot = it->second;
    if (robot.state.stream_version >= static_cast<int64_t>(e.version())) return;  // applied
    const bool was_silent = robot.state.silent;
    const std::string previous_model = robot.state.model;
    const auto before = robot.state.counters;
    Apply(robot.state, e, *robot.model, upcasters_);
    if (robot.state.counters.skipped_unknown_type != before.skipped_unknown_type ||
        robot.state.counters.skipped_bad_payload != before.skipped_bad_payload) {
      // Counted and skipped, never fatal: a log may hold events an older doppel accepted.
      Count([](Counters& c) { ++c.skipped; });
      skipped_warning_.Warn("robot {}: skipped {} at position {} ({})", ScrubUtf8(robot_id),
                            ScrubUtf8(e.type()), e.position(),
                            robot.state.counters.skipped_bad_payload != before.skipped_bad_payload
                                ? "payload does not fit the robot's state"
                                : "not a robot event type");
      robot.dirty = true;
      return;
    }
    if (robot.state.model != previous_model) SetModel(robot);
    robot.dirty = true;
    Count([](Counters& c) { ++c.applied; });
    const std::string_view type = e.type();
    // What the twins derive (predictions, alerts, silences) changes what is shown, but not
    // what the robot will do: it neither triggers a new prediction nor becomes a cause.
    const bool derived = type == "PredictionMade" || type == "PredictionAlert" ||
                         type == "RobotWentSilent" || type == "RobotResumed";
    if (!derived) {
      robot.last_event_id = e.id();
      robot.last_event_occurred_ns = e.occurred_ns() ? e.occurred_ns() : e.recorded_ns();
      robot.predicted_latest = false;
    }
    if (type == "JointStateObserved" || type == "PoseObserved") {
      robot.last_observation_wall_ns = WallNowNs();
      if (was_silent) {
        flatbuffers::FlatBufferBuilder fbb;
        fbb.Finish(events::CreateRobotResumed(
            fbb, robot.last_event_occurred_ns - robot.state.last_observation_ns));
        AppendDerived(robot_id, "RobotResumed", Finish(fbb), e.id(), "resumed");
      }
    }
    if (type == "CommandIssued") Predict(robot_id, robot);
    if (++robot.events_since_snapshot >= options_.snapshot_every_events ||
        (robot.last_snapshot_ns != 0 &&
         WallNowNs() - robot.last_snapshot_ns > options_.snapshot_every_s * 1e9)) {
      Snapshot(robot);
    }
    if (robot.last_snapshot_ns == 0) robot.last_snapshot_ns = WallNowNs();
  }

  void Snapshot(Robot& robot) {
    eventstore::Snapshot snap{RobotStream(robot.state.robot_id),
                              static_cast<uint64_t>(robot.state.stream_version),
                              kSnapshotSchemaVersion, 0, EncodeState(robot.state)};
    if (Status s = client_->SaveSnapshot(snap); !s.ok()) {
      log::Warn(kComponent, "snapshot of {}: {}", robot.state.robot_id, s.ToString());
    }
    robot.events_since_snapshot = 0;
    robot.last_snapshot_ns = WallNowNs();
  }

  bool Moving(const Robot& robot) const {
    const auto& c = robot.state.last_command;
    if (!c.present || c.kind == events::CommandKind::Stop) return false;
    if (c.kind == events::CommandKind::Velocity)
      return c.linear.norm() > 1e-6 || c.angular.norm() > 1e-6;
    return true;
  }

  void PredictDue(int64_t now) {
    if (options_.predict_hz <= 0) return;
    const int64_t period = static_cast<int64_t>(1e9 / options_.predict_hz);
    for (auto& [id, robot] : robots_) {
      if (robot.predicted_latest || !Moving(robot) || now - robot.last_predict_ns < period)
        continue;
      Predict(id, robot);
    }
  }

  void Predict(const std::string& robot_id, Robot& robot) {
    robot.last_predict_ns = MonotonicNowNs();
    robot.predicted_latest = true;
    if (!robot.predictor) return;  // generic model: state only
    const RobotModel& model = *robot.model;
    PredictionRequest request;
    request.base_pose = Eigen::Isometry3d::Identity();
    request.base_pose.translate(robot.state.base_position);
    request.base_pose.rotate(robot.state.base_orientation);
    request.joint_positions.assign(model.joint_names().size(), 0.0);
    for (size_t i = 0; i < robot.state.joint_names.size(); ++i) {
      if (auto m = model.MovableIndex(robot.state.joint_names[i])) {
        request.joint_positions[*m] = robot.state.joint_position[i];
      }
    }
    const auto& c = robot.state.last_command;
    if (c.present && c.kind == events::CommandKind::Velocity) {
      request.command = PredictionRequest::Command::kVelocity;
      request.linear = c.linear;
      request.angular = c.angular;
    } else if (c.present && c.kind == events::CommandKind::JointTargets) {
      request.command = PredictionRequest::Command::kJointTargets;
      request.joint_targets.assign(model.joint_names().size(), std::nan(""));
      for (size_t i = 0; i < c.joint_names.size() && i < c.joint_targets.size(); ++i) {
        if (auto m = model.MovableIndex(c.joint_names[i]))
          request.joint_targets[*m] = c.joint_targets[i];
      }
    } else if (c.present && c.kind == events::CommandKind::Stop) {
      request.command = PredictionRequest::Command::kStop;
    }
    // Physics runs on the prediction thread; the newest request per robot replaces an older
    // one still waiting, so a slow prediction never holds up events or piles up work.
    PredictionJob job{robot_id,
                      robot.model,
                      robot.predictor,
                      std::move(request),
                      robot.last_event_id,
                      robot.last_event_occurred_ns,
                      static_cast<uint64_t>(robot.state.stream_version)};
    {
      std::lock_guard lock(jobs_mu_);
      jobs_[robot_id] = std::move(job);
    }
    jobs_cv_.notify_one();
  }

  struct PredictionJob {
    std::string robot_id;
    std::shared_ptr<const RobotModel> model;
    std::shared_ptr<const Predictor> predictor;  // shared: the robot may swap models meanwhile
    PredictionRequest request;
    EventId cause;
    TimeNs start = 0;
    uint64_t based_on_version = 0;
  };

  void PredictionLoop() {
    while (true) {
      PredictionJob job;
      {
        std::unique_lock lock(jobs_mu_);
        jobs_cv_.wait(lock, [this] { return stop_predictions_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        job = std::move(jobs_.begin()->second);
        jobs_.erase(jobs_.begin());
      }
      RunPrediction(job);
    }
  }

  void RunPrediction(const PredictionJob& job) {
    const std::string& robot_id = job.robot_id;
    const PredictionRequest& request = job.request;
    const int64_t predict_start = MonotonicNowNs();
    const Prediction p = job.predictor->Predict(request, options_.prediction);
    prediction_seconds_.Observe((MonotonicNowNs() - predict_start) / 1e9);
    if (!p.refused.empty()) {
      Count([](Counters& c) { ++c.predictions_refused; });
      refused_warning_.Warn("robot {}: no prediction: {}", ScrubUtf8(robot_id), p.refused);
      return;
    }
    const TimeNs start = job.start;  // deterministic: the time of the state it started from
    flatbuffers::FlatBufferBuilder fbb(4096);
    std::vector<flatbuffers::Offset<events::PredictedSample>> samples;
    for (const auto& s : p.trajectory) {
      const events::Pose pose = ToPose(s.base_pose);
      samples.push_back(events::CreatePredictedSample(fbb,
                                                      static_cast<int64_t>(std::llround(s.t * 1e9)),
                                                      &pose, fbb.CreateVector(s.joint_positions)));
    }
    auto trajectory = fbb.CreateVector(samples);
    flatbuffers::Offset<events::PredictedCollision> collision;
    if (p.collision) {
      const events::Vec3 point(p.collision->point.x(), p.collision->point.y(),
                               p.collision->point.z());
      collision = events::CreatePredictedCollision(
          fbb, static_cast<int64_t>(std::llround(p.collision->t * 1e9)),
          fbb.CreateString(p.collision->link), fbb.CreateString(p.collision->obstacle), &point);
    }
    std::vector<flatbuffers::Offset<events::JointLimitViolation>> violations;
    for (const auto& v : p.limit_violations) {
      violations.push_back(events::CreateJointLimitViolation(
          fbb, fbb.CreateString(v.joint), static_cast<int64_t>(std::llround(v.t * 1e9)), v.value,
          v.limit));
    }
    auto violation_vector = fbb.CreateVector(violations);
    events::PredictionMadeBuilder b(fbb);
    b.add_start_ns(start);
    b.add_horizon_ns(static_cast<int64_t>(std::llround(options_.prediction.horizon_s * 1e9)));
    b.add_step_ns(static_cast<int64_t>(std::llround(options_.prediction.step_s * 1e9)));
    b.add_based_on_version(job.based_on_version);
    b.add_trajectory(trajectory);
    if (p.collision) b.add_collision(collision);
    b.add_limit_violations(violation_vector);
    fbb.Finish(b.Finish());
    const EventId cause = job.cause;
    AppendDerived(robot_id, "PredictionMade", Finish(fbb), cause, "prediction");
    Count([](Counters& c) { ++c.predictions; });
    // Alerts: one per predicted problem, for the control room.
    int index = 0;
    auto alert = [&](events::AlertKind kind, double t, const std::string& link,
                     const std::string& obstacle, const Eigen::Vector3d& point, double value,
                     double limit) {
      flatbuffers::FlatBufferBuilder a;
      const events::Vec3 contact(point.x(), point.y(), point.z());
      a.Finish(events::CreatePredictionAlert(a, kind, static_cast<int64_t>(std::llround(t * 1e9)),
                                             a.CreateString(link), a.CreateString(obstacle),
                                             &contact, value, limit, start));
      AppendDerived(robot_id, "PredictionAlert", Finish(a), cause,
                    fmt::format("alert-{}", index++));
      Count([](Counters& c) { ++c.alerts; });
    };
    if (p.collision) {
      alert(events::AlertKind::PredictedCollision, p.collision->t, p.collision->link,
            p.collision->obstacle, p.collision->point, 0, 0);
    }
    for (const auto& v : p.limit_violations) {
      alert(events::AlertKind::PredictedJointLimit, v.t, v.joint, "", Eigen::Vector3d::Zero(),
            v.value, v.limit);
    }
  }

  void AppendDerived(const std::string& robot_id, const std::string& type, std::string payload,
                     const EventId& cause, std::string_view kind) {
    eventstore::NewEvent e;
    e.id = DerivedId(options_.partition, options_.partitions, cause, kind);
    e.type = type;
    e.payload = std::move(payload);
    e.occurred_ns = WallNowNs();
    e.causation_id = cause;
    e.correlation_id = cause;
    client_->AppendAsync(
        {RobotStream(robot_id), eventstore::ExpectedVersion::Any(), {std::move(e)}},
        [this, type](Result<eventstore::AppendResult> r) {
          if (r.ok()) return;
          Count([](Counters& c) { ++c.append_errors; });
          log::Warn(kComponent, "appending {}: {}", type, r.status().ToString());
        });
  }

  void CheckSilence() {
    const int64_t now = WallNowNs();
    uint64_t silent = 0;
    for (auto& [id, robot] : robots_) {
      silent += robot.state.silent;
      if (robot.state.silent || robot.last_observation_wall_ns == 0) continue;
      if (now - robot.last_observation_wall_ns < options_.silent_after_s * 1e9) continue;
      flatbuffers::FlatBufferBuilder fbb;
      fbb.Finish(
          events::CreateRobotWentSilent(fbb, robot.state.last_observation_ns,
                                        static_cast<int64_t>(options_.silent_after_s * 1e9)));
      AppendDerived(id, "RobotWentSilent", Finish(fbb), robot.last_event_id, "silent");
      robot.last_observation_wall_ns = 0;  // once per silence
    }
    Count([&](Counters& c) { c.silent_robots = silent; });
  }

  void PublishDue(int64_t now) {
    const int64_t period = static_cast<int64_t>(1e9 / std::max(0.1, options_.publish_hz));
    for (auto& [id, robot] : robots_) {
      if (!robot.dirty || now - robot.last_publish_ns < period) continue;
      const std::string topic = "twin/" + id;
      const std::string bytes = EncodePublishedState(robot.state, *robot.model, WallNowNs());
      std::array<zmq::const_buffer, 2> frames = {zmq::buffer(topic), zmq::buffer(bytes)};
      zmq::send_multipart(pub_, frames, zmq::send_flags::dontwait);
      robot.dirty = false;
      robot.last_publish_ns = now;
      Count([](Counters& c) { ++c.published; });
    }
  }

  void SaveCheckpoint() {
    if (checkpoint_ == saved_checkpoint_) return;
    std::string position;
    eventstore::format::PutBigEndian64(&position, checkpoint_);
    if (Status s = client_->SaveSnapshot({checkpoint_stream_, 0, 1, 0, position}); s.ok()) {
      saved_checkpoint_ = checkpoint_;
      Count([&](Counters& c) { c.checkpoint = checkpoint_; });
    } else {
      log::Warn(kComponent, "saving checkpoint: {}", s.ToString());
    }
  }

  template <typename F>
  void Count(F f) {
    std::lock_guard lock(counters_mu_);
    f(counters_);
  }

  TwinServiceOptions options_;
  std::string checkpoint_stream_;
  std::unique_ptr<eventstore::EventStore> client_;
  std::unique_ptr<eventstore::EventFeed> subscription_;
  zmq::socket_t pub_;
  std::string twin_publish_;
  schemas::Upcasters upcasters_;
  std::map<std::string, Robot> robots_;
  uint64_t checkpoint_ = 0;
  uint64_t saved_checkpoint_ = UINT64_MAX;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex jobs_mu_;
  std::condition_variable jobs_cv_;
  std::map<std::string, PredictionJob> jobs_;  // newest per robot
  bool stop_predictions_ = false;
  std::thread predictions_;
  mutable std::mutex counters_mu_;
  Counters counters_;
  std::atomic<uint64_t> position_{0};
  Histogram prediction_seconds_{
      {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}};
  log::RateLimitedWarning skipped_warning_{kComponent};
  log::RateLimitedWarning refused_warning_{kComponent};
};

TwinService::TwinService(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TwinService::~TwinService() = default;

Result<std::unique_ptr<TwinService>> TwinService::Start(TwinServiceOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  DOPPEL_RETURN_IF_ERROR(impl->Start());
  return std::unique_ptr<TwinService>(new TwinService(std::move(impl)));
}

TwinService::Counters TwinService::counters() const { return impl_->counters(); }
const Histogram& TwinService::prediction_seconds() const { return impl_->prediction_seconds(); }
const std::string& TwinService::twin_publish_endpoint() const { return impl_->twin_publish(); }

}  // namespace doppel::twins
