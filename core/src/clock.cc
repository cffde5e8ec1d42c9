#include "doppel/core/clock.h"

#include <fmt/format.h>

#include <charconv>
#include <chrono>
#include <ctime>
#include <limits>

namespace doppel {
namespace {

// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool IsLeapYear(int64_t y) { return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0); }

int64_t DaysInMonth(int64_t y, int64_t m) {
  static constexpr int64_t kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeapYear(y) ? 29 : kDays[m - 1];
}

bool ParseFixed(std::string_view s, size_t pos, size_t len, int64_t* out) {
  if (pos + len > s.size()) return false;
  int64_t v = 0;
  for (size_t i = pos; i < pos + len; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

}  // namespace

TimeNs WallNowNs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<TimeNs>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

int64_t MonotonicNowNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

Result<TimeNs> ParseTime(std::string_view text) {
  const auto bad = [&](std::string_view why) {
    return Status::InvalidArgument(
        fmt::format("bad time '{}': {} (want ns since epoch or ISO 8601 like 2026-11-22T10:15:30Z)",
                    text, why));
  };
  if (text.empty()) return bad("empty");
  // All digits (optionally negative): nanoseconds since the epoch.
  const bool integer =
      text.find_first_not_of("0123456789", text[0] == '-' ? 1 : 0) == std::string_view::npos;
  if (integer) {
    int64_t v = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || p != text.data() + text.size()) return bad("not an integer");
    return v;
  }
  int64_t year, month, day;
  if (!ParseFixed(text, 0, 4, &year) || text.size() < 10 || text[4] != '-' ||
      !ParseFixed(text, 5, 2, &month) || text[7] != '-' || !ParseFixed(text, 8, 2, &day)) {
    return bad("expected YYYY-MM-DD");
  }
  if (month < 1 || month > 12 || day < 1 || day > 31) return bad("month or day out of range");
  int64_t hour = 0, minute = 0, second = 0, frac_ns = 0, offset_s = 0;
  size_t i = 10;
  if (i < text.size()) {
    if (text[i] != 'T' && text[i] != 't' && text[i] != ' ') return bad("expected 'T' after date");
    if (!ParseFixed(text, i + 1, 2, &hour) || text.size() < i + 9 || text[i + 3] != ':' ||
        !ParseFixed(text, i + 4, 2, &minute) || text[i + 6] != ':' ||
        !ParseFixed(text, i + 7, 2, &second)) {
      return bad("expected hh:mm:ss");
    }
    if (hour > 23 || minute > 59 || second > 60) return bad("time of day out of range");
    i += 9;
    if (i < text.size() && text[i] == '.') {
      ++i;
      int digits = 0;
      while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
        if (digits < 9) {
          frac_ns = frac_ns * 10 + (text[i] - '0');
          ++digits;
        }
        ++i;
      }
      if (digits == 0) return bad("empty fraction");
      while (digits++ < 9) frac_ns *= 10;
    }
    if (i >= text.size()) return bad("missing zone (Z or +hh:mm)");
    if (text[i] == 'Z' || text[i] == 'z') {
      ++i;
    } else if (text[i] == '+' || text[i] == '-') {
      int64_t oh, om;
      if (!ParseFixed(text, i + 1, 2, &oh) || text.size() < i + 6 || text[i + 3] != ':' ||
          !ParseFixed(text, i + 4, 2, &om)) {
        return bad("bad zone offset");
      }
      offset_s = (oh * 3600 + om * 60) * (text[i] == '-' ? -1 : 1);
      i += 6;
    } else {
      return bad("bad zone");
    }
    if (i != text.size()) return bad("trailing characters");
  }
  if (day > DaysInMonth(year, month)) return bad("day out of range for the month");
  // Every intermediate fits easily (|days| < 4e6); only the final scaling to ns can overflow.
  const int64_t days =
      DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  const int64_t secs = days * 86400 + hour * 3600 + minute * 60 + second - offset_s;
  // Before the epoch, scale secs + 1 and step back: the earliest representable time has a
  // fraction, so secs * 1e9 alone would leave the range there.
  const bool borrow = secs < 0 && frac_ns > 0;
  int64_t ns;
  if (__builtin_mul_overflow(secs + borrow, int64_t{1'000'000'000}, &ns) ||
      __builtin_add_overflow(ns, borrow ? frac_ns - 1'000'000'000 : frac_ns, &ns)) {
    return bad(fmt::format("out of range: representable times run from {} to {}",
                           FormatTime(std::numeric_limits<TimeNs>::min()),
                           FormatTime(std::numeric_limits<TimeNs>::max())));
  }
  return ns;
}

std::string FormatTime(TimeNs ns) {
  int64_t secs = ns / 1'000'000'000;
  int64_t frac = ns % 1'000'000'000;
  if (frac < 0) {
    frac += 1'000'000'000;
    secs -= 1;
  }
  const time_t t = static_cast<time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

Result<int64_t> ParseDurationNs(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) {
    return Status::InvalidArgument(
        fmt::format("bad duration '{}': want a number and a unit, e.g. 30s, 2h, 500ms", text));
  }
  const std::string_view unit = text.substr(digits);
  int64_t scale;
  if (unit == "ns")
    scale = 1;
  else if (unit == "us")
    scale = 1'000;
  else if (unit == "ms")
    scale = 1'000'000;
  else if (unit == "s" || unit.empty())
    scale = 1'000'000'000;
  else if (unit == "m")
    scale = 60'000'000'000;
  else if (unit == "h")
    scale = 3'600'000'000'000;
  else if (unit == "d")
    scale = 86'400'000'000'000;
  else {
    return Status::InvalidArgument(
        fmt::format("bad duration '{}': unknown unit '{}' (ns|us|ms|s|m|h|d)", text, unit));
  }
  // A duration is int64 ns, so the largest is 2^63-1 ns (106751d 23h 47m 16.854775807s, about
  // 292 years). Anything longer is refused rather than wrapped: a wrapped retention age would
  // make scavenge delete nearly everything.
  int64_t v = 0;
  int64_t ns = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + digits, v);
  if (ec != std::errc() || end != text.data() + digits || __builtin_mul_overflow(v, scale, &ns)) {
    return Status::InvalidArgument(fmt::format(
        "bad duration '{}': longer than the largest duration, {}{} (2^63-1 ns, about 292 years)",
        text, std::numeric_limits<int64_t>::max() / scale, unit.empty() ? "s" : unit));
  }
  return ns;
}

}  // namespace doppel
