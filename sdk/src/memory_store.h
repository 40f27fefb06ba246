// MemoryStore: the storage seam (store.h) in process memory, for simulations and tests, and the
// second implementation that keeps the seam honest (the conformance suite runs on both).
//
// The data lives in a MemoryStorage, shared by every store opened on it: a replica closed and
// opened again finds what it stored, and several replicas (relays sharing one database, in a
// simulation), each under its own name, may use one storage at once, each seeing the others'
// writes and notified of them (Shared() is true). Seqs are per document.
// Nothing is durable beyond the process; commit numbers are always 0. It keeps no actor lease
// (path() is ""), so every open of a replica on it takes a new author.
//
// Thread safety: as store.h says; one storage lock (readers share it) makes every call atomic.
#pragma once

#include <memory>
#include <string_view>

#include "store.h"

namespace weft::store {

class MemoryStorage;

// A new, empty storage.
std::shared_ptr<MemoryStorage> NewMemoryStorage();

// Opens a store on `storage` as the replica `name`: stores of one name share a node ID, metadata
// and peers' versions (one replica, opened again); stores of different names are replicas sharing
// the documents (relays on one database). A name takes `new_node_id` (0: a random one) as its
// node ID when it is new; later opens keep the one it has.
Result<std::unique_ptr<Store>> OpenMemoryStore(std::shared_ptr<MemoryStorage> storage,
                                               NodeId new_node_id = {}, std::string_view name = {});

}  // namespace weft::store
