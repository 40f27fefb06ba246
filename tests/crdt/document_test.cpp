// Documents: transactions, remote changes, the scenarios from the problem statement, snapshots.
#include "weft/crdt/document.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

using namespace weft::crdt;
using weft::Status;
using weft::StatusCode;

namespace {

constexpr uint64_t kNow = 1'700'000'000'000;
constexpr uint64_t kDayMs = 86'400'000;

// Delivers every change `to` lacks from `from`, through the wire encoding.
void Sync(const Document& from, Document& to, ApplyOptions opts = {}) {
  auto changes = from.ChangesSince(to.version());
  REQUIRE(changes.ok());
  for (const Change& c : *changes) {
    auto decoded = DecodeChange(EncodeChange(c));
    REQUIRE(decoded.ok());
    REQUIRE(to.Receive(std::move(*decoded), opts).ok());
  }
}

Change Commit(Transaction& txn) {
  auto c = txn.Commit();
  REQUIRE(c.has_value());
  return *c;
}

std::vector<std::string> Strings(const KeyRead& read) {
  std::vector<std::string> out;
  for (const auto& e : read.values) out.push_back(e.value.scalar().as<std::string>());
  return out;
}

}  // namespace

TEST_CASE("two offline devices write the same key and get siblings", "[document][scenario]") {
  Document a(NodeId{1}), b(NodeId{2});
  {
    auto t = a.Begin(kNow);
    REQUIRE(t.Put(kRoot, "title", "draft").ok());
    Commit(t);
  }
  Sync(a, b);
  {
    auto t = a.Begin(kNow + 10);
    REQUIRE(t.Put(kRoot, "title", "from laptop").ok());
    Commit(t);
  }
  {
    auto t = b.Begin(kNow + 20);
    REQUIRE(t.Put(kRoot, "title", "from phone").ok());
    Commit(t);
  }
  Sync(a, b);
  Sync(b, a);
  auto ra = a.Get(kRoot, "title");
  REQUIRE(ra.ok());
  CHECK(ra->conflict());
  CHECK(Strings(*ra) == std::vector<std::string>{"from laptop", "from phone"});
  CHECK(a.CanonicalState() == b.CanonicalState());
  CHECK(a.ToJson() == R"({"title":{"conflict":["from laptop","from phone"]}})");
}

TEST_CASE("a read-merge-write resolves siblings, and a later concurrent write stays",
          "[document][scenario]") {
  Document a(NodeId{1}), b(NodeId{2}), c(NodeId{3});
  for (auto* d : {&a, &b}) {
    auto t = d->Begin(kNow);
    REQUIRE(t.Put(kRoot, "k", d == &a ? "A" : "B").ok());
    Commit(t);
  }
  Sync(a, b);
  Sync(b, a);
  auto read = a.Get(kRoot, "k");
  REQUIRE(read->values.size() == 2);
  // c has both siblings too and writes concurrently with a's merge.
  Sync(a, c);
  {
    auto t = c.Begin(kNow + 1);
    REQUIRE(t.Put(kRoot, "other", 1).ok());
    Commit(t);
  }
  {
    auto t = a.Begin(kNow + 2);
    REQUIRE(t.PutAfterRead(kRoot, "k", "A+B", read->context).ok());
    Commit(t);
  }
  {
    // b, unaware of the merge, writes k again: concurrent with the merge, so it must stay.
    auto t = b.Begin(kNow + 3);
    REQUIRE(t.Put(kRoot, "k", "B2").ok());
    Commit(t);
  }
  for (int round = 0; round < 2; ++round) {
    Sync(a, b), Sync(b, a), Sync(a, c), Sync(c, a), Sync(b, c), Sync(c, b);
  }
  auto final_read = c.Get(kRoot, "k");
  CHECK(Strings(*final_read) == std::vector<std::string>{"A+B", "B2"});
  CHECK(a.CanonicalState() == b.CanonicalState());
  CHECK(b.CanonicalState() == c.CanonicalState());
  // Reading both and writing once more resolves them for good.
  {
    auto t = c.Begin(kNow + 4);
    REQUIRE(t.PutAfterRead(kRoot, "k", "final", final_read->context).ok());
    Commit(t);
  }
  Sync(c, a);
  CHECK(Strings(*a.Get(kRoot, "k")) == std::vector<std::string>{"final"});
}

