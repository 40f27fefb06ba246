// Replica: the SQLite-backed local leader. See weft/replica.h for the contract and
// docs/storage.md for the schema.
#include "weft/replica.h"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <shared_mutex>
#include <thread>
#include <unordered_map>

#include "actor_lease.h"
#include "doc_id.h"
#include "identity_internal.h"
#include "log_syncer.h"
#include "sqlite.h"
#include "weft/crdt/encoding.h"
#include "weft/crdt/history.h"

namespace weft {
namespace {

constexpr int kSchemaVersion = 5;

// Schema migrations: kMigrations[i] takes a database from version i to i + 1.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE documents(id TEXT PRIMARY KEY, created_ms INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE changes(
  seq INTEGER PRIMARY KEY,          -- the local log order (a causal order)
  doc TEXT NOT NULL,
  author INTEGER NOT NULL,          -- node id, as a signed 64-bit integer
  start_seq INTEGER NOT NULL,
  end_seq INTEGER NOT NULL,
  data BLOB NOT NULL                -- crdt::EncodeChange
);
CREATE UNIQUE INDEX changes_by_id ON changes(doc, author, start_seq);
CREATE INDEX changes_by_doc ON changes(doc, seq);
CREATE TABLE snapshots(
  doc TEXT PRIMARY KEY,
  upto INTEGER NOT NULL,            -- the last changes.seq the snapshot includes
  data BLOB NOT NULL                -- crdt::Document::EncodeSnapshot(false)
) WITHOUT ROWID;
)sql",
    // 1 -> 2 (issue 5): per peer and document, the version the peer acknowledged storing.
    R"sql(
CREATE TABLE peer_versions(
  peer TEXT NOT NULL,               -- the sync client's name for the peer (its URL)
  doc TEXT NOT NULL,
  version TEXT NOT NULL,            -- EncodeCausalToken(doc, version) without the "doc@" prefix
  updated_ms INTEGER NOT NULL,
  PRIMARY KEY(peer, doc)
) WITHOUT ROWID;
)sql",
    // 2 -> 3: change rows carry a checksum; compacted history lives in segments. Compaction
    // deletes rows, so a new row's seq is above meta.log_floor, the highest seq ever compacted.
    R"sql(
CREATE TABLE changes_v3(
  seq INTEGER PRIMARY KEY,          -- the local log order (a causal order), never reused
  doc TEXT NOT NULL,
  author INTEGER NOT NULL,          -- node id, as a signed 64-bit integer
  start_seq INTEGER NOT NULL,
  end_seq INTEGER NOT NULL,
  crc INTEGER NOT NULL,             -- crdt::Crc32c(data)
  data BLOB NOT NULL                -- crdt::EncodeChange
);
INSERT INTO changes_v3(seq, doc, author, start_seq, end_seq, crc, data)
  SELECT seq, doc, author, start_seq, end_seq, weft_crc32c(data), data FROM changes ORDER BY seq;
DROP TABLE changes;
ALTER TABLE changes_v3 RENAME TO changes;
CREATE UNIQUE INDEX changes_by_id ON changes(doc, author, start_seq);
CREATE INDEX changes_by_doc ON changes(doc, seq);
CREATE TABLE segments(
  id INTEGER PRIMARY KEY,
  doc TEXT NOT NULL,
  first_seq INTEGER NOT NULL,       -- the changes.seq of its first and last change
  last_seq INTEGER NOT NULL,
  changes INTEGER NOT NULL,         -- how many changes, and ops in them
  ops INTEGER NOT NULL,
  heads BLOB NOT NULL,              -- per author, the highest seq in it (a version vector)
  data BLOB NOT NULL                -- crdt::EncodeSegment (checksummed)
);
CREATE INDEX segments_by_doc ON segments(doc, last_seq);
)sql",
    // 3 -> 4 (snapshot bootstrap): the snapshot a document was bootstrapped from. Its log holds
    // only changes after `version`.
    R"sql(
CREATE TABLE IF NOT EXISTS document_bases(
  doc TEXT PRIMARY KEY,
  version TEXT NOT NULL,            -- EncodeCausalToken(doc, version) without the "doc@" prefix
  data BLOB NOT NULL                -- crdt::Document::EncodeSnapshot(false)
) WITHOUT ROWID;
)sql",
    // 4 -> 5 (signed changes): authors caught signing two different changes at one seq, with
    // both changes as the proof; and the snapshots an owner or admin sealed, served to new
    // devices that cannot check a snapshot any other way.
    R"sql(
CREATE TABLE IF NOT EXISTS equivocations(
  doc TEXT NOT NULL,
  author INTEGER NOT NULL,          -- node id, as a signed 64-bit integer
  seq INTEGER NOT NULL,             -- a seq both changes claim: the author is frozen from here
  held BLOB NOT NULL,               -- crdt::EncodeChange of the change held here
  other BLOB NOT NULL,              -- and of the other, signed by the same key
  detected_ms INTEGER NOT NULL,
  PRIMARY KEY(doc, author)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sealed_snapshots(
  doc TEXT PRIMARY KEY,
  version TEXT NOT NULL,            -- EncodeCausalToken(doc, version) without the "doc@" prefix
  seal BLOB NOT NULL,               -- the seal (EncodeStateSeal)
  data BLOB NOT NULL                -- crdt::Document::EncodeSnapshot(false) at that version
) WITHOUT ROWID;
)sql",
};

// Compaction folds a document's log rows into segments; a segment holds at most this much, and
// trailing segments merge four of a size at a time (see Compact).
constexpr uint64_t kSegmentMaxOps = 1ull << 18;
constexpr uint64_t kSegmentMaxChanges = 1ull << 17;
constexpr size_t kSegmentMergeFanIn = 4;

void Crc32cSqlFunction(sqlite3_context* ctx, int, sqlite3_value** argv) {
  const void* p = sqlite3_value_blob(argv[0]);
  int n = sqlite3_value_bytes(argv[0]);
  std::string_view data(static_cast<const char*>(p), p ? static_cast<size_t>(n) : 0);
  sqlite3_result_int64(ctx, crdt::Crc32c(data));
}

// Ends a read transaction begun with BEGIN on the statements' connection, whatever the path out.
struct EndRead {
  sql::StmtCache& stmts;
  ~EndRead() {
    if (!stmts.Run("COMMIT").ok()) (void)stmts.Run("ROLLBACK");
  }
};

Status CorruptLog(std::string_view doc, const std::string& what) {
  return Status::Corruption("op log of \"" + std::string(doc) + "\": " + what);
}

// Decodes a log row, checking its checksum first.
Result<crdt::Change> DecodeRow(std::string_view doc, int64_t seq, int64_t crc,
                               std::string_view data) {
  if (static_cast<int64_t>(crdt::Crc32c(data)) != crc) {
    return CorruptLog(doc, "change at log seq " + std::to_string(seq) + ": checksum mismatch");
  }
  auto c = crdt::DecodeChange(data);
  if (!c.ok()) {
    return CorruptLog(doc,
                      "change at log seq " + std::to_string(seq) + ": " + c.status().message());
  }
  return c;
}

Result<std::vector<crdt::Change>> DecodeSegmentRow(std::string_view doc, int64_t last_seq,
                                                   std::string_view data) {
  auto cs = crdt::DecodeSegment(data);
  if (!cs.ok()) {
    return CorruptLog(doc, "segment ending at log seq " + std::to_string(last_seq) + ": " +
                               cs.status().message());
  }
  return cs;
}

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
  // Authors caught equivocating, and the seq each is frozen at: nothing more of theirs applies.
  std::map<crdt::NodeId, uint64_t> frozen;
  // Text and list lookups keep a cursor cache inside the document, so readers of one document
  // take turns; readers of different documents run in parallel.
  mutable std::mutex read_mu;
};

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

// A seal as sealed_snapshots keeps it: key (32 bytes), signature (64), Lamport time (8,
// big-endian).
std::string EncodeSeal(const StateSeal& seal) {
  std::string out(reinterpret_cast<const char*>(seal.key.bytes().data()), PublicKey::kSize);
  out += seal.signature;
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>(seal.lamport >> (8 * i)));
  return out;
}

