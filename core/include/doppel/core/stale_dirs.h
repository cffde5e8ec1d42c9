// What killed processes leave in a shared folder. doppel's tests, benchmarks and fuzz runs
// name their temporary directories <prefix><owner>-<pid>-<suffix>; a run that is killed
// cannot remove its own, so the next one removes those whose process is gone.
#pragma once

#include <string>
#include <string_view>

namespace doppel {

// Whether process `pid` (decimal) runs: a zombie (killed, its parent gone or not yet waiting)
// has a /proc entry but will never clean up.
bool ProcessRuns(const std::string& pid);

// Removes the entries of `root` named <prefix>...-<pid>-<suffix> whose process <pid> no longer
// runs. Live processes' entries stay, and so do entries not named by this scheme (whose they
// are cannot be told). Errors (a folder that cannot be listed, an entry that cannot be
// removed) are ignored: the sweep is best effort.
void RemoveStaleDirs(const std::string& root, std::string_view prefix);

}  // namespace doppel
