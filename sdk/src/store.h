// The storage seam: what a replica (a device or a relay) keeps, behind one interface, so that the
// replica's logic (replica.cpp) does not know which store it has. SqliteStore (sqlite_store.h) is
// the default and the only store a device needs; MemoryStore (memory_store.h) keeps everything in
// process memory, for simulations and as a second implementation that keeps the seam honest;
// PgStore (pg_store.h) keeps a relay's data in PostgreSQL, shared by several relays. One
// conformance suite (tests/sdk/store_test.cpp) runs against every implementation.
//
// What a store holds, per document: the op log (rows, one per change, and segments, runs of
// compacted changes), the latest snapshot (a cache), the base snapshot a document was
// bootstrapped from, a sealed snapshot, equivocation proofs; and, across documents: metadata and
// per-peer acknowledged versions. Bytes are opaque to the store (crdt encodings made and checked
// by the caller), except that a row's bytes come back exactly as written or not at all.
//
// The contract (also in docs/storage.md, "The storage seam"):
// - Atomicity: every call is atomic on its own. A write either happens whole or fails and changes
//   nothing; a read sees one consistent state (a compaction or import committing meanwhile is seen
//   wholly or not at all). There are no transactions across calls: a caller that reads, decides
//   and writes (compaction) passes what it read as a precondition of the write (Compaction).
// - Ordering: within a document, log seqs are allocated by AppendChanges in commit order and only
//   grow (never reused, even after compaction deletes rows); a document's log reads as its
//   segments in last_seq order, then its rows in seq order. A store may share one counter across
//   documents (SqliteStore does) or keep one per document.
// - Idempotence: a change is keyed on (document, author, start_seq); appending a key the log
//   already holds as a row stores nothing for it (a writer retrying a batch creates no duplicate).
// - Durability: a write is visible to every later read once it returns. Writes that return a
//   commit number (AppendChanges, ImportBase) are durable once that commit is (WhenDurable,
//   WaitDurable; 0: durable on return, as far as the store's durability setting goes). Other
//   writes become durable no later than the next commit that is waited on, or at Close.
// - Notification: after AppendChanges stores at least one change, and after ImportBase, every
//   watcher is called once, on the writing thread, after the commit and with no store lock held,
//   with the document and the seqs stored; on a shared store (Shared()), also after another
//   store's writes (`foreign`), on whichever thread the store learns of them. A notice means "read
//   past your position"; it carries no data, and a watcher that missed notices loses nothing by
//   reading the log again. The writer may hold locks of its own (the replica's writer lock): a
//   watcher notes the notice and returns, acting on it elsewhere, and never writes through the same
//   replica from inside the call.
// - Errors: Status codes as elsewhere (kCorruption for damaged stored bytes, naming the document
//   and log seq; kIOError, kBusy for storage failures; kInvalidArgument for bad input, which
//   changes nothing).
//
// Thread safety: every method may be called from any thread. Reads do not wait for writes (nor
// writes for reads) beyond what the store's engine needs; the caller serialises writers of one
// document (the replica holds its writer lock). Callbacks given to ReadLog run while the store
// holds its read state: they must not call the store.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "weft/crdt/causality.h"
#include "weft/status.h"

