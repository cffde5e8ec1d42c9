// WsFrameReader and the server frame encoders, driven directly with bytes: every RFC 6455
// rule a client can break (sections 5.2-5.5, 7.4, 8.1) fails the connection with the close
// code the RFC asks for, and well-formed traffic is delivered whatever the read boundaries.
#include "doppel/bridges/ws_framing.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace doppel::gateway {
namespace {

using Kind = WsEvent::Kind;

// A client frame: `first` is byte 0 (FIN, RSV, opcode), the payload is masked unless
// `masked` is false, and the length uses the shortest encoding.
std::string ClientFrame(uint8_t first, std::string_view payload, bool masked = true) {
  std::string f(1, static_cast<char>(first));
  const uint8_t mask_bit = masked ? 0x80 : 0;
  const uint64_t n = payload.size();
  if (n < 126) {
    f += static_cast<char>(mask_bit | n);
  } else if (n <= 0xffff) {
    f += static_cast<char>(mask_bit | 126);
    f += static_cast<char>(n >> 8);
    f += static_cast<char>(n);
  } else {
    f += static_cast<char>(mask_bit | 127);
    for (int i = 0; i < 8; ++i) f += static_cast<char>(n >> (56 - 8 * i));
  }
  const char key[4] = {0x12, 0x34, 0x56, 0x78};
  if (!masked) return f + std::string(payload);
  f.append(key, 4);
  for (size_t i = 0; i < payload.size(); ++i) f += static_cast<char>(payload[i] ^ key[i % 4]);
  return f;
}

constexpr uint8_t kFin = 0x80;
std::string Text(std::string_view s) { return ClientFrame(kFin | 0x1, s); }
std::string Close(uint16_t code, std::string_view reason = "") {
  std::string payload = {static_cast<char>(code >> 8), static_cast<char>(code & 0xff)};
  return ClientFrame(kFin | 0x8, payload + std::string(reason));
}

// Feeds `bytes` and expects exactly one failure with `code` as the last event.
void ExpectFailure(const std::string& bytes, uint16_t code, const std::string& what = "") {
  WsFrameReader reader;
  const std::vector<WsEvent> events = reader.Feed(bytes);
  ASSERT_FALSE(events.empty()) << what;
  EXPECT_EQ(events.back().kind, Kind::kFail) << what;
  EXPECT_EQ(events.back().code, code) << what << ": " << events.back().payload;
  EXPECT_TRUE(reader.done()) << what;
}

TEST(WsFrameReaderTest, TextMessageIsDelivered) {
  WsFrameReader reader;
  auto events = reader.Feed(Text(R"({"op":"subscribe"})"));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kText);
  EXPECT_EQ(events[0].payload, R"({"op":"subscribe"})");
  EXPECT_FALSE(reader.done());
}

TEST(WsFrameReaderTest, FramesFedOneByteAtATimeAreReassembled) {
  const std::string big(70000, 'x');  // a 64-bit length, in three fragments
  const std::string bytes = ClientFrame(0x2, big.substr(0, 100)) +
                            ClientFrame(0x0, big.substr(100, 69800)) +
                            ClientFrame(kFin | 0x9, "p") + ClientFrame(kFin, big.substr(69900));
  WsFrameReader reader;
  std::vector<WsEvent> events;
  for (char c : bytes) {
    for (auto& e : reader.Feed(std::string_view(&c, 1))) events.push_back(std::move(e));
  }
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, Kind::kPing);  // control frames may come between fragments
  EXPECT_EQ(events[0].payload, "p");
  EXPECT_EQ(events[1].kind, Kind::kBinary);
  EXPECT_EQ(events[1].payload, big);
}

TEST(WsFrameReaderTest, TextSplitInsideAMultiByteCharacterIsAccepted) {
  const std::string euro = "\xe2\x82\xac";
  WsFrameReader reader;
  auto events =
      reader.Feed(ClientFrame(0x1, "a" + euro.substr(0, 1)) + ClientFrame(0x0, euro.substr(1, 1)) +
                  ClientFrame(kFin, euro.substr(2) + "b"));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kText);
  EXPECT_EQ(events[0].payload, "a" + euro + "b");
}

