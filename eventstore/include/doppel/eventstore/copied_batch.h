// A verbatim copy between two stores (doppel copy, and the backfill and tailer of a
// migration): the events of one page of the source, in the source's order, written to the
// destination as they were (ids, streams, versions, recorded and occurred times, causation,
// payload bytes; the destination gives them positions of its own) together with where the copy
// stands, in one atomic write. A copy killed anywhere resumes from the destination's checkpoint
// with nothing lost and nothing written twice.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "doppel/eventstore/types.h"

namespace doppel::eventstore {

struct CopiedBatch {
  // The copy's name: its checkpoint and its position map belong to it. 1..128 bytes of UTF-8.
  std::string copier;
  // Where the copy stood in the source when this page was read: the destination refuses the
  // batch (WrongExpectedVersion) unless its checkpoint still says so, so two copiers of one name
  // cannot both write a page.
  GlobalPosition source_from = 0;
  // One page of the source's $all, in position order (may be empty: positions the source has
  // no events at, such as scavenged ones, only move the checkpoint).
  std::vector<RecordedEvent> events;
  // Where the copy resumes in the source after these events.
  GlobalPosition source_next = 0;
};

// Where a copy stands in its destination.
struct CopyCheckpoint {
  GlobalPosition source_next = 0;  // the next source position to copy (0: nothing copied yet)
  uint64_t events = 0;             // source events the copy has covered so far
};

// What AppendCopied did with one batch.
struct CopyResult {
  uint64_t written = 0;  // events the destination did not have
  uint64_t present = 0;  // events it already held (same id, same event): not written again
  CopyCheckpoint checkpoint;
};

}  // namespace doppel::eventstore
