// SqliteStore (sqlite_store.h): the schema, its migrations, and every SQL statement of a replica.
#include "sqlite_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <mutex>
#include <random>

#include "log_syncer.h"
#include "op_log.h"
#include "sqlite.h"
#include "weft/crdt/history.h"

namespace weft::store {
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
    // 1 -> 2: per peer and document, the version the peer acknowledged storing.
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

void Crc32cSqlFunction(sqlite3_context* ctx, int, sqlite3_value** argv) {
  const void* p = sqlite3_value_blob(argv[0]);
  int n = sqlite3_value_bytes(argv[0]);
  std::string_view data(static_cast<const char*>(p), p ? static_cast<size_t>(n) : 0);
  sqlite3_result_int64(ctx, crdt::Crc32c(data));
}

// Seqs and IDs are stored as SQLite integers (signed 64-bit); bounds past them are clamped.
int64_t Bound(uint64_t v) {
  return static_cast<int64_t>(std::min<uint64_t>(v, std::numeric_limits<int64_t>::max()));
}
int64_t AsInt(NodeId n) {
  return static_cast<int64_t>(n.value);
}
uint64_t U(int64_t v) {
  return static_cast<uint64_t>(v);
}

// A statement from a connection's cache, reset (and its read lock released) when done.
class Query {
 public:
  Query(sql::StmtCache& cache, const std::string& text) {
    auto s = cache.Get(text);
    if (s.ok()) {
      s_ = *s;
    } else {
      status_ = s.status();
    }
  }
  ~Query() {
    if (s_) s_->Reset();
  }
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;
  const Status& status() const { return status_; }
  sql::Stmt* operator->() { return s_; }
  sql::Stmt& operator*() { return *s_; }

