// Bad input to a replica: corrupt remote changes, and database files that are truncated, zeroed,
// not Weft, not SQLite or from a newer Weft. Each gives a clear error and changes nothing: not
// the document, not a byte of the file, and no WAL or journal left behind.
#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "open_replica.h"
#include "random.h"
#include "sql_exec.h"
#include "temp_dir.h"
#include "weft/replica.h"

using namespace weft;
using weft::testing::Rng;
using weft::testing::TempDir;

namespace {

constexpr uint64_t kNowMs = 1'700'000'000'000;
constexpr const char* kDoc = "doc";

ReplicaOptions Options() {
  ReplicaOptions o;
  o.clock = [] { return kNowMs; };
  return o;
}

std::unique_ptr<Replica> OpenAt(const std::string& path, ReplicaOptions opts = Options()) {
  return testing::OpenReplicaAt(path, std::move(opts));
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

bool Exists(const std::string& path) {
  return std::filesystem::exists(path);
}

void RemoveDb(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"})
    std::filesystem::remove(path + suffix);
}

// Runs SQL on a database through sqlite3 directly (beside the replica's own connection).
void Sql(const std::string& path, const std::string& sql) {
  REQUIRE(testing::ExecSql(path, sql).empty());
}

std::string Canonical(Replica& r) {
  std::string out;
  Status s = r.Read(kDoc, [&](const View& v) { out = v.CanonicalState(); });
  INFO(s.ToString());
  REQUIRE(s.ok());
  return out;
}

// The replica's document and the data it has committed (DataTables).
struct Observed {
  std::string canonical;
  VersionVector version;
  std::string tables;  // DataTables
  bool operator==(const Observed&) const = default;
};

// Every row of every table but meta, read through a connection of its own (what the replica has
// committed, in the database file or its WAL). Opening a replica writes meta (its author's
// lease), so "nothing changed" is about the data.
std::string DataTables(const std::string& path) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  std::vector<std::string> tables;
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db,
                             "SELECT name FROM sqlite_master WHERE type = 'table' AND "
                             "name != 'meta' ORDER BY name",
                             -1, &st, nullptr) == SQLITE_OK);
  while (sqlite3_step(st) == SQLITE_ROW) {
    tables.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
  }
  sqlite3_finalize(st);
  std::string out;
  for (const auto& t : tables) {
    out += "table " + t + "\n";
    REQUIRE(sqlite3_prepare_v2(db, ("SELECT * FROM \"" + t + "\" ORDER BY 1").c_str(), -1, &st,
                               nullptr) == SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
      for (int c = 0; c < sqlite3_column_count(st); ++c) {
        const void* b = sqlite3_column_blob(st, c);
        int n = sqlite3_column_bytes(st, c);
        out += std::to_string(sqlite3_column_type(st, c)) + ":" + std::to_string(n) + ":";
        if (b) out.append(static_cast<const char*>(b), static_cast<size_t>(n));
        out += "|";
      }
      out += "\n";
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return out;
}

Observed Observe(Replica& r, const std::string& path) {
  auto v = r.Version(kDoc);
  REQUIRE(v.ok());
  return {Canonical(r), *v, DataTables(path)};
}

// Opens `path`, which must be refused with `code`; then checks that the file holds `bytes` still
// and that no WAL, shared-memory or journal file was left behind.
void ExpectRefused(const std::string& path, StatusCode code, const std::string& bytes,
                   ReplicaOptions opts = Options()) {
  {
    auto r = Replica::Open(path, std::move(opts));
    INFO("Open: " << r.status().ToString());
    CHECK(r.status().code() == code);
    CHECK_FALSE(r.status().message().empty());
  }
  const bool unchanged = ReadFile(path) == bytes;
  CHECK(unchanged);
  CHECK_FALSE(Exists(path + "-wal"));
  CHECK_FALSE(Exists(path + "-shm"));
  CHECK_FALSE(Exists(path + "-journal"));
}

Status Edit(Replica& r, int i) {
  return r
      .Transact(
          kDoc,
          [&](Txn& t) {
            auto root = t.root();
            WEFT_RETURN_IF_ERROR(root.Put("k" + std::to_string(i), "value " + std::to_string(i)));
            auto n = root.Counter("n");
            WEFT_RETURN_IF_ERROR(n.status());
            WEFT_RETURN_IF_ERROR(n->Increment(i));
            auto tags = root.Set("tags");
            WEFT_RETURN_IF_ERROR(tags.status());
            WEFT_RETURN_IF_ERROR(tags->Add(int64_t{i}));
            if (i % 3 == 0) WEFT_RETURN_IF_ERROR(root.Delete("k" + std::to_string(i - 1)));
            return Status::Ok();
          })
      .status();
}

// A Weft database with some history and a snapshot, closed cleanly; returns its bytes.
std::string MakeWeftDb(const std::string& path, int commits) {
  {
    auto r = OpenAt(path);
    for (int i = 0; i < commits; ++i) REQUIRE(Edit(*r, i).ok());
    REQUIRE(r->Snapshot(kDoc).ok());
    REQUIRE(Edit(*r, commits).ok());
  }
  REQUIRE_FALSE(Exists(path + "-wal"));
  return ReadFile(path);
}

}  // namespace

