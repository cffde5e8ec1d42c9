#include "doppel/core/latency.h"

#include <algorithm>

namespace doppel {

int64_t LatencySamples::Quantile(double q) {
  if (samples_.empty()) return 0;
  if (!sorted_) {
    std::sort(samples_.begin(), samples_.end());
    sorted_ = true;
  }
  q = std::clamp(q, 0.0, 1.0);
  const size_t index = std::min(samples_.size() - 1, static_cast<size_t>(q * samples_.size()));
  return samples_[index];
}

}  // namespace doppel
