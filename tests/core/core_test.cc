#include <gtest/gtest.h>

#include <limits>
#include <set>

#include "doppel/core/base64.h"
#include "doppel/core/clock.h"
#include "doppel/core/event_id.h"

namespace doppel {
namespace {

TEST(EventIdTest, FormatsAndParsesCanonically) {
  const EventId id(0x6f1c2a7e3b0d4a8eULL, 0x9c550a1b2c3d4e5fULL);
  EXPECT_EQ(id.ToString(), "6f1c2a7e-3b0d-4a8e-9c55-0a1b2c3d4e5f");
  auto parsed = EventId::Parse("6F1C2A7E-3B0D-4A8E-9C55-0A1B2C3D4E5F");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, id);
  EXPECT_EQ(*EventId::Parse("6f1c2a7e3b0d4a8e9c550a1b2c3d4e5f"), id);
  const auto bytes = id.ToBytes();
  EXPECT_EQ(EventId::FromBytes(std::string_view(bytes.data(), 16)), id);
}

TEST(EventIdTest, RejectsMalformedText) {
  for (const char* bad :
       {"", "123", "6f1c2a7e-3b0d-4a8e-9c55-0a1b2c3d4e5", "6f1c2a7e_3b0d-4a8e-9c55-0a1b2c3d4e5f",
        "zf1c2a7e-3b0d-4a8e-9c55-0a1b2c3d4e5f"}) {
    auto r = EventId::Parse(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  }
}

TEST(EventIdTest, RandomIdsAreVersion4AndDistinct) {
  std::set<EventId> seen;
  for (int i = 0; i < 1000; ++i) {
    const EventId id = EventId::Random();
    EXPECT_EQ((id.hi() >> 12) & 0xF, 4u);
    EXPECT_EQ(id.lo() >> 62, 2u);
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(ClockTest, ParsesIsoAndNanoseconds) {
  EXPECT_EQ(*ParseTime("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(*ParseTime("2026-11-22T10:15:30Z"), 1795342530LL * 1'000'000'000);
  EXPECT_EQ(*ParseTime("2026-11-22T10:15:30.5Z"), 1795342530LL * 1'000'000'000 + 500'000'000);
  EXPECT_EQ(*ParseTime("2026-11-22T11:15:30+01:00"), *ParseTime("2026-11-22T10:15:30Z"));
  EXPECT_EQ(*ParseTime("2026-11-22"), *ParseTime("2026-11-22T00:00:00Z"));
  EXPECT_EQ(*ParseTime("123456789"), 123456789);
  EXPECT_EQ(FormatTime(*ParseTime("2026-11-22T10:15:30.123456789Z")),
            "2026-11-22T10:15:30.123456789Z");
  for (const char* bad :
       {"", "yesterday", "2026-13-01", "2026-11-22T10:15", "2026-11-22T10:15:30"}) {
    EXPECT_FALSE(ParseTime(bad).ok()) << bad;
  }
}

TEST(ClockTest, ParsesDurations) {
  EXPECT_EQ(*ParseDurationNs("30s"), 30'000'000'000);
  EXPECT_EQ(*ParseDurationNs("2h"), 7'200'000'000'000);
  EXPECT_EQ(*ParseDurationNs("500ms"), 500'000'000);
  EXPECT_FALSE(ParseDurationNs("fast").ok());
  EXPECT_FALSE(ParseDurationNs("3 weeks").ok());
}

TEST(ClockTest, DurationsBeyondInt64NanosecondsAreRefusedNotWrapped) {
  // 213504 days is 2^64 ns plus 25 minutes: it used to wrap to 25 minutes.
  for (const char* bad : {"213504d", "106752d", "9223372036854775808ns", "99999999999999999999s",
                          "7dx", "1.5h", "-5s", "+5s", " 5s", "5 s"}) {
    auto d = ParseDurationNs(bad);
    EXPECT_FALSE(d.ok()) << bad << " parsed as " << (d.ok() ? *d : 0);
    if (!d.ok()) {
      EXPECT_EQ(d.status().code(), Status::Code::kInvalidArgument);
    }
  }
  EXPECT_NE(ParseDurationNs("213504d").status().message().find("292 years"), std::string::npos)
      << ParseDurationNs("213504d").status().message();
  // The bounds themselves still parse.
  EXPECT_EQ(*ParseDurationNs("106751d"), 106751LL * 86'400'000'000'000);
  EXPECT_EQ(*ParseDurationNs("9223372036854775807ns"), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(*ParseDurationNs("0"), 0);
}

TEST(ClockTest, TimesOutsideTheNanosecondRangeAreRefusedNotWrapped) {
  for (const char* bad :
       {"0000-01-01", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "1677-09-21T00:12:43Z",
        "2262-04-11T23:47:17Z", "2026-02-30", "2025-02-29", "2026-11-22T10:15:30Zjunk",
        "2026-11-22junk", "99999999999999999999"}) {
    auto t = ParseTime(bad);
    EXPECT_FALSE(t.ok()) << bad << " parsed as " << (t.ok() ? *t : 0);
  }
  EXPECT_NE(ParseTime("9999-12-31").status().message().find("out of range"), std::string::npos);
  EXPECT_EQ(*ParseTime("2262-04-11T23:47:16.854775807Z"), std::numeric_limits<TimeNs>::max());
  EXPECT_EQ(*ParseTime("1677-09-21T00:12:43.145224192Z"), std::numeric_limits<TimeNs>::min());
  EXPECT_TRUE(ParseTime("2024-02-29").ok());
}

TEST(Base64Test, RoundTripsAllLengths) {
  std::string data;
  for (int n = 0; n < 40; ++n) {
    auto decoded = Base64Decode(Base64Encode(data));
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(*decoded, data);
    data.push_back(static_cast<char>(n * 37));
  }
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_FALSE(Base64Decode("Zm9v!mFy").ok());
}

}  // namespace
}  // namespace doppel