TEST_CASE("corrupt remote changes are refused and change nothing", "[sdk][bad-input]") {
  TempDir dir;
  const std::string path = dir.File("dst.db"), pristine = dir.File("pristine.db");
  // The remote's changes: the receiver has the first three; the rest are the ones we damage.
  std::vector<ChangeBlob> blobs;
  {
    auto src = OpenAt(dir.File("src.db"));
    for (int i = 1; i <= 6; ++i) REQUIRE(Edit(*src, i).ok());
    auto all = src->ChangesSince(kDoc, {});
    REQUIRE(all.ok());
    blobs = *all;
  }
  REQUIRE(blobs.size() == 6);
  {
    auto r = OpenAt(path);
    REQUIRE(r->ApplyRemoteChanges(kDoc, {blobs[0], blobs[1], blobs[2]}).ok());
    REQUIRE(Edit(*r, 100).ok());  // and a change of its own
  }
  std::filesystem::copy_file(path, pristine);
  auto r = OpenAt(path);
  const Observed base = Observe(*r, path);

  // Applies `batch`, which must be refused with nothing changed.
  auto expect_refused = [&](const std::vector<ChangeBlob>& batch) {
    auto rep = r->ApplyRemoteChanges(kDoc, batch);
    INFO("ApplyRemoteChanges: " << rep.status().ToString());
    REQUIRE_FALSE(rep.ok());
    CHECK(rep.status().code() != StatusCode::kInternal);
    CHECK(rep.status().code() != StatusCode::kIOError);
    CHECK_FALSE(rep.status().message().empty());
    REQUIRE(Observe(*r, path) == base);
  };

  SECTION("random bytes") {
    const uint64_t seed = testing::SeedFromEnv() ? testing::SeedFromEnv() : 20261129;
    INFO("seed " << seed);
    Rng rng(seed);
    for (int i = 0; i < 300; ++i) {
      std::string junk(rng.Below(200), '\0');
      for (char& c : junk) c = static_cast<char>(rng.Below(256));
      // Half of them keep the real format byte, to get past the first check.
      if (!junk.empty() && i % 2 == 0) junk[0] = blobs[3][0];
      INFO("junk " << i << " (" << junk.size() << " bytes)");
      expect_refused({junk});
      expect_refused({blobs[3], junk, blobs[4]});  // a good change does not get in beside it
    }
  }

  SECTION("truncated changes") {
    for (size_t b = 3; b < blobs.size(); ++b) {
      for (size_t len = 0; len < blobs[b].size(); ++len) {
        INFO("change " << b << " cut to " << len << " of " << blobs[b].size() << " bytes");
        auto cut = blobs[b].substr(0, len);
        auto rep = r->ApplyRemoteChanges(kDoc, {cut});
        CHECK(rep.status().code() == StatusCode::kCorruption);
        expect_refused({cut});
        std::vector<ChangeBlob> batch(blobs.begin() + 3, blobs.end());
        batch[b - 3] = cut;
        expect_refused(batch);
      }
    }
  }

  SECTION("bit flips") {
    // Without a checksum (the signature comes later), a flip inside a string, a time or the
    // signature field can give another well-formed change. Such a change may be accepted; then
    // the replica must hold it consistently: the reopened database equals the open replica.
    // Every other flip must be refused with nothing changed.
    size_t refused = 0, accepted = 0;
    const ChangeBlob& good = blobs[4];
    for (size_t bit = 0; bit < good.size() * 8; ++bit) {
      ChangeBlob bad = good;
      bad[bit / 8] = static_cast<char>(bad[bit / 8] ^ (1 << (bit % 8)));
      INFO("bit " << bit << " of " << good.size() * 8);
      std::vector<ChangeBlob> batch = {blobs[3], bad};
      auto rep = r->ApplyRemoteChanges(kDoc, batch);
      if (!rep.ok()) {
        ++refused;
        INFO(rep.status().ToString());
        CHECK(rep.status().code() != StatusCode::kInternal);
        CHECK(rep.status().code() != StatusCode::kIOError);
        REQUIRE(Observe(*r, path) == base);
        continue;
      }
      ++accepted;
      CHECK(rep->applied == 2);
      std::string live = Canonical(*r);
      r.reset();
      {
        auto again = OpenAt(path);
        CHECK(Canonical(*again) == live);
      }
      RemoveDb(path);
      std::filesystem::copy_file(pristine, path);
      r = OpenAt(path);
      REQUIRE(Canonical(*r) == base.canonical);
    }
    INFO("refused " << refused << ", accepted " << accepted);
    CHECK(refused > 0);
    CHECK(refused + accepted == good.size() * 8);
  }
}

