// CDR as ROS 2 puts it on the wire and in rosbag2 files: XCDR1 ("plain CDR") behind a 4-byte
// encapsulation header.
//
//   bytes 0-1   representation: 00 01 = CDR little-endian (what doppel writes),
//               00 00 = CDR big-endian (read too)
//   bytes 2-3   options, 00 00
//   then        the fields in declaration order; every primitive aligned to its size (at most
//               8) counted from the first byte after the header; string = u32 length
//               including the NUL, the bytes, NUL; sequence = u32 count, then the elements;
//               fixed arrays = the elements only.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "doppel/core/status.h"

namespace doppel::ros2 {

// Appends a little-endian CDR message to a buffer it owns (reused across messages: Clear()).
class CdrWriter {
 public:
  CdrWriter() { Clear(); }
  void Clear() { buffer_.assign({0x00, 0x01, 0x00, 0x00}); }
  void U8(uint8_t v) { buffer_.push_back(static_cast<char>(v)); }
  void I32(int32_t v) { Put(v); }
  void U32(uint32_t v) { Put(v); }
  void F64(double v) { Put(v); }
  void String(std::string_view s) {
    U32(static_cast<uint32_t>(s.size() + 1));
    buffer_.append(s);
    buffer_.push_back('\0');
  }
  void Doubles(const std::vector<double>& v) { Doubles(v.data(), v.size()); }
  // Little-endian hosts only (as every ROS 2 tier-1 platform): the doubles are copied as is.
  void Doubles(const double* v, size_t n) {
    U32(static_cast<uint32_t>(n));
    if (n == 0) return;
    Align(8);
    buffer_.append(reinterpret_cast<const char*>(v), n * sizeof(double));
  }
  void Strings(const std::vector<std::string>& v) {
    U32(static_cast<uint32_t>(v.size()));
    for (const auto& s : v) String(s);
  }
  const std::string& bytes() const { return buffer_; }

 private:
  void Align(size_t n) {
    const size_t offset = buffer_.size() - 4;
    if (offset % n) buffer_.append(n - offset % n, '\0');
  }
  template <typename T>
  void Put(T v) {
    Align(sizeof(T));
    char raw[sizeof(T)];
    std::memcpy(raw, &v, sizeof(T));
    buffer_.append(raw, sizeof(T));
  }
  std::string buffer_;
};

// Reads a CDR message of either byte order. Every read checks bounds: a truncated or
// inconsistent message is Corruption naming the field, never a read past the end.
class CdrReader {
 public:
  static Result<CdrReader> Open(std::string_view message);

  Status U8(uint8_t& v, const char* field);
  Status I32(int32_t& v, const char* field);
  Status U32(uint32_t& v, const char* field);
  Status F64(double& v, const char* field);
  Status String(std::string& v, const char* field);
  Status Doubles(std::vector<double>& v, const char* field);
  Status Strings(std::vector<std::string>& v, const char* field);
  // A sequence's element count, bounded by the bytes left (each element takes >= min_size).
  Status Count(uint32_t& n, size_t min_size, const char* field);

 private:
  CdrReader(std::string_view body, bool little) : body_(body), little_(little) {}
  Status Take(void* out, size_t size, const char* field);
  std::string_view body_;
  size_t offset_ = 0;
  bool little_ = true;
};

}  // namespace doppel::ros2
