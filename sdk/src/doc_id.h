// What a document ID may be, checked the same way by the replica's API and the sync protocol:
// 1 to 1024 bytes of valid UTF-8 with no NUL byte.
#pragma once

#include <cstddef>
#include <string_view>

#include "weft/crdt/utf.h"
#include "weft/status.h"

namespace weft {

inline constexpr size_t kMaxDocIdBytes = 1024;

inline Status CheckDocumentId(std::string_view doc) {
  if (doc.empty() || doc.size() > kMaxDocIdBytes) {
    return Status::InvalidArgument("a document ID is 1 to 1024 bytes");
  }
  if (doc.find('\0') != std::string_view::npos || !crdt::ValidateUtf8(doc).ok()) {
    return Status::InvalidArgument("a document ID is UTF-8 without NUL bytes");
  }
  return Status::Ok();
}

}  // namespace weft
