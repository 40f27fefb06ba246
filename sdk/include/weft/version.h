// The release of this Weft build and the sync protocol version it speaks, for `--version`
// output, logs and diagnostics.
//
// Thread safety: plain functions over constants.
#pragma once

#include <cstdint>

namespace weft {

// The release, "MAJOR.MINOR.PATCH" (the CMake project version). Never null; static storage.
const char* ReleaseVersion();

// The sync protocol version sent in every handshake (docs/protocol.md). Peers of another
// version are refused with an "upgrade" error.
uint32_t SyncProtocolVersion();

}  // namespace weft
