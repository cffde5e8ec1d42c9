// doppel incident: what happened to a robot around a moment (replay/incident_report.h).
#include <iostream>

#include "command.h"
#include "doppel/core/json_text.h"
#include "doppel/replay/incident_report.h"
#include "doppel/replay/window.h"
#include "store_access.h"

namespace doppel::tools {
namespace {

struct IncidentFlags {
  StoreOptions store;
  std::string robot, at, window = "30s", format = "text";
};

int RunIncident(const IncidentFlags& f) {
  if (f.format != "text" && f.format != "json") {
    return Fail(Status::InvalidArgument("--format must be text or json"));
  }
  auto at = replay::ParseMoment(f.at, WallNowNs());
  if (!at.ok()) return Fail(at.status());
  auto window = ParseDurationNs(f.window);
  if (!window.ok()) return Fail(window.status());
  if (*window <= 0) return Fail(Status::InvalidArgument("--window must be positive"));
  auto store = OpenStore(f.store, Access::kReadOnly);
  if (!store.ok()) return Fail(store.status());
  auto report = replay::IncidentReport(**store, {f.robot, *at, *window});
  if (!report.ok()) return Fail(report.status());
  std::cout << (f.format == "json" ? SafeJsonDump(*report) + "\n" : replay::IncidentText(*report));
  return kExitOk;
}

}  // namespace

void AddReplayCommands(CLI::App& app) {
  auto flags = std::make_shared<IncidentFlags>();
  auto* cmd = app.add_subcommand(
      "incident",
      "What happened to a robot around a moment: observations, commands, faults, "
      "silences, predictions and how wrong they were");
  AddStoreOptions(*cmd, flags->store);
  cmd->add_option("--robot", flags->robot, "Robot id")->required();
  cmd->add_option("--at", flags->at, "The moment: ISO 8601, ns since the epoch, or relative (-5m)")
      ->required();
  cmd->add_option("--window", flags->window, "Span centred on --at (default 30s)");
  cmd->add_option("--format", flags->format, "text or json");
  cmd->callback([flags] { ExitCode() = RunIncident(*flags); });
}

}  // namespace doppel::tools
