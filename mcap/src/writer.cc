#include "doppel/mcap/writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "doppel/mcap/crc32.h"

namespace doppel::mcap {

// The file: a large buffer in front of write(2), and the running CRC-32 of what went through it
// (the data section's CRC, then the summary's).
class Writer::FileOutput {
 public:
  static constexpr size_t kBufferSize = 1 << 20;

  FileOutput(int fd, std::string path) : fd_(fd), path_(std::move(path)) {
    buffer_.reserve(kBufferSize);
  }
  ~FileOutput() {
    if (fd_ >= 0) ::close(fd_);
  }

  Status Append(std::string_view bytes) {
    crc_ = Crc32Update(crc_, bytes.data(), bytes.size());
    size_ += bytes.size();
    if (buffer_.size() + bytes.size() <= kBufferSize) {
      buffer_.append(bytes);
      return Status::Ok();
    }
    DOPPEL_RETURN_IF_ERROR(Flush());
    if (bytes.size() >= kBufferSize / 2) return WriteAll(bytes);
    buffer_.append(bytes);
    return Status::Ok();
  }

  Status Flush() {
    Status status = WriteAll(buffer_);
    buffer_.clear();
    return status;
  }

  Status Sync() {
    if (::fsync(fd_) != 0) return Error("fsync");
    return Status::Ok();
  }

  Status CloseFile() {
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) return Error("close");
    return Status::Ok();
  }

  uint64_t size() const { return size_; }
  uint32_t crc() const { return crc_; }
  void ResetCrc() { crc_ = kCrc32Start; }
  const std::string& path() const { return path_; }

 private:
  Status WriteAll(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::write(fd_, bytes.data(), bytes.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return Error("write");
      }
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return Status::Ok();
  }

  Status Error(const char* what) const {
    return Status::IOError(std::string(what) + " " + path_ + ": " + std::strerror(errno));
  }

  int fd_;
  std::string path_;
  std::string buffer_;
  uint64_t size_ = 0;
  uint32_t crc_ = kCrc32Start;
};

Result<std::unique_ptr<Writer>> Writer::Open(const std::string& path, WriterOptions options) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError("open " + path + ": " + std::strerror(errno));
  auto out = std::make_unique<FileOutput>(fd, path);
  std::string start(kMagic);
  Encode(Header{options.profile, options.library}, start);
  Status status = out->Append(start);
  if (!status.ok()) return status;
  if (options.chunk_size == 0) options.chunk_size = 1;
  return std::unique_ptr<Writer>(new Writer(std::move(out), std::move(options)));
}

Writer::Writer(std::unique_ptr<FileOutput> out, WriterOptions options)
    : out_(std::move(out)), options_(std::move(options)) {
  chunk_.reserve(std::min<uint64_t>(options_.chunk_size + 1024, 64 << 20));
}

Writer::~Writer() {
  if (!closed_) (void)Close();
}

uint64_t Writer::bytes_written() const { return out_->size(); }

Status Writer::Fail(Status status) {
  if (error_.ok()) error_ = status;
  return status;
}

uint16_t Writer::AddSchema(std::string name, std::string encoding, std::string data) {
  if (schemas_.size() >= std::numeric_limits<uint16_t>::max()) return 0;
  auto id = static_cast<uint16_t>(schemas_.size() + 1);
  schemas_.push_back(Schema{id, std::move(name), std::move(encoding), std::move(data)});
  schema_written_.push_back(false);
  return id;
}

uint16_t Writer::AddChannel(uint16_t schema_id, std::string topic, std::string message_encoding,
                            std::map<std::string, std::string> metadata) {
  if (channels_.size() >= std::numeric_limits<uint16_t>::max()) return 0;
  auto id = static_cast<uint16_t>(channels_.size() + 1);
  ChannelEntry& entry = channels_.emplace_back();
  entry.channel =
      Channel{id, schema_id, std::move(topic), std::move(message_encoding), std::move(metadata)};
  entry.index.channel_id = id;
  return id;
}

