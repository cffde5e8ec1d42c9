// The gateway's flags, shared by `doppel gateway` and `doppel up` (which serves the same
// gateway beside everything else).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "doppel/bridges/gateway.h"
#include "doppel/core/status.h"

namespace doppel::tools {

struct GatewayFlags {
  gateway::GatewayOptions options;
  std::string tokens;
  std::string scene;
};

// --address, --port, --tokens, --web, --send-budget, --max-robots, --forget-after.
void AddGatewayOptions(CLI::App& cmd, GatewayFlags& f);
Result<std::string> ReadFile(const std::string& path);

}  // namespace doppel::tools
