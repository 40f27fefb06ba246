// Group commit for Durability::kGroup (see log_syncer.h).
#include "log_syncer.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace weft {

LogSyncer::LogSyncer(std::string wal_path) : wal_path_(std::move(wal_path)) {
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
    cv_.wait(lock, [&] { return stop_ || committed_ > std::max(durable_, failed_upto_); });
    if (committed_ <= std::max(durable_, failed_upto_)) return;  // stopping, nothing to sync
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
    if (s.ok()) {
      durable_ = target;
    } else {
      failed_upto_ = target;
      last_error_ = s;
    }
    std::vector<std::function<void(Status)>> ready;
    while (!waiters_.empty() && waiters_.begin()->first <= target) {
      ready.push_back(std::move(waiters_.begin()->second));
      waiters_.erase(waiters_.begin());
    }
    done_cv_.notify_all();
    lock.unlock();
    for (auto& fn : ready) fn(s);
    lock.lock();
  }
}

}  // namespace weft
