// Text and list values inside documents: transactions, changes, patches, anchors, snapshots.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "random.h"
#include "weft/crdt/document.h"
#include "weft/crdt/utf.h"

using namespace weft::crdt;
using weft::StatusCode;
using weft::testing::Rng;

namespace {

constexpr uint64_t kNow = 1'700'000'000'000;

void Sync(const Document& from, Document& to, std::vector<Patch>* patches = nullptr) {
  auto changes = from.ChangesSince(to.version());
  REQUIRE(changes.ok());
  ApplyOptions opts;
  opts.patches = patches;
  for (const Change& c : *changes) {
    auto decoded = DecodeChange(EncodeChange(c));
    REQUIRE(decoded.ok());
    weft::Status s = to.ApplyChange(*decoded, opts);
    INFO(s.ToString());
    REQUIRE(s.ok());
  }
}

ObjectId MakeText(Document& d, const char* key = "text") {
  auto t = d.Begin(kNow);
  ObjectId id = *t.PutObject(kRoot, key, ObjectKind::kText);
  t.Commit();
  return id;
}

// Applies text patches to a code-point string, as an editor view would.
void ApplyPatches(std::u32string& view, const std::vector<Patch>& patches) {
  for (const Patch& p : patches) {
    if (p.type == Patch::Type::kInsert) {
      view.insert(p.index, *DecodeUtf8(p.text));
    } else if (p.type == Patch::Type::kDelete) {
      view.erase(p.index, p.length);
    }
  }
}

}  // namespace

TEST_CASE("text in a document: insert, delete, read, errors", "[document][text]") {
  Document d(NodeId{1});
  ObjectId text = MakeText(d);
  auto t = d.Begin(kNow);
  REQUIRE(t.TextInsert(text, 0, "héllo wörld").ok());
  REQUIRE(t.TextDelete(text, 5, 6).ok());
  REQUIRE(t.TextInsert(text, 5, " 😀").ok());
  CHECK(*d.ReadText(text) == "héllo 😀");
  CHECK(t.TextInsert(text, 99, "x").code() == StatusCode::kOutOfRange);
  CHECK(t.TextDelete(text, 3, 99).code() == StatusCode::kOutOfRange);
  CHECK(t.TextInsert(text, 0, "\xff").code() == StatusCode::kInvalidArgument);
  CHECK(t.TextInsert(text, 0, "").code() == StatusCode::kInvalidArgument);
  CHECK(t.TextInsert(kRoot, 0, "x").code() == StatusCode::kTypeMismatch);
  CHECK(*d.ReadText(text) == "héllo 😀");
  auto c = t.Commit();
  REQUIRE(c);
  // A code point takes one seq: 11 + 1 (delete) + 2.
  CHECK(c->span() == 14);
  Document e(NodeId{2});
  Sync(d, e);
  CHECK(*e.ReadText(text) == "héllo 😀");
  CHECK(e.CanonicalState() == d.CanonicalState());
}

TEST_CASE("a rolled-back transaction undoes text and list edits exactly", "[document][text]") {
  Document d(NodeId{1});
  ObjectId text, list, item;
  {
    auto t = d.Begin(kNow);
    text = *t.PutObject(kRoot, "text", ObjectKind::kText);
    list = *t.PutObject(kRoot, "list", ObjectKind::kList);
    REQUIRE(t.TextInsert(text, 0, "abcdef").ok());
    REQUIRE(t.ListInsert(list, 0, {1, 2, 3}).ok());
    item = *t.ListInsertObject(list, 1, ObjectKind::kMap);
    REQUIRE(t.Put(item, "done", false).ok());
    t.Commit();
  }
  std::string before = d.CanonicalState();
  {
    auto t = d.Begin(kNow + 1);
    REQUIRE(t.TextInsert(text, 3, "XYZ").ok());
    REQUIRE(t.TextDelete(text, 0, 5).ok());
    REQUIRE(t.TextInsert(text, 1, "é").ok());
    REQUIRE(t.ListDelete(list, 0, 3).ok());  // removes the nested map too
    CHECK_FALSE(d.Exists(item));
    REQUIRE(t.ListInsertObject(list, 0, ObjectKind::kCounter).ok());
    REQUIRE(t.ListInsert(list, 1, {"x"}).ok());
    t.Rollback();
  }
  CHECK(d.CanonicalState() == before);
  CHECK(d.Exists(item));
  CHECK(*d.ReadText(text) == "abcdef");
}

TEST_CASE("a change may edit items it inserted itself", "[document][text]") {
  Document a(NodeId{1}), b(NodeId{2});
  ObjectId text = MakeText(a);
  {
    auto t = a.Begin(kNow);
    REQUIRE(t.TextInsert(text, 0, "hello").ok());
    REQUIRE(t.TextDelete(text, 1, 3).ok());
    REQUIRE(t.TextInsert(text, 1, "ELL").ok());
    t.Commit();
  }
  Sync(a, b);
  CHECK(*b.ReadText(text) == "hELLo");
  CHECK(a.CanonicalState() == b.CanonicalState());
}

