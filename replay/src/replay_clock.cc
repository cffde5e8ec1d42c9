#include "doppel/replay/replay_clock.h"

#include <fmt/format.h>

#include <cmath>

namespace doppel::replay {

TimeNs ReplayClock::Now(int64_t mono) const {
  if (!playing_) return anchor_;
  return anchor_ + static_cast<TimeNs>(static_cast<double>(mono - anchor_mono_) * speed_);
}

void ReplayClock::Play(int64_t mono) {
  if (playing_) return;
  anchor_mono_ = mono;
  playing_ = true;
}

void ReplayClock::Pause(int64_t mono) {
  if (!playing_) return;
  anchor_ = Now(mono);
  playing_ = false;
}

Status ReplayClock::SetSpeed(double speed, int64_t mono) {
  if (!(speed >= kMinSpeed && speed <= kMaxSpeed)) {
    return Status::InvalidArgument(
        fmt::format("speed {} is outside {}..{}", speed, kMinSpeed, kMaxSpeed));
  }
  anchor_ = Now(mono);
  anchor_mono_ = mono;
  speed_ = speed;
  return Status::Ok();
}

void ReplayClock::Set(TimeNs t, int64_t mono) {
  anchor_ = t;
  anchor_mono_ = mono;
}

}  // namespace doppel::replay
