// The one FlatBuffers verification path: bytes are read in place only when 8-aligned.
#include "doppel/schemas/verify_root.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "doppel/schemas/envelope.h"
#include "doppel/schemas/log_records_generated.h"
#include "doppel/schemas/twin_state_generated.h"

namespace doppel::schemas {
namespace {

std::string SnapshotRecordBytes() {
  flatbuffers::FlatBufferBuilder fbb;
  auto stream = fbb.CreateString("robot-1");
  auto state = fbb.CreateVector(std::vector<uint8_t>{1, 2, 3});
  fbb.Finish(fb::CreateSnapshotRecord(fbb, stream, 7, 1, 42, state));
  return std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
}

// `bytes` copied to an address that is `offset` bytes past an 8-aligned one.
std::string_view At(const std::string& bytes, size_t offset, std::vector<uint64_t>& storage) {
  storage.assign((bytes.size() + offset + 7) / 8 + 1, 0);
  char* to = reinterpret_cast<char*>(storage.data()) + offset;
  std::memcpy(to, bytes.data(), bytes.size());
  return std::string_view(to, bytes.size());
}

TEST(VerifyRootTest, AlignedBytesVerifyAndReadBack) {
  std::vector<uint64_t> storage;
  auto rec = VerifySnapshotRecord(At(SnapshotRecordBytes(), 0, storage));
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_EQ((*rec)->stream()->str(), "robot-1");
  EXPECT_EQ((*rec)->stream_version(), 7u);
  EXPECT_EQ((*rec)->recorded_ns(), 42);
}

// What a RocksDB value pinned in a block or a ZeroMQ frame may look like: refused with a
// clear error rather than read in place (undefined behaviour).
TEST(VerifyRootTest, MisalignedBytesAreRefusedNotReadInPlace) {
  const std::string bytes = SnapshotRecordBytes();
  for (size_t offset = 1; offset < 8; ++offset) {
    SCOPED_TRACE(offset);
    std::vector<uint64_t> storage;
    auto rec = VerifySnapshotRecord(At(bytes, offset, storage));
    EXPECT_EQ(rec.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(rec.status().message().find("misaligned"), std::string::npos)
        << rec.status().ToString();
    // Aligned first, the same bytes verify.
    std::vector<uint64_t> scratch;
    const uint8_t* aligned = AlignedBytes(At(bytes, offset, storage), scratch);
    EXPECT_TRUE(
        VerifySnapshotRecord(std::string_view(reinterpret_cast<const char*>(aligned), bytes.size()))
            .ok());
  }
}

TEST(VerifyRootTest, TruncatedOrForeignBytesAreCorruption) {
  const std::string bytes = SnapshotRecordBytes();
  std::vector<uint64_t> storage;
  for (size_t cut : {0ul, 3ul, 7ul, bytes.size() / 2, bytes.size() - 1}) {
    SCOPED_TRACE(cut);
    EXPECT_EQ(VerifySnapshotRecord(At(bytes.substr(0, cut), 0, storage)).status().code(),
              Status::Code::kCorruption);
  }
  // A buffer without the TwinState identifier is not a TwinState.
  auto twin =
      VerifyRoot<twin::TwinState>(At(bytes, 0, storage), "TwinState", twin::TwinStateIdentifier());
  EXPECT_EQ(twin.status().code(), Status::Code::kCorruption);
}

// The Verifier's budgets: a buffer holding more tables than allowed does not verify.
TEST(VerifyRootTest, TableBudgetIsEnforced) {
  std::vector<uint64_t> storage;
  EXPECT_TRUE(VerifyRoot<fb::SnapshotRecord>(At(SnapshotRecordBytes(), 0, storage), "record",
                                             nullptr, {64, 1000})
                  .ok());
  EXPECT_EQ(VerifyRoot<fb::SnapshotRecord>(At(SnapshotRecordBytes(), 0, storage), "record", nullptr,
                                           {64, 0})
                .status()
                .code(),
            Status::Code::kCorruption);
}

}  // namespace
}  // namespace doppel::schemas