TEST_CASE("concurrent add and remove of a set element keeps it", "[document][scenario]") {
  Document a(NodeId{1}), b(NodeId{2});
  ObjectId tags;
  {
    auto t = a.Begin(kNow);
    tags = *t.PutObject(kRoot, "tags", ObjectKind::kSet);
    REQUIRE(t.SetAdd(tags, "x").ok());
    Commit(t);
  }
  Sync(a, b);
  {
    auto t = a.Begin(kNow);
    REQUIRE(t.SetRemove(tags, "x").ok());
    Commit(t);
  }
  {
    auto t = b.Begin(kNow);
    REQUIRE(t.SetAdd(tags, "x").ok());
    Commit(t);
  }
  Sync(a, b);
  Sync(b, a);
  CHECK(*a.ReadSet(tags) == std::vector<Scalar>{"x"});
  CHECK(a.CanonicalState() == b.CanonicalState());
  // A remove that has seen every add does remove it.
  {
    auto t = b.Begin(kNow);
    REQUIRE(t.SetRemove(tags, "x").ok());
    Commit(t);
  }
  Sync(b, a);
  CHECK(a.ReadSet(tags)->empty());
}

TEST_CASE("increments from 5 replicas sum exactly", "[document][scenario]") {
  std::vector<Document> r;
  for (uint64_t i = 1; i <= 5; ++i) r.emplace_back(NodeId{i});
  ObjectId counter;
  {
    auto t = r[0].Begin(kNow);
    counter = *t.PutObject(kRoot, "n", ObjectKind::kCounter);
    Commit(t);
  }
  for (size_t i = 1; i < 5; ++i) Sync(r[0], r[i]);
  int64_t expected = 0;
  for (size_t i = 0; i < 5; ++i) {
    for (int k = 1; k <= 50; ++k) {
      auto t = r[i].Begin(kNow + static_cast<uint64_t>(k));
      int64_t d = (k % 4 == 0) ? -3 : static_cast<int64_t>(i + 1);
      expected += d;
      REQUIRE(t.Increment(counter, d).ok());
      Commit(t);
    }
  }
  for (size_t i = 0; i < 5; ++i) {
    for (size_t j = 0; j < 5; ++j) {
      if (i != j) Sync(r[i], r[j]);
    }
  }
  for (auto& d : r) CHECK(*d.ReadCounter(counter) == expected);
}

TEST_CASE("an LWW register under a clock a day behind still converges", "[document][scenario]") {
  Document a(NodeId{1}), late(NodeId{2});
  ObjectId reg;
  {
    auto t = a.Begin(kNow);
    reg = *t.PutObject(kRoot, "status", ObjectKind::kLwwRegister);
    REQUIRE(t.SetRegister(reg, "on time").ok());
    Commit(t);
  }
  // The late device's clock cannot judge drift (everyone looks a day ahead to it), so it applies
  // without a drift check; the up-to-date device checks what it receives.
  Sync(a, late);
  // The late device's clock is a day behind, yet having seen a's write, its write comes after it.
  {
    auto t = late.Begin(kNow - kDayMs);
    REQUIRE(t.SetRegister(reg, "late but later").ok());
    Commit(t);
  }
  // Concurrently, a writes too; its physical time is a day ahead of the late device's.
  {
    auto t = a.Begin(kNow + 5);
    REQUIRE(t.SetRegister(reg, "a again").ok());
    Commit(t);
  }
  Sync(a, late);
  Sync(late, a, {kNow + 10});
  auto ra = a.ReadLww(reg), rl = late.ReadLww(reg);
  REQUIRE(ra->value);
  CHECK(*ra->value == *rl->value);
  CHECK(*ra->value == Scalar("a again"));  // the concurrent write with the later hybrid time
  REQUIRE(ra->overwritten.size() == 1);    // what LWW discarded stays visible
  CHECK(ra->overwritten[0].first == Scalar("late but later"));
  CHECK(a.CanonicalState() == late.CanonicalState());
}

