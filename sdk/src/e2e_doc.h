// End-to-end encrypted documents: the wiring of the cryptographic core (e2e.h) into changes and
// access lists (internal to the SDK; docs/security.md, "End-to-end encrypted documents").
//
// A document is encrypted when its first change holds an encrypt op (crdt::AccessAction::
// kEncrypt). Its key records travel in clear in keys ops (kKeys, the EncodeKeyRecord bytes); a
// change's content ops travel as one sealed op (crdt::Op::Type::kSealed) whose ciphertext is
// EncryptPayload(epoch key, epoch, ChangeHeader, the content ops encoded as a change). Relays and
// devices without the key apply the sealed op as it is (it takes its seqs, changes nothing);
// a device holding the key decrypts and applies the content ops in its place (OpenChange).
//
// DocKeys is a plain value owned by one document's state; not thread-safe (the replica's
// document locks serialise it). The free functions are thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "e2e.h"
#include "weft/crdt/document.h"

namespace weft::e2e {

// A key record held by a document (from a valid keys op), with its hash.
struct HeldRecord {
  KeyRecord record;
  std::string hash;  // RecordHash(record)
  crdt::Dot dot;     // the keys op's
};

// A keys op's record, checked: it decodes, is for `doc`, names the op's principal as its admin
// and carries that admin's signature. (That the admin held admin or owner at the op's causal
// past is the access list's rule, checked by crdt.) kCorruption or kPermissionDenied otherwise.
Result<KeyRecord> CheckKeysOp(std::string_view doc, const crdt::Op& op);

// Whether `c`'s ops are laid out as an encrypted (or a plain) document allows: in an encrypted
// one every op that is not an access op is a single sealed op; in a plain one there is none.
// kPermissionDenied saying what is wrong.
Status CheckLayout(const crdt::Change& c, bool encrypted);

// What a sealed op's ciphertext is bound to, besides its epoch: the document, the change's
// author, dependencies, Lamport and hybrid times, and the seqs the sealed op takes.
std::string ChangeHeader(std::string_view doc, const crdt::Change& c, uint64_t first_seq,
                         uint64_t span);

// The keys one device holds for one document: every record its access list holds, and the
// epoch keys this device's secret key opens from them (directly, or back through the chain).
// Kept in memory only, derived from the records in the device's own database with its own key:
// nothing here is ever sent.
class DocKeys {
 public:
  // Takes in the keys ops of `access` not seen yet and opens what `mine` can. Records that do not
  // check (CheckKeysOp) are skipped (the change that carried them was refused when it arrived).
  void Refresh(std::string_view doc, const crdt::AccessList& access, const SecretKey& mine);
  // The same for the keys ops of a change not applied yet (so that a change can be read under
  // the key its own rotation brings); its records join only when the change is applied.
  void RefreshWith(std::string_view doc, const crdt::Change& c, const SecretKey& mine);
  // The newest record held (CompareRecords), or nullptr.
  const HeldRecord* Newest() const;
  // The key of the record with hash `hash`, or nullptr.
  const EpochKey* KeyOf(const std::string& hash) const;
  // Every key held for `epoch` (several after concurrent rotations).
  std::vector<const EpochKey*> KeysOfEpoch(uint64_t epoch) const;
  // Whether the key of every record of `epoch` held is held too.
  bool HoldsEveryKeyOf(uint64_t epoch) const;
  bool empty() const { return records_.empty(); }
  // Every record held, in the order taken in.
  const std::vector<HeldRecord>& records() const { return records_; }

 private:
  // Takes in one keys op's record (when it checks and is new); whether it was new.
  bool Take(std::string_view doc, const crdt::Op& op, crdt::Dot dot);
  void OpenAll(const SecretKey& mine);

  std::set<crdt::Dot> seen_;
  std::vector<HeldRecord> records_;
  std::map<std::string, size_t> by_hash_;  // index in records_ by record hash
  std::set<std::string> tried_;            // records whose box was tried with this device's key
  std::map<std::string, EpochKey> keys_;   // by record hash
  std::map<uint64_t, std::vector<std::string>> by_epoch_;  // record hashes with a key, by epoch
};

// Seals the content ops of `plain` (one contiguous run; access ops stay in clear around it) under
// `record`'s epoch and `key`: the same change with the run replaced by one sealed op. A change
// with no content ops is returned as it is. kInvalidArgument when content and access ops
// interleave.
Result<crdt::Change> SealChange(std::string_view doc, const crdt::Change& plain,
                                const KeyRecord& record, const EpochKey& key);

// The change with its sealed op replaced by the content ops it holds, or nullopt (with
// `*missing` the payload's epoch) when `keys` lacks the key of a record of that epoch.
// kPermissionDenied when every key of that epoch is held and none decrypts it (altered, moved,
// another epoch's ciphertext);
// kCorruption when what decrypts is not the run of ops the sealed op stands for. A change
// without a sealed op is returned as it is.
Result<std::optional<crdt::Change>> OpenChange(std::string_view doc, const crdt::Change& c,
                                               const DocKeys& keys, uint64_t* missing);

// An encrypted document's snapshot as an owner or admin device seals it for relays to keep and
// serve to new members (Replica::SealEncryptedState): the key record whose epoch key encrypts it,
// in clear (a relay serves it only to that record's readers; a reader opens its key from it), and
// EncryptPayload(that key, its epoch, SnapshotHeader, crdt::Document::EncodeSnapshot). Encoded:
// version (1 byte) || record size (8 bytes, big-endian) || EncodeKeyRecord || payload.
inline constexpr uint8_t kSnapshotVersion = 1;
struct EncryptedSnapshot {
  KeyRecord record;
  std::string record_hash;  // RecordHash(record)
  std::string payload;
};
std::string EncodeEncryptedSnapshot(const KeyRecord& record, std::string_view payload);
// kCorruption for bytes that are not one encoded snapshot (the record must decode and its
// signature verify: who signed it is the caller's to check), kUnsupportedVersion for an unknown
// version. Never reads past `bytes`.
Result<EncryptedSnapshot> DecodeEncryptedSnapshot(std::string_view bytes);
// What an encrypted snapshot's ciphertext is bound to: the document, the version and Lamport time
// it holds, and the record whose key encrypts it.
std::string SnapshotHeader(std::string_view doc, const crdt::VersionVector& version,
                           uint64_t lamport, std::string_view record_hash);

// Whether `c` holds a sealed op or a keys op.
bool HasSealed(const crdt::Change& c);
bool HasKeysOps(const crdt::Change& c);

}  // namespace weft::e2e
