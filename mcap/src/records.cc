#include "doppel/mcap/records.h"

#include <bit>
#include <cstring>

#include "doppel/mcap/crc32.h"

namespace doppel::mcap {
namespace {

// Little-endian on the wire; a no-op on the little-endian machines doppel runs on.
template <typename T>
T LittleEndian(T value) {
  if constexpr (std::endian::native == std::endian::little || sizeof(T) == 1) {
    return value;
  } else if constexpr (sizeof(T) == 2) {
    return static_cast<T>(__builtin_bswap16(value));
  } else if constexpr (sizeof(T) == 4) {
    return static_cast<T>(__builtin_bswap32(value));
  } else {
    return static_cast<T>(__builtin_bswap64(value));
  }
}

template <typename T>
void Put(std::string& out, T value) {
  value = LittleEndian(value);
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.append(bytes, sizeof(T));
}

void PutString(std::string& out, std::string_view s) {
  Put<uint32_t>(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}

void PutStringMap(std::string& out, const StringMap& map) {
  uint64_t size = 0;
  for (const auto& [k, v] : map) size += 8 + k.size() + v.size();
  Put<uint32_t>(out, static_cast<uint32_t>(size));
  for (const auto& [k, v] : map) {
    PutString(out, k);
    PutString(out, v);
  }
}

void PutU16U64Map(std::string& out, const std::map<uint16_t, uint64_t>& map) {
  Put<uint32_t>(out, static_cast<uint32_t>(map.size() * 10));
  for (const auto& [k, v] : map) {
    Put<uint16_t>(out, k);
    Put<uint64_t>(out, v);
  }
}

// Writes the opcode and a length placeholder; Finish() fills the length in once the body is out.
class RecordScope {
 public:
  RecordScope(std::string& out, Opcode opcode) : out_(out) {
    Put<uint8_t>(out, static_cast<uint8_t>(opcode));
    length_at_ = out.size();
    Put<uint64_t>(out, 0);
  }
  ~RecordScope() {
    uint64_t length = out_.size() - length_at_ - 8;
    length = LittleEndian(length);
    std::memcpy(out_.data() + length_at_, &length, 8);
  }
  RecordScope(const RecordScope&) = delete;
  RecordScope& operator=(const RecordScope&) = delete;

 private:
  std::string& out_;
  size_t length_at_;
};

// Reads the fields of one record body in order. The first failure sticks: later reads return
// zero values, and status() names the record and the first field that did not fit.
class FieldReader {
 public:
  FieldReader(std::string_view body, const char* record) : body_(body), record_(record) {}

  template <typename T>
  T Get(const char* field) {
    T value{};
    if (!Need(sizeof(T), field)) return value;
    std::memcpy(&value, body_.data() + pos_, sizeof(T));
    value = LittleEndian(value);
    pos_ += sizeof(T);
    return value;
  }

  // A u32- or u64-length-prefixed run of bytes, as a view into the body.
  template <typename Length>
  std::string_view Bytes(const char* field) {
    uint64_t length = Get<Length>(field);
    if (!ok_) return {};
    if (length > body_.size() - pos_) {
      Fail(field, length, "its length prefix says");
      return {};
    }
    std::string_view bytes = body_.substr(pos_, length);
    pos_ += length;
    return bytes;
  }

  std::string String(const char* field) { return std::string(Bytes<uint32_t>(field)); }

  StringMap ReadStringMap(const char* field) {
    StringMap map;
    std::string_view bytes = Bytes<uint32_t>(field);
    FieldReader entries(bytes, record_);
    while (ok_ && entries.ok_ && entries.remaining() > 0) {
      std::string key = entries.String(field);
      std::string value = entries.String(field);
      if (entries.ok_) map.insert_or_assign(std::move(key), std::move(value));
    }
    if (ok_ && !entries.ok_) Adopt(entries);
    return map;
  }

  std::map<uint16_t, uint64_t> ReadU16U64Map(const char* field) {
    std::map<uint16_t, uint64_t> map;
    std::string_view bytes = Bytes<uint32_t>(field);
    FieldReader entries(bytes, record_);
    while (ok_ && entries.ok_ && entries.remaining() > 0) {
      auto key = entries.Get<uint16_t>(field);
      auto value = entries.Get<uint64_t>(field);
      if (entries.ok_) map.insert_or_assign(key, value);
    }
    if (ok_ && !entries.ok_) Adopt(entries);
    return map;
  }

  std::string_view Rest() {
    std::string_view rest = body_.substr(pos_);
    pos_ = body_.size();
    return rest;
  }

  size_t remaining() const { return body_.size() - pos_; }
  bool ok() const { return ok_; }
  Status status() const { return Status::Corruption(message_); }

 private:
  bool Need(uint64_t n, const char* field) {
    if (!ok_) return false;
    if (n > body_.size() - pos_) {
      Fail(field, n, "it needs");
      return false;
    }
    return true;
  }

  void Fail(const char* field, uint64_t n, const char* why) {
    ok_ = false;
    message_ = std::string(record_) + " record: field '" + field + "' is truncated (" + why + " " +
               std::to_string(n) + " bytes at body offset " + std::to_string(pos_) + ", " +
               std::to_string(body_.size() - pos_) + " remain)";
  }

  void Adopt(const FieldReader& inner) {
    ok_ = false;
    message_ = inner.message_ + " inside its map";
  }

  std::string_view body_;
  const char* record_;
  size_t pos_ = 0;
  bool ok_ = true;
  std::string message_;
};

void EncodeAttachmentFieldsBeforeCrc(const Attachment& r, std::string& out) {
  Put<uint64_t>(out, r.log_time);
  Put<uint64_t>(out, r.create_time);
  PutString(out, r.name);
  PutString(out, r.media_type);
  Put<uint64_t>(out, r.data.size());
  out.append(r.data);
}

}  // namespace

std::string OpcodeName(Opcode opcode) {
  switch (opcode) {
    case Opcode::kHeader:
      return "Header";
    case Opcode::kFooter:
      return "Footer";
    case Opcode::kSchema:
      return "Schema";
    case Opcode::kChannel:
      return "Channel";
    case Opcode::kMessage:
      return "Message";
    case Opcode::kChunk:
      return "Chunk";
    case Opcode::kMessageIndex:
      return "MessageIndex";
    case Opcode::kChunkIndex:
      return "ChunkIndex";
    case Opcode::kAttachment:
      return "Attachment";
    case Opcode::kAttachmentIndex:
      return "AttachmentIndex";
    case Opcode::kStatistics:
      return "Statistics";
    case Opcode::kMetadata:
      return "Metadata";
    case Opcode::kMetadataIndex:
      return "MetadataIndex";
    case Opcode::kSummaryOffset:
      return "SummaryOffset";
    case Opcode::kDataEnd:
      return "DataEnd";
  }
  static constexpr char kHex[] = "0123456789abcdef";
  auto value = static_cast<uint8_t>(opcode);
  return std::string("opcode 0x") + kHex[value >> 4] + kHex[value & 0xF];
}

bool IsKnownOpcode(uint8_t opcode) { return opcode >= 0x01 && opcode <= 0x0F; }

void Encode(const Header& r, std::string& out) {
  RecordScope scope(out, Opcode::kHeader);
  PutString(out, r.profile);
  PutString(out, r.library);
}

void Encode(const Footer& r, std::string& out) {
  RecordScope scope(out, Opcode::kFooter);
  Put<uint64_t>(out, r.summary_start);
  Put<uint64_t>(out, r.summary_offset_start);
  Put<uint32_t>(out, r.summary_crc);
}

void Encode(const Schema& r, std::string& out) {
  RecordScope scope(out, Opcode::kSchema);
  Put<uint16_t>(out, r.id);
  PutString(out, r.name);
  PutString(out, r.encoding);
  PutString(out, r.data);
}

void Encode(const Channel& r, std::string& out) {
  RecordScope scope(out, Opcode::kChannel);
  Put<uint16_t>(out, r.id);
  Put<uint16_t>(out, r.schema_id);
  PutString(out, r.topic);
  PutString(out, r.message_encoding);
  PutStringMap(out, r.metadata);
}

void EncodeMessage(uint16_t channel_id, uint32_t sequence, uint64_t log_time, uint64_t publish_time,
                   std::string_view data, std::string& out) {
  // One append for the fixed part, one for the data: this is the per-message hot path.
  char fixed[kRecordPrefixSize + kMessageFixedSize];
  auto put = [&fixed](size_t at, auto value) {
    value = LittleEndian(value);
    std::memcpy(fixed + at, &value, sizeof(value));
  };
  put(0, static_cast<uint8_t>(Opcode::kMessage));
  put(1, static_cast<uint64_t>(kMessageFixedSize + data.size()));
  put(9, channel_id);
  put(11, sequence);
  put(15, log_time);
  put(23, publish_time);
  out.append(fixed, sizeof(fixed));
  out.append(data);
}

void Encode(const MessageView& r, std::string& out) {
  EncodeMessage(r.channel_id, r.sequence, r.log_time, r.publish_time, r.data, out);
}

void Encode(const Message& r, std::string& out) {
  EncodeMessage(r.channel_id, r.sequence, r.log_time, r.publish_time, r.data, out);
}

void EncodeChunkPrefix(const Chunk& r, std::string& out) {
  const uint64_t body = 8 + 8 + 8 + 4 + 4 + r.compression.size() + 8 + r.records.size();
  Put<uint8_t>(out, static_cast<uint8_t>(Opcode::kChunk));
  Put<uint64_t>(out, body);
  Put<uint64_t>(out, r.message_start_time);
  Put<uint64_t>(out, r.message_end_time);
  Put<uint64_t>(out, r.uncompressed_size);
  Put<uint32_t>(out, r.uncompressed_crc);
  PutString(out, r.compression);
  Put<uint64_t>(out, r.records.size());
}

void Encode(const Chunk& r, std::string& out) {
  EncodeChunkPrefix(r, out);
  out.append(r.records);
}

void Encode(const MessageIndex& r, std::string& out) {
  RecordScope scope(out, Opcode::kMessageIndex);
  Put<uint16_t>(out, r.channel_id);
  Put<uint32_t>(out, static_cast<uint32_t>(r.records.size() * 16));
  for (const auto& [log_time, offset] : r.records) {
    Put<uint64_t>(out, log_time);
    Put<uint64_t>(out, offset);
  }
}

void Encode(const ChunkIndex& r, std::string& out) {
  RecordScope scope(out, Opcode::kChunkIndex);
  Put<uint64_t>(out, r.message_start_time);
  Put<uint64_t>(out, r.message_end_time);
  Put<uint64_t>(out, r.chunk_start_offset);
  Put<uint64_t>(out, r.chunk_length);
  PutU16U64Map(out, r.message_index_offsets);
  Put<uint64_t>(out, r.message_index_length);
  PutString(out, r.compression);
  Put<uint64_t>(out, r.compressed_size);
  Put<uint64_t>(out, r.uncompressed_size);
}

uint32_t AttachmentCrc(const Attachment& r) {
  std::string fields;
  EncodeAttachmentFieldsBeforeCrc(r, fields);
  return Crc32(fields);
}

void Encode(const Attachment& r, std::string& out) {
  RecordScope scope(out, Opcode::kAttachment);
  EncodeAttachmentFieldsBeforeCrc(r, out);
  Put<uint32_t>(out, r.crc);
}

void Encode(const AttachmentIndex& r, std::string& out) {
  RecordScope scope(out, Opcode::kAttachmentIndex);
  Put<uint64_t>(out, r.offset);
  Put<uint64_t>(out, r.length);
  Put<uint64_t>(out, r.log_time);
  Put<uint64_t>(out, r.create_time);
  Put<uint64_t>(out, r.data_size);
  PutString(out, r.name);
  PutString(out, r.media_type);
}

void Encode(const Statistics& r, std::string& out) {
  RecordScope scope(out, Opcode::kStatistics);
  Put<uint64_t>(out, r.message_count);
  Put<uint16_t>(out, r.schema_count);
  Put<uint32_t>(out, r.channel_count);
  Put<uint32_t>(out, r.attachment_count);
  Put<uint32_t>(out, r.metadata_count);
  Put<uint32_t>(out, r.chunk_count);
  Put<uint64_t>(out, r.message_start_time);
  Put<uint64_t>(out, r.message_end_time);
  PutU16U64Map(out, r.channel_message_counts);
}

void Encode(const Metadata& r, std::string& out) {
  RecordScope scope(out, Opcode::kMetadata);
  PutString(out, r.name);
  PutStringMap(out, r.metadata);
}

void Encode(const MetadataIndex& r, std::string& out) {
  RecordScope scope(out, Opcode::kMetadataIndex);
  Put<uint64_t>(out, r.offset);
  Put<uint64_t>(out, r.length);
  PutString(out, r.name);
}

void Encode(const SummaryOffset& r, std::string& out) {
  RecordScope scope(out, Opcode::kSummaryOffset);
  Put<uint8_t>(out, r.group_opcode);
  Put<uint64_t>(out, r.group_start);
  Put<uint64_t>(out, r.group_length);
}

void Encode(const DataEnd& r, std::string& out) {
  RecordScope scope(out, Opcode::kDataEnd);
  Put<uint32_t>(out, r.data_section_crc);
}

#define DOPPEL_MCAP_DONE(reader, value)         \
  if (!(reader).ok()) return (reader).status(); \
  return value

Result<Header> DecodeHeader(std::string_view body) {
  FieldReader f(body, "Header");
  Header r;
  r.profile = f.String("profile");
  r.library = f.String("library");
  DOPPEL_MCAP_DONE(f, r);
}

Result<Footer> DecodeFooter(std::string_view body) {
  FieldReader f(body, "Footer");
  Footer r;
  r.summary_start = f.Get<uint64_t>("summary_start");
  r.summary_offset_start = f.Get<uint64_t>("summary_offset_start");
  r.summary_crc = f.Get<uint32_t>("summary_crc");
  DOPPEL_MCAP_DONE(f, r);
}

Result<Schema> DecodeSchema(std::string_view body) {
  FieldReader f(body, "Schema");
  Schema r;
  r.id = f.Get<uint16_t>("id");
  r.name = f.String("name");
  r.encoding = f.String("encoding");
  r.data = std::string(f.Bytes<uint32_t>("data"));
  DOPPEL_MCAP_DONE(f, r);
}

Result<Channel> DecodeChannel(std::string_view body) {
  FieldReader f(body, "Channel");
  Channel r;
  r.id = f.Get<uint16_t>("id");
  r.schema_id = f.Get<uint16_t>("schema_id");
  r.topic = f.String("topic");
  r.message_encoding = f.String("message_encoding");
  r.metadata = f.ReadStringMap("metadata");
  DOPPEL_MCAP_DONE(f, r);
}

Result<MessageView> DecodeMessageView(std::string_view body) {
  FieldReader f(body, "Message");
  MessageView r;
  r.channel_id = f.Get<uint16_t>("channel_id");
  r.sequence = f.Get<uint32_t>("sequence");
  r.log_time = f.Get<uint64_t>("log_time");
  r.publish_time = f.Get<uint64_t>("publish_time");
  r.data = f.Rest();
  DOPPEL_MCAP_DONE(f, r);
}

Result<Message> DecodeMessage(std::string_view body) {
  Result<MessageView> view = DecodeMessageView(body);
  if (!view.ok()) return view.status();
  return Message{view->channel_id, view->sequence, view->log_time, view->publish_time,
                 std::string(view->data)};
}

Result<Chunk> DecodeChunk(std::string_view body) {
  FieldReader f(body, "Chunk");
  Chunk r;
  r.message_start_time = f.Get<uint64_t>("message_start_time");
  r.message_end_time = f.Get<uint64_t>("message_end_time");
  r.uncompressed_size = f.Get<uint64_t>("uncompressed_size");
  r.uncompressed_crc = f.Get<uint32_t>("uncompressed_crc");
  r.compression = f.String("compression");
  r.records = f.Bytes<uint64_t>("records");
  DOPPEL_MCAP_DONE(f, r);
}

Result<MessageIndex> DecodeMessageIndex(std::string_view body) {
  FieldReader f(body, "MessageIndex");
  MessageIndex r;
  r.channel_id = f.Get<uint16_t>("channel_id");
  std::string_view entries = f.Bytes<uint32_t>("records");
  if (f.ok() && entries.size() % 16 != 0) {
    return Status::Corruption("MessageIndex record: field 'records' is " +
                              std::to_string(entries.size()) +
                              " bytes, not a whole number of 16-byte entries");
  }
  FieldReader e(entries, "MessageIndex");
  r.records.reserve(entries.size() / 16);
  while (f.ok() && e.remaining() > 0) {
    auto log_time = e.Get<uint64_t>("records");
    auto offset = e.Get<uint64_t>("records");
    r.records.emplace_back(log_time, offset);
  }
  DOPPEL_MCAP_DONE(f, r);
}

Result<ChunkIndex> DecodeChunkIndex(std::string_view body) {
  FieldReader f(body, "ChunkIndex");
  ChunkIndex r;
  r.message_start_time = f.Get<uint64_t>("message_start_time");
  r.message_end_time = f.Get<uint64_t>("message_end_time");
  r.chunk_start_offset = f.Get<uint64_t>("chunk_start_offset");
  r.chunk_length = f.Get<uint64_t>("chunk_length");
  r.message_index_offsets = f.ReadU16U64Map("message_index_offsets");
  r.message_index_length = f.Get<uint64_t>("message_index_length");
  r.compression = f.String("compression");
  r.compressed_size = f.Get<uint64_t>("compressed_size");
  r.uncompressed_size = f.Get<uint64_t>("uncompressed_size");
  DOPPEL_MCAP_DONE(f, r);
}

Result<Attachment> DecodeAttachment(std::string_view body) {
  FieldReader f(body, "Attachment");
  Attachment r;
  r.log_time = f.Get<uint64_t>("log_time");
  r.create_time = f.Get<uint64_t>("create_time");
  r.name = f.String("name");
  r.media_type = f.String("media_type");
  r.data = std::string(f.Bytes<uint64_t>("data"));
  r.crc = f.Get<uint32_t>("crc");
  DOPPEL_MCAP_DONE(f, r);
}

Result<AttachmentIndex> DecodeAttachmentIndex(std::string_view body) {
  FieldReader f(body, "AttachmentIndex");
  AttachmentIndex r;
  r.offset = f.Get<uint64_t>("offset");
  r.length = f.Get<uint64_t>("length");
  r.log_time = f.Get<uint64_t>("log_time");
  r.create_time = f.Get<uint64_t>("create_time");
  r.data_size = f.Get<uint64_t>("data_size");
  r.name = f.String("name");
  r.media_type = f.String("media_type");
  DOPPEL_MCAP_DONE(f, r);
}

Result<Statistics> DecodeStatistics(std::string_view body) {
  FieldReader f(body, "Statistics");
  Statistics r;
  r.message_count = f.Get<uint64_t>("message_count");
  r.schema_count = f.Get<uint16_t>("schema_count");
  r.channel_count = f.Get<uint32_t>("channel_count");
  r.attachment_count = f.Get<uint32_t>("attachment_count");
  r.metadata_count = f.Get<uint32_t>("metadata_count");
  r.chunk_count = f.Get<uint32_t>("chunk_count");
  r.message_start_time = f.Get<uint64_t>("message_start_time");
  r.message_end_time = f.Get<uint64_t>("message_end_time");
  r.channel_message_counts = f.ReadU16U64Map("channel_message_counts");
  DOPPEL_MCAP_DONE(f, r);
}

Result<Metadata> DecodeMetadata(std::string_view body) {
  FieldReader f(body, "Metadata");
  Metadata r;
  r.name = f.String("name");
  r.metadata = f.ReadStringMap("metadata");
  DOPPEL_MCAP_DONE(f, r);
}

Result<MetadataIndex> DecodeMetadataIndex(std::string_view body) {
  FieldReader f(body, "MetadataIndex");
  MetadataIndex r;
  r.offset = f.Get<uint64_t>("offset");
  r.length = f.Get<uint64_t>("length");
  r.name = f.String("name");
  DOPPEL_MCAP_DONE(f, r);
}

Result<SummaryOffset> DecodeSummaryOffset(std::string_view body) {
  FieldReader f(body, "SummaryOffset");
  SummaryOffset r;
  r.group_opcode = f.Get<uint8_t>("group_opcode");
  r.group_start = f.Get<uint64_t>("group_start");
  r.group_length = f.Get<uint64_t>("group_length");
  DOPPEL_MCAP_DONE(f, r);
}

Result<DataEnd> DecodeDataEnd(std::string_view body) {
  FieldReader f(body, "DataEnd");
  DataEnd r;
  r.data_section_crc = f.Get<uint32_t>("data_section_crc");
  DOPPEL_MCAP_DONE(f, r);
}

#undef DOPPEL_MCAP_DONE

}  // namespace doppel::mcap
