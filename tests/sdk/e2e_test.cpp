// End-to-end encryption's cryptographic core (sdk/src/e2e.h): epoch key records sealed to
// readers, the chain back to history, encrypted payloads, and what each refuses.
#include "e2e.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "identity_internal.h"
#include "random.h"

using namespace weft;
using namespace weft::e2e;

namespace {

// A device: its secret key (not movable, so held by pointer) and its public key.
struct Device {
  std::unique_ptr<SecretKey> secret = std::make_unique<SecretKey>();
  PublicKey key;
  Device() {
    auto pk = secret->Generate();
    REQUIRE(pk.ok());
    key = *pk;
  }
};

EpochKey NewKey() {
  auto k = NewEpochKey();
  REQUIRE(k.ok());
  return std::move(k).value();
}

KeyRecord Make(const Device& admin, const std::string& doc, const std::vector<PublicKey>& readers,
               const EpochKey& key, const KeyRecord* prev = nullptr,
               const EpochKey* prev_key = nullptr) {
  auto r = MakeKeyRecord(*admin.secret, doc, readers, key, prev, prev_key);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  return std::move(r).value();
}

EpochKey Open(const KeyRecord& record, const Device& me) {
  auto k = OpenEpochKey(record, *me.secret);
  INFO(k.status().ToString());
  REQUIRE(k.ok());
  return std::move(k).value();
}

// The associated data a change header would give (document, author, seq, epoch).
std::string Header(const std::string& doc, uint64_t seq, uint64_t epoch) {
  return doc + '\0' + "author-1" + '\0' + std::to_string(seq) + '\0' + std::to_string(epoch);
}

std::string Encrypt(const EpochKey& key, uint64_t epoch, const std::string& ad,
                    const std::string& text) {
  auto c = EncryptPayload(key, epoch, ad, text);
  REQUIRE(c.ok());
  return *c;
}

}  // namespace

TEST_CASE("readers open their epoch key and decrypt, a non-reader cannot", "[sdk][e2e]") {
  Device admin, a, b, c, stranger;
  const std::string doc = "notes/secret";
  EpochKey key = NewKey();
  KeyRecord rec = Make(admin, doc, {c.key, a.key, b.key, admin.key, a.key}, key);
  CHECK(rec.epoch == 0);
  CHECK(rec.readers.size() == 4);  // the duplicate is dropped
  REQUIRE(VerifyKeyRecord(rec, std::vector<PublicKey>{admin.key}).ok());

  // The record travels as bytes.
  auto decoded = DecodeKeyRecord(EncodeKeyRecord(rec));
  REQUIRE(decoded.ok());
  CHECK(*decoded == rec);
  CHECK(EncodeKeyRecord(*decoded) == EncodeKeyRecord(rec));

  const std::string ad = Header(doc, 1, 0);
  const std::string ciphertext = Encrypt(key, 0, ad, "the plan: meet at noon");
  CHECK(ciphertext.find("meet at noon") == std::string::npos);
  auto epoch = PayloadEpoch(ciphertext);
  REQUIRE(epoch.ok());
  CHECK(*epoch == 0);

  for (Device* d : {&a, &b, &c, &admin}) {
    EpochKey mine = Open(*decoded, *d);
    CHECK(IsKeyOf(rec, mine));
    auto plain = DecryptPayload(mine, ad, ciphertext);
    REQUIRE(plain.ok());
    CHECK(*plain == "the plan: meet at noon");
  }

  SECTION("a stranger has no copy, and its key opens no reader's box") {
    auto k = OpenEpochKey(rec, *stranger.secret);
    REQUIRE(k.status().code() == StatusCode::kPermissionDenied);
    CHECK_THAT(k.status().message(), Catch::Contains("is not a reader of epoch 0"));
    for (const SealedKey& s : rec.readers) {
      uint8_t out[EpochKey::kSize];
      Status st = stranger.secret->OpenSealed(s.sealed, out, sizeof out);
      CHECK(st.code() == StatusCode::kPermissionDenied);
    }
    // Nor does a stranger's own key decrypt the payload.
    EpochKey other = NewKey();
    auto plain = DecryptPayload(other, ad, ciphertext);
    CHECK(plain.status().code() == StatusCode::kPermissionDenied);
    CHECK_THAT(plain.status().message(), Catch::Contains("does not decrypt"));
  }

  SECTION("an admin that does not list itself cannot read") {
    EpochKey k2 = NewKey();
    KeyRecord r2 = Make(admin, doc, {a.key}, k2);
    CHECK(OpenEpochKey(r2, *admin.secret).status().code() == StatusCode::kPermissionDenied);
    CHECK(IsKeyOf(r2, Open(r2, a)));
  }

  SECTION("a reader's box moved to another reader's entry is refused") {
    KeyRecord moved = rec;
    std::swap(moved.readers[0].sealed, moved.readers[1].sealed);
    for (Device* d : {&a, &b, &c, &admin}) {
      CHECK(OpenEpochKey(moved, *d->secret).status().code() == StatusCode::kCorruption);
    }
  }
}