Status Writer::WriteMessage(uint16_t channel_id, uint32_t sequence, uint64_t log_time,
                            uint64_t publish_time, std::string_view data) {
  if (!error_.ok()) return error_;
  if (closed_) return Status::InvalidArgument("write to closed MCAP writer " + out_->path());
  if (channel_id == 0 || channel_id > channels_.size()) {
    return Status::InvalidArgument("unknown channel id " + std::to_string(channel_id));
  }
  ChannelEntry& entry = channels_[channel_id - 1];
  if (!entry.written) {
    const uint16_t schema_id = entry.channel.schema_id;
    if (schema_id != 0) {
      if (schema_id > schemas_.size()) {
        return Status::InvalidArgument("channel " + std::to_string(channel_id) +
                                       " refers to unknown schema id " + std::to_string(schema_id));
      }
      if (!schema_written_[schema_id - 1]) {
        Encode(schemas_[schema_id - 1], chunk_);
        schema_written_[schema_id - 1] = true;
        ++statistics_.schema_count;
      }
    }
    Encode(entry.channel, chunk_);
    entry.written = true;
    ++statistics_.channel_count;
  }

  // Close the chunk first when this message would take it past chunk_size.
  const uint64_t record_size = kRecordPrefixSize + kMessageFixedSize + data.size();
  if (chunk_messages_ > 0 && chunk_.size() + record_size > options_.chunk_size) {
    if (Status status = WriteChunk(); !status.ok()) return Fail(status);
  }

  if (entry.index.records.empty()) chunk_channels_.push_back(channel_id);
  entry.index.records.emplace_back(log_time, chunk_.size());
  EncodeMessage(channel_id, sequence, log_time, publish_time, data, chunk_);
  ++entry.message_count;

  if (chunk_messages_ == 0) {
    chunk_start_time_ = chunk_end_time_ = log_time;
  } else {
    chunk_start_time_ = std::min(chunk_start_time_, log_time);
    chunk_end_time_ = std::max(chunk_end_time_, log_time);
  }
  ++chunk_messages_;
  if (statistics_.message_count == 0) {
    statistics_.message_start_time = statistics_.message_end_time = log_time;
  } else {
    statistics_.message_start_time = std::min(statistics_.message_start_time, log_time);
    statistics_.message_end_time = std::max(statistics_.message_end_time, log_time);
  }
  ++statistics_.message_count;

  if (chunk_.size() >= options_.chunk_size) {
    if (Status status = WriteChunk(); !status.ok()) return Fail(status);
  }
  return Status::Ok();
}

Status Writer::WriteChunk() {
  if (chunk_.empty()) return Status::Ok();
  // The official writer's rule: compression must be worth it (>= 1 KiB, >= 2% smaller).
  constexpr uint64_t kMinCompressionSize = 1024;
  Chunk chunk;
  chunk.message_start_time = chunk_messages_ > 0 ? chunk_start_time_ : 0;
  chunk.message_end_time = chunk_messages_ > 0 ? chunk_end_time_ : 0;
  chunk.uncompressed_size = chunk_.size();
  chunk.uncompressed_crc = Crc32(chunk_);
  chunk.records = chunk_;
  if (options_.compression != Compression::kNone && chunk_.size() >= kMinCompressionSize) {
    DOPPEL_RETURN_IF_ERROR(
        Compress(options_.compression, chunk_, compressed_, options_.zstd_level));
    if (static_cast<double>(chunk_.size()) / static_cast<double>(compressed_.size()) >= 1.02) {
      chunk.compression = std::string(CompressionName(options_.compression));
      chunk.records = compressed_;
    }
  }

  ChunkIndex index;
  index.message_start_time = chunk.message_start_time;
  index.message_end_time = chunk.message_end_time;
  index.chunk_start_offset = out_->size();
  index.compression = chunk.compression;
  index.compressed_size = chunk.records.size();
  index.uncompressed_size = chunk.uncompressed_size;

  scratch_.clear();
  EncodeChunkPrefix(chunk, scratch_);
  DOPPEL_RETURN_IF_ERROR(out_->Append(scratch_));
  DOPPEL_RETURN_IF_ERROR(out_->Append(chunk.records));
  index.chunk_length = out_->size() - index.chunk_start_offset;

  // Message indexes, by channel id; entries by log time, then offset (they are in offset order
  // already, and in log-time order too unless the caller wrote out of order).
  std::sort(chunk_channels_.begin(), chunk_channels_.end());
  const uint64_t indexes_start = out_->size();
  scratch_.clear();
  for (uint16_t channel_id : chunk_channels_) {
    MessageIndex& message_index = channels_[channel_id - 1].index;
    auto& entries = message_index.records;
    if (!std::is_sorted(entries.begin(), entries.end())) std::sort(entries.begin(), entries.end());
    index.message_index_offsets.emplace(channel_id, indexes_start + scratch_.size());
    Encode(message_index, scratch_);
    entries.clear();
  }
  DOPPEL_RETURN_IF_ERROR(out_->Append(scratch_));
  index.message_index_length = scratch_.size();
  chunk_indexes_.push_back(std::move(index));
  ++statistics_.chunk_count;

  chunk_.clear();
  chunk_channels_.clear();
  chunk_messages_ = 0;
  return Status::Ok();
}