TEST_CASE("a truncated or zeroed Weft database is refused and left as it was", "[sdk][bad-input]") {
  TempDir dir;
  const std::string full = MakeWeftDb(dir.File("full.db"), 400);
  const size_t page = 4096;
  REQUIRE(full.size() % page == 0);
  REQUIRE(full.size() >= 4 * page);
  std::vector<size_t> lengths = {1, 15, 16, 50, 99, 100, 101, 512, page - 1, full.size() - 1};
  for (size_t at = page; at < full.size(); at += page) {
    lengths.push_back(at);        // whole pages missing
    lengths.push_back(at + 100);  // a page cut short
    lengths.push_back(at - 100);
  }
  const std::string path = dir.File("cut.db");
  SECTION("truncated") {
    for (size_t len : lengths) {
      INFO("truncated to " << len << " of " << full.size() << " bytes");
      RemoveDb(path);
      const std::string bytes = full.substr(0, len);
      WriteFile(path, bytes);
      ExpectRefused(path, StatusCode::kCorruption, bytes);
    }
  }
  SECTION("the header zeroed") {
    std::string bytes = full;
    std::fill(bytes.begin(), bytes.begin() + 100, '\0');
    RemoveDb(path);
    WriteFile(path, bytes);
    ExpectRefused(path, StatusCode::kCorruption, bytes);
  }
  SECTION("the first page zeroed") {
    std::string bytes = full;
    std::fill(bytes.begin(), bytes.begin() + page, '\0');
    RemoveDb(path);
    WriteFile(path, bytes);
    ExpectRefused(path, StatusCode::kCorruption, bytes);
  }
}

TEST_CASE("a SQLite database that is not Weft's is refused and left as it was",
          "[sdk][bad-input]") {
  TempDir dir;
  const std::string path = dir.File("other.db");
  SECTION("rollback journal") {
    Sql(path, "CREATE TABLE t(x); INSERT INTO t VALUES (1), ('two');");
  }
  SECTION("WAL mode") {
    Sql(path, "PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1);");
  }
  SECTION("with a table called meta") {
    Sql(path, "CREATE TABLE meta(a, b); INSERT INTO meta VALUES ('format', 'weft');");
  }
  SECTION("with a meta table that is not Weft's") {
    Sql(path,
        "CREATE TABLE meta(key TEXT PRIMARY KEY, value BLOB); "
        "INSERT INTO meta VALUES ('format', 'other');");
  }
  REQUIRE_FALSE(Exists(path + "-wal"));
  const std::string bytes = ReadFile(path);
  ExpectRefused(path, StatusCode::kCorruption, bytes);
}

