// Shared by the fuzz targets and the seed generator: deterministic documents to fuzz against, the
// frame-sequence format of the relay_handshake target, and the session ops of relay_session.
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

// relay_session input: a flags byte (bit 0: the device's Hello asks for all documents), then
// frames as above (SplitFrames), each an op byte and its operands. The op byte's low four bits
// pick the op; kEndBurst ends the burst after it (the frames gathered so far reach the relay
// together, as frames read together do); kNoDrain then leaves what the relay sent unwritten (a
// slow device: the relay finds its send queue full). Operands a frame lacks read as zero.
namespace session {
enum Op : uint8_t {
  kRaw = 0,         // the rest is a frame, sent as it is
  kHave = 1,        // doc, version pick
  kChanges = 2,     // doc, flags (kPath...), then blobs as frames: one byte picks a Prepared change
  kAck = 3,         // doc, version pick
  kPresence = 4,    // doc, node pick (0 the device, 1 the relay, 2 the owner, 3 none; +16: looped)
  kError = 5,       // doc (0xFF: none), code (+128: fatal), message
  kSnapshot = 6,    // doc, pick (low 4 bits: a PreparedSnapshot, else the rest; high: 1-3 chunks)
  kReplay = 7,      // the device's Hello again (operand bit 0: its Auth)
  kTick = 8,        // the relay's anti-entropy tick
  kTimer = 9,       // operand milliseconds pass on the link's clock
  kOwnerStep = 10,  // another session stores the owner's next change (grants, revokes, ...)
  kOtherPresence = 11,  // another session's presence in doc
  kClose = 12,          // the device closes the connection; later frames must be ignored
  kFlush = 13,          // ends the burst
};
inline constexpr uint8_t kEndBurst = 0x80, kNoDrain = 0x40;

// Documents at the relay, by the index an operand names: the owner's, where the device has no
// role, is a reader and a writer; a public one; one the device creates; one nobody holds.
enum Doc : uint8_t { kPrivate, kShared, kTeam, kBoard, kMine, kNew, kDocCount };
inline constexpr const char* kDocNames[kDocCount] = {"private", "shared", "team",
                                                     "board",   "mine",   "new"};
// Version operands: the relay's version at the start, its version now, one of its earlier
// versions, the device's, or one claiming changes nobody has. Plus a state digest, wrong or right.
enum Version : uint8_t {
  kEmpty,
  kPristine,
  kCurrent,
  kOlder,
  kDeviceVersion,
  kAhead,
  kVersionCount
};
inline constexpr uint8_t kWrongDigest = 0x40, kRightDigest = 0x80;
// Changes flags: the batch's path names the device, or the relay (a loop); one route per change;
// the encrypted flag; a remaining count.
inline constexpr uint8_t kPathDevice = 1, kPathLoop = 2, kRoutes = 4, kEncrypted = 8,
                         kRemaining = 16;

// Changes the target prepares, by the one-byte blob that names them.
enum Prepared : uint8_t {
  kTeamWrite,          // the device, a writer of "team" (binds its author, then writes)
  kTeamText,           // ... and its next two changes
  kTeamCounter,        //
  kMineCreate,         // the device creates "mine" (owned by its key)
  kMineGrant,          // and makes the owner a reader of it
  kBoardWrite,         // the device writes the public document
  kSharedWrite,        // the device writes "shared", where it is a reader
  kSharedBind,         // the device binds an author in "shared", without writing
  kPrivateWrite,       // the device writes "private", where it has no role
  kTeamForgedAuthor,   // the device sends a change under the owner's author
  kTeamSelfAdmin,      // the device (writer) grants itself admin
  kPrivateOwnersNext,  // the owner's next change of "private", forwarded by the device
  kTeamBadBinding,     // an author bound to the owner's key, signed by the device
  kTeamFuture,         // a change stamped a day ahead of the relay's clock
  kPreparedCount,
};
// Snapshots the target prepares: forged ones of the owner's documents (public, claiming the
// owner's author, with versions past the relay's), and the device's own of what it holds.
enum PreparedSnapshot : uint8_t {
  kForgedShared,
  kDeviceTeam,
  kDeviceMine,
  kDeviceBoard,
  kForgedPrivate,
  kSnapshotCount,
};
}  // namespace session

}  // namespace weft::fuzz
