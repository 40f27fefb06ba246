// The Weft SDK: a replica backed by one SQLite database file.
//
// A Replica accepts every write locally, at once, online or offline. Each transaction commits as
// one CRDT change and one SQLite transaction: the change joins the op log (the source of truth),
// and snapshots (caches rebuilt from the log) are made by a policy. Sync carries the op
// log between replicas through ChangesSince / ApplyRemoteChanges.
//
// Thread safety: a Replica may be used from any number of threads. Reads (Read, Version,
// ChangesSince, ...) run concurrently with each other (reads of one document take turns, since
// text lookups keep a cursor cache) and with a writer's SQLite commit; a writer (Transact,
// ApplyRemoteChanges) excludes other writers, and excludes readers only while it applies its
// change in memory (and, for remote batches, while it commits them). Change-feed callbacks and
// resolvers run on the thread that committed, after the commit, with no lock held: they may read
// the replica and may start transactions.
//
// Nothing throws across this API: every call that can fail returns a Status or a Result.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "weft/crdt/causality.h"
#include "weft/crdt/document.h"
#include "weft/identity.h"
#include "weft/status.h"
#include "weft/values.h"

namespace weft {

using crdt::NodeId;
using crdt::VersionVector;

enum class Durability {
  kNormal,  // SQLite synchronous=NORMAL in WAL mode: survives an app crash
  kFull,    // synchronous=FULL: also survives power loss
  // Also survives power loss, with group commit: commits write the log without fsync, and a
  // background thread fsyncs it, one fsync for every commit made while the one before ran.
  // Transact returns once its commit is durable; ApplyRemoteChanges returns once stored, with
  // ApplyReport::commit to wait on (WhenDurable, WaitDurable) before acknowledging it: a relay
  // keeps its network threads and locks free during fsyncs, and fsyncs once per burst.
  kGroup,
};

struct ReplicaOptions {
  Durability durability = Durability::kNormal;
  // Snapshot policy: write a document's snapshot after this many changes since its last one
  // (0: never). Opening a document loads its latest snapshot and replays the log after it. Each
  // snapshot also compacts the log before it; a replica closed with at least an eighth of this
  // many new changes (or of snapshot_every_ops new ops) in a document snapshots it at close
  // (unless this is 0).
  uint32_t snapshot_every = 1000;
  // ... or after this many ops (a map write is one op, a text insert one per character), so
  // that a reopen replays a bounded amount of work (0: no bound by ops).
  uint32_t snapshot_every_ops = 20000;
  // Create the database when the file does not exist.
  bool create_if_missing = true;
  // Milliseconds since the epoch; defaults to the system clock. Tests hand in their own.
  std::function<uint64_t()> clock;
  // The name of a registered SQLite VFS to use (a test seam for fault injection); empty: default.
  std::string vfs;
  // Remote changes more than this far ahead of `clock` are refused (kClockDrift).
  uint64_t max_drift_ms = crdt::HybridClock::kDefaultMaxDriftMs;
  // Whether to check remote drift at all: a relay with a trusted clock does; a device whose clock
  // may be wrong should not (see docs/crdt.md).
  bool check_drift = false;
  // The node ID a newly created database takes; 0 (the default): a random one. A seam for
  // deterministic tests and simulations: two replicas must never share a node ID.
  NodeId new_node_id;
  // Local changes are authored by the last open's author ID when the database was closed cleanly
  // and is the latest state of it (not restored from an old copy, not copied while open: see
  // docs/storage.md, "Authors"), else by a new one, so that no seq is ever issued twice with
  // different content. `new_actor`: the ID a new author takes (0, the default: a random one);
  // `session_actor`: the author of this open whatever the lease says (0: none). Test seams, as
  // above.
  NodeId new_actor;
  NodeId session_actor;
  // Documents this replica creates are owned by its key (docs/security.md): nobody else reads or
  // writes them until the owner grants a role. true: they are public instead (no access list;
  // anyone may read and write them, as before access lists).
  bool public_documents = false;
  // On a store shared with other replicas (relays on one database: store::Store::Shared), a
  // loaded document takes what the others store as they store it (on the store's notices), and,
  // in case a notice was missed, every loaded document's log is read again this often.
  std::chrono::milliseconds follow_poll{5000};
  // Whether a thread of the replica's own does that following; false: the app calls
  // Replica::FollowStore when it wants (a deterministic simulation does).
  bool follow_in_background = true;
};

// What a commit produced.
struct CommitInfo {
  bool changed = false;   // false: the transaction made no ops, nothing was written
  crdt::Dot change;       // the change's id (author, first seq)
  VersionVector version;  // the document's version after the commit
};

// One commit, local or remote, as the change feed reports it.
struct ChangeEvent {
  std::string doc;
  bool local = false;
  crdt::Dot change;
  std::vector<crdt::Patch> patches;
  // The document was replaced by an imported snapshot (Replica::ImportSnapshot), or, on a store
  // shared with other replicas, changed by another while this one did not have it loaded:
  // `patches` is empty and `change` is unset; read the document again.
  bool snapshot = false;
  // The change (or one of the batch) holds access list ops: who may read or write may have
  // changed (also set with `snapshot`).
  bool access = false;
  // On a store shared with other replicas (relays on one database): the changes others stored
  // that this event applies, as stored (crdt::EncodeChange bytes, signed), in the order applied,
  // so that a relay forwards them without reading them back. Empty for other events.
  std::vector<std::string> followed;
};
using ChangeCallback = std::function<void(const ChangeEvent&)>;

// Called when a remote change leaves a map key with siblings (resolve on write). Returning a
// value writes it as a local change that replaces exactly the siblings it was shown; nullopt
// leaves the siblings for the app to resolve on read.
struct ConflictInfo {
  std::string doc;
  crdt::ObjectId object;
  std::string key;
  std::vector<crdt::Value> siblings;
};
using ConflictResolver = std::function<std::optional<crdt::Scalar>(const ConflictInfo&)>;

// Roles in a document's access list: reader < writer < admin < owner.
using Role = crdt::Role;

// A document's access list as this replica holds it.
struct DocumentAccess {
  bool owned = false;                 // false: a public document (anyone may read and write it)
  std::map<PublicKey, Role> members;  // every key with a role, the owner's as kOwner
};

// A document's end-to-end encryption as this device holds it (docs/security.md, "End-to-end
// encrypted documents").
struct EncryptionInfo {
  bool encrypted = false;  // false: a plain document (the rest is empty)
  // The newest key epoch the document holds (the one writers encrypt under once its readers
  // match the access list), and whether this device holds its key.
  uint64_t epoch = 0;
  bool has_key = false;
  // Epochs of changes this device holds but cannot decrypt (no key): while any, Read fails with
  // kPermissionDenied rather than show a partial state.
  std::vector<uint64_t> missing_epochs;
};

// The result of applying a batch of remote changes.
struct ApplyReport {
  size_t applied = 0;     // new changes applied
  size_t duplicates = 0;  // changes already held
  size_t frozen = 0;      // changes of authors frozen for equivocating, not applied
  VersionVector version;  // the document's version after the batch
  // Durability::kGroup: the commit to wait on before the batch is durable (0: it already is).
  uint64_t commit = 0;
};

// An author caught signing two different changes that claim the same seqs of a document (a
// fork of its history, e.g. a database copied and used in two places, or a malicious device).
// The author is frozen in the document from `seq`: no more of its changes are applied there.
struct Equivocation {
  std::string doc;
  NodeId author;
  uint64_t seq = 0;         // a seq both changes claim
  PublicKey key;            // the key that signed both
  std::string held, other;  // the two changes (crdt::EncodeChange): the proof
  int64_t detected_ms = 0;
};

// What this replica refused for integrity since it was opened.
struct IntegrityCounters {
  uint64_t signatures_refused = 0;  // changes whose author's signature did not verify
  uint64_t equivocations = 0;       // authors caught equivocating (see Equivocation)
};

// A remote change as it travels: the encoded bytes of crdt::EncodeChange.
using ChangeBlob = std::string;

// One change of a document's history (Replica::History), in this replica's log order.
struct HistoryEntry {
  crdt::Dot change;      // its author and first seq
  uint64_t end_seq = 0;  // its last seq
  uint64_t lamport = 0;
  uint64_t time_ms = 0;  // the author's clock at commit (hybrid logical time, milliseconds)
  size_t ops = 0;
  // The document's version once this change was applied here: a version to read at (ReadAt,
  // EncodeCausalToken) or to diff between.
  VersionVector version;
};

// An owner's or admin's signature of a document's state at a version (kStatePurpose, over the
// document ID, the version, the Lamport time and a BLAKE2b-256 digest of the canonical state).
// A snapshot has no history whose signatures could be checked: a replica that trusts no relay
// takes one of an owned document only with a seal that matches it (docs/security.md).
//
// The seal of an end-to-end encrypted document's snapshot (`encrypted`) signs, for
// kE2eStatePurpose, a digest of the encrypted snapshot's bytes instead of the state (which a
// relay cannot read): a relay checks it against the version it holds and keeps the bytes; a
// reader checks it, decrypts, and checks the state inside (SealEncryptedState).
struct StateSeal {
  VersionVector version;
  uint64_t lamport = 0;
  PublicKey key;          // the signer: the owner or an admin in the sealed state
  std::string signature;  // 64 bytes
  bool encrypted = false;
};

// A document's state without its history, for bootstrapping another replica.
struct DocumentSnapshot {
  std::string data;       // crdt::Document::EncodeSnapshot(false)
  VersionVector version;  // the changes the snapshot holds
  std::optional<StateSeal> seal;
};

class Replica {
 public:
  // Opens (or creates, per options) the replica at `path`. Fails with kCorruption for a file
  // that is not a Weft database (or not SQLite), kUnsupportedVersion for one written by a newer
  // Weft, kIOError when the file cannot be opened; nothing is changed on failure.
  static Result<std::unique_ptr<Replica>> Open(const std::string& path,
                                               ReplicaOptions options = {});
  virtual ~Replica() = default;

