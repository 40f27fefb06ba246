// Storage faults: fail the Nth SQLite write or sync, for every N, across a local commit, a remote
// apply, a snapshot and a commit that triggers a WAL checkpoint (SQLite's own method, test_vfs.c).
//
// For each N the operation runs on a fresh copy of one base database through FaultVfs. It must
// succeed, or fail with kIOError; a failed operation leaves the open replica at the state before
// it, and the replica commits again. After closing and reopening (fault disarmed) the database
// passes PRAGMA integrity_check and holds exactly the state the open replica showed: the state
// before the operation when it failed, after it when it succeeded. N grows until the operation
// completes without reaching the fault. The fault fails the Nth call only, or every call from the
// Nth on, or every call until the replica is closed (see Mode).
#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "open_replica.h"
#include "temp_dir.h"
#include "weft/replica.h"
#include "weft/testing/fault_vfs.h"

using namespace weft;
using weft::testing::FaultVfs;
using weft::testing::TempDir;

namespace {

constexpr uint64_t kNowMs = 1'700'000'000'000;
constexpr const char* kDoc = "doc";
// SQLite's default page size and WAL auto-checkpoint threshold (the SDK changes neither).
constexpr uint64_t kPageSize = 4096;
constexpr uint64_t kWalFrameBytes = 24 + kPageSize;
constexpr uint64_t kAutoCheckpointFrames = 1000;

ReplicaOptions Options(const std::string& vfs, Durability durability) {
  ReplicaOptions o;
  o.clock = [] { return kNowMs; };   // every run makes byte-identical changes...
  o.session_actor = NodeId{0xFA17};  // ... under the same author on every open
  o.vfs = vfs;
  o.durability = durability;
  o.snapshot_every = 0;  // snapshots only where a scenario asks for one
  return o;
}

std::unique_ptr<Replica> OpenAt(const std::string& path, ReplicaOptions opts) {
  return testing::OpenReplicaAt(path, std::move(opts));
}

// The document's canonical state, or "<absent>" when the replica has no such document.
std::string Canonical(Replica& r) {
  std::string out;
  Status s = r.Read(kDoc, [&](const View& v) { out = v.CanonicalState(); });
  if (s.code() == StatusCode::kNotFound) return "<absent>";
  INFO(s.ToString());
  REQUIRE(s.ok());
  return out;
}

// Runs SQL through sqlite3 directly; returns the first column of the first row ("" if none).
std::string QueryOne(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
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

void RemoveDb(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    std::filesystem::remove(path + suffix);
  }
}

// Copies a database and its WAL, if any (no shared memory: the copy recovers the WAL on open).
void CopyDb(const std::string& from, const std::string& to) {
  RemoveDb(to);
  std::filesystem::copy_file(from, to);
  if (std::filesystem::exists(from + "-wal"))
    std::filesystem::copy_file(from + "-wal", to + "-wal");
}

uint64_t WalFrames(const std::string& path) {
  std::error_code ec;
  auto size = std::filesystem::file_size(path + "-wal", ec);
  return ec || size < 32 ? 0 : (size - 32) / kWalFrameBytes;
}

// The commit a test makes after a faulted operation, to show the replica still works.
Status CommitAgain(Replica& r) {
  return r.Transact(kDoc, [](Txn& t) { return t.root().Put("again", "yes"); }).status();
}

struct Scenario {
  const char* name;
  // Builds the base database (no faults).
  std::function<void(Replica&)> setup;
  // Optional: runs on the base after `setup`; the base is then copied while still open, so that
  // the WAL this leaves is part of it.
  std::function<void(Replica&, const std::string& path)> prepare;
  // The operation under test.
  std::function<Status(Replica&)> op;
  // Extra checks on the reopened database file, given whether the operation succeeded.
  std::function<void(const std::string& path, bool op_ok)> check;
};

struct Expected {
  std::string before, after, before_again, after_again;
};

// The states a run must end in, from fault-free runs on copies of the base.
Expected References(const Scenario& sc, const std::string& base, const std::string& work,
                    const FaultVfs& vfs, Durability durability) {
  Expected e;
  for (bool with_op : {false, true}) {
    CopyDb(base, work);
    auto r = OpenAt(work, Options(vfs.name(), durability));
    if (with_op) {
      Status s = sc.op(*r);
      INFO(s.ToString());
      REQUIRE(s.ok());
    }
    (with_op ? e.after : e.before) = Canonical(*r);
    REQUIRE(CommitAgain(*r).ok());
    (with_op ? e.after_again : e.before_again) = Canonical(*r);
  }
  RemoveDb(work);
  return e;
}

struct LoopResult {
  uint64_t runs = 0;      // values of N tried
  uint64_t failures = 0;  // runs in which the operation failed
};

enum class Mode {
  kOnce,        // only the Nth call fails
  kPersistent,  // the Nth and every later call fail, until the operation returns
  kUntilClosed  // ... until the replica is closed: a disk that stays broken until the app exits
};

// Fails the Nth `op` of `kind` for N = 1, 2, ... until the operation completes without reaching
// the fault; checks every run as the file comment says.
//
// kUntilClosed checks less after a failure: the replica cannot commit again, and when the failed
// call was the sync of a WAL commit (synchronous=FULL), the commit's frames were written whole
// before the sync failed; the checkpoint at close fails too, so the WAL stays, and the reopened
// database may hold the commit. Like a failed fsync, a failed sync leaves it unknown whether the
// write is durable; the reopened state must then be the one before or the one after.
LoopResult FailEveryN(const Scenario& sc, Durability durability, FaultVfs::Op kind, Mode mode) {
  TempDir dir;
  const std::string base = dir.File("base.db"), work = dir.File("work.db");
  const std::string copy = dir.File("copy.db");
  // Every open goes through the VFS (disarmed outside the operation), which skips fsync: this
  // test is about failures, not power loss, and must not wait for the disk.
  FaultVfs vfs("weft-fault");
  vfs.SkipRealSyncs(true);
  {
    auto r = OpenAt(base, Options(vfs.name(), durability));
    sc.setup(*r);
    if (sc.prepare) {
      sc.prepare(*r, base);
      CopyDb(base, copy);
    }
  }
  const std::string& start = sc.prepare ? copy : base;
  const Expected want = References(sc, start, work, vfs, durability);
  LoopResult result;
  for (uint64_t n = 1;; ++n) {
    INFO("N = " << n);
    REQUIRE(n < 100000);
    ++result.runs;
    CopyDb(start, work);
    auto r = OpenAt(work, Options(vfs.name(), durability));
    REQUIRE(Canonical(*r) == want.before);

    vfs.Arm(kind, n, mode != Mode::kOnce);
    Status s = sc.op(*r);
    const bool fired = vfs.Fired();
    if (mode != Mode::kUntilClosed) vfs.Disarm();
    INFO("operation: " << s.ToString() << "; fault reached: " << fired);

    if (!fired) REQUIRE(s.ok());
    std::string live = Canonical(*r);
    if (s.ok()) {
      CHECK(live == want.after);
    } else {
      ++result.failures;
      CHECK(s.code() == StatusCode::kIOError);
      CHECK(live == want.before);  // no partial in-memory state
    }
    if (mode == Mode::kUntilClosed) {
      r.reset();  // its checkpoint fails too
      vfs.Disarm();
      CHECK(QueryOne(work, "PRAGMA integrity_check") == "ok");
      auto reopened = OpenAt(work, Options(vfs.name(), durability));
      std::string state = Canonical(*reopened);
      if (s.ok() || kind == FaultVfs::Op::kWrite) {
        CHECK(state == live);
      } else {
        CHECK((state == want.before || state == want.after));
      }
      reopened.reset();
      if (!fired) break;
      continue;
    }
    // The replica still works: it commits again, onto the state it showed.
    Status again = CommitAgain(*r);
    INFO("commit again: " << again.ToString());
    CHECK(again.ok());
    live = Canonical(*r);
    CHECK(live == (s.ok() ? want.after_again : want.before_again));
    r.reset();

    CHECK(QueryOne(work, "PRAGMA integrity_check") == "ok");
    auto reopened = OpenAt(work, Options(vfs.name(), durability));
    CHECK(Canonical(*reopened) == live);
    reopened.reset();
    if (sc.check) sc.check(work, s.ok());
    if (!fired) break;
  }
  RemoveDb(work);
  return result;
}

// Every fault kind for one scenario. `sync_reached`: the operation must reach a sync (in WAL
// mode with synchronous=NORMAL only a checkpoint or a new WAL syncs). A failed write, and with
// synchronous=FULL a failed sync of the WAL at commit, must fail the operation at least once; a
// failed checkpoint must not (the commit before it is already in the WAL).
void RunScenario(const Scenario& sc, Durability durability, bool sync_reached) {
  const char* dname = durability == Durability::kFull ? "FULL" : "NORMAL";
  for (auto kind : {FaultVfs::Op::kWrite, FaultVfs::Op::kSync}) {
    for (Mode mode : {Mode::kOnce, Mode::kPersistent, Mode::kUntilClosed}) {
      const char* kname = kind == FaultVfs::Op::kWrite ? "write" : "sync";
      INFO(sc.name << ", synchronous=" << dname << ", failing the Nth " << kname
                   << (mode == Mode::kOnce         ? ""
                       : mode == Mode::kPersistent ? " and every one after it"
                                                   : " and every one after it until closed"));
      LoopResult r = FailEveryN(sc, durability, kind, mode);
      // The operation has to reach the fault at least once, or the loop tested nothing.
      if (kind == FaultVfs::Op::kWrite || sync_reached) CHECK(r.runs > 1);
      if (kind == FaultVfs::Op::kWrite || durability == Durability::kFull) {
        CHECK(r.failures > 0);
      }
    }
  }
}

Status LocalEdit(Replica& r, int round) {
  return r
      .Transact(kDoc,
                [&](Txn& t) {
                  auto root = t.root();
                  for (int i = 0; i < 8; ++i) {
                    WEFT_RETURN_IF_ERROR(root.Put("k" + std::to_string(round * 100 + i),
                                                  std::string(200, static_cast<char>('a' + i))));
                  }
                  auto counter = root.Counter("count");
                  WEFT_RETURN_IF_ERROR(counter.status());
                  WEFT_RETURN_IF_ERROR(counter->Increment(round + 1));
                  auto tags = root.Set("tags");
                  WEFT_RETURN_IF_ERROR(tags.status());
                  return tags->Add("t" + std::to_string(round));
                })
      .status();
}

void Setup(Replica& r) {
  for (int i = 0; i < 5; ++i) REQUIRE(LocalEdit(r, i).ok());
}

}  // namespace

