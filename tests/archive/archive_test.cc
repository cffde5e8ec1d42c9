// MCAP export and import through the library: the opening state of an export, a round trip
// that keeps every observation, and files whose schema says something doppel would misread.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "doppel/archive/mcap_export.h"
#include "doppel/archive/mcap_import.h"
#include "doppel/archive/output_file.h"
#include "doppel/eventstore/event_log.h"
#include "doppel/mcap/reader.h"
#include "doppel/mcap/writer.h"
#include "doppel/ros2/message_definitions.h"
#include "doppel/ros2/messages.h"
#include "doppel/ros2/observations.h"
#include "test_support.h"

namespace doppel::archive {
namespace {

using eventstore::ExpectedVersion;
using testing::TempDir;

eventstore::NewEvent Joints(double q) {
  ros2::JointState js;
  js.name = {"j1", "j2"};
  js.position = {q, 2 * q};
  eventstore::NewEvent e;
  e.type = "JointStateObserved";
  e.payload = ros2::JointStateObservedPayload(js);
  e.occurred_ns = WallNowNs();
  return e;
}

uint64_t CountEvents(const eventstore::EventStore& store) {
  auto page = store.ReadAll(0, 100000);
  return page.ok() ? page->events.size() : 0;
}

// Messages per topic of a file, read front to back.
std::map<std::string, std::vector<mcap::Message>> Messages(const std::string& file) {
  std::map<uint16_t, std::string> topics;
  std::map<std::string, std::vector<mcap::Message>> out;
  Status s = mcap::ScanFile(file, [&](const mcap::RecordRef& r) {
    if (r.opcode == mcap::Opcode::kChannel) {
      auto c = mcap::DecodeChannel(r.body);
      topics[c->id] = c->topic;
    } else if (r.opcode == mcap::Opcode::kMessage) {
      auto m = mcap::DecodeMessage(r.body);
      out[topics[m->channel_id]].push_back(*m);
    }
    return Status::Ok();
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

TEST(ArchiveTest, ExportOpensWithTheLastObservationBeforeTheWindowAndRoundTripsThroughImport) {
  TempDir dir;
  auto log = std::move(eventstore::EventLog::Open(dir.Sub("a")).value());
  ASSERT_TRUE(log->Append({"robot-r1", ExpectedVersion::Any(), {Joints(1), Joints(2)}}).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const TimeNs from = WallNowNs();
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto in_window = log->Append({"robot-r1", ExpectedVersion::Any(), {Joints(3)}});
  ASSERT_TRUE(in_window.ok());

  ExportOptions o;
  o.window.from = from;
  o.out = dir.Sub("w.mcap");
  auto report = ExportMcap(*log, o);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->events, 1u);
  EXPECT_GT(report->latched, 0u);
  auto messages = Messages(o.out);
  ASSERT_EQ(messages["/r1/joint_states"].size(), 2u);  // the latched one, then the window's
  ros2::JointState latched, window;
  ASSERT_TRUE(ros2::Decode(messages["/r1/joint_states"][0].data, latched).ok());
  ASSERT_TRUE(ros2::Decode(messages["/r1/joint_states"][1].data, window).ok());
  EXPECT_EQ(latched.position, (std::vector<double>{2, 4}));
  EXPECT_LT(messages["/r1/joint_states"][0].log_time, static_cast<uint64_t>(from));
  EXPECT_EQ(window.position, (std::vector<double>{3, 6}));
  EXPECT_EQ(messages["/r1/joint_states"][1].log_time,
            static_cast<uint64_t>(in_window->recorded_ns));
  EXPECT_EQ(messages["/doppel/events"].size(), 1u);

  // The whole history out, into an empty store, out again: the same robot messages.
  o.window.from = 0;
  o.out = dir.Sub("all.mcap");
  ASSERT_TRUE(ExportMcap(*log, o).ok());
  auto copy = std::move(eventstore::EventLog::Open(dir.Sub("b")).value());
  ImportOptions io;
  io.file = o.out;
  auto imported = ImportMcap(*copy, io);
  ASSERT_TRUE(imported.ok()) << imported.status().ToString();
  EXPECT_EQ(imported->appended, 4u);  // a registration and three observations
  EXPECT_GT(imported->skipped_types["doppel.Event"], 0u);
  auto again = ImportMcap(*copy, io);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->appended, 0u);
  EXPECT_EQ(again->duplicates, 3u);
  o.out = dir.Sub("copy.mcap");
  ASSERT_TRUE(ExportMcap(*copy, o).ok());
  auto a = Messages(dir.Sub("all.mcap"))["/r1/joint_states"];
  auto b = Messages(o.out)["/r1/joint_states"];
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].data, b[i].data) << i;
}

TEST(ArchiveTest, ASchemaThatDoesNotDefineWhatDoppelDecodesIsRefusedWithItsOffset) {
  TempDir dir;
  const std::string file = dir.Sub("odd.mcap");
  {
    mcap::WriterOptions wo;
    wo.profile = "ros2";
    auto w = std::move(mcap::Writer::Open(file, wo).value());
    // A JointState whose fields are not ROS's (a vendor's fork): decoding it as ROS's would
    // turn its bytes into wrong values.
    const uint16_t schema = w->AddSchema("sensor_msgs/msg/JointState", "ros2msg",
                                         "std_msgs/Header header\nfloat32[] position\n");
    const uint16_t channel = w->AddChannel(schema, "/r9/joint_states", "cdr", {});
    ros2::CdrWriter cdr;
    ros2::Encode(ros2::JointState{}, cdr);
    ASSERT_TRUE(w->WriteMessage(channel, 1, 1, 1, cdr.bytes()).ok());
    ASSERT_TRUE(w->Close().ok());
  }
  auto log = std::move(eventstore::EventLog::Open(dir.Sub("s")).value());
  ImportOptions io;
  io.file = file;
  auto r = ImportMcap(*log, io);
  ASSERT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("schema 1 'sensor_msgs/msg/JointState' at offset"),
            std::string::npos)
      << r.status().message();
  EXPECT_EQ(CountEvents(*log), 0u);
}

TEST(ArchiveTest, ExportOfAnEmptyWindowIsAValidFileWithProvenance) {
  TempDir dir;
  auto log = std::move(eventstore::EventLog::Open(dir.Sub("a")).value());
  ExportOptions o;
  o.window.from = WallNowNs();
  o.out = dir.Sub("empty.mcap");
  auto report = ExportMcap(*log, o);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->events, 0u);
  auto summary = mcap::ReadSummary(o.out);
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  EXPECT_EQ(summary->header.profile, "ros2");
  ASSERT_EQ(summary->metadata_indexes.size(), 1u);
  EXPECT_EQ(summary->metadata_indexes[0].name, "doppel.export");
  // A failed export leaves no file under the name asked for.
  o.out = dir.Sub("no/such/dir/x.mcap");
  EXPECT_FALSE(ExportMcap(*log, o).ok());
}

