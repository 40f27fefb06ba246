// History segments: exact round trips of real histories (several authors, every op type), and
// damaged segments (truncated, bit-flipped, bit-flipped with a recomputed checksum, random) give
// an error or changes that DecodeChange would accept, never a crash.
#include "weft/crdt/history.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "doc_sim.h"
#include "random.h"
#include "weft/crdt/document.h"

using namespace weft::crdt;
using namespace weft::testing;

namespace {

// The history of a document edited by three authors who exchange changes now and then, with
// text typed in runs (the pattern segments compress best) among random edits of every kind.
std::vector<Change> RandomHistory(uint64_t seed, int steps) {
  Rng rng(seed);
  std::vector<Document> docs;
  for (uint64_t n = 1; n <= 3; ++n) docs.emplace_back(NodeId{n * 0x1000'0000'0001ull + seed});
  uint64_t now = 1'700'000'000'000 + seed;
  for (int step = 0; step < steps; ++step) {
    Document& d = docs[rng.Below(docs.size())];
    now += rng.Below(3);
    auto txn = d.Begin(now);
    int ops = 1 + static_cast<int>(rng.Below(rng.Chance(20) ? 6 : 1));
    for (int k = 0; k < ops; ++k) (void)RandomEdit(d, txn, rng);
    auto c = txn.Commit();
    if (rng.Chance(15)) {
      Document& to = docs[rng.Below(docs.size())];
      auto missing = d.ChangesSince(to.version());
      REQUIRE(missing.ok());
      for (const Change& m : *missing) REQUIRE(to.ApplyChange(m).ok());
    }
  }
  // One document receives everything, so its history names every author.
  for (size_t i = 1; i < docs.size(); ++i) {
    auto missing = docs[i].ChangesSince(docs[0].version());
    REQUIRE(missing.ok());
    for (const Change& m : *missing) REQUIRE(docs[0].ApplyChange(m).ok());
  }
  std::vector<Change> h = docs[0].history().All();
  // Signatures are carried (not yet made by transactions): give some changes one.
  for (size_t i = 0; i < h.size(); i += 7) h[i].signature = std::string(64, static_cast<char>(i));
  return h;
}

std::string FixChecksum(std::string s) {
  uint32_t crc = Crc32c(std::string_view(s).substr(0, s.size() - 4));
  for (int i = 0; i < 4; ++i) s[s.size() - 4 + i] = static_cast<char>(crc >> (8 * i));
  return s;
}

// What a damaged segment decodes to must be changes DecodeChange accepts, and encode again.
void CheckAccepted(const std::vector<Change>& cs) {
  REQUIRE_FALSE(cs.empty());
  for (const Change& c : cs) {
    auto again = DecodeChange(EncodeChange(c));
    REQUIRE(again.ok());
    CHECK(*again == c);
  }
  auto seg = DecodeSegment(EncodeSegment(cs));
  REQUIRE(seg.ok());
  CHECK(*seg == cs);
}

}  // namespace

TEST_CASE("CRC-32C matches the standard check value", "[history]") {
  CHECK(Crc32c("123456789") == 0xE3069283u);
  CHECK(Crc32c("") == 0u);
}

TEST_CASE("history segments round-trip exactly", "[history]") {
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    auto h = RandomHistory(seed, 40 + static_cast<int>(seed) * 5);
    REQUIRE_FALSE(h.empty());
    std::string seg = EncodeSegment(h);
    auto back = DecodeSegment(seg);
    INFO("seed " << seed);
    REQUIRE(back.ok());
    CHECK(*back == h);
    // Any run of the history (a segment need not start at the first change) round-trips too.
    std::vector<Change> tail(h.begin() + static_cast<long>(h.size() / 3), h.end());
    auto t = DecodeSegment(EncodeSegment(tail));
    REQUIRE(t.ok());
    CHECK(*t == tail);
  }
}

