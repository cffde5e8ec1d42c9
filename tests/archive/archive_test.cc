// MCAP export and import through the library: the opening state of an export, a round trip
// that keeps every observation, and files whose schema says something doppel would misread.
#include <gtest/gtest.h>

#include <thread>

#include "doppel/archive/mcap_export.h"
#include "doppel/archive/mcap_import.h"
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

}  // namespace
}  // namespace doppel::archive
