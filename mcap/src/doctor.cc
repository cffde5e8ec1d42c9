#include "doppel/mcap/doctor.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <tuple>

#include "doppel/mcap/reader.h"
#include "doppel/mcap/records.h"

namespace doppel::mcap {
namespace {

std::string N(uint64_t value) { return std::to_string(value); }

std::string Quoted(const std::string& s) { return "\"" + s + "\""; }

// Everything learned about one Chunk record while scanning.
struct ChunkSeen {
  uint64_t length = 0;           // whole record
  uint64_t compressed_size = 0;  // its records field (bytes after it are not the chunk's data)
  Chunk header;                  // records view not kept
  bool bad = false;
  std::set<uint16_t> channels;
  std::map<uint16_t, uint64_t> message_index_offsets;  // from the MessageIndex records after it
  uint64_t message_index_length = 0;
};

struct Located {
  uint64_t length;
  std::string name;
  uint64_t log_time = 0;
  uint64_t create_time = 0;
  uint64_t data_size = 0;
  std::string media_type;
};

class Examination {
 public:
  explicit Examination(DoctorOptions options) : options_(options) {}

  std::vector<Finding> Run(const std::string& path, Status* io_error) {
    ReadOptions options;
    options.max_chunk_uncompressed_bytes = options_.max_chunk_uncompressed_bytes;
    options.on_bad_chunk = [this](const Status& error, uint64_t offset) {
      FinishChunk();
      Add(error.message(), offset);
      ChunkSeen& seen = chunks_[offset];
      seen.bad = true;
      any_bad_chunk_ = true;
      current_chunk_ = offset;
      chunk_open_ = true;
    };
    uint64_t error_offset = 0;
    Status status = ScanFile(
        path, [this](const RecordRef& ref) { return Visit(ref); }, options, &error_offset);
    FinishChunk();
    if (status.code() == Status::Code::kIOError) {
      *io_error = status;
      return {};
    }
    if (!status.ok()) {
      // The rest of the file is unknown: cross-checks against it would only add noise.
      Add(status.message(), error_offset);
      return std::move(findings_);
    }
    if (out_of_order_ > kOrderFindings) {
      AddUnlessStrict(
          N(out_of_order_ - kOrderFindings) + " more messages with a log time before the latest",
          0);
    }
    if (!saw_data_end_) Add("the file has no DataEnd record", footer_offset_);
    CheckChunkIndexes();
    CheckStatistics();
    CheckIndexes();
    if (top_level_messages_ > 0 && !chunk_indexes_.empty()) {
      Warn(N(top_level_messages_) +
               " messages outside chunks in a file with chunk indexes: indexed readers miss them",
           first_top_level_message_);
    }
    return std::move(findings_);
  }

 private:
  static constexpr uint64_t kOrderFindings = 10;

  void Add(std::string what, uint64_t offset) {
    findings_.push_back({std::move(what), offset, Severity::kError});
  }
  void Warn(std::string what, uint64_t offset) {
    findings_.push_back({std::move(what), offset, Severity::kWarning});
  }
  // What valid files may do but tidy writers avoid: an error only under the stricter rules.
  void AddUnlessStrict(std::string what, uint64_t offset) {
    findings_.push_back(
        {std::move(what), offset, options_.strict ? Severity::kError : Severity::kWarning});
  }

  template <typename T>
  std::optional<T> Decoded(Result<T> result, const RecordRef& ref) {
    if (result.ok()) return std::move(*result);
    Add(OpcodeName(ref.opcode) + " at offset " + N(ref.offset) +
            (ref.in_chunk ? " (offset " + N(ref.offset_in_chunk) + " in its chunk)" : "") + ": " +
            result.status().message(),
        ref.offset);
    return std::nullopt;
  }