TEST_CASE("bad arguments to MakeKeyRecord are refused", "[sdk][e2e]") {
  Device admin, a;
  EpochKey k0 = NewKey(), k1 = NewKey();
  KeyRecord r0 = Make(admin, "d", {a.key}, k0);
  CHECK(MakeKeyRecord(*admin.secret, "", std::vector<PublicKey>{a.key}, k0).status().code() ==
        StatusCode::kInvalidArgument);
  CHECK(MakeKeyRecord(*admin.secret, "d", std::vector<PublicKey>{}, k0).status().code() ==
        StatusCode::kInvalidArgument);
  std::array<uint8_t, 32> not_a_point{};
  not_a_point.fill(0xff);
  CHECK(MakeKeyRecord(*admin.secret, "d", std::vector<PublicKey>{PublicKey(not_a_point)}, k0)
            .status()
            .code() == StatusCode::kInvalidArgument);
  EpochKey none;
  CHECK(MakeKeyRecord(*admin.secret, "d", std::vector<PublicKey>{a.key}, none).status().code() ==
        StatusCode::kInvalidArgument);
  // A rotation with only one of the previous record and key, a key of another epoch, the same
  // key again, or a previous record of another document.
  CHECK(MakeKeyRecord(*admin.secret, "d", std::vector<PublicKey>{a.key}, k1, &r0, nullptr)
            .status()
            .code() == StatusCode::kInvalidArgument);
  CHECK(MakeKeyRecord(*admin.secret, "d", std::vector<PublicKey>{a.key}, k1, &r0, &k1)
            .status()
            .code() == StatusCode::kInvalidArgument);
  CHECK(MakeKeyRecord(*admin.secret, "d", std::vector<PublicKey>{a.key}, k0, &r0, &k0)
            .status()
            .code() == StatusCode::kInvalidArgument);
  CHECK(MakeKeyRecord(*admin.secret, "e", std::vector<PublicKey>{a.key}, k1, &r0, &k0)
            .status()
            .code() == StatusCode::kInvalidArgument);
  // A SecretKey with nothing generated or loaded has no public key, signs nothing, opens nothing.
  SecretKey empty;
  CHECK_FALSE(empty.public_key().valid());
  CHECK(empty.Sign(kE2eKeysPurpose, "x").status().code() == StatusCode::kInternal);
  uint8_t out[EpochKey::kSize];
  CHECK(empty.OpenSealed(r0.readers[0].sealed, out, sizeof out).code() == StatusCode::kInternal);
  CHECK(OpenEpochKey(r0, empty).status().code() == StatusCode::kPermissionDenied);
  CHECK(MakeKeyRecord(empty, "d", std::vector<PublicKey>{a.key}, k0).status().code() ==
        StatusCode::kInvalidArgument);
}

