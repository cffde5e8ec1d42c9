#include "doppel/mcap/reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <memory>

#include "doppel/mcap/compression.h"
#include "doppel/mcap/crc32.h"

namespace doppel::mcap {
namespace {

std::string Hex32(uint32_t value) {
  char text[16];
  std::snprintf(text, sizeof(text), "0x%08" PRIx32, value);
  return text;
}

uint64_t LoadU64(const char* p) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | static_cast<unsigned char>(p[i]);
  return value;
}

// A file read front to back through a large buffer, with the running CRC-32 of the bytes
// consumed (when hashing is on). Views returned by Read stay valid until the next Read.
class InputFile {
 public:
  static constexpr size_t kBufferSize = 1 << 20;

  ~InputFile() {
    if (fd_ >= 0) ::close(fd_);
  }

  Status Open(const std::string& path) {
    path_ = path;
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) return Status::IOError("open " + path + ": " + std::strerror(errno));
    struct stat st;
    if (::fstat(fd_, &st) != 0)
      return Status::IOError("stat " + path + ": " + std::strerror(errno));
    size_ = static_cast<uint64_t>(st.st_size);
    return Status::Ok();
  }

  uint64_t size() const { return size_; }
  uint64_t position() const { return position_; }
  uint64_t remaining() const { return size_ - position_; }
  void set_hashing(bool on) { hashing_ = on; }
  uint32_t crc() const { return crc_; }
  void ResetCrc() { crc_ = kCrc32Start; }

  // REQUIRES: n <= remaining()
  Status Read(uint64_t n, std::string_view* out) {
    const size_t buffered = buffer_end_ - buffer_pos_;
    if (n <= buffered) {
      *out = std::string_view(buffer_.data() + buffer_pos_, n);
      buffer_pos_ += n;
    } else if (n <= kBufferSize) {
      // No larger than the file: reading a small file costs what it holds, not a whole buffer.
      // (n <= remaining() <= size_, so n still fits.)
      const size_t capacity = static_cast<size_t>(std::min<uint64_t>(kBufferSize, size_));
      if (buffer_.size() < capacity) buffer_.resize(capacity);
      std::memmove(buffer_.data(), buffer_.data() + buffer_pos_, buffered);
      buffer_pos_ = 0;
      buffer_end_ = buffered;
      const size_t want = static_cast<size_t>(
          std::min<uint64_t>(capacity - buffered, size_ - position_ - buffered));
      DOPPEL_RETURN_IF_ERROR(ReadFully(buffer_.data() + buffered, want, position_ + buffered));
      buffer_end_ += want;
      *out = std::string_view(buffer_.data(), n);
      buffer_pos_ = n;
    } else {
      large_.resize(n);
      std::memcpy(large_.data(), buffer_.data() + buffer_pos_, buffered);
      DOPPEL_RETURN_IF_ERROR(
          ReadFully(large_.data() + buffered, n - buffered, position_ + buffered));
      buffer_pos_ = buffer_end_ = 0;
      *out = large_;
    }
    position_ += n;
    if (hashing_) crc_ = Crc32Update(crc_, out->data(), out->size());
    return Status::Ok();
  }

  // Reads [offset, offset + n) into `out`, independent of the sequential position.
  Status ReadAt(uint64_t offset, uint64_t n, std::string& out) {
    out.resize(n);
    return ReadFully(out.data(), n, offset);
  }

  const std::string& path() const { return path_; }

 private:
  Status ReadFully(char* dst, size_t n, uint64_t offset) {
    while (n > 0) {
      ssize_t got = ::pread(fd_, dst, n, static_cast<off_t>(offset));
      if (got < 0) {
        if (errno == EINTR) continue;
        return Status::IOError("read " + path_ + ": " + std::strerror(errno));
      }
      if (got == 0) return Status::IOError("read " + path_ + ": file shrank while being read");
      dst += got;
      n -= static_cast<size_t>(got);
      offset += static_cast<uint64_t>(got);
    }
    return Status::Ok();
  }

  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
  uint64_t position_ = 0;
  std::string buffer_;
  size_t buffer_pos_ = 0;
  size_t buffer_end_ = 0;
  std::string large_;
  bool hashing_ = false;
  uint32_t crc_ = kCrc32Start;
};

