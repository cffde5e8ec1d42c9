// doppel bench append: durable append load from N client threads, each on its own stream.
//
// With --ack-log FILE, one line per acknowledged event is appended to FILE after the ack:
//   <event-id> <stream> <version> <position>
// The crash test kills this process and checks every acknowledged line against the log.
#include <fmt/format.h>

#include <iostream>

#include "append_load.h"
#include "command.h"
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
}

}  // namespace doppel::tools