TEST_CASE("failing any write or sync of a local commit", "[sdk][fault]") {
  Scenario sc{"a local commit", Setup, nullptr, [](Replica& r) { return LocalEdit(r, 50); },
              nullptr};
  RunScenario(sc, Durability::kNormal, false);
  RunScenario(sc, Durability::kFull, true);
}

TEST_CASE("failing any write or sync of the first commit of a new document", "[sdk][fault]") {
  Scenario sc{"a new document",
              [](Replica& r) {
                REQUIRE(r.Transact("other", [](Txn& t) { return t.root().Put("x", 1); }).ok());
              },
              nullptr, [](Replica& r) { return LocalEdit(r, 0); }, nullptr};
  // The base has no document kDoc: "before" is its absence, also in the open replica.
  RunScenario(sc, Durability::kNormal, false);
  RunScenario(sc, Durability::kFull, true);
}

TEST_CASE("failing any write or sync of a remote apply", "[sdk][fault]") {
  // The remote replica's changes: the first part the base already has, the rest is the batch.
  TempDir remote_dir;
  std::vector<ChangeBlob> first, batch;
  {
    ReplicaOptions ro = Options("", Durability::kNormal);
    ro.session_actor = NodeId{0xBEEF};  // another author than the replica under test
    auto remote = OpenAt(remote_dir.File("remote.db"), ro);
    for (int i = 0; i < 3; ++i) REQUIRE(LocalEdit(*remote, 10 + i).ok());
    auto v = remote->ChangesSince(kDoc, {});
    REQUIRE(v.ok());
    first = *v;
    auto known = remote->Version(kDoc);
    REQUIRE(known.ok());
    for (int i = 0; i < 6; ++i) REQUIRE(LocalEdit(*remote, 20 + i).ok());
    auto rest = remote->ChangesSince(kDoc, *known);
    REQUIRE(rest.ok());
    REQUIRE(rest->size() == 6);
    batch.assign(rest->rbegin(), rest->rend());  // out of causal order on purpose
    batch.push_back(first.front());              // and a duplicate
  }
  Scenario sc{"a remote apply",
              [&](Replica& r) {
                REQUIRE(r.ApplyRemoteChanges(kDoc, first).ok());
                Setup(r);
              },
              nullptr,
              [&](Replica& r) {
                auto rep = r.ApplyRemoteChanges(kDoc, batch);
                if (rep.ok()) {
                  CHECK(rep->applied == 6);
                  CHECK(rep->duplicates == 1);
                }
                return rep.status();
              },
              nullptr};
  RunScenario(sc, Durability::kNormal, false);
  RunScenario(sc, Durability::kFull, true);
}

