// Shared by the fuzz targets and the seed generator: deterministic documents to fuzz against, and
// the frame-sequence format of the relay_handshake target.
//
// Everything here is deterministic (fixed node IDs and times), so that an input found by one run
// reproduces the same behaviour in the replay binaries that `make test` runs.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "weft/crdt/document.h"

namespace weft::fuzz {

inline constexpr uint64_t kBaseTime = 1'700'000'000'000;  // ms since the epoch
inline constexpr crdt::NodeId kAuthorA{0xA1};
inline constexpr crdt::NodeId kAuthorB{0xB2};
inline constexpr crdt::NodeId kAuthorC{0xC3};  // the author of the seed changes
inline constexpr crdt::NodeId kSelf{0x5E1F};

// A property of the code under test failed: report and abort, so that libFuzzer keeps the input.
[[noreturn]] inline void Violated(const char* what) {
  std::fprintf(stderr, "fuzz property violated: %s\n", what);
  std::abort();
}
inline void Expect(bool ok, const char* what) {
  if (!ok) Violated(what);
}

// A document with one object of every kind at the root, written by two authors (A, then B after
// merging A), so that fuzzed changes have objects and sequence elements to refer to.
inline crdt::Document BaseDocument() {
  using crdt::ObjectKind;
  crdt::Document a(kAuthorA);
  {
    auto t = a.Begin(kBaseTime);
    auto map = t.PutObject(crdt::kRoot, "map", ObjectKind::kMap);
    auto reg = t.PutObject(crdt::kRoot, "reg", ObjectKind::kRegister);
    auto lww = t.PutObject(crdt::kRoot, "lww", ObjectKind::kLwwRegister);
    auto counter = t.PutObject(crdt::kRoot, "counter", ObjectKind::kCounter);
    auto set = t.PutObject(crdt::kRoot, "set", ObjectKind::kSet);
    auto list = t.PutObject(crdt::kRoot, "list", ObjectKind::kList);
    auto text = t.PutObject(crdt::kRoot, "text", ObjectKind::kText);
    Expect(map.ok() && reg.ok() && lww.ok() && counter.ok() && set.ok() && list.ok() && text.ok(),
           "base document objects");
    Expect(t.Put(*map, "k", crdt::Scalar(int64_t{1})).ok(), "base put");
    Expect(t.SetRegister(*reg, crdt::Scalar("r")).ok(), "base register");
    Expect(t.SetRegister(*lww, crdt::Scalar(2.5)).ok(), "base lww");
    Expect(t.Increment(*counter, 7).ok(), "base counter");
    Expect(t.SetAdd(*set, crdt::Scalar("x")).ok(), "base set");
    Expect(t.ListInsert(*list, 0, {crdt::Scalar(true), crdt::Scalar("two")}).ok(), "base list");
    auto inner = t.ListInsertObject(*list, 1, ObjectKind::kMap);
    Expect(inner.ok(), "base list object");
    Expect(t.TextInsert(*text, 0, "hello wörld").ok(), "base text");
    t.Commit();
  }
  crdt::Document b(kAuthorB);
  for (const crdt::Change& c : a.history()) Expect(b.ApplyChange(c).ok(), "base merge");
  {
    auto t = b.Begin(kBaseTime + 1000);
    auto text = b.Get(crdt::kRoot, "text");
    Expect(text.ok() && text->values.size() == 1, "base text read");
    Expect(t.TextDelete(text->values[0].value.object().id, 2, 3).ok(), "base text delete");
    Expect(t.TextInsert(text->values[0].value.object().id, 2, "y").ok(), "base text insert");
    Expect(t.Put(crdt::kRoot, "b", crdt::Scalar("from b")).ok(), "base put b");
    t.Commit();
  }
  return b;
}

// Keys of the access_ops fixtures (any 32 bytes: the CRDT core stores binding proofs and never
// checks them; the SDK does).
inline crdt::Principal FixtureKey(char c) {
  return crdt::Principal(crdt::kPrincipalBytes, c);
}

// An owned document: kAuthorA owns it (key 'a') and grants kAuthorB (key 'b') admin and
// kAuthorC (key 'c') writer; each has written once. Access ops and data ops to fuzz against.
inline crdt::Document OwnedDocument() {
  crdt::Document a(kAuthorA);
  {
    auto t = a.Begin(kBaseTime);
    Expect(t.CreateAccess(FixtureKey('a')).ok(), "owned: create");
    Expect(t.Bind(FixtureKey('a'), "proof-a").ok(), "owned: bind a");
    Expect(t.Grant(FixtureKey('b'), crdt::Role::kAdmin).ok(), "owned: grant b");
    Expect(t.Grant(FixtureKey('c'), crdt::Role::kWriter).ok(), "owned: grant c");
    Expect(t.Put(crdt::kRoot, "k", crdt::Scalar("a")).ok(), "owned: put a");
    t.Commit();
  }
  for (auto [node, key] : {std::pair{kAuthorB, 'b'}, std::pair{kAuthorC, 'c'}}) {
    crdt::Document d(node);
    for (const crdt::Change& c : a.history()) Expect(d.ApplyChange(c).ok(), "owned: merge");
    auto t = d.Begin(kBaseTime + 1000);
    Expect(t.Bind(FixtureKey(key), "proof").ok(), "owned: bind");
    Expect(t.Put(crdt::kRoot, "k", crdt::Scalar(std::string(1, key))).ok(), "owned: put");
    auto c = t.Commit();
    Expect(c.has_value() && a.ApplyChange(*c).ok(), "owned: merge back");
  }
  return a;
}

// relay_handshake input: a sequence of frames, each a 16-bit little-endian length then the bytes.
inline std::vector<std::string_view> SplitFrames(std::string_view in) {
  std::vector<std::string_view> out;
  while (in.size() >= 2) {
    size_t n =
        static_cast<uint8_t>(in[0]) | (static_cast<size_t>(static_cast<uint8_t>(in[1])) << 8);
    in.remove_prefix(2);
    n = std::min(n, in.size());
    out.push_back(in.substr(0, n));
    in.remove_prefix(n);
  }
  return out;
}
inline std::string JoinFrames(const std::vector<std::string>& frames) {
  std::string out;
  for (const std::string& f : frames) {
    size_t n = std::min<size_t>(f.size(), 0xFFFF);
    out.push_back(static_cast<char>(n & 0xFF));
    out.push_back(static_cast<char>(n >> 8));
    out.append(f, 0, n);
  }
  return out;
}

}  // namespace weft::fuzz
