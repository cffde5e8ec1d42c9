// GuardedAcceptor: a TCP listener that cannot be exhausted by idle or hostile clients, shared
// by every server doppel runs (the gateway, the metrics endpoints).
//
// - A budget of connections, in total and per client address. A connection over either is
//   accepted and closed at once (with `refusal` written first, when given, best effort), so
//   it neither waits in the kernel's backlog nor holds a descriptor. Each accepted connection
//   carries a ConnectionTicket; the slot is free again when the ticket is destroyed.
// - The budget is clamped to what the process may open (RLIMIT_NOFILE less a reserve for its
//   own files), so the process reaches the budget before the kernel's limit.
// - Out of descriptors anyway (EMFILE, ENFILE: other parts of the process use them too), it
//   does not spin: it closes a spare descriptor kept for the purpose, accepts and closes the
//   waiting connection with it, takes the spare again, and waits before accepting again
//   (50 ms, doubling to 1 s, back to 50 ms after a success).
// - Every refusal and failure is counted; the warnings are rate limited.
//
// All calls and the handler run on the io_context's thread; tickets may be destroyed on any.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "doppel/core/log.h"
#include "doppel/core/status.h"

namespace doppel::net {

struct AcceptLimits {
  // Connections open at once, in total and from one address. 0 = no budget of that kind.
  size_t max_connections = 4096;
  size_t max_per_address = 256;
  // Descriptors left to the rest of the process when the budget is clamped to RLIMIT_NOFILE.
  size_t reserved_descriptors = 256;
  std::chrono::milliseconds first_backoff{50};
  std::chrono::milliseconds max_backoff{1000};
};

// What a GuardedAcceptor counted, for /metrics and tests.
struct AcceptCounters {
  uint64_t accepted = 0;
  uint64_t open = 0;
  uint64_t refused_total = 0;        // over max_connections
  uint64_t refused_per_address = 0;  // over max_per_address
  uint64_t accept_errors = 0;        // EMFILE and other failures of accept(2)
};

class ConnectionBudget;

// An accepted connection's place in the budget. Move-only; destroying it frees the place.
class ConnectionTicket {
 public:
  ConnectionTicket() = default;
  ConnectionTicket(std::shared_ptr<ConnectionBudget> budget, std::string address);
  ~ConnectionTicket();
  ConnectionTicket(ConnectionTicket&& other) noexcept = default;
  ConnectionTicket& operator=(ConnectionTicket&& other) noexcept;
  ConnectionTicket(const ConnectionTicket&) = delete;
  ConnectionTicket& operator=(const ConnectionTicket&) = delete;

 private:
  std::shared_ptr<ConnectionBudget> budget_;
  std::string address_;
};

class GuardedAcceptor {
 public:
  using Handler = std::function<void(boost::asio::ip::tcp::socket, ConnectionTicket)>;

  // `component` names the server in logs; `refusal`, if not empty, is written to a connection
  // refused for the budget before it is closed (an HTTP server sends a 503).
  GuardedAcceptor(boost::asio::io_context& io, std::string component, AcceptLimits limits,
                  std::string refusal = {});
  ~GuardedAcceptor();
  GuardedAcceptor(const GuardedAcceptor&) = delete;
  GuardedAcceptor& operator=(const GuardedAcceptor&) = delete;

  // Binds and listens. IOError naming the address when that fails.
  Status Listen(const std::string& address, uint16_t port);
  // Starts accepting; `handler` gets each connection within the budget.
  void Start(Handler handler);
  // Stops accepting (on the io_context's thread).
  void Close();

  uint16_t port() const { return port_; }
  // The budget in force after clamping.
  const AcceptLimits& limits() const { return limits_; }
  AcceptCounters counters() const;

 private:
  void Accept();
  void OnAccepted(boost::asio::ip::tcp::socket socket);
  void OnError(const boost::system::error_code& ec);
  // Out of descriptors: drop the waiting connection through the spare descriptor.
  void ShedOneWithSpare();

  boost::asio::io_context& io_;
  std::string component_;
  AcceptLimits limits_;
  std::string refusal_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer backoff_timer_;
  std::chrono::milliseconds backoff_;
  std::shared_ptr<ConnectionBudget> budget_;
  Handler handler_;
  int spare_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<uint64_t> accept_errors_{0};
  log::RateLimitedWarning refused_warning_;
  log::RateLimitedWarning error_warning_;
};

// The budget `wanted` clamped to a descriptor limit `nofile` less `reserved` (at least 16).
size_t ClampToDescriptors(size_t wanted, uint64_t nofile, size_t reserved);

}  // namespace doppel::net
