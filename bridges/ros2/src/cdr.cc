#include "doppel/ros2/cdr.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>

namespace doppel::ros2 {

Result<CdrReader> CdrReader::Open(std::string_view message) {
  if (message.size() < 4) {
    return Status::Corruption(
        fmt::format("CDR message of {} bytes has no encapsulation header", message.size()));
  }
  const auto kind = static_cast<uint8_t>(message[1]);
  if (message[0] != 0 || kind > 1) {
    return Status::InvalidArgument(fmt::format(
        "CDR encapsulation {:02x} {:02x} is not plain CDR (XCDR2 and PL_CDR are not read)",
        static_cast<uint8_t>(message[0]), kind));
  }
  return CdrReader(message.substr(4), kind == 1);
}

Status CdrReader::Take(void* out, size_t size, const char* field) {
  const size_t align = std::min<size_t>(size, 8);
  if (align > 1 && offset_ % align) offset_ += align - offset_ % align;
  if (offset_ > body_.size() || body_.size() - offset_ < size) {
    return Status::Corruption(fmt::format("CDR message ends inside '{}' (offset {} of {})", field,
                                          offset_, body_.size()));
  }
  std::memcpy(out, body_.data() + offset_, size);
  if (!little_ && size > 1) {
    auto* b = static_cast<uint8_t*>(out);
    std::reverse(b, b + size);
  }
  offset_ += size;
  return Status::Ok();
}

Status CdrReader::U8(uint8_t& v, const char* field) { return Take(&v, 1, field); }
Status CdrReader::I32(int32_t& v, const char* field) { return Take(&v, 4, field); }
Status CdrReader::U32(uint32_t& v, const char* field) { return Take(&v, 4, field); }
Status CdrReader::F64(double& v, const char* field) { return Take(&v, 8, field); }

Status CdrReader::Count(uint32_t& n, size_t min_size, const char* field) {
  DOPPEL_RETURN_IF_ERROR(U32(n, field));
  const size_t left = body_.size() - std::min(offset_, body_.size());
  if (min_size > 0 && n > left / min_size) {
    return Status::Corruption(
        fmt::format("CDR sequence '{}' claims {} elements in {} bytes", field, n, left));
  }
  return Status::Ok();
}

Status CdrReader::String(std::string& v, const char* field) {
  uint32_t n = 0;
  DOPPEL_RETURN_IF_ERROR(U32(n, field));
  if (n == 0) {  // some writers encode "" as length 0
    v.clear();
    return Status::Ok();
  }
  if (body_.size() - offset_ < n) {
    return Status::Corruption(
        fmt::format("CDR string '{}' of {} bytes passes the end of the message", field, n));
  }
  const std::string_view raw = body_.substr(offset_, n);
  if (raw.back() != '\0') {
    return Status::Corruption(fmt::format("CDR string '{}' is not NUL-terminated", field));
  }
  v.assign(raw.data(), n - 1);
  offset_ += n;
  return Status::Ok();
}

Status CdrReader::Doubles(std::vector<double>& v, const char* field) {
  uint32_t n = 0;
  DOPPEL_RETURN_IF_ERROR(Count(n, 8, field));
  v.resize(n);
  for (auto& d : v) DOPPEL_RETURN_IF_ERROR(F64(d, field));
  return Status::Ok();
}

Status CdrReader::Strings(std::vector<std::string>& v, const char* field) {
  uint32_t n = 0;
  DOPPEL_RETURN_IF_ERROR(Count(n, 4, field));
  v.resize(n);
  for (auto& s : v) DOPPEL_RETURN_IF_ERROR(String(s, field));
  return Status::Ok();
}

}  // namespace doppel::ros2
