// End-to-end encrypted documents through the replica: content sealed in the log and on the wire,
// readers decrypt (also after a reopen), a device without a key is told so, revocation rotates
// the key, concurrent rotations converge, and tampered changes are refused changing nothing.
#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "e2e.h"
#include "identity_internal.h"
#include "temp_dir.h"
#include "weft/crdt/document.h"
#include "weft/replica.h"

using namespace weft;

namespace {

void Check(const Status& s) {
  INFO(s.ToString());
  REQUIRE(s.ok());
}

// A device whose documents are owned (the default).
std::unique_ptr<Replica> OpenDevice(const std::string& path) {
  auto r = Replica::Open(path);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  return std::move(*r);
}

std::vector<ChangeBlob> All(Replica& r, const std::string& doc) {
  auto out = r.ChangesSince(doc, {});
  INFO(out.status().ToString());
  REQUIRE(out.ok());
  return *out;
}

// Applies everything `from` holds of `doc` to `to`.
void Sync(Replica& from, Replica& to, const std::string& doc) {
  auto r = to.ApplyRemoteChanges(doc, All(from, doc));
  INFO(r.status().ToString());
  REQUIRE(r.ok());
}

std::string State(Replica& r, const std::string& doc) {
  std::string s;
  Status st = r.Read(doc, [&](const View& v) { s = v.CanonicalState(); });
  INFO(st.ToString());
  REQUIRE(st.ok());
  return s;
}

Status Put(Replica& r, const std::string& doc, const std::string& key, const std::string& value) {
  return r.Transact(doc, [&](Txn& t) { return t.root().Put(key, Scalar(value)); }).status();
}

bool Contains(const std::vector<ChangeBlob>& blobs, const std::string& needle) {
  for (const ChangeBlob& b : blobs) {
    if (b.find(needle) != std::string::npos) return true;
  }
  return false;
}

// The change re-signed by `author` (what only a malicious member could do; a relay cannot).
ChangeBlob Resign(Replica& author, const std::string& doc, crdt::Change c) {
  c.signature.clear();
  auto sig = author.Sign(kChangePurpose, ChangeMessage(doc, c));
  REQUIRE(sig.ok());
  c.signature.assign(reinterpret_cast<const char*>(sig->data()), sig->size());
  return crdt::EncodeChange(c);
}

crdt::Op& SealedOp(crdt::Change& c) {
  for (crdt::Op& op : c.ops) {
    if (op.type == crdt::Op::Type::kSealed) return op;
  }
  FAIL("no sealed op");
  return c.ops.front();
}

}  // namespace

