// End-to-end encrypted documents through the weft-relay binary (a child process on loopback, on a
// port the kernel picks), on each of its stores (SQLite files, a PostgreSQL database): devices sync
// an encrypted document through it, members read and write it, and none of its content is anywhere
// in the relay's storage (database, WAL, anything else), while a plain document's content is (the
// control that shows each search finds stored content).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "pg_server.h"
#include "relay_process.h"
#include "temp_dir.h"
#include "weft/replica.h"
#include "weft/sync.h"

using namespace weft;
using namespace std::chrono_literals;

namespace {

using testing::RelayProcess;

void Check(const Status& s) {
  INFO(s.ToString());
  REQUIRE(s.ok());
}

std::unique_ptr<Replica> OpenDevice(const std::string& path) {
  auto r = Replica::Open(path);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  return std::move(*r);
}

// An owner or admin device sends the relay a sealed snapshot (an encrypted one of an encrypted
// document) whenever the relay holds its version and it changed: so that the relay (started with
// --snapshot-min-changes 1) bootstraps the devices that come later from one.
SyncOptions FastOptions() {
  SyncOptions o;
  o.initial_backoff = 50ms;
  o.max_backoff = 500ms;
  o.seal_min_seqs = 1;
  return o;
}

void SyncVia(Replica& r, uint16_t port, const std::vector<std::string>& docs) {
  auto s = SyncOnce(r, "ws://127.0.0.1:" + std::to_string(port), docs, 30s, FastOptions());
  INFO(s.status().ToString());
  REQUIRE(s.ok());
}

std::string State(Replica& r, const std::string& doc) {
  std::string s;
  Check(r.Read(doc, [&](const View& v) { s = v.CanonicalState(); }));
  return s;
}

// The encrypted document's content: values, a text and a map key (keys are content too).
constexpr char kOwnerValue[] = "E2E-MARKER-OWNER-93d1f0";
constexpr char kText[] = "E2E-MARKER-TEXT-5be2a7";
constexpr char kWriterValue[] = "E2E-MARKER-WRITER-c4e9b3";
constexpr char kMapKey[] = "MAPKEY-9a1c77";
std::vector<std::string> Secrets() {
  return {kOwnerValue, kText, kWriterValue, kMapKey};
}
// The plain document's value: the control. Short, in a change of its own, so that a PostgreSQL
// store keeps it as it is (PostgreSQL compresses values only in a row over about 2 KB).
constexpr char kControl[] = "PLAIN-CONTROL-MARKER-71aa0e";

struct Devices {
  std::unique_ptr<Replica> owner;
  std::unique_ptr<Replica> writer;
  std::unique_ptr<Replica> reader;
};

// The owner creates the encrypted document "vault" (a value under kMapKey, a text), grants it to
// a writer and a reader, and writes the plain document "plain" (kControl); all sync through the
// relay on `port`. The writer reads the document and writes to it under the current epoch; the
// reader reads all of it, its epochs' keys opened from the records the relay stored. The writer
// and the reader start from the owner's encrypted snapshot (FastOptions).
Devices ShareThroughRelay(const testing::TempDir& dir, uint16_t port) {
  Devices d{OpenDevice(dir.File("owner.db")), OpenDevice(dir.File("writer.db")),
            OpenDevice(dir.File("reader.db"))};
  Replica& owner = *d.owner;
  Check(owner.CreateEncryptedDocument("vault"));
  Check(owner.Transact("vault", [&](Txn& t) { return t.root().Put(kMapKey, Scalar(kOwnerValue)); })
            .status());
  Check(owner.Grant("vault", d.writer->public_key(), Role::kWriter).status());
  Check(owner.Grant("vault", d.reader->public_key(), Role::kReader).status());
  Check(owner
            .Transact("vault",
                      [&](Txn& t) {
                        auto text = t.root().Text("notes");
                        if (!text.ok()) return text.status();
                        return text->Insert(0, kText);
                      })
            .status());
  Check(owner.Transact("plain", [&](Txn& t) { return t.root().Put("k", Scalar(kControl)); })
            .status());
  Check(owner.Grant("plain", d.reader->public_key(), Role::kReader).status());
  SyncVia(owner, port, {"vault", "plain"});

  SyncVia(*d.writer, port, {"vault"});
  CHECK(State(*d.writer, "vault") == State(owner, "vault"));
  auto writer_base = d.writer->BaseVersion("vault");
  REQUIRE(writer_base.ok());
  CHECK(*writer_base == *owner.Version("vault"));  // the owner's encrypted snapshot
  Check(d.writer
            ->Transact("vault", [&](Txn& t) { return t.root().Put("reply", Scalar(kWriterValue)); })
            .status());
  SyncVia(*d.writer, port, {"vault"});
  SyncVia(owner, port, {"vault"});
  CHECK(State(owner, "vault").find(kWriterValue) != std::string::npos);

  SyncVia(*d.reader, port, {"vault", "plain"});
  const std::string state = State(*d.reader, "vault");
  CHECK(state == State(owner, "vault"));
  for (const char* m : {kOwnerValue, kText, kWriterValue}) {
    INFO(m);
    CHECK(state.find(m) != std::string::npos);
  }
  auto info = d.reader->Encryption("vault");
  REQUIRE(info.ok());
  CHECK(info->encrypted);
  CHECK(info->has_key);
  CHECK(info->missing_epochs.empty());
  CHECK(State(*d.reader, "plain").find(kControl) != std::string::npos);
  // The reader started from an encrypted snapshot the owner sealed and the relay kept, and took
  // the log after it.
  auto base = d.reader->BaseVersion("vault");
  REQUIRE(base.ok());
  CHECK_FALSE(base->empty());
  return d;
}

// For each needle looked for, the places (files, tables) holding it.
using Found = std::map<std::string, std::vector<std::string>>;

// Every file under `dir` (a database, its WAL and shared memory, keys, anything else) that holds
// each of `needles`; each file read once.
Found FilesHolding(const std::string& dir, const std::vector<std::string>& needles) {
  Found found;
  for (const std::string& n : needles) found[n];
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (const std::string& n : needles) {
      if (bytes.find(n) != std::string::npos) found[n].push_back(e.path().string());
    }
  }
  return found;
}

