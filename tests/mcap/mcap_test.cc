// The MCAP layer against real files: records round-trip, the writer's output reads back (scan,
// summary, doctor) with each compression, and damaged files are refused with their offsets.
#include <gtest/gtest.h>
#include <lz4frame.h>
#include <unistd.h>
#include <zstd.h>

#include <cstring>
#include <fstream>
#include <iterator>

#include "doppel/mcap/compression.h"
#include "doppel/mcap/crc32.h"
#include "doppel/mcap/doctor.h"
#include "doppel/mcap/reader.h"
#include "doppel/mcap/records.h"
#include "doppel/mcap/writer.h"
#include "test_support.h"

namespace doppel::mcap {
namespace {

using doppel::testing::TempDir;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Splits one encoded record into opcode and body, checking the framing.
std::pair<Opcode, std::string> Frame(const std::string& encoded) {
  EXPECT_GE(encoded.size(), kRecordPrefixSize);
  uint64_t length = 0;
  std::memcpy(&length, encoded.data() + 1, 8);
  EXPECT_EQ(length, encoded.size() - kRecordPrefixSize);
  return {static_cast<Opcode>(encoded[0]), encoded.substr(kRecordPrefixSize)};
}

template <typename T, typename Decode>
void ExpectRoundTrip(const T& record, Opcode opcode, Decode decode) {
  std::string encoded;
  Encode(record, encoded);
  auto [op, body] = Frame(encoded);
  EXPECT_EQ(op, opcode);
  auto decoded = decode(body);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(*decoded, record) << OpcodeName(opcode);
}

TEST(Crc32Test, CheckValueOf123456789IsCbf43926) {
  EXPECT_EQ(Crc32("123456789"), 0xCBF43926u);
  EXPECT_EQ(Crc32(""), 0u);
}

TEST(Crc32Test, IncrementalUpdatesEqualOneUpdateOverTheWhole) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data.push_back(static_cast<char>(i * 37 + 11));
  uint32_t crc = kCrc32Start;
  for (size_t at = 0; at < data.size(); at += 13) {
    crc = Crc32Update(crc, data.data() + at, std::min<size_t>(13, data.size() - at));
  }
  EXPECT_EQ(crc, Crc32(data));
}

TEST(RecordsTest, EveryRecordTypeRoundTrips) {
  ExpectRoundTrip(Header{"ros2", "doppel 1"}, Opcode::kHeader, DecodeHeader);
  ExpectRoundTrip(Footer{123, 456, 0xDEADBEEF}, Opcode::kFooter, DecodeFooter);
  ExpectRoundTrip(Schema{7, "pkg/msg/T", "ros2msg", std::string("a\0b", 3)}, Opcode::kSchema,
                  DecodeSchema);
  ExpectRoundTrip(Channel{3, 7, "/joint_states", "cdr", {{"k", "v"}, {"offered", "x: 1"}}},
                  Opcode::kChannel, DecodeChannel);
  ExpectRoundTrip(Message{3, 42, 1000, 999, std::string("\x01\x02\0\x03", 4)}, Opcode::kMessage,
                  DecodeMessage);
  ExpectRoundTrip(MessageIndex{3, {{10, 0}, {10, 40}, {12, 80}}}, Opcode::kMessageIndex,
                  DecodeMessageIndex);
  ExpectRoundTrip(ChunkIndex{1, 2, 3, 4, {{1, 100}, {2, 200}}, 5, "zstd", 6, 7},
                  Opcode::kChunkIndex, DecodeChunkIndex);
  ExpectRoundTrip(Attachment{1, 2, "calib.yaml", "text/yaml", "fx: 1", 99}, Opcode::kAttachment,
                  DecodeAttachment);
  ExpectRoundTrip(AttachmentIndex{10, 20, 1, 2, 5, "calib.yaml", "text/yaml"},
                  Opcode::kAttachmentIndex, DecodeAttachmentIndex);
  ExpectRoundTrip(Statistics{9, 1, 2, 3, 4, 5, 100, 200, {{1, 4}, {2, 5}}}, Opcode::kStatistics,
                  DecodeStatistics);
  ExpectRoundTrip(Metadata{"rosbag2", {{"a", "1"}, {"b", ""}}}, Opcode::kMetadata, DecodeMetadata);
  ExpectRoundTrip(MetadataIndex{10, 20, "rosbag2"}, Opcode::kMetadataIndex, DecodeMetadataIndex);
  ExpectRoundTrip(SummaryOffset{0x08, 1000, 64}, Opcode::kSummaryOffset, DecodeSummaryOffset);
  ExpectRoundTrip(DataEnd{0x12345678}, Opcode::kDataEnd, DecodeDataEnd);

  // Chunk holds a view of its records.
  const std::string records = "records bytes";
  std::string encoded;
  Encode(Chunk{5, 9, 100, 0xABCD, "lz4", records}, encoded);
  auto [op, body] = Frame(encoded);
  EXPECT_EQ(op, Opcode::kChunk);
  Result<Chunk> chunk = DecodeChunk(body);
  ASSERT_TRUE(chunk.ok()) << chunk.status().ToString();
  EXPECT_EQ(chunk->message_start_time, 5u);
  EXPECT_EQ(chunk->message_end_time, 9u);
  EXPECT_EQ(chunk->uncompressed_size, 100u);
  EXPECT_EQ(chunk->uncompressed_crc, 0xABCDu);
  EXPECT_EQ(chunk->compression, "lz4");
  EXPECT_EQ(chunk->records, records);

  // EncodeMessage writes the same bytes as Encode(Message), and the view decodes in place.
  std::string a;
  std::string b;
  EncodeMessage(3, 42, 1000, 999, "payload", a);
  Encode(Message{3, 42, 1000, 999, "payload"}, b);
  EXPECT_EQ(a, b);
  Result<MessageView> view = DecodeMessageView(std::string_view(a).substr(kRecordPrefixSize));
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->data, "payload");
  EXPECT_EQ(view->data.data(), a.data() + kRecordPrefixSize + kMessageFixedSize);
}