TEST_CASE("a remote time a day ahead is refused past the drift bound, accepted within it",
          "[document][scenario]") {
  Document ahead(NodeId{1});
  Document strict(NodeId{2});                       // default bound: one hour
  Document lenient(NodeId{3}, {2 * kDayMs, true});  // an operator who allows two days
  {
    auto t = ahead.Begin(kNow + kDayMs);
    ObjectId reg = *t.PutObject(kRoot, "r", ObjectKind::kLwwRegister);
    REQUIRE(t.SetRegister(reg, "from the future").ok());
    Commit(t);
  }
  const Change& c = ahead.history()[0];
  std::string before = strict.CanonicalState();
  Status s = strict.ApplyChange(c, {kNow});
  CHECK(s.code() == StatusCode::kClockDrift);
  CHECK(strict.CanonicalState() == before);
  REQUIRE(lenient.ApplyChange(c, {kNow}).ok());
  CHECK(lenient.CanonicalState() == ahead.CanonicalState());
}

TEST_CASE("a change is applied only after its dependencies, and twice is a no-op", "[document]") {
  Document a(NodeId{1}), b(NodeId{2});
  std::vector<Change> changes;
  for (int i = 0; i < 3; ++i) {
    auto t = a.Begin(kNow + static_cast<uint64_t>(i));
    REQUIRE(t.Put(kRoot, "k" + std::to_string(i), i).ok());
    changes.push_back(Commit(t));
  }
  CHECK(changes[1].start_seq == changes[0].end_seq() + 1);  // contiguous seqs
  Status s = b.ApplyChange(changes[2]);
  CHECK(s.code() == StatusCode::kMissingDependency);
  CHECK(b.version().empty());
  // Receive holds it until the gap is filled.
  REQUIRE(b.Receive(changes[2]).ok());
  REQUIRE(b.Receive(changes[1]).ok());
  CHECK(b.pending() == 2);
  CHECK(b.Keys(kRoot)->empty());
  REQUIRE(b.Receive(changes[0]).ok());
  CHECK(b.pending() == 0);
  CHECK(b.CanonicalState() == a.CanonicalState());
  std::string state = b.CanonicalState();
  REQUIRE(b.ApplyChange(changes[1]).ok());
  REQUIRE(b.Receive(changes[0]).ok());
  CHECK(b.CanonicalState() == state);
  CHECK(b.history().size() == 3);
}

TEST_CASE("a change with one invalid op changes nothing", "[document]") {
  Document a(NodeId{1}), b(NodeId{2});
  ObjectId counter;
  {
    auto t = a.Begin(kNow);
    counter = *t.PutObject(kRoot, "n", ObjectKind::kCounter);
    Commit(t);
  }
  Sync(a, b);
  Change bad;
  {
    auto t = a.Begin(kNow);
    REQUIRE(t.Put(kRoot, "x", 1).ok());
    REQUIRE(t.Increment(counter, 5).ok());
    bad = Commit(t);
  }
  bad.ops[1].type = Op::Type::kSetAdd;  // a set op on a counter
  std::string before = b.CanonicalState();
  CHECK(b.ApplyChange(bad).code() == StatusCode::kTypeMismatch);
  CHECK(b.CanonicalState() == before);
  bad.ops[1].type = Op::Type::kCounterAdd;
  bad.ops[1].object = Dot{NodeId{77}, 5};  // an object from a change b has never seen
  CHECK(b.ApplyChange(bad).code() == StatusCode::kCorruption);
  CHECK(b.CanonicalState() == before);
  CHECK(b.version().Get(NodeId{1}) == 1);  // only the first change
}

