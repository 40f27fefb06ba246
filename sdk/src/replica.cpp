// Replica: the local leader's logic (documents in memory, access checks, signatures, the change
// feed, snapshots and compaction policy, time travel) over a store (store.h): SqliteStore by
// default. See weft/replica.h for the contract and docs/storage.md for the storage seam.
#include "weft/replica.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <shared_mutex>
#include <thread>
#include <unordered_map>

#include "actor_lease.h"
#include "doc_id.h"
#include "e2e_doc.h"
#include "identity_internal.h"
#include "op_log.h"
#include "replica_store.h"
#include "sqlite_store.h"
#include "store.h"
#include "weft/crdt/encoding.h"
#include "weft/crdt/history.h"

namespace weft {
namespace {

uint64_t SystemClockMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

Status CheckDocId(std::string_view doc) {
  return CheckDocumentId(doc);
}

// A shared mutex that lets a waiting writer in before new readers: glibc's rwlock prefers
// readers, so a steady stream of reads could otherwise hold off commits indefinitely.
class WriterFirstMutex {
 public:
  void lock() {
    waiting_.fetch_add(1, std::memory_order_acq_rel);
    m_.lock();
    waiting_.fetch_sub(1, std::memory_order_acq_rel);
  }
  void unlock() { m_.unlock(); }
  void lock_shared() {
    while (waiting_.load(std::memory_order_acquire) > 0) std::this_thread::yield();
    m_.lock_shared();
  }
  void unlock_shared() { m_.unlock_shared(); }

 private:
  std::shared_mutex m_;
  std::atomic<int> waiting_{0};
};

struct DocState {
  explicit DocState(crdt::Document d) : doc(std::move(d)) {}
  crdt::Document doc;
  uint64_t since_snapshot = 0;      // changes logged since the last snapshot
  uint64_t ops_since_snapshot = 0;  // and the ops in them
  // Every entry of the log with a seq up to this one is in `doc`: on a shared store, where the
  // document's log is followed from (others may have written past it).
  uint64_t log_pos = 0;
  // Authors caught equivocating, and the seq each is frozen at: nothing more of theirs applies.
  std::map<crdt::NodeId, uint64_t> frozen;
  // An end-to-end encrypted document: its key records and the keys this device opened, and the
  // epochs of changes held whose content it could not decrypt (applied sealed, without effect).
  e2e::DocKeys keys;
  std::set<uint64_t> missing_epochs;
  // Per author, the newest epoch it encrypted under or made a record of: an honest writer never
  // goes back (the records it holds only grow), so an older one is refused (e2e::CheckE2e).
  std::map<crdt::NodeId, uint64_t> author_epochs;
  // Text and list lookups keep a cursor cache inside the document, so readers of one document
  // take turns; readers of different documents run in parallel.
  mutable std::mutex read_mu;
};

// A document's locks and its cached state. A writer of the document (a commit, a batch from a
// peer, a catch-up, a snapshot) holds `write` throughout, so writers of different documents run
// in parallel, and a shared store can batch their appends into one transaction. `st` (the pointer
// and the document it points to) changes only under both `write` and `state` held exclusively;
// readers hold `state` shared. Slots are made on first use and never removed, so a reference to
// one stays valid; `st` is null while the document is not loaded.
struct DocSlot {
  std::mutex write;
  WriterFirstMutex state;
  std::unique_ptr<DocState> st;
};

// Notes the newest epoch `c` shows its author held (see DocState::author_epochs).
void NoteEpochs(DocState* st, const crdt::Change& c) {
  uint64_t newest = 0;
  bool any = false;
  for (const crdt::Op& op : c.ops) {
    std::optional<uint64_t> epoch;
    if (op.type == crdt::Op::Type::kSealed) {
      if (auto e = e2e::PayloadEpoch(op.proof); e.ok()) epoch = *e;
    } else if (op.type == crdt::Op::Type::kAccess && op.action == crdt::AccessAction::kKeys) {
      if (auto r = e2e::DecodeKeyRecord(op.proof); r.ok()) epoch = r->epoch;
    }
    if (epoch) newest = std::max(newest, *epoch), any = true;
  }
  if (!any) return;
  uint64_t& held = st->author_epochs[c.author];
  held = std::max(held, newest);
}

// Access lists: a key as the CRDT names it (its raw bytes), and back.
crdt::Principal PrincipalOf(const PublicKey& key) {
  return crdt::Principal(reinterpret_cast<const char*>(key.bytes().data()), PublicKey::kSize);
}

// Every binding in `c` is its author's, signed by the key it names.
Status CheckBindings(std::string_view doc, const crdt::Change& c) {
  for (const auto& op : c.ops) {
    if (op.type != crdt::Op::Type::kAccess || op.action != crdt::AccessAction::kBind) continue;
    auto key = PublicKey::FromBytes(op.principal);
    if (!key || !VerifySignature(*key, kBindPurpose, BindingMessage(doc, c.author, op.principal),
                                 op.proof)) {
      return Status(StatusCode::kPermissionDenied,
                    "its author's binding to a key is not signed by that key");
    }
  }
  return Status::Ok();
}

// Whether `c` belongs to an owned document (one with an access list, or one `c` creates): such
// changes are signed by their authors and checked against the list.
bool InOwnedDocument(const crdt::AccessList& access, const crdt::Change& c) {
  if (access.owned()) return true;
  for (const auto& op : c.ops) {
    if (op.type == crdt::Op::Type::kAccess && op.action == crdt::AccessAction::kCreate) {
      return true;
    }
  }
  return false;
}

bool HasAccessOps(const crdt::Change& c) {
  return std::any_of(c.ops.begin(), c.ops.end(),
                     [](const crdt::Op& op) { return op.type == crdt::Op::Type::kAccess; });
}

// The key `c`'s author is bound to: by the access list, or by a binding in `c` itself.
std::optional<crdt::Principal> AuthorKey(const crdt::AccessList& access, const crdt::Change& c) {
  if (const crdt::Principal* key = access.KeyOf(c.author)) return *key;
  for (const auto& op : c.ops) {
    if (op.type == crdt::Op::Type::kAccess && op.action == crdt::AccessAction::kBind) {
      return op.principal;
    }
  }
  return std::nullopt;
}

// In an owned document, `c` carries its author's signature (the key its author is bound to) of
// `doc` and its own bytes: no byte of it can change on the way, nor can it move to another
// document. (Bindings are checked by CheckBindings.)
bool SignedBy(std::string_view doc, const crdt::Principal& principal, const crdt::Change& c) {
  auto key = PublicKey::FromBytes(principal);
  return key && VerifySignature(*key, kChangePurpose, ChangeMessage(doc, c), c.signature);
}

// `verified`: the key a check made earlier found the signature valid for (skips the check when
// the author's key is still that one).
Status CheckSignature(std::string_view doc, const crdt::AccessList& access, const crdt::Change& c,
                      const std::optional<crdt::Principal>& verified = std::nullopt) {
  if (!InOwnedDocument(access, c)) return Status::Ok();
  auto principal = AuthorKey(access, c);
  if (!principal || principal->size() != PublicKey::kSize) {
    return Status(StatusCode::kPermissionDenied, "its author is bound to no key");
  }
  if (principal != verified && !SignedBy(doc, *principal, c)) {
    return Status(StatusCode::kPermissionDenied,
                  "its author's signature does not verify (the change was altered, forged, or "
                  "belongs to another document)");
  }
  return Status::Ok();
}

// Whether `seal` is the signature of `d` (document `doc`) by its owner or an admin.
Status CheckStateSeal(std::string_view doc, const crdt::Document& d, const StateSeal& seal) {
  if (seal.encrypted) {
    return Status(StatusCode::kPermissionDenied,
                  "the seal is of an encrypted snapshot, not of a plain state");
  }
  if (seal.version != d.version() || seal.lamport != d.lamport()) {
    return Status(StatusCode::kPermissionDenied, "the seal is of another version of the document");
  }
  const crdt::Role role = d.access().RoleOf(PrincipalOf(seal.key));
  if (role != crdt::Role::kOwner && role != crdt::Role::kAdmin) {
    return Status(StatusCode::kPermissionDenied,
                  "the seal is not by the document's owner or an admin");
  }
  const std::string digest = Blake2b(d.CanonicalState());
  if (!VerifySignature(seal.key, kStatePurpose,
                       StateMessage(doc, seal.version, seal.lamport, digest), seal.signature)) {
    return Status(StatusCode::kPermissionDenied,
                  "the seal's signature does not match the snapshot's state");
  }
  return Status::Ok();
}

// Whether `seal` is a signature of encrypted snapshot `data` of `doc` by its key, at the seal's
// version and Lamport time (SealEncryptedState). Who signed is CheckEncryptedSigner's.
Status VerifyEncryptedSeal(std::string_view doc, std::string_view data, const StateSeal& seal) {
  if (!seal.encrypted) {
    return Status(StatusCode::kPermissionDenied, "an encrypted snapshot with a plain state's seal");
  }
  if (!VerifySignature(seal.key, kE2eStatePurpose,
                       StateMessage(doc, seal.version, seal.lamport, Blake2b(data)),
                       seal.signature)) {
    return Status(StatusCode::kPermissionDenied,
                  "the seal's signature does not match the encrypted snapshot");
  }
  return Status::Ok();
}

// Whether the signer of `seal` is the owner or an admin in `access`.
Status CheckEncryptedSigner(const crdt::AccessList& access, const StateSeal& seal) {
  const crdt::Role role = access.RoleOf(PrincipalOf(seal.key));
  if (role != crdt::Role::kOwner && role != crdt::Role::kAdmin) {
    return Status(StatusCode::kPermissionDenied,
                  "the seal is not by the document's owner or an admin");
  }
  return Status::Ok();
}

// A seal as sealed_snapshots keeps it: key (32 bytes), signature (64), Lamport time (8,
// big-endian), then, for the seal of an encrypted snapshot, one byte 'e'.
std::string EncodeSeal(const StateSeal& seal) {
  std::string out(reinterpret_cast<const char*>(seal.key.bytes().data()), PublicKey::kSize);
  out += seal.signature;
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>(seal.lamport >> (8 * i)));
  if (seal.encrypted) out.push_back('e');
  return out;
}

Result<StateSeal> DecodeSeal(std::string_view bytes, VersionVector version) {
  constexpr size_t kPlain = PublicKey::kSize + 64 + 8;
  StateSeal seal;
  if (bytes.size() == kPlain + 1 && bytes.back() == 'e') {
    seal.encrypted = true;
    bytes.remove_suffix(1);
  }
  if (bytes.size() != kPlain) return Status::Corruption("a stored seal");
  auto key = PublicKey::FromBytes(bytes.substr(0, PublicKey::kSize));
  if (!key) return Status::Corruption("a stored seal's key");
  seal.key = *key;
  seal.signature = std::string(bytes.substr(PublicKey::kSize, 64));
  for (char c : bytes.substr(PublicKey::kSize + 64)) {
    seal.lamport = (seal.lamport << 8) | static_cast<uint8_t>(c);
  }
  seal.version = std::move(version);
  return seal;
}

// A peer that may send only its own changes sent `c`: in an owned document (or one `c` creates),
// its author must be bound, before or by `c` itself, to `sender`.
Status CheckSender(const crdt::AccessList& access, const crdt::Change& c, const PublicKey& sender) {
  if (!InOwnedDocument(access, c)) return Status::Ok();
  auto key = AuthorKey(access, c);
  if (key && *key == PrincipalOf(sender)) return Status::Ok();
  return Status(StatusCode::kPermissionDenied,
                "the peer sent a change of another author (a device sends only its own changes)");
}

class ReplicaImpl final : public Replica {
 public:
  ReplicaImpl(std::unique_ptr<store::Store> store, ReplicaOptions options)
      : path_(store->path()), options_(std::move(options)), store_(std::move(store)) {
    if (!options_.clock) options_.clock = SystemClockMs;
  }
  ~ReplicaImpl() override {
    StopFollowing();
    if (ready_) CompactOnClose();
    bool closed = ready_ && MarkActorClosed();
    slots_.clear();
    // Syncs what was committed; SQLite's last connection checkpoints the log into the file.
    const Status store_closed = store_->Close();
    // The lease last: a crash before this line leaves it "open", and the next open a new actor.
    if (closed && store_closed.ok()) {
      (void)WriteActorLease(path_ + "-lease", {actor_, /*closed=*/true, actor_generation_});
    }
  }

  Status Init();

  NodeId node_id() const override { return node_; }
  NodeId actor_id() const override { return actor_; }
  const PublicKey& public_key() const override { return public_key_; }
  Result<Signature> Sign(std::string_view purpose, std::string_view message) const override {
    return secret_key_.Sign(purpose, message);
  }
  const std::string& path() const override { return path_; }
  bool MayRead(std::string_view doc, const PublicKey& key) override;
  Result<DocumentAccess> Access(std::string_view doc) override;
  Result<CommitInfo> Grant(std::string_view doc, const PublicKey& key, Role role) override;
  Result<CommitInfo> Revoke(std::string_view doc, const PublicKey& key) override;

