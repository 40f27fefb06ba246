// SqliteStore: the storage seam (store.h) on one SQLite database file in WAL mode, the default
// store of every replica and the only one a device needs. The schema and its migrations are in
// sqlite_store.cpp and docs/storage.md.
//
// Writes go through one connection, one at a time; reads through a pool of read-only connections
// (WAL: each sees committed data only, and none waits for a writer). Durability::kGroup commits
// without fsync and a LogSyncer thread (log_syncer.h) fsyncs the WAL: the commit numbers that
// AppendChanges and ImportBase return are the LogSyncer's. A fault-injecting VFS
// (weft/testing/fault_vfs.h) is used through `vfs`, for every connection the store opens.
//
// Thread safety: as store.h says. Ownership: the store owns its connections and its LogSyncer.
#pragma once

#include <memory>
#include <string>

#include "store.h"
#include "weft/replica.h"

namespace weft::store {

struct SqliteStoreOptions {
  Durability durability = Durability::kNormal;
  bool create_if_missing = true;
  std::string vfs;     // a registered SQLite VFS ("": the default)
  NodeId new_node_id;  // the node ID a new database takes (0: a random one)
};

// Opens (or creates) the store at `path`. Looks before it touches anything: kCorruption for a
// file that is not SQLite, or not a Weft database, and kUnsupportedVersion for a newer schema,
// leaving the file exactly as it was; kIOError when it cannot be opened. Migrates an older schema
// in one transaction.
Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path,
                                               const SqliteStoreOptions& options);

}  // namespace weft::store
