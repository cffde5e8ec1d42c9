// Progress of a long operation (export, import): on a terminal, a bar with rate and ETA
// redrawn in place on stderr; otherwise a log line every 10%.
#pragma once

#include <cstdint>
#include <string>

namespace doppel::tools {

class ProgressLine {
 public:
  explicit ProgressLine(std::string label);
  // `done` of `total` units (total 0: unknown).
  void Update(uint64_t done, uint64_t total);
  // Ends the bar's line on a terminal.
  void Finish();

 private:
  std::string label_;
  bool terminal_;
  int64_t start_ns_;
  int64_t last_draw_ns_ = 0;
  int last_decile_ = -1;
  bool drawn_ = false;
};

}  // namespace doppel::tools