  Status Visit(const RecordRef& ref) {
    if (ref.in_chunk) {
      InChunk(ref);
      return Status::Ok();
    }
    if (ref.opcode != Opcode::kMessageIndex) FinishChunk();
    switch (ref.opcode) {
      case Opcode::kHeader:
        if (auto header = Decoded(DecodeHeader(ref.body), ref)) {
          // Both are recommendations of the spec, warnings upstream even with --strict.
          if (header->library.empty()) {
            Warn("Header.library is empty: set it to the software that wrote the file", ref.offset);
          }
          if (!header->profile.empty() && header->profile != "ros1" && header->profile != "ros2") {
            Warn("Header.profile " + Quoted(header->profile) + " is not a well-known profile",
                 ref.offset);
          }
        }
        break;
      case Opcode::kFooter:
        footer_offset_ = ref.offset;
        break;
      case Opcode::kSchema:
        if (auto schema = Decoded(DecodeSchema(ref.body), ref)) ExamineSchema(*schema, ref.offset);
        break;
      case Opcode::kChannel:
        if (auto channel = Decoded(DecodeChannel(ref.body), ref)) {
          ExamineChannel(*channel, ref.offset);
        }
        break;
      case Opcode::kMessage:
        if (auto message = Decoded(DecodeMessageView(ref.body), ref)) {
          if (top_level_messages_++ == 0) first_top_level_message_ = ref.offset;
          ExamineMessage(*message, ref.offset);
        }
        break;
      case Opcode::kChunk:
        if (auto chunk = Decoded(DecodeChunk(ref.body), ref)) {
          ChunkSeen& seen = chunks_[ref.offset];
          seen.length = kRecordPrefixSize + ref.body.size();
          seen.compressed_size = chunk->records.size();
          seen.header = *chunk;
          seen.header.records = {};
          current_chunk_ = ref.offset;
          chunk_open_ = true;
          chunk_messages_.clear();
        }
        break;
      case Opcode::kMessageIndex:
        if (auto index = Decoded(DecodeMessageIndex(ref.body), ref)) {
          ExamineMessageIndex(*index, ref);
        }
        break;
      case Opcode::kChunkIndex:
        if (auto index = Decoded(DecodeChunkIndex(ref.body), ref)) {
          for (const ChunkIndex& other : chunk_indexes_) {
            if (other.chunk_start_offset == index->chunk_start_offset) {
              Add("multiple chunk indexes for the chunk at offset " + N(index->chunk_start_offset),
                  ref.offset);
            }
          }
          chunk_indexes_.push_back(std::move(*index));
          chunk_index_offsets_.push_back(ref.offset);
        }
        break;
      case Opcode::kAttachment:
        if (auto attachment = Decoded(DecodeAttachment(ref.body), ref)) {
          ++attachment_count_;
          // The CRC covers the fields before it, not any bytes a later spec adds after it.
          const uint32_t computed = AttachmentCrc(*attachment);
          if (attachment->crc != 0 && attachment->crc != computed) {
            Add("Attachment " + Quoted(attachment->name) + " CRC mismatch (stored " +
                    N(attachment->crc) + ", computed " + N(computed) + ")",
                ref.offset);
          }
          attachments_[ref.offset] = Located{kRecordPrefixSize + ref.body.size(),
                                             attachment->name,
                                             attachment->log_time,
                                             attachment->create_time,
                                             attachment->data.size(),
                                             attachment->media_type};
        }
        break;
      case Opcode::kAttachmentIndex:
        if (auto index = Decoded(DecodeAttachmentIndex(ref.body), ref)) {
          attachment_indexes_.push_back({ref.offset, std::move(*index)});
        }
        break;
      case Opcode::kStatistics:
        if (auto statistics = Decoded(DecodeStatistics(ref.body), ref)) {
          if (statistics_) Add("the file has more than one Statistics record", ref.offset);
          if (in_summary_ && !statistics->channel_message_counts.empty()) {
            std::set<uint16_t> required;
            for (const auto& [id, channel] : channels_) required.insert(id);
            for (const auto& [id, count] : statistics->channel_message_counts) required.insert(id);
            for (uint16_t id : required) {
              if (!summary_channels_.contains(id)) {
                Add("Statistics.channel_message_counts is set but Channel " + N(id) +
                        " is not in the summary before the Statistics record",
                    ref.offset);
              }
            }
          }
          statistics_ = std::move(*statistics);
          statistics_offset_ = ref.offset;
        }
        break;
      case Opcode::kMetadata:
        if (auto metadata = Decoded(DecodeMetadata(ref.body), ref)) {
          ++metadata_count_;
          metadata_[ref.offset] =
              Located{kRecordPrefixSize + ref.body.size(), metadata->name, 0, 0, 0, ""};
        }
        break;
      case Opcode::kMetadataIndex:
        if (auto index = Decoded(DecodeMetadataIndex(ref.body), ref)) {
          metadata_indexes_.push_back({ref.offset, std::move(*index)});
        }
        break;
      case Opcode::kSummaryOffset:
        (void)Decoded(DecodeSummaryOffset(ref.body), ref);
        break;
      case Opcode::kDataEnd:
        saw_data_end_ = true;
        in_summary_ = true;
        break;
    }
    return Status::Ok();
  }