TEST(RecordsTest, DecodingRefusesTruncatedAndOverlongFieldsNamingThem) {
  std::string encoded;
  Encode(Channel{3, 7, "/joint_states", "cdr", {{"k", "v"}}}, encoded);
  std::string body = encoded.substr(kRecordPrefixSize);

  Result<Channel> truncated = DecodeChannel(std::string_view(body).substr(0, 10));
  ASSERT_FALSE(truncated.ok());
  EXPECT_EQ(truncated.status().code(), Status::Code::kCorruption);
  EXPECT_NE(truncated.status().message().find("Channel record: field 'topic'"), std::string::npos)
      << truncated.status().message();

  // The topic's length prefix claims more bytes than the body holds.
  std::string overlong = body;
  overlong[4] = '\x7F';
  Result<Channel> bad = DecodeChannel(overlong);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'topic'"), std::string::npos) << bad.status().message();

  // A map entry running past the map's byte length.
  std::string map_body = body;
  const size_t map_length_at = 2 + 2 + 4 + 13 + 4 + 3;
  map_body[map_length_at] = 5;
  Result<Channel> bad_map = DecodeChannel(map_body);
  ASSERT_FALSE(bad_map.ok());
  EXPECT_NE(bad_map.status().message().find("'metadata'"), std::string::npos)
      << bad_map.status().message();

  EXPECT_FALSE(DecodeFooter("short").ok());
  EXPECT_FALSE(DecodeMessageView(std::string(21, '\0')).ok());
  EXPECT_TRUE(DecodeMessageView(std::string(22, '\0')).ok());
}

TEST(CompressionTest, NamesParseFromChunkAndCommandLineSpellings) {
  EXPECT_EQ(*ParseCompression("none"), Compression::kNone);
  EXPECT_EQ(*ParseCompression(""), Compression::kNone);
  EXPECT_EQ(*ParseCompression("lz4"), Compression::kLz4);
  EXPECT_EQ(*ParseCompression("zstd"), Compression::kZstd);
  Result<Compression> bad = ParseCompression("xyz");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "unknown compression 'xyz'");
  EXPECT_EQ(CompressionName(Compression::kZstd), "zstd");
  EXPECT_EQ(CompressionName(Compression::kNone), "");
}

std::string Compressible(size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s.push_back(static_cast<char>('a' + (i * 7 % 13)));
  return s;
}

