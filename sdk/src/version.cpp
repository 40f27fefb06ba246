// See weft/version.h. WEFT_RELEASE_VERSION is defined for this file alone (sdk/CMakeLists.txt).
#include "weft/version.h"

#include "sync/wire.h"

namespace weft {

const char* ReleaseVersion() {
  return WEFT_RELEASE_VERSION;
}

uint32_t SyncProtocolVersion() {
  return sync::kProtocolVersion;
}

}  // namespace weft
