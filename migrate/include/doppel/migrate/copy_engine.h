// CopyEngine: copies every event of one store to another, in the source's global order and
// verbatim (copied_batch.h), page by page, then keeps tailing the source. Where the copy stands
// lives only in the destination, written atomically with each page (EventStore::AppendCopied),
// so an engine killed anywhere and started again resumes with nothing lost and nothing written
// twice, and a second run over a finished copy writes nothing. This is the backfill and the
// tailer of a migration: a migration adds states around it, not another way to copy.
//
// A store that goes away (Unavailable) is waited for, with backoff, and the copy resumes from
// the destination's checkpoint; anything else (a conflict, a corrupt event, a destination that
// cannot take copies) stops the copy with that error.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <string>

#include "doppel/eventstore/event_store.h"

namespace doppel::migrate {

struct CopyOptions {
  std::string name = "main";     // the copy's checkpoint and position map in the destination
  size_t batch = 500;            // events per page (and per atomic write)
  double rate = 0;               // events per second at most; 0 = as fast as the stores go
  bool until_caught_up = false;  // stop once a read of the source finds nothing more
  // How long to wait before reading a source that had nothing new again.
  std::chrono::milliseconds idle_wait{50};
  // Asked between pages; true stops the copy (Ctrl-C). May be empty.
  std::function<bool()> stop;
};

// Where a copy stands, reported after every page and when it stops.
struct CopyProgress {
  uint64_t events = 0;                         // source events the copy has covered, over every run
  uint64_t written = 0;                        // events this run wrote
  uint64_t present = 0;                        // events this run found already there
  eventstore::GlobalPosition source_next = 0;  // the copy's checkpoint
  eventstore::GlobalPosition source_end = 0;   // the source's end when last asked
  uint64_t lag_events = 0;                     // source positions not yet copied (estimate)
  double lag_seconds = 0;   // age of the newest event copied, while behind; 0 once caught up
  double events_per_s = 0;  // this run's rate
  double eta_seconds = 0;   // lag_events at this run's rate
  bool caught_up = false;   // the last read of the source found nothing more
  int retries = 0;          // waits for a store that went away, this run
  std::string throttle;     // why the copy is going slower than it could ("" when it is not)
};

class CopyEngine {
 public:
  using ProgressFn = std::function<void(const CopyProgress&)>;
  CopyEngine(eventstore::EventStore& source, eventstore::EventStore& destination,
             CopyOptions options, ProgressFn progress = {});

  // Copies until caught up (options.until_caught_up) or until options.stop says so; returns
  // where the copy stands then, or the error that stopped it.
  Result<CopyProgress> Run();

 private:
  // A page of the source read from `from`.
  struct Fetched {
    eventstore::GlobalPosition from = UINT64_MAX;
    Status status;
    eventstore::ReadPage page;
  };
  Fetched Fetch(eventstore::GlobalPosition from) const;
  // One page: read (or taken from the read ahead), write; false when the source had nothing
  // more.
  Result<bool> CopyPage();
  // Waits after a store went away: backoff doubling to 5 s, cut short by stop().
  void Backoff(const Status& why);
  bool Stopping() const { return options_.stop && options_.stop(); }
  void UpdateLag(TimeNs newest_recorded_ns);

  eventstore::EventStore& source_;
  eventstore::EventStore& destination_;
  const CopyOptions options_;
  ProgressFn progress_fn_;
  CopyProgress progress_;
  bool have_checkpoint_ = false;
  // The next page, read while the last one was written (a store is read and written at once).
  std::future<Fetched> ahead_;
  int64_t next_end_check_ns_ = 0;
  int64_t start_ns_ = 0;
  int backoff_ms_ = 0;
};

}  // namespace doppel::migrate
