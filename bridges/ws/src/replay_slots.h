// ReplaySlots: the budget of replay sessions of one gateway. Each /replay session holds a
// player, its read-ahead and a folded fleet (megabytes each), so their number is capped in
// total and per client (a token, or an address when the gateway has no tokens). A session
// that ends gives its slot back; memory the allocator kept for closed sessions is returned to
// the system (malloc_trim), at most once per `trim_interval`.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "doppel/core/status.h"

namespace doppel::gateway {

class ReplaySlots;

// One session's place. Move-only; destroying it frees the place (on any thread).
class ReplaySlot {
 public:
  ReplaySlot() = default;
  ~ReplaySlot();
  ReplaySlot(ReplaySlot&& other) noexcept = default;
  ReplaySlot& operator=(ReplaySlot&& other) noexcept;
  ReplaySlot(const ReplaySlot&) = delete;
  ReplaySlot& operator=(const ReplaySlot&) = delete;

 private:
  friend class ReplaySlots;
  struct Budget;
  ReplaySlot(std::shared_ptr<Budget> budget, std::string client);
  void Release();

  std::shared_ptr<Budget> budget_;
  std::string client_;
};

class ReplaySlots {
 public:
  // 0 = no cap of that kind.
  ReplaySlots(size_t max_total, size_t max_per_client,
              std::chrono::milliseconds trim_interval = std::chrono::seconds(5));

  // A place for a new session of `client`; Unavailable, naming the flag that sets the cap,
  // when the client (--max-replay-sessions-per-token; then *client_full is set) or the
  // gateway (--max-replay-sessions) has its most open.
  Result<ReplaySlot> Take(const std::string& client, bool* client_full = nullptr);

  size_t open() const;
  uint64_t refused() const;
  uint64_t trims() const;  // times memory was handed back after sessions closed

 private:
  std::shared_ptr<ReplaySlot::Budget> budget_;
};

}  // namespace doppel::gateway