TEST_CASE("concurrent runs typed at one place do not interleave", "[document][text]") {
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    Rng rng(seed);
    Document a(NodeId{1 + rng.Below(5)}), b(NodeId{10 + rng.Below(5)});
    ObjectId text = MakeText(a);
    {
      auto t = a.Begin(kNow);
      REQUIRE(t.TextInsert(text, 0, "[]").ok());
      t.Commit();
    }
    Sync(a, b);
    std::string ra, rb;
    for (int k = 0; k < 6; ++k) {
      ra += static_cast<char>('a' + rng.Below(3));
      rb += static_cast<char>('X' + rng.Below(3));
    }
    // Each types its run one character at a time, as a person would.
    for (size_t k = 0; k < ra.size(); ++k) {
      auto t = a.Begin(kNow);
      REQUIRE(t.TextInsert(text, 1 + k, ra.substr(k, 1)).ok());
      t.Commit();
      auto u = b.Begin(kNow);
      REQUIRE(u.TextInsert(text, 1 + k, rb.substr(k, 1)).ok());
      u.Commit();
    }
    Sync(a, b);
    Sync(b, a);
    std::string merged = *a.ReadText(text);
    INFO("seed " << seed << ": " << merged);
    CHECK(merged == *b.ReadText(text));
    CHECK((merged == "[" + ra + rb + "]" || merged == "[" + rb + ra + "]"));
  }
}

TEST_CASE("patches of remote text changes rebuild the text in a view", "[document][patches]") {
  for (uint64_t seed = 1; seed <= 60; ++seed) {
    Rng rng(seed);
    Document a(NodeId{1}), b(NodeId{2}), view_owner(NodeId{3});
    ObjectId text = MakeText(a);
    Sync(a, b);
    std::u32string view;
    std::vector<Patch> patches;
    Sync(a, view_owner, &patches);
    for (int round = 0; round < 12; ++round) {
      for (Document* d : {&a, &b}) {
        auto t = d->Begin(kNow);
        for (int k = 0; k < 3; ++k) {
          size_t size = *d->SequenceSize(text);
          if (size > 2 && rng.Chance(40)) {
            size_t pos = rng.Below(size - 1);
            REQUIRE(t.TextDelete(text, pos, 1 + rng.Below(size - pos)).ok());
          } else {
            REQUIRE(t.TextInsert(text, rng.Below(size + 1), rng.Chance(50) ? "ab" : "ü😀").ok());
          }
        }
        t.Commit();
      }
      if (rng.Chance(50)) Sync(b, a);
      patches.clear();
      Sync(a, view_owner, &patches);
      Sync(b, view_owner, &patches);
      ApplyPatches(view, patches);
      INFO("seed " << seed << " round " << round);
      REQUIRE(EncodeUtf8(view) == *view_owner.ReadText(text));
    }
  }
}

TEST_CASE("anchors stay with their character under concurrent edits", "[document][text]") {
  Document a(NodeId{1}), b(NodeId{2});
  ObjectId text = MakeText(a);
  {
    auto t = a.Begin(kNow);
    REQUIRE(t.TextInsert(text, 0, "hello world").ok());
    t.Commit();
  }
  Sync(a, b);
  Anchor cursor = *b.AnchorAt(text, 6, Bias::kRight);  // before "world"
  {
    auto t = a.Begin(kNow);
    REQUIRE(t.TextInsert(text, 0, ">> ").ok());
    REQUIRE(t.TextDelete(text, 3, 2).ok());  // "llo world"
    t.Commit();
  }
  Sync(a, b);
  CHECK(*b.ReadText(text) == ">> llo world");
  CHECK(*b.IndexOfAnchor(text, cursor) == 7);
}

TEST_CASE("lists of nested maps: a deleted item takes its map and later edits in it",
          "[document][list]") {
  Document a(NodeId{1}), b(NodeId{2});
  ObjectId list, item;
  {
    auto t = a.Begin(kNow);
    list = *t.PutObject(kRoot, "todo", ObjectKind::kList);
    item = *t.ListInsertObject(list, 0, ObjectKind::kMap);
    REQUIRE(t.Put(item, "title", "milk").ok());
    t.Commit();
  }
  Sync(a, b);
  CHECK(b.ToJson() == R"({"todo":[{"title":"milk"}]})");
  {
    auto t = a.Begin(kNow);
    REQUIRE(t.ListDelete(list, 0, 1).ok());
    t.Commit();
  }
  {
    auto t = b.Begin(kNow);
    REQUIRE(t.Put(item, "done", true).ok());
    REQUIRE(t.ListInsert(list, 1, {"eggs"}).ok());
    t.Commit();
  }
  Sync(a, b);
  Sync(b, a);
  CHECK(a.ToJson() == R"({"todo":["eggs"]})");
  CHECK(a.CanonicalState() == b.CanonicalState());
  CHECK_FALSE(b.Exists(item));
}

TEST_CASE("snapshots carry texts and lists with their history of items", "[document][snapshot]") {
  Document a(NodeId{1}), b(NodeId{2});
  ObjectId text = MakeText(a), list;
  {
    auto t = a.Begin(kNow);
    REQUIRE(t.TextInsert(text, 0, "snapshot me").ok());
    REQUIRE(t.TextDelete(text, 0, 4).ok());
    list = *t.PutObject(kRoot, "list", ObjectKind::kList);
    ObjectId m = *t.ListInsertObject(list, 0, ObjectKind::kMap);
    REQUIRE(t.Put(m, "k", 1).ok());
    REQUIRE(t.ListInsert(list, 1, {1.5, "s"}).ok());
    t.Commit();
  }
  Sync(a, b);
  auto copy = Document::DecodeSnapshot(a.EncodeSnapshot(false), NodeId{1});
  REQUIRE(copy.ok());
  CHECK(copy->CanonicalState() == a.CanonicalState());
  CHECK(copy->ToJson() == a.ToJson());
  // The copy can still merge a change concurrent with everything it holds.
  {
    auto t = b.Begin(kNow);
    REQUIRE(t.TextInsert(text, 2, "!").ok());
    REQUIRE(t.ListDelete(list, 0, 1).ok());
    t.Commit();
  }
  Sync(b, *copy);
  Sync(b, a);
  CHECK(copy->CanonicalState() == a.CanonicalState());
  CHECK(*copy->ReadText(text) == "sh!ot me");
}
