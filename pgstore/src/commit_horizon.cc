#include "commit_horizon.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace doppel::pgstore {

Result<std::vector<uint64_t>> ParseXidList(std::string_view text) {
  std::vector<uint64_t> xids;
  std::string_view rest = text;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    uint64_t xid = 0;
    auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), xid);
    if (item.empty() || ec != std::errc() || p != item.data() + item.size()) {
      return Status::Corruption(fmt::format("transaction ids '{}' are not a list", text));
    }
    xids.push_back(xid);
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
    if (rest.empty()) {
      return Status::Corruption(fmt::format("transaction ids '{}' end with a comma", text));
    }
  }
  return xids;
}

uint64_t CommitHorizon::Observe(uint64_t max_visible, const std::vector<uint64_t>& writing) {
  if (pending_ &&
      std::none_of(pending_->writing.begin(), pending_->writing.end(), [&](uint64_t xid) {
        return std::find(writing.begin(), writing.end(), xid) != writing.end();
      })) {
    // Every transaction that could hold a position below the barrier has finished.
    horizon_ = std::max(horizon_, pending_->max_visible);
    pending_.reset();
  }
  if (writing.empty()) {
    // Nobody writing: every position handed out so far is final.
    horizon_ = std::max(horizon_, max_visible);
    pending_.reset();
    return horizon_;
  }
  if (!pending_ && max_visible > horizon_) pending_ = Barrier{max_visible, writing};
  return horizon_;
}

}  // namespace doppel::pgstore
