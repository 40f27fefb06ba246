// `weft-relay backup` and `weft-relay restore`: a relay's store copied while it serves, and put
// back in place (docs/operations.md, "Backup and restore").
//
// A backup is one SQLite file, a consistent copy of DIR/weft-relay.db at one commit (see
// weft/backup.h), marked as a weft-relay backup. A restore checks the file first (an intact Weft
// database, marked as a relay's backup, that this release can open), then replaces the store
// of a data directory no relay is using; a relay started on it serves every document the backup
// held, and devices that synced later send it what it lacks when they next sync.
//
// Thread safety: plain functions.
#pragma once

#include <string>

#include "weft/status.h"

namespace weft::relay {

// The mark BackupRelay writes into its copies (metadata "backup_of").
inline constexpr char kBackupOf[] = "weft-relay";

// Copies the store of the relay in `data_dir` (running or not) to a new file `to`, created
// readable by its owner only (it holds the relay's secret key). Errors as BackupDatabase's.
Status BackupRelay(const std::string& data_dir, const std::string& to);

// Puts the backup `from` in place as the store of `data_dir` (created if missing). Refuses,
// changing nothing: a file that is not an intact weft-relay backup (kCorruption), a data directory
// a relay is using (kBusy), one that holds anything besides its lock file unless `force`
// (kInvalidArgument), and a backup this release cannot open (kUnsupportedVersion). With `force`
// the directory's store, its write-ahead log and actor lease are replaced.
Status RestoreRelay(const std::string& from, const std::string& data_dir, bool force);

}  // namespace weft::relay
