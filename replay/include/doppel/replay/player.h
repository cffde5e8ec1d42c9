// Player: a window's events handed out in timeline order up to a replay time, with the fleet
// folded along, never skipping one; a seek refolds the fleet to the moment (the state at T,
// as `doppel state --at T` computes it) and continues after it. Sans-I/O apart from reading
// the store, which a thread does a few pages ahead (read_ahead.h): the caller's clock
// decides how far to go (replay_clock.h), the caller's adapters turn events and states into
// messages (gateway replay sessions, MCAP export).
#pragma once

#include <deque>
#include <functional>
#include <memory>

#include "doppel/eventstore/event_store.h"
#include "doppel/replay/fleet_state.h"
#include "doppel/replay/read_ahead.h"
#include "doppel/replay/window.h"

namespace doppel::replay {

// A replayed robot's state channels are refreshed at most this often in replay time, as the
// live twin publishes at most 30 Hz.
inline constexpr TimeNs kReplayStatePeriodNs = 33'000'000;

class Player {
 public:
  // REQUIRES: `store` outlives the player. `read_ahead`: how the events are read ahead (on a
  // thread of the player's own unless it names a pool).
  Player(const eventstore::EventStore& store, Window window, ReadAheadOptions read_ahead = {});

  // Fixes the data range (a window ending "now" ends when opened) and stands at its start,
  // with the state just before it: every event of the window is then played.
  Status Open(TimeNs now = WallNowNs());
  TimeNs start() const { return start_; }
  TimeNs end() const { return end_; }

  // The fleet becomes the state at `t` (clamped to [start, end]); the next events are those
  // recorded after it.
  Status Seek(TimeNs t);
  // The window's next events recorded at or before `until`, at most `max`, in order. Each is
  // folded into the fleet and then handed to `visit`, so fleet() is the state right after that
  // event while `visit` runs (what a replayed state channel must show at its stamp). Events
  // of types the window does not admit are folded but not visited. Returns how many were
  // visited.
  using Visit = std::function<void(const eventstore::RecordedEvent&)>;
  Result<size_t> Next(TimeNs until, size_t max, const Visit& visit);
  // The same, collecting the events (the fleet is then at the last of them).
  Result<std::vector<eventstore::RecordedEvent>> Next(TimeNs until, size_t max);
  // Nothing is left before the end of the window.
  bool AtEnd() const { return at_end_; }
  // Where playback stands: the seek target or the last event handed out.
  TimeNs time() const { return time_; }
  // The recorded time of the next event (end() + 1 when none is left).
  Result<TimeNs> NextTime();

  const FleetState& fleet() const { return fleet_; }
  const Window& window() const { return window_; }

 private:
  Status Fill();
  // The fleet folded to `state_at`; the next events recorded at or after `next_from`.
  Status MoveTo(TimeNs state_at, TimeNs next_from);

  const eventstore::EventStore& store_;
  Window window_;
  ReadAheadOptions read_ahead_;
  TimeNs start_ = 0, end_ = 0, time_ = 0;
  FleetState fleet_;
  std::unique_ptr<ReadAhead> reader_;  // every type: the fold needs them all
  std::deque<eventstore::RecordedEvent> ahead_;
  bool at_end_ = false;
};

}  // namespace doppel::replay