TEST_CASE("rotation shuts a removed reader out, a new member reaches history", "[sdk][e2e]") {
  Device admin, a, removed, newcomer;
  const std::string doc = "team/plans";
  // Epoch 0: admin, a and the reader removed later.
  EpochKey k0 = NewKey();
  KeyRecord r0 = Make(admin, doc, {admin.key, a.key, removed.key}, k0);
  const std::string c0 = Encrypt(k0, 0, Header(doc, 1, 0), "epoch zero text");

  // Epoch 1: the reader is removed; the key rotates.
  EpochKey k1 = NewKey();
  KeyRecord r1 = Make(admin, doc, {admin.key, a.key}, k1, &r0, &k0);
  CHECK(r1.epoch == 1);
  REQUIRE(CheckLink(r0, r1).ok());
  REQUIRE(VerifyKeyRecord(r1, std::vector<PublicKey>{admin.key}).ok());
  const std::string c1 = Encrypt(k1, 1, Header(doc, 2, 1), "epoch one text");

  // Epoch 2: a new member joins.
  EpochKey k2 = NewKey();
  KeyRecord r2 = Make(admin, doc, {admin.key, a.key, newcomer.key}, k2, &r1, &k1);
  const std::string c2 = Encrypt(k2, 2, Header(doc, 3, 2), "epoch two text");

  SECTION("the removed reader opens epoch 0 but not 1 or 2, and decrypts nothing after") {
    EpochKey old = Open(r0, removed);  // what it already had stays its own
    CHECK(DecryptPayload(old, Header(doc, 1, 0), c0).ok());
    for (const KeyRecord* r : {&r1, &r2}) {
      auto k = OpenEpochKey(*r, *removed.secret);
      CHECK(k.status().code() == StatusCode::kPermissionDenied);
      // None of the boxes in the new records opens with its key either.
      for (const SealedKey& s : r->readers) {
        uint8_t out[EpochKey::kSize];
        CHECK(removed.secret->OpenSealed(s.sealed, out, sizeof out).code() ==
              StatusCode::kPermissionDenied);
      }
    }
    // Everything it holds (its old epoch key) fails on the new ciphertexts, and cannot unwrap.
    CHECK(DecryptPayload(old, Header(doc, 2, 1), c1).status().code() ==
          StatusCode::kPermissionDenied);
    CHECK(DecryptPayload(old, Header(doc, 3, 2), c2).status().code() ==
          StatusCode::kPermissionDenied);
    CHECK(UnwrapPreviousKey(r1, old, r0).status().code() == StatusCode::kPermissionDenied);
    CHECK(UnwrapPreviousKey(r2, old, r1).status().code() == StatusCode::kPermissionDenied);
    CHECK_FALSE(IsKeyOf(r1, old));
  }

  SECTION("the newcomer cannot open epochs 0 and 1 directly but reaches them through the chain") {
    CHECK(OpenEpochKey(r0, *newcomer.secret).status().code() == StatusCode::kPermissionDenied);
    CHECK(OpenEpochKey(r1, *newcomer.secret).status().code() == StatusCode::kPermissionDenied);
    EpochKey mine = Open(r2, newcomer);
    // Step by step...
    auto back1 = UnwrapPreviousKey(r2, mine, r1);
    REQUIRE(back1.ok());
    CHECK(IsKeyOf(r1, *back1));
    auto back0 = UnwrapPreviousKey(r1, *back1, r0);
    REQUIRE(back0.ok());
    CHECK(IsKeyOf(r0, *back0));
    CHECK(UnwrapPreviousKey(r0, *back0, r0).status().code() == StatusCode::kInvalidArgument);
    // ...and all at once, decrypting the history.
    std::vector<KeyRecord> chain = {r0, r1, r2};
    auto keys = KeysThroughChain(chain, Open(r2, newcomer));
    REQUIRE(keys.ok());
    REQUIRE(keys->size() == 3);
    CHECK(*DecryptPayload((*keys)[0], Header(doc, 1, 0), c0) == "epoch zero text");
    CHECK(*DecryptPayload((*keys)[1], Header(doc, 2, 1), c1) == "epoch one text");
    CHECK(*DecryptPayload((*keys)[2], Header(doc, 3, 2), c2) == "epoch two text");
  }

  SECTION("the chain refuses records out of order, missing, or of another chain") {
    std::vector<KeyRecord> gap = {r0, r2};
    CHECK(KeysThroughChain(gap, Open(r2, newcomer)).status().code() == StatusCode::kCorruption);
    std::vector<KeyRecord> no_start = {r1, r2};
    CHECK(KeysThroughChain(no_start, Open(r2, newcomer)).status().code() ==
          StatusCode::kInvalidArgument);
    // A second epoch 1 (a concurrent rotation) is not what r2 names.
    EpochKey other = NewKey();
    KeyRecord r1b = Make(admin, doc, {admin.key}, other, &r0, &k0);
    CHECK(CheckLink(r1b, r2).code() == StatusCode::kCorruption);
    CHECK(UnwrapPreviousKey(r2, k2, r1b).status().code() == StatusCode::kCorruption);
    // A key record of another document cannot link.
    KeyRecord elsewhere = Make(admin, "another", {admin.key}, NewKey());
    CHECK(CheckLink(elsewhere, r1).code() == StatusCode::kCorruption);
  }
}

