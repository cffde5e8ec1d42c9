// Hostile MCAP input (issue 26): sizes the file declares are not trusted before memory is
// spent on them. A chunk may declare 30 GiB of records from a 100-byte payload, more or less
// than its data really decompresses to, and record, field and attachment lengths may point far
// past the file. The reader (ScanFile) and the doctor must refuse each, naming the offset, with
// the heap they use bounded by what the file really holds.
//
// Memory is measured deterministically: this binary replaces the global operator new/delete
// and, inside a HeapWatch, counts the bytes live on the heap, keeps their peak, and refuses
// (std::bad_alloc) any allocation that would take them past the watch's budget. So a reader
// that sizes a buffer from a declared 30 GiB fails at once instead of taking the machine's
// memory. (libzstd and liblz4 allocate their own contexts with malloc: bounded by the
// libraries, not by the file's sizes, and not counted.)
#include <gtest/gtest.h>
#include <malloc.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>
#include <string>
#include <vector>

#include "doppel/mcap/compression.h"
#include "doppel/mcap/crc32.h"
#include "doppel/mcap/doctor.h"
#include "doppel/mcap/reader.h"
#include "doppel/mcap/records.h"
#include "test_support.h"

namespace {

std::atomic<bool> g_counting{false};
std::atomic<int64_t> g_live{0};
std::atomic<int64_t> g_peak{0};
std::atomic<int64_t> g_budget{0};

void* Allocate(std::size_t n) {
  if (g_counting.load(std::memory_order_relaxed) &&
      static_cast<int64_t>(n) > g_budget.load() - g_live.load()) {
    throw std::bad_alloc();
  }
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p == nullptr) throw std::bad_alloc();
  if (g_counting.load(std::memory_order_relaxed)) {
    const int64_t live = g_live += static_cast<int64_t>(malloc_usable_size(p));
    int64_t peak = g_peak.load();
    while (live > peak && !g_peak.compare_exchange_weak(peak, live)) {
    }
  }
  return p;
}

void Free(void* p) {
  if (p == nullptr) return;
  if (g_counting.load(std::memory_order_relaxed)) {
    g_live -= static_cast<int64_t>(malloc_usable_size(p));
  }
  std::free(p);
}

}  // namespace

void* operator new(std::size_t n) { return Allocate(n); }
void* operator new[](std::size_t n) { return Allocate(n); }
void operator delete(void* p) noexcept { Free(p); }
void operator delete[](void* p) noexcept { Free(p); }
void operator delete(void* p, std::size_t) noexcept { Free(p); }
void operator delete[](void* p, std::size_t) noexcept { Free(p); }