TEST_CASE("failing any write or sync of a snapshot", "[sdk][fault]") {
  Scenario sc{"a snapshot",
              [](Replica& r) {
                for (int i = 0; i < 40; ++i) REQUIRE(LocalEdit(r, i).ok());
              },
              nullptr, [](Replica& r) { return r.Snapshot(kDoc); },
              [](const std::string& path, bool op_ok) {
                // The snapshot is there exactly when Snapshot said so, and it loads (the reopen
                // above read the document through it).
                CHECK(QueryOne(path, "SELECT count(*) FROM snapshots") == (op_ok ? "1" : "0"));
              }};
  RunScenario(sc, Durability::kNormal, false);
  RunScenario(sc, Durability::kFull, true);
}

TEST_CASE("failing any write or sync of a snapshot that merges history segments", "[sdk][fault]") {
  // Three snapshots leave three segments of about one size; the fourth folds the new rows into a
  // fourth and merges all four into one: segment rows read, written and deleted, log rows deleted.
  Scenario sc{"a snapshot with a merge",
              [](Replica& r) {
                for (int round = 0; round < 3; ++round) {
                  for (int i = 0; i < 3; ++i) REQUIRE(LocalEdit(r, round * 3 + i).ok());
                  REQUIRE(r.Snapshot(kDoc).ok());
                }
                for (int i = 9; i < 12; ++i) REQUIRE(LocalEdit(r, i).ok());
                REQUIRE(QueryOne(r.path(), "SELECT count(*) FROM segments") == "3");
              },
              nullptr, [](Replica& r) { return r.Snapshot(kDoc); },
              [](const std::string& path, bool op_ok) {
                // All or nothing: one merged segment and no rows but the commit made after the
                // operation, or the three segments and the three rows (and that commit) as before.
                CHECK(QueryOne(path, "SELECT count(*) FROM segments") == (op_ok ? "1" : "3"));
                CHECK(QueryOne(path, "SELECT count(*) FROM changes") == (op_ok ? "1" : "4"));
              }};
  RunScenario(sc, Durability::kNormal, false);
  RunScenario(sc, Durability::kFull, true);
}