Status Writer::WriteMetadata(std::string name, std::map<std::string, std::string> values) {
  if (!error_.ok()) return error_;
  if (closed_) return Status::InvalidArgument("write to closed MCAP writer " + out_->path());
  if (Status status = WriteChunk(); !status.ok()) return Fail(status);
  MetadataIndex index{out_->size(), 0, name};
  scratch_.clear();
  Encode(Metadata{std::move(name), std::move(values)}, scratch_);
  index.length = scratch_.size();
  if (Status status = out_->Append(scratch_); !status.ok()) return Fail(status);
  metadata_indexes_.push_back(std::move(index));
  ++statistics_.metadata_count;
  return Status::Ok();
}

Status Writer::WriteAttachment(uint64_t log_time, uint64_t create_time, std::string name,
                               std::string media_type, std::string_view data) {
  if (!error_.ok()) return error_;
  if (closed_) return Status::InvalidArgument("write to closed MCAP writer " + out_->path());
  if (Status status = WriteChunk(); !status.ok()) return Fail(status);
  Attachment attachment{log_time, create_time, name, media_type, std::string(data), 0};
  attachment.crc = AttachmentCrc(attachment);
  AttachmentIndex index{
      out_->size(), 0, log_time, create_time, data.size(), std::move(name), std::move(media_type)};
  scratch_.clear();
  Encode(attachment, scratch_);
  index.length = scratch_.size();
  if (Status status = out_->Append(scratch_); !status.ok()) return Fail(status);
  attachment_indexes_.push_back(std::move(index));
  ++statistics_.attachment_count;
  return Status::Ok();
}

Status Writer::Close() {
  if (closed_) return error_;
  closed_ = true;
  if (!error_.ok()) {
    (void)out_->CloseFile();
    return error_;
  }
  auto finish = [&]() -> Status {
    DOPPEL_RETURN_IF_ERROR(WriteChunk());
    std::string tail;
    Encode(DataEnd{out_->crc()}, tail);
    DOPPEL_RETURN_IF_ERROR(out_->Append(tail));
    out_->ResetCrc();  // the summary CRC starts after DataEnd

    // The summary, grouped by opcode; `groups` remembers where each group starts.
    const uint64_t summary_start = out_->size();
    std::vector<SummaryOffset> groups;
    tail.clear();
    auto group = [&](Opcode opcode, auto&& encode_all) {
      const size_t before = tail.size();
      encode_all();
      if (tail.size() > before) {
        groups.push_back(SummaryOffset{static_cast<uint8_t>(opcode), summary_start + before,
                                       tail.size() - before});
      }
    };
    group(Opcode::kSchema, [&] {
      for (size_t i = 0; i < schemas_.size(); ++i) {
        if (schema_written_[i]) Encode(schemas_[i], tail);
      }
    });
    group(Opcode::kChannel, [&] {
      for (const ChannelEntry& entry : channels_) {
        if (entry.written) Encode(entry.channel, tail);
      }
    });
    group(Opcode::kStatistics, [&] {
      for (const ChannelEntry& entry : channels_) {
        if (entry.message_count > 0) {
          statistics_.channel_message_counts[entry.channel.id] = entry.message_count;
        }
      }
      Encode(statistics_, tail);
    });
    group(Opcode::kChunkIndex, [&] {
      for (const ChunkIndex& index : chunk_indexes_) Encode(index, tail);
    });
    group(Opcode::kAttachmentIndex, [&] {
      for (const AttachmentIndex& index : attachment_indexes_) Encode(index, tail);
    });
    group(Opcode::kMetadataIndex, [&] {
      for (const MetadataIndex& index : metadata_indexes_) Encode(index, tail);
    });
    const uint64_t summary_offset_start = summary_start + tail.size();
    for (const SummaryOffset& offset : groups) Encode(offset, tail);
    DOPPEL_RETURN_IF_ERROR(out_->Append(tail));

    // The summary CRC covers the Footer up to and including summary_offset_start.
    tail.clear();
    Encode(Footer{summary_start, summary_offset_start, 0}, tail);
    const uint32_t summary_crc = Crc32Update(out_->crc(), tail.data(), kFooterRecordSize - 4);
    tail.resize(kFooterRecordSize - 4);
    for (int i = 0; i < 4; ++i) tail.push_back(static_cast<char>((summary_crc >> (8 * i)) & 0xFF));
    tail.append(kMagic);
    DOPPEL_RETURN_IF_ERROR(out_->Append(tail));
    DOPPEL_RETURN_IF_ERROR(out_->Flush());
    if (options_.fsync_on_close) DOPPEL_RETURN_IF_ERROR(out_->Sync());
    return out_->CloseFile();
  };
  Status status = finish();
  if (!status.ok()) {
    (void)Fail(status);
    (void)out_->CloseFile();
  }
  return status;
}

}  // namespace doppel::mcap
