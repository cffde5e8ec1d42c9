// Reading MCAP files: a front-to-back scan of every record (any conformant file: indexed or
// not, chunked or not, any compression), and the summary of an indexed file through its footer.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "doppel/core/status.h"
#include "doppel/mcap/compression.h"
#include "doppel/mcap/records.h"

namespace doppel::mcap {

struct RecordRef {
  Opcode opcode;
  uint64_t offset;           // file offset of the record, or of the Chunk that holds it
  uint64_t offset_in_chunk;  // offset in the chunk's uncompressed records (when in_chunk)
  bool in_chunk;
  std::string_view body;  // valid only during the visit
};

struct ReadOptions {
  // Check chunk CRCs, the data-section CRC (DataEnd) and the summary CRC (Footer). A stored CRC
  // of 0 means "not available" and is never checked.
  bool verify_crcs = true;
  // A compressed chunk that declares more uncompressed bytes than this is a bad chunk ("chunk at
  // offset N: declares M uncompressed bytes, over the limit of L bytes per chunk"), refused
  // before anything is allocated for it; below it, memory follows what the chunk really
  // decompresses to, not what it declares (see Decompress). Uncompressed chunks are already
  // held whole, as every record is.
  uint64_t max_chunk_uncompressed_bytes = kMaxChunkUncompressedBytes;
  // When set, a chunk that cannot be used (CRC mismatch, undecodable header, unknown
  // compression, bad frame, badly framed or undecodable records inside) is reported here and
  // skipped, none of it visited, and the scan goes on with the next record. When unset, such a
  // chunk ends the scan with its error.
  std::function<void(const Status& error, uint64_t chunk_offset)> on_bad_chunk;
};

// Reads `path` front to back and calls `visit` for every record in file order: the Header, data
// records, DataEnd, summary records, the Footer. A Chunk is visited as itself (body = the Chunk
// record's body) and then each record inside it (in_chunk = true). A chunk is decompressed, its
// CRC checked, and all its records framed and decoded (Schema, Channel, Message) before the
// Chunk or any of its records is visited, so nothing of a bad chunk reaches the caller.
// Unknown opcodes (private 0x80-0xFF, or newer than this code) are skipped, in and out of
// chunks. A non-OK status from `visit` ends the scan and is returned.
//
// Errors (Corruption, or InvalidArgument for an unknown compression) name the record and its
// file offset, e.g. "chunk at offset 1234: uncompressed CRC mismatch (stored 0x.., computed
// 0x..)", "truncated record at offset N (opcode Message, length L, file ends at M)", "unknown
// compression 'foo' in chunk at offset N", a bad magic, a missing Footer. When `error_offset`
// is not null and the scan fails on the file's contents, it receives the offset the error names.
//
// Memory stays constant: the file is streamed through a buffer; at most one record and one
// chunk's decompressed records are held at a time. Lengths from the file are checked against
// what the file holds before anything is read, and a chunk's decompressed size against
// max_chunk_uncompressed_bytes and then against what it really decompresses to.
Status ScanFile(const std::string& path, const std::function<Status(const RecordRef&)>& visit,
                ReadOptions options = {}, uint64_t* error_offset = nullptr);

// The summary section of an indexed file, found through the footer without a scan.
struct Summary {
  Header header;
  Footer footer;
  std::map<uint16_t, Schema> schemas;
  std::map<uint16_t, Channel> channels;
  std::optional<Statistics> statistics;
  std::vector<ChunkIndex> chunk_indexes;
  std::vector<MetadataIndex> metadata_indexes;
  std::vector<AttachmentIndex> attachment_indexes;
  std::vector<SummaryOffset> summary_offsets;
};

// Checks both magics, reads the Header and the Footer, verifies the summary CRC (when not 0) and
// decodes the summary and summary offset sections. NotFound when the file has no summary
// (Footer.summary_start == 0); Corruption for a bad magic, footer, CRC or record.
Result<Summary> ReadSummary(const std::string& path);

}  // namespace doppel::mcap
