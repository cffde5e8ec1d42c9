#include "doppel/net/guarded_acceptor.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/error.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <mutex>
#include <unordered_map>

namespace doppel::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// The places taken, in total and per address; shared by the acceptor and its tickets, which
// may outlive it.
class ConnectionBudget {
 public:
  enum class Verdict { kTaken, kOverTotal, kOverAddress };

  explicit ConnectionBudget(const AcceptLimits& limits) : limits_(limits) {}

  Verdict Take(const std::string& address) {
    std::lock_guard lock(mu_);
    if (limits_.max_connections != 0 && open_ >= limits_.max_connections) {
      ++refused_total_;
      return Verdict::kOverTotal;
    }
    size_t& mine = per_address_[address];
    if (limits_.max_per_address != 0 && mine >= limits_.max_per_address) {
      ++refused_per_address_;
      return Verdict::kOverAddress;
    }
    ++mine;
    ++open_;
    ++accepted_;
    return Verdict::kTaken;
  }

  void Release(const std::string& address) {
    std::lock_guard lock(mu_);
    auto it = per_address_.find(address);
    if (it != per_address_.end() && --it->second == 0) per_address_.erase(it);
    --open_;
  }

  void Fill(AcceptCounters& c) const {
    std::lock_guard lock(mu_);
    c.accepted = accepted_;
    c.open = open_;
    c.refused_total = refused_total_;
    c.refused_per_address = refused_per_address_;
  }

 private:
  const AcceptLimits limits_;
  mutable std::mutex mu_;
  size_t open_ = 0;
  std::unordered_map<std::string, size_t> per_address_;
  uint64_t accepted_ = 0, refused_total_ = 0, refused_per_address_ = 0;
};

ConnectionTicket::ConnectionTicket(std::shared_ptr<ConnectionBudget> budget, std::string address)
    : budget_(std::move(budget)), address_(std::move(address)) {}

ConnectionTicket::~ConnectionTicket() {
  if (budget_) budget_->Release(address_);
}

ConnectionTicket& ConnectionTicket::operator=(ConnectionTicket&& other) noexcept {
  if (this != &other) {
    if (budget_) budget_->Release(address_);
    budget_ = std::move(other.budget_);
    address_ = std::move(other.address_);
  }
  return *this;
}

size_t ClampToDescriptors(size_t wanted, uint64_t nofile, size_t reserved) {
  if (nofile == RLIM_INFINITY) return wanted;
  const uint64_t usable = nofile > reserved + 16 ? nofile - reserved : 16;
  return wanted == 0 ? static_cast<size_t>(usable)
                     : static_cast<size_t>(std::min<uint64_t>(wanted, usable));
}

namespace {

AcceptLimits Clamped(AcceptLimits limits, std::string_view component) {
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) != 0) return limits;
  const size_t clamped =
      ClampToDescriptors(limits.max_connections, files.rlim_cur, limits.reserved_descriptors);
  if (clamped != limits.max_connections) {
    log::Warn(component,
              "at most {} connections at once, not {}: the process may open {} files "
              "(ulimit -n), {} of them kept for its own",
              clamped,
              limits.max_connections == 0 ? std::string("unlimited")
                                          : std::to_string(limits.max_connections),
              files.rlim_cur, limits.reserved_descriptors);
    limits.max_connections = clamped;
  }
  if (limits.max_per_address != 0) {
    limits.max_per_address = std::min(limits.max_per_address, limits.max_connections);
  }
  return limits;
}

int OpenSpare() { return ::open("/dev/null", O_RDONLY | O_CLOEXEC); }

}  // namespace

GuardedAcceptor::GuardedAcceptor(asio::io_context& io, std::string component, AcceptLimits limits,
                                 std::string refusal)
    : io_(io),
      component_(std::move(component)),
      limits_(Clamped(limits, component_)),
      refusal_(std::move(refusal)),
      acceptor_(io),
      backoff_timer_(io),
      backoff_(limits_.first_backoff),
      budget_(std::make_shared<ConnectionBudget>(limits_)),
      spare_fd_(OpenSpare()),
      refused_warning_(component_),
      error_warning_(component_) {}

GuardedAcceptor::~GuardedAcceptor() {
  if (spare_fd_ >= 0) ::close(spare_fd_);
}

