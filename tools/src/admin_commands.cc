// doppel verify | stream-meta | scavenge: checking and maintaining an embedded log.
#include <fmt/format.h>

#include <iostream>

#include "command.h"
#include "doppel/eventstore/event_log.h"
#include "doppel/eventstore/store_client.h"
#include "doppel/pgstore/pg_event_store.h"
#include "store_access.h"

namespace doppel::tools {
namespace {

Result<std::unique_ptr<eventstore::EventLog>> OpenLog(const std::string& dir, bool read_only) {
  eventstore::EventLogOptions options;
  options.read_only = read_only;
  options.create_if_missing = false;
  return eventstore::EventLog::Open(dir, options);
}

struct VerifyOptions {
  StoreOptions store;
  bool accept_data_loss = false;
};

int RunVerify(const VerifyOptions& v) {
  const StoreOptions& o = v.store;
  eventstore::VerifyReport report;
  if (v.accept_data_loss && o.data_dir.empty()) {
    return Fail(Status::InvalidArgument("--accept-data-loss needs --data (an embedded log)"));
  }
  if (IsPostgresUrl(o.store)) {
    auto pg = pgstore::PgEventStore::Open(o.store);
    if (!pg.ok()) return Fail(pg.status());
    report = (*pg)->Verify();
  } else if (!o.store.empty()) {
    auto store = OpenStore(o, Access::kReadOnly);
    if (!store.ok()) return Fail(store.status());
    auto remote = static_cast<eventstore::StoreClient&>(**store).Verify();
    if (!remote.ok()) return Fail(remote.status());
    report = *remote;
  } else {
    // Missing acknowledged events are a verify failure (exit 5), not an error opening the log;
    // --accept-data-loss records the loss in the log so it opens again.
    eventstore::EventLogOptions options;
    options.read_only = !v.accept_data_loss;
    options.create_if_missing = false;
    options.lost_events =
        v.accept_data_loss ? eventstore::LostEvents::kAccept : eventstore::LostEvents::kReport;
    auto log = eventstore::EventLog::Open(o.data_dir, options);
    if (!log.ok()) return Fail(log.status());
    report = (*log)->Verify();
  }
  for (const auto& p : report.problems) std::cout << "problem: " << p << '\n';
  std::cout << fmt::format(
      "verify {}: {} events in {} streams, next position {}, {} removed by retention, {} "
      "accepted as lost, {} problems\n",
      report.ok() ? "OK" : "FAILED", report.events, report.streams, report.next_position,
      report.scavenged, report.lost, report.problem_count);
  return report.ok() ? kExitOk : kExitVerifyFailed;
}

struct StreamMetaOptions {
  std::string data_dir;
  std::string stream;
  std::string max_age;
  std::optional<uint64_t> max_count;
  std::optional<uint64_t> truncate_before;
};

int RunStreamMeta(const StreamMetaOptions& o) {
  const bool set = !o.max_age.empty() || o.max_count || o.truncate_before;
  auto log = OpenLog(o.data_dir, !set);
  if (!log.ok()) return Fail(log.status());
  auto current = (*log)->GetStreamMetadata(o.stream);
  if (!current.ok()) return Fail(current.status());
  eventstore::StreamMetadata meta = *current;
  if (set) {
    if (!o.max_age.empty()) {
      auto age = ParseDurationNs(o.max_age);
      if (!age.ok()) return Fail(age.status());
      meta.max_age_ns = *age;
    }
    if (o.max_count) meta.max_count = *o.max_count;
    if (o.truncate_before) meta.truncate_before = *o.truncate_before;
    Status s = (*log)->SetStreamMetadata(o.stream, meta);
    if (!s.ok()) return Fail(s);
  }
  std::cout << fmt::format(
      "{{\"stream\":\"{}\",\"max_age_ns\":{},\"max_count\":{},\"truncate_before\":{}}}\n", o.stream,
      meta.max_age_ns, meta.max_count, meta.truncate_before);
  return kExitOk;
}

int RunScavenge(const std::string& dir) {
  auto log = OpenLog(dir, /*read_only=*/false);
  if (!log.ok()) return Fail(log.status());
  auto stats = (*log)->Scavenge();
  if (!stats.ok()) return Fail(stats.status());
  std::cout << fmt::format("{{\"events_removed\":{},\"streams_visited\":{}}}\n",
                           stats->events_removed, stats->streams_visited);
  return kExitOk;
}

}  // namespace

void AddVerifyCommand(CLI::App& app) {
  auto o = std::make_shared<VerifyOptions>();
  CLI::App* cmd = app.add_subcommand(
      "verify", "Check every invariant of an event log; exit 0 only if all hold");
  AddStoreOptions(*cmd, o->store);
  cmd->add_flag("--accept-data-loss", o->accept_data_loss,
                "When acknowledged events are missing (damaged write-ahead log), keep what is "
                "left, record the loss in the log, and let it open again (positions stay unique)");
  cmd->callback([o] { ExitCode() = RunVerify(*o); });
}

void AddStreamMetaCommand(CLI::App& app) {
  auto o = std::make_shared<StreamMetaOptions>();
  CLI::App* cmd = app.add_subcommand(
      "stream-meta", "Show or set a stream's retention (max age, max count, truncate before)");
  cmd->add_option("--data", o->data_dir, "Data directory")->required();
  cmd->add_option("--stream", o->stream, "Stream")->required();
  cmd->add_option("--max-age", o->max_age, "Hide events older than this (e.g. 7d, 12h; 0 = off)");
  cmd->add_option("--max-count", o->max_count, "Keep only the newest N events (0 = off)");
  cmd->add_option("--truncate-before", o->truncate_before, "Hide versions below N");
  cmd->callback([o] { ExitCode() = RunStreamMeta(*o); });
}

void AddScavengeCommand(CLI::App& app) {
  auto dir = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand(
      "scavenge", "Delete events hidden by retention and compact to reclaim the space");
  cmd->add_option("--data", *dir, "Data directory")->required();
  cmd->callback([dir] { ExitCode() = RunScavenge(*dir); });
}

}  // namespace doppel::tools