  Result<std::vector<std::string>> ListDocuments() override;
  Status CreateDocument(std::string_view doc) override;
  bool HasDocument(std::string_view doc) override;
  Status DeleteDocument(std::string_view doc) override;
  Result<CommitInfo> Transact(std::string_view doc,
                              const std::function<Status(Txn&)>& body) override;
  Status Read(std::string_view doc, const std::function<void(const View&)>& body) override {
    return ReadDoc(doc, true, body);
  }
  Status CreateEncryptedDocument(std::string_view doc) override;
  Result<EncryptionInfo> Encryption(std::string_view doc) override;
  Result<VersionVector> Version(std::string_view doc) override;
  Result<std::vector<ChangeBlob>> ChangesSince(std::string_view doc,
                                               const VersionVector& peer) override;
  using Replica::ApplyRemoteChanges;
  Result<ApplyReport> ApplyRemoteChanges(std::string_view doc,
                                         const std::vector<ChangeBlob>& changes,
                                         const StoredHook& stored,
                                         const std::optional<PublicKey>& only_author) override;
  void WhenDurable(uint64_t commit, std::function<void(Status)> fn) override {
    store_->WhenDurable(commit, std::move(fn));
  }
  Status WaitDurable(uint64_t commit) override { return store_->WaitDurable(commit); }
  LogSyncStats LogSync() override {
    const store::SyncStats s = store_->GetSyncStats();
    return {s.commits, s.syncs, s.failures, s.checkpoints};
  }
  Result<std::string> CausalToken(std::string_view doc) override;
  Result<std::vector<HistoryEntry>> History(std::string_view doc) override;
  Status ReadAt(std::string_view doc, const VersionVector& version,
                const std::function<void(const View&)>& body) override;
  Result<std::vector<crdt::Patch>> Diff(std::string_view doc, const VersionVector& from,
                                        const VersionVector& to) override;
  Result<bool> Satisfies(std::string_view token) override;
  Status WaitFor(std::string_view token, std::chrono::milliseconds timeout) override;
  uint64_t Subscribe(std::string_view doc, ChangeCallback callback) override;
  void Unsubscribe(uint64_t id) override;
  void SetConflictResolver(std::string_view doc, ConflictResolver resolver) override;
  Status Snapshot(std::string_view doc) override;
  size_t FollowStore(bool all) override;
  Status SetPeerVersion(std::string_view peer, std::string_view doc,
                        const VersionVector& version) override;
  Result<std::vector<std::pair<std::string, VersionVector>>> PeerVersions(
      std::string_view peer) override;
  Result<std::vector<Equivocation>> Equivocations() override;
  IntegrityCounters Integrity() const override {
    return {signatures_refused_.load(), equivocations_.load()};
  }
  Result<DocumentSnapshot> ExportSnapshot(std::string_view doc) override;
  Result<VersionVector> ImportSnapshot(std::string_view doc, std::string_view data,
                                       const VersionVector* expected, const StateSeal* seal,
                                       bool require_seal) override;
  Result<StateSeal> SealState(std::string_view doc) override;
  Status KeepSealedSnapshot(std::string_view doc, const StateSeal& seal) override;
  Result<DocumentSnapshot> SealEncryptedState(std::string_view doc) override;
  // Checks encrypted snapshot `data` of `doc` against `seal`, opens it with this device's key and
  // checks the state inside; its plaintext in `*plain`. Changes nothing.
  Result<crdt::Document> OpenEncryptedSnapshot(std::string_view doc, std::string_view data,
                                               const StateSeal& seal, std::string* plain);
  Status KeepEncryptedSnapshot(std::string_view doc, std::string_view data,
                               const StateSeal& seal) override;
  Result<DocumentSnapshot> SealedSnapshot(std::string_view doc) override;
  Result<VersionVector> BaseVersion(std::string_view doc) override;

 private:
  // Opens a local transaction's change with the access ops it needs: in a new document (unless
  // public), the create naming this replica's key; in an owned one where this open's actor is not
  // bound yet, the signed binding. `added` receives how many ops were added.
  Status AddAuthorship(std::string_view doc, const crdt::Document& d, crdt::Transaction& txn,
                       size_t* added) const;
  // In an owned document, `c` (raw bytes `blob`) arrived while this replica holds its seqs: a
  // different change at those seqs signed by the same author is an equivocation, recorded with
  // both changes as proof, and the author is frozen in the document from there; a different
  // change that is not signed is refused (kPermissionDenied). Caller holds the slot's write.
  // Read; with `keys_needed` false, also of an encrypted document this device lacks keys for
  // (what the replica itself reads: access lists, versions).
  Status ReadDoc(std::string_view doc, bool keys_needed,
                 const std::function<void(const View&)>& body);
  // An end-to-end encrypted document's change `c` with its content decrypted, or nullopt when
  // this device holds no key for its epoch (noted in st->missing_epochs). Caller holds the slot's
  // write. Fails as e2e::OpenChange does.
  Result<std::optional<crdt::Change>> OpenSealed(std::string_view doc, DocState* st,
                                                 const crdt::Change& c);
  // The checks every replica (relays too) makes of a remote change for end-to-end encryption:
  // the layout (content sealed exactly in encrypted documents) and the key records it carries.
  Status CheckE2e(std::string_view doc, const DocState& st, const crdt::Change& c) const;
  // A local change of an encrypted document, sealed: under the newest key record when its
  // readers are the access list's members, else under a new epoch this device (an admin) adds
  // to `txn` (then `*plain` is prepared again with it). Caller holds the slot's write.
  Result<crdt::Change> SealLocal(std::string_view doc, DocState* st, crdt::Transaction& txn,
                                 crdt::Change* plain);
  // The signatures of `changes` (a batch for `doc`) checked before any lock is taken, so that
  // sessions verify in parallel and readers and writers go on meanwhile: per change, the key its
  // signature was found valid for (nullopt: not checked, or invalid). ApplyRemoteChanges checks
  // each change again under the lock unless its author's key is then the one found here.
  std::vector<std::optional<crdt::Principal>> VerifyAhead(std::string_view doc,
                                                          const std::vector<crdt::Change>& changes);
  Status CheckHeldAgain(std::string_view doc, DocState* st, const crdt::Change& c,
                        std::string_view blob);
  // The changes of `doc` a peer lacks, as the log holds them (ChangesSince signs them).
  Result<std::vector<ChangeBlob>> ReadChangesSince(std::string_view doc, const VersionVector& peer);
  // This replica's own changes of an owned document are stored unsigned (signing costs a commit
  // about 20 µs) and signed when they leave (Ed25519 signatures are deterministic: the same
  // bytes every time): signs those in `blobs`.
  Status SignOwnChanges(std::string_view doc, std::vector<ChangeBlob>* blobs);
  // The slot of `doc`, made when there is none yet (FindSlot: null then).
  DocSlot& Slot(std::string_view doc);
  DocSlot* FindSlot(std::string_view doc);
  // Loads `doc` into its slot (caller holds slot.write). kNotFound when absent and !create.
  Result<DocState*> Load(DocSlot& slot, std::string_view doc, bool create);
  // Writes the snapshot of `doc` and compacts its log up to it, in one write of the store
  // (caller holds slot.write).
  Status WriteSnapshot(const std::string& doc, DocSlot& slot);
  // Loads the base snapshot of `doc` into `out` when it has one (caller holds its slot's write).
  Status LoadBase(std::string_view doc, const crdt::DocumentOptions& dopts, crdt::Document* out);
  // Reads the device key pair from meta, or makes one (kept as a secret: see store::MetaType).
  Status LoadOrCreateIdentity();
  // Picks this open's actor (actor_lease.h) and records it as open, in the lease then in meta.
  Status ChooseActor();
  // At a clean close: the actor closed, in meta then in the lease (after the database is closed).
  bool MarkActorClosed();

  // Time travel: the whole history of a document as this replica holds it.
  struct FullHistory {
    std::string base;  // the base snapshot's bytes ("" when the log is complete)
    VersionVector base_version;
    std::vector<crdt::Change> changes;  // the log after the base, in log order
    VersionVector version;              // the base and every change
  };
  Result<FullHistory> ReadHistory(std::string_view doc);
  // The document at `to`, rebuilt from `h`; with `from` (dominated by `to`), the changes `to`
  // holds beyond it are applied last, their patches gathered into `patches`.
  Result<crdt::Document> Rebuild(std::string_view doc, const FullHistory& h,
                                 const VersionVector& to, const VersionVector* from,
                                 std::vector<crdt::Patch>* patches);
  // At a clean close: snapshots and compacts documents with enough new changes, and gives free
  // pages back to the file system. Best effort: a failure leaves the log as it was.
  void CompactOnClose();
  Status MaybeSnapshot(const std::string& doc, DocSlot& slot);
  Result<store::AppendResult> AppendChanges(std::string_view doc,
                                            const std::vector<const crdt::Change*>& cs,
                                            const std::vector<std::string>& blobs);
  void Dispatch();
  void Resolve(const std::string& doc, const std::vector<crdt::Patch>& patches);

  // Following a shared store (store::Store::Shared): others' writes to a loaded document are
  // read from the log past its position and applied, and reach the change feed like any remote
  // change. Notices are noted by the watcher and acted on by the follower thread.
  void StartFollowing();
  void StopFollowing();
  void FollowLoop();
  // Catches up on the documents noted (every loaded one too with `all`); how many changed.
  size_t FollowPending(bool all);
  // Reads what the log of `doc` holds past the document's position and applies it (`base`:
  // another replica imported a base snapshot, so the document is read again whole; `tail`: read
  // already, by Store::ReadTails). Whether the document changed (a change event was queued).
  bool CatchUp(const std::string& doc, bool base, const store::LogTail* tail = nullptr);
  // After this replica appended to the log of `doc`: moves its position on when nobody else
  // wrote in between, else has the follower read what they wrote. Caller holds the slot's write.
  void Appended(const std::string& doc, DocState* st, const store::AppendResult& r);

  std::string path_;
  ReplicaOptions options_;
  std::unique_ptr<store::Store> store_;  // SqliteStore unless OpenReplica was given another
  bool ready_ = false;                   // Init succeeded
  NodeId node_;
  // The author of this open's local changes: the last open's when the actor lease shows this
  // database is the latest state of that actor (closed cleanly, not restored or copied), else a
  // new one (actor_lease.h). So a document's vector holds about one entry per replica, and a
  // database restored from an old copy never reissues seqs that peers hold with other content.
  NodeId actor_;
  uint64_t actor_generation_ = 0;  // of this open, in meta and the lease
  bool lease_held_ = false;        // this open wrote its lease: it marks it closed at close
  PublicKey public_key_;
  SecretKey secret_key_;  // this device's, read from meta at open (never written elsewhere)
  std::atomic<uint64_t> signatures_refused_{0}, equivocations_{0};

  std::mutex slots_mu_;  // guards the map slots_ (not the slots: see DocSlot)
  std::map<std::string, std::unique_ptr<DocSlot>, std::less<>> slots_;

  std::mutex feed_mu_;
  std::condition_variable version_cv_;
  uint64_t next_sub_ = 1;
  struct Sub {
    std::string doc;
    ChangeCallback fn;
  };
  std::map<uint64_t, Sub> subs_;
  std::map<std::string, ConflictResolver, std::less<>> resolvers_;
  std::deque<ChangeEvent> queue_;
  bool dispatching_ = false;
  std::thread::id dispatch_thread_;      // the one delivering, while dispatching_
  uint64_t delivered_ = 0;               // events delivered so far
  std::condition_variable delivery_cv_;  // an event's delivery ended

