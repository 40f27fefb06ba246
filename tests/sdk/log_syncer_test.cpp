// LogSyncer, the group commit of Durability::kGroup: commits are made durable by fsyncs of the
// log file, in order, and a failing fsync is reported to the commits it should have covered.
#include "log_syncer.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <future>
#include <mutex>
#include <vector>

#include "temp_dir.h"

using weft::LogSyncer;
using weft::Status;

TEST_CASE("log syncer: every commit becomes durable and its waiter is told once", "[sdk]") {
  weft::testing::TempDir dir;
  std::string wal = dir.File("db") + "-wal";
  std::ofstream(wal) << "frames";
  LogSyncer syncer(dir.File("db"), "");
  CHECK(syncer.Latest() == 0);
  std::mutex mu;
  std::condition_variable cv;
  std::vector<uint64_t> told;
  std::vector<uint64_t> commits;
  for (int i = 0; i < 20; ++i) {
    uint64_t c = syncer.Committed();
    commits.push_back(c);
    syncer.WhenDurable(c, [&, c](Status s) {
      CHECK(s.ok());
      std::lock_guard lock(mu);
      told.push_back(c);
      cv.notify_all();
    });
  }
  CHECK(syncer.Latest() == 20);
  REQUIRE(syncer.WaitDurable(20).ok());
  CHECK(syncer.GetStats().syncs >= 1);
  CHECK(syncer.GetStats().failures == 0);
  // WaitDurable returns once the commits are durable; the thread may still be telling waiters.
  std::unique_lock lock(mu);
  REQUIRE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return told.size() >= 20; }));
  std::sort(told.begin(), told.end());  // the order holds only among waiters the thread told
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