Status GuardedAcceptor::Listen(const std::string& address, uint16_t port) {
  boost::system::error_code ec;
  const auto ip = asio::ip::make_address(address, ec);
  if (ec) return Status::InvalidArgument(fmt::format("bad address {}", address));
  const tcp::endpoint endpoint(ip, port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  // The spare descriptor's accept(2) must not block when the client has gone meanwhile.
  if (!ec) acceptor_.native_non_blocking(true, ec);
  if (ec) {
    return Status::IOError(fmt::format("cannot listen on {}:{}: {}", address, port, ec.message()));
  }
  port_ = acceptor_.local_endpoint().port();
  return Status::Ok();
}

void GuardedAcceptor::Start(Handler handler) {
  handler_ = std::move(handler);
  Accept();
}

void GuardedAcceptor::Close() {
  boost::system::error_code ignored;
  backoff_timer_.cancel();
  acceptor_.close(ignored);
}

AcceptCounters GuardedAcceptor::counters() const {
  AcceptCounters c;
  budget_->Fill(c);
  c.accept_errors = accept_errors_.load();
  return c;
}

void GuardedAcceptor::Accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      OnError(ec);
      return;
    }
    backoff_ = limits_.first_backoff;
    OnAccepted(std::move(socket));
    Accept();
  });
}

void GuardedAcceptor::OnAccepted(tcp::socket socket) {
  boost::system::error_code ec;
  const auto peer = socket.remote_endpoint(ec);
  if (ec) return;  // gone already; the socket closes here
  std::string address = peer.address().to_string();
  switch (budget_->Take(address)) {
    case ConnectionBudget::Verdict::kTaken:
      handler_(std::move(socket), ConnectionTicket(budget_, std::move(address)));
      return;
    case ConnectionBudget::Verdict::kOverTotal:
      refused_warning_.Warn(
          "refused a connection from {}: {} connections are open, the most "
          "this server keeps",
          address, limits_.max_connections);
      break;
    case ConnectionBudget::Verdict::kOverAddress:
      refused_warning_.Warn(
          "refused a connection from {}: it has {} open, the most one "
          "address may keep",
          address, limits_.max_per_address);
      break;
  }
  socket.non_blocking(true, ec);
  if (!refusal_.empty() && !ec) {
    // Best effort, never blocking: a client that does not read gets nothing.
    socket.write_some(asio::buffer(refusal_), ec);
  }
  // What the client sent already (its request) is read and dropped: closing a socket with
  // unread data sends a reset, which can destroy the refusal on its way.
  char sink[4096];
  for (int i = 0; i < 4; ++i) {
    socket.read_some(asio::buffer(sink), ec);
    if (ec) break;
  }
  socket.shutdown(tcp::socket::shutdown_send, ec);
  socket.close(ec);
}

void GuardedAcceptor::OnError(const boost::system::error_code& ec) {
  ++accept_errors_;
  const bool out_of_descriptors =
      ec == asio::error::no_descriptors || ec.value() == ENFILE;  // asio names EMFILE only
  if (ec == asio::error::connection_aborted) {
    Accept();  // that client gave up before we took it; nothing is wrong here
    return;
  }
  if (out_of_descriptors) ShedOneWithSpare();
  error_warning_.Warn("accept: {}; accepting again in {} ms{}", ec.message(), backoff_.count(),
                      out_of_descriptors ? " (the waiting client was dropped)" : "");
  backoff_timer_.expires_after(backoff_);
  backoff_ = std::min(backoff_ * 2, limits_.max_backoff);
  backoff_timer_.async_wait([this](const boost::system::error_code& timer_ec) {
    if (timer_ec || !acceptor_.is_open()) return;
    if (spare_fd_ < 0) spare_fd_ = OpenSpare();  // lost to another thread's open last time
    Accept();
  });
}

void GuardedAcceptor::ShedOneWithSpare() {
  if (spare_fd_ < 0) return;
  ::close(spare_fd_);
  spare_fd_ = -1;
  const int fd = ::accept4(acceptor_.native_handle(), nullptr, nullptr, SOCK_CLOEXEC);
  if (fd >= 0) ::close(fd);
  spare_fd_ = OpenSpare();
}

}  // namespace doppel::net
