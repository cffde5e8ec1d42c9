// Time in doppel: nanoseconds since the Unix epoch (UTC) as int64, and durations in ns.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "doppel/core/status.h"

namespace doppel {

using TimeNs = int64_t;

// Wall-clock time (CLOCK_REALTIME) in ns since the epoch.
TimeNs WallNowNs();
// Monotonic time in ns, for measuring intervals only.
int64_t MonotonicNowNs();

// Parses a moment: an integer (ns since the epoch) or ISO 8601 UTC such as
// "2026-11-22T10:15:30Z", "2026-11-22T10:15:30.123456789Z", "2026-11-22T10:15:30+01:00",
// or a date "2026-11-22". ISO times must fall in the int64 ns range, 1677-09-21T00:12:43Z to
// 2262-04-11T23:47:16Z; anything else (year 0000, 9999, Feb 30, trailing text) is
// InvalidArgument, never a wrapped value.
Result<TimeNs> ParseTime(std::string_view text);
// "2026-11-22T10:15:30.123456789Z"
std::string FormatTime(TimeNs ns);

// Parses a duration: an integer with a unit suffix ns|us|ms|s|m|h|d ("90s", "2h", "500ms").
// At most 2^63-1 ns (106751d, about 292 years); longer is InvalidArgument, never wrapped.
Result<int64_t> ParseDurationNs(std::string_view text);

}  // namespace doppel
