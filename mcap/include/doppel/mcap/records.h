// MCAP records: one plain struct per record of the MCAP specification (foxglove/mcap,
// website/docs/spec/index.md, major version 0), with their encoding and decoding beside them.
// Pure logic: no file I/O here (writer.h and reader.h do that).
//
// File layout
//   <magic> <Header> <data section> [<summary section>] [<summary offset section>] <Footer> <magic>
//   magic          = 0x89 'M' 'C' 'A' 'P' 0x30 '\r' '\n' (0x30: major version '0'), at both ends
//   data section   = Schema, Channel, Message, Chunk, MessageIndex, Attachment, Metadata records,
//                    ending with DataEnd (CRC-32 of every file byte before the DataEnd record)
//   summary        = records grouped by opcode: Schema, Channel, Statistics, ChunkIndex,
//                    AttachmentIndex, MetadataIndex (copies / indexes of the data section)
//   summary offset = one SummaryOffset per group of the summary
//   Footer         = summary_start, summary_offset_start (0 when absent) and summary_crc: CRC-32 of
//                    the bytes from the end of DataEnd through Footer.summary_offset_start
//
// Record framing: u8 opcode | u64 body length | body. Opcodes 0x01-0x7F are the spec's, 0x80-0xFF
// private records (readers skip what they do not know), 0x00 is invalid.
// Field encoding: integers little-endian; times u64 nanoseconds; String = u32 byte length + UTF-8;
// Bytes (Schema.data) = u32 length + bytes; Attachment.data and Chunk.records = u64 length + bytes;
// Message.data = the rest of the body; Map<K,V> and Array<T> = u32 byte length + entries.
// A Chunk's records are framed records themselves (Schema, Channel, Message), possibly
// compressed; MessageIndex offsets and Chunk.uncompressed_crc refer to the uncompressed bytes.
//
// Encode(record, out) appends the whole record (opcode, length, body) to `out`.
// DecodeX(body) parses a record body (the bytes after opcode and length). It refuses a field
// that is truncated or whose length prefix runs past the body (or past its enclosing map/array)
// with Status::Corruption naming the record and the field. Bytes after the last known field
// are ignored: the spec lets later versions append fields to records.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "doppel/core/status.h"

