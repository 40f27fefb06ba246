// See store_backup.h.
#include "store_backup.h"

#include <chrono>
#include <filesystem>

#include "dir_lock.h"
#include "relay.h"
#include "weft/backup.h"
#include "weft/replica.h"
#include "weft/version.h"

namespace weft::relay {
namespace {

namespace fs = std::filesystem;

// The files of a store beside the database itself.
constexpr const char* kStoreSuffixes[] = {"-wal", "-shm", "-lease", "-journal"};

}  // namespace

Status BackupRelay(const std::string& data_dir, const std::string& to) {
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  return BackupDatabase(StorePath(data_dir), to,
                        {{"backup_of", kBackupOf},
                         {"backup_release", ReleaseVersion()},
                         {"backup_time_ms", std::to_string(now)}});
}

Status RestoreRelay(const std::string& from, const std::string& data_dir, bool force) {
  auto info = CheckDatabase(from);
  if (!info.ok()) return info.status();
  auto of = info->marks.find("backup_of");
  if (of == info->marks.end() || of->second != kBackupOf) {
    return Status::Corruption(from +
                              " is a Weft database, but not a weft-relay backup (make one with "
                              "`weft-relay backup --data DIR --to FILE`)");
  }
  std::error_code ec;
  fs::create_directories(data_dir, ec);
  if (ec) return Status::IOError("cannot create " + data_dir + ": " + ec.message());
  DirLock lock;
  WEFT_RETURN_IF_ERROR(lock.Acquire(data_dir));
  if (!force) {
    for (const auto& e : fs::directory_iterator(data_dir, ec)) {
      if (e.path().filename() == kLockFileName) continue;
      return Status::InvalidArgument(data_dir + " is not empty (it holds " +
                                     e.path().filename().string() +
                                     "); restore into an empty directory, or pass --force to "
                                     "replace its store");
    }
    if (ec) return Status::IOError("cannot list " + data_dir + ": " + ec.message());
  }

  // The copy goes beside the store under another name; it is opened once as a replica (as the
  // relay will open it: a schema this release cannot read is refused now, an older one migrated),
  // and only then does it replace the store.
  const std::string store = StorePath(data_dir);
  const std::string tmp = store + ".restoring";
  auto remove_beside = [](const std::string& path) {
    std::error_code ignored;
    for (const char* suffix : kStoreSuffixes) fs::remove(path + suffix, ignored);
  };
  auto remove_store = [&](const std::string& path) {
    std::error_code ignored;
    fs::remove(path, ignored);
    remove_beside(path);
  };
  remove_store(tmp);
  Status s = CopyDatabase(from, tmp);
  if (s.ok()) {
    auto r = Replica::Open(tmp);
    if (!r.ok()) {
      s = Status(r.status().code(), "the backup cannot be opened: " + r.status().message());
    }
  }
  if (s.ok() && fs::exists(tmp + "-wal", ec) && fs::file_size(tmp + "-wal", ec) > 0) {
    s = Status::IOError(tmp + " kept a write-ahead log after closing");
  }
  if (!s.ok()) {
    remove_store(tmp);
    return s;
  }
  // The old store's log and lease must not outlive it: a log applied to another database would
  // damage it, and a lease must not let the copy reuse an actor.
  remove_beside(store);
  remove_beside(tmp);
  fs::rename(tmp, store, ec);
  if (ec) {
    remove_store(tmp);
    return Status::IOError("cannot move the restored store into place: " + ec.message());
  }
  return Status::Ok();
}

}  // namespace weft::relay
