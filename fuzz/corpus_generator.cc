// Writes the seed corpora of the fuzz targets: small valid inputs made with doppel's own
// encoders (so they track the schemas), plus a few invalid ones near the edges. Run by hand
// after a format changes, and commit the result:
//
//   build/fuzz/fuzz/doppel_fuzz_corpus fuzz
//
// writes fuzz/corpus/<target>/<seed>. Deterministic: fixed ids, times and masks.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "doppel/eventstore/types.h"
#include "doppel/mcap/compression.h"
#include "doppel/mcap/crc32.h"
#include "doppel/mcap/records.h"
#include "doppel/mcap/writer.h"
#include "doppel/schemas/payloads.h"
#include "doppel/twins/robot_aggregate.h"
#include "doppel/twins/robot_model.h"
#include "fuzz_inputs.h"
#include "protocol.h"

namespace {

namespace fs = std::filesystem;
using namespace doppel;

fs::path g_root;  // <fuzz dir>/corpus

void Write(const std::string& target, const std::string& name, const std::string& bytes) {
  const fs::path dir = g_root / target;
  fs::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  DOPPEL_FUZZ_CHECK(out.good(), "cannot write %s", (dir / name).c_str());
}

std::string Payload(const std::string& type, const std::string& json) {
  auto p = schemas::PayloadFromJson(type, json);
  DOPPEL_FUZZ_CHECK(p.ok(), "seed %s: %s", type.c_str(), p.status().ToString().c_str());
  return std::move(p).value();
}

std::string Quoted(const std::vector<std::string>& names) {
  std::string out = "[";
  for (const std::string& n : names) out += (out.size() > 1 ? ",\"" : "\"") + n + "\"";
  return out + "]";
}

std::string Numbers(size_t n, double value) {
  std::string out = "[";
  for (size_t i = 0; i < n; ++i) out += (i ? "," : "") + std::to_string(value * (i + 1));
  return out + "]";
}

const char kPose[] =
    R"({"position":{"x":1.5,"y":-2,"z":0},"orientation":{"x":0,"y":0,"z":0.38268343,"w":0.92387953}})";
const char kTwist[] = R"({"linear":{"x":0.5,"y":0,"z":0},"angular":{"x":0,"y":0,"z":0.2}})";

// One valid payload of every known type, for a robot with `joints`.
std::vector<fuzz::FuzzEvent> EveryPayload(const std::string& model,
                                          const std::vector<std::string>& joints) {
  const size_t n = joints.size();
  const std::string pose = kPose, twist = kTwist;
  std::vector<std::pair<std::string, std::string>> json = {
      {"RobotRegistered", R"({"robot_id":"r1","model":")" + model + R"(","joint_names":)" +
                              Quoted(joints) +
                              R"(,"frames":["base_link"],"base_frame":"base_link"})"},
      {"JointStateObserved", R"({"names":)" + Quoted(joints) + R"(,"position":)" + Numbers(n, 0.1) +
                                 R"(,"velocity":)" + Numbers(n, 0.01) + R"(,"effort":[]})"},
      {"PoseObserved", R"({"frame_id":"map","child_frame_id":"base_link","pose":)" + pose +
                           R"(,"twist":)" + twist + "}"},
      {"CommandIssued", R"({"kind":"Velocity","twist":)" + twist + R"(,"issued_by":"op"})"},
      {"CommandIssued", R"({"kind":"JointTargets","joint_names":)" + Quoted(joints) +
                            R"(,"joint_targets":)" + Numbers(n, 0.3) + R"(,"issued_by":"op"})"},
      {"ModeChanged", R"({"mode":"Autonomous","reason":"shift start"})"},
      {"FaultRaised", R"({"code":"E42","severity":"Error","message":"motor hot"})"},
      {"FaultCleared", R"({"code":"E42"})"},
      {"PredictionMade",
       R"({"start_ns":1750000000000000000,"horizon_ns":2000000000,"step_ns":1000000,)"
       R"("based_on_version":2,"trajectory":[{"t_offset_ns":0,"base_pose":)" +
           pose + R"(,"joint_positions":)" + Numbers(n, 0.1) +
           R"(},{"t_offset_ns":500000000,"base_pose":)" + pose + R"(,"joint_positions":)" +
           Numbers(n, 0.2) +
           R"(}],"collision":{"t_offset_ns":700000000,"link":"base_link","obstacle":"rack-1",)"
           R"("contact_point":{"x":1,"y":0,"z":0.2}},"limit_violations":[{"joint":"j",)"
           R"("t_offset_ns":300000000,"value":3.2,"limit":3.1}]})"},
      {"RobotWentSilent",
       R"({"last_observation_ns":1750000000000000000,"silent_after_ns":5000000000})"},
      {"RobotResumed", R"({"silent_for_ns":6000000000})"},
      {"PredictionAlert",
       R"({"kind":"PredictedCollision","t_offset_ns":700000000,"link":"base_link",)"
       R"("obstacle":"rack-1","contact_point":{"x":1,"y":0,"z":0.2},)"
       R"("prediction_start_ns":1750000000000000000})"},
      {"Blob", R"({"data":[1,2,3,4,5,6,7,8]})"},
  };
  std::vector<fuzz::FuzzEvent> out;
  for (auto& [type, text] : json) out.push_back({type, Payload(type, text)});
  return out;
}

std::vector<std::string> Joints(const char* model) {
  auto m = twins::RobotModel::Builtin(model);
  DOPPEL_FUZZ_CHECK(m.ok(), "builtin %s", model);
  return m->joint_names();
}

void PayloadSeeds(const std::vector<fuzz::FuzzEvent>& payloads) {
  int i = 0;
  for (const fuzz::FuzzEvent& e : payloads) {
    const std::string bytes = std::string(1, char(fuzz::PayloadTypeSelector(e.type))) + e.payload;
    Write("payload", std::to_string(i++) + "_" + e.type, bytes);
  }
  Write("payload", "opaque_unknown_type",
        std::string(1, char(fuzz::PayloadTypeSelector("ThirdPartyEvent"))) + "hello");
  // Invalid: a JointStateObserved cut in half, and one whose position is NaN (verifies,
  // breaks the rules).
  const std::string& js = payloads[1].payload;
  Write("payload", "invalid_truncated", std::string(1, char(1)) + js.substr(0, js.size() / 2));
  Write("payload", "invalid_nan",
        std::string(1, char(1)) +
            Payload("JointStateObserved", R"({"names":["a"],"position":[nan]})"));
}

void EnvelopeSeeds(const std::vector<fuzz::FuzzEvent>& payloads) {
  uint64_t v = 0;
  for (const fuzz::FuzzEvent& e : payloads) {
    Write("envelope", std::to_string(v) + "_" + e.type,
          fuzz::EnvelopeBytes("robot-r1", v, v + 100, e.type, e.payload,
                              1750000000000000000 + static_cast<int64_t>(v)));
    ++v;
  }
  const std::string good =
      fuzz::EnvelopeBytes("robot-r1", 0, 0, "ThirdPartyEvent", "\x01\x02", 1750000000000000000);
  Write("envelope", "opaque_unknown_type", good);
  Write("envelope", "invalid_truncated", good.substr(0, good.size() - 5));
  // A JointStateObserved envelope whose payload is a FaultCleared: verifies as an envelope,
  // the payload check decides.
  Write("envelope", "invalid_payload_type",
        fuzz::EnvelopeBytes("robot-r1", 0, 0, "JointStateObserved", payloads[7].payload, 1));
}

void TwinApplySeeds(const std::vector<fuzz::FuzzEvent>& arm,
                    const std::vector<fuzz::FuzzEvent>& base) {
  // byte 0 bit 0: 0 = doppel_arm6, 1 = doppel_base.
  Write("twin_apply", "arm_every_type", std::string(1, '\0') + fuzz::JoinEvents(arm));
  Write("twin_apply", "base_every_type", std::string(1, '\1') + fuzz::JoinEvents(base));
  // register, observe, command, predict, observe again (scores the prediction).
  std::vector<fuzz::FuzzEvent> story = {base[0], base[2], base[3], base[8], base[2], base[2]};
  Write("twin_apply", "base_predict_then_observe", std::string(1, '\1') + fuzz::JoinEvents(story));
  story = {arm[0], arm[1], arm[4], arm[8], arm[1], arm[6], arm[7]};
  Write("twin_apply", "arm_predict_then_observe", std::string(1, '\0') + fuzz::JoinEvents(story));
  // Observations of joints the model does not have, and a payload that does not verify.
  std::vector<fuzz::FuzzEvent> odd = {
      arm[0],
      {"JointStateObserved",
       Payload("JointStateObserved", R"({"names":["nope","also_nope"],"position":[1,2]})")},
      {"JointStateObserved", arm[1].payload.substr(0, 9)}};
  Write("twin_apply", "arm_unknown_joints", std::string(1, '\0') + fuzz::JoinEvents(odd));
}

// A store_request seed: a session that first appends every type to robot-r1, then sends
// `requests`.
std::string Session(const std::string& setup, const std::vector<std::string>& requests) {
  std::vector<std::string> frames = {setup};
  frames.insert(frames.end(), requests.begin(), requests.end());
  return fuzz::JoinFrames(frames);
}

void StoreRequestSeeds(const std::vector<fuzz::FuzzEvent>& payloads) {
  namespace protocol = eventstore::protocol;
  eventstore::AppendRequest append;
  append.stream = "robot-r1";
  uint64_t id = 1;
  for (const fuzz::FuzzEvent& e : payloads) {
    eventstore::NewEvent n;
    n.id = EventId(0xfeed, id++);
    n.type = e.type;
    n.payload = e.payload;
    n.occurred_ns = 1750000000000000000;
    append.events.push_back(n);
  }
  const std::string setup = protocol::AppendRequestBytes(7, append);
  auto write = [&](const std::string& name, const std::vector<std::string>& requests) {
    Write("store_request", name, Session(setup, requests));
  };
  write("append_every_type", {});
  // The same append again: a duplicate, answered with the original positions.
  write("append_twice", {setup});
  eventstore::AppendRequest one = append;
  one.events.resize(1);
  one.expected = eventstore::ExpectedVersion::NoStream();
  one.stream = "robot-r2";
  write("append_no_stream", {protocol::AppendRequestBytes(8, one)});
  one.expected = eventstore::ExpectedVersion::Exact(0);
  one.events[0] = append.events[1];
  one.events[0].id = EventId(0xbeef, 1);
  write("append_exact", {protocol::AppendRequestBytes(9, one)});
  write("read_stream", {protocol::ReadStreamRequestBytes(10, "robot-r1", 0,
                                                         eventstore::Direction::kForward, 100)});
  write("read_stream_backward",
        {protocol::ReadStreamRequestBytes(11, "robot-r1", eventstore::kStreamEnd,
                                          eventstore::Direction::kBackward, 3)});
  write("read_all", {protocol::ReadAllRequestBytes(12, 0, 50, eventstore::kTimeMax)});
  write("position_at_time", {protocol::PositionAtTimeRequestBytes(13, 1)});
  write("stream_head", {protocol::StreamHeadRequestBytes(14, "robot-r1")});
  const std::string save = protocol::SaveSnapshotRequestBytes(15, {"robot-r1", 1, 1, 5, "state"});
  write("save_snapshot", {save});
  write("load_snapshot", {save, protocol::LoadSnapshotRequestBytes(16, "robot-r1")});
  // The history: the newest snapshot before a time (events are recorded at the wall clock).
  write("load_snapshot_at",
        {save, protocol::LoadSnapshotRequestBytes(16, "robot-r1", eventstore::kTimeMax - 1)});
  // Snapshots of streams whose names differ in length by a byte: RocksDB keeps each record
  // at a different offset from 8-byte alignment (the misaligned-load regression).
  std::vector<std::string> offsets;
  for (int n = 1; n <= 5; ++n) {
    const std::string stream = "s" + std::string(n, 'x');
    eventstore::AppendRequest first = append;
    first.stream = stream;
    first.events.resize(1);
    first.events[0].id = EventId(0x0ff5e7, n);
    offsets.push_back(protocol::AppendRequestBytes(30 + n, first));
    offsets.push_back(protocol::SaveSnapshotRequestBytes(40 + n, {stream, 0, 1, 0, "s"}));
    offsets.push_back(protocol::LoadSnapshotRequestBytes(50 + n, stream, eventstore::kTimeMax - 1));
  }
  Write("store_request", "snapshots_at_every_offset", fuzz::JoinFrames(offsets));
  write(
      "set_metadata",
      {protocol::SetStreamMetadataRequestBytes(17, "robot-r1", {1000000000, 10, 1}),
       protocol::GetStreamMetadataRequestBytes(18, "robot-r1"),
       protocol::ReadStreamRequestBytes(10, "robot-r1", 0, eventstore::Direction::kForward, 100)});
  write("server_info", {protocol::ServerInfoRequestBytes(19)});
  write("verify_log", {save, protocol::VerifyLogRequestBytes(20)});
  write("list_streams", {protocol::ListStreamsRequestBytes(23, "robot-", "", 10)});
  const std::string a = protocol::AppendRequestBytes(21, one);
  write("invalid_truncated_append", {a.substr(0, a.size() - 7)});
  // An append with a payload that verifies as a FlatBuffer but breaks the value rules.
  one.events[0].id = EventId(0xbad, 1);
  one.events[0].type = "JointStateObserved";
  one.events[0].payload = Payload("JointStateObserved", R"({"names":["a"],"position":[inf]})");
  one.expected = eventstore::ExpectedVersion::Any();
  write("invalid_append_inf", {protocol::AppendRequestBytes(22, one)});
}

void SceneSeeds() {
  Write("scene", "every_kind", R"({"obstacles": [
  {"name": "rack-1", "type": "box", "size": [1, 0.5, 2], "position": [3, 1, 1], "yaw": 0.3},
  {"name": "pillar", "type": "cylinder", "radius": 0.2, "height": 3, "position": [0, 4, 1.5]},
  {"name": "north", "type": "wall", "from": [-5, 5], "to": [5, 5], "height": 2, "thickness": 0.1}
]}
)");
  Write("scene", "box_in_the_way",
        R"({"obstacles":[{"type":"box","size":[0.5,0.5,1],"position":[0,0,0.5]}]})");
  Write("scene", "cylinder_in_the_way",
        R"({"obstacles":[{"type":"cylinder","radius":0.3,"height":1,"position":[0,0,0.5]}]})");
  Write("scene", "empty", R"({"obstacles":[]})");
  Write("scene", "invalid_negative_size",
        R"({"obstacles":[{"type":"box","size":[-1,1,1],"position":[0,0,0]}]})");
  Write("scene", "invalid_far",
        R"({"obstacles":[{"type":"box","size":[1,1,1],"position":[1e9,0,0]}]})");
  Write("scene", "invalid_not_json", R"({"obstacles":[{"type":"box",)");
}