TEST_CASE("an encrypted document is sealed on the wire, readers read it, others are told why",
          "[e2e]") {
  testing::TempDir dir;
  auto owner = OpenDevice(dir.File("owner.db"));
  auto reader = OpenDevice(dir.File("reader.db"));
  auto relay = OpenDevice(dir.File("relay.db"));
  Check(owner->CreateEncryptedDocument("vault"));
  CHECK(owner->CreateEncryptedDocument("vault").code() == StatusCode::kInvalidArgument);
  Check(Put(*owner, "vault", "MARKERKEY-pin", "MARKER-PIN-7731"));
  Check(owner
            ->Transact("vault",
                       [](Txn& t) {
                         auto text = t.root().Text("note");
                         if (!text.ok()) return text.status();
                         return text->Insert(0, "MARKER-TEXT-5512 hello");
                       })
            .status());
  auto info = owner->Encryption("vault");
  REQUIRE(info.ok());
  CHECK(info->encrypted);
  CHECK(info->epoch == 0);
  CHECK(info->has_key);
  CHECK(info->missing_epochs.empty());

  // Granting a reader rotates the key: epoch 1, sealed to the owner and the reader.
  Check(owner->Grant("vault", reader->public_key(), Role::kReader).status());
  CHECK(owner->Encryption("vault")->epoch == 1);
  const std::vector<ChangeBlob> blobs = All(*owner, "vault");
  CHECK(!Contains(blobs, "MARKER-PIN-7731"));
  CHECK(!Contains(blobs, "MARKER-TEXT"));
  CHECK(!Contains(blobs, "hello"));
  CHECK(!Contains(blobs, "MARKERKEY"));  // map keys are content too

  Check(reader->ApplyRemoteChanges("vault", blobs).status());
  CHECK(State(*reader, "vault") == State(*owner, "vault"));
  CHECK(State(*reader, "vault").find("MARKER-PIN-7731") != std::string::npos);

  // A replica without a key (a relay) stores and serves the changes, and cannot read them.
  Check(relay->ApplyRemoteChanges("vault", blobs).status());
  CHECK(*relay->Version("vault") == *owner->Version("vault"));
  Status denied = relay->Read("vault", [](const View&) { FAIL("read without a key"); });
  CHECK(denied.code() == StatusCode::kPermissionDenied);
  CHECK(denied.message().find("end-to-end encrypted") != std::string::npos);
  CHECK(denied.message().find("no key for epoch 0") != std::string::npos);
  auto relay_info = relay->Encryption("vault");
  REQUIRE(relay_info.ok());
  CHECK(relay_info->encrypted);
  CHECK(!relay_info->has_key);
  CHECK(relay_info->missing_epochs == std::vector<uint64_t>{0});
  // What the relay serves is what it got: the reader takes it from there as well.
  auto third = OpenDevice(dir.File("third.db"));
  Sync(*relay, *third, "vault");
  CHECK(third->Read("vault", [](const View&) {}).code() == StatusCode::kPermissionDenied);
  // No snapshot of an encrypted document is served.
  CHECK(relay->ExportSnapshot("vault").status().code() == StatusCode::kNotFound);

  // A reader cannot write; the owner's edit after the grant reaches the reader; a reopen
  // decrypts the log again.
  CHECK(Put(*reader, "vault", "x", "y").code() == StatusCode::kPermissionDenied);
  Check(Put(*owner, "vault", "later", "MARKER-LATER-0042"));
  Sync(*owner, *reader, "vault");
  const std::string expected = State(*owner, "vault");
  reader.reset();
  reader = OpenDevice(dir.File("reader.db"));
  CHECK(State(*reader, "vault") == expected);
  owner.reset();
  owner = OpenDevice(dir.File("owner.db"));
  CHECK(State(*owner, "vault") == expected);
  // Time travel decrypts too.
  auto history = reader->History("vault");
  REQUIRE(history.ok());
  REQUIRE(history->size() >= 2);
  Check(reader->ReadAt("vault", history->back().version,
                       [&](const View& v) { CHECK(v.CanonicalState() == expected); }));

  // A plain document stays plain, and a replica refuses to snapshot-import an encrypted one.
  Check(Put(*owner, "plain", "k", "PLAIN-VISIBLE"));
  CHECK(Contains(All(*owner, "plain"), "PLAIN-VISIBLE"));
  CHECK(!owner->Encryption("plain")->encrypted);
}

TEST_CASE("a device granted later reads the history through the key chain", "[e2e]") {
  testing::TempDir dir;
  auto owner = OpenDevice(dir.File("owner.db"));
  auto late = OpenDevice(dir.File("late.db"));
  Check(owner->CreateEncryptedDocument("doc"));
  Check(Put(*owner, "doc", "a", "epoch-0 content"));
  auto early = OpenDevice(dir.File("early.db"));
  Check(owner->Grant("doc", early->public_key(), Role::kReader).status());  // epoch 1
  Check(Put(*owner, "doc", "b", "epoch-1 content"));
  // The late device holds the changes before it is granted: told it has no key...
  Sync(*owner, *late, "doc");
  CHECK(late->Read("doc", [](const View&) {}).code() == StatusCode::kPermissionDenied);
  CHECK(late->Encryption("doc")->missing_epochs == std::vector<uint64_t>{0, 1});
  // ... and once granted (epoch 2), reads everything, epochs 0 and 1 unwrapped back the chain.
  Check(owner->Grant("doc", late->public_key(), Role::kReader).status());
  Sync(*owner, *late, "doc");
  CHECK(late->Encryption("doc")->missing_epochs.empty());
  CHECK(late->Encryption("doc")->epoch == 2);
  CHECK(State(*late, "doc") == State(*owner, "doc"));
}

