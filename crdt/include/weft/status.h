// Status and Result<T>: how every Weft call that can fail reports it.
//
// Modelled on LevelDB's Status: a small code plus a human-readable message. Nothing in Weft
// throws across a public API; a failure is a Status. Expected absence is std::optional, not an
// error. Status and Result are plain value types, safe to copy between threads.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace weft {

// The codes are part of the ABI of the C API: never renumber or reuse a value.
enum class StatusCode : int {
  kOk = 0,
  kNotFound = 1,
  kInvalidArgument = 2,
  kCorruption = 3,  // bytes that do not decode or do not validate
  kIOError = 4,
  kDisconnected = 5,
  kPermissionDenied = 6,
  kMissingDependency = 7,    // a change arrived before a change it depends on
  kOutOfRange = 8,           // an index or position past the end
  kTypeMismatch = 9,         // an operation on a value of another type
  kUnsupportedVersion = 10,  // a format or protocol version this build does not know
  kClockDrift = 11,          // a remote timestamp too far ahead of the local clock
  kHistoryTruncated = 12,    // changes a peer asked for are no longer kept
  kTimeout = 13,
  kBusy = 14,
  kAborted = 15,  // a transaction rolled back on purpose
  kInternal = 16,
};

const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status InvalidArgument(std::string m) {
    return {StatusCode::kInvalidArgument, std::move(m)};
  }
  static Status Corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
  static Status IOError(std::string m) { return {StatusCode::kIOError, std::move(m)}; }
  static Status MissingDependency(std::string m) {
    return {StatusCode::kMissingDependency, std::move(m)};
  }
  static Status OutOfRange(std::string m) { return {StatusCode::kOutOfRange, std::move(m)}; }
  static Status TypeMismatch(std::string m) { return {StatusCode::kTypeMismatch, std::move(m)}; }
  static Status UnsupportedVersion(std::string m) {
    return {StatusCode::kUnsupportedVersion, std::move(m)};
  }
  static Status ClockDrift(std::string m) { return {StatusCode::kClockDrift, std::move(m)}; }
  static Status HistoryTruncated(std::string m) {
    return {StatusCode::kHistoryTruncated, std::move(m)};
  }
  static Status Aborted(std::string m) { return {StatusCode::kAborted, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "Corruption: change header truncated", or "OK".
  std::string ToString() const;

  friend bool operator==(const Status& a, const Status& b) { return a.code_ == b.code_; }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// A value or the Status that explains its absence. Never holds an OK status without a value.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    if (std::get<Status>(v_).ok()) v_ = Status(StatusCode::kInternal, "Result built from OK");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  // The error; OK when a value is held.
  Status status() const { return ok() ? Status() : std::get<Status>(v_); }

  // Precondition: ok().
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace weft

// Returns early from the enclosing function when `expr` yields a non-OK Status.
#define WEFT_RETURN_IF_ERROR(expr)               \
  do {                                           \
    ::weft::Status weft_status_ = (expr);        \
    if (!weft_status_.ok()) return weft_status_; \
  } while (0)
