#include "doppel/bridges/dds_replay.h"

#include <algorithm>
#include <map>
#include <thread>

#include "doppel/bridges/dds.h"
#include "doppel/bridges/twin_publisher.h"
#include "doppel/core/aligned_bytes.h"
#include "doppel/replay/player.h"
#include "doppel/replay/replay_clock.h"
#include "doppel/twins/robot_aggregate.h"

namespace doppel::dds {
class DdsReplay::Impl {
 public:
  Impl(const eventstore::EventStore& store, replay::Window window, DdsReplayOptions options)
      : player_(store, std::move(window)), options_(std::move(options)) {}

  Status Start() {
    auto participant = Participant::Create(options_.domain);
    if (!participant.ok()) return participant.status();
    participant_ = std::make_unique<Participant>(std::move(participant).value());
    const std::string prefix = options_.ns.empty() ? "" : options_.ns + "/";
    auto publisher = TwinPublisher::Create(*participant_, prefix, options_.frame);
    if (!publisher.ok()) return publisher.status();
    publisher_ = std::move(publisher).value();
    auto clock = Writer::Create(*participant_, &rosgraph_msgs_msg_dds__Clock__desc, "rt/clock",
                                QosSpec{false, false, 1});
    if (!clock.ok()) return clock.status();
    clock_writer_ = std::make_unique<Writer>(std::move(clock).value());
    DOPPEL_RETURN_IF_ERROR(player_.Open());
    if (options_.delay_ns > 0)
      std::this_thread::sleep_for(std::chrono::nanoseconds(options_.delay_ns));
    DOPPEL_RETURN_IF_ERROR(
        clock_.SetSpeed(std::clamp(options_.rate, replay::kMinSpeed, replay::kMaxSpeed), 0));
    return Seek(player_.start(), MonotonicNowNs(), !options_.start_paused);
  }

  Status Seek(TimeNs t, int64_t mono, bool play) {
    DOPPEL_RETURN_IF_ERROR(player_.Seek(t));
    clock_.Set(player_.time(), mono);
    if (play)
      clock_.Play(mono);
    else
      clock_.Pause(mono);
    last_state_.clear();
    // Every robot's whole state at the moment, at once.
    for (const auto& [robot, twin] : player_.fleet().robots()) PublishState(robot, player_.time());
    PublishClock(player_.time());
    return Status::Ok();
  }

  Result<bool> Step(int64_t mono) {
    if (!clock_.playing() && !options_.max) {
      MaybeClock(mono, clock_.Now(mono));
      return true;
    }
    const TimeNs target = options_.max ? player_.end() : std::min(clock_.Now(mono), player_.end());
    auto events = player_.Next(target, options_.max ? 2048 : 100000,
                               [&](const eventstore::RecordedEvent& e) { Publish(e); });
    if (!events.ok()) return events.status();
    if (options_.max) clock_.Set(player_.time(), mono);
    MaybeClock(mono, options_.max ? player_.time() : target);
    if (player_.AtEnd() && (options_.max || target >= player_.end())) {
      if (!options_.loop) return false;
      DOPPEL_RETURN_IF_ERROR(Seek(player_.start(), mono, true));
    }
    return true;
  }

  Status StepOne(int64_t mono) {
    auto next = player_.NextTime();
    if (!next.ok()) return next.status();
    if (*next > player_.end()) return Status::Ok();
    auto events = player_.Next(*next, 1, [&](const eventstore::RecordedEvent& e) { Publish(e); });
    if (!events.ok()) return events.status();
    clock_.Set(player_.time(), mono);
    PublishClock(player_.time());
    return Status::Ok();
  }

  void TogglePause(int64_t mono) {
    if (clock_.playing())
      clock_.Pause(mono);
    else
      clock_.Play(mono);
  }
  Status SetRate(double rate, int64_t mono) { return clock_.SetSpeed(rate, mono); }
  Status Seek(TimeNs t, int64_t mono) { return Seek(t, mono, clock_.playing()); }

  Progress progress() const {
    return {player_.time(),   player_.start(), player_.end(), clock_.speed(),
            clock_.playing(), events_,         clocks_};
  }

 private:
  void Publish(const eventstore::RecordedEvent& e) {
    ++events_;
    const std::string robot(replay::RobotOfStream(e.stream()));
    if (robot.empty()) return;
    const std::string_view type = e.type();
    if (type == "PredictionMade") {
      publisher_->PublishPath(robot, *flatbuffers::GetRoot<events::PredictionMade>(
                                         AlignedBytes(e.payload(), scratch_)));
      return;
    }
    auto last = last_state_.find(robot);
    if (last != last_state_.end() && e.recorded_ns() - last->second < replay::kReplayStatePeriodNs)
      return;
    PublishState(robot, e.recorded_ns());
  }

  void PublishState(const std::string& robot, TimeNs at) {
    const replay::RobotTwin* twin = player_.fleet().Find(robot);
    if (twin == nullptr) return;
    const std::string bytes =
        twins::EncodePublishedState(twin->state, twin->model_or_generic(), at);
    publisher_->PublishState(robot, *twin::GetTwinState(AlignedBytes(bytes, state_scratch_)));
    last_state_[robot] = at;
  }

  void MaybeClock(int64_t mono, TimeNs t) {
    const int64_t period =
        options_.clock_hz > 0 ? static_cast<int64_t>(1e9 / options_.clock_hz) : 0;
    if (period == 0 || mono - last_clock_mono_ < period) return;
    last_clock_mono_ = mono;
    PublishClock(t);
  }

  void PublishClock(TimeNs t) {
    rosgraph_msgs_msg_dds__Clock_ c{};
    c.clock = ToRosTime(t);
    (void)clock_writer_->Write(&c);
    ++clocks_;
  }

  replay::Player player_;
  replay::ReplayClock clock_;
  DdsReplayOptions options_;
  std::unique_ptr<Participant> participant_;
  std::unique_ptr<TwinPublisher> publisher_;  // after participant_
  std::unique_ptr<Writer> clock_writer_;
  std::map<std::string, TimeNs> last_state_;
  std::vector<uint64_t> scratch_, state_scratch_;
  int64_t last_clock_mono_ = 0;
  uint64_t events_ = 0, clocks_ = 0;
};

DdsReplay::DdsReplay(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DdsReplay::~DdsReplay() = default;

Result<std::unique_ptr<DdsReplay>> DdsReplay::Create(const eventstore::EventStore& store,
                                                     replay::Window window,
                                                     DdsReplayOptions options) {
  auto impl = std::make_unique<Impl>(store, std::move(window), std::move(options));
  DOPPEL_RETURN_IF_ERROR(impl->Start());
  return std::unique_ptr<DdsReplay>(new DdsReplay(std::move(impl)));
}

Result<bool> DdsReplay::Step(int64_t mono) { return impl_->Step(mono); }
void DdsReplay::TogglePause(int64_t mono) { impl_->TogglePause(mono); }
Status DdsReplay::SetRate(double rate, int64_t mono) { return impl_->SetRate(rate, mono); }
Status DdsReplay::StepOne(int64_t mono) { return impl_->StepOne(mono); }
Status DdsReplay::Seek(TimeNs t, int64_t mono) { return impl_->Seek(t, mono); }
DdsReplay::Progress DdsReplay::progress() const { return impl_->progress(); }

}  // namespace doppel::dds