void UrdfSeeds(const fs::path& models) {
  for (const char* name : {"doppel_arm6", "doppel_base"}) {
    std::ifstream in(models / (std::string(name) + ".urdf"), std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    DOPPEL_FUZZ_CHECK(!text.str().empty(), "cannot read %s.urdf", name);
    Write("urdf", name, text.str());
  }
  Write("urdf", "one_link", R"(<robot name="r"><link name="a"/></robot>)");
  Write("urdf", "two_links_revolute", R"(<robot name="r">
<link name="a"><collision><geometry><box size="1 1 1"/></geometry></collision></link>
<link name="b"><inertial><mass value="1"/><inertia ixx="1" ixy="0" ixz="0" iyy="1" iyz="0" izz="1"/></inertial>
<collision><origin xyz="0 0 0.5" rpy="0 1.57 0"/><geometry><cylinder radius="0.1" length="1"/></geometry></collision></link>
<joint name="j" type="revolute"><parent link="a"/><child link="b"/><origin xyz="0 0 1" rpy="0 0 0"/>
<axis xyz="0 1 0"/><limit lower="-1" upper="1" velocity="2" effort="10"/></joint>
</robot>)");
  Write("urdf", "mesh_and_sphere", R"(<robot name="r">
<link name="a"><collision><geometry><mesh filename="package://x.stl" scale="0.1 0.2 0.3"/></geometry></collision></link>
<link name="b"><collision><geometry><sphere radius="0.2"/></geometry></collision></link>
<joint name="p" type="prismatic"><parent link="a"/><child link="b"/><axis xyz="1 0 0"/>
<limit lower="0" upper="1" velocity="1" effort="1"/></joint>
</robot>)");
  Write("urdf", "invalid_cycle", R"(<robot name="r"><link name="a"/><link name="b"/>
<joint name="j1" type="fixed"><parent link="a"/><child link="b"/></joint>
<joint name="j2" type="fixed"><parent link="b"/><child link="a"/></joint></robot>)");
}

// A client frame: FIN, opcode, masked with a fixed key.
std::string ClientFrame(bool fin, uint8_t opcode, const std::string& payload) {
  std::string f;
  f.push_back(static_cast<char>((fin ? 0x80 : 0) | opcode));
  if (payload.size() < 126) {
    f.push_back(static_cast<char>(0x80 | payload.size()));
  } else {
    f.push_back(static_cast<char>(0x80 | 126));
    f.push_back(static_cast<char>(payload.size() >> 8));
    f.push_back(static_cast<char>(payload.size() & 0xff));
  }
  const char mask[4] = {0x12, 0x34, 0x56, 0x78};
  f.append(mask, 4);
  for (size_t i = 0; i < payload.size(); ++i) f.push_back(payload[i] ^ mask[i % 4]);
  return f;
}

void WsFramingSeeds() {
  const std::string subscribe = R"({"op":"subscribe","subscriptions":[{"id":1,"channelId":3}]})";
  Write("ws_framing", "text", ClientFrame(true, 0x1, subscribe));
  Write("ws_framing", "binary_16bit_length", ClientFrame(true, 0x2, std::string(300, 'x')));
  // "h\xc3\xa9llo" split inside the two-byte character, with a ping between the fragments.
  Write("ws_framing", "fragmented_text_with_ping",
        ClientFrame(false, 0x1, "h\xc3") + ClientFrame(true, 0x9, "p") +
            ClientFrame(true, 0x0, "\xa9llo"));
  Write("ws_framing", "pong_then_close",
        ClientFrame(true, 0xA, "") + ClientFrame(true, 0x8, std::string("\x03\xe8") + "bye"));
  Write("ws_framing", "close_empty", ClientFrame(true, 0x8, ""));
  std::string unmasked = ClientFrame(true, 0x1, "hi");
  unmasked[1] = static_cast<char>(unmasked[1] & 0x7f);
  Write("ws_framing", "invalid_unmasked", unmasked);
  Write("ws_framing", "invalid_text_utf8", ClientFrame(true, 0x1, "\xff\xfe"));
  Write("ws_framing", "invalid_close_1005", ClientFrame(true, 0x8, "\x03\xed"));
  Write("ws_framing", "invalid_too_big", ClientFrame(true, 0x2, std::string(2000, 'y')));
}

// rosbridge_fuzz's input: a role byte (even viewer, odd operator), then NUL-separated client
// messages.
void RosbridgeSeeds() {
  auto session = [](char role, std::initializer_list<std::string_view> messages) {
    std::string out(1, role);
    for (const auto m : messages) out.append(m).push_back('\0');
    out.pop_back();
    return out;
  };
  Write("rosbridge", "viewer_subscribe_throttled_fragmented",
        session(0, {R"({"op":"subscribe","id":"s1","topic":"/r1/odom","throttle_rate":20,)"
                    R"("queue_length":2,"fragment_size":64})",
                    R"({"op":"subscribe","topic":"/tf"})",
                    R"({"op":"unsubscribe","id":"s1","topic":"/r1/odom"})"}));
  Write("rosbridge", "viewer_services",
        session(0, {R"({"op":"call_service","id":"c1","service":"/doppel/list_robots"})",
                    R"({"op":"call_service","id":2,"service":"/doppel/robot_state",)"
                    R"("args":[{"robot":"r1","at":"2024-01-01T00:00:00Z"}]})"}));
  Write("rosbridge", "operator_publish",
        session(
            1, {R"({"op":"advertise","id":"a","topic":"/r1/cmd_vel","type":"geometry_msgs/Twist"})",
                R"({"op":"publish","id":"p","topic":"/r1/cmd_vel",)"
                R"("msg":{"linear":{"x":0.5},"angular":{"z":0.1}}})",
                R"({"op":"publish","topic":"/r1/stop","msg":{}})",
                R"({"op":"unadvertise","topic":"/r1/cmd_vel"})"}));
  Write("rosbridge", "invalid_deep_args",
        session(0, {R"({"op":"call_service","service":"/doppel/robot_state","args":)" +
                    std::string(100, '[') + std::string(100, ']') + "}"}));
  Write("rosbridge", "invalid_json_and_ops",
        session(1, {"{not json", R"({"op":"teleport"})", "[]", R"({"op":"publish"})"}));
}

// mcap_reader_fuzz's input: an MCAP file. Small files from doppel's writer with lz4 and zstd
// chunks (written straight into the corpus), then hand-built chunks that declare 30 GiB, more
// than their data holds, and less.
void McapReaderSeeds() {
  for (const auto compression : {mcap::Compression::kLz4, mcap::Compression::kZstd}) {
    const std::string name = "writer_" + std::string(mcap::CompressionName(compression));
    mcap::WriterOptions options;
    options.profile = "ros2";
    options.compression = compression;
    options.chunk_size = 2048;  // two chunks, each over the 1 KiB under which none is compressed
    fs::create_directories(g_root / "mcap_reader");
    auto writer = mcap::Writer::Open((g_root / "mcap_reader" / name).string(), options);
    DOPPEL_FUZZ_CHECK(writer.ok(), "%s", writer.status().ToString().c_str());
    const uint16_t schema = (*writer)->AddSchema("doppel/Pose", "jsonschema", "{}");
    const uint16_t channel = (*writer)->AddChannel(schema, "/r1/pose", "json", {{"robot", "r1"}});
    for (uint32_t i = 0; i < 40; ++i) {
      const std::string data = R"({"x":)" + std::to_string(i) + R"(,"y":0.5,"frame":"map"})";
      DOPPEL_FUZZ_CHECK((*writer)->WriteMessage(channel, i, 1000 + i, 1000 + i, data).ok(), "msg");
    }
    DOPPEL_FUZZ_CHECK((*writer)->WriteAttachment(7, 7, "calib.yaml", "text/yaml", "fx: 1\n").ok(),
                      "attachment");
    DOPPEL_FUZZ_CHECK((*writer)->Close().ok(), "close");
  }
  std::string records;
  mcap::Encode(mcap::Schema{1, "T", "jsonschema", "{}"}, records);
  mcap::Encode(mcap::Channel{1, 1, "/a", "json", {}}, records);
  mcap::Encode(mcap::Message{1, 0, 10, 10, std::string(600, 'x')}, records);
  auto chunk_file = [&](mcap::Compression compression, uint64_t declared) {
    std::string packed;
    DOPPEL_FUZZ_CHECK(mcap::Compress(compression, records, packed).ok(), "compress");
    std::string file(mcap::kMagic);
    mcap::Encode(mcap::Header{"", "seed"}, file);
    mcap::Encode(mcap::Chunk{10, 10, declared, mcap::Crc32(records),
                             std::string(mcap::CompressionName(compression)), packed},
                 file);
    mcap::Encode(mcap::DataEnd{0}, file);
    mcap::Encode(mcap::Footer{0, 0, 0}, file);
    return file.append(mcap::kMagic);
  };
  for (const auto compression : {mcap::Compression::kLz4, mcap::Compression::kZstd}) {
    const std::string codec(mcap::CompressionName(compression));
    Write("mcap_reader", "chunk_" + codec, chunk_file(compression, records.size()));
    Write("mcap_reader", "invalid_declares_30gib_" + codec, chunk_file(compression, 30ull << 30));
    Write("mcap_reader", "invalid_declares_more_" + codec,
          chunk_file(compression, records.size() + 1));
    Write("mcap_reader", "invalid_declares_less_" + codec,
          chunk_file(compression, records.size() - 1));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <doppel source>/fuzz\n", argv[0]);
    return 2;
  }
  const fs::path fuzz_dir = argv[1];
  g_root = fuzz_dir / "corpus";
  const auto arm = EveryPayload("doppel_arm6", Joints("doppel_arm6"));
  const auto base = EveryPayload("doppel_base", Joints("doppel_base"));
  PayloadSeeds(arm);
  EnvelopeSeeds(arm);
  TwinApplySeeds(arm, base);
  StoreRequestSeeds(arm);
  SceneSeeds();
  UrdfSeeds(fuzz_dir / ".." / "twins" / "models");
  WsFramingSeeds();
  RosbridgeSeeds();
  McapReaderSeeds();
  std::printf("seeds written to %s\n", g_root.c_str());
  return 0;
}
