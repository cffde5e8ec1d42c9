// Fuzzes the MCAP reader (mcap/ ScanFile, Doctor) and chunk decompression with a file's bytes:
// what `doppel import` and `doppel mcap-info --doctor` take from outside. What must hold:
// - no read of a file fails with an IOError (the bytes are all there) or crashes; every error
//   offset is inside the file;
// - a record visited outside a chunk lies inside the file; one visited inside a chunk lies
//   inside the chunk's declared uncompressed size, which is within the limit;
// - the doctor always answers;
// - Decompress (the input as a zstd or an LZ4 frame, declared size from its last bytes) either
//   yields exactly the declared size or refuses, and refuses any declaration over the limit.
// The limit is small (1 MiB) so that declarations over it are reachable and no input makes a
// run slow: a few KiB of zstd can otherwise expand to a hundred MiB.
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>

#include "doppel/mcap/compression.h"
#include "doppel/mcap/doctor.h"
#include "doppel/mcap/reader.h"
#include "doppel/mcap/records.h"
#include "fuzz_inputs.h"

namespace {

using namespace doppel;

constexpr uint64_t kLimit = 1 << 20;

// The reader opens paths: the input goes to an anonymous in-memory file, opened by its
// /proc/self/fd path, so that nothing is left on disk whatever ends the run.
const std::string& InputPath() {
  static const std::string path = [] {
    const int fd = memfd_create("mcap_reader_fuzz", MFD_CLOEXEC);
    DOPPEL_FUZZ_CHECK(fd >= 0, "memfd_create: %s", std::strerror(errno));
    return "/proc/self/fd/" + std::to_string(fd);
  }();
  return path;
}

void WriteInput(const uint8_t* data, size_t size) {
  const int fd = std::stoi(InputPath().substr(std::strlen("/proc/self/fd/")));
  DOPPEL_FUZZ_CHECK(ftruncate(fd, 0) == 0, "ftruncate: %s", std::strerror(errno));
  size_t at = 0;
  while (at < size) {
    const ssize_t n = pwrite(fd, data + at, size - at, static_cast<off_t>(at));
    DOPPEL_FUZZ_CHECK(n > 0, "pwrite: %s", std::strerror(errno));
    at += static_cast<size_t>(n);
  }
}

void Scan(size_t size, bool verify_crcs, bool skip_bad_chunks) {
  mcap::ReadOptions options;
  options.verify_crcs = verify_crcs;
  options.max_chunk_uncompressed_bytes = kLimit;
  if (skip_bad_chunks) {
    options.on_bad_chunk = [size](const Status& error, uint64_t offset) {
      DOPPEL_FUZZ_CHECK(!error.ok() && offset < size, "bad chunk at %llu of %zu",
                        static_cast<unsigned long long>(offset), size);
    };
  }
  uint64_t chunk_size = 0;  // declared uncompressed size of the chunk being visited
  uint64_t error_offset = 0;
  const Status status = mcap::ScanFile(
      InputPath(),
      [&](const mcap::RecordRef& ref) {
        if (!ref.in_chunk) {
          DOPPEL_FUZZ_CHECK(ref.offset + mcap::kRecordPrefixSize + ref.body.size() <= size,
                            "record at %llu past the file",
                            static_cast<unsigned long long>(ref.offset));
        }
        if (ref.opcode == mcap::Opcode::kChunk && !ref.in_chunk) {
          Result<mcap::Chunk> chunk = mcap::DecodeChunk(ref.body);
          DOPPEL_FUZZ_CHECK(chunk.ok(), "a visited chunk does not decode");
          chunk_size = chunk->uncompressed_size;
          DOPPEL_FUZZ_CHECK(chunk->compression.empty() || chunk_size <= kLimit,
                            "a chunk over the limit was read");
        }
        if (ref.in_chunk) {
          DOPPEL_FUZZ_CHECK(
              ref.offset_in_chunk + mcap::kRecordPrefixSize + ref.body.size() <= chunk_size,
              "record past its chunk's records");
        }
        return Status::Ok();
      },
      options, &error_offset);
  DOPPEL_FUZZ_CHECK(status.code() != Status::Code::kIOError, "IOError: %s",
                    status.ToString().c_str());
  DOPPEL_FUZZ_CHECK(status.ok() || error_offset <= size, "error offset %llu past the file",
                    static_cast<unsigned long long>(error_offset));
}

void DecompressRaw(std::string_view bytes) {
  uint32_t tail = 0;
  if (bytes.size() >= 4) std::memcpy(&tail, bytes.data() + bytes.size() - 4, 4);
  // Mostly small (a large declaration costs a step of output buffer per run), sometimes up to
  // just over the limit.
  const uint64_t declared = (tail >> 31) != 0 ? tail % (kLimit + 64) : tail % 8192;
  std::string out;
  for (const char* codec : {"zstd", "lz4"}) {
    const Status status = mcap::Decompress(codec, bytes, declared, out, kLimit);
    DOPPEL_FUZZ_CHECK(!status.ok() || out.size() == declared, "%s: %zu bytes, declared %llu", codec,
                      out.size(), static_cast<unsigned long long>(declared));
    DOPPEL_FUZZ_CHECK(declared <= kLimit || status.code() == Status::Code::kCorruption,
                      "%s: a declaration over the limit was not refused", codec);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  WriteInput(data, size);
  Scan(size, /*verify_crcs=*/true, /*skip_bad_chunks=*/false);
  // Without CRCs, mutated chunks get past decompression into record framing and decoding.
  Scan(size, /*verify_crcs=*/false, /*skip_bad_chunks=*/true);

  mcap::DoctorOptions doctor;
  doctor.max_chunk_uncompressed_bytes = kLimit;
  const Result<std::vector<mcap::Finding>> findings = mcap::Doctor(InputPath(), doctor);
  DOPPEL_FUZZ_CHECK(findings.ok(), "doctor: %s", findings.status().ToString().c_str());

  DecompressRaw(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
