// EventLog::Verify: every invariant of log_format.h checked over the whole log, with progress.
#include <fmt/format.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include "doppel/core/log.h"
#include "doppel/eventstore/event_log.h"
#include "doppel/eventstore/log_format.h"
#include "doppel/schemas/payloads.h"
#include "event_log_internal.h"

namespace doppel::eventstore {

using internal::AsView;
using internal::FromRocks;
using internal::View;
namespace {

constexpr const char* kComponent = internal::kEventLogComponent;

}  // namespace

VerifyReport EventLog::Verify() const {
  VerifyReport report;
  {
    std::lock_guard lock(cache_mu_);
    report.scavenged = scavenged_;
    report.lost = lost_;
  }
  report.next_position = NextPosition();
  auto problem = [&report](std::string text) {
    ++report.problem_count;
    if (report.problems.size() < 50) report.problems.push_back(std::move(text));
  };
  log::Progress progress(kComponent, "verify log", report.next_position);

  // 1. The log: every record verifies, sits at its own position, positions ascend, the time
  //    index names each time later than all before it (appends never go back in time; copies
  //    keep their source's times), and both indexes point back at it.
  GlobalPosition expected_next = 0;
  TimeNs last_recorded = std::numeric_limits<TimeNs>::min();
  uint64_t gaps = 0;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), log_cf_));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (it->key().size() != 8) {
        problem(fmt::format("log key of {} bytes (want 8)", it->key().size()));
        continue;
      }
      const GlobalPosition position = format::GetBigEndian64(View(it->key()));
      if (position < expected_next) problem(fmt::format("position {} out of order", position));
      gaps += position - expected_next;
      expected_next = position + 1;
      ++report.events;
      auto event = RecordedEvent::FromBytes(it->value().ToString());
      if (!event.ok()) {
        problem(fmt::format("position {}: {}", position, event.status().message()));
        continue;
      }
      if (event->position() != position) {
        problem(fmt::format("position {} holds an event that says position {}", position,
                            event->position()));
      }
      if (event->recorded_ns() > last_recorded) {
        // Later than every earlier event: the time index must name it (PositionAtTime relies
        // on it), unless retention or an accepted loss removed the earlier events.
        std::string ignored;
        if (report.scavenged == 0 && report.lost == 0 &&
            !db_->Get(rocksdb::ReadOptions(), time_cf_,
                      format::TimeKey(event->recorded_ns(), position), &ignored)
                 .ok()) {
          problem(
              fmt::format("position {}: recorded later than every earlier event, but the "
                          "time index does not name it",
                          position));
        }
        last_recorded = event->recorded_ns();
      }
      std::string value;
      rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), streams_cf_,
                                   format::StreamKey(event->stream(), event->version()), &value);
      if (!s.ok() || value.size() != 8 || format::GetBigEndian64(value) != position) {
        problem(fmt::format("position {} ({} version {}) is missing from the stream index",
                            position, event->stream(), event->version()));
      }
      s = db_->Get(rocksdb::ReadOptions(), ids_cf_, AsView(event->id().ToBytes()), &value);
      if (!s.ok() || value.size() != 8 || format::GetBigEndian64(value) != position) {
        problem(fmt::format("position {} (id {}) is missing from the id index", position,
                            event->id().ToString()));
      }
      progress.Update(report.events);
    }
    if (!it->status().ok()) problem(fmt::format("reading log: {}", it->status().ToString()));
  }
  if (!lost_problem_.empty()) problem(lost_problem_);
  if (expected_next > report.next_position ||
      (expected_next < report.next_position && report.lost == 0)) {
    problem(fmt::format("log ends at position {} but the committer is at {}", expected_next,
                        report.next_position));
  }
  // Positions missing at the end count too once a loss there was accepted.
  gaps += report.next_position > expected_next ? report.next_position - expected_next : 0;
  if (gaps != report.scavenged + report.lost) {
    problem(
        fmt::format("{} positions are missing but retention removed {} and {} were accepted "
                    "as lost",
                    gaps, report.scavenged, report.lost));
  }

  // 2. The stream index: dense versions per stream, each pointing at a matching record.
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), streams_cf_));
    std::string current;
    StreamVersion next_version = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      const std::string_view key = View(it->key());
      if (key.size() < 10 || key[key.size() - 9] != '\0') {
        problem("malformed stream index key");
        continue;
      }
      const std::string_view stream = key.substr(0, key.size() - 9);
      const StreamVersion version = format::GetBigEndian64(key.substr(key.size() - 8));
      if (stream != current) {
        current = stream;
        ++report.streams;
        if (version != 0 && report.scavenged == 0) {
          problem(fmt::format("stream {} starts at version {}", stream, version));
        }
      } else if (version != next_version) {
        problem(fmt::format("stream {} jumps from version {} to {}", stream, next_version - 1,
                            version));
      }
      next_version = version + 1;
      if (it->value().size() != 8) {
        problem(fmt::format("stream {} version {}: malformed position", stream, version));
        continue;
      }
      auto event = ReadAt(format::GetBigEndian64(View(it->value())));
      if (!event.ok()) {
        problem(fmt::format("stream {} version {}: {}", stream, version, event.status().message()));
      } else if (event->stream() != stream || event->version() != version) {
        problem(fmt::format("stream {} version {} points at {} version {}", stream, version,
                            event->stream(), event->version()));
      }
    }
  }

  // 3. The id index points only at events with that id.
  {
    rocksdb::ReadOptions all_ids;
    all_ids.total_order_seek = true;  // the ids family is hashed by prefix
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(all_ids, ids_cf_));
    uint64_t ids = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      ++ids;
      const EventId id = EventId::FromBytes(View(it->key()));
      auto event = ReadAt(format::GetBigEndian64(View(it->value())));
      if (!event.ok() || event->id() != id) {
        problem(fmt::format("id {} points at a position without it", id.ToString()));
      }
    }
    if (ids != report.events) {
      problem(fmt::format("id index has {} entries for {} events", ids, report.events));
    }
  }

  // 4. The time index names group starts recorded at its time.
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), time_cf_));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      const TimeNs t = format::TimeKeyNs(View(it->key()));
      const GlobalPosition position = format::GetBigEndian64(View(it->key()).substr(8));
      auto event = ReadAt(position);
      if (event.ok() && event->recorded_ns() != t) {
        problem(fmt::format("time index entry for position {} has the wrong time", position));
      } else if (!event.ok() && event.status().code() != Status::Code::kNotFound) {
        problem(fmt::format("time index: {}", event.status().message()));
      } else if (!event.ok() && report.scavenged == 0) {
        problem(fmt::format("time index names position {}, which does not exist", position));
      }
    }
  }

  // 5. Snapshots and metadata verify.
  for (auto* cf : {snapshots_cf_, stream_meta_cf_}) {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      const std::string value = it->value().ToString();
      const Status s = cf == snapshots_cf_ ? schemas::VerifySnapshotRecord(value).status()
                                           : schemas::VerifyStreamMetadataRecord(value).status();
      if (!s.ok())
        problem(fmt::format("{} of {}: {}", cf->GetName(), View(it->key()), s.message()));
    }
  }
  progress.Finish(report.events);
  return report;
}

}  // namespace doppel::eventstore