TEST_CASE("a file that is not SQLite is refused and left as it was", "[sdk][bad-input]") {
  TempDir dir;
  const std::string path = dir.File("notes.txt");
  std::string text;
  for (int i = 0; i < 200; ++i) text += "line " + std::to_string(i) + ": not a database\n";
  SECTION("text") {
    WriteFile(path, text);
  }
  SECTION("short text") {
    WriteFile(path, "hello\n");
  }
  SECTION("random bytes") {
    Rng rng(7);
    std::string junk(3 * 4096, '\0');
    for (char& c : junk) c = static_cast<char>(rng.Below(256));
    WriteFile(path, junk);
  }
  SECTION("a SQLite header on junk") {
    std::string junk = "SQLite format 3";
    junk.push_back('\0');
    junk += text;
    WriteFile(path, junk);
  }
  const std::string bytes = ReadFile(path);
  ExpectRefused(path, StatusCode::kCorruption, bytes);
}

TEST_CASE("a database from a newer Weft is refused and left as it was", "[sdk][bad-input]") {
  TempDir dir;
  const std::string path = dir.File("new.db");
  MakeWeftDb(path, 20);
  Sql(path, "UPDATE meta SET value = 999 WHERE key = 'schema_version';");
  REQUIRE_FALSE(Exists(path + "-wal"));
  const std::string bytes = ReadFile(path);
  ExpectRefused(path, StatusCode::kUnsupportedVersion, bytes);
  ReplicaOptions no_create = Options();
  no_create.create_if_missing = false;
  ExpectRefused(path, StatusCode::kUnsupportedVersion, bytes, no_create);
}

TEST_CASE("opening a missing file without create_if_missing creates nothing", "[sdk][bad-input]") {
  TempDir dir;
  const std::string path = dir.File("missing.db");
  ReplicaOptions opts = Options();
  opts.create_if_missing = false;
  auto r = Replica::Open(path, opts);
  CHECK(r.status().code() == StatusCode::kIOError);
  CHECK_FALSE(Exists(path));
  CHECK_FALSE(Exists(path + "-wal"));
}

