// doppel up, the composition root: the whole platform in one process (store, twin, DDS
// bridge both ways, gateway and dashboard, a simulated fleet) over inproc endpoints.
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "command.h"
#include "doppel/bridges/dds_egress.h"
#include "doppel/bridges/dds_ingest.h"
#include "doppel/bridges/gateway.h"
#include "doppel/bridges/sim_fleet.h"
#include "doppel/core/log.h"
#include "doppel/eventstore/event_log.h"
#include "doppel/eventstore/store_client.h"
#include "doppel/eventstore/store_server.h"
#include "doppel/twins/twin_service.h"
#include "gateway_flags.h"
#include "process_metrics.h"

#ifndef DOPPEL_WEB_ROOT
#define DOPPEL_WEB_ROOT ""
#endif

namespace doppel::tools {
namespace {

// The scene of `doppel up`: a short wall just past the end of the shuttling base's run (so a
// collision is predicted on each approach, and clears when it turns back) and two obstacles.
constexpr std::string_view kUpScene = R"({"obstacles":[
  {"name":"east-wall","type":"wall","from":[3.6,-1.5],"to":[3.6,1.5],"height":2,"thickness":0.1},
  {"name":"pillar-nw","type":"cylinder","position":[-6,6,1],"radius":0.4,"height":2},
  {"name":"crate-sw","type":"box","position":[-6,-6,0.5],"size":[1,1,1],"yaw":0.4}]})";

struct UpFlags {
  GatewayFlags gateway;
  std::string data_dir = "./doppel-data";
  int robots = 20;
  double rate_hz = 20;
  uint32_t domain = 0;
  std::string run_for;
  uint64_t seed = 1;
};

const gateway::Token* TokenFor(const std::vector<gateway::Token>& tokens, gateway::Role role) {
  for (const auto& t : tokens) {
    if (t.role == role) return &t;
  }
  return nullptr;
}