  bool shared_ = false;  // store_->Shared(): the replica follows the log
  uint64_t watch_id_ = 0;
  std::mutex follow_mu_;
  std::condition_variable follow_cv_;
  std::map<std::string, bool> follow_pending_;  // documents to catch up on, and whether `base`
  bool follow_all_ = false;                     // every loaded document
  bool follow_stop_ = false;
  std::thread follower_;  // unless options_.follow_in_background is false
};

Status ReplicaImpl::Init() {
  node_ = store_->node_id();
  WEFT_RETURN_IF_ERROR(LoadOrCreateIdentity());
  WEFT_RETURN_IF_ERROR(ChooseActor());
  ready_ = true;
  if (store_->Shared()) StartFollowing();
  return Status::Ok();
}

Status ReplicaImpl::ChooseActor() {
  auto meta = store_->GetMeta({"actor", "actor_state", "actor_generation"});
  if (!meta.ok()) return meta.status();
  std::optional<NodeId> stored;
  bool stored_closed = false;
  uint64_t stored_generation = 0;
  if (auto it = meta->find("actor"); it != meta->end()) stored = NodeId::FromHex(it->second);
  if (auto it = meta->find("actor_state"); it != meta->end()) {
    stored_closed = it->second == "closed";
  }
  if (auto it = meta->find("actor_generation"); it != meta->end()) {
    const std::string& g = it->second;
    if (std::from_chars(g.data(), g.data() + g.size(), stored_generation).ec != std::errc()) {
      stored_generation = 0;
    }
  }
  // The lease lives beside the database file; a store that is no file keeps none.
  const std::string lease_path = path_.empty() ? std::string() : path_ + "-lease";
  std::optional<ActorLease> lease;
  if (!lease_path.empty()) lease = ReadActorLease(lease_path);
  auto fresh = [&] {
    uint64_t a = options_.new_actor.value;
    std::random_device rd;
    while (a == 0 || a == node_.value) a = (static_cast<uint64_t>(rd()) << 32) ^ rd();
    return NodeId{a};
  };
  bool reuse = stored && stored->valid() && stored_closed && lease &&
               *lease == ActorLease{*stored, true, stored_generation};
  if (options_.session_actor.valid()) {
    actor_ = options_.session_actor;
  } else {
    actor_ = reuse ? *stored : fresh();
  }
  actor_generation_ = std::max(stored_generation, lease ? lease->generation : 0) + 1;
  // The lease first: once it says "open", a crash, a copy or a restore of the database can only
  // lead to a new actor.
  if (lease_path.empty() ||
      !WriteActorLease(lease_path, {actor_, /*closed=*/false, actor_generation_}).ok()) {
    // No lease (a read-only directory, say): a new actor now, and nothing recorded, so that no
    // later open can take this one's seqs for its own.
    if (!options_.session_actor.valid()) actor_ = fresh();
    return Status::Ok();
  }
  WEFT_RETURN_IF_ERROR(store_->PutMeta(
      {{"actor", actor_.ToHex(), store::MetaType::kText},
       {"actor_state", "open", store::MetaType::kText},
       {"actor_generation", std::to_string(actor_generation_), store::MetaType::kInteger}}));
  lease_held_ = true;
  return Status::Ok();
}

bool ReplicaImpl::MarkActorClosed() {
  if (!lease_held_) return false;
  // Only while meta still names this open (another process may have opened the file since).
  auto wrote = store_->PutMetaIf(
      {{"actor_generation", std::to_string(actor_generation_)}, {"actor", actor_.ToHex()}},
      {{"actor_state", "closed", store::MetaType::kText}});
  return wrote.ok() && *wrote;
}

Status ReplicaImpl::LoadOrCreateIdentity() {
  auto meta = store_->GetMeta({"device_key", "device_secret_key"});
  if (!meta.ok()) return meta.status();
  std::optional<PublicKey> stored_public;
  std::string secret;
  bool found_public = false;
  if (auto it = meta->find("device_key"); it != meta->end()) {
    found_public = true;
    stored_public = PublicKey::FromHex(it->second);
  }
  if (auto it = meta->find("device_secret_key"); it != meta->end()) {
    secret = it->second;
    sodium_memzero(it->second.data(), it->second.size());
  }
  if (!secret.empty() || found_public) {
    auto pk = secret_key_.Load(secret);
    sodium_memzero(secret.data(), secret.size());
    if (!pk.ok()) return Status::Corruption(path_ + ": " + pk.status().message());
    if (!stored_public || *stored_public != *pk) {
      return Status::Corruption(path_ +
                                ": the device key pair is damaged (its public key does "
                                "not match its secret key)");
    }
    public_key_ = *pk;
    return Status::Ok();
  }
  // A new identity: the store keeps the secret from other users (a file becomes owner-only).
  auto pk = secret_key_.Generate();
  if (!pk.ok()) return pk.status();
  std::vector<store::MetaEntry> entries = {
      {"device_key", pk->ToHex(), store::MetaType::kText},
      {"device_secret_key", std::string(secret_key_.ForStorage()), store::MetaType::kSecret}};
  Status put = store_->PutMeta(entries);
  sodium_memzero(entries[1].value.data(), entries[1].value.size());
  WEFT_RETURN_IF_ERROR(put);
  public_key_ = *pk;
  return Status::Ok();
}

DocSlot& ReplicaImpl::Slot(std::string_view doc) {
  std::lock_guard l(slots_mu_);
  auto it = slots_.find(doc);
  if (it == slots_.end()) it = slots_.emplace(std::string(doc), std::make_unique<DocSlot>()).first;
  return *it->second;
}

DocSlot* ReplicaImpl::FindSlot(std::string_view doc) {
  std::lock_guard l(slots_mu_);
  auto it = slots_.find(doc);
  return it == slots_.end() ? nullptr : it->second.get();
}

Result<DocState*> ReplicaImpl::Load(DocSlot& slot, std::string_view doc, bool create) {
  WEFT_RETURN_IF_ERROR(CheckDocId(doc));
  if (slot.st) return slot.st.get();
  auto found = store_->HasDocument(doc);
  if (!found.ok()) return found.status();
  crdt::DocumentOptions dopts{options_.max_drift_ms, /*keep_history=*/false};
  auto st = std::make_unique<DocState>(crdt::Document(actor_, dopts));
  if (!*found) {
    // A new document is recorded with its first change (or by CreateDocument).
    if (!create) return Status::NotFound("no document \"" + std::string(doc) + "\"");
  } else {
    // Reads the snapshot and the log into `st`.
    auto fill = [&](DocState* st) -> Status {
      uint64_t upto = 0;
      auto snap = store_->GetSnapshot(doc);
      if (!snap.ok()) return snap.status();
      if (*snap) {
        auto d = crdt::Document::DecodeSnapshot((*snap)->data, actor_, dopts);
        if (!d.ok())
          return Status::Corruption("snapshot of \"" + std::string(doc) +
                                    "\": " + d.status().message());
        st->doc = std::move(*d);
        upto = (*snap)->upto;
        st->log_pos = upto;
      } else {
        // No snapshot yet: start from the base snapshot, if the document was bootstrapped from one.
        WEFT_RETURN_IF_ERROR(LoadBase(doc, dopts, &st->doc));
      }
      // The log after the snapshot: segments (compaction writes them only up to a snapshot, so
      // normally none), then rows. A change the snapshot already holds is skipped.
      auto replay = [&](const crdt::Change& c) -> Status {
        if (st->doc.HasChange({c.author, c.end_seq()})) return Status::Ok();
        std::optional<crdt::Change> opened;
        if (e2e::HasSealed(c)) {
          auto o = OpenSealed(doc, st, c);
          if (!o.ok()) return oplog::CorruptLog(doc, o.status().message());
          opened = std::move(*o);
        }
        Status a = st->doc.ApplyChange(opened ? *opened : c);
        if (!a.ok()) return oplog::CorruptLog(doc, a.message());
        if (e2e::HasSealed(c) || e2e::HasKeysOps(c)) NoteEpochs(st, c);
        ++st->since_snapshot;
        st->ops_since_snapshot += c.span();
        return Status::Ok();
      };
      store::LogRead read;
      read.after = upto;
      read.segment = [&](const store::SegmentInfo& seg, std::string_view data) -> Status {
        auto cs = oplog::DecodeSegmentData(doc, seg.last_seq, data);
        if (!cs.ok()) return cs.status();
        for (const crdt::Change& c : *cs) WEFT_RETURN_IF_ERROR(replay(c));
        st->log_pos = std::max(st->log_pos, seg.last_seq);
        return Status::Ok();
      };
      read.row = [&](const store::RowInfo& row, std::string_view data) -> Status {
        auto c = oplog::DecodeRow(doc, row.seq, data);
        if (!c.ok()) return c.status();
        st->log_pos = std::max(st->log_pos, row.seq);
        return replay(*c);
      };
      WEFT_RETURN_IF_ERROR(store_->ReadLog(doc, read));
      auto frozen = store_->Equivocations(doc);
      if (!frozen.ok()) return frozen.status();
      for (const store::EquivocationRecord& e : *frozen) st->frozen.emplace(e.author, e.seq);
      return Status::Ok();
    };
    WEFT_RETURN_IF_ERROR(fill(st.get()));
    // An encrypted document whose key (a grant, a rotation) came later in the log than content
    // of the epochs it opens: read again with the keys now held.
    if (!st->missing_epochs.empty()) {
      st->keys.Refresh(doc, st->doc.access(), secret_key_);
      bool again = false;
      for (uint64_t e : st->missing_epochs) again = again || !st->keys.KeysOfEpoch(e).empty();
      if (again) {
        auto fresh = std::make_unique<DocState>(crdt::Document(actor_, dopts));
        fresh->keys = std::move(st->keys);
        WEFT_RETURN_IF_ERROR(fill(fresh.get()));
        st = std::move(fresh);
      }
    }
  }
  DocState* raw = st.get();
  std::unique_lock lock(slot.state);
  slot.st = std::move(st);
  return raw;
}

Result<std::vector<std::string>> ReplicaImpl::ListDocuments() {
  return store_->ListDocuments();
}

Status ReplicaImpl::CreateDocument(std::string_view doc) {
  WEFT_RETURN_IF_ERROR(CheckDocId(doc));
  DocSlot& slot = Slot(doc);
  std::lock_guard w(slot.write);
  auto st = Load(slot, doc, true);
  if (!st.ok()) return st.status();
  return store_->CreateDocument(doc, static_cast<int64_t>(options_.clock()));
}

bool ReplicaImpl::HasDocument(std::string_view doc) {
  if (!CheckDocId(doc).ok()) return false;
  auto found = store_->HasDocument(doc);
  return found.ok() && *found;
}

Status ReplicaImpl::DeleteDocument(std::string_view doc) {
  WEFT_RETURN_IF_ERROR(CheckDocId(doc));
  if (!HasDocument(doc)) return Status::NotFound("no document \"" + std::string(doc) + "\"");
  DocSlot& slot = Slot(doc);
  std::lock_guard w(slot.write);
  if (!HasDocument(doc)) return Status::NotFound("no document \"" + std::string(doc) + "\"");
  WEFT_RETURN_IF_ERROR(store_->DeleteDocument(doc));
  std::unique_lock lock(slot.state);
  slot.st.reset();
  return Status::Ok();
}

// Appends changes to the log, and records the document if new, in one write of the store.
Result<store::AppendResult> ReplicaImpl::AppendChanges(std::string_view doc,
                                                       const std::vector<const crdt::Change*>& cs,
                                                       const std::vector<std::string>& blobs) {
  std::vector<store::NewChange> changes;
  changes.reserve(cs.size());
  for (size_t i = 0; i < cs.size(); ++i) {
    changes.push_back({cs[i]->author, cs[i]->start_seq, cs[i]->end_seq(), blobs[i]});
  }
  return store_->AppendChanges(doc, static_cast<int64_t>(options_.clock()), changes);
}

Result<CommitInfo> ReplicaImpl::Transact(std::string_view doc,
                                         const std::function<Status(Txn&)>& body) {
  WEFT_RETURN_IF_ERROR(CheckDocId(doc));
  DocSlot& slot = Slot(doc);
  std::unique_lock w(slot.write);
  auto loaded = Load(slot, doc, true);
  if (!loaded.ok()) return loaded.status();
  DocState* st = *loaded;

  // Run the body on the live document, take the change it makes, and undo it: the document
  // changes only once the change is durable, so readers never see a commit that could vanish.
  std::optional<crdt::Change> change;
  // An encrypted document's change as it is logged and sent (its content sealed); `change` is
  // what this replica applies.
  std::optional<crdt::Change> to_log;
  {
    std::unique_lock lock(slot.state);
    auto txn = st->doc.Begin(options_.clock());
    Txn handle(st->doc, txn);
    size_t automatic = 0;
    Status s = AddAuthorship(doc, st->doc, txn, &automatic);
    try {
      if (s.ok()) s = body(handle);
    } catch (const std::exception& e) {
      s = Status::Aborted(std::string("transaction body threw: ") + e.what());
    } catch (...) {
      s = Status::Aborted("transaction body threw");
    }
    if (!s.ok()) {
      txn.Rollback();
      // A new document exists only in the cache until its first commit: drop it, so that it
      // stays absent.
      if (st->doc.version().empty()) slot.st.reset();
      return s;
    }
    change = txn.Prepare();
    // Only the automatic access ops: the body wrote nothing, so nothing commits.
    if (change && change->ops.size() == automatic) change.reset();
    if (change && st->doc.access().encrypted()) {
      auto sealed = SealLocal(doc, st, txn, &*change);
      if (!sealed.ok()) {
        txn.Rollback();
        if (st->doc.version().empty()) slot.st.reset();
        return sealed.status();
      }
      to_log = std::move(*sealed);
    }
    txn.Rollback();
  }
  CommitInfo info;
  if (!change) {
    std::shared_lock lock(slot.state);
    info.version = st->doc.version();
    return info;
  }
  std::string blob = crdt::EncodeChange(to_log ? *to_log : *change);
  auto appended = AppendChanges(doc, {&*change}, {blob});
  // kGroup: durable before anyone sees it, as with kFull (the log sync serves other commits too).
  Status stored = appended.ok() ? store_->WaitDurable(appended->commit) : appended.status();
  if (!stored.ok()) {
    // Drop the cached document: the next read loads it as the log has it (a new one stays absent).
    std::unique_lock lock(slot.state);
    slot.st.reset();
    return stored;
  }
  Appended(std::string(doc), st, *appended);
  std::vector<crdt::Patch> patches;
  {
    std::unique_lock lock(slot.state);
    crdt::ApplyOptions opts;
    opts.patches = &patches;
    Status s = st->doc.ApplyChange(*change, opts);
    if (!s.ok()) {
      // Cannot happen for a change this document just made; reload from the log to be safe.
      slot.st.reset();
      return Status(StatusCode::kInternal, "own change refused: " + s.ToString());
    }
    ++st->since_snapshot;
    st->ops_since_snapshot += change->span();
    // A rotation in this change: its key joins the ones this device holds.
    if (to_log && e2e::HasKeysOps(*to_log)) st->keys.Refresh(doc, st->doc.access(), secret_key_);
    if (to_log) NoteEpochs(st, *to_log);
    info.changed = true;
    info.change = change->id();
    info.version = st->doc.version();
  }
  (void)MaybeSnapshot(std::string(doc), slot);
  ChangeEvent ev{std::string(doc), true, change->id(), std::move(patches), false, false, {}};
  ev.access = HasAccessOps(*change);
  {
    std::lock_guard f(feed_mu_);
    queue_.push_back(std::move(ev));
  }
  version_cv_.notify_all();
  w.unlock();
  Dispatch();
  return info;
}

namespace {
Status NoKey(std::string_view doc, const std::set<uint64_t>& missing) {
  std::string epochs;
  for (uint64_t e : missing) epochs += (epochs.empty() ? "" : ", ") + std::to_string(e);
  return Status(StatusCode::kPermissionDenied,
                "document \"" + std::string(doc) +
                    "\" is end-to-end encrypted and this device holds no key for epoch " + epochs);
}
}  // namespace

Status ReplicaImpl::ReadDoc(std::string_view doc, bool keys_needed,
                            const std::function<void(const View&)>& body) {
  WEFT_RETURN_IF_ERROR(CheckDocId(doc));
  DocSlot* slot = FindSlot(doc);
  if (slot) {
    std::shared_lock lock(slot->state);
    if (const DocState* st = slot->st.get()) {
      if (keys_needed && !st->missing_epochs.empty()) return NoKey(doc, st->missing_epochs);
      std::lock_guard turn(st->read_mu);
      body(View(st->doc));
      return Status::Ok();
    }
  }
  // Not loaded: loaded under the writer lock (no slot is made for a document that is not here).
  if (!slot) {
    auto found = store_->HasDocument(doc);
    if (!found.ok()) return found.status();
    if (!*found) return Status::NotFound("no document \"" + std::string(doc) + "\"");
    slot = &Slot(doc);
  }
  {
    std::lock_guard w(slot->write);
    auto st = Load(*slot, doc, false);
    if (!st.ok()) return st.status();
  }
  std::shared_lock lock(slot->state);
  const DocState* st = slot->st.get();
  if (!st) return Status::NotFound("no document \"" + std::string(doc) + "\"");
  if (keys_needed && !st->missing_epochs.empty()) return NoKey(doc, st->missing_epochs);
  std::lock_guard turn(st->read_mu);
  body(View(st->doc));
  return Status::Ok();
}

Result<VersionVector> ReplicaImpl::Version(std::string_view doc) {
  VersionVector v;
  WEFT_RETURN_IF_ERROR(ReadDoc(doc, false, [&](const View& view) { v = view.version(); }));
  return v;
}

// ChangesSince looks rows up by author when the peer lacks changes of at most this many authors.
constexpr size_t kMaxAuthorLookups = 16;

Result<std::vector<ChangeBlob>> ReplicaImpl::ChangesSince(std::string_view doc,
                                                          const VersionVector& peer) {
  auto out = ReadChangesSince(doc, peer);
  if (out.ok()) WEFT_RETURN_IF_ERROR(SignOwnChanges(doc, &*out));
  return out;
}

Status ReplicaImpl::SignOwnChanges(std::string_view doc, std::vector<ChangeBlob>* blobs) {
  if (blobs->empty()) return Status::Ok();
  std::vector<NodeId> mine;
  // A document that does not load (a damaged log) leaves its changes as they are: a receiver
  // refuses an unsigned change of an owned document, and the peer is still served the rest.
  (void)ReadDoc(doc, false, [&](const View& v) {
    const crdt::AccessList& access = v.document().access();
    if (access.owned()) mine = access.ActorsOf(PrincipalOf(public_key_));
  });
  if (mine.empty()) return Status::Ok();  // a public document, or none of this replica's
  for (ChangeBlob& b : *blobs) {
    auto c = crdt::DecodeChange(b);
    if (!c.ok()) continue;  // the caller refuses to send what does not decode
    if (!c->signature.empty() || std::find(mine.begin(), mine.end(), c->author) == mine.end()) {
      continue;
    }
    auto sig = secret_key_.Sign(kChangePurpose, ChangeMessage(doc, *c));
    if (!sig.ok()) return sig.status();
    c->signature.assign(reinterpret_cast<const char*>(sig->data()), sig->size());
    b = crdt::EncodeChange(*c);
  }
  return Status::Ok();
}

Result<std::vector<ChangeBlob>> ReplicaImpl::ReadChangesSince(std::string_view doc,
                                                              const VersionVector& peer) {
  WEFT_RETURN_IF_ERROR(CheckDocId(doc));
  if (!HasDocument(doc)) return Status::NotFound("no document \"" + std::string(doc) + "\"");
  // What the peer lacks, by author (read before the log: a commit in between only adds rows).
  // Live sync asks for the newest few changes of a few authors: those are looked up by author in
  // the index instead of reading every row of the document.
  std::vector<crdt::DotRange> missing;
  bool by_author = false;
  // Only what the document holds in memory is served: on a shared store the log may hold more
  // (others' changes not followed yet), whose dependencies a peer might not be sent.
  std::optional<VersionVector> held;
  if (auto local = Version(doc); local.ok()) {
    missing = local->Subtract(peer);
    if (missing.empty()) return std::vector<ChangeBlob>{};
    by_author = missing.size() <= kMaxAuthorLookups;
    held = std::move(*local);
  }
  auto wanted = [&](NodeId author, uint64_t end_seq) {
    return end_seq > peer.Get(author) && (!held || end_seq <= held->Get(author));
  };
  // One read for segments and rows, so that a compaction committing in between cannot move
  // changes out of sight.
  std::vector<ChangeBlob> out;
  store::LogRead read;
  // A segment whose heads the peer has is skipped without reading its data.
  read.with_heads = true;
  read.want_segment = [&](const store::SegmentInfo& seg) {
    for (const auto& [node, seq] : seg.heads.entries()) {
      if (peer.Get(node) < seq) return true;
    }
    return false;
  };
  read.segment = [&](const store::SegmentInfo& seg, std::string_view data) -> Status {
    auto cs = oplog::DecodeSegmentData(doc, seg.last_seq, data);
    if (!cs.ok()) return cs.status();
    for (const crdt::Change& c : *cs) {
      if (wanted(c.author, c.end_seq())) out.push_back(crdt::EncodeChange(c));
    }
    return Status::Ok();
  };
  // Rows the peer lacks, in log order, served as stored (checked against their checksums).
  read.want_row = [&](const store::RowInfo& row) { return wanted(row.author, row.end_seq); };
  read.row = [&](const store::RowInfo&, std::string_view data) {
    out.emplace_back(data);
    return Status::Ok();
  };
  if (by_author) {
    // Per author: the row holding the first missing seq, and the rows after it.
    read.authors.emplace();
    for (const auto& r : missing) read.authors->emplace_back(r.node, r.first);
  }
  WEFT_RETURN_IF_ERROR(store_->ReadLog(doc, read));
  return out;
}

Result<ApplyReport> ReplicaImpl::ApplyRemoteChanges(std::string_view doc,
                                                    const std::vector<ChangeBlob>& blobs,
                                                    const StoredHook& stored,
                                                    const std::optional<PublicKey>& only_author) {
  // Decode everything first: a malformed blob changes nothing.
  std::vector<crdt::Change> changes;
  changes.reserve(blobs.size());
  for (size_t i = 0; i < blobs.size(); ++i) {
    auto c = crdt::DecodeChange(blobs[i]);
    if (!c.ok()) {
      return Status(c.status().code(),
                    "change " + std::to_string(i) + " of the batch: " + c.status().message());
    }
    // Bindings of an author to a key must be signed by that key (for this document and actor).
    if (Status b = CheckBindings(doc, *c); !b.ok()) {
      return Status(b.code(), "change " + c->id().ToString() + ": " + b.message());
    }
    changes.push_back(std::move(*c));
  }
  // Signatures first, before any lock is held: sessions check theirs in parallel.
  const std::vector<std::optional<crdt::Principal>> verified = VerifyAhead(doc, changes);
  WEFT_RETURN_IF_ERROR(CheckDocId(doc));
  DocSlot& slot = Slot(doc);
  std::unique_lock w(slot.write);
  auto loaded = Load(slot, doc, true);
  if (!loaded.ok()) return loaded.status();
  DocState* st = *loaded;
  ApplyReport report;
  std::vector<crdt::Patch> patches;
  std::vector<const crdt::Change*> applied;
  std::vector<std::string> applied_blobs;
  Status failure;
  bool keys_arrived = false;  // the batch holds key records
  {
    std::unique_lock lock(slot.state);
    crdt::ApplyOptions opts;
    opts.patches = &patches;
    if (options_.check_drift) opts.now_ms = options_.clock();
    // Apply in dependency order, in the order passes over what is left would take the changes
    // (from the last one taken, the next that applies, fails or is a duplicate; after the end,
    // from the start), but without the passes: they are quadratic in a batch in reverse order.
    // A change that waits is filed under the dot it waits for and looked at again once that dot
    // is applied, which makes a batch O(n log n) in any order.
    std::vector<bool> done(changes.size(), false);
    size_t remaining = changes.size();
    std::set<size_t> ready;  // may apply now (checked again when taken)
    crdt::WaitIndex waiting;
    for (size_t i = 0; i < changes.size(); ++i) {
      crdt::ReadyCheck r = st->doc.CheckReady(changes[i]);
      if (r.readiness == crdt::Readiness::kWaiting)
        waiting.Wait(changes[i], r.waits_for, i);
      else
        ready.insert(i);
    }
    size_t next = 0;  // where the pass is
    while (!ready.empty()) {
      auto it = ready.lower_bound(next);
      if (it == ready.end()) it = ready.begin();  // the next pass
      size_t i = *it;
      ready.erase(it);
      next = i + 1;
      if (done[i]) continue;  // woken twice
      const crdt::Change& c = changes[i];
      if (st->frozen.count(c.author) != 0) {
        done[i] = true, --remaining, ++report.frozen;  // an equivocating author: nothing more
        continue;
      }
      if (st->doc.HasChange({c.author, c.end_seq()})) {
        if (InOwnedDocument(st->doc.access(), c)) {
          if (Status h = CheckHeldAgain(doc, st, c, blobs[i]); !h.ok()) {
            failure = Status(h.code(), "change " + c.id().ToString() + ": " + h.message());
            break;
          }
        }
        done[i] = true, --remaining;
        ++(st->frozen.count(c.author) != 0 ? report.frozen : report.duplicates);
        continue;
      }
      // Checked without a message first: a waiting change is no error yet.
      crdt::ReadyCheck r = st->doc.CheckReady(c);
      if (r.readiness == crdt::Readiness::kWaiting) {
        waiting.Wait(c, r.waits_for, i);
        continue;
      }
      if (only_author) {
        if (Status a = CheckSender(st->doc.access(), c, *only_author); !a.ok()) {
          failure = Status(a.code(), "change " + c.id().ToString() + ": " + a.message());
          break;
        }
      }
      if (Status sig = CheckSignature(doc, st->doc.access(), c, verified[i]); !sig.ok()) {
        ++signatures_refused_;
        failure = Status(sig.code(), "change " + c.id().ToString() + ": " + sig.message());
        break;
      }
      if (Status e = CheckE2e(doc, *st, c); !e.ok()) {
        failure = Status(e.code(), "change " + c.id().ToString() + ": " + e.message());
        break;
      }
      std::optional<crdt::Change> opened;
      if (e2e::HasSealed(c)) {
        auto o = OpenSealed(doc, st, c);
        if (!o.ok()) {
          failure = Status(o.status().code(),
                           "change " + c.id().ToString() + ": " + o.status().message());
          break;
        }
        opened = std::move(*o);
        keys_arrived = keys_arrived || e2e::HasKeysOps(c);
      } else if (e2e::HasKeysOps(c)) {
        keys_arrived = true;
      }
      Status s = st->doc.ApplyChange(opened ? *opened : c, opts);
      if (s.code() == StatusCode::kMissingDependency) continue;
      if (!s.ok()) {
        failure = Status(s.code(), "change " + c.id().ToString() + ": " + s.message());
        break;
      }
      done[i] = true, --remaining, ++report.applied;
      if (e2e::HasSealed(c) || e2e::HasKeysOps(c)) NoteEpochs(st, c);
      applied.push_back(&c);
      applied_blobs.push_back(blobs[i]);
      waiting.Wake(c.author, c.end_seq(), [&](uint64_t j) { ready.insert(j); });
    }
    // What still waits on a dependency is refused, unless an author is frozen in the document:
    // then it may wait on that author's changes past the fork, which never come.
    if (failure.ok() && remaining > 0 && st->frozen.empty()) {
      for (size_t i = 0; i < changes.size(); ++i) {
        if (!done[i]) {
          failure = st->doc.ApplyChange(changes[i], opts);
          break;
        }
      }
    }
    uint64_t commit = 0;
    if (failure.ok() && !applied.empty()) {
      auto appended = AppendChanges(doc, applied, applied_blobs);
      if (appended.ok()) {
        commit = appended->commit;
        Appended(std::string(doc), st, *appended);
      } else {
        failure = appended.status();
      }
    }
    if (!failure.ok()) {
      // Put the document back as the log has it.
      slot.st.reset();
      return failure;
    }
    st->since_snapshot += applied.size();
    for (const crdt::Change* c : applied) st->ops_since_snapshot += c->span();
    report.version = st->doc.version();
    // kGroup: the commit to wait on before acknowledging; with nothing new stored, the latest
    // (what the batch duplicated may have been stored by a commit not yet durable).
    report.commit = applied.empty() ? store_->LatestCommit() : commit;
    // Before readers can see the new version.
    if (stored) stored(report);
    // Content this device could not decrypt, and new keys: when they open a missing epoch, the
    // document is read again from the log (which decrypts it now).
    if (keys_arrived && !st->missing_epochs.empty()) {
      st->keys.Refresh(doc, st->doc.access(), secret_key_);
      for (uint64_t e : st->missing_epochs) {
        if (!st->keys.KeysOfEpoch(e).empty()) {
          slot.st.reset();
          break;
        }
      }
    }
  }
  (void)MaybeSnapshot(std::string(doc), slot);
  if (!applied.empty()) {
    std::lock_guard f(feed_mu_);
    // One event for the batch, naming its first new change.
    ChangeEvent ev{std::string(doc), false, applied.front()->id(), patches, false, false, {}};
    ev.access = std::any_of(applied.begin(), applied.end(),
                            [](const crdt::Change* c) { return HasAccessOps(*c); });
    queue_.push_back(std::move(ev));
  }
  version_cv_.notify_all();
  w.unlock();
  Dispatch();
  Resolve(std::string(doc), patches);
  return report;
}

Status ReplicaImpl::CheckE2e(std::string_view doc, const DocState& st,
                             const crdt::Change& c) const {
  bool encrypted = st.doc.access().encrypted();
  for (const crdt::Op& op : c.ops) {
    if (op.type != crdt::Op::Type::kAccess) continue;
    if (op.action == crdt::AccessAction::kEncrypt) encrypted = true;
    if (op.action == crdt::AccessAction::kKeys) {
      auto record = e2e::CheckKeysOp(doc, op);
      if (!record.ok()) return record.status();
    }
  }
  WEFT_RETURN_IF_ERROR(e2e::CheckLayout(c, encrypted));
  for (const crdt::Op& op : c.ops) {
    if (op.type != crdt::Op::Type::kSealed) continue;
    auto epoch = e2e::PayloadEpoch(op.proof);
    if (!epoch.ok()) return Status(epoch.status().code(), "sealed op: " + epoch.status().message());
    auto before = st.author_epochs.find(c.author);
    if (before != st.author_epochs.end() && *epoch < before->second) {
      return Status(StatusCode::kPermissionDenied,
                    "sealed under key epoch " + std::to_string(*epoch) + ", older than epoch " +
                        std::to_string(before->second) + " its author used before");
    }
  }
  return Status::Ok();
}

Result<std::optional<crdt::Change>> ReplicaImpl::OpenSealed(std::string_view doc, DocState* st,
                                                            const crdt::Change& c) {
  uint64_t missing = 0;
  auto o = e2e::OpenChange(doc, c, st->keys, &missing);
  const bool denied = !o.ok() && o.status().code() == StatusCode::kPermissionDenied;
  if ((o.ok() && !*o) || denied) {
    // No key of that epoch yet, or not the right one (concurrent rotations make two records of
    // one epoch): take in the records held, and the change's own (a rotation and the first
    // content under it may travel in one change).
    st->keys.Refresh(doc, st->doc.access(), secret_key_);
    st->keys.RefreshWith(doc, c, secret_key_);
    o = e2e::OpenChange(doc, c, st->keys, &missing);
  }
  if (o.ok() && !*o) st->missing_epochs.insert(missing);
  return o;
}

namespace {
// The keys that must read an encrypted document: every member of its access list.
std::set<PublicKey> ReadersOf(const crdt::AccessList& access) {
  std::set<PublicKey> out;
  for (const auto& [principal, role] : access.Members()) {
    if (auto key = PublicKey::FromBytes(principal)) out.insert(*key);
  }
  return out;
}
}  // namespace

Result<crdt::Change> ReplicaImpl::SealLocal(std::string_view doc, DocState* st,
                                            crdt::Transaction& txn, crdt::Change* plain) {
  st->keys.Refresh(doc, st->doc.access(), secret_key_);
  const std::set<PublicKey> members = ReadersOf(st->doc.access());
  const e2e::HeldRecord* newest = st->keys.Newest();
  const e2e::EpochKey* newest_key = newest ? st->keys.KeyOf(newest->hash) : nullptr;
  // After concurrent rotations, a new epoch chains back to the newest record only: the key of
  // every other head (a record no other names as its previous) must be sealed again to the
  // members, as a record of its own epoch with the same key, so that each member reads every
  // branch. A head needs it while no held record of its key seals it to every member: also after
  // such a re-seal, when a member was added in a branch the re-sealing admin had not seen yet.
  // Only heads whose key (and previous key) this device holds can be sealed again.
  auto covers = [&](const e2e::HeldRecord& r) {
    std::set<PublicKey> readers_r;
    for (const e2e::SealedKey& k : r.record.readers) readers_r.insert(k.reader);
    return std::includes(readers_r.begin(), readers_r.end(), members.begin(), members.end());
  };
  auto previous_of = [&](const e2e::HeldRecord& h) -> const e2e::HeldRecord* {
    for (const e2e::HeldRecord& r : st->keys.records()) {
      if (r.hash == h.record.prev_hash) return &r;
    }
    return nullptr;
  };
  std::vector<const e2e::HeldRecord*> unsealed_heads;  // one per key
  {
    std::set<std::string> seen = {newest ? newest->record.key_check : std::string()};
    for (const e2e::HeldRecord& h : st->keys.records()) {
      if (seen.count(h.record.key_check) != 0 || !st->keys.KeyOf(h.hash)) continue;
      bool head = true, covered = false;
      for (const e2e::HeldRecord& r : st->keys.records()) {
        head = head && r.record.prev_hash != h.hash;
        covered = covered || (r.record.key_check == h.record.key_check && covers(r));
      }
      if (!head || covered) continue;
      const e2e::HeldRecord* prev = previous_of(h);
      if (h.record.epoch > 0 && (!prev || !st->keys.KeyOf(prev->hash))) continue;
      seen.insert(h.record.key_check);
      unsealed_heads.push_back(&h);
    }
  }
  bool match = newest_key != nullptr && unsealed_heads.empty();
  if (match) {
    std::set<PublicKey> readers;
    for (const e2e::SealedKey& r : newest->record.readers) readers.insert(r.reader);
    match = readers == members;
  }
  if (match) return e2e::SealChange(doc, *plain, newest->record, *newest_key);
  // The newest epoch is not sealed to exactly the members (a grant, a revoke, concurrent
  // rotations): only an admin makes the next one; nothing is written under a stale epoch.
  const crdt::Role role = st->doc.access().RoleOf(PrincipalOf(public_key_));
  if (role < crdt::Role::kAdmin) {
    return Status(
        StatusCode::kPermissionDenied,
        "end-to-end encrypted document \"" + std::string(doc) + "\": " +
            (newest && !newest_key
                 ? "this device holds no key for epoch " + std::to_string(newest->record.epoch)
                 : std::string("its newest key epoch is not sealed to its members")) +
            "; an admin must rotate the key");
  }
  if (newest && !newest_key) {
    return Status(StatusCode::kPermissionDenied, "cannot rotate the key of \"" + std::string(doc) +
                                                     "\": this device holds no key for epoch " +
                                                     std::to_string(newest->record.epoch));
  }
  auto key = e2e::NewEpochKey();
  if (!key.ok()) return key.status();
  std::vector<PublicKey> readers(members.begin(), members.end());
  auto record = e2e::MakeKeyRecord(secret_key_, doc, readers, *key,
                                   newest ? &newest->record : nullptr, newest_key);
  if (!record.ok()) return record.status();
  WEFT_RETURN_IF_ERROR(txn.AddKeyRecord(PrincipalOf(public_key_), e2e::EncodeKeyRecord(*record)));
  for (const e2e::HeldRecord* h : unsealed_heads) {
    const e2e::HeldRecord* prev = h->record.epoch > 0 ? previous_of(*h) : nullptr;
    auto resealed = e2e::MakeKeyRecord(secret_key_, doc, readers, *st->keys.KeyOf(h->hash),
                                       prev ? &prev->record : nullptr,
                                       prev ? st->keys.KeyOf(prev->hash) : nullptr);
    if (!resealed.ok()) return resealed.status();
    WEFT_RETURN_IF_ERROR(
        txn.AddKeyRecord(PrincipalOf(public_key_), e2e::EncodeKeyRecord(*resealed)));
  }
  auto again = txn.Prepare();
  if (!again) return Status(StatusCode::kInternal, "a transaction lost its ops");
  *plain = std::move(*again);
  return e2e::SealChange(doc, *plain, *record, *key);
}

Status ReplicaImpl::CreateEncryptedDocument(std::string_view doc) {
  WEFT_RETURN_IF_ERROR(CheckDocId(doc));
  if (HasDocument(doc)) {
    return Status::InvalidArgument("document \"" + std::string(doc) + "\" exists already");
  }
  if (options_.public_documents) {
    return Status::InvalidArgument(
        "this replica makes public documents (ReplicaOptions::public_documents): an encrypted "
        "one needs an owner");
  }
  auto info = Transact(doc, [&](Txn& t) {
    if (!t.document().version().empty()) {
      return Status::InvalidArgument("document \"" + std::string(doc) + "\" exists already");
    }
    return t.raw().Encrypt(PrincipalOf(public_key_));
  });
  return info.ok() ? Status::Ok() : info.status();
}

Result<EncryptionInfo> ReplicaImpl::Encryption(std::string_view doc) {
  WEFT_RETURN_IF_ERROR(CheckDocId(doc));
  if (!HasDocument(doc)) return Status::NotFound("no document \"" + std::string(doc) + "\"");
  DocSlot& slot = Slot(doc);
  std::lock_guard w(slot.write);
  auto loaded = Load(slot, doc, false);
  if (!loaded.ok()) return loaded.status();
  DocState* st = *loaded;
  EncryptionInfo out;
  std::shared_lock lock(slot.state);
  out.encrypted = st->doc.access().encrypted();
  if (!out.encrypted) return out;
  st->keys.Refresh(doc, st->doc.access(), secret_key_);
  if (const e2e::HeldRecord* newest = st->keys.Newest()) {
    out.epoch = newest->record.epoch;
    out.has_key = st->keys.KeyOf(newest->hash) != nullptr;
  }
  out.missing_epochs.assign(st->missing_epochs.begin(), st->missing_epochs.end());
  return out;
}

Result<std::vector<Equivocation>> ReplicaImpl::Equivocations() {
  auto records = store_->Equivocations(std::nullopt);
  if (!records.ok()) return records.status();
  std::vector<Equivocation> out;
  for (store::EquivocationRecord& r : *records) {
    Equivocation e;
    e.doc = std::move(r.doc);
    e.author = r.author;
    e.seq = r.seq;
    e.held = std::move(r.held);
    e.other = std::move(r.other);
    e.detected_ms = r.detected_ms;
    // The key: the binding in the document's access list (both changes verified against it).
    if (auto c = crdt::DecodeChange(e.other); c.ok()) {
      for (const auto& op : c->ops) {
        if (op.type == crdt::Op::Type::kAccess && op.action == crdt::AccessAction::kBind) {
          if (auto k = PublicKey::FromBytes(op.principal)) e.key = *k;
        }
      }
    }
    out.push_back(std::move(e));
  }
  // Keys bound before the two changes: from the documents' access lists.
  for (auto& e : out) {
    if (e.key.valid()) continue;
    (void)Read(e.doc, [&](const View& v) {
      if (auto p = v.document().access().KeyOf(e.author)) {
        if (auto k = PublicKey::FromBytes(*p)) e.key = *k;
      }
    });
  }
  return out;
}

std::vector<std::optional<crdt::Principal>> ReplicaImpl::VerifyAhead(
    std::string_view doc, const std::vector<crdt::Change>& changes) {
  std::vector<std::optional<crdt::Principal>> out(changes.size());
  // Authors the batch binds, by their earliest binding in it (which is the one applied).
  std::map<crdt::NodeId, std::pair<uint64_t, const crdt::Principal*>> bound;
  for (const crdt::Change& c : changes) {
    for (const crdt::Op& op : c.ops) {
      if (op.type != crdt::Op::Type::kAccess || op.action != crdt::AccessAction::kBind) continue;
      auto [it, fresh] = bound.try_emplace(c.author, c.start_seq, &op.principal);
      if (!fresh && c.start_seq < it->second.first) it->second = {c.start_seq, &op.principal};
    }
  }
  // The key of each change's author as the document names it now (nullopt: unbound or held).
  std::vector<std::optional<crdt::Principal>> keys(changes.size());
  bool owned = false;
  Status read = ReadDoc(doc, false, [&](const View& v) {
    const crdt::Document& d = v.document();
    owned = d.access().owned();
    for (size_t i = 0; owned && i < changes.size(); ++i) {
      const crdt::Change& c = changes[i];
      if (d.HasChange({c.author, c.end_seq()})) continue;
      if (const crdt::Principal* key = d.access().KeyOf(c.author)) keys[i] = *key;
    }
  });
  if (!read.ok() || !owned) return out;
  for (size_t i = 0; i < changes.size(); ++i) {
    const crdt::Principal* key = keys[i] ? &*keys[i] : nullptr;
    if (!key) {
      auto it = bound.find(changes[i].author);
      if (it == bound.end()) continue;
      key = it->second.second;
    }
    if (SignedBy(doc, *key, changes[i])) out[i] = *key;
  }
  return out;
}

Status ReplicaImpl::CheckHeldAgain(std::string_view doc, DocState* st, const crdt::Change& c,
                                   std::string_view blob) {
  // The latest held change of the author that starts at or before the end of `c`.
  auto found = store_->FindRow(doc, c.author, c.end_seq());
  if (!found.ok()) return found.status();
  if (!*found) return Status::Ok();  // compacted into segments: nothing to compare with here
  const std::string& held_blob = (*found)->data;
  auto held = oplog::DecodeRow(doc, (*found)->info.seq, held_blob);
  if (!held.ok()) return held.status();
  if (held_blob == blob || held->end_seq() < c.start_seq || *held == c) return Status::Ok();
  if (held->signature.empty()) {
    // This replica's own change, stored unsigned, back from a peer with its signature.
    crdt::Change unsigned_c = c;
    unsigned_c.signature.clear();
    if (*held == unsigned_c) return Status::Ok();
  }
  // Two different changes claim seqs of one author. Signed by the author's key, they prove it
  // equivocated (the held one was checked when it was applied); otherwise someone forged this one.
  if (Status sig = CheckSignature(doc, st->doc.access(), c); !sig.ok()) {
    ++signatures_refused_;
    return sig;
  }
  const uint64_t seq = std::max(held->start_seq, c.start_seq);
  WEFT_RETURN_IF_ERROR(
      store_->RecordEquivocation({std::string(doc), c.author, seq, held_blob, std::string(blob),
                                  static_cast<int64_t>(options_.clock())}));
  st->frozen.emplace(c.author, seq);
  ++equivocations_;
  return Status::Ok();
}

Status ReplicaImpl::AddAuthorship(std::string_view doc, const crdt::Document& d,
                                  crdt::Transaction& txn, size_t* added) const {
  const crdt::AccessList& access = d.access();
  const crdt::Principal me = PrincipalOf(public_key_);
  bool create = !access.owned() && d.version().empty() && !options_.public_documents;
  if (create) {
    WEFT_RETURN_IF_ERROR(txn.CreateAccess(me));
    ++*added;
  }
  if ((create || access.owned()) && !access.KeyOf(actor_)) {
    auto sig = secret_key_.Sign(kBindPurpose, BindingMessage(doc, actor_, me));
    if (!sig.ok()) return sig.status();
    WEFT_RETURN_IF_ERROR(
        txn.Bind(me, std::string(reinterpret_cast<const char*>(sig->data()), sig->size())));
    ++*added;
  }
  return Status::Ok();
}

bool ReplicaImpl::MayRead(std::string_view doc, const PublicKey& key) {
  bool allowed = true;
  Status s = ReadDoc(doc, false, [&](const View& v) {
    const crdt::AccessList& access = v.document().access();
    allowed = !access.owned() || access.RoleOf(PrincipalOf(key)) != crdt::Role::kNone;
  });
  // A document not held here: the peer may send it (the access checks of its changes decide).
  if (!s.ok()) return s.code() == StatusCode::kNotFound;
  return allowed;
}

Result<DocumentAccess> ReplicaImpl::Access(std::string_view doc) {
  DocumentAccess out;
  Status bad;
  WEFT_RETURN_IF_ERROR(ReadDoc(doc, false, [&](const View& v) {
    const crdt::AccessList& access = v.document().access();
    out.owned = access.owned();
    for (const auto& [principal, role] : access.Members()) {
      auto key = PublicKey::FromBytes(principal);
      if (!key) {
        bad = Status::Corruption("an access list names a key that is not one");
        return;
      }
      out.members.emplace(*key, role);
    }
  }));
  WEFT_RETURN_IF_ERROR(bad);
  return out;
}

Result<CommitInfo> ReplicaImpl::Grant(std::string_view doc, const PublicKey& key, Role role) {
  if (!key.valid()) return Status::InvalidArgument("no key to grant a role to");
  return Transact(doc, [&](Txn& t) { return t.raw().Grant(PrincipalOf(key), role); });
}

Result<CommitInfo> ReplicaImpl::Revoke(std::string_view doc, const PublicKey& key) {
  if (!key.valid()) return Status::InvalidArgument("no key to revoke");
  if (!HasDocument(doc)) return Status::NotFound("no document \"" + std::string(doc) + "\"");
  return Transact(doc, [&](Txn& t) { return t.raw().Revoke(PrincipalOf(key)); });
}

// Writes the snapshot of `doc` and compacts its log up to it, in one write of the store: the
// compaction is planned from what the log holds (oplog::PlanCompaction) and written with the
// snapshot, so both happen or neither does.
Status ReplicaImpl::WriteSnapshot(const std::string& doc, DocSlot& slot) {
  std::string data;
  uint64_t log_pos = 0;
  {
    std::shared_lock lock(slot.state);
    if (!slot.st) return Status::Ok();
    // Not built for encrypted documents: a state made without a key would hide content once the
    // key arrives, so their logs are kept whole and replayed (docs/security.md).
    if (slot.st->doc.access().encrypted()) return Status::Ok();
    data = slot.st->doc.EncodeSnapshot(false);
    log_pos = slot.st->log_pos;
  }
  // The snapshot covers the whole log of the document (the caller is its writer), or, on a
  // shared store, the log up to the document's position (others may have written past it).
  auto upto = shared_ ? Result<uint64_t>(log_pos) : store_->LastSeq(doc);
  if (!upto.ok()) return upto.status();
  auto plan = oplog::PlanCompaction(
      doc, *upto, [&](const store::LogRead& read) { return store_->ReadLog(doc, read); },
      [&](const std::vector<uint64_t>& ids) { return store_->ReadSegments(doc, ids); });
  if (!plan.ok()) return plan.status();
  return store_->WriteSnapshot(doc, *upto, data, *plan);
}

void ReplicaImpl::CompactOnClose() {
  if (options_.snapshot_every != 0) {
    std::vector<std::pair<std::string, DocSlot*>> slots;
    {
      std::lock_guard l(slots_mu_);
      for (const auto& [doc, slot] : slots_) slots.emplace_back(doc, slot.get());
    }
    for (auto& [doc, slot] : slots) {
      std::lock_guard w(slot->write);
      const DocState* st = slot->st.get();
      if (!st) continue;
      // Cheap enough at close: an eighth of the policy's worth of new changes or ops.
      bool worth = st->since_snapshot * 8 >= options_.snapshot_every ||
                   (options_.snapshot_every_ops &&
                    st->ops_since_snapshot * 8 >= options_.snapshot_every_ops);
      if (st->since_snapshot > 0 && worth) (void)WriteSnapshot(doc, *slot);
    }
  }
  store_->ReclaimSpace();
}

Status ReplicaImpl::MaybeSnapshot(const std::string& doc, DocSlot& slot) {
  if (!slot.st) return Status::Ok();
  DocState& st = *slot.st;
  bool due = (options_.snapshot_every && st.since_snapshot >= options_.snapshot_every) ||
             (options_.snapshot_every_ops && st.ops_since_snapshot >= options_.snapshot_every_ops);
  if (!due) return Status::Ok();
  // Counted from now even when it fails: a snapshot is a cache, and a failing one (a full disk, a
  // damaged segment) is tried again a policy's worth of changes later, not on every commit.
  st.since_snapshot = 0;
  st.ops_since_snapshot = 0;
  return WriteSnapshot(doc, slot);
}

Status ReplicaImpl::Snapshot(std::string_view doc) {
  WEFT_RETURN_IF_ERROR(CheckDocId(doc));
  if (!HasDocument(doc)) return Status::NotFound("no document \"" + std::string(doc) + "\"");
  DocSlot& slot = Slot(doc);
  std::lock_guard w(slot.write);
  auto st = Load(slot, doc, false);
  if (!st.ok()) return st.status();
  WEFT_RETURN_IF_ERROR(WriteSnapshot(std::string(doc), slot));
  (*st)->since_snapshot = 0;
  (*st)->ops_since_snapshot = 0;
  return Status::Ok();
}

Status ReplicaImpl::SetPeerVersion(std::string_view peer, std::string_view doc,
                                   const VersionVector& version) {
  WEFT_RETURN_IF_ERROR(CheckDocId(doc));
  return store_->SetPeerVersion(peer, doc, version, static_cast<int64_t>(options_.clock()));
}

Result<std::vector<std::pair<std::string, VersionVector>>> ReplicaImpl::PeerVersions(
    std::string_view peer) {
  return store_->PeerVersions(peer);
}

// ---- Snapshot bootstrap: base snapshots, kept apart from the op log. ----

Result<DocumentSnapshot> ReplicaImpl::ExportSnapshot(std::string_view doc) {
  DocumentSnapshot out;
  bool encrypted = false;
  WEFT_RETURN_IF_ERROR(ReadDoc(doc, false, [&](const View& v) {
    encrypted = v.document().access().encrypted();
    if (encrypted) return;
    out.data = v.document().EncodeSnapshot(false);
    out.version = v.version();
  }));
  // A relay's state of an encrypted document lacks its content, and a device's is plaintext:
  // neither is served; peers take the log (kNotFound sends them there).
  if (encrypted) {
    return Status::NotFound("no snapshot of end-to-end encrypted document \"" + std::string(doc) +
                            "\": its log is served");
  }
  return out;
}

Status ReplicaImpl::LoadBase(std::string_view doc, const crdt::DocumentOptions& dopts,
                             crdt::Document* out) {
  auto base = store_->GetBase(doc, /*with_data=*/true);
  if (!base.ok()) return base.status();
  if (!*base) return Status::Ok();
  auto d = crdt::Document::DecodeSnapshot((*base)->data, actor_, dopts);
  if (!d.ok()) {
    return Status::Corruption("base snapshot of \"" + std::string(doc) +
                              "\": " + d.status().message());
  }
  *out = std::move(*d);
  return Status::Ok();
}

Result<StateSeal> ReplicaImpl::SealState(std::string_view doc) {
  StateSeal seal;
  std::string digest;
  Status refused;
  WEFT_RETURN_IF_ERROR(ReadDoc(doc, false, [&](const View& v) {
    const crdt::Document& d = v.document();
    const crdt::Role role = d.access().RoleOf(PrincipalOf(public_key_));
    if (d.access().encrypted()) {
      refused = Status::InvalidArgument(
          "an end-to-end encrypted document's state is sealed encrypted (SealEncryptedState)");
    } else if (!d.access().owned()) {
      refused = Status::InvalidArgument("a public document has no owner to seal it");
    } else if (role != crdt::Role::kOwner && role != crdt::Role::kAdmin) {
      refused = Status(StatusCode::kPermissionDenied, "only the owner or an admin seals a state");
    } else {
      seal.version = d.version();
      seal.lamport = d.lamport();
      digest = Blake2b(d.CanonicalState());
    }
  }));
  WEFT_RETURN_IF_ERROR(refused);
  auto sig = secret_key_.Sign(kStatePurpose, StateMessage(doc, seal.version, seal.lamport, digest));
  if (!sig.ok()) return sig.status();
  seal.key = public_key_;
  seal.signature.assign(reinterpret_cast<const char*>(sig->data()), sig->size());
  return seal;
}

Status ReplicaImpl::KeepSealedSnapshot(std::string_view doc, const StateSeal& seal) {
  WEFT_RETURN_IF_ERROR(CheckDocId(doc));
  if (!HasDocument(doc)) return Status::NotFound("no document \"" + std::string(doc) + "\"");
  DocSlot& slot = Slot(doc);
  std::unique_lock w(slot.write);
  auto loaded = Load(slot, doc, false);
  if (!loaded.ok()) return loaded.status();
  std::string data;
  {
    std::shared_lock lock(slot.state);
    const crdt::Document& d = (*loaded)->doc;
    if (d.version() != seal.version) {
      return Status::InvalidArgument("the document is at another version here than the seal's");
    }
    WEFT_RETURN_IF_ERROR(CheckStateSeal(doc, d, seal));
    data = d.EncodeSnapshot(false);
  }
  return store_->PutSealedSnapshot(doc, seal.version, EncodeSeal(seal), data);
}

Result<DocumentSnapshot> ReplicaImpl::SealEncryptedState(std::string_view doc) {
  WEFT_RETURN_IF_ERROR(CheckDocId(doc));
  if (!HasDocument(doc)) return Status::NotFound("no document \"" + std::string(doc) + "\"");
  DocSlot& slot = Slot(doc);
  std::unique_lock w(slot.write);  // the keys (DocState::keys) are refreshed below
  auto loaded = Load(slot, doc, false);
  if (!loaded.ok()) return loaded.status();
  DocState* st = *loaded;
  std::shared_lock lock(slot.state);
  const crdt::Document& d = st->doc;
  if (!d.access().encrypted()) {
    return Status::InvalidArgument("\"" + std::string(doc) +
                                   "\" is not end-to-end encrypted (SealState seals its state)");
  }
  const crdt::Role role = d.access().RoleOf(PrincipalOf(public_key_));
  if (role != crdt::Role::kOwner && role != crdt::Role::kAdmin) {
    return Status(StatusCode::kPermissionDenied, "only the owner or an admin seals a state");
  }
  // A state missing content it could not decrypt would hide that content from every device that
  // bootstraps from it.
  if (!st->missing_epochs.empty()) {
    return Status(StatusCode::kPermissionDenied,
                  "this device holds content of \"" + std::string(doc) + "\" it cannot decrypt");
  }
  st->keys.Refresh(doc, d.access(), secret_key_);
  const e2e::HeldRecord* newest = st->keys.Newest();
  const e2e::EpochKey* key = newest ? st->keys.KeyOf(newest->hash) : nullptr;
  if (!key) {
    return Status(StatusCode::kPermissionDenied,
                  "this device holds no key of the newest epoch of \"" + std::string(doc) + "\"");
  }
  DocumentSnapshot out;
  out.version = d.version();
  StateSeal seal;
  seal.version = out.version;
  seal.lamport = d.lamport();
  seal.encrypted = true;
  auto payload = e2e::EncryptPayload(
      *key, newest->record.epoch,
      e2e::SnapshotHeader(doc, seal.version, seal.lamport, newest->hash), d.EncodeSnapshot(false));
  if (!payload.ok()) return payload.status();
  out.data = e2e::EncodeEncryptedSnapshot(newest->record, *payload);
  auto sig = secret_key_.Sign(kE2eStatePurpose,
                              StateMessage(doc, seal.version, seal.lamport, Blake2b(out.data)));
  if (!sig.ok()) return sig.status();
  seal.key = public_key_;
  seal.signature.assign(reinterpret_cast<const char*>(sig->data()), sig->size());
  out.seal = std::move(seal);
  return out;
}

Result<crdt::Document> ReplicaImpl::OpenEncryptedSnapshot(std::string_view doc,
                                                          std::string_view data,
                                                          const StateSeal& seal,
                                                          std::string* plain) {
  const std::string what = "the encrypted snapshot of \"" + std::string(doc) + "\": ";
  auto refuse = [&](const Status& s) { return Status(s.code(), what + s.message()); };
  // One signature first, over the bytes as they came: who signed is checked against the access
  // list inside, once it is open.
  if (Status s = VerifyEncryptedSeal(doc, data, seal); !s.ok()) return refuse(s);
  auto snap = e2e::DecodeEncryptedSnapshot(data);
  if (!snap.ok()) return refuse(snap.status());
  if (snap->record.doc != doc) {
    return refuse(Status(StatusCode::kPermissionDenied, "its key record is of another document"));
  }
  auto key = e2e::OpenEpochKey(snap->record, secret_key_);
  if (!key.ok()) {
    return refuse(Status(key.status().code(),
                         "this device holds no key of epoch " + std::to_string(snap->record.epoch) +
                             " it is encrypted under (" + key.status().message() + ")"));
  }
  auto text = e2e::DecryptPayload(
      *key, e2e::SnapshotHeader(doc, seal.version, seal.lamport, snap->record_hash), snap->payload);
  if (!text.ok()) return refuse(text.status());
  crdt::DocumentOptions dopts{options_.max_drift_ms, /*keep_history=*/false};
  auto d = crdt::Document::DecodeSnapshot(*text, actor_, dopts);
  if (!d.ok()) return refuse(Status::Corruption(d.status().message()));
  if (!d->access().encrypted()) {
    return refuse(Status(StatusCode::kPermissionDenied, "it holds a plain document"));
  }
  if (d->version() != seal.version || d->lamport() != seal.lamport) {
    return refuse(Status(StatusCode::kPermissionDenied,
                         "the seal is of another version of the document than the state inside"));
  }
  if (Status s = CheckEncryptedSigner(d->access(), seal); !s.ok()) return refuse(s);
  // The record it is encrypted under must be one of the state's own (a keys op of one of its
  // admins), so that its epoch is one the access list made.
  e2e::DocKeys keys;
  keys.Refresh(doc, d->access(), secret_key_);
  if (!keys.KeyOf(snap->record_hash)) {
    return refuse(Status(StatusCode::kPermissionDenied,
                         "it is encrypted under a key record its own access list does not hold"));
  }
  *plain = std::move(*text);
  return d;
}

Status ReplicaImpl::KeepEncryptedSnapshot(std::string_view doc, std::string_view data,
                                          const StateSeal& seal) {
  WEFT_RETURN_IF_ERROR(CheckDocId(doc));
  if (!HasDocument(doc)) return Status::NotFound("no document \"" + std::string(doc) + "\"");
  // The signature over the bytes first, outside the document's locks (writers go on meanwhile).
  WEFT_RETURN_IF_ERROR(VerifyEncryptedSeal(doc, data, seal));
  auto snap = e2e::DecodeEncryptedSnapshot(data);
  if (!snap.ok()) return snap.status();
  if (snap->record.doc != doc) {
    return Status(StatusCode::kPermissionDenied, "an encrypted snapshot of another document");
  }
  DocSlot& slot = Slot(doc);
  std::unique_lock w(slot.write);
  auto loaded = Load(slot, doc, false);
  if (!loaded.ok()) return loaded.status();
  DocState* st = *loaded;
  {
    std::shared_lock lock(slot.state);
    const crdt::Document& d = st->doc;
    if (!d.access().encrypted()) {
      return Status(StatusCode::kPermissionDenied,
                    "an encrypted snapshot of a document that is not end-to-end encrypted");
    }
    // Every change it holds is held here (the same signed changes: the same heads), so the log
    // here serves whatever came after it. At exactly this version, its Lamport time is checked
    // too (a reader checks it against the state inside in any case).
    if (!d.version().Dominates(seal.version)) {
      return Status::InvalidArgument("the seal holds changes this replica lacks");
    }
    if (d.version() == seal.version && d.lamport() != seal.lamport) {
      return Status(StatusCode::kPermissionDenied, "the seal is of another Lamport time");
    }
    WEFT_RETURN_IF_ERROR(CheckEncryptedSigner(d.access(), seal));
    // Its key record must be one the document holds (signed by one of its admins): a reader that
    // opens the key from it then reads under an epoch the access list made.
    st->keys.Refresh(doc, d.access(), secret_key_);
    const auto& held = st->keys.records();
    if (std::none_of(held.begin(), held.end(),
                     [&](const e2e::HeldRecord& r) { return r.hash == snap->record_hash; })) {
      return Status(StatusCode::kPermissionDenied,
                    "an encrypted snapshot under a key record the document does not hold");
    }
  }
  // Only a newer one replaces the one kept.
  auto kept = store_->GetSealedSnapshot(doc);
  if (!kept.ok()) return kept.status();
  if (*kept && (*kept)->version.Dominates(seal.version)) return Status::Ok();
  return store_->PutSealedSnapshot(doc, seal.version, EncodeSeal(seal), data);
}

Result<DocumentSnapshot> ReplicaImpl::SealedSnapshot(std::string_view doc) {
  WEFT_RETURN_IF_ERROR(CheckDocId(doc));
  auto rec = store_->GetSealedSnapshot(doc);
  if (!rec.ok()) return rec.status();
  if (!*rec) return Status::NotFound("no sealed snapshot of \"" + std::string(doc) + "\"");
  auto seal = DecodeSeal((*rec)->seal, (*rec)->version);
  if (!seal.ok()) return seal.status();
  DocumentSnapshot out;
  out.version = std::move((*rec)->version);
  out.seal = std::move(*seal);
  out.data = std::move((*rec)->data);
  return out;
}

Result<VersionVector> ReplicaImpl::ImportSnapshot(std::string_view doc, std::string_view data,
                                                  const VersionVector* expected,
                                                  const StateSeal* seal, bool require_seal) {
  WEFT_RETURN_IF_ERROR(CheckDocId(doc));
  // Validate before touching anything: hostile bytes are refused here.
  crdt::DocumentOptions dopts{options_.max_drift_ms, /*keep_history=*/false};
  const bool encrypted = seal && seal->encrypted;
  std::string opened;  // an encrypted snapshot's plaintext: the base kept
  auto decoded = encrypted ? OpenEncryptedSnapshot(doc, data, *seal, &opened)
                           : crdt::Document::DecodeSnapshot(data, actor_, dopts);
  if (!decoded.ok()) {
    if (encrypted) return decoded.status();
    return Status::Corruption("snapshot of \"" + std::string(doc) +
                              "\": " + decoded.status().message());
  }
  if (encrypted) data = opened;
  if (decoded->access().encrypted() && !encrypted) {
    return Status(StatusCode::kPermissionDenied,
                  "a snapshot of end-to-end encrypted document \"" + std::string(doc) +
                      "\" is taken only encrypted and sealed by its owner or an admin");
  }
  const VersionVector version = decoded->version();
  if (expected && *expected != version) {
    return Status::Corruption("the snapshot of \"" + std::string(doc) +
                              "\" does not hold the version it was sent with");
  }
  // A snapshot carries no history to check signatures on: an owned document's is taken from an
  // untrusted source only with its owner's or an admin's seal of that very state (an encrypted
  // one's seal was checked as it was opened).
  if (seal && !encrypted) {
    if (Status c = CheckStateSeal(doc, *decoded, *seal); !c.ok()) {
      return Status(c.code(), "the snapshot of \"" + std::string(doc) + "\": " + c.message());
    }
  } else if (!seal && require_seal && decoded->access().owned()) {
    return Status(StatusCode::kPermissionDenied, "the snapshot of owned document \"" +
                                                     std::string(doc) +
                                                     "\" is not sealed by its owner or an admin");
  }
  DocSlot& slot = Slot(doc);
  std::unique_lock w(slot.write);
  VersionVector local;
  auto loaded = Load(slot, doc, false);
  if (loaded.ok()) {
    std::shared_lock lock(slot.state);
    local = (*loaded)->doc.version();
  } else if (loaded.status().code() != StatusCode::kNotFound) {
    return loaded.status();
  }
  if (!version.Dominates(local)) {
    return Status::InvalidArgument("the snapshot of \"" + std::string(doc) +
                                   "\" lacks changes this replica holds; it cannot replace them");
  }
  // Nothing a device holds could vouch for an encrypted snapshot's access list and key records
  // (its signer is checked against the list inside it): one that replaced a document held here
  // could bring in a key of the sender's making. So only a device that holds nothing of the
  // document takes one; any other takes the log, each change checked against what it holds.
  if (encrypted && !local.empty()) {
    return Status::InvalidArgument("end-to-end encrypted document \"" + std::string(doc) +
                                   "\" is held here already: its log is taken, not a snapshot");
  }
  if (loaded.ok() && local.Dominates(version)) return local;  // nothing new in it
  // Kept with the base, to serve others: they check the seal the same way. (Not an encrypted
  // snapshot's: the base is its plaintext, which the seal does not sign; devices do not serve
  // snapshots of encrypted documents.)
  const std::string sealed = seal && !encrypted ? EncodeSeal(*seal) : std::string();
  auto commit = store_->ImportBase(doc, static_cast<int64_t>(options_.clock()), version, data,
                                   sealed.empty() ? nullptr : &sealed);
  if (!commit.ok()) return commit.status();
  WEFT_RETURN_IF_ERROR(store_->WaitDurable(*commit));
  {
    std::unique_lock lock(slot.state);
    auto fresh = std::make_unique<DocState>(std::move(*decoded));
    // The log rows held stay, and the snapshot holds them all (it dominates them).
    if (loaded.ok()) fresh->log_pos = (*loaded)->log_pos;
    if (encrypted) fresh->keys.Refresh(doc, fresh->doc.access(), secret_key_);
    slot.st = std::move(fresh);
  }
  {
    std::lock_guard f(feed_mu_);
    ChangeEvent ev{std::string(doc), false, {}, {}, false, false, {}};
    ev.snapshot = true;
    ev.access = true;
    queue_.push_back(std::move(ev));
  }
  version_cv_.notify_all();
  w.unlock();
  Dispatch();
  return version;
}

Result<VersionVector> ReplicaImpl::BaseVersion(std::string_view doc) {
  WEFT_RETURN_IF_ERROR(CheckDocId(doc));
  if (!HasDocument(doc)) return Status::NotFound("no document \"" + std::string(doc) + "\"");
  auto base = store_->GetBase(doc, /*with_data=*/false);
  if (!base.ok()) return base.status();
  if (!*base) return VersionVector();
  return std::move((*base)->version);
}

// ---- Time travel: documents rebuilt from the op log at a version. ----

Result<ReplicaImpl::FullHistory> ReplicaImpl::ReadHistory(std::string_view doc) {
  WEFT_RETURN_IF_ERROR(CheckDocId(doc));
  if (!HasDocument(doc)) return Status::NotFound("no document \"" + std::string(doc) + "\"");
  FullHistory h;
  auto take = [&](crdt::Change c) {
    if (h.version.Get(c.author) >= c.end_seq()) return;  // in the base already
    h.version.Advance(c.author, c.end_seq());
    h.changes.push_back(std::move(c));
  };
  // One read: a compaction committing meanwhile cannot move changes out of sight.
  store::LogRead read;
  read.base = [&](std::string_view data) -> Status {
    h.base = std::string(data);
    if (h.base.empty()) return Status::Ok();
    crdt::DocumentOptions dopts{options_.max_drift_ms, /*keep_history=*/false};
    auto d = crdt::Document::DecodeSnapshot(h.base, actor_, dopts);
    if (!d.ok()) {
      return Status::Corruption("base snapshot of \"" + std::string(doc) +
                                "\": " + d.status().message());
    }
    h.base_version = d->version();
    h.version = h.base_version;
    return Status::Ok();
  };
  read.segment = [&](const store::SegmentInfo& seg, std::string_view data) -> Status {
    auto cs = oplog::DecodeSegmentData(doc, seg.last_seq, data);
    if (!cs.ok()) return cs.status();
    for (crdt::Change& c : *cs) take(std::move(c));
    return Status::Ok();
  };
  read.row = [&](const store::RowInfo& row, std::string_view data) -> Status {
    auto c = oplog::DecodeRow(doc, row.seq, data);
    if (!c.ok()) return c.status();
    take(std::move(*c));
    return Status::Ok();
  };
  WEFT_RETURN_IF_ERROR(store_->ReadLog(doc, read));
  return h;
}

Result<crdt::Document> ReplicaImpl::Rebuild(std::string_view doc, const FullHistory& h,
                                            const VersionVector& to, const VersionVector* from,
                                            std::vector<crdt::Patch>* patches) {
  const std::string name = "\"" + std::string(doc) + "\"";
  for (const VersionVector* v : {&to, from}) {
    if (!v) continue;
    if (!h.version.Dominates(*v)) {
      return Status::NotFound("this replica does not hold version " + v->ToString() + " of " +
                              name + " (it holds " + h.version.ToString() + ")");
    }
    if (!v->Dominates(h.base_version)) {
      return Status::HistoryTruncated("version " + v->ToString() + " of " + name +
                                      " is older than the snapshot this replica's history of it "
                                      "starts from (" +
                                      h.base_version.ToString() + ")");
    }
  }
  if (from && !to.Dominates(*from)) {
    return Status::InvalidArgument("version " + from->ToString() + " of " + name +
                                   " is not earlier than version " + to.ToString());
  }
  crdt::DocumentOptions dopts{options_.max_drift_ms, /*keep_history=*/false};
  crdt::Document out(actor_, dopts);
  if (!h.base.empty()) {
    auto d = crdt::Document::DecodeSnapshot(h.base, actor_, dopts);
    if (!d.ok())
      return Status::Corruption("base snapshot of " + name + ": " + d.status().message());
    out = std::move(*d);
  }
  // First everything `from` holds (or `to`, without `from`), then the rest of `to`: each pass in
  // log order, which is causal, so each change finds its dependencies applied before it.
  // Every key record of the history first: a grant later in the log opens earlier epochs.
  e2e::DocKeys keys;
  for (const crdt::Change& c : h.changes) {
    if (e2e::HasKeysOps(c)) keys.RefreshWith(doc, c, secret_key_);
  }
  auto pass = [&](const VersionVector& v, std::vector<crdt::Patch>* gather) -> Status {
    crdt::ApplyOptions opts;
    opts.patches = gather;
    for (const crdt::Change& c : h.changes) {
      uint64_t held = v.Get(c.author);
      if (held < c.start_seq || out.HasChange({c.author, c.end_seq()})) continue;
      if (held < c.end_seq()) {
        return Status::InvalidArgument("version " + v.ToString() + " of " + name +
                                       " splits change " + c.id().ToString());
      }
      std::optional<crdt::Change> opened;
      if (e2e::HasSealed(c)) {
        // An encrypted document's content, decrypted as on load (keys from the records so far).
        uint64_t missing = 0;
        keys.Refresh(doc, out.access(), secret_key_);
        keys.RefreshWith(doc, c, secret_key_);
        auto o = e2e::OpenChange(doc, c, keys, &missing);
        if (!o.ok()) return oplog::CorruptLog(doc, o.status().message());
        if (!*o) return NoKey(doc, {missing});
        opened = std::move(*o);
      }
      Status s = out.ApplyChange(opened ? *opened : c, opts);
      if (s.code() == StatusCode::kMissingDependency) {
        return Status::InvalidArgument("version " + v.ToString() + " of " + name +
                                       " holds change " + c.id().ToString() +
                                       " without its dependencies");
      }
      if (!s.ok()) return oplog::CorruptLog(doc, s.message());
    }
    if (out.version() != v) {
      return Status::InvalidArgument("version " + v.ToString() + " of " + name +
                                     " is not one the document was at");
    }
    return Status::Ok();
  };
  WEFT_RETURN_IF_ERROR(pass(from ? *from : to, nullptr));
  if (from) WEFT_RETURN_IF_ERROR(pass(to, patches));
  return out;
}

Result<std::vector<HistoryEntry>> ReplicaImpl::History(std::string_view doc) {
  auto h = ReadHistory(doc);
  if (!h.ok()) return h.status();
  std::vector<HistoryEntry> out;
  out.reserve(h->changes.size());
  VersionVector v = h->base_version;
  for (const crdt::Change& c : h->changes) {
    v.Advance(c.author, c.end_seq());
    out.push_back({c.id(), c.end_seq(), c.lamport, c.time.wall_ms, c.ops.size(), v});
  }
  return out;
}

Status ReplicaImpl::ReadAt(std::string_view doc, const VersionVector& version,
                           const std::function<void(const View&)>& body) {
  auto h = ReadHistory(doc);
  if (!h.ok()) return h.status();
  auto d = Rebuild(doc, *h, version, nullptr, nullptr);
  if (!d.ok()) return d.status();
  body(View(*d));
  return Status::Ok();
}

Result<std::vector<crdt::Patch>> ReplicaImpl::Diff(std::string_view doc, const VersionVector& from,
                                                   const VersionVector& to) {
  auto h = ReadHistory(doc);
  if (!h.ok()) return h.status();
  std::vector<crdt::Patch> patches;
  auto d = Rebuild(doc, *h, to, &from, &patches);
  if (!d.ok()) return d.status();
  return patches;
}

Result<std::string> ReplicaImpl::CausalToken(std::string_view doc) {
  auto v = Version(doc);
  if (!v.ok()) return v.status();
  return EncodeCausalToken(doc, *v);
}

Result<bool> ReplicaImpl::Satisfies(std::string_view token) {
  auto t = DecodeCausalToken(token);
  if (!t.ok()) return t.status();
  if (t->second.empty()) return true;
  auto v = Version(t->first);
  if (v.status().code() == StatusCode::kNotFound) return false;
  if (!v.ok()) return v.status();
  return v->Dominates(t->second);
}

Status ReplicaImpl::WaitFor(std::string_view token, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto ok = Satisfies(token);
    if (!ok.ok()) return ok.status();
    if (*ok) return Status::Ok();
    std::unique_lock f(feed_mu_);
    if (version_cv_.wait_until(f, deadline) == std::cv_status::timeout) {
      f.unlock();
      auto last = Satisfies(token);
      if (last.ok() && *last) return Status::Ok();
      return Status(StatusCode::kTimeout, "the replica has not caught up with the token");
    }
  }
}

