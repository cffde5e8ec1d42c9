#include "commit_horizon.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace doppel::pgstore {
namespace {

bool ParseXid(std::string_view text, uint64_t* out) {
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && p == text.data() + text.size() && !text.empty();
}

}  // namespace

bool PgSnapshot::Finished(uint64_t xid) const {
  if (xid >= xmax) return false;  // not yet assigned when the snapshot was taken, or running
  return std::find(in_progress.begin(), in_progress.end(), xid) == in_progress.end();
}

Result<PgSnapshot> ParsePgSnapshot(std::string_view text) {
  const auto bad = [&] {
    return Status::Corruption(fmt::format("PostgreSQL snapshot '{}' is not xmin:xmax:xip", text));
  };
  const size_t a = text.find(':');
  const size_t b = a == std::string_view::npos ? a : text.find(':', a + 1);
  if (b == std::string_view::npos) return bad();
  PgSnapshot snapshot;
  if (!ParseXid(text.substr(0, a), &snapshot.xmin) ||
      !ParseXid(text.substr(a + 1, b - a - 1), &snapshot.xmax)) {
    return bad();
  }
  std::string_view rest = text.substr(b + 1);
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    uint64_t xid = 0;
    if (!ParseXid(rest.substr(0, comma), &xid)) return bad();
    snapshot.in_progress.push_back(xid);
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
    if (rest.empty()) return bad();  // a trailing comma
  }
  return snapshot;
}

Result<std::vector<uint64_t>> ParseLockedXids(std::string_view text, uint64_t reference) {
  std::vector<uint64_t> xids;
  std::string_view rest = text;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    uint64_t xid = 0;
    if (!ParseXid(rest.substr(0, comma), &xid) || xid > UINT32_MAX) {
      return Status::Corruption(fmt::format("pg_locks transaction ids '{}' are not a list", text));
    }
    // The epoch that puts it nearest the reference (ids in use are within 2^31 of each other).
    uint64_t wide = (reference & ~uint64_t{0xFFFFFFFF}) | xid;
    if (wide > reference + (uint64_t{1} << 31) && wide >= (uint64_t{1} << 32)) {
      wide -= uint64_t{1} << 32;
    } else if (wide + (uint64_t{1} << 31) < reference) {
      wide += uint64_t{1} << 32;
    }
    xids.push_back(wide);
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return xids;
}

uint64_t CommitHorizon::Observe(const PgSnapshot& snapshot, uint64_t max_visible,
                                const std::vector<uint64_t>& running) {
  std::vector<uint64_t> unfinished = snapshot.in_progress;
  for (uint64_t xid : running) {
    if (!snapshot.Finished(xid)) unfinished.push_back(xid);
  }
  if (pending_ && std::all_of(pending_->in_progress.begin(), pending_->in_progress.end(),
                              [&](uint64_t xid) { return snapshot.Finished(xid); })) {
    horizon_ = std::max(horizon_, pending_->max_visible);
    pending_.reset();
  }
  if (unfinished.empty()) {
    // Nothing running: every position handed out so far is final.
    horizon_ = std::max(horizon_, max_visible);
    pending_.reset();
    return horizon_;
  }
  if (!pending_ && max_visible > horizon_) {
    pending_ = Barrier{max_visible, std::move(unfinished)};
  }
  return horizon_;
}

}  // namespace doppel::pgstore