 private:
  sql::Stmt* s_ = nullptr;
  Status status_;
};

// Ends a read transaction begun with BEGIN on the statements' connection, whatever the path out.
struct EndRead {
  sql::StmtCache& stmts;
  ~EndRead() {
    if (!stmts.Run("COMMIT").ok()) (void)stmts.Run("ROLLBACK");
  }
};

// A document's log, read on `db` (inside the caller's transaction): see LogRead.
Status ReadLogOn(sql::StmtCache& stmts, std::string_view doc, const LogRead& read) {
  Status s;
  if (read.base) {
    Query q(stmts, "SELECT data FROM document_bases WHERE doc = ?");
    WEFT_RETURN_IF_ERROR(q.status());
    q->Bind(1, doc);
    if (q->Step(&s)) WEFT_RETURN_IF_ERROR(read.base(q->Blob(0)));
    WEFT_RETURN_IF_ERROR(s);
  }
  if (read.segment) {
    // Heads and bytes only when asked for (SQLite reads a blob's overflow pages only then).
    Query q(stmts,
            "SELECT id, first_seq, last_seq, changes, ops, heads, data FROM segments WHERE doc = ? "
            "AND last_seq > ? ORDER BY last_seq");
    WEFT_RETURN_IF_ERROR(q.status());
    q->Bind(1, doc).Bind(2, Bound(read.after));
    while (q->Step(&s)) {
      SegmentInfo info;
      info.id = U(q->Int(0));
      info.first_seq = U(q->Int(1));
      info.last_seq = U(q->Int(2));
      info.changes = U(q->Int(3));
      info.ops = U(q->Int(4));
      if (read.with_heads) {
        auto heads = oplog::DecodeHeads(doc, info.last_seq, q->Blob(5));
        if (!heads.ok()) return heads.status();
        info.heads = std::move(*heads);
      }
      if (read.want_segment && !read.want_segment(info)) continue;
      WEFT_RETURN_IF_ERROR(read.segment(info, q->Blob(6)));
    }
    WEFT_RETURN_IF_ERROR(s);
  }
  if (!read.row || read.upto <= read.after) return Status::Ok();
  // Offers a row; `keep` (by-author reads) collects it instead of passing it on.
  struct Kept {
    RowInfo info;
    std::string data;
  };
  auto take = [&](sql::Stmt& q, std::vector<Kept>* keep) -> Status {
    while (q.Step(&s)) {
      RowInfo info;
      info.seq = U(q.Int(0));
      info.author = NodeId{U(q.Int(1))};
      info.start_seq = U(q.Int(2));
      info.end_seq = U(q.Int(3));
      if (info.seq <= read.after || info.seq > read.upto) continue;
      if (read.want_row && !read.want_row(info)) continue;
      std::string_view data = q.Blob(5);
      WEFT_RETURN_IF_ERROR(oplog::CheckRow(doc, info.seq, static_cast<uint32_t>(q.Int(4)), data));
      if (keep) {
        keep->push_back({info, std::string(data)});
      } else {
        WEFT_RETURN_IF_ERROR(read.row(info, data));
      }
    }
    return s;
  };
  if (read.authors) {
    // Per author: the row holding the given seq, and the rows after it; then in log order.
    std::vector<Kept> kept;
    Query q(stmts,
            "SELECT seq, author, start_seq, end_seq, crc, data FROM changes WHERE doc = ?1 AND "
            "author = ?2 AND start_seq >= COALESCE((SELECT MAX(start_seq) FROM changes WHERE "
            "doc = ?1 AND author = ?2 AND start_seq <= ?3), 0)");
    WEFT_RETURN_IF_ERROR(q.status());
    for (const auto& [author, seq] : *read.authors) {
      q->Reset();
      q->Bind(1, doc).Bind(2, AsInt(author)).Bind(3, Bound(seq));
      WEFT_RETURN_IF_ERROR(take(*q, &kept));
    }
    std::sort(kept.begin(), kept.end(),
              [](const Kept& a, const Kept& b) { return a.info.seq < b.info.seq; });
    for (const Kept& k : kept) WEFT_RETURN_IF_ERROR(read.row(k.info, k.data));
    return Status::Ok();
  }
  Query q(stmts,
          "SELECT seq, author, start_seq, end_seq, crc, data FROM changes WHERE doc = ? AND "
          "seq > ? AND seq <= ? ORDER BY seq");
  WEFT_RETURN_IF_ERROR(q.status());
  q->Bind(1, doc).Bind(2, Bound(read.after)).Bind(3, Bound(read.upto));
  return take(*q, nullptr);
}

Result<std::vector<std::string>> ReadSegmentsOn(sql::StmtCache& stmts, std::string_view doc,
                                                const std::vector<uint64_t>& ids) {
  std::vector<std::string> out;
  Query q(stmts, "SELECT data FROM segments WHERE id = ? AND doc = ?");
  WEFT_RETURN_IF_ERROR(q.status());
  for (uint64_t id : ids) {
    q->Reset();
    q->Bind(1, Bound(id)).Bind(2, doc);
    Status s;
    if (!q->Step(&s)) return s.ok() ? oplog::CorruptLog(doc, "a segment vanished") : s;
    out.emplace_back(q->Blob(0));
  }
  return out;
}

// Writes a compaction (inside the caller's transaction).
Status ApplyCompactionOn(sql::StmtCache& stmts, std::string_view doc, const Compaction& c) {
  Status s;
  for (uint64_t id : c.replaced) {
    Query q(stmts, "DELETE FROM segments WHERE id = ? AND doc = ?");
    WEFT_RETURN_IF_ERROR(q.status());
    WEFT_RETURN_IF_ERROR(q->Bind(1, Bound(id)).Bind(2, doc).Run());
    Query n(stmts, "SELECT changes()");
    WEFT_RETURN_IF_ERROR(n.status());
    if (!n->Step(&s) || n->Int(0) != 1) {
      WEFT_RETURN_IF_ERROR(s);
      return Status::Aborted("op log of \"" + std::string(doc) +
                             "\" changed during its compaction (a segment it merges is gone)");
    }
  }
  for (const NewSegment& g : c.added) {
    Query q(stmts,
            "INSERT INTO segments(doc, first_seq, last_seq, changes, ops, heads, data) "
            "VALUES(?, ?, ?, ?, ?, ?, ?)");
    WEFT_RETURN_IF_ERROR(q.status());
    WEFT_RETURN_IF_ERROR(q->Bind(1, doc)
                             .Bind(2, Bound(g.first_seq))
                             .Bind(3, Bound(g.last_seq))
                             .Bind(4, Bound(g.changes))
                             .Bind(5, Bound(g.ops))
                             .BindBlob(6, oplog::EncodeHeads(g.heads))
                             .BindBlob(7, g.data)
                             .Run());
  }
  if (c.folded == 0) return Status::Ok();
  // Seqs up to `folded` may leave the table: new rows must still come after them.
  {
    Query q(stmts,
            "INSERT OR REPLACE INTO meta(key, value) VALUES('log_floor', "
            "MAX(COALESCE((SELECT value FROM meta WHERE key = 'log_floor'), 0), ?))");
    WEFT_RETURN_IF_ERROR(q.status());
    WEFT_RETURN_IF_ERROR(q->Bind(1, Bound(c.folded)).Run());
  }
  Query q(stmts, "DELETE FROM changes WHERE doc = ? AND seq <= ?");
  WEFT_RETURN_IF_ERROR(q.status());
  return q->Bind(1, doc).Bind(2, Bound(c.folded)).Run();
}

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

class SqliteStore final : public Store {
 public:
  SqliteStore(std::string path, SqliteStoreOptions options)
      : path_(std::move(path)), options_(std::move(options)) {}
  ~SqliteStore() override { (void)Close(); }

  Status Init();

  NodeId node_id() const override { return node_; }
  const std::string& path() const override { return path_; }

