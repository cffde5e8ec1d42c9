#include "doppel/mcap/compression.h"

#include <lz4frame.h>
#include <zstd.h>
#include <zstd_errors.h>

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

Status Lz4Decompress(std::string_view in, uint64_t size, std::string& out) {
  LZ4F_dctx* ctx = Lz4Decompressor();
  if (ctx == nullptr) return Status::IOError("lz4: cannot create a decompression context");
  // A previous call may have stopped mid-frame on bad input.
  LZ4F_resetDecompressionContext(ctx);
  out.resize(size);
  size_t in_pos = 0;
  size_t out_pos = 0;
  size_t hint = 1;
  while (in_pos < in.size()) {
    size_t dst_size = out.size() - out_pos;
    size_t src_size = in.size() - in_pos;
    hint = LZ4F_decompress(ctx, out.data() + out_pos, &dst_size, in.data() + in_pos, &src_size,
                           nullptr);
    if (LZ4F_isError(hint)) {
      LZ4F_resetDecompressionContext(ctx);
      return Status::Corruption(std::string("lz4: ") + LZ4F_getErrorName(hint));
    }
    in_pos += src_size;
    out_pos += dst_size;
    if (src_size == 0 && dst_size == 0) {
      // No progress: the output is full but the frame has more to give.
      LZ4F_resetDecompressionContext(ctx);
      return Status::Corruption("lz4: data decompresses to more than the " + std::to_string(size) +
                                " bytes the chunk declares");
    }
  }
  if (hint != 0) {
    LZ4F_resetDecompressionContext(ctx);
    return Status::Corruption("lz4: the frame is truncated");
  }
  if (out_pos != size) {
    return Status::Corruption("lz4: data decompresses to " + std::to_string(out_pos) +
                              " bytes, the chunk declares " + std::to_string(size));
  }
  return Status::Ok();
}

Status ZstdDecompress(std::string_view in, uint64_t size, std::string& out) {
  ZSTD_DCtx* ctx = ZstdDecompressor();
  if (ctx == nullptr) return Status::IOError("zstd: cannot create a decompression context");
  out.resize(size);
  size_t n = ZSTD_decompressDCtx(ctx, out.data(), out.size(), in.data(), in.size());
  if (ZSTD_isError(n)) {
    if (ZSTD_getErrorCode(n) == ZSTD_error_dstSize_tooSmall) {
      return Status::Corruption("zstd: data decompresses to more than the " + std::to_string(size) +
                                " bytes the chunk declares");
    }
    return Status::Corruption(std::string("zstd: ") + ZSTD_getErrorName(n));
  }
  if (n != size) {
    return Status::Corruption("zstd: data decompresses to " + std::to_string(n) +
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
                  uint64_t uncompressed_size, std::string& out) {
  if (compression_name.empty()) {
    if (in.size() != uncompressed_size) {
      return Status::Corruption("uncompressed records are " + std::to_string(in.size()) +
                                " bytes, the chunk declares " + std::to_string(uncompressed_size));
    }
    out.assign(in);
    return Status::Ok();
  }
  // A corrupt size must not make us allocate (and zero) gigabytes: no valid frame expands by
  // more than these ratios (lz4: 255:1; zstd: an RLE block of 4 bytes yields 128 KiB).
  const bool lz4 = compression_name == "lz4";
  const bool zstd = compression_name == "zstd";
  if (lz4 || zstd) {
    const uint64_t ratio = lz4 ? 256 : 32768;
    if (uncompressed_size / ratio > in.size() + (1u << 20)) {
      return Status::Corruption("the chunk declares " + std::to_string(uncompressed_size) +
                                " uncompressed bytes, impossible from " +
                                std::to_string(in.size()) + " bytes of " +
                                std::string(compression_name));
    }
  }
  if (lz4) return Lz4Decompress(in, uncompressed_size, out);
  if (zstd) return ZstdDecompress(in, uncompressed_size, out);
  return Status::InvalidArgument("unknown compression '" + std::string(compression_name) + "'");
}

}  // namespace doppel::mcap
