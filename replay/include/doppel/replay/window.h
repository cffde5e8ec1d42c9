// A window of the fleet's history: which moments, which robots, which event types. Replay,
// MCAP export and `doppel incident` select events with it, so they agree on what a window
// holds. Timeline order is the log's order: recorded time, ties by global position (the log
// never lets recorded time decrease with position, eventstore/log_format.h).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "doppel/core/clock.h"
#include "doppel/eventstore/types.h"

namespace doppel::replay {

// A moment as the CLI and the replay URL spell it: "now", ns since the epoch, ISO 8601
// (core/clock.h ParseTime), or relative to `now`: "-15m", "-30s", "+2h" (ParseDurationNs units).
Result<TimeNs> ParseMoment(std::string_view text, TimeNs now);

struct Window {
  TimeNs from = 0;                   // recorded at or after
  TimeNs to = eventstore::kTimeMax;  // recorded at or before
  std::string robots = "*";          // glob over robot ids (fnmatch)
  std::vector<std::string> types;    // event types; empty: all

  // Whether the window holds events of `robot`.
  bool AdmitsRobot(std::string_view robot) const;
  // Whether `e` (recorded inside the window) is selected: a robot stream of an admitted robot
  // (other streams only when every robot is), of an admitted type.
  bool Admits(const eventstore::RecordedEvent& e) const;
  // "from .. to, robots R, types T", for logs and provenance.
  std::string Describe() const;
};

// From the CLI's spellings; InvalidArgument when a moment does not parse or from > to.
Result<Window> MakeWindow(std::string_view from, std::string_view to, std::string robots,
                          std::vector<std::string> types, TimeNs now = WallNowNs());

// The robot id of a robot stream ("robot-<id>"), or empty for any other stream.
std::string_view RobotOfStream(std::string_view stream);

}  // namespace doppel::replay
