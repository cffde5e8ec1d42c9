// The rules of a copied batch (copied_batch.h) that every store applies the same way.
#pragma once

#include <optional>

#include "doppel/eventstore/append_rules.h"
#include "doppel/eventstore/copied_batch.h"

namespace doppel::eventstore {

// A valid copier name, events in ascending source position from source_from and below
// source_next, no id twice.
Status CheckCopiedBatch(const CopiedBatch& batch);

// Whether the destination's checkpoint `current` is where the batch says the copy stood.
Status CheckCopyCheckpoint(const CopiedBatch& batch, const CopyCheckpoint& current);

// Whether the batch may be a resend of the one that moved the checkpoint to `current` (a
// client whose answer was lost sends it again): it ends where the checkpoint is. It is, when
// every one of its events is there; the store then answers it as written before.
bool MaybeResentCopy(const CopiedBatch& batch, const CopyCheckpoint& current);

// How a copied event fits the destination. `stored` is what the destination holds under its
// id. The same event there (stream, version, type, payload): its position (not written again).
// Nothing there: nullopt, to be written at its own version, which must follow the stream's
// head in the destination (`head`; a stream the destination does not have may start at any
// version: the source may have scavenged its beginning). Anything else: IdempotencyConflict
// or WrongExpectedVersion naming the event.
Result<std::optional<GlobalPosition>> PlaceCopiedEvent(const RecordedEvent& event,
                                                       const std::optional<StoredEvent>& stored,
                                                       std::optional<StreamVersion> head);

// The event as a writer would hand it in (id, type, payload, times, causation), to write down
// again at a place of the destination's with BuildEnvelope.
NewEvent AsNewEvent(const RecordedEvent& event);

}  // namespace doppel::eventstore
