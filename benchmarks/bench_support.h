// Helpers shared by doppel's benchmarks: server child processes and their resource use, and
// data directories that do not outlive the run.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "doppel/core/stale_dirs.h"

namespace doppel::bench {

// A server child process, killed on destruction.
class Child {
 public:
  Child(const std::vector<std::string>& argv, bool capture_stdout = false) {
    int fds[2] = {-1, -1};
    if (capture_stdout && ::pipe(fds) != 0) std::exit(1);
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ == 0) {
      // A killed benchmark takes its servers with it: an orphan would go on writing into the
      // benchmark's directory while the next run removes it. (Children are made on the main
      // thread: the signal follows the thread that forked.)
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
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

// A loopback TCP port that is free now, chosen by the kernel (bind to port 0), for servers
// that must be told their port (Redis, NATS): no random guess that may collide.
inline int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::perror("FreePort");
    std::exit(1);
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

// A benchmark's data directory, $TMPDIR/doppel-bench-<name>-<pid>-XXXXXX (TMPDIR defaults to
// /tmp): a store bench writes hundreds of MB, and a machine that runs them daily must not
// keep them. Removed on destruction, and at exit for the std::exit paths (a Die() skips the
// destructors). A run that is killed cannot clean up: each BenchDir first removes the
// doppel-bench-* directories whose process (the pid in the name) is gone. Declare it before
// the Children that write into it, so that they are stopped before it goes.
class BenchDir {
 public:
  explicit BenchDir(const std::string& name) {
    const char* tmp = std::getenv("TMPDIR");
    const std::string root = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
    doppel::RemoveStaleDirs(root, kPrefix);
    std::string pattern =
        root + "/" + std::string(kPrefix) + name + "-" + std::to_string(::getpid()) + "-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      std::perror(pattern.c_str());
      std::exit(1);
    }
    path_ = pattern;
    static const bool registered = std::atexit(RemoveLeft) == 0;
    (void)registered;
    Live().insert(path_);
  }
  ~BenchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
    Live().erase(path_);
  }
  BenchDir(const BenchDir&) = delete;
  BenchDir& operator=(const BenchDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  static constexpr std::string_view kPrefix = "doppel-bench-";
  // Never destroyed: RemoveLeft runs at exit, possibly after other statics are gone.
  static std::set<std::string>& Live() {
    static auto* live = new std::set<std::string>;
    return *live;
  }
  static void RemoveLeft() {
    for (const std::string& dir : Live()) {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  }
  std::string path_;
};

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