TEST_CASE("a rolled-back transaction leaves the state byte for byte as it was",
          "[document][transaction]") {
  Document d(NodeId{1});
  ObjectId inner, counter, set, reg;
  {
    auto t = d.Begin(kNow);
    inner = *t.PutObject(kRoot, "inner", ObjectKind::kMap);
    counter = *t.PutObject(inner, "n", ObjectKind::kCounter);
    set = *t.PutObject(inner, "s", ObjectKind::kSet);
    reg = *t.PutObject(kRoot, "r", ObjectKind::kLwwRegister);
    REQUIRE(t.SetAdd(set, 1).ok());
    REQUIRE(t.Increment(counter, 3).ok());
    REQUIRE(t.SetRegister(reg, "v").ok());
    Commit(t);
  }
  std::string before = d.CanonicalState();
  VersionVector version = d.version();
  {
    auto t = d.Begin(kNow + 1);
    REQUIRE(t.Increment(counter, 10).ok());
    REQUIRE(t.SetAdd(set, 2).ok());
    REQUIRE(t.SetRemove(set, 1).ok());
    REQUIRE(t.SetRegister(reg, "w").ok());
    REQUIRE(t.Put(kRoot, "new", true).ok());
    // Replaces the map at "inner"; the map is a named container, so it stays, hidden, with its
    // subtree (docs/crdt.md).
    REQUIRE(t.PutObject(kRoot, "inner", ObjectKind::kCounter).ok());
    auto now = d.Get(kRoot, "inner");
    REQUIRE(now->values.size() == 1);
    CHECK(now->values[0].value.object().kind == ObjectKind::kCounter);
    CHECK(d.Exists(counter));
    t.Rollback();
  }
  CHECK(d.CanonicalState() == before);
  CHECK(d.version() == version);
  CHECK(d.Exists(counter));
  {
    auto t = d.Begin(kNow + 2);
    REQUIRE(t.Delete(kRoot, "inner").ok());
    // Destroyed without Commit: rolled back.
  }
  CHECK(d.CanonicalState() == before);
  // The next commit continues the seqs as if nothing had happened.
  auto t = d.Begin(kNow + 3);
  REQUIRE(t.Increment(counter, 1).ok());
  Change c = Commit(t);
  CHECK(c.start_seq == version.Get(NodeId{1}) + 1);
}

TEST_CASE("transaction calls on missing objects or the wrong type fail and change nothing",
          "[document][transaction]") {
  Document d(NodeId{1});
  auto t = d.Begin(kNow);
  ObjectId counter = *t.PutObject(kRoot, "n", ObjectKind::kCounter);
  CHECK(t.Put(counter, "k", 1).code() == StatusCode::kTypeMismatch);
  CHECK(t.SetAdd(counter, 1).code() == StatusCode::kTypeMismatch);
  CHECK(t.Increment(Dot{NodeId{1}, 99}, 1).code() == StatusCode::kNotFound);
  CHECK(t.size() == 1);
  CHECK(d.ReadSet(counter).status().code() == StatusCode::kTypeMismatch);
  Commit(t);
  CHECK(d.ApplyChange(d.history()[0]).ok());  // its own change again: a no-op
}

TEST_CASE("a write concurrent with a delete survives it (update wins)", "[document][semantics]") {
  Document a(NodeId{1}), b(NodeId{2});
  {
    auto t = a.Begin(kNow);
    REQUIRE(t.Put(kRoot, "k", "v1").ok());
    Commit(t);
  }
  Sync(a, b);
  {
    auto t = a.Begin(kNow);
    REQUIRE(t.Delete(kRoot, "k").ok());
    Commit(t);
  }
  {
    auto t = b.Begin(kNow);
    REQUIRE(t.Put(kRoot, "k", "v2").ok());
    Commit(t);
  }
  Sync(a, b);
  Sync(b, a);
  CHECK(Strings(*a.Get(kRoot, "k")) == std::vector<std::string>{"v2"});
  CHECK(a.CanonicalState() == b.CanonicalState());
}