  void InChunk(const RecordRef& ref) {
    switch (ref.opcode) {
      case Opcode::kSchema:
        if (auto schema = Decoded(DecodeSchema(ref.body), ref)) ExamineSchema(*schema, ref.offset);
        break;
      case Opcode::kChannel:
        if (auto channel = Decoded(DecodeChannel(ref.body), ref)) {
          ExamineChannel(*channel, ref.offset);
        }
        break;
      case Opcode::kMessage:
        if (auto message = Decoded(DecodeMessageView(ref.body), ref)) {
          ExamineMessage(*message, ref.offset);
          chunks_[current_chunk_].channels.insert(message->channel_id);
          chunk_messages_.push_back({message->channel_id, message->log_time, ref.offset_in_chunk});
        }
        break;
      default:
        Add(OpcodeName(ref.opcode) + " record inside the chunk at offset " + N(ref.offset) +
                " (offset " + N(ref.offset_in_chunk) + "): chunks hold Schema, Channel, Message",
            ref.offset);
        break;
    }
  }

  void ExamineSchema(const Schema& schema, uint64_t offset) {
    if (schema.id == 0) Add("Schema id 0 is reserved: no Schema record may use it", offset);
    if (schema.encoding.empty() && !schema.data.empty()) {
      Add("Schema " + N(schema.id) + " has an empty encoding but non-empty data", offset);
    }
    auto it = schemas_.find(schema.id);
    if (it != schemas_.end()) {
      const Schema& previous = it->second;
      if (previous.name != schema.name) {
        Add("two Schema records with id " + N(schema.id) + " but different names (" +
                Quoted(schema.name) + " != " + Quoted(previous.name) + ")",
            offset);
      }
      if (previous.encoding != schema.encoding) {
        Add("two Schema records with id " + N(schema.id) + " but different encodings (" +
                Quoted(schema.encoding) + " != " + Quoted(previous.encoding) + ")",
            offset);
      }
      if (previous.data != schema.data) {
        Add("two Schema records with id " + N(schema.id) + " but different data", offset);
      }
    }
    if (in_summary_) {
      if (it == schemas_.end()) {
        Add("Schema " + N(schema.id) + " in the summary is not in the data section", offset);
      }
      summary_schemas_.insert(schema.id);
    } else if (it == schemas_.end()) {
      schemas_.emplace(schema.id, schema);
    }
  }

  void ExamineChannel(const Channel& channel, uint64_t offset) {
    auto it = channels_.find(channel.id);
    if (it != channels_.end()) {
      const Channel& previous = it->second;
      const std::string same = "two Channel records with id " + N(channel.id) + " but different ";
      if (previous.schema_id != channel.schema_id) {
        Add(same + "schema ids (" + N(channel.schema_id) + " != " + N(previous.schema_id) + ")",
            offset);
      }
      if (previous.topic != channel.topic) {
        Add(same + "topics (" + Quoted(channel.topic) + " != " + Quoted(previous.topic) + ")",
            offset);
      }
      if (previous.message_encoding != channel.message_encoding) {
        Add(same + "message encodings (" + Quoted(channel.message_encoding) +
                " != " + Quoted(previous.message_encoding) + ")",
            offset);
      }
      if (previous.metadata != channel.metadata) Add(same + "metadata", offset);
    }
    if (in_summary_) {
      if (it == channels_.end()) {
        Add("Channel " + N(channel.id) + " in the summary is not in the data section", offset);
      }
      summary_channels_.insert(channel.id);
    } else if (it == channels_.end()) {
      channels_.emplace(channel.id, channel);
    }
    if (channel.schema_id != 0 && !schemas_.contains(channel.schema_id)) {
      Add("Channel " + N(channel.id) + " refers to unknown Schema " + N(channel.schema_id), offset);
    }
  }

