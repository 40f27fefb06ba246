// PgStore: the storage seam (store.h) on PostgreSQL, through libpq, for relays. Several relays
// may share one database: the documents, their logs, segments, snapshots, bases, sealed snapshots
// and equivocation proofs are shared; each relay's metadata (its node ID, identity, actor state)
// and its peers' acknowledged versions are its own, kept under the relay's name
// (PgStoreOptions::name). The schema and its migrations are in pg_store.cpp and docs/storage.md
// ("The PostgreSQL store").
//
// Log seqs are per document: an append locks the document's row and allocates the next seqs from
// it in the same transaction, so a document's log order is its commit order across every relay.
// Appends are group-committed: concurrent AppendChanges calls (many sync sessions) queue, and one
// of them commits all those queued (up to 256 changes or 4 MiB) in one transaction, locking the
// documents' rows in ID order (so that two relays' batches cannot deadlock); a call alone commits
// at once. Each call's result is what it would have been alone. Each commit is synchronous
// (synchronous_commit=on): commit numbers are always 0, durable on return. A batch (or a base
// import) sends one NOTIFY on the channel "weft_store" naming each document and the seqs stored
// (several when the documents do not fit in one payload); each store LISTENs on its own
// connection (a background thread) and passes notices of OTHER stores' writes to its watchers,
// one per document, on that thread. Its own writes reach its watchers on the writing thread, as
// store.h says. Notices missed while the listening connection was down are not replayed: when it
// connects again, the watchers get one foreign notice naming no document ("read every document
// again"), and replicas also poll slowly (replica.cpp), so nothing is lost.
//
// Errors: a lost connection gives kIOError (to every call of a batch), and the next call connects
// again; a serialization failure or deadlock gives kBusy; bytes that fail their checksum give
// kCorruption naming the document and seq; input PostgreSQL refuses as data (a NUL byte in a text
// key, bad UTF-8, a key too large to index) gives kInvalidArgument and changes nothing (a batch
// the server refuses is retried call by call, so that only the bad call fails). WriteSnapshot
// refuses (kAborted) a compaction adding a segment over seqs a segment already holds (another
// relay folded those rows first), and keeps a stored snapshot newer than the one written.
//
// Thread safety: as store.h says; calls use connections from a pool (one per concurrent call).
// Ownership: the store owns its connections and its listening thread (stopped by Close).
#pragma once

#include <memory>
#include <string>

#include "store.h"

namespace weft::store {

struct PgStoreOptions {
  // The relay's name in the shared database: the key of its metadata and peer versions. Stores
  // opened with one name are one relay (one node ID), one at a time: while a store of a name is
  // open (holding a session advisory lock), opening another fails with kBusy.
  std::string name = "relay";
  NodeId new_node_id;  // the node ID a new relay name takes (0: a random one)
  bool listen = true;  // LISTEN for other stores' writes (false: own writes only)
};

// Opens a store on the database `conninfo` names (a postgres:// URL or a libpq keyword string),
// creating or migrating the schema in one transaction when needed. kIOError when the server
// cannot be reached; kUnsupportedVersion for a schema newer than this build knows;
// kInvalidArgument for an empty name; kBusy when a store of this name is open (in any process);
// kCorruption for a database whose Weft tables are damaged.
Result<std::unique_ptr<Store>> OpenPgStore(const std::string& conninfo,
                                           const PgStoreOptions& options = {});

}  // namespace weft::store
