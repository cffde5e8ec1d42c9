// Helpers shared by doppel's benchmarks: server child processes and their resource use.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace doppel::bench {

// A server child process, killed on destruction.
class Child {
 public:
  Child(const std::vector<std::string>& argv, bool capture_stdout = false) {
    int fds[2] = {-1, -1};
    if (capture_stdout && ::pipe(fds) != 0) std::exit(1);
    pid_ = ::fork();
    if (pid_ == 0) {
      if (capture_stdout)
        ::dup2(fds[1], STDOUT_FILENO);
      else
        std::freopen("/dev/null", "w", stdout);
      std::vector<char*> args;
      std::vector<std::string> copy = argv;
      for (auto& a : copy) args.push_back(a.data());
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    if (capture_stdout) {
      ::close(fds[1]);
      out_ = ::fdopen(fds[0], "r");
    }
  }
  ~Child() {
    ::kill(pid_, SIGTERM);
    int status;
    ::waitpid(pid_, &status, 0);
    if (out_) std::fclose(out_);
  }
  std::string ReadLine() {
    char buf[4096];
    return out_ && std::fgets(buf, sizeof(buf), out_) ? std::string(buf) : std::string();
  }

  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  FILE* out_ = nullptr;
};

int FreePort() {
  static std::mt19937 rng(std::random_device{}());
  return 20000 + static_cast<int>(rng() % 20000);
}

// CPU seconds (user + system) a process has used so far.
inline double CpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(in, line);
  std::istringstream fields(line.substr(line.rfind(')') + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;  // NOLINT(runtime/int)
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// Resident memory of a process, bytes.
inline uint64_t RssBytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

}  // namespace doppel::bench