TEST_CASE("failing any write or sync of a commit that triggers a WAL checkpoint", "[sdk][fault]") {
  // Small commits fill the WAL to just under SQLite's auto-checkpoint threshold; the commit under
  // test (a large value: many pages) crosses it, so SQLite checkpoints after the commit: WAL sync,
  // database writes, database sync. The commit is durable before the checkpoint starts.
  Scenario sc{
      "a commit with a checkpoint", Setup,
      [](Replica& r, const std::string& path) {
        for (int i = 0; WalFrames(path) + 10 < kAutoCheckpointFrames; ++i) {
          REQUIRE(r.Transact(kDoc, [&](Txn& t) {
                     return t.root().Put("fill" + std::to_string(i % 50), i);
                   }).ok());
        }
      },
      [](Replica& r) {
        return r
            .Transact(kDoc,
                      [](Txn& t) { return t.root().Put("big", std::string(20 * kPageSize, 'b')); })
            .status();
      },
      nullptr};
  RunScenario(sc, Durability::kNormal, true);
  RunScenario(sc, Durability::kFull, true);
}

TEST_CASE("the fault VFS counts and fails exactly what it is armed for", "[sdk][fault]") {
  TempDir dir;
  FaultVfs vfs("weft-fault-self");
  auto r = OpenAt(dir.File("a.db"), Options(vfs.name(), Durability::kFull));
  vfs.Arm(FaultVfs::Op::kSync, 1000000);
  REQUIRE(LocalEdit(*r, 1).ok());
  CHECK(vfs.Count(FaultVfs::Op::kWrite) > 0);
  CHECK(vfs.Count(FaultVfs::Op::kSync) > 0);  // FULL syncs the WAL at commit
  CHECK_FALSE(vfs.Fired());
  vfs.Arm(FaultVfs::Op::kWrite, 1);
  Status s = LocalEdit(*r, 2);
  CHECK(s.code() == StatusCode::kIOError);
  CHECK(vfs.Failures() == 1);
  vfs.Disarm();
  CHECK(LocalEdit(*r, 2).ok());
}