TEST_CASE("every flipped byte of a record fails to decode or to verify", "[sdk][e2e]") {
  Device admin, a, b;
  EpochKey k0 = NewKey(), k1 = NewKey();
  KeyRecord r0 = Make(admin, "doc", {a.key, b.key}, k0);
  KeyRecord r1 = Make(admin, "doc", {a.key, b.key, admin.key}, k1, &r0, &k0);
  const std::vector<PublicKey> admins = {admin.key};
  for (const KeyRecord* r : {&r0, &r1}) {
    const std::string good = EncodeKeyRecord(*r);
    INFO("epoch " << r->epoch << ", " << good.size() << " bytes");
    size_t decoded = 0;
    for (size_t i = 0; i < good.size(); ++i) {
      for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xff}}) {
        std::string bad = good;
        bad[i] = static_cast<char>(bad[i] ^ mask);
        auto d = DecodeKeyRecord(bad);
        if (!d.ok()) continue;
        ++decoded;
        INFO("byte " << i << " mask " << int(mask));
        CHECK_FALSE(VerifyKeyRecord(*d, admins).ok());
        CHECK_FALSE(VerifyKeyRecordSignature(*d).ok());
        CHECK_FALSE(OpenEpochKey(*d, *a.secret).ok());
      }
    }
    CHECK(decoded > 0);  // most flips decode; the signature is what catches them
  }
}

TEST_CASE("a record signed by someone who is not an admin is refused", "[sdk][e2e]") {
  Device admin, a, stranger;
  EpochKey k = NewKey();
  const std::vector<PublicKey> admins = {admin.key};
  // Signed by the stranger under its own name: a valid signature, but not an admin's.
  KeyRecord forged = Make(stranger, "doc", {a.key}, k);
  REQUIRE(VerifyKeyRecordSignature(forged).ok());
  Status s = VerifyKeyRecord(forged, admins);
  CHECK(s.code() == StatusCode::kPermissionDenied);
  CHECK_THAT(s.message(), Catch::Contains("not an admin"));
  // Claiming to be the admin: the signature does not hold.
  KeyRecord claimed = forged;
  claimed.admin = admin.key;
  CHECK(VerifyKeyRecord(claimed, admins).code() == StatusCode::kCorruption);
  CHECK(OpenEpochKey(claimed, *a.secret).status().code() == StatusCode::kCorruption);
  // A signature of another purpose over the same bytes is not a record's signature.
  KeyRecord other_purpose = Make(admin, "doc", {a.key}, k);
  auto sig = admin.secret->Sign(kChangePurpose, SignedBytes(other_purpose));
  REQUIRE(sig.ok());
  other_purpose.signature = *sig;
  CHECK(VerifyKeyRecord(other_purpose, admins).code() == StatusCode::kCorruption);
}