uint64_t ReplicaImpl::Subscribe(std::string_view doc, ChangeCallback callback) {
  std::lock_guard f(feed_mu_);
  uint64_t id = next_sub_++;
  subs_.emplace(id, Sub{std::string(doc), std::move(callback)});
  return id;
}

void ReplicaImpl::Unsubscribe(uint64_t id) {
  std::unique_lock f(feed_mu_);
  subs_.erase(id);
  // Another thread may be calling it right now (the follower of a shared store delivers at any
  // time): once this returns, the callback is not running and is never called again.
  if (dispatching_ && dispatch_thread_ != std::this_thread::get_id()) {
    const uint64_t current = delivered_;
    delivery_cv_.wait(f, [&] { return !dispatching_ || delivered_ != current; });
  }
}

void ReplicaImpl::SetConflictResolver(std::string_view doc, ConflictResolver resolver) {
  std::lock_guard f(feed_mu_);
  if (!resolver) {
    resolvers_.erase(std::string(doc));
    return;
  }
  resolvers_[std::string(doc)] = std::move(resolver);
}

// Delivers queued events in commit order. One thread delivers at a time; a callback that commits
// queues its own event, which the same loop delivers after the callback returns.
void ReplicaImpl::Dispatch() {
  std::unique_lock f(feed_mu_);
  if (dispatching_) return;
  dispatching_ = true;
  dispatch_thread_ = std::this_thread::get_id();
  while (!queue_.empty()) {
    ChangeEvent ev = std::move(queue_.front());
    queue_.pop_front();
    std::vector<ChangeCallback> targets;
    for (const auto& [id, sub] : subs_) {
      if (sub.doc.empty() || sub.doc == ev.doc) targets.push_back(sub.fn);
    }
    f.unlock();
    for (const auto& fn : targets) fn(ev);
    f.lock();
    ++delivered_;
    delivery_cv_.notify_all();
  }
  dispatching_ = false;
  delivery_cv_.notify_all();
}

