// See dir_lock.h.
#include "dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace weft::relay {

DirLock::~DirLock() {
  if (fd_ >= 0) ::close(fd_);
}

Status DirLock::Acquire(const std::string& dir) {
  std::string path = dir + "/" + kLockFileName;
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) return Status::IOError("cannot open " + path + ": " + std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    ::close(fd_);
    fd_ = -1;
    if (e == EWOULDBLOCK) {
      return Status(StatusCode::kBusy, "the data directory " + dir +
                                           " is in use by another weft-relay (" + path +
                                           " is locked)");
    }
    return Status::IOError("cannot lock " + path + ": " + std::strerror(e));
  }
  // For whoever looks: the holder's process ID.
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) == 0) {
    (void)!::write(fd_, pid.data(), pid.size());
  }
  return Status::Ok();
}

}  // namespace weft::relay
