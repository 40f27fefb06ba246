// Group commit for Durability::kGroup (see log_syncer.h).
#include "log_syncer.h"

#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace weft {

LogSyncer::LogSyncer(std::string db_path, std::string vfs)
    : db_path_(std::move(db_path)), vfs_(std::move(vfs)), wal_path_(db_path_ + "-wal") {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "weft-logsync");
    Run();
  });
}

LogSyncer::~LogSyncer() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  if (fd_ >= 0) ::close(fd_);
  if (ckpt_db_) sqlite3_close_v2(ckpt_db_);
}

bool LogSyncer::OnWalSize(int frames) {
  if (frames < kCheckpointFrames) return false;
  if (frames >= kMaxFrames) return true;
  {
    std::lock_guard lock(mu_);
    checkpoint_ = true;
  }
  cv_.notify_all();
  return false;
}

void LogSyncer::Checkpoint() {
  if (!ckpt_db_) {
    int rc =
        sqlite3_open_v2(db_path_.c_str(), &ckpt_db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                        vfs_.empty() ? nullptr : vfs_.c_str());
    if (rc != SQLITE_OK) {
      sqlite3_close_v2(ckpt_db_);
      ckpt_db_ = nullptr;
      return;  // the writer checkpoints itself once the WAL passes kMaxFrames
    }
    sqlite3_busy_timeout(ckpt_db_, 1000);
    // Opening reads nothing: a first statement makes the connection see the file in WAL mode
    // (a checkpoint before that does nothing).
    if (sqlite3_exec(ckpt_db_, "PRAGMA journal_mode", nullptr, nullptr, nullptr) != SQLITE_OK) {
      sqlite3_close_v2(ckpt_db_);
      ckpt_db_ = nullptr;
      return;
    }
  }
  // PASSIVE: copies what no reader still needs, without blocking anyone; the log is synced
  // before and the database after, as SQLite's checkpoints always are.
  if (sqlite3_wal_checkpoint_v2(ckpt_db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr) ==
      SQLITE_OK) {
    std::lock_guard lock(mu_);
    ++checkpoints_;
  }
}

uint64_t LogSyncer::Committed() {
  uint64_t n;
  {
    std::lock_guard lock(mu_);
    n = ++committed_;
  }
  cv_.notify_all();
  return n;
}

LogSyncer::Stats LogSyncer::GetStats() {
  std::lock_guard lock(mu_);
  return {committed_, syncs_, failures_, checkpoints_};
}

uint64_t LogSyncer::Latest() {
  std::lock_guard lock(mu_);
  return committed_;
}

void LogSyncer::WhenDurable(uint64_t n, std::function<void(Status)> fn) {
  Status now;
  {
    std::lock_guard lock(mu_);
    if (n > durable_ && n > failed_upto_) {
      waiters_.emplace(n, std::move(fn));
      return;
    }
    now = n <= durable_ ? Status::Ok() : last_error_;
  }
  fn(now);
}

Status LogSyncer::WaitDurable(uint64_t n) {
  std::unique_lock lock(mu_);
  done_cv_.wait(lock, [&] { return n <= durable_ || n <= failed_upto_; });
  return n <= durable_ ? Status::Ok() : last_error_;
}

void LogSyncer::Run() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock,
             [&] { return stop_ || checkpoint_ || committed_ > std::max(durable_, failed_upto_); });
    if (committed_ <= std::max(durable_, failed_upto_)) {
      if (stop_) return;  // nothing left to sync
      // Only a checkpoint asked for.
      checkpoint_ = false;
      lock.unlock();
      Checkpoint();
      lock.lock();
      continue;
    }
    const uint64_t target = committed_;
    lock.unlock();
    // Every commit counted so far has written its frames: this fsync makes them durable.
    Status s;
    if (fd_ < 0) fd_ = ::open(wal_path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
      s = Status::IOError("open " + wal_path_ + ": " + std::strerror(errno));
    } else if (::fdatasync(fd_) != 0) {
      s = Status::IOError("fsync " + wal_path_ + ": " + std::strerror(errno));
    }
    lock.lock();
    ++syncs_;
    if (s.ok()) {
      durable_ = target;
    } else {
      ++failures_;
      failed_upto_ = target;
      last_error_ = s;
    }
    std::vector<std::function<void(Status)>> ready;
    while (!waiters_.empty() && waiters_.begin()->first <= target) {
      ready.push_back(std::move(waiters_.begin()->second));
      waiters_.erase(waiters_.begin());
    }
    done_cv_.notify_all();
    const bool checkpoint = checkpoint_ && !stop_;
    checkpoint_ = false;
    lock.unlock();
    for (auto& fn : ready) fn(s);
    // After the waiters are told: a checkpoint takes longer than an fsync.
    if (checkpoint) Checkpoint();
    lock.lock();
  }
}

}  // namespace weft