void ReplicaImpl::Resolve(const std::string& doc, const std::vector<crdt::Patch>& patches) {
  ConflictResolver resolver;
  {
    std::lock_guard f(feed_mu_);
    auto it = resolvers_.find(doc);
    if (it == resolvers_.end()) it = resolvers_.find("");
    if (it == resolvers_.end()) return;
    resolver = it->second;
  }
  for (const auto& p : patches) {
    if (p.type != crdt::Patch::Type::kMapKey || p.siblings < 2) continue;
    ConflictInfo info{doc, p.object, p.key, {}};
    crdt::VersionVector context;
    bool still = false;
    (void)ReadDoc(doc, false, [&](const View& v) {
      auto read = v.document().Get(p.object, p.key);
      if (!read.ok() || read->values.size() < 2) return;
      still = true;
      context = read->context;
      for (const auto& e : read->values) info.siblings.push_back(e.value);
    });
    if (!still) continue;
    std::optional<crdt::Scalar> chosen = resolver(info);
    if (!chosen) continue;
    (void)Transact(
        doc, [&](Txn& txn) { return txn.raw().PutAfterRead(p.object, p.key, *chosen, context); });
  }
}

void ReplicaImpl::StartFollowing() {
  shared_ = true;
  watch_id_ = store_->Watch([this](const store::StoredNotice& n) {
    if (!n.foreign) return;  // this replica's own write: it knows
    std::lock_guard l(follow_mu_);
    if (n.doc.empty()) {
      follow_all_ = true;
    } else {
      bool& base = follow_pending_[n.doc];
      base = base || n.base;
    }
    follow_cv_.notify_one();
  });
  if (options_.follow_in_background) follower_ = std::thread([this] { FollowLoop(); });
}