TEST_CASE("revoking a reader rotates the key: it cannot read what is written after", "[e2e]") {
  testing::TempDir dir;
  auto owner = OpenDevice(dir.File("owner.db"));
  auto stays = OpenDevice(dir.File("stays.db"));
  auto goes = OpenDevice(dir.File("goes.db"));
  Check(owner->CreateEncryptedDocument("doc"));
  Check(owner->Grant("doc", stays->public_key(), Role::kReader).status());
  Check(owner->Grant("doc", goes->public_key(), Role::kReader).status());
  Check(Put(*owner, "doc", "before", "BEFORE-REVOKE"));
  Sync(*owner, *goes, "doc");
  CHECK(State(*goes, "doc").find("BEFORE-REVOKE") != std::string::npos);
  const uint64_t before = owner->Encryption("doc")->epoch;

  Check(owner->Revoke("doc", goes->public_key()).status());
  CHECK(owner->Encryption("doc")->epoch == before + 1);
  Check(Put(*owner, "doc", "after", "AFTER-REVOKE"));
  // Even if a relay still forwarded them, the revoked device holds no key for the new epoch.
  Sync(*owner, *goes, "doc");
  Status denied = goes->Read("doc", [](const View&) {});
  CHECK(denied.code() == StatusCode::kPermissionDenied);
  CHECK(denied.message().find("epoch " + std::to_string(before + 1)) != std::string::npos);
  CHECK(goes->Encryption("doc")->missing_epochs == std::vector<uint64_t>{before + 1});
  // Nothing it holds decrypts the new epoch's payload: its keys are of the earlier epochs only,
  // and the new record is not sealed to it.
  bool found = false;
  for (const ChangeBlob& b : All(*owner, "doc")) {
    auto c = crdt::DecodeChange(b);
    REQUIRE(c.ok());
    for (const crdt::Op& op : c->ops) {
      if (op.type == crdt::Op::Type::kAccess && op.action == crdt::AccessAction::kKeys) {
        auto record = e2e::DecodeKeyRecord(op.proof);
        REQUIRE(record.ok());
        if (record->epoch != before + 1) continue;
        found = true;
        for (const e2e::SealedKey& k : record->readers) CHECK(k.reader != goes->public_key());
      }
    }
  }
  CHECK(found);
  // The reader that stays reads both.
  Sync(*owner, *stays, "doc");
  CHECK(State(*stays, "doc") == State(*owner, "doc"));
  CHECK(State(*stays, "doc").find("AFTER-REVOKE") != std::string::npos);
}

TEST_CASE("concurrent rotations by two admins: both epochs readable, all converge", "[e2e]") {
  testing::TempDir dir;
  auto owner = OpenDevice(dir.File("owner.db"));
  auto admin = OpenDevice(dir.File("admin.db"));
  auto x = OpenDevice(dir.File("x.db"));
  auto y = OpenDevice(dir.File("y.db"));
  Check(owner->CreateEncryptedDocument("doc"));
  Check(owner->Grant("doc", admin->public_key(), Role::kAdmin).status());
  Sync(*owner, *admin, "doc");
  // Concurrently: each admin grants a reader (a rotation each, both epoch 2) and writes under it.
  Check(owner->Grant("doc", x->public_key(), Role::kReader).status());
  Check(Put(*owner, "doc", "o", "FROM-OWNER"));
  Check(admin->Grant("doc", y->public_key(), Role::kReader).status());
  Check(Put(*admin, "doc", "a", "FROM-ADMIN"));
  CHECK(owner->Encryption("doc")->epoch == 2);
  CHECK(admin->Encryption("doc")->epoch == 2);
  Sync(*owner, *admin, "doc");
  Sync(*admin, *owner, "doc");
  // Both hold both epoch-2 records and read both writes; same state.
  CHECK(State(*owner, "doc") == State(*admin, "doc"));
  CHECK(State(*owner, "doc").find("FROM-ADMIN") != std::string::npos);
  CHECK(State(*admin, "doc").find("FROM-OWNER") != std::string::npos);
  // Neither epoch-2 record is sealed to all members now: the next write rotates again (epoch 3,
  // after the winner of the two), readable by both new readers.
  Check(Put(*owner, "doc", "next", "AFTER-MERGE"));
  CHECK(owner->Encryption("doc")->epoch == 3);
  Sync(*owner, *admin, "doc");
  for (Replica* r : {x.get(), y.get()}) {
    Sync(*owner, *r, "doc");
    REQUIRE(r->Encryption("doc")->has_key);
  }
  CHECK(State(*admin, "doc") == State(*owner, "doc"));
  // The re-rotation also sealed the other branch's key again to every member: a member added
  // in one branch reads what was written under the other branch's epoch too.
  for (Replica* r : {x.get(), y.get()}) {
    CHECK(r->Encryption("doc")->missing_epochs.empty());
    CHECK(State(*r, "doc") == State(*owner, "doc"));
  }
  CHECK(State(*x, "doc").find("FROM-ADMIN") != std::string::npos);
  CHECK(State(*y, "doc").find("FROM-OWNER") != std::string::npos);
}

