// Signed changes (docs/security.md): in a document with an access list every change carries its
// author's signature of the document ID and its bytes. A replica refuses a change altered on the
// way, forged under another author, or replayed into another document, storing nothing; and an
// author that signs two different changes at one seq (equivocation) is detected, recorded with
// both changes as proof, and frozen in the document.
#include <catch2/catch.hpp>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "temp_dir.h"
#include "weft/crdt/document.h"
#include "weft/replica.h"

using namespace weft;

namespace {

// Owned documents: these tests are about the checks that only they have.
std::unique_ptr<Replica> Open(const std::string& path) {
  auto r = Replica::Open(path, ReplicaOptions{});
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  return std::move(*r);
}

ReplicaOptions PublicOptions() {
  ReplicaOptions o;
  o.public_documents = true;
  return o;
}

void Put(Replica& r, const std::string& doc, const std::string& key, const std::string& value) {
  auto c = r.Transact(doc, [&](Txn& t) { return t.root().Put(key, Scalar(value)); });
  INFO(c.status().ToString());
  REQUIRE(c.ok());
}

std::vector<ChangeBlob> All(Replica& r, const std::string& doc) {
  auto blobs = r.ChangesSince(doc, VersionVector{});
  REQUIRE(blobs.ok());
  return *blobs;
}

std::string Json(Replica& r, const std::string& doc) {
  std::string out;
  REQUIRE(r.Read(doc, [&](const View& v) { out = v.ToJson(); }).ok());
  return out;
}

crdt::Change Decode(const ChangeBlob& b) {
  auto c = crdt::DecodeChange(b);
  REQUIRE(c.ok());
  return *c;
}

}  // namespace

TEST_CASE("changes of an owned document carry their author's signature", "[sdk][security]") {
  testing::TempDir dir;
  auto owner = Open(dir.File("owner.db"));
  Put(*owner, "d", "k", "v");
  auto pub = Replica::Open(dir.File("public.db"), PublicOptions());
  REQUIRE(pub.ok());
  Put(**pub, "p", "k", "v");
  for (const auto& b : All(*owner, "d")) CHECK(Decode(b).signature.size() == 64);
  // A public document has no keys to check against: its changes are not signed.
  for (const auto& b : All(**pub, "p")) CHECK(Decode(b).signature.empty());
}

TEST_CASE("a change altered on the way is refused and nothing is stored", "[sdk][security]") {
  testing::TempDir dir;
  auto owner = Open(dir.File("owner.db"));
  auto reader = Open(dir.File("reader.db"));
  Put(*owner, "d", "k", "v1");
  REQUIRE(owner->Grant("d", reader->public_key(), Role::kReader).ok());
  REQUIRE(reader->ApplyRemoteChanges("d", All(*owner, "d")).ok());
  const VersionVector before = *reader->Version("d");
  Put(*owner, "d", "k", "secret plan");
  std::vector<ChangeBlob> next = *owner->ChangesSince("d", before);
  REQUIRE(next.size() == 1);
  SECTION("a byte of its content") {
    crdt::Change c = Decode(next[0]);
    c.ops[0].scalar = crdt::Scalar(std::string("defaced"));
    next[0] = crdt::EncodeChange(c);
  }
  SECTION("its timestamp") {
    crdt::Change c = Decode(next[0]);
    c.time.wall_ms -= 1000;
    next[0] = crdt::EncodeChange(c);
  }
  SECTION("its signature") {
    crdt::Change c = Decode(next[0]);
    c.signature[5] ^= 1;
    next[0] = crdt::EncodeChange(c);
  }
  SECTION("its signature removed") {
    crdt::Change c = Decode(next[0]);
    c.signature.clear();
    next[0] = crdt::EncodeChange(c);
  }
  auto r = reader->ApplyRemoteChanges("d", next);
  CHECK(r.status().code() == StatusCode::kPermissionDenied);
  CHECK(*reader->Version("d") == before);
  CHECK(Json(*reader, "d") == R"({"k":"v1"})");
  CHECK(reader->Integrity().signatures_refused == 1);
  // The genuine change still applies.
  REQUIRE(reader->ApplyRemoteChanges("d", *owner->ChangesSince("d", before)).ok());
  CHECK(Json(*reader, "d") == R"({"k":"secret plan"})");
}

