// CRC-32 as MCAP uses it: the IEEE / zlib polynomial (reflected 0xEDB88320, initial value and
// final xor 0xFFFFFFFF). Chunk records, the data section, the summary and attachments carry one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace doppel::mcap {

// The CRC of no bytes, and the value to start an incremental computation from.
inline constexpr uint32_t kCrc32Start = 0;

// Extends `crc` (the CRC of some bytes A, or kCrc32Start) to the CRC of A followed by
// data[0, size). As with zlib's crc32(), the pre- and post-inversion happen inside, so the
// result is always a finished CRC: Crc32Update(Crc32Update(0, a), b) == CRC(a + b).
// Table-driven, slicing-by-8.
uint32_t Crc32Update(uint32_t crc, const void* data, size_t size);

inline uint32_t Crc32(std::string_view bytes) {
  return Crc32Update(kCrc32Start, bytes.data(), bytes.size());
}

}  // namespace doppel::mcap