namespace weft::store {

using crdt::NodeId;
using crdt::VersionVector;

// How a metadata value is typed where the store has types (SQLite keeps integers as integers, as
// the schema did before the seam; another store may keep everything as bytes).
enum class MetaType { kText, kInteger, kBytes, kSecret };

// A metadata entry to write. kInteger: `value` is the decimal form of a 64-bit integer. kSecret:
// bytes that only the store's owner may read (SqliteStore makes its files owner-only first).
struct MetaEntry {
  std::string key;
  std::string value;
  MetaType type = MetaType::kText;
};

// A change to append to a document's log: its key and its bytes (crdt::EncodeChange).
struct NewChange {
  NodeId author;
  uint64_t start_seq = 0;
  uint64_t end_seq = 0;
  std::string_view data;
};

// What AppendChanges did.
struct AppendResult {
  size_t stored = 0;       // changes stored (the others were held already)
  uint64_t first_seq = 0;  // the log seqs of the first and last stored (0 when none)
  uint64_t last_seq = 0;
  uint64_t commit = 0;  // the commit to wait on for durability (0: durable already)
};

// A log row as ReadLog offers it, before its bytes are read.
struct RowInfo {
  uint64_t seq = 0;
  NodeId author;
  uint64_t start_seq = 0;
  uint64_t end_seq = 0;
};

// A segment: the changes that were the document's rows first_seq..last_seq, in that order
// (crdt::EncodeSegment), and, per author, the highest seq in it.
struct SegmentInfo {
  uint64_t id = 0;  // the store's name for it, unique within the store
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  uint64_t changes = 0;
  uint64_t ops = 0;
  VersionVector heads;  // read only for a LogRead with_heads
};

// A segment a compaction writes.
struct NewSegment {
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  uint64_t changes = 0;
  uint64_t ops = 0;
  VersionVector heads;
  std::string data;
};

// What a compaction replaces, checked when it is written: every `replaced` segment must still be
// the document's, else the write fails with kAborted and changes nothing.
struct Compaction {
  std::vector<uint64_t> replaced;  // segments merged into `added`
  std::vector<NewSegment> added;
  uint64_t folded = 0;  // the document's rows up to this seq are in `added` (0: none)
};

// One read of a document's log, in one consistent state: the base snapshot's bytes (when `base`
// is set and the document has one), then its segments with last_seq > `after` in last_seq order
// (when `segment` is set), then its rows with `after` < seq <= `upto` in seq order (when `row` is
// set). With `authors`, only the rows of those authors, each from the row that holds the given
// seq (or the first row after it) on. `want_segment` / `want_row` (when set) see each entry before
// its bytes are read: false skips it, unread and unchecked. `with_heads` reads each segment's
// heads (kCorruption when they do not decode). A row's bytes are checked against the checksum
// stored with them (kCorruption naming the document and seq). A callback's error stops the read
// and is returned.
struct LogRead {
  uint64_t after = 0;
  uint64_t upto = std::numeric_limits<uint64_t>::max();
  std::optional<std::vector<std::pair<NodeId, uint64_t>>> authors;
  bool with_heads = false;
  std::function<Status(std::string_view data)> base;
  std::function<bool(const SegmentInfo&)> want_segment;
  std::function<Status(const SegmentInfo&, std::string_view data)> segment;
  std::function<bool(const RowInfo&)> want_row;
  std::function<Status(const RowInfo&, std::string_view data)> row;
};

// A logged row found by FindRow, its bytes checked.
struct FoundRow {
  RowInfo info;
  std::string data;
};

// A follower's read of one document's log past its position (Store::ReadTails).
struct LogTail {
  std::string doc;
  uint64_t after = 0;
  // What the read found: whether the log holds a segment past `after` (others compacted rows the
  // follower has not read: it reads the document with ReadLog instead, and `rows` stays empty),
  // else every row past `after`, in seq order, its bytes checked.
  bool segments = false;
  std::vector<FoundRow> rows;
};

struct StoredSnapshot {
  uint64_t upto = 0;  // the last log seq it includes
  std::string data;   // crdt::Document::EncodeSnapshot(false)
};

// The snapshot a document was bootstrapped from (its log starts after `version`).
struct BaseSnapshot {
  VersionVector version;
  std::string data;  // empty unless asked for
};

// A snapshot kept with the seal of its owner or an admin, to serve to other replicas.
struct SealedSnapshotRecord {
  VersionVector version;
  std::string seal;  // the seal's stored form (replica.cpp, EncodeSeal)
  std::string data;
};

// Two different changes of one author at one seq, both signed: the proof of an equivocation.
struct EquivocationRecord {
  std::string doc;
  NodeId author;
  uint64_t seq = 0;
  std::string held, other;
  int64_t detected_ms = 0;
};

// Something new was stored (see Notification above).
struct StoredNotice {
  std::string doc;  // "" (with `foreign`): notices may have been missed; read every document again
  uint64_t first_seq = 0;  // the log seqs stored (0 for a base import)
  uint64_t last_seq = 0;
  bool base = false;  // a base snapshot was imported: read the document again
  // Written through another store on the same storage (another relay), not through this one.
  bool foreign = false;
};
using Watcher = std::function<void(const StoredNotice&)>;

// Group commit's work so far (zeros for a store without it).
struct SyncStats {
  uint64_t commits = 0, syncs = 0, failures = 0, checkpoints = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  // The replica's stable node ID, chosen when the store was created.
  virtual NodeId node_id() const = 0;
  // The database file, or "" for a store that is not one (no actor lease is kept then).
  virtual const std::string& path() const = 0;
  // Whether other stores may write to this one's documents (relays sharing a database). A replica
  // on a shared store follows its documents' logs: on each foreign notice, and on a slow poll, it
  // reads what others stored past its position. Then a document's log seqs must be its own
  // (allocated per document, with no gaps between consecutive appends), so that a replica can tell
  // from an append's seqs whether others wrote in between.
  virtual bool Shared() const { return false; }

  // ---- Metadata: small key/value pairs (identity, actor lease). ----
  // The values of those of `keys` that are set (integers in decimal).
  virtual Result<std::map<std::string, std::string>> GetMeta(
      const std::vector<std::string>& keys) = 0;
  virtual Status PutMeta(const std::vector<MetaEntry>& entries) = 0;
  // Writes `put` only when every key of `expect` holds exactly the value given (integers in
  // decimal); returns whether it wrote.
  virtual Result<bool> PutMetaIf(const std::vector<std::pair<std::string, std::string>>& expect,
                                 const std::vector<MetaEntry>& put) = 0;

  // ---- Documents. ----
  // Every document, sorted by ID.
  virtual Result<std::vector<std::string>> ListDocuments() = 0;
  virtual Result<bool> HasDocument(std::string_view doc) = 0;
  // Records the document (a no-op when it exists).
  virtual Status CreateDocument(std::string_view doc, int64_t created_ms) = 0;
  // Removes the document and everything of it (log, snapshots, base, seal, proofs); kNotFound
  // when absent. Peer versions stay (they are the peer's).
  virtual Status DeleteDocument(std::string_view doc) = 0;

