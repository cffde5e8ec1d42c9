// doppel bench append: durable append load from N client threads, each on its own stream.
//
// With --ack-log FILE, one line per acknowledged event is appended to FILE after the ack:
//   <event-id> <stream> <version> <position>
// The crash test kills this process and checks every acknowledged line against the log.
#include <fmt/format.h>

#include <iostream>

#include "append_load.h"
#include "command.h"
#include "e2e_load.h"
#include "store_access.h"

namespace doppel::tools {
namespace {

struct BenchAppendOptions {
  StoreOptions store;
  AppendLoadOptions load;
};

int RunBenchAppend(const BenchAppendOptions& o) {
  auto opened = OpenStore(o.store, Access::kReadWrite);
  if (!opened.ok()) return Fail(opened.status());
  auto result = RunAppendLoad(**opened, o.load);
  if (!result.ok()) return Fail(result.status());
  LatencySamples& l = result->ack_latency_ns;
  std::cout << fmt::format(
                   "appended {} events in {:.2f} s: {:.0f} events/s, ack latency p50 {} us, "
                   "p99 {} us, p999 {} us",
                   result->events, result->seconds, result->events_per_second(),
                   l.Quantile(0.5) / 1000, l.Quantile(0.99) / 1000, l.Quantile(0.999) / 1000)
            << std::endl;
  return kExitOk;
}

struct BenchEndToEndOptions {
  StoreOptions store;
  std::string publish;
  EndToEndOptions load;
};

int RunBenchEndToEnd(BenchEndToEndOptions o) {
  if (o.store.store.empty()) return Fail(Status::InvalidArgument("bench e2e needs --store EP"));
  auto curve = CurveClient(o.store);
  if (!curve.ok()) return Fail(curve.status());
  o.load.store = o.store.store;
  o.load.publish = o.publish;
  o.load.curve = *curve;
  auto r = RunEndToEnd(o.load);
  if (!r.ok()) return Fail(r.status());
  LatencySamples& l = r->latency_ns;
  std::cout << fmt::format(
                   "e2e: appended {} events in {:.2f} s ({:.0f}/s), {} subscribers each "
                   "delivered {:.0f} events/s, append->delivered latency p50 {} us, p99 {} us, "
                   "p999 {} us; lost {}, duplicated {}, out of order {}, gaps healed {}",
                   r->appended, r->seconds, r->appended / r->seconds, o.load.subscribers,
                   r->delivered_per_second, l.Quantile(0.5) / 1000, l.Quantile(0.99) / 1000,
                   l.Quantile(0.999) / 1000, r->lost, r->duplicated, r->out_of_order,
                   r->gaps_healed)
            << std::endl;
  return r->lost == 0 && r->duplicated == 0 && r->out_of_order == 0 ? kExitOk : kExitError;
}

}  // namespace

void AddBenchCommands(CLI::App& app) {
  CLI::App* bench = app.add_subcommand("bench", "Load generators");
  bench->require_subcommand(1);
  auto o = std::make_shared<BenchAppendOptions>();
  CLI::App* cmd =
      bench->add_subcommand("append", "N client threads append durably, each to its own stream");
  AddStoreOptions(*cmd, o->store);
  cmd->add_option("--clients", o->load.clients, "Client threads")->capture_default_str();
  cmd->add_option("--batch", o->load.batch, "Events per append")->capture_default_str();
  cmd->add_option("--payload-bytes", o->load.payload_bytes, "Payload size")->capture_default_str();
  cmd->add_option("--duration", o->load.duration_s, "Seconds to run")->capture_default_str();
  cmd->add_option("--ack-log", o->load.ack_log,
                  "Append '<event-id> <stream> <version> <position>' per acknowledged event");
  cmd->add_flag("--in-flight", o->load.in_flight,
                "Drive clients as closed loops of asynchronous appends (one in flight each) "
                "instead of one blocking thread per client");
  cmd->add_option("--stream-prefix", o->load.stream_prefix, "Stream names are <prefix>-<client>");
  cmd->callback([o] { ExitCode() = RunBenchAppend(*o); });

  auto e = std::make_shared<BenchEndToEndOptions>();
  CLI::App* e2e = bench->add_subcommand(
      "e2e", "Append at a steady rate through a store server; measure delivery to subscribers");
  e2e->add_option("--store", e->store.store, "Store server endpoint")->required();
  e2e->add_option("--publish", e->publish, "Store PUB endpoint")->required();
  e2e->add_option("--clients", e->load.clients, "Client connections")->capture_default_str();
  e2e->add_option("--subscribers", e->load.subscribers, "Subscribers")->capture_default_str();
  e2e->add_option("--rate", e->load.rate, "Events per second in all")->capture_default_str();
  e2e->add_option("--batch", e->load.batch, "Events per append")->capture_default_str();
  e2e->add_option("--payload-bytes", e->load.payload_bytes, "Payload size")->capture_default_str();
  e2e->add_option("--duration", e->load.duration_s, "Seconds to run")->capture_default_str();
  AddCurveClientOptions(*e2e, e->store);
  e2e->callback([e] { ExitCode() = RunBenchEndToEnd(*e); });
}

}  // namespace doppel::tools