TEST_CASE("deleting a nested map removes edits made inside it concurrently",
          "[document][semantics]") {
  Document a(NodeId{1}), b(NodeId{2});
  ObjectId item;
  {
    auto t = a.Begin(kNow);
    item = *t.PutObject(kRoot, "item", ObjectKind::kMap);
    REQUIRE(t.Put(item, "done", false).ok());
    Commit(t);
  }
  Sync(a, b);
  {
    auto t = a.Begin(kNow);
    REQUIRE(t.Delete(kRoot, "item").ok());
    Commit(t);
  }
  {
    auto t = b.Begin(kNow);
    REQUIRE(t.Put(item, "done", true).ok());
    Commit(t);
  }
  Sync(a, b);
  Sync(b, a);
  CHECK(a.ToJson() == "{}");
  CHECK(b.ToJson() == "{}");
  // The map is a named container: no key reaches it, and creating it again gives an empty map,
  // without the edit made concurrently with the delete.
  CHECK(b.Get(kRoot, "item")->values.empty());
  CHECK(a.CanonicalState() == b.CanonicalState());
  {
    auto t = b.Begin(kNow);
    auto again = t.PutObject(kRoot, "item", ObjectKind::kMap);
    REQUIRE(again.ok());
    CHECK(*again == item);
    CHECK(b.Keys(item)->empty());
    Commit(t);
  }
  CHECK(b.ToJson() == R"({"item":{}})");
  Sync(b, a);
  CHECK(a.CanonicalState() == b.CanonicalState());
}

TEST_CASE("deleting an object made by a dot removes it with edits made inside it concurrently",
          "[document][semantics]") {
  // Objects in lists keep dot ids: a delete removes them and everything in them, named
  // containers included.
  Document a(NodeId{1}), b(NodeId{2});
  ObjectId list, item, inner;
  {
    auto t = a.Begin(kNow);
    list = *t.PutObject(kRoot, "items", ObjectKind::kList);
    item = *t.ListInsertObject(list, 0, ObjectKind::kMap);
    REQUIRE(t.Put(item, "done", false).ok());
    inner = *t.PutObject(item, "n", ObjectKind::kCounter);
    Commit(t);
  }
  Sync(a, b);
  {
    auto t = a.Begin(kNow);
    REQUIRE(t.ListDelete(list, 0, 1).ok());
    Commit(t);
  }
  {
    auto t = b.Begin(kNow);
    REQUIRE(t.Put(item, "done", true).ok());
    REQUIRE(t.Increment(inner, 1).ok());
    Commit(t);
  }
  Sync(a, b);
  Sync(b, a);
  CHECK(a.ToJson() == R"({"items":[]})");
  CHECK(b.ToJson() == R"({"items":[]})");
  CHECK_FALSE(b.Exists(item));
  CHECK_FALSE(b.Exists(inner));
  CHECK(b.named_origins().count(inner) == 0);
  CHECK(a.CanonicalState() == b.CanonicalState());
}

TEST_CASE("changes since a version, and history truncated by a state-only snapshot",
          "[document][history]") {
  Document a(NodeId{1});
  for (int i = 0; i < 5; ++i) {
    auto t = a.Begin(kNow);
    REQUIRE(t.Put(kRoot, "k", i).ok());
    Commit(t);
  }
  auto all = a.ChangesSince({});
  REQUIRE(all.ok());
  CHECK(all->size() == 5);
  auto some = a.ChangesSince({{NodeId{1}, 3}});
  REQUIRE(some->size() == 2);
  CHECK(some->front().start_seq == 4);
  CHECK(a.ChangesSince(a.version())->empty());

  auto light = Document::DecodeSnapshot(a.EncodeSnapshot(false), NodeId{1});
  REQUIRE(light.ok());
  CHECK(light->ChangesSince({}).status().code() == StatusCode::kHistoryTruncated);
  CHECK(light->ChangesSince(a.version())->empty());
  auto full = Document::DecodeSnapshot(a.EncodeSnapshot(true), NodeId{1});
  REQUIRE(full.ok());
  CHECK(full->ChangesSince({})->size() == 5);
  // A reloaded document continues its own seqs.
  auto t = full->Begin(kNow);
  REQUIRE(t.Put(kRoot, "k", 99).ok());
  CHECK(Commit(t).start_seq == 6);
}

