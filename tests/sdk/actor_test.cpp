// Authors across opens (actor_lease.h): a database closed cleanly keeps its author ID, so version
// vectors stay bounded; a crash, a copy taken while open, a restore from an old copy or a missing
// lease gets a new one, so no seq is ever issued twice with different content.
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "open_replica.h"
#include "temp_dir.h"
#include "weft/replica.h"

using namespace weft;

namespace {

using testing::OpenReplicaAt;
constexpr auto OpenAt = [](const std::string& path, ReplicaOptions opts = {}) {
  return OpenReplicaAt(path, std::move(opts));
};

void Incr(Replica& r) {
  REQUIRE(r.Transact("doc", [](Txn& t) {
             auto c = t.root().Counter("n");
             return c.ok() ? c->Increment(1) : c.status();
           }).ok());
}

// Copies the database file and its WAL (and the lease when `with_lease`), as a backup tool would.
void CopyFiles(const std::string& from, const std::string& to, bool with_lease) {
  namespace fs = std::filesystem;
  for (std::string suffix : {"", "-wal", "-lease"}) {
    if (suffix == "-lease" && !with_lease) continue;
    fs::remove(to + suffix);
    if (fs::exists(from + suffix)) fs::copy_file(from + suffix, to + suffix);
  }
  fs::remove(to + "-shm");
}

}  // namespace

TEST_CASE("a database closed cleanly keeps its author: one vector entry for 200 opens", "[sdk]") {
  testing::TempDir dir;
  const std::string path = dir.File("x.db");
  NodeId first;
  for (int i = 0; i < 200; ++i) {
    auto r = OpenAt(path);
    if (i == 0) first = r->actor_id();
    CHECK(r->actor_id() == first);
    Incr(*r);
  }
  auto r = OpenAt(path);
  auto v = r->Version("doc");
  REQUIRE(v.ok());
  CHECK(v->entries().size() == 1);
  CHECK(v->Get(first) == 201);  // the first change also made the counter
}

TEST_CASE("a new author whenever the database may not be the author's latest state", "[sdk]") {
  testing::TempDir dir;
  const std::string path = dir.File("x.db");
  NodeId before;
  uint64_t first_seqs = 0, at_backup = 0;
  {
    auto r = OpenAt(path);
    before = r->actor_id();
    Incr(*r);
    first_seqs = r->Version("doc")->Get(before);
  }
  SECTION("a copy taken while open, restored later") {
    const std::string backup = dir.File("backup.db");
    {
      auto r = OpenAt(path);
      CHECK(r->actor_id() == before);
      Incr(*r);
      CopyFiles(path, backup, /*with_lease=*/true);  // hot: the database and its lease say open
      at_backup = r->Version("doc")->Get(before);
      Incr(*r);  // a seq peers may hold
    }
    CopyFiles(backup, path, /*with_lease=*/true);
    auto restored = OpenAt(path);
    CHECK(restored->actor_id() != before);
    CHECK(restored->Version("doc")->Get(before) == at_backup);  // the backup's state
  }
  SECTION("a database restored from an old copy taken while closed") {
    const std::string backup = dir.File("backup.db");
    CopyFiles(path, backup, /*with_lease=*/false);
    {
      auto r = OpenAt(path);
      CHECK(r->actor_id() == before);
      Incr(*r);  // a seq of `before` that the old copy lacks
    }
    CopyFiles(backup, path, /*with_lease=*/false);
    auto restored = OpenAt(path);
    CHECK(restored->actor_id() != before);
    Incr(*restored);  // a new author: that seq of `before` is never issued again
    CHECK(restored->Version("doc")->Get(before) == first_seqs);
  }
  SECTION("a database copied to another path (another device)") {
    const std::string copy = dir.File("copy.db");
    CopyFiles(path, copy, /*with_lease=*/false);
    CHECK(OpenAt(copy)->actor_id() != before);
    CHECK(OpenAt(path)->actor_id() == before);  // the original keeps its author
  }
  SECTION("a lease that is missing or damaged") {
    std::filesystem::remove(path + "-lease");
    NodeId after;
    {
      auto r = OpenAt(path);
      after = r->actor_id();
      CHECK(after != before);
    }
    { std::ofstream(path + "-lease") << "weft-actor-lease 1 zz closed 2\n"; }
    CHECK(OpenAt(path)->actor_id() != after);
  }
  SECTION("two opens of one database at once") {
    auto a = OpenAt(path);
    auto b = OpenAt(path);
    CHECK(a->actor_id() == before);
    CHECK(b->actor_id() != before);  // the first holds the lease open
    Incr(*a);
    Incr(*b);
    NodeId second = b->actor_id();
    b.reset();
    a.reset();  // closes after the second: the lease names the second's generation
    auto c = OpenAt(path);
    CHECK(c->actor_id() == second);
    CHECK(c->Version("doc")->Get(before) == first_seqs + 1);
  }
}

TEST_CASE("a process that dies without closing leaves the next open a new author", "[sdk]") {
  testing::TempDir dir;
  const std::string path = dir.File("x.db");
  NodeId before = OpenAt(path)->actor_id();
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // The child writes under `before` and exits without closing (as a kill would).
    ReplicaOptions o;
    o.public_documents = true;  // one op: the put
    auto r = Replica::Open(path, o);
    bool ok = r.ok() && (*r)->actor_id() == before &&
              (*r)->Transact("doc", [](Txn& t) { return t.root().Put("k", Scalar("v")); }).ok();
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  auto r = OpenAt(path);
  CHECK(r->actor_id() != before);
  CHECK(r->Version("doc")->Get(before) == 1);
}