  void ExamineMessage(const MessageView& message, uint64_t offset) {
    auto channel = channels_.find(message.channel_id);
    if (channel == channels_.end()) {
      Add("Message on channel " + N(message.channel_id) + " before its Channel record", offset);
    }
    // The spec sets no order (readers sort by log time): upstream's --strict-message-order.
    if (message_count_ > 0 && message.log_time < max_log_time_) {
      if (++out_of_order_ <= kOrderFindings) {
        AddUnlessStrict("Message.log_time " + N(message.log_time) + " on " +
                            (channel == channels_.end() ? std::string("<unknown>")
                                                        : Quoted(channel->second.topic)) +
                            " is less than the latest log time " + N(max_log_time_),
                        offset);
      }
    }
    if (message_count_ == 0) {
      min_log_time_ = max_log_time_ = message.log_time;
    } else {
      min_log_time_ = std::min(min_log_time_, message.log_time);
      max_log_time_ = std::max(max_log_time_, message.log_time);
    }
    ++message_count_;
    ++channel_counts_[message.channel_id];
  }

  void ExamineMessageIndex(const MessageIndex& index, const RecordRef& ref) {
    if (!chunk_open_) {
      Add("MessageIndex for channel " + N(index.channel_id) + " follows no chunk", ref.offset);
      return;
    }
    ChunkSeen& chunk = chunks_[current_chunk_];
    if (!chunk.message_index_offsets.emplace(index.channel_id, ref.offset).second) {
      Add("two MessageIndex records for channel " + N(index.channel_id) +
              " after the chunk at offset " + N(current_chunk_),
          ref.offset);
    }
    chunk.message_index_length += kRecordPrefixSize + ref.body.size();
    if (chunk.bad) return;
    // The spec asks for no order; readers sort the entries themselves.
    if (!std::is_sorted(index.records.begin(), index.records.end())) {
      AddUnlessStrict("MessageIndex for channel " + N(index.channel_id) +
                          " is not sorted by log time and offset",
                      ref.offset);
    }
    std::vector<std::pair<uint64_t, uint64_t>> expected;
    for (const auto& [channel, log_time, offset] : chunk_messages_) {
      if (channel == index.channel_id) expected.emplace_back(log_time, offset);
    }
    std::sort(expected.begin(), expected.end());
    auto actual = index.records;
    std::sort(actual.begin(), actual.end());
    if (actual != expected) {
      Add("MessageIndex for channel " + N(index.channel_id) + " lists " + N(actual.size()) +
              " entries that do not match the " + N(expected.size()) +
              " messages of the chunk at offset " + N(current_chunk_),
          ref.offset);
    }
  }

  // Called on the first top-level record after a chunk and its message indexes.
  void FinishChunk() {
    if (!chunk_open_) return;
    chunk_open_ = false;
    ChunkSeen& chunk = chunks_[current_chunk_];
    if (chunk.bad) return;
    if (!chunk_messages_.empty()) {
      uint64_t lo = std::get<1>(chunk_messages_.front());
      uint64_t hi = lo;
      for (const auto& m : chunk_messages_) {
        lo = std::min(lo, std::get<1>(m));
        hi = std::max(hi, std::get<1>(m));
      }
      if (chunk.header.message_start_time != lo) {
        Add("Chunk.message_start_time " + N(chunk.header.message_start_time) +
                " is not the earliest message log time " + N(lo),
            current_chunk_);
      }
      if (chunk.header.message_end_time != hi) {
        Add("Chunk.message_end_time " + N(chunk.header.message_end_time) +
                " is not the latest message log time " + N(hi),
            current_chunk_);
      }
    }
    if (!chunk.message_index_offsets.empty()) {
      for (uint16_t channel : chunk.channels) {
        if (!chunk.message_index_offsets.contains(channel)) {
          Add("the chunk at offset " + N(current_chunk_) + " has messages on channel " +
                  N(channel) + " but no MessageIndex for it",
              current_chunk_);
        }
      }
      for (const auto& [channel, offset] : chunk.message_index_offsets) {
        if (!chunk.channels.contains(channel)) {
          Add("MessageIndex for channel " + N(channel) + " after the chunk at offset " +
                  N(current_chunk_) + ", which has no message on it",
              offset);
        }
      }
    }
    chunk_messages_.clear();
  }