TEST_CASE("snapshots round-trip every object type", "[document][snapshot]") {
  Document a(NodeId{1}), b(NodeId{2});
  {
    auto t = a.Begin(kNow);
    ObjectId m = *t.PutObject(kRoot, "m", ObjectKind::kMap);
    REQUIRE(t.Put(m, "bytes", Bytes{std::string("\0\1\2", 3)}).ok());
    REQUIRE(t.Put(m, "d", 2.5).ok());
    REQUIRE(t.Put(m, "null", Scalar()).ok());
    ObjectId r = *t.PutObject(m, "reg", ObjectKind::kRegister);
    REQUIRE(t.SetRegister(r, -7).ok());
    ObjectId l = *t.PutObject(m, "lww", ObjectKind::kLwwRegister);
    REQUIRE(t.SetRegister(l, "lww").ok());
    ObjectId c = *t.PutObject(m, "c", ObjectKind::kCounter);
    REQUIRE(t.Increment(c, -4).ok());
    ObjectId s = *t.PutObject(m, "s", ObjectKind::kSet);
    REQUIRE(t.SetAdd(s, "x").ok());
    REQUIRE(t.PutObject(m, "empty-register", ObjectKind::kRegister).ok());
    Commit(t);
  }
  {
    auto t = b.Begin(kNow);
    REQUIRE(t.Put(kRoot, "m", "conflicting scalar").ok());
    Commit(t);
  }
  Sync(b, a);
  for (bool history : {false, true}) {
    auto copy = Document::DecodeSnapshot(a.EncodeSnapshot(history), NodeId{1});
    REQUIRE(copy.ok());
    CHECK(copy->CanonicalState() == a.CanonicalState());
    CHECK(copy->ToJson() == a.ToJson());
    CHECK(copy->version() == a.version());
    CHECK(copy->lamport() == a.lamport());
  }
}

TEST_CASE("patches report what local and remote changes did", "[document][patches]") {
  Document a(NodeId{1}), b(NodeId{2});
  ObjectId counter, set;
  {
    auto t = a.Begin(kNow);
    counter = *t.PutObject(kRoot, "n", ObjectKind::kCounter);
    set = *t.PutObject(kRoot, "s", ObjectKind::kSet);
    REQUIRE(t.Increment(counter, 4).ok());
    REQUIRE(t.SetAdd(set, "x").ok());
    REQUIRE(t.SetAdd(set, "x").ok());  // already present: no patch
    CHECK(t.patches().size() == 4);
    auto prepared = t.Prepare();
    Change c = Commit(t);
    REQUIRE(prepared.has_value());
    CHECK(*prepared == c);
  }
  std::vector<Patch> patches;
  ApplyOptions opts;
  opts.patches = &patches;
  REQUIRE(b.ApplyChange(a.history()[0], opts).ok());
  REQUIRE(patches.size() == 4);
  CHECK(patches[0].type == Patch::Type::kMapKey);
  CHECK(patches[0].key == "n");
  CHECK(patches[2].type == Patch::Type::kCounter);
  CHECK(patches[2].delta == 4);
  CHECK(patches[3].type == Patch::Type::kSetAdd);
  CHECK(patches[3].element == Scalar("x"));
  // Concurrent writes: the patch tells the key now has two siblings.
  for (auto* d : {&a, &b}) {
    auto t = d->Begin(kNow);
    REQUIRE(t.Put(kRoot, "k", d == &a ? 1 : 2).ok());
    Commit(t);
  }
  patches.clear();
  REQUIRE(b.ApplyChange(a.history().back(), opts).ok());
  REQUIRE(patches.size() == 1);
  CHECK(patches[0].siblings == 2);
  // A duplicate produces nothing.
  patches.clear();
  REQUIRE(b.ApplyChange(a.history().back(), opts).ok());
  CHECK(patches.empty());
}