class Scanner {
 public:
  Scanner(const std::function<Status(const RecordRef&)>& visit, const ReadOptions& options,
          uint64_t* error_offset)
      : visit_(visit), options_(options), error_offset_(error_offset) {}

  Status Run(const std::string& path) {
    DOPPEL_RETURN_IF_ERROR(file_.Open(path));
    file_.set_hashing(options_.verify_crcs);
    std::string_view bytes;
    if (file_.size() < kMagic.size()) {
      return Error(0, Status::Corruption("bad magic at offset 0: the file is only " +
                                         std::to_string(file_.size()) + " bytes"));
    }
    DOPPEL_RETURN_IF_ERROR(file_.Read(kMagic.size(), &bytes));
    if (bytes != kMagic) {
      return Error(0, Status::Corruption("bad magic at offset 0: not an MCAP file"));
    }
    bool first = true;
    bool saw_data_end = false;
    while (true) {
      const uint64_t offset = file_.position();
      if (file_.remaining() == 0) {
        return Error(offset,
                     Status::Corruption("missing footer: the file ends at offset " +
                                        std::to_string(offset) + " without a Footer record"));
      }
      if (file_.remaining() < kRecordPrefixSize) {
        return Error(offset,
                     Status::Corruption("truncated record at offset " + std::to_string(offset) +
                                        " (" + std::to_string(file_.remaining()) +
                                        " bytes left, a record prefix needs 9; file ends at " +
                                        std::to_string(file_.size()) + ")"));
      }
      const uint32_t crc_before = file_.crc();
      DOPPEL_RETURN_IF_ERROR(file_.Read(kRecordPrefixSize, &bytes));
      const auto opcode = static_cast<Opcode>(static_cast<uint8_t>(bytes[0]));
      const uint64_t length = LoadU64(bytes.data() + 1);
      if (static_cast<uint8_t>(opcode) == 0) {
        return Error(offset,
                     Status::Corruption("invalid opcode 0x00 at offset " + std::to_string(offset)));
      }
      if (length > file_.remaining()) {
        return Error(offset, Status::Corruption(
                                 "truncated record at offset " + std::to_string(offset) + " (" +
                                 OpcodeName(opcode) + " record, length " + std::to_string(length) +
                                 ", file ends at " + std::to_string(file_.size()) + ")"));
      }
      if (first && opcode != Opcode::kHeader) {
        return Error(offset,
                     Status::Corruption("record at offset " + std::to_string(offset) + " is " +
                                        OpcodeName(opcode) + ", expected the Header"));
      }
      first = false;
      const uint32_t crc_after_prefix = file_.crc();
      std::string_view body;
      DOPPEL_RETURN_IF_ERROR(file_.Read(length, &body));
      const RecordRef ref{opcode, offset, 0, false, body};
      switch (opcode) {
        case Opcode::kChunk: {
          Status status = Chunk(offset, body);
          if (status.ok()) break;
          if (status.code() == Status::Code::kIOError) return status;
          if (!visit_failed_ && options_.on_bad_chunk) {
            options_.on_bad_chunk(status, offset);
            break;
          }
          if (visit_failed_) return status;
          return Error(offset, status);
        }
        case Opcode::kDataEnd: {
          Result<DataEnd> data_end = DecodeDataEnd(body);
          if (!data_end.ok()) return Error(offset, At("DataEnd", offset, data_end.status()));
          if (options_.verify_crcs && data_end->data_section_crc != 0 &&
              data_end->data_section_crc != crc_before) {
            return Error(offset, Status::Corruption("DataEnd at offset " + std::to_string(offset) +
                                                    ": data section CRC mismatch (stored " +
                                                    Hex32(data_end->data_section_crc) +
                                                    ", computed " + Hex32(crc_before) + ")"));
          }
          saw_data_end = true;
          file_.ResetCrc();  // the summary CRC starts after DataEnd
          DOPPEL_RETURN_IF_ERROR(visit_(ref));
          break;
        }
        case Opcode::kFooter: {
          Result<Footer> footer = DecodeFooter(body);
          if (!footer.ok()) return Error(offset, At("Footer", offset, footer.status()));
          if (options_.verify_crcs && saw_data_end && footer->summary_crc != 0) {
            const uint32_t computed = Crc32Update(crc_after_prefix, body.data(), 16);
            if (computed != footer->summary_crc) {
              return Error(offset, Status::Corruption("Footer at offset " + std::to_string(offset) +
                                                      ": summary CRC mismatch (stored " +
                                                      Hex32(footer->summary_crc) + ", computed " +
                                                      Hex32(computed) + ")"));
            }
          }
          DOPPEL_RETURN_IF_ERROR(visit_(ref));
          return ClosingMagic();
        }
        default:
          if (IsKnownOpcode(static_cast<uint8_t>(opcode))) DOPPEL_RETURN_IF_ERROR(visit_(ref));
          break;
      }
    }
  }

