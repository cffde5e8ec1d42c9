// ReplaySlots: the gateway's budget of replay sessions, per client and in total.
#include "replay_slots.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

namespace doppel::gateway {
namespace {

TEST(ReplaySlotsTest, AClientGetsItsShareAndTheTotalHoldsAcrossClients) {
  ReplaySlots slots(/*max_total=*/5, /*max_per_client=*/2);
  std::vector<ReplaySlot> held;
  for (int i = 0; i < 2; ++i) {
    auto slot = slots.Take("token a");
    ASSERT_TRUE(slot.ok());
    held.push_back(std::move(slot).value());
  }
  bool client_full = false;
  auto third = slots.Take("token a", &client_full);
  ASSERT_FALSE(third.ok());
  EXPECT_TRUE(client_full);
  EXPECT_NE(third.status().message().find("--max-replay-sessions-per-token"), std::string::npos);

  for (const char* client : {"token b", "token b", "token c"}) {
    auto slot = slots.Take(client, &client_full);
    ASSERT_TRUE(slot.ok()) << client;
    EXPECT_FALSE(client_full);
    held.push_back(std::move(slot).value());
  }
  EXPECT_EQ(slots.open(), 5u);
  auto over = slots.Take("token d", &client_full);
  ASSERT_FALSE(over.ok());
  EXPECT_FALSE(client_full);
  EXPECT_NE(over.status().message().find("--max-replay-sessions"), std::string::npos);
  EXPECT_EQ(slots.refused(), 2u);

  // A session that ends frees its place for anyone.
  held.erase(held.begin());  // one of token a's
  EXPECT_EQ(slots.open(), 4u);
  auto again = slots.Take("token d");
  EXPECT_TRUE(again.ok());
  EXPECT_EQ(slots.open(), 5u);
}

TEST(ReplaySlotsTest, MovedSlotsAreReleasedOnceAndClosingSessionsTrimAtMostOncePerInterval) {
  ReplaySlots slots(0, 0, std::chrono::seconds(1));  // no caps
  {
    auto a = slots.Take("x");
    ASSERT_TRUE(a.ok());
    ReplaySlot moved = std::move(a).value();
    ReplaySlot assigned;
    assigned = std::move(moved);
    EXPECT_EQ(slots.open(), 1u);
  }
  EXPECT_EQ(slots.open(), 0u);
  EXPECT_EQ(slots.trims(), 1u);  // the first close trims
  for (int i = 0; i < 10; ++i) {
    auto s = slots.Take("x");
    ASSERT_TRUE(s.ok());
  }
  EXPECT_EQ(slots.trims(), 1u);  // ten more closes within the interval: no more trims
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  { auto s = slots.Take("x"); }
  EXPECT_EQ(slots.trims(), 2u);
  EXPECT_EQ(slots.open(), 0u);
}

}  // namespace
}  // namespace doppel::gateway
