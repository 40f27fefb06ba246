// End-to-end encrypted documents: the cryptographic core (internal to the SDK).
//
// A document's content is encrypted under a symmetric key per *epoch*. For each epoch an admin
// makes a KeyRecord: the epoch key sealed (crypto_box_seal) to each reader device's X25519 key
// (converted from its Ed25519 identity), the previous epoch's key wrapped under the new one (so
// that a member added later reaches history by walking the chain backwards), and the admin's
// Ed25519 signature over all of it (kE2eKeysPurpose). Sealed boxes do not say who sealed them:
// the signature, checked against the admins the document's access list names, is what stops a
// relay or a stranger from handing readers a key of its own. Payloads are XChaCha20-Poly1305
// with a random nonce, the caller's header (document, author, seq, dependencies, epoch) as
// associated data. docs/security.md ("End-to-end encrypted documents: the key schedule") holds
// the design and what is not built yet (this module is not wired into documents or sync).
//
// Value types (KeyRecord, SealedKey) are safe to copy and share between threads. EpochKey is a
// resource type: move-only, its bytes in libsodium's guarded memory, wiped when destroyed.
// Every function here is thread-safe (no shared state beyond libsodium's generator).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "identity_internal.h"
#include "weft/identity.h"
#include "weft/status.h"

namespace weft::e2e {

// Limits on what a record may hold, checked when making and decoding one.
inline constexpr size_t kMaxReaders = 10000;
// The encoding's version (the first byte of a record and of a payload).
inline constexpr uint8_t kRecordVersion = 1;
inline constexpr uint8_t kPayloadVersion = 1;

// One epoch's 32-byte symmetric key.
class EpochKey {
 public:
  static constexpr size_t kSize = 32;

  // No key (valid() is false) until Generate or an open fills it.
  EpochKey();
  EpochKey(EpochKey&&) noexcept = default;
  EpochKey& operator=(EpochKey&&) noexcept = default;
  EpochKey(const EpochKey&) = delete;
  EpochKey& operator=(const EpochKey&) = delete;

  // A new random key. kInternal when libsodium cannot start or has no guarded memory.
  static Result<EpochKey> Generate();

  bool valid() const { return bytes_ != nullptr && filled_; }
  // The key's bytes (kSize), for the AEAD calls in e2e.cpp; nullptr when not valid.
  const uint8_t* data() const { return valid() ? bytes_.get() : nullptr; }

 private:
  friend struct EpochKeyAccess;  // e2e.cpp: fills a key it opened or unwrapped
  struct Free {
    void operator()(uint8_t* p) const;
  };
  std::unique_ptr<uint8_t, Free> bytes_;
  bool filled_ = false;
};

// The same as EpochKey::Generate.
Result<EpochKey> NewEpochKey();

// One reader device's copy of an epoch key: sealed to its X25519 key.
struct SealedKey {
  PublicKey reader;
  std::string sealed;  // crypto_box_seal of the 32-byte key: 80 bytes

  friend bool operator==(const SealedKey&, const SealedKey&) = default;
};

// One epoch of one document's keys. Made by MakeKeyRecord, checked by VerifyKeyRecord.
struct KeyRecord {
  std::string doc;        // the document ID (1 to 1024 bytes)
  uint64_t epoch = 0;     // 0 for the first key, previous + 1 after
  std::string prev_hash;  // RecordHash of the previous epoch's record; empty for epoch 0
  PublicKey admin;        // who made and signed it
  // BLAKE2b-256 keyed by the epoch key over the document and epoch: lets a reader check that the
  // key it opened (or unwrapped) is the one every other reader got, without revealing it.
  std::string key_check;
  std::vector<SealedKey> readers;  // ascending by reader key, no duplicates, at least one
  std::string wrapped_prev;        // the previous epoch's key under this one; empty for epoch 0
  Signature signature{};           // admin's, kE2eKeysPurpose, over SignedBytes()

