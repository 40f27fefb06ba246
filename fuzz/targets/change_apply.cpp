// Fuzz target: decoding a change and applying it to a document (crdt/document.h).
// Properties: DecodeChange never crashes; an accepted change re-encodes to itself; applying it
// either succeeds (and a second apply is a no-op) or fails leaving the document exactly as it was.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fixtures.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace weft;
  static const crdt::Document base = fuzz::BaseDocument();
  static const std::string base_state = base.CanonicalState();

  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto change = crdt::DecodeChange(in);
  if (!change.ok()) return 0;
  auto again = crdt::DecodeChange(crdt::EncodeChange(*change));
  fuzz::Expect(again.ok() && *again == *change, "an accepted change round-trips");

  crdt::Document doc = base;
  crdt::ApplyOptions opts;
  opts.now_ms = fuzz::kBaseTime + 60'000;
  Status s = doc.ApplyChange(*change, opts);
  if (!s.ok()) {
    fuzz::Expect(doc.CanonicalState() == base_state, "a refused change changes nothing");
    fuzz::Expect(doc.version() == base.version(), "a refused change leaves the version");
    return 0;
  }
  std::string after = doc.CanonicalState();
  fuzz::Expect(doc.ApplyChange(*change, opts).ok(), "a duplicate is accepted");
  fuzz::Expect(doc.CanonicalState() == after, "a duplicate changes nothing");
  // What was applied is served to peers and survives a snapshot.
  auto snap = crdt::Document::DecodeSnapshot(doc.EncodeSnapshot(true), fuzz::kSelf);
  fuzz::Expect(snap.ok(), "a document with an applied change snapshots");
  fuzz::Expect(snap->CanonicalState() == after, "the snapshot holds the applied change");
  (void)doc.CanonicalJson();
  return 0;
}