  // The replica's stable node ID, chosen at random on first open: its identity in sync (the
  // handshake, loop-prevention paths, presence). Its local changes are authored by actor_id().
  virtual NodeId node_id() const = 0;
  // The author ID of the changes this open of the database makes: the same as the last open's
  // after a clean close, a new one after a crash or when the database was restored or copied.
  virtual NodeId actor_id() const = 0;
  // This device's identity: the public half of its Ed25519 key pair, made on the first open and
  // kept in the database (weft/identity.h).
  virtual const PublicKey& public_key() const = 0;
  // Signs `message` with this device's key for `purpose` (weft/identity.h: the purpose is part of
  // what is signed). For sync handshakes, author bindings and app admission tokens; the secret
  // key itself never leaves the replica.
  virtual Result<Signature> Sign(std::string_view purpose, std::string_view message) const = 0;
  virtual const std::string& path() const = 0;
  // Whether the holder of `key` may read `doc`: true for a public document (one without an
  // owner) and for one this replica does not hold; otherwise when its access list gives the key
  // a role.
  virtual bool MayRead(std::string_view doc, const PublicKey& key) = 0;

  // Access lists (docs/security.md). A document this replica creates is owned by its key unless
  // ReplicaOptions::public_documents; its owner and admins grant and revoke roles with changes
  // that sync like any other. Every replica checks every remote change against the list: a
  // reader's write, or a write past its author's revocation, is refused (kPermissionDenied), and
  // so is a local write by a key without a writer role.
  virtual Result<DocumentAccess> Access(std::string_view doc) = 0;
  // Gives `key` `role` (reader, writer or admin; admin only by the owner).
  virtual Result<CommitInfo> Grant(std::string_view doc, const PublicKey& key, Role role) = 0;
  // Takes `key`'s role away: its changes after the last one this replica holds are refused
  // everywhere the revocation reaches, and relays stop serving it the document.
  virtual Result<CommitInfo> Revoke(std::string_view doc, const PublicKey& key) = 0;
  // Every equivocation this replica detected, in all documents (docs/security.md).
  virtual Result<std::vector<Equivocation>> Equivocations() = 0;
  virtual IntegrityCounters Integrity() const = 0;

