#include "doppel/replay/player.h"

#include <algorithm>

namespace doppel::replay {

Player::Player(const eventstore::EventStore& store, Window window, ReadAheadOptions read_ahead)
    : store_(store), window_(std::move(window)), read_ahead_(std::move(read_ahead)) {}

Status Player::Open(TimeNs now) {
  start_ = window_.from;
  end_ = std::min(window_.to, now);
  if (end_ < start_) return Status::InvalidArgument("the window ends before it starts");
  // The state just before the window: every event of the window is played, the first too.
  return MoveTo(start_ - 1, start_);
}

Status Player::Seek(TimeNs t) {
  t = std::clamp(t, start_, end_);
  return MoveTo(t, t == eventstore::kTimeMax ? t : t + 1);
}

Status Player::MoveTo(TimeNs state_at, TimeNs next_from) {
  auto fleet = FleetState::At(store_, window_, state_at);
  if (!fleet.ok()) return fleet.status();
  fleet_ = std::move(fleet).value();
  const TimeNs t = std::max(state_at, start_);
  Window rest = window_;
  rest.from = next_from;
  rest.to = end_;
  rest.types.clear();
  reader_.reset();  // the old one stops before the new one starts
  reader_ = std::make_unique<ReadAhead>(store_, rest, read_ahead_);
  DOPPEL_RETURN_IF_ERROR(reader_->Open());
  ahead_.clear();
  at_end_ = false;
  time_ = t;
  return Status::Ok();
}

Status Player::Fill() {
  while (ahead_.empty() && !reader_->done()) {
    auto page = reader_->Next();
    if (!page.ok()) return page.status();
    for (auto& e : *page) ahead_.push_back(std::move(e));
  }
  if (ahead_.empty()) at_end_ = true;
  return Status::Ok();
}

Result<TimeNs> Player::NextTime() {
  DOPPEL_RETURN_IF_ERROR(Fill());
  return ahead_.empty() ? end_ + 1 : ahead_.front().recorded_ns();
}

Result<size_t> Player::Next(TimeNs until, size_t max, const Visit& visit) {
  size_t visited = 0;
  while (visited < max) {
    DOPPEL_RETURN_IF_ERROR(Fill());
    if (ahead_.empty() || ahead_.front().recorded_ns() > until) break;
    eventstore::RecordedEvent e = std::move(ahead_.front());
    ahead_.pop_front();
    fleet_.Apply(e);
    time_ = e.recorded_ns();
    const bool admitted =
        window_.types.empty() ||
        std::find(window_.types.begin(), window_.types.end(), e.type()) != window_.types.end();
    if (admitted) {
      visit(e);
      ++visited;
    }
  }
  if (visited < max) {
    // Everything up to `until` is out: playback stands there (at most at the end).
    time_ = std::max(time_, std::min(until, end_));
    DOPPEL_RETURN_IF_ERROR(Fill());
  }
  return visited;
}

Result<std::vector<eventstore::RecordedEvent>> Player::Next(TimeNs until, size_t max) {
  std::vector<eventstore::RecordedEvent> out;
  auto n = Next(until, max, [&](const eventstore::RecordedEvent& e) { out.push_back(e); });
  if (!n.ok()) return n.status();
  return out;
}

}  // namespace doppel::replay
