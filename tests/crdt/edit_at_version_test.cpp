// Edits made at an earlier version (Document::BeginAt): one document replays what several
// replicas did concurrently, each transaction at the version its replica had, and must make
// exactly the changes those replicas made.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "random.h"
#include "weft/crdt/document.h"

using namespace weft::crdt;
using weft::StatusCode;
using weft::testing::Rng;

namespace {

constexpr uint64_t kNow = 1'700'000'000'000;

struct TextEdit {
  size_t pos = 0;
  size_t del = 0;
  std::string insert;
};

// A transaction one replica made: where it was made, its edits, and the change it gave.
struct Recorded {
  NodeId author;
  VersionVector at;
  std::vector<TextEdit> edits;
  Change change;
};

std::string RandomText(Rng& rng) {
  static const char* kPieces[] = {"a", "bc", "def", "\xc3\xa9", "xyz12", " "};
  return kPieces[rng.Below(6)];
}

void ApplyEdits(Transaction& t, ObjectId text, const std::vector<TextEdit>& edits) {
  for (const TextEdit& e : edits) {
    if (e.del) REQUIRE(t.TextDelete(text, e.pos, e.del).ok());
    if (!e.insert.empty()) REQUIRE(t.TextInsert(text, e.pos, e.insert).ok());
  }
}

void SyncAll(const Document& from, Document& to) {
  auto changes = from.ChangesSince(to.version());
  REQUIRE(changes.ok());
  for (const Change& c : *changes) REQUIRE(to.ApplyChange(c).ok());
}

// Several replicas edit one text, often concurrently (and often deleting the same characters),
// and sync now and then. Returns every transaction in the order they were made.
std::vector<Recorded> RunReplicas(uint64_t seed, ObjectId* text_out, Change* genesis_out) {
  Rng rng(seed);
  DocumentOptions opts;
  Document genesis(NodeId{100}, opts);
  auto g = genesis.Begin(kNow);
  ObjectId text = *g.PutObject(kRoot, "text", ObjectKind::kText);
  REQUIRE(g.TextInsert(text, 0, "the quick brown fox").ok());
  *genesis_out = *g.Commit();
  *text_out = text;
  std::vector<Document> replicas;
  for (uint64_t i = 0; i < 4; ++i) {
    replicas.emplace_back(NodeId{i + 1}, opts);
    REQUIRE(replicas.back().ApplyChange(*genesis_out).ok());
  }
  std::vector<Recorded> out;
  uint64_t now = kNow;
  for (int step = 0; step < 120; ++step) {
    if (rng.Chance(25)) {
      size_t a = rng.Below(replicas.size()), b = rng.Below(replicas.size());
      if (a != b) SyncAll(replicas[a], replicas[b]);
      continue;
    }
    Document& d = replicas[rng.Below(replicas.size())];
    Recorded r;
    r.author = d.self();
    r.at = d.version();
    auto t = d.Begin(++now);
    size_t n = rng.Range(1, 3);
    for (size_t k = 0; k < n; ++k) {
      size_t size = *d.SequenceSize(text);
      TextEdit e;
      e.pos = rng.Below(size + 1);
      if (size > e.pos && rng.Chance(50)) e.del = rng.Range(1, std::min<size_t>(4, size - e.pos));
      if (e.del == 0 || rng.Chance(50)) e.insert = RandomText(rng);
      ApplyEdits(t, text, {e});
      r.edits.push_back(e);
    }
    r.change = *t.Commit();
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace

TEST_CASE("edits at the versions replicas had make exactly the changes the replicas made",
          "[document][text][edit-at]") {
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    INFO("seed " << seed);
    ObjectId text;
    Change genesis;
    std::vector<Recorded> recorded = RunReplicas(seed, &text, &genesis);
    Rng rng(seed * 7919);
    DocumentOptions opts;
    Document one(NodeId{50}, opts);
    REQUIRE(one.ApplyChange(genesis).ok());
    Document fresh(NodeId{51}, opts);
    REQUIRE(fresh.ApplyChange(genesis).ok());
    for (size_t i = 0; i < recorded.size(); ++i) {
      const Recorded& r = recorded[i];
      REQUIRE(fresh.ApplyChange(r.change).ok());
      // With every other seed, the first half arrives as remote changes: the views are built
      // from the history at the first edit at an earlier version.
      if (rng.Chance(30) || (seed % 2 == 0 && i < recorded.size() / 2)) {
        // Some changes arrive as remote changes, while the texts' view may be elsewhere.
        weft::Status s = one.ApplyChange(r.change);
        INFO(s.ToString());
        REQUIRE(s.ok());
      } else {
        auto t = one.BeginAt(r.at, r.change.time.wall_ms, r.author);
        INFO(t.status().ToString());
        REQUIRE(t.ok());
        ApplyEdits(*t, text, r.edits);
        std::optional<Change> made = t->Commit();
        REQUIRE(made);
        CHECK(made->author == r.change.author);
        CHECK(made->start_seq == r.change.start_seq);
        CHECK(made->ops == r.change.ops);
        CHECK(made->lamport == r.change.lamport);
        // What it depends on names the same version.
        CHECK(!r.at.FirstMissing(made->deps));
        // A replica that holds exactly `at` accepts it.
        Document at_replica(NodeId{52}, opts);
        for (const Change& c : fresh.history()) {
          if (r.at.Get(c.author) >= c.end_seq()) REQUIRE(at_replica.ApplyChange(c).ok());
        }
        CHECK(at_replica.ApplyChange(*made).ok());
      }
      auto core = one.TextObject(text);
      REQUIRE(core.ok());
      REQUIRE((*core)->core().CheckInvariants() == "");
    }
    CHECK(one.CanonicalState() == fresh.CanonicalState());
    CHECK(*one.ReadText(text) == *fresh.ReadText(text));
    // Local edits at the current version still work after the view moved.
    auto t = one.Begin(kNow + 10'000);
    REQUIRE(t.TextInsert(text, 0, ">").ok());
    t.Commit();
    CHECK(one.ReadText(text)->substr(0, 1) == ">");
    REQUIRE(one.TextObject(text).ok());
    CHECK((*one.TextObject(text))->core().CheckInvariants() == "");
  }
}

TEST_CASE("an edit at an earlier version is refused when the version is not usable",
          "[document][text][edit-at]") {
  DocumentOptions opts;
  Document a(NodeId{1}, opts), b(NodeId{2}, opts);
  auto t0 = a.Begin(kNow);
  ObjectId text = *t0.PutObject(kRoot, "text", ObjectKind::kText);
  REQUIRE(t0.TextInsert(text, 0, "hello").ok());
  Change first = *t0.Commit();  // seqs 1..6
  REQUIRE(b.ApplyChange(first).ok());
  auto tb = b.Begin(kNow + 1);
  REQUIRE(tb.TextInsert(text, 5, " world").ok());
  Change second = *tb.Commit();  // depends on a:6
  REQUIRE(a.ApplyChange(second).ok());
  const std::string before = a.CanonicalState();

  SECTION("a version this document does not hold") {
    auto t = a.BeginAt(VersionVector{{NodeId{1}, 6}, {NodeId{3}, 1}}, kNow + 2);
    CHECK(t.status().code() == StatusCode::kInvalidArgument);
  }
  SECTION("a version that splits a change") {
    auto t = a.BeginAt(VersionVector{{NodeId{1}, 3}}, kNow + 2, NodeId{3});
    CHECK(t.status().code() == StatusCode::kInvalidArgument);
  }
  SECTION("a version without what its changes depend on") {
    auto t = a.BeginAt(VersionVector{{NodeId{2}, 6}}, kNow + 2, NodeId{3});
    CHECK(t.status().code() == StatusCode::kInvalidArgument);
  }
  SECTION("a version that lacks changes of the author") {
    // b's change is not in {a:6}, and b made it: b's next change must follow it.
    auto t = a.BeginAt(VersionVector{{NodeId{1}, 6}}, kNow + 2, NodeId{2});
    CHECK(t.status().code() == StatusCode::kInvalidArgument);
  }
  SECTION("a document that keeps no history") {
    DocumentOptions no_history;
    no_history.keep_history = false;
    Document c(NodeId{3}, no_history);
    REQUIRE(c.ApplyChange(first).ok());
    REQUIRE(c.ApplyChange(second).ok());
    auto t = c.BeginAt(VersionVector{{NodeId{1}, 6}}, kNow + 2);
    CHECK(t.status().code() == StatusCode::kInvalidArgument);
  }
  SECTION("ops other than text edits, and positions past the end of that version") {
    auto t = a.BeginAt(VersionVector{{NodeId{1}, 6}}, kNow + 2, NodeId{3});
    REQUIRE(t.ok());
    CHECK(t->Put(kRoot, "k", Scalar(int64_t{1})).code() == StatusCode::kInvalidArgument);
    CHECK(t->PutObject(kRoot, "m", ObjectKind::kMap).status().code() ==
          StatusCode::kInvalidArgument);
    // "hello" had 5 code points then, though the text has 11 now.
    CHECK(t->TextInsert(text, 6, "!").code() == StatusCode::kOutOfRange);
    CHECK(t->TextDelete(text, 3, 3).code() == StatusCode::kOutOfRange);
    REQUIRE(t->TextInsert(text, 5, "!").ok());
    t->Rollback();
    CHECK(a.CanonicalState() == before);
  }
  CHECK(a.CanonicalState() == before);
}

TEST_CASE("an edit at an earlier version merges as a concurrent edit would",
          "[document][text][edit-at]") {
  DocumentOptions opts;
  Document a(NodeId{1}, opts);
  auto t0 = a.Begin(kNow);
  ObjectId text = *t0.PutObject(kRoot, "text", ObjectKind::kText);
  REQUIRE(t0.TextInsert(text, 0, "abc").ok());
  t0.Commit();
  VersionVector old = a.version();
  auto t1 = a.Begin(kNow + 1);
  REQUIRE(t1.TextDelete(text, 1, 1).ok());    // "ac"
  REQUIRE(t1.TextInsert(text, 0, "X").ok());  // "Xac"
  t1.Commit();
  // At the old version "abc": delete "b" (already deleted since) and append "d".
  auto t = a.BeginAt(old, kNow + 2, NodeId{2});
  REQUIRE(t.ok());
  REQUIRE(t->TextDelete(text, 1, 1).ok());
  REQUIRE(t->TextInsert(text, 2, "d").ok());  // "acd" at that version
  // The patches say what changed in the current text: "d" went in at 3; "b" was gone already.
  REQUIRE(t->patches().size() == 1);
  CHECK(t->patches()[0].type == Patch::Type::kInsert);
  CHECK(t->patches()[0].index == 3);
  std::optional<Change> c = t->Commit();
  REQUIRE(c);
  CHECK(*a.ReadText(text) == "Xacd");
  // Its dependencies are the old version, not what came after.
  CHECK(c->deps == old);
  // The document's heads now hold both branches.
  CHECK(a.heads().Get(NodeId{1}) == a.version().Get(NodeId{1}));
  CHECK(a.heads().Get(NodeId{2}) == c->end_seq());
}
