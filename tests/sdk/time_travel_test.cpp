// Time travel: a document read at an earlier version, the patches between two versions and the
// history of versions, rebuilt from the op log (Replica::History, ReadAt, Diff).
#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "open_replica.h"
#include "temp_dir.h"
#include "weft/replica.h"

using namespace weft;

namespace {

using testing::OpenReplicaAt;
// Several replicas write one document here: public documents.
constexpr auto OpenAt = [](const std::string& path, ReplicaOptions opts = {}) {
  opts.public_documents = true;
  return OpenReplicaAt(path, std::move(opts));
};

std::string Json(Replica& r, std::string_view doc) {
  std::string out;
  REQUIRE(r.Read(doc, [&](const View& v) { out = v.ToJson(); }).ok());
  return out;
}

Result<std::string> JsonAt(Replica& r, std::string_view doc, const VersionVector& v) {
  std::string out;
  Status s = r.ReadAt(doc, v, [&](const View& view) { out = view.ToJson(); });
  if (!s.ok()) return s;
  return out;
}

void Put(Replica& r, const std::string& doc, const std::string& key, int64_t value) {
  REQUIRE(r.Transact(doc, [&](Txn& t) { return t.root().Put(key, Scalar(value)); }).ok());
}

// Sends what `to` lacks of `doc` from `from`.
void Sync(Replica& from, Replica& to, const std::string& doc) {
  VersionVector have;
  if (auto v = to.Version(doc); v.ok()) have = *v;
  auto blobs = from.ChangesSince(doc, have);
  REQUIRE(blobs.ok());
  REQUIRE(to.ApplyRemoteChanges(doc, *blobs).ok());
}

}  // namespace

TEST_CASE("time travel: every version in the history reads as the document was", "[sdk]") {
  testing::TempDir dir;
  ReplicaOptions opts;
  opts.snapshot_every = 2;  // snapshots and a compacted log: history still reads from the start
  auto r = OpenAt(dir.File("a.db"), opts);
  std::vector<std::string> states;
  std::vector<std::vector<crdt::Patch>> fed;
  uint64_t sub = r->Subscribe("d", [&](const ChangeEvent& e) { fed.push_back(e.patches); });
  Put(*r, "d", "a", 1);
  states.push_back(Json(*r, "d"));
  REQUIRE(r->Transact("d", [](Txn& t) {
             auto text = t.root().Text("t");
             if (!text.ok()) return text.status();
             return text->Insert(0, "hello");
           }).ok());
  states.push_back(Json(*r, "d"));
  Put(*r, "d", "a", 2);
  states.push_back(Json(*r, "d"));
  REQUIRE(r->Snapshot("d").ok());
  REQUIRE(r->Transact("d", [](Txn& t) { return t.root().Delete("a"); }).ok());
  states.push_back(Json(*r, "d"));
  r->Unsubscribe(sub);

  auto history = r->History("d");
  REQUIRE(history.ok());
  REQUIRE(history->size() == 4);
  for (size_t i = 0; i < history->size(); ++i) {
    const HistoryEntry& e = (*history)[i];
    INFO("entry " << i);
    CHECK(e.change.node == r->actor_id());
    CHECK(e.ops >= 1);
    CHECK(e.time_ms > 0);
    auto at = JsonAt(*r, "d", e.version);
    REQUIRE(at.ok());
    CHECK(*at == states[i]);
  }
  CHECK((*history)[3].version == *r->Version("d"));
  // The empty version: the document before its first change.
  auto empty = JsonAt(*r, "d", {});
  REQUIRE(empty.ok());
  CHECK(*empty == "{}");

  // The patches between two versions are those the change feed reported on the way.
  auto diff = r->Diff("d", (*history)[0].version, (*history)[3].version);
  REQUIRE(diff.ok());
  std::vector<crdt::Patch> expected;
  for (size_t i = 1; i < fed.size(); ++i)
    expected.insert(expected.end(), fed[i].begin(), fed[i].end());
  CHECK(*diff == expected);
  auto none = r->Diff("d", (*history)[2].version, (*history)[2].version);
  REQUIRE(none.ok());
  CHECK(none->empty());
  // Patches only go forward.
  CHECK(r->Diff("d", (*history)[3].version, (*history)[0].version).status().code() ==
        StatusCode::kInvalidArgument);
  // The live document was not touched.
  CHECK(Json(*r, "d") == states.back());
}

