// doppel store | subscribe | keygen: the store server, a live tail of it, and CURVE keys.
#include <fmt/format.h>
#include <signal.h>

#include <charconv>
#include <functional>
#include <iostream>
#include <thread>

#include "command.h"
#include "doppel/core/log.h"
#include "doppel/eventstore/event_json.h"
#include "doppel/eventstore/event_log.h"
#include "doppel/eventstore/store_server.h"
#include "doppel/eventstore/subscription.h"
#include "doppel/pgstore/pg_subscription.h"
#include "event_json.h"
#include "metrics_http.h"
#include "process_metrics.h"
#include "store_access.h"

namespace doppel::tools {
namespace {

struct StoreServerFlags {
  std::string data_dir;
  std::string listen = "tcp://127.0.0.1:7600";
  std::string publish = "tcp://127.0.0.1:7601";
  std::string curve_key;
  std::string curve_allow;
  bool no_sync = false;
  int publish_hwm = 100000;
  MetricsFlags metrics;
};

int RunStore(const StoreServerFlags& f) {
  ShutdownSignal shutdown;  // before any thread starts, so they inherit the mask
  eventstore::StoreServerOptions options;
  options.listen = f.listen;
  options.publish = f.publish;
  options.publish_hwm = f.publish_hwm;
  if (!f.curve_key.empty()) {
    auto keys = eventstore::ReadCurveKeyFile(f.curve_key);
    if (!keys.ok()) return Fail(keys.status());
    if (keys->secret_key.empty()) {
      return Fail(Status::InvalidArgument(f.curve_key + " has no secret key (use NAME.key)"));
    }
    eventstore::CurveServerConfig curve{*keys, {}};
    if (!f.curve_allow.empty()) {
      auto allowed = eventstore::ReadAllowedKeys(f.curve_allow);
      if (!allowed.ok()) return Fail(allowed.status());
      curve.allowed_clients = *allowed;
    }
    if (curve.allowed_clients.empty()) {
      log::Warn("store", "CURVE is on but no client keys are allowed (--curve-allow)");
    }
    options.curve = curve;
  }
  eventstore::EventLogOptions log_options;
  log_options.sync = !f.no_sync;
  if (f.no_sync) log::Warn("store", "--no-sync: acknowledged events can be lost on power loss");
  auto log = eventstore::EventLog::Open(ResolveDataDir(f.data_dir), log_options);
  if (!log.ok()) return Fail(log.status());
  auto server = eventstore::StoreServer::Start(**log, options);
  if (!server.ok()) return Fail(server.status());
  auto metrics = StartMetricsHttp(f.metrics, [&log = **log, &server = **server] {
    MetricsPage page;
    RenderStoreMetrics(page, log, server);
    return page.text();
  });
  if (!metrics.ok()) return Fail(metrics.status());
  // One line on stdout for scripts that start the store and need its endpoints.
  std::cout << fmt::format("{{\"listen\":\"{}\",\"publish\":\"{}\",\"next_position\":{}}}",
                           (*server)->listen_endpoint(), (*server)->publish_endpoint(),
                           (*log)->NextPosition())
            << std::endl;
  const int signal = shutdown.Wait();
  log::Info("store", "signal {}: stopping", signal);
  metrics->reset();
  server->reset();
  log->reset();
  return kExitOk;
}

struct SubscribeFlags {
  StoreOptions store;
  std::string publish;
  std::string from = "now";
  std::string stream_prefix;
  std::string type;
  std::string format = "jsonl";
  uint64_t count = 0;
  double idle_exit_s = 0;
};

int RunSubscribe(const SubscribeFlags& f) {
  if (f.store.store.empty()) return Fail(Status::InvalidArgument("subscribe needs --store EP"));
  if (f.format != "jsonl" && f.format != "table") {
    return Fail(Status::InvalidArgument("--format must be jsonl or table"));
  }
  std::optional<uint64_t> from;
  if (f.from != "now") {
    uint64_t position = 0;
    auto [p, ec] = std::from_chars(f.from.data(), f.from.data() + f.from.size(), position);
    if (ec != std::errc() || p != f.from.data() + f.from.size()) {
      return Fail(Status::InvalidArgument("--from must be a position or 'now'"));
    }
    from = position;
  }
  // The next event, from a store server's PUB feed or from PostgreSQL.
  std::function<Result<std::optional<eventstore::RecordedEvent>>(std::chrono::milliseconds)>
      next_of;
  if (IsPostgresUrl(f.store.store)) {
    pgstore::PgSubscriptionOptions options;
    options.url = f.store.store;
    options.from = from;
    options.stream_prefix = f.stream_prefix;
    options.event_type = f.type;
    auto sub = pgstore::PgSubscription::Start(options);
    if (!sub.ok()) return Fail(sub.status());
    std::shared_ptr<pgstore::PgSubscription> shared = std::move(sub).value();
    next_of = [shared](std::chrono::milliseconds t) { return shared->Next(t); };
  } else {
    if (f.publish.empty()) {
      return Fail(Status::InvalidArgument("subscribe to a store server needs --publish EP"));
    }
    eventstore::SubscriptionOptions options;
    options.store = f.store.store;
    options.publish = f.publish;
    options.stream_prefix = f.stream_prefix;
    options.event_type = f.type;
    options.from = from;
    auto curve = CurveClient(f.store);
    if (!curve.ok()) return Fail(curve.status());
    options.curve = *curve;
    auto sub = eventstore::Subscription::Start(options);
    if (!sub.ok()) return Fail(sub.status());
    std::shared_ptr<eventstore::Subscription> shared = std::move(sub).value();
    next_of = [shared](std::chrono::milliseconds t) { return shared->Next(t); };
  }
  const bool table = f.format == "table";
  if (table) std::cout << TableHeader() << '\n';
  uint64_t printed = 0;
  int64_t last_event = MonotonicNowNs();
  while (f.count == 0 || printed < f.count) {
    auto next = next_of(std::chrono::milliseconds(200));
    if (!next.ok()) {
      log::Warn("subscribe", "{}; retrying", next.status().ToString());
      if (f.idle_exit_s > 0 && MonotonicNowNs() - last_event > f.idle_exit_s * 1e9) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));  // a store that is down
      continue;
    }
    if (!next->has_value()) {
      if (f.idle_exit_s > 0 && MonotonicNowNs() - last_event > f.idle_exit_s * 1e9) break;
      continue;
    }
    last_event = MonotonicNowNs();
    const auto& e = **next;
    std::cout << (table ? EventToTableRow(e) : eventstore::EventJson(e)) << std::endl;
    ++printed;
  }
  return kExitOk;
}

