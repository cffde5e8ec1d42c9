#include "replay_session.h"

#include <fmt/format.h>

#include <Eigen/Core>
#include <cmath>

#include "channel_messages.h"
#include "doppel/core/aligned_bytes.h"
#include "doppel/schemas/robot_events_generated.h"
#include "foxglove_messages.h"

namespace doppel::gateway {
namespace {

using nlohmann::json;

constexpr int64_t kTimeFramePeriod = 16'666'666;  // time frames at most 60 Hz

}  // namespace

ReplaySession::ReplaySession(const eventstore::EventStore& store, replay::Window window,
                             std::string frame, replay::ReadAheadOptions read_ahead)
    : store_(store),
      player_(store, std::move(window), std::move(read_ahead)),
      frame_(std::move(frame)) {}

void ReplaySession::AddChannel(const std::string& topic) {
  if (ids_.count(topic)) return;
  ChannelSpec spec = SpecFor(topic);
  if (topic.ends_with("/prediction_vs_actual")) {
    spec = {
        "json", "doppel.PredictionCheck",
        R"({"title":"doppel.PredictionCheck","type":"object","properties":{)"
        R"("timestamp":{"type":"object"},"robot_id":{"type":"string"},)"
        R"("prediction_start_ns":{"type":"integer"},"horizon_s":{"type":"number"},)"
        R"("predicted":{"type":"object"},"actual":{"type":"object"},"error_m":{"type":"number"}}})",
        "jsonschema"};
  }
  channels_.emplace_back(topic, std::move(spec));
  ids_[topic] = static_cast<uint32_t>(channels_.size());
}

Status ReplaySession::Open(TimeNs now) {
  DOPPEL_RETURN_IF_ERROR(player_.Open(now));  // at the window's start
  AddChannel("/fleet/alerts");
  // Every robot the window admits gets its channels now, whether or not it has events yet.
  std::string after;
  for (;;) {
    auto page = store_.ListStreams("robot-", after, 1024);
    if (!page.ok()) return page.status();
    for (const auto& stream : page->streams) {
      const std::string robot(replay::RobotOfStream(stream));
      if (!player_.window().AdmitsRobot(robot)) continue;
      for (const auto& topic : RobotTopics(robot)) AddChannel(topic);
      AddChannel("/" + robot + "/prediction_vs_actual");
    }
    if (page->end || page->streams.empty()) break;
    after = page->streams.back();
  }
  ReplayFrames ignored;
  DOPPEL_RETURN_IF_ERROR(RestoreState(ignored));
  clock_ = replay::ReplayClock(player_.start());
  advertised_ = channels_.size();
  return Status::Ok();
}

std::string ReplaySession::ServerInfo(std::string_view name, std::string_view session_id) const {
  return ReplayServerInfoJson(name, session_id, player_.start(), player_.end());
}

std::string ReplaySession::Advertise(size_t from) const {
  std::vector<std::string> texts;
  std::vector<std::string_view> views;
  size_t bytes = 0;
  for (size_t i = from; i < channels_.size(); ++i) {
    texts.push_back(
        ChannelJson(static_cast<uint32_t>(i + 1), channels_[i].first, channels_[i].second));
    bytes += texts.back().size();
  }
  for (const auto& t : texts) views.push_back(t);
  return AdvertiseJson(views, bytes);
}

void ReplaySession::Subscribe(uint32_t subscription, uint32_t channel, ReplayFrames& out) {
  if (channel == 0 || channel > channels_.size()) {
    out.texts.push_back(StatusJson(2, fmt::format("Unknown channel {}", channel)));
    return;
  }
  Unsubscribe(subscription);
  subscriptions_[subscription] = channel;
  subscribers_.emplace(channel, subscription);
  if (auto it = latest_.find(channel); it != latest_.end()) {
    out.data.push_back({subscription, channel, it->second.second, it->second.first});
  }
}

void ReplaySession::Unsubscribe(uint32_t subscription) {
  auto it = subscriptions_.find(subscription);
  if (it == subscriptions_.end()) return;
  auto [b, e] = subscribers_.equal_range(it->second);
  for (auto s = b; s != e; ++s) {
    if (s->second == subscription) {
      subscribers_.erase(s);
      break;
    }
  }
  subscriptions_.erase(it);
}

void ReplaySession::Publish(const FeedMessage& m, ReplayFrames* out) {
  auto id = ids_.find(m.topic);
  if (id == ids_.end()) {
    AddChannel(m.topic);  // a robot first seen in the window: advertised with the next tick
    id = ids_.find(m.topic);
  }
  latest_[id->second] = {m.payload, m.stamp};
  if (out == nullptr) return;
  auto [b, e] = subscribers_.equal_range(id->second);
  for (auto s = b; s != e; ++s) out->data.push_back({s->second, id->second, m.stamp, m.payload});
}

void ReplaySession::StateOf(const std::string& robot, TimeNs stamp, ReplayFrames* out) {
  const replay::RobotTwin* twin = player_.fleet().Find(robot);
  if (twin == nullptr) return;
  auto bytes = std::make_shared<const std::string>(
      twins::EncodePublishedState(twin->state, twin->model_or_generic(), stamp));
  const auto* s = twin::GetTwinState(AlignedBytes(*bytes, scratch_));
  std::vector<FeedMessage> messages;
  AppendStateMessages(robot, *s, bytes, stamp, stamp, frame_, messages);
  for (const auto& m : messages) Publish(m, out);
  last_state_[robot] = stamp;
}

Status ReplaySession::RestoreState(ReplayFrames& out) {
  const TimeNs t = player_.time();
  latest_.clear();
  last_state_.clear();
  checks_.Clear();
  for (const auto& [robot, twin] : player_.fleet().robots()) {
    for (const auto& topic : RobotTopics(robot)) AddChannel(topic);
    AddChannel("/" + robot + "/prediction_vs_actual");
    StateOf(robot, t, nullptr);
  }
  for (const auto& [channel, subscription] : subscribers_) {
    if (auto it = latest_.find(channel); it != latest_.end()) {
      out.data.push_back({subscription, channel, it->second.second, it->second.first});
    }
  }
  return Status::Ok();
}

Status ReplaySession::Seek(TimeNs t, ReplayFrames& out) {
  DOPPEL_RETURN_IF_ERROR(player_.Seek(t));
  return RestoreState(out);
}

void ReplaySession::CheckPredictions(const std::string& robot, ReplayFrames* out) {
  const replay::RobotTwin* twin = player_.fleet().Find(robot);
  if (twin == nullptr) return;
  for (const auto& c : checks_.Due(robot, twin->state)) {
    auto v = [](const Eigen::Vector3d& p) {
      return json{{"x", p.x()}, {"y", p.y()}, {"z", p.z()}};
    };
    const TimeNs stamp = twin->state.last_event_ns;
    json j = {{"timestamp", Stamp(stamp)},
              {"robot_id", robot},
              {"prediction_start_ns", c.prediction_start},
              {"horizon_s", c.horizon_s},
              {"predicted", v(c.predicted)},
              {"actual", v(c.actual)},
              {"error_m", c.error_m}};
    Publish({"/" + robot + "/prediction_vs_actual", Shared(j), stamp}, out);
  }
}

void ReplaySession::Event(const eventstore::RecordedEvent& e, ReplayFrames& out) {
  const std::string robot(replay::RobotOfStream(e.stream()));
  if (robot.empty()) return;
  const TimeNs stamp = e.recorded_ns();
  if (IsObservation(e.type())) {
    auto last = last_state_.find(robot);
    if (last == last_state_.end() || stamp - last->second >= replay::kReplayStatePeriodNs)
      StateOf(robot, stamp, &out);
    CheckPredictions(robot, &out);
    return;
  }
  std::vector<FeedMessage> messages;
  AppendEventMessages(e, frame_, messages, scratch_);
  for (const auto& m : messages) Publish(m, &out);
  if (e.type() == "PredictionMade") {
    checks_.Add(robot,
                *flatbuffers::GetRoot<events::PredictionMade>(AlignedBytes(e.payload(), scratch_)));
  }
}

void ReplaySession::State(PlaybackStatus status, bool did_seek, std::string_view request_id,
                          ReplayFrames& out) {
  status_ = status;
  // After a seek the state goes first (Foxglove clears its panels on did_seek, then the
  // values at T arrive); otherwise after the data it follows (Ended after the last events).
  (did_seek ? out.binaries : out.after_data)
      .push_back(EncodePlaybackState(status, static_cast<uint64_t>(player_.time()),
                                     static_cast<float>(clock_.speed()), did_seek, request_id));
}

void ReplaySession::Control(std::string_view frame, int64_t mono, ReplayFrames& out) {
  auto request = DecodePlaybackControl(frame);
  if (!request.ok()) {
    out.texts.push_back(
        StatusJson(2, "Malformed PlaybackControlRequest: " + request.status().message()));
    return;
  }
  const float speed = request->speed;
  if (!(speed > 0) || !std::isfinite(speed)) {
    out.texts.push_back(StatusJson(
        2, fmt::format("Playback speed {} refused: it must be a number above 0 (0.01 to 100)",
                       speed)));
  } else {
    (void)clock_.SetSpeed(std::clamp<double>(speed, replay::kMinSpeed, replay::kMaxSpeed), mono);
  }
  bool did_seek = false;
  if (request->had_seek) {
    const TimeNs target = static_cast<TimeNs>(std::min<uint64_t>(request->seek_time_ns, INT64_MAX));
    if (target < player_.start() || target > player_.end()) {
      out.texts.push_back(StatusJson(
          1, fmt::format("Seek to {} is outside the window; clamped", FormatTime(target))));
    }
    if (Status s = Seek(target, out); !s.ok()) {
      out.texts.push_back(StatusJson(2, "Seek failed: " + s.message()));
    } else {
      did_seek = true;
      clock_.Set(player_.time(), mono);
      out.binaries.push_back(EncodeTime(static_cast<uint64_t>(player_.time())));
      last_time_frame_ = mono;
    }
  }
  if (request->command == 0) {
    if (status_ == PlaybackStatus::kEnded && !did_seek) {
      State(PlaybackStatus::kEnded, false, request->request_id, out);  // seek first, as the SDK
      return;
    }
    clock_.Play(mono);
  } else {
    clock_.Pause(mono);
  }
  State(clock_.playing() ? PlaybackStatus::kPlaying : PlaybackStatus::kPaused, did_seek,
        request->request_id, out);
}

void ReplaySession::Tick(int64_t mono, size_t room, ReplayFrames& out) {
  if (!clock_.playing()) return;
  const TimeNs target = std::min(clock_.Now(mono), player_.end());
  // About six messages per event at most (four state channels, event, alert or prediction).
  const size_t max_events = room / 6;
  if (max_events > 0) {
    // Each event is handled while the fleet stands right after it.
    auto events = player_.Next(target, max_events,
                               [&](const eventstore::RecordedEvent& e) { Event(e, out); });
    if (!events.ok()) {
      out.texts.push_back(StatusJson(2, "Replay stopped: " + events.status().message()));
      clock_.Pause(mono);
      State(PlaybackStatus::kPaused, false, "", out);
      return;
    }
  }
  auto next = player_.NextTime();
  const bool behind = next.ok() && *next <= target;
  if (behind) {
    // The client or the read-ahead cannot keep up: hold the clock where delivery stands.
    clock_.Set(player_.time(), mono);
    if (status_ != PlaybackStatus::kBuffering) State(PlaybackStatus::kBuffering, false, "", out);
  } else if (status_ == PlaybackStatus::kBuffering) {
    State(PlaybackStatus::kPlaying, false, "", out);
  }
  if (channels_.size() > advertised_) {  // robots that appeared during the window
    out.texts.push_back(Advertise(advertised_));
    advertised_ = channels_.size();
  }
  if (mono - last_time_frame_ >= kTimeFramePeriod) {
    out.after_data.push_back(EncodeTime(static_cast<uint64_t>(behind ? player_.time() : target)));
    last_time_frame_ = mono;
  }
  if (!behind && player_.AtEnd() && target >= player_.end()) {
    clock_.Pause(mono);
    State(PlaybackStatus::kEnded, false, "", out);
  }
}

}  // namespace doppel::gateway
