// The one logger of doppel: leveled, timestamped lines on stderr, formatted with fmt.
//
// The level comes from the DOPPEL_LOG environment variable (debug|info|warn|error|off,
// default info) or SetLogLevel(). Logging is thread-safe; each call writes one whole line.
#pragma once

#include <fmt/format.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

namespace doppel::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

void SetLevel(Level level);
Level GetLevel();
bool Enabled(Level level);
// Writes one line. Prefer the Debug/Info/Warn/Error helpers below.
void Write(Level level, std::string_view component, std::string_view message);

template <typename... Args>
void Debug(std::string_view component, fmt::format_string<Args...> f, Args&&... args) {
  if (Enabled(Level::kDebug))
    Write(Level::kDebug, component, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void Info(std::string_view component, fmt::format_string<Args...> f, Args&&... args) {
  if (Enabled(Level::kInfo))
    Write(Level::kInfo, component, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void Warn(std::string_view component, fmt::format_string<Args...> f, Args&&... args) {
  if (Enabled(Level::kWarn))
    Write(Level::kWarn, component, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void Error(std::string_view component, fmt::format_string<Args...> f, Args&&... args) {
  if (Enabled(Level::kError))
    Write(Level::kError, component, fmt::format(f, std::forward<Args>(args)...));
}

// A warning that untrusted input can trigger over and over (a bad DDS sample, a garbage
// WebSocket frame): at most `burst` lines per interval are written, the rest are counted,
// and the next line written says how many were suppressed. A hostile peer cannot fill a
// disk through the log; metrics read total() and suppressed(). Thread-safe.
class RateLimitedWarning {
 public:
  RateLimitedWarning(std::string_view component, uint32_t burst = 5, int64_t interval_ms = 10000);

  template <typename... Args>
  void Warn(fmt::format_string<Args...> f, Args&&... args) {
    total_.fetch_add(1, std::memory_order_relaxed);
    uint64_t suppressed_before = 0;
    if (!Admit(suppressed_before)) return;
    std::string message = fmt::format(f, std::forward<Args>(args)...);
    if (suppressed_before > 0) {
      message += fmt::format(" ({} similar warnings suppressed)", suppressed_before);
    }
    if (Enabled(Level::kWarn)) Write(Level::kWarn, component_, message);
  }

  uint64_t total() const { return total_.load(std::memory_order_relaxed); }
  uint64_t suppressed() const { return suppressed_.load(std::memory_order_relaxed); }

 private:
  // True if a line may be written now; `suppressed_before` gets the count not written
  // since the last line that was.
  bool Admit(uint64_t& suppressed_before);

  std::string component_;
  uint32_t burst_;
  int64_t interval_ns_;
  std::mutex mu_;
  int64_t window_start_ns_ = 0;
  uint32_t in_window_ = 0;
  uint64_t pending_suppressed_ = 0;
  std::atomic<uint64_t> total_{0}, suppressed_{0};
};

// Reports progress of a long operation (rebuild, export, scavenge) at most once per
// interval: "<what>: <done>/<total> (<pct>%)".
class Progress {
 public:
  Progress(std::string_view component, std::string_view what, uint64_t total,
           int64_t interval_ms = 1000);
  void Update(uint64_t done);
  void Finish(uint64_t done);

 private:
  std::string component_;
  std::string what_;
  uint64_t total_;
  int64_t interval_ns_;
  int64_t last_report_ns_;
};

}  // namespace doppel::log
