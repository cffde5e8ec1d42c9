#include "doppel/schemas/payloads.h"

#include <gtest/gtest.h>

#include "doppel/schemas/envelope.h"
#include "doppel/schemas/robot_events_generated.h"

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
