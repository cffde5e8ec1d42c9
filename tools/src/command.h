// The `doppel` command line: each subcommand registers itself on the CLI11 app and sets
// the process exit code when it runs. Exit codes are part of the scripting contract:
//   0 success, 1 error, 2 usage error, 3 wrong expected version, 4 idempotency conflict,
//   5 verification found problems.
#pragma once

#include <signal.h>

#include <CLI/CLI.hpp>
#include <chrono>

#include "doppel/core/status.h"

namespace doppel::tools {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitConflict = 3;
inline constexpr int kExitIdempotency = 4;
inline constexpr int kExitVerifyFailed = 5;

// For long-running commands: blocks SIGINT and SIGTERM in this thread and every thread
// started after it (construct it first), then Wait() returns the signal that arrived.
class ShutdownSignal {
 public:
  ShutdownSignal();
  int Wait();
  // Like Wait(), but gives up after `timeout` and returns 0.
  int WaitFor(std::chrono::nanoseconds timeout);

 private:
  sigset_t set_;
};

// Where a subcommand's exit code goes.
int& ExitCode();

// Prints "doppel: <status>" on stderr and returns the exit code for it.
int Fail(const Status& status);

void AddAppendCommand(CLI::App& app);
void AddReadCommand(CLI::App& app);
void AddVerifyCommand(CLI::App& app);
void AddStreamMetaCommand(CLI::App& app);
void AddScavengeCommand(CLI::App& app);
void AddBenchCommands(CLI::App& app);
void AddStoreCommands(CLI::App& app);
void AddTwinCommands(CLI::App& app);
void AddBridgeCommands(CLI::App& app);
void AddGatewayCommands(CLI::App& app);
void AddUpCommand(CLI::App& app);
void AddArchiveCommands(CLI::App& app);
void AddReplayCommands(CLI::App& app);
void AddPgStoreCommands(CLI::App& app);
void AddCopyCommand(CLI::App& app);

}  // namespace doppel::tools