  Result<std::map<std::string, std::string>> GetMeta(const std::vector<std::string>& keys) override;
  Status PutMeta(const std::vector<MetaEntry>& entries) override;
  Result<bool> PutMetaIf(const std::vector<std::pair<std::string, std::string>>& expect,
                         const std::vector<MetaEntry>& put) override;

  Result<std::vector<std::string>> ListDocuments() override;
  Result<bool> HasDocument(std::string_view doc) override;
  Status CreateDocument(std::string_view doc, int64_t created_ms) override;
  Status DeleteDocument(std::string_view doc) override;

  Result<AppendResult> AppendChanges(std::string_view doc, int64_t now_ms,
                                     const std::vector<NewChange>& changes) override;
  Status ReadLog(std::string_view doc, const LogRead& read) override;
  Result<std::optional<FoundRow>> FindRow(std::string_view doc, NodeId author,
                                          uint64_t seq) override;
  Result<uint64_t> LastSeq(std::string_view doc) override;
  Result<std::vector<std::string>> ReadSegments(std::string_view doc,
                                                const std::vector<uint64_t>& ids) override;

  Result<std::optional<StoredSnapshot>> GetSnapshot(std::string_view doc) override;
  Status WriteSnapshot(std::string_view doc, uint64_t upto, std::string_view data,
                       const Compaction& compaction) override;

  Result<std::optional<BaseSnapshot>> GetBase(std::string_view doc, bool with_data) override;
  Result<uint64_t> ImportBase(std::string_view doc, int64_t now_ms, const VersionVector& version,
                              std::string_view data, const std::string* seal) override;
  Status PutSealedSnapshot(std::string_view doc, const VersionVector& version,
                           std::string_view seal, std::string_view data) override;
  Result<std::optional<SealedSnapshotRecord>> GetSealedSnapshot(std::string_view doc) override;

  Status RecordEquivocation(const EquivocationRecord& e) override;
  Result<std::vector<EquivocationRecord>> Equivocations(
      std::optional<std::string_view> doc) override;

  Status SetPeerVersion(std::string_view peer, std::string_view doc, const VersionVector& version,
                        int64_t now_ms) override;
  Result<std::vector<std::pair<std::string, VersionVector>>> PeerVersions(
      std::string_view peer) override;

  void WhenDurable(uint64_t commit, std::function<void(Status)> fn) override {
    if (commit == 0 || !syncer_) return fn(Status::Ok());
    syncer_->WhenDurable(commit, std::move(fn));
  }
  Status WaitDurable(uint64_t commit) override {
    if (commit == 0 || !syncer_) return Status::Ok();
    return syncer_->WaitDurable(commit);
  }
  uint64_t LatestCommit() override { return syncer_ ? syncer_->Latest() : 0; }
  SyncStats GetSyncStats() override {
    if (!syncer_) return {};
    auto s = syncer_->GetStats();
    return {s.commits, s.syncs, s.failures, s.checkpoints};
  }

  uint64_t Watch(Watcher watcher) override {
    std::lock_guard lock(watch_mu_);
    watchers_.emplace(next_watch_, std::move(watcher));
    return next_watch_++;
  }
  void Unwatch(uint64_t id) override {
    std::lock_guard lock(watch_mu_);
    watchers_.erase(id);
  }

  void ReclaimSpace() override;
  Status Close() override;

 private:
  // A read-only connection of the pool, with its statements.
  struct Reader {
    sqlite3* db = nullptr;
    sql::StmtCache stmts;
  };
  // Borrows a reader for the scope; returns it to the pool at the end.
  class Borrowed {
   public:
    Borrowed(SqliteStore* store, std::unique_ptr<Reader> r) : store_(store), r_(std::move(r)) {}
    Borrowed(Borrowed&&) = default;
    ~Borrowed() {
      if (r_) store_->ReturnReader(std::move(r_));
    }
    Reader* operator->() { return r_.get(); }

   private:
    SqliteStore* store_;
    std::unique_ptr<Reader> r_;
  };
  Result<Borrowed> BorrowReader();
  // Runs one statement on a reader: `bind` (when set) binds its parameters, `row` sees each row.
  Status Select(const std::string& text, const std::function<void(sql::Stmt&)>& bind,
                const std::function<Status(sql::Stmt&)>& row);
  void ReturnReader(std::unique_ptr<Reader> r);
  // Runs `body` in one write transaction (BEGIN IMMEDIATE ... COMMIT, ROLLBACK on failure),
  // holding the writer lock.
  Status WriteTxn(const std::function<Status()>& body);
  Status WriteMetaEntries(const std::vector<MetaEntry>& entries);
  Status ProtectFiles();
  // Compacts every document's log up to its snapshot, each inside a savepoint that a failure
  // rolls back (during the migration from version 2). Fails only on a storage error.
  Status CompactSnapshotted();
  void Notify(const StoredNotice& notice);

  const std::string path_;
  const SqliteStoreOptions options_;
  NodeId node_;
  bool closed_ = false;

