// GuardedAcceptor over real loopback sockets: the budgets per address and in total, tickets
// that free their place, and a process out of file descriptors that neither spins nor stops
// serving once descriptors are free again.
#include "doppel/net/guarded_acceptor.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <chrono>
#include <fstream>
#include <list>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "loopback_socket.h"

namespace doppel::net {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using testing::ConnectFrom;

// What the server sent before `timeout_ms`, up to its close or its whole greeting: "" and
// closed=false when it sent nothing yet.
struct Heard {
  std::string text;
  bool closed = false;
};
Heard Listen(int fd, int timeout_ms) {
  Heard heard;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    const int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          deadline - std::chrono::steady_clock::now())
                                          .count());
    pollfd p{fd, POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, left) <= 0) return heard;
    char buf[512];
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) {
      heard.closed = true;
      return heard;
    }
    heard.text.append(buf, static_cast<size_t>(n));
    if (heard.text == "hi") return heard;
  }
}

// A server on its own thread that greets each connection it is given with "hi" and keeps it
// (and its ticket) until the client closes.
class GreetingServer {
 public:
  explicit GreetingServer(AcceptLimits limits, std::string refusal = "busy")
      : acceptor_(io_, "test", limits, std::move(refusal)) {
    EXPECT_TRUE(acceptor_.Listen("127.0.0.1", 0).ok());
    acceptor_.Start([this](tcp::socket socket, ConnectionTicket ticket) {
      auto held = std::make_shared<Held>(std::move(socket), std::move(ticket));
      asio::write(held->socket, asio::buffer(std::string("hi")));
      held->socket.async_read_some(asio::buffer(held->buffer),
                                   [held](const boost::system::error_code&, size_t) {});
    });
    thread_ = std::thread([this] { io_.run(); });
  }
  ~GreetingServer() {
    asio::post(io_, [this] { acceptor_.Close(); });
    io_.stop();
    thread_.join();
  }
  uint16_t port() const { return acceptor_.port(); }
  AcceptCounters counters() const { return acceptor_.counters(); }
  const AcceptLimits& limits() const { return acceptor_.limits(); }

 private:
  struct Held {
    Held(tcp::socket s, ConnectionTicket t) : socket(std::move(s)), ticket(std::move(t)) {}
    tcp::socket socket;
    ConnectionTicket ticket;
    char buffer[16];
  };
  asio::io_context io_;
  GuardedAcceptor acceptor_;
  std::thread thread_;
};

