// ReadAhead: a WindowReader run a few pages ahead of its consumer, so reading the log and what
// the consumer does with the events (a player folding the fleet) overlap on two cores. It
// reads on a thread of its own, or, given a ReadAheadPool, on the pool's threads one page at
// a time (a server with many readers). Pages come out in the reader's order; an error ends
// the stream.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "doppel/replay/read_ahead_pool.h"
#include "doppel/replay/window_reader.h"

namespace doppel::replay {

struct ReadAheadOptions {
  size_t page_events = 1024;  // events per page
  size_t max_pages = 8;       // pages read ahead at most
  // Threads to read on; none: a thread of the reader's own.
  std::shared_ptr<ReadAheadPool> pool;
};

class ReadAhead {
 public:
  // REQUIRES: `store` outlives this and serves reads from another thread.
  ReadAhead(const eventstore::EventStore& store, Window window, ReadAheadOptions options = {});
  ~ReadAhead();  // stops reading and waits for a page being read
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
  // Reads one page into pages_; true while there is more to read. The reader is used by one
  // thread at a time: the own thread, or the one pool job in flight.
  bool ReadPage();
  // REQUIRES: mu_ held. With a pool: posts a job for the next page if there is room and none
  // is in flight.
  void Schedule();

  WindowReader reader_;
  const size_t page_events_, max_pages_;
  const std::shared_ptr<ReadAheadPool> pool_;
  bool in_flight_ = false;  // a pool job is queued or running
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::vector<eventstore::RecordedEvent>> pages_;
  Status failed_ = Status::Ok();
  bool finished_ = false, stop_ = false;
  std::thread thread_;
};

}  // namespace doppel::replay