TEST_CASE("altered payloads, headers, epochs and replays are refused", "[sdk][e2e]") {
  Device admin, a;
  const std::string doc = "doc";
  EpochKey k0 = NewKey(), k1 = NewKey();
  KeyRecord r0 = Make(admin, doc, {a.key}, k0);
  KeyRecord r1 = Make(admin, doc, {a.key}, k1, &r0, &k0);
  const std::string ad0 = Header(doc, 7, 0);
  const std::string c0 = Encrypt(k0, 0, ad0, "hello");
  REQUIRE(*DecryptPayload(k0, ad0, c0) == "hello");
  // Nonces are random: the same plaintext twice gives two ciphertexts.
  CHECK(Encrypt(k0, 0, ad0, "hello") != c0);

  SECTION("every flipped byte") {
    for (size_t i = 0; i < c0.size(); ++i) {
      std::string bad = c0;
      bad[i] = static_cast<char>(bad[i] ^ 0x01);
      auto d = DecryptPayload(k0, ad0, bad);
      INFO("byte " << i << ": " << d.status().ToString());
      CHECK_FALSE(d.ok());
      CHECK((i == 0 ? d.status().code() == StatusCode::kUnsupportedVersion
                    : d.status().code() == StatusCode::kPermissionDenied));
    }
  }
  SECTION("another header: another seq, author, document or epoch") {
    CHECK(DecryptPayload(k0, Header(doc, 8, 0), c0).status().code() ==
          StatusCode::kPermissionDenied);
    CHECK(DecryptPayload(k0, Header("other", 7, 0), c0).status().code() ==
          StatusCode::kPermissionDenied);
    CHECK(DecryptPayload(k0, Header(doc, 7, 1), c0).status().code() ==
          StatusCode::kPermissionDenied);
    CHECK(DecryptPayload(k0, "", c0).status().code() == StatusCode::kPermissionDenied);
  }
  SECTION("the epoch field swapped, with or without the other epoch's key") {
    std::string swapped = c0;
    swapped[8] = 1;  // epoch 0 -> 1 (big-endian, last byte)
    REQUIRE(*PayloadEpoch(swapped) == 1);
    CHECK(DecryptPayload(k0, ad0, swapped).status().code() == StatusCode::kPermissionDenied);
    CHECK(DecryptPayload(k1, ad0, swapped).status().code() == StatusCode::kPermissionDenied);
    CHECK(DecryptPayload(k1, ad0, c0).status().code() == StatusCode::kPermissionDenied);
  }
  SECTION("an old epoch's ciphertext replayed under a new header") {
    const std::string ad1 = Header(doc, 9, 1);
    CHECK(DecryptPayload(k0, ad1, c0).status().code() == StatusCode::kPermissionDenied);
    CHECK(DecryptPayload(k1, ad1, c0).status().code() == StatusCode::kPermissionDenied);
  }
  SECTION("an empty plaintext round-trips") {
    const std::string c = Encrypt(k1, 1, "h", "");
    CHECK(c.size() == 1 + 8 + 24 + 16);
    auto d = DecryptPayload(k1, "h", c);
    REQUIRE(d.ok());
    CHECK(d->empty());
  }
  SECTION("no key") {
    EpochKey none;
    CHECK(EncryptPayload(none, 0, "", "x").status().code() == StatusCode::kInvalidArgument);
    CHECK(DecryptPayload(none, ad0, c0).status().code() == StatusCode::kInvalidArgument);
  }
}

