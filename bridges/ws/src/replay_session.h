// ReplaySession: one Foxglove client's own timeline over a window of history, sans-I/O. The
// WebSocket session (ws_session.h) hands it the client's ops and control frames and a tick;
// it answers with frames to send. The channels are the live ones (channel_messages.h) plus
// /<robot>/prediction_vs_actual; messages are stamped in replay time (recorded time).
//
// - Seek (a PlaybackControlRequest with had_seek): the fleet is folded to T (the state at T,
//   as `doppel state --at T`), every channel's latest value at T is sent to its subscribers,
//   a `time` frame jumps to T (Lichtblick resets on a time that goes back), and the answer
//   has did_seek set.
// - Playing: the events up to the replay clock go out in timeline order; none is dropped.
//   When the client's queue has no room, the clock is held where delivery stands (the state
//   says buffering) and playback slows down rather than skipping.
// - At the end of the window: an unprompted PlaybackState "ended"; Play needs a seek first.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "channels.h"
#include "doppel/eventstore/event_store.h"
#include "doppel/replay/player.h"
#include "doppel/replay/prediction_checks.h"
#include "doppel/replay/replay_clock.h"
#include "fleet_feed.h"
#include "playback_messages.h"
#include "replay_slots.h"

namespace doppel::gateway {

struct ReplayFrames {
  std::vector<std::string> texts;       // JSON ops (status)
  std::vector<std::string> binaries;    // PlaybackState and time frames, opcode first: before data
  std::vector<std::string> after_data;  // the same kinds of frames, after the data
  struct Data {
    uint32_t subscription;
    uint32_t channel;
    TimeNs stamp;
    std::shared_ptr<const std::string> payload;
  };
  std::vector<Data> data;
};

class ReplaySession {
 public:
  // REQUIRES: `store` outlives the session. `read_ahead`: how its player reads ahead (the
  // gateway's shared pool).
  ReplaySession(const eventstore::EventStore& store, replay::Window window, std::string frame,
                replay::ReadAheadOptions read_ahead = {});

  // Finds the window's robots and folds the fleet to the window's start (paused there).
  Status Open(TimeNs now = WallNowNs());
  std::string ServerInfo(std::string_view name, std::string_view session_id) const;
  // The `advertise` of this session's channels from index `from`.
  std::string Advertise(size_t from = 0) const;

  void Subscribe(uint32_t subscription, uint32_t channel, ReplayFrames& out);
  void Unsubscribe(uint32_t subscription);
  // A binary message with opcode 0x03; malformed ones get an error status and change nothing.
  void Control(std::string_view frame, int64_t mono, ReplayFrames& out);
  // Advances playback to the clock at `mono`, sending at most about `room` data messages.
  void Tick(int64_t mono, size_t room, ReplayFrames& out);

  // The session's place in the gateway's budget, given back when the session is destroyed.
  void HoldSlot(ReplaySlot slot) { slot_ = std::move(slot); }

  TimeNs time() const { return player_.time(); }
  PlaybackStatus status() const { return status_; }

 private:
  Status Seek(TimeNs t, ReplayFrames& out);
  // Every channel's value at the player's moment, from the folded fleet and the robots'
  // newest event and prediction; then the latest of each subscribed channel to its subscribers.
  Status RestoreState(ReplayFrames& out);
  void StateOf(const std::string& robot, TimeNs stamp, ReplayFrames* out);
  void Event(const eventstore::RecordedEvent& e, ReplayFrames& out);
  void CheckPredictions(const std::string& robot, ReplayFrames* out);
  void Publish(const FeedMessage& m, ReplayFrames* out);
  void State(PlaybackStatus status, bool did_seek, std::string_view request_id, ReplayFrames& out);
  void AddChannel(const std::string& topic);

  ReplaySlot slot_;  // first: released last, after the player and fleet below are gone
  const eventstore::EventStore& store_;
  replay::Player player_;
  replay::ReplayClock clock_;
  std::string frame_;
  std::vector<std::pair<std::string, ChannelSpec>> channels_;  // id - 1
  std::map<std::string, uint32_t, std::less<>> ids_;
  std::map<uint32_t, std::pair<std::shared_ptr<const std::string>, TimeNs>> latest_;
  std::map<uint32_t, uint32_t> subscriptions_;     // subscription -> channel
  std::multimap<uint32_t, uint32_t> subscribers_;  // channel -> subscription
  std::map<std::string, TimeNs> last_state_;       // robot -> stamp of its last state
  replay::PredictionChecks checks_;
  std::vector<uint64_t> scratch_;
  PlaybackStatus status_ = PlaybackStatus::kPaused;
  int64_t last_time_frame_ = 0;
  size_t advertised_ = 0;
};

}  // namespace doppel::gateway
