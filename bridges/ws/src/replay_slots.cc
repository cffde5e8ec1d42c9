#include "replay_slots.h"

#include <fmt/format.h>
#include <malloc.h>

#include "doppel/core/clock.h"

namespace doppel::gateway {

struct ReplaySlot::Budget {
  size_t max_total = 0;
  size_t max_per_client = 0;
  int64_t trim_interval_ns = 0;

  mutable std::mutex mu;
  size_t open = 0;
  std::unordered_map<std::string, size_t> per_client;
  uint64_t refused = 0;
  uint64_t trims = 0;
  int64_t last_trim_ns = 0;

  void Release(const std::string& client) {
    bool trim = false;
    {
      std::lock_guard lock(mu);
      auto it = per_client.find(client);
      if (it != per_client.end() && --it->second == 0) per_client.erase(it);
      --open;
      const int64_t now = MonotonicNowNs();
      if (now - last_trim_ns >= trim_interval_ns) {
        last_trim_ns = now;
        trim = true;
        ++trims;
      }
    }
    // A session's player, read-ahead pages and folded fleet are freed by now; glibc keeps
    // freed memory in its arenas unless asked to give it back.
    if (trim) ::malloc_trim(0);
  }
};

ReplaySlot::ReplaySlot(std::shared_ptr<Budget> budget, std::string client)
    : budget_(std::move(budget)), client_(std::move(client)) {}

ReplaySlot::~ReplaySlot() { Release(); }

ReplaySlot& ReplaySlot::operator=(ReplaySlot&& other) noexcept {
  if (this != &other) {
    Release();
    budget_ = std::move(other.budget_);
    client_ = std::move(other.client_);
  }
  return *this;
}

void ReplaySlot::Release() {
  if (budget_) budget_->Release(client_);
  budget_.reset();
}

ReplaySlots::ReplaySlots(size_t max_total, size_t max_per_client,
                         std::chrono::milliseconds trim_interval)
    : budget_(std::make_shared<ReplaySlot::Budget>()) {
  budget_->max_total = max_total;
  budget_->max_per_client = max_per_client;
  budget_->trim_interval_ns = std::chrono::nanoseconds(trim_interval).count();
  budget_->last_trim_ns = MonotonicNowNs() - budget_->trim_interval_ns;
}

Result<ReplaySlot> ReplaySlots::Take(const std::string& client, bool* client_full) {
  if (client_full != nullptr) *client_full = false;
  ReplaySlot::Budget& b = *budget_;
  std::lock_guard lock(b.mu);
  if (b.max_total != 0 && b.open >= b.max_total) {
    ++b.refused;
    return Status::Unavailable(fmt::format(
        "the gateway has {} replay sessions open, its most (--max-replay-sessions); try again "
        "when one closes",
        b.open));
  }
  size_t& mine = b.per_client[client];
  if (b.max_per_client != 0 && mine >= b.max_per_client) {
    ++b.refused;
    if (client_full != nullptr) *client_full = true;
    return Status::Unavailable(fmt::format(
        "this token has {} replay sessions open, its most (--max-replay-sessions-per-token); "
        "close one first",
        mine));
  }
  ++mine;
  ++b.open;
  return ReplaySlot(budget_, client);
}

size_t ReplaySlots::open() const {
  std::lock_guard lock(budget_->mu);
  return budget_->open;
}

uint64_t ReplaySlots::refused() const {
  std::lock_guard lock(budget_->mu);
  return budget_->refused;
}

uint64_t ReplaySlots::trims() const {
  std::lock_guard lock(budget_->mu);
  return budget_->trims;
}

}  // namespace doppel::gateway