  // Documents, by string ID (1 to 1024 bytes of UTF-8).
  virtual Result<std::vector<std::string>> ListDocuments() = 0;
  virtual Status CreateDocument(std::string_view doc) = 0;  // OK if it exists
  // Creates `doc` end-to-end encrypted, owned by this device's key (docs/security.md): its
  // content travels and is stored everywhere else as ciphertext that only the devices of its
  // members can read (the key of each epoch sealed to each member's device key). Grant and
  // Revoke rotate the key (a new epoch sealed to the members after the change); every write
  // is encrypted under the newest epoch. Fixed at creation. kInvalidArgument when the document
  // exists already (encrypted or not).
  virtual Status CreateEncryptedDocument(std::string_view doc) = 0;
  // Whether `doc` is end-to-end encrypted and what this device can read of it. kNotFound when
  // absent.
  virtual Result<EncryptionInfo> Encryption(std::string_view doc) = 0;
  virtual bool HasDocument(std::string_view doc) = 0;
  // Removes the document, its log and snapshots. kNotFound when absent.
  virtual Status DeleteDocument(std::string_view doc) = 0;

  // Runs `body` in one transaction on `doc` (created if new). When `body` returns OK, its ops
  // commit as one change and one SQLite transaction; when it returns an error (or throws), or
  // the commit fails, nothing is left behind and that error is returned.
  virtual Result<CommitInfo> Transact(std::string_view doc,
                                      const std::function<Status(Txn&)>& body) = 0;
  // Runs `body` with a consistent read-only view of `doc`. kNotFound when the document is absent;
  // kPermissionDenied ("end-to-end encrypted, no key for epoch N") when it is an encrypted
  // document holding changes this device holds no key for.
  virtual Status Read(std::string_view doc, const std::function<void(const View&)>& body) = 0;

