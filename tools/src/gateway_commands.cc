// doppel gateway: the control-room gateway on its own (doppel up, the whole platform, is
// up_command.cc).
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
#include "store_access.h"

#ifndef DOPPEL_WEB_ROOT
#define DOPPEL_WEB_ROOT ""
#endif

namespace doppel::tools {
namespace {

int RunGateway(GatewayFlags f) {
  ShutdownSignal shutdown;  // before any thread starts, so they inherit the mask
  if (!f.tokens.empty()) {
    auto tokens = gateway::LoadTokens(f.tokens);
    if (!tokens.ok()) return Fail(tokens.status());
    f.options.tokens = std::move(tokens).value();
  }
  if (!f.scene.empty()) {
    auto scene = ReadFile(f.scene);
    if (!scene.ok()) return Fail(scene.status());
    f.options.scene_json = std::move(scene).value();
  }
  gateway::GatewayOptions options = f.options;
  if (IsPostgresUrl(options.store)) {
    if (!options.publish.empty()) {
      return Fail(Status::InvalidArgument(
          "--publish is a store server's; the gateway follows PostgreSQL through the database"));
    }
    options.open_store = PostgresStoreOpener(options.store);
    options.open_feed = PostgresFeedOpener(options.store);
  }
  auto gw = gateway::Gateway::Start(options);
  if (!gw.ok()) return Fail(gw.status());
  std::cout << fmt::format("{{\"http\":\"http://{}:{}/\",\"port\":{}}}", f.options.address,
                           (*gw)->port(), (*gw)->port())
            << std::endl;
  const int signal = shutdown.Wait();
  log::Info("gateway", "signal {}: stopping", signal);
  gw->reset();
  return kExitOk;
}

}  // namespace

void AddGatewayCommands(CLI::App& app) {
  auto g = std::make_shared<GatewayFlags>();
  g->options.web_root = DOPPEL_WEB_ROOT;
  CLI::App* cmd = app.add_subcommand(
      "gateway", "Serve twins to browsers, Foxglove and Lichtblick (foxglove.websocket.v1)");
  AddGatewayOptions(*cmd, *g);
  cmd->add_option("--twin-publish", g->options.twin_publish, "A twin's TwinState endpoint")
      ->capture_default_str();
  cmd->add_option("--store", g->options.store,
                  "Store ROUTER endpoint, or a postgres:// database (events and commands)");
  cmd->add_option("--publish", g->options.publish, "Store PUB endpoint (a store server's)");
  cmd->add_option("--scene", g->scene, "Scene JSON shown by the dashboard");
  cmd->callback([g] { ExitCode() = RunGateway(*g); });
}

}  // namespace doppel::tools
