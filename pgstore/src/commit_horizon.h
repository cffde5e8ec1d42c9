// The commit horizon of a PostgreSQL events table: the highest position below which every row
// is either committed or will never be. `bigserial` positions are handed out before commit,
// so a transaction holding a lower position can commit after one holding a higher one; a
// reader that delivered everything up to the highest visible position would skip the late
// row for good. Readers deliver only up to the horizon instead.
//
// One observation is one statement: the highest position M visible in its snapshot, then the
// transactions that hold a lock on the events table, read from pg_locks after the snapshot
// was taken. Whoever holds a position at or below M took it before the snapshot (M's writer
// committed before it, and took its position after the lower ones), inside an INSERT into
// events, which locks the table until the transaction ends, and with a transaction id, which
// the column's default takes before nextval (pg_locks lists transactions by id). So at the
// pg_locks read every such holder has either finished or is in that list. Once a later observation
// finds none of the listed transactions left, every row at or below M is final, and a read in any
// snapshot taken after that sees all of them. No timeout and no guess about how long a transaction
// may take; only transactions that write events hold the horizon back.
//
// Writers must let the column's default assign positions (an INSERT that calls nextval itself
// before locking the table is outside this argument).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "doppel/core/status.h"

namespace doppel::pgstore {

// pg_locks' transaction ids ("12,13").
Result<std::vector<uint64_t>> ParseXidList(std::string_view text);

// Not thread-safe: observations must be made in the order they were taken (the store takes
// and observes them under one lock).
class CommitHorizon {
 public:
  // The highest visible position (0: none) and the transactions writing events just after.
  // Returns the horizon, which only grows. Rows up to it are final; read them in a snapshot
  // taken after this observation.
  uint64_t Observe(uint64_t max_visible, const std::vector<uint64_t>& writing);
  uint64_t horizon() const { return horizon_; }

 private:
  struct Barrier {
    uint64_t max_visible;
    std::vector<uint64_t> writing;
  };
  uint64_t horizon_ = 0;
  std::optional<Barrier> pending_;
};

}  // namespace doppel::pgstore
