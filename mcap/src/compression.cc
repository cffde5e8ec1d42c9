#include "doppel/mcap/compression.h"

#include <lz4frame.h>
#include <zstd.h>

#include <algorithm>
#include <cstdint>
#include <memory>

namespace doppel::mcap {
namespace {

struct Lz4CompressionContextFree {
  void operator()(LZ4F_cctx* c) const { LZ4F_freeCompressionContext(c); }
};
struct Lz4DecompressionContextFree {
  void operator()(LZ4F_dctx* d) const { LZ4F_freeDecompressionContext(d); }
};
struct ZstdCompressionContextFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct ZstdDecompressionContextFree {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

// One context of each kind per thread, created on first use.
LZ4F_cctx* Lz4Compressor() {
  thread_local std::unique_ptr<LZ4F_cctx, Lz4CompressionContextFree> ctx = [] {
    LZ4F_cctx* c = nullptr;
    if (LZ4F_isError(LZ4F_createCompressionContext(&c, LZ4F_VERSION))) c = nullptr;
    return std::unique_ptr<LZ4F_cctx, Lz4CompressionContextFree>(c);
  }();
  return ctx.get();
}

LZ4F_dctx* Lz4Decompressor() {
  thread_local std::unique_ptr<LZ4F_dctx, Lz4DecompressionContextFree> ctx = [] {
    LZ4F_dctx* d = nullptr;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&d, LZ4F_VERSION))) d = nullptr;
    return std::unique_ptr<LZ4F_dctx, Lz4DecompressionContextFree>(d);
  }();
  return ctx.get();
}

ZSTD_CCtx* ZstdCompressor() {
  thread_local std::unique_ptr<ZSTD_CCtx, ZstdCompressionContextFree> ctx(ZSTD_createCCtx());
  return ctx.get();
}

ZSTD_DCtx* ZstdDecompressor() {
  thread_local std::unique_ptr<ZSTD_DCtx, ZstdDecompressionContextFree> ctx(ZSTD_createDCtx());
  return ctx.get();
}

Status Lz4Compress(std::string_view in, std::string& out) {
  LZ4F_cctx* ctx = Lz4Compressor();
  if (ctx == nullptr) return Status::IOError("lz4: cannot create a compression context");
  LZ4F_preferences_t prefs = LZ4F_INIT_PREFERENCES;
  prefs.frameInfo.contentSize = in.size();
  prefs.frameInfo.blockSizeID = LZ4F_max4MB;
  out.resize(LZ4F_compressFrameBound(in.size(), &prefs));
  char* dst = out.data();
  size_t capacity = out.size();
  size_t n = LZ4F_compressBegin(ctx, dst, capacity, &prefs);
  if (LZ4F_isError(n)) return Status::IOError(std::string("lz4: ") + LZ4F_getErrorName(n));
  size_t total = n;
  n = LZ4F_compressUpdate(ctx, dst + total, capacity - total, in.data(), in.size(), nullptr);
  if (LZ4F_isError(n)) return Status::IOError(std::string("lz4: ") + LZ4F_getErrorName(n));
  total += n;
  n = LZ4F_compressEnd(ctx, dst + total, capacity - total, nullptr);
  if (LZ4F_isError(n)) return Status::IOError(std::string("lz4: ") + LZ4F_getErrorName(n));
  out.resize(total + n);
  return Status::Ok();
}

Status ZstdCompress(std::string_view in, std::string& out, int level) {
  ZSTD_CCtx* ctx = ZstdCompressor();
  if (ctx == nullptr) return Status::IOError("zstd: cannot create a compression context");
  out.resize(ZSTD_compressBound(in.size()));
  size_t n = ZSTD_compressCCtx(ctx, out.data(), out.size(), in.data(), in.size(), level);
  if (ZSTD_isError(n)) return Status::IOError(std::string("zstd: ") + ZSTD_getErrorName(n));
  out.resize(n);
  return Status::Ok();
}