TEST_CASE("a typing run costs about its text in a segment", "[history]") {
  Document d(NodeId{77});
  ObjectId text;
  {
    auto txn = d.Begin(1'700'000'000'000);
    text = *txn.PutObject(kRoot, "text", ObjectKind::kText);
    txn.Commit();
  }
  const std::string typed =
      "The quick brown fox jumps over the lazy dog, and then types a few more words.";
  size_t blob_bytes = 0;
  for (int round = 0; round < 20; ++round) {
    for (size_t i = 0; i < typed.size(); ++i) {
      auto txn = d.Begin(1'700'000'000'000 + (round * typed.size() + i) / 8);
      size_t at = *d.SequenceSize(text);
      REQUIRE(txn.TextInsert(text, at, typed.substr(i, 1)).ok());
      blob_bytes += EncodeChange(*txn.Commit()).size();
    }
    auto txn = d.Begin(1'700'000'000'000 + round * typed.size());
    REQUIRE(txn.TextDelete(text, *d.SequenceSize(text) - 3, 3).ok());  // three backspaces
    txn.Commit();
  }
  std::string seg = EncodeSegment(d.history().All());
  auto back = DecodeSegment(seg);
  REQUIRE(back.ok());
  CHECK(*back == d.history().All());
  INFO("segment " << seg.size() << " bytes, blobs " << blob_bytes << " bytes");
  CHECK(seg.size() < typed.size() * 20);  // about one byte a character, not dozens
  CHECK(seg.size() * 20 < blob_bytes);
}

TEST_CASE("truncated segments are refused", "[history]") {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    std::string seg = EncodeSegment(RandomHistory(seed, 30));
    for (size_t n = 0; n < seg.size(); ++n) {
      INFO("seed " << seed << " prefix " << n);
      auto r = DecodeSegment(std::string_view(seg).substr(0, n));
      REQUIRE_FALSE(r.ok());
      CHECK(r.status().code() == weft::StatusCode::kCorruption);
    }
  }
}

TEST_CASE("bit flips are caught by the checksum", "[history]") {
  Rng rng(5);
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    std::string seg = EncodeSegment(RandomHistory(seed, 30));
    for (int trial = 0; trial < 200; ++trial) {
      std::string flipped = seg;
      int flips = 1 + static_cast<int>(rng.Below(3));
      for (int f = 0; f < flips; ++f) {
        flipped[rng.Below(flipped.size())] ^= static_cast<char>(1u << rng.Below(8));
      }
      if (flipped == seg) continue;
      INFO("seed " << seed << " trial " << trial);
      auto r = DecodeSegment(flipped);
      REQUIRE_FALSE(r.ok());
      CHECK(r.status().code() == weft::StatusCode::kCorruption);
    }
  }
}

TEST_CASE("damage behind a valid checksum is refused or decodes to valid changes", "[history]") {
  Rng rng(11);
  size_t refused = 0, accepted = 0;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    std::string seg = EncodeSegment(RandomHistory(seed, 30));
    for (int trial = 0; trial < 300; ++trial) {
      std::string bad = seg;
      if (trial % 5 == 0) {
        // Overwrite a stretch with random bytes.
        size_t at = rng.Below(bad.size() - 4), len = 1 + rng.Below(8);
        for (size_t i = at; i < std::min(at + len, bad.size() - 4); ++i) {
          bad[i] = static_cast<char>(rng.Below(256));
        }
      } else {
        bad[rng.Below(bad.size() - 4)] ^= static_cast<char>(1u << rng.Below(8));
      }
      bad = FixChecksum(bad);
      INFO("seed " << seed << " trial " << trial);
      auto r = DecodeSegment(bad);
      if (r.ok()) {
        ++accepted;
        CheckAccepted(*r);
      } else {
        ++refused;
        CHECK((r.status().code() == weft::StatusCode::kCorruption ||
               r.status().code() == weft::StatusCode::kUnsupportedVersion));
      }
    }
  }
  CHECK(refused > 0);
  CHECK(accepted > 0);  // some flips spell other valid histories (a different text, seq, time)
}

TEST_CASE("random bytes are refused as segments", "[history]") {
  Rng rng(3);
  for (int trial = 0; trial < 5000; ++trial) {
    std::string bytes(rng.Below(300), '\0');
    for (auto& c : bytes) c = static_cast<char>(rng.Below(256));
    if (trial % 2) bytes = "WSEG\x01" + bytes;
    if (bytes.size() >= 4 && trial % 3 == 0) bytes = FixChecksum(bytes);
    auto r = DecodeSegment(bytes);
    if (r.ok()) CheckAccepted(*r);
  }
}
