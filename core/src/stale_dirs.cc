#include "doppel/core/stale_dirs.h"

#include <filesystem>
#include <fstream>

namespace doppel {

bool ProcessRuns(const std::string& pid) {
  std::ifstream stat("/proc/" + pid + "/stat");
  std::string text;
  if (!std::getline(stat, text)) return false;
  // "<pid> (<comm>) <state> ...": comm may hold spaces and parentheses, the state follows
  // the last ')'.
  const size_t close = text.rfind(')');
  return close == std::string::npos || close + 2 >= text.size() || text[close + 2] != 'Z';
}

void RemoveStaleDirs(const std::string& root, std::string_view prefix) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::directory_iterator it(root, ec);
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.starts_with(prefix)) continue;
    // <prefix><owner>-<pid>-<suffix>: the pid is the field before the last dash.
    const size_t suffix = name.rfind('-');
    if (suffix == std::string::npos || suffix <= prefix.size()) continue;
    const size_t pid_start = name.rfind('-', suffix - 1) + 1;
    const std::string pid = name.substr(pid_start, suffix - pid_start);
    if (pid_start < prefix.size() || pid.empty() ||
        pid.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    if (ProcessRuns(pid)) continue;
    std::error_code remove_ec;
    fs::remove_all(it->path(), remove_ec);
  }
}

}  // namespace doppel