// Decompressed output grows with what the frame has actually produced, never with what the
// chunk declares: uncompressed_size comes from the file, and a 155-byte chunk may declare
// 30 GiB. Each step adds at least kDecompressStep and at most as much again as has been
// produced (going to the declared size at once when that is less than a quarter further), and
// the buffer is never sized past the declared size.
constexpr size_t kDecompressStep = 1 << 20;

// Where the decoder writes next: the rest of `out`, grown by one step when full; once `out`
// holds the declared size, a one-byte probe, since any further output makes the chunk bad.
struct Room {
  char* data;
  size_t size;
  bool probe;
};

Room NextRoom(std::string& out, size_t produced, uint64_t declared, char* probe) {
  if (produced == out.size()) {
    if (produced >= declared) return Room{probe, 1, true};
    uint64_t target = std::min<uint64_t>(declared, produced + std::max(kDecompressStep, produced));
    if (declared - target <= target / 4) target = declared;
    if (target > out.capacity()) {
      // Sized exactly: std::string's own growth would double the capacity past `target`.
      std::string larger;
      larger.reserve(static_cast<size_t>(target));
      larger.append(out, 0, produced);
      out.swap(larger);
    }
    out.resize(static_cast<size_t>(target));
  }
  return Room{out.data() + produced, out.size() - produced, false};
}

Status MoreThanDeclared(const char* codec, uint64_t size) {
  return Status::Corruption(std::string(codec) + ": data decompresses to more than the " +
                            std::to_string(size) + " bytes the chunk declares");
}

Status Lz4Decompress(std::string_view in, uint64_t size, std::string& out) {
  LZ4F_dctx* ctx = Lz4Decompressor();
  if (ctx == nullptr) return Status::IOError("lz4: cannot create a decompression context");
  // A previous call may have stopped mid-frame on bad input.
  LZ4F_resetDecompressionContext(ctx);
  out.clear();
  char probe;
  size_t in_pos = 0;
  size_t produced = 0;
  size_t hint = 1;  // 0 once the last frame is decoded and flushed
  while (true) {
    const Room room = NextRoom(out, produced, size, &probe);
    size_t dst_size = room.size;
    size_t src_size = in.size() - in_pos;
    const size_t result =
        LZ4F_decompress(ctx, room.data, &dst_size, in.data() + in_pos, &src_size, nullptr);
    if (LZ4F_isError(result)) {
      LZ4F_resetDecompressionContext(ctx);
      return Status::Corruption(std::string("lz4: ") + LZ4F_getErrorName(result));
    }
    // A call that moves nothing after a frame has ended asks for the next frame's header:
    // that is no truncation, so only calls that did something say where the frame stands.
    if (src_size > 0 || dst_size > 0) hint = result;
    if (room.probe && dst_size > 0) {
      LZ4F_resetDecompressionContext(ctx);
      return MoreThanDeclared("lz4", size);
    }
    in_pos += src_size;
    if (!room.probe) produced += dst_size;
    // All input taken and room left over: nothing more is buffered inside the context.
    if (in_pos == in.size() && dst_size < room.size) break;
    if (src_size == 0 && dst_size == 0) {
      // Not expected with input and room on both sides; guards against spinning forever.
      LZ4F_resetDecompressionContext(ctx);
      return Status::Corruption("lz4: the decoder makes no progress");
    }
  }
  out.resize(produced);
  if (hint != 0) {
    LZ4F_resetDecompressionContext(ctx);
    return Status::Corruption("lz4: the frame is truncated");
  }
  if (produced != size) {
    return Status::Corruption("lz4: data decompresses to " + std::to_string(produced) +
                              " bytes, the chunk declares " + std::to_string(size));
  }
  return Status::Ok();
}