void ReplicaImpl::StopFollowing() {
  if (!shared_) return;
  store_->Unwatch(watch_id_);
  {
    std::lock_guard l(follow_mu_);
    follow_stop_ = true;
  }
  follow_cv_.notify_one();
  if (follower_.joinable()) follower_.join();
}

size_t ReplicaImpl::FollowStore(bool all) {
  return shared_ ? FollowPending(all) : 0;
}

size_t ReplicaImpl::FollowPending(bool all) {
  std::map<std::string, bool> pending;
  {
    std::lock_guard l(follow_mu_);
    pending.swap(follow_pending_);
    all = std::exchange(follow_all_, false) || all;
  }
  if (all) {
    std::vector<std::pair<std::string, DocSlot*>> slots;
    {
      std::lock_guard l(slots_mu_);
      for (const auto& [doc, slot] : slots_) slots.emplace_back(doc, slot.get());
    }
    for (auto& [doc, slot] : slots) {
      std::shared_lock state(slot->state);
      if (slot->st) pending.try_emplace(doc, false);
    }
  }
  // Loaded documents are read together past their positions (one read of the store, where it
  // can); others, and documents with a new base, one by one.
  size_t changed = 0;
  std::vector<store::LogTail> tails;
  for (const auto& [doc, base] : pending) {
    DocSlot* slot = base ? nullptr : FindSlot(doc);
    std::optional<uint64_t> pos;
    if (slot) {
      std::lock_guard w(slot->write);
      if (slot->st) pos = slot->st->log_pos;
    }
    if (!pos) {
      changed += CatchUp(doc, base) ? 1 : 0;
    } else {
      tails.push_back({doc, *pos, false, {}});
    }
  }
  constexpr size_t kTailsPerRead = 64;
  for (size_t i = 0; i < tails.size(); i += kTailsPerRead) {
    std::vector<store::LogTail> part(
        std::make_move_iterator(tails.begin() + i),
        std::make_move_iterator(tails.begin() + std::min(tails.size(), i + kTailsPerRead)));
    // A storage error leaves the positions: the next notice or poll reads again.
    if (!store_->ReadTails(&part).ok()) continue;
    for (const store::LogTail& t : part) {
      changed += CatchUp(t.doc, false, t.segments ? nullptr : &t) ? 1 : 0;
    }
  }
  return changed;
}

