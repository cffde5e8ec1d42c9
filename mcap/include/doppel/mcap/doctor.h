// Doctor: checks an MCAP file the way `mcap doctor` (foxglove/mcap rust/cli/src/commands/
// doctor.rs, which replaced go/cli/mcap/cmd/doctor.go) does, and a little more:
//   - the file reads: magics, record framing, chunk CRCs and decompression, the data-section CRC
//     (DataEnd) and the summary CRC (Footer); a bad chunk is reported and skipped, any other
//     read error ends the scan and is reported with its offset
//   - Header.library is set; Header.profile is "", "ros1" or "ros2"
//   - DataEnd and Footer are present; at most one Statistics record
//   - no Schema with id 0; a schema with empty encoding has empty data
//   - records with the same schema / channel id agree (data section and summary); summary
//     copies exist in the data section; channels refer to known schemas (0 = none)
//   - no Message before its Channel; log times never go back in file order
//   - Chunk start/end times match their messages; only Schema, Channel, Message in chunks
//   - each chunk's MessageIndex records match its messages (one per channel, same entries)
//   - ChunkIndex records match their chunks (offset, length, times, compression, sizes,
//     message index offsets and length); every chunk has one; indexed chunks' channels and
//     schemas are repeated in the summary
//   - Statistics match the file (message, schema, channel, attachment, metadata and chunk
//     counts, start/end times, per-channel counts); MetadataIndex / AttachmentIndex records
//     match their records; attachment CRCs hold; a non-empty channel_message_counts has every
//     channel repeated in the summary before the Statistics record (the spec's MUST)
//   - messages outside chunks in a file with chunk indexes (indexed readers miss them)
// Records may carry bytes after their known fields (the spec's room for new fields): they are
// skipped, never part of a field or a CRC.
//
// As upstream, what the spec allows or only recommends is a warning, not an error: an empty
// Header.library, an unknown profile, messages outside chunks in an indexed file, and, unless
// DoctorOptions::strict, log times going back (upstream's --strict-message-order) and a
// MessageIndex not sorted by log time (the spec asks for no order; readers sort).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "doppel/core/status.h"
#include "doppel/mcap/compression.h"

namespace doppel::mcap {

enum class Severity { kError, kWarning };

struct Finding {
  std::string what;
  uint64_t offset;  // file offset of the record concerned (its chunk's, inside a chunk)
  Severity severity = Severity::kError;
};

struct DoctorOptions {
  // The stricter rules: the warnings above that a tidy writer avoids become errors.
  bool strict = false;
  // As ReadOptions::max_chunk_uncompressed_bytes: a compressed chunk declaring more is a finding
  // at its offset and is skipped unread.
  uint64_t max_chunk_uncompressed_bytes = kMaxChunkUncompressedBytes;
};

// Findings in file order of discovery; none for a tidy file, only warnings for a valid one. A
// non-OK Result only when the file cannot be opened or read (IOError).
Result<std::vector<Finding>> Doctor(const std::string& path, DoctorOptions options = {});

// Whether any finding is an error (the file is not valid).
bool HasErrors(const std::vector<Finding>& findings);

}  // namespace doppel::mcap