Status ZstdDecompress(std::string_view in, uint64_t size, std::string& out) {
  ZSTD_DCtx* ctx = ZstdDecompressor();
  if (ctx == nullptr) return Status::IOError("zstd: cannot create a decompression context");
  // A previous call may have stopped mid-frame on bad input.
  ZSTD_DCtx_reset(ctx, ZSTD_reset_session_only);
  out.clear();
  char probe;
  ZSTD_inBuffer input{in.data(), in.size(), 0};
  size_t produced = 0;
  size_t hint = 0;  // 0 once a frame is decoded and flushed (no input: no frame, as before)
  while (!in.empty()) {
    const Room room = NextRoom(out, produced, size, &probe);
    ZSTD_outBuffer output{room.data, room.size, 0};
    const size_t in_before = input.pos;
    const size_t result = ZSTD_decompressStream(ctx, &output, &input);
    if (ZSTD_isError(result)) {
      ZSTD_DCtx_reset(ctx, ZSTD_reset_session_only);
      return Status::Corruption(std::string("zstd: ") + ZSTD_getErrorName(result));
    }
    // As for lz4: a call that moves nothing after a frame has ended is no truncation.
    if (input.pos > in_before || output.pos > 0) hint = result;
    if (room.probe && output.pos > 0) {
      ZSTD_DCtx_reset(ctx, ZSTD_reset_session_only);
      return MoreThanDeclared("zstd", size);
    }
    if (!room.probe) produced += output.pos;
    // All input taken and room left over: the decoder has flushed everything it holds.
    if (input.pos == input.size && output.pos < output.size) break;
  }
  out.resize(produced);
  if (hint != 0) {
    ZSTD_DCtx_reset(ctx, ZSTD_reset_session_only);
    return Status::Corruption("zstd: the frame is truncated");
  }
  if (produced != size) {
    return Status::Corruption("zstd: data decompresses to " + std::to_string(produced) +
                              " bytes, the chunk declares " + std::to_string(size));
  }
  return Status::Ok();
}

}  // namespace

std::string_view CompressionName(Compression compression) {
  switch (compression) {
    case Compression::kNone:
      return "";
    case Compression::kLz4:
      return "lz4";
    case Compression::kZstd:
      return "zstd";
  }
  return "";
}

Result<Compression> ParseCompression(std::string_view name) {
  if (name.empty() || name == "none") return Compression::kNone;
  if (name == "lz4") return Compression::kLz4;
  if (name == "zstd") return Compression::kZstd;
  return Status::InvalidArgument("unknown compression '" + std::string(name) + "'");
}

Status Compress(Compression compression, std::string_view in, std::string& out, int zstd_level) {
  switch (compression) {
    case Compression::kNone:
      out.assign(in);
      return Status::Ok();
    case Compression::kLz4:
      return Lz4Compress(in, out);
    case Compression::kZstd:
      return ZstdCompress(in, out, zstd_level);
  }
  return Status::InvalidArgument("unknown compression");
}

Status Decompress(std::string_view compression_name, std::string_view in,
                  uint64_t uncompressed_size, std::string& out, uint64_t max_uncompressed_size) {
  if (compression_name.empty()) {
    if (in.size() != uncompressed_size) {
      return Status::Corruption("uncompressed records are " + std::to_string(in.size()) +
                                " bytes, the chunk declares " + std::to_string(uncompressed_size));
    }
    out.assign(in);
    return Status::Ok();
  }
  const bool lz4 = compression_name == "lz4";
  if (!lz4 && compression_name != "zstd") {
    return Status::InvalidArgument("unknown compression '" + std::string(compression_name) + "'");
  }
  // Refused before any work: the output may never exceed the declared size, so this bounds
  // what a chunk can cost however it is compressed.
  if (uncompressed_size > max_uncompressed_size) {
    return Status::Corruption("declares " + std::to_string(uncompressed_size) +
                              " uncompressed bytes, over the limit of " +
                              std::to_string(max_uncompressed_size) + " bytes per chunk");
  }
  return lz4 ? Lz4Decompress(in, uncompressed_size, out)
             : ZstdDecompress(in, uncompressed_size, out);
}

}  // namespace doppel::mcap
