#include "doppel/schemas/payloads.h"

#include <flatbuffers/idl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "doppel/schemas/envelope.h"
#include "doppel/schemas/robot_events_generated.h"
#include "test_support.h"

namespace doppel::schemas {
namespace {

TEST(PayloadsTest, EveryKnownTypeRoundTripsThroughJson) {
  for (const PayloadType& type : AllPayloadTypes()) {
    auto bytes = PayloadFromJson(type.name, "{}");
    ASSERT_TRUE(bytes.ok()) << type.name << ": " << bytes.status().ToString();
    EXPECT_TRUE(VerifyPayload(type.name, *bytes).ok()) << type.name;
    auto json = PayloadToJson(type.name, *bytes);
    ASSERT_TRUE(json.ok()) << type.name;
  }
}

TEST(PayloadsTest, JointStateJsonConvertsThroughTheSchema) {
  auto bytes = PayloadFromJson("JointStateObserved",
                               R"({"names":["shoulder","elbow"],"position":[0.5,-1.25]})");
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  const auto* js = flatbuffers::GetRoot<events::JointStateObserved>(bytes->data());
  ASSERT_EQ(js->names()->size(), 2u);
  EXPECT_EQ(js->names()->Get(1)->str(), "elbow");
  EXPECT_DOUBLE_EQ(js->position()->Get(1), -1.25);
  auto json = PayloadToJson("JointStateObserved", *bytes);
  ASSERT_TRUE(json.ok());
  EXPECT_NE(json->find("\"elbow\""), std::string::npos);
  EXPECT_NE(json->find("-1.25"), std::string::npos);
}

TEST(PayloadsTest, EnumsAndStructsParseByName) {
  auto bytes = PayloadFromJson(
      "PoseObserved",
      R"({"frame_id":"odom","pose":{"position":{"x":1,"y":2,"z":0},"orientation":{"x":0,"y":0,"z":0,"w":1}}})");
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  const auto* pose = flatbuffers::GetRoot<events::PoseObserved>(bytes->data());
  EXPECT_DOUBLE_EQ(pose->pose()->position().y(), 2.0);
  auto mode = PayloadFromJson("ModeChanged", R"({"mode":"EmergencyStop","reason":"button"})");
  ASSERT_TRUE(mode.ok());
  EXPECT_EQ(flatbuffers::GetRoot<events::ModeChanged>(mode->data())->mode(),
            events::RobotMode::EmergencyStop);
}

TEST(PayloadsTest, BadJsonAndUnknownTypesAreClearErrors) {
  auto unknown = PayloadFromJson("Teleported", "{}");
  EXPECT_EQ(unknown.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(unknown.status().message().find("unknown event type 'Teleported'"), std::string::npos);
  auto malformed = PayloadFromJson("ModeChanged", R"({"mode": )");
  EXPECT_EQ(malformed.status().code(), Status::Code::kInvalidArgument);
  auto unknown_field = PayloadFromJson("ModeChanged", R"({"speed": 3})");
  EXPECT_EQ(unknown_field.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(unknown_field.status().message().find("speed"), std::string::npos);
  // The parser recovers after errors.
  EXPECT_TRUE(PayloadFromJson("ModeChanged", R"({"mode":"Idle"})").ok());
}

TEST(PayloadsTest, GarbageBytesDoNotVerify) {
  EXPECT_FALSE(VerifyPayload("JointStateObserved", "").ok());
  EXPECT_FALSE(VerifyPayload("JointStateObserved", std::string("\xff\xff\xff\x7f", 4)).ok());
  EXPECT_FALSE(VerifyEnvelope("not an envelope at all").ok());
  EXPECT_TRUE(VerifyPayload("SomeoneElsesType", "opaque").ok());
}

// Doubles JSON must carry exactly: the edges of the format (zeros, subnormals, the largest
// values) and values that 12 decimals change (0.9826091903856943 was printed 0.982609190386,
// 1e-13 as 0.0).
std::vector<double> EdgeDoubles() {
  return {0.0,     -0.0,
          0.1,     0.9826091903856943,
          -1.25,   1.0,
          1.0 / 3, 123456.78901234567,
          1e-13,   1e-7,
          1e15,    1e16,
          1e21,    9007199254740993.0,
          1e308,   -1e308,
          DBL_MAX, -DBL_MAX,
          DBL_MIN, std::nextafter(DBL_MIN, 0.0),  // the largest subnormal
          5e-324,  -5e-324};
}

// Random doubles of every kind: any finite bit pattern, subnormals, and joint-like values.
std::vector<double> RandomDoubles(uint32_t seed, size_t count) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> joint(-10.0, 10.0);
  std::vector<double> out;
  while (out.size() < count) {
    const uint64_t bits = rng();
    double d = 0;
    switch (out.size() % 3) {
      case 0:
        d = std::bit_cast<double>(bits);
        break;
      case 1:  // exponent bits cleared: a subnormal (or a signed zero)
        d = std::bit_cast<double>(bits & 0x800fffffffffffffULL);
        break;
      default:
        d = joint(rng);
    }
    if (std::isfinite(d)) out.push_back(d);
  }
  return out;
}

std::string JsonNumber(double d) { return fmt::format("{:.17g}", d); }

// The number texts after `"key": ` in compact JSON: the elements of an array, or one value.
// Empty when the key is not there.
std::vector<std::string> NumbersAt(const std::string& json, const std::string& key) {
  const std::string tag = "\"" + key + "\": ";
  const size_t at = json.find(tag);
  if (at == std::string::npos) return {};
  size_t i = at + tag.size();
  const bool array = json[i] == '[';
  if (array) ++i;
  std::vector<std::string> out;
  while (i < json.size() && json[i] != ']') {
    const size_t end = json.find_first_of(",]}", i);
    out.push_back(json.substr(i, end - i));
    if (!array || json[end] != ',') break;
    i = end + 1;
  }
  return out;
}

// Empty when `text` reads back (strtod, the whole text) to exactly `want`, the sign of a zero
// too; otherwise what it reads back as.
std::string ReadBackError(const std::string& text, double want) {
  char* end = nullptr;
  const double got = std::strtod(text.c_str(), &end);
  if (*end == '\0' && std::bit_cast<uint64_t>(got) == std::bit_cast<uint64_t>(want)) return "";
  return fmt::format("{} printed as \"{}\", which reads back as {}", JsonNumber(want), text,
                     JsonNumber(got));
}

// JSON -> payload -> JSON -> payload: the JSON doppel printed, and what went wrong (empty when
// both payloads are the same bytes).
struct RoundTrip {
  std::string printed;
  std::string error;
};
RoundTrip JsonRoundTrip(const char* type, const std::string& json) {
  auto first = PayloadFromJson(type, json);
  if (!first.ok()) return {"", json + ": " + first.status().ToString()};
  auto printed = PayloadToJson(type, *first);
  if (!printed.ok()) return {"", json + ": " + printed.status().ToString()};
  auto again = PayloadFromJson(type, *printed);
  if (!again.ok()) return {*printed, *printed + ": " + again.status().ToString()};
  if (*again != *first) return {*printed, "payload bytes changed through " + *printed};
  return {*printed, ""};
}

TEST(PayloadsTest, DoublesPrintAsTextThatReadsBackToTheSameValueAndPayloadBytes) {
  const uint32_t seed = testing::TestSeed(20250425);
  SCOPED_TRACE(testing::SeedTrace(seed));
  std::vector<double> values = EdgeDoubles();
  for (double d : RandomDoubles(seed, 3000)) values.push_back(d);

  // Collected, so that a printer that loses digits fails with a count and a few examples
  // rather than thousands of lines.
  std::vector<std::string> failures;
  auto fail = [&](const std::string& where, const std::string& error) {
    if (!error.empty()) failures.push_back(where + ": " + error);
  };
  // In a vector of doubles, 50 at a time.
  for (size_t from = 0; from < values.size(); from += 50) {
    const std::vector<double> chunk(values.begin() + from,
                                    values.begin() + std::min(values.size(), from + 50));
    std::vector<std::string> texts;
    for (double d : chunk) texts.push_back(JsonNumber(d));
    const RoundTrip rt = JsonRoundTrip(
        "JointStateObserved", fmt::format(R"({{"position":[{}]}})", fmt::join(texts, ",")));
    fail("vector", rt.error);
    const std::vector<std::string> numbers = NumbersAt(rt.printed, "position");
    ASSERT_EQ(numbers.size(), chunk.size()) << rt.printed;
    for (size_t i = 0; i < chunk.size(); ++i) fail("vector", ReadBackError(numbers[i], chunk[i]));
  }
  for (double d : values) {
    // In a struct (a Vec3 inside a Pose): always stored, -0.0 too.
    const RoundTrip pose = JsonRoundTrip(
        "PoseObserved",
        fmt::format(R"({{"pose":{{"position":{{"x":{},"y":0,"z":0}},"orientation":{{"x":0,"y":0,)"
                    R"("z":0,"w":1}}}}}})",
                    JsonNumber(d)));
    fail("struct", pose.error);
    const std::vector<std::string> x = NumbersAt(pose.printed, "x");
    ASSERT_EQ(x.size(), 1u) << pose.printed;
    fail("struct", ReadBackError(x[0], d));
    // In a scalar table field with default 0: a zero of either sign equals the default and is
    // not stored, so it is not printed either.
    const RoundTrip alert =
        JsonRoundTrip("PredictionAlert", fmt::format(R"({{"value":{}}})", JsonNumber(d)));
    fail("scalar", alert.error);
    const std::vector<std::string> value = NumbersAt(alert.printed, "value");
    if (d == 0.0) {
      EXPECT_TRUE(value.empty()) << alert.printed;
    } else {
      ASSERT_EQ(value.size(), 1u) << alert.printed;
      fail("scalar", ReadBackError(value[0], d));
    }
  }
  const size_t shown = std::min<size_t>(failures.size(), 10);
  EXPECT_TRUE(failures.empty()) << failures.size() << " failures among " << values.size()
                                << " values, the first " << shown << ":\n"
                                << fmt::format("{}", fmt::join(failures.begin(),
                                                               failures.begin() + shown, "\n"));
}

TEST(PayloadsTest, DoublesPrintShortWithWholeNumbersEndingInPointZero) {
  const RoundTrip rt = JsonRoundTrip(
      "JointStateObserved",
      R"({"position":[0.9826091903856943,0.1,1,-0.0,1e-13,2.5e+300,5e-324,1000000]})");
  EXPECT_EQ(rt.error, "");
  const std::string& json = rt.printed;
  EXPECT_NE(json.find("[0.9826091903856943,0.1,1.0,-0.0,1e-13,2.5e+300,5e-324,1000000.0]"),
            std::string::npos)
      << json;
}

// FlatBuffers' own printer, as doppel configured it before it printed payloads itself.
std::string FlatBuffersText(const char* type, const std::string& payload) {
  flatbuffers::IDLOptions opts;
  opts.strict_json = true;
  opts.indent_step = -1;
  flatbuffers::Parser parser(opts);
  EXPECT_TRUE(parser.Parse(std::string(RobotEventsSchemaText()).c_str())) << parser.error_;
  std::vector<uint64_t> aligned((payload.size() + 7) / 8);
  std::memcpy(aligned.data(), payload.data(), payload.size());
  std::string text;
  EXPECT_TRUE(flatbuffers::GenerateTextFromTable(
      parser, flatbuffers::GetRoot<flatbuffers::Table>(aligned.data()),
      std::string("doppel.events.") + type, &text));
  return text;
}

std::string Finished(flatbuffers::FlatBufferBuilder& fbb) {
  return std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
}

TEST(PayloadsTest, JsonHasFlatBuffersShapeWhereItsNumbersWereExact) {
  // Numbers FlatBuffers' 12 decimals print exactly, so that only the shape is compared: field
  // order, spacing, enums, structs, vectors of tables, string escapes, absent fields.
  struct Case {
    const char* type;
    std::string payload;
  };
  std::vector<Case> cases;
  auto from_json = [&](const char* type, const char* json) {
    auto bytes = PayloadFromJson(type, json);
    ASSERT_TRUE(bytes.ok()) << json << ": " << bytes.status().ToString();
    cases.push_back({type, *bytes});
  };
  from_json("RobotRegistered",
            R"({"robot_id":"r\"7\\","model":"arm\n\t\u0001","joint_names":["é","日本","😀"],)"
            R"("frames":[],"base_frame":"base"})");
  from_json("JointStateObserved",
            R"({"names":["j1","j2"],"position":[0.5,-1.25],"velocity":[0,-0.0],"effort":[]})");
  from_json("PoseObserved",
            R"({"frame_id":"odom","child_frame_id":"base","pose":{"position":{"x":1,"y":2,"z":)"
            R"(-3.5},"orientation":{"x":0,"y":0,"z":0.25,"w":1}},"twist":{"linear":{"x":0.125,)"
            R"("y":0,"z":0},"angular":{"x":0,"y":0,"z":-2}}})");
  from_json(
      "CommandIssued",
      R"({"kind":"JointTargets","joint_names":["a"],"joint_targets":[1.5],"issued_by":"op"})");
  from_json("ModeChanged", R"({"mode":"EmergencyStop","reason":"button"})");
  from_json("FaultRaised", R"({"code":"E1","severity":"Critical","message":"hot"})");
  from_json("PredictionMade",
            R"({"start_ns":-9223372036854775808,"horizon_ns":2000000000,"step_ns":10000000,)"
            R"("based_on_version":18446744073709551615,"trajectory":[{"t_offset_ns":0,)"
            R"("base_pose":{"position":{"x":1,"y":0,"z":0},"orientation":{"x":0,"y":0,"z":0,)"
            R"("w":1}},"joint_positions":[0.5]},{"t_offset_ns":5}],"collision":{"t_offset_ns":7,)"
            R"("link":"l","obstacle":"o","contact_point":{"x":0.5,"y":0.5,"z":0}},)"
            R"("limit_violations":[{"joint":"j","t_offset_ns":3,"value":2.5,"limit":2}]})");
  from_json("PredictionAlert",
            R"({"kind":"PredictedJointLimit","t_offset_ns":9,"link":"j","value":3.75,"limit":3})");
  from_json("RobotWentSilent", R"({"last_observation_ns":-1,"silent_after_ns":500})");
  from_json("Blob", R"({"data":[0,1,255]})");
  from_json("FaultCleared", "{}");
  {
    // Defaults stored explicitly (another writer may) are printed, as FlatBuffers did; an enum
    // value the schema does not name is printed as its number.
    flatbuffers::FlatBufferBuilder fbb;
    fbb.ForceDefaults(true);
    fbb.Finish(events::CreatePredictionAlert(fbb, events::AlertKind::PredictedCollision, 0, 0, 0,
                                             nullptr, 0.0, 0.0, 0));
    cases.push_back({"PredictionAlert", Finished(fbb)});
    flatbuffers::FlatBufferBuilder fbb2;
    fbb2.Finish(events::CreateModeChanged(fbb2, static_cast<events::RobotMode>(42)));
    cases.push_back({"ModeChanged", Finished(fbb2)});
  }
  for (const Case& c : cases) {
    auto json = PayloadToJson(c.type, c.payload);
    ASSERT_TRUE(json.ok()) << c.type << ": " << json.status().ToString();
    EXPECT_EQ(*json, FlatBuffersText(c.type, c.payload)) << c.type;
  }
}

TEST(PayloadsTest, NonFiniteNumbersAndIllFormedUtf8AreNotPrinted) {
  for (double bad : {std::numeric_limits<double>::quiet_NaN(), HUGE_VAL, -HUGE_VAL}) {
    flatbuffers::FlatBufferBuilder fbb;
    fbb.Finish(events::CreateJointStateObserved(fbb, 0, fbb.CreateVector(std::vector{0.5, bad})));
    auto json = PayloadToJson("JointStateObserved", Finished(fbb));
    ASSERT_FALSE(json.ok()) << *json;
    EXPECT_NE(json.status().message().find("NaN or infinities"), std::string::npos)
        << json.status().ToString();
  }
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(events::CreateFaultRaised(fbb, fbb.CreateString("E\xff")));
  auto json = PayloadToJson("FaultRaised", Finished(fbb));
  ASSERT_FALSE(json.ok()) << *json;
  EXPECT_NE(json.status().message().find("cannot be shown as JSON"), std::string::npos)
      << json.status().ToString();
}

TEST(PayloadsTest, UpcastersRunInVersionOrder) {
  Upcasters upcasters;
  // Pretend JointStateObserved is at version 1 and a hypothetical v0 needs a step.
  upcasters.Register("JointStateObserved", 0, [](std::string_view p) -> Result<std::string> {
    return std::string(p) + "+v1";
  });
  auto up = upcasters.Upcast("JointStateObserved", 0, "payload");
  ASSERT_TRUE(up.ok());
  EXPECT_EQ(*up, "payload+v1");
  EXPECT_EQ(*upcasters.Upcast("JointStateObserved", 1, "payload"), "payload");
  EXPECT_EQ(*upcasters.Upcast("JointStateObserved", 9, "future"), "future");
}

}  // namespace
}  // namespace doppel::schemas
