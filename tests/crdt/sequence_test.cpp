// Unit tests of the sequence CRDT: Text, List<V>, UTF helpers, ops, undo, anchors and encoding.
#include "weft/crdt/sequence.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "support/random.h"
#include "weft/crdt/utf.h"

namespace {

using namespace weft::crdt;  // NOLINT
using weft::StatusCode;
using weft::testing::Rng;

constexpr NodeId kA{0xA};
constexpr NodeId kB{0xB};
constexpr NodeId kC{0xC};

std::string Encode(const Text& t) {
  Writer w;
  t.EncodeState(w);
  return w.Take();
}

TextInsertOp Ins(Text& t, size_t pos, const std::string& s, Dot id) {
  auto r = t.LocalInsert(pos, s, id);
  REQUIRE(r.ok());
  return *r;
}

DeleteOp Del(Text& t, size_t pos, size_t len) {
  auto r = t.LocalDelete(pos, len);
  REQUIRE(r.ok());
  return *r;
}

}  // namespace

TEST_CASE("text: insert, delete, read", "[sequence]") {
  Text t;
  CHECK(t.size() == 0);
  CHECK(t.ToString() == "");
  Ins(t, 0, "hello", Dot{kA, 1});
  Ins(t, 5, " world", Dot{kA, 6});
  CHECK(t.ToString() == "hello world");
  CHECK(t.size() == 11);
  Ins(t, 5, ",", Dot{kA, 12});
  CHECK(t.ToString() == "hello, world");
  DeleteOp d = Del(t, 0, 1);
  REQUIRE(d.ranges.size() == 1);
  CHECK(d.ranges[0] == DotRange{kA, 1, 1});
  CHECK(t.ToString() == "ello, world");
  Ins(t, 0, "H", Dot{kA, 13});
  CHECK(t.ToString() == "Hello, world");
  CHECK(*t.Slice(7, 5) == "world");
  CHECK(*t.At(1) == U'e');
  CHECK(t.At(12).status().code() == StatusCode::kOutOfRange);
  CHECK(t.Slice(10, 3).status().code() == StatusCode::kOutOfRange);
  // Ids and indexes.
  CHECK(*t.IdAt(0) == Dot{kA, 13});
  CHECK(*t.IdAt(1) == Dot{kA, 2});
  CHECK(*t.IndexOf(Dot{kA, 2}) == 1);
  // Deleted; "H" went in just after the start, before the tombstone: it would be at index 1.
  CHECK(*t.IndexOf(Dot{kA, 1}) == 1);
  CHECK(t.IndexOf(Dot{kB, 1}).status().code() == StatusCode::kNotFound);
  CHECK(t.IdAt(12).status().code() == StatusCode::kOutOfRange);
  // A delete spanning several runs reports exact ranges.
  DeleteOp d2 = Del(t, 0, 7);  // "Hello, "
  CHECK(t.ToString() == "world");
  CHECK(d2.ranges == std::vector<DotRange>{{kA, 13, 13}, {kA, 2, 5}, {kA, 12, 12}, {kA, 6, 6}});
  CHECK(t.core().CheckInvariants() == "");
}

TEST_CASE("text: multi-byte code points count as one position", "[sequence][utf]") {
  Text t;
  Ins(t, 0, "a😀b", Dot{kA, 1});
  CHECK(t.size() == 3);
  Ins(t, 2, "中é", Dot{kA, 4});
  CHECK(t.ToString() == "a😀中éb");
  CHECK(*t.At(1) == U'😀');
  CHECK(*t.Slice(1, 3) == "😀中é");
  Del(t, 1, 1);
  CHECK(t.ToString() == "a中éb");
}

TEST_CASE("text: ASCII content widens at the first other code point, offsets kept",
          "[sequence][utf]") {
  Text t;
  Ins(t, 0, "hello world", Dot{kA, 1});  // stored a byte a code point
  Text copy = t;
  CHECK(*t.At(4) == U'o');
  // A remote insert that is here already, with a code point past ASCII: nothing changes.
  TextInsertOp again{Dot{kA, 1}, Dot{}, Dot{}, "hé"};
  REQUIRE(t.Apply(again).ok());
  CHECK(t.ToString() == "hello world");
  Ins(t, 5, ", 世界", Dot{kA, 12});
  CHECK(t.ToString() == "hello, 世界 world");
  CHECK(*t.At(8) == U'界');
  CHECK(*t.Slice(3, 7) == "lo, 世界 ");
  Ins(t, 0, ">", Dot{kA, 16});  // ASCII into the widened content
  CHECK(t.ToString() == ">hello, 世界 world");
  Del(t, 6, 3);
  CHECK(t.ToString() == ">hello界 world");
  CHECK(copy.ToString() == "hello world");  // the copy kept its own content
}

