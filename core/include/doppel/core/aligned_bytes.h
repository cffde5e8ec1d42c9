// FlatBuffers reads scalars and structs (a Pose of doubles) by reference, so a buffer must
// start at an 8-byte aligned address. Bytes nested in another buffer (an event's payload
// inside its envelope is only 4-byte aligned) or handed out by ZeroMQ at any offset are not;
// reading them in place is undefined behaviour (UBSan: misaligned load). Align first.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

namespace doppel {

inline bool IsAligned8(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % alignof(uint64_t) == 0;
}

// `bytes` at an 8-byte aligned address: the bytes themselves when already aligned, else a
// copy in `scratch`. The result is valid while `bytes` and `scratch` are.
inline const uint8_t* AlignedBytes(std::string_view bytes, std::vector<uint64_t>& scratch) {
  if (IsAligned8(bytes.data())) {
    return reinterpret_cast<const uint8_t*>(bytes.data());
  }
  scratch.resize((bytes.size() + 7) / 8);
  std::memcpy(scratch.data(), bytes.data(), bytes.size());
  return reinterpret_cast<const uint8_t*>(scratch.data());
}

}  // namespace doppel