TEST(CompressionTest, EachCompressionRoundTripsAndWrongSizeIsCorruption) {
  const std::string in = Compressible(100000);
  for (Compression c : {Compression::kNone, Compression::kLz4, Compression::kZstd}) {
    std::string packed;
    ASSERT_TRUE(Compress(c, in, packed).ok());
    std::string out;
    Status status = Decompress(CompressionName(c), packed, in.size(), out);
    ASSERT_TRUE(status.ok()) << status.ToString();
    EXPECT_EQ(out, in);
    Status wrong = Decompress(CompressionName(c), packed, in.size() - 1, out);
    EXPECT_EQ(wrong.code(), Status::Code::kCorruption) << CompressionName(c);
    wrong = Decompress(CompressionName(c), packed, in.size() + 1, out);
    EXPECT_EQ(wrong.code(), Status::Code::kCorruption) << CompressionName(c);
  }
  std::string out;
  Status unknown = Decompress("xyz", "abc", 3, out);
  EXPECT_EQ(unknown.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(unknown.message(), "unknown compression 'xyz'");
}

TEST(CompressionTest, Lz4FramesWithChecksumsAndWithoutContentSizeDecompress) {
  const std::string in = Compressible(300000);
  LZ4F_preferences_t prefs;
  std::memset(&prefs, 0, sizeof(prefs));
  prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
  prefs.frameInfo.blockChecksumFlag = LZ4F_blockChecksumEnabled;
  prefs.frameInfo.blockSizeID = LZ4F_max64KB;
  prefs.frameInfo.blockMode = LZ4F_blockIndependent;
  prefs.frameInfo.contentSize = 0;  // unknown, as JS writers leave it
  std::string frame(LZ4F_compressFrameBound(in.size(), &prefs), '\0');
  size_t n = LZ4F_compressFrame(frame.data(), frame.size(), in.data(), in.size(), &prefs);
  ASSERT_FALSE(LZ4F_isError(n));
  frame.resize(n);
  std::string out;
  Status status = Decompress("lz4", frame, in.size(), out);
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(out, in);

  // A damaged content checksum is caught.
  std::string damaged = frame;
  damaged[damaged.size() - 1] ^= 0x55;
  EXPECT_EQ(Decompress("lz4", damaged, in.size(), out).code(), Status::Code::kCorruption);
  // A truncated frame too; and the context recovers for the next chunk.
  EXPECT_EQ(
      Decompress("lz4", std::string_view(frame).substr(0, frame.size() / 2), in.size(), out).code(),
      Status::Code::kCorruption);
  ASSERT_TRUE(Decompress("lz4", frame, in.size(), out).ok());
  EXPECT_EQ(out, in);
}

TEST(CompressionTest, ZstdFramesWithoutContentSizeDecompress) {
  const std::string in = Compressible(200000);
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0);
  std::string frame(ZSTD_compressBound(in.size()), '\0');
  size_t n = ZSTD_compress2(cctx, frame.data(), frame.size(), in.data(), in.size());
  ZSTD_freeCCtx(cctx);
  ASSERT_FALSE(ZSTD_isError(n));
  frame.resize(n);
  ASSERT_EQ(ZSTD_getFrameContentSize(frame.data(), frame.size()), ZSTD_CONTENTSIZE_UNKNOWN);
  std::string out;
  Status status = Decompress("zstd", frame, in.size(), out);
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(out, in);
}

struct Written {
  uint16_t channel;
  uint32_t sequence;
  uint64_t log_time;
  uint64_t publish_time;
  std::string data;
};

// Writes two channels (one schemaless) with compressible payloads, a metadata record and an
// attachment; returns what was written.
std::vector<Written> WriteSample(const std::string& path, WriterOptions options,
                                 int messages = 3000, bool reverse_pairs = false) {
  auto writer = Writer::Open(path, options);
  EXPECT_TRUE(writer.ok()) << writer.status().ToString();
  uint16_t schema =
      (*writer)->AddSchema("doppel/JointState", "jsonschema", "{\"type\":\"object\"}");
  EXPECT_EQ(schema, 1);
  uint16_t unused_schema = (*writer)->AddSchema("unused/T", "ros2msg", "int32 x");
  EXPECT_EQ(unused_schema, 2);
  uint16_t joints = (*writer)->AddChannel(schema, "/joints", "json", {{"robot", "r1"}});
  uint16_t raw = (*writer)->AddChannel(0, "/raw", "raw", {});
  (*writer)->AddChannel(unused_schema, "/never", "cdr", {});
  EXPECT_EQ(joints, 1);
  EXPECT_EQ(raw, 2);
  std::vector<Written> written;
  for (int i = 0; i < messages; ++i) {
    uint64_t t = 1'000'000'000ull + static_cast<uint64_t>(i) * 1000;
    if (reverse_pairs) t = 1'000'000'000ull + static_cast<uint64_t>(i ^ 1) * 1000;
    Written w{
        (i % 3 == 0) ? raw : joints, static_cast<uint32_t>(i), t, t - 5,
        "{\"position\":" + std::to_string(i) + ",\"pad\":\"" + Compressible(40 + i % 50) + "\"}"};
    EXPECT_TRUE(
        (*writer)->WriteMessage(w.channel, w.sequence, w.log_time, w.publish_time, w.data).ok());
    written.push_back(std::move(w));
    if (i == messages / 2) {
      EXPECT_TRUE((*writer)->WriteMetadata("rosbag2", {{"version", "9"}}).ok());
      EXPECT_TRUE(
          (*writer)->WriteAttachment(t, 7, "calib.yaml", "text/yaml", "fx: 500\nfy: 500\n").ok());
    }
  }
  EXPECT_EQ((*writer)->message_count(), static_cast<uint64_t>(messages));
  Status closed = (*writer)->Close();
  EXPECT_TRUE(closed.ok()) << closed.ToString();
  EXPECT_EQ((*writer)->bytes_written(), ReadAll(path).size());
  return written;
}

class WriterCompressionTest : public ::testing::TestWithParam<Compression> {};

