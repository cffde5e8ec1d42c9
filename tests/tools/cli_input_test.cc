// What the CLI accepts is what every other entry point accepts (findings 2 and 13 of the
// hostile-input campaign): one validation in the log, for embedded and server access alike.
// Refusals exit 2 with the reason; nothing is written.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "test_support.h"

namespace doppel::tools {
namespace {

using testing::RunDoppel;
using testing::TempDir;

struct Case {
  std::string stream, type, json, words;
};

const Case kRefused[] = {
    {"robot-7", "JointStateObserved", R"({"names":["j1"],"position":[nan]})", "NaN or infinite"},
    {"robot-7", "JointStateObserved", R"({"names":["j1"],"position":[inf]})", "NaN or infinite"},
    {"robot-7", "JointStateObserved", R"({"names":["j1","j2"],"position":[1]})", "one per name"},
    {"robot-7", "JointStateObserved", R"({"names":[],"position":[]})", "names is empty"},
    {"robot-7", "CommandIssued",
     R"({"kind":"Velocity","twist":{"linear":{"x":1e200,"y":0,"z":0},"angular":{"x":0,"y":0,"z":1e200}}})",
     "magnitude may be at most"},
    {"robot-7", "PoseObserved",
     R"({"pose":{"position":{"x":0,"y":0,"z":0},"orientation":{"x":0,"y":0,"z":0,"w":nan}}})",
     "NaN or infinite"},
    {"robot-\xff\xfe", "ModeChanged", R"({"mode":"Idle"})", "not valid UTF-8"},
};

void ExpectRefusedAndNothingWritten(const std::vector<std::string>& where) {
  for (const Case& c : kRefused) {
    std::vector<std::string> args = {"append"};
    args.insert(args.end(), where.begin(), where.end());
    args.insert(args.end(), {"--stream", c.stream, "--type", c.type, "--json", c.json});
    auto r = RunDoppel(args);
    EXPECT_EQ(r.exit_code, 2) << c.json << "\n" << r.out << r.err;
    EXPECT_NE(r.err.find(c.words), std::string::npos) << c.json << "\n" << r.err;
  }
  std::vector<std::string> read = {"read"};
  read.insert(read.end(), where.begin(), where.end());
  read.insert(read.end(), {"--format", "jsonl"});
  auto r = RunDoppel(read);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "") << "a refused append wrote something";
  // A good event still goes in.
  std::vector<std::string> good = {"append"};
  good.insert(good.end(), where.begin(), where.end());
  good.insert(good.end(), {"--stream", "robot-7", "--type", "JointStateObserved", "--json",
                           R"({"names":["j1"],"position":[0.5]})"});
  r = RunDoppel(good);
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(CliInputTest, ValuesNoEntryPointAcceptsAreRefusedByAppendOnAnEmbeddedLog) {
  TempDir dir;
  ExpectRefusedAndNothingWritten({"--data", dir.path()});
}

TEST(CliInputTest, ValuesNoEntryPointAcceptsAreRefusedThroughTheStoreServer) {
  TempDir dir;
  auto store = testing::StartStore(dir.Sub("log"));
  ExpectRefusedAndNothingWritten({"--store", store.listen});
}

}  // namespace
}  // namespace doppel::tools
