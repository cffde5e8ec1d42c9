// ReadAhead: a WindowReader run on a thread of its own, a few pages ahead of its consumer, so
// reading the log and what the consumer does with the events (a player folding the fleet)
// overlap on two cores. Pages come out in the reader's order; an error ends the stream.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "doppel/replay/window_reader.h"

namespace doppel::replay {

class ReadAhead {
 public:
  // REQUIRES: `store` outlives this and serves reads from another thread.
  ReadAhead(const eventstore::EventStore& store, Window window, size_t page_events = 1024,
            size_t max_pages = 8);
  ~ReadAhead();  // stops the thread and waits for it
  ReadAhead(const ReadAhead&) = delete;
  ReadAhead& operator=(const ReadAhead&) = delete;

  // Finds the window in the log (on the caller's thread), then starts reading ahead.
  Status Open();
  // The next page of admitted events, waiting for it if need be (possibly empty while more
  // remain); empty and done() at the end; the reader's error if it failed.
  Result<std::vector<eventstore::RecordedEvent>> Next();
  bool done() const;

 private:
  void Run();

  WindowReader reader_;
  const size_t page_events_, max_pages_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::vector<eventstore::RecordedEvent>> pages_;
  Status failed_ = Status::Ok();
  bool finished_ = false, stop_ = false;
  std::thread thread_;
};

}  // namespace doppel::replay
