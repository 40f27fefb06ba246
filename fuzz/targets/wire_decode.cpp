// Fuzz target: decoding and validating one sync protocol frame (sdk/src/sync/wire.h).
// Properties: Decode never crashes on any bytes; a frame it accepts re-encodes to a frame that
// decodes to the same message, and encoding is then a fixed point.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "fixtures.h"
#include "sync/wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace weft;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto m = sync::Decode(in);
  if (!m.ok()) {
    fuzz::Expect(!m.status().message().empty(), "a refused frame has a message");
    return 0;
  }
  std::string once = sync::Encode(*m);
  auto again = sync::Decode(once);
  if (!again.ok()) {
    std::fprintf(stderr, "%s frame re-encoded: %s\n", sync::MessageName(*m),
                 again.status().ToString().c_str());
    fuzz::Violated("a re-encoded accepted frame decodes");
  }
  fuzz::Expect(std::string_view(sync::MessageName(*again)) == sync::MessageName(*m),
               "the message kind survives re-encoding");
  fuzz::Expect(sync::Encode(*again) == once, "encoding is a fixed point");
  return 0;
}