TEST(WsFrameReaderTest, PingAndPongAreReportedWithTheirPayload) {
  WsFrameReader reader;
  auto events =
      reader.Feed(ClientFrame(kFin | 0x9, std::string(125, 'p')) + ClientFrame(kFin | 0xA, "q"));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, Kind::kPing);
  EXPECT_EQ(events[0].payload, std::string(125, 'p'));
  EXPECT_EQ(events[1].kind, Kind::kPong);
}

TEST(WsFrameReaderTest, BinaryMessagesNeedNotBeUtf8) {
  WsFrameReader reader;
  auto events = reader.Feed(ClientFrame(kFin | 0x2, "\x01\xff\xfe"));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kBinary);
}

TEST(WsFrameReaderTest, ReservedBitsFailWith1002) {
  for (uint8_t rsv : {0x40, 0x20, 0x10}) {
    ExpectFailure(ClientFrame(kFin | rsv | 0x1, "{}"), 1002, std::to_string(rsv));
  }
}

TEST(WsFrameReaderTest, OversizedPingFailsWith1002) {
  ExpectFailure(ClientFrame(kFin | 0x9, std::string(126, 'p')), 1002, "126-byte ping");
  // A 1 MiB ping fails on its header alone: nothing is buffered, nothing is echoed.
  const std::string ping = ClientFrame(kFin | 0x9, std::string(1 << 20, 'p'));
  ExpectFailure(ping.substr(0, 10), 1002, "1 MiB ping header");
}

TEST(WsFrameReaderTest, OversizedPongAndCloseFailWith1002) {
  ExpectFailure(ClientFrame(kFin | 0xA, std::string(200, 'p')), 1002, "pong");
  ExpectFailure(Close(1000, std::string(124, 'r')), 1002, "close");
}

TEST(WsFrameReaderTest, FragmentedControlFramesFailWith1002) {
  ExpectFailure(ClientFrame(0x9, "p"), 1002, "ping");
  ExpectFailure(ClientFrame(0xA, "p"), 1002, "pong");
  ExpectFailure(ClientFrame(0x8, "\x03\xe8"), 1002, "close");
}

TEST(WsFrameReaderTest, ContinuationWithoutAStartFailsWith1002) {
  ExpectFailure(ClientFrame(kFin | 0x0, "{}"), 1002, "final continuation");
  ExpectFailure(ClientFrame(0x0, "{}"), 1002, "non-final continuation");
  // A finished message does not leave one open.
  ExpectFailure(Text("{}") + ClientFrame(kFin, "{}"), 1002, "after a whole message");
}

TEST(WsFrameReaderTest, NewDataFrameInsideAFragmentedMessageFailsWith1002) {
  ExpectFailure(ClientFrame(0x1, "{") + Text("{}"), 1002, "text in text");
  ExpectFailure(ClientFrame(0x1, "{") + ClientFrame(0x2, "b"), 1002, "binary in text");
}

TEST(WsFrameReaderTest, InvalidUtf8TextFailsWith1007) {
  ExpectFailure(Text("\xc3\x28"), 1007, "bad continuation byte");
  ExpectFailure(Text("\xed\xa0\x80"), 1007, "surrogate");
  ExpectFailure(Text("\xc0\xaf"), 1007, "overlong");
  // The reassembled message is checked: a message that ends inside a character fails.
  ExpectFailure(ClientFrame(0x1, "ok") + ClientFrame(kFin, "\xe2\x82"), 1007, "truncated");
}

TEST(WsFrameReaderTest, CloseWithOneBytePayloadFailsWith1002) {
  ExpectFailure(ClientFrame(kFin | 0x8, "\x03"), 1002);
}

TEST(WsFrameReaderTest, InvalidCloseCodesFailWith1002) {
  for (uint16_t code : {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}) {
    ExpectFailure(Close(code), 1002, std::to_string(code));
  }
}