int RunKeygen(const std::string& name) {
  auto keys = eventstore::GenerateCurveKeyPair();
  if (!keys.ok()) return Fail(keys.status());
  Status s = eventstore::WriteCurveKeyFiles(name, *keys);
  if (!s.ok()) return Fail(s);
  std::cout << fmt::format("{{\"key\":\"{}.key\",\"public\":\"{}.pub\",\"public_key\":\"{}\"}}\n",
                           name, name, keys->public_key);
  return kExitOk;
}

}  // namespace

void AddStoreCommands(CLI::App& app) {
  auto s = std::make_shared<StoreServerFlags>();
  CLI::App* store = app.add_subcommand(
      "store",
      "Serve an event log over ZeroMQ: requests on --listen, committed events on --publish");
  store->add_option("--data", s->data_dir, "Data directory")->required();
  store->add_option("--listen", s->listen, "ROUTER endpoint for requests")->capture_default_str();
  store->add_option("--publish", s->publish, "PUB endpoint for committed events")
      ->capture_default_str();
  store->add_option("--curve-key", s->curve_key,
                    "Server CURVE key file (NAME.key): turns on CURVE for tcp endpoints");
  store->add_option("--curve-allow", s->curve_allow, "File of allowed client public keys");
  store
      ->add_option("--publish-hwm", s->publish_hwm,
                   "Messages queued per subscriber before PUB drops (subscribers heal by reading)")
      ->capture_default_str();
  store->add_flag("--no-sync", s->no_sync, "Do not fsync commits (unsafe; for experiments)");
  AddMetricsOptions(*store, s->metrics);
  store->callback([s] { ExitCode() = RunStore(*s); });

  auto f = std::make_shared<SubscribeFlags>();
  CLI::App* sub = app.add_subcommand(
      "subscribe", "Print committed events as they happen (catch-up from --from, then live)");
  sub->add_option("--store", f->store.store,
                  "Store server endpoint (for catch-up reads) or a postgres:// database")
      ->required();
  sub->add_option("--publish", f->publish, "Store PUB endpoint (not for postgres:// stores)");
  sub->add_option("--from", f->from, "First global position, or 'now'")->capture_default_str();
  sub->add_option("--stream-prefix", f->stream_prefix, "Only streams starting with this");
  sub->add_option("--type", f->type, "Only this event type");
  sub->add_option("--format", f->format, "jsonl or table")->capture_default_str();
  sub->add_option("--count", f->count, "Exit after N events");
  sub->add_option("--idle-exit", f->idle_exit_s, "Exit after this many seconds without events");
  AddCurveClientOptions(*sub, f->store);
  sub->callback([f] { ExitCode() = RunSubscribe(*f); });

  auto name = std::make_shared<std::string>();
  CLI::App* keygen = app.add_subcommand("keygen", "Make a CURVE key pair: NAME.key and NAME.pub");
  keygen->add_option("--out", *name, "File name prefix")->required();
  keygen->callback([name] { ExitCode() = RunKeygen(*name); });
}

}  // namespace doppel::tools
