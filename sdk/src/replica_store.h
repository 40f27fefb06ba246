// Opening a replica on a store of the caller's choice (store.h), inside the SDK and for the
// relay, the simulation and tests: Replica::Open is this on a SqliteStore.
#pragma once

#include <memory>

#include "store.h"
#include "weft/replica.h"

namespace weft {

// Opens a replica whose data lives in `store` (which it takes). The options that choose and
// configure storage (durability, create_if_missing, vfs, new_node_id) are the store's and are
// ignored here. With a store that is no file (Store::path() empty) no actor lease is kept: every
// open takes a new author. Fails as Replica::Open does when the store's data is damaged.
Result<std::unique_ptr<Replica>> OpenReplica(std::unique_ptr<store::Store> store,
                                             ReplicaOptions options);

}  // namespace weft
