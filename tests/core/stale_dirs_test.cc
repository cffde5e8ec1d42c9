// RemoveStaleDirs on a real folder, with a live process, an exited one and a zombie.
#include "doppel/core/stale_dirs.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "test_support.h"

namespace doppel {
namespace {

namespace fs = std::filesystem;

// A child that exits at once; reaped unless `keep_zombie`.
pid_t ExitedChild(bool keep_zombie) {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  if (!keep_zombie) {
    int status = 0;
    ::waitpid(pid, &status, 0);
  } else {
    // Exited but not waited for: a zombie until the waitpid below.
    siginfo_t info{};
    ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT);
  }
  return pid;
}

TEST(StaleDirsTest, RemovesOnlyEntriesOfProcessesThatNoLongerRun) {
  testing::TempDir root;
  const std::string me = std::to_string(::getpid());
  const pid_t gone = ExitedChild(/*keep_zombie=*/false);
  const pid_t zombie = ExitedChild(/*keep_zombie=*/true);
  const std::vector<std::string> names = {
      "doppel-x-live-" + me + "-aaaa",                        // stays: this process runs
      "doppel-x-gone-" + std::to_string(gone) + "-bbbb",      // goes
      "doppel-x-zombie-" + std::to_string(zombie) + "-cccc",  // goes: it will never clean up
      "doppel-x-nopid-dddd",                                  // stays: not this scheme
      "other-" + std::to_string(gone) + "-eeee",              // stays: another prefix
  };
  for (const std::string& name : names) fs::create_directories(root.Sub(name) + "/inner");

  EXPECT_TRUE(ProcessRuns(me));
  EXPECT_FALSE(ProcessRuns(std::to_string(gone)));
  EXPECT_FALSE(ProcessRuns(std::to_string(zombie)));
  RemoveStaleDirs(root.path(), "doppel-x-");

  EXPECT_TRUE(fs::exists(root.Sub(names[0])));
  EXPECT_FALSE(fs::exists(root.Sub(names[1])));
  EXPECT_FALSE(fs::exists(root.Sub(names[2])));
  EXPECT_TRUE(fs::exists(root.Sub(names[3])));
  EXPECT_TRUE(fs::exists(root.Sub(names[4])));
  int status = 0;
  ::waitpid(zombie, &status, 0);
}

}  // namespace
}  // namespace doppel
