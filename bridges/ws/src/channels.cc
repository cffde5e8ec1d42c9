#include "channels.h"

#include "doppel/core/base64.h"
#include "doppel/schemas/twin_state_bfbs.h"

namespace doppel::gateway {
namespace {

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

constexpr std::string_view kTime =
    R"({"type":"object","properties":{"sec":{"type":"integer"},"nsec":{"type":"integer"}}})";
constexpr std::string_view kVec3 =
    R"({"type":"object","properties":{"x":{"type":"number"},"y":{"type":"number"},"z":{"type":"number"}}})";
constexpr std::string_view kQuat =
    R"({"type":"object","properties":{"x":{"type":"number"},"y":{"type":"number"},"z":{"type":"number"},"w":{"type":"number"}}})";

std::string Pose() {
  return std::string(R"({"type":"object","properties":{"position":)") + std::string(kVec3) +
         R"(,"orientation":)" + std::string(kQuat) + "}}";
}

std::string Numbers() { return R"({"type":"array","items":{"type":"number"}})"; }
std::string Strings() { return R"({"type":"array","items":{"type":"string"}})"; }

std::string Object(std::string_view title,
                   std::initializer_list<std::pair<std::string, std::string>> properties) {
  std::string out = R"({"title":")" + std::string(title) + R"(","type":"object","properties":{)";
  bool first = true;
  for (const auto& [name, schema] : properties) {
    if (!first) out += ",";
    first = false;
    out += "\"" + name + "\":" + schema;
  }
  return out + "}}";
}

const std::string kString = R"({"type":"string"})";
const std::string kNumber = R"({"type":"number"})";
const std::string kInteger = R"({"type":"integer"})";
const std::string kBool = R"({"type":"boolean"})";
const std::string kAny = R"({})";

std::string EventSchema(std::string_view title) {
  return Object(title, {{"timestamp", std::string(kTime)},
                        {"robot_id", kString},
                        {"type", kString},
                        {"version", kInteger},
                        {"position", kInteger},
                        {"occurred_ns", kInteger},
                        {"payload", R"({"type":"object"})"}});
}

}  // namespace

ChannelSpec SpecFor(std::string_view topic) {
  const std::string time(kTime);
  if (EndsWith(topic, "/twin_fb")) {
    return {"flatbuffer", "doppel.twin.TwinState", Base64Encode(schemas::TwinStateBfbs()),
            "flatbuffer"};
  }
  if (EndsWith(topic, "/twin")) {
    return {"json", "doppel.TwinState",
            Object("doppel.TwinState",
                   {{"timestamp", time},
                    {"robot_id", kString},
                    {"version", kInteger},
                    {"position", kInteger},
                    {"model", kString},
                    {"mode", kString},
                    {"silent", kBool},
                    {"staleness_ms", kNumber},
                    {"joint_names", Strings()},
                    {"joint_position", Numbers()},
                    {"joint_velocity", Numbers()},
                    {"base_pose", Pose()},
                    {"base_twist", Object("Twist", {{"linear", std::string(kVec3)},
                                                    {"angular", std::string(kVec3)}})},
                    {"faults", R"({"type":"array","items":{"type":"object"}})"},
                    {"prediction", R"({"type":["object","null"]})"},
                    {"accuracy", R"({"type":["object","null"]})"},
                    {"alerts", kInteger},
                    {"links", R"({"type":"array","items":{"type":"object"}})"}}),
            "jsonschema"};
  }
  if (EndsWith(topic, "/joint_states")) {
    return {"json", "doppel.JointStates",
            Object("doppel.JointStates", {{"timestamp", time},
                                          {"name", Strings()},
                                          {"position", Numbers()},
                                          {"velocity", Numbers()},
                                          {"effort", Numbers()}}),
            "jsonschema"};
  }
  if (EndsWith(topic, "/pose")) {
    // Foxglove's well-known schema: its 3D panel draws it.
    return {"json", "foxglove.PoseInFrame",
            Object("foxglove.PoseInFrame",
                   {{"timestamp", time}, {"frame_id", kString}, {"pose", Pose()}}),
            "jsonschema"};
  }
  if (EndsWith(topic, "/prediction")) {
    return {"json", "foxglove.PosesInFrame",
            Object("foxglove.PosesInFrame",
                   {{"timestamp", time},
                    {"frame_id", kString},
                    {"poses", R"({"type":"array","items":)" + Pose() + "}"},
                    {"step_s", kNumber},
                    {"collision", R"({"type":["object","null"]})"},
                    {"limit_violations", R"({"type":"array","items":{"type":"object"}})"}}),
            "jsonschema"};
  }
  if (EndsWith(topic, "/events"))
    return {"json", "doppel.Event", EventSchema("doppel.Event"), "jsonschema"};
  if (topic == "/fleet/alerts") {
    return {"json", "doppel.Alert", EventSchema("doppel.Alert"), "jsonschema"};
  }
  if (topic == "/fleet/summary") {
    return {"json", "doppel.FleetSummary",
            Object("doppel.FleetSummary",
                   {{"timestamp", time},
                    {"robots", R"({"type":"array","items":)" +
                                   Object("doppel.RobotSummary", {{"robot_id", kString},
                                                                  {"model", kString},
                                                                  {"mode", kString},
                                                                  {"silent", kBool},
                                                                  {"staleness_ms", kNumber},
                                                                  {"faults", Strings()},
                                                                  {"collision_predicted", kBool},
                                                                  {"collision_in_s", kAny},
                                                                  {"limit_violations", kInteger},
                                                                  {"alerts", kInteger},
                                                                  {"accuracy_1s_m", kAny},
                                                                  {"x", kNumber},
                                                                  {"y", kNumber}}) +
                                   "}"}}),
            "jsonschema"};
  }
  return {"json", "", "", ""};
}

}  // namespace doppel::gateway