void ReplicaImpl::FollowLoop() {
  using Clock = std::chrono::steady_clock;
  const bool poll = options_.follow_poll.count() > 0;
  auto next_poll = poll ? Clock::now() + options_.follow_poll : Clock::time_point::max();
  std::unique_lock l(follow_mu_);
  while (true) {
    follow_cv_.wait_until(l, next_poll,
                          [&] { return follow_stop_ || follow_all_ || !follow_pending_.empty(); });
    if (follow_stop_) return;
    if (const auto now = Clock::now(); poll && now >= next_poll) {
      follow_all_ = true;
      next_poll = now + options_.follow_poll;
    }
    l.unlock();
    FollowPending(false);
    l.lock();
  }
}

bool ReplicaImpl::CatchUp(const std::string& doc, bool base, const store::LogTail* tail) {
  DocSlot* slot = FindSlot(doc);
  std::unique_lock<std::mutex> w;
  if (slot) w = std::unique_lock(slot->write);
  ChangeEvent ev{doc, false, {}, {}, false, false, {}};
  if (!slot || !slot->st) {
    // Not loaded here: it is read whole from the store when next used. Those following every
    // document (a relay's sessions) hear of it as of a document to read again.
    ev.snapshot = true;
    ev.access = true;
    {
      std::lock_guard f(feed_mu_);
      queue_.push_back(std::move(ev));
    }
    if (w) w.unlock();
    Dispatch();
    return true;
  }
  DocState* st = slot->st.get();
  if (!base) {
    // Held already: this replica's own rows, and what it took from peers directly.
    auto held = [&](NodeId author, uint64_t end_seq) {
      return st->frozen.count(author) != 0 || st->doc.HasChange({author, end_seq});
    };
    std::vector<crdt::Change> changes;
    std::vector<std::string> blobs;  // each change's bytes as stored ("": from a segment)
    uint64_t pos = st->log_pos;
    store::LogRead read;
    read.after = st->log_pos;
    read.segment = [&](const store::SegmentInfo& seg, std::string_view data) -> Status {
      auto cs = oplog::DecodeSegmentData(doc, seg.last_seq, data);
      if (!cs.ok()) return cs.status();
      for (crdt::Change& c : *cs) {
        if (held(c.author, c.end_seq())) continue;
        changes.push_back(std::move(c));
        blobs.emplace_back();
      }
      pos = std::max(pos, seg.last_seq);
      return Status::Ok();
    };
    read.want_row = [&](const store::RowInfo& row) {
      pos = std::max(pos, row.seq);
      return !held(row.author, row.end_seq);
    };
    read.row = [&](const store::RowInfo& row, std::string_view data) -> Status {
      auto c = oplog::DecodeRow(doc, row.seq, data);
      if (!c.ok()) return c.status();
      changes.push_back(std::move(*c));
      blobs.emplace_back(data);
      return Status::Ok();
    };
    if (tail) {
      // Read from the position then, which this one may have passed since: what lies between is
      // held.
      for (const store::FoundRow& row : tail->rows) {
        if (!read.want_row(row.info)) continue;
        if (!read.row(row.info, row.data).ok()) return false;
      }
    } else if (!store_->ReadLog(doc, read).ok()) {
      // A storage error leaves the position: the next notice or poll reads again.
      return false;
    }
    std::unique_lock lock(slot->state);
    crdt::ApplyOptions opts;
    opts.patches = &ev.patches;
    size_t applied = 0;
    Status failure;
    for (size_t i = 0; i < changes.size(); ++i) {
      const crdt::Change& c = changes[i];
      if (st->doc.HasChange({c.author, c.end_seq()})) continue;  // twice in the read
      // The log is in causal order (each store appends only what it holds the dependencies of),
      // so every change applies here.
      failure = st->doc.ApplyChange(c, opts);
      if (!failure.ok()) break;
      if (!blobs[i].empty()) ev.followed.push_back(std::move(blobs[i]));
      if (applied++ == 0) ev.change = c.id();
      ++st->since_snapshot;
      st->ops_since_snapshot += c.span();
      ev.access = ev.access || HasAccessOps(c);
    }
    if (failure.ok()) {
      st->log_pos = pos;
      if (applied == 0) return false;
    } else {
      base = true;  // cannot happen with a sound log: read the document again, whole
    }
  }
  if (base) {
    std::unique_lock lock(slot->state);
    slot->st.reset();
    ev.patches.clear();
    ev.followed.clear();
    ev.change = {};
    ev.snapshot = true;
    ev.access = true;
  } else {
    (void)MaybeSnapshot(doc, *slot);
  }
  {
    std::lock_guard f(feed_mu_);
    queue_.push_back(std::move(ev));
  }
  version_cv_.notify_all();
  w.unlock();
  Dispatch();
  return true;
}

