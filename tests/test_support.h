// Shared helpers for doppel tests: temporary directories, payload builders, and running
// the doppel binary as a real child process.
#pragma once

#include <string>
#include <vector>

#include "doppel/eventstore/types.h"

namespace doppel::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A JointStateObserved payload with one position per joint.
std::string JointStatePayload(const std::vector<std::string>& names,
                              const std::vector<double>& positions);
eventstore::NewEvent JointStateEvent(double position, EventId id = EventId::Random());

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs the doppel binary (path from the DOPPEL_BINARY compile definition) with `args`,
// waits, and captures stdout and stderr.
CommandResult RunDoppel(const std::vector<std::string>& args);
std::string DoppelBinary();

}  // namespace doppel::testing
