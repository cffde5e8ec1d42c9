#include "sync_point.h"

#include <fmt/format.h>
#include <rocksdb/file_system.h>

#include <algorithm>

#include "doppel/eventstore/log_format.h"

namespace doppel::eventstore {
namespace {

constexpr char kMagic[] = "dplsync1";
constexpr size_t kMagicBytes = 8;
constexpr size_t kSlotBytes = 512;
constexpr size_t kRecordBytes = kMagicBytes + 16;

std::string SyncPointPath(const std::string& dir) { return dir + "/" + SyncPoint::kFileName; }

std::string EncodeSlot(uint64_t next_position) {
  std::string slot(kMagic, kMagicBytes);
  format::PutBigEndian64(&slot, next_position);
  format::PutBigEndian64(&slot, ~next_position);
  return slot;
}

std::optional<uint64_t> DecodeSlot(std::string_view bytes) {
  if (bytes.size() < kRecordBytes || bytes.substr(0, kMagicBytes) != kMagic) return std::nullopt;
  const uint64_t v = format::GetBigEndian64(bytes.substr(kMagicBytes));
  if (format::GetBigEndian64(bytes.substr(kMagicBytes + 8)) != ~v) return std::nullopt;
  return v;
}

Status FromIo(const rocksdb::IOStatus& s, std::string_view what) {
  if (s.ok()) return Status::Ok();
  return Status::IOError(fmt::format("{}: {}", what, s.ToString()));
}

}  // namespace

SyncPoint::SyncPoint(std::unique_ptr<rocksdb::FSRandomRWFile> writer,
                     std::unique_ptr<rocksdb::FSRandomRWFile> syncer)
    : writer_(std::move(writer)), syncer_(std::move(syncer)) {}

SyncPoint::~SyncPoint() {
  rocksdb::IOOptions io;
  if (writer_) writer_->Close(io, nullptr).PermitUncheckedError();
  if (syncer_) syncer_->Close(io, nullptr).PermitUncheckedError();
}

Result<std::optional<uint64_t>> SyncPoint::Read(rocksdb::FileSystem& fs, const std::string& dir) {
  const std::string path = SyncPointPath(dir);
  rocksdb::IOStatus s = fs.FileExists(path, rocksdb::IOOptions(), nullptr);
  if (s.IsNotFound()) return std::optional<uint64_t>();
  std::string bytes;
  if (s.ok()) s = rocksdb::ReadFileToString(&fs, path, &bytes);
  if (s.ok() && bytes.empty()) return std::optional<uint64_t>();
  if (!s.ok()) return FromIo(s, fmt::format("reading {}", path));
  std::optional<uint64_t> best;
  for (size_t offset = 0; offset < bytes.size(); offset += kSlotBytes) {
    if (auto v = DecodeSlot(std::string_view(bytes).substr(offset))) {
      best = std::max(best.value_or(0), *v);
    }
  }
  if (!best) {
    return Status::Corruption(
        fmt::format("{} holds no valid sync point ({} bytes); delete it to skip the check of "
                    "acknowledged events once",
                    path, bytes.size()));
  }
  return best;
}

Result<std::unique_ptr<SyncPoint>> SyncPoint::OpenForWrite(rocksdb::FileSystem& fs,
                                                           const std::string& dir) {
  const std::string path = SyncPointPath(dir);
  rocksdb::IOOptions io;
  const bool existed = fs.FileExists(path, io, nullptr).ok();
  if (!existed) {
    // Some file systems' NewRandomRWFile (POSIX's among them) does not create the file.
    std::unique_ptr<rocksdb::FSWritableFile> created;
    DOPPEL_RETURN_IF_ERROR(
        FromIo(fs.NewWritableFile(path, rocksdb::FileOptions(), &created, nullptr),
               fmt::format("creating {}", path)));
    DOPPEL_RETURN_IF_ERROR(FromIo(created->Close(io, nullptr), fmt::format("creating {}", path)));
  }
  std::unique_ptr<rocksdb::FSRandomRWFile> writer, syncer;
  DOPPEL_RETURN_IF_ERROR(FromIo(fs.NewRandomRWFile(path, rocksdb::FileOptions(), &writer, nullptr),
                                fmt::format("opening {}", path)));
  DOPPEL_RETURN_IF_ERROR(FromIo(fs.NewRandomRWFile(path, rocksdb::FileOptions(), &syncer, nullptr),
                                fmt::format("opening {}", path)));
  if (!existed) {
    // The new file's directory entry must be durable before any sync point in it counts.
    std::unique_ptr<rocksdb::FSDirectory> d;
    DOPPEL_RETURN_IF_ERROR(
        FromIo(fs.NewDirectory(dir, io, &d, nullptr), fmt::format("opening {}", dir)));
    DOPPEL_RETURN_IF_ERROR(FromIo(d->Fsync(io, nullptr), fmt::format("syncing {}", dir)));
    d->Close(io, nullptr).PermitUncheckedError();
  }
  return std::unique_ptr<SyncPoint>(new SyncPoint(std::move(writer), std::move(syncer)));
}

Status SyncPoint::Record(uint64_t next_position) {
  const std::string slot = EncodeSlot(next_position);
  const uint64_t offset = (writes_++ % 2) * kSlotBytes;
  return FromIo(writer_->Write(offset, slot, rocksdb::IOOptions(), nullptr),
                "recording the sync point");
}

Status SyncPoint::Sync() {
  return FromIo(syncer_->Fsync(rocksdb::IOOptions(), nullptr), "syncing the sync point");
}

}  // namespace doppel::eventstore