TEST(GuardedAcceptorTest, OneAddressGetsItsShareAndOthersAreStillServed) {
  GreetingServer server(AcceptLimits{.max_connections = 100, .max_per_address = 3});
  std::vector<int> mine;
  for (int i = 0; i < 5; ++i) mine.push_back(ConnectFrom(server.port(), "127.0.0.2"));
  int greeted = 0, refused = 0;
  for (int fd : mine) {
    const Heard h = Listen(fd, 2000);
    if (h.text == "hi") ++greeted;
    if (h.text == "busy" && h.closed) ++refused;
  }
  EXPECT_EQ(greeted, 3);
  EXPECT_EQ(refused, 2);
  // Another address is served at once.
  const int other = ConnectFrom(server.port(), "127.0.0.3");
  EXPECT_EQ(Listen(other, 2000).text, "hi");
  // A place freed by a client that leaves is taken by the next.
  ::close(mine[0]);
  for (int tries = 0; tries < 500 && server.counters().open != 3; ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(server.counters().open, 3u);
  const int again = ConnectFrom(server.port(), "127.0.0.2");
  EXPECT_EQ(Listen(again, 2000).text, "hi");
  const AcceptCounters c = server.counters();
  EXPECT_EQ(c.accepted, 5u);
  EXPECT_EQ(c.refused_per_address, 2u);
  EXPECT_EQ(c.refused_total, 0u);
  EXPECT_EQ(c.open, 4u);
  for (int fd : mine) ::close(fd);
  ::close(other);
  ::close(again);
}

TEST(GuardedAcceptorTest, TheTotalBudgetHoldsAcrossAddresses) {
  GreetingServer server(AcceptLimits{.max_connections = 4, .max_per_address = 0});
  std::vector<int> fds;
  int greeted = 0, refused = 0;
  for (int i = 0; i < 8; ++i) {
    fds.push_back(ConnectFrom(server.port(), "127.0.0." + std::to_string(2 + i)));
    const Heard h = Listen(fds.back(), 2000);
    if (h.text == "hi") ++greeted;
    if (h.text == "busy" && h.closed) ++refused;
  }
  EXPECT_EQ(greeted, 4);
  EXPECT_EQ(refused, 4);
  EXPECT_EQ(server.counters().refused_total, 4u);
  for (int fd : fds) ::close(fd);
}

TEST(GuardedAcceptorTest, TheBudgetIsClampedToTheDescriptorLimit) {
  EXPECT_EQ(ClampToDescriptors(4096, 1024, 256), 768u);
  EXPECT_EQ(ClampToDescriptors(100, 1024, 256), 100u);
  EXPECT_EQ(ClampToDescriptors(0, 1024, 256), 768u);   // no budget asked: the limit is one
  EXPECT_EQ(ClampToDescriptors(4096, 100, 256), 16u);  // a tiny limit still serves some
  EXPECT_EQ(ClampToDescriptors(4096, RLIM_INFINITY, 256), 4096u);
}

// CPU time (user + system) of process `pid`, in clock ticks.
long CpuTicks(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream fields(text.substr(text.rfind(')') + 2));
  std::string skip;
  for (int i = 3; i < 14; ++i) fields >> skip;  // state .. cmajflt
  long utime = 0, stime = 0;
  fields >> utime >> stime;
  return utime + stime;
}

TEST(GuardedAcceptorTest, OutOfDescriptorsItBacksOffAndServesAgainOnceTheyAreFree) {
  // The server runs in a child whose file limit is 40: 100 clients exhaust it long before
  // any budget. It reports its counters on a pipe when told to stop.
  int port_pipe[2], stop_pipe[2], report_pipe[2];
  ASSERT_EQ(::pipe(port_pipe), 0);
  ASSERT_EQ(::pipe(stop_pipe), 0);
  ASSERT_EQ(::pipe(report_pipe), 0);
  const pid_t child = ::fork();
  if (child == 0) {
    rlimit files{40, 40};
    if (::setrlimit(RLIMIT_NOFILE, &files) != 0) ::_exit(3);
    {
      GreetingServer server(
          AcceptLimits{.max_connections = 0, .max_per_address = 0, .reserved_descriptors = 0});
      const uint16_t port = server.port();
      if (::write(port_pipe[1], &port, sizeof(port)) != sizeof(port)) ::_exit(4);
      char byte;
      if (::read(stop_pipe[0], &byte, 1) != 1) ::_exit(5);
      const AcceptCounters c = server.counters();
      const std::string report = std::to_string(c.accept_errors) + " " + std::to_string(c.accepted);
      if (::write(report_pipe[1], report.data(), report.size()) < 0) ::_exit(6);
    }
    ::_exit(0);
  }
  uint16_t port = 0;
  ASSERT_EQ(::read(port_pipe[0], &port, sizeof(port)), static_cast<ssize_t>(sizeof(port)));

  std::vector<int> flood;
  for (int i = 0; i < 100; ++i) flood.push_back(ConnectFrom(port));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  // Held out of descriptors for 2 s: an accept loop that re-armed at once would burn ~2 s of
  // CPU here; with the backoff it sleeps.
  const long before = CpuTicks(child);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const long used = CpuTicks(child) - before;
  const long per_second = ::sysconf(_SC_CLK_TCK);
  EXPECT_LT(used, per_second / 5) << "the server used " << used << " ticks in 2 s";

  // Greeted until the limit; then one dropped through the spare per backoff step (about ten
  // in 2.5 s); the rest still waiting in the backlog. Without the backoff the spare would
  // have dropped them all at once.
  int greeted = 0, dropped = 0;
  for (int fd : flood) {
    const Heard h = Listen(fd, 20);
    greeted += h.text == "hi" ? 1 : 0;
    dropped += h.closed && h.text.empty() ? 1 : 0;
  }
  EXPECT_GT(greeted, 10);
  EXPECT_LT(greeted, 40);
  EXPECT_LT(dropped, 25) << "greeted " << greeted;
  for (int fd : flood) ::close(fd);

  // Descriptors free again: a new client is served within the longest backoff and then some.
  const int late = ConnectFrom(port);
  EXPECT_EQ(Listen(late, 5000).text, "hi");
  ::close(late);

  ASSERT_EQ(::write(stop_pipe[1], "x", 1), 1);
  char report[64] = {};
  ASSERT_GT(::read(report_pipe[0], report, sizeof(report) - 1), 0);
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  long errors = 0, accepted = 0;
  std::istringstream(report) >> errors >> accepted;
  EXPECT_GT(errors, 0) << report;
  // Backing off 50 ms..1 s for ~3 s makes a handful of failed accepts, not one per client.
  EXPECT_LT(errors, 30) << report;
  for (int fd :
       {port_pipe[0], port_pipe[1], stop_pipe[0], stop_pipe[1], report_pipe[0], report_pipe[1]}) {
    ::close(fd);
  }
}

}  // namespace
}  // namespace doppel::net
