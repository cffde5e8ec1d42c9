// Prometheus metrics: a histogram with fixed buckets that any thread may observe into, and a
// page that renders one scrape in the text exposition format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/).
//
// Counters and gauges are not objects here: each process already keeps its counts in a
// Counters struct, so a scrape reads that struct and writes the values onto a MetricsPage.
// Only histograms need state of their own, updated where the measured thing happens.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace doppel {

class Histogram {
 public:
  // `bounds` are the buckets' upper bounds (inclusive), strictly increasing; a +Inf bucket
  // follows them implicitly.
  explicit Histogram(std::vector<double> bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  // Thread-safe and lock-free: one relaxed increment and one add to the sum.
  void Observe(double value);

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> counts;  // per bucket, not cumulative; bounds.size() + 1 entries
    double sum = 0;
    uint64_t count() const;
  };
  // A copy taken while other threads observe: each bucket is exact, and count() is the sum
  // of the buckets, so _count always equals the +Inf bucket as Prometheus requires.
  Snapshot Read() const;

  // start, start*factor, ... (n bounds).
  static std::vector<double> ExponentialBounds(double start, double factor, int n);

 private:
  const std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<double> sum_{0};
};

// One scrape's text. Each call writes a whole family (# HELP, # TYPE, samples), except
// Family + Sample, for families with labelled samples: call Family once, then Sample for
// each label set. Names must match [a-zA-Z_:][a-zA-Z0-9_:]*; label values are escaped.
class MetricsPage {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;

  void Counter(std::string_view name, std::string_view help, double value);
  void Gauge(std::string_view name, std::string_view help, double value);
  void Histogram(std::string_view name, std::string_view help, const Histogram::Snapshot& h);

  // type: "counter" or "gauge".
  void Family(std::string_view name, std::string_view type, std::string_view help);
  void Sample(std::string_view name, const Labels& labels, double value);

  // Text rendered elsewhere (another component's page), appended as it is.
  void Append(std::string_view text);

  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

}  // namespace doppel
