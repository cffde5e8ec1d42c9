// Doctor: checks an MCAP file the way `mcap doctor` (foxglove/mcap, rust/cli/src/commands/
// doctor.rs) does, and a little more:
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
//     match their records; attachment CRCs hold
//   - messages outside chunks in a file with chunk indexes (indexed readers miss them)
// Upstream reports some of these as warnings; here every one is a Finding.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "doppel/core/status.h"

namespace doppel::mcap {

struct Finding {
  std::string what;
  uint64_t offset;  // file offset of the record concerned (its chunk's, inside a chunk)
};

// Findings in file order of discovery; empty for a healthy file. A non-OK Result only when the
// file cannot be opened or read (IOError).
Result<std::vector<Finding>> Doctor(const std::string& path);

}  // namespace doppel::mcap