TEST_CASE("time travel: concurrent branches, and versions that cannot be read", "[sdk]") {
  testing::TempDir dir;
  auto a = OpenAt(dir.File("a.db"));
  auto b = OpenAt(dir.File("b.db"));
  Put(*a, "d", "base", 0);
  Sync(*a, *b, "d");
  Put(*a, "d", "x", 1);  // concurrent with b's write
  Put(*a, "d", "x2", 2);
  Put(*b, "d", "y", 3);
  const VersionVector b_version = *b->Version("d");
  Sync(*b, *a, "d");
  Sync(*a, *b, "d");

  // b's branch as b saw it, read on a, which holds a's concurrent changes too.
  auto branch = JsonAt(*a, "d", b_version);
  REQUIRE(branch.ok());
  CHECK(*branch == R"({"base":0,"y":3})");
  // The diff from b's branch to the merge is a's two writes.
  auto diff = a->Diff("d", b_version, *a->Version("d"));
  REQUIRE(diff.ok());
  REQUIRE(diff->size() == 2);
  CHECK((*diff)[0].key == "x");
  CHECK((*diff)[1].key == "x2");
  // From a causal token, as an app passes one around.
  auto token = DecodeCausalToken(EncodeCausalToken("d", b_version));
  REQUIRE(token.ok());
  CHECK(JsonAt(*b, "d", token->second).value() == *branch);

  SECTION("a version this replica does not hold") {
    VersionVector ahead = *a->Version("d");
    ahead.Advance(a->actor_id(), ahead.Get(a->actor_id()) + 1);
    CHECK(JsonAt(*a, "d", ahead).status().code() == StatusCode::kNotFound);
    CHECK(a->Diff("d", {}, ahead).status().code() == StatusCode::kNotFound);
  }
  SECTION("a version that holds a change without its dependencies") {
    Put(*a, "d", "z", 4);  // after b's write: it depends on it
    VersionVector v = *a->Version("d");
    v.Set(b->actor_id(), 0);  // a's writes, the last one without b's that it depends on
    auto s = JsonAt(*a, "d", v).status();
    INFO(s.ToString());
    CHECK(s.code() == StatusCode::kInvalidArgument);
  }
  SECTION("a version that splits a change") {
    // A change of several ops takes several seqs; a version can't hold part of it.
    REQUIRE(a->Transact("d", [](Txn& t) {
               Status s = t.root().Put("p", Scalar(int64_t{1}));
               return s.ok() ? t.root().Put("q", Scalar(int64_t{2})) : s;
             }).ok());
    VersionVector v = *a->Version("d");
    v.Set(a->actor_id(), v.Get(a->actor_id()) - 1);
    auto s = JsonAt(*a, "d", v).status();
    INFO(s.ToString());
    CHECK(s.code() == StatusCode::kInvalidArgument);
  }
  SECTION("an absent document") {
    CHECK(JsonAt(*a, "nope", {}).status().code() == StatusCode::kNotFound);
    CHECK(a->History("nope").status().code() == StatusCode::kNotFound);
  }
}

TEST_CASE("time travel: a replica bootstrapped from a snapshot reads from its base on", "[sdk]") {
  testing::TempDir dir;
  auto a = OpenAt(dir.File("a.db"));
  Put(*a, "d", "k", 1);
  const VersionVector first = *a->Version("d");
  Put(*a, "d", "k", 2);
  auto snap = a->ExportSnapshot("d");
  REQUIRE(snap.ok());
  auto b = OpenAt(dir.File("b.db"));
  REQUIRE(b->ImportSnapshot("d", snap->data, &snap->version).ok());
  Put(*b, "d", "k", 3);
  // Before the base: not held in this replica's history.
  CHECK(JsonAt(*b, "d", first).status().code() == StatusCode::kHistoryTruncated);
  // The base itself and what came after it read.
  CHECK(JsonAt(*b, "d", snap->version).value() == R"({"k":2})");
  auto history = b->History("d");
  REQUIRE(history.ok());
  REQUIRE(history->size() == 1);  // the change after the base
  CHECK(JsonAt(*b, "d", (*history)[0].version).value() == R"({"k":3})");
  auto diff = b->Diff("d", snap->version, (*history)[0].version);
  REQUIRE(diff.ok());
  CHECK(diff->size() == 1);
}
