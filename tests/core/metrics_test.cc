// MetricsPage and Histogram: the Prometheus text exposition format 0.0.4 as Prometheus reads it.
#include "doppel/core/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <thread>
#include <vector>

namespace doppel {
namespace {

TEST(MetricsTest, CounterHasHelpTypeAndValue) {
  MetricsPage page;
  page.Counter("doppel_x_total", "Things done", 42);
  EXPECT_EQ(page.text(),
            "# HELP doppel_x_total Things done\n# TYPE doppel_x_total counter\n"
            "doppel_x_total 42\n");
}

TEST(MetricsTest, SpecialValuesUseTheFormatsSpellings) {
  MetricsPage page;
  page.Gauge("g", "h", NAN);
  page.Gauge("i", "h", INFINITY);
  page.Gauge("j", "h", 0.25);
  EXPECT_NE(page.text().find("\ng NaN\n"), std::string::npos);
  EXPECT_NE(page.text().find("\ni +Inf\n"), std::string::npos);
  EXPECT_NE(page.text().find("\nj 0.25\n"), std::string::npos);
}

TEST(MetricsTest, LabelValuesAreEscaped) {
  MetricsPage page;
  page.Family("f_total", "counter", "help with \\ and\nnewline");
  page.Sample("f_total", {{"kind", "a\"b\\c\nd"}}, 1);
  EXPECT_EQ(page.text(),
            "# HELP f_total help with \\\\ and\\nnewline\n# TYPE f_total counter\n"
            "f_total{kind=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(MetricsTest, HistogramBucketsAreCumulativeAndInclusive) {
  Histogram h({1, 2, 4});
  for (double v : {0.5, 1.0, 1.5, 3.0, 10.0}) h.Observe(v);
  MetricsPage page;
  page.Histogram("d_seconds", "durations", h.Read());
  EXPECT_EQ(page.text(),
            "# HELP d_seconds durations\n# TYPE d_seconds histogram\n"
            "d_seconds_bucket{le=\"1\"} 2\n"
            "d_seconds_bucket{le=\"2\"} 3\n"
            "d_seconds_bucket{le=\"4\"} 4\n"
            "d_seconds_bucket{le=\"+Inf\"} 5\n"
            "d_seconds_sum 16\n"
            "d_seconds_count 5\n");
}

TEST(MetricsTest, ConcurrentObservationsAreAllCounted) {
  Histogram h(Histogram::ExponentialBounds(1, 2, 4));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&h] {
      for (int i = 0; i < 10000; ++i) h.Observe(1);
    });
  }
  for (auto& t : threads) t.join();
  const auto s = h.Read();
  EXPECT_EQ(s.count(), 40000u);
  EXPECT_EQ(s.counts[0], 40000u);
  EXPECT_DOUBLE_EQ(s.sum, 40000);
}

}  // namespace
}  // namespace doppel
