// LatencySamples: collects durations and reports percentiles, for benchmarks and tools.
// Not thread-safe: keep one per thread and Merge() them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace doppel {

class LatencySamples {
 public:
  void Add(int64_t ns) { samples_.push_back(ns); }
  void Merge(const LatencySamples& other) {
    samples_.insert(samples_.end(), other.samples_.begin(), other.samples_.end());
  }
  size_t count() const { return samples_.size(); }
  // The q-quantile (0 <= q <= 1) in ns; 0 when empty. Sorts lazily.
  int64_t Quantile(double q);

 private:
  std::vector<int64_t> samples_;
  bool sorted_ = false;
};

}  // namespace doppel
