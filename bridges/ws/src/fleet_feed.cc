#include "fleet_feed.h"

#include <fmt/format.h>

#include <atomic>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>
#include <unordered_map>
#include <zmq.hpp>

#include "channel_messages.h"
#include "doppel/core/json_text.h"
#include "doppel/core/log.h"
#include "doppel/core/utf8.h"
#include "doppel/eventstore/subscription.h"
#include "doppel/eventstore/zmq_security.h"
#include "doppel/schemas/payloads.h"
#include "doppel/schemas/robot_events_generated.h"
#include "doppel/schemas/twin_state_generated.h"
#include "doppel/schemas/verify_root.h"
#include "event_json_values.h"
#include "ros_messages.h"

namespace doppel::gateway {
namespace {

constexpr std::string_view kComponent = "gateway";
using nlohmann::json;

// What /fleet/summary says about one robot, from its latest TwinState.
struct RobotSummary {
  json row;
  TimeNs last_observation_ns = 0;
  int64_t last_seen_mono = 0;
};

json SummaryRow(const json& twin) {
  json row;
  for (const char* key : {"robot_id", "model", "mode", "silent", "staleness_ms", "alerts"}) {
    row[key] = twin[key];
  }
  json codes = json::array();
  for (const auto& f : twin["faults"]) codes.push_back(f["code"]);
  row["faults"] = codes;
  const auto& p = twin["prediction"];
  row["collision_predicted"] = p.is_object() && p["collision_predicted"].get<bool>();
  row["collision_in_s"] = p.is_object() ? p["collision_in_s"] : json(nullptr);
  row["limit_violations"] = p.is_object() ? p["limit_violations"] : json(0);
  const auto& a = twin["accuracy"];
  // Mean base error at the 1 s horizon, the dashboard's headline accuracy figure.
  if (a.is_object() && a["mean_base_error_m"].size() > 1 && a["scored"].size() > 1 &&
      a["scored"][1].get<double>() > 0) {
    row["accuracy_1s_m"] = a["mean_base_error_m"][1];
  } else {
    row["accuracy_1s_m"] = nullptr;
  }
  row["x"] = twin["base_pose"]["position"]["x"];
  row["y"] = twin["base_pose"]["position"]["y"];
  return row;
}

}  // namespace

std::vector<std::string> RobotTopics(const std::string& robot) {
  const std::string p = "/" + robot + "/";
  return {p + "twin", p + "twin_fb",    p + "joint_states",
          p + "pose", p + "prediction", p + "events"};
}

class FleetFeed::Impl {
 public:
  Impl(FeedOptions options, Sink sink) : options_(std::move(options)), sink_(std::move(sink)) {}

  Status Start() {
    // Bounded: states are latest-value-wins anyway.
    auto sub = eventstore::ConnectSubscriber(options_.twin_publish, "twin/", 10000);
    if (!sub.ok()) return sub.status();
    sub_ = std::move(sub).value();
    if (options_.open_feed) {
      auto events = options_.open_feed(std::nullopt, "robot-", "");
      if (!events.ok()) return events.status();
      events_ = std::move(events).value();
    } else if (!options_.store.empty()) {
      eventstore::SubscriptionOptions so;
      so.store = options_.store;
      so.publish = options_.publish;
      so.stream_prefix = "robot-";
      auto events = eventstore::Subscription::Start(so);
      if (!events.ok()) return events.status();
      events_ = std::move(events).value();
    }
    thread_ = std::thread([this] { Run(); });
    return Status::Ok();
  }

  void SetRosDemand(bool wanted) { ros_demand_ = wanted; }

  ~Impl() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Run() {
    const int64_t summary_every = options_.summary_hz > 0 ? 1e9 / options_.summary_hz : 0;
    const int64_t time_every = options_.time_hz > 0 ? 1e9 / options_.time_hz : 0;
    int64_t next_summary = MonotonicNowNs(), next_time = MonotonicNowNs();
    while (!stop_) {
      zmq::pollitem_t item = {sub_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(events_ ? 2 : 20));
      FeedBatch batch;
      // Take what arrived; when a robot's state arrived more than once since the last pass
      // (this thread fell behind), only its newest is converted: latest value wins here too.
      std::map<std::string, zmq::message_t> newest;
      zmq::message_t topic, body;
      int taken = 0;
      while (taken < 5000 && sub_.recv(topic, zmq::recv_flags::dontwait)) {
        ++taken;
        if (!topic.more() || !sub_.recv(body, zmq::recv_flags::dontwait)) continue;
        newest[std::string(topic.to_string_view().substr(5))] = std::move(body);
      }
      for (auto& [robot, state] : newest) OnTwinState(robot, state, batch);
      if (events_) {
        for (int i = 0; i < 5000; ++i) {
          auto next = events_->Next(std::chrono::milliseconds(0));
          if (!next.ok()) {
            log::Warn(kComponent, "event feed: {}", next.status().message());
            break;
          }
          if (!next->has_value()) break;
          OnEvent(**next, batch);
        }
      }
      const int64_t now = MonotonicNowNs();
      if (summary_every && now >= next_summary) {
        next_summary = now + summary_every;
        Forget(now, batch);
        batch.messages.push_back({"/fleet/summary", Summary(), WallNowNs()});
      }
      if (time_every && now >= next_time && clock_ != 0) {
        next_time = now + time_every;
        batch.clock = clock_;
      }
      if (!batch.messages.empty() || !batch.new_robots.empty() || batch.clock != 0 ||
          !batch.gone_robots.empty()) {
        sink_(std::move(batch));
      }
    }
  }

