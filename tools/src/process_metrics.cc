#include "process_metrics.h"

#include <string>

namespace doppel::tools {

void RenderStoreMetrics(MetricsPage& page, const eventstore::EventLog& log,
                        const eventstore::StoreServer& server) {
  const auto c = server.counters();
  const auto& commit = log.commit_stats();
  page.Counter("doppel_store_requests_total", "Requests received (every type)", c.requests);
  page.Counter("doppel_store_append_requests_total", "Append requests received", c.append_requests);
  page.Counter("doppel_store_appended_events_total",
               "Events written by the group commit (idempotent duplicates are not)",
               commit.events.load());
  page.Counter("doppel_store_append_errors_total",
               "Appends answered with an error (wrong expected version, invalid, I/O)",
               c.append_errors);
  page.Counter("doppel_store_malformed_requests_total",
               "Requests that did not verify, were truncated, oversized or of an unknown type",
               c.malformed);
  page.Counter("doppel_store_write_errors_total",
               "Failed WriteBatch writes (the log then refuses appends until reopened)",
               commit.write_errors.load());
  page.Counter("doppel_store_commit_groups_total", "Commit groups written (one fsync each)",
               commit.groups.load());
  page.Histogram("doppel_store_commit_group_events", "Events per commit group",
                 commit.group_events.Read());
  page.Histogram("doppel_store_fsync_seconds",
                 "Time to write one commit group's WriteBatch with sync (the fsync)",
                 commit.write_seconds.Read());
  page.Gauge("doppel_store_next_position", "The global position the next event will get",
             log.NextPosition());
  // ZeroMQ PUB does not say how many subscribers it has, so there is no subscriber gauge.
  page.Counter("doppel_store_published_total", "Committed events sent on the PUB socket",
               c.published);
}

void RenderTwinMetrics(MetricsPage& page, const twins::TwinService& twin,
                       std::optional<uint64_t> store_next_position) {
  const auto c = twin.counters();
  page.Gauge("doppel_twin_robots", "Robots this twin partition holds", c.robots);
  page.Gauge("doppel_twin_silent_robots", "Robots now silent (no observation for --silent-after)",
             c.silent_robots);
  page.Counter("doppel_twin_events_applied_total", "Robot events folded into robot state",
               c.applied);
  page.Counter("doppel_twin_events_skipped_total",
               "Events counted and skipped (unknown type, payload that does not fit)", c.skipped);
  page.Counter("doppel_twin_events_other_partition_total",
               "Events of robots another partition owns", c.other_partition);
  page.Gauge("doppel_twin_position", "Next global position the twin has not seen", c.position);
  page.Gauge("doppel_twin_checkpoint", "Next global position in the saved checkpoint",
             c.checkpoint);
  if (store_next_position) {
    page.Gauge("doppel_twin_lag_events",
               "Events the store holds that the twin has not seen (store next position - twin "
               "position)",
               *store_next_position > c.position ? *store_next_position - c.position : 0);
  }
  page.Counter("doppel_twin_predictions_total", "Predictions made", c.predictions);
  page.Counter("doppel_twin_predictions_refused_total",
               "Predictions not run (non-finite state or command)", c.predictions_refused);
  page.Histogram("doppel_twin_prediction_seconds", "Time of one physics prediction",
                 twin.prediction_seconds().Read());
  page.Counter("doppel_twin_warnings_suppressed_total",
               "Warnings about skipped events and refused predictions not logged (rate limit)",
               c.warnings_suppressed);
  page.Counter("doppel_twin_alerts_total", "Prediction alerts (collisions, joint limits)",
               c.alerts);
  page.Counter("doppel_twin_states_published_total", "TwinState messages published", c.published);
  page.Counter("doppel_twin_append_errors_total", "Derived events the store did not take",
               c.append_errors);
}

void RenderBridgeMetrics(MetricsPage& page, const dds::DdsIngest& ingest,
                         const dds::DdsEgress* egress) {
  const auto c = ingest.counters();
  page.Gauge("doppel_bridge_robots", "Robots the DDS ingest reads", c.robots);
  page.Counter("doppel_bridge_robots_refused_total",
               "Robot topics ignored (past --max-robots, or names that are not valid)",
               c.robots_refused);
  auto per_kind = [&](std::string_view name, std::string_view help, auto field) {
    page.Family(name, "counter", help);
    for (size_t k = 0; k < c.kinds.size(); ++k) {
      page.Sample(name, {{"kind", std::string(dds::DdsIngest::kKindNames[k])}}, c.kinds[k].*field);
    }
  };
  using K = dds::DdsIngest::KindCounters;
  per_kind("doppel_bridge_samples_total", "DDS samples taken, by topic kind", &K::samples);
  per_kind("doppel_bridge_samples_appended_total", "Samples appended to the store, by topic kind",
           &K::appended);
  per_kind("doppel_bridge_samples_decimated_total",
           "Samples left out by --max-rate or repeating the last value, by topic kind",
           &K::decimated);
  per_kind("doppel_bridge_samples_bad_total", "Samples refused as bad (NaN, mismatched arrays)",
           &K::bad);
  page.Counter("doppel_bridge_append_errors_total", "Appends of samples the store refused",
               c.append_errors);
  page.Counter("doppel_bridge_own_commands_total",
               "cmd_vel samples doppel itself wrote (not recorded again)", c.own_commands);
  page.Counter("doppel_bridge_warnings_suppressed_total",
               "Warnings about bad samples and topics not logged (rate limit)",
               c.warnings_suppressed);
  if (egress == nullptr) return;
  const auto e = egress->counters();
  page.Gauge("doppel_bridge_egress_robots", "Robots the egress publishes", e.robots);
  page.Counter("doppel_bridge_egress_states_total", "Twin states published to ROS 2", e.states);
  page.Counter("doppel_bridge_egress_paths_total", "Predicted paths published to ROS 2", e.paths);
  page.Counter("doppel_bridge_egress_bad_total", "TwinState messages that did not verify", e.bad);
  page.Counter("doppel_bridge_commands_relayed_total",
               "Operator commands sent to robots on rt/<robot>/cmd_vel", e.commands_relayed);
}

}  // namespace doppel::tools
