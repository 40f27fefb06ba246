// An exclusive lock on a relay's data directory (flock on DIR/weft-relay.lock), held by a running
// relay for its life and by `weft-relay restore` while it replaces the store, so that neither
// starts on a directory the other is using.
//
// Thread safety: a resource owned by one thread; not copyable.
#pragma once

#include <string>

#include "weft/status.h"

namespace weft::relay {

class DirLock {
 public:
  DirLock() = default;
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;
  ~DirLock();  // releases the lock

  // Takes the lock (the directory must exist) and writes this process's ID into the lock file.
  // kBusy when another process holds it; kIOError when the file cannot be opened or locked.
  Status Acquire(const std::string& dir);

 private:
  int fd_ = -1;
};

// The name of the lock file in a data directory.
inline constexpr char kLockFileName[] = "weft-relay.lock";

}  // namespace weft::relay