  void Seen(const std::string& robot, FeedBatch& batch) {
    auto [it, inserted] = robots_.try_emplace(robot);
    it->second.last_seen_mono = MonotonicNowNs();
    if (inserted) batch.new_robots.push_back(robot);
  }

  void OnTwinState(const std::string& robot, const zmq::message_t& body, FeedBatch& batch) {
    const uint8_t* bytes = eventstore::AlignedBytes(body, scratch_);
    auto verified = schemas::VerifyRoot<twin::TwinState>(
        std::string_view(reinterpret_cast<const char*>(bytes), body.size()), "TwinState",
        twin::TwinStateIdentifier());
    if (!verified.ok()) {
      malformed_.Warn("dropping a malformed TwinState for {}", ScrubUtf8(robot));
      return;
    }
    const twin::TwinState* s = *verified;
    Seen(robot, batch);
    const TimeNs now = WallNowNs();
    const TimeNs stamp = s->published_ns() ? s->published_ns() : now;
    clock_ = std::max(clock_, stamp);
    json twin;
    AppendStateMessages(robot, *s,
                        std::make_shared<const std::string>(body.data<char>(), body.size()), stamp,
                        now, options_.frame, batch.messages, &twin);
    RobotSummary& summary = robots_[robot];
    summary.row = SummaryRow(twin);
    summary.last_observation_ns = s->last_observation_ns();
    if (ros_demand_.load(std::memory_order_relaxed)) RosFromState(robot, *s, stamp, batch);
  }

  // The state as ROS messages for rosbridge clients. /diagnostics goes out at most once a
  // second per robot (or when its level changes), as a diagnostic updater publishes.
  void RosFromState(const std::string& robot, const twin::TwinState& s, TimeNs stamp,
                    FeedBatch& batch) {
    const std::string p = "/" + robot + "/";
    if (s.joint_names() && s.joint_names()->size() > 0) {
      batch.ros_messages.push_back(
          {p + std::string(kRosJointStates), robot, RosJointStatePublish(robot, s, stamp)});
    }
    batch.ros_messages.push_back(
        {p + std::string(kRosOdom), robot, RosOdometryPublish(robot, s, stamp, options_.frame)});
    if (auto tf = RosTfPublish(robot, s, stamp, options_.frame)) {
      batch.ros_messages.push_back({std::string(kRosTf), robot, std::move(tf)});
    }
    const int64_t now = MonotonicNowNs();
    auto& diag = diagnostics_[robot];
    const int level = s.silent() ? 3 : s.faults() && s.faults()->size() > 0 ? 1 : 0;
    if (now - diag.first >= 1'000'000'000 || level != diag.second) {
      diag = {now, level};
      batch.ros_messages.push_back(
          {std::string(kRosDiagnostics), robot, RosDiagnosticsPublish(robot, s, stamp)});
    }
  }

  void OnEvent(const eventstore::RecordedEvent& e, FeedBatch& batch) {
    const std::string robot(e.stream().substr(6));  // "robot-<id>"
    const std::string_view type = e.type();
    if (IsObservation(type)) return;
    Seen(robot, batch);
    AppendEventMessages(e, options_.frame, batch.messages, payload_scratch_);
    if (type == "PredictionMade" && ros_demand_.load(std::memory_order_relaxed)) {
      const auto* m =
          flatbuffers::GetRoot<events::PredictionMade>(AlignedBytes(e.payload(), payload_scratch_));
      batch.ros_messages.push_back({"/" + robot + "/" + std::string(kRosPredictedPath), robot,
                                    RosPathPublish(robot, *m, options_.frame)});
    }
  }

  void Forget(int64_t now_mono, FeedBatch& batch) {
    if (options_.forget_after_s <= 0) return;
    const int64_t limit = static_cast<int64_t>(options_.forget_after_s * 1e9);
    for (auto it = robots_.begin(); it != robots_.end();) {
      if (now_mono - it->second.last_seen_mono > limit) {
        batch.gone_robots.push_back(it->first);
        diagnostics_.erase(it->first);
        it = robots_.erase(it);
      } else {
        ++it;
      }
    }
  }

  std::shared_ptr<const std::string> Summary() {
    const TimeNs now = WallNowNs();
    json rows = json::array();
    for (auto& [robot, s] : robots_) {
      if (s.row.is_null()) continue;  // known from events only, no state yet
      s.row["staleness_ms"] = s.last_observation_ns ? (now - s.last_observation_ns) / 1e6 : -1.0;
      rows.push_back(s.row);
    }
    return Shared({{"timestamp", Stamp(now)}, {"robots", rows}});
  }

  FeedOptions options_;
  Sink sink_;
  zmq::socket_t sub_;
  std::unique_ptr<eventstore::EventFeed> events_;
  std::map<std::string, RobotSummary> robots_;
  // When each robot's /diagnostics last went out (monotonic ns) and at which level.
  std::unordered_map<std::string, std::pair<int64_t, int>> diagnostics_;
  TimeNs clock_ = 0;
  std::vector<uint64_t> scratch_;          // for misaligned messages
  std::vector<uint64_t> payload_scratch_;  // for payloads nested in envelopes
  log::RateLimitedWarning malformed_{kComponent};
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::atomic<bool> ros_demand_{false};
};

Result<std::unique_ptr<FleetFeed>> FleetFeed::Start(FeedOptions options, Sink sink) {
  auto impl = std::make_unique<Impl>(std::move(options), std::move(sink));
  if (Status s = impl->Start(); !s.ok()) return s;
  return std::unique_ptr<FleetFeed>(new FleetFeed(std::move(impl)));
}

FleetFeed::FleetFeed(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FleetFeed::~FleetFeed() = default;
void FleetFeed::SetRosDemand(bool wanted) { impl_->SetRosDemand(wanted); }

}  // namespace doppel::gateway
