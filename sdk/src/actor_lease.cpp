#include "actor_lease.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace weft {
namespace {

constexpr const char* kMagic = "weft-actor-lease";

Status Errno(const std::string& what) {
  return Status::IOError(what + ": " + std::strerror(errno));
}

Status FsyncPath(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return Errno("open " + path);
  int rc = ::fsync(fd);
  ::close(fd);
  return rc == 0 ? Status::Ok() : Errno("fsync " + path);
}

}  // namespace

std::optional<ActorLease> ReadActorLease(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::string line;
  if (!std::getline(in, line) || line.size() > 200) return std::nullopt;
  std::istringstream s(line);
  std::string magic, version, actor, state;
  uint64_t generation = 0;
  if (!(s >> magic >> version >> actor >> state >> generation)) return std::nullopt;
  if (magic != kMagic || version != "1" || (state != "open" && state != "closed")) {
    return std::nullopt;
  }
  auto node = crdt::NodeId::FromHex(actor);
  if (!node || !node->valid()) return std::nullopt;
  return ActorLease{*node, state == "closed", generation};
}

Status WriteActorLease(const std::string& path, const ActorLease& lease) {
  const std::string tmp = path + ".tmp";
  std::string text = std::string(kMagic) + " 1 " + lease.actor.ToHex() + " " +
                     (lease.closed ? "closed" : "open") + " " + std::to_string(lease.generation) +
                     "\n";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Errno("open " + tmp);
  const char* p = text.data();
  size_t left = text.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Status s = Errno("write " + tmp);
      ::close(fd);
      return s;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    Status s = Errno("fsync " + tmp);
    ::close(fd);
    return s;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Errno("rename " + tmp);
  std::string dir = std::filesystem::path(path).parent_path().string();
  return FsyncPath(dir.empty() ? "." : dir, O_RDONLY | O_DIRECTORY);
}

}  // namespace weft
