// Chunk compression: the MCAP compression names and the one place doppel calls liblz4 and
// libzstd. Contexts are reused per thread, so compressing or decompressing a chunk allocates
// nothing once the output buffers have grown.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "doppel/core/status.h"

namespace doppel::mcap {

enum class Compression { kNone, kLz4, kZstd };

// The name a Chunk record carries: "", "lz4", "zstd".
std::string_view CompressionName(Compression compression);

// Accepts the Chunk spellings ("", "lz4", "zstd") and the command-line one ("none").
// InvalidArgument("unknown compression 'xyz'") otherwise.
Result<Compression> ParseCompression(std::string_view name);

// Replaces `out` with `in` compressed: an LZ4 frame (content size recorded, no checksums: the
// chunk CRC covers the data) or a zstd frame at `zstd_level`. kNone copies.
Status Compress(Compression compression, std::string_view in, std::string& out, int zstd_level = 1);

// Replaces `out` with the decompression of `in`, which must yield exactly `uncompressed_size`
// bytes (Corruption otherwise). `compression_name` is a Chunk's field: "" copies, "lz4" reads
// LZ4 frames from any writer (content size and block/content checksums optional, concatenated
// frames allowed), "zstd" reads zstd frames with or without a content size.
// InvalidArgument("unknown compression 'xyz'") for any other name.
Status Decompress(std::string_view compression_name, std::string_view in,
                  uint64_t uncompressed_size, std::string& out);

}  // namespace doppel::mcap