TEST_P(WriterCompressionTest, OutputReadsBackExactlyThroughScanSummaryAndDoctor) {
  TempDir dir;
  const std::string path = dir.Sub("out.mcap");
  WriterOptions options;
  options.compression = GetParam();
  options.chunk_size = 64 << 10;
  options.profile = "ros2";
  std::vector<Written> written = WriteSample(path, options);

  std::vector<Written> read;
  std::vector<std::string> compressions;
  std::vector<Opcode> top_level;
  int metadata = 0;
  int attachments = 0;
  Status status = ScanFile(path, [&](const RecordRef& ref) {
    if (!ref.in_chunk) top_level.push_back(ref.opcode);
    if (ref.opcode == Opcode::kMessage) {
      EXPECT_TRUE(ref.in_chunk);
      Result<MessageView> m = DecodeMessageView(ref.body);
      EXPECT_TRUE(m.ok());
      read.push_back(
          {m->channel_id, m->sequence, m->log_time, m->publish_time, std::string(m->data)});
    } else if (ref.opcode == Opcode::kChunk) {
      compressions.push_back(DecodeChunk(ref.body)->compression);
    } else if (ref.opcode == Opcode::kMetadata) {
      ++metadata;
      EXPECT_EQ(DecodeMetadata(ref.body)->metadata.at("version"), "9");
    } else if (ref.opcode == Opcode::kAttachment) {
      ++attachments;
      Result<Attachment> a = DecodeAttachment(ref.body);
      EXPECT_EQ(a->data, "fx: 500\nfy: 500\n");
      EXPECT_EQ(a->crc, AttachmentCrc(*a));
    }
    return Status::Ok();
  });
  ASSERT_TRUE(status.ok()) << status.ToString();
  ASSERT_EQ(read.size(), written.size());
  for (size_t i = 0; i < read.size(); ++i) {
    EXPECT_EQ(read[i].channel, written[i].channel);
    EXPECT_EQ(read[i].sequence, written[i].sequence);
    EXPECT_EQ(read[i].log_time, written[i].log_time);
    EXPECT_EQ(read[i].publish_time, written[i].publish_time);
    ASSERT_EQ(read[i].data, written[i].data) << i;
  }
  EXPECT_EQ(metadata, 1);
  EXPECT_EQ(attachments, 1);
  ASSERT_GT(compressions.size(), 2u);
  for (const std::string& c : compressions) EXPECT_EQ(c, CompressionName(GetParam()));
  EXPECT_EQ(top_level.front(), Opcode::kHeader);
  EXPECT_EQ(top_level.back(), Opcode::kFooter);

  Result<Summary> summary = ReadSummary(path);
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  EXPECT_EQ(summary->header.profile, "ros2");
  EXPECT_EQ(summary->header.library, "doppel");
  ASSERT_EQ(summary->schemas.size(), 1u);  // the unused schema is not written
  EXPECT_EQ(summary->schemas.at(1).name, "doppel/JointState");
  ASSERT_EQ(summary->channels.size(), 2u);
  EXPECT_EQ(summary->channels.at(1).topic, "/joints");
  EXPECT_EQ(summary->channels.at(1).metadata.at("robot"), "r1");
  EXPECT_EQ(summary->channels.at(2).schema_id, 0);
  ASSERT_TRUE(summary->statistics.has_value());
  const Statistics& stats = *summary->statistics;
  EXPECT_EQ(stats.message_count, written.size());
  EXPECT_EQ(stats.schema_count, 1);
  EXPECT_EQ(stats.channel_count, 2u);
  EXPECT_EQ(stats.metadata_count, 1u);
  EXPECT_EQ(stats.attachment_count, 1u);
  EXPECT_EQ(stats.chunk_count, compressions.size());
  EXPECT_EQ(stats.message_start_time, written.front().log_time);
  EXPECT_EQ(stats.message_end_time, written.back().log_time);
  EXPECT_EQ(stats.channel_message_counts.at(2), 1000u);
  EXPECT_EQ(stats.channel_message_counts.at(1), 2000u);
  EXPECT_EQ(summary->chunk_indexes.size(), compressions.size());
  EXPECT_EQ(summary->chunk_indexes.front().message_start_time, written.front().log_time);
  EXPECT_EQ(summary->chunk_indexes.back().message_end_time, written.back().log_time);
  ASSERT_EQ(summary->metadata_indexes.size(), 1u);
  EXPECT_EQ(summary->metadata_indexes[0].name, "rosbag2");
  ASSERT_EQ(summary->attachment_indexes.size(), 1u);
  EXPECT_EQ(summary->attachment_indexes[0].data_size, 16u);
  std::vector<uint8_t> groups;
  for (const SummaryOffset& o : summary->summary_offsets) groups.push_back(o.group_opcode);
  EXPECT_EQ(groups, (std::vector<uint8_t>{0x03, 0x04, 0x0B, 0x08, 0x0A, 0x0D}));

  Result<std::vector<Finding>> findings = Doctor(path);
  ASSERT_TRUE(findings.ok()) << findings.status().ToString();
  for (const Finding& f : *findings) ADD_FAILURE() << f.what << " @" << f.offset;
}

INSTANTIATE_TEST_SUITE_P(AllCompressions, WriterCompressionTest,
                         ::testing::Values(Compression::kNone, Compression::kLz4,
                                           Compression::kZstd),
                         [](const auto& info) {
                           return std::string(info.param == Compression::kNone  ? "None"
                                              : info.param == Compression::kLz4 ? "Lz4"
                                                                                : "Zstd");
                         });

