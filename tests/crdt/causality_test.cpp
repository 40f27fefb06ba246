#include "weft/crdt/causality.h"

#include <catch2/catch.hpp>

using namespace weft::crdt;

namespace {
const NodeId A{1}, B{2}, C{3};
}

TEST_CASE("version vector compare: equal, before, after, concurrent", "[causality]") {
  VersionVector x{{A, 2}, {B, 1}};
  VersionVector y{{A, 2}, {B, 1}};
  CHECK(x.Compare(y) == Ordering::kEqual);
  y.Advance(C, 1);
  CHECK(x.Compare(y) == Ordering::kBefore);
  CHECK(y.Compare(x) == Ordering::kAfter);
  x.Advance(A, 3);
  CHECK(x.Compare(y) == Ordering::kConcurrent);
  CHECK(y.Compare(x) == Ordering::kConcurrent);
  CHECK(VersionVector().Compare(VersionVector()) == Ordering::kEqual);
  CHECK(VersionVector().Compare(x) == Ordering::kBefore);
}

TEST_CASE("version vector merge is the pointwise maximum", "[causality]") {
  VersionVector x{{A, 5}, {C, 1}};
  VersionVector y{{A, 2}, {B, 7}};
  VersionVector m = x;
  m.Merge(y);
  CHECK(m == VersionVector{{A, 5}, {B, 7}, {C, 1}});
  VersionVector m2 = y;
  m2.Merge(x);
  CHECK(m == m2);
  CHECK(m.Dominates(x));
  CHECK(m.Dominates(y));
  CHECK(m.TotalOps() == 13);
}

TEST_CASE("version vector subtract lists the dots the other lacks", "[causality]") {
  VersionVector x{{A, 5}, {B, 2}, {C, 4}};
  VersionVector y{{A, 3}, {C, 4}, {NodeId{9}, 1}};
  auto missing = x.Subtract(y);
  REQUIRE(missing.size() == 2);
  CHECK(missing[0] == DotRange{A, 4, 5});
  CHECK(missing[1] == DotRange{B, 1, 2});
  CHECK(y.Subtract(y).empty());
  CHECK(x.Contains({A, 5}));
  CHECK_FALSE(x.Contains({A, 6}));
  CHECK_FALSE(x.Contains({A, 0}));
}

TEST_CASE("first missing entry and dropping covered entries agree with a naive walk",
          "[causality]") {
  VersionVector x{{A, 5}, {B, 2}, {C, 4}};
  CHECK(!x.FirstMissing(VersionVector{}).has_value());
  CHECK(!x.FirstMissing(VersionVector{{A, 5}, {C, 1}}).has_value());
  CHECK(x.FirstMissing(VersionVector{{A, 6}, {C, 9}}) == Dot{A, 6});
  CHECK(x.FirstMissing(VersionVector{{B, 1}, {NodeId{9}, 1}}) == Dot{NodeId{9}, 1});
  CHECK(VersionVector{}.FirstMissing(x) == Dot{A, 5});
  // Random vectors of many sizes (the search gallops over long runs).
  uint64_t state = 12345;
  auto next = [&state](uint64_t n) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (state >> 33) % n;
  };
  for (int round = 0; round < 2000; ++round) {
    VersionVector a, b;
    size_t na = next(300), nb = next(40);
    for (size_t i = 0; i < na; ++i) a.Set(NodeId{1 + next(400)}, 1 + next(5));
    for (size_t i = 0; i < nb; ++i) b.Set(NodeId{1 + next(400)}, 1 + next(5));
    std::optional<Dot> naive;
    for (const auto& [node, seq] : b.entries()) {
      if (a.Get(node) < seq) {
        naive = Dot{node, seq};
        break;
      }
    }
    CHECK(a.FirstMissing(b) == naive);
    VersionVector dropped = a, expect = a;
    dropped.DropCovered(b);
    for (const auto& [node, seq] : b.entries()) {
      if (expect.Get(node) <= seq) expect.Set(node, 0);
    }
    CHECK(dropped == expect);
  }
}

TEST_CASE("setting an entry to zero removes it, keeping equality canonical", "[causality]") {
  VersionVector x{{A, 1}};
  x.Set(A, 0);
  CHECK(x.empty());
  CHECK(x == VersionVector());
}

TEST_CASE("dotted version vectors tell replaced writes from concurrent ones", "[causality]") {
  DottedVersionVector w1{{A, 1}, {}};
  DottedVersionVector w2{{B, 1}, {}};                // concurrent with w1
  DottedVersionVector w3{{A, 2}, {{A, 1}, {B, 1}}};  // saw both
  CHECK(w1.ConcurrentWith(w2));
  CHECK(w3.Descends(w1));
  CHECK(w3.Descends(w2));
  CHECK_FALSE(w1.Descends(w3));
  CHECK(w3.ToVersionVector() == VersionVector{{A, 2}, {B, 1}});
}

TEST_CASE("node ids round-trip through hex", "[causality]") {
  NodeId n{0x00ab00cd12345678ull};
  CHECK(n.ToHex() == "00ab00cd12345678");
  CHECK(NodeId::FromHex(n.ToHex()) == n);
  CHECK_FALSE(NodeId::FromHex("xyz"));
  CHECK_FALSE(NodeId::FromHex("0"));
  CHECK_FALSE(NodeId::FromHex("11112222333344445"));
}

TEST_CASE("lamport clock ticks past anything observed", "[causality]") {
  LamportClock c;
  CHECK(c.Tick() == 1);
  c.Observe(10);
  CHECK(c.Tick() == 11);
  c.Observe(3);
  CHECK(c.Tick() == 12);
}

TEST_CASE("hybrid clock is monotonic when physical time stalls or goes back", "[causality]") {
  HybridClock c;
  HlcTimestamp t1 = c.Now(1000);
  HlcTimestamp t2 = c.Now(1000);
  HlcTimestamp t3 = c.Now(500);  // the wall clock jumped backwards
  HlcTimestamp t4 = c.Now(2000);
  CHECK(t1 < t2);
  CHECK(t2 < t3);
  CHECK(t3 < t4);
  CHECK(t4 == HlcTimestamp{2000, 0});
}

TEST_CASE("hybrid clock follows remote time and refuses one past the drift bound", "[causality]") {
  HybridClock c(/*max_drift_ms=*/1000);
  c.Now(5000);
  REQUIRE(c.Observe({5900, 3}, 5000).ok());
  HlcTimestamp t = c.Now(5000);
  CHECK(t > HlcTimestamp{5900, 3});  // causality kept although local time lags
  HlcTimestamp before = c.last();
  weft::Status s = c.Observe({7000, 0}, 5000);
  CHECK(s.code() == weft::StatusCode::kClockDrift);
  CHECK(c.last() == before);  // nothing changed
}
