#include "mcap_record_json.h"

#include <map>
#include <string>

namespace doppel::tools {
namespace {

using nlohmann::json;

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    out += kDigits[b >> 4];
    out += kDigits[b & 0xF];
  }
  return out;
}

json IdMap(const std::map<uint16_t, uint64_t>& map) {
  json out = json::object();
  for (const auto& [id, value] : map) out[std::to_string(id)] = value;
  return out;
}

json StringMapJson(const mcap::StringMap& map) {
  json out = json::object();
  for (const auto& [key, value] : map) out[key] = value;
  return out;
}

// Decodes with `decode` and turns the record into fields with `fields`.
template <typename Decode, typename Fields>
Result<json> FieldsOf(std::string_view body, Decode decode, Fields fields) {
  auto record = decode(body);
  if (!record.ok()) return record.status();
  return fields(*record);
}

Result<json> Fields(const mcap::RecordRef& ref) {
  using namespace mcap;
  switch (ref.opcode) {
    case Opcode::kHeader:
      return FieldsOf(ref.body, DecodeHeader, [](const Header& r) {
        return json{{"profile", r.profile}, {"library", r.library}};
      });
    case Opcode::kFooter:
      return FieldsOf(ref.body, DecodeFooter, [](const Footer& r) {
        return json{{"summary_start", r.summary_start},
                    {"summary_offset_start", r.summary_offset_start},
                    {"summary_crc", r.summary_crc}};
      });
    case Opcode::kSchema:
      return FieldsOf(ref.body, DecodeSchema, [](const Schema& r) {
        return json{
            {"id", r.id}, {"name", r.name}, {"encoding", r.encoding}, {"data", Hex(r.data)}};
      });
    case Opcode::kChannel:
      return FieldsOf(ref.body, DecodeChannel, [](const Channel& r) {
        return json{{"id", r.id},
                    {"schema_id", r.schema_id},
                    {"topic", r.topic},
                    {"message_encoding", r.message_encoding},
                    {"metadata", StringMapJson(r.metadata)}};
      });
    case Opcode::kMessage:
      return FieldsOf(ref.body, DecodeMessageView, [](const MessageView& r) {
        return json{{"channel_id", r.channel_id},
                    {"sequence", r.sequence},
                    {"log_time", r.log_time},
                    {"publish_time", r.publish_time},
                    {"data", Hex(r.data)}};
      });
    case Opcode::kChunk:
      return FieldsOf(ref.body, DecodeChunk, [](const Chunk& r) {
        return json{{"message_start_time", r.message_start_time},
                    {"message_end_time", r.message_end_time},
                    {"uncompressed_size", r.uncompressed_size},
                    {"uncompressed_crc", r.uncompressed_crc},
                    {"compression", r.compression},
                    {"compressed_size", r.records.size()}};
      });
    case Opcode::kMessageIndex:
      return FieldsOf(ref.body, DecodeMessageIndex, [](const MessageIndex& r) {
        json records = json::array();
        for (const auto& [log_time, offset] : r.records) records.push_back({log_time, offset});
        return json{{"channel_id", r.channel_id}, {"records", records}};
      });
    case Opcode::kChunkIndex:
      return FieldsOf(ref.body, DecodeChunkIndex, [](const ChunkIndex& r) {
        return json{{"message_start_time", r.message_start_time},
                    {"message_end_time", r.message_end_time},
                    {"chunk_start_offset", r.chunk_start_offset},
                    {"chunk_length", r.chunk_length},
                    {"message_index_offsets", IdMap(r.message_index_offsets)},
                    {"message_index_length", r.message_index_length},
                    {"compression", r.compression},
                    {"compressed_size", r.compressed_size},
                    {"uncompressed_size", r.uncompressed_size}};
      });
    case Opcode::kAttachment:
      return FieldsOf(ref.body, DecodeAttachment, [](const Attachment& r) {
        return json{{"log_time", r.log_time},     {"create_time", r.create_time}, {"name", r.name},
                    {"media_type", r.media_type}, {"data", Hex(r.data)},          {"crc", r.crc}};
      });
    case Opcode::kAttachmentIndex:
      return FieldsOf(ref.body, DecodeAttachmentIndex, [](const AttachmentIndex& r) {
        return json{{"offset", r.offset},        {"length", r.length},
                    {"log_time", r.log_time},    {"create_time", r.create_time},
                    {"data_size", r.data_size},  {"name", r.name},
                    {"media_type", r.media_type}};
      });
    case Opcode::kStatistics:
      return FieldsOf(ref.body, DecodeStatistics, [](const Statistics& r) {
        return json{{"message_count", r.message_count},
                    {"schema_count", r.schema_count},
                    {"channel_count", r.channel_count},
                    {"attachment_count", r.attachment_count},
                    {"metadata_count", r.metadata_count},
                    {"chunk_count", r.chunk_count},
                    {"message_start_time", r.message_start_time},
                    {"message_end_time", r.message_end_time},
                    {"channel_message_counts", IdMap(r.channel_message_counts)}};
      });
    case Opcode::kMetadata:
      return FieldsOf(ref.body, DecodeMetadata, [](const Metadata& r) {
        return json{{"name", r.name}, {"metadata", StringMapJson(r.metadata)}};
      });
    case Opcode::kMetadataIndex:
      return FieldsOf(ref.body, DecodeMetadataIndex, [](const MetadataIndex& r) {
        return json{{"offset", r.offset}, {"length", r.length}, {"name", r.name}};
      });
    case Opcode::kSummaryOffset:
      return FieldsOf(ref.body, DecodeSummaryOffset, [](const SummaryOffset& r) {
        return json{{"group_opcode", r.group_opcode},
                    {"group_start", r.group_start},
                    {"group_length", r.group_length}};
      });
    case Opcode::kDataEnd:
      return FieldsOf(ref.body, DecodeDataEnd, [](const DataEnd& r) {
        return json{{"data_section_crc", r.data_section_crc}};
      });
  }
  return json::object();
}

}  // namespace

Result<nlohmann::json> RecordJson(const mcap::RecordRef& ref) {
  auto fields = Fields(ref);
  if (!fields.ok()) {
    return Status::Corruption(mcap::OpcodeName(ref.opcode) + " at offset " +
                              std::to_string(ref.offset) + ": " + fields.status().message());
  }
  json out = {{"offset", ref.offset},
              {"type", mcap::OpcodeName(ref.opcode)},
              {"in_chunk", ref.in_chunk},
              {"fields", std::move(*fields)}};
  if (ref.in_chunk) out["offset_in_chunk"] = ref.offset_in_chunk;
  return out;
}

}  // namespace doppel::tools
