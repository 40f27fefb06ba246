// The replica's storage: compaction of the op log into history segments (every change is still
// served, in a causal order, to any peer version; reopen gives the same state), the file giving
// freed pages back, and the migration of a version 2 database.
#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <set>

#include "doc_sim.h"
#include "open_replica.h"
#include "random.h"
#include "temp_dir.h"
#include "weft/replica.h"

using namespace weft;
using weft::testing::Rng;
using weft::testing::TempDir;

namespace {

std::unique_ptr<Replica> OpenAt(const std::string& path, ReplicaOptions opts = {}) {
  return testing::OpenReplicaAt(path, std::move(opts));
}

std::string Canonical(Replica& r, std::string_view doc) {
  std::string out;
  Status s = r.Read(doc, [&](const View& v) { out = v.CanonicalState(); });
  INFO(s.ToString());
  REQUIRE(s.ok());
  return out;
}

size_t Sync(Replica& from, Replica& to, std::string_view doc) {
  if (!from.HasDocument(doc)) return 0;
  VersionVector have;
  if (auto v = to.Version(doc); v.ok()) have = *v;
  auto changes = from.ChangesSince(doc, have);
  INFO(changes.status().ToString());
  REQUIRE(changes.ok());
  if (changes->empty()) return 0;
  auto report = to.ApplyRemoteChanges(doc, *changes);
  INFO(report.status().ToString());
  REQUIRE(report.ok());
  return report->applied;
}

std::string QueryOne(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  int rc = sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr);
  INFO(sqlite3_errmsg(db));
  REQUIRE(rc == SQLITE_OK);
  std::string out;
  if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) {
    out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

std::vector<crdt::Change> Decoded(const std::vector<ChangeBlob>& blobs) {
  std::vector<crdt::Change> out;
  for (const auto& b : blobs) {
    auto c = crdt::DecodeChange(b);
    REQUIRE(c.ok());
    out.push_back(std::move(*c));
  }
  return out;
}

Status RandomTxn(Replica& r, Rng& rng) {
  return r
      .Transact("doc",
                [&](Txn& t) {
                  int n = static_cast<int>(rng.Range(1, 3));
                  for (int k = 0; k < n; ++k) {
                    WEFT_RETURN_IF_ERROR(weft::testing::RandomEdit(
                        const_cast<crdt::Document&>(t.document()), t.raw(), rng));
                  }
                  return Status::Ok();
                })
      .status();
}

}  // namespace

TEST_CASE("compaction keeps every change served, in causal order, to any peer version",
          "[sdk][storage]") {
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    INFO("seed " << seed);
    TempDir dir;
    Rng rng(seed);
    ReplicaOptions compacting;
    compacting.snapshot_every = 3 + static_cast<uint32_t>(seed);  // many small compactions
    ReplicaOptions plain;
    plain.snapshot_every = 0;  // never compacts: the reference log
    plain.snapshot_every_ops = 0;
    auto a = OpenAt(dir.File("a.db"), compacting);
    auto b = OpenAt(dir.File("b.db"), compacting);
    auto c = OpenAt(dir.File("c.db"), plain);
    std::vector<Replica*> all = {a.get(), b.get(), c.get()};
    std::vector<VersionVector> seen;  // versions of a along the way, to ask for what follows
    for (int step = 0; step < 150; ++step) {
      Replica& r = *all[rng.Below(all.size())];
      REQUIRE(RandomTxn(r, rng).ok());
      if (rng.Chance(20)) Sync(*all[rng.Below(3)], *all[rng.Below(3)], "doc");
      if (rng.Chance(10)) seen.push_back(*a->Version("doc"));
    }
    for (Replica* from : all) Sync(*from, *a, "doc");
    const std::string state = Canonical(*a, "doc");
    const VersionVector version = *a->Version("doc");
    CHECK(std::stoi(QueryOne(dir.File("a.db"), "SELECT count(*) FROM segments")) > 0);

    // Everything, once, in an order a fresh replica can apply in one pass.
    auto everything = a->ChangesSince("doc", {});
    REQUIRE(everything.ok());
    auto cs = Decoded(*everything);
    std::set<std::pair<uint64_t, uint64_t>> ids;
    crdt::Document fresh(NodeId{0xF00D});
    for (const auto& ch : cs) {
      CHECK(ids.emplace(ch.author.value, ch.start_seq).second);
      Status s = fresh.ApplyChange(ch);
      INFO(s.ToString());
      REQUIRE(s.ok());
    }
    CHECK(fresh.version() == version);
    CHECK(fresh.CanonicalState() == state);

    // The same changes as a replica that never compacted holds.
    auto d = OpenAt(dir.File("d.db"), plain);
    Sync(*a, *d, "doc");
    auto reference = d->ChangesSince("doc", {});
    REQUIRE(reference.ok());
    auto rs = Decoded(*reference);
    std::sort(rs.begin(), rs.end(), [](const auto& x, const auto& y) { return x.id() < y.id(); });
    auto sorted = cs;
    std::sort(sorted.begin(), sorted.end(),
              [](const auto& x, const auto& y) { return x.id() < y.id(); });
    CHECK(sorted == rs);

    // Any peer version gets exactly what it lacks.
    seen.push_back(version);
    for (const VersionVector& v : seen) {
      auto part = a->ChangesSince("doc", v);
      REQUIRE(part.ok());
      std::vector<crdt::Change> want;
      for (const auto& ch : cs) {
        if (ch.end_seq() > v.Get(ch.author)) want.push_back(ch);
      }
      CHECK(Decoded(*part) == want);
    }

    // Reopen (after the close compaction) gives the same state and log.
    a.reset();
    a = OpenAt(dir.File("a.db"), compacting);
    CHECK(Canonical(*a, "doc") == state);
    auto again = a->ChangesSince("doc", {});
    REQUIRE(again.ok());
    CHECK(Decoded(*again) == cs);
  }
}