 private:
  static Status At(const std::string& what, uint64_t offset, const Status& status) {
    return Status::Corruption(what + " at offset " + std::to_string(offset) + ": " +
                              status.message());
  }

  Status Error(uint64_t offset, Status status) {
    if (error_offset_ != nullptr) *error_offset_ = offset;
    return status;
  }

  Status ClosingMagic() {
    const uint64_t offset = file_.position();
    if (file_.remaining() < kMagic.size()) {
      return Error(offset,
                   Status::Corruption("missing closing magic at offset " + std::to_string(offset) +
                                      " (file ends at " + std::to_string(file_.size()) + ")"));
    }
    std::string_view bytes;
    DOPPEL_RETURN_IF_ERROR(file_.Read(kMagic.size(), &bytes));
    if (bytes != kMagic) {
      return Error(offset,
                   Status::Corruption("bad closing magic at offset " + std::to_string(offset)));
    }
    if (file_.remaining() != 0) {
      return Error(file_.position(),
                   Status::Corruption(std::to_string(file_.remaining()) +
                                      " unexpected bytes after the closing magic at offset " +
                                      std::to_string(file_.position())));
    }
    return Status::Ok();
  }

  // Decompresses, verifies and frames the whole chunk, then visits it and its records.
  Status Chunk(uint64_t offset, std::string_view body) {
    const std::string where = "chunk at offset " + std::to_string(offset);
    Result<mcap::Chunk> chunk = DecodeChunk(body);
    if (!chunk.ok()) return Status::Corruption(where + ": " + chunk.status().message());
    std::string_view records = chunk->records;
    if (!chunk->compression.empty() || records.size() != chunk->uncompressed_size) {
      Status status = Decompress(chunk->compression, chunk->records, chunk->uncompressed_size,
                                 decompressed_, options_.max_chunk_uncompressed_bytes);
      if (status.code() == Status::Code::kInvalidArgument) {
        return Status::InvalidArgument("unknown compression '" + chunk->compression + "' in " +
                                       where);
      }
      if (!status.ok()) return Status::Corruption(where + ": " + status.message());
      records = decompressed_;
    }
    if (options_.verify_crcs && chunk->uncompressed_crc != 0) {
      const uint32_t computed = Crc32(records);
      if (computed != chunk->uncompressed_crc) {
        return Status::Corruption(where + ": uncompressed CRC mismatch (stored " +
                                  Hex32(chunk->uncompressed_crc) + ", computed " + Hex32(computed) +
                                  ")");
      }
    }
    inner_.clear();
    uint64_t pos = 0;
    while (pos < records.size()) {
      const uint64_t left = records.size() - pos;
      if (left < kRecordPrefixSize) {
        return Status::Corruption(where + ": truncated record at offset " + std::to_string(pos) +
                                  " in the chunk (" + std::to_string(left) +
                                  " bytes left, a record prefix needs 9)");
      }
      const auto opcode = static_cast<Opcode>(static_cast<uint8_t>(records[pos]));
      const uint64_t length = LoadU64(records.data() + pos + 1);
      if (static_cast<uint8_t>(opcode) == 0) {
        return Status::Corruption(where + ": invalid opcode 0x00 at offset " + std::to_string(pos) +
                                  " in the chunk");
      }
      if (length > left - kRecordPrefixSize) {
        return Status::Corruption(where + ": truncated record at offset " + std::to_string(pos) +
                                  " in the chunk (" + OpcodeName(opcode) + " record, length " +
                                  std::to_string(length) + ", records end at " +
                                  std::to_string(records.size()) + ")");
      }
      std::string_view inner = records.substr(pos + kRecordPrefixSize, length);
      Status decoded;
      switch (opcode) {
        case Opcode::kMessage:
          decoded = DecodeMessageView(inner).status();
          break;
        case Opcode::kSchema:
          decoded = DecodeSchema(inner).status();
          break;
        case Opcode::kChannel:
          decoded = DecodeChannel(inner).status();
          break;
        default:
          break;
      }
      if (!decoded.ok()) {
        return Status::Corruption(where + ": record at offset " + std::to_string(pos) +
                                  " in the chunk: " + decoded.message());
      }
      if (IsKnownOpcode(static_cast<uint8_t>(opcode))) {
        inner_.push_back(RecordRef{opcode, offset, pos, true, inner});
      }
      pos += kRecordPrefixSize + length;
    }
    visit_failed_ = true;  // from here on a failure is the visitor's, not the chunk's
    DOPPEL_RETURN_IF_ERROR(visit_(RecordRef{Opcode::kChunk, offset, 0, false, body}));
    for (const RecordRef& ref : inner_) DOPPEL_RETURN_IF_ERROR(visit_(ref));
    visit_failed_ = false;
    return Status::Ok();
  }

