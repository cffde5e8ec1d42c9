// ReplayClock: replay time as a function of monotonic time. Paused, it stands still; playing,
// it advances `speed` times as fast as the monotonic clock from where it was last anchored.
// Sans-I/O: the caller passes the monotonic time of each call.
#pragma once

#include <cstdint>

#include "doppel/core/clock.h"
#include "doppel/core/status.h"

namespace doppel::replay {

inline constexpr double kMinSpeed = 0.01;
inline constexpr double kMaxSpeed = 100;

class ReplayClock {
 public:
  explicit ReplayClock(TimeNs start = 0) : anchor_(start) {}

  TimeNs Now(int64_t mono) const;
  void Play(int64_t mono);
  void Pause(int64_t mono);
  // InvalidArgument (and no change) outside [kMinSpeed, kMaxSpeed], NaN included.
  Status SetSpeed(double speed, int64_t mono);
  // Jumps to `t` (a seek), or holds the clock back at `t` when the consumer is behind
  // (buffering); playing stays as it was.
  void Set(TimeNs t, int64_t mono);

  bool playing() const { return playing_; }
  double speed() const { return speed_; }

 private:
  TimeNs anchor_ = 0;  // replay time at anchor_mono_
  int64_t anchor_mono_ = 0;
  double speed_ = 1;
  bool playing_ = false;
};

}  // namespace doppel::replay