TEST(WriterTest, OutOfOrderLogTimesAreIndexedByMinMaxAndReportedByDoctor) {
  TempDir dir;
  const std::string path = dir.Sub("unordered.mcap");
  WriterOptions options;
  options.chunk_size = 16 << 10;
  WriteSample(path, options, 400, /*reverse_pairs=*/true);

  Result<Summary> summary = ReadSummary(path);
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  EXPECT_EQ(summary->statistics->message_start_time, 1'000'000'000u);
  EXPECT_EQ(summary->statistics->message_end_time, 1'000'000'000u + 399 * 1000);
  // Message index entries come sorted by log time even though the messages were not.
  std::vector<std::pair<uint64_t, uint64_t>> chunk_messages;
  bool first_chunk = true;
  Status status = ScanFile(path, [&](const RecordRef& ref) {
    if (ref.opcode == Opcode::kMessageIndex && first_chunk) {
      auto index = DecodeMessageIndex(ref.body);
      EXPECT_TRUE(std::is_sorted(index->records.begin(), index->records.end()));
    }
    if (ref.opcode == Opcode::kChunk && !chunk_messages.empty()) first_chunk = false;
    if (ref.opcode == Opcode::kMessage && first_chunk) {
      chunk_messages.emplace_back(DecodeMessageView(ref.body)->log_time, ref.offset_in_chunk);
    }
    return Status::Ok();
  });
  ASSERT_TRUE(status.ok()) << status.ToString();
  uint64_t lo = UINT64_MAX;
  uint64_t hi = 0;
  for (const auto& [t, off] : chunk_messages) {
    lo = std::min(lo, t);
    hi = std::max(hi, t);
  }
  EXPECT_EQ(summary->chunk_indexes.front().message_start_time, lo);
  EXPECT_EQ(summary->chunk_indexes.front().message_end_time, hi);

  Result<std::vector<Finding>> findings = Doctor(path);
  ASSERT_TRUE(findings.ok());
  ASSERT_FALSE(findings->empty());
  for (const Finding& f : *findings) {
    EXPECT_TRUE(f.what.find("less than the latest log time") != std::string::npos ||
                f.what.find("more messages with a log time") != std::string::npos)
        << f.what;
  }
}

TEST(WriterTest, OpeningAnUnwritablePathIsAnIOErrorNamingIt) {
  auto writer = Writer::Open("/nonexistent-dir/x.mcap", WriterOptions{});
  ASSERT_FALSE(writer.ok());
  EXPECT_EQ(writer.status().code(), Status::Code::kIOError);
  EXPECT_NE(writer.status().message().find("/nonexistent-dir/x.mcap"), std::string::npos);
}

TEST(WriterTest, UnknownChannelIsInvalidArgument) {
  TempDir dir;
  auto writer = Writer::Open(dir.Sub("x.mcap"), WriterOptions{});
  ASSERT_TRUE(writer.ok());
  EXPECT_EQ((*writer)->WriteMessage(1, 0, 0, 0, "x").code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE((*writer)->Close().ok());
}

TEST(WriterTest, EmptyFileIsValid) {
  TempDir dir;
  const std::string path = dir.Sub("empty.mcap");
  auto writer = Writer::Open(path, WriterOptions{});
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Close().ok());
  Result<Summary> summary = ReadSummary(path);
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  EXPECT_EQ(summary->statistics->message_count, 0u);
  EXPECT_TRUE(summary->chunk_indexes.empty());
  Result<std::vector<Finding>> findings = Doctor(path);
  ASSERT_TRUE(findings.ok());
  EXPECT_TRUE(findings->empty()) << findings->front().what;
}

// A file with chunks at known offsets, for damaging.
struct Damaged {
  std::string path;
  std::string bytes;
  std::vector<ChunkIndex> chunks;
};

Damaged Sample(const TempDir& dir, Compression compression) {
  Damaged d;
  d.path = dir.Sub("damaged.mcap");
  WriterOptions options;
  options.compression = compression;
  options.chunk_size = 32 << 10;
  WriteSample(d.path, options, 1500);
  d.chunks = ReadSummary(d.path)->chunk_indexes;
  EXPECT_GE(d.chunks.size(), 3u);
  d.bytes = ReadAll(d.path);
  return d;
}

// Scans `path` expecting failure; returns the error and checks nothing of the chunk at
// `bad_chunk` was visited.
Status ScanExpectingFailure(const std::string& path, uint64_t bad_chunk, uint64_t* at) {
  bool visited_bad = false;
  Status status = ScanFile(
      path,
      [&](const RecordRef& ref) {
        if (ref.offset == bad_chunk) visited_bad = true;
        return Status::Ok();
      },
      ReadOptions{}, at);
  EXPECT_FALSE(visited_bad) << "a record of the bad chunk reached the visitor";
  EXPECT_FALSE(status.ok());
  return status;
}

bool HasFinding(const std::vector<Finding>& findings, const std::string& text, uint64_t offset) {
  for (const Finding& f : findings) {
    if (f.what.find(text) != std::string::npos && f.offset == offset) return true;
  }
  return false;
}

std::string Describe(const std::vector<Finding>& findings) {
  std::string s;
  for (const Finding& f : findings) s += f.what + " @" + std::to_string(f.offset) + "\n";
  return s;
}

TEST(DamageTest, FlippedByteInAChunkIsACrcMismatchNamingTheChunk) {
  TempDir dir;
  Damaged d = Sample(dir, Compression::kNone);
  const ChunkIndex& victim = d.chunks[1];
  d.bytes[victim.chunk_start_offset + victim.chunk_length - 10] ^= 0x20;  // message data
  WriteAll(d.path, d.bytes);

  uint64_t at = 0;
  Status status = ScanExpectingFailure(d.path, victim.chunk_start_offset, &at);
  EXPECT_EQ(status.code(), Status::Code::kCorruption);
  const std::string where = "chunk at offset " + std::to_string(victim.chunk_start_offset);
  EXPECT_EQ(status.message().rfind(where + ": uncompressed CRC mismatch (stored 0x", 0), 0u)
      << status.message();
  EXPECT_EQ(at, victim.chunk_start_offset);

  Result<std::vector<Finding>> findings = Doctor(d.path);
  ASSERT_TRUE(findings.ok());
  EXPECT_TRUE(
      HasFinding(*findings, where + ": uncompressed CRC mismatch", victim.chunk_start_offset))
      << Describe(*findings);
  // The bad chunk is skipped; the data section CRC, which covers it, no longer holds either.
  EXPECT_NE(Describe(*findings).find("data section CRC mismatch"), std::string::npos)
      << Describe(*findings);
}

TEST(DamageTest, TruncatedFileIsRefusedNamingTheCutRecord) {
  TempDir dir;
  Damaged d = Sample(dir, Compression::kZstd);
  const ChunkIndex& victim = d.chunks[2];
  WriteAll(d.path, d.bytes.substr(0, victim.chunk_start_offset + victim.chunk_length / 2));

  uint64_t at = 0;
  Status status = ScanExpectingFailure(d.path, victim.chunk_start_offset, &at);
  EXPECT_EQ(status.code(), Status::Code::kCorruption);
  EXPECT_EQ(status.message().rfind("truncated record at offset " +
                                       std::to_string(victim.chunk_start_offset) +
                                       " (Chunk record, length ",
                                   0),
            0u)
      << status.message();
  EXPECT_EQ(at, victim.chunk_start_offset);
  EXPECT_EQ(ReadSummary(d.path).status().code(), Status::Code::kCorruption);

  Result<std::vector<Finding>> findings = Doctor(d.path);
  ASSERT_TRUE(findings.ok());
  EXPECT_TRUE(HasFinding(*findings, "truncated record at offset", victim.chunk_start_offset))
      << Describe(*findings);

  // Cut at a record boundary: the footer is missing.
  WriteAll(d.path, d.bytes.substr(0, victim.chunk_start_offset));
  status = ScanFile(d.path, [](const RecordRef&) { return Status::Ok(); });
  EXPECT_EQ(status.message(), "missing footer: the file ends at offset " +
                                  std::to_string(victim.chunk_start_offset) +
                                  " without a Footer record");
}

TEST(DamageTest, CorruptChunkLengthIsRefusedNamingTheChunk) {
  TempDir dir;
  Damaged d = Sample(dir, Compression::kLz4);
  const ChunkIndex& victim = d.chunks[1];
  d.bytes[victim.chunk_start_offset + 6] = '\x40';  // length now far beyond the file
  WriteAll(d.path, d.bytes);

  uint64_t at = 0;
  Status status = ScanExpectingFailure(d.path, victim.chunk_start_offset, &at);
  EXPECT_EQ(status.message().rfind("truncated record at offset " +
                                       std::to_string(victim.chunk_start_offset) + " (Chunk record",
                                   0),
            0u)
      << status.message();
  Result<std::vector<Finding>> findings = Doctor(d.path);
  ASSERT_TRUE(findings.ok());
  EXPECT_TRUE(HasFinding(*findings, "Chunk record", victim.chunk_start_offset))
      << Describe(*findings);

  // A length one byte short: the chunk's records field overruns the record.
  d = Sample(dir, Compression::kLz4);
  const ChunkIndex& shorter = d.chunks[1];
  uint64_t length = 0;
  std::memcpy(&length, d.bytes.data() + shorter.chunk_start_offset + 1, 8);
  length -= 1;
  std::memcpy(d.bytes.data() + shorter.chunk_start_offset + 1, &length, 8);
  WriteAll(d.path, d.bytes);
  status = ScanExpectingFailure(d.path, shorter.chunk_start_offset, &at);
  EXPECT_EQ(
      status.message().rfind(
          "chunk at offset " + std::to_string(shorter.chunk_start_offset) + ": Chunk record", 0),
      0u)
      << status.message();
}

TEST(DamageTest, UnknownCompressionIsRefusedNamingTheChunk) {
  TempDir dir;
  Damaged d = Sample(dir, Compression::kZstd);
  const ChunkIndex& victim = d.chunks[1];
  const size_t name_at = d.bytes.find("zstd", victim.chunk_start_offset);
  ASSERT_LT(name_at, victim.chunk_start_offset + 64);
  d.bytes.replace(name_at, 4, "zstx");
  WriteAll(d.path, d.bytes);

  uint64_t at = 0;
  Status status = ScanExpectingFailure(d.path, victim.chunk_start_offset, &at);
  EXPECT_EQ(status.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(status.message(), "unknown compression 'zstx' in chunk at offset " +
                                  std::to_string(victim.chunk_start_offset));

  // With on_bad_chunk the scan reports it, skips it and reads the rest.
  std::vector<uint64_t> bad;
  uint64_t messages = 0;
  ReadOptions options;
  options.verify_crcs = false;  // the data-section CRC covers the patched byte
  options.on_bad_chunk = [&](const Status&, uint64_t offset) { bad.push_back(offset); };
  status = ScanFile(
      d.path,
      [&](const RecordRef& ref) {
        EXPECT_NE(ref.offset, victim.chunk_start_offset);
        if (ref.opcode == Opcode::kMessage) ++messages;
        return Status::Ok();
      },
      options);
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(bad, std::vector<uint64_t>{victim.chunk_start_offset});
  EXPECT_GT(messages, 0u);
  EXPECT_LT(messages, 1500u);

  Result<std::vector<Finding>> findings = Doctor(d.path);
  ASSERT_TRUE(findings.ok());
  EXPECT_TRUE(HasFinding(*findings, "unknown compression 'zstx'", victim.chunk_start_offset))
      << Describe(*findings);
}

TEST(DamageTest, BadMagicIsRefused) {
  TempDir dir;
  const std::string path = dir.Sub("not.mcap");
  WriteAll(path, "hello world, this is not an mcap file at all.........................");
  Status status = ScanFile(path, [](const RecordRef&) { return Status::Ok(); });
  EXPECT_EQ(status.message(), "bad magic at offset 0: not an MCAP file");
  EXPECT_EQ(ReadSummary(path).status().code(), Status::Code::kCorruption);
}

void AppendPrivateRecord(std::string& out) {
  out.push_back(static_cast<char>(0x80));
  const uint64_t length = 3;
  out.append(reinterpret_cast<const char*>(&length), 8);
  out.append("abc");
}

TEST(ReaderTest, UnchunkedUnindexedFileWrittenByHandIsScanned) {
  TempDir dir;
  const std::string path = dir.Sub("plain.mcap");
  std::string file(kMagic);
  Encode(Header{"", "hand"}, file);
  Encode(Schema{1, "T", "jsonschema", "{}"}, file);
  Encode(Channel{5, 1, "/a", "json", {}}, file);
  AppendPrivateRecord(file);  // private records are skipped
  Encode(Message{5, 0, 10, 10, "one"}, file);
  Encode(Message{5, 1, 20, 20, "two"}, file);
  Encode(Metadata{"m", {{"k", "v"}}}, file);
  Encode(Message{5, 2, 30, 30, "three"}, file);
  Encode(DataEnd{Crc32(file)}, file);
  Encode(Footer{0, 0, 0}, file);
  file.append(kMagic);
  WriteAll(path, file);

  std::vector<std::string> data;
  std::vector<Opcode> opcodes;
  Status status = ScanFile(path, [&](const RecordRef& ref) {
    opcodes.push_back(ref.opcode);
    EXPECT_FALSE(ref.in_chunk);
    if (ref.opcode == Opcode::kMessage) data.emplace_back(DecodeMessageView(ref.body)->data);
    return Status::Ok();
  });
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(data, (std::vector<std::string>{"one", "two", "three"}));
  EXPECT_EQ(opcodes, (std::vector<Opcode>{Opcode::kHeader, Opcode::kSchema, Opcode::kChannel,
                                          Opcode::kMessage, Opcode::kMessage, Opcode::kMetadata,
                                          Opcode::kMessage, Opcode::kDataEnd, Opcode::kFooter}));
  EXPECT_EQ(ReadSummary(path).status().code(), Status::Code::kNotFound);
  Result<std::vector<Finding>> findings = Doctor(path);
  ASSERT_TRUE(findings.ok());
  EXPECT_TRUE(findings->empty()) << Describe(*findings);
}

TEST(ReaderTest, HandWrittenChunkFromAnotherWriterIsReadAndVisitedAfterItsChunk) {
  TempDir dir;
  const std::string path = dir.Sub("chunked.mcap");
  std::string records;
  Encode(Schema{1, "T", "jsonschema", "{}"}, records);
  Encode(Channel{0, 1, "/zero", "json", {}}, records);  // channel id 0 is legal
  AppendPrivateRecord(records);
  Encode(Message{0, 0, 50, 50, "x"}, records);
  Encode(Message{0, 1, 40, 40, "y"}, records);
  std::string lz4;
  ASSERT_TRUE(Compress(Compression::kLz4, records, lz4).ok());
  std::string file(kMagic);
  Encode(Header{"ros1", "other"}, file);
  const uint64_t chunk_offset = file.size();
  Encode(Chunk{40, 50, records.size(), Crc32(records), "lz4", lz4}, file);
  Encode(DataEnd{0}, file);
  Encode(Footer{0, 0, 0}, file);
  file.append(kMagic);
  WriteAll(path, file);

  std::vector<std::pair<Opcode, bool>> seen;
  Status status = ScanFile(path, [&](const RecordRef& ref) {
    seen.emplace_back(ref.opcode, ref.in_chunk);
    if (ref.in_chunk) {
      EXPECT_EQ(ref.offset, chunk_offset);
    }
    return Status::Ok();
  });
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(seen, (std::vector<std::pair<Opcode, bool>>{{Opcode::kHeader, false},
                                                        {Opcode::kChunk, false},
                                                        {Opcode::kSchema, true},
                                                        {Opcode::kChannel, true},
                                                        {Opcode::kMessage, true},
                                                        {Opcode::kMessage, true},
                                                        {Opcode::kDataEnd, false},
                                                        {Opcode::kFooter, false}}));
  // Doctor: the only finding is the log time going back inside the chunk.
  Result<std::vector<Finding>> findings = Doctor(path);
  ASSERT_TRUE(findings.ok());
  ASSERT_EQ(findings->size(), 1u) << Describe(*findings);
  EXPECT_NE((*findings)[0].what.find("Message.log_time 40 on \"/zero\" is less than the latest"),
            std::string::npos);
}

TEST(DoctorTest, ReportsSchemaZeroMessageBeforeChannelAndMissingLibrary) {
  TempDir dir;
  const std::string path = dir.Sub("bad.mcap");
  std::string file(kMagic);
  Encode(Header{"custom", ""}, file);
  const uint64_t schema_at = file.size();
  Encode(Schema{0, "T", "jsonschema", "{}"}, file);
  const uint64_t message_at = file.size();
  Encode(Message{9, 0, 10, 10, "orphan"}, file);
  Encode(Channel{9, 4, "/x", "json", {}}, file);
  Encode(Footer{0, 0, 0}, file);  // no DataEnd
  file.append(kMagic);
  WriteAll(path, file);

  Result<std::vector<Finding>> findings = Doctor(path);
  ASSERT_TRUE(findings.ok());
  const std::string all = Describe(*findings);
  EXPECT_TRUE(HasFinding(*findings, "Header.library is empty", 8)) << all;
  EXPECT_TRUE(HasFinding(*findings, "not a well-known profile", 8)) << all;
  EXPECT_TRUE(HasFinding(*findings, "Schema id 0 is reserved", schema_at)) << all;
  EXPECT_TRUE(HasFinding(*findings, "before its Channel record", message_at)) << all;
  EXPECT_NE(all.find("refers to unknown Schema 4"), std::string::npos) << all;
  EXPECT_NE(all.find("no DataEnd record"), std::string::npos) << all;
}

TEST(DoctorTest, ReportsStatisticsAndChunkIndexesThatDisagreeWithTheFile) {
  TempDir dir;
  const std::string path = dir.Sub("lying.mcap");
  WriterOptions options;
  options.compression = Compression::kNone;
  options.chunk_size = 32 << 10;
  WriteSample(path, options, 600);
  std::string bytes = ReadAll(path);
  Result<Summary> summary = ReadSummary(path);
  ASSERT_TRUE(summary.ok());
  // Patch Statistics.message_count and the first ChunkIndex's message_end_time in place, and
  // clear the summary CRC so the file still reads.
  uint64_t stats_at = 0;
  uint64_t index_at = 0;
  for (const SummaryOffset& o : summary->summary_offsets) {
    if (o.group_opcode == 0x0B) stats_at = o.group_start;
    if (o.group_opcode == 0x08) index_at = o.group_start;
  }
  ASSERT_NE(stats_at, 0u);
  ASSERT_NE(index_at, 0u);
  bytes[stats_at + kRecordPrefixSize] ^= 1;
  bytes[index_at + kRecordPrefixSize + 8] ^= 1;
  std::memset(bytes.data() + bytes.size() - 8 - 4, 0, 4);
  WriteAll(path, bytes);

  Result<std::vector<Finding>> findings = Doctor(path);
  ASSERT_TRUE(findings.ok());
  const std::string all = Describe(*findings);
  EXPECT_TRUE(HasFinding(*findings, "Statistics.message_count is 601, the file has 600", stats_at))
      << all;
  EXPECT_TRUE(HasFinding(*findings, "message_end_time differs from the chunk's", index_at)) << all;
}

}  // namespace
}  // namespace doppel::mcap
