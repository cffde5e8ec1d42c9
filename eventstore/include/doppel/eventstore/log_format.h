// The on-disk format of the doppel event log: RocksDB column families, keys and values.
//
// All integers in keys are big-endian so RocksDB's bytewise order is numeric order.
//
//   column family   key                                   value
//   -------------   -----------------------------------   ---------------------------------
//   default         "format"                              "doppel-eventlog 1"
//                   "copy/"..., "copymap/"...             copies' checkpoints and position
//                                                         maps (event_log_copy.cc)
//                   "scavenged"                           be64 count of events removed by
//                                                         retention (positions stay unique)
//   log             be64(global position)                 EventEnvelope FlatBuffer (complete:
//                                                         position, version, times inside)
//   streams         stream bytes, 0x00, be64(version)     be64(global position)
//   ids             16-byte event id (big-endian)         be64(global position)
//   time            be64(recorded ns) be64(position)      empty; one entry per commit group of
//                                                         appends, naming its first position,
//                                                         and one per copied event recorded
//                                                         later than every earlier event
//   snapshots       stream bytes                          SnapshotRecord FlatBuffer (latest)
//                   stream bytes, 0x00, timekey(recorded   SnapshotRecord FlatBuffer: the
//                   ns of the last event it covers),       history, one per snapshot saved
//                   be64(version)                          (what a seek to T starts from)
//   stream_meta     stream bytes                          StreamMetadataRecord FlatBuffer
//
// Invariants the format relies on (checked by EventLog::Verify):
// - positions are assigned densely from 0 by the single committer; a position is missing
//   from `log` only if retention removed it, and then "scavenged" counts it;
// - a stream's versions are dense from 0 (or from where retention truncated it);
// - appends never go back in time (a group records max(now, the latest time so far)); copied
//   events keep their source's times, which may go back; the `time` index names every
//   position recorded later than all before it, which is what PositionAtTime needs;
// - stream names are 1..kMaxStreamNameBytes bytes without 0x00, so "robot-1\0..." sorts
//   before "robot-10\0..." and a stream's entries are one contiguous key range.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace doppel::eventstore::format {

inline constexpr char kFormatKey[] = "format";
inline constexpr char kFormatValue[] = "doppel-eventlog 1";
inline constexpr char kScavengedKey[] = "scavenged";

inline constexpr char kLogFamily[] = "log";
inline constexpr char kStreamsFamily[] = "streams";
inline constexpr char kIdsFamily[] = "ids";
inline constexpr char kTimeFamily[] = "time";
inline constexpr char kSnapshotsFamily[] = "snapshots";
inline constexpr char kStreamMetaFamily[] = "stream_meta";

inline constexpr size_t kMaxStreamNameBytes = 512;

inline void PutBigEndian64(std::string* dst, uint64_t v) {
  char buf[8];
  for (int i = 0; i < 8; ++i) buf[i] = static_cast<char>(v >> (56 - 8 * i));
  dst->append(buf, 8);
}

// REQUIRES: bytes.size() >= 8
inline uint64_t GetBigEndian64(std::string_view bytes) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(bytes[i]);
  return v;
}

inline std::string LogKey(uint64_t position) {
  std::string k;
  PutBigEndian64(&k, position);
  return k;
}

// The prefix shared by every index key of `stream`.
inline std::string StreamPrefix(std::string_view stream) {
  std::string k(stream);
  k.push_back('\0');
  return k;
}

inline std::string StreamKey(std::string_view stream, uint64_t version) {
  std::string k = StreamPrefix(stream);
  PutBigEndian64(&k, version);
  return k;
}

// Signed times map to unsigned keys that sort in the same order.
inline std::string TimeKey(int64_t recorded_ns, uint64_t position) {
  std::string k;
  PutBigEndian64(&k, static_cast<uint64_t>(recorded_ns) ^ (1ULL << 63));
  PutBigEndian64(&k, position);
  return k;
}

inline int64_t TimeKeyNs(std::string_view key) {
  return static_cast<int64_t>(GetBigEndian64(key) ^ (1ULL << 63));
}

// A snapshot in a stream's history: after the stream's name and its 0x00 (so never equal to
// the latest snapshot's key, the bare name), the time of the last event it covers, then its
// version.
inline std::string SnapshotHistoryKey(std::string_view stream, int64_t event_recorded_ns,
                                      uint64_t version) {
  std::string k = StreamPrefix(stream);
  k += TimeKey(event_recorded_ns, version);
  return k;
}

}  // namespace doppel::eventstore::format