TEST_CASE("a change forged under another author is refused", "[sdk][security]") {
  testing::TempDir dir;
  auto owner = Open(dir.File("owner.db"));
  auto writer = Open(dir.File("writer.db"));
  auto other = Open(dir.File("other.db"));
  Put(*owner, "d", "k", "v1");
  REQUIRE(owner->Grant("d", writer->public_key(), Role::kWriter).ok());
  REQUIRE(owner->Grant("d", other->public_key(), Role::kWriter).ok());
  REQUIRE(writer->ApplyRemoteChanges("d", All(*owner, "d")).ok());
  REQUIRE(other->ApplyRemoteChanges("d", All(*owner, "d")).ok());
  // The writer writes as itself, then rewrites its change to claim the owner's author and next
  // seq, signed with its own key (all it has): the owner's binding does not match.
  Put(*writer, "d", "k", "from the writer");
  auto mine = *writer->ChangesSince("d", *owner->Version("d"));
  REQUIRE(mine.size() == 1);
  crdt::Change forged = Decode(mine[0]);
  const crdt::Change last = Decode(All(*owner, "d").back());
  forged.author = owner->actor_id();
  forged.start_seq = last.end_seq() + 1;
  forged.deps = VersionVector{};
  forged.ops.erase(
      std::remove_if(forged.ops.begin(), forged.ops.end(),
                     [](const crdt::Op& op) { return op.type == crdt::Op::Type::kAccess; }),
      forged.ops.end());
  auto sig = writer->Sign(kChangePurpose, "anything");
  REQUIRE(sig.ok());
  forged.signature.assign(reinterpret_cast<const char*>(sig->data()), sig->size());
  const VersionVector before = *other->Version("d");
  auto r = other->ApplyRemoteChanges("d", {crdt::EncodeChange(forged)});
  CHECK(r.status().code() == StatusCode::kPermissionDenied);
  CHECK(*other->Version("d") == before);
  CHECK(Json(*other, "d") == R"({"k":"v1"})");
  CHECK(other->Integrity().signatures_refused == 1);
}

TEST_CASE("a change replayed into another document is refused", "[sdk][security]") {
  testing::TempDir dir;
  auto owner = Open(dir.File("owner.db"));
  auto reader = Open(dir.File("reader.db"));
  // Two documents written alike, so that the second change of one fits the other's seqs.
  for (const std::string doc : {"a", "b"}) {
    Put(*owner, doc, "k", "v1");
    REQUIRE(owner->Grant(doc, reader->public_key(), Role::kReader).ok());
  }
  REQUIRE(reader->ApplyRemoteChanges("b", All(*owner, "b")).ok());
  const VersionVector before = *reader->Version("b");
  Put(*owner, "a", "k", "meant for a only");
  auto from_a = *owner->ChangesSince("a", *owner->Version("b"));
  REQUIRE(from_a.size() == 1);
  auto r = reader->ApplyRemoteChanges("b", from_a);
  CHECK(r.status().code() == StatusCode::kPermissionDenied);
  CHECK(*reader->Version("b") == before);
  CHECK(Json(*reader, "b") == R"({"k":"v1"})");
  CHECK(reader->Integrity().signatures_refused == 1);
}

TEST_CASE("an author that signs two changes at one seq is caught and frozen", "[sdk][security]") {
  testing::TempDir dir;
  const std::string path = dir.File("owner.db");
  auto watcher = Open(dir.File("watcher.db"));
  PublicKey owner_key;
  {
    auto owner = Open(path);
    owner_key = owner->public_key();
    Put(*owner, "d", "k", "v1");
    REQUIRE(owner->Grant("d", watcher->public_key(), Role::kReader).ok());
    REQUIRE(watcher->ApplyRemoteChanges("d", All(*owner, "d")).ok());
  }
  // The database and its lease copied: both copies reuse the same author and key.
  std::filesystem::copy_file(path, dir.File("copy.db"));
  std::filesystem::copy_file(path + "-lease", dir.File("copy.db-lease"));
  auto owner = Open(path);
  auto copy = Open(dir.File("copy.db"));
  REQUIRE(owner->actor_id() == copy->actor_id());
  const VersionVector base = *watcher->Version("d");
  Put(*owner, "d", "k", "one history");
  Put(*copy, "d", "k", "another history");
  auto one = *owner->ChangesSince("d", base);
  auto another = *copy->ChangesSince("d", base);
  REQUIRE(one.size() == 1);
  REQUIRE(another.size() == 1);
  REQUIRE(Decode(one[0]).id() == Decode(another[0]).id());
  REQUIRE(watcher->ApplyRemoteChanges("d", one).ok());
  CHECK(watcher->Integrity().equivocations == 0);
  // The fork arrives: recorded, the author frozen, the held state kept.
  auto r = watcher->ApplyRemoteChanges("d", another);
  REQUIRE(r.ok());
  CHECK(r->applied == 0);
  CHECK(r->frozen == 1);
  CHECK(watcher->Integrity().equivocations == 1);
  auto found = watcher->Equivocations();
  REQUIRE(found.ok());
  REQUIRE(found->size() == 1);
  const Equivocation& e = found->front();
  CHECK(e.doc == "d");
  CHECK(e.author == owner->actor_id());
  CHECK(e.seq == Decode(one[0]).start_seq);
  CHECK(e.key == owner_key);
  CHECK(e.held == one[0]);
  CHECK(e.other == another[0]);
  CHECK(Json(*watcher, "d") == R"({"k":"one history"})");
  // Nothing more of the author applies, on either branch, and the freeze outlives a reopen.
  Put(*owner, "d", "k", "after the fork");
  auto later = *owner->ChangesSince("d", *watcher->Version("d"));
  REQUIRE(later.size() == 1);
  watcher.reset();
  watcher = Open(dir.File("watcher.db"));
  auto r2 = watcher->ApplyRemoteChanges("d", later);
  REQUIRE(r2.ok());
  CHECK(r2->applied == 0);
  CHECK(r2->frozen == 1);
  CHECK(Json(*watcher, "d") == R"({"k":"one history"})");
  // The same change again is a plain duplicate, not a second equivocation.
  CHECK(watcher->Integrity().equivocations == 0);  // counters count since this open
  REQUIRE(watcher->Equivocations()->size() == 1);
}

