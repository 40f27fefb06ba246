// Bootstrap of end-to-end encrypted documents by encrypted snapshots, through the replica: an
// owner or admin seals its state encrypted (SealEncryptedState), a relay that cannot read it keeps
// it only as such a seal vouches for it at the version the relay holds (KeepEncryptedSnapshot),
// a reader opens it and catches up from the log after it, and what a malicious relay could do with
// one (alter it, move it, claim another version, serve a stale one, serve it to a non-reader) is
// refused, changing nothing.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "e2e_doc.h"
#include "identity_internal.h"
#include "temp_dir.h"
#include "weft/replica.h"

using namespace weft;

namespace {

void Check(const Status& s) {
  INFO(s.ToString());
  REQUIRE(s.ok());
}

std::unique_ptr<Replica> OpenDevice(const std::string& path) {
  auto r = Replica::Open(path);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  return std::move(*r);
}

// Applies what `from` holds of `doc` past `after` to `to`.
void Sync(Replica& from, Replica& to, const std::string& doc, const VersionVector& after = {}) {
  auto blobs = from.ChangesSince(doc, after);
  INFO(blobs.status().ToString());
  REQUIRE(blobs.ok());
  auto r = to.ApplyRemoteChanges(doc, *blobs);
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

Status Type(Replica& r, const std::string& doc, const std::string& text) {
  return r
      .Transact(doc,
                [&](Txn& t) {
                  auto note = t.root().Text("note");
                  if (!note.ok()) return note.status();
                  return note->Insert(0, text);
                })
      .status();
}

// Every byte of the files of the replica at `path` (its database, WAL, anything beside it).
std::string FileBytes(const std::string& path) {
  std::string all;
  const std::filesystem::path p(path);
  for (const auto& e : std::filesystem::directory_iterator(p.parent_path())) {
    if (e.path().filename().string().rfind(p.filename().string(), 0) != 0) continue;
    std::ifstream in(e.path(), std::ios::binary);
    all.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return all;
}

// `snap`'s seal re-signed by `signer` over `data` (what a member with a key could do; a relay
// cannot).
StateSeal Resealed(Replica& signer, const std::string& doc, const DocumentSnapshot& snap,
                   const std::string& data) {
  StateSeal seal = *snap.seal;
  auto sig =
      signer.Sign(kE2eStatePurpose, StateMessage(doc, seal.version, seal.lamport, Blake2b(data)));
  REQUIRE(sig.ok());
  seal.key = signer.public_key();
  seal.signature.assign(reinterpret_cast<const char*>(sig->data()), sig->size());
  return seal;
}

struct Group {
  testing::TempDir dir;
  std::unique_ptr<Replica> owner, admin, writer, reader, relay;
  Group() {
    owner = OpenDevice(dir.File("owner.db"));
    admin = OpenDevice(dir.File("admin.db"));
    writer = OpenDevice(dir.File("writer.db"));
    reader = OpenDevice(dir.File("reader.db"));
    relay = OpenDevice(dir.File("relay.db"));
    Check(owner->CreateEncryptedDocument("vault"));
    Check(owner->Grant("vault", admin->public_key(), Role::kAdmin).status());
    Check(owner->Grant("vault", writer->public_key(), Role::kWriter).status());
    Check(owner->Grant("vault", reader->public_key(), Role::kReader).status());
    Check(Put(*owner, "vault", "pin", "SNAPMARK-PIN-4471"));
    for (int i = 0; i < 20; ++i) Check(Type(*owner, "vault", "SNAPMARK-TEXT-" + std::to_string(i)));
    Sync(*owner, *relay, "vault");
  }
};

}  // namespace

TEST_CASE("an encrypted snapshot: the relay keeps it unread, a reader opens it and catches up",
          "[e2e]") {
  Group g;
  auto snap = g.owner->SealEncryptedState("vault");
  INFO(snap.status().ToString());
  REQUIRE(snap.ok());
  REQUIRE(snap->seal);
  CHECK(snap->seal->encrypted);
  CHECK(snap->version == *g.owner->Version("vault"));
  CHECK(snap->data.find("SNAPMARK") == std::string::npos);
  // A plain seal is not made of an encrypted document, nor an encrypted one of a plain document.
  CHECK(g.owner->SealState("vault").status().code() == StatusCode::kInvalidArgument);
  Check(Put(*g.owner, "plain", "k", "v"));
  CHECK(g.owner->SealEncryptedState("plain").status().code() == StatusCode::kInvalidArgument);

  Check(g.relay->KeepEncryptedSnapshot("vault", snap->data, *snap->seal));
  auto kept = g.relay->SealedSnapshot("vault");
  REQUIRE(kept.ok());
  CHECK(kept->data == snap->data);
  CHECK(kept->version == snap->version);
  REQUIRE(kept->seal);
  CHECK(kept->seal->encrypted);
  CHECK(kept->seal->signature == snap->seal->signature);
  // The relay still cannot read the document, and nothing of its content is in its files.
  CHECK(g.relay->Read("vault", [](const View&) {}).code() == StatusCode::kPermissionDenied);
  g.relay.reset();
  CHECK(FileBytes(g.dir.File("relay.db")).find("SNAPMARK") == std::string::npos);
  g.relay = OpenDevice(g.dir.File("relay.db"));
  REQUIRE(g.relay->SealedSnapshot("vault").ok());

  // The reader takes it as a peer not trusted with the state would (a seal required), reads the
  // owner's state at that version, and catches up from the log after it.
  auto v = g.reader->ImportSnapshot("vault", kept->data, &kept->version, &*kept->seal, true);
  INFO(v.status().ToString());
  REQUIRE(v.ok());
  CHECK(*v == snap->version);
  CHECK(*g.reader->BaseVersion("vault") == snap->version);
  CHECK(State(*g.reader, "vault") == State(*g.owner, "vault"));
  // The log after it, a rotation included (the writer revoked: epoch 4).
  Check(Type(*g.owner, "vault", "after the snapshot "));
  Check(g.owner->Revoke("vault", g.writer->public_key()).status());
  Check(Type(*g.owner, "vault", "after the rotation "));
  Sync(*g.owner, *g.relay, "vault");
  Sync(*g.relay, *g.reader, "vault", snap->version);
  CHECK(State(*g.reader, "vault") == State(*g.owner, "vault"));
  CHECK(g.reader->Encryption("vault")->epoch == 4);
  // After a reopen it reads the base and the log after it.
  const std::string state = State(*g.reader, "vault");
  g.reader.reset();
  g.reader = OpenDevice(g.dir.File("reader.db"));
  CHECK(State(*g.reader, "vault") == state);
  auto info = g.reader->Encryption("vault");
  REQUIRE(info.ok());
  CHECK(info->has_key);
  CHECK(info->missing_epochs.empty());
}

TEST_CASE("a writer bootstrapped from an encrypted snapshot writes, and the others read it",
          "[e2e]") {
  Group g;
  auto snap = g.admin->SealEncryptedState("vault");
  CHECK(snap.status().code() == StatusCode::kNotFound);  // the admin holds nothing yet
  Sync(*g.relay, *g.admin, "vault");
  snap = g.admin->SealEncryptedState("vault");  // an admin seals too
  INFO(snap.status().ToString());
  REQUIRE(snap.ok());
  Check(g.relay->KeepEncryptedSnapshot("vault", snap->data, *snap->seal));
  auto kept = g.relay->SealedSnapshot("vault");
  REQUIRE(kept.ok());
  Check(g.writer->ImportSnapshot("vault", kept->data, &kept->version, &*kept->seal, true).status());
  Check(Put(*g.writer, "vault", "reply", "SNAPMARK-WRITER"));
  Sync(*g.writer, *g.relay, "vault", kept->version);
  Sync(*g.relay, *g.owner, "vault");
  CHECK(State(*g.owner, "vault") == State(*g.writer, "vault"));
  CHECK(State(*g.owner, "vault").find("SNAPMARK-WRITER") != std::string::npos);
}

TEST_CASE(
    "a relay keeps an encrypted snapshot only as the owner or an admin sealed it, at its "
    "version",
    "[e2e]") {
  Group g;
  Sync(*g.relay, *g.writer, "vault");
  Sync(*g.relay, *g.reader, "vault");
  auto snap = g.owner->SealEncryptedState("vault");
  REQUIRE(snap.ok());
  // Neither a writer nor a reader seals.
  CHECK(g.writer->SealEncryptedState("vault").status().code() == StatusCode::kPermissionDenied);
  CHECK(g.reader->SealEncryptedState("vault").status().code() == StatusCode::kPermissionDenied);
  // A writer's signature over the owner's bytes: not the owner's or an admin's.
  StateSeal by_writer = Resealed(*g.writer, "vault", *snap, snap->data);
  CHECK(g.relay->KeepEncryptedSnapshot("vault", snap->data, by_writer).code() ==
        StatusCode::kPermissionDenied);
  // A byte altered anywhere (the record, the ciphertext): the signature no longer covers it.
  for (size_t at : {size_t{20}, snap->data.size() / 2, snap->data.size() - 1}) {
    std::string bad = snap->data;
    bad[at] ^= 0x01;
    CHECK(g.relay->KeepEncryptedSnapshot("vault", bad, *snap->seal).code() ==
          StatusCode::kPermissionDenied);
  }
  // A plain state's seal, or bytes sealed for another document.
  StateSeal plain = *snap->seal;
  plain.encrypted = false;
  CHECK(g.relay->KeepEncryptedSnapshot("vault", snap->data, plain).code() ==
        StatusCode::kPermissionDenied);
  // The owner's own signature over vault's bytes at the version and Lamport time of another
  // document of its: the key record inside names vault.
  Check(g.owner->CreateEncryptedDocument("other"));
  Check(Put(*g.owner, "other", "k", "v"));
  Sync(*g.owner, *g.relay, "other");
  auto other = g.owner->SealEncryptedState("other");
  REQUIRE(other.ok());
  StateSeal moved = Resealed(*g.owner, "other", *other, snap->data);
  auto s = g.relay->KeepEncryptedSnapshot("other", snap->data, moved);
  CHECK(s.code() == StatusCode::kPermissionDenied);
  CHECK(s.message().find("another document") != std::string::npos);
  // A relay that lacks a change the seal holds does not keep it.
  Check(Put(*g.owner, "vault", "later", "v"));
  auto ahead = g.owner->SealEncryptedState("vault");
  REQUIRE(ahead.ok());
  CHECK(g.relay->KeepEncryptedSnapshot("vault", ahead->data, *ahead->seal).code() ==
        StatusCode::kInvalidArgument);
  // None of these was kept.
  CHECK(g.relay->SealedSnapshot("vault").status().code() == StatusCode::kNotFound);
  CHECK(g.relay->SealedSnapshot("other").status().code() == StatusCode::kNotFound);
  // One the relay has moved past while it arrived is kept (the relay holds every change in it,
  // and the log after it); an older one then does not replace a newer one.
  Sync(*g.owner, *g.relay, "vault");
  Check(Put(*g.owner, "vault", "later still", "v"));
  Sync(*g.owner, *g.relay, "vault");
  Check(g.relay->KeepEncryptedSnapshot("vault", ahead->data, *ahead->seal));
  Check(g.relay->KeepEncryptedSnapshot("vault", snap->data, *snap->seal));
  auto kept = g.relay->SealedSnapshot("vault");
  REQUIRE(kept.ok());
  CHECK(kept->version == ahead->version);
  CHECK(kept->data == ahead->data);
  // An encrypted seal of a plain document is refused too.
  Check(Put(*g.owner, "plain", "k", "v"));
  Sync(*g.owner, *g.relay, "plain");
  CHECK(g.relay->KeepEncryptedSnapshot("plain", snap->data, *snap->seal).code() ==
        StatusCode::kPermissionDenied);
}

TEST_CASE(
    "a device refuses an altered, moved, stale or unreadable encrypted snapshot, changing "
    "nothing",
    "[e2e]") {
  Group g;
  auto snap = g.owner->SealEncryptedState("vault");
  REQUIRE(snap.ok());
  const StateSeal& seal = *snap->seal;
  auto fresh = OpenDevice(g.dir.File("fresh-reader.db"));
  auto import = [&](Replica& r, const std::string& doc, const std::string& data, const StateSeal& s,
                    const VersionVector* expected) {
    return r.ImportSnapshot(doc, data, expected, &s, true).status();
  };

  SECTION("altered bytes") {
    for (size_t at : {size_t{1}, size_t{20}, snap->data.size() / 2, snap->data.size() - 1}) {
      std::string bad = snap->data;
      bad[at] ^= 0x01;
      CHECK(import(*g.reader, "vault", bad, seal, &snap->version).code() ==
            StatusCode::kPermissionDenied);
    }
    CHECK_FALSE(g.reader->HasDocument("vault"));
  }
  SECTION("another version claimed for it") {
    StateSeal later = seal;
    later.version.Advance(later.version.entries().front().first, 1'000'000);
    CHECK(import(*g.reader, "vault", snap->data, later, &later.version).code() ==
          StatusCode::kPermissionDenied);
    StateSeal lamport = seal;
    ++lamport.lamport;
    CHECK(import(*g.reader, "vault", snap->data, lamport, &snap->version).code() ==
          StatusCode::kPermissionDenied);
    // The right seal, sent with another version: the state inside holds another.
    CHECK(import(*g.reader, "vault", snap->data, seal, &later.version).code() ==
          StatusCode::kCorruption);
    CHECK_FALSE(g.reader->HasDocument("vault"));
  }
  SECTION("moved to another document") {
    CHECK(import(*g.reader, "elsewhere", snap->data, seal, &snap->version).code() ==
          StatusCode::kPermissionDenied);
    CHECK_FALSE(g.reader->HasDocument("elsewhere"));
  }
  SECTION("re-signed by a writer, who holds the key") {
    StateSeal by_writer = Resealed(*g.writer, "vault", *snap, snap->data);
    auto s = import(*g.reader, "vault", snap->data, by_writer, &snap->version);
    CHECK(s.code() == StatusCode::kPermissionDenied);
    CHECK(s.message().find("owner or an admin") != std::string::npos);
    CHECK_FALSE(g.reader->HasDocument("vault"));
  }
  SECTION("a stale snapshot, older than what the device holds") {
    Sync(*g.owner, *g.reader, "vault");
    Check(Type(*g.owner, "vault", "newer "));
    Sync(*g.owner, *g.reader, "vault");
    const std::string before = State(*g.reader, "vault");
    const VersionVector held = *g.reader->Version("vault");
    auto s = import(*g.reader, "vault", snap->data, seal, &snap->version);
    CHECK(s.code() == StatusCode::kInvalidArgument);
    CHECK(State(*g.reader, "vault") == before);
    CHECK(*g.reader->Version("vault") == held);
    CHECK(g.reader->BaseVersion("vault")->empty());
  }
  SECTION("a device that is not a reader is told so") {
    auto stranger = OpenDevice(g.dir.File("stranger.db"));
    auto s = import(*stranger, "vault", snap->data, seal, &snap->version);
    CHECK(s.code() == StatusCode::kPermissionDenied);
    CHECK(s.message().find("no key of epoch") != std::string::npos);
    CHECK_FALSE(stranger->HasDocument("vault"));
  }
  SECTION("a revoked reader cannot open a snapshot made after the revocation") {
    Check(g.owner->Revoke("vault", g.reader->public_key()).status());
    Check(Type(*g.owner, "vault", "SNAPMARK-AFTER-REVOKE "));
    auto after = g.owner->SealEncryptedState("vault");
    REQUIRE(after.ok());
    auto s = import(*g.reader, "vault", after->data, *after->seal, &after->version);
    CHECK(s.code() == StatusCode::kPermissionDenied);
    CHECK_FALSE(g.reader->HasDocument("vault"));
    CHECK(import(*fresh, "vault", after->data, *after->seal, &after->version).code() ==
          StatusCode::kPermissionDenied);
    // A member still can.
    Check(import(*g.writer, "vault", after->data, *after->seal, &after->version));
    CHECK(State(*g.writer, "vault") == State(*g.owner, "vault"));
  }
  SECTION("a device that holds the document takes no encrypted snapshot, even a genuine one") {
    // Nothing it holds could vouch for the access list inside: it takes the log.
    Sync(*g.owner, *g.reader, "vault");
    Check(Type(*g.owner, "vault", "newer "));
    auto newer = g.owner->SealEncryptedState("vault");
    REQUIRE(newer.ok());
    const std::string before = State(*g.reader, "vault");
    auto s = import(*g.reader, "vault", newer->data, *newer->seal, &newer->version);
    CHECK(s.code() == StatusCode::kInvalidArgument);
    CHECK(State(*g.reader, "vault") == before);
    CHECK(g.reader->BaseVersion("vault")->empty());
    // Nor one of a document of the same name made by someone else (here a relay that made itself
    // the owner and sealed a key to the reader): what it holds stays.
    auto forger = OpenDevice(g.dir.File("forger.db"));
    Check(forger->CreateEncryptedDocument("vault"));
    Check(forger->Grant("vault", g.reader->public_key(), Role::kReader).status());
    Check(Put(*forger, "vault", "pin", "forged"));
    auto forged = forger->SealEncryptedState("vault");
    REQUIRE(forged.ok());
    s = import(*g.reader, "vault", forged->data, *forged->seal, &forged->version);
    CHECK(s.code() == StatusCode::kInvalidArgument);
    CHECK(State(*g.reader, "vault") == before);
  }
  SECTION("ciphertext offered as a plain snapshot, without a seal") {
    CHECK(g.reader->ImportSnapshot("vault", snap->data, &snap->version, nullptr, true)
              .status()
              .code() == StatusCode::kCorruption);
    CHECK_FALSE(g.reader->HasDocument("vault"));
  }
}
