#include "gateway_flags.h"

#include <fmt/format.h>

#include <fstream>
#include <sstream>

namespace doppel::tools {

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound(fmt::format("cannot read {}", path));
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void AddGatewayOptions(CLI::App& cmd, GatewayFlags& f) {
  cmd.add_option("--address", f.options.address, "Address to listen on")->capture_default_str();
  cmd.add_option("--port", f.options.port, "HTTP/WebSocket port (0: any free port)")
      ->capture_default_str();
  cmd.add_option("--tokens", f.tokens,
                 "Token file: TOKEN ROLE [NAME] per line (roles viewer, operator, admin)");
  cmd.add_option("--web", f.options.web_root, "Directory of the dashboard's files")
      ->capture_default_str();
  cmd.add_option("--send-budget", f.options.send_budget_bytes,
                 "Bytes queued per client before only the newest message per channel is kept")
      ->capture_default_str();
  cmd.add_option("--max-robots", f.options.max_robots,
                 "Robots served at most; more are refused (doppel_gateway_robots_refused_total)")
      ->capture_default_str();
  cmd.add_option("--max-connections", f.options.max_connections,
                 "TCP connections open at once (HTTP and WebSocket); more are answered 503 and "
                 "closed (doppel_gateway_tcp_refused_total). At most ulimit -n less 256")
      ->capture_default_str();
  cmd.add_option("--max-connections-per-address", f.options.max_connections_per_address,
                 "TCP connections one client address may keep open at once")
      ->capture_default_str();
  cmd.add_option("--max-replay-sessions", f.options.max_replay_sessions,
                 "/replay sessions open at once; more are refused with 503")
      ->capture_default_str();
  cmd.add_option("--max-replay-sessions-per-token", f.options.max_replay_sessions_per_token,
                 "/replay sessions one token (one address, without tokens) may keep open; more "
                 "are refused with 429")
      ->capture_default_str();
  cmd.add_option("--forget-after", f.options.forget_after_s,
                 "Unadvertise a robot not heard from for this many seconds (0: never)")
      ->capture_default_str();
}

}  // namespace doppel::tools
