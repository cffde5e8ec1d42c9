#include "progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

#include "doppel/core/clock.h"
#include "doppel/core/log.h"

namespace doppel::tools {

ProgressLine::ProgressLine(std::string label)
    : label_(std::move(label)),
      terminal_(isatty(STDERR_FILENO) == 1),
      start_ns_(MonotonicNowNs()) {}

void ProgressLine::Update(uint64_t done, uint64_t total) {
  const double fraction = total == 0 ? 0 : std::min(1.0, static_cast<double>(done) / total);
  const int64_t now = MonotonicNowNs();
  const double elapsed_s = (now - start_ns_) / 1e9;
  if (!terminal_) {
    const int decile = static_cast<int>(fraction * 10);
    if (decile <= last_decile_) return;
    last_decile_ = decile;
    log::Info(label_, "{:.0f}% ({} of {}) after {:.1f} s", fraction * 100, done, total, elapsed_s);
    return;
  }
  if (now - last_draw_ns_ < 100'000'000 && done < total) return;  // 10 redraws a second
  last_draw_ns_ = now;
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(fraction * kWidth);
  const double rate = elapsed_s > 0 ? done / elapsed_s : 0;
  const std::string eta = fraction > 0 && fraction < 1
                              ? fmt::format("ETA {:.0f} s", elapsed_s * (1 / fraction - 1))
                              : fmt::format("{:.1f} s", elapsed_s);
  fmt::print(stderr, "\r{} [{}{}] {:5.1f}% {:.0f}/s {}   ", label_, std::string(filled, '#'),
             std::string(kWidth - filled, ' '), fraction * 100, rate, eta);
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressLine::Finish() {
  if (terminal_ && drawn_) fmt::print(stderr, "\n");
}

}  // namespace doppel::tools