TEST_CASE("a compacted database stays small and gives freed pages back", "[sdk][storage]") {
  TempDir dir;
  const std::string path = dir.File("t.db");
  std::string text;
  {
    auto r = OpenAt(path);
    REQUIRE(r->Transact("doc", [](Txn& t) { return t.root().Text("text").status(); }).ok());
    // 3200 one-character commits: three compactions by the default policy (every 1000 changes),
    // and one at close for the 201 changes after the last (more than an eighth of the policy).
    for (int i = 0; i < 3200; ++i) {
      REQUIRE(r->Transact("doc", [&](Txn& t) {
                 auto tx = t.root().Text("text");
                 WEFT_RETURN_IF_ERROR(tx.status());
                 return tx->Insert(static_cast<size_t>(i), std::string(1, 'a' + i % 26));
               }).ok());
    }
    REQUIRE(r->Read("doc", [&](const View& v) { text = *v.root().Text("text")->Read(); }).ok());
  }
  CHECK(QueryOne(path, "SELECT count(*) FROM changes") == "0");
  CHECK(QueryOne(path, "PRAGMA freelist_count") == "0");
  const auto bytes = std::filesystem::file_size(path);
  INFO("file " << bytes << " bytes");
  // 3200 change rows alone would take over 200 KB. The bound leaves room for the schema's own
  // pages (a root page per table and index, two more since signed changes: 15 pages of 4 KiB
  // here, 17 under ASan, which compacts at other moments).
  CHECK(bytes < 72 * 1024);
  auto r = OpenAt(path);
  std::string reopened;
  REQUIRE(r->Read("doc", [&](const View& v) { reopened = *v.root().Text("text")->Read(); }).ok());
  CHECK(reopened == text);
  auto log = r->ChangesSince("doc", {});
  REQUIRE(log.ok());
  CHECK(log->size() == 3201);
}