  void CheckChunkIndexes() {
    std::set<uint64_t> indexed;
    for (size_t i = 0; i < chunk_indexes_.size(); ++i) {
      const ChunkIndex& index = chunk_indexes_[i];
      const uint64_t at = chunk_index_offsets_[i];
      const uint64_t offset = index.chunk_start_offset;
      indexed.insert(offset);
      auto it = chunks_.find(offset);
      if (it == chunks_.end()) {
        Add("ChunkIndex points to offset " + N(offset) + ", where no Chunk record starts", at);
        continue;
      }
      const ChunkSeen& chunk = it->second;
      for (uint16_t channel : chunk.channels) {
        if (!summary_channels_.contains(channel)) {
          Add("indexed chunk at offset " + N(offset) + " has messages on channel " + N(channel) +
                  ", which the summary does not repeat",
              at);
        }
        auto c = channels_.find(channel);
        if (c != channels_.end() && c->second.schema_id != 0 &&
            !summary_schemas_.contains(c->second.schema_id)) {
          Add("indexed chunk at offset " + N(offset) + " has messages with schema " +
                  N(c->second.schema_id) + ", which the summary does not repeat",
              at);
        }
      }
      if (chunk.bad) continue;  // reported when it was read
      const std::string which = "ChunkIndex for the chunk at offset " + N(offset) + ": ";
      if (index.chunk_length != chunk.length) {
        Add(which + "chunk_length " + N(index.chunk_length) + ", the record is " + N(chunk.length) +
                " bytes",
            at);
      }
      const Chunk& h = chunk.header;
      auto differ = [&](const char* field, auto in_index, auto in_chunk) {
        if (in_index != in_chunk) {
          Add(which + field + " differs from the chunk's", at);
        }
      };
      differ("message_start_time", index.message_start_time, h.message_start_time);
      differ("message_end_time", index.message_end_time, h.message_end_time);
      differ("compression", index.compression, h.compression);
      differ("uncompressed_size", index.uncompressed_size, h.uncompressed_size);
      differ("compressed_size", index.compressed_size, chunk.compressed_size);
      if (!index.message_index_offsets.empty()) {
        differ("message_index_offsets", index.message_index_offsets, chunk.message_index_offsets);
        differ("message_index_length", index.message_index_length, chunk.message_index_length);
      }
    }
    if (!chunk_indexes_.empty()) {
      for (const auto& [offset, chunk] : chunks_) {
        if (!indexed.contains(offset))
          Add("the chunk at offset " + N(offset) + " has no ChunkIndex", offset);
      }
    }
  }

  void CheckStatistics() {
    if (!statistics_) return;
    const Statistics& s = *statistics_;
    const uint64_t at = statistics_offset_;
    auto differ = [&](const char* field, uint64_t stated, uint64_t actual) {
      if (stated != actual) {
        Add(std::string("Statistics.") + field + " is " + N(stated) + ", the file has " + N(actual),
            at);
      }
    };
    differ("schema_count", s.schema_count, schemas_.size() - (schemas_.contains(0) ? 1 : 0));
    differ("channel_count", s.channel_count, channels_.size());
    differ("attachment_count", s.attachment_count, attachment_count_);
    differ("metadata_count", s.metadata_count, metadata_count_);
    differ("chunk_count", s.chunk_count, chunks_.size());
    if (any_bad_chunk_) return;  // messages of bad chunks were not counted
    differ("message_count", s.message_count, message_count_);
    if (message_count_ > 0) {
      differ("message_start_time", s.message_start_time, min_log_time_);
      differ("message_end_time", s.message_end_time, max_log_time_);
    }
    if (!s.channel_message_counts.empty()) {
      std::set<uint16_t> ids;
      for (const auto& [id, count] : s.channel_message_counts) ids.insert(id);
      for (const auto& [id, count] : channel_counts_) ids.insert(id);
      for (uint16_t id : ids) {
        auto stated = s.channel_message_counts.find(id);
        auto actual = channel_counts_.find(id);
        differ(("channel_message_counts[" + N(id) + "]").c_str(),
               stated == s.channel_message_counts.end() ? 0 : stated->second,
               actual == channel_counts_.end() ? 0 : actual->second);
      }
    }
  }

