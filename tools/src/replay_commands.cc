// doppel incident: what happened to a robot around a moment (replay/incident_report.h);
// doppel replay --to-dds: a window played into ROS 2 (bridges/dds dds_replay.h), with
// keyboard controls and a progress line on a terminal, as `ros2 bag play` has.
#include <fcntl.h>
#include <fmt/format.h>
#include <termios.h>
#include <unistd.h>

#include <iostream>
#include <thread>

#include "command.h"
#include "doppel/bridges/dds_replay.h"
#include "doppel/core/json_text.h"
#include "doppel/core/log.h"
#include "doppel/replay/incident_report.h"
#include "doppel/replay/replay_clock.h"
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

struct ReplayFlags {
  StoreOptions store;
  std::string from, to = "now", robots = "*";
  std::vector<std::string> types;
  bool to_dds = false;
  std::string delay;
  dds::DdsReplayOptions dds;
};

// The terminal in raw, non-blocking mode while a replay runs (restored on exit).
class RawTerminal {
 public:
  RawTerminal() : active_(isatty(STDIN_FILENO) == 1 && tcgetattr(STDIN_FILENO, &saved_) == 0) {
    if (!active_) return;
    termios raw = saved_;
    raw.c_lflag &= ~(ICANON | ECHO);
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    tcsetattr(STDIN_FILENO, TCSANOW, &raw);
  }
  ~RawTerminal() {
    if (active_) tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }
  bool active() const { return active_; }
  // The next key: ' ', 'A' up, 'B' down, 'C' right, 'D' left (arrows), 'q'; 0 for none.
  char Key() {
    if (!active_) return 0;
    char c = 0;
    if (read(STDIN_FILENO, &c, 1) != 1) return 0;
    if (c == 27) {
      char seq[2] = {0, 0};
      if (read(STDIN_FILENO, seq, 2) == 2 && seq[0] == '[') return seq[1];
      return 0;
    }
    return c;
  }

 private:
  termios saved_{};
  bool active_ = false;
};

int RunReplay(ReplayFlags& f) {
  if (!f.to_dds) {
    return Fail(Status::InvalidArgument(
        "say where to: --to-dds (Foxglove and the dashboard replay through the gateway's "
        "/replay URL)"));
  }
  if (!f.dds.max && !(f.dds.rate >= replay::kMinSpeed && f.dds.rate <= replay::kMaxSpeed)) {
    return Fail(Status::InvalidArgument(fmt::format("--rate must be within {}..{} (or use --max)",
                                                    replay::kMinSpeed, replay::kMaxSpeed)));
  }
  if (!(f.dds.clock_hz >= 0 && f.dds.clock_hz <= 1000)) {
    return Fail(Status::InvalidArgument("--clock-hz must be within 0..1000"));
  }
  if (!f.delay.empty()) {
    auto delay = ParseDurationNs(f.delay);
    if (!delay.ok()) return Fail(delay.status());
    f.dds.delay_ns = *delay;
  }
  auto window = replay::MakeWindow(f.from, f.to, f.robots, f.types);
  if (!window.ok()) return Fail(window.status());
  auto store = OpenStore(f.store, Access::kReadOnly);
  if (!store.ok()) return Fail(store.status());
  ShutdownSignal signals;
  auto player = dds::DdsReplay::Create(**store, *window, f.dds);
  if (!player.ok()) return Fail(player.status());
  RawTerminal terminal;
  if (terminal.active()) {
    fmt::print(
        stderr,
        "space pause/resume, up/down rate x2 / /2, right step (paused), left -5 s, q quit\n");
  }
  int64_t last_line = 0;
  for (;;) {
    if (signals.WaitFor(std::chrono::milliseconds(2)) != 0) break;
    const int64_t mono = MonotonicNowNs();
    switch (terminal.Key()) {
      case ' ':
        (*player)->TogglePause(mono);
        break;
      case 'A':
        (void)(*player)->SetRate(std::min(replay::kMaxSpeed, (*player)->progress().rate * 2), mono);
        break;
      case 'B':
        (void)(*player)->SetRate(std::max(replay::kMinSpeed, (*player)->progress().rate / 2), mono);
        break;
      case 'C':
        (void)(*player)->StepOne(mono);
        break;
      case 'D':
        (void)(*player)->Seek((*player)->progress().time - 5'000'000'000, mono);
        break;
      case 'q':
        return kExitOk;
      default:
        break;
    }
    auto more = (*player)->Step(mono);
    if (!more.ok()) return Fail(more.status());
    const auto p = (*player)->progress();
    if (mono - last_line > 100'000'000 || !*more) {
      last_line = mono;
      const double done = p.end > p.start ? (p.time - p.start) / 1e9 : 0;
      const std::string line = fmt::format("replay {} {:>8.2f} / {:.2f} s  x{:.2f}  {} events",
                                           p.playing ? "playing" : "paused ", done,
                                           (p.end - p.start) / 1e9, p.rate, p.events);
      if (terminal.active() || isatty(STDERR_FILENO)) {
        fmt::print(stderr, "\r{}   ", line);
      } else if (!*more) {
        log::Info("replay", "{}", line);
      }
    }
    if (!*more) break;
  }
  if (isatty(STDERR_FILENO)) fmt::print(stderr, "\n");
  const auto p = (*player)->progress();
  std::cout << fmt::format("{{\"events\":{},\"clock_messages\":{},\"end\":\"{}\"}}", p.events,
                           p.clocks, FormatTime(p.time))
            << std::endl;
  return kExitOk;
}

}  // namespace

void AddReplayCommands(CLI::App& app) {
  auto rf = std::make_shared<ReplayFlags>();
  auto* rp =
      app.add_subcommand("replay", "Play a window of history into ROS 2 (--to-dds) with rt/clock");
  AddStoreOptions(*rp, rf->store);
  rp->add_option("--from", rf->from, "Window start: ISO 8601, ns, or relative (-15m)")->required();
  rp->add_option("--to", rf->to, "Window end (default now)");
  rp->add_option("--robots", rf->robots, "Robots (glob)");
  rp->add_option("--types", rf->types, "Event types (default all)")->delimiter(',');
  rp->add_flag("--to-dds", rf->to_dds, "Publish over DDS as doppel's egress does, and rt/clock");
  rp->add_option("--domain", rf->dds.domain, "DDS domain (default 0)");
  rp->add_option("--namespace", rf->dds.ns, "Topics under rt/<namespace>/ (rt/clock stays global)");
  rp->add_option("--rate", rf->dds.rate, "Playback rate, 0.01 to 100 (default 1)");
  rp->add_flag("--max", rf->dds.max, "As fast as possible");
  rp->add_option("--clock-hz", rf->dds.clock_hz,
                 "rt/clock messages per second (default 40; 0: none)");
  rp->add_flag("--start-paused", rf->dds.start_paused, "Start paused (space plays)");
  rp->add_flag("--loop", rf->dds.loop, "Start again at the end");
  rp->add_option("--delay", rf->delay, "Wait this long (e.g. 2s) for subscribers before playing");
  rp->callback([rf] { ExitCode() = RunReplay(*rf); });

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