int RunUp(UpFlags f) {
  ShutdownSignal shutdown;  // before any thread starts, so they inherit the mask
  int64_t run_for_ns = 0;
  if (!f.run_for.empty()) {
    auto d = ParseDurationNs(f.run_for);
    if (!d.ok()) return Fail(d.status());
    run_for_ns = *d;
  }
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(f.data_dir, ec);
  if (ec)
    return Fail(Status::IOError(fmt::format("cannot create {}: {}", f.data_dir, ec.message())));
  const std::string data = fs::absolute(f.data_dir).lexically_normal().string();

  // Tokens: the file in the data directory, made on first start.
  std::string token_file = f.gateway.tokens.empty() ? data + "/tokens" : f.gateway.tokens;
  auto tokens = fs::exists(token_file) ? gateway::LoadTokens(token_file)
                                       : gateway::CreateTokenFile(token_file);
  if (!tokens.ok()) return Fail(tokens.status());
  const auto* viewer = TokenFor(*tokens, gateway::Role::kViewer);
  const auto* op = TokenFor(*tokens, gateway::Role::kOperator);
  if (viewer == nullptr || op == nullptr) {
    return Fail(Status::InvalidArgument(
        fmt::format("{} needs a viewer and an operator token", token_file)));
  }

  auto scene_text = f.gateway.scene.empty() ? Result<std::string>(std::string(kUpScene))
                                            : ReadFile(f.gateway.scene);
  if (!scene_text.ok()) return Fail(scene_text.status());
  auto scene = twins::Scene::FromJson(*scene_text);
  if (!scene.ok()) return Fail(scene.status());

  // Store: the embedded log behind a server on inproc endpoints.
  auto log = eventstore::EventLog::Open(data + "/log", {});
  if (!log.ok()) return Fail(log.status());
  const uint64_t history = (*log)->NextPosition();
  eventstore::StoreServerOptions so;
  so.listen = "inproc://doppel-store";
  so.publish = "inproc://doppel-events";
  auto server = eventstore::StoreServer::Start(**log, so);
  if (!server.ok()) return Fail(server.status());

  twins::TwinServiceOptions to;
  to.store = so.listen;
  to.publish = so.publish;
  to.twin_publish = "inproc://doppel-twin";
  to.scene = std::make_shared<twins::Scene>(std::move(scene).value());
  auto twin = twins::TwinService::Start(to);
  if (!twin.ok()) return Fail(twin.status());

  eventstore::StoreClientOptions co;
  co.endpoint = so.listen;
  auto ingest_store = eventstore::StoreClient::Connect(co);
  if (!ingest_store.ok()) return Fail(ingest_store.status());
  dds::IngestOptions io;
  io.domain = f.domain;
  io.max_rate_hz = std::max(2 * f.rate_hz, 1.0);  // decimation guards a firehose, not jitter
  io.models = {{"*_arm_*", "doppel_arm6"}, {"*_base_*", "doppel_base"}};
  auto ingest = dds::DdsIngest::Start(**ingest_store, io);
  if (!ingest.ok()) return Fail(ingest.status());
  dds::EgressOptions eo;
  eo.domain = f.domain;
  eo.twin_publish = to.twin_publish;
  eo.store = so.listen;
  eo.publish = so.publish;
  auto egress = dds::DdsEgress::Start(eo);
  if (!egress.ok()) return Fail(egress.status());

  gateway::GatewayOptions go = f.gateway.options;
  go.twin_publish = to.twin_publish;
  go.store = so.listen;
  go.publish = so.publish;
  go.tokens = *tokens;
  go.scene_json = *scene_text;
  // One port for everything in this process: the store's, the twin's and the bridge's
  // families follow the gateway's on /metrics.
  go.extra_metrics = [&log = **log, &server = **server, &twin = **twin, &ingest = **ingest,
                      &egress = **egress] {
    MetricsPage page;
    RenderStoreMetrics(page, log, server);
    RenderTwinMetrics(page, twin, log.NextPosition());
    RenderBridgeMetrics(page, ingest, &egress);
    return page.text();
  };
  auto gw = gateway::Gateway::Start(go);
  if (!gw.ok()) return Fail(gw.status());

  dds::SimFleetOptions fo;
  fo.robots = f.robots;
  fo.rate_hz = f.rate_hz;
  fo.domain = f.domain;
  fo.seed = f.seed;
  std::unique_ptr<dds::SimFleet> fleet;
  if (f.robots > 0) {
    auto started = dds::SimFleet::Start(fo);
    if (!started.ok()) return Fail(started.status());
    fleet = std::move(started).value();
  }

  const std::string host = go.address == "0.0.0.0" ? "127.0.0.1" : go.address;
  const uint16_t port = (*gw)->port();
  std::cout << fmt::format(
                   "doppel is up: {} simulated robots over DDS domain {}, data in {} ({} events "
                   "already there)\n"
                   "  dashboard:  http://{}:{}/?token={}\n"
                   "  foxglove:   ws://{}:{}/?token={}\n"
                   "              (Foxglove or Lichtblick: Open connection > Foxglove WebSocket)\n"
                   "  tokens:     {} (viewer, operator, admin)\n"
                   "  health:     http://{}:{}/healthz   metrics: http://{}:{}/metrics\n"
                   "Ctrl-C stops it; running it again resumes the same history.",
                   f.robots, f.domain, data, history, host, port, op->token, host, port,
                   viewer->token, token_file, host, port, host, port)
            << std::endl;

  const int64_t started = MonotonicNowNs();
  int signal = 0;
  while (signal == 0) {
    int64_t wait = 10'000'000'000;
    if (run_for_ns > 0) {
      const int64_t left = run_for_ns - (MonotonicNowNs() - started);
      if (left <= 0) break;
      wait = std::min(wait, left);
    }
    signal = shutdown.WaitFor(std::chrono::nanoseconds(wait));
    const auto tc = (*twin)->counters();
    const auto gc = (*gw)->counters();
    const auto ic = (*ingest)->counters();
    log::Info("up",
              "{} robots; {} samples in ({} appended, {} decimated, {} bad); twin applied {}, "
              "{} predictions, {} alerts; {} clients, {} messages sent, {} dropped",
              tc.robots, ic.samples, ic.appended, ic.decimated, ic.bad, tc.applied, tc.predictions,
              tc.alerts, gc.connections, gc.messages_sent, gc.messages_dropped);
  }
  if (signal != 0) {
    log::Info("up", "signal {}: stopping", signal);
  } else {
    log::Info("up", "--for {} elapsed: stopping", f.run_for);
  }
  // Producers first, the store last (the twin saves its checkpoint on the way out).
  fleet.reset();
  gw->reset();
  egress->reset();
  ingest->reset();
  twin->reset();
  ingest_store->reset();
  server->reset();
  log->reset();
  return kExitOk;
}

}  // namespace

void AddUpCommand(CLI::App& app) {
  auto u = std::make_shared<UpFlags>();
  u->gateway.options.web_root = DOPPEL_WEB_ROOT;
  CLI::App* up = app.add_subcommand(
      "up",
      "The whole platform in one process: store, twin, DDS bridge, gateway, dashboard "
      "and a simulated fleet");
  AddGatewayOptions(*up, u->gateway);
  up->add_option("--data", u->data_dir, "Data directory (the event log and tokens)")
      ->capture_default_str();
  up->add_option("--robots", u->robots, "Simulated robots (0: none, only real ones over DDS)")
      ->capture_default_str();
  up->add_option("--rate", u->rate_hz, "Samples per second per simulated robot")
      ->capture_default_str();
  up->add_option("--domain", u->domain, "DDS domain id")->capture_default_str();
  up->add_option("--seed", u->seed, "Simulator seed")->capture_default_str();
  up->add_option("--scene", u->gateway.scene, "Scene JSON (default: a wall and two obstacles)");
  up->add_option("--for", u->run_for, "Stop by itself after this long (e.g. 30s, 5m)");
  up->callback([u] { ExitCode() = RunUp(*u); });
}

}  // namespace doppel::tools