  // The document's version vector. kNotFound when absent.
  virtual Result<VersionVector> Version(std::string_view doc) = 0;
  // The changes a peer lacks given its version vector, in causal order, encoded. Reads only the
  // parts of the log the peer lacks something from (see docs/storage.md). kCorruption naming the
  // document when a stored change or segment it needs is damaged.
  virtual Result<std::vector<ChangeBlob>> ChangesSince(std::string_view doc,
                                                       const VersionVector& peer) = 0;
  // Validates and applies a batch of remote changes (any order within the batch; each is applied
  // once its dependencies are present, duplicates are skipped) in one SQLite transaction. Fails,
  // changing nothing, when a change is malformed or its dependencies are neither held nor in the
  // batch.
  Result<ApplyReport> ApplyRemoteChanges(std::string_view doc,
                                         const std::vector<ChangeBlob>& changes) {
    return ApplyRemoteChanges(doc, changes, nullptr);
  }
  // The same; `stored` (when set) runs once the batch is committed, before readers see the new
  // version and before the change feed hears of it (a relay remembers the changes for fan-out
  // there). It runs holding the replica's locks: it must not call back into the replica.
  using StoredHook = std::function<void(const ApplyReport&)>;
  // `only_author` (set for a peer that may send only its own changes): in an owned document,
  // every change must be authored by an actor bound to that key (kPermissionDenied otherwise).
  virtual Result<ApplyReport> ApplyRemoteChanges(
      std::string_view doc, const std::vector<ChangeBlob>& changes, const StoredHook& stored,
      const std::optional<PublicKey>& only_author = std::nullopt) = 0;

  // Durability::kGroup: calls `fn` once commit `commit` (ApplyReport::commit) is durable, with
  // the error when its fsync failed; from the replica's sync thread, or at once (also for commit
  // 0 and the other durabilities, where a returned commit is durable already). `fn` must not
  // block.
  virtual void WhenDurable(uint64_t commit, std::function<void(Status)> fn) = 0;
  // The same, blocking.
  virtual Status WaitDurable(uint64_t commit) = 0;
  // Durability::kGroup: the log sync's work so far (zeros with the other durabilities).
  struct LogSyncStats {
    uint64_t commits = 0;      // commits made durable by the log sync
    uint64_t syncs = 0;        // fsyncs of the log (each covers one commit or more)
    uint64_t failures = 0;     // fsyncs that failed
    uint64_t checkpoints = 0;  // WAL checkpoints run off the commit path
  };
  virtual LogSyncStats LogSync() = 0;

