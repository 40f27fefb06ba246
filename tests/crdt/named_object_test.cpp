// Mergeable containers: a container created by a map write has a named id (a hash of where it was
// created), so concurrent creations of one kind under one key are one container whose contents
// merge; different kinds stay siblings; changes and snapshots from before decode and behave as
// they did; a hash collision is refused; PutObject of an existing container empties it.
#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "weft/crdt/document.h"

using namespace weft::crdt;
using weft::StatusCode;

namespace {

constexpr uint64_t kNow = 1'700'000'000'000;

// Delivers every change `to` lacks from `from`, through the wire encoding.
void Sync(const Document& from, Document& to) {
  auto changes = from.ChangesSince(to.version());
  REQUIRE(changes.ok());
  for (const Change& c : *changes) {
    auto decoded = DecodeChange(EncodeChange(c));
    REQUIRE(decoded.ok());
    REQUIRE(to.Receive(std::move(*decoded)).ok());
  }
}

void SyncBoth(Document& a, Document& b) {
  Sync(a, b);
  Sync(b, a);
  REQUIRE(a.CanonicalState() == b.CanonicalState());
}

// Runs `edit` in one committed transaction of `doc`.
template <typename F>
Change Edit(Document& doc, F&& edit) {
  auto t = doc.Begin(kNow);
  edit(t);
  auto c = t.Commit();
  REQUIRE(c.has_value());
  return *c;
}

// The one value at `key` of the root (fails the test on a conflict or absence).
ObjectRef OnlyObject(const Document& doc, std::string_view key) {
  auto read = doc.Get(kRoot, key);
  REQUIRE(read.ok());
  REQUIRE(read->values.size() == 1);
  REQUIRE(read->values[0].value.is_object());
  return read->values[0].value.object();
}

std::vector<std::string> Sorted(std::vector<weft::crdt::Scalar> v) {
  std::vector<std::string> out;
  for (const auto& s : v) out.push_back(s.ToString());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("named: counters created concurrently under one key add up", "[document][named]") {
  Document a(NodeId{1}), b(NodeId{2});
  Edit(a, [](Transaction& t) {
    auto n = t.PutObject(kRoot, "n", ObjectKind::kCounter);
    REQUIRE(n.ok());
    REQUIRE(t.Increment(*n, 2).ok());
  });
  Edit(b, [](Transaction& t) {
    auto n = t.PutObject(kRoot, "n", ObjectKind::kCounter);
    REQUIRE(n.ok());
    REQUIRE(t.Increment(*n, 5).ok());
  });
  SyncBoth(a, b);
  for (const Document* d : {&a, &b}) {
    ObjectRef n = OnlyObject(*d, "n");
    CHECK(n.kind == ObjectKind::kCounter);
    CHECK(IsNamedObject(n.id));
    CHECK(*d->ReadCounter(n.id) == 7);
    CHECK(d->ToJson() == R"({"n":7})");
    CHECK(**d->KeyToJson(kRoot, "n") == "7");
    CHECK_FALSE(d->Get(kRoot, "n")->conflict());
  }
  // The key holds both writes: a write after reading it replaces both.
  CHECK(a.Get(kRoot, "n")->context.TotalOps() == 2);
  Edit(a, [](Transaction& t) { REQUIRE(t.Put(kRoot, "n", "gone").ok()); });
  Sync(a, b);
  CHECK(b.ToJson() == R"({"n":"gone"})");
}

TEST_CASE("named: texts typed concurrently under one key merge into one text",
          "[document][named]") {
  Document a(NodeId{1}), b(NodeId{2});
  Edit(a, [](Transaction& t) {
    auto id = t.PutObject(kRoot, "doc", ObjectKind::kText);
    REQUIRE(t.TextInsert(*id, 0, "hello").ok());
  });
  Edit(b, [](Transaction& t) {
    auto id = t.PutObject(kRoot, "doc", ObjectKind::kText);
    REQUIRE(t.TextInsert(*id, 0, "world").ok());
  });
  SyncBoth(a, b);
  ObjectRef text = OnlyObject(a, "doc");
  std::string merged = *a.ReadText(text.id);
  // Both typings, each a contiguous run, in an order both replicas agree on.
  CHECK((merged == "helloworld" || merged == "worldhello"));
  CHECK(*b.ReadText(text.id) == merged);
  // Both keep typing into the one text.
  Edit(a, [&](Transaction& t) { REQUIRE(t.TextInsert(text.id, 0, ">").ok()); });
  Edit(b, [&](Transaction& t) { REQUIRE(t.TextInsert(text.id, 10, "!").ok()); });
  SyncBoth(a, b);
  CHECK(*a.ReadText(text.id) == ">" + merged + "!");
}

TEST_CASE("named: lists, sets and maps created concurrently under one key merge",
          "[document][named]") {
  Document a(NodeId{1}), b(NodeId{2});
  Edit(a, [](Transaction& t) {
    auto l = t.PutObject(kRoot, "l", ObjectKind::kList);
    REQUIRE(t.ListInsert(*l, 0, {1, 2}).ok());
    auto s = t.PutObject(kRoot, "s", ObjectKind::kSet);
    REQUIRE(t.SetAdd(*s, "x").ok());
    REQUIRE(t.SetAdd(*s, "both").ok());
    auto m = t.PutObject(kRoot, "m", ObjectKind::kMap);
    REQUIRE(t.Put(*m, "from-a", true).ok());
    // Nested: a counter inside the merged map merges too.
    auto c = t.PutObject(*m, "hits", ObjectKind::kCounter);
    REQUIRE(t.Increment(*c, 1).ok());
  });
  Edit(b, [](Transaction& t) {
    auto l = t.PutObject(kRoot, "l", ObjectKind::kList);
    REQUIRE(t.ListInsert(*l, 0, {3}).ok());
    auto s = t.PutObject(kRoot, "s", ObjectKind::kSet);
    REQUIRE(t.SetAdd(*s, "y").ok());
    REQUIRE(t.SetAdd(*s, "both").ok());
    auto m = t.PutObject(kRoot, "m", ObjectKind::kMap);
    REQUIRE(t.Put(*m, "from-b", false).ok());
    auto c = t.PutObject(*m, "hits", ObjectKind::kCounter);
    REQUIRE(t.Increment(*c, 10).ok());
  });
  SyncBoth(a, b);
  auto list = a.ReadList(OnlyObject(a, "l").id);
  REQUIRE(list->size() == 3);
  std::vector<int64_t> items;
  for (const Value& v : *list) items.push_back(v.scalar().as<int64_t>());
  std::sort(items.begin(), items.end());
  CHECK(items == std::vector<int64_t>{1, 2, 3});
  CHECK(Sorted(*a.ReadSet(OnlyObject(a, "s").id)) == Sorted({"both", "x", "y"}));
  ObjectId m = OnlyObject(a, "m").id;
  CHECK(*a.Keys(m) == std::vector<std::string>{"from-a", "from-b", "hits"});
  auto hits = a.Get(m, "hits");
  REQUIRE(hits->values.size() == 1);
  CHECK(*a.ReadCounter(hits->values[0].value.object().id) == 11);
}

TEST_CASE("named: containers of different kinds under one key stay siblings", "[document][named]") {
  Document a(NodeId{1}), b(NodeId{2});
  Edit(a, [](Transaction& t) {
    auto n = t.PutObject(kRoot, "k", ObjectKind::kCounter);
    REQUIRE(t.Increment(*n, 2).ok());
  });
  Edit(b, [](Transaction& t) {
    auto x = t.PutObject(kRoot, "k", ObjectKind::kText);
    REQUIRE(t.TextInsert(*x, 0, "hi").ok());
  });
  SyncBoth(a, b);
  auto read = a.Get(kRoot, "k");
  REQUIRE(read->values.size() == 2);
  CHECK(read->conflict());
  CHECK(read->values[0].value.object().kind != read->values[1].value.object().kind);
  CHECK((a.ToJson() == R"({"k":{"conflict":[2,"hi"]}})" ||
         a.ToJson() == R"({"k":{"conflict":["hi",2]}})"));
  // Registers keep dot ids: concurrent creations are siblings, as before.
  Edit(a, [](Transaction& t) { REQUIRE(t.PutObject(kRoot, "r", ObjectKind::kRegister).ok()); });
  Edit(b, [](Transaction& t) { REQUIRE(t.PutObject(kRoot, "r", ObjectKind::kRegister).ok()); });
  SyncBoth(a, b);
  CHECK(a.Get(kRoot, "r")->values.size() == 2);
}

TEST_CASE("named: old-format creations (dot ids) still decode and give siblings",
          "[document][named][compat]") {
  // Changes as builds before named containers wrote them: the created object's id is the op's
  // dot, encoded with value flag 1 in a format-1 change.
  auto old_create = [](NodeId author, int64_t delta) {
    Change c;
    c.author = author;
    c.start_seq = 1;
    c.lamport = 1;
    c.time = HlcTimestamp{kNow, 0};
    Op create;
    create.type = Op::Type::kMapSet;
    create.object = kRoot;
    create.key = "n";
    create.new_object = ObjectKind::kCounter;
    Op add;
    add.type = Op::Type::kCounterAdd;
    add.object = Dot{author, 1};
    add.delta = delta;
    c.ops = {create, add};
    return c;
  };
  Change c1 = old_create(NodeId{1}, 2), c2 = old_create(NodeId{2}, 5);
  std::string bytes = EncodeChange(c1);
  CHECK(bytes[0] == 1);  // format 1, byte for byte as before
  // The value spec of the creation: flag 1 (a dot-id object) then the counter kind.
  std::string flag_and_kind = std::string("\x01", 1) + std::string(1, '\x04');
  CHECK(bytes.find(flag_and_kind) != std::string::npos);
  auto decoded = DecodeChange(bytes);
  REQUIRE(decoded.ok());
  CHECK_FALSE(decoded->ops[0].named);
  CHECK(*decoded == c1);

  Document d(NodeId{9});
  REQUIRE(d.ApplyChange(*decoded).ok());
  REQUIRE(d.ApplyChange(*DecodeChange(EncodeChange(c2))).ok());
  auto read = d.Get(kRoot, "n");
  REQUIRE(read->values.size() == 2);
  CHECK(read->values[0].value.object().id == (Dot{NodeId{1}, 1}));
  CHECK(read->values[1].value.object().id == (Dot{NodeId{2}, 1}));
  CHECK(d.ToJson() == R"({"n":{"conflict":[2,5]}})");
  CHECK(d.named_origins().empty());
  // Its snapshot is as before (no named part) and round-trips.
  std::string snap = d.EncodeSnapshot(true);
  CHECK(static_cast<uint8_t>(snap[8]) == 1);  // flags: history only
  auto copy = Document::DecodeSnapshot(snap, NodeId{9});
  REQUIRE(copy.ok());
  CHECK(copy->CanonicalState() == d.CanonicalState());
  CHECK(copy->ToJson() == d.ToJson());

  // A new creation is written as format 3 with value flag 2; older formats cannot carry it.
  Document e(NodeId{3});
  Change named =
      Edit(e, [](Transaction& t) { REQUIRE(t.PutObject(kRoot, "n", ObjectKind::kCounter).ok()); });
  CHECK(named.ops[0].named);
  std::string nb = EncodeChange(named);
  CHECK(nb[0] == 3);
  nb[0] = 1;
  CHECK(DecodeChange(nb).status().code() == StatusCode::kCorruption);
  // Format 4 is written only for a change that holds a sealed op: one encoding per change.
  nb[0] = 4;
  CHECK(DecodeChange(nb).status().code() == StatusCode::kCorruption);
  nb[0] = 5;
  CHECK(DecodeChange(nb).status().code() == StatusCode::kUnsupportedVersion);
}

TEST_CASE("named: a named id held by another origin is refused, changing nothing",
          "[document][named]") {
  // A hash that collides on everything under the root: the counter at "a" and the text at "b"
  // get one id.
  DocumentOptions opts;
  opts.named_id_hash = [](ObjectId, std::string_view, ObjectKind) -> uint64_t { return 42; };
  Document a(NodeId{1}, opts), b(NodeId{2}, opts);
  ObjectId counter = Edit(a,
                          [](Transaction& t) {
                            auto n = t.PutObject(kRoot, "a", ObjectKind::kCounter);
                            REQUIRE(t.Increment(*n, 3).ok());
                          })
                         .ops[1]
                         .object;
  CHECK(counter == (ObjectId{NodeId{}, 42}));
  // Locally: refused with a clear error, and the transaction goes on unchanged.
  {
    std::string before = a.CanonicalState();
    auto t = a.Begin(kNow);
    REQUIRE(t.Put(kRoot, "x", 1).ok());
    auto r = t.PutObject(kRoot, "b", ObjectKind::kText);
    CHECK(r.status().code() == StatusCode::kInvalidArgument);
    CHECK(r.status().message().find("collision") != std::string::npos);
    CHECK(t.size() == 1);
    t.Rollback();
    CHECK(a.CanonicalState() == before);
  }
  // Remotely: b made the text before hearing of the counter; a refuses b's change whole.
  Change text = Edit(b, [](Transaction& t) {
    auto x = t.PutObject(kRoot, "b", ObjectKind::kText);
    REQUIRE(t.TextInsert(*x, 0, "hi").ok());
  });
  std::string before = a.CanonicalState();
  CHECK(a.ApplyChange(text).code() == StatusCode::kInvalidArgument);
  CHECK(a.CanonicalState() == before);
  CHECK_FALSE(a.HasChange(text.id()));
  CHECK(*a.ReadCounter(counter) == 3);
}

TEST_CASE("named: snapshots round-trip named containers, hidden ones included",
          "[document][named][snapshot]") {
  Document a(NodeId{1}), b(NodeId{2});
  Edit(a, [](Transaction& t) {
    auto m = t.PutObject(kRoot, "m", ObjectKind::kMap);
    auto c = t.PutObject(*m, "c", ObjectKind::kCounter);
    REQUIRE(t.Increment(*c, 4).ok());
    auto x = t.PutObject(kRoot, "x", ObjectKind::kText);
    REQUIRE(t.TextInsert(*x, 0, "abc").ok());
    auto gone = t.PutObject(kRoot, "gone", ObjectKind::kSet);
    REQUIRE(t.SetAdd(*gone, 1).ok());
    REQUIRE(
        t.ListInsertObject(*t.PutObject(kRoot, "l", ObjectKind::kList), 0, ObjectKind::kMap).ok());
  });
  Edit(b, [](Transaction& t) {
    auto m = t.PutObject(kRoot, "m", ObjectKind::kMap);
    REQUIRE(t.Put(*m, "b", 1).ok());
  });
  SyncBoth(a, b);
  // "gone" is deleted: its set stays, hidden, so that a concurrent creation finds its contents.
  Edit(a, [](Transaction& t) { REQUIRE(t.Delete(kRoot, "gone").ok()); });
  CHECK(a.named_origins().size() == 5);
  // A named container inside an object made by a dot (a list item's map).
  ObjectId item = a.ReadList(OnlyObject(a, "l").id)->at(0).object().id;
  CHECK_FALSE(IsNamedObject(item));
  Edit(a, [&](Transaction& t) {
    auto n = t.PutObject(item, "n", ObjectKind::kCounter);
    REQUIRE(t.Increment(*n, 1).ok());
  });
  for (bool history : {false, true}) {
    std::string snap = a.EncodeSnapshot(history);
    CHECK((static_cast<uint8_t>(snap[8]) & 4) != 0);
    auto copy = Document::DecodeSnapshot(snap, NodeId{1});
    REQUIRE(copy.ok());
    CHECK(copy->CanonicalState() == a.CanonicalState());
    CHECK(copy->CanonicalJson() == a.CanonicalJson());
    CHECK(copy->ToJson() == a.ToJson());
    CHECK(copy->named_origins() == a.named_origins());
  }
  // Every truncation of the snapshot is refused, never crashes.
  std::string snap = a.EncodeSnapshot(false);
  for (size_t n = 0; n < snap.size(); ++n) {
    CHECK_FALSE(Document::DecodeSnapshot(snap.substr(0, n), NodeId{1}).ok());
  }
  // A copy from the snapshot keeps merging: b re-creates "gone" (emptying the set it saw, as
  // PutObject does) and adds to it; the copy and the original agree.
  auto copy = Document::DecodeSnapshot(a.EncodeSnapshot(false), NodeId{7});
  REQUIRE(copy.ok());
  Edit(b, [](Transaction& t) {
    auto s = t.PutObject(kRoot, "gone", ObjectKind::kSet);
    REQUIRE(t.SetAdd(*s, 2).ok());
  });
  Sync(b, *copy);
  Sync(b, a);
  CHECK(copy->CanonicalState() == a.CanonicalState());
  CHECK(Sorted(*a.ReadSet(OnlyObject(a, "gone").id)) == Sorted({2}));
}

TEST_CASE("named: a delete concurrent with a creation converges in both orders",
          "[document][named][semantics]") {
  Document a(NodeId{1}), b(NodeId{2});
  Change a1 = Edit(a, [](Transaction& t) {
    auto n = t.PutObject(kRoot, "n", ObjectKind::kCounter);
    REQUIRE(t.Increment(*n, 2).ok());
  });
  Change a2 = Edit(a, [](Transaction& t) { REQUIRE(t.Delete(kRoot, "n").ok()); });
  Change b1 = Edit(b, [](Transaction& t) {
    auto n = t.PutObject(kRoot, "n", ObjectKind::kCounter);
    REQUIRE(t.Increment(*n, 5).ok());
  });
  Document x(NodeId{8}), y(NodeId{9});
  for (const Change* c : {&a1, &a2, &b1}) REQUIRE(x.ApplyChange(*c).ok());
  for (const Change* c : {&b1, &a1, &a2}) REQUIRE(y.ApplyChange(*c).ok());
  CHECK(x.CanonicalState() == y.CanonicalState());
  // The delete removed a's value, not b's concurrent one: the one counter holds both increments.
  CHECK(*x.ReadCounter(OnlyObject(x, "n").id) == 7);
}

TEST_CASE("named: PutObject of an existing container empties it, and concurrent edits survive",
          "[document][named][semantics]") {
  Document a(NodeId{1}), b(NodeId{2});
  Edit(a, [](Transaction& t) {
    auto n = t.PutObject(kRoot, "n", ObjectKind::kCounter);
    REQUIRE(t.Increment(*n, 10).ok());
    auto x = t.PutObject(kRoot, "x", ObjectKind::kText);
    REQUIRE(t.TextInsert(*x, 0, "old").ok());
    auto s = t.PutObject(kRoot, "s", ObjectKind::kSet);
    REQUIRE(t.SetAdd(*s, "old").ok());
    auto m = t.PutObject(kRoot, "m", ObjectKind::kMap);
    REQUIRE(t.Put(*m, "old", 1).ok());
    auto l = t.PutObject(kRoot, "l", ObjectKind::kList);
    REQUIRE(t.ListInsert(*l, 0, {1}).ok());
  });
  SyncBoth(a, b);
  // a asks for new containers at the same keys; b edits the old ones concurrently.
  Edit(a, [](Transaction& t) {
    auto n = t.PutObject(kRoot, "n", ObjectKind::kCounter);
    REQUIRE(t.Increment(*n, 1).ok());
    REQUIRE(t.PutObject(kRoot, "x", ObjectKind::kText).ok());
    REQUIRE(t.PutObject(kRoot, "s", ObjectKind::kSet).ok());
    REQUIRE(t.PutObject(kRoot, "m", ObjectKind::kMap).ok());
    REQUIRE(t.PutObject(kRoot, "l", ObjectKind::kList).ok());
  });
  CHECK(a.ToJson() == R"({"l":[],"m":{},"n":1,"s":[],"x":""})");
  ObjectId old_n = OnlyObject(b, "n").id;
  Edit(b, [&](Transaction& t) { REQUIRE(t.Increment(old_n, 5).ok()); });
  SyncBoth(a, b);
  CHECK(*a.ReadCounter(OnlyObject(a, "n").id) == 6);
  // After a delete, a re-creation starts empty too.
  Edit(a, [](Transaction& t) { REQUIRE(t.Delete(kRoot, "x").ok()); });
  CHECK(a.Get(kRoot, "x")->values.empty());
  Edit(a, [](Transaction& t) {
    auto x = t.PutObject(kRoot, "x", ObjectKind::kText);
    REQUIRE(t.TextInsert(*x, 0, "new").ok());
  });
  CHECK(*a.ReadText(OnlyObject(a, "x").id) == "new");
}

TEST_CASE("named: the id hash is fixed (ids are stored and shared by every build)",
          "[document][named][compat]") {
  // Values from an independent implementation of the documented hash (docs/crdt.md).
  CHECK(NamedObjectId(kRoot, "n", ObjectKind::kCounter) ==
        (ObjectId{NodeId{}, 0xe19baeba45c2fdbbULL}));
  CHECK(NamedObjectId(Dot{NodeId{1}, 7}, "h\xc3\xa9", ObjectKind::kText) ==
        (ObjectId{NodeId{}, 0xb454ac3391a75f50ULL}));
  // Each part of the origin matters.
  ObjectId base = NamedObjectId(kRoot, "n", ObjectKind::kCounter);
  CHECK(NamedObjectId(kRoot, "m", ObjectKind::kCounter) != base);
  CHECK(NamedObjectId(kRoot, "n", ObjectKind::kText) != base);
  CHECK(NamedObjectId(Dot{NodeId{1}, 1}, "n", ObjectKind::kCounter) != base);
  CHECK(IsNamedObject(base));
  CHECK_FALSE(IsNamedObject(kRoot));
  CHECK_FALSE(IsNamedObject(Dot{NodeId{1}, 1}));
}