TEST_CASE("every truncation of a record and of a payload is an error", "[sdk][e2e]") {
  Device admin, a, b;
  EpochKey k0 = NewKey(), k1 = NewKey();
  KeyRecord r0 = Make(admin, "doc", {a.key, b.key}, k0);
  KeyRecord r1 = Make(admin, "doc", {a.key, b.key}, k1, &r0, &k0);
  for (const KeyRecord* r : {&r0, &r1}) {
    const std::string good = EncodeKeyRecord(*r);
    for (size_t n = 0; n < good.size(); ++n) {
      // A copy of exactly n bytes, so that the sanitizer build sees any read past them.
      std::unique_ptr<char[]> cut(new char[n + 1]);
      std::copy(good.begin(), good.begin() + n, cut.get());
      auto d = DecodeKeyRecord(std::string_view(cut.get(), n));
      INFO("length " << n);
      REQUIRE_FALSE(d.ok());
      CHECK(d.status().code() == StatusCode::kCorruption);
      CHECK_FALSE(d.status().message().empty());
    }
    // A byte too many.
    CHECK(DecodeKeyRecord(good + "x").status().code() == StatusCode::kCorruption);
  }
  const std::string c = Encrypt(k0, 0, "ad", "some text to cut");
  for (size_t n = 0; n < c.size(); ++n) {
    std::unique_ptr<char[]> cut(new char[n + 1]);
    std::copy(c.begin(), c.begin() + n, cut.get());
    auto d = DecryptPayload(k0, "ad", std::string_view(cut.get(), n));
    INFO("length " << n);
    REQUIRE_FALSE(d.ok());
    CHECK((d.status().code() == StatusCode::kCorruption ||
           d.status().code() == StatusCode::kPermissionDenied));
  }
  CHECK(DecryptPayload(k0, "ad", c + "x").status().code() == StatusCode::kPermissionDenied);
}

TEST_CASE("hostile record encodings are refused with a clear error", "[sdk][e2e]") {
  Device admin, a, b;
  EpochKey k0 = NewKey();
  KeyRecord r0 = Make(admin, "doc", {a.key, b.key}, k0);
  const std::string good = EncodeKeyRecord(r0);
  auto code = [](const std::string& bytes) { return DecodeKeyRecord(bytes).status().code(); };
  // Layout of epoch 0: version(1) doc_len(2) doc(3) epoch(8) admin(32) check(32) count(4) ...
  const size_t count_at = 1 + 2 + 3 + 8 + 32 + 32;
  std::string v = good;
  v[0] = 2;
  CHECK(code(v) == StatusCode::kUnsupportedVersion);
  std::string huge_count = good;
  huge_count[count_at] = '\x7f';  // about two billion readers
  CHECK(code(huge_count) == StatusCode::kCorruption);
  std::string many = good;
  many[count_at + 3] = 3;  // three readers in the bytes of two
  CHECK(code(many) == StatusCode::kCorruption);
  std::string zero = good;
  zero[count_at + 3] = 0;
  CHECK(code(zero) == StatusCode::kCorruption);
  std::string long_doc = good;
  long_doc[1] = '\xff';  // a document ID longer than the record
  CHECK(code(long_doc) == StatusCode::kCorruption);
  std::string nul_doc = good;
  nul_doc[3] = '\0';  // not a valid document ID
  auto d = DecodeKeyRecord(nul_doc);
  CHECK(d.status().code() == StatusCode::kCorruption);
  CHECK_THAT(d.status().message(), Catch::Contains("document ID"));
  // Readers swapped out of order: decodes as nothing.
  KeyRecord swapped = r0;
  std::swap(swapped.readers[0], swapped.readers[1]);
  auto s = DecodeKeyRecord(EncodeKeyRecord(swapped));
  CHECK(s.status().code() == StatusCode::kCorruption);
  CHECK_THAT(s.status().message(), Catch::Contains("ascending"));
  CHECK(VerifyKeyRecordSignature(swapped).code() == StatusCode::kCorruption);
  // Random bytes of every length up to a few hundred: refused, never a crash.
  const uint64_t seed = testing::SeedFromEnv() ? testing::SeedFromEnv() : 1;
  INFO("seed " << seed << " (WEFT_SEED=" << seed << " replays it)");
  testing::Rng rng(seed);
  for (size_t n = 0; n < 400; ++n) {
    std::string junk(n, '\0');
    for (char& ch : junk) ch = static_cast<char>(rng.Next());
    if (n > 0) junk[0] = static_cast<char>(kRecordVersion);
    CHECK_FALSE(DecodeKeyRecord(junk).ok());
  }
}

