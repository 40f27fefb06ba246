// See weft/backup.h.
#include "weft/backup.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include "sqlite.h"

namespace weft {
namespace {

namespace fs = std::filesystem;

// How long a copy waits for a locked database (a writer in another process holding the WAL
// index, a recovery) before it gives up.
constexpr auto kBusyWait = std::chrono::seconds(10);

// One connection, closed when it goes.
class Connection {
 public:
  Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() { Close(); }
  Status Open(const std::string& path, int flags) {
    int rc = sqlite3_open_v2(path.c_str(), &db_, flags | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) return sql::FromCode(rc, db_, "open " + path);
    sqlite3_busy_timeout(db_, static_cast<int>(kBusyWait / std::chrono::milliseconds(1)));
    return Status::Ok();
  }
  void Close() {
    if (db_) sqlite3_close_v2(db_);
    db_ = nullptr;
  }
  sqlite3* get() const { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

// fsyncs a file or a directory.
Status SyncPath(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDWR) | O_CLOEXEC);
  if (fd < 0) return Status::IOError("cannot open " + path + ": " + std::strerror(errno));
  int rc = ::fsync(fd);
  int e = errno;
  ::close(fd);
  if (rc != 0) return Status::IOError("cannot fsync " + path + ": " + std::strerror(e));
  return Status::Ok();
}

void RemoveWithJournals(const std::string& path) {
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) fs::remove(path + suffix, ec);
}

// The Weft metadata of an open database; kCorruption naming `path` when it has none.
Result<DatabaseInfo> ReadInfo(sqlite3* db, const std::string& path) {
  auto q = sql::Stmt::Prepare(db,
                              "SELECT key, CAST(value AS TEXT) FROM meta WHERE key IN ('format', "
                              "'schema_version', 'node_id') OR substr(key, 1, 7) = 'backup_'");
  if (!q.ok()) {
    if (q.status().code() == StatusCode::kBusy) return q.status();
    return Status::Corruption(path + " is not a Weft database (" + q.status().message() + ")");
  }
  DatabaseInfo info;
  std::string format;
  Status s;
  while (q->Step(&s)) {
    std::string k = q->Text(0);
    if (k == "format") {
      format = q->Text(1);
    } else if (k == "schema_version") {
      info.schema_version = std::atoll(q->Text(1).c_str());
    } else if (k == "node_id") {
      info.node_id = q->Text(1);
    } else {
      info.marks[k] = q->Text(1);
    }
  }
  if (!s.ok()) {
    if (s.code() == StatusCode::kBusy) return s;
    return Status::Corruption(path + " is not a Weft database (" + s.message() + ")");
  }
  if (format != "weft" || info.node_id.empty() || info.schema_version < 1) {
    return Status::Corruption(path + " is a SQLite database, but not a Weft one");
  }
  return info;
}

// Copies the open database `src` into a new file `to` (temporary name, fsync, rename), then
// writes `marks` into it.
Status CopyInto(sqlite3* src, const std::string& to,
                const std::map<std::string, std::string>& marks) {
  std::error_code ec;
  if (fs::exists(to, ec)) {
    return Status::InvalidArgument(to + " exists already (choose another name, or remove it)");
  }
  for (const auto& [k, v] : marks) {
    if (k.rfind("backup_", 0) != 0) return Status::InvalidArgument("bad mark name " + k);
  }
  const std::string tmp = to + ".tmp-" + std::to_string(::getpid());
  RemoveWithJournals(tmp);
  // Created by hand, so that it is the owner's alone from its first byte.
  int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IOError("cannot create " + tmp + ": " + std::strerror(errno));
  ::close(fd);
  auto copy = [&]() -> Status {
    Connection dst;
    WEFT_RETURN_IF_ERROR(dst.Open(tmp, SQLITE_OPEN_READWRITE));
    sqlite3_backup* b = sqlite3_backup_init(dst.get(), "main", src, "main");
    if (!b) return sql::FromCode(sqlite3_errcode(dst.get()), dst.get(), "backup");
    // Every page in one step: one read transaction on the source, so one consistent moment;
    // writers in WAL mode go on meanwhile. Retried while the source is locked.
    auto deadline = std::chrono::steady_clock::now() + kBusyWait;
    int rc;
    while (true) {
      rc = sqlite3_backup_step(b, -1);
      if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) ||
          std::chrono::steady_clock::now() > deadline) {
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    int finish = sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE) return sql::FromCode(rc, dst.get(), "backup");
    if (finish != SQLITE_OK) return sql::FromCode(finish, dst.get(), "backup");
    // One self-contained file: out of WAL mode (a replica opening it switches back).
    WEFT_RETURN_IF_ERROR(sql::Exec(dst.get(), "PRAGMA journal_mode=DELETE"));
    WEFT_RETURN_IF_ERROR(sql::Exec(dst.get(), "PRAGMA synchronous=FULL"));
    if (!marks.empty()) {
      WEFT_RETURN_IF_ERROR(sql::Exec(dst.get(), "BEGIN IMMEDIATE"));
      auto ins = sql::Stmt::Prepare(dst.get(),
                                    "INSERT OR REPLACE INTO meta(key, value) "
                                    "VALUES(?, ?)");
      Status s = ins.status();
      for (auto it = marks.begin(); s.ok() && it != marks.end(); ++it) {
        s = ins->Bind(1, it->first).Bind(2, it->second).Run();
        ins->Reset();
      }
      if (s.ok()) s = sql::Exec(dst.get(), "COMMIT");
      if (!s.ok()) {
        (void)sql::Exec(dst.get(), "ROLLBACK");
        return s;
      }
    }
    dst.Close();
    if (fs::exists(tmp + "-wal", ec)) return Status::IOError(tmp + " kept a write-ahead log");
    WEFT_RETURN_IF_ERROR(SyncPath(tmp, false));
    if (::rename(tmp.c_str(), to.c_str()) != 0) {
      return Status::IOError("cannot rename " + tmp + " to " + to + ": " + std::strerror(errno));
    }
    std::string dir = fs::path(to).parent_path().string();
    return SyncPath(dir.empty() ? "." : dir, true);
  };
  Status s = copy();
  RemoveWithJournals(tmp);
  return s;
}

