#include "fleet_feed.h"

#include <fmt/format.h>

#include <atomic>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>
#include <unordered_map>
#include <zmq.hpp>

#include "doppel/core/json_text.h"
#include "doppel/core/log.h"
#include "doppel/core/utf8.h"
#include "doppel/eventstore/subscription.h"
#include "doppel/eventstore/zmq_security.h"
#include "doppel/schemas/payloads.h"
#include "doppel/schemas/robot_events_generated.h"
#include "doppel/schemas/twin_state_generated.h"
#include "event_json_values.h"
#include "ros_messages.h"

namespace doppel::gateway {
namespace {

constexpr std::string_view kComponent = "gateway";
using nlohmann::json;

json Stamp(TimeNs ns) { return {{"sec", ns / 1'000'000'000}, {"nsec", ns % 1'000'000'000}}; }

json Strings(const flatbuffers::Vector<flatbuffers::Offset<flatbuffers::String>>* v) {
  json out = json::array();
  if (v != nullptr) {
    for (const auto* s : *v) out.push_back(s->str());
  }
  return out;
}

std::string Str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }

auto Shared(const json& j) { return std::make_shared<const std::string>(SafeJsonDump(j)); }

// What /fleet/summary says about one robot, from its latest TwinState.
struct RobotSummary {
  json row;
  TimeNs last_observation_ns = 0;
  int64_t last_seen_mono = 0;
};

json TwinJson(const twin::TwinState& s, TimeNs now) {
  json j;
  j["timestamp"] = Stamp(s.published_ns());
  j["robot_id"] = Str(s.robot_id());
  j["version"] = s.stream_version();
  j["position"] = s.last_position();
  j["model"] = Str(s.model());
  j["mode"] = events::EnumNameRobotMode(s.mode());
  j["silent"] = s.silent();
  j["staleness_ms"] = s.last_observation_ns() ? (now - s.last_observation_ns()) / 1e6 : -1.0;
  j["joint_names"] = Strings(s.joint_names());
  j["joint_position"] = Doubles(s.joint_position());
  j["joint_velocity"] = Doubles(s.joint_velocity());
  j["base_pose"] = PoseJson(s.base_pose());
  if (const auto* t = s.base_twist()) {
    j["base_twist"] = {{"linear", Vec(t->linear())}, {"angular", Vec(t->angular())}};
  }
  json faults = json::array();
  if (s.faults()) {
    for (const auto* f : *s.faults()) {
      faults.push_back({{"code", Str(f->code())},
                        {"severity", events::EnumNameSeverity(f->severity())},
                        {"message", Str(f->message())}});
    }
  }
  j["faults"] = faults;
  json prediction = nullptr;
  if (const auto* p = s.prediction()) {
    prediction = {{"start_ns", p->start_ns()},
                  {"collision_predicted", p->collision_predicted()},
                  {"collision_in_s", p->collision_t_offset_ns() / 1e9},
                  {"collision_link", Str(p->collision_link())},
                  {"collision_obstacle", Str(p->collision_obstacle())},
                  {"limit_violations", p->limit_violations()}};
  }
  j["prediction"] = prediction;
  json accuracy = nullptr;
  if (const auto* a = s.accuracy()) {
    accuracy = {{"horizons_s", {0.5, 1.0, 2.0}},
                {"scored", Doubles(a->scored())},
                {"mean_base_error_m", Doubles(a->mean_base_error_m())},
                {"mean_tool_error_m", Doubles(a->mean_tool_error_m())}};
  }
  j["accuracy"] = accuracy;
  j["alerts"] = s.alerts();
  json links = json::array();
  if (s.link_names() && s.link_poses()) {
    const size_t n = std::min(s.link_names()->size(), s.link_poses()->size());
    for (size_t i = 0; i < n; ++i) {
      const auto* p = s.link_poses()->Get(i);
      links.push_back({{"name", s.link_names()->Get(i)->str()},
                       {"x", p->position().x()},
                       {"y", p->position().y()},
                       {"z", p->position().z()}});
    }
  }
  j["links"] = links;
  return j;
}

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

bool IsObservation(std::string_view type) {
  return type == "JointStateObserved" || type == "PoseObserved";
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
    if (!options_.store.empty()) {
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
    flatbuffers::Verifier verifier(bytes, body.size());
    if (!twin::VerifyTwinStateBuffer(verifier)) {
      malformed_.Warn("dropping a malformed TwinState for {}", ScrubUtf8(robot));
      return;
    }
    const auto* s = twin::GetTwinState(bytes);
    Seen(robot, batch);
    const TimeNs now = WallNowNs();
    const TimeNs stamp = s->published_ns() ? s->published_ns() : now;
    clock_ = std::max(clock_, stamp);
    json twin = TwinJson(*s, now);
    const std::string p = "/" + robot + "/";
    batch.messages.push_back({p + "twin_fb",
                              std::make_shared<const std::string>(body.data<char>(), body.size()),
                              stamp});
    if (s->joint_names() && s->joint_names()->size() > 0) {
      json js = {{"timestamp", Stamp(s->last_observation_ns() ? s->last_observation_ns() : stamp)},
                 {"name", twin["joint_names"]},
                 {"position", twin["joint_position"]},
                 {"velocity", twin["joint_velocity"]},
                 {"effort", Doubles(s->joint_effort())}};
      batch.messages.push_back({p + "joint_states", Shared(js), stamp});
    }
    json pose = {
        {"timestamp", Stamp(stamp)}, {"frame_id", options_.frame}, {"pose", twin["base_pose"]}};
    batch.messages.push_back({p + "pose", Shared(pose), stamp});
    RobotSummary& summary = robots_[robot];
    summary.row = SummaryRow(twin);
    summary.last_observation_ns = s->last_observation_ns();
    batch.messages.push_back({p + "twin", Shared(twin), stamp});
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
    const std::string p = "/" + robot + "/";
    json payload = nullptr;
    if (auto text = schemas::PayloadToJson(type, e.payload()); text.ok()) {
      payload = json::parse(*text, nullptr, false);
    }
    json ev = {{"timestamp", Stamp(e.recorded_ns())},
               {"robot_id", robot},
               {"type", type},
               {"version", e.version()},
               {"position", e.position()},
               {"occurred_ns", e.occurred_ns()},
               {"payload", payload}};
    batch.messages.push_back({p + "events", Shared(ev), e.recorded_ns()});
    if (type == "PredictionAlert" || type == "FaultRaised" || type == "RobotWentSilent" ||
        type == "FaultCleared" || type == "RobotResumed") {
      batch.messages.push_back({"/fleet/alerts", Shared(ev), e.recorded_ns()});
    }
    if (type == "PredictionMade") {
      const auto* m =
          flatbuffers::GetRoot<events::PredictionMade>(AlignedBytes(e.payload(), payload_scratch_));
      json poses = json::array();
      if (m->trajectory()) {
        for (const auto* sample : *m->trajectory()) poses.push_back(PoseJson(sample->base_pose()));
      }
      json collision = nullptr;
      if (const auto* c = m->collision()) {
        collision = {
            {"t_offset_s", c->t_offset_ns() / 1e9},
            {"link", Str(c->link())},
            {"obstacle", Str(c->obstacle())},
            {"contact_point", c->contact_point() ? Vec(*c->contact_point()) : json(nullptr)}};
      }
      json limits = json::array();
      if (m->limit_violations()) {
        for (const auto* v : *m->limit_violations()) {
          limits.push_back({{"joint", Str(v->joint())},
                            {"t_offset_s", v->t_offset_ns() / 1e9},
                            {"value", v->value()},
                            {"limit", v->limit()}});
        }
      }
      json prediction = {{"timestamp", Stamp(m->start_ns())},
                         {"frame_id", options_.frame},
                         {"poses", poses},
                         {"step_s", m->step_ns() / 1e9},
                         {"collision", collision},
                         {"limit_violations", limits}};
      batch.messages.push_back({p + "prediction", Shared(prediction), e.recorded_ns()});
      if (ros_demand_.load(std::memory_order_relaxed)) {
        batch.ros_messages.push_back(
            {p + std::string(kRosPredictedPath), robot, RosPathPublish(robot, *m, options_.frame)});
      }
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
  std::unique_ptr<eventstore::Subscription> events_;
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
