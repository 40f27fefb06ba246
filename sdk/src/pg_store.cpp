// PgStore (pg_store.h): the schema, its migrations, and every SQL statement of a relay on
// PostgreSQL. Every statement is prepared (per connection, on first use) and takes its values as
// parameters; results come back in binary form (integers big-endian, bytes as they are).
#include "pg_store.h"

#include <libpq-fe.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <limits>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "op_log.h"
#include "weft/crdt/history.h"
#include "weft/crdt/utf.h"

namespace weft::store {
namespace {

constexpr int kSchemaVersion = 1;
constexpr const char* kChannel = "weft_store";
// NOTIFY payloads must stay under 8000 bytes: one document's entry (its ID, two seqs and the
// ID's length) fits well below this; a batch's entries are split over as many NOTIFYs as needed.
constexpr size_t kMaxDocBytes = 7900;
constexpr size_t kMaxPayloadBytes = 7999;
// A batch of appends (group commit, see AppendChanges) takes queued calls up to these totals (a
// call larger on its own is a batch of its own).
constexpr size_t kMaxBatchChanges = 256;
constexpr size_t kMaxBatchBytes = 4u << 20;
// Element type OIDs of the binary arrays sent as parameters (pg_type.h).
constexpr uint32_t kInt8Oid = 20;
constexpr uint32_t kByteaOid = 17;
constexpr uint32_t kTextOid = 25;

// kMigrations[i] takes a database from schema version i to i + 1, in one transaction, under an
// advisory lock (relays starting together migrate once). Version 0 is an empty database.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE weft_schema(version BIGINT NOT NULL);  -- one row: the schema version
INSERT INTO weft_schema(version) VALUES(0);
CREATE TABLE weft_meta(
  relay TEXT NOT NULL,              -- PgStoreOptions::name: each relay's own metadata
  key TEXT NOT NULL,
  value BYTEA NOT NULL,
  PRIMARY KEY(relay, key)
);
CREATE TABLE weft_documents(
  id TEXT PRIMARY KEY,
  created_ms BIGINT NOT NULL,
  last_seq BIGINT NOT NULL          -- the last log seq handed out; appends lock this row
);
CREATE TABLE weft_seq_floors(       -- a deleted document's last seq: a new one starts above it
  doc TEXT PRIMARY KEY,
  floor BIGINT NOT NULL
);
CREATE TABLE weft_changes(
  doc TEXT NOT NULL,
  seq BIGINT NOT NULL,              -- the document's log order (its commit order)
  author BIGINT NOT NULL,           -- node id, as a signed 64-bit integer
  start_seq BIGINT NOT NULL,
  end_seq BIGINT NOT NULL,
  crc BIGINT NOT NULL,              -- crdt::Crc32c(data)
  data BYTEA NOT NULL,              -- crdt::EncodeChange
  PRIMARY KEY(doc, seq),
  UNIQUE(doc, author, start_seq)    -- appends are idempotent
);
CREATE TABLE weft_segments(
  id BIGSERIAL PRIMARY KEY,
  doc TEXT NOT NULL,
  first_seq BIGINT NOT NULL,
  last_seq BIGINT NOT NULL,
  changes BIGINT NOT NULL,
  ops BIGINT NOT NULL,
  heads BYTEA NOT NULL,             -- oplog::EncodeHeads
  data BYTEA NOT NULL               -- crdt::EncodeSegment (checksummed)
);
CREATE INDEX weft_segments_by_doc ON weft_segments(doc, last_seq);
CREATE TABLE weft_snapshots(
  doc TEXT PRIMARY KEY,
  upto BIGINT NOT NULL,
  data BYTEA NOT NULL
);
CREATE TABLE weft_bases(
  doc TEXT PRIMARY KEY,
  version TEXT NOT NULL,            -- oplog::EncodeVersion
  data BYTEA NOT NULL
);
CREATE TABLE weft_sealed_snapshots(
  doc TEXT PRIMARY KEY,
  version TEXT NOT NULL,
  seal BYTEA NOT NULL,
  data BYTEA NOT NULL
);
CREATE TABLE weft_equivocations(
  doc TEXT NOT NULL,
  author BIGINT NOT NULL,
  seq BIGINT NOT NULL,
  held BYTEA NOT NULL,
  other BYTEA NOT NULL,
  detected_ms BIGINT NOT NULL,
  PRIMARY KEY(doc, author)
);
CREATE TABLE weft_peer_versions(
  relay TEXT NOT NULL,              -- each relay's own peers
  peer TEXT NOT NULL,
  doc TEXT NOT NULL,
  version TEXT NOT NULL,
  updated_ms BIGINT NOT NULL,
  PRIMARY KEY(relay, peer, doc)
);
)sql",
};

// Seeds of hashtextextended for advisory lock keys, one per kind of lock.
constexpr int64_t kMigrationLock = 0x77656674;  // "weft"
constexpr const char* kDocLockSeed = "1";
constexpr const char* kMetaLockSeed = "2";
constexpr const char* kNameLockSeed = "3";

int64_t Bound(uint64_t v) {
  return static_cast<int64_t>(std::min<uint64_t>(v, std::numeric_limits<int64_t>::max()));
}
int64_t AsInt(NodeId n) {
  return static_cast<int64_t>(n.value);
}

struct ResultFree {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, ResultFree>;

// Statement parameters: integers as text, strings and bytes in binary form (length-delimited,
// so that bytes pass unchanged and a NUL in a text value is refused by the server, not cut).
class Params {
 public:
  Params& Str(std::string_view s) {
    values_.push_back(s.empty() ? "" : s.data());
    lengths_.push_back(static_cast<int>(s.size()));
    formats_.push_back(1);
    return *this;
  }
  Params& Int(int64_t v) {
    owned_.push_back(std::to_string(v));
    values_.push_back(owned_.back().c_str());
    lengths_.push_back(0);
    formats_.push_back(0);
    return *this;
  }
  // Bytes in binary form, kept by the Params (a binary array, ArrayParam).
  Params& Owned(std::string v) {
    owned_.push_back(std::move(v));
    values_.push_back(owned_.back().data());
    lengths_.push_back(static_cast<int>(owned_.back().size()));
    formats_.push_back(1);
    return *this;
  }
  int size() const { return static_cast<int>(values_.size()); }
  const char* const* values() const { return values_.data(); }
  const int* lengths() const { return lengths_.data(); }
  const int* formats() const { return formats_.data(); }

 private:
  std::deque<std::string> owned_;  // stable addresses
  std::vector<const char*> values_;
  std::vector<int> lengths_, formats_;
};

// A one-dimensional array parameter in PostgreSQL's binary form (array_recv): a header, then
// each element as a 32-bit length and its bytes. A multi-row statement takes its rows as arrays
// (unnest), so that a batch costs a few round trips per document, not one per change.
class ArrayParam {
 public:
  explicit ArrayParam(uint32_t element_oid) : oid_(element_oid) {}
  void AddInt(int64_t v) {
    Put32(body_, 8);
    for (int i = 7; i >= 0; --i)
      body_.push_back(static_cast<char>((static_cast<uint64_t>(v) >> (8 * i)) & 0xff));
    ++n_;
  }
  void AddBytes(std::string_view b) {
    Put32(body_, static_cast<uint32_t>(b.size()));
    body_.append(b);
    ++n_;
  }
  std::string Encode() const {
    std::string out;
    Put32(out, 1);  // dimensions
    Put32(out, 0);  // no NULLs
    Put32(out, oid_);
    Put32(out, n_);
    Put32(out, 1);  // lower bound
    out.append(body_);
    return out;
  }