// A new database on the test process's PostgreSQL server (started on first use; a missing
// PostgreSQL fails the test, with the reason).
std::string NewPgDatabase() {
  auto server = testing::PgServer::Shared();
  INFO(server.status().ToString());
  REQUIRE(server.ok());
  auto db = (*server)->CreateDatabase();
  INFO(db.status().ToString());
  REQUIRE(db.ok());
  return *db;
}

std::unique_ptr<testing::PgSession> OpenPgSession(const std::string& db) {
  auto session = testing::PgSession::Open(db);
  INFO(session.status().ToString());
  REQUIRE(session.ok());
  return std::move(*session);
}

// Runs `sql` with `params` on `session`; its rows, each value as text.
std::vector<std::vector<std::string>> Rows(testing::PgSession& session, const std::string& sql,
                                           const std::vector<std::string>& params = {}) {
  auto rows = session.Query(sql, params);
  INFO(rows.status().ToString());
  REQUIRE(rows.ok());
  return std::move(*rows);
}

// Every table of the PostgreSQL database `session` is connected to (the relay's tables and the
// system catalogs, pg_statistic's sampled values among them) with a row holding each of
// `needles`. Each row is read whole in its text form as the server returns it: decompressed and
// joined from TOAST, which a search of the raw files cannot see through. bytea values come in
// hex, so a needle is looked for in hex too (a match off by half a byte could only add a find,
// never hide one).
Found TablesHolding(testing::PgSession& session, const std::vector<std::string>& needles) {
  Found found;
  for (const std::string& n : needles) found[n];
  Rows(session, "SET bytea_output = 'hex'");
  const auto tables = Rows(
      session,
      "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
      "WHERE c.relkind IN ('r', 'm') AND n.nspname <> 'pg_toast' ORDER BY 1");
  for (const std::vector<std::string>& table : tables) {
    // The table's name as the catalog quotes it, not input.
    const std::string sql = "SELECT count(*) FROM " + table[0] +
                            " t WHERE strpos(t::text, $1) > 0 OR "
                            "strpos(t::text, encode(convert_to($1, 'UTF8'), 'hex')) > 0";
    for (const std::string& n : needles) {
      if (Rows(session, sql, {n}).at(0).at(0) != "0") found[n].push_back(table[0]);
    }
  }
  return found;
}

