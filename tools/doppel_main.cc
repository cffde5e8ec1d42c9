// doppel: one binary, one subcommand per job. See README.md for the contract.
#include <iostream>

#include "src/command.h"

int main(int argc, char** argv) {
  using namespace doppel::tools;
  CLI::App app{"doppel: an event-sourced digital twin platform for robot fleets"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "doppel 0.1.0");
  AddAppendCommand(app);
  AddReadCommand(app);
  AddVerifyCommand(app);
  AddStreamMetaCommand(app);
  AddScavengeCommand(app);
  AddBenchCommands(app);
  AddStoreCommands(app);
  AddTwinCommands(app);
  AddBridgeCommands(app);
  AddGatewayCommands(app);
  AddUpCommand(app);
  AddArchiveCommands(app);
  AddReplayCommands(app);
  AddPgStoreCommands(app);
  AddCopyCommand(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }
  return ExitCode();
}
