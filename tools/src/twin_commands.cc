// doppel twin | state: the twin process, and a robot's state at any moment (time travel).
#include <fmt/format.h>
#include <signal.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "command.h"
#include "doppel/core/json_text.h"
#include "doppel/core/log.h"
#include "doppel/eventstore/store_client.h"
#include "doppel/twins/robot_aggregate.h"
#include "doppel/twins/state_report.h"
#include "doppel/twins/twin_service.h"
#include "metrics_http.h"
#include "process_metrics.h"
#include "store_access.h"

namespace doppel::tools {
namespace {

struct TwinFlags {
  StoreOptions store;
  std::string publish;
  std::string twin_publish = "tcp://127.0.0.1:7602";
  std::string partition = "0/1";
  std::string scene;
  uint64_t snapshot_every = twins::TwinServiceOptions{}.snapshot_every_events;
  double publish_hz = 30;
  double predict_hz = 10;
  double silent_after = 2.0;
  MetricsFlags metrics;
};

int RunTwin(const TwinFlags& f) {
  ShutdownSignal shutdown;  // before any thread starts, so they inherit the mask

  twins::TwinServiceOptions o;
  o.store = f.store.store;
  o.publish = f.publish;
  o.twin_publish = f.twin_publish;
  if (std::sscanf(f.partition.c_str(), "%d/%d", &o.partition, &o.partitions) != 2) {
    return Fail(Status::InvalidArgument("--partition wants I/N, e.g. 0/2"));
  }
  if (!f.scene.empty()) {
    auto scene = twins::Scene::FromFile(f.scene);
    if (!scene.ok()) return Fail(scene.status());
    o.scene = std::make_shared<twins::Scene>(std::move(scene).value());
  }
  auto curve = CurveClient(f.store);
  if (!curve.ok()) return Fail(curve.status());
  o.curve = *curve;
  o.snapshot_every_events = f.snapshot_every;
  o.publish_hz = f.publish_hz;
  o.predict_hz = f.predict_hz;
  o.silent_after_s = f.silent_after;
  const bool postgres = IsPostgresUrl(o.store);
  if (postgres) {
    if (!f.publish.empty()) {
      return Fail(Status::InvalidArgument(
          "--publish is a store server's; a twin follows PostgreSQL through the database"));
    }
    o.open_store = PostgresStoreOpener(o.store);
    o.open_feed = PostgresFeedOpener(o.store);
  } else if (f.publish.empty()) {
    return Fail(Status::InvalidArgument("--publish (the store's PUB endpoint) is required"));
  }
  auto service = twins::TwinService::Start(o);
  if (!service.ok()) return Fail(service.status());
  // The lag gauge asks the store where its log ends, once per scrape, briefly: a store that
  // does not answer leaves the gauge out instead of holding up the scrape.
  std::unique_ptr<eventstore::EventStore> lag_store;
  if (postgres) {
    auto opened = OpenStore(f.store, Access::kReadOnly);
    if (!opened.ok()) return Fail(opened.status());
    lag_store = std::move(opened).value();
  } else {
    eventstore::StoreClientOptions lag_client;
    lag_client.endpoint = o.store;
    lag_client.curve = o.curve;
    lag_client.attempt_timeout = std::chrono::milliseconds(250);
    lag_client.deadline = std::chrono::milliseconds(250);
    auto client = eventstore::StoreClient::Connect(lag_client);
    if (!client.ok()) return Fail(client.status());
    lag_store = std::move(client).value();
  }
  auto metrics =
      StartMetricsHttp(f.metrics, [&twin = **service, &store = *lag_store]() -> std::string {
        auto next = store.EndPosition();
        MetricsPage page;
        RenderTwinMetrics(page, twin, next.ok() ? std::optional<uint64_t>(*next) : std::nullopt);
        return page.text();
      });
  if (!metrics.ok()) return Fail(metrics.status());
  std::cout << fmt::format("{{\"twin_publish\":\"{}\",\"partition\":\"{}/{}\"}}",
                           (*service)->twin_publish_endpoint(), o.partition, o.partitions)
            << std::endl;
  const int signal = shutdown.Wait();
  const auto c = (*service)->counters();
  log::Info("twin", "signal {}: stopping after {} events for {} robots, {} predictions", signal,
            c.applied, c.robots, c.predictions);
  metrics->reset();
  service->reset();
  return kExitOk;
}

struct StateFlags {
  StoreOptions store;
  std::string robot;
  std::string at;
  std::string format = "json";
};

int RunState(const StateFlags& f) {
  if (f.format != "json") return Fail(Status::InvalidArgument("--format must be json"));
  TimeNs at = eventstore::kTimeMax;
  if (!f.at.empty()) {
    auto t = ParseTime(f.at);
    if (!t.ok()) return Fail(t.status());
    at = *t;
  }
  auto store = OpenStore(f.store, Access::kReadOnly);
  if (!store.ok()) return Fail(store.status());
  auto report = twins::StateReport(**store, f.robot, at);
  if (!report.ok()) return Fail(report.status());
  std::cout << SafeJsonDump(*report, 2) << std::endl;
  return kExitOk;
}

}  // namespace

void AddTwinCommands(CLI::App& app) {
  auto t = std::make_shared<TwinFlags>();
  CLI::App* twin = app.add_subcommand(
      "twin", "Run a twin: fold robot events, predict with physics, publish TwinState");
  twin->add_option("--store", t->store.store,
                   "Store server endpoint, or a postgres:// database to follow")
      ->required();
  twin->add_option("--publish", t->publish, "Store PUB endpoint (a store server's)");
  twin->add_option("--twin-publish", t->twin_publish, "PUB endpoint for TwinState")
      ->capture_default_str();
  twin->add_option("--partition", t->partition, "I/N: own robots whose id hashes to I of N")
      ->capture_default_str();
  twin->add_option("--scene", t->scene, "Scene file (JSON obstacles)");
  twin->add_option("--snapshot-every", t->snapshot_every, "Snapshot a robot every N events")
      ->capture_default_str();
  twin->add_option("--publish-hz", t->publish_hz, "Max TwinState rate per robot")
      ->capture_default_str();
  twin->add_option("--predict-hz", t->predict_hz, "Prediction rate while a robot moves")
      ->capture_default_str();
  twin->add_option("--silent-after", t->silent_after, "Seconds without observations = silent")
      ->capture_default_str();
  AddCurveClientOptions(*twin, t->store);
  AddMetricsOptions(*twin, t->metrics);
  twin->callback([t] { ExitCode() = RunTwin(*t); });

  auto s = std::make_shared<StateFlags>();
  CLI::App* state = app.add_subcommand("state",
                                       "A robot's state now or at a past moment "
                                       "(nearest snapshot + events up to it)");
  AddStoreOptions(*state, s->store);
  state->add_option("--robot", s->robot, "Robot id (its stream is robot-<ID>)")->required();
  state->add_option("--at", s->at, "Moment: ISO 8601 or ns since epoch (default: now)");
  state->add_option("--format", s->format, "json")->capture_default_str();
  state->callback([s] { ExitCode() = RunState(*s); });
}

}  // namespace doppel::tools