void ReplicaImpl::Appended(const std::string& doc, DocState* st, const store::AppendResult& r) {
  if (r.stored == 0) return;
  if (!shared_ || r.first_seq == st->log_pos + 1) {
    st->log_pos = std::max(st->log_pos, r.last_seq);
    return;
  }
  std::lock_guard l(follow_mu_);
  follow_pending_.try_emplace(doc, false);
  follow_cv_.notify_one();
}

}  // namespace

Result<std::unique_ptr<Replica>> OpenReplica(std::unique_ptr<store::Store> store,
                                             ReplicaOptions options) {
  if (!store) return Status::InvalidArgument("no store to open a replica on");
  auto r = std::make_unique<ReplicaImpl>(std::move(store), std::move(options));
  WEFT_RETURN_IF_ERROR(r->Init());
  return std::unique_ptr<Replica>(std::move(r));
}

Result<std::unique_ptr<Replica>> Replica::Open(const std::string& path, ReplicaOptions options) {
  store::SqliteStoreOptions so;
  so.durability = options.durability;
  so.create_if_missing = options.create_if_missing;
  so.vfs = options.vfs;
  so.new_node_id = options.new_node_id;
  auto s = store::OpenSqliteStore(path, so);
  if (!s.ok()) return s.status();
  return OpenReplica(std::move(*s), std::move(options));
}

std::string EncodeCausalToken(std::string_view doc, const VersionVector& version) {
  std::string t(doc);
  t += '@';
  bool first = true;
  for (const auto& [node, seq] : version.entries()) {
    if (!first) t += ',';
    first = false;
    t += node.ToHex() + "." + std::to_string(seq);
  }
  return t;
}

Result<std::pair<std::string, VersionVector>> DecodeCausalToken(std::string_view token) {
  size_t at = token.rfind('@');
  if (at == std::string_view::npos || at == 0) return Status::InvalidArgument("not a causal token");
  std::string doc(token.substr(0, at));
  VersionVector v;
  std::string_view rest = token.substr(at + 1);
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view part = rest.substr(0, comma);
    size_t dot = part.find('.');
    if (dot == std::string_view::npos) return Status::InvalidArgument("bad causal token entry");
    auto node = NodeId::FromHex(part.substr(0, dot));
    std::string_view num = part.substr(dot + 1);
    if (!node || num.empty() || num.size() > 19 ||
        num.find_first_not_of("0123456789") != std::string_view::npos) {
      return Status::InvalidArgument("bad causal token entry");
    }
    v.Advance(*node, std::stoull(std::string(num)));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
  }
  return std::make_pair(std::move(doc), std::move(v));
}

}  // namespace weft