// Requires none of the encrypted document's content among `found`.
void CheckNoSecrets(const Found& found) {
  for (const std::string& s : Secrets()) {
    INFO(s);
    CHECK(found.at(s) == std::vector<std::string>{});
  }
}

// The needles every search looks for: the encrypted content and the control.
std::vector<std::string> Needles() {
  std::vector<std::string> n = Secrets();
  n.push_back(kControl);
  return n;
}

}  // namespace

TEST_CASE("an encrypted document syncs through weft-relay, which never holds its content",
          "[sync][e2e][security]") {
  testing::TempDir dir;
  const std::string data = dir.File("relay");
  RelayProcess relay(data, 0, {"--snapshot-min-changes", "1"});
  Devices devices = ShareThroughRelay(dir, relay.port());

  // None of the encrypted content is in the relay's files, running (with its WAL) or killed.
  for (int pass = 0; pass < 2; ++pass) {
    INFO((pass == 0 ? "relay running" : "relay killed"));
    const Found found = FilesHolding(data, Needles());
    CHECK_FALSE(found.at(kControl).empty());
    CheckNoSecrets(found);
    if (pass == 0) CHECK(WIFSIGNALED(relay.Kill(SIGKILL)));
  }
}

// The same on PostgreSQL, searched two ways: through SQL, every table's every value as the server
// returns it (decompressed), and every file of the server's data directory (heap files, pg_wal)
// after a checkpoint. The raw-file search shows what PostgreSQL wrote as it is: a value in a row
// under about 2 KB, and the WAL records that wrote it (no full-page images: the test server runs
// without them). It cannot show a value PostgreSQL compressed (TOAST, pglz or lz4, in its row or
// in chunks of a TOAST table): plaintext there would be missed, which is what the SQL search is
// for; the large control shows that search finding a value PostgreSQL stored compressed.
TEST_CASE(
    "an encrypted document syncs through weft-relay on PostgreSQL, which never holds its "
    "content",
    "[sync][e2e][security][postgres]") {
  const std::string db = NewPgDatabase();
  testing::TempDir dir;
  const std::string data = dir.File("relay");  // the relay's own files: its store is `db`
  RelayProcess relay(data, 0,
                     {"--store", db, "--store-name", "e2e", "--snapshot-min-changes", "1"});
  Devices devices = ShareThroughRelay(dir, relay.port());

  // The control for compressed values: a plain value well over 2 KB and compressible.
  const std::string large_control = "PLAIN-CONTROL-LARGE-3f0c5d";
  Check(devices.owner
            ->Transact("plain",
                       [&](Txn& t) {
                         return t.root().Put("large",
                                             Scalar(large_control + std::string(16000, '.')));
                       })
            .status());
  SyncVia(*devices.owner, relay.port(), {"plain"});

  auto session = OpenPgSession(db);
  const std::string pg_dir = Rows(*session, "SHOW data_directory").at(0).at(0);
  std::vector<std::string> needles = Needles();
  needles.push_back(large_control);

  // Searched with the relay running, and again once it stopped (a relay may write as it stops).
  for (int pass = 0; pass < 2; ++pass) {
    INFO((pass == 0 ? "relay running" : "relay stopped"));
    const Found in_tables = TablesHolding(*session, needles);
    CHECK_FALSE(in_tables.at(kControl).empty());
    CHECK_FALSE(in_tables.at(large_control).empty());
    CheckNoSecrets(in_tables);

    Rows(*session, "CHECKPOINT");  // what shared buffers hold, written to the data files
    const Found in_files = FilesHolding(pg_dir, needles);
    CHECK_FALSE(in_files.at(kControl).empty());
    CheckNoSecrets(in_files);
    // The large control is not asserted either way in the files: whether its compressed form
    // holds it in one piece depends on the compression method (pglz breaks it up; lz4 may not).
    CheckNoSecrets(FilesHolding(data, needles));
    if (pass == 0) CHECK(relay.Kill(SIGTERM) == 0);
  }
}
