// SyncPoint: the event log's own record of how far it has acknowledged appends, kept in a
// file beside RocksDB's and outside its write-ahead log, so that damage to the WAL cannot
// also erase the evidence of what the WAL held.
//
// RocksDB recovers a WAL up to its first bad or missing record. A torn final record is
// normal after a crash (it was never acknowledged), but a damaged or truncated WAL looks
// the same from inside. Comparing the recovered end of the log with the sync point tells
// the two apart: positions below the sync point were acknowledged, so they must be there.
//
// File "SYNC_POINT" in the data directory, two 512-byte slots (so a torn write of one slot
// leaves the other intact); each slot starts with
//   8 bytes  "dplsync1"
//   be64     next position: every position below it was acknowledged
//   be64     the bitwise complement of the next position (detects torn or damaged slots)
// Record() alternates slots; the sync point is the larger of the valid slots.
//
// What it guarantees: the recorded position never exceeds what the WAL made durable (it is
// written only after a commit group's WAL sync returned), so a healthy log never fails the
// check. Record() does no fsync: its write is in the page cache at once, so after a process
// crash (kill -9) the sync point is exact; Sync() makes it survive power loss, so after a
// power cut or kernel crash it may lag by the interval between Sync() calls.
//
// One thread may call Record() while another calls Sync(): they use separate handles on the
// file (an fsync covers every write to the file, whichever handle made it), so an fsync never
// holds up the committer.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "doppel/core/status.h"

namespace rocksdb {
class FileSystem;
class FSRandomRWFile;
}  // namespace rocksdb

namespace doppel::eventstore {

class SyncPoint {
 public:
  static constexpr char kFileName[] = "SYNC_POINT";

  // Reads the sync point of the log in `dir` (nullopt: none recorded, as in logs written
  // before sync points existed). Corruption if the file exists but no slot is valid.
  static Result<std::optional<uint64_t>> Read(rocksdb::FileSystem& fs, const std::string& dir);

  // Opens the sync point of `dir` for recording, creating it (and making its directory
  // entry durable) when missing. REQUIRES: `fs` outlives the SyncPoint.
  static Result<std::unique_ptr<SyncPoint>> OpenForWrite(rocksdb::FileSystem& fs,
                                                         const std::string& dir);
  ~SyncPoint();

  // Records that every position below `next_position` is acknowledged. No fsync.
  // REQUIRES: the events below `next_position` are durable in the log.
  Status Record(uint64_t next_position);
  // Makes the last Record() durable.
  Status Sync();

 private:
  SyncPoint(std::unique_ptr<rocksdb::FSRandomRWFile> writer,
            std::unique_ptr<rocksdb::FSRandomRWFile> syncer);

  std::unique_ptr<rocksdb::FSRandomRWFile> writer_;  // only Record() uses it
  std::unique_ptr<rocksdb::FSRandomRWFile> syncer_;  // only Sync() uses it
  uint64_t writes_ = 0;
};

}  // namespace doppel::eventstore