TEST_CASE("tampered ciphertext, moved payloads, swapped epochs and bad records change nothing",
          "[e2e][security]") {
  testing::TempDir dir;
  auto owner = OpenDevice(dir.File("owner.db"));
  auto reader = OpenDevice(dir.File("reader.db"));
  Check(owner->CreateEncryptedDocument("doc"));
  Check(Put(*owner, "doc", "first", "one"));
  Check(owner->Grant("doc", reader->public_key(), Role::kReader).status());  // epoch 1
  Check(Put(*owner, "doc", "second", "two"));
  std::vector<ChangeBlob> blobs = All(*owner, "doc");
  REQUIRE(blobs.size() == 4);  // create (epoch 0), first, grant (epoch 1), second
  const ChangeBlob genuine = blobs.back();
  blobs.pop_back();
  Check(reader->ApplyRemoteChanges("doc", blobs).status());
  const VersionVector before = *reader->Version("doc");
  const std::string state = State(*reader, "doc");
  auto last = crdt::DecodeChange(genuine);
  REQUIRE(last.ok());
  auto first = crdt::DecodeChange(blobs[1]);
  REQUIRE(first.ok());

  auto refused = [&](const ChangeBlob& bad, StatusCode code) {
    auto r = reader->ApplyRemoteChanges("doc", {bad});
    INFO(r.status().ToString());
    CHECK(r.status().code() == code);
    CHECK(*reader->Version("doc") == before);
    CHECK(State(*reader, "doc") == state);
  };
  SECTION("a flipped ciphertext byte, as a relay could send it: the signature fails") {
    crdt::Change c = *last;
    SealedOp(c).proof[40] ^= 1;
    refused(crdt::EncodeChange(c), StatusCode::kPermissionDenied);
  }
  SECTION("a flipped ciphertext byte, signed again: it does not decrypt") {
    crdt::Change c = *last;
    SealedOp(c).proof[40] ^= 1;
    refused(Resign(*owner, "doc", c), StatusCode::kPermissionDenied);
  }
  SECTION("another change's payload moved in, signed again: its header does not match") {
    crdt::Change c = *last;
    crdt::Change moved = *first;
    SealedOp(c) = SealedOp(moved);
    refused(Resign(*owner, "doc", c), StatusCode::kPermissionDenied);
  }
  SECTION("the payload's epoch swapped to an older epoch the reader holds, signed again") {
    crdt::Change c = *last;
    std::string& payload = SealedOp(c).proof;
    REQUIRE(e2e::PayloadEpoch(payload).ok());
    REQUIRE(*e2e::PayloadEpoch(payload) == 1);
    payload[8] = 0;  // the last byte of the big-endian epoch
    REQUIRE(*e2e::PayloadEpoch(payload) == 0);
    refused(Resign(*owner, "doc", c), StatusCode::kPermissionDenied);
  }
  SECTION("sealed under an older epoch than its author used before: a relay refuses it too") {
    // A replica without any key checks what it can: the epoch a payload says it is for, against
    // the newest epoch its author already used (an honest writer never goes back).
    auto relay = OpenDevice(dir.File("relay.db"));
    Check(relay->ApplyRemoteChanges("doc", blobs).status());
    const VersionVector relay_before = *relay->Version("doc");
    crdt::Change c = *last;
    SealedOp(c).proof[8] = 0;  // the epoch, 1, made 0
    auto r = relay->ApplyRemoteChanges("doc", {Resign(*owner, "doc", c)});
    CHECK(r.status().code() == StatusCode::kPermissionDenied);
    CHECK(r.status().message().find("older than epoch 1") != std::string::npos);
    CHECK(*relay->Version("doc") == relay_before);
    refused(Resign(*owner, "doc", c), StatusCode::kPermissionDenied);
    Check(relay->ApplyRemoteChanges("doc", {genuine}).status());
  }
  SECTION("content in clear in an encrypted document, signed") {
    crdt::Change c = *last;
    crdt::Op plain;
    plain.type = crdt::Op::Type::kMapSet;
    plain.key = "k";
    plain.scalar = crdt::Scalar(std::string("leaked"));
    SealedOp(c) = plain;
    refused(Resign(*owner, "doc", c), StatusCode::kPermissionDenied);
  }
  SECTION("a key record altered inside a signed change") {
    auto fresh = OpenDevice(dir.File("fresh.db"));
    auto grant = crdt::DecodeChange(blobs[2]);
    REQUIRE(grant.ok());
    bool altered = false;
    for (crdt::Op& op : grant->ops) {
      if (op.type == crdt::Op::Type::kAccess && op.action == crdt::AccessAction::kKeys) {
        op.proof[op.proof.size() - 70] ^= 1;  // inside the wrapped previous key
        altered = true;
      }
    }
    REQUIRE(altered);
    std::vector<ChangeBlob> bad = {blobs[0], blobs[1], Resign(*owner, "doc", *grant)};
    auto r = fresh->ApplyRemoteChanges("doc", bad);
    CHECK(r.status().code() != StatusCode::kOk);
    CHECK(r.status().message().find("key record") != std::string::npos);
    CHECK(!fresh->HasDocument("doc"));
  }
  // The genuine change still applies after any of these.
  Check(reader->ApplyRemoteChanges("doc", {genuine}).status());
  CHECK(State(*reader, "doc") == State(*owner, "doc"));
}

