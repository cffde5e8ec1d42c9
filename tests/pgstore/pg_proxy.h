// A unix-socket proxy in front of a PostgreSQL server, for tests of connections that break at
// a chosen moment: armed with a byte pattern, it forwards a client message that contains it,
// then cuts the connection instead of passing on the server's answer. The server has then
// received (and, for a COMMIT or an autocommit INSERT, carried out) the request, and the
// client never learns the outcome.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace doppel::testing {

class PgProxy {
 public:
  // Listens on `dir`/.s.PGSQL.5432 and forwards to `server_dir`/.s.PGSQL.5432.
  PgProxy(const std::string& dir, const std::string& server_dir)
      : path_(dir + "/.s.PGSQL.5432"), server_(server_dir + "/.s.PGSQL.5432") {
    listener_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr = Address(path_);
    ::unlink(path_.c_str());
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(listener_, 64) != 0) {
      ::close(listener_);
      listener_ = -1;
      return;
    }
    acceptor_ = std::thread([this] { Accept(); });
  }
  ~PgProxy() {
    stopping_ = true;
    if (listener_ >= 0) ::shutdown(listener_, SHUT_RDWR);
    if (acceptor_.joinable()) acceptor_.join();
    if (listener_ >= 0) ::close(listener_);
    std::vector<std::thread> pipes;
    {
      std::lock_guard lock(mu_);
      pipes.swap(pipes_);
    }
    for (auto& t : pipes) t.join();  // without the lock, which the pipes take
    ::unlink(path_.c_str());
  }
  bool ok() const { return listener_ >= 0; }
  // The next client message containing `pattern` is forwarded, and the server's answer to it
  // is not: the connection is cut instead. Once.
  void CutAfter(std::string pattern) {
    std::lock_guard lock(mu_);
    pattern_ = std::move(pattern);
  }
  int cuts() const { return cuts_.load(); }

 private:
  static sockaddr_un Address(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
    return addr;
  }
  void Accept() {
    while (!stopping_) {
      const int client = ::accept(listener_, nullptr, nullptr);
      if (client < 0) return;
      const int server = ::socket(AF_UNIX, SOCK_STREAM, 0);
      sockaddr_un addr = Address(server_);
      if (::connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
        ::close(client);
        ::close(server);
        continue;
      }
      std::lock_guard lock(mu_);
      pipes_.emplace_back([this, client, server] { Pipe(client, server); });
    }
  }
  void Pipe(int client, int server) {
    bool armed = false;  // a message with the pattern went to the server
    char buf[65536];
    pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
    while (!stopping_) {
      if (::poll(fds, 2, 100) < 0) break;
      if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
        const ssize_t n = ::read(client, buf, sizeof(buf));
        if (n <= 0) break;
        {
          std::lock_guard lock(mu_);
          if (!pattern_.empty() && std::string_view(buf, n).find(pattern_) != std::string::npos) {
            pattern_.clear();
            armed = true;
          }
        }
        if (::write(server, buf, n) != n) break;
      }
      if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
        if (armed) {
          // Let the server finish what it was asked (it does not look at the client before
          // committing), then cut: the answer is lost.
          ++cuts_;
          break;
        }
        const ssize_t n = ::read(server, buf, sizeof(buf));
        if (n <= 0) break;
        if (::write(client, buf, n) != n) break;
      }
    }
    ::close(client);
    ::close(server);
  }

  const std::string path_;
  const std::string server_;
  int listener_ = -1;
  std::atomic<bool> stopping_{false};
  std::atomic<int> cuts_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::string pattern_;
  std::vector<std::thread> pipes_;
};

}  // namespace doppel::testing