  friend bool operator==(const KeyRecord&, const KeyRecord&) = default;
};

// Makes and signs the record of a new epoch of `doc`, sealing `key` to each of `readers`
// (duplicates are ignored; the admin reads only if it lists itself). For epoch 0 pass no
// previous record and no previous key; for a rotation pass both: the new record's epoch is the
// previous one's + 1, it names the previous record by its hash and wraps `previous_key` under
// `key`. kInvalidArgument for a bad document ID, no readers, too many, an invalid reader key
// (not an Ed25519 point), or a previous key that does not match the previous record.
Result<KeyRecord> MakeKeyRecord(const SecretKey& admin, std::string_view doc,
                                std::span<const PublicKey> readers, const EpochKey& key,
                                const KeyRecord* previous = nullptr,
                                const EpochKey* previous_key = nullptr);

// The canonical, versioned binary encoding (docs/security.md has the layout). One record has one
// encoding: Decode(Encode(r)) == r and Encode(Decode(b)) == b for every b that decodes.
std::string EncodeKeyRecord(const KeyRecord& record);
// kCorruption for bytes that are not exactly one well-formed record (truncated, trailing bytes,
// a size past a limit, readers out of order); kUnsupportedVersion for an unknown version.
// Never reads past `bytes`. Does not check the signature: see VerifyKeyRecord.
Result<KeyRecord> DecodeKeyRecord(std::string_view bytes);

// The bytes the admin's signature covers: the encoding without its last 64 bytes (signature).
std::string SignedBytes(const KeyRecord& record);
// The record's identity: BLAKE2b-256 of a context string and SignedBytes (32 bytes). What the
// next epoch's prev_hash names and what breaks ties between concurrent rotations.
std::string RecordHash(const KeyRecord& record);

// Whether the record is well formed and its signature is its admin's. kCorruption otherwise.
Status VerifyKeyRecordSignature(const KeyRecord& record);
// VerifyKeyRecordSignature, and the admin is one of `admins` (the keys the document's access list
// lets administer it): kPermissionDenied otherwise.
Status VerifyKeyRecord(const KeyRecord& record, std::span<const PublicKey> admins);
// Whether `next` follows `previous`: the same document, the next epoch, naming previous's hash.
// kCorruption otherwise.
Status CheckLink(const KeyRecord& previous, const KeyRecord& next);

// Opens this device's copy of the epoch key. Checks the record's signature (not who signed: call
// VerifyKeyRecord for that) and that the key opened matches key_check. kPermissionDenied when the
// device is not among the readers or its box does not open with `mine`; kCorruption when the
// record is malformed or what opens does not match key_check.
Result<EpochKey> OpenEpochKey(const KeyRecord& record, const SecretKey& mine);

// Whether `key` is this record's epoch key (compares key_check in constant time).
bool IsKeyOf(const KeyRecord& record, const EpochKey& key);

// The previous epoch's key, unwrapped with this epoch's `key`; `previous` is the previous
// epoch's record, checked to be the one `record` names (CheckLink) and against the key that
// comes out. kInvalidArgument for epoch 0; kPermissionDenied when `key` is not this epoch's;
// kCorruption when the link or the wrapped key does not check.
Result<EpochKey> UnwrapPreviousKey(const KeyRecord& record, const EpochKey& key,
                                   const KeyRecord& previous);

// Every epoch's key from the last one's: `chain` is the records of epochs 0..n in order (each
// linked to the one before), `latest` the key of epoch n (moved in). Returns keys 0..n. Only the
// last record's signature needs checking (OpenEpochKey, VerifyKeyRecord): each record names the
// one before by its hash, so that signature covers the whole chain.
Result<std::vector<EpochKey>> KeysThroughChain(std::span<const KeyRecord> chain, EpochKey latest);

// Encrypts `plaintext` under `key` for `epoch`, with `header_ad` authenticated but not encrypted.
// The result is: version (1 byte) || epoch (8 bytes, big-endian) || nonce (24 random bytes) ||
// XChaCha20-Poly1305 ciphertext and tag; the version and epoch are authenticated too.
// kInvalidArgument for an invalid key.
Result<std::string> EncryptPayload(const EpochKey& key, uint64_t epoch, std::string_view header_ad,
                                   std::string_view plaintext);
// The epoch a payload says it is for (to pick its key). kCorruption when too short,
// kUnsupportedVersion for an unknown version.
Result<uint64_t> PayloadEpoch(std::string_view payload);
// Decrypts what EncryptPayload made with the same key and header. kCorruption when the bytes are
// too short to be a payload, kUnsupportedVersion for an unknown version, kPermissionDenied when
// it does not authenticate: a wrong key (another epoch's, or none of this document's), or the
// ciphertext, its epoch or its header altered.
Result<std::string> DecryptPayload(const EpochKey& key, std::string_view header_ad,
                                   std::string_view payload);

// The total order between records that decides which epoch a writer encrypts under when
// rotations were concurrent: by epoch, then by RecordHash (bytewise). Negative, 0 or positive as
// `a` comes before, is, or comes after `b`. Every replica that holds the same records picks the
// same newest, whatever order they arrived in.
int CompareRecords(const KeyRecord& a, const KeyRecord& b);
// The newest of `records` under CompareRecords; nullptr when empty.
const KeyRecord* NewestRecord(std::span<const KeyRecord> records);

}  // namespace weft::e2e