TEST_CASE("a held change arriving again unaltered is a duplicate, altered it is refused",
          "[sdk][security]") {
  testing::TempDir dir;
  auto owner = Open(dir.File("owner.db"));
  auto reader = Open(dir.File("reader.db"));
  Put(*owner, "d", "k", "v1");
  REQUIRE(owner->Grant("d", reader->public_key(), Role::kReader).ok());
  Put(*owner, "d", "k", "v2");
  auto all = All(*owner, "d");
  REQUIRE(reader->ApplyRemoteChanges("d", all).ok());
  auto again = reader->ApplyRemoteChanges("d", all);
  REQUIRE(again.ok());
  CHECK(again->duplicates == all.size());
  CHECK(reader->Integrity().equivocations == 0);
  crdt::Change c = Decode(all.back());
  c.ops[0].scalar = crdt::Scalar(std::string("v3"));
  auto r = reader->ApplyRemoteChanges("d", {crdt::EncodeChange(c)});
  CHECK(r.status().code() == StatusCode::kPermissionDenied);
  CHECK(reader->Integrity().signatures_refused == 1);
  CHECK(reader->Integrity().equivocations == 0);
  CHECK(Json(*reader, "d") == R"({"k":"v2"})");
}

TEST_CASE("a snapshot of an owned document is taken untrusted only with a matching seal",
          "[sdk][security]") {
  testing::TempDir dir;
  auto owner = Open(dir.File("owner.db"));
  auto writer = Open(dir.File("writer.db"));
  auto fresh = Open(dir.File("fresh.db"));
  Put(*owner, "d", "k", "v1");
  REQUIRE(owner->Grant("d", writer->public_key(), Role::kWriter).ok());
  REQUIRE(owner->Grant("d", fresh->public_key(), Role::kReader).ok());
  auto snap = owner->ExportSnapshot("d");
  REQUIRE(snap.ok());
  auto seal = owner->SealState("d");
  REQUIRE(seal.ok());
  const std::string sealed_state = Json(*owner, "d");
  CHECK(seal->key == owner->public_key());
  CHECK(seal->version == snap->version);
  // Only the owner or an admin seals.
  REQUIRE(writer->ApplyRemoteChanges("d", All(*owner, "d")).ok());
  CHECK(writer->SealState("d").status().code() == StatusCode::kPermissionDenied);

  SECTION("no seal") {
    auto r = fresh->ImportSnapshot("d", snap->data, &snap->version, nullptr, true);
    CHECK(r.status().code() == StatusCode::kPermissionDenied);
  }
  SECTION("the seal of another state") {
    Put(*owner, "d", "k", "v2");
    auto later = owner->ExportSnapshot("d");
    StateSeal old = *seal;
    old.version = later->version;  // claims the later version: the digest does not match
    CHECK(fresh->ImportSnapshot("d", later->data, &later->version, &old, true).status().code() ==
          StatusCode::kPermissionDenied);
  }
  SECTION("a snapshot altered under a genuine seal") {
    // The same version, another state: what a malicious relay would fabricate.
    std::string data = snap->data;
    const size_t at = data.find("v1");
    REQUIRE(at != std::string::npos);
    data.replace(at, 2, "v9");
    CHECK(fresh->ImportSnapshot("d", data, &snap->version, &*seal, true).status().code() ==
          StatusCode::kPermissionDenied);
  }
  SECTION("a seal by a writer") {
    StateSeal forged = *seal;
    forged.key = writer->public_key();
    auto sig = writer->Sign(kStatePurpose, "whatever");
    forged.signature.assign(reinterpret_cast<const char*>(sig->data()), sig->size());
    CHECK(fresh->ImportSnapshot("d", snap->data, &snap->version, &forged, true).status().code() ==
          StatusCode::kPermissionDenied);
  }
  // Nothing was stored by a refusal; the genuine seal is taken.
  CHECK_FALSE(fresh->HasDocument("d"));
  auto r = fresh->ImportSnapshot("d", snap->data, &snap->version, &*seal, true);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  CHECK(Json(*fresh, "d") == sealed_state);
  // A public document's snapshot needs no seal.
  auto pub = Replica::Open(dir.File("public.db"), PublicOptions());
  REQUIRE(pub.ok());
  Put(**pub, "p", "k", "v");
  auto psnap = (*pub)->ExportSnapshot("p");
  CHECK(fresh->ImportSnapshot("p", psnap->data, &psnap->version, nullptr, true).ok());
}
