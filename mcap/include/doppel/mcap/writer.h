// Writer: streams an indexed, chunked MCAP file, laid out as the official C++ writer
// (foxglove/mcap cpp/mcap) lays it out by default:
//
//   magic, Header
//   per chunk:  Chunk { [Schema] [Channel] Message... }, then one MessageIndex per channel that
//               has messages in the chunk (ascending channel id; entries by log time, then offset)
//   Metadata / Attachment records between chunks (the open chunk is closed first)
//   DataEnd (CRC-32 of every byte before it)
//   summary:    Schema*, Channel*, Statistics, ChunkIndex*, AttachmentIndex*, MetadataIndex*
//   SummaryOffset per non-empty summary group, Footer (summary CRC), magic
//
// A Schema and a Channel are written into the open chunk just before the first message on that
// channel, so every record that uses them follows them. Schemas and channels no message ever
// used are not written anywhere (the file holds no dangling ids).
//
// Chunks hold `chunk_size` uncompressed bytes at most (a single larger message gets a chunk of
// its own). A chunk under 1 KiB, or one compression shrinks by less than 2%, is stored
// uncompressed (compression ""), as the official writer does.
//
// Memory: one chunk buffer (plus its compressed copy) and the per-chunk message index; beyond
// that only one ChunkIndex per chunk and one entry per schema, channel, metadata and attachment.
// Not thread-safe; one writer per file.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "doppel/core/status.h"
#include "doppel/mcap/compression.h"
#include "doppel/mcap/records.h"

namespace doppel::mcap {

struct WriterOptions {
  std::string profile;  // Header.profile: "", "ros1", "ros2"
  std::string library = "doppel";
  Compression compression = Compression::kZstd;
  uint64_t chunk_size = 4 << 20;  // uncompressed bytes before a chunk is closed
  int zstd_level = 1;
  bool fsync_on_close = false;  // Close() fsyncs the file before closing it
};

class Writer {
 public:
  // Creates or truncates `path` and writes the magic and the Header.
  static Result<std::unique_ptr<Writer>> Open(const std::string& path, WriterOptions options);

  // Closes the file if Close() was not called (its status is then lost).
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Returns the schema's id: 1, 2, ... (0 means "no schema" in MCAP). 0 when 65535 schemas exist.
  uint16_t AddSchema(std::string name, std::string encoding, std::string data);
  // Returns the channel's id: 1, 2, ..., as the official C++ writer numbers them; 0 when 65535
  // channels exist. REQUIRES: schema_id is 0 or an id AddSchema returned.
  uint16_t AddChannel(uint16_t schema_id, std::string topic, std::string message_encoding,
                      std::map<std::string, std::string> metadata);

  // Appends a message to the open chunk (copying `data` once, into the chunk buffer), closing
  // and writing the chunk when it reaches chunk_size. Log times need not be in order.
  // InvalidArgument for an unknown channel; IOError (naming the path) when the disk fails,
  // after which every call returns that error.
  Status WriteMessage(uint16_t channel_id, uint32_t sequence, uint64_t log_time,
                      uint64_t publish_time, std::string_view data);
  // A Metadata record in the data section, indexed by a MetadataIndex in the summary.
  Status WriteMetadata(std::string name, std::map<std::string, std::string> values);
  // An Attachment record (with its CRC), indexed by an AttachmentIndex in the summary.
  Status WriteAttachment(uint64_t log_time, uint64_t create_time, std::string name,
                         std::string media_type, std::string_view data);

  // Writes the last chunk, DataEnd, the summary, the summary offsets, the Footer and the closing
  // magic, then closes the file. Later calls return the first Close()'s status.
  Status Close();

  // Bytes handed to the file so far (buffered included): the size the file will have.
  uint64_t bytes_written() const;
  uint64_t message_count() const { return statistics_.message_count; }

 private:
  class FileOutput;
  struct ChannelEntry {
    Channel channel;
    bool written = false;  // its record is in the file (or the open chunk)
    uint64_t message_count = 0;
    MessageIndex index;  // this channel's entries in the open chunk
  };

  Writer(std::unique_ptr<FileOutput> out, WriterOptions options);
  Status WriteChunk();
  Status Fail(Status status);

  std::unique_ptr<FileOutput> out_;
  WriterOptions options_;
  Status error_;  // sticky: the first I/O failure
  bool closed_ = false;

  std::vector<Schema> schemas_;  // id i at [i - 1]
  std::vector<bool> schema_written_;
  std::vector<ChannelEntry> channels_;  // id i at [i - 1]

  // The open chunk.
  std::string chunk_;
  std::string compressed_;
  std::string scratch_;
  uint64_t chunk_start_time_ = 0;
  uint64_t chunk_end_time_ = 0;
  uint64_t chunk_messages_ = 0;
  std::vector<uint16_t> chunk_channels_;  // channels with messages in the open chunk

  Statistics statistics_;
  std::vector<ChunkIndex> chunk_indexes_;
  std::vector<MetadataIndex> metadata_indexes_;
  std::vector<AttachmentIndex> attachment_indexes_;
};

}  // namespace doppel::mcap