TEST_CASE("utf: validation and UTF-16 conversion", "[utf]") {
  CHECK(ValidateUtf8("plain ascii").ok());
  CHECK(ValidateUtf8("é中😀").ok());
  CHECK(ValidateUtf8("\xff").code() == StatusCode::kInvalidArgument);
  CHECK(ValidateUtf8("\xc3").code() == StatusCode::kInvalidArgument);              // truncated
  CHECK(ValidateUtf8("\xc0\xaf").code() == StatusCode::kInvalidArgument);          // overlong
  CHECK(ValidateUtf8("\xed\xa0\x80").code() == StatusCode::kInvalidArgument);      // surrogate
  CHECK(ValidateUtf8("\xf4\x90\x80\x80").code() == StatusCode::kInvalidArgument);  // > U+10FFFF
  CHECK(CountCodePoints("a😀b") == 3);
  CHECK(EncodeUtf8(*DecodeUtf8("x😀y中")) == "x😀y中");

  std::string s = "a😀b中";
  CHECK(*CodePointToUtf16(s, 0) == 0);
  CHECK(*CodePointToUtf16(s, 1) == 1);
  CHECK(*CodePointToUtf16(s, 2) == 3);
  CHECK(*CodePointToUtf16(s, 4) == 5);
  CHECK(CodePointToUtf16(s, 5).status().code() == StatusCode::kOutOfRange);
  CHECK(*Utf16ToCodePoint(s, 3) == 2);
  CHECK(*Utf16ToCodePoint(s, 5) == 4);
  CHECK(Utf16ToCodePoint(s, 2).status().code() == StatusCode::kInvalidArgument);  // mid-pair
  CHECK(Utf16ToCodePoint(s, 6).status().code() == StatusCode::kOutOfRange);
  std::u32string cps = U"a😀b";
  CHECK(*CodePointToUtf16(cps, 2) == 3);
  CHECK(*Utf16ToCodePoint(cps, 3) == 2);
  CHECK(Utf16ToCodePoint(cps, 2).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("utf: counting code points agrees with decoding, at every length and offset", "[utf]") {
  // The count reads eight bytes at a time: strings of every length up to 40, starting at every
  // byte of a buffer, mixing one- to four-byte code points.
  const char* pieces[] = {"a", "\n", "\xc3\xa9", "\xe4\xb8\xad", "\xf0\x9f\x98\x80"};
  Rng rng(7);
  for (int round = 0; round < 300; ++round) {
    std::string s;
    size_t cps = 0;
    while (s.size() < static_cast<size_t>(rng.Below(41))) {
      s += pieces[rng.Below(5)];
      ++cps;
    }
    std::string buf = std::string(rng.Below(8), 'x') + s;
    std::string_view v(buf.data() + (buf.size() - s.size()), s.size());
    CHECK(CountCodePoints(v) == cps);
    CHECK(CountCodePoints(v) == DecodeUtf8(v)->size());
  }
}

TEST_CASE("text: invalid input gives an error and changes nothing", "[sequence]") {
  Text t;
  Ins(t, 0, "abc", Dot{kA, 1});
  std::string before = Encode(t);
  CHECK(t.LocalInsert(0, "\xff", Dot{kA, 10}).status().code() == StatusCode::kInvalidArgument);
  CHECK(t.LocalInsert(0, "", Dot{kA, 10}).status().code() == StatusCode::kInvalidArgument);
  CHECK(t.LocalInsert(4, "x", Dot{kA, 10}).status().code() == StatusCode::kOutOfRange);
  CHECK(t.LocalInsert(0, "x", Dot{kA, 2}).status().code() == StatusCode::kInvalidArgument);
  CHECK(t.LocalInsert(0, "x", Dot{NodeId{0}, 9}).status().code() == StatusCode::kInvalidArgument);
  CHECK(t.LocalInsert(0, "x", Dot{kA, 0}).status().code() == StatusCode::kInvalidArgument);
  CHECK(t.LocalDelete(2, 2).status().code() == StatusCode::kOutOfRange);
  CHECK(t.LocalDelete(4, 0).status().code() == StatusCode::kOutOfRange);
  CHECK(t.LocalDelete(3, 0).ok());
  CHECK(Encode(t) == before);
  CHECK(t.ToString() == "abc");
}

TEST_CASE("text: malformed remote ops are rejected without changes", "[sequence]") {
  Text t;
  TextInsertOp base = Ins(t, 0, "abc", Dot{kA, 1});
  std::string before = Encode(t);
  auto expect = [&](const TextOp& op, StatusCode code) {
    CHECK(t.Validate(op).code() == code);
    CHECK(t.Apply(op).code() == code);
    CHECK(Encode(t) == before);
  };
  // Unknown origins.
  expect(TextInsertOp{Dot{kB, 1}, Dot{kC, 5}, Dot{}, "x"}, StatusCode::kMissingDependency);
  expect(TextInsertOp{Dot{kB, 1}, Dot{}, Dot{kA, 9}, "x"}, StatusCode::kMissingDependency);
  // Empty, invalid UTF-8, bad ids, bad sentinels.
  expect(TextInsertOp{Dot{kB, 1}, Dot{}, Dot{}, ""}, StatusCode::kInvalidArgument);
  expect(TextInsertOp{Dot{kB, 1}, Dot{}, Dot{}, "\xc3"}, StatusCode::kInvalidArgument);
  expect(TextInsertOp{Dot{NodeId{0}, 1}, Dot{}, Dot{}, "x"}, StatusCode::kInvalidArgument);
  expect(TextInsertOp{Dot{kB, 0}, Dot{}, Dot{}, "x"}, StatusCode::kInvalidArgument);
  expect(TextInsertOp{Dot{kB, UINT64_MAX}, Dot{}, Dot{}, "xy"}, StatusCode::kInvalidArgument);
  expect(TextInsertOp{Dot{kB, 1}, Dot{NodeId{0}, 3}, Dot{}, "x"}, StatusCode::kInvalidArgument);
  // Ids partly present.
  expect(TextInsertOp{Dot{kA, 3}, Dot{}, Dot{}, "xy"}, StatusCode::kInvalidArgument);
  // Right origin before the left one.
  expect(TextInsertOp{Dot{kB, 1}, Dot{kA, 3}, Dot{kA, 1}, "x"}, StatusCode::kInvalidArgument);
  expect(TextInsertOp{Dot{kB, 1}, Dot{kA, 2}, Dot{kA, 2}, "x"}, StatusCode::kInvalidArgument);
  // Deletes: unknown ids, reversed or empty ranges, node 0.
  expect(DeleteOp{{{kB, 1, 1}}}, StatusCode::kMissingDependency);
  expect(DeleteOp{{{kA, 2, 4}}}, StatusCode::kMissingDependency);
  expect(DeleteOp{{{kA, 3, 2}}}, StatusCode::kInvalidArgument);
  expect(DeleteOp{{{kA, 0, 1}}}, StatusCode::kInvalidArgument);
  expect(DeleteOp{{{NodeId{0}, 1, 1}}}, StatusCode::kInvalidArgument);
  // A good op still applies.
  CHECK(t.Apply(TextInsertOp{Dot{kB, 1}, Dot{kA, 3}, Dot{}, "!"}).ok());
  CHECK(t.ToString() == "abc!");
  (void)base;
}

TEST_CASE("text: applying an op twice is a no-op", "[sequence]") {
  Text a, b;
  TextInsertOp i1 = Ins(a, 0, "hello", Dot{kA, 1});
  DeleteOp d1 = Del(a, 1, 3);
  REQUIRE(b.Apply(i1).ok());
  REQUIRE(b.Apply(i1).ok());
  CHECK(b.ToString() == "hello");
  std::vector<DotRange> newly;
  REQUIRE(b.Apply(d1, &newly).ok());
  CHECK(newly == std::vector<DotRange>{{kA, 2, 4}});
  newly.clear();
  REQUIRE(b.Apply(d1, &newly).ok());
  CHECK(newly.empty());
  CHECK(b.ToString() == "ho");
  CHECK(Encode(a) == Encode(b));
  // A delete overlapping an earlier one reports only the new part.
  DeleteOp d2 = DeleteOp{{{kA, 1, 3}}};
  REQUIRE(b.Apply(d2, &newly).ok());
  CHECK(newly == std::vector<DotRange>{{kA, 1, 1}});
  CHECK(b.ToString() == "o");
}

TEST_CASE("text: concurrent edits converge in any order", "[sequence]") {
  Text a;
  TextInsertOp base = Ins(a, 0, "ac", Dot{kA, 1});
  Text b = a, c = a;
  TextInsertOp ib = Ins(b, 1, "BBB", Dot{kB, 1});
  TextInsertOp ic = Ins(c, 1, "CC", Dot{kC, 1});
  DeleteOp da = Del(a, 0, 2);
  for (Text* t : {&a, &b, &c}) {
    for (const TextOp& op : std::vector<TextOp>{ib, ic, da}) REQUIRE(t->Apply(op).ok());
  }
  Text d;
  REQUIRE(d.Apply(base).ok());
  for (const TextOp& op : std::vector<TextOp>{da, ic, ib}) REQUIRE(d.Apply(op).ok());
  CHECK(a.ToString() == "BBBCC");  // ties broken by node id: B < C
  CHECK(b.ToString() == a.ToString());
  CHECK(c.ToString() == a.ToString());
  CHECK(d.ToString() == a.ToString());
  CHECK(Encode(a) == Encode(b));
  CHECK(Encode(a) == Encode(d));
}

TEST_CASE("text: anchors stay in place under concurrent edits", "[sequence][anchor]") {
  Text a;
  TextInsertOp base = Ins(a, 0, "hello world", Dot{kA, 1});
  Text b = a;
  Anchor left = *a.AnchorAt(5, Bias::kLeft);    // after "hello"
  Anchor right = *a.AnchorAt(5, Bias::kRight);  // before " world"
  Anchor start = *a.AnchorAt(0, Bias::kLeft);
  Anchor end = *a.AnchorAt(11, Bias::kRight);
  CHECK(a.AnchorAt(12, Bias::kLeft).status().code() == StatusCode::kOutOfRange);
  CHECK(*a.IndexOfAnchor(left) == 5);
  CHECK(*a.IndexOfAnchor(right) == 5);
  // Concurrently: b inserts at the anchor position and at the start, a deletes "hello".
  TextInsertOp i1 = Ins(b, 5, ", dear", Dot{kB, 1});
  TextInsertOp i2 = Ins(b, 0, ">> ", Dot{kB, 7});
  DeleteOp d = Del(a, 0, 2);  // "he"
  REQUIRE(a.Apply(i1).ok());
  REQUIRE(a.Apply(i2).ok());
  REQUIRE(b.Apply(d).ok());
  CHECK(a.ToString() == ">> llo, dear world");
  CHECK(b.ToString() == a.ToString());
  for (Text* t : {&a, &b}) {
    CHECK(*t->IndexOfAnchor(left) == 6);    // still right after "llo"
    CHECK(*t->IndexOfAnchor(right) == 12);  // still right before " world"
    CHECK(*t->IndexOfAnchor(start) == 0);
    CHECK(*t->IndexOfAnchor(end) == t->size());
  }
  // When the anchored item is deleted the anchor stays where it was.
  DeleteOp d2 = Del(a, 3, 9);  // "llo, dear"
  CHECK(a.ToString() == ">>  world");
  CHECK(*a.IndexOfAnchor(left) == 3);
  CHECK(*a.IndexOfAnchor(right) == 3);
  CHECK(a.IndexOfAnchor(Anchor{Dot{kC, 1}, Bias::kLeft}).status().code() == StatusCode::kNotFound);
  (void)base;
  (void)d2;
}

TEST_CASE("text: undo restores the exact state", "[sequence][undo]") {
  Rng rng(7);
  Text t;
  uint64_t seq = 1;
  // Build a document with some structure: runs, splits, tombstones.
  for (int i = 0; i < 200; ++i) {
    if (t.size() > 0 && rng.Chance(30)) {
      size_t pos = rng.Below(t.size());
      Del(t, pos, std::min<size_t>(t.size() - pos, rng.Below(4) + 1));
    } else {
      std::string s(rng.Below(3) + 1, static_cast<char>('a' + rng.Below(26)));
      Ins(t, rng.Below(t.size() + 1), s, Dot{kA, seq});
      seq += s.size();
    }
  }
  for (int trial = 0; trial < 200; ++trial) {
    INFO("trial " << trial);
    std::string before = Encode(t);
    std::string text_before = t.ToString();
    // A transaction of a few local ops, then rolled back in reverse order.
    std::vector<TextOp> ops;
    uint64_t s0 = seq;
    int nops = static_cast<int>(rng.Range(1, 5));
    for (int k = 0; k < nops; ++k) {
      if (t.size() > 0 && rng.Chance(50)) {
        size_t pos = rng.Below(t.size());
        ops.emplace_back(std::in_place_type<DeleteOp>,
                         Del(t, pos, std::min<size_t>(t.size() - pos, rng.Below(6) + 1)));
      } else {
        std::string s = rng.Chance(50) ? "x" : "yé😀";
        // Typing right after the previous insert extends its run (the merge fast path).
        ops.push_back(Ins(t, rng.Below(t.size() + 1), s, Dot{kB, seq}));
        seq += CountCodePoints(s);
      }
    }
    for (size_t k = ops.size(); k-- > 0;) {
      if (auto* ins = std::get_if<TextInsertOp>(&ops[k])) {
        t.UndoInsert(*ins);
      } else {
        t.UndoDelete(std::get<DeleteOp>(ops[k]));
      }
    }
    REQUIRE(t.core().CheckInvariants() == "");
    REQUIRE(t.ToString() == text_before);
    REQUIRE(Encode(t) == before);
    seq = s0;  // the ids are free again
    // Keep the document evolving.
    Ins(t, rng.Below(t.size() + 1), "z", Dot{kA, 100000 + static_cast<uint64_t>(trial)});
  }
}

TEST_CASE("text: deferred deletes settle to the state of deleting each range", "[sequence]") {
  uint64_t seed = weft::testing::SeedFromEnv();
  if (seed == 0) seed = 11;
  INFO("seed " << seed);
  Rng rng(seed);
  // Items of three nodes, interleaved, in runs of a few.
  const NodeId nodes[3] = {kA, kB, kC};
  uint64_t next[3] = {1, 1, 1};
  Text base;
  for (int i = 0; i < 3000; ++i) {
    int w = static_cast<int>(rng.Below(3));
    uint64_t n = rng.Below(4) + 1;
    Ins(base, rng.Below(base.size() + 1), std::string(n, 'a' + static_cast<char>(w)),
        Dot{nodes[w], next[w]});
    next[w] += n;
  }
  // Batches of delete ops, small (one by one) and large (the one pass), checked or not; the
  // last op of some batches taken back.
  for (int round = 0; round < 6; ++round) {
    Text one = base, deferred = base;
    const int ops = round % 2 == 0 ? 20 : 2000;
    const bool check = round % 3 != 2;
    size_t mark = 0;
    for (int i = 0; i < ops; ++i) {
      std::vector<DotRange> ranges;
      for (uint64_t k = rng.Below(3) + 1; k > 0; --k) {
        int w = static_cast<int>(rng.Below(3));
        uint64_t first = rng.Below(next[w] - 1) + 1;
        uint64_t last = std::min(next[w] - 1, first + rng.Below(rng.Chance(80) ? 3 : 40));
        ranges.push_back(DotRange{nodes[w], first, last});
      }
      REQUIRE(deferred.DeferDelete(ranges, &mark, check).ok());
      if (i + 1 == ops && round % 2 == 1) {
        deferred.DropDeferred(mark);  // the last op taken back
      } else {
        REQUIRE(one.ApplyDelete(ranges, nullptr, false).ok());
      }
    }
    CHECK(deferred.has_deferred());
    deferred.Settle();
    CHECK(!deferred.has_deferred());
    CHECK(!deferred.TakeMissingUnchecked());
    CHECK(deferred.ToString() == one.ToString());
    CHECK(Encode(deferred) == Encode(one));
    CHECK(deferred.core().CheckInvariants().empty());
  }
}

TEST_CASE("text: random edits match a plain string model", "[sequence]") {
  uint64_t seed = weft::testing::SeedFromEnv();
  if (seed == 0) seed = 42;
  INFO("seed " << seed);
  Rng rng(seed);
  Text t;
  std::u32string model;
  uint64_t seq = 1;
  for (int i = 0; i < 30000; ++i) {
    if (!model.empty() && rng.Chance(40)) {
      size_t pos = rng.Below(model.size());
      size_t len = std::min<size_t>(model.size() - pos, rng.Chance(90) ? 1 : rng.Below(50) + 1);
      Del(t, pos, len);
      model.erase(pos, len);
    } else {
      // Mostly typing near the previous position, like a person.
      size_t pos = rng.Below(model.size() + 1);
      std::u32string s;
      size_t n = rng.Chance(80) ? 1 : rng.Below(10) + 1;
      for (size_t k = 0; k < n; ++k) s.push_back(rng.Chance(90) ? U'a' + rng.Below(26) : U'😀');
      Ins(t, pos, EncodeUtf8(s), Dot{kA, seq});
      seq += s.size();
      model.insert(pos, s);
    }
    if (i % 5000 == 0) {
      REQUIRE(t.core().CheckInvariants() == "");
      REQUIRE(t.ToString() == EncodeUtf8(model));
    }
  }
  REQUIRE(t.core().CheckInvariants() == "");
  REQUIRE(t.ToString() == EncodeUtf8(model));
  // Spot-check reads against the model.
  for (int k = 0; k < 200; ++k) {
    size_t i = rng.Below(model.size());
    REQUIRE(*t.At(i) == model[i]);
    Dot id = *t.IdAt(i);
    REQUIRE(*t.IndexOf(id) == i);
  }
  // A copy is independent; the snapshot round-trips.
  Text copy = t;
  Ins(copy, 0, "!", Dot{kB, 1});
  REQUIRE(t.ToString() == EncodeUtf8(model));
  REQUIRE(copy.core().CheckInvariants() == "");
  std::string enc = Encode(t);
  Reader r(enc);
  auto loaded = Text::DecodeState(r);
  REQUIRE(loaded.ok());
  REQUIRE(loaded->ToString() == EncodeUtf8(model));
  REQUIRE(Encode(*loaded) == enc);
  // Deleting everything leaves tombstones only.
  Del(t, 0, t.size());
  REQUIRE(t.size() == 0);
  REQUIRE(t.ToString().empty());
  REQUIRE(t.core().CheckInvariants() == "");
}

TEST_CASE("text: state decoding rejects bad bytes without crashing", "[sequence][encoding]") {
  Text a;
  Ins(a, 0, "hello wörld 😀", Dot{kA, 1});
  Text b = a;
  Ins(b, 5, ",", Dot{kB, 1});
  Del(a, 0, 2);
  REQUIRE(a.Apply(Ins(b, 0, ">", Dot{kB, 2})).ok());
  std::string enc = Encode(a);
  {
    Reader r(enc);
    auto ok = Text::DecodeState(r);
    REQUIRE(ok.ok());
    REQUIRE(r.Finish("state").ok());
    CHECK(ok->ToString() == a.ToString());
  }
  // Every truncation fails.
  for (size_t n = 0; n < enc.size(); ++n) {
    Reader r(std::string_view(enc).substr(0, n));
    auto t = Text::DecodeState(r);
    CHECK((!t.ok() || !r.Finish("state").ok()));
  }
  // Bit flips: an error, or a state that is internally consistent.
  for (size_t i = 0; i < enc.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = enc;
      bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
      Reader r(bad);
      auto t = Text::DecodeState(r);
      if (t.ok()) {
        CHECK(t->core().CheckInvariants() == "");
        (void)t->ToString();
      }
    }
  }
  // Random bytes.
  Rng rng(99);
  for (int k = 0; k < 20000; ++k) {
    std::string junk(rng.Below(64), '\0');
    for (char& c : junk) c = static_cast<char>(rng.Below(256));
    if (rng.Chance(50) && !junk.empty()) junk[0] = 1;  // the right version, to get further
    Reader r(junk);
    auto t = Text::DecodeState(r);
    if (t.ok()) CHECK(t->core().CheckInvariants() == "");
  }
  // Hostile counts do not allocate: a huge run count with no bytes behind it.
  auto raw_block = [](Writer& w, std::string_view bytes) {
    w.U8(0);  // stored block
    w.Bytes(bytes);
  };
  Writer w;
  w.Varint(1);  // version
  w.Varint(1);  // one node
  w.Fixed64(5);
  w.Varint(1ull << 60);  // runs
  for (int c = 0; c < 4; ++c) raw_block(w, "");
  Reader r(w.data());
  CHECK(Text::DecodeState(r).status().code() == StatusCode::kCorruption);
  // A huge tombstone run is fine (no content, run-length encoded) but a huge visible one is not.
  auto one_run = [&](uint64_t header, uint64_t len) {
    Writer col_h, col_s, col_l, out;
    col_h.Varint(header);
    col_s.Zigzag(0);
    col_l.Varint(len);
    out.Varint(1);
    out.Varint(1);
    out.Fixed64(5);
    out.Varint(1);
    raw_block(out, col_h.data());
    raw_block(out, col_s.data());
    raw_block(out, col_l.data());
    raw_block(out, "");
    raw_block(out, "");  // text content
    return out.Take();
  };
  std::string tomb = one_run(1 | 2 | 4, kMaxSequenceRunLength);  // deleted, implicit origins
  Reader r2(tomb);
  auto huge = Text::DecodeState(r2);
  REQUIRE(huge.ok());
  CHECK(huge->size() == 0);
  std::string visible = one_run(2 | 4, kMaxSequenceRunLength);  // no content behind it
  Reader r3(visible);
  CHECK(Text::DecodeState(r3).status().code() == StatusCode::kCorruption);
  {
    // Two runs naming the same ids.
    Writer col_h, col_s, col_l, out;
    col_h.Varint(1 | 2 | 4);
    col_h.Varint(1 | 2 | 4);
    col_s.Zigzag(0);   // seq 1
    col_s.Zigzag(-2);  // seq 1 again (expected was 3)
    col_l.Varint(2);
    col_l.Varint(1);
    out.Varint(1);
    out.Varint(1);
    out.Fixed64(5);
    out.Varint(2);
    raw_block(out, col_h.data());
    raw_block(out, col_s.data());
    raw_block(out, col_l.data());
    raw_block(out, "");
    raw_block(out, "");
    Reader rd(out.data());
    auto dup = Text::DecodeState(rd);
    CHECK(dup.status().code() == StatusCode::kCorruption);
    CHECK(dup.status().message().find("duplicate") != std::string::npos);
  }
  std::string too_long = one_run(1 | 2 | 4, kMaxSequenceRunLength + 1);
  Reader r4(too_long);
  CHECK(Text::DecodeState(r4).status().code() == StatusCode::kCorruption);
  CHECK(huge->core().total_items() == kMaxSequenceRunLength);
}

TEST_CASE("text: large (Huffman-coded) state rejects damage without crashing",
          "[sequence][encoding]") {
  Rng rng(5);
  Text t;
  uint64_t seq = 1;
  for (int i = 0; i < 3000; ++i) {
    if (t.size() > 10 && rng.Chance(30)) {
      Del(t, rng.Below(t.size() - 5), rng.Below(5) + 1);
    } else {
      std::string s = rng.Chance(10) ? "é😀" : std::string(1, static_cast<char>('a' + rng.Below(8)));
      Ins(t, rng.Below(t.size() + 1), s, Dot{rng.Chance(50) ? kA : kB, seq});
      seq += CountCodePoints(s);
    }
  }
  std::string enc = Encode(t);
  {
    Reader r(enc);
    auto back = Text::DecodeState(r);
    REQUIRE(back.ok());
    REQUIRE(back->ToString() == t.ToString());
  }
  for (int k = 0; k < 3000; ++k) {
    std::string bad = enc;
    if (rng.Chance(30)) {
      bad.resize(rng.Below(enc.size()));
    } else {
      size_t i = rng.Below(enc.size());
      bad[i] = static_cast<char>(bad[i] ^ (1 << rng.Below(8)));
    }
    Reader r(bad);
    auto back = Text::DecodeState(r);
    if (back.ok()) CHECK(back->core().CheckInvariants() == "");
  }
}

TEST_CASE("text: ops encode and decode", "[sequence][encoding]") {
  Text t;
  std::vector<TextOp> ops;
  ops.push_back(Ins(t, 0, "héllo 😀", Dot{kA, 1}));
  ops.push_back(Ins(t, 3, "XY", Dot{kA, 20}));
  ops.emplace_back(std::in_place_type<DeleteOp>, Del(t, 1, 4));
  for (const TextOp& op : ops) {
    Writer w;
    Text::EncodeOp(w, op);
    Reader r(w.data());
    auto back = Text::DecodeOp(r);
    REQUIRE(back.ok());
    CHECK(r.Finish("op").ok());
    CHECK(*back == op);
    for (size_t n = 0; n < w.size(); ++n) {
      Reader tr(std::string_view(w.data()).substr(0, n));
      auto cut = Text::DecodeOp(tr);
      CHECK((!cut.ok() || !tr.Finish("op").ok()));
    }
  }
  Writer bad;
  Text::EncodeOp(bad, TextInsertOp{Dot{kA, 1}, Dot{}, Dot{}, "\xff"});
  Reader r(bad.data());
  CHECK(Text::DecodeOp(r).status().code() == StatusCode::kCorruption);
  Reader r2("\x07");
  CHECK(!Text::DecodeOp(r2).ok());
}

namespace {
struct Item {
  std::string name;
  int64_t n = 0;
  friend bool operator==(const Item&, const Item&) = default;
};
void EncodeItem(Writer& w, const Item& it) {
  w.Bytes(it.name);
  w.Zigzag(it.n);
}
weft::Result<Item> DecodeItem(Reader& r) {
  Item it;
  it.name = std::string(r.Bytes());
  it.n = r.Zigzag();
  if (!r.ok()) return r.status("item");
  return it;
}
}  // namespace

TEST_CASE("list: values, ops, undo and encoding", "[sequence][list]") {
  List<Item> a;
  auto i1 = a.LocalInsert(0, {{"x", 1}, {"y", 2}, {"z", 3}}, Dot{kA, 1});
  REQUIRE(i1.ok());
  List<Item> b;
  REQUIRE(b.Apply(*i1).ok());
  auto i2 = a.LocalInsert(1, {{"a", -5}}, Dot{kA, 4});
  auto i3 = b.LocalInsert(1, {{"b", 7}}, Dot{kB, 1});
  auto d1 = b.LocalDelete(2, 1);  // "y"
  REQUIRE((i2.ok() && i3.ok() && d1.ok()));
  REQUIRE(a.Apply(*i3).ok());
  REQUIRE(a.Apply(*d1).ok());
  REQUIRE(b.Apply(*i2).ok());
  CHECK(a.Values() == b.Values());
  CHECK(a.size() == 4);
  CHECK(a.At(0)->name == "x");
  CHECK(a.At(4).status().code() == StatusCode::kOutOfRange);
  CHECK(a.LocalInsert(9, {{"q", 0}}, Dot{kA, 9}).status().code() == StatusCode::kOutOfRange);
  CHECK(a.LocalInsert(0, {}, Dot{kA, 9}).status().code() == StatusCode::kInvalidArgument);

  Writer wa, wb;
  a.EncodeState(wa, EncodeItem);
  b.EncodeState(wb, EncodeItem);
  CHECK(wa.data() == wb.data());
  Reader r(wa.data());
  auto loaded = List<Item>::DecodeState(r, DecodeItem);
  REQUIRE(loaded.ok());
  CHECK(loaded->Values() == a.Values());

  // Undo of a local delete and insert.
  auto d2 = a.LocalDelete(0, 2);
  REQUIRE(d2.ok());
  auto i4 = a.LocalInsert(1, {{"new", 0}}, Dot{kA, 10});
  REQUIRE(i4.ok());
  a.UndoInsert(i4->id, i4->values.size());
  a.UndoDelete(*d2);
  Writer wc;
  a.EncodeState(wc, EncodeItem);
  CHECK(wc.data() == wa.data());

  // Op encoding.
  for (const ListOp<Item>& op : std::vector<ListOp<Item>>{*i1, *d1}) {
    Writer w;
    List<Item>::EncodeOp(w, op, EncodeItem);
    Reader rr(w.data());
    auto back = List<Item>::DecodeOp(rr, DecodeItem);
    REQUIRE(back.ok());
    CHECK(*back == op);
  }
}