TEST_CASE(
    "no plain snapshot of an encrypted document is written, served or taken, and the log stays "
    "whole",
    "[e2e]") {
  testing::TempDir dir;
  auto owner = OpenDevice(dir.File("owner.db"));
  Check(owner->CreateEncryptedDocument("doc"));
  for (int i = 0; i < 5; ++i) Check(Put(*owner, "doc", "k" + std::to_string(i), "v"));
  const std::vector<ChangeBlob> blobs = All(*owner, "doc");
  // A relay whose policy snapshots after every change keeps serving the whole log.
  ReplicaOptions every;
  every.snapshot_every = 1;
  auto relay = Replica::Open(dir.File("relay.db"), every);
  REQUIRE(relay.ok());
  Check((*relay)->ApplyRemoteChanges("doc", blobs).status());
  Check((*relay)->Snapshot("doc"));
  relay->reset();
  relay = Replica::Open(dir.File("relay.db"), every);
  REQUIRE(relay.ok());
  CHECK(All(**relay, "doc") == blobs);
  CHECK((*relay)->ExportSnapshot("doc").status().code() == StatusCode::kNotFound);
  // The owner's own snapshot is not written either: a reopen replays and decrypts the log.
  Check(owner->Snapshot("doc"));
  const std::string state = State(*owner, "doc");
  owner.reset();
  owner = OpenDevice(dir.File("owner.db"));
  CHECK(State(*owner, "doc") == state);
  // A snapshot of an encrypted document (made here by hand) is refused.
  crdt::Document d(crdt::NodeId{5});
  auto txn = d.Begin(1'700'000'000'000);
  const crdt::Principal me(crdt::kPrincipalBytes, 'k');
  REQUIRE(txn.CreateAccess(me).ok());
  REQUIRE(txn.Bind(me, "proof").ok());
  REQUIRE(txn.Encrypt(me).ok());
  REQUIRE(txn.Commit());
  auto imported = owner->ImportSnapshot("other", d.EncodeSnapshot(false));
  CHECK(imported.status().code() == StatusCode::kPermissionDenied);
  CHECK(!owner->HasDocument("other"));
}