// Opens `path` read-only; kNotFound when there is no such file.
Status OpenExisting(Connection& c, const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return Status::NotFound("no database at " + path);
  return c.Open(path, SQLITE_OPEN_READONLY);
}

}  // namespace

Status BackupDatabase(const std::string& db_path, const std::string& to,
                      const std::map<std::string, std::string>& marks) {
  Connection src;
  WEFT_RETURN_IF_ERROR(OpenExisting(src, db_path));
  auto info = ReadInfo(src.get(), db_path);
  if (!info.ok()) return info.status();
  return CopyInto(src.get(), to, marks);
}

Result<DatabaseInfo> CheckDatabase(const std::string& path) {
  Connection c;
  WEFT_RETURN_IF_ERROR(OpenExisting(c, path));
  auto q = sql::Stmt::Prepare(c.get(), "PRAGMA integrity_check(1)");
  if (!q.ok()) return Status::Corruption(path + " is not a SQLite database");
  Status s;
  std::string verdict = q->Step(&s) ? q->Text(0) : std::string();
  if (!s.ok()) return Status::Corruption(path + " is not a SQLite database (" + s.message() + ")");
  if (verdict != "ok") return Status::Corruption(path + " is damaged: " + verdict);
  return ReadInfo(c.get(), path);
}

Status CopyDatabase(const std::string& from, const std::string& to) {
  Connection src;
  WEFT_RETURN_IF_ERROR(OpenExisting(src, from));
  return CopyInto(src.get(), to, {});
}

}  // namespace weft
