#include "weft/status.h"

namespace weft {

const char* StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "OK";
    case StatusCode::kNotFound: return "NotFound";
    case StatusCode::kInvalidArgument: return "InvalidArgument";
    case StatusCode::kCorruption: return "Corruption";
    case StatusCode::kIOError: return "IOError";
    case StatusCode::kDisconnected: return "Disconnected";
    case StatusCode::kPermissionDenied: return "PermissionDenied";
    case StatusCode::kMissingDependency: return "MissingDependency";
    case StatusCode::kOutOfRange: return "OutOfRange";
    case StatusCode::kTypeMismatch: return "TypeMismatch";
    case StatusCode::kUnsupportedVersion: return "UnsupportedVersion";
    case StatusCode::kClockDrift: return "ClockDrift";
    case StatusCode::kHistoryTruncated: return "HistoryTruncated";
    case StatusCode::kTimeout: return "Timeout";
    case StatusCode::kBusy: return "Busy";
    case StatusCode::kAborted: return "Aborted";
    case StatusCode::kInternal: return "Internal";
  }
  return "Unknown";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string s = StatusCodeName(code_);
  if (!message_.empty()) s += ": " + message_;
  return s;
}

}  // namespace weft