namespace doppel::mcap {

inline constexpr std::string_view kMagic{"\x89MCAP0\r\n", 8};
// opcode (1) + body length (8)
inline constexpr uint64_t kRecordPrefixSize = 9;

enum class Opcode : uint8_t {
  kHeader = 0x01,
  kFooter = 0x02,
  kSchema = 0x03,
  kChannel = 0x04,
  kMessage = 0x05,
  kChunk = 0x06,
  kMessageIndex = 0x07,
  kChunkIndex = 0x08,
  kAttachment = 0x09,
  kAttachmentIndex = 0x0A,
  kStatistics = 0x0B,
  kMetadata = 0x0C,
  kMetadataIndex = 0x0D,
  kSummaryOffset = 0x0E,
  kDataEnd = 0x0F,
};

// "Message", "ChunkIndex", ... or "opcode 0x85" for one this code does not know.
std::string OpcodeName(Opcode opcode);
// True for the fifteen opcodes above.
bool IsKnownOpcode(uint8_t opcode);

using StringMap = std::map<std::string, std::string>;

struct Header {
  std::string profile;  // "" or a well-known profile ("ros1", "ros2")
  std::string library;  // the writing software
  bool operator==(const Header&) const = default;
};

struct Footer {
  uint64_t summary_start = 0;         // 0: no summary section
  uint64_t summary_offset_start = 0;  // 0: no summary offset section
  uint32_t summary_crc = 0;           // 0: not available
  bool operator==(const Footer&) const = default;
};
// Encoded size of the Footer record (prefix + 20-byte body); the footer is fixed-size.
inline constexpr uint64_t kFooterRecordSize = kRecordPrefixSize + 20;

struct Schema {
  uint16_t id = 0;  // never 0 in a valid file
  std::string name;
  std::string encoding;  // "" = no schema; then data is empty
  std::string data;
  bool operator==(const Schema&) const = default;
};

struct Channel {
  uint16_t id = 0;
  uint16_t schema_id = 0;  // 0 = no schema
  std::string topic;
  std::string message_encoding;
  StringMap metadata;
  bool operator==(const Channel&) const = default;
};

struct Message {
  uint16_t channel_id = 0;
  uint32_t sequence = 0;
  uint64_t log_time = 0;
  uint64_t publish_time = 0;
  std::string data;
  bool operator==(const Message&) const = default;
};

// A Message whose data refers into the buffer it was decoded from (zero-copy reading).
struct MessageView {
  uint16_t channel_id = 0;
  uint32_t sequence = 0;
  uint64_t log_time = 0;
  uint64_t publish_time = 0;
  std::string_view data;
};
// channel_id, sequence, log_time, publish_time: the Message body before its data.
inline constexpr uint64_t kMessageFixedSize = 2 + 4 + 8 + 8;

struct Chunk {
  uint64_t message_start_time = 0;  // min log_time in the chunk, 0 when it has no message
  uint64_t message_end_time = 0;    // max log_time in the chunk, 0 when it has no message
  uint64_t uncompressed_size = 0;
  uint32_t uncompressed_crc = 0;  // CRC-32 of the uncompressed records; 0 = not available
  std::string compression;        // "", "lz4" or "zstd"
  // The (compressed) records. Refers to memory the caller keeps alive: the decoded body, or the
  // buffer the writer encodes from.
  std::string_view records;
};

struct MessageIndex {
  uint16_t channel_id = 0;
  // (log_time, offset of the Message record in the uncompressed chunk records), sorted by log
  // time then offset.
  std::vector<std::pair<uint64_t, uint64_t>> records;
  bool operator==(const MessageIndex&) const = default;
};

struct ChunkIndex {
  uint64_t message_start_time = 0;
  uint64_t message_end_time = 0;
  uint64_t chunk_start_offset = 0;                     // file offset of the Chunk record
  uint64_t chunk_length = 0;                           // whole Chunk record, prefix included
  std::map<uint16_t, uint64_t> message_index_offsets;  // channel -> file offset of its index
  uint64_t message_index_length = 0;  // all MessageIndex records after the chunk, prefixes incl.
  std::string compression;
  uint64_t compressed_size = 0;  // size of Chunk.records
  uint64_t uncompressed_size = 0;
  bool operator==(const ChunkIndex&) const = default;
};

struct Attachment {
  uint64_t log_time = 0;
  uint64_t create_time = 0;
  std::string name;
  std::string media_type;
  std::string data;
  uint32_t crc = 0;  // CRC-32 of the body before this field; 0 = not available
  bool operator==(const Attachment&) const = default;
};

struct AttachmentIndex {
  uint64_t offset = 0;  // file offset of the Attachment record
  uint64_t length = 0;  // whole record, prefix included
  uint64_t log_time = 0;
  uint64_t create_time = 0;
  uint64_t data_size = 0;
  std::string name;
  std::string media_type;
  bool operator==(const AttachmentIndex&) const = default;
};

struct Statistics {
  uint64_t message_count = 0;
  uint16_t schema_count = 0;  // unique schema ids, 0 excluded
  uint32_t channel_count = 0;
  uint32_t attachment_count = 0;
  uint32_t metadata_count = 0;
  uint32_t chunk_count = 0;
  uint64_t message_start_time = 0;  // 0 when the file has no message
  uint64_t message_end_time = 0;
  std::map<uint16_t, uint64_t> channel_message_counts;  // empty = not available
  bool operator==(const Statistics&) const = default;
};

struct Metadata {
  std::string name;
  StringMap metadata;
  bool operator==(const Metadata&) const = default;
};

struct MetadataIndex {
  uint64_t offset = 0;  // file offset of the Metadata record
  uint64_t length = 0;  // whole record, prefix included
  std::string name;
  bool operator==(const MetadataIndex&) const = default;
};

struct SummaryOffset {
  uint8_t group_opcode = 0;
  uint64_t group_start = 0;   // file offset of the group's first record
  uint64_t group_length = 0;  // bytes of all records of the group
  bool operator==(const SummaryOffset&) const = default;
};

struct DataEnd {
  uint32_t data_section_crc = 0;  // CRC-32 of the file before DataEnd; 0 = not available
  bool operator==(const DataEnd&) const = default;
};

// Appends the whole record (opcode, u64 length, body) to `out`.
void Encode(const Header& record, std::string& out);
void Encode(const Footer& record, std::string& out);
void Encode(const Schema& record, std::string& out);
void Encode(const Channel& record, std::string& out);
void Encode(const Message& record, std::string& out);
void Encode(const MessageView& record, std::string& out);
void Encode(const Chunk& record, std::string& out);
void Encode(const MessageIndex& record, std::string& out);
void Encode(const ChunkIndex& record, std::string& out);
void Encode(const Attachment& record, std::string& out);
void Encode(const AttachmentIndex& record, std::string& out);
void Encode(const Statistics& record, std::string& out);
void Encode(const Metadata& record, std::string& out);
void Encode(const MetadataIndex& record, std::string& out);
void Encode(const SummaryOffset& record, std::string& out);
void Encode(const DataEnd& record, std::string& out);

// Appends a Message record; `data` is copied once, into `out` (the writer's chunk buffer).
void EncodeMessage(uint16_t channel_id, uint32_t sequence, uint64_t log_time, uint64_t publish_time,
                   std::string_view data, std::string& out);

// Appends a Chunk record without its records bytes: opcode, length (counting the records),
// the fields and the u64 records length. Appending record.records after it completes the
// record, so a writer can hand its compressed buffer to the file without a copy.
void EncodeChunkPrefix(const Chunk& record, std::string& out);

// CRC-32 of an Attachment's fields before `crc`, as Attachment.crc should hold it.
uint32_t AttachmentCrc(const Attachment& record);

Result<Header> DecodeHeader(std::string_view body);
Result<Footer> DecodeFooter(std::string_view body);
Result<Schema> DecodeSchema(std::string_view body);
Result<Channel> DecodeChannel(std::string_view body);
Result<Message> DecodeMessage(std::string_view body);
// Zero-copy: the view's data refers into `body`.
Result<MessageView> DecodeMessageView(std::string_view body);
// Zero-copy: records refers into `body`.
Result<Chunk> DecodeChunk(std::string_view body);
Result<MessageIndex> DecodeMessageIndex(std::string_view body);
Result<ChunkIndex> DecodeChunkIndex(std::string_view body);
Result<Attachment> DecodeAttachment(std::string_view body);
Result<AttachmentIndex> DecodeAttachmentIndex(std::string_view body);
Result<Statistics> DecodeStatistics(std::string_view body);
Result<Metadata> DecodeMetadata(std::string_view body);
Result<MetadataIndex> DecodeMetadataIndex(std::string_view body);
Result<SummaryOffset> DecodeSummaryOffset(std::string_view body);
Result<DataEnd> DecodeDataEnd(std::string_view body);

}  // namespace doppel::mcap