  std::mutex write_mu_;    // one writer at a time, on db_
  sqlite3* db_ = nullptr;  // the writer's connection
  sql::StmtCache wstmt_;
  std::unique_ptr<LogSyncer> syncer_;  // Durability::kGroup

  std::mutex pool_mu_;
  std::vector<std::unique_ptr<Reader>> idle_;  // readers not in use
  bool pool_closed_ = false;

  std::mutex watch_mu_;
  uint64_t next_watch_ = 1;
  std::map<uint64_t, Watcher> watchers_;
};

Status SqliteStore::Init() {
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
  return Status::Ok();
}

Status SqliteStore::Close() {
  if (closed_) return Status::Ok();
  closed_ = true;
  {
    std::lock_guard lock(pool_mu_);
    pool_closed_ = true;
  }
  if (syncer_) sqlite3_wal_hook(db_, nullptr, nullptr);
  syncer_.reset();  // syncs what was committed
  wstmt_.Clear();
  {
    std::lock_guard lock(pool_mu_);
    for (auto& r : idle_) {
      r->stmts.Clear();
      sqlite3_close_v2(r->db);
    }
    idle_.clear();
  }
  int rc = sqlite3_close_v2(db_);  // the last connection checkpoints the log into the file
  db_ = nullptr;
  if (rc != SQLITE_OK) return sql::FromCode(rc, nullptr, "close " + path_);
  return Status::Ok();
}

Result<SqliteStore::Borrowed> SqliteStore::BorrowReader() {
  {
    std::lock_guard lock(pool_mu_);
    if (!idle_.empty()) {
      auto r = std::move(idle_.back());
      idle_.pop_back();
      return Borrowed(this, std::move(r));
    }
  }
  auto r = std::make_unique<Reader>();
  const char* vfs = options_.vfs.empty() ? nullptr : options_.vfs.c_str();
  int rc = sqlite3_open_v2(path_.c_str(), &r->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, vfs);
  if (rc != SQLITE_OK) {
    Status s = sql::FromCode(rc, r->db, "open reader");
    sqlite3_close_v2(r->db);
    return s;
  }
  sqlite3_busy_timeout(r->db, 5000);
  r->stmts.set_db(r->db);
  return Borrowed(this, std::move(r));
}

Status SqliteStore::Select(const std::string& text, const std::function<void(sql::Stmt&)>& bind,
                           const std::function<Status(sql::Stmt&)>& row) {
  auto r = BorrowReader();
  if (!r.ok()) return r.status();
  Query q((*r)->stmts, text);
  WEFT_RETURN_IF_ERROR(q.status());
  if (bind) bind(*q);
  Status s;
  while (q->Step(&s)) WEFT_RETURN_IF_ERROR(row(*q));
  return s;
}

void SqliteStore::ReturnReader(std::unique_ptr<Reader> r) {
  std::lock_guard lock(pool_mu_);
  if (!pool_closed_) {
    idle_.push_back(std::move(r));
    return;
  }
  r->stmts.Clear();
  sqlite3_close_v2(r->db);
}

Status SqliteStore::WriteTxn(const std::function<Status()>& body) {
  std::lock_guard w(write_mu_);
  WEFT_RETURN_IF_ERROR(wstmt_.Run("BEGIN IMMEDIATE"));
  Status s = body();
  if (s.ok()) s = wstmt_.Run("COMMIT");
  if (!s.ok()) (void)wstmt_.Run("ROLLBACK");
  return s;
}

void SqliteStore::Notify(const StoredNotice& notice) {
  std::vector<Watcher> targets;
  {
    std::lock_guard lock(watch_mu_);
    for (const auto& [id, w] : watchers_) targets.push_back(w);
  }
  for (const auto& w : targets) w(notice);
}

// ---- Metadata. ----

Result<std::map<std::string, std::string>> SqliteStore::GetMeta(
    const std::vector<std::string>& keys) {
  auto r = BorrowReader();
  if (!r.ok()) return r.status();
  std::map<std::string, std::string> out;
  Query q((*r)->stmts, "SELECT value FROM meta WHERE key = ?");
  WEFT_RETURN_IF_ERROR(q.status());
  for (const std::string& k : keys) {
    q->Reset();
    q->Bind(1, k);
    Status s;
    if (q->Step(&s)) out[k] = std::string(q->Blob(0));
    WEFT_RETURN_IF_ERROR(s);
  }
  return out;
}

Status SqliteStore::WriteMetaEntries(const std::vector<MetaEntry>& entries) {
  Query q(wstmt_, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)");
  WEFT_RETURN_IF_ERROR(q.status());
  for (const MetaEntry& e : entries) {
    q->Reset();
    q->Bind(1, e.key);
    switch (e.type) {
      case MetaType::kText: q->Bind(2, e.value); break;
      case MetaType::kInteger: q->Bind(2, static_cast<int64_t>(std::stoll(e.value))); break;
      case MetaType::kBytes:
      case MetaType::kSecret: q->BindBlob(2, e.value); break;
    }
    WEFT_RETURN_IF_ERROR(q->Run());
  }
  return Status::Ok();
}

Status SqliteStore::ProtectFiles() {
  // The file holds a secret from now on: readable by its owner only (SQLite gives its -wal and
  // -shm files the database file's permissions). Only files of the default VFS are files.
  if (!options_.vfs.empty()) return Status::Ok();
  std::error_code ec;
  std::filesystem::permissions(
      path_, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
      std::filesystem::perm_options::replace, ec);
  if (ec) return Status::IOError("cannot make " + path_ + " owner-only: " + ec.message());
  for (const char* suffix : {"-wal", "-shm"}) {
    if (std::filesystem::exists(path_ + suffix, ec)) {
      std::filesystem::permissions(
          path_ + suffix, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
          std::filesystem::perm_options::replace, ec);
    }
  }
  return Status::Ok();
}

Status SqliteStore::PutMeta(const std::vector<MetaEntry>& entries) {
  WEFT_RETURN_IF_ERROR(oplog::CheckMetaEntries(entries));
  if (std::any_of(entries.begin(), entries.end(),
                  [](const MetaEntry& e) { return e.type == MetaType::kSecret; })) {
    WEFT_RETURN_IF_ERROR(ProtectFiles());
  }
  return WriteTxn([&] { return WriteMetaEntries(entries); });
}

Result<bool> SqliteStore::PutMetaIf(const std::vector<std::pair<std::string, std::string>>& expect,
                                    const std::vector<MetaEntry>& put) {
  WEFT_RETURN_IF_ERROR(oplog::CheckMetaEntries(put));
  bool match = true;
  Status s = WriteTxn([&]() -> Status {
    Query q(wstmt_, "SELECT value FROM meta WHERE key = ?");
    WEFT_RETURN_IF_ERROR(q.status());
    for (const auto& [key, value] : expect) {
      q->Reset();
      q->Bind(1, key);
      Status st;
      bool found = q->Step(&st);
      WEFT_RETURN_IF_ERROR(st);
      if (!found || q->Blob(0) != value) {
        match = false;
        return Status::Ok();
      }
    }
    q->Reset();
    return WriteMetaEntries(put);
  });
  if (!s.ok()) return s;
  return match;
}

// ---- Documents. ----

Result<std::vector<std::string>> SqliteStore::ListDocuments() {
  std::vector<std::string> out;
  WEFT_RETURN_IF_ERROR(Select("SELECT id FROM documents ORDER BY id", nullptr, [&](sql::Stmt& q) {
    out.push_back(q.Text(0));
    return Status::Ok();
  }));
  return out;
}

Result<bool> SqliteStore::HasDocument(std::string_view doc) {
  bool found = false;
  WEFT_RETURN_IF_ERROR(Select(
      "SELECT 1 FROM documents WHERE id = ?", [&](sql::Stmt& q) { q.Bind(1, doc); },
      [&](sql::Stmt&) {
        found = true;
        return Status::Ok();
      }));
  return found;
}

Status SqliteStore::CreateDocument(std::string_view doc, int64_t created_ms) {
  std::lock_guard w(write_mu_);
  Query q(wstmt_, "INSERT OR IGNORE INTO documents(id, created_ms) VALUES(?, ?)");
  WEFT_RETURN_IF_ERROR(q.status());
  return q->Bind(1, doc).Bind(2, created_ms).Run();
}

Status SqliteStore::DeleteDocument(std::string_view doc) {
  return WriteTxn([&]() -> Status {
    {
      Query q(wstmt_, "SELECT 1 FROM documents WHERE id = ?");
      WEFT_RETURN_IF_ERROR(q.status());
      q->Bind(1, doc);
      Status s;
      bool found = q->Step(&s);
      WEFT_RETURN_IF_ERROR(s);
      if (!found) return Status::NotFound("no document \"" + std::string(doc) + "\"");
    }
    for (const char* text :
         {"DELETE FROM changes WHERE doc = ?", "DELETE FROM segments WHERE doc = ?",
          "DELETE FROM snapshots WHERE doc = ?", "DELETE FROM document_bases WHERE doc = ?",
          "DELETE FROM equivocations WHERE doc = ?", "DELETE FROM sealed_snapshots WHERE doc = ?",
          "DELETE FROM documents WHERE id = ?"}) {
      Query q(wstmt_, text);
      WEFT_RETURN_IF_ERROR(q.status());
      WEFT_RETURN_IF_ERROR(q->Bind(1, doc).Run());
    }
    return Status::Ok();
  });
}

// ---- The op log. ----

Result<AppendResult> SqliteStore::AppendChanges(std::string_view doc, int64_t now_ms,
                                                const std::vector<NewChange>& changes) {
  AppendResult out;
  Status s = WriteTxn([&]() -> Status {
    {
      Query q(wstmt_, "INSERT OR IGNORE INTO documents(id, created_ms) VALUES(?, ?)");
      WEFT_RETURN_IF_ERROR(q.status());
      WEFT_RETURN_IF_ERROR(q->Bind(1, doc).Bind(2, now_ms).Run());
    }
    // The seq: one more than both the highest row and the highest seq compaction deleted, so
    // that no seq is reused (AUTOINCREMENT would cost a write of sqlite_sequence per commit).
    Query q(
        wstmt_,
        "INSERT OR IGNORE INTO changes(seq, doc, author, start_seq, end_seq, crc, data) "
        "VALUES(MAX(COALESCE((SELECT MAX(seq) FROM changes), 0), "
        "COALESCE((SELECT value FROM meta WHERE key = 'log_floor'), 0)) + 1, ?, ?, ?, ?, ?, ?)");
    WEFT_RETURN_IF_ERROR(q.status());
    for (const NewChange& c : changes) {
      q->Reset();
      WEFT_RETURN_IF_ERROR(q->Bind(1, doc)
                               .Bind(2, AsInt(c.author))
                               .Bind(3, Bound(c.start_seq))
                               .Bind(4, Bound(c.end_seq))
                               .Bind(5, static_cast<int64_t>(crdt::Crc32c(c.data)))
                               .BindBlob(6, c.data)
                               .Run());
      if (sqlite3_changes(db_) != 1) continue;  // held already
      const uint64_t seq = U(sqlite3_last_insert_rowid(db_));
      if (out.stored++ == 0) out.first_seq = seq;
      out.last_seq = seq;
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;
  // kGroup: the commit to wait on; with nothing new stored, the latest (what the batch
  // duplicated may have been stored by a commit not yet durable).
  if (syncer_) out.commit = out.stored > 0 ? syncer_->Committed() : syncer_->Latest();
  if (out.stored > 0) Notify({std::string(doc), out.first_seq, out.last_seq, false});
  return out;
}

Status SqliteStore::ReadLog(std::string_view doc, const LogRead& read) {
  auto r = BorrowReader();
  if (!r.ok()) return r.status();
  // One read transaction for the base, segments and rows, so that a compaction or an import
  // committing in between cannot move changes out of sight.
  WEFT_RETURN_IF_ERROR((*r)->stmts.Run("BEGIN"));
  EndRead end{(*r)->stmts};
  return ReadLogOn((*r)->stmts, doc, read);
}

Result<std::optional<FoundRow>> SqliteStore::FindRow(std::string_view doc, NodeId author,
                                                     uint64_t seq) {
  auto r = BorrowReader();
  if (!r.ok()) return r.status();
  Query q((*r)->stmts,
          "SELECT seq, author, start_seq, end_seq, crc, data FROM changes WHERE doc = ? AND "
          "author = ? AND start_seq <= ? ORDER BY start_seq DESC LIMIT 1");
  WEFT_RETURN_IF_ERROR(q.status());
  q->Bind(1, doc).Bind(2, AsInt(author)).Bind(3, Bound(seq));
  Status s;
  if (!q->Step(&s)) {
    WEFT_RETURN_IF_ERROR(s);
    return std::optional<FoundRow>();
  }
  FoundRow f;
  f.info = {U(q->Int(0)), NodeId{U(q->Int(1))}, U(q->Int(2)), U(q->Int(3))};
  f.data = std::string(q->Blob(5));
  WEFT_RETURN_IF_ERROR(oplog::CheckRow(doc, f.info.seq, static_cast<uint32_t>(q->Int(4)), f.data));
  return std::optional<FoundRow>(std::move(f));
}

Result<uint64_t> SqliteStore::LastSeq(std::string_view doc) {
  uint64_t out = 0;
  WEFT_RETURN_IF_ERROR(Select(
      "SELECT MAX(COALESCE((SELECT MAX(seq) FROM changes WHERE doc = ?1), 0), "
      "COALESCE((SELECT MAX(last_seq) FROM segments WHERE doc = ?1), 0))",
      [&](sql::Stmt& q) { q.Bind(1, doc); },
      [&](sql::Stmt& q) {
        out = U(q.Int(0));
        return Status::Ok();
      }));
  return out;
}

Result<std::vector<std::string>> SqliteStore::ReadSegments(std::string_view doc,
                                                           const std::vector<uint64_t>& ids) {
  auto r = BorrowReader();
  if (!r.ok()) return r.status();
  WEFT_RETURN_IF_ERROR((*r)->stmts.Run("BEGIN"));
  EndRead end{(*r)->stmts};
  return ReadSegmentsOn((*r)->stmts, doc, ids);
}

// ---- Snapshots. ----

Result<std::optional<StoredSnapshot>> SqliteStore::GetSnapshot(std::string_view doc) {
  std::optional<StoredSnapshot> out;
  WEFT_RETURN_IF_ERROR(Select(
      "SELECT upto, data FROM snapshots WHERE doc = ?", [&](sql::Stmt& q) { q.Bind(1, doc); },
      [&](sql::Stmt& q) {
        out = StoredSnapshot{U(q.Int(0)), std::string(q.Blob(1))};
        return Status::Ok();
      }));
  return out;
}

Status SqliteStore::WriteSnapshot(std::string_view doc, uint64_t upto, std::string_view data,
                                  const Compaction& compaction) {
  return WriteTxn([&]() -> Status {
    Query q(wstmt_, "INSERT OR REPLACE INTO snapshots(doc, upto, data) VALUES(?, ?, ?)");
    WEFT_RETURN_IF_ERROR(q.status());
    WEFT_RETURN_IF_ERROR(q->Bind(1, doc).Bind(2, Bound(upto)).BindBlob(3, data).Run());
    return ApplyCompactionOn(wstmt_, doc, compaction);
  });
}

Status SqliteStore::CompactSnapshotted() {
  std::vector<std::pair<std::string, uint64_t>> snapshots;
  {
    Query q(wstmt_, "SELECT doc, upto FROM snapshots ORDER BY doc");
    WEFT_RETURN_IF_ERROR(q.status());
    Status s;
    while (q->Step(&s)) snapshots.emplace_back(q->Text(0), U(q->Int(1)));
    WEFT_RETURN_IF_ERROR(s);
  }
  for (const auto& snapshot : snapshots) {
    // Named, not structured bindings: the lambdas below capture them.
    const auto& doc = snapshot.first;
    const auto upto = snapshot.second;
    WEFT_RETURN_IF_ERROR(sql::Exec(db_, "SAVEPOINT fold"));
    auto plan = oplog::PlanCompaction(
        doc, upto, [&](const LogRead& read) { return ReadLogOn(wstmt_, doc, read); },
        [&](const std::vector<uint64_t>& ids) { return ReadSegmentsOn(wstmt_, doc, ids); });
    Status c = plan.ok() ? ApplyCompactionOn(wstmt_, doc, *plan) : plan.status();
    if (!c.ok()) WEFT_RETURN_IF_ERROR(sql::Exec(db_, "ROLLBACK TO fold"));
    WEFT_RETURN_IF_ERROR(sql::Exec(db_, "RELEASE fold"));
    if (!c.ok() && c.code() != StatusCode::kCorruption) return c;
  }
  return Status::Ok();
}

// ---- Bases and sealed snapshots. ----

Result<std::optional<BaseSnapshot>> SqliteStore::GetBase(std::string_view doc, bool with_data) {
  std::optional<BaseSnapshot> out;
  WEFT_RETURN_IF_ERROR(Select(
      with_data ? "SELECT version, data FROM document_bases WHERE doc = ?"
                : "SELECT version FROM document_bases WHERE doc = ?",
      [&](sql::Stmt& q) { q.Bind(1, doc); },
      [&](sql::Stmt& q) -> Status {
        auto v = oplog::DecodeVersion(q.Text(0), "document_bases");
        if (!v.ok()) return v.status();
        out.emplace();
        out->version = std::move(*v);
        if (with_data) out->data = std::string(q.Blob(1));
        return Status::Ok();
      }));
  return out;
}

Result<uint64_t> SqliteStore::ImportBase(std::string_view doc, int64_t now_ms,
                                         const VersionVector& version, std::string_view data,
                                         const std::string* seal) {
  const std::string token = oplog::EncodeVersion(version);
  Status s = WriteTxn([&]() -> Status {
    {
      Query q(wstmt_, "INSERT OR IGNORE INTO documents(id, created_ms) VALUES(?, ?)");
      WEFT_RETURN_IF_ERROR(q.status());
      WEFT_RETURN_IF_ERROR(q->Bind(1, doc).Bind(2, now_ms).Run());
    }
    {
      Query q(wstmt_, "INSERT OR REPLACE INTO document_bases(doc, version, data) VALUES(?, ?, ?)");
      WEFT_RETURN_IF_ERROR(q.status());
      WEFT_RETURN_IF_ERROR(q->Bind(1, doc).Bind(2, token).BindBlob(3, data).Run());
    }
    if (seal) {
      // Kept to serve others: they check it the same way.
      Query q(wstmt_,
              "INSERT OR REPLACE INTO sealed_snapshots(doc, version, seal, data) "
              "VALUES(?, ?, ?, ?)");
      WEFT_RETURN_IF_ERROR(q.status());
      WEFT_RETURN_IF_ERROR(
          q->Bind(1, doc).Bind(2, token).BindBlob(3, *seal).BindBlob(4, data).Run());
    }
    // An older snapshot would hide the base on the next load; the log rows already held stay
    // (the base includes them: replaying them is a no-op).
    Query q(wstmt_, "DELETE FROM snapshots WHERE doc = ?");
    WEFT_RETURN_IF_ERROR(q.status());
    return q->Bind(1, doc).Run();
  });
  if (!s.ok()) return s;
  const uint64_t commit = syncer_ ? syncer_->Committed() : 0;
  Notify({std::string(doc), 0, 0, true});
  return commit;
}

Status SqliteStore::PutSealedSnapshot(std::string_view doc, const VersionVector& version,
                                      std::string_view seal, std::string_view data) {
  std::lock_guard w(write_mu_);
  Query q(wstmt_,
          "INSERT OR REPLACE INTO sealed_snapshots(doc, version, seal, data) VALUES(?, ?, ?, ?)");
  WEFT_RETURN_IF_ERROR(q.status());
  return q->Bind(1, doc)
      .Bind(2, oplog::EncodeVersion(version))
      .BindBlob(3, seal)
      .BindBlob(4, data)
      .Run();
}

Result<std::optional<SealedSnapshotRecord>> SqliteStore::GetSealedSnapshot(std::string_view doc) {
  std::optional<SealedSnapshotRecord> out;
  WEFT_RETURN_IF_ERROR(Select(
      "SELECT version, seal, data FROM sealed_snapshots WHERE doc = ?",
      [&](sql::Stmt& q) { q.Bind(1, doc); },
      [&](sql::Stmt& q) -> Status {
        auto v = oplog::DecodeVersion(q.Text(0), "sealed_snapshots");
        if (!v.ok()) return v.status();
        out = SealedSnapshotRecord{std::move(*v), std::string(q.Blob(1)), std::string(q.Blob(2))};
        return Status::Ok();
      }));
  return out;
}

// ---- Equivocations and peers. ----

Status SqliteStore::RecordEquivocation(const EquivocationRecord& e) {
  std::lock_guard w(write_mu_);
  Query q(wstmt_,
          "INSERT OR IGNORE INTO equivocations(doc, author, seq, held, other, detected_ms) "
          "VALUES(?, ?, ?, ?, ?, ?)");
  WEFT_RETURN_IF_ERROR(q.status());
  return q->Bind(1, e.doc)
      .Bind(2, AsInt(e.author))
      .Bind(3, Bound(e.seq))
      .BindBlob(4, e.held)
      .BindBlob(5, e.other)
      .Bind(6, e.detected_ms)
      .Run();
}

Result<std::vector<EquivocationRecord>> SqliteStore::Equivocations(
    std::optional<std::string_view> doc) {
  std::vector<EquivocationRecord> out;
  WEFT_RETURN_IF_ERROR(Select(
      doc ? "SELECT doc, author, seq, held, other, detected_ms FROM equivocations WHERE "
            "doc = ? ORDER BY doc, author"
          : "SELECT doc, author, seq, held, other, detected_ms FROM equivocations ORDER BY "
            "doc, author",
      [&](sql::Stmt& q) {
        if (doc) q.Bind(1, *doc);
      },
      [&](sql::Stmt& q) {
        out.push_back({q.Text(0), NodeId{U(q.Int(1))}, U(q.Int(2)), std::string(q.Blob(3)),
                       std::string(q.Blob(4)), q.Int(5)});
        return Status::Ok();
      }));
  return out;
}

Status SqliteStore::SetPeerVersion(std::string_view peer, std::string_view doc,
                                   const VersionVector& version, int64_t now_ms) {
  std::lock_guard w(write_mu_);
  Query q(wstmt_,
          "INSERT OR REPLACE INTO peer_versions(peer, doc, version, updated_ms) VALUES(?,?,?,?)");
  WEFT_RETURN_IF_ERROR(q.status());
  return q->Bind(1, peer).Bind(2, doc).Bind(3, oplog::EncodeVersion(version)).Bind(4, now_ms).Run();
}

Result<std::vector<std::pair<std::string, VersionVector>>> SqliteStore::PeerVersions(
    std::string_view peer) {
  std::vector<std::pair<std::string, VersionVector>> out;
  WEFT_RETURN_IF_ERROR(Select(
      "SELECT doc, version FROM peer_versions WHERE peer = ? ORDER BY doc",
      [&](sql::Stmt& q) { q.Bind(1, peer); },
      [&](sql::Stmt& q) -> Status {
        auto v = oplog::DecodeVersion(q.Text(1), "peer_versions");
        if (!v.ok()) return v.status();
        out.emplace_back(q.Text(0), std::move(*v));
        return Status::Ok();
      }));
  return out;
}

void SqliteStore::ReclaimSpace() {
  std::lock_guard w(write_mu_);
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

}  // namespace

Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path,
                                               const SqliteStoreOptions& options) {
  auto s = std::make_unique<SqliteStore>(path, options);
  WEFT_RETURN_IF_ERROR(s->Init());
  return std::unique_ptr<Store>(std::move(s));
}

}  // namespace weft::store
