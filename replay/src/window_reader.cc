#include "doppel/replay/window_reader.h"

namespace doppel::replay {

WindowReader::WindowReader(const eventstore::EventStore& store, Window window)
    : store_(store), window_(std::move(window)) {}

Status WindowReader::Open() {
  auto first = store_.PositionAtTime(window_.from);
  if (!first.ok()) return first.status();
  first_ = next_ = *first;
  // The first position recorded after `to` (the time index names commit groups, so the
  // read below still checks each event's time).
  const TimeNs after = window_.to == eventstore::kTimeMax ? window_.to : window_.to + 1;
  auto end = store_.PositionAtTime(after);
  if (!end.ok()) return end.status();
  end_ = *end;
  done_ = false;
  return Status::Ok();
}

Result<std::vector<eventstore::RecordedEvent>> WindowReader::Next(size_t max) {
  std::vector<eventstore::RecordedEvent> out;
  if (done_) return out;
  auto page = store_.ReadAll(next_, max, window_.to);
  if (!page.ok()) return page.status();
  scanned_ += page->events.size();
  if (page->events.empty() || page->end) done_ = true;
  next_ = page->next;
  out.reserve(page->events.size());
  for (auto& e : page->events) {
    if (e.recorded_ns() < window_.from) continue;  // same commit group as the window's start
    if (window_.Admits(e)) out.push_back(std::move(e));
  }
  return out;
}

}  // namespace doppel::replay
