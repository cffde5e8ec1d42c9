// doppel's tables in PostgreSQL: `events` (the layout a fleet that kept its events in
// PostgreSQL would already have), the snapshots, their history and stream metadata. Creating
// them is idempotent; an existing events table of another layout is refused, naming the
// difference, and left as it is.
#pragma once

#include "doppel/core/status.h"
#include "pg_connection.h"

namespace doppel::pgstore {

// 2: the copies' tables (doppel_copy_checkpoints, doppel_copy_map).
inline constexpr int kSchemaVersion = 2;

// Creates whatever is missing (under an advisory lock, in one transaction) and installs the
// position default that takes the transaction id first (commit_horizon.h).
Status CreateSchema(PgConnection& conn);
// Ok when the database holds doppel's tables in this layout; NotADoppelLog naming what is
// missing or different otherwise.
Status CheckSchema(PgConnection& conn);

}  // namespace doppel::pgstore