// A file with one JointState message on `topic`.
void WriteJointStateFile(const std::string& file, const std::string& topic) {
  mcap::WriterOptions wo;
  wo.profile = "ros2";
  wo.compression = mcap::Compression::kNone;  // what is tested is the topic, not the codec
  auto w = std::move(mcap::Writer::Open(file, wo).value());
  const uint16_t schema =
      w->AddSchema("sensor_msgs/msg/JointState", "ros2msg",
                   ros2::Ros2MsgDefinition("sensor_msgs/msg/JointState").value());
  const uint16_t channel = w->AddChannel(schema, topic, "cdr", {});
  ros2::JointState js;
  js.name = {"j1"};
  js.position = {1};
  js.header.stamp = ros2::ToRosTime(WallNowNs());
  ros2::CdrWriter cdr;
  ros2::Encode(js, cdr);
  ASSERT_TRUE(w->WriteMessage(channel, 1, 1, 1, cdr.bytes()).ok());
  ASSERT_TRUE(w->Close().ok());
}

// Topics come from the file: a pattern over them must not recurse per character (std::regex
// overflowed the stack on this one) nor take more than linear time.
TEST(ArchiveTest, ARobotPatternOverAHugeTopicNeitherCrashesNorStalls) {
  TempDir dir;
  const std::string file = dir.Sub("long.mcap");
  const std::string topic = "/fleet/" + std::string(200'000, 'a');
  WriteJointStateFile(file, topic);
  auto log = std::move(eventstore::EventLog::Open(dir.Sub("s")).value());
  ImportOptions io;
  io.file = file;
  io.robot_from_topic = "^/fleet/([^/]+)/";  // no '/' after the robot: no match
  auto r = ImportMcap(*log, io);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->unmapped_topics[topic], 1u);
  EXPECT_EQ(r->appended, 0u);
  // The default "/<robot>/<leaf>" over the same topic: robot "fleet".
  io.robot_from_topic.clear();
  r = ImportMcap(*log, io);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->robots, (std::set<std::string>{"fleet"}));
  EXPECT_EQ(r->appended, 2u);  // the registration and the observation
}

