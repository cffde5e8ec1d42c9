// The commit horizon of a PostgreSQL events table: the highest position below which every row
// is either committed or will never be. `bigserial` positions are handed out before commit,
// so a transaction holding a lower position can commit after one holding a higher one; a
// reader that delivered everything up to the highest visible position would skip the late
// row for good. Readers deliver only up to the horizon instead.
//
// Every writer takes its transaction id before its position (the column's default function
// calls pg_current_xact_id() before nextval), so whoever holds a position at or below the
// highest position M visible in a snapshot S had an id before S was taken: it is committed
// (visible in S), aborted, or still running. A snapshot's own in-progress list is not enough
// to name the running ones: PostgreSQL leaves out ids at or above its xmax (the latest
// completed id + 1), which a writer that took its id late but its position early has. So the
// running transactions are also read from pg_locks (every transaction holds an exclusive lock
// on its own id) after the snapshot is taken. Once a later snapshot shows all of those
// finished, every row at or below M is final and visible to it. No timeout and no guess
// about how long a transaction may take.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "doppel/core/status.h"

namespace doppel::pgstore {

// What pg_current_snapshot() says: xmin:xmax:in-progress ids.
struct PgSnapshot {
  uint64_t xmin = 0;
  uint64_t xmax = 0;
  std::vector<uint64_t> in_progress;
  // Whether transaction `xid` had finished (committed or aborted) when this snapshot was taken.
  bool Finished(uint64_t xid) const;
};
Result<PgSnapshot> ParsePgSnapshot(std::string_view text);
// pg_locks' 32-bit transaction ids ("12,13"), widened to 64 bits next to `reference` (an xid8
// of the same moment, such as the snapshot's xmax).
Result<std::vector<uint64_t>> ParseLockedXids(std::string_view text, uint64_t reference);

// Not thread-safe: observations must be made in the order their snapshots were taken (the
// store takes a snapshot and observes it under one lock).
class CommitHorizon {
 public:
  // A snapshot, the highest position visible in it (0: none) and the transactions running
  // just after it was taken (pg_locks). Returns the horizon, which only grows; rows up to it
  // are final and visible in this snapshot and every later one.
  uint64_t Observe(const PgSnapshot& snapshot, uint64_t max_visible,
                   const std::vector<uint64_t>& running);
  uint64_t horizon() const { return horizon_; }

 private:
  struct Barrier {
    uint64_t max_visible;
    std::vector<uint64_t> in_progress;
  };
  uint64_t horizon_ = 0;
  std::optional<Barrier> pending_;
};

}  // namespace doppel::pgstore
