// Online backups of a replica's database: consistent copies taken while it serves.
//
// A Weft database is SQLite in WAL mode, where readers do not block writers: BackupDatabase
// reads the whole database in one read transaction through SQLite's online backup API, from its
// own connection, so the copy is the database as it was at one commit, however many commits the
// running replica (or relay) makes meanwhile. A copy restored later is safe to open: the actor
// lease (docs/storage.md) makes a replica opened on it author under a new actor ID, so it never
// reissues a seq its peers already hold.
//
// A copy holds everything the database holds, including the replica's secret key: it is created
// readable by its owner only.
//
// Thread safety: plain functions; each opens its own connections.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "weft/status.h"

namespace weft {

// Copies the Weft database at `db_path` into a new single file `to` (no -wal beside it), then
// writes `marks` into the copy's metadata (names starting with "backup_", e.g. which program made
// it; CheckDatabase reads them back). `to` is written under a temporary name, fsynced and renamed,
// so it never exists half-written. kInvalidArgument when `to` exists or a mark is misnamed;
// kNotFound when there is no database at `db_path`; kCorruption when it is not a Weft database;
// kBusy when it stays locked (e.g. recovering) for the busy timeout; kIOError otherwise. On
// failure nothing is left at `to`.
Status BackupDatabase(const std::string& db_path, const std::string& to,
                      const std::map<std::string, std::string>& marks);

// What CheckDatabase finds in a Weft database.
struct DatabaseInfo {
  std::string node_id;                       // the replica's node ID, hex
  int64_t schema_version = 0;                // of its storage schema
  std::map<std::string, std::string> marks;  // the "backup_*" metadata (see BackupDatabase)
};

// Checks, read-only, that `path` is an intact Weft database: SQLite's integrity check passes and
// its metadata names the Weft format. kNotFound when there is no file; kCorruption, with what is
// wrong, otherwise.
Result<DatabaseInfo> CheckDatabase(const std::string& path);

// Copies the database `from` into a new file `to` through the backup API (a single file, no
// -wal), fsynced. kInvalidArgument when `to` exists; nothing is left at `to` on failure.
Status CopyDatabase(const std::string& from, const std::string& to);

}  // namespace weft