 private:
  static void Put32(std::string& s, uint32_t v) {
    for (int i = 3; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  uint32_t oid_;
  uint32_t n_ = 0;
  std::string body_;
};

// A binary-format result's values.
int64_t GetInt(const PGresult* r, int row, int col) {
  const auto* p = reinterpret_cast<const unsigned char*>(PQgetvalue(r, row, col));
  const int n = PQgetlength(r, row, col);
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  if (n == 4) return static_cast<int32_t>(static_cast<uint32_t>(v));
  return static_cast<int64_t>(v);
}
uint64_t GetU(const PGresult* r, int row, int col) {
  return static_cast<uint64_t>(GetInt(r, row, col));
}
std::string_view GetStr(const PGresult* r, int row, int col) {
  return {PQgetvalue(r, row, col), static_cast<size_t>(PQgetlength(r, row, col))};
}

// One connection, with the statements prepared on it so far.
struct Conn {
  PGconn* pg = nullptr;
  std::set<std::string> prepared;
  bool broken = false;  // lost: closed rather than pooled
  ~Conn() {
    if (pg) PQfinish(pg);
  }
};

// A status for a failed command on `c`: kIOError (the connection marked lost) when the server is
// gone, kBusy for a serialization failure or deadlock, kInvalidArgument for data the server
// refuses as such, kIOError otherwise.
Status FromResult(Conn& c, const PGresult* r, std::string_view what) {
  std::string msg = r ? PQresultErrorMessage(r) : PQerrorMessage(c.pg);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  msg = "postgres: " + std::string(what) + ": " + msg;
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  const std::string code = state ? state : "";
  if (PQstatus(c.pg) == CONNECTION_BAD || code.rfind("08", 0) == 0 || code.rfind("57P", 0) == 0) {
    c.broken = true;
    return Status::IOError(msg);
  }
  if (code == "40001" || code == "40P01" || code == "55P03") return Status(StatusCode::kBusy, msg);
  // Class 22 (data exception) and 54 (program limit exceeded: e.g. a key too large to index).
  if (code.rfind("22", 0) == 0 || code.rfind("54", 0) == 0) return Status::InvalidArgument(msg);
  return Status::IOError(msg);
}

// Runs a command without parameters (BEGIN, COMMIT, ...).
Status Exec(Conn& c, const char* sql) {
  PgResult r(PQexec(c.pg, sql));
  const auto st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return FromResult(c, r.get(), sql);
  return Status::Ok();
}

// Runs a prepared statement (prepared on first use on this connection); binary results.
Result<PgResult> Run(Conn& c, const std::string& sql, const Params& p) {
  const std::string name = "w" + std::to_string(std::hash<std::string>{}(sql));
  if (c.prepared.count(name) == 0) {
    PgResult r(PQprepare(c.pg, name.c_str(), sql.c_str(), p.size(), nullptr));
    if (!r || PQresultStatus(r.get()) != PGRES_COMMAND_OK) return FromResult(c, r.get(), sql);
    c.prepared.insert(name);
  }
  PgResult r(PQexecPrepared(c.pg, name.c_str(), p.size(), p.values(), p.lengths(), p.formats(), 1));
  const auto st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return FromResult(c, r.get(), sql);
  return r;
}

// Rows a command changed.
uint64_t Changed(const PGresult* r) {
  const char* n = PQcmdTuples(const_cast<PGresult*>(r));
  return n && *n ? std::stoull(n) : 0;
}

Status Aborted(std::string_view doc) {
  return Status::Aborted("op log of \"" + std::string(doc) +
                         "\" changed during its compaction (a segment it merges is gone)");
}

// Notices as sent on the channel. A payload is "w2" followed by one entry per document,
// " <kind> <first> <last> <length> <doc>" (kind a: an append, b: a base import; the document ID
// exactly <length> bytes). A payload of the previous form, "<kind> <first> <last> <doc>" (one
// document; relays of an older build on the same database), is read too.
std::string EncodeNoticeEntry(const StoredNotice& n) {
  return std::string(n.base ? " b " : " a ") + std::to_string(n.first_seq) + " " +
         std::to_string(n.last_seq) + " " + std::to_string(n.doc.size()) + " " + n.doc;
}
constexpr std::string_view kPayloadHeader = "w2";

// The payloads for `notices`, each under PostgreSQL's limit: as few as fit them all.
std::vector<std::string> EncodeNotices(const std::vector<StoredNotice>& notices) {
  std::vector<std::string> out;
  for (const StoredNotice& n : notices) {
    std::string e = EncodeNoticeEntry(n);
    if (out.empty() || out.back().size() + e.size() > kMaxPayloadBytes) {
      out.emplace_back(kPayloadHeader);
    }
    out.back() += e;
  }
  return out;
}

// A decimal number ending at a space (taken too); false when there is none.
bool TakeNumber(std::string_view& p, uint64_t& v) {
  const size_t sp = p.find(' ');
  if (sp == std::string_view::npos || sp == 0 || sp > 20) return false;
  v = 0;
  for (char ch : p.substr(0, sp)) {
    if (ch < '0' || ch > '9') return false;
    v = v * 10 + static_cast<uint64_t>(ch - '0');
  }
  p.remove_prefix(sp + 1);
  return true;
}

// The notices in a payload, one per document (none when it is not one of ours).
std::vector<StoredNotice> DecodeNotices(std::string_view p) {
  std::vector<StoredNotice> out;
  const bool v2 = p.substr(0, kPayloadHeader.size()) == kPayloadHeader;
  if (v2) p.remove_prefix(kPayloadHeader.size());
  while (!p.empty()) {
    StoredNotice n;
    if (v2) {
      if (p[0] != ' ') return {};
      p.remove_prefix(1);
    }
    if (p.size() < 2 || (p[0] != 'a' && p[0] != 'b') || p[1] != ' ') return {};
    n.base = p[0] == 'b';
    p.remove_prefix(2);
    if (!TakeNumber(p, n.first_seq) || !TakeNumber(p, n.last_seq)) return {};
    if (!v2) {
      n.doc = std::string(p);
      out.push_back(std::move(n));
      return out;
    }
    uint64_t len = 0;
    if (!TakeNumber(p, len) || len > p.size()) return {};
    n.doc = std::string(p.substr(0, len));
    p.remove_prefix(len);
    out.push_back(std::move(n));
  }
  return out;
}

// A document ID the store can keep: text (UTF-8, no NUL byte, as PostgreSQL's text type wants)
// short enough for a notice. Checked before a write is tried, so that a bad ID never joins a
// batch of appends.
Status CheckDoc(std::string_view doc) {
  if (doc.size() > kMaxDocBytes) {
    return Status::InvalidArgument("document ID too long for the PostgreSQL store (" +
                                   std::to_string(doc.size()) + " bytes; at most " +
                                   std::to_string(kMaxDocBytes) + ")");
  }
  if (doc.find('\0') != std::string_view::npos || !crdt::ValidateUtf8(doc).ok()) {
    return Status::InvalidArgument("a document ID in the PostgreSQL store is UTF-8 without NUL");
  }
  return Status::Ok();
}

class PgStore final : public Store {
 public:
  PgStore(std::string conninfo, PgStoreOptions options)
      : conninfo_(std::move(conninfo)), options_(std::move(options)) {}
  ~PgStore() override { (void)Close(); }

  Status Init();

  NodeId node_id() const override { return node_; }
  bool Shared() const override { return true; }
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
  Status ReadTails(std::vector<LogTail>* tails) override;
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

  // Every commit is synchronous: durable on return.
  void WhenDurable(uint64_t, std::function<void(Status)> fn) override { fn(Status::Ok()); }
  Status WaitDurable(uint64_t) override { return Status::Ok(); }
  uint64_t LatestCommit() override { return 0; }
  // commits: appends committed; syncs: the transactions that committed them (fewer under
  // contention: group commit); failures: batch transactions that failed.
  SyncStats GetSyncStats() override {
    return {appends_committed_.load(), batches_committed_.load(), batches_failed_.load(), 0};
  }

  uint64_t Watch(Watcher watcher) override {
    std::lock_guard lock(watch_mu_);
    watchers_.emplace(next_watch_, std::move(watcher));
    return next_watch_++;
  }
  void Unwatch(uint64_t id) override {
    // Waits for a delivery from the listening thread in progress (unless called from it).
    std::unique_lock deliver(deliver_mu_, std::defer_lock);
    if (std::this_thread::get_id() != listener_id_) deliver.lock();
    std::lock_guard lock(watch_mu_);
    watchers_.erase(id);
  }

  void ReclaimSpace() override {}  // autovacuum's work
  Status Close() override;

 private:
  using ConnPtr = std::unique_ptr<Conn>;
  Result<ConnPtr> Connect();
  Result<ConnPtr> Borrow();
  void Return(ConnPtr c);
  // Runs `body` on a pooled connection, in a transaction (read-only: REPEATABLE READ, one
  // consistent state), committing when it succeeds and rolling back otherwise. `lost` (when
  // given) says whether a failure was the connection's (lost, or none to be had).
  Status Txn(bool read_only, const std::function<Status(Conn&)>& body, bool* lost = nullptr);
  // Runs `body` on a pooled connection, outside a transaction (one statement: atomic).
  Status OnConn(const std::function<Status(Conn&)>& body);
  Status Migrate(Conn& c);
  Status LoadNodeId(Conn& c);
  Status ReadLogOn(Conn& c, std::string_view doc, const LogRead& read);
  struct PendingAppend;
  // Commits `batch` (group commit, see AppendChanges), setting each call's status and result.
  void CommitBatch(const std::vector<PendingAppend*>& batch);
  // One transaction for `batch`: OK and the results set, or its error (nothing committed;
  // `lost`: the connection was lost, not a statement refused).
  Status TryBatch(const std::vector<PendingAppend*>& batch, bool& lost);
  void Notify(const StoredNotice& notice);
  void Listen();

  const std::string conninfo_;
  const PgStoreOptions options_;
  const std::string path_;  // none: no file, no actor lease
  NodeId node_;
  bool closed_ = false;

  std::mutex pool_mu_;
  std::vector<ConnPtr> idle_;
  std::set<int> own_pids_;  // backends of this store's connections: their notices are ours

  std::mutex watch_mu_;
  uint64_t next_watch_ = 1;
  std::map<uint64_t, Watcher> watchers_;

  // The listening thread, its connection, and a pipe that wakes it to stop.
  std::thread listener_;
  std::thread::id listener_id_;
  std::mutex deliver_mu_;
  ConnPtr listen_conn_;
  int wake_[2] = {-1, -1};
  std::atomic<bool> stop_{false};

  // Group commit: calls of AppendChanges queue here; one of them at a time (the leader) commits
  // a batch of those queued.
  std::mutex batch_mu_;
  std::condition_variable batch_cv_;
  std::deque<PendingAppend*> queue_;
  bool leading_ = false;
  std::atomic<uint64_t> appends_committed_{0}, batches_committed_{0}, batches_failed_{0};
};

Result<PgStore::ConnPtr> PgStore::Connect() {
  auto c = std::make_unique<Conn>();
  c->pg = PQconnectdb(conninfo_.c_str());
  if (!c->pg || PQstatus(c->pg) != CONNECTION_OK) {
    std::string msg = c->pg ? PQerrorMessage(c->pg) : "out of memory";
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    return Status::IOError("postgres: cannot connect: " + msg);
  }
  PQsetNoticeProcessor(
      c->pg, [](void*, const char*) {}, nullptr);
  // Every commit waits for its WAL to be flushed (the default; a server may set it otherwise).
  WEFT_RETURN_IF_ERROR(Exec(*c, "SET synchronous_commit TO on"));
  return c;
}

Result<PgStore::ConnPtr> PgStore::Borrow() {
  {
    std::lock_guard lock(pool_mu_);
    if (closed_) return Status::IOError("postgres: the store is closed");
    if (!idle_.empty()) {
      ConnPtr c = std::move(idle_.back());
      idle_.pop_back();
      return c;
    }
  }
  auto c = Connect();
  if (!c.ok()) return c.status();
  std::lock_guard lock(pool_mu_);
  own_pids_.insert(PQbackendPID((*c)->pg));
  return std::move(*c);
}

void PgStore::Return(ConnPtr c) {
  const bool usable =
      !c->broken && PQstatus(c->pg) == CONNECTION_OK && PQtransactionStatus(c->pg) == PQTRANS_IDLE;
  std::lock_guard lock(pool_mu_);
  if (usable && !closed_) {
    idle_.push_back(std::move(c));
    return;
  }
  // A lost connection: the idle ones were most likely lost with it (a server restart), and
  // each would fail a call before being dropped. They go now.
  if (c->broken) idle_.clear();
  // A notice of a write it made may still be on its way to the listener: its PID stays
  // counted as ours (a lost connection's PID could only be reused by a later backend).
  c.reset();
}

Status PgStore::Txn(bool read_only, const std::function<Status(Conn&)>& body, bool* lost) {
  if (lost) *lost = true;
  auto c = Borrow();
  if (!c.ok()) return c.status();
  Status s = Exec(**c, read_only ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN");
  if (!s.ok() && (*c)->broken) {
    // A pooled connection lost while idle (the server restarted): nothing was done, so a new
    // connection may try again.
    Return(std::move(*c));
    c = Borrow();
    if (!c.ok()) return c.status();
    s = Exec(**c, read_only ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN");
  }
  Conn& conn = **c;
  if (s.ok()) s = body(conn);
  if (s.ok()) {
    s = Exec(conn, "COMMIT");
  } else if (!conn.broken) {
    (void)Exec(conn, "ROLLBACK");
  }
  if (lost) *lost = conn.broken;
  Return(std::move(*c));
  return s;
}

Status PgStore::OnConn(const std::function<Status(Conn&)>& body) {
  auto c = Borrow();
  if (!c.ok()) return c.status();
  Status s = body(**c);
  Return(std::move(*c));
  return s;
}

Status PgStore::Migrate(Conn& c) {
  // One migration per transaction; the version is read again under the lock each time.
  for (;;) {
    WEFT_RETURN_IF_ERROR(Exec(c, "BEGIN"));
    bool done = false;
    Status s = [&]() -> Status {
      auto lock = Run(c, "SELECT pg_advisory_xact_lock($1::bigint)", Params().Int(kMigrationLock));
      if (!lock.ok()) return lock.status();
      auto exists = Run(c, "SELECT (to_regclass('weft_schema') IS NOT NULL)::int4", Params());
      if (!exists.ok()) return exists.status();
      int64_t version = 0;
      if (GetInt(exists->get(), 0, 0) != 0) {
        auto v = Run(c, "SELECT version FROM weft_schema", Params());
        if (!v.ok()) return v.status();
        if (PQntuples(v->get()) != 1) {
          return Status::Corruption("postgres: weft_schema does not hold one version row");
        }
        version = GetInt(v->get(), 0, 0);
      }
      if (version > kSchemaVersion || version < 0) {
        return Status::UnsupportedVersion("postgres: the database has Weft schema version " +
                                          std::to_string(version) + "; this Weft reads up to " +
                                          std::to_string(kSchemaVersion));
      }
      if (version == kSchemaVersion) {
        done = true;
        return Status::Ok();
      }
      WEFT_RETURN_IF_ERROR(Exec(c, kMigrations[version]));
      return Run(c, "UPDATE weft_schema SET version = $1::bigint", Params().Int(version + 1))
          .status();
    }();
    if (!s.ok()) {
      if (!c.broken) (void)Exec(c, "ROLLBACK");
      return s;
    }
    WEFT_RETURN_IF_ERROR(Exec(c, "COMMIT"));
    if (done) return Status::Ok();
  }
}

Status PgStore::LoadNodeId(Conn& c) {
  std::random_device rd;
  uint64_t id = options_.new_node_id.value;
  while (id == 0) id = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  // Taken when the relay's name is new; kept otherwise.
  auto ins = Run(c,
                 "INSERT INTO weft_meta(relay, key, value) VALUES($1::text, 'node_id', $2::bytea) "
                 "ON CONFLICT (relay, key) DO NOTHING",
                 Params().Str(options_.name).Str(NodeId{id}.ToHex()));
  if (!ins.ok()) return ins.status();
  auto q = Run(c, "SELECT value FROM weft_meta WHERE relay = $1::text AND key = 'node_id'",
               Params().Str(options_.name));
  if (!q.ok()) return q.status();
  if (PQntuples(q->get()) != 1) return Status::Corruption("postgres: no node_id in weft_meta");
  auto n = NodeId::FromHex(std::string(GetStr(q->get(), 0, 0)));
  if (!n || !n->valid()) {
    return Status::Corruption("postgres: bad node_id in weft_meta for relay \"" + options_.name +
                              "\"");
  }
  node_ = *n;
  return Status::Ok();
}

// Takes the relay name's lock on `c` (a session lock, held while the connection lives): false
// when another open store holds it.
Result<bool> LockName(Conn& c, const std::string& name) {
  auto q = Run(c,
               std::string("SELECT pg_try_advisory_lock(hashtextextended($1::text, ") +
                   kNameLockSeed + "))::int4",
               Params().Str(name));
  if (!q.ok()) return q.status();
  return GetInt(q->get(), 0, 0) != 0;
}

Status PgStore::Init() {
  if (options_.name.empty()) return Status::InvalidArgument("a PgStore needs a relay name");
  // One open store per relay name: its lock is held by the listening connection (which LISTENs
  // before Open returns, so that a write another store makes after it is heard).
  auto l = Connect();
  if (!l.ok()) return l.status();
  // A store of this name that just died (a relay killed and restarted) may hold the lock until
  // the server notices: wait a little before refusing.
  auto locked = LockName(**l, options_.name);
  for (int i = 0; i < 30 && locked.ok() && !*locked; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    locked = LockName(**l, options_.name);
  }
  if (!locked.ok()) return locked.status();
  if (!*locked) {
    return Status(StatusCode::kBusy, "postgres: the relay name \"" + options_.name +
                                         "\" is in use by another open store");
  }
  if (options_.listen) WEFT_RETURN_IF_ERROR(Exec(**l, "LISTEN weft_store"));
  listen_conn_ = std::move(*l);
  auto c = Borrow();
  if (!c.ok()) return c.status();
  Status s = Migrate(**c);
  if (s.ok()) s = LoadNodeId(**c);
  Return(std::move(*c));
  WEFT_RETURN_IF_ERROR(s);
  if (!options_.listen) return Status::Ok();
  if (pipe(wake_) != 0) return Status::IOError("postgres: cannot make the listener's pipe");
  listener_ = std::thread([this] { Listen(); });
  listener_id_ = listener_.get_id();
  return Status::Ok();
}

void PgStore::Listen() {
  while (!stop_.load()) {
    if (!listen_conn_) {
      auto l = Connect();
      if (l.ok() && Exec(**l, "LISTEN weft_store").ok()) {
        // The name's lock went with the lost connection: take it again (best effort; should
        // another store of this name have opened meanwhile, both now run).
        (void)LockName(**l, options_.name);
        listen_conn_ = std::move(*l);
        // What others stored while the listener was away was not heard of: read it all again.
        StoredNotice missed;
        missed.foreign = true;
        std::lock_guard deliver(deliver_mu_);
        Notify(missed);
      } else {
        // Try again in a while (or stop).
        pollfd w{wake_[0], POLLIN, 0};
        (void)poll(&w, 1, 500);
        continue;
      }
    }
    pollfd fds[2] = {{PQsocket(listen_conn_->pg), POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (poll(fds, 2, 1000) < 0) continue;
    if (stop_.load()) break;
    if (!PQconsumeInput(listen_conn_->pg) || PQstatus(listen_conn_->pg) != CONNECTION_OK) {
      listen_conn_.reset();  // lost: connect again
      continue;
    }
    while (PGnotify* n = PQnotifies(listen_conn_->pg)) {
      bool own;
      {
        std::lock_guard lock(pool_mu_);
        own = own_pids_.count(n->be_pid) > 0;
      }
      // One notification per batch transaction: a notice per document in it.
      std::vector<StoredNotice> notices;
      if (!own && std::strcmp(n->relname, kChannel) == 0) notices = DecodeNotices(n->extra);
      PQfreemem(n);
      if (notices.empty()) continue;
      std::lock_guard deliver(deliver_mu_);
      for (StoredNotice& notice : notices) {
        notice.foreign = true;
        Notify(notice);
      }
    }
  }
  listen_conn_.reset();
}

Status PgStore::Close() {
  {
    std::lock_guard lock(pool_mu_);
    if (closed_) return Status::Ok();
    closed_ = true;
    idle_.clear();
  }
  if (listener_.joinable()) {
    stop_ = true;
    const char b = 0;
    (void)!write(wake_[1], &b, 1);
    listener_.join();
  }
  listen_conn_.reset();
  for (int& fd : wake_) {
    if (fd >= 0) close(fd);
    fd = -1;
  }
  return Status::Ok();
}

void PgStore::Notify(const StoredNotice& notice) {
  std::vector<Watcher> targets;
  {
    std::lock_guard lock(watch_mu_);
    for (const auto& [id, w] : watchers_) targets.push_back(w);
  }
  for (const auto& w : targets) w(notice);
}

// ---- Metadata (the relay's own). ----

Result<std::map<std::string, std::string>> PgStore::GetMeta(const std::vector<std::string>& keys) {
  std::map<std::string, std::string> out;
  WEFT_RETURN_IF_ERROR(Txn(true, [&](Conn& c) -> Status {
    for (const std::string& k : keys) {
      auto q = Run(c, "SELECT value FROM weft_meta WHERE relay = $1::text AND key = $2::text",
                   Params().Str(options_.name).Str(k));
      if (!q.ok()) return q.status();
      if (PQntuples(q->get()) == 1) out[k] = std::string(GetStr(q->get(), 0, 0));
    }
    return Status::Ok();
  }));
  return out;
}

namespace meta {
std::string Value(const MetaEntry& e) {
  return e.type == MetaType::kInteger ? std::to_string(std::stoll(e.value)) : e.value;
}
Status Write(Conn& c, const std::string& relay, const std::vector<MetaEntry>& entries) {
  for (const MetaEntry& e : entries) {
    auto q = Run(c,
                 "INSERT INTO weft_meta(relay, key, value) VALUES($1::text, $2::text, $3::bytea) "
                 "ON CONFLICT (relay, key) DO UPDATE SET value = EXCLUDED.value",
                 Params().Str(relay).Str(e.key).Str(Value(e)));
    if (!q.ok()) return q.status();
  }
  return Status::Ok();
}
}  // namespace meta

Status PgStore::PutMeta(const std::vector<MetaEntry>& entries) {
  WEFT_RETURN_IF_ERROR(oplog::CheckMetaEntries(entries));
  return Txn(false, [&](Conn& c) { return meta::Write(c, options_.name, entries); });
}

Result<bool> PgStore::PutMetaIf(const std::vector<std::pair<std::string, std::string>>& expect,
                                const std::vector<MetaEntry>& put) {
  WEFT_RETURN_IF_ERROR(oplog::CheckMetaEntries(put));
  bool match = true;
  WEFT_RETURN_IF_ERROR(Txn(false, [&](Conn& c) -> Status {
    // One conditional write of this relay's metadata at a time (absent keys cannot be row-locked).
    auto lock = Run(c,
                    std::string("SELECT pg_advisory_xact_lock(hashtextextended($1::text, ") +
                        kMetaLockSeed + "))",
                    Params().Str(options_.name));
    if (!lock.ok()) return lock.status();
    for (const auto& [key, value] : expect) {
      auto q = Run(c, "SELECT value FROM weft_meta WHERE relay = $1::text AND key = $2::text",
                   Params().Str(options_.name).Str(key));
      if (!q.ok()) return q.status();
      if (PQntuples(q->get()) != 1 || GetStr(q->get(), 0, 0) != value) {
        match = false;
        return Status::Ok();
      }
    }
    return meta::Write(c, options_.name, put);
  }));
  return match;
}

// ---- Documents. ----

Result<std::vector<std::string>> PgStore::ListDocuments() {
  std::vector<std::string> out;
  WEFT_RETURN_IF_ERROR(OnConn([&](Conn& c) -> Status {
    // COLLATE "C": sorted by bytes, as every store sorts.
    auto q = Run(c, "SELECT id FROM weft_documents ORDER BY id COLLATE \"C\"", Params());
    if (!q.ok()) return q.status();
    for (int i = 0; i < PQntuples(q->get()); ++i) out.emplace_back(GetStr(q->get(), i, 0));
    return Status::Ok();
  }));
  return out;
}

Result<bool> PgStore::HasDocument(std::string_view doc) {
  bool found = false;
  WEFT_RETURN_IF_ERROR(OnConn([&](Conn& c) -> Status {
    auto q = Run(c, "SELECT 1 FROM weft_documents WHERE id = $1::text", Params().Str(doc));
    if (!q.ok()) return q.status();
    found = PQntuples(q->get()) > 0;
    return Status::Ok();
  }));
  return found;
}

// Records a document (a no-op when it exists), its seqs above those of a deleted one of its ID.
const char* const kInsertDocument =
    "INSERT INTO weft_documents(id, created_ms, last_seq) VALUES($1::text, $2::bigint, "
    "COALESCE((SELECT floor FROM weft_seq_floors WHERE doc = $1::text), 0)) "
    "ON CONFLICT (id) DO NOTHING";

Status PgStore::CreateDocument(std::string_view doc, int64_t created_ms) {
  WEFT_RETURN_IF_ERROR(CheckDoc(doc));
  return OnConn(
      [&](Conn& c) { return Run(c, kInsertDocument, Params().Str(doc).Int(created_ms)).status(); });
}

Status PgStore::DeleteDocument(std::string_view doc) {
  return Txn(false, [&](Conn& c) -> Status {
    auto q = Run(c, "SELECT last_seq FROM weft_documents WHERE id = $1::text FOR UPDATE",
                 Params().Str(doc));
    if (!q.ok()) return q.status();
    if (PQntuples(q->get()) == 0)
      return Status::NotFound("no document \"" + std::string(doc) + "\"");
    const int64_t last = GetInt(q->get(), 0, 0);
    // Seqs are never reused: a document made again with this ID starts above them.
    auto f = Run(c,
                 "INSERT INTO weft_seq_floors(doc, floor) VALUES($1::text, $2::bigint) "
                 "ON CONFLICT (doc) DO UPDATE SET floor = GREATEST(weft_seq_floors.floor, "
                 "EXCLUDED.floor)",
                 Params().Str(doc).Int(last));
    if (!f.ok()) return f.status();
    for (const char* text : {"DELETE FROM weft_changes WHERE doc = $1::text",
                             "DELETE FROM weft_segments WHERE doc = $1::text",
                             "DELETE FROM weft_snapshots WHERE doc = $1::text",
                             "DELETE FROM weft_bases WHERE doc = $1::text",
                             "DELETE FROM weft_equivocations WHERE doc = $1::text",
                             "DELETE FROM weft_sealed_snapshots WHERE doc = $1::text",
                             "DELETE FROM weft_documents WHERE id = $1::text"}) {
      auto d = Run(c, text, Params().Str(doc));
      if (!d.ok()) return d.status();
    }
    return Status::Ok();
  });
}

// ---- The op log. ----

// An AppendChanges call waiting for its batch to commit.
struct PgStore::PendingAppend {
  std::string_view doc;
  int64_t now_ms = 0;
  const std::vector<NewChange>* changes = nullptr;
  size_t bytes = 0;
  // Set by the leader that committed (or failed) it, before `done`.
  Status status;
  AppendResult result;
  bool done = false;  // under batch_mu_
};

// Group commit: a call queues, and when no batch is being committed it becomes the leader and
// commits every call queued (its own among them, up to kMaxBatchChanges / kMaxBatchBytes) in
// one transaction; calls arriving meanwhile queue for the next leader. A call alone commits at
// once: there is no waiting for company.
Result<AppendResult> PgStore::AppendChanges(std::string_view doc, int64_t now_ms,
                                            const std::vector<NewChange>& changes) {
  // Bad input fails here, never joining a batch.
  WEFT_RETURN_IF_ERROR(CheckDoc(doc));
  PendingAppend p;
  p.doc = doc;
  p.now_ms = now_ms;
  p.changes = &changes;
  for (const NewChange& ch : changes) p.bytes += ch.data.size() + 32;
  {
    std::unique_lock lock(batch_mu_);
    queue_.push_back(&p);
    for (;;) {
      batch_cv_.wait(lock, [&] { return p.done || !leading_; });
      if (p.done) break;
      leading_ = true;
      std::vector<PendingAppend*> batch;
      size_t n = 0, bytes = 0;
      while (!queue_.empty()) {
        PendingAppend* q = queue_.front();
        const size_t qn = std::max<size_t>(q->changes->size(), 1);
        if (!batch.empty() && (n + qn > kMaxBatchChanges || bytes + q->bytes > kMaxBatchBytes)) {
          break;
        }
        batch.push_back(q);
        queue_.pop_front();
        n += qn;
        bytes += q->bytes;
      }
      lock.unlock();
      CommitBatch(batch);
      lock.lock();
      for (PendingAppend* q : batch) q->done = true;
      leading_ = false;
      batch_cv_.notify_all();
    }
  }
  if (!p.status.ok()) return p.status;
  // On the writing thread, after the commit, with no store lock held (store.h).
  if (p.result.stored > 0) Notify({std::string(doc), p.result.first_seq, p.result.last_seq, false});
  return p.result;
}

void PgStore::CommitBatch(const std::vector<PendingAppend*>& batch) {
  bool lost = false;
  Status s = TryBatch(batch, lost);
  if (s.ok()) {
    ++batches_committed_;
    appends_committed_ += batch.size();
    return;
  }
  ++batches_failed_;
  if (batch.size() == 1 || lost) {
    // One call's own failure; or the server went away, and every call gets kIOError.
    for (PendingAppend* q : batch) q->status = s;
    return;
  }
  // A statement refused: perhaps for one call's input. Each call alone, so that one bad call
  // fails only itself.
  for (PendingAppend* q : batch) {
    bool q_lost = false;
    Status one = TryBatch({q}, q_lost);
    q->status = one;
    if (one.ok()) {
      ++batches_committed_;
      ++appends_committed_;
    } else {
      ++batches_failed_;
    }
  }
}

Status PgStore::TryBatch(const std::vector<PendingAppend*>& batch, bool& lost) {
  // The batch's work per document, the documents in ID order (bytes): every batch, of every
  // relay, locks the rows of its documents in this one order, so that two cannot deadlock.
  struct Entry {
    size_t caller;  // index in `batch`
    const NewChange* change;
  };
  struct DocWork {
    int64_t now_ms = 0;
    std::vector<Entry> entries;  // the callers in batch order, each one's changes in order
  };
  std::map<std::string_view, DocWork> docs;
  for (size_t i = 0; i < batch.size(); ++i) {
    auto [it, fresh] = docs.try_emplace(batch[i]->doc);
    if (fresh) it->second.now_ms = batch[i]->now_ms;
    for (const NewChange& ch : *batch[i]->changes) it->second.entries.push_back({i, &ch});
  }
  std::vector<AppendResult> results(batch.size());
  std::vector<StoredNotice> notices;
  Status s = Txn(
      false,
      [&](Conn& c) -> Status {
        std::fill(results.begin(), results.end(), AppendResult{});
        notices.clear();
        for (const auto& [doc, work] : docs) {
          // Records the document if new, and takes its row lock (appends to one document commit one
          // at a time and take their seqs in commit order), in one statement.
          auto q = Run(c,
                       "INSERT INTO weft_documents(id, created_ms, last_seq) VALUES($1::text, "
                       "$2::bigint, COALESCE((SELECT floor FROM weft_seq_floors WHERE doc = "
                       "$1::text), 0)) ON CONFLICT (id) DO UPDATE SET last_seq = "
                       "weft_documents.last_seq RETURNING last_seq",
                       Params().Str(doc).Int(work.now_ms));
          if (!q.ok()) return q.status();
          if (PQntuples(q->get()) != 1) return Status::IOError("postgres: a document vanished");
          const int64_t before = GetInt(q->get(), 0, 0);
          if (work.entries.empty()) continue;
          // The keys the log holds already (no other writer adds one while the row is locked).
          std::set<std::pair<uint64_t, uint64_t>> held;
          {
            ArrayParam authors(kInt8Oid), starts(kInt8Oid);
            for (const Entry& e : work.entries) {
              authors.AddInt(AsInt(e.change->author));
              starts.AddInt(Bound(e.change->start_seq));
            }
            auto h = Run(c,
                         "SELECT w.author, w.start_seq FROM unnest($2::bigint[], $3::bigint[]) AS "
                         "t(a, s) JOIN weft_changes w ON w.doc = $1::text AND w.author = t.a AND "
                         "w.start_seq = t.s",
                         Params().Str(doc).Owned(authors.Encode()).Owned(starts.Encode()));
            if (!h.ok()) return h.status();
            for (int i = 0; i < PQntuples(h->get()); ++i) {
              held.emplace(GetU(h->get(), i, 0), GetU(h->get(), i, 1));
            }
          }
          // Seqs for the others, in batch order; a key twice in the batch is stored once (for the
          // first caller, as if the calls had committed one after another).
          ArrayParam seqs(kInt8Oid), authors(kInt8Oid), starts(kInt8Oid), ends(kInt8Oid),
              crcs(kInt8Oid), datas(kByteaOid);
          int64_t seq = before;
          for (const Entry& e : work.entries) {
            const NewChange& ch = *e.change;
            if (!held.emplace(static_cast<uint64_t>(AsInt(ch.author)),
                              static_cast<uint64_t>(Bound(ch.start_seq)))
                     .second) {
              continue;
            }
            ++seq;
            seqs.AddInt(seq);
            authors.AddInt(AsInt(ch.author));
            starts.AddInt(Bound(ch.start_seq));
            ends.AddInt(Bound(ch.end_seq));
            crcs.AddInt(static_cast<int64_t>(crdt::Crc32c(ch.data)));
            datas.AddBytes(ch.data);
            AppendResult& r = results[e.caller];
            if (r.stored++ == 0) r.first_seq = static_cast<uint64_t>(seq);
            r.last_seq = static_cast<uint64_t>(seq);
          }
          if (seq == before) continue;
          // The rows and the document's last seq, in one statement. ON CONFLICT keeps a key once
          // whatever happens; the count shows it did not (the keys were checked under the lock).
          auto ins =
              Run(c,
                  "WITH ins AS (INSERT INTO weft_changes(doc, seq, author, start_seq, end_seq, "
                  "crc, data) SELECT $1::text, s, a, st, e, k, d FROM unnest($2::bigint[], "
                  "$3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bytea[]) AS "
                  "t(s, a, st, e, k, d) ON CONFLICT (doc, author, start_seq) DO NOTHING "
                  "RETURNING 1) UPDATE weft_documents SET last_seq = $8::bigint WHERE id = "
                  "$1::text RETURNING (SELECT count(*) FROM ins)::bigint",
                  Params()
                      .Str(doc)
                      .Owned(seqs.Encode())
                      .Owned(authors.Encode())
                      .Owned(starts.Encode())
                      .Owned(ends.Encode())
                      .Owned(crcs.Encode())
                      .Owned(datas.Encode())
                      .Int(seq));
          if (!ins.ok()) return ins.status();
          if (PQntuples(ins->get()) != 1 || GetInt(ins->get(), 0, 0) != seq - before) {
            return Status(StatusCode::kBusy, "postgres: the log of \"" + std::string(doc) +
                                                 "\" changed under its row lock");
          }
          notices.push_back({std::string(doc), static_cast<uint64_t>(before + 1),
                             static_cast<uint64_t>(seq), false});
        }
        // One NOTIFY for the batch (more only when its documents do not fit in one payload), sent
        // when the transaction commits, not at all if it rolls back.
        for (const std::string& payload : EncodeNotices(notices)) {
          auto n =
              Run(c, "SELECT pg_notify($1::text, $2::text)", Params().Str(kChannel).Str(payload));
          if (!n.ok()) return n.status();
        }
        return Status::Ok();
      },
      &lost);
  if (!s.ok()) return s;
  for (size_t i = 0; i < batch.size(); ++i) batch[i]->result = results[i];
  return Status::Ok();
}

Status PgStore::ReadLogOn(Conn& c, std::string_view doc, const LogRead& read) {
  if (read.base) {
    auto q = Run(c, "SELECT data FROM weft_bases WHERE doc = $1::text", Params().Str(doc));
    if (!q.ok()) return q.status();
    if (PQntuples(q->get()) == 1) WEFT_RETURN_IF_ERROR(read.base(GetStr(q->get(), 0, 0)));
  }
  if (read.segment) {
    // Bytes only of the segments wanted, each read on its own (segments are few and large).
    auto q = Run(c,
                 "SELECT id, first_seq, last_seq, changes, ops, heads FROM weft_segments WHERE "
                 "doc = $1::text AND last_seq > $2::bigint ORDER BY last_seq",
                 Params().Str(doc).Int(Bound(read.after)));
    if (!q.ok()) return q.status();
    const PGresult* r = q->get();
    for (int i = 0; i < PQntuples(r); ++i) {
      SegmentInfo info;
      info.id = GetU(r, i, 0);
      info.first_seq = GetU(r, i, 1);
      info.last_seq = GetU(r, i, 2);
      info.changes = GetU(r, i, 3);
      info.ops = GetU(r, i, 4);
      if (read.with_heads) {
        auto heads = oplog::DecodeHeads(doc, info.last_seq, GetStr(r, i, 5));
        if (!heads.ok()) return heads.status();
        info.heads = std::move(*heads);
      }
      if (read.want_segment && !read.want_segment(info)) continue;
      auto d = Run(c, "SELECT data FROM weft_segments WHERE id = $1::bigint",
                   Params().Int(Bound(info.id)));
      if (!d.ok()) return d.status();
      if (PQntuples(d->get()) != 1) return oplog::CorruptLog(doc, "a segment vanished");
      WEFT_RETURN_IF_ERROR(read.segment(info, GetStr(d->get(), 0, 0)));
    }
  }
  if (!read.row || read.upto <= read.after) return Status::Ok();
  struct Kept {
    RowInfo info;
    std::string data;
  };
  // Offers the result's rows; `keep` (by-author reads) collects them instead.
  auto take = [&](const PGresult* r, std::vector<Kept>* keep) -> Status {
    for (int i = 0; i < PQntuples(r); ++i) {
      RowInfo info{GetU(r, i, 0), NodeId{GetU(r, i, 1)}, GetU(r, i, 2), GetU(r, i, 3)};
      if (info.seq <= read.after || info.seq > read.upto) continue;
      if (read.want_row && !read.want_row(info)) continue;
      std::string_view data = GetStr(r, i, 5);
      WEFT_RETURN_IF_ERROR(
          oplog::CheckRow(doc, info.seq, static_cast<uint32_t>(GetInt(r, i, 4)), data));
      if (keep) {
        keep->push_back({info, std::string(data)});
      } else {
        WEFT_RETURN_IF_ERROR(read.row(info, data));
      }
    }
    return Status::Ok();
  };
  if (read.authors) {
    std::vector<Kept> kept;
    for (const auto& [author, seq] : *read.authors) {
      auto q = Run(c,
                   "SELECT seq, author, start_seq, end_seq, crc, data FROM weft_changes WHERE "
                   "doc = $1::text AND author = $2::bigint AND start_seq >= COALESCE((SELECT "
                   "MAX(start_seq) FROM weft_changes WHERE doc = $1::text AND author = "
                   "$2::bigint AND start_seq <= $3::bigint), 0)",
                   Params().Str(doc).Int(AsInt(author)).Int(Bound(seq)));
      if (!q.ok()) return q.status();
      WEFT_RETURN_IF_ERROR(take(q->get(), &kept));
    }
    std::sort(kept.begin(), kept.end(),
              [](const Kept& a, const Kept& b) { return a.info.seq < b.info.seq; });
    for (const Kept& k : kept) WEFT_RETURN_IF_ERROR(read.row(k.info, k.data));
    return Status::Ok();
  }
  auto q = Run(c,
               "SELECT seq, author, start_seq, end_seq, crc, data FROM weft_changes WHERE doc = "
               "$1::text AND seq > $2::bigint AND seq <= $3::bigint ORDER BY seq",
               Params().Str(doc).Int(Bound(read.after)).Int(Bound(read.upto)));
  if (!q.ok()) return q.status();
  return take(q->get(), nullptr);
}

Status PgStore::ReadLog(std::string_view doc, const LogRead& read) {
  return Txn(true, [&](Conn& c) { return ReadLogOn(c, doc, read); });
}

Status PgStore::ReadTails(std::vector<LogTail>* tails) {
  if (tails->empty()) return Status::Ok();
  ArrayParam docs(kTextOid), afters(kInt8Oid);
  for (LogTail& t : *tails) {
    docs.AddBytes(t.doc);
    afters.AddInt(Bound(t.after));
    t.segments = false;
    t.rows.clear();
  }
  // One statement, so one snapshot for every document: each one's rows past its position, and
  // whether a segment lies past it (then its rows are not wanted).
  return OnConn([&](Conn& c) -> Status {
    auto q = Run(c,
                 "SELECT t.i, w.seq, w.author, w.start_seq, w.end_seq, w.crc, w.data, w.seg FROM "
                 "unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS t(doc, after, i) CROSS "
                 "JOIN LATERAL (SELECT seq, author, start_seq, end_seq, crc, data, false AS seg "
                 "FROM weft_changes WHERE doc = t.doc AND seq > t.after UNION ALL (SELECT "
                 "0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, ''::bytea, true FROM "
                 "weft_segments WHERE doc = t.doc AND last_seq > t.after LIMIT 1)) w ORDER BY 1, 2",
                 Params().Owned(docs.Encode()).Owned(afters.Encode()));
    if (!q.ok()) return q.status();
    const PGresult* r = q->get();
    for (int i = 0; i < PQntuples(r); ++i) {
      const uint64_t at = GetU(r, i, 0);
      if (at < 1 || at > tails->size()) return Status::IOError("postgres: a row of no document");
      LogTail& t = (*tails)[at - 1];
      if (GetInt(r, i, 7) != 0) {
        t.segments = true;
        t.rows.clear();
        continue;
      }
      if (t.segments) continue;
      FoundRow f;
      f.info = {GetU(r, i, 1), NodeId{GetU(r, i, 2)}, GetU(r, i, 3), GetU(r, i, 4)};
      f.data = std::string(GetStr(r, i, 6));
      WEFT_RETURN_IF_ERROR(
          oplog::CheckRow(t.doc, f.info.seq, static_cast<uint32_t>(GetInt(r, i, 5)), f.data));
      t.rows.push_back(std::move(f));
    }
    return Status::Ok();
  });
}

Result<std::optional<FoundRow>> PgStore::FindRow(std::string_view doc, NodeId author,
                                                 uint64_t seq) {
  std::optional<FoundRow> out;
  WEFT_RETURN_IF_ERROR(OnConn([&](Conn& c) -> Status {
    auto q = Run(c,
                 "SELECT seq, author, start_seq, end_seq, crc, data FROM weft_changes WHERE doc "
                 "= $1::text AND author = $2::bigint AND start_seq <= $3::bigint ORDER BY "
                 "start_seq DESC LIMIT 1",
                 Params().Str(doc).Int(AsInt(author)).Int(Bound(seq)));
    if (!q.ok()) return q.status();
    const PGresult* r = q->get();
    if (PQntuples(r) == 0) return Status::Ok();
    FoundRow f;
    f.info = {GetU(r, 0, 0), NodeId{GetU(r, 0, 1)}, GetU(r, 0, 2), GetU(r, 0, 3)};
    f.data = std::string(GetStr(r, 0, 5));
    WEFT_RETURN_IF_ERROR(
        oplog::CheckRow(doc, f.info.seq, static_cast<uint32_t>(GetInt(r, 0, 4)), f.data));
    out = std::move(f);
    return Status::Ok();
  }));
  return out;
}

Result<uint64_t> PgStore::LastSeq(std::string_view doc) {
  uint64_t out = 0;
  WEFT_RETURN_IF_ERROR(OnConn([&](Conn& c) -> Status {
    auto q = Run(c,
                 "SELECT GREATEST(COALESCE((SELECT MAX(seq) FROM weft_changes WHERE doc = "
                 "$1::text), 0), COALESCE((SELECT MAX(last_seq) FROM weft_segments WHERE doc = "
                 "$1::text), 0))::bigint",
                 Params().Str(doc));
    if (!q.ok()) return q.status();
    out = GetU(q->get(), 0, 0);
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<std::string>> PgStore::ReadSegments(std::string_view doc,
                                                       const std::vector<uint64_t>& ids) {
  std::vector<std::string> out;
  WEFT_RETURN_IF_ERROR(Txn(true, [&](Conn& c) -> Status {
    for (uint64_t id : ids) {
      auto q = Run(c, "SELECT data FROM weft_segments WHERE id = $1::bigint AND doc = $2::text",
                   Params().Int(Bound(id)).Str(doc));
      if (!q.ok()) return q.status();
      if (PQntuples(q->get()) != 1) return oplog::CorruptLog(doc, "a segment vanished");
      out.emplace_back(GetStr(q->get(), 0, 0));
    }
    return Status::Ok();
  }));
  return out;
}

// ---- Snapshots. ----

Result<std::optional<StoredSnapshot>> PgStore::GetSnapshot(std::string_view doc) {
  std::optional<StoredSnapshot> out;
  WEFT_RETURN_IF_ERROR(OnConn([&](Conn& c) -> Status {
    auto q =
        Run(c, "SELECT upto, data FROM weft_snapshots WHERE doc = $1::text", Params().Str(doc));
    if (!q.ok()) return q.status();
    if (PQntuples(q->get()) == 1) {
      out = StoredSnapshot{GetU(q->get(), 0, 0), std::string(GetStr(q->get(), 0, 1))};
    }
    return Status::Ok();
  }));
  return out;
}

Status PgStore::WriteSnapshot(std::string_view doc, uint64_t upto, std::string_view data,
                              const Compaction& compaction) {
  WEFT_RETURN_IF_ERROR(CheckDoc(doc));
  return Txn(false, [&](Conn& c) -> Status {
    // One compaction of a document at a time, across relays: its precondition (the segments it
    // replaces are still there) is checked and its write made under this lock.
    auto lock = Run(c,
                    std::string("SELECT pg_advisory_xact_lock(hashtextextended($1::text, ") +
                        kDocLockSeed + "))",
                    Params().Str(doc));
    if (!lock.ok()) return lock.status();
    for (uint64_t id : compaction.replaced) {
      auto d = Run(c, "DELETE FROM weft_segments WHERE id = $1::bigint AND doc = $2::text",
                   Params().Int(Bound(id)).Str(doc));
      if (!d.ok()) return d.status();
      if (Changed(d->get()) != 1) return Aborted(doc);
    }
    // A snapshot never moves back: one of an older position (another relay's, written while
    // this one was being made) leaves the stored one.
    auto s = Run(c,
                 "INSERT INTO weft_snapshots(doc, upto, data) VALUES($1::text, $2::bigint, "
                 "$3::bytea) ON CONFLICT (doc) DO UPDATE SET upto = EXCLUDED.upto, data = "
                 "EXCLUDED.data WHERE weft_snapshots.upto <= EXCLUDED.upto",
                 Params().Str(doc).Int(Bound(upto)).Str(data));
    if (!s.ok()) return s.status();
    for (const NewSegment& g : compaction.added) {
      // Two relays that both planned to fold the same rows: the second finds the first's
      // segment over those seqs (and the rows gone), and must not add a second copy.
      auto o = Run(c,
                   "SELECT id FROM weft_segments WHERE doc = $1::text AND first_seq <= "
                   "$3::bigint AND last_seq >= $2::bigint LIMIT 1",
                   Params().Str(doc).Int(Bound(g.first_seq)).Int(Bound(g.last_seq)));
      if (!o.ok()) return o.status();
      if (PQntuples(o->get()) != 0) {
        return Status::Aborted("op log of \"" + std::string(doc) + "\" changed during its " +
                               "compaction (a segment over seqs " + std::to_string(g.first_seq) +
                               ".." + std::to_string(g.last_seq) + " is there already)");
      }
      auto a = Run(c,
                   "INSERT INTO weft_segments(doc, first_seq, last_seq, changes, ops, heads, "
                   "data) VALUES($1::text, $2::bigint, $3::bigint, $4::bigint, $5::bigint, "
                   "$6::bytea, $7::bytea)",
                   Params()
                       .Str(doc)
                       .Int(Bound(g.first_seq))
                       .Int(Bound(g.last_seq))
                       .Int(Bound(g.changes))
                       .Int(Bound(g.ops))
                       .Str(oplog::EncodeHeads(g.heads))
                       .Str(g.data));
      if (!a.ok()) return a.status();
    }
    if (compaction.folded == 0) return Status::Ok();
    // Seqs are allocated from the document's row, not from the rows left: deleting rows frees
    // none for reuse.
    auto f = Run(c, "DELETE FROM weft_changes WHERE doc = $1::text AND seq <= $2::bigint",
                 Params().Str(doc).Int(Bound(compaction.folded)));
    return f.status();
  });
}

// ---- Bases and sealed snapshots. ----

Result<std::optional<BaseSnapshot>> PgStore::GetBase(std::string_view doc, bool with_data) {
  std::optional<BaseSnapshot> out;
  WEFT_RETURN_IF_ERROR(OnConn([&](Conn& c) -> Status {
    auto q = Run(c,
                 with_data ? "SELECT version, data FROM weft_bases WHERE doc = $1::text"
                           : "SELECT version FROM weft_bases WHERE doc = $1::text",
                 Params().Str(doc));
    if (!q.ok()) return q.status();
    if (PQntuples(q->get()) == 0) return Status::Ok();
    auto v = oplog::DecodeVersion(GetStr(q->get(), 0, 0), "weft_bases");
    if (!v.ok()) return v.status();
    out.emplace();
    out->version = std::move(*v);
    if (with_data) out->data = std::string(GetStr(q->get(), 0, 1));
    return Status::Ok();
  }));
  return out;
}

Result<uint64_t> PgStore::ImportBase(std::string_view doc, int64_t now_ms,
                                     const VersionVector& version, std::string_view data,
                                     const std::string* seal) {
  WEFT_RETURN_IF_ERROR(CheckDoc(doc));
  const std::string token = oplog::EncodeVersion(version);
  WEFT_RETURN_IF_ERROR(Txn(false, [&](Conn& c) -> Status {
    auto ins = Run(c, kInsertDocument, Params().Str(doc).Int(now_ms));
    if (!ins.ok()) return ins.status();
    auto b = Run(c,
                 "INSERT INTO weft_bases(doc, version, data) VALUES($1::text, $2::text, $3::bytea) "
                 "ON CONFLICT (doc) DO UPDATE SET version = EXCLUDED.version, data = EXCLUDED.data",
                 Params().Str(doc).Str(token).Str(data));
    if (!b.ok()) return b.status();
    if (seal) {
      auto s = Run(c,
                   "INSERT INTO weft_sealed_snapshots(doc, version, seal, data) VALUES($1::text, "
                   "$2::text, $3::bytea, $4::bytea) ON CONFLICT (doc) DO UPDATE SET version = "
                   "EXCLUDED.version, seal = EXCLUDED.seal, data = EXCLUDED.data",
                   Params().Str(doc).Str(token).Str(*seal).Str(data));
      if (!s.ok()) return s.status();
    }
    auto d = Run(c, "DELETE FROM weft_snapshots WHERE doc = $1::text", Params().Str(doc));
    if (!d.ok()) return d.status();
    auto n = Run(c, "SELECT pg_notify($1::text, $2::text)",
                 Params().Str(kChannel).Str(EncodeNotices({{std::string(doc), 0, 0, true}})[0]));
    return n.status();
  }));
  Notify({std::string(doc), 0, 0, true});
  return uint64_t{0};
}

Status PgStore::PutSealedSnapshot(std::string_view doc, const VersionVector& version,
                                  std::string_view seal, std::string_view data) {
  return OnConn([&](Conn& c) {
    return Run(c,
               "INSERT INTO weft_sealed_snapshots(doc, version, seal, data) VALUES($1::text, "
               "$2::text, $3::bytea, $4::bytea) ON CONFLICT (doc) DO UPDATE SET version = "
               "EXCLUDED.version, seal = EXCLUDED.seal, data = EXCLUDED.data",
               Params().Str(doc).Str(oplog::EncodeVersion(version)).Str(seal).Str(data))
        .status();
  });
}

Result<std::optional<SealedSnapshotRecord>> PgStore::GetSealedSnapshot(std::string_view doc) {
  std::optional<SealedSnapshotRecord> out;
  WEFT_RETURN_IF_ERROR(OnConn([&](Conn& c) -> Status {
    auto q = Run(c, "SELECT version, seal, data FROM weft_sealed_snapshots WHERE doc = $1::text",
                 Params().Str(doc));
    if (!q.ok()) return q.status();
    if (PQntuples(q->get()) == 0) return Status::Ok();
    auto v = oplog::DecodeVersion(GetStr(q->get(), 0, 0), "weft_sealed_snapshots");
    if (!v.ok()) return v.status();
    out = SealedSnapshotRecord{std::move(*v), std::string(GetStr(q->get(), 0, 1)),
                               std::string(GetStr(q->get(), 0, 2))};
    return Status::Ok();
  }));
  return out;
}

// ---- Equivocations and peers. ----

Status PgStore::RecordEquivocation(const EquivocationRecord& e) {
  return OnConn([&](Conn& c) {
    return Run(c,
               "INSERT INTO weft_equivocations(doc, author, seq, held, other, detected_ms) "
               "VALUES($1::text, $2::bigint, $3::bigint, $4::bytea, $5::bytea, $6::bigint) "
               "ON CONFLICT (doc, author) DO NOTHING",
               Params()
                   .Str(e.doc)
                   .Int(AsInt(e.author))
                   .Int(Bound(e.seq))
                   .Str(e.held)
                   .Str(e.other)
                   .Int(e.detected_ms))
        .status();
  });
}

Result<std::vector<EquivocationRecord>> PgStore::Equivocations(
    std::optional<std::string_view> doc) {
  std::vector<EquivocationRecord> out;
  WEFT_RETURN_IF_ERROR(OnConn([&](Conn& c) -> Status {
    Params p;
    if (doc) p.Str(*doc);
    auto q = Run(c,
                 doc ? "SELECT doc, author, seq, held, other, detected_ms FROM weft_equivocations "
                       "WHERE doc = $1::text ORDER BY doc COLLATE \"C\", author"
                     : "SELECT doc, author, seq, held, other, detected_ms FROM weft_equivocations "
                       "ORDER BY doc COLLATE \"C\", author",
                 p);
    if (!q.ok()) return q.status();
    const PGresult* r = q->get();
    for (int i = 0; i < PQntuples(r); ++i) {
      out.push_back({std::string(GetStr(r, i, 0)), NodeId{GetU(r, i, 1)}, GetU(r, i, 2),
                     std::string(GetStr(r, i, 3)), std::string(GetStr(r, i, 4)), GetInt(r, i, 5)});
    }
    return Status::Ok();
  }));
  return out;
}

Status PgStore::SetPeerVersion(std::string_view peer, std::string_view doc,
                               const VersionVector& version, int64_t now_ms) {
  return OnConn([&](Conn& c) {
    return Run(c,
               "INSERT INTO weft_peer_versions(relay, peer, doc, version, updated_ms) "
               "VALUES($1::text, $2::text, $3::text, $4::text, $5::bigint) "
               "ON CONFLICT (relay, peer, doc) DO UPDATE SET version = EXCLUDED.version, "
               "updated_ms = EXCLUDED.updated_ms",
               Params()
                   .Str(options_.name)
                   .Str(peer)
                   .Str(doc)
                   .Str(oplog::EncodeVersion(version))
                   .Int(now_ms))
        .status();
  });
}

Result<std::vector<std::pair<std::string, VersionVector>>> PgStore::PeerVersions(
    std::string_view peer) {
  std::vector<std::pair<std::string, VersionVector>> out;
  WEFT_RETURN_IF_ERROR(OnConn([&](Conn& c) -> Status {
    auto q = Run(c,
                 "SELECT doc, version FROM weft_peer_versions WHERE relay = $1::text AND peer = "
                 "$2::text ORDER BY doc COLLATE \"C\"",
                 Params().Str(options_.name).Str(peer));
    if (!q.ok()) return q.status();
    const PGresult* r = q->get();
    for (int i = 0; i < PQntuples(r); ++i) {
      auto v = oplog::DecodeVersion(GetStr(r, i, 1), "weft_peer_versions");
      if (!v.ok()) return v.status();
      out.emplace_back(std::string(GetStr(r, i, 0)), std::move(*v));
    }
    return Status::Ok();
  }));
  return out;
}

}  // namespace

Result<std::unique_ptr<Store>> OpenPgStore(const std::string& conninfo,
                                           const PgStoreOptions& options) {
  auto s = std::make_unique<PgStore>(conninfo, options);
  WEFT_RETURN_IF_ERROR(s->Init());
  return std::unique_ptr<Store>(std::move(s));
}

}  // namespace weft::store
