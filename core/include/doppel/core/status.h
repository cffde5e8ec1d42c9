// Status and Result: errors are values in doppel, never exceptions across module boundaries.
//
// A Status is either OK or carries a Code and a human-readable message that names the
// thing that failed (stream, position, path). Result<T> is a value or a non-OK Status.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace doppel {

class [[nodiscard]] Status {
 public:
  enum class Code {
    kOk = 0,
    kNotFound,
    kInvalidArgument,
    kWrongExpectedVersion,  // optimistic concurrency check failed
    kIdempotencyConflict,   // an event id was reused for a different event
    kCorruption,            // stored data failed verification
    kIOError,               // the disk said no (full, read-only, failing)
    kNotADoppelLog,         // a data directory that holds something else
    kUnavailable,           // the service cannot take requests right now
  };

  Status() = default;
  static Status Ok() { return Status(); }
  static Status NotFound(std::string msg) { return Status(Code::kNotFound, std::move(msg)); }
  static Status InvalidArgument(std::string msg) {
    return Status(Code::kInvalidArgument, std::move(msg));
  }
  static Status WrongExpectedVersion(std::string msg) {
    return Status(Code::kWrongExpectedVersion, std::move(msg));
  }
  static Status IdempotencyConflict(std::string msg) {
    return Status(Code::kIdempotencyConflict, std::move(msg));
  }
  static Status Corruption(std::string msg) { return Status(Code::kCorruption, std::move(msg)); }
  static Status IOError(std::string msg) { return Status(Code::kIOError, std::move(msg)); }
  static Status NotADoppelLog(std::string msg) {
    return Status(Code::kNotADoppelLog, std::move(msg));
  }
  static Status Unavailable(std::string msg) { return Status(Code::kUnavailable, std::move(msg)); }
  // An error of a kind chosen at run time (a foreign error code mapped onto doppel's).
  static Status WithCode(Code code, std::string msg) { return Status(code, std::move(msg)); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // "<code name>: <message>", or "OK".
  std::string ToString() const;
  static std::string_view CodeName(Code code);

 private:
  Status(Code code, std::string msg) : code_(code), message_(std::move(msg)) {}

  Code code_ = Code::kOk;
  std::string message_;
};

// A value of T, or the Status that explains why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    assert(!status_.ok());
  }

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }

  // REQUIRES: ok()
  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace doppel

// Returns the Status of `expr` from the enclosing function when it is not OK.
#define DOPPEL_RETURN_IF_ERROR(expr)         \
  do {                                       \
    ::doppel::Status _doppel_st = (expr);    \
    if (!_doppel_st.ok()) return _doppel_st; \
  } while (0)