  const std::function<Status(const RecordRef&)>& visit_;
  const ReadOptions& options_;
  uint64_t* error_offset_;
  InputFile file_;
  std::string decompressed_;
  std::vector<RecordRef> inner_;
  bool visit_failed_ = false;
};

}  // namespace

Status ScanFile(const std::string& path, const std::function<Status(const RecordRef&)>& visit,
                ReadOptions options, uint64_t* error_offset) {
  Scanner scanner(visit, options, error_offset);
  return scanner.Run(path);
}

Result<Summary> ReadSummary(const std::string& path) {
  InputFile file;
  DOPPEL_RETURN_IF_ERROR(file.Open(path));
  const uint64_t size = file.size();
  const uint64_t kMinimum = kMagic.size() + kRecordPrefixSize + kFooterRecordSize + kMagic.size();
  if (size < kMinimum) {
    return Status::Corruption(path + ": " + std::to_string(size) +
                              " bytes, too short for an MCAP file");
  }
  std::string bytes;
  DOPPEL_RETURN_IF_ERROR(file.ReadAt(0, kMagic.size() + kRecordPrefixSize, bytes));
  if (std::string_view(bytes).substr(0, kMagic.size()) != kMagic) {
    return Status::Corruption("bad magic at offset 0: " + path + " is not an MCAP file");
  }
  if (static_cast<Opcode>(static_cast<uint8_t>(bytes[8])) != Opcode::kHeader) {
    return Status::Corruption("record at offset 8 is " +
                              OpcodeName(static_cast<Opcode>(static_cast<uint8_t>(bytes[8]))) +
                              ", expected the Header");
  }
  const uint64_t header_length = LoadU64(bytes.data() + 9);
  if (header_length > size - kMinimum) {
    return Status::Corruption("truncated record at offset 8 (opcode Header, length " +
                              std::to_string(header_length) + ", file ends at " +
                              std::to_string(size) + ")");
  }
  Summary summary;
  DOPPEL_RETURN_IF_ERROR(file.ReadAt(8 + kRecordPrefixSize, header_length, bytes));
  Result<Header> header = DecodeHeader(bytes);
  if (!header.ok()) return Status::Corruption("Header at offset 8: " + header.status().message());
  summary.header = std::move(*header);

  const uint64_t footer_offset = size - kMagic.size() - kFooterRecordSize;
  DOPPEL_RETURN_IF_ERROR(file.ReadAt(footer_offset, kFooterRecordSize + kMagic.size(), bytes));
  if (std::string_view(bytes).substr(kFooterRecordSize) != kMagic) {
    return Status::Corruption("bad closing magic at offset " +
                              std::to_string(footer_offset + kFooterRecordSize));
  }
  if (static_cast<Opcode>(static_cast<uint8_t>(bytes[0])) != Opcode::kFooter ||
      LoadU64(bytes.data() + 1) != kFooterRecordSize - kRecordPrefixSize) {
    return Status::Corruption("missing footer: no Footer record at offset " +
                              std::to_string(footer_offset));
  }
  Result<Footer> footer =
      DecodeFooter(std::string_view(bytes).substr(kRecordPrefixSize, kFooterRecordSize - 9));
  if (!footer.ok()) return footer.status();
  summary.footer = *footer;
  const std::string footer_prefix = bytes.substr(0, kFooterRecordSize - 4);
  if (summary.footer.summary_start == 0) {
    return Status::NotFound(path + " has no summary section (Footer.summary_start is 0)");
  }
  const uint64_t start = summary.footer.summary_start;
  if (start < kMagic.size() + kRecordPrefixSize || start > footer_offset) {
    return Status::Corruption("Footer at offset " + std::to_string(footer_offset) +
                              ": summary_start " + std::to_string(start) +
                              " is outside the file's body");
  }
  const uint64_t offset_start = summary.footer.summary_offset_start;
  if (offset_start != 0 && (offset_start < start || offset_start > footer_offset)) {
    return Status::Corruption("Footer at offset " + std::to_string(footer_offset) +
                              ": summary_offset_start " + std::to_string(offset_start) +
                              " is outside the summary");
  }
  std::string section;
  DOPPEL_RETURN_IF_ERROR(file.ReadAt(start, footer_offset - start, section));
  if (summary.footer.summary_crc != 0) {
    uint32_t computed = Crc32(section);
    computed = Crc32Update(computed, footer_prefix.data(), footer_prefix.size());
    if (computed != summary.footer.summary_crc) {
      return Status::Corruption(
          "Footer at offset " + std::to_string(footer_offset) + ": summary CRC mismatch (stored " +
          Hex32(summary.footer.summary_crc) + ", computed " + Hex32(computed) + ")");
    }
  }

  uint64_t pos = 0;
  while (pos < section.size()) {
    const uint64_t offset = start + pos;
    const uint64_t left = section.size() - pos;
    if (left < kRecordPrefixSize) {
      return Status::Corruption("truncated record at offset " + std::to_string(offset) +
                                " in the summary (" + std::to_string(left) + " bytes left)");
    }
    const auto opcode = static_cast<Opcode>(static_cast<uint8_t>(section[pos]));
    const uint64_t length = LoadU64(section.data() + pos + 1);
    if (length > left - kRecordPrefixSize) {
      return Status::Corruption("truncated record at offset " + std::to_string(offset) + " (" +
                                OpcodeName(opcode) + " record, length " + std::to_string(length) +
                                ", summary ends at " + std::to_string(footer_offset) + ")");
    }
    std::string_view body = std::string_view(section).substr(pos + kRecordPrefixSize, length);
    pos += kRecordPrefixSize + length;
    Status status;
    auto take = [&status](auto result, auto&& store) {
      if (result.ok()) {
        store(std::move(*result));
      } else {
        status = result.status();
      }
    };
    switch (opcode) {
      case Opcode::kSchema:
        take(DecodeSchema(body), [&](Schema r) { summary.schemas[r.id] = std::move(r); });
        break;
      case Opcode::kChannel:
        take(DecodeChannel(body), [&](Channel r) { summary.channels[r.id] = std::move(r); });
        break;
      case Opcode::kStatistics:
        take(DecodeStatistics(body), [&](Statistics r) { summary.statistics = std::move(r); });
        break;
      case Opcode::kChunkIndex:
        take(DecodeChunkIndex(body),
             [&](ChunkIndex r) { summary.chunk_indexes.push_back(std::move(r)); });
        break;
      case Opcode::kMetadataIndex:
        take(DecodeMetadataIndex(body),
             [&](MetadataIndex r) { summary.metadata_indexes.push_back(std::move(r)); });
        break;
      case Opcode::kAttachmentIndex:
        take(DecodeAttachmentIndex(body),
             [&](AttachmentIndex r) { summary.attachment_indexes.push_back(std::move(r)); });
        break;
      case Opcode::kSummaryOffset:
        take(DecodeSummaryOffset(body),
             [&](SummaryOffset r) { summary.summary_offsets.push_back(r); });
        break;
      default:
        break;  // other and private records: skipped
    }
    if (!status.ok()) {
      return Status::Corruption(OpcodeName(opcode) + " at offset " + std::to_string(offset) + ": " +
                                status.message());
    }
  }
  return summary;
}

}  // namespace doppel::mcap
