// doppel copy --from SRC --to DST: every event of one store into another, in the source's
// order and verbatim, resumable from the destination's checkpoint (migrate/copy_engine.h).
// SRC and DST are each a data directory, a store server endpoint (tcp://, ipc://) or a
// PostgreSQL URL. It keeps tailing the source until Ctrl-C, or stops once caught up with
// --until-caught-up. Progress: a line redrawn on a terminal (stderr), a log line every 5 s
// otherwise, or with --json one JSON status line a second on stdout.
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "command.h"
#include "doppel/core/clock.h"
#include "doppel/core/json_text.h"
#include "doppel/core/log.h"
#include "doppel/migrate/copy_engine.h"
#include "store_access.h"

namespace doppel::tools {
namespace {

constexpr char kComponent[] = "copy";

struct CopyFlags {
  std::string from;
  std::string to;
  migrate::CopyOptions options;
  bool json = false;
};

// A store named on the command line: a URL or endpoint, otherwise a data directory.
StoreOptions Where(const std::string& spec) {
  StoreOptions where;
  if (IsPostgresUrl(spec) || spec.starts_with("tcp://") || spec.starts_with("ipc://")) {
    where.store = spec;
  } else {
    where.data_dir = spec;
  }
  return where;
}

nlohmann::json ProgressJson(const std::string& name, const migrate::CopyProgress& p) {
  return {{"copy", name},
          {"events", p.events},
          {"written", p.written},
          {"present", p.present},
          {"source_next", p.source_next},
          {"source_end", p.source_end},
          {"lag_events", p.lag_events},
          {"lag_seconds", p.lag_seconds},
          {"events_per_s", p.events_per_s},
          {"eta_seconds", p.eta_seconds},
          {"caught_up", p.caught_up},
          {"retries", p.retries},
          {"throttle", p.throttle}};
}

std::string ProgressText(const std::string& name, const migrate::CopyProgress& p) {
  return fmt::format(
      "copy {}: {} events ({} written, {} already there) | {:.0f} events/s | lag {} events, "
      "{:.1f} s | ETA {:.0f} s{}{}",
      name, p.events, p.written, p.present, p.events_per_s, p.lag_events, p.lag_seconds,
      p.eta_seconds, p.caught_up ? " | caught up" : "",
      p.throttle.empty() ? "" : fmt::format(" | {}", p.throttle));
}

// Shows progress at most every interval (and always the last time).
class ProgressReporter {
 public:
  ProgressReporter(std::string name, bool json)
      : name_(std::move(name)), json_(json), terminal_(!json && isatty(STDERR_FILENO) == 1) {}
  void Show(const migrate::CopyProgress& p, bool last = false) {
    const int64_t now = MonotonicNowNs();
    const int64_t interval = json_ ? 1'000'000'000 : terminal_ ? 100'000'000 : 5'000'000'000;
    if (!last && now - last_ns_ < interval) return;
    last_ns_ = now;
    if (json_) {
      std::cout << SafeJsonDump(ProgressJson(name_, p)) << std::endl;
    } else if (terminal_) {
      fmt::print(stderr, "\r{}   ", ProgressText(name_, p));
      if (last) fmt::print(stderr, "\n");
      std::fflush(stderr);
    } else if (!last) {
      log::Info(kComponent, "{}", ProgressText(name_, p));
    }
  }

 private:
  std::string name_;
  bool json_;
  bool terminal_;
  int64_t last_ns_ = 0;
};

int RunCopy(CopyFlags flags) {
  ShutdownSignal signals;  // before any thread starts
  if (flags.from == flags.to) {
    return Fail(Status::InvalidArgument("--from and --to name the same store"));
  }
  auto source = OpenStore(Where(flags.from), Access::kReadOnly);
  if (!source.ok()) {
    return Fail(Status::WithCode(source.status().code(), fmt::format("--from {}: {}", flags.from,
                                                                     source.status().message())));
  }
  auto destination = OpenStore(Where(flags.to), Access::kReadWrite);
  if (!destination.ok()) {
    return Fail(
        Status::WithCode(destination.status().code(),
                         fmt::format("--to {}: {}", flags.to, destination.status().message())));
  }
  std::atomic<bool> stop{false};
  std::atomic<bool> done{false};
  std::thread watcher([&] {
    while (!done.load()) {
      if (signals.WaitFor(std::chrono::milliseconds(200)) != 0) {
        log::Info(kComponent, "stopping after the page in hand");
        stop.store(true);
        return;
      }
    }
  });
  flags.options.stop = [&stop] { return stop.load(); };
  ProgressReporter reporter(flags.options.name, flags.json);
  migrate::CopyEngine engine(**source, **destination, flags.options,
                             [&reporter](const migrate::CopyProgress& p) { reporter.Show(p); });
  auto result = engine.Run();
  done.store(true);
  watcher.join();
  if (!result.ok()) return Fail(result.status());
  reporter.Show(*result, /*last=*/true);
  if (!flags.json) {
    std::cout << fmt::format(
                     "copy {}: {} events copied in all; this run wrote {} and found {} already "
                     "there; next source position {}{}",
                     flags.options.name, result->events, result->written, result->present,
                     result->source_next, result->caught_up ? " (caught up)" : "")
              << std::endl;
  }
  return kExitOk;
}

}  // namespace

void AddCopyCommand(CLI::App& app) {
  auto flags = std::make_shared<CopyFlags>();
  auto* cmd = app.add_subcommand(
      "copy",
      "Copy every event of one store into another, verbatim and in order; resumes where it "
      "stopped; keeps tailing until Ctrl-C or --until-caught-up");
  cmd->add_option("--from", flags->from,
                  "The source: a data directory (read as it is when the copy starts), a store "
                  "server endpoint or a postgres:// URL")
      ->required();
  cmd->add_option("--to", flags->to,
                  "The destination: a data directory (created if missing; not one a server has "
                  "open), a store server endpoint, or a postgres:// URL prepared by doppel "
                  "pg-store init")
      ->required();
  cmd->add_option("--name", flags->options.name,
                  "The copy's name: its checkpoint and position map in the destination")
      ->capture_default_str();
  cmd->add_option("--batch", flags->options.batch, "Events per page, each one atomic write")
      ->capture_default_str()
      ->check(CLI::Range(1, 100'000));
  cmd->add_option("--rate", flags->options.rate,
                  "At most this many events per second (0: no limit)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--until-caught-up", flags->options.until_caught_up,
                "Stop once a read of the source finds nothing more");
  cmd->add_flag("--json", flags->json, "One JSON status line a second on stdout");
  cmd->callback([flags] { ExitCode() = RunCopy(*flags); });
}

}  // namespace doppel::tools