TEST(ArchiveTest, ARobotPatternRe2RefusesIsInvalidArgumentWithItsReason) {
  TempDir dir;
  const std::string file = dir.Sub("f.mcap");
  WriteJointStateFile(file, "/fleet/r1/joint_states");
  auto log = std::move(eventstore::EventLog::Open(dir.Sub("s")).value());
  ImportOptions io;
  io.file = file;
  io.robot_from_topic = "^/fleet/(?=x)([^/]+)/";  // lookahead: not RE2 syntax
  auto r = ImportMcap(*log, io);
  ASSERT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("RE2"), std::string::npos) << r.status().message();
  io.robot_from_topic = "^/fleet/[^/]+/";  // no group
  EXPECT_EQ(ImportMcap(*log, io).status().code(), Status::Code::kInvalidArgument);
  io.robot_from_topic = "^/fleet/([^/]+)/";
  r = ImportMcap(*log, io);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->robots, (std::set<std::string>{"r1"}));
}

std::string Contents(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

mode_t TypeOf(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 ? (st.st_mode & S_IFMT) : 0;
}

// `--out P` is written as P.partial renamed over P: only a regular file (or nothing) at P may be
// replaced. Anything else is refused, untouched, with its kind named.
TEST(ArchiveTest, ExportReplacesOnlyARegularFileAndNeverFollowsALink) {
  TempDir dir;
  auto log = std::move(eventstore::EventLog::Open(dir.Sub("a")).value());
  ASSERT_TRUE(log->Append({"robot-r1", ExpectedVersion::Any(), {Joints(1)}}).ok());
  ExportOptions o;
  o.window.from = 0;
  o.compression = mcap::Compression::kNone;  // what is tested is the path, not the codec
  const std::string victim = dir.Sub("victim");
  std::ofstream(victim) << "keep me";

  auto refused = [&](const std::string& out, const std::string& kind) {
    o.out = out;
    auto r = ExportMcap(*log, o);
    ASSERT_EQ(r.status().code(), Status::Code::kInvalidArgument)
        << out << ": " << r.status().ToString();
    EXPECT_NE(r.status().message().find(kind), std::string::npos) << r.status().message();
  };
  // A symbolic link: neither it nor its target changes.
  ASSERT_EQ(::symlink(victim.c_str(), dir.Sub("link.mcap").c_str()), 0);
  refused(dir.Sub("link.mcap"), "symbolic link");
  EXPECT_EQ(TypeOf(dir.Sub("link.mcap")), S_IFLNK);
  EXPECT_EQ(Contents(victim), "keep me");
  // A FIFO (what /dev/null or /dev/full are to this rule: not a regular file).
  ASSERT_EQ(::mkfifo(dir.Sub("fifo.mcap").c_str(), 0600), 0);
  refused(dir.Sub("fifo.mcap"), "FIFO");
  EXPECT_EQ(TypeOf(dir.Sub("fifo.mcap")), S_IFIFO);
  // A directory, and a socket.
  ASSERT_EQ(::mkdir(dir.Sub("dir.mcap").c_str(), 0700), 0);
  refused(dir.Sub("dir.mcap"), "directory");
  EXPECT_EQ(TypeOf(dir.Sub("dir.mcap")), S_IFDIR);
  {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string sock = dir.Sub("sock.mcap");
    ASSERT_LT(sock.size(), sizeof(addr.sun_path));
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", sock.c_str());
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ::close(fd);
    refused(sock, "socket");
    EXPECT_EQ(TypeOf(sock), S_IFSOCK);
  }
  // A link planted at P.partial: not written through, and P not created.
  ASSERT_EQ(::symlink(victim.c_str(), dir.Sub("p.mcap.partial").c_str()), 0);
  refused(dir.Sub("p.mcap"), "symbolic link");
  EXPECT_EQ(Contents(victim), "keep me");
  EXPECT_EQ(TypeOf(dir.Sub("p.mcap.partial")), S_IFLNK);
  EXPECT_EQ(TypeOf(dir.Sub("p.mcap")), 0u);
  // Refused paths leave no .partial behind.
  for (const char* name : {"link.mcap", "fifo.mcap", "dir.mcap", "sock.mcap"}) {
    EXPECT_EQ(TypeOf(dir.Sub(std::string(name) + ".partial")), 0u) << name;
  }

  // A new path, then over that regular file (and over a stale regular .partial): written.
  o.out = dir.Sub("new.mcap");
  auto r = ExportMcap(*log, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Messages(o.out)["/r1/joint_states"].size(), 1u);
  std::ofstream(o.out + ".partial") << "a crashed export's";
  std::ofstream(o.out, std::ios::app) << "old bytes";
  r = ExportMcap(*log, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(TypeOf(o.out), S_IFREG);
  EXPECT_EQ(Messages(o.out)["/r1/joint_states"].size(), 1u);
  EXPECT_EQ(TypeOf(o.out + ".partial"), 0u);
}

}  // namespace
}  // namespace doppel::archive
