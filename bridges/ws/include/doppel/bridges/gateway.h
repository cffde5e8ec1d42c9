// Gateway: the control room's door. HTTP and WebSocket on one port (Boost.Beast):
// - WebSocket speaks foxglove.websocket.v1, so Foxglove and Lichtblick connect with no plugin.
//   Channels per robot (/<robot>/twin, /<robot>/twin_fb, /<robot>/joint_states,
//   /<robot>/pose, /<robot>/prediction, /<robot>/events) are advertised live as robots
//   appear; /fleet/summary and /fleet/alerts always exist.
// - Backpressure: each client has a send budget. Over budget, only the newest message per
//   channel is kept (latest value wins), so a busy channel cannot starve a rare alert, and
//   the client is told with a `status`. Control messages are never dropped; a client whose
//   queue passes a hard limit is disconnected. The channel catalogue goes to a client in
//   `advertise` pages as it reads them, so joining costs the same whatever the fleet size.
// - Robots: at most max_robots are served; the rest are refused, logged and counted.
// - Auth: bearer tokens (`?token=` on the URL) with roles viewer, operator, admin. Operators
//   may publish /<robot>/cmd_vel and /<robot>/stop, which become CommandIssued events.
// - GET / serves the built-in dashboard; /healthz and /metrics (Prometheus text).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "doppel/core/status.h"
#include "doppel/eventstore/event_feed.h"
#include "doppel/eventstore/event_store.h"

namespace doppel::gateway {

enum class Role { kViewer = 0, kOperator = 1, kAdmin = 2 };
std::string_view RoleName(Role role);

struct Token {
  std::string token;
  Role role = Role::kViewer;
  std::string name;  // who, for issued_by and logs
};

// A token file: one `TOKEN ROLE [NAME]` per line, `#` comments. ROLE is viewer, operator or
// admin.
Result<std::vector<Token>> LoadTokens(const std::string& path);
// Writes a token file with one fresh random token per role, readable by the owner only.
Result<std::vector<Token>> CreateTokenFile(const std::string& path);

struct GatewayOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 8765;  // 0: the system picks one (see Gateway::port())
  std::string twin_publish = "tcp://127.0.0.1:7602";  // a twin's TwinState PUB
  std::string store;    // store ROUTER: events (alerts, predictions) and operator commands
  std::string publish;  // store PUB
  // A store other than a store server (PostgreSQL), handed in by the command line; empty: a
  // store server at `store` and `publish`.
  eventstore::StoreOpener open_store;
  eventstore::FeedOpener open_feed;
  std::vector<Token> tokens;  // empty: no auth, everyone is a viewer
  std::string web_root;       // the dashboard's files; empty: no dashboard
  std::string scene_json;     // served at /api/scene for the dashboard
  std::string frame = "map";
  size_t send_budget_bytes = 1 << 20;  // per client, before latest-value-wins kicks in
  size_t hard_limit_bytes = 8 << 20;   // per client, control messages included: disconnect
  double max_send_delay_s = 0.25;      // a client whose oldest queued message is older is slow
  double summary_hz = 2;
  double time_hz = 10;
  double forget_after_s = 0;  // unadvertise a robot unseen this long; 0 = never
  // Robots served at most; more are refused (counted, logged). Robot names come from the
  // network, so this bounds the channel catalogue. 10,000 is the largest fleet doppel's twins
  // are benchmarked with; a new client receives the catalogue in pages whatever its size.
  size_t max_robots = 10000;
  // TCP connections open at once (HTTP and WebSocket), in total and from one address; more
  // are answered 503 and closed. The total is clamped to the process's file limit (ulimit -n)
  // less 256. A connection must send its first request within first_request_timeout_s.
  size_t max_connections = 4096;
  size_t max_connections_per_address = 256;
  double first_request_timeout_s = 5;
  // /replay sessions open at once, in total and per token (per client address when the
  // gateway has no tokens); more are refused with 503 / 429 naming the flag.
  size_t max_replay_sessions = 64;
  size_t max_replay_sessions_per_token = 8;
  std::string name = "doppel";
  // More Prometheus text appended to /metrics on each scrape (whole families), so a process
  // that runs other components beside the gateway (doppel up) serves theirs on this port.
  // Runs on the gateway's network thread: it must be quick and thread-safe.
  std::function<std::string()> extra_metrics;
};

class Gateway {
 public:
  static Result<std::unique_ptr<Gateway>> Start(GatewayOptions options);
  ~Gateway();

  uint16_t port() const;

  struct Counters {
    uint64_t connections = 0;  // open now
    uint64_t accepted = 0;
    uint64_t refused = 0;
    uint64_t messages_sent = 0;
    uint64_t messages_dropped = 0;
    uint64_t bytes_sent = 0;
    uint64_t commands = 0;
    uint64_t robots = 0;
    uint64_t robots_refused = 0;           // new robots not served: max_robots were already served
    uint64_t tcp_open = 0;                 // TCP connections open now (HTTP and WebSocket)
    uint64_t tcp_refused_total = 0;        // over max_connections
    uint64_t tcp_refused_per_address = 0;  // over max_connections_per_address
    uint64_t tcp_accept_errors = 0;        // accept(2) failures (EMFILE, ...)
  };
  Counters counters() const;

  class Impl;  // public only so the connection classes in gateway.cc can name it

 private:
  explicit Gateway(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace doppel::gateway
