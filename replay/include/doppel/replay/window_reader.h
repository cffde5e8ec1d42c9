// WindowReader: a window's events in timeline order, a page at a time, in constant memory.
// It reads $all from the first position recorded at or after `from` and stops after the
// last one recorded at or before `to`, keeping the events the window admits.
#pragma once

#include <vector>

#include "doppel/eventstore/event_store.h"
#include "doppel/replay/window.h"

namespace doppel::replay {

class WindowReader {
 public:
  // REQUIRES: `store` outlives the reader.
  WindowReader(const eventstore::EventStore& store, Window window);

  // Finds where the window starts and ends in the log. Must succeed before Next().
  Status Open();
  // The next admitted events (up to `max`, possibly none while more remain); empty and
  // done() at the end of the window.
  Result<std::vector<eventstore::RecordedEvent>> Next(size_t max = 4096);
  bool done() const { return done_; }

  // Positions the window spans: [first, end). `end` is fixed at Open() for a window that
  // ends in the past; positions read so far, for progress.
  eventstore::GlobalPosition first_position() const { return first_; }
  eventstore::GlobalPosition end_position() const { return end_; }
  eventstore::GlobalPosition next_position() const { return next_; }
  // Events read from the log so far, admitted or not.
  uint64_t scanned() const { return scanned_; }

 private:
  const eventstore::EventStore& store_;
  Window window_;
  eventstore::GlobalPosition first_ = 0, end_ = 0, next_ = 0;
  uint64_t scanned_ = 0;
  bool done_ = false;
};

}  // namespace doppel::replay
