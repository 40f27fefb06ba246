// LogSyncer, the group commit of Durability::kGroup: commits are made durable by fsyncs of the
// log file, in order, and a failing fsync is reported to the commits it should have covered.
#include "log_syncer.h"

#include <catch2/catch.hpp>
#include <fstream>
#include <future>
#include <mutex>
#include <vector>

#include "temp_dir.h"

using weft::LogSyncer;
using weft::Status;

TEST_CASE("log syncer: commits become durable in order", "[sdk]") {
  weft::testing::TempDir dir;
  std::string wal = dir.File("db") + "-wal";
  std::ofstream(wal) << "frames";
  LogSyncer syncer(dir.File("db"), "");
  CHECK(syncer.Latest() == 0);
  std::mutex mu;
  std::vector<uint64_t> told;
  std::vector<uint64_t> commits;
  for (int i = 0; i < 20; ++i) {
    uint64_t c = syncer.Committed();
    commits.push_back(c);
    syncer.WhenDurable(c, [&, c](Status s) {
      CHECK(s.ok());
      std::lock_guard lock(mu);
      told.push_back(c);
    });
  }
  CHECK(syncer.Latest() == 20);
  REQUIRE(syncer.WaitDurable(20).ok());
  std::lock_guard lock(mu);
  CHECK(told == commits);
}

TEST_CASE("log syncer: a log that cannot be synced fails its commits", "[sdk]") {
  weft::testing::TempDir dir;
  LogSyncer syncer(dir.File("missing/db"), "");
  uint64_t c = syncer.Committed();
  std::promise<Status> told;
  syncer.WhenDurable(c, [&](Status s) { told.set_value(s); });
  Status waited = syncer.WaitDurable(c);
  CHECK(waited.code() == weft::StatusCode::kIOError);
  CHECK(waited.message().find("missing/db-wal") != std::string::npos);
  CHECK(told.get_future().get().code() == weft::StatusCode::kIOError);
  // Asked again later: told the error at once.
  bool again = false;
  syncer.WhenDurable(c, [&](Status s) { again = !s.ok(); });
  CHECK(again);
}
