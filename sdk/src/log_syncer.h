// LogSyncer: group commit for Durability::kGroup (see weft/replica.h).
//
// SQLite commits in WAL mode with synchronous=NORMAL write their frames to the WAL without
// fsync. A LogSyncer thread fsyncs the WAL file on demand: every commit noted (Committed) before
// an fsync starts is durable once it returns, so one fsync serves all the commits made while
// the previous one ran. Each waiter is told once; those the thread tells, it tells in commit
// order (one asking when its commit is already durable is told at once, on its own thread).
//
// It also runs the database's WAL checkpoints (copying the log into the database file), on its
// own connection, so that no commit waits for one: the writer's connection reports its WAL size
// after each commit (OnWalSize, from sqlite3_wal_hook) instead of checkpointing itself.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <sqlite3.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "weft/status.h"

namespace weft {

class LogSyncer {
 public:
  // `wal_path`: the database's "-wal" file (opened at the first sync; it exists once a commit
  // was made in WAL mode).
  // `db_path` and `vfs` (empty: the default) name the database, checkpointed through a
  // connection of this thread.
  LogSyncer(std::string db_path, std::string vfs);
  // Syncs what was committed, tells the waiters, and stops.
  ~LogSyncer();
  LogSyncer(const LogSyncer&) = delete;
  LogSyncer& operator=(const LogSyncer&) = delete;

  // Notes a commit that has just completed; returns its number (from 1).
  uint64_t Committed();
  // The number of the latest commit noted (0: none).
  uint64_t Latest();
  // Calls `fn` (on the syncer's thread, or at once when already durable) once commit `n` is
  // durable, or with the error of the fsync that should have made it so.
  void WhenDurable(uint64_t n, std::function<void(Status)> fn);
  // Blocks until commit `n` is durable.
  Status WaitDurable(uint64_t n);
  // The WAL holds `frames` pages after a commit: from kCheckpointFrames on, the thread
  // checkpoints it (PASSIVE: without waiting for readers or writers). Returns true when the
  // caller should checkpoint itself, the WAL having grown past kMaxFrames (the thread is behind).
  bool OnWalSize(int frames);

  // Commits noted, fsyncs done and failed, checkpoints run.
  struct Stats {
    uint64_t commits = 0, syncs = 0, failures = 0, checkpoints = 0;
  };
  Stats GetStats();

  static constexpr int kCheckpointFrames = 1000;  // SQLite's auto-checkpoint size
  static constexpr int kMaxFrames = 50000;

 private:
  void Run();

  void Checkpoint();

  const std::string db_path_, vfs_, wal_path_;
  int fd_ = -1;
  sqlite3* ckpt_db_ = nullptr;  // this thread's connection, for checkpoints
  bool checkpoint_ = false;     // asked for (under mu_)
  uint64_t syncs_ = 0, failures_ = 0, checkpoints_ = 0;  // under mu_
  std::mutex mu_;
  std::condition_variable cv_;       // wakes the thread
  std::condition_variable done_cv_;  // wakes WaitDurable
  uint64_t committed_ = 0;
  uint64_t durable_ = 0;
  uint64_t failed_upto_ = 0;  // commits whose fsync failed (told their error)
  Status last_error_;
  bool stop_ = false;
  std::multimap<uint64_t, std::function<void(Status)>> waiters_;
  std::thread thread_;
};

}  // namespace weft
