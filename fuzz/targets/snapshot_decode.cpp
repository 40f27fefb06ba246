// Fuzz target: decoding and validating a document snapshot (crdt/document.h).
// Properties: DecodeSnapshot never crashes; an accepted snapshot re-encodes to one that decodes
// to the same canonical state, and reading every value does not crash.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fixtures.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace weft;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto doc = crdt::Document::DecodeSnapshot(in, fuzz::kSelf);
  if (!doc.ok()) return 0;
  std::string state = doc->CanonicalState();
  for (bool history : {false, true}) {
    auto again = crdt::Document::DecodeSnapshot(doc->EncodeSnapshot(history), fuzz::kSelf);
    fuzz::Expect(again.ok(), "a re-encoded snapshot decodes");
    fuzz::Expect(again->CanonicalState() == state, "a re-encoded snapshot keeps the state");
  }
  (void)doc->CanonicalJson();
  (void)doc->ToJson();
  // A local edit on a decoded document must not crash (it may be refused, e.g. at a seq limit).
  auto t = doc->Begin(fuzz::kBaseTime + 60'000);
  if (t.Put(crdt::kRoot, "fuzz", crdt::Scalar(int64_t{1})).ok()) {
    t.Commit();
  } else {
    t.Rollback();
  }
  return 0;
}
