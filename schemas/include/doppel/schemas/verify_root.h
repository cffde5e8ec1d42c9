// The one FlatBuffers verification path. Bytes from outside the process (a RocksDB value, a
// ZeroMQ frame, a file) are checked by the Verifier before anything is read from them, and
// only at an 8-byte aligned address: FlatBuffers reads offsets and scalars in place, and a
// RocksDB value pinned in a block, or a ZeroMQ frame cut from a receive buffer, starts
// anywhere (UBSan: misaligned load; a crash on strict-alignment CPUs). A caller holding
// bytes it did not allocate aligns them first (AlignedBytes); a caller that forgets gets an
// error here, in every build, instead of undefined behaviour in some.
#pragma once

#include <flatbuffers/flatbuffers.h>
#include <fmt/format.h>

#include <cstdint>
#include <string_view>

#include "doppel/core/aligned_bytes.h"
#include "doppel/core/status.h"

namespace doppel::schemas {

// The Verifier's budgets: how deep tables may nest and how many a buffer may hold.
struct VerifyLimits {
  flatbuffers::uoffset_t max_depth = 64;
  flatbuffers::uoffset_t max_tables = 1000000;
};

// `bytes` as a verified `Table` root named `what` in errors, with the file `identifier` when
// not null. InvalidArgument when the bytes are not 8-aligned (a caller's mistake);
// Corruption when they do not verify. The root points into `bytes`.
template <typename Table>
Result<const Table*> VerifyRoot(std::string_view bytes, std::string_view what,
                                const char* identifier = nullptr, VerifyLimits limits = {}) {
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  if (!IsAligned8(data)) {
    return Status::InvalidArgument(
        fmt::format("{} of {} bytes is at a misaligned address; FlatBuffers are read in place "
                    "from 8-aligned bytes only",
                    what, bytes.size()));
  }
  flatbuffers::Verifier verifier(data, bytes.size(), limits.max_depth, limits.max_tables);
  if (bytes.size() < 2 * sizeof(flatbuffers::uoffset_t) ||
      !verifier.VerifyBuffer<Table>(identifier)) {
    return Status::Corruption(fmt::format("{} of {} bytes does not verify", what, bytes.size()));
  }
  return flatbuffers::GetRoot<Table>(data);
}

}  // namespace doppel::schemas
