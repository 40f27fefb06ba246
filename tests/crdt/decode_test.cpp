// Decoding untrusted bytes: truncated, bit-flipped and random snapshots and changes give an error
// status (or, for a flip that still spells a valid input, a document that works), never a crash.
// Run under the sanitizer build by .ci/run.
#include <catch2/catch.hpp>
#include <string>

#include "doc_sim.h"
#include "random.h"
#include "weft/crdt/document.h"

using namespace weft::crdt;
using namespace weft::testing;

namespace {

// A decoded document must be usable: encode it again, decode that, edit it.
void Exercise(Document& d, Rng& rng) {
  std::string again = d.EncodeSnapshot(true);
  auto copy = Document::DecodeSnapshot(again, NodeId{4242});
  REQUIRE(copy.ok());
  CHECK(copy->CanonicalState() == d.CanonicalState());
  auto txn = d.Begin(2'000'000'000'000);
  (void)RandomEdit(d, txn, rng);
  txn.Commit();
  (void)d.ToJson();
}

}  // namespace

TEST_CASE("truncated snapshots are refused", "[decode]") {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    Document doc = RandomDocument(seed, 25);
    for (bool history : {false, true}) {
      std::string bytes = doc.EncodeSnapshot(history);
      REQUIRE(Document::DecodeSnapshot(bytes, NodeId{7}).ok());
      for (size_t n = 0; n < bytes.size(); ++n) {
        auto r = Document::DecodeSnapshot(std::string_view(bytes).substr(0, n), NodeId{7});
        INFO("seed " << seed << " prefix " << n);
        CHECK_FALSE(r.ok());
      }
    }
  }
}

TEST_CASE("bit-flipped snapshots give an error or a working document", "[decode]") {
  size_t refused = 0, accepted = 0;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    Rng rng(seed);
    Document doc = RandomDocument(seed, 25);
    std::string bytes = doc.EncodeSnapshot(seed % 2 == 0);
    for (int trial = 0; trial < 300; ++trial) {
      std::string flipped = bytes;
      int flips = 1 + static_cast<int>(rng.Below(3));
      for (int f = 0; f < flips; ++f) {
        flipped[rng.Below(flipped.size())] ^= static_cast<char>(1u << rng.Below(8));
      }
      INFO("seed " << seed << " trial " << trial);
      auto r = Document::DecodeSnapshot(flipped, NodeId{7});
      if (r.ok()) {
        ++accepted;
        Exercise(*r, rng);
      } else {
        ++refused;
        CHECK(r.status().code() != weft::StatusCode::kOk);
      }
    }
  }
  CHECK(refused > accepted);  // most flips break a checked structure
}

TEST_CASE("random bytes are refused as snapshots and as changes", "[decode]") {
  Rng rng(99);
  for (int trial = 0; trial < 20000; ++trial) {
    std::string bytes(rng.Below(200), '\0');
    for (auto& c : bytes) c = static_cast<char>(rng.Below(256));
    if (trial % 2) bytes = "WEFTDOC\x01" + bytes;
    if (trial % 4 == 1) bytes = std::string("\x01", 1) + bytes;
    auto s = Document::DecodeSnapshot(bytes, NodeId{7});
    if (s.ok()) Exercise(*s, rng);
    auto c = DecodeChange(bytes);
    if (c.ok()) {
      Document d(NodeId{7});
      std::string before = d.CanonicalState();
      weft::Status applied = d.ApplyChange(*c);
      if (!applied.ok()) CHECK(d.CanonicalState() == before);
    }
  }
}

TEST_CASE("truncated and bit-flipped changes are refused or applied whole", "[decode]") {
  for (uint64_t seed = 1; seed <= 25; ++seed) {
    Rng rng(seed * 31);
    Document source = RandomDocument(seed, 20);
    const auto& history = source.history();
    Document replica(NodeId{5});
    for (const Change& c : history) {
      std::string bytes = EncodeChange(c);
      for (size_t n = 0; n < bytes.size(); ++n) {
        CHECK_FALSE(DecodeChange(std::string_view(bytes).substr(0, n)).ok());
      }
      for (int trial = 0; trial < 40; ++trial) {
        std::string flipped = bytes;
        flipped[rng.Below(flipped.size())] ^= static_cast<char>(1u << rng.Below(8));
        auto decoded = DecodeChange(flipped);
        if (!decoded.ok()) continue;
        Document copy = replica;
        std::string before = copy.CanonicalState();
        VersionVector version = copy.version();
        weft::Status s = copy.ApplyChange(*decoded);
        INFO("seed " << seed << " change " << c.id().ToString() << ": " << s.ToString());
        if (!s.ok()) {
          CHECK(copy.CanonicalState() == before);
          CHECK(copy.version() == version);
        } else {
          (void)copy.ToJson();
          (void)copy.EncodeSnapshot(true);
        }
      }
      REQUIRE(replica.ApplyChange(c).ok());
    }
    CHECK(replica.CanonicalState() == source.CanonicalState());
  }
}

TEST_CASE("an unknown format version is named as such", "[decode]") {
  Document doc = RandomDocument(3, 5);
  std::string snap = doc.EncodeSnapshot();
  snap[7] = 9;  // the version byte after the magic
  CHECK(Document::DecodeSnapshot(snap, NodeId{1}).status().code() ==
        weft::StatusCode::kUnsupportedVersion);
  std::string change = EncodeChange(doc.history()[0]);
  change[0] = 9;
  CHECK(DecodeChange(change).status().code() == weft::StatusCode::kUnsupportedVersion);
  CHECK(Document::DecodeSnapshot("not a snapshot", NodeId{1}).status().code() ==
        weft::StatusCode::kCorruption);
}
