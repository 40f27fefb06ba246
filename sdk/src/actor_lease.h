// The actor lease: whether a database may author under the same actor ID as its last open.
//
// A replica reuses its actor (its author ID) across opens, so that a document's version vector
// holds about one entry per replica rather than one per open. That is only safe while the
// database is the latest state of that actor: a database restored from an old copy, or copied
// while open, must never reissue seqs that peers hold with other content. So the state of the
// actor is written twice, in the database's meta table and in a small file beside it
// (`<db>-lease`): "open" with a new generation when a replica opens (the file first), "closed"
// when it closes cleanly (the database first). An open reuses the actor only when both say
// "closed" at the same generation; anything else (a crash, a restored or copied database, a
// missing or damaged file) gets a new actor, which is always safe. See docs/storage.md.
//
// Plain functions; the caller serialises access to one database's lease.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "weft/crdt/causality.h"
#include "weft/status.h"

namespace weft {

struct ActorLease {
  crdt::NodeId actor;
  bool closed = false;
  uint64_t generation = 0;
  friend bool operator==(const ActorLease&, const ActorLease&) = default;
};

// The lease at `path`; nullopt when the file is missing or does not parse (either: no reuse).
std::optional<ActorLease> ReadActorLease(const std::string& path);
// Replaces the lease at `path` durably: a temporary file written and fsynced, renamed over it,
// and the directory fsynced.
Status WriteActorLease(const std::string& path, const ActorLease& lease);

}  // namespace weft