TEST_CASE("the canonical JSON tells apart states that look alike", "[document][canonical]") {
  // Same visible value, different histories: different states, different canonical JSON.
  Document a(NodeId{1}), b(NodeId{1});
  {
    auto t = a.Begin(kNow);
    REQUIRE(t.Put(kRoot, "k", 1).ok());
    Commit(t);
  }
  {
    auto t = b.Begin(kNow);
    REQUIRE(t.Put(kRoot, "k", 0).ok());
    Commit(t);
    auto t2 = b.Begin(kNow);
    REQUIRE(t2.Put(kRoot, "k", 1).ok());
    Commit(t2);
  }
  CHECK(a.ToJson() == b.ToJson());
  CHECK(a.CanonicalState() != b.CanonicalState());
  CHECK(a.CanonicalJson() != b.CanonicalJson());
  // An int and a double of the same value are different scalars.
  Document c(NodeId{1}), d(NodeId{1});
  {
    auto t = c.Begin(kNow);
    REQUIRE(t.Put(kRoot, "k", 1).ok());
    Commit(t);
    auto u = d.Begin(kNow);
    REQUIRE(u.Put(kRoot, "k", 1.0).ok());
    Commit(u);
  }
  CHECK(c.CanonicalJson() != d.CanonicalJson());
  CHECK(c.CanonicalJson().find("\"value\":1.0") == std::string::npos);
  CHECK(d.CanonicalJson().find("\"value\":1.0") != std::string::npos);
}

TEST_CASE("a change depends on the causal frontier, not the whole version", "[document]") {
  // b builds on a; c builds on b; d has seen all three: its change names only c's (the one that
  // no other change it holds depends on), and a replica lacking c cannot apply it.
  Document a(NodeId{1}), b(NodeId{2}), c(NodeId{3}), d(NodeId{4});
  auto edit = [](Document& doc, const std::string& key) {
    auto t = doc.Begin(kNow);
    REQUIRE(t.Put(kRoot, key, 1).ok());
    return Commit(t);
  };
  Change ca = edit(a, "a");
  Sync(a, b);
  Change cb = edit(b, "b");
  CHECK(cb.deps == VersionVector{{NodeId{1}, 1}});
  Sync(b, c);
  Change cc = edit(c, "c");
  CHECK(cc.deps == VersionVector{{NodeId{2}, 1}});  // a's change is in b's past
  Sync(c, d);
  CHECK(d.version().size() == 3);
  CHECK(d.heads() == VersionVector{{NodeId{3}, 1}});
  Change cd = edit(d, "d");
  CHECK(cd.deps == VersionVector{{NodeId{3}, 1}});
  CHECK(d.heads() == VersionVector{{NodeId{4}, 1}});

  // Concurrent changes are both heads, until one change follows both.
  Document e(NodeId{5});
  Sync(a, e);
  Change ce = edit(e, "e");
  Document f(NodeId{6});
  Sync(d, f);
  Sync(e, f);
  CHECK(f.heads() == VersionVector{{NodeId{4}, 1}, {NodeId{5}, 1}});
  Change cf = edit(f, "f");
  CHECK(cf.deps == VersionVector{{NodeId{4}, 1}, {NodeId{5}, 1}});

  // Holding the frontier is holding the past: without c's change, d's is refused.
  Document g(NodeId{7});
  for (const Change* x : {&ca, &cb}) REQUIRE(g.ApplyChange(*x).ok());
  CHECK(g.ApplyChange(cd).code() == StatusCode::kMissingDependency);
  REQUIRE(g.ApplyChange(cc).ok());
  REQUIRE(g.ApplyChange(cd).ok());
  REQUIRE(g.ApplyChange(ce).ok());
  REQUIRE(g.ApplyChange(cf).ok());
  CHECK(g.CanonicalState() == f.CanonicalState());
  CHECK(g.heads() == VersionVector{{NodeId{6}, 1}});

  // A document decoded from a snapshot keeps no frontier: it depends on its whole version.
  auto restored = Document::DecodeSnapshot(f.EncodeSnapshot(false), NodeId{8});
  REQUIRE(restored.ok());
  CHECK(restored->heads() == restored->version());
}
