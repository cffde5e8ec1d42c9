// The one logger of doppel: leveled, timestamped lines on stderr, formatted with fmt.
//
// The level comes from the DOPPEL_LOG environment variable (debug|info|warn|error|off,
// default info) or SetLogLevel(). Logging is thread-safe; each call writes one whole line.
#pragma once

#include <fmt/format.h>

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