  // Causal tokens: the document's current version as a short string. A token from another
  // replica names what a user has seen there; Satisfies tells whether this replica has all of
  // it (cross-device read-after-write) and WaitFor blocks until it does or the timeout passes.
  virtual Result<std::string> CausalToken(std::string_view doc) = 0;
  virtual Result<bool> Satisfies(std::string_view token) = 0;
  virtual Status WaitFor(std::string_view token, std::chrono::milliseconds timeout) = 0;

  // Time travel. The document is rebuilt from its op log for each call (the cost grows with its
  // history; nothing is cached or written). A version is a causal token of the document
  // (DecodeCausalToken) or a HistoryEntry::version: a set of changes that holds the
  // dependencies of each of its changes.
  //
  // The document's changes in log order (a causal order), each with the version it led to.
  // Starts after the base snapshot when the replica was bootstrapped from one (BaseVersion).
  // kNotFound when the document is absent; kCorruption naming it when its log is damaged.
  virtual Result<std::vector<HistoryEntry>> History(std::string_view doc) = 0;
  // Runs `body` with a read-only view of `doc` as it was at `version`. Fails, without calling
  // `body`: kNotFound when the document is absent or this replica does not hold all of
  // `version` (yet: see WaitFor); kInvalidArgument when `version` is not a version the document
  // can have been at (it splits a change, or holds a change without its dependencies);
  // kHistoryTruncated when `version` lacks part of the base snapshot the log starts after.
  virtual Status ReadAt(std::string_view doc, const VersionVector& version,
                        const std::function<void(const View&)>& body) = 0;
  // What changed from version `from` to version `to` of `doc`, as the patches the change feed
  // would have reported while applying the changes `to` holds beyond `from`, in log order.
  // `from` must be an earlier version than `to` (dominated by it; kInvalidArgument otherwise);
  // the other failures are ReadAt's, for either version.
  virtual Result<std::vector<crdt::Patch>> Diff(std::string_view doc, const VersionVector& from,
                                                const VersionVector& to) = 0;

  // The change feed. `doc` empty: every document. Returns an ID for Unsubscribe. Callbacks run on
  // the thread that committed (or, on a shared store, the replica's follower), one at a time.
  virtual uint64_t Subscribe(std::string_view doc, ChangeCallback callback) = 0;
  // Once it returns, the callback is not running (unless Unsubscribe is called from inside it)
  // and is never called again: do not call it holding a lock the callback takes.
  virtual void Unsubscribe(uint64_t id) = 0;
  // Resolve-on-write for `doc` (empty: every document); replaces any earlier resolver. An empty
  // `resolver` removes it: the document falls back to the every-document resolver, if any.
  virtual void SetConflictResolver(std::string_view doc, ConflictResolver resolver) = 0;

  // Writes a snapshot of `doc` now (also done by the policy), and compacts its op log up to it in
  // the same SQLite transaction (docs/storage.md). kCorruption naming the document when the log to
  // compact is damaged; nothing changes on failure.
  virtual Status Snapshot(std::string_view doc) = 0;
  // On a store shared with other replicas, with ReplicaOptions::follow_in_background false: takes
  // now what the others stored that this replica has heard of (with `all`, reads every loaded
  // document's log past its position, as the background poll does), on the caller's thread.
  // Returns how many documents it found changed; 0 on a store that is not shared.
  virtual size_t FollowStore(bool all) = 0;

  // Sync state per peer: the version of `doc` that `peer` (the sync client's name for
  // it, its URL) acknowledged storing durably. Kept across restarts, so that the sync client
  // reports replication lag while offline and resumes from it.
  virtual Status SetPeerVersion(std::string_view peer, std::string_view doc,
                                const VersionVector& version) = 0;
  // Every document's acknowledged version for `peer`, sorted by document (empty when none).
  virtual Result<std::vector<std::pair<std::string, VersionVector>>> PeerVersions(
      std::string_view peer) = 0;