  void CheckIndexes() {
    for (const auto& [at, index] : metadata_indexes_) {
      auto it = metadata_.find(index.offset);
      if (it == metadata_.end()) {
        Add("MetadataIndex " + Quoted(index.name) + " points to offset " + N(index.offset) +
                ", where no Metadata record starts",
            at);
      } else if (it->second.length != index.length || it->second.name != index.name) {
        Add("MetadataIndex " + Quoted(index.name) + " does not match the Metadata record at " +
                N(index.offset) + " (" + Quoted(it->second.name) + ", " + N(it->second.length) +
                " bytes)",
            at);
      }
    }
    for (const auto& [at, index] : attachment_indexes_) {
      auto it = attachments_.find(index.offset);
      if (it == attachments_.end()) {
        Add("AttachmentIndex " + Quoted(index.name) + " points to offset " + N(index.offset) +
                ", where no Attachment record starts",
            at);
        continue;
      }
      const Located& a = it->second;
      if (a.length != index.length || a.name != index.name || a.media_type != index.media_type ||
          a.log_time != index.log_time || a.create_time != index.create_time ||
          a.data_size != index.data_size) {
        Add("AttachmentIndex " + Quoted(index.name) + " does not match the Attachment record at " +
                N(index.offset),
            at);
      }
    }
  }

  const DoctorOptions options_;
  std::vector<Finding> findings_;
  bool in_summary_ = false;
  bool saw_data_end_ = false;
  uint64_t footer_offset_ = 0;

  std::map<uint16_t, Schema> schemas_;    // data section
  std::map<uint16_t, Channel> channels_;  // data section
  std::set<uint16_t> summary_schemas_;
  std::set<uint16_t> summary_channels_;

  uint64_t message_count_ = 0;
  uint64_t min_log_time_ = 0;
  uint64_t max_log_time_ = 0;
  uint64_t out_of_order_ = 0;
  std::map<uint16_t, uint64_t> channel_counts_;
  uint64_t top_level_messages_ = 0;
  uint64_t first_top_level_message_ = 0;

  std::map<uint64_t, ChunkSeen> chunks_;  // by file offset
  bool any_bad_chunk_ = false;
  bool chunk_open_ = false;  // the last top-level record was a chunk or its message indexes
  uint64_t current_chunk_ = 0;
  std::vector<std::tuple<uint16_t, uint64_t, uint64_t>> chunk_messages_;  // channel, time, offset

  std::vector<ChunkIndex> chunk_indexes_;
  std::vector<uint64_t> chunk_index_offsets_;
  std::optional<Statistics> statistics_;
  uint64_t statistics_offset_ = 0;
  uint32_t attachment_count_ = 0;
  uint32_t metadata_count_ = 0;
  std::map<uint64_t, Located> metadata_;
  std::map<uint64_t, Located> attachments_;
  std::vector<std::pair<uint64_t, MetadataIndex>> metadata_indexes_;
  std::vector<std::pair<uint64_t, AttachmentIndex>> attachment_indexes_;
};

}  // namespace

Result<std::vector<Finding>> Doctor(const std::string& path, DoctorOptions options) {
  Examination examination(options);
  Status io_error;
  std::vector<Finding> findings = examination.Run(path, &io_error);
  if (!io_error.ok()) return io_error;
  return findings;
}

bool HasErrors(const std::vector<Finding>& findings) {
  return std::any_of(findings.begin(), findings.end(),
                     [](const Finding& f) { return f.severity == Severity::kError; });
}

}  // namespace doppel::mcap
