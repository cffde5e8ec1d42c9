// The replay core: moments as the CLI spells them, windows over the log's timeline, and the
// fleet folded to a moment exactly as `doppel state --at` folds each robot.
#include <dirent.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <memory>
#include <thread>

#include "doppel/eventstore/event_log.h"
#include "doppel/replay/fleet_state.h"
#include "doppel/replay/incident_report.h"
#include "doppel/replay/read_ahead.h"
#include "doppel/replay/window.h"
#include "doppel/replay/window_reader.h"
#include "doppel/ros2/observations.h"
#include "doppel/twins/robot_aggregate.h"
#include "doppel/twins/state_report.h"
#include "test_support.h"

namespace doppel::replay {
namespace {

using eventstore::ExpectedVersion;
using eventstore::NewEvent;
using testing::TempDir;

NewEvent Joints(double q) {
  ros2::JointState js;
  js.name = {"shoulder_pan_joint", "shoulder_lift_joint"};
  js.position = {q, -q};
  js.velocity = {0, 0};
  NewEvent e;
  e.type = "JointStateObserved";
  e.payload = ros2::JointStateObservedPayload(js);
  e.occurred_ns = WallNowNs();
  return e;
}

NewEvent Registered(const std::string& robot, const std::string& model) {
  NewEvent e;
  e.type = "RobotRegistered";
  e.payload = ros2::RobotRegisteredPayload(robot, model);
  e.occurred_ns = WallNowNs();
  return e;
}

// Appends and returns the recorded time of the commit.
TimeNs Append(eventstore::EventLog& log, const std::string& robot, std::vector<NewEvent> events) {
  auto r = log.Append({"robot-" + robot, ExpectedVersion::Any(), std::move(events)});
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? r->recorded_ns : 0;
}

void Tick() { std::this_thread::sleep_for(std::chrono::milliseconds(3)); }

TEST(MomentTest, NowRelativeIsoAndNanosecondsParse) {
  const TimeNs now = 1'800'000'000'000'000'000;
  EXPECT_EQ(*ParseMoment("now", now), now);
  EXPECT_EQ(*ParseMoment("-15m", now), now - 15 * 60'000'000'000LL);
  EXPECT_EQ(*ParseMoment("+2s", now), now + 2'000'000'000LL);
  EXPECT_EQ(*ParseMoment("-500ms", now), now - 500'000'000LL);
  EXPECT_EQ(*ParseMoment("1700000000000000000", now), 1'700'000'000'000'000'000);
  EXPECT_EQ(*ParseMoment("-1000", now), -1000);  // a negative ns count, not relative
  EXPECT_EQ(*ParseMoment("2026-11-23T10:00:00Z", now), *ParseTime("2026-11-23T10:00:00Z"));
  EXPECT_FALSE(ParseMoment("-15x", now).ok());
  EXPECT_FALSE(ParseMoment("yesterday", now).ok());
  EXPECT_EQ(MakeWindow("now", "-1s", "*", {}).status().code(), Status::Code::kInvalidArgument);
}

TEST(WindowReaderTest, ReadsExactlyTheWindowInLogOrderWithRobotAndTypeFilters) {
  TempDir dir;
  auto log = std::move(eventstore::EventLog::Open(dir.path()).value());
  Append(*log, "a1", {Registered("a1", "")});
  Tick();
  const TimeNs from = Append(*log, "a1", {Joints(1)});
  Tick();
  Append(*log, "b1", {Registered("b1", ""), Joints(2)});
  Tick();
  const TimeNs to = Append(*log, "a1", {Joints(3)});
  Tick();
  Append(*log, "a1", {Joints(4)});
  ASSERT_TRUE(log->Append({"other", ExpectedVersion::Any(), {Joints(5)}}).ok());

  auto read = [&](Window w) {
    WindowReader reader(*log, w);
    EXPECT_TRUE(reader.Open().ok());
    std::vector<std::pair<uint64_t, std::string>> got;
    while (!reader.done()) {
      auto page = reader.Next(2);  // small pages: the page boundary must not matter
      EXPECT_TRUE(page.ok());
      for (const auto& e : *page) got.emplace_back(e.position(), std::string(e.stream()));
    }
    return got;
  };
  Window all{from, to, "*", {}};
  using P = std::vector<std::pair<uint64_t, std::string>>;
  EXPECT_EQ(read(all), (P{{1, "robot-a1"}, {2, "robot-b1"}, {3, "robot-b1"}, {4, "robot-a1"}}));
  EXPECT_EQ(read({from, to, "a*", {}}), (P{{1, "robot-a1"}, {4, "robot-a1"}}));
  EXPECT_EQ(read({from, to, "*", {"RobotRegistered"}}), (P{{2, "robot-b1"}}));
  // Other streams only when every robot is admitted.
  EXPECT_EQ(read({0, eventstore::kTimeMax, "*", {}}).size(), 7u);
  EXPECT_EQ(read({0, eventstore::kTimeMax, "a1", {}}).size(), 4u);
  EXPECT_TRUE(read({to + 1'000'000'000, eventstore::kTimeMax, "*", {}}).empty());
}

// Threads of this process now.
size_t ThreadCount() {
  size_t n = 0;
  if (DIR* d = ::opendir("/proc/self/task")) {
    while (const dirent* e = ::readdir(d)) n += e->d_name[0] != '.' ? 1 : 0;
    ::closedir(d);
  }
  return n;
}

TEST(ReadAheadTest, ManyReadersOnOnePoolReadWhatTheirOwnThreadsReadWithTwoThreads) {
  TempDir dir;
  auto log = std::move(eventstore::EventLog::Open(dir.path()).value());
  for (int i = 0; i < 300; ++i) {
    Append(*log, i % 3 == 0 ? "a1" : "b1", {Joints(i), Joints(-i)});
  }
  const Window all{0, eventstore::kTimeMax, "*", {}};
  auto drain = [](ReadAhead& r) {
    std::vector<uint64_t> positions;
    EXPECT_TRUE(r.Open().ok());
    while (!r.done()) {
      auto page = r.Next();
      EXPECT_TRUE(page.ok());
      for (const auto& e : *page) positions.push_back(e.position());
    }
    return positions;
  };
  ReadAhead own(*log, all, {.page_events = 7, .max_pages = 3, .pool = nullptr});
  const std::vector<uint64_t> expected = drain(own);
  ASSERT_EQ(expected.size(), 600u);

  auto pool = std::make_shared<ReadAheadPool>(2);
  const size_t threads_before = ThreadCount();
  std::vector<std::unique_ptr<ReadAhead>> readers;
  for (int i = 0; i < 40; ++i) {
    readers.push_back(std::make_unique<ReadAhead>(
        *log, all, ReadAheadOptions{.page_events = 7, .max_pages = 2, .pool = pool}));
    ASSERT_TRUE(readers.back()->Open().ok());
  }
  EXPECT_EQ(ThreadCount(), threads_before);  // forty readers, no thread of their own
  // Half are read to the end, taking turns; the other half are dropped part-way, with jobs
  // queued or running, which must neither hang nor touch a reader that is gone.
  for (int i = 0; i < 40; ++i) {
    if (i % 2 == 0) {
      std::vector<uint64_t> got;
      while (!readers[i]->done()) {
        auto page = readers[i]->Next();
        ASSERT_TRUE(page.ok());
        for (const auto& e : *page) got.push_back(e.position());
      }
      EXPECT_EQ(got, expected) << "reader " << i;
    } else {
      auto page = readers[i]->Next();
      ASSERT_TRUE(page.ok());
      readers[i].reset();
    }
  }
  readers.clear();
  // The pool outlives its users' handles safely, and a last reader can be read alone.
  ReadAhead last(*log, {0, eventstore::kTimeMax, "a1", {}},
                 {.page_events = 5, .max_pages = 1, .pool = pool});
  EXPECT_EQ(drain(last).size(), 200u);
}

TEST(FleetStateTest, FoldedFleetAtTEqualsStateAtTOfEachRobotAndCarriesForward) {
  TempDir dir;
  auto log = std::move(eventstore::EventLog::Open(dir.path()).value());
  Append(*log, "arm", {Registered("arm", "doppel_arm6"), Joints(0.1)});
  Append(*log, "gen", {Registered("gen", ""), Joints(0.2)});
  Tick();
  Append(*log, "arm", {Joints(0.3)});
  Tick();
  const TimeNs t = WallNowNs();
  Tick();
  Append(*log, "arm", {Joints(0.4)});
  Append(*log, "late", {Registered("late", "")});  // no events by t

  auto fleet = FleetState::At(*log, Window{}, t);
  ASSERT_TRUE(fleet.ok()) << fleet.status().ToString();
  ASSERT_EQ(fleet->robots().size(), 2u);
  for (const char* robot : {"arm", "gen"}) {
    // `doppel state --at t`, less what it adds about the moment of asking.
    auto report = twins::StateReport(*log, robot, t);
    ASSERT_TRUE(report.ok());
    for (const char* extra : {"at", "staleness_s", "link_positions"}) report->erase(extra);
    EXPECT_EQ(twins::StateJson(fleet->Find(robot)->state), *report) << robot;
  }
  EXPECT_EQ(fleet->Find("arm")->state.joint_position[0], 0.3);
  EXPECT_NE(fleet->Find("arm")->model, nullptr);  // a built-in model: kinematics
  EXPECT_EQ(fleet->Find("gen")->model, nullptr);

  // Carried forward over the rest of the log, it reaches the state now.
  WindowReader reader(*log, Window{t + 1, eventstore::kTimeMax, "*", {}});
  ASSERT_TRUE(reader.Open().ok());
  while (!reader.done()) {
    auto page = reader.Next();
    ASSERT_TRUE(page.ok());
    for (const auto& e : *page) fleet->Apply(e);
  }
  for (const char* robot : {"arm", "gen", "late"}) {
    auto now = twins::RebuildAt(*log, robot);
    ASSERT_TRUE(now.ok());
    ASSERT_NE(fleet->Find(robot), nullptr) << robot;
    EXPECT_EQ(twins::StateJson(fleet->Find(robot)->state), twins::StateJson(now->state)) << robot;
  }
  EXPECT_EQ(fleet->Find("late")->model, nullptr);
}

// The state of `robot` at `t` folded from its first event, no snapshot involved.
twins::RobotState FoldFromScratch(const eventstore::EventLog& log, const std::string& robot,
                                  TimeNs t) {
  const twins::RobotModel generic = twins::RobotModel::Generic("generic", {});
  schemas::Upcasters upcasters;
  twins::RobotState state;
  state.robot_id = robot;
  auto page = log.ReadStream("robot-" + robot, 0, eventstore::Direction::kForward, 100000);
  EXPECT_TRUE(page.ok());
  for (const auto& e : page->events) {
    if (e.recorded_ns() > t) break;
    twins::Apply(state, e, generic, upcasters);
  }
  return state;
}

TEST(FleetStateTest, SnapshotHistoryScanAndOwnStreamsGiveTheFoldFromScratch) {
  // 80 robots (enough for the fold to use its worker threads), each snapshotted every 7 of
  // its events as a twin would, except five that never are (they read their own streams
  // while the rest come from one scan of the log).
  TempDir dir;
  auto log = std::move(eventstore::EventLog::Open(dir.path()).value());
  constexpr int kRobots = 80;
  const twins::RobotModel generic = twins::RobotModel::Generic("generic", {});
  schemas::Upcasters upcasters;
  std::vector<twins::RobotState> live(kRobots);
  std::vector<TimeNs> moments;
  auto append = [&](int r, NewEvent e) {
    const std::string robot = fmt::format("r{}", r);
    auto a = log->Append({"robot-" + robot, ExpectedVersion::Any(), {std::move(e)}});
    ASSERT_TRUE(a.ok());
    auto page =
        log->ReadStream("robot-" + robot, a->first_version, eventstore::Direction::kForward, 1);
    ASSERT_TRUE(page.ok() && page->events.size() == 1u);
    twins::Apply(live[r], page->events[0], generic, upcasters);
    if (r >= 5 && (a->first_version + r) % 7 == 0) {
      ASSERT_TRUE(log->SaveSnapshot({"robot-" + robot, a->first_version,
                                     twins::kSnapshotSchemaVersion, 0, twins::EncodeState(live[r])})
                      .ok());
    }
  };
  for (int r = 0; r < kRobots; ++r) {
    live[r].robot_id = fmt::format("r{}", r);
    append(r, Registered(live[r].robot_id, ""));
  }
  for (int round = 0; round < 30; ++round) {
    for (int r = 0; r < kRobots; ++r) {
      if (r % 10 == 3 && round > 10) continue;  // some robots go quiet
      append(r, Joints(round + r * 0.001));
    }
    if (round % 6 == 2) {
      Tick();
      moments.push_back(WallNowNs());
      Tick();
    }
  }
  for (TimeNs t : moments) {
    auto fleet = FleetState::At(*log, Window{}, t);
    ASSERT_TRUE(fleet.ok()) << fleet.status().ToString();
    ASSERT_EQ(fleet->robots().size(), static_cast<size_t>(kRobots));
    for (int r = 0; r < kRobots; ++r) {
      const std::string robot = fmt::format("r{}", r);
      ASSERT_NE(fleet->Find(robot), nullptr) << robot;
      EXPECT_EQ(twins::StateJson(fleet->Find(robot)->state),
                twins::StateJson(FoldFromScratch(*log, robot, t)))
          << robot << " at moment " << t;
    }
  }
  // Before anything was recorded: no robot.
  auto before = FleetState::At(*log, Window{}, moments.front() - 3'600'000'000'000);
  ASSERT_TRUE(before.ok());
  EXPECT_TRUE(before->robots().empty());
}

TEST(IncidentReportTest, EntriesAroundTheMomentInTimeOrderWithRoutineRunsSummarised) {
  TempDir dir;
  auto log = std::move(eventstore::EventLog::Open(dir.path()).value());
  Append(*log, "r", {Registered("r", ""), Joints(0.1)});
  Tick();
  Append(*log, "r", {Joints(0.2), Joints(0.3)});
  Tick();
  const TimeNs at = WallNowNs();
  ros2::Twist twist;
  twist.linear.x = 0.5;
  NewEvent command;
  command.type = "CommandIssued";
  command.payload = ros2::CommandIssuedPayload(twist, "operator:ana");
  ros2::DiagnosticsFaults faults;
  ros2::DiagnosticArray d;
  d.status.push_back({ros2::DiagnosticStatus::kError, "motor", "hot", "", {}});
  auto raised = faults.Apply(d, WallNowNs());
  Append(*log, "r", {command, (*raised)[0], Joints(0.4)});

  auto report = IncidentReport(*log, {"r", at, 10'000'000'000});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  std::vector<std::string> kinds;
  for (const auto& e : (*report)["entries"]) kinds.push_back(e["kind"]);
  EXPECT_EQ(kinds, (std::vector<std::string>{"registered", "observations", "command", "fault",
                                             "observations"}));
  EXPECT_EQ((*report)["entries"][1]["joint_states"], 3);  // three joint states before the command
  EXPECT_EQ((*report)["entries"][2]["payload"]["issued_by"], "operator:ana");
  EXPECT_TRUE((*report)["state_before"].is_null());  // the robot did not exist 5 s before
  const std::string text = IncidentText(*report);
  EXPECT_NE(text.find("CommandIssued"), std::string::npos);
  EXPECT_NE(text.find("routine"), std::string::npos);
  EXPECT_EQ(IncidentReport(*log, {"nobody", at, 1'000'000'000}).status().code(),
            Status::Code::kNotFound);
}

}  // namespace
}  // namespace doppel::replay
