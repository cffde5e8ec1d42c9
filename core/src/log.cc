#include "doppel/core/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "doppel/core/clock.h"

namespace doppel::log {
namespace {

Level LevelFromEnv() {
  const char* env = std::getenv("DOPPEL_LOG");
  if (env == nullptr) return Level::kInfo;
  if (std::strcmp(env, "debug") == 0) return Level::kDebug;
  if (std::strcmp(env, "warn") == 0) return Level::kWarn;
  if (std::strcmp(env, "error") == 0) return Level::kError;
  if (std::strcmp(env, "off") == 0) return Level::kOff;
  return Level::kInfo;
}

std::atomic<Level>& CurrentLevel() {
  static std::atomic<Level> level{LevelFromEnv()};
  return level;
}

constexpr std::string_view kLevelNames[] = {"DEBUG", "INFO ", "WARN ", "ERROR", "OFF  "};

}  // namespace

void SetLevel(Level level) { CurrentLevel().store(level); }
Level GetLevel() { return CurrentLevel().load(); }
bool Enabled(Level level) { return level >= CurrentLevel().load(std::memory_order_relaxed); }

void Write(Level level, std::string_view component, std::string_view message) {
  // One write(2) per line keeps lines whole across threads and processes.
  std::string line = fmt::format("{} {} [{}] {}\n", FormatTime(WallNowNs()),
                                 kLevelNames[static_cast<int>(level)], component, message);
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    const ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n <= 0) break;
    p += n;
    left -= static_cast<size_t>(n);
  }
}

RateLimitedWarning::RateLimitedWarning(std::string_view component, uint32_t burst,
                                       int64_t interval_ms)
    : component_(component), burst_(burst), interval_ns_(interval_ms * 1'000'000) {}

bool RateLimitedWarning::Admit(uint64_t& suppressed_before) {
  const int64_t now = MonotonicNowNs();
  std::lock_guard lock(mu_);
  if (window_start_ns_ == 0 || now - window_start_ns_ >= interval_ns_) {
    window_start_ns_ = now;
    in_window_ = 0;
  }
  if (in_window_ >= burst_) {
    ++pending_suppressed_;
    suppressed_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  ++in_window_;
  suppressed_before = pending_suppressed_;
  pending_suppressed_ = 0;
  return true;
}

Progress::Progress(std::string_view component, std::string_view what, uint64_t total,
                   int64_t interval_ms)
    : component_(component),
      what_(what),
      total_(total),
      interval_ns_(interval_ms * 1'000'000),
      last_report_ns_(MonotonicNowNs()) {}

void Progress::Update(uint64_t done) {
  const int64_t now = MonotonicNowNs();
  if (now - last_report_ns_ < interval_ns_) return;
  last_report_ns_ = now;
  if (total_ > 0) {
    Info(component_, "{}: {}/{} ({:.1f}%)", what_, done, total_, 100.0 * done / total_);
  } else {
    Info(component_, "{}: {}", what_, done);
  }
}

void Progress::Finish(uint64_t done) { Info(component_, "{}: done, {} in all", what_, done); }

}  // namespace doppel::log