  // Snapshots for sync bootstrap. A replica that imported a snapshot keeps no change
  // from before it: its log starts after the snapshot's version (its base), and ChangesSince
  // returns only changes in the log, so a peer that lacks part of the base must be sent a snapshot
  // in turn (the sync client does this).
  //
  // The current state of `doc` without history, and its version. kNotFound when absent.
  virtual Result<DocumentSnapshot> ExportSnapshot(std::string_view doc) = 0;
  // Validates `data` (untrusted: it never crashes on hostile bytes) and makes it the base of
  // `doc`, durably, in one SQLite transaction. Allowed when `doc` is absent or empty here, or when
  // every change it holds is in the snapshot (a far-behind replica); the changes already held are
  // kept. Returns the document's version after the import. Fails, changing nothing, with
  // kCorruption for bytes that are not a valid snapshot (or whose version is not `*expected`, when
  // given) and kInvalidArgument when the document holds changes the snapshot lacks (it cannot be
  // replaced without losing them).
  //
  // `seal`, when given, must match the snapshot (else kPermissionDenied) and is kept with it (see
  // SealedSnapshot). With `require_seal`, a snapshot of an owned document without a seal is
  // refused (kPermissionDenied): what a replica does with a snapshot from a peer it does not
  // trust with the state.
  virtual Result<VersionVector> ImportSnapshot(std::string_view doc, std::string_view data,
                                               const VersionVector* expected, const StateSeal* seal,
                                               bool require_seal) = 0;
  Result<VersionVector> ImportSnapshot(std::string_view doc, std::string_view data,
                                       const VersionVector* expected = nullptr) {
    return ImportSnapshot(doc, data, expected, nullptr, false);
  }
  // Seals the current state of owned document `doc` with this device's key (kPermissionDenied
  // unless its key is the owner's or an admin's).
  virtual Result<StateSeal> SealState(std::string_view doc) = 0;
  // Keeps the snapshot of `doc` as it is now, with `seal`, for SealedSnapshot: when the seal
  // matches the current state (kInvalidArgument when the document is at another version here,
  // kPermissionDenied when the seal is not the owner's or an admin's signature of this state).
  virtual Status KeepSealedSnapshot(std::string_view doc, const StateSeal& seal) = 0;
  // The snapshot of end-to-end encrypted document `doc` as this device reads it, encrypted under
  // the newest key epoch it holds and sealed with its key, for relays to keep and serve to new
  // members (docs/security.md, "Bootstrap by encrypted snapshot"). kPermissionDenied unless this
  // device is the owner or an admin, holds the newest epoch's key and can decrypt all it holds;
  // kInvalidArgument for a plain document.
  virtual Result<DocumentSnapshot> SealEncryptedState(std::string_view doc) = 0;
  // Keeps `data`, an encrypted snapshot of `doc` sealed by `seal` (SealEncryptedState), for
  // SealedSnapshot, without reading it: when the seal is the owner's or an admin's signature of
  // these bytes at the version and Lamport time the document has here, and the key record inside
  // is one the document holds (kInvalidArgument when the document is at another version here,
  // kPermissionDenied or kCorruption otherwise). What a relay does with a device's upload.
  virtual Status KeepEncryptedSnapshot(std::string_view doc, std::string_view data,
                                       const StateSeal& seal) = 0;
  // The latest sealed snapshot kept of `doc` (kNotFound when none).
  virtual Result<DocumentSnapshot> SealedSnapshot(std::string_view doc) = 0;
  // The version of the snapshot the log of `doc` starts after (empty when the log is complete).
  // kNotFound when the document is absent.
  virtual Result<VersionVector> BaseVersion(std::string_view doc) = 0;
};

// Encodes and decodes causal tokens: "<doc>@<node hex>.<seq>,<node hex>.<seq>...", URL-safe.
std::string EncodeCausalToken(std::string_view doc, const VersionVector& version);
Result<std::pair<std::string, VersionVector>> DecodeCausalToken(std::string_view token);

}  // namespace weft