namespace {

// Flips one bit of the blob in `column` of the row `where` selects, through sqlite3 directly.
void FlipStoredBit(const std::string& path, const std::string& table, const std::string& column,
                   const std::string& where, size_t byte) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  std::string q = "SELECT rowid, " + column + " FROM " + table + " WHERE " + where + " LIMIT 1";
  REQUIRE(sqlite3_prepare_v2(db, q.c_str(), -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  int64_t rowid = sqlite3_column_int64(st, 0);
  std::string blob(static_cast<const char*>(sqlite3_column_blob(st, 1)),
                   static_cast<size_t>(sqlite3_column_bytes(st, 1)));
  sqlite3_finalize(st);
  REQUIRE(byte < blob.size());
  blob[byte] ^= 0x10;
  std::string u = "UPDATE " + table + " SET " + column + " = ? WHERE rowid = ?";
  REQUIRE(sqlite3_prepare_v2(db, u.c_str(), -1, &st, nullptr) == SQLITE_OK);
  sqlite3_bind_blob(st, 1, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 2, rowid);
  REQUIRE(sqlite3_step(st) == SQLITE_DONE);
  sqlite3_finalize(st);
  REQUIRE(sqlite3_close(db) == SQLITE_OK);
}

int64_t CountRows(const std::string& path, const std::string& table) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  std::string q = "SELECT count(*) FROM " + table;
  REQUIRE(sqlite3_prepare_v2(db, q.c_str(), -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  int64_t n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  REQUIRE(sqlite3_close(db) == SQLITE_OK);
  return n;
}

void ExpectCorruptionNamingDoc(const Status& s) {
  INFO(s.ToString());
  CHECK(s.code() == StatusCode::kCorruption);
  CHECK(s.message().find("\"doc\"") != std::string::npos);
}

}  // namespace

TEST_CASE("a corrupt change in the op log is refused, naming its document, and changes nothing",
          "[sdk][bad-input]") {
  TempDir dir;
  const std::string path = dir.File("log.db");
  ReplicaOptions opts = Options();
  opts.snapshot_every = 0;  // keep every change a row of the log
  opts.snapshot_every_ops = 0;
  VersionVector six;
  {
    auto r = OpenAt(path, opts);
    for (int i = 0; i < 10; ++i) {
      REQUIRE(Edit(*r, i).ok());
      if (i == 5) six = *r->Version(kDoc);
    }
  }
  REQUIRE(CountRows(path, "changes") == 10);
  // A bit flip inside the change's bytes: the blob may still decode, the checksum says no.
  FlipStoredBit(path, "changes", "data", "seq = 5", 12);
  const std::string bytes = DataTables(path);
  {
    auto r = OpenAt(path, opts);
    ExpectCorruptionNamingDoc(r->Read(kDoc, [](const View&) {}));
    ExpectCorruptionNamingDoc(r->ChangesSince(kDoc, {}).status());
    ExpectCorruptionNamingDoc(
        r->Transact(kDoc, [](Txn& t) { return t.root().Put("x", 1); }).status());
    ExpectCorruptionNamingDoc(r->Snapshot(kDoc));
    // A peer that has the damaged change is served what it lacks.
    auto rest = r->ChangesSince(kDoc, six);
    INFO(rest.status().ToString());
    REQUIRE(rest.ok());
    CHECK(rest->size() == 4);
  }
  CHECK(DataTables(path) == bytes);
}

TEST_CASE("a corrupt history segment is refused, naming its document, and changes nothing",
          "[sdk][bad-input]") {
  TempDir dir;
  const std::string path = dir.File("seg.db");
  ReplicaOptions opts = Options();
  opts.snapshot_every = 0;
  opts.snapshot_every_ops = 0;
  std::string canonical;
  VersionVector middle;
  {
    auto r = OpenAt(path, opts);
    for (int i = 0; i < 10; ++i) REQUIRE(Edit(*r, i).ok());
    REQUIRE(r->Snapshot(kDoc).ok());  // the ten changes become a segment
    middle = *r->Version(kDoc);
    for (int i = 10; i < 13; ++i) REQUIRE(Edit(*r, i).ok());
    canonical = Canonical(*r);
  }
  REQUIRE(CountRows(path, "segments") == 1);
  REQUIRE(CountRows(path, "changes") == 3);
  FlipStoredBit(path, "segments", "data", "1", 20);
  const std::string bytes = DataTables(path);
  {
    auto r = OpenAt(path, opts);
    // The document opens from its snapshot and the rows after it; the segment is not needed.
    CHECK(Canonical(*r) == canonical);
    // Serving a peer from the segment fails clearly ...
    ExpectCorruptionNamingDoc(r->ChangesSince(kDoc, {}).status());
    // ... a peer that has everything in it is served the rows without reading it ...
    auto rest = r->ChangesSince(kDoc, middle);
    INFO(rest.status().ToString());
    REQUIRE(rest.ok());
    CHECK(rest->size() == 3);
  }
  CHECK(DataTables(path) == bytes);
  {
    auto r = OpenAt(path, opts);
    REQUIRE(Edit(*r, 13).ok());
    REQUIRE(Edit(*r, 14).ok());
  }
  // Compactions go on until four segments of a size merge, which reads the damaged one: that
  // compaction fails and leaves the log as it was.
  {
    auto r = OpenAt(path, opts);
    Status s;
    int round = 0;
    for (; round < 6; ++round) {
      for (int i = 0; i < 8; ++i) REQUIRE(Edit(*r, 20 + round * 10 + i).ok());
      const int64_t rows = CountRows(path, "changes"), segs = CountRows(path, "segments");
      s = r->Snapshot(kDoc);
      if (!s.ok()) {
        CHECK(CountRows(path, "segments") == segs);
        CHECK(CountRows(path, "changes") == rows);
        break;
      }
      REQUIRE(CountRows(path, "changes") == 0);
    }
    CHECK(round < 6);
    ExpectCorruptionNamingDoc(s);
    CHECK(Canonical(*r).size() > 0);  // the open document is unaffected
  }
}
