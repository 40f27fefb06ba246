// Fuzz target: changes carrying access ops (create, bind, grant, revoke) and data ops, received
// one after another by an owned document (fixtures.h, OwnedDocument). Input: frames as for
// relay_handshake (a 16-bit length, then a change's bytes).
// Properties: nothing crashes; a change ApplyChange refuses leaves the document exactly as it
// was; the access list is always the function of its entries (rebuilt from them it is equal, with
// the same members); the owner stays the owner; the document survives a snapshot unchanged.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fixtures.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace weft;
  static const crdt::Document base = fuzz::OwnedDocument();

  crdt::Document doc = base;
  crdt::ApplyOptions opts;
  opts.now_ms = fuzz::kBaseTime + 60'000;
  size_t n = 0;
  for (std::string_view frame :
       fuzz::SplitFrames(std::string_view(reinterpret_cast<const char*>(data), size))) {
    if (++n > 16) break;
    auto change = crdt::DecodeChange(frame);
    if (!change.ok()) continue;
    const std::string before = doc.CanonicalState();
    const crdt::VersionVector version = doc.version();
    Status s = doc.ApplyChange(*change, opts);
    if (!s.ok()) {
      fuzz::Expect(doc.CanonicalState() == before, "a refused change changes nothing");
      fuzz::Expect(doc.version() == version, "a refused change leaves the version");
      // Held for later, when its dependencies are what it lacks.
      if (s.code() == StatusCode::kMissingDependency) (void)doc.Receive(std::move(*change), opts);
      continue;
    }
    const crdt::AccessList& access = doc.access();
    fuzz::Expect(access.owned() && access.RoleOf(fuzz::FixtureKey('a')) == crdt::Role::kOwner,
                 "the owner stays the owner");
    auto rebuilt = crdt::AccessList::FromEntries(access.entries());
    fuzz::Expect(rebuilt.ok(), "an access list's entries rebuild it");
    fuzz::Expect(*rebuilt == access && rebuilt->Members() == access.Members(),
                 "the access list is the function of its entries");
  }
  const std::string state = doc.CanonicalState();
  auto snap = crdt::Document::DecodeSnapshot(doc.EncodeSnapshot(true), fuzz::kSelf);
  fuzz::Expect(snap.ok(), "the document snapshots");
  fuzz::Expect(snap->CanonicalState() == state, "the snapshot holds the same state");
  fuzz::Expect(snap->access().Members() == doc.access().Members(), "the snapshot keeps members");
  (void)doc.CanonicalJson();
  return 0;
}