namespace doppel::mcap {
namespace {

using doppel::testing::TempDir;

constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr uint64_t kMiB = uint64_t{1} << 20;

// Counts the heap from construction to destruction; allocations past `budget` live bytes throw.
class HeapWatch {
 public:
  explicit HeapWatch(uint64_t budget) {
    g_live = 0;
    g_peak = 0;
    g_budget = static_cast<int64_t>(budget);
    g_counting = true;
  }
  ~HeapWatch() { g_counting = false; }
  HeapWatch(const HeapWatch&) = delete;
  HeapWatch& operator=(const HeapWatch&) = delete;
  uint64_t peak() const { return static_cast<uint64_t>(g_peak.load()); }
};

void WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A chunk's records: a schema, a channel and `messages` messages of `payload`.
std::string Records(int messages, const std::string& payload) {
  std::string records;
  Encode(Schema{1, "T", "jsonschema", "{}"}, records);
  Encode(Channel{1, 1, "/a", "json", {}}, records);
  for (int i = 0; i < messages; ++i) {
    Encode(Message{1, static_cast<uint32_t>(i), 10, 10, payload}, records);
  }
  return records;
}

std::string Pack(Compression compression, const std::string& records) {
  std::string packed;
  EXPECT_TRUE(Compress(compression, records, packed).ok());
  return packed;
}

// magic, Header, one Chunk (declaring `declared` uncompressed bytes of `packed`), DataEnd,
// Footer, magic: unindexed, as small as a file with a chunk gets.
struct ChunkFile {
  std::string bytes;
  uint64_t chunk_offset = 0;
};

ChunkFile OneChunk(Compression compression, uint64_t declared, const std::string& packed,
                   uint32_t crc = 0) {
  ChunkFile f;
  f.bytes.assign(kMagic);
  Encode(Header{"", "hostile"}, f.bytes);
  f.chunk_offset = f.bytes.size();
  Encode(Chunk{10, 10, declared, crc, std::string(CompressionName(compression)), packed}, f.bytes);
  Encode(DataEnd{0}, f.bytes);
  Encode(Footer{0, 0, 0}, f.bytes);
  f.bytes.append(kMagic);
  return f;
}

struct Outcome {
  Status scan;
  uint64_t scan_error_offset = 0;
  bool visited_chunk = false;
  uint64_t scan_peak = 0;
  std::vector<Finding> findings;
  uint64_t doctor_peak = 0;
  std::string threw;  // what escaped, when something did
};

// Scans `path` and runs the doctor on it, each inside a HeapWatch of `budget` bytes.
Outcome ReadUnderBudget(const std::string& path, uint64_t chunk_offset, uint64_t budget,
                        uint64_t limit = kMaxChunkUncompressedBytes) {
  Outcome o;
  try {
    ReadOptions options;
    options.max_chunk_uncompressed_bytes = limit;
    HeapWatch watch(budget);
    o.scan = ScanFile(
        path,
        [&](const RecordRef& ref) {
          if (ref.offset == chunk_offset && (ref.in_chunk || ref.opcode == Opcode::kChunk)) {
            o.visited_chunk = true;
          }
          return Status::Ok();
        },
        options, &o.scan_error_offset);
    o.scan_peak = watch.peak();
  } catch (const std::bad_alloc&) {
    o.threw = "ScanFile allocated past the budget of " + std::to_string(budget) + " bytes";
    return o;
  }
  try {
    DoctorOptions options;
    options.max_chunk_uncompressed_bytes = limit;
    HeapWatch watch(budget);
    Result<std::vector<Finding>> findings = Doctor(path, options);
    o.doctor_peak = watch.peak();
    if (!findings.ok()) {
      o.threw = "Doctor failed: " + findings.status().ToString();
    } else {
      o.findings = std::move(*findings);
    }
  } catch (const std::bad_alloc&) {
    o.threw = "Doctor allocated past the budget of " + std::to_string(budget) + " bytes";
  }
  return o;
}

std::string Describe(const std::vector<Finding>& findings) {
  std::string s;
  for (const Finding& f : findings) s += f.what + " @" + std::to_string(f.offset) + "\n";
  return s;
}

// The reader and the doctor both refuse the chunk at `chunk_offset` with `message` (the
// reader's error is "chunk at offset N: <message>"), nothing of it visited, within the budget.
void ExpectRefused(const Outcome& o, uint64_t chunk_offset, const std::string& message,
                   uint64_t budget) {
  ASSERT_EQ(o.threw, "");
  EXPECT_EQ(o.scan.code(), Status::Code::kCorruption) << o.scan.ToString();
  EXPECT_EQ(o.scan.message(), "chunk at offset " + std::to_string(chunk_offset) + ": " + message);
  EXPECT_EQ(o.scan_error_offset, chunk_offset);
  EXPECT_FALSE(o.visited_chunk) << "a record of the bad chunk reached the visitor";
  bool found = false;
  for (const Finding& f : o.findings) {
    found |= f.severity == Severity::kError && f.offset == chunk_offset &&
             f.what.find(message) != std::string::npos;
  }
  EXPECT_TRUE(found) << "doctor findings:\n" << Describe(o.findings);
  EXPECT_LE(o.scan_peak, budget);
  EXPECT_LE(o.doctor_peak, budget);
}

class HostileChunkTest : public ::testing::TestWithParam<Compression> {
 protected:
  std::string codec() const { return std::string(CompressionName(GetParam())); }
};

// The issue's file: one chunk declaring 30 GiB (and one 3 GiB) over a payload of a few dozen
// bytes. Refused from the declaration alone, before a byte is decompressed or allocated.
TEST_P(HostileChunkTest, ChunkDeclaringGigabytesIsRefusedBeforeAnythingIsAllocated) {
  TempDir dir;
  const std::string path = dir.Sub("claim.mcap");
  const std::string packed = Pack(GetParam(), Records(1, "hello"));
  for (const uint64_t declared : {30 * kGiB, 3 * kGiB}) {
    SCOPED_TRACE(codec() + " declaring " + std::to_string(declared));
    const ChunkFile f = OneChunk(GetParam(), declared, packed);
    EXPECT_LT(f.bytes.size(), 256u);
    WriteAll(path, f.bytes);
    // The stream buffer (1 MiB) and small change: nothing in proportion to the claim.
    const uint64_t budget = 4 * kMiB;
    ExpectRefused(ReadUnderBudget(path, f.chunk_offset, budget), f.chunk_offset,
                  "declares " + std::to_string(declared) +
                      " uncompressed bytes, over the limit of 1073741824 bytes per chunk",
                  budget);
  }
}

// With the limit raised past the claim, the chunk is decompressed, but in steps that follow the
// output: it stops at the few bytes the payload really holds, far from the claim.
TEST_P(HostileChunkTest, WithTheLimitRaisedMemoryFollowsTheOutputNotTheClaim) {
  TempDir dir;
  const std::string path = dir.Sub("claim.mcap");
  const std::string records = Records(1, "hello");
  const std::string packed = Pack(GetParam(), records);
  for (const uint64_t declared : {30 * kGiB, 3 * kGiB, 200 * kMiB}) {
    SCOPED_TRACE(codec() + " declaring " + std::to_string(declared));
    const ChunkFile f = OneChunk(GetParam(), declared, packed);
    WriteAll(path, f.bytes);
    const uint64_t budget = 4 * kMiB;
    ExpectRefused(ReadUnderBudget(path, f.chunk_offset, budget, 64 * kGiB), f.chunk_offset,
                  codec() + ": data decompresses to " + std::to_string(records.size()) +
                      " bytes, the chunk declares " + std::to_string(declared),
                  budget);
  }
}

// Under the default limit too: 200 MiB is allowed to be declared, and costs only what the data
// decompresses to.
TEST_P(HostileChunkTest, ChunkDeclaringMoreThanItsDataHoldsIsRefused) {
  TempDir dir;
  const std::string path = dir.Sub("more.mcap");
  const std::string records = Records(300, std::string(300, 'x'));
  const std::string packed = Pack(GetParam(), records);
  for (const uint64_t declared : {records.size() + 1, records.size() * 2, 200 * kMiB}) {
    SCOPED_TRACE(codec() + " declaring " + std::to_string(declared));
    const ChunkFile f = OneChunk(GetParam(), declared, packed);
    WriteAll(path, f.bytes);
    const uint64_t budget = 8 * kMiB;
    ExpectRefused(ReadUnderBudget(path, f.chunk_offset, budget), f.chunk_offset,
                  codec() + ": data decompresses to " + std::to_string(records.size()) +
                      " bytes, the chunk declares " + std::to_string(declared),
                  budget);
  }
}

// Data that decompresses to more than the chunk declares: stopped as soon as the output passes
// the declared size (a 64 MiB bomb declared as 1 KiB costs about 1 KiB, not 64 MiB).
TEST_P(HostileChunkTest, ChunkWhoseDataDecompressesToMoreThanItDeclaresIsRefused) {
  TempDir dir;
  const std::string path = dir.Sub("less.mcap");
  const std::string records = Records(1, std::string(64 * kMiB, '\0'));
  const std::string packed = Pack(GetParam(), records);
  for (const uint64_t declared : {records.size() - 1, uint64_t{1024}, uint64_t{0}}) {
    SCOPED_TRACE(codec() + " declaring " + std::to_string(declared));
    const ChunkFile f = OneChunk(GetParam(), declared, packed);
    WriteAll(path, f.bytes);
    // Just under 64 MiB of output is legitimately held when one byte short is declared.
    const uint64_t budget = declared > 64 * kMiB / 2 ? 112 * kMiB : 4 * kMiB;
    ExpectRefused(ReadUnderBudget(path, f.chunk_offset, budget), f.chunk_offset,
                  codec() + ": data decompresses to more than the " + std::to_string(declared) +
                      " bytes the chunk declares",
                  budget);
  }
}

// Valid chunks still read, the highly compressible included: 64 MiB of zeros packed into a few
// KiB (zstd) or a quarter MiB (lz4) decompresses to the declared size, CRC checked, message
// intact, and costs about what it holds.
TEST_P(HostileChunkTest, ValidChunksIncludingHighlyCompressibleOnesStillRead) {
  TempDir dir;
  const std::string path = dir.Sub("valid.mcap");
  for (const size_t payload : {size_t{100}, size_t{5 * kMiB + 3}, size_t{64 * kMiB}}) {
    SCOPED_TRACE(codec() + " payload " + std::to_string(payload));
    const std::string records = Records(1, std::string(payload, '\0'));
    const std::string packed = Pack(GetParam(), records);
    if (payload == 64 * kMiB) {
      EXPECT_LT(packed.size(), 64 * kMiB / 200);
    }
    const ChunkFile f = OneChunk(GetParam(), records.size(), packed, Crc32(records));
    WriteAll(path, f.bytes);
    // The output twice over (the buffer grows by doubling) plus buffers.
    const uint64_t budget = 2 * records.size() + 8 * kMiB;
    std::vector<size_t> sizes;
    bool all_zero = true;
    uint64_t peak = 0;
    {
      HeapWatch watch(budget);
      Status status = ScanFile(path, [&](const RecordRef& ref) {
        if (ref.opcode == Opcode::kMessage) {
          const std::string_view data = DecodeMessageView(ref.body)->data;
          sizes.push_back(data.size());
          all_zero &= data.find_first_not_of('\0') == std::string_view::npos;
        }
        return Status::Ok();
      });
      peak = watch.peak();
      ASSERT_TRUE(status.ok()) << status.ToString();
    }
    EXPECT_EQ(sizes, std::vector<size_t>{payload});
    EXPECT_TRUE(all_zero);
    EXPECT_LE(peak, budget);
    Result<std::vector<Finding>> findings = Doctor(path);
    ASSERT_TRUE(findings.ok()) << findings.status().ToString();
    EXPECT_FALSE(HasErrors(*findings)) << Describe(*findings);
  }
}

INSTANTIATE_TEST_SUITE_P(Codecs, HostileChunkTest,
                         ::testing::Values(Compression::kZstd, Compression::kLz4),
                         [](const auto& info) { return std::string(CompressionName(info.param)); });

// Decompress in steps: frames written by other tools (concatenated frames, several steps of
// output, an empty declared chunk) still come out whole and exact.
TEST(StepwiseDecompressTest, ConcatenatedFramesAndMultiStepOutputsAreExact) {
  std::string in;
  for (size_t i = 0; i < 3 * kMiB + 12345; ++i) in.push_back(static_cast<char>(i * 31 % 251));
  for (Compression c : {Compression::kZstd, Compression::kLz4}) {
    SCOPED_TRACE(std::string(CompressionName(c)));
    const std::string half1 = in.substr(0, in.size() / 3);
    const std::string half2 = in.substr(in.size() / 3);
    const std::string frames = Pack(c, half1) + Pack(c, half2);
    std::string out = "left over from an earlier chunk";
    Status status = Decompress(CompressionName(c), frames, in.size(), out);
    ASSERT_TRUE(status.ok()) << status.ToString();
    EXPECT_TRUE(out == in);
    // A truncated frame is an error, never a short success.
    status = Decompress(CompressionName(c), std::string_view(frames).substr(0, frames.size() - 7),
                        in.size(), out);
    EXPECT_EQ(status.code(), Status::Code::kCorruption);
    // The context recovers for the next chunk.
    ASSERT_TRUE(Decompress(CompressionName(c), frames, in.size(), out).ok());
    EXPECT_TRUE(out == in);
    // The limit is inclusive: a chunk of exactly the limit reads.
    ASSERT_TRUE(Decompress(CompressionName(c), frames, in.size(), out, in.size()).ok());
    status = Decompress(CompressionName(c), frames, in.size(), out, in.size() - 1);
    EXPECT_EQ(status.code(), Status::Code::kCorruption);
    EXPECT_EQ(status.message(), "declares " + std::to_string(in.size()) +
                                    " uncompressed bytes, over the limit of " +
                                    std::to_string(in.size() - 1) + " bytes per chunk");
  }
}

// Lengths inside records are checked against what the file holds before anything is read or
// copied: a record, an attachment's data, a string, a chunk's inner record.
TEST(HostileLengthTest, LengthsPastTheFileAreRefusedWithoutAllocatingThem) {
  TempDir dir;
  const std::string path = dir.Sub("lengths.mcap");
  const uint64_t budget = 4 * kMiB;

  // A top-level record whose length prefix says 30 GiB.
  std::string file(kMagic);
  Encode(Header{"", "hostile"}, file);
  const uint64_t record_at = file.size();
  Encode(Metadata{"m", {{"k", "v"}}}, file);
  const uint64_t huge = 30 * kGiB;
  std::memcpy(file.data() + record_at + 1, &huge, 8);
  Encode(DataEnd{0}, file);
  Encode(Footer{0, 0, 0}, file);
  file.append(kMagic);
  WriteAll(path, file);
  Outcome o = ReadUnderBudget(path, record_at, budget);
  ASSERT_EQ(o.threw, "");
  EXPECT_EQ(o.scan.message().rfind("truncated record at offset " + std::to_string(record_at) +
                                       " (Metadata record, length 32212254720",
                                   0),
            0u)
      << o.scan.message();
  EXPECT_LE(o.scan_peak, budget);
  EXPECT_LE(o.doctor_peak, budget);
  EXPECT_FALSE(o.findings.empty());

  // An attachment whose data length says 30 GiB, inside a record of a few dozen bytes.
  file.assign(kMagic);
  Encode(Header{"", "hostile"}, file);
  const uint64_t attachment_at = file.size();
  Encode(Attachment{1, 2, "a", "b", "data", 0}, file);
  const size_t data_length_at = attachment_at + 9 + 8 + 8 + 4 + 1 + 4 + 1;
  std::memcpy(file.data() + data_length_at, &huge, 8);
  Encode(DataEnd{0}, file);
  Encode(Footer{0, 0, 0}, file);
  file.append(kMagic);
  WriteAll(path, file);
  o = ReadUnderBudget(path, attachment_at, budget);
  ASSERT_EQ(o.threw, "");
  EXPECT_LE(o.doctor_peak, budget);
  bool found = false;
  for (const Finding& f : o.findings) {
    found |= f.offset == attachment_at && f.what.find("'data' is truncated") != std::string::npos;
  }
  EXPECT_TRUE(found) << Describe(o.findings);

  // Inside a valid chunk: a channel whose topic length says 4 GiB, then an inner record whose
  // length says 30 GiB.
  for (const bool inner_record : {false, true}) {
    std::string records;
    Encode(Schema{1, "T", "jsonschema", "{}"}, records);
    const size_t channel_at = records.size();
    Encode(Channel{1, 1, "/a", "json", {}}, records);
    if (inner_record) {
      std::memcpy(records.data() + channel_at + 1, &huge, 8);
    } else {
      const uint32_t four_gib = 0xFFFFFFFFu;
      std::memcpy(records.data() + channel_at + 9 + 2 + 2, &four_gib, 4);
    }
    const ChunkFile f =
        OneChunk(Compression::kZstd, records.size(), Pack(Compression::kZstd, records));
    WriteAll(path, f.bytes);
    o = ReadUnderBudget(path, f.chunk_offset, budget);
    ASSERT_EQ(o.threw, "");
    const std::string expected =
        inner_record ? "truncated record at offset " + std::to_string(channel_at) +
                           " in the chunk (Channel record, length 32212254720"
                     : "record at offset " + std::to_string(channel_at) +
                           " in the chunk: Channel record: field 'topic' is truncated";
    EXPECT_EQ(o.scan.message().rfind(
                  "chunk at offset " + std::to_string(f.chunk_offset) + ": " + expected, 0),
              0u)
        << o.scan.message();
    EXPECT_FALSE(o.visited_chunk);
    EXPECT_LE(o.scan_peak, budget);
    EXPECT_LE(o.doctor_peak, budget);
  }
}

}  // namespace
}  // namespace doppel::mcap
