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

// The most uncompressed bytes a compressed chunk may declare (ReadOptions and DoctorOptions
// take another): 1 GiB, the largest chunk `doppel export --chunk-size` writes. Foxglove's
// writers default to 4 MiB chunks. A chunk over it is refused before anything is allocated.
inline constexpr uint64_t kMaxChunkUncompressedBytes = uint64_t{1} << 30;

// Replaces `out` with the decompression of `in`, which must yield exactly `uncompressed_size`
// bytes (Corruption otherwise). `compression_name` is a Chunk's field: "" copies, "lz4" reads
// LZ4 frames from any writer (content size and block/content checksums optional, concatenated
// frames allowed), "zstd" reads zstd frames with or without a content size.
// InvalidArgument("unknown compression 'xyz'") for any other name.
//
// `uncompressed_size` comes from the file and is not trusted: a compressed chunk declaring more
// than `max_uncompressed_size` is Corruption ("declares N uncompressed bytes, over the limit of
// M bytes per chunk") at once, and the rest is decompressed in steps into a buffer that grows
// with what the frame has produced (sized to at most 2.5 times that, or 1 MiB, and never past
// the declared size), stopping as soon as the output passes the declared size.
// So a chunk costs memory in proportion to what it really decompresses to, whatever it
// declares. The zstd decoder's window stays under libzstd's default cap (windowLog 27: 128 MiB
// of address space, touched only as the frame fills it). "" copies `in`, which the caller
// already holds.
Status Decompress(std::string_view compression_name, std::string_view in,
                  uint64_t uncompressed_size, std::string& out,
                  uint64_t max_uncompressed_size = kMaxChunkUncompressedBytes);

}  // namespace doppel::mcap
