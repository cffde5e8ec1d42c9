// doppel bridge-dds: live robot state in from ROS 2 (DDS) to the store.
#include <fmt/format.h>
#include <signal.h>

#include <iostream>

#include "command.h"
#include "doppel/bridges/dds_egress.h"
#include "doppel/bridges/dds_ingest.h"
#include "doppel/bridges/sim_fleet.h"
#include "doppel/core/log.h"
#include "metrics_http.h"
#include "process_metrics.h"
#include "store_access.h"

namespace doppel::tools {
namespace {

struct BridgeFlags {
  StoreOptions store;
  dds::IngestOptions ingest;
  std::string publish;       // store PUB (for predicted paths)
  std::string twin_publish;  // a twin's TwinState PUB: turns egress on
  std::string frame = "map";
  MetricsFlags metrics;
};

int RunBridge(const BridgeFlags& f) {
  ShutdownSignal shutdown;  // before any thread starts, so they inherit the mask
  auto store = OpenStore(f.store, Access::kReadWrite);
  if (!store.ok()) return Fail(store.status());
  auto ingest = dds::DdsIngest::Start(**store, f.ingest);
  if (!ingest.ok()) return Fail(ingest.status());
  std::unique_ptr<dds::DdsEgress> egress;
  if (!f.twin_publish.empty()) {
    dds::EgressOptions eo;
    eo.domain = f.ingest.domain;
    eo.twin_publish = f.twin_publish;
    if (IsPostgresUrl(f.store.store)) {
      if (!f.publish.empty()) {
        return Fail(Status::InvalidArgument(
            "--publish is a store server's; the egress follows PostgreSQL through the database"));
      }
      eo.open_feed = PostgresFeedOpener(f.store.store);
    } else {
      eo.store = f.store.store;
      eo.publish = f.publish;
    }
    eo.frame = f.frame;
    auto started = dds::DdsEgress::Start(eo);
    if (!started.ok()) return Fail(started.status());
    egress = std::move(started).value();
  }
  auto metrics = StartMetricsHttp(f.metrics, [&ingest = **ingest, &egress] {
    MetricsPage page;
    RenderBridgeMetrics(page, ingest, egress.get());
    return page.text();
  });
  if (!metrics.ok()) return Fail(metrics.status());
  std::cout << fmt::format("{{\"domain\":{},\"robots\":\"{}\"}}", f.ingest.domain, f.ingest.robots)
            << std::endl;
  const int signal = shutdown.Wait();
  const auto c = (*ingest)->counters();
  log::Info("bridge-dds",
            "signal {}: {} robots, {} samples: {} appended, {} decimated, {} bad, {} append errors",
            signal, c.robots, c.samples, c.appended, c.decimated, c.bad, c.append_errors);
  metrics->reset();
  egress.reset();
  ingest->reset();
  return kExitOk;
}

int RunSimFleet(const dds::SimFleetOptions& o) {
  ShutdownSignal shutdown;  // before any thread starts, so they inherit the mask
  auto fleet = dds::SimFleet::Start(o);
  if (!fleet.ok()) return Fail(fleet.status());
  std::cout << fmt::format("{{\"robots\":{},\"rate_hz\":{},\"prefix\":\"{}\"}}", o.robots,
                           o.rate_hz, o.prefix)
            << std::endl;
  const int signal = shutdown.Wait();
  log::Info("sim-fleet", "signal {}: stopping after {} samples", signal,
            (*fleet)->samples_published());
  return kExitOk;
}

}  // namespace

void AddBridgeCommands(CLI::App& app) {
  auto f = std::make_shared<BridgeFlags>();
  CLI::App* cmd = app.add_subcommand(
      "bridge-dds",
      "Ingest ROS 2 robots from DDS (rt/<robot>/joint_states, odom, cmd_vel) into the store");
  AddStoreOptions(*cmd, f->store);
  cmd->add_option("--domain", f->ingest.domain, "DDS domain id")->capture_default_str();
  cmd->add_option("--robots", f->ingest.robots, "Robot name glob")->capture_default_str();
  cmd->add_option("--max-rate", f->ingest.max_rate_hz,
                  "Max samples/s per robot and topic (0 = all); the rest are counted as decimated")
      ->capture_default_str();
  cmd->add_option_function<std::vector<std::string>>(
      "--model",
      [f](const std::vector<std::string>& specs) {
        for (const auto& spec : specs) {
          const auto eq = spec.find('=');
          if (eq == std::string::npos) throw CLI::ValidationError("--model", "want GLOB=MODEL");
          f->ingest.models.emplace_back(spec.substr(0, eq), spec.substr(eq + 1));
        }
      },
      "GLOB=MODEL: robots whose name matches register with that model (e.g. 'amr_*=doppel_base')");
  cmd->add_option("--twin-publish", f->twin_publish,
                  "A twin's TwinState endpoint: also publish twin state to ROS 2 (egress)");
  cmd->add_option("--publish", f->publish, "Store PUB endpoint (predicted paths, with --store)");
  cmd->add_option("--frame", f->frame, "Site frame for odometry, tf and paths")
      ->capture_default_str();
  AddMetricsOptions(*cmd, f->metrics);
  cmd->callback([f] { ExitCode() = RunBridge(*f); });

  auto sim = std::make_shared<dds::SimFleetOptions>();
  CLI::App* fleet = app.add_subcommand(
      "sim-fleet", "Simulate a fleet of arms and bases publishing ROS 2 topics over DDS");
  fleet->add_option("--robots", sim->robots, "How many robots")->capture_default_str();
  fleet->add_option("--rate", sim->rate_hz, "Samples per second per robot")->capture_default_str();
  fleet->add_option("--seed", sim->seed, "Random seed")->capture_default_str();
  fleet->add_option("--prefix", sim->prefix, "Robot name prefix")->capture_default_str();
  fleet->add_option("--domain", sim->domain, "DDS domain id")->capture_default_str();
  fleet->callback([sim] { ExitCode() = RunSimFleet(*sim); });
}

}  // namespace doppel::tools