TEST_CASE("concurrent rotations resolve the same way on every replica", "[sdk][e2e]") {
  Device admin1, admin2, a, b;
  const std::string doc = "shared";
  EpochKey k0 = NewKey();
  KeyRecord r0 = Make(admin1, doc, {admin1.key, admin2.key, a.key, b.key}, k0);
  // Two admins rotate epoch 0 at once (one removes a, the other b), and one of them rotates
  // again from its own epoch 1.
  EpochKey k1a = NewKey(), k1b = NewKey(), k1c = NewKey(), k2 = NewKey();
  KeyRecord r1a = Make(admin1, doc, {admin1.key, admin2.key, b.key}, k1a, &r0, &k0);
  KeyRecord r1b = Make(admin2, doc, {admin1.key, admin2.key, a.key}, k1b, &r0, &k0);
  KeyRecord r1c = Make(admin2, doc, {admin1.key, admin2.key}, k1c, &r0, &k0);
  KeyRecord r2 = Make(admin1, doc, {admin1.key, admin2.key}, k2, &r1a, &k1a);
  std::vector<KeyRecord> all = {r0, r1a, r1b, r1c};

  // The order is total and antisymmetric.
  for (const KeyRecord& x : all) {
    CHECK(CompareRecords(x, x) == 0);
    for (const KeyRecord& y : all) {
      if (&x == &y) continue;
      CHECK(CompareRecords(x, y) == -CompareRecords(y, x));
      CHECK(CompareRecords(x, y) != 0);
    }
  }
  const KeyRecord* newest = NewestRecord(all);
  REQUIRE(newest != nullptr);
  CHECK(newest->epoch == 1);
  const std::string winner = RecordHash(*newest);

  // Every arrival order picks the same one; so do copies that went through the encoding.
  std::sort(all.begin(), all.end(),
            [](const KeyRecord& x, const KeyRecord& y) { return RecordHash(x) < RecordHash(y); });
  size_t orders = 0;
  do {
    std::vector<KeyRecord> seen;
    for (const KeyRecord& r : all) seen.push_back(*DecodeKeyRecord(EncodeKeyRecord(r)));
    CHECK(RecordHash(*NewestRecord(seen)) == winner);
    ++orders;
  } while (std::next_permutation(
      all.begin(), all.end(),
      [](const KeyRecord& x, const KeyRecord& y) { return RecordHash(x) < RecordHash(y); }));
  CHECK(orders == 24);

  // Both epoch 1 keys stay readable to their readers, and a later epoch wins over both.
  CHECK(IsKeyOf(r1a, Open(r1a, b)));
  CHECK(IsKeyOf(r1b, Open(r1b, a)));
  all.push_back(r2);
  CHECK(RecordHash(*NewestRecord(all)) == RecordHash(r2));
  CHECK(NewestRecord(std::vector<KeyRecord>{}) == nullptr);

  // More rotations at once (eight admins from the same epoch 0), shuffled at random on each
  // "replica": the same winner every time.
  std::vector<Device> admins(8);
  std::vector<KeyRecord> many;
  for (Device& d : admins) {
    EpochKey k = NewKey();
    many.push_back(Make(d, doc, {d.key, a.key}, k, &r0, &k0));
  }
  const std::string many_winner = RecordHash(*NewestRecord(many));
  const uint64_t seed = testing::SeedFromEnv() ? testing::SeedFromEnv() : 7;
  INFO("seed " << seed << " (WEFT_SEED=" << seed << " replays it)");
  testing::Rng rng(seed);
  for (int replica = 0; replica < 200; ++replica) {
    for (size_t i = many.size() - 1; i > 0; --i) std::swap(many[i], many[rng.Below(i + 1)]);
    CHECK(RecordHash(*NewestRecord(many)) == many_winner);
  }
}
