// `doppel replay --to-dds` as a process against DDS readers in this test: rt/clock follows
// replay time at the chosen rate, every robot's state at the window's start is published at
// once, and the replayed joint states are the history's.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <optional>
#include <thread>

#include "doppel/bridges/dds.h"
#include "doppel/eventstore/event_log.h"
#include "doppel/schemas/payloads.h"
#include "fmt/format.h"
#include "test_support.h"

namespace doppel::dds {
namespace {

TEST(DdsReplayTest, ClockFollowsReplayTimeAndEveryRobotsStateIsOutAtTheStart) {
  testing::TempDir dir;
  TimeNs from = 0, to = 0;
  {
    auto log = std::move(eventstore::EventLog::Open(dir.Sub("log")).value());
    for (const char* r : {"ra", "rb"}) {
      ASSERT_TRUE(log->Append({std::string("robot-") + r,
                               eventstore::ExpectedVersion::Any(),
                               {testing::EventFromJson("RobotRegistered",
                                                       fmt::format(R"({{"robot_id":"{}"}})", r)),
                                testing::EventFromJson("JointStateObserved",
                                                       R"({"names":["j"],"position":[0.5]})")}})
                      .ok());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    from = WallNowNs();
    // Two seconds of history: robot ra's joint moves from 1.0 to 2.0.
    for (int i = 1; i <= 20; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      ASSERT_TRUE(
          log->Append({"robot-ra",
                       eventstore::ExpectedVersion::Any(),
                       {testing::EventFromJson(
                           "JointStateObserved",
                           fmt::format(R"({{"names":["j"],"position":[{}]}})", 1.0 + i / 20.0))}})
              .ok());
    }
    to = WallNowNs();
  }
  const uint32_t domain = 60 + ::getpid() % 100;
  auto participant = Participant::Create(domain);
  ASSERT_TRUE(participant.ok());
  auto clock = Reader::Create(*participant, &rosgraph_msgs_msg_dds__Clock__desc, "rt/clock",
                              QosSpec{false, false, 100});
  auto ra = Reader::Create(*participant, &sensor_msgs_msg_dds__JointState__desc,
                           "rt/replay/twin/ra/joint_states", QosSpec{true, false, 100});
  auto rb = Reader::Create(*participant, &sensor_msgs_msg_dds__JointState__desc,
                           "rt/replay/twin/rb/joint_states", QosSpec{true, false, 100});
  ASSERT_TRUE(clock.ok() && ra.ok() && rb.ok());

  testing::DoppelProcess replay({"replay", "--data", dir.Sub("log"), "--from", std::to_string(from),
                                 "--to", std::to_string(to), "--to-dds", "--domain",
                                 std::to_string(domain), "--namespace", "replay", "--rate", "2",
                                 "--delay", "3s"});
  std::vector<double> ra_positions, rb_positions;
  std::vector<std::pair<TimeNs, int64_t>> clocks;  // replay time, monotonic time received
  auto drain = [&](int ms) {
    (void)ra->Take(
        [&](const void* s) {
          const auto* js = static_cast<const sensor_msgs_msg_dds__JointState_*>(s);
          if (js->position._length) ra_positions.push_back(js->position._buffer[0]);
        },
        std::chrono::milliseconds(ms));
    (void)rb->Take(
        [&](const void* s) {
          const auto* js = static_cast<const sensor_msgs_msg_dds__JointState_*>(s);
          if (js->position._length) rb_positions.push_back(js->position._buffer[0]);
        },
        std::chrono::milliseconds(0));
    (void)clock->Take(
        [&](const void* s) {
          clocks.emplace_back(
              FromRosTime(static_cast<const rosgraph_msgs_msg_dds__Clock_*>(s)->clock),
              MonotonicNowNs());
        },
        std::chrono::milliseconds(0));
  };
  std::optional<std::string> summary;
  const int64_t deadline = MonotonicNowNs() + 30'000'000'000;
  while (MonotonicNowNs() < deadline && !(summary = replay.ReadLine(10))) drain(20);
  drain(200);
  ASSERT_TRUE(summary.has_value()) << "the replay did not finish";
  EXPECT_EQ(replay.Wait(), 0);
  EXPECT_NE(summary->find("\"events\":20"), std::string::npos) << *summary;

  // Right after the start (a seek to `from`): every robot's state at `from`.
  ASSERT_FALSE(ra_positions.empty());
  ASSERT_FALSE(rb_positions.empty());
  EXPECT_EQ(ra_positions.front(), 0.5);
  EXPECT_EQ(rb_positions.front(), 0.5);
  // Then ra's history in order, to its last value; states at most 30 Hz of replay time, and
  // the history's are 10 Hz, so none is left out.
  EXPECT_EQ(ra_positions.size(), 21u);
  EXPECT_TRUE(std::is_sorted(ra_positions.begin(), ra_positions.end()));
  EXPECT_EQ(ra_positions.back(), 2.0);

  // rt/clock: replay time from `from` to `to`, never backwards, at about twice real time.
  ASSERT_GE(clocks.size(), 10u);
  EXPECT_LE(clocks.front().first, from + 100'000'000);
  EXPECT_GE(clocks.back().first, to - 100'000'000);
  for (size_t i = 1; i < clocks.size(); ++i) EXPECT_GE(clocks[i].first, clocks[i - 1].first);
  const double replayed = (clocks.back().first - clocks.front().first) / 1e9;
  const double wall = (clocks.back().second - clocks.front().second) / 1e9;
  EXPECT_GT(replayed / wall, 1.2) << replayed << " s of replay in " << wall << " s";
  EXPECT_LT(replayed / wall, 4.0) << replayed << " s of replay in " << wall << " s";
}

}  // namespace
}  // namespace doppel::dds
