// DdsReplay: a window of history played into ROS 2 over DDS. Robots appear on the topics the
// live egress uses (twin_publisher.h; under rt/<namespace>/ when one is given), and rt/clock
// (rosgraph_msgs/Clock) carries replay time, so rviz2 and Nav2 with use_sim_time follow it, as
// with `ros2 bag play --clock`. After every seek (the start included) each robot's whole
// state at that moment is published at once. Events are never skipped: at any rate, every
// state and prediction in the window is published in timeline order (state topics at most
// 30 Hz of replay time per robot, as the live twin publishes).
#pragma once

#include <memory>
#include <string>

#include "doppel/eventstore/event_store.h"
#include "doppel/replay/window.h"

namespace doppel::dds {

struct DdsReplayOptions {
  uint32_t domain = 0;
  std::string ns;  // "" or a namespace: rt/<ns>/twin/..., rt/<ns>/tf
  std::string frame = "map";
  double rate = 1;   // 0.01..100
  bool max = false;  // as fast as possible
  double clock_hz = 40;
  bool start_paused = false;
  bool loop = false;
  // Between making the writers and publishing the first state (as `ros2 bag play --delay`):
  // time for subscribers to discover them, since these topics are volatile as the live ones.
  int64_t delay_ns = 0;
};

class DdsReplay {
 public:
  // REQUIRES: `store` outlives the replay.
  static Result<std::unique_ptr<DdsReplay>> Create(const eventstore::EventStore& store,
                                                   replay::Window window, DdsReplayOptions options);
  ~DdsReplay();

  // Publishes what is due at monotonic time `mono`; false once the window is over (and not
  // looping).
  Result<bool> Step(int64_t mono);
  void TogglePause(int64_t mono);
  Status SetRate(double rate, int64_t mono);
  // While paused: publishes the next event and moves the clock to it.
  Status StepOne(int64_t mono);
  Status Seek(TimeNs t, int64_t mono);

  struct Progress {
    TimeNs time = 0, start = 0, end = 0;
    double rate = 1;
    bool playing = false;
    uint64_t events = 0, clocks = 0;
  };
  Progress progress() const;

 private:
  class Impl;
  explicit DdsReplay(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace doppel::dds