  // ---- The op log. ----
  // Records the document if new and appends `changes` to its log, in order, in one atomic write.
  virtual Result<AppendResult> AppendChanges(std::string_view doc, int64_t now_ms,
                                             const std::vector<NewChange>& changes) = 0;
  virtual Status ReadLog(std::string_view doc, const LogRead& read) = 0;
  // Fills each of `tails` with what its document's log holds past its position, each document
  // read in one consistent state. A follower of a shared store calls it with every document
  // notices named since its last read: a store where each read is a round trip to a server reads
  // them all at once. This one reads them one by one.
  virtual Status ReadTails(std::vector<LogTail>* tails) {
    for (LogTail& t : *tails) {
      LogRead read;
      read.after = t.after;
      read.want_segment = [&](const SegmentInfo&) {
        t.segments = true;
        return false;
      };
      read.segment = [](const SegmentInfo&, std::string_view) { return Status::Ok(); };
      read.row = [&](const RowInfo& info, std::string_view data) {
        if (!t.segments) t.rows.push_back({info, std::string(data)});
        return Status::Ok();
      };
      t.segments = false;
      t.rows.clear();
      WEFT_RETURN_IF_ERROR(ReadLog(t.doc, read));
      if (t.segments) t.rows.clear();
    }
    return Status::Ok();
  }
  // The row of `author` with the greatest start_seq <= `seq` (nullopt: none, or compacted).
  virtual Result<std::optional<FoundRow>> FindRow(std::string_view doc, NodeId author,
                                                  uint64_t seq) = 0;
  // The highest log seq of the document's rows and segments (0: an empty log).
  virtual Result<uint64_t> LastSeq(std::string_view doc) = 0;
  // The bytes of the document's segments `ids`, in that order (kCorruption if one is missing).
  virtual Result<std::vector<std::string>> ReadSegments(std::string_view doc,
                                                        const std::vector<uint64_t>& ids) = 0;

  // ---- Snapshots (caches of the log). ----
  virtual Result<std::optional<StoredSnapshot>> GetSnapshot(std::string_view doc) = 0;
  // Replaces the document's snapshot with one covering its log up to `upto`, and writes
  // `compaction`, in one atomic write.
  virtual Status WriteSnapshot(std::string_view doc, uint64_t upto, std::string_view data,
                               const Compaction& compaction) = 0;

  // ---- Bases and sealed snapshots. ----
  // The document's base (its data only `with_data`); nullopt when it has none.
  virtual Result<std::optional<BaseSnapshot>> GetBase(std::string_view doc, bool with_data) = 0;
  // Records the document if new, makes `data` (holding `version`) its base, keeps it as its
  // sealed snapshot with `seal` when given, and drops its cached snapshot, in one atomic write.
  // Log rows already held stay. Returns the commit to wait on.
  virtual Result<uint64_t> ImportBase(std::string_view doc, int64_t now_ms,
                                      const VersionVector& version, std::string_view data,
                                      const std::string* seal) = 0;
  virtual Status PutSealedSnapshot(std::string_view doc, const VersionVector& version,
                                   std::string_view seal, std::string_view data) = 0;
  virtual Result<std::optional<SealedSnapshotRecord>> GetSealedSnapshot(std::string_view doc) = 0;

  // ---- Equivocation proofs. ----
  // Keeps the first proof per (document, author); a later one for the same pair is ignored.
  virtual Status RecordEquivocation(const EquivocationRecord& e) = 0;
  // Of one document, or (nullopt) of all, sorted by document.
  virtual Result<std::vector<EquivocationRecord>> Equivocations(
      std::optional<std::string_view> doc) = 0;

  // ---- What each peer acknowledged. ----
  virtual Status SetPeerVersion(std::string_view peer, std::string_view doc,
                                const VersionVector& version, int64_t now_ms) = 0;
  // Every document's acknowledged version for `peer`, sorted by document.
  virtual Result<std::vector<std::pair<std::string, VersionVector>>> PeerVersions(
      std::string_view peer) = 0;

  // ---- Durability (see the contract above). ----
  virtual void WhenDurable(uint64_t commit, std::function<void(Status)> fn) = 0;
  virtual Status WaitDurable(uint64_t commit) = 0;
  // The latest commit number handed out (0: none, or a store whose writes are durable on return).
  virtual uint64_t LatestCommit() = 0;
  virtual SyncStats GetSyncStats() = 0;

  // ---- Notification. ----
  // Calls `watcher` after every later write that stores something new; returns an ID to Unwatch.
  virtual uint64_t Watch(Watcher watcher) = 0;
  virtual void Unwatch(uint64_t id) = 0;

  // ---- Lifetime. ----
  // Gives space freed by compaction back (best effort; a store may do nothing).
  virtual void ReclaimSpace() = 0;
  // Makes everything written durable and releases the store; OK when it closed cleanly. No call
  // may follow but the destructor (which closes too, if Close was not called).
  virtual Status Close() = 0;
};

}  // namespace weft::store