TEST_CASE("a version 2 database is migrated to the current version", "[sdk][storage]") {
  TempDir dir;
  // The source of the history: a current replica.
  auto src = OpenAt(dir.File("src.db"));
  Rng rng(7);
  for (int i = 0; i < 40; ++i) REQUIRE(RandomTxn(*src, rng).ok());
  const std::string state = Canonical(*src, "doc");
  auto blobs = src->ChangesSince("doc", {});
  REQUIRE(blobs.ok());
  auto cs = Decoded(*blobs);

  // A version 2 database holding it, written as version 2 did.
  const std::string path = dir.File("v2.db");
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    const char* ddl = R"sql(
PRAGMA journal_mode=WAL;
CREATE TABLE meta(key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE documents(id TEXT PRIMARY KEY, created_ms INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE changes(seq INTEGER PRIMARY KEY, doc TEXT NOT NULL, author INTEGER NOT NULL,
  start_seq INTEGER NOT NULL, end_seq INTEGER NOT NULL, data BLOB NOT NULL);
CREATE UNIQUE INDEX changes_by_id ON changes(doc, author, start_seq);
CREATE INDEX changes_by_doc ON changes(doc, seq);
CREATE TABLE snapshots(doc TEXT PRIMARY KEY, upto INTEGER NOT NULL, data BLOB NOT NULL)
  WITHOUT ROWID;
CREATE TABLE peer_versions(peer TEXT NOT NULL, doc TEXT NOT NULL, version TEXT NOT NULL,
  updated_ms INTEGER NOT NULL, PRIMARY KEY(peer, doc)) WITHOUT ROWID;
INSERT INTO meta VALUES('format', 'weft'), ('schema_version', 2), ('node_id', '00000000000000ab');
INSERT INTO documents VALUES('doc', 1);
)sql";
    REQUIRE(sqlite3_exec(db, ddl, nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(db,
                               "INSERT INTO changes(doc, author, start_seq, end_seq, data) "
                               "VALUES('doc', ?, ?, ?, ?)",
                               -1, &st, nullptr) == SQLITE_OK);
    for (size_t i = 0; i < cs.size(); ++i) {
      sqlite3_bind_int64(st, 1, static_cast<int64_t>(cs[i].author.value));
      sqlite3_bind_int64(st, 2, static_cast<int64_t>(cs[i].start_seq));
      sqlite3_bind_int64(st, 3, static_cast<int64_t>(cs[i].end_seq()));
      sqlite3_bind_blob(st, 4, (*blobs)[i].data(), static_cast<int>((*blobs)[i].size()),
                        SQLITE_TRANSIENT);
      REQUIRE(sqlite3_step(st) == SQLITE_DONE);
      sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    // And a snapshot covering the first 30 changes (log seqs 1..30).
    crdt::Document snap(NodeId{0xab});
    for (size_t i = 0; i < 30; ++i) REQUIRE(snap.ApplyChange(cs[i]).ok());
    const std::string data = snap.EncodeSnapshot(false);
    REQUIRE(sqlite3_prepare_v2(db, "INSERT INTO snapshots VALUES('doc', 30, ?)", -1, &st,
                               nullptr) == SQLITE_OK);
    sqlite3_bind_blob(st, 1, data.data(), static_cast<int>(data.size()), SQLITE_TRANSIENT);
    REQUIRE(sqlite3_step(st) == SQLITE_DONE);
    sqlite3_finalize(st);
    REQUIRE(sqlite3_close(db) == SQLITE_OK);
  }
  // The migration folds what the snapshot covers into a segment; the rest stay rows.
  OpenAt(path).reset();
  CHECK(QueryOne(path, "SELECT count(*) FROM segments") == "1");
  CHECK(QueryOne(path, "SELECT count(*) FROM changes") == "10");
  {
    auto r = OpenAt(path);
    CHECK(r->node_id() == NodeId{0xab});
    CHECK(Canonical(*r, "doc") == state);
    auto log = r->ChangesSince("doc", {});
    REQUIRE(log.ok());
    CHECK(*log == *blobs);
    REQUIRE(r->Transact("doc", [](Txn& t) { return t.root().Put("after", 1); }).ok());
    REQUIRE(r->Snapshot("doc").ok());
  }
  // Migrated through 3 (segments) and 4 (document_bases for snapshot bootstraps) to the current 5
  // (equivocations, sealed snapshots).
  CHECK(QueryOne(path, "SELECT value FROM meta WHERE key = 'schema_version'") == "5");
  CHECK(QueryOne(path, "SELECT count(*) FROM document_bases") == "0");
  CHECK(QueryOne(path, "PRAGMA auto_vacuum") == "2");  // incremental, like a new database
  CHECK(QueryOne(path, "SELECT count(*) FROM changes") == "0");
  auto r = OpenAt(path);
  auto log = r->ChangesSince("doc", {});
  REQUIRE(log.ok());
  CHECK(log->size() == cs.size() + 1);
}