Result<StateSeal> DecodeSeal(std::string_view bytes, VersionVector version) {
  if (bytes.size() != PublicKey::kSize + 64 + 8) return Status::Corruption("a stored seal");
  StateSeal seal;
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
  ReplicaImpl(std::string path, ReplicaOptions options)
      : path_(std::move(path)), options_(std::move(options)) {
    if (!options_.clock) options_.clock = SystemClockMs;
  }
  ~ReplicaImpl() override {
    if (ready_) CompactOnClose();
    bool closed = ready_ && MarkActorClosed();
    if (syncer_) sqlite3_wal_hook(db_, nullptr, nullptr);
    syncer_.reset();  // syncs what was committed
    docs_.clear();
    insert_change_.reset();
    insert_doc_.reset();
    held_change_.reset();
    wstmt_.Clear();
    rstmt_.Clear();
    sqlite3_close_v2(reader_);
    int rc = sqlite3_close_v2(db_);  // the last connection checkpoints the log into the file
    // The lease last: a crash before this line leaves it "open", and the next open a new actor.
    if (closed && rc == SQLITE_OK) {
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
  Status Read(std::string_view doc, const std::function<void(const View&)>& body) override;
  Result<VersionVector> Version(std::string_view doc) override;
  Result<std::vector<ChangeBlob>> ChangesSince(std::string_view doc,
                                               const VersionVector& peer) override;
  using Replica::ApplyRemoteChanges;
  Result<ApplyReport> ApplyRemoteChanges(std::string_view doc,
                                         const std::vector<ChangeBlob>& changes,
                                         const StoredHook& stored,
                                         const std::optional<PublicKey>& only_author) override;
  void WhenDurable(uint64_t commit, std::function<void(Status)> fn) override {
    if (commit == 0 || !syncer_) return fn(Status::Ok());
    syncer_->WhenDurable(commit, std::move(fn));
  }
  Status WaitDurable(uint64_t commit) override {
    if (commit == 0 || !syncer_) return Status::Ok();
    return syncer_->WaitDurable(commit);
  }
  LogSyncStats LogSync() override {
    if (!syncer_) return {};
    auto s = syncer_->GetStats();
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
  // change that is not signed is refused (kPermissionDenied). Caller holds write_mu_.
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
  // Loads `doc` into the cache (caller holds write_mu_). kNotFound when absent and !create.
  Result<DocState*> Load(std::string_view doc, bool create);
  // The cached state of `doc` for a reader (caller holds state_mu_ shared); loads it when needed.
  Result<const DocState*> ForRead(std::string_view doc);
  // Writes the snapshot of `doc` and compacts its log up to it, in one SQLite transaction.
  Status WriteSnapshot(const std::string& doc, const DocState& st);
  // Loads the base snapshot of `doc` into `out` when it has one (caller holds write_mu_).
  Status LoadBase(std::string_view doc, const crdt::DocumentOptions& dopts, crdt::Document* out);
  // Reads the device key pair from meta, or makes one (and makes the file owner-only first).
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
  // Folds the log rows of `doc` up to `upto` into segments (caller holds an open transaction).
  Status Compact(std::string_view doc, int64_t upto);
  // Compacts every document's log up to its snapshot, each inside a savepoint that a failure
  // rolls back (caller holds an open transaction). Fails only on a storage error.
  Status CompactSnapshotted();
  // At a clean close: snapshots and compacts documents with enough new changes, and gives free
  // pages back to the file system. Best effort: a failure leaves the log as it was.
  void CompactOnClose();
  Status MaybeSnapshot(const std::string& doc);
  Status AppendChanges(std::string_view doc, const std::vector<const crdt::Change*>& cs,
                       const std::vector<std::string>& blobs);
  void Dispatch();
  void Resolve(const std::string& doc, const std::vector<crdt::Patch>& patches);

  std::string path_;
  ReplicaOptions options_;
  sqlite3* db_ = nullptr;         // the writer's connection
  sqlite3* reader_ = nullptr;     // readers' connection (WAL: sees only committed data)
  sql::StmtCache wstmt_, rstmt_;  // statements of db_ and reader_ run often
  bool ready_ = false;            // Init succeeded
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
  std::unique_ptr<sql::Stmt> insert_change_, insert_doc_;  // cached; used under write_mu_
  std::unique_ptr<sql::Stmt> held_change_;                 // likewise (CheckHeldAgain)
  std::atomic<uint64_t> signatures_refused_{0}, equivocations_{0};
  std::unique_ptr<LogSyncer> syncer_;  // Durability::kGroup

  std::mutex write_mu_;        // one writer at a time
  WriterFirstMutex state_mu_;  // guards docs_ contents
  std::mutex reader_mu_;       // guards reader_
  std::map<std::string, std::unique_ptr<DocState>, std::less<>> docs_;

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
};

// Looks at an existing file before SQLite does, for two kinds of damage SQLite lets through: it
// takes a 1-byte file for an empty database (and would write a new one over it), and it does not
// notice a file cut inside its last page. Without a WAL to recover from, a SQLite database is a
// whole number of pages; with one, the WAL may still complete the file, so SQLite judges.
Status CheckDatabaseFile(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec || size == 0) return Status::Ok();  // missing or empty: a new database
  unsigned char header[100] = {};
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(header), sizeof header);
  if (in.gcount() < static_cast<std::streamsize>(sizeof header) ||
      std::memcmp(header, "SQLite format 3", 16) != 0) {
    return Status::Corruption(path + " is not a Weft database (not SQLite)");
  }
  uint32_t page = (uint32_t{header[16]} << 8) | header[17];
  if (page == 1) page = 65536;
  const auto wal = std::filesystem::file_size(path + "-wal", ec);
  const bool has_wal = !ec && wal > 32;  // more than the WAL header
  if (!has_wal && (page < 512 || size % page != 0)) {
    return Status::Corruption(path + " is truncated or damaged (not a whole number of pages)");
  }
  return Status::Ok();
}

Status ReplicaImpl::Init() {
  WEFT_RETURN_IF_ERROR(CheckDatabaseFile(path_));
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  if (options_.create_if_missing) flags |= SQLITE_OPEN_CREATE;
  const char* vfs = options_.vfs.empty() ? nullptr : options_.vfs.c_str();
  int rc = sqlite3_open_v2(path_.c_str(), &db_, flags, vfs);
  wstmt_.set_db(db_);
  if (rc != SQLITE_OK) {
    Status s = sql::FromCode(rc, db_, "open " + path_);
    if (rc == SQLITE_CANTOPEN) s = Status::IOError("cannot open " + path_);
    return s;
  }
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, 5000);
  rc = sqlite3_create_function_v2(db_, "weft_crc32c", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                                  nullptr, Crc32cSqlFunction, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return sql::FromCode(rc, db_, "register weft_crc32c");

  // Look before touching anything: is this SQLite at all, and a Weft database of a known version?
  auto tables = sql::Stmt::Prepare(db_, "SELECT name FROM sqlite_master WHERE type='table'");
  if (!tables.ok()) {
    return tables.status().code() == StatusCode::kCorruption
               ? Status::Corruption(path_ + " is not a Weft database (not SQLite, or damaged)")
               : tables.status();
  }
  Status s;
  std::vector<std::string> names;
  while (tables->Step(&s)) names.push_back(tables->Text(0));
  if (!s.ok()) {
    return s.code() == StatusCode::kCorruption
               ? Status::Corruption(path_ + " is not a Weft database (not SQLite, or damaged)")
               : s;
  }
  int version = 0;
  if (!names.empty()) {
    if (std::find(names.begin(), names.end(), "meta") == names.end()) {
      return Status::Corruption(path_ + " is a SQLite database, but not a Weft one");
    }
    auto q = sql::Stmt::Prepare(db_, "SELECT key, value FROM meta");
    if (!q.ok() && q.status().code() != StatusCode::kBusy) {
      // A table called meta, but not ours (the schema was just read, so this is no I/O error).
      return Status::Corruption(path_ + " is a SQLite database, but not a Weft one (" +
                                q.status().message() + ")");
    }
    if (!q.ok()) return q.status();
    std::string format;
    while (q->Step(&s)) {
      std::string k = q->Text(0);
      if (k == "format") format = q->Text(1);
      if (k == "schema_version") version = static_cast<int>(q->Int(1));
      if (k == "node_id") {
        auto n = NodeId::FromHex(q->Text(1));
        if (n) node_ = *n;
      }
    }
    WEFT_RETURN_IF_ERROR(s);
    if (format != "weft") return Status::Corruption(path_ + " is not a Weft database");
    if (version > kSchemaVersion) {
      return Status::UnsupportedVersion(path_ + " has schema version " + std::to_string(version) +
                                        "; this Weft reads up to " +
                                        std::to_string(kSchemaVersion));
    }
    if (version < 1 || !node_.valid()) return Status::Corruption(path_ + ": bad Weft metadata");
  }

  // A new database gives pages that compaction frees back to the file system (at close).
  if (version == 0) WEFT_RETURN_IF_ERROR(sql::Exec(db_, "PRAGMA auto_vacuum=INCREMENTAL"));
  WEFT_RETURN_IF_ERROR(sql::Exec(db_, "PRAGMA journal_mode=WAL"));
  // kGroup commits without fsync; its LogSyncer (started at the end of Init) fsyncs the log.
  WEFT_RETURN_IF_ERROR(sql::Exec(db_, options_.durability == Durability::kFull
                                          ? "PRAGMA synchronous=FULL"
                                          : "PRAGMA synchronous=NORMAL"));
  if (version < kSchemaVersion) {
    WEFT_RETURN_IF_ERROR(wstmt_.Run("BEGIN IMMEDIATE"));
    Status m;
    for (int v = version; v < kSchemaVersion && m.ok(); ++v) m = sql::Exec(db_, kMigrations[v]);
    if (m.ok() && version == 0) {
      std::random_device rd;
      uint64_t id = options_.new_node_id.value;
      while (id == 0) id = (static_cast<uint64_t>(rd()) << 32) ^ rd();
      node_ = NodeId{id};
      auto ins = sql::Stmt::Prepare(db_, "INSERT INTO meta(key, value) VALUES(?, ?)");
      if (!ins.ok()) m = ins.status();
      if (m.ok()) m = ins->Bind(1, "format").Bind(2, "weft").Run();
      if (m.ok()) m = ins->Bind(1, "node_id").Bind(2, node_.ToHex()).Run();
    }
    if (m.ok()) {
      auto up = sql::Stmt::Prepare(db_, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)");
      m = up.ok() ? up->Bind(1, "schema_version").Bind(2, int64_t{kSchemaVersion}).Run()
                  : up.status();
    }
    // From version 2: fold each document's rows that its snapshot covers into segments now, as
    // its next snapshot would. Best effort per document: one whose log is damaged keeps its rows
    // (and reports the damage when it is read).
    if (m.ok() && version == 2) m = CompactSnapshotted();
    if (m.ok()) m = wstmt_.Run("COMMIT");
    if (!m.ok()) {
      (void)wstmt_.Run("ROLLBACK");
      return m;
    }
    // An older database: switch it to incremental vacuuming too (VACUUM rebuilds the file; on
    // failure the database is as valid as before, only larger).
    if (version > 0) (void)sql::Exec(db_, "PRAGMA auto_vacuum=INCREMENTAL; VACUUM");
  }

  WEFT_RETURN_IF_ERROR(LoadOrCreateIdentity());

  rc = sqlite3_open_v2(path_.c_str(), &reader_, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, vfs);
  rstmt_.set_db(reader_);
  if (rc != SQLITE_OK) return sql::FromCode(rc, reader_, "open reader");
  sqlite3_busy_timeout(reader_, 5000);
  WEFT_RETURN_IF_ERROR(ChooseActor());
  if (options_.durability == Durability::kGroup) {
    syncer_ = std::make_unique<LogSyncer>(path_, options_.vfs);
    // Checkpoints run on the syncer's thread, not in the commit that fills the WAL.
    sqlite3_wal_hook(
        db_,
        [](void* ctx, sqlite3* db, const char* name, int frames) {
          if (static_cast<LogSyncer*>(ctx)->OnWalSize(frames)) {
            (void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
          }
          return SQLITE_OK;
        },
        syncer_.get());
  }
  ready_ = true;
  return Status::Ok();
}

Status ReplicaImpl::ChooseActor() {
  auto q = sql::Stmt::Prepare(
      db_, "SELECT key, value FROM meta WHERE key IN ('actor', 'actor_state', 'actor_generation')");
  if (!q.ok()) return q.status();
  std::optional<NodeId> stored;
  bool stored_closed = false;
  uint64_t stored_generation = 0;
  Status s;
  while (q->Step(&s)) {
    std::string k = q->Text(0);
    if (k == "actor") stored = NodeId::FromHex(q->Text(1));
    if (k == "actor_state") stored_closed = q->Text(1) == "closed";
    if (k == "actor_generation") stored_generation = static_cast<uint64_t>(q->Int(1));
  }
  q->Reset();
  WEFT_RETURN_IF_ERROR(s);
  const std::string lease_path = path_ + "-lease";
  std::optional<ActorLease> lease = ReadActorLease(lease_path);
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
  if (!WriteActorLease(lease_path, {actor_, /*closed=*/false, actor_generation_}).ok()) {
    // No lease (a read-only directory, say): a new actor now, and nothing recorded, so that no
    // later open can take this one's seqs for its own.
    if (!options_.session_actor.valid()) actor_ = fresh();
    return Status::Ok();
  }
  WEFT_RETURN_IF_ERROR(wstmt_.Run("BEGIN IMMEDIATE"));
  auto up = sql::Stmt::Prepare(db_, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)");
  Status m = up.status();
  if (m.ok()) m = up->Bind(1, "actor").Bind(2, actor_.ToHex()).Run();
  if (m.ok()) m = up->Bind(1, "actor_state").Bind(2, "open").Run();
  if (m.ok()) {
    m = up->Bind(1, "actor_generation").Bind(2, static_cast<int64_t>(actor_generation_)).Run();
  }
  if (m.ok()) m = wstmt_.Run("COMMIT");
  if (!m.ok()) {
    (void)wstmt_.Run("ROLLBACK");
    return m;
  }
  lease_held_ = true;
  return Status::Ok();
}

bool ReplicaImpl::MarkActorClosed() {
  if (!lease_held_) return false;
  // Only while meta still names this open (another process may have opened the file since).
  auto up = sql::Stmt::Prepare(db_,
                               "UPDATE meta SET value = 'closed' WHERE key = 'actor_state' AND "
                               "(SELECT value FROM meta WHERE key = 'actor_generation') = ? AND "
                               "(SELECT value FROM meta WHERE key = 'actor') = ?");
  if (!up.ok()) return false;
  if (!up->Bind(1, static_cast<int64_t>(actor_generation_)).Bind(2, actor_.ToHex()).Run().ok()) {
    return false;
  }
  return sqlite3_changes(db_) == 1;
}

Status ReplicaImpl::LoadOrCreateIdentity() {
  auto q = sql::Stmt::Prepare(
      db_, "SELECT key, value FROM meta WHERE key IN ('device_key', 'device_secret_key')");
  if (!q.ok()) return q.status();
  std::optional<PublicKey> stored_public;
  std::string secret;
  bool found_public = false;
  Status s;
  while (q->Step(&s)) {
    if (q->Text(0) == "device_key") {
      found_public = true;
      stored_public = PublicKey::FromHex(q->Text(1));
    } else {
      secret = std::string(q->Blob(1));
    }
  }
  q->Reset();
  WEFT_RETURN_IF_ERROR(s);
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
  // A new identity. The file holds a secret from now on: readable by its owner only (SQLite
  // gives its -wal and -shm files the database file's permissions).
  if (options_.vfs.empty()) {
    std::error_code ec;
    std::filesystem::permissions(
        path_, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
        std::filesystem::perm_options::replace, ec);
    if (ec) return Status::IOError("cannot make " + path_ + " owner-only: " + ec.message());
    for (const char* suffix : {"-wal", "-shm"}) {
      if (std::filesystem::exists(path_ + suffix, ec)) {
        std::filesystem::permissions(
            path_ + suffix,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
            std::filesystem::perm_options::replace, ec);
      }
    }
  }
  auto pk = secret_key_.Generate();
  if (!pk.ok()) return pk.status();
  WEFT_RETURN_IF_ERROR(wstmt_.Run("BEGIN IMMEDIATE"));
  auto ins = sql::Stmt::Prepare(db_, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)");
  Status m = ins.status();
  if (m.ok()) m = ins->Bind(1, "device_key").Bind(2, pk->ToHex()).Run();
  if (m.ok()) m = ins->Bind(1, "device_secret_key").BindBlob(2, secret_key_.ForStorage()).Run();
  if (m.ok()) m = wstmt_.Run("COMMIT");
  if (!m.ok()) {
    (void)wstmt_.Run("ROLLBACK");
    return m;
  }
  public_key_ = *pk;
  return Status::Ok();
}

Result<DocState*> ReplicaImpl::Load(std::string_view doc, bool create) {
  WEFT_RETURN_IF_ERROR(CheckDocId(doc));
  if (auto it = docs_.find(doc); it != docs_.end()) return it->second.get();
  auto exists = sql::Stmt::Prepare(db_, "SELECT 1 FROM documents WHERE id = ?");
  if (!exists.ok()) return exists.status();
  exists->Bind(1, doc);
  Status s;
  bool found = exists->Step(&s);
  WEFT_RETURN_IF_ERROR(s);
  crdt::DocumentOptions dopts{options_.max_drift_ms, /*keep_history=*/false};
  auto st = std::make_unique<DocState>(crdt::Document(actor_, dopts));
  if (!found) {
    // A new document is recorded with its first change (or by CreateDocument).
    if (!create) return Status::NotFound("no document \"" + std::string(doc) + "\"");
  } else {
    int64_t upto = 0;
    auto snap = sql::Stmt::Prepare(db_, "SELECT upto, data FROM snapshots WHERE doc = ?");
    if (!snap.ok()) return snap.status();
    snap->Bind(1, doc);
    bool snapshot_found = false;
    if (snap->Step(&s)) {
      snapshot_found = true;
      auto d = crdt::Document::DecodeSnapshot(snap->Blob(1), actor_, dopts);
      if (!d.ok())
        return Status::Corruption("snapshot of \"" + std::string(doc) +
                                  "\": " + d.status().message());
      st->doc = std::move(*d);
      upto = snap->Int(0);
    }
    WEFT_RETURN_IF_ERROR(s);
    // No snapshot yet: start from the base snapshot, if the document was bootstrapped from one.
    if (!snapshot_found) WEFT_RETURN_IF_ERROR(LoadBase(doc, dopts, &st->doc));
    // The log after the snapshot: segments (compaction writes them only up to a snapshot, so
    // normally none), then rows. A change the snapshot already holds is skipped.
    auto replay = [&](const crdt::Change& c) -> Status {
      if (st->doc.HasChange({c.author, c.end_seq()})) return Status::Ok();
      Status a = st->doc.ApplyChange(c);
      if (!a.ok()) return CorruptLog(doc, a.message());
      ++st->since_snapshot;
      st->ops_since_snapshot += c.span();
      return Status::Ok();
    };
    auto segs = sql::Stmt::Prepare(
        db_,
        "SELECT last_seq, data FROM segments WHERE doc = ? AND last_seq > ? ORDER BY last_seq");
    if (!segs.ok()) return segs.status();
    segs->Bind(1, doc).Bind(2, upto);
    while (segs->Step(&s)) {
      auto cs = DecodeSegmentRow(doc, segs->Int(0), segs->Blob(1));
      if (!cs.ok()) return cs.status();
      for (const crdt::Change& c : *cs) WEFT_RETURN_IF_ERROR(replay(c));
    }
    WEFT_RETURN_IF_ERROR(s);
    auto log = sql::Stmt::Prepare(
        db_, "SELECT seq, crc, data FROM changes WHERE doc = ? AND seq > ? ORDER BY seq");
    if (!log.ok()) return log.status();
    log->Bind(1, doc).Bind(2, upto);
    while (log->Step(&s)) {
      auto c = DecodeRow(doc, log->Int(0), log->Int(1), log->Blob(2));
      if (!c.ok()) return c.status();
      WEFT_RETURN_IF_ERROR(replay(*c));
    }
    WEFT_RETURN_IF_ERROR(s);
    auto frozen = sql::Stmt::Prepare(db_, "SELECT author, seq FROM equivocations WHERE doc = ?");
    if (!frozen.ok()) return frozen.status();
    frozen->Bind(1, doc);
    while (frozen->Step(&s)) {
      st->frozen.emplace(crdt::NodeId{static_cast<uint64_t>(frozen->Int(0))},
                         static_cast<uint64_t>(frozen->Int(1)));
    }
    WEFT_RETURN_IF_ERROR(s);
  }
  DocState* raw = st.get();
  std::unique_lock lock(state_mu_);
  docs_.emplace(std::string(doc), std::move(st));
  return raw;
}

Result<const DocState*> ReplicaImpl::ForRead(std::string_view doc) {
  if (auto it = docs_.find(doc); it != docs_.end()) return it->second.get();
  return Status::NotFound("");  // the caller loads it under the writer lock
}

Result<std::vector<std::string>> ReplicaImpl::ListDocuments() {
  std::lock_guard lock(reader_mu_);
  auto q = sql::Stmt::Prepare(reader_, "SELECT id FROM documents ORDER BY id");
  if (!q.ok()) return q.status();
  std::vector<std::string> out;
  Status s;
  while (q->Step(&s)) out.push_back(q->Text(0));
  WEFT_RETURN_IF_ERROR(s);
  return out;
}

Status ReplicaImpl::CreateDocument(std::string_view doc) {
  std::lock_guard w(write_mu_);
  auto st = Load(doc, true);
  if (!st.ok()) return st.status();
  auto ins =
      sql::Stmt::Prepare(db_, "INSERT OR IGNORE INTO documents(id, created_ms) VALUES(?, ?)");
  if (!ins.ok()) return ins.status();
  return ins->Bind(1, doc).Bind(2, static_cast<int64_t>(options_.clock())).Run();
}

bool ReplicaImpl::HasDocument(std::string_view doc) {
  if (!CheckDocId(doc).ok()) return false;
  std::lock_guard lock(reader_mu_);
  auto q = sql::Stmt::Prepare(reader_, "SELECT 1 FROM documents WHERE id = ?");
  if (!q.ok()) return false;
  q->Bind(1, doc);
  Status s;
  return q->Step(&s);
}

Status ReplicaImpl::DeleteDocument(std::string_view doc) {
  WEFT_RETURN_IF_ERROR(CheckDocId(doc));
  std::lock_guard w(write_mu_);
  if (!HasDocument(doc)) return Status::NotFound("no document \"" + std::string(doc) + "\"");
  WEFT_RETURN_IF_ERROR(wstmt_.Run("BEGIN IMMEDIATE"));
  Status s;
  for (const char* q :
       {"DELETE FROM changes WHERE doc = ?", "DELETE FROM segments WHERE doc = ?",
        "DELETE FROM snapshots WHERE doc = ?", "DELETE FROM document_bases WHERE doc = ?",
        "DELETE FROM equivocations WHERE doc = ?", "DELETE FROM sealed_snapshots WHERE doc = ?",
        "DELETE FROM documents WHERE id = ?"}) {
    auto st = sql::Stmt::Prepare(db_, q);
    s = st.ok() ? st->Bind(1, doc).Run() : st.status();
    if (!s.ok()) break;
  }
  if (s.ok()) s = wstmt_.Run("COMMIT");
  if (!s.ok()) {
    (void)wstmt_.Run("ROLLBACK");
    return s;
  }
  std::unique_lock lock(state_mu_);
  if (auto it = docs_.find(doc); it != docs_.end()) docs_.erase(it);
  return Status::Ok();
}

// Appends changes to the log, and records the document if new, in one SQLite transaction.
Status ReplicaImpl::AppendChanges(std::string_view doc, const std::vector<const crdt::Change*>& cs,
                                  const std::vector<std::string>& blobs) {
  if (!insert_change_) {
    auto a = sql::Stmt::Prepare(
        db_,
        "INSERT INTO changes(seq, doc, author, start_seq, end_seq, crc, data) VALUES("
        "MAX(COALESCE((SELECT MAX(seq) FROM changes), 0), "
        "COALESCE((SELECT value FROM meta WHERE key = 'log_floor'), 0)) + 1, ?, ?, ?, ?, ?, ?)");
    if (!a.ok()) return a.status();
    auto b =
        sql::Stmt::Prepare(db_, "INSERT OR IGNORE INTO documents(id, created_ms) VALUES(?, ?)");
    if (!b.ok()) return b.status();
    insert_change_ = std::make_unique<sql::Stmt>(std::move(*a));
    insert_doc_ = std::make_unique<sql::Stmt>(std::move(*b));
  }
  WEFT_RETURN_IF_ERROR(wstmt_.Run("BEGIN IMMEDIATE"));
  Status s = insert_doc_->Bind(1, doc).Bind(2, static_cast<int64_t>(options_.clock())).Run();
  for (size_t i = 0; s.ok() && i < cs.size(); ++i) {
    s = insert_change_->Bind(1, doc)
            .Bind(2, static_cast<int64_t>(cs[i]->author.value))
            .Bind(3, static_cast<int64_t>(cs[i]->start_seq))
            .Bind(4, static_cast<int64_t>(cs[i]->end_seq()))
            .Bind(5, static_cast<int64_t>(crdt::Crc32c(blobs[i])))
            .BindBlob(6, blobs[i])
            .Run();
  }
  if (s.ok()) s = wstmt_.Run("COMMIT");
  if (!s.ok()) (void)wstmt_.Run("ROLLBACK");
  return s;
}

Result<CommitInfo> ReplicaImpl::Transact(std::string_view doc,
                                         const std::function<Status(Txn&)>& body) {
  std::unique_lock w(write_mu_);
  auto loaded = Load(doc, true);
  if (!loaded.ok()) return loaded.status();
  DocState* st = *loaded;

  // Run the body on the live document, take the change it makes, and undo it: the document
  // changes only once the change is durable, so readers never see a commit that could vanish.
  std::optional<crdt::Change> change;
  {
    std::unique_lock lock(state_mu_);
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
      if (st->doc.version().empty()) docs_.erase(std::string(doc));
      return s;
    }
    change = txn.Prepare();
    txn.Rollback();
    // Only the automatic access ops: the body wrote nothing, so nothing commits.
    if (change && change->ops.size() == automatic) change.reset();
  }
  CommitInfo info;
  if (!change) {
    std::shared_lock lock(state_mu_);
    info.version = st->doc.version();
    return info;
  }
  std::string blob = crdt::EncodeChange(*change);
  Status stored = AppendChanges(doc, {&*change}, {blob});
  // kGroup: durable before anyone sees it, as with kFull (the log sync serves other commits too).
  if (stored.ok() && syncer_) stored = syncer_->WaitDurable(syncer_->Committed());
  if (!stored.ok()) {
    // Drop the cached document: the next read loads it as the log has it (a new one stays absent).
    std::unique_lock lock(state_mu_);
    docs_.erase(std::string(doc));
    return stored;
  }
  std::vector<crdt::Patch> patches;
  {
    std::unique_lock lock(state_mu_);
    crdt::ApplyOptions opts;
    opts.patches = &patches;
    Status s = st->doc.ApplyChange(*change, opts);
    if (!s.ok()) {
      // Cannot happen for a change this document just made; reload from the log to be safe.
      docs_.erase(std::string(doc));
      return Status(StatusCode::kInternal, "own change refused: " + s.ToString());
    }
    ++st->since_snapshot;
    st->ops_since_snapshot += change->span();
    info.changed = true;
    info.change = change->id();
    info.version = st->doc.version();
  }
  (void)MaybeSnapshot(std::string(doc));
  ChangeEvent ev{std::string(doc), true, change->id(), std::move(patches)};
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

Status ReplicaImpl::Read(std::string_view doc, const std::function<void(const View&)>& body) {
  WEFT_RETURN_IF_ERROR(CheckDocId(doc));
  {
    std::shared_lock lock(state_mu_);
    auto st = ForRead(doc);
    if (st.ok()) {
      std::lock_guard turn((*st)->read_mu);
      body(View((*st)->doc));
      return Status::Ok();
    }
  }
  {
    std::lock_guard w(write_mu_);
    auto st = Load(doc, false);
    if (!st.ok()) return st.status();
  }
  std::shared_lock lock(state_mu_);
  auto st = ForRead(doc);
  if (!st.ok()) return Status::NotFound("no document \"" + std::string(doc) + "\"");
  std::lock_guard turn((*st)->read_mu);
  body(View((*st)->doc));
  return Status::Ok();
}

Result<VersionVector> ReplicaImpl::Version(std::string_view doc) {
  VersionVector v;
  WEFT_RETURN_IF_ERROR(Read(doc, [&](const View& view) { v = view.version(); }));
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
  (void)Read(doc, [&](const View& v) {
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
  if (auto local = Version(doc); local.ok()) {
    missing = local->Subtract(peer);
    if (missing.empty()) return std::vector<ChangeBlob>{};
    by_author = missing.size() <= kMaxAuthorLookups;
  }
  std::lock_guard lock(reader_mu_);
  // One read transaction for segments and rows, so that a compaction committing in between
  // cannot move changes out of sight.
  WEFT_RETURN_IF_ERROR(rstmt_.Run("BEGIN"));
  EndRead end_read{rstmt_};
  std::vector<ChangeBlob> out;
  Status s;
  {
    // A segment whose heads the peer has is skipped without reading its data.
    auto q = sql::Stmt::Prepare(
        reader_, "SELECT last_seq, heads, data FROM segments WHERE doc = ? ORDER BY last_seq");
    if (!q.ok()) return q.status();
    q->Bind(1, doc);
    while (q->Step(&s)) {
      crdt::Reader hr(q->Blob(1));
      VersionVector heads = hr.Vector();
      if (!hr.Finish("heads").ok()) {
        return CorruptLog(doc,
                          "segment ending at log seq " + std::to_string(q->Int(0)) + ": bad heads");
      }
      bool covered = true;
      for (const auto& [node, seq] : heads.entries()) covered = covered && peer.Get(node) >= seq;
      if (covered) continue;
      auto cs = DecodeSegmentRow(doc, q->Int(0), q->Blob(2));
      if (!cs.ok()) return cs.status();
      for (const crdt::Change& c : *cs) {
        if (c.end_seq() > peer.Get(c.author)) out.push_back(crdt::EncodeChange(c));
      }
    }
    WEFT_RETURN_IF_ERROR(s);
  }
  // Rows the peer lacks, in log order.
  auto take = [&](sql::Stmt& q, std::vector<std::pair<int64_t, ChangeBlob>>* rows) {
    while (q.Step(&s)) {
      NodeId author{static_cast<uint64_t>(q.Int(1))};
      if (static_cast<uint64_t>(q.Int(2)) <= peer.Get(author)) continue;
      std::string_view data = q.Blob(4);
      if (static_cast<int64_t>(crdt::Crc32c(data)) != q.Int(3)) {
        s = CorruptLog(doc,
                       "change at log seq " + std::to_string(q.Int(0)) + ": checksum mismatch");
        break;
      }
      rows->emplace_back(q.Int(0), ChangeBlob(data));
    }
    q.Reset();
    return s;
  };
  std::vector<std::pair<int64_t, ChangeBlob>> rows;
  if (by_author) {
    // Per author: the row holding the first missing seq, and the rows after it.
    auto q = rstmt_.Get(
        "SELECT seq, author, end_seq, crc, data FROM changes WHERE doc = ?1 AND author = ?2 AND "
        "start_seq >= COALESCE((SELECT MAX(start_seq) FROM changes WHERE doc = ?1 AND author = ?2 "
        "AND start_seq <= ?3), 0)");
    if (!q.ok()) return q.status();
    for (const auto& r : missing) {
      (*q)->Bind(1, doc)
          .Bind(2, static_cast<int64_t>(r.node.value))
          .Bind(3, static_cast<int64_t>(r.first));
      WEFT_RETURN_IF_ERROR(take(**q, &rows));
    }
    std::sort(rows.begin(), rows.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
  } else {
    auto q = rstmt_.Get(
        "SELECT seq, author, end_seq, crc, data FROM changes WHERE doc = ? ORDER BY seq");
    if (!q.ok()) return q.status();
    (*q)->Bind(1, doc);
    WEFT_RETURN_IF_ERROR(take(**q, &rows));
  }
  out.reserve(out.size() + rows.size());
  for (auto& [seq, blob] : rows) out.push_back(std::move(blob));
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
  std::unique_lock w(write_mu_);
  auto loaded = Load(doc, true);
  if (!loaded.ok()) return loaded.status();
  DocState* st = *loaded;
  ApplyReport report;
  std::vector<crdt::Patch> patches;
  std::vector<const crdt::Change*> applied;
  std::vector<std::string> applied_blobs;
  Status failure;
  {
    std::unique_lock lock(state_mu_);
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
      Status s = st->doc.ApplyChange(c, opts);
      if (s.code() == StatusCode::kMissingDependency) continue;
      if (!s.ok()) {
        failure = Status(s.code(), "change " + c.id().ToString() + ": " + s.message());
        break;
      }
      done[i] = true, --remaining, ++report.applied;
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
    if (failure.ok() && !applied.empty()) failure = AppendChanges(doc, applied, applied_blobs);
    if (!failure.ok()) {
      // Put the document back as the log has it.
      docs_.erase(std::string(doc));
      return failure;
    }
    st->since_snapshot += applied.size();
    for (const crdt::Change* c : applied) st->ops_since_snapshot += c->span();
    report.version = st->doc.version();
    // kGroup: the commit to wait on before acknowledging; with nothing new stored, the latest
    // (what the batch duplicated may have been stored by a commit not yet durable).
    if (syncer_) report.commit = applied.empty() ? syncer_->Latest() : syncer_->Committed();
    // Before readers can see the new version.
    if (stored) stored(report);
  }
  (void)MaybeSnapshot(std::string(doc));
  if (!applied.empty()) {
    std::lock_guard f(feed_mu_);
    // One event for the batch, naming its first new change.
    ChangeEvent ev{std::string(doc), false, applied.front()->id(), patches};
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

Result<std::vector<Equivocation>> ReplicaImpl::Equivocations() {
  std::vector<Equivocation> out;
  {
    std::lock_guard lock(reader_mu_);
    auto q = sql::Stmt::Prepare(
        reader_,
        "SELECT doc, author, seq, held, other, detected_ms FROM equivocations ORDER BY doc");
    if (!q.ok()) return q.status();
    Status s;
    while (q->Step(&s)) {
      Equivocation e;
      e.doc = q->Text(0);
      e.author = NodeId{static_cast<uint64_t>(q->Int(1))};
      e.seq = static_cast<uint64_t>(q->Int(2));
      e.held = std::string(q->Blob(3));
      e.other = std::string(q->Blob(4));
      e.detected_ms = q->Int(5);
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
    WEFT_RETURN_IF_ERROR(s);
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
  Status read = Read(doc, [&](const View& v) {
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
  if (!held_change_) {
    auto q = sql::Stmt::Prepare(db_,
                                "SELECT seq, crc, data FROM changes WHERE doc = ? AND author = ? "
                                "AND start_seq <= ? ORDER BY start_seq DESC LIMIT 1");
    if (!q.ok()) return q.status();
    held_change_ = std::make_unique<sql::Stmt>(std::move(*q));
  }
  sql::Stmt& q = *held_change_;
  q.Reset();
  q.Bind(1, doc)
      .Bind(2, static_cast<int64_t>(c.author.value))
      .Bind(3, static_cast<int64_t>(c.end_seq()));
  Status s;
  if (!q.Step(&s)) return s;  // compacted into segments: nothing to compare with here
  std::string held_blob(q.Blob(2));
  auto held = DecodeRow(doc, q.Int(0), q.Int(1), held_blob);
  q.Reset();
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
  auto ins =
      sql::Stmt::Prepare(db_,
                         "INSERT OR IGNORE INTO equivocations(doc, author, seq, held, other, "
                         "detected_ms) VALUES(?, ?, ?, ?, ?, ?)");
  if (!ins.ok()) return ins.status();
  WEFT_RETURN_IF_ERROR(ins->Bind(1, doc)
                           .Bind(2, static_cast<int64_t>(c.author.value))
                           .Bind(3, static_cast<int64_t>(seq))
                           .BindBlob(4, held_blob)
                           .BindBlob(5, blob)
                           .Bind(6, static_cast<int64_t>(options_.clock()))
                           .Run());
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
  Status s = Read(doc, [&](const View& v) {
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
  WEFT_RETURN_IF_ERROR(Read(doc, [&](const View& v) {
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

Status ReplicaImpl::WriteSnapshot(const std::string& doc, const DocState& st) {
  std::string data;
  {
    std::shared_lock lock(state_mu_);
    data = st.doc.EncodeSnapshot(false);
  }
  WEFT_RETURN_IF_ERROR(wstmt_.Run("BEGIN IMMEDIATE"));
  Status s;
  int64_t upto = 0;
  {
    // The snapshot covers the whole log of the document (the writer holds write_mu_).
    auto q =
        sql::Stmt::Prepare(db_,
                           "SELECT MAX(COALESCE((SELECT MAX(seq) FROM changes WHERE doc = ?1), 0), "
                           "COALESCE((SELECT MAX(last_seq) FROM segments WHERE doc = ?1), 0))");
    if (!q.ok()) s = q.status();
    if (s.ok()) {
      q->Bind(1, doc);
      if (q->Step(&s)) upto = q->Int(0);
    }
  }
  if (s.ok()) {
    auto q = sql::Stmt::Prepare(
        db_, "INSERT OR REPLACE INTO snapshots(doc, upto, data) VALUES(?, ?, ?)");
    s = q.ok() ? q->Bind(1, doc).Bind(2, upto).BindBlob(3, data).Run() : q.status();
  }
  if (s.ok()) s = Compact(doc, upto);
  if (s.ok()) s = wstmt_.Run("COMMIT");
  if (!s.ok()) (void)wstmt_.Run("ROLLBACK");
  return s;
}

namespace {

// A segment of a document's log during compaction: an existing row (id != 0, its changes loaded
// only when it is rewritten) or a new one.
struct PendingSegment {
  int64_t id = 0;
  int64_t first = 0, last = 0;
  uint64_t changes = 0, ops = 0;
  std::vector<crdt::Change> cs;
};

// Segments of about the same size (ops within a factor of four) share a tier.
int Tier(uint64_t ops) {
  int bits = 0;
  while (ops > 1) ops >>= 1, ++bits;
  return bits / 2;
}

}  // namespace

// Compaction: the rows up to `upto` become new segments; then, while the last kSegmentMergeFanIn
// or more segments are of the tier of the last one or below, they merge into one (an LSM-style
// size-tiered policy: a change is rewritten about log4(history / batch) times, and a document
// keeps a few segments per tier). Segments only ever cover seqs up to a snapshot's `upto`, and
// rows after it stay rows, so the log reads as segments in order, then rows.
Status ReplicaImpl::Compact(std::string_view doc, int64_t upto) {
  std::vector<PendingSegment> segs;
  Status s;
  {
    auto q = sql::Stmt::Prepare(db_,
                                "SELECT id, first_seq, last_seq, changes, ops FROM segments WHERE "
                                "doc = ? ORDER BY last_seq");
    if (!q.ok()) return q.status();
    q->Bind(1, doc);
    while (q->Step(&s)) {
      PendingSegment g;
      g.id = q->Int(0);
      g.first = q->Int(1);
      g.last = q->Int(2);
      g.changes = static_cast<uint64_t>(q->Int(3));
      g.ops = static_cast<uint64_t>(q->Int(4));
      segs.push_back(std::move(g));
    }
    WEFT_RETURN_IF_ERROR(s);
  }
  const size_t existing = segs.size();
  int64_t folded = 0;
  {
    auto q = sql::Stmt::Prepare(
        db_, "SELECT seq, crc, data FROM changes WHERE doc = ? AND seq <= ? ORDER BY seq");
    if (!q.ok()) return q.status();
    q->Bind(1, doc).Bind(2, upto);
    while (q->Step(&s)) {
      int64_t seq = q->Int(0);
      auto c = DecodeRow(doc, seq, q->Int(1), q->Blob(2));
      if (!c.ok()) return c.status();
      uint64_t ops = c->ops.size();
      // A change too large for any segment stays a row, and so does everything after it.
      if (ops > crdt::kMaxSegmentOps) break;
      if (segs.size() == existing || segs.back().ops + ops > kSegmentMaxOps ||
          segs.back().changes + 1 > kSegmentMaxChanges) {
        segs.emplace_back();
        segs.back().first = seq;
      }
      PendingSegment& g = segs.back();
      g.last = seq;
      ++g.changes;
      g.ops += ops;
      g.cs.push_back(std::move(*c));
      folded = seq;
    }
    WEFT_RETURN_IF_ERROR(s);
  }
  if (folded == 0) return Status::Ok();

  std::vector<int64_t> replaced;
  while (segs.size() >= kSegmentMergeFanIn) {
    const int tier = Tier(segs.back().ops);
    size_t begin = segs.size();
    uint64_t ops = 0, changes = 0;
    while (begin > 0 && Tier(segs[begin - 1].ops) <= tier) {
      --begin;
      ops += segs[begin].ops;
      changes += segs[begin].changes;
    }
    if (segs.size() - begin < kSegmentMergeFanIn || ops > kSegmentMaxOps ||
        changes > kSegmentMaxChanges) {
      break;
    }
    PendingSegment merged;
    merged.first = segs[begin].first;
    merged.last = segs.back().last;
    merged.ops = ops;
    merged.changes = changes;
    merged.cs.reserve(changes);
    for (size_t i = begin; i < segs.size(); ++i) {
      PendingSegment& g = segs[i];
      if (g.id != 0) {
        auto q = sql::Stmt::Prepare(db_, "SELECT data FROM segments WHERE id = ?");
        if (!q.ok()) return q.status();
        q->Bind(1, g.id);
        if (!q->Step(&s)) return s.ok() ? CorruptLog(doc, "a segment vanished") : s;
        auto cs = DecodeSegmentRow(doc, g.last, q->Blob(0));
        if (!cs.ok()) return cs.status();
        g.cs = std::move(*cs);
        replaced.push_back(g.id);
      }
      for (crdt::Change& c : g.cs) merged.cs.push_back(std::move(c));
    }
    segs.resize(begin);
    segs.push_back(std::move(merged));
  }

  {
    auto del = sql::Stmt::Prepare(db_, "DELETE FROM segments WHERE id = ?");
    if (!del.ok()) return del.status();
    for (int64_t id : replaced) WEFT_RETURN_IF_ERROR(del->Bind(1, id).Run());
  }
  auto ins = sql::Stmt::Prepare(db_,
                                "INSERT INTO segments(doc, first_seq, last_seq, changes, ops, "
                                "heads, data) VALUES(?, ?, ?, ?, ?, ?, ?)");
  if (!ins.ok()) return ins.status();
  for (const PendingSegment& g : segs) {
    if (g.id != 0) continue;
    VersionVector heads;
    for (const crdt::Change& c : g.cs) {
      heads.Set(c.author, std::max(heads.Get(c.author), c.end_seq()));
    }
    crdt::Writer hw;
    hw.Vector(heads);
    std::vector<const crdt::Change*> ptrs;
    ptrs.reserve(g.cs.size());
    for (const crdt::Change& c : g.cs) ptrs.push_back(&c);
    WEFT_RETURN_IF_ERROR(ins->Bind(1, doc)
                             .Bind(2, g.first)
                             .Bind(3, g.last)
                             .Bind(4, static_cast<int64_t>(g.changes))
                             .Bind(5, static_cast<int64_t>(g.ops))
                             .BindBlob(6, hw.data())
                             .BindBlob(7, crdt::EncodeSegment(ptrs))
                             .Run());
  }
  // Seqs up to `folded` may leave the table: new rows must still come after them.
  auto floor =
      sql::Stmt::Prepare(db_,
                         "INSERT OR REPLACE INTO meta(key, value) VALUES('log_floor', "
                         "MAX(COALESCE((SELECT value FROM meta WHERE key = 'log_floor'), 0), ?))");
  if (!floor.ok()) return floor.status();
  WEFT_RETURN_IF_ERROR(floor->Bind(1, folded).Run());
  auto del = sql::Stmt::Prepare(db_, "DELETE FROM changes WHERE doc = ? AND seq <= ?");
  if (!del.ok()) return del.status();
  return del->Bind(1, doc).Bind(2, folded).Run();
}

Status ReplicaImpl::CompactSnapshotted() {
  std::vector<std::pair<std::string, int64_t>> snapshots;
  {
    auto q = sql::Stmt::Prepare(db_, "SELECT doc, upto FROM snapshots ORDER BY doc");
    if (!q.ok()) return q.status();
    Status s;
    while (q->Step(&s)) snapshots.emplace_back(q->Text(0), q->Int(1));
    WEFT_RETURN_IF_ERROR(s);
  }
  for (const auto& [doc, upto] : snapshots) {
    WEFT_RETURN_IF_ERROR(sql::Exec(db_, "SAVEPOINT fold"));
    Status c = Compact(doc, upto);
    if (!c.ok()) WEFT_RETURN_IF_ERROR(sql::Exec(db_, "ROLLBACK TO fold"));
    WEFT_RETURN_IF_ERROR(sql::Exec(db_, "RELEASE fold"));
    if (!c.ok() && c.code() != StatusCode::kCorruption) return c;
  }
  return Status::Ok();
}

void ReplicaImpl::CompactOnClose() {
  std::lock_guard w(write_mu_);
  if (options_.snapshot_every != 0) {
    for (const auto& [doc, st] : docs_) {
      // Cheap enough at close: an eighth of the policy's worth of new changes or ops.
      bool worth = st->since_snapshot * 8 >= options_.snapshot_every ||
                   (options_.snapshot_every_ops &&
                    st->ops_since_snapshot * 8 >= options_.snapshot_every_ops);
      if (st->since_snapshot > 0 && worth) (void)WriteSnapshot(doc, *st);
    }
  }
  int64_t free_pages = 0;
  {
    auto q = sql::Stmt::Prepare(db_, "PRAGMA freelist_count");
    Status s;
    if (q.ok() && q->Step(&s)) free_pages = q->Int(0);
  }
  // Moves pages from the end of the file into free ones and truncates it (a no-op unless the
  // database uses auto_vacuum=INCREMENTAL).
  if (free_pages > 0) (void)sql::Exec(db_, "PRAGMA incremental_vacuum");
}

Status ReplicaImpl::MaybeSnapshot(const std::string& doc) {
  auto it = docs_.find(doc);
  if (it == docs_.end()) return Status::Ok();
  DocState& st = *it->second;
  bool due = (options_.snapshot_every && st.since_snapshot >= options_.snapshot_every) ||
             (options_.snapshot_every_ops && st.ops_since_snapshot >= options_.snapshot_every_ops);
  if (!due) return Status::Ok();
  // Counted from now even when it fails: a snapshot is a cache, and a failing one (a full disk, a
  // damaged segment) is tried again a policy's worth of changes later, not on every commit.
  st.since_snapshot = 0;
  st.ops_since_snapshot = 0;
  return WriteSnapshot(doc, st);
}

Status ReplicaImpl::Snapshot(std::string_view doc) {
  std::lock_guard w(write_mu_);
  auto st = Load(doc, false);
  if (!st.ok()) return st.status();
  WEFT_RETURN_IF_ERROR(WriteSnapshot(std::string(doc), **st));
  (*st)->since_snapshot = 0;
  (*st)->ops_since_snapshot = 0;
  return Status::Ok();
}

Status ReplicaImpl::SetPeerVersion(std::string_view peer, std::string_view doc,
                                   const VersionVector& version) {
  WEFT_RETURN_IF_ERROR(CheckDocId(doc));
  std::string token = EncodeCausalToken("", version);  // "@node.seq,..."
  std::lock_guard w(write_mu_);
  auto q = sql::Stmt::Prepare(
      db_, "INSERT OR REPLACE INTO peer_versions(peer, doc, version, updated_ms) VALUES(?,?,?,?)");
  if (!q.ok()) return q.status();
  return q->Bind(1, peer)
      .Bind(2, doc)
      .Bind(3, std::string_view(token).substr(1))
      .Bind(4, static_cast<int64_t>(options_.clock()))
      .Run();
}

Result<std::vector<std::pair<std::string, VersionVector>>> ReplicaImpl::PeerVersions(
    std::string_view peer) {
  std::lock_guard lock(reader_mu_);
  auto q = sql::Stmt::Prepare(reader_,
                              "SELECT doc, version FROM peer_versions WHERE peer = ? ORDER BY doc");
  if (!q.ok()) return q.status();
  q->Bind(1, peer);
  std::vector<std::pair<std::string, VersionVector>> out;
  Status s;
  while (q->Step(&s)) {
    auto t = DecodeCausalToken("x@" + q->Text(1));
    if (!t.ok()) return Status::Corruption("peer_versions: " + t.status().message());
    out.emplace_back(q->Text(0), std::move(t->second));
  }
  WEFT_RETURN_IF_ERROR(s);
  return out;
}

// ---- Snapshot bootstrap (issue 5): base snapshots, kept apart from the op log. ----

Result<DocumentSnapshot> ReplicaImpl::ExportSnapshot(std::string_view doc) {
  DocumentSnapshot out;
  WEFT_RETURN_IF_ERROR(Read(doc, [&](const View& v) {
    out.data = v.document().EncodeSnapshot(false);
    out.version = v.version();
  }));
  return out;
}

Status ReplicaImpl::LoadBase(std::string_view doc, const crdt::DocumentOptions& dopts,
                             crdt::Document* out) {
  auto q = sql::Stmt::Prepare(db_, "SELECT data FROM document_bases WHERE doc = ?");
  if (!q.ok()) return q.status();
  q->Bind(1, doc);
  Status s;
  if (q->Step(&s)) {
    auto d = crdt::Document::DecodeSnapshot(q->Blob(0), actor_, dopts);
    if (!d.ok()) {
      return Status::Corruption("base snapshot of \"" + std::string(doc) +
                                "\": " + d.status().message());
    }
    *out = std::move(*d);
  }
  return s;
}

Result<StateSeal> ReplicaImpl::SealState(std::string_view doc) {
  StateSeal seal;
  std::string digest;
  Status refused;
  WEFT_RETURN_IF_ERROR(Read(doc, [&](const View& v) {
    const crdt::Document& d = v.document();
    const crdt::Role role = d.access().RoleOf(PrincipalOf(public_key_));
    if (!d.access().owned()) {
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
  std::unique_lock w(write_mu_);
  auto loaded = Load(doc, false);
  if (!loaded.ok()) return loaded.status();
  std::string data;
  {
    std::shared_lock lock(state_mu_);
    const crdt::Document& d = (*loaded)->doc;
    if (d.version() != seal.version) {
      return Status::InvalidArgument("the document is at another version here than the seal's");
    }
    WEFT_RETURN_IF_ERROR(CheckStateSeal(doc, d, seal));
    data = d.EncodeSnapshot(false);
  }
  auto q = sql::Stmt::Prepare(
      db_, "INSERT OR REPLACE INTO sealed_snapshots(doc, version, seal, data) VALUES(?, ?, ?, ?)");
  if (!q.ok()) return q.status();
  std::string token = EncodeCausalToken("", seal.version);
  return q->Bind(1, doc)
      .Bind(2, std::string_view(token).substr(1))
      .BindBlob(3, EncodeSeal(seal))
      .BindBlob(4, data)
      .Run();
}

Result<DocumentSnapshot> ReplicaImpl::SealedSnapshot(std::string_view doc) {
  WEFT_RETURN_IF_ERROR(CheckDocId(doc));
  std::lock_guard lock(reader_mu_);
  auto q =
      sql::Stmt::Prepare(reader_, "SELECT version, seal, data FROM sealed_snapshots WHERE doc = ?");
  if (!q.ok()) return q.status();
  q->Bind(1, doc);
  Status s;
  if (!q->Step(&s)) {
    WEFT_RETURN_IF_ERROR(s);
    return Status::NotFound("no sealed snapshot of \"" + std::string(doc) + "\"");
  }
  auto t = DecodeCausalToken("x@" + q->Text(0));
  if (!t.ok()) return Status::Corruption("sealed_snapshots: " + t.status().message());
  auto seal = DecodeSeal(q->Blob(1), t->second);
  if (!seal.ok()) return seal.status();
  DocumentSnapshot out;
  out.version = std::move(t->second);
  out.seal = std::move(*seal);
  out.data = std::string(q->Blob(2));
  return out;
}

Result<VersionVector> ReplicaImpl::ImportSnapshot(std::string_view doc, std::string_view data,
                                                  const VersionVector* expected,
                                                  const StateSeal* seal, bool require_seal) {
  WEFT_RETURN_IF_ERROR(CheckDocId(doc));
  // Validate before touching anything: hostile bytes are refused here.
  crdt::DocumentOptions dopts{options_.max_drift_ms, /*keep_history=*/false};
  auto decoded = crdt::Document::DecodeSnapshot(data, actor_, dopts);
  if (!decoded.ok()) {
    return Status::Corruption("snapshot of \"" + std::string(doc) +
                              "\": " + decoded.status().message());
  }
  const VersionVector version = decoded->version();
  if (expected && *expected != version) {
    return Status::Corruption("the snapshot of \"" + std::string(doc) +
                              "\" does not hold the version it was sent with");
  }
  // A snapshot carries no history to check signatures on: an owned document's is taken from an
  // untrusted source only with its owner's or an admin's seal of that very state.
  if (seal) {
    if (Status c = CheckStateSeal(doc, *decoded, *seal); !c.ok()) {
      return Status(c.code(), "the snapshot of \"" + std::string(doc) + "\": " + c.message());
    }
  } else if (require_seal && decoded->access().owned()) {
    return Status(StatusCode::kPermissionDenied, "the snapshot of owned document \"" +
                                                     std::string(doc) +
                                                     "\" is not sealed by its owner or an admin");
  }
  std::unique_lock w(write_mu_);
  VersionVector local;
  auto loaded = Load(doc, false);
  if (loaded.ok()) {
    std::shared_lock lock(state_mu_);
    local = (*loaded)->doc.version();
  } else if (loaded.status().code() != StatusCode::kNotFound) {
    return loaded.status();
  }
  if (!version.Dominates(local)) {
    return Status::InvalidArgument("the snapshot of \"" + std::string(doc) +
                                   "\" lacks changes this replica holds; it cannot replace them");
  }
  if (loaded.ok() && local.Dominates(version)) return local;  // nothing new in it
  std::string token = EncodeCausalToken("", version);
  WEFT_RETURN_IF_ERROR(wstmt_.Run("BEGIN IMMEDIATE"));
  Status s;
  {
    auto ins =
        sql::Stmt::Prepare(db_, "INSERT OR IGNORE INTO documents(id, created_ms) VALUES(?, ?)");
    s = ins.ok() ? ins->Bind(1, doc).Bind(2, static_cast<int64_t>(options_.clock())).Run()
                 : ins.status();
  }
  if (s.ok()) {
    auto base = sql::Stmt::Prepare(
        db_, "INSERT OR REPLACE INTO document_bases(doc, version, data) VALUES(?, ?, ?)");
    s = base.ok()
            ? base->Bind(1, doc).Bind(2, std::string_view(token).substr(1)).BindBlob(3, data).Run()
            : base.status();
  }
  if (s.ok() && seal) {
    // Kept to serve others: they check it the same way.
    auto keep = sql::Stmt::Prepare(
        db_,
        "INSERT OR REPLACE INTO sealed_snapshots(doc, version, seal, data) VALUES(?, ?, ?, ?)");
    s = keep.ok() ? keep->Bind(1, doc)
                        .Bind(2, std::string_view(token).substr(1))
                        .BindBlob(3, EncodeSeal(*seal))
                        .BindBlob(4, data)
                        .Run()
                  : keep.status();
  }
  if (s.ok()) {
    // An older snapshot would hide the base on the next load; the log rows already held stay
    // (the base includes them: replaying them is a no-op).
    auto del = sql::Stmt::Prepare(db_, "DELETE FROM snapshots WHERE doc = ?");
    s = del.ok() ? del->Bind(1, doc).Run() : del.status();
  }
  if (s.ok()) s = wstmt_.Run("COMMIT");
  if (!s.ok()) {
    (void)wstmt_.Run("ROLLBACK");
    return s;
  }
  if (syncer_) WEFT_RETURN_IF_ERROR(syncer_->WaitDurable(syncer_->Committed()));
  {
    std::unique_lock lock(state_mu_);
    docs_[std::string(doc)] = std::make_unique<DocState>(std::move(*decoded));
  }
  {
    std::lock_guard f(feed_mu_);
    ChangeEvent ev{std::string(doc), false, {}, {}};
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
  std::lock_guard lock(reader_mu_);
  auto q = sql::Stmt::Prepare(reader_, "SELECT version FROM document_bases WHERE doc = ?");
  if (!q.ok()) return q.status();
  q->Bind(1, doc);
  Status s;
  VersionVector out;
  if (q->Step(&s)) {
    auto t = DecodeCausalToken("x@" + q->Text(0));
    if (!t.ok()) return Status::Corruption("document_bases: " + t.status().message());
    out = std::move(t->second);
  }
  WEFT_RETURN_IF_ERROR(s);
  return out;
}

// ---- Time travel: documents rebuilt from the op log at a version. ----

Result<ReplicaImpl::FullHistory> ReplicaImpl::ReadHistory(std::string_view doc) {
  WEFT_RETURN_IF_ERROR(CheckDocId(doc));
  if (!HasDocument(doc)) return Status::NotFound("no document \"" + std::string(doc) + "\"");
  FullHistory h;
  std::lock_guard lock(reader_mu_);
  // One read transaction: a compaction committing meanwhile cannot move changes out of sight.
  WEFT_RETURN_IF_ERROR(rstmt_.Run("BEGIN"));
  EndRead end_read{rstmt_};
  Status s;
  auto base = sql::Stmt::Prepare(reader_, "SELECT data FROM document_bases WHERE doc = ?");
  if (!base.ok()) return base.status();
  base->Bind(1, doc);
  if (base->Step(&s)) h.base = std::string(base->Blob(0));
  WEFT_RETURN_IF_ERROR(s);
  if (!h.base.empty()) {
    crdt::DocumentOptions dopts{options_.max_drift_ms, /*keep_history=*/false};
    auto d = crdt::Document::DecodeSnapshot(h.base, actor_, dopts);
    if (!d.ok()) {
      return Status::Corruption("base snapshot of \"" + std::string(doc) +
                                "\": " + d.status().message());
    }
    h.base_version = d->version();
  }
  h.version = h.base_version;
  auto take = [&](crdt::Change c) {
    if (h.version.Get(c.author) >= c.end_seq()) return;  // in the base already
    h.version.Advance(c.author, c.end_seq());
    h.changes.push_back(std::move(c));
  };
  auto segs = sql::Stmt::Prepare(
      reader_, "SELECT last_seq, data FROM segments WHERE doc = ? ORDER BY last_seq");
  if (!segs.ok()) return segs.status();
  segs->Bind(1, doc);
  while (segs->Step(&s)) {
    auto cs = DecodeSegmentRow(doc, segs->Int(0), segs->Blob(1));
    if (!cs.ok()) return cs.status();
    for (crdt::Change& c : *cs) take(std::move(c));
  }
  WEFT_RETURN_IF_ERROR(s);
  auto rows =
      sql::Stmt::Prepare(reader_, "SELECT seq, crc, data FROM changes WHERE doc = ? ORDER BY seq");
  if (!rows.ok()) return rows.status();
  rows->Bind(1, doc);
  while (rows->Step(&s)) {
    auto c = DecodeRow(doc, rows->Int(0), rows->Int(1), rows->Blob(2));
    if (!c.ok()) return c.status();
    take(std::move(*c));
  }
  WEFT_RETURN_IF_ERROR(s);
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
      Status s = out.ApplyChange(c, opts);
      if (s.code() == StatusCode::kMissingDependency) {
        return Status::InvalidArgument("version " + v.ToString() + " of " + name +
                                       " holds change " + c.id().ToString() +
                                       " without its dependencies");
      }
      if (!s.ok()) return CorruptLog(doc, s.message());
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
  std::lock_guard f(feed_mu_);
  subs_.erase(id);
}

void ReplicaImpl::SetConflictResolver(std::string_view doc, ConflictResolver resolver) {
  std::lock_guard f(feed_mu_);
  resolvers_[std::string(doc)] = std::move(resolver);
}

// Delivers queued events in commit order. One thread delivers at a time; a callback that commits
// queues its own event, which the same loop delivers after the callback returns.
void ReplicaImpl::Dispatch() {
  std::unique_lock f(feed_mu_);
  if (dispatching_) return;
  dispatching_ = true;
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
  }
  dispatching_ = false;
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
    (void)Read(doc, [&](const View& v) {
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

}  // namespace

Result<std::unique_ptr<Replica>> Replica::Open(const std::string& path, ReplicaOptions options) {
  auto r = std::make_unique<ReplicaImpl>(path, std::move(options));
  WEFT_RETURN_IF_ERROR(r->Init());
  return std::unique_ptr<Replica>(std::move(r));
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
