// Crash safety with real processes: a child process commits in a loop and is killed with SIGKILL
// at a random moment, again and again on the same database.
//
// The child opens the replica (synchronous=NORMAL, the default; a snapshot and log compaction every
// 40 changes) and commits transactions that each add 1 to a counter and write key "k<i>" = i,
// where i is the new counter value; after each Transact returns OK it writes i to a pipe. After
// each kill the parent checks a copy of the files the child left (database and WAL): PRAGMA
// integrity_check is "ok", the replica opens, and it holds every transaction the child reported,
// each whole. The next child then opens the original files, as the killed one left them, so every
// run starts by recovering from a crash.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <random>
#include <string>

#include "random.h"
#include "temp_dir.h"
#include "weft/replica.h"

using namespace weft;
using weft::testing::Rng;
using weft::testing::TempDir;

namespace {

constexpr const char* kDoc = "doc";

// The counter of `doc` (0 when the document does not exist yet).
Result<int64_t> CounterOf(Replica& r) {
  int64_t n = 0;
  Status inner;
  Status s = r.Read(kDoc, [&](const View& v) {
    auto c = v.root().Counter("n");
    if (!c.ok()) {
      inner = c.status();
      return;
    }
    auto value = c->Value();
    if (value.ok()) n = *value;
    inner = value.status();
  });
  if (s.code() == StatusCode::kNotFound) return int64_t{0};
  if (!s.ok()) return s;
  if (!inner.ok()) return inner;
  return n;
}

// The child: commits until killed. Never returns; uses no test macros.
[[noreturn]] void CommitForever(const std::string& path, int fd) {
  // A small snapshot policy, so that snapshots and the log compactions that go with them (rows
  // folded into segments, segments merged) happen often, and some are killed midway.
  ReplicaOptions opts;
  opts.snapshot_every = 40;
  auto r = Replica::Open(path, opts);
  if (!r.ok()) {
    std::fprintf(stderr, "child: open: %s\n", r.status().ToString().c_str());
    _exit(2);
  }
  auto start = CounterOf(**r);
  if (!start.ok()) {
    std::fprintf(stderr, "child: read: %s\n", start.status().ToString().c_str());
    _exit(3);
  }
  for (int64_t i = *start + 1;; ++i) {
    auto c = (*r)->Transact(kDoc, [&](Txn& t) {
      auto n = t.root().Counter("n");
      WEFT_RETURN_IF_ERROR(n.status());
      WEFT_RETURN_IF_ERROR(n->Increment(1));
      return t.root().Put("k" + std::to_string(i), i);
    });
    if (!c.ok()) {
      std::fprintf(stderr, "child: commit %lld: %s\n", static_cast<long long>(i),
                   c.status().ToString().c_str());
      _exit(4);
    }
    // 8 bytes, less than PIPE_BUF: the write is atomic, so the parent reads whole records.
    if (write(fd, &i, sizeof i) != static_cast<ssize_t>(sizeof i)) _exit(5);
  }
}

void CopyFile(const std::string& from, const std::string& to) {
  std::filesystem::remove(to);
  if (std::filesystem::exists(from)) std::filesystem::copy_file(from, to);
}

// Copies the database and WAL the child left (not the shared-memory index: recovery rebuilds it).
void CopyCrashed(const std::string& from, const std::string& to) {
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(to + suffix);
  CopyFile(from, to);
  CopyFile(from + "-wal", to + "-wal");
}

// The first column of the first row of `sql` as an integer (-1 on any error).
int64_t QueryInt(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  int64_t out = -1;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK &&
      sqlite3_prepare_v2(db, sql, -1, &st, nullptr) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    out = sqlite3_column_int64(st, 0);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

std::string IntegrityCheck(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    std::string e = sqlite3_errmsg(db);
    sqlite3_close(db);
    return "open: " + e;
  }
  std::string out;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, nullptr) != SQLITE_OK) {
    out = std::string("prepare: ") + sqlite3_errmsg(db);
  } else {
    while (sqlite3_step(st) == SQLITE_ROW) {
      if (!out.empty()) out += "\n";
      auto* text = sqlite3_column_text(st, 0);
      out += text ? reinterpret_cast<const char*>(text) : "";
    }
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

// Reads every whole 8-byte record available on `fd` until `deadline` (or EOF, when `deadline` is
// nullopt), keeping the last. Returns false at EOF.
bool ReadReports(int fd, std::string& buf, int64_t& last,
                 std::optional<std::chrono::steady_clock::time_point> deadline) {
  for (;;) {
    int timeout_ms = -1;
    if (deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          *deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return true;
      timeout_ms = static_cast<int>(left.count());
    }
    pollfd p{fd, POLLIN, 0};
    int n = poll(&p, 1, timeout_ms);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return true;  // timed out
    char chunk[4096];
    ssize_t got = read(fd, chunk, sizeof chunk);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;  // EOF: the child is gone
    buf.append(chunk, static_cast<size_t>(got));
    size_t whole = buf.size() / sizeof(int64_t) * sizeof(int64_t);
    if (whole > 0) {
      std::memcpy(&last, buf.data() + whole - sizeof(int64_t), sizeof(int64_t));
      buf.erase(0, whole);
    }
  }
}

// Forks a committing child on `path`, kills it at a random moment, and checks what it left.
// `floor`: the counter every earlier run verified; raised to this run's counter.
void KillOnce(const std::string& path, const std::string& scratch, Rng& rng, int64_t& floor) {
  int fds[2];
  REQUIRE(pipe2(fds, O_CLOEXEC) == 0);
  std::fflush(nullptr);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    CommitForever(path, fds[1]);
  }
  close(fds[1]);

  // A quarter of the kills come early (while the child opens, recovers and makes its first
  // commits); the rest after its first report, somewhere in the commit loop.
  using Clock = std::chrono::steady_clock;
  std::string buf;
  int64_t last = 0;
  bool alive = true;
  if (rng.Below(4) == 0) {
    alive = ReadReports(fds[0], buf, last, Clock::now() + std::chrono::milliseconds(rng.Below(25)));
  } else {
    // Wait (generously: this bounds a hang, it is not a timing check) for the first report.
    auto give_up = Clock::now() + std::chrono::seconds(120);
    while (alive && last == 0 && Clock::now() < give_up) {
      alive = ReadReports(fds[0], buf, last, Clock::now() + std::chrono::milliseconds(10));
    }
    if (alive) {
      alive =
          ReadReports(fds[0], buf, last, Clock::now() + std::chrono::milliseconds(rng.Below(120)));
    }
  }
  kill(pid, SIGKILL);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  ReadReports(fds[0], buf, last, std::nullopt);  // whatever it wrote before it died
  close(fds[0]);
  INFO("child exit status " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1)
                            << ", last reported commit " << last);
  REQUIRE(WIFSIGNALED(status));  // the child failed on its own otherwise (see its stderr)
  REQUIRE(WTERMSIG(status) == SIGKILL);

  // A child killed before it created the database (an early kill of the first run) left nothing
  // to check, and can have reported no commit.
  if (!std::filesystem::exists(path)) {
    CHECK(last == 0);
    CHECK(floor == 0);
    return;
  }
  // SQLite's own check, on a copy (the original stays as the child left it, for the next child).
  CopyCrashed(path, scratch);
  CHECK(IntegrityCheck(scratch) == "ok");
  // Weft's open recovers the WAL and finds every reported commit, each whole.
  CopyCrashed(path, scratch);
  auto r = Replica::Open(scratch);
  INFO("reopen: " << r.status().ToString());
  REQUIRE(r.ok());
  auto counter = CounterOf(**r);
  INFO("read: " << counter.status().ToString());
  REQUIRE(counter.ok());
  const int64_t n = *counter;
  INFO("counter " << n << ", verified before " << floor);
  CHECK(n >= last);
  CHECK(n >= floor);
  int64_t bad = 0, first_bad = 0;
  size_t keys = 0;
  Status read = (*r)->Read(kDoc, [&](const View& v) {
    auto root = v.root();
    auto all = root.Keys();
    keys = all.ok() ? all->size() : 0;
    for (int64_t i = 1; i <= n; ++i) {
      auto got = root.Get("k" + std::to_string(i));
      if (!got.ok() || got->values.size() != 1 ||
          !(got->values[0].value == crdt::Value(crdt::Scalar(i)))) {
        if (bad++ == 0) first_bad = i;
      }
    }
  });
  if (n > 0) {
    INFO("read: " << read.ToString());
    REQUIRE(read.ok());
    INFO("first missing or wrong key: k" << first_bad);
    CHECK(bad == 0);
    CHECK(keys == static_cast<size_t>(n) + 1);  // "n" and k1..kn: no commit half there
  } else {
    CHECK(read.code() == StatusCode::kNotFound);
  }
  r->reset();
  floor = n;
}

void KillRepeatedly(int kills) {
  uint64_t seed = testing::SeedFromEnv();
  if (seed == 0)
    seed = (static_cast<uint64_t>(std::random_device{}()) << 32) | std::random_device{}();
  INFO("seed " << seed << " (WEFT_SEED=" << seed << " replays the kill moments)");
  Rng rng(seed);
  TempDir dir;
  const std::string path = dir.File("crash.db"), scratch = dir.File("check.db");
  int64_t floor = 0;
  for (int k = 0; k < kills; ++k) {
    INFO("kill " << k + 1 << " of " << kills);
    KillOnce(path, scratch, rng, floor);
  }
  // The loop made progress: committed transactions survived the kills.
  CHECK(floor > 0);
  // And compaction ran among the commits: the log was folded into segments.
  INFO("commits " << floor);
  if (floor >= 80) CHECK(QueryInt(path, "SELECT count(*) FROM segments") > 0);
}

}  // namespace

TEST_CASE("commits survive SIGKILL at random moments", "[sdk][crash]") {
  KillRepeatedly(40);
}

TEST_CASE("commits survive 200 SIGKILLs at random moments", "[sdk][crash][slow]") {
  KillRepeatedly(200);
}
