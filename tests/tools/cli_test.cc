// The doppel CLI as scripts use it: real processes, exit codes, output shapes, bad input,
// and real disks that are full or read-only (small tmpfs mounts; needs root).
#include <gtest/gtest.h>
#include <sys/mount.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test_support.h"

namespace doppel::tools {
namespace {

using testing::RunDoppel;
using testing::TempDir;

TEST(CliTest, AppendPrintsWhereTheEventWentAndReadShowsIt) {
  TempDir dir;
  auto r = RunDoppel({"append", "--data", dir.path(), "--stream", "robot-7", "--type",
                      "JointStateObserved", "--expect", "none", "--json",
                      R"({"names":["j1","j2"],"position":[0.5,1.5]})"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto line = nlohmann::json::parse(r.out);
  EXPECT_EQ(line["stream"], "robot-7");
  EXPECT_EQ(line["version"], 0);
  EXPECT_EQ(line["position"], 0);

  r = RunDoppel({"read", "--data", dir.path(), "--format", "jsonl"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto event = nlohmann::json::parse(r.out);
  EXPECT_EQ(event["position"], 0);
  EXPECT_EQ(event["stream"], "robot-7");
  EXPECT_EQ(event["type"], "JointStateObserved");
  EXPECT_EQ(event["payload"]["position"][1], 1.5);
  EXPECT_EQ(event["id"], line["id"]);
  EXPECT_GT(event["recorded_ns"].get<int64_t>(), 0);

  r = RunDoppel({"read", "--data", dir.path(), "--stream", "robot-7", "--format", "table"});
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("JointStateObserved"), std::string::npos);
  EXPECT_EQ(RunDoppel({"verify", "--data", dir.path()}).exit_code, 0);
}

TEST(CliTest, ConflictExitsThreeAndRetryIsIdempotent) {
  TempDir dir;
  const std::vector<std::string> append = {"append",
                                           "--data",
                                           dir.path(),
                                           "--stream",
                                           "robot-1",
                                           "--type",
                                           "ModeChanged",
                                           "--id",
                                           "6f1c2a7e-3b0d-4a8e-9c55-0a1b2c3d4e5f",
                                           "--expect",
                                           "none",
                                           "--json",
                                           R"({"mode":"Autonomous"})"};
  auto first = RunDoppel(append);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  auto retry = RunDoppel(append);
  ASSERT_EQ(retry.exit_code, 0) << retry.err;
  EXPECT_EQ(nlohmann::json::parse(retry.out)["position"], 0);
  EXPECT_EQ(nlohmann::json::parse(retry.out)["duplicate"], true);

  auto conflict = RunDoppel({"append", "--data", dir.path(), "--stream", "robot-1", "--type",
                             "ModeChanged", "--expect", "5", "--json", R"({"mode":"Idle"})"});
  EXPECT_EQ(conflict.exit_code, 3);
  EXPECT_NE(conflict.err.find("expected version 5"), std::string::npos) << conflict.err;

  auto reuse =
      RunDoppel({"append", "--data", dir.path(), "--stream", "robot-1", "--type", "ModeChanged",
                 "--id", "6f1c2a7e-3b0d-4a8e-9c55-0a1b2c3d4e5f", "--json", R"({"mode":"Idle"})"});
  EXPECT_EQ(reuse.exit_code, 4);
  EXPECT_NE(reuse.err.find("idempotency"), std::string::npos) << reuse.err;
}

// A script that reads events as JSON and appends them again (a copy to another store, or a
// retry with the same id) writes the very payload bytes: every double is printed exactly.
TEST(CliTest, JsonReadBackAppendsTheSamePayloadBytes) {
  struct Appended {
    std::string type, id, json;
  };
  const Appended kEvents[] = {
      {"JointStateObserved", "1b4e28ba-2fa1-4d2b-883f-0016d3cca427",
       R"({"names":["a","b","c","d","e","f","g","h"],"position":[0.9826091903856943,0.1,)"
       R"(5e-324,1.7976931348623157e308,-0.0,1e-13,2.2250738585072009e-308,-123456.78901234567]})"},
      {"PoseObserved", "2c5f39cb-3ab2-4e3c-994a-1127e4ddb538",
       R"({"frame_id":"odom","pose":{"position":{"x":1.0000000000000002,"y":-0.3333333333333333,)"
       R"("z":1e-9},"orientation":{"x":0,"y":0,"z":0.7071067811865476,"w":0.7071067811865476}}})"},
      {"PredictionAlert", "3d604adc-4bc3-4f4d-aa5b-2238f5eec649",
       R"({"kind":"PredictedJointLimit","link":"j1","value":3.1415926535897931,)"
       R"("limit":2.9670597283903604})"},
  };
  TempDir a, b;
  for (const Appended& e : kEvents) {
    auto r = RunDoppel({"append", "--data", a.path(), "--stream", "robot-7", "--type", e.type,
                        "--id", e.id, "--json", e.json});
    ASSERT_EQ(r.exit_code, 0) << e.json << "\n" << r.err;
  }
  // Each jsonl line ends with the payload: `..."payload":{...}}`.
  auto payloads = [](const std::string& jsonl) {
    std::vector<std::string> out;
    std::istringstream lines(jsonl);
    for (std::string line; std::getline(lines, line);) {
      constexpr std::string_view kTag = ",\"payload\":";
      const size_t at = line.find(kTag);
      if (at == std::string::npos || line.back() != '}') {
        ADD_FAILURE() << "no payload at the end of " << line;
        continue;
      }
      const size_t from = at + kTag.size();
      out.push_back(line.substr(from, line.size() - 1 - from));
    }
    return out;
  };
  auto read_a = RunDoppel({"read", "--data", a.path(), "--format", "jsonl"});
  ASSERT_EQ(read_a.exit_code, 0) << read_a.err;
  const std::vector<std::string> from_a = payloads(read_a.out);
  ASSERT_EQ(from_a.size(), std::size(kEvents)) << read_a.out;

  for (size_t i = 0; i < std::size(kEvents); ++i) {
    const Appended& e = kEvents[i];
    // The retry with the same id: the log compares the payload bytes with what it stored.
    auto retry = RunDoppel({"append", "--data", a.path(), "--stream", "robot-7", "--type", e.type,
                            "--id", e.id, "--json", from_a[i]});
    ASSERT_EQ(retry.exit_code, 0) << from_a[i] << "\n" << retry.err;
    EXPECT_EQ(nlohmann::json::parse(retry.out)["duplicate"], true) << retry.out;
    auto copy = RunDoppel({"append", "--data", b.path(), "--stream", "robot-7", "--type", e.type,
                           "--id", e.id, "--json", from_a[i]});
    ASSERT_EQ(copy.exit_code, 0) << from_a[i] << "\n" << copy.err;
  }
  auto read_b = RunDoppel({"read", "--data", b.path(), "--format", "jsonl"});
  ASSERT_EQ(read_b.exit_code, 0) << read_b.err;
  EXPECT_EQ(payloads(read_b.out), from_a);
  // Same events, by id, in the same order.
  auto ids = [](const std::string& jsonl) {
    std::vector<std::string> out;
    std::istringstream lines(jsonl);
    for (std::string line; std::getline(lines, line);) {
      out.push_back(nlohmann::json::parse(line)["id"].get<std::string>());
    }
    return out;
  };
  const std::vector<std::string> want = {kEvents[0].id, kEvents[1].id, kEvents[2].id};
  EXPECT_EQ(ids(read_a.out), want);
  EXPECT_EQ(ids(read_b.out), want);
  // The text is the shortest that reads back to each value (a -0.0 in a vector stays one).
  EXPECT_EQ(from_a[0],
            R"({"names": ["a","b","c","d","e","f","g","h"],"position": [0.9826091903856943,0.1,)"
            R"(5e-324,1.7976931348623157e+308,-0.0,1e-13,2.225073858507201e-308,)"
            R"(-123456.78901234567]})");
}

TEST(CliTest, BadInputIsAClearErrorAndWritesNothing) {
  TempDir dir;
  const std::string data = dir.path();
  ASSERT_EQ(RunDoppel({"append", "--data", data, "--stream", "robot-1", "--type", "ModeChanged",
                       "--json", R"({"mode":"Idle"})"})
                .exit_code,
            0);
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--type", "ModeChanged", "--json", R"({"mode": "Idle",)"}, "payload JSON"},
      {{"--type", "ModeChanged", "--json", "not json"}, "payload JSON"},
      {{"--type", "Teleported", "--json", "{}"}, "unknown event type 'Teleported'"},
      {{"--type", "ModeChanged", "--id", "not-a-uuid", "--json", "{}"}, "bad UUID"},
      {{"--type", "ModeChanged", "--expect", "soon", "--json", "{}"}, "bad expected version"},
      {{"--type", "ModeChanged", "--occurred", "yesterday", "--json", "{}"}, "bad time"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"append", "--data", data, "--stream", "robot-1"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    auto r = RunDoppel(args);
    EXPECT_NE(r.exit_code, 0) << c.message;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << "stderr: " << r.err;
  }
  auto bad_stream = RunDoppel(
      {"append", "--data", data, "--stream", "$all", "--type", "ModeChanged", "--json", "{}"});
  EXPECT_NE(bad_stream.exit_code, 0);
  EXPECT_NE(bad_stream.err.find("reserved"), std::string::npos);
  // Nothing was written by the failures.
  auto read = RunDoppel({"read", "--data", data});
  EXPECT_EQ(std::count(read.out.begin(), read.out.end(), '\n'), 1);
  EXPECT_EQ(RunDoppel({"verify", "--data", data}).exit_code, 0);
  // Unknown flags and missing arguments are usage errors.
  EXPECT_EQ(RunDoppel({"append", "--data", data}).exit_code, 2);
  EXPECT_EQ(RunDoppel({"read", "--data", data, "--bogus"}).exit_code, 2);
}

TEST(CliTest, OutOfRangeRetentionAndTimesAreUsageErrors) {
  TempDir dir;
  const std::string data = dir.path();
  ASSERT_EQ(RunDoppel({"append", "--data", data, "--stream", "robot-1", "--type", "ModeChanged",
                       "--json", R"({"mode":"Idle"})"})
                .exit_code,
            0);
  // 213504d used to be stored as 25 minutes.
  auto age =
      RunDoppel({"stream-meta", "--data", data, "--stream", "robot-1", "--max-age", "213504d"});
  EXPECT_EQ(age.exit_code, 2);
  EXPECT_NE(age.err.find("292 years"), std::string::npos) << age.err;
  auto junk = RunDoppel({"stream-meta", "--data", data, "--stream", "robot-1", "--max-age", "7dx"});
  EXPECT_EQ(junk.exit_code, 2);
  EXPECT_NE(junk.err.find("bad duration"), std::string::npos) << junk.err;
  auto meta = RunDoppel({"stream-meta", "--data", data, "--stream", "robot-1"});
  EXPECT_EQ(meta.exit_code, 0);
  EXPECT_NE(meta.out.find("\"max_age_ns\":0"), std::string::npos) << meta.out;
  for (const char* t : {"0000-01-01", "9999-12-31T23:59:59Z"}) {
    auto read = RunDoppel({"read", "--data", data, "--since", t});
    EXPECT_EQ(read.exit_code, 2) << t;
    EXPECT_NE(read.err.find("out of range"), std::string::npos) << read.err;
    read = RunDoppel({"read", "--data", data, "--until", t});
    EXPECT_EQ(read.exit_code, 2) << t;
  }
  // The largest count is "keep everything", not "keep only version 0".
  ASSERT_EQ(RunDoppel({"append", "--data", data, "--stream", "robot-1", "--type", "ModeChanged",
                       "--json", R"({"mode":"Idle"})"})
                .exit_code,
            0);
  ASSERT_EQ(RunDoppel({"stream-meta", "--data", data, "--stream", "robot-1", "--max-count",
                       "18446744073709551615"})
                .exit_code,
            0);
  auto read = RunDoppel({"read", "--data", data, "--stream", "robot-1"});
  EXPECT_EQ(std::count(read.out.begin(), read.out.end(), '\n'), 2) << read.out;
}

TEST(CliTest, NonDoppelDirectoryIsRefused) {
  TempDir dir;
  { std::ofstream(dir.Sub("thesis.tex")) << "precious"; }
  auto r = RunDoppel({"append", "--data", dir.path(), "--stream", "robot-1", "--type",
                      "ModeChanged", "--json", "{}"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("not a doppel log"), std::string::npos) << r.err;
  EXPECT_TRUE(std::filesystem::exists(dir.Sub("thesis.tex")));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()),
                          std::filesystem::directory_iterator()),
            1);
  EXPECT_NE(RunDoppel({"verify", "--data", dir.Sub("missing")}).exit_code, 0);
}

TEST(CliTest, ReadsByTimeWindow) {
  TempDir dir;
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(RunDoppel({"append", "--data", dir.path(), "--stream", "robot-1", "--type",
                         "ModeChanged", "--json", R"({"mode":"Idle"})"})
                  .exit_code,
              0);
  }
  auto all = RunDoppel({"read", "--data", dir.path()});
  std::vector<int64_t> times;
  std::istringstream lines(all.out);
  for (std::string line; std::getline(lines, line);) {
    times.push_back(nlohmann::json::parse(line)["recorded_ns"].get<int64_t>());
  }
  ASSERT_EQ(times.size(), 3u);
  auto window = RunDoppel({"read", "--data", dir.path(), "--since", std::to_string(times[1]),
                           "--until", std::to_string(times[1])});
  ASSERT_EQ(window.exit_code, 0) << window.err;
  EXPECT_EQ(std::count(window.out.begin(), window.out.end(), '\n'), 1);
  EXPECT_EQ(nlohmann::json::parse(window.out)["version"], 1);
  auto limited = RunDoppel({"read", "--data", dir.path(), "--limit", "2"});
  EXPECT_EQ(std::count(limited.out.begin(), limited.out.end(), '\n'), 2);
}

// A small tmpfs, so "disk full" and "read-only" are real. Skips when mounting is not
// permitted (not root); CI runs as root.
class SmallDisk {
 public:
  explicit SmallDisk(const std::string& path, const char* options) : path_(path) {
    std::filesystem::create_directories(path);
    mounted_ = ::mount("tmpfs", path.c_str(), "tmpfs", 0, options) == 0;
  }
  ~SmallDisk() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  bool Remount(unsigned long flags, const char* options) {
    return ::mount("tmpfs", path_.c_str(), "tmpfs", MS_REMOUNT | flags, options) == 0;
  }

 private:
  std::string path_;
  bool mounted_ = false;
};

TEST(CliTest, FullDiskFailsClearlyAndLosesNothing) {
  TempDir dir;
  SmallDisk disk(dir.Sub("disk"), "size=6m");
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount tmpfs here (needs root)";
  const std::string data = dir.Sub("disk/log");
  const std::string acks = dir.Sub("acks");
  auto r = RunDoppel({"bench", "append", "--data", data, "--clients", "4", "--batch", "20",
                      "--payload-bytes", "2000", "--duration", "30", "--ack-log", acks});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("No space left on device"), std::string::npos) << r.err;
  std::ifstream in(acks);
  size_t acked = 0;
  for (std::string line; std::getline(in, line);) ++acked;
  EXPECT_GT(acked, 0u);

  // Fill what is left, then: another append is refused with a clear error, reads work.
  {
    std::ofstream filler(dir.Sub("disk/filler"), std::ios::binary);
    const std::string block(64 * 1024, 'x');
    while (filler.write(block.data(), block.size())) {
    }
  }
  auto more = RunDoppel(
      {"append", "--data", data, "--stream", "robot-1", "--type", "ModeChanged", "--json", "{}"});
  EXPECT_NE(more.exit_code, 0);
  EXPECT_EQ(more.err.find("Assertion"), std::string::npos) << more.err;
  auto read = RunDoppel({"read", "--data", data, "--limit", "5"});
  EXPECT_EQ(read.exit_code, 0) << read.err;

  // Room again: the log verifies, every acknowledged event is there, appends resume.
  std::filesystem::remove(dir.Sub("disk/filler"));
  ASSERT_TRUE(disk.Remount(0, "size=64m"));
  auto verify = RunDoppel({"verify", "--data", data});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  auto all = RunDoppel({"read", "--data", data});
  EXPECT_GE(static_cast<size_t>(std::count(all.out.begin(), all.out.end(), '\n')), acked);
  EXPECT_EQ(RunDoppel({"append", "--data", data, "--stream", "robot-1", "--type", "ModeChanged",
                       "--json", "{}"})
                .exit_code,
            0);
}

TEST(CliTest, ReadOnlyDiskRefusesAppendsButServesReads) {
  TempDir dir;
  SmallDisk disk(dir.Sub("disk"), "size=64m");
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount tmpfs here (needs root)";
  const std::string data = dir.Sub("disk/log");
  ASSERT_EQ(RunDoppel({"append", "--data", data, "--stream", "robot-1", "--type", "ModeChanged",
                       "--json", R"({"mode":"Idle"})"})
                .exit_code,
            0);
  ASSERT_TRUE(disk.Remount(MS_RDONLY, "size=64m"));
  auto append = RunDoppel(
      {"append", "--data", data, "--stream", "robot-1", "--type", "ModeChanged", "--json", "{}"});
  EXPECT_EQ(append.exit_code, 1);
  EXPECT_NE(append.err.find("Read-only file system"), std::string::npos) << append.err;
  auto read = RunDoppel({"read", "--data", data});
  EXPECT_EQ(read.exit_code, 0) << read.err;
  EXPECT_EQ(std::count(read.out.begin(), read.out.end(), '\n'), 1);
  EXPECT_EQ(RunDoppel({"verify", "--data", data}).exit_code, 0);
}

}  // namespace
}  // namespace doppel::tools