TEST(WsFrameReaderTest, ValidCloseIsReportedWithCodeAndReason) {
  for (uint16_t code : {1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999}) {
    WsFrameReader reader;
    auto events = reader.Feed(Close(code, "bye \xe2\x82\xac"));
    ASSERT_EQ(events.size(), 1u) << code;
    EXPECT_EQ(events[0].kind, Kind::kClose);
    EXPECT_EQ(events[0].code, code);
    EXPECT_EQ(events[0].payload, "bye \xe2\x82\xac");
    EXPECT_TRUE(reader.done());
  }
  WsFrameReader empty;
  auto events = empty.Feed(ClientFrame(kFin | 0x8, ""));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kClose);
  EXPECT_EQ(events[0].code, kCloseNoStatus);
}

TEST(WsFrameReaderTest, CloseReasonNotUtf8FailsWith1007) {
  ExpectFailure(Close(1000, "\xff\xfe"), 1007);
}

TEST(WsFrameReaderTest, UnmaskedClientFrameFailsWith1002) {
  ExpectFailure(ClientFrame(kFin | 0x1, "{}", false), 1002, "text");
  ExpectFailure(ClientFrame(kFin | 0x9, "", false), 1002, "ping");
}

TEST(WsFrameReaderTest, UnknownOpcodesFailWith1002) {
  for (uint8_t opcode : {0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
    ExpectFailure(ClientFrame(kFin | opcode, ""), 1002, std::to_string(opcode));
  }
}

TEST(WsFrameReaderTest, MessageOverTheLimitFailsWith1009) {
  ExpectFailure(ClientFrame(kFin | 0x2, std::string((1 << 20) + 1, 'x')).substr(0, 14), 1009,
                "one frame, header only");
  const std::string half(600000, 'x');
  ExpectFailure(ClientFrame(0x2, half) + ClientFrame(kFin, half), 1009, "two fragments");
  WsFrameReader reader;  // exactly the limit is fine
  auto events = reader.Feed(ClientFrame(kFin | 0x2, std::string(1 << 20, 'x')));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kBinary);
}

TEST(WsFrameReaderTest, NothingIsReportedAfterAFailureOrAClose) {
  WsFrameReader reader;
  auto events = reader.Feed(Text("{}") + ClientFrame(kFin | 0x3, "") + Text("{}"));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].kind, Kind::kFail);
  EXPECT_TRUE(reader.Feed(Text("{}")).empty());
  WsFrameReader closed;
  EXPECT_EQ(closed.Feed(Close(1000) + Text("{}")).size(), 1u);
  EXPECT_TRUE(closed.Feed(Text("{}")).empty());
}

TEST(WsFramingTest, ServerFrameHeaderUsesTheShortestLength) {
  std::array<uint8_t, 10> h{};
  ASSERT_EQ(EncodeFrameHeader(WsOpcode::kText, 125, h), 2u);
  EXPECT_EQ(h[0], 0x81);
  EXPECT_EQ(h[1], 125);
  ASSERT_EQ(EncodeFrameHeader(WsOpcode::kBinary, 126, h), 4u);
  EXPECT_EQ(h[0], 0x82);
  EXPECT_EQ(h[1], 126);
  EXPECT_EQ((h[2] << 8) | h[3], 126);
  ASSERT_EQ(EncodeFrameHeader(WsOpcode::kClose, 0x10000, h), 10u);
  EXPECT_EQ(h[0], 0x88);
  EXPECT_EQ(h[1], 127);
  EXPECT_EQ(h[7], 1);
}

TEST(WsFramingTest, ClosePayloadFitsTheControlLimitOnACharacterBoundary) {
  const std::string payload = EncodeClosePayload(1002, std::string(122, 'r') + "\xe2\x82\xac");
  EXPECT_EQ(payload.substr(0, 2), "\x03\xea");
  EXPECT_EQ(payload.size(), 2u + 122u);  // the euro sign would pass 125 bytes: cut before it
  EXPECT_EQ(EncodeClosePayload(1000, "").size(), 2u);
}

}  // namespace
}  // namespace doppel::gateway
