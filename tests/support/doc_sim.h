// Random edits on documents, for convergence, snapshot and decoding tests.
#pragma once

#include <string>
#include <vector>

#include "random.h"
#include "weft/crdt/document.h"

namespace weft::testing {

struct ObjectInfo {
  crdt::ObjectId id;
  crdt::ObjectKind kind;
  int depth;
};

// Every object reachable from the root, in a deterministic order.
std::vector<ObjectInfo> CollectObjects(const crdt::Document& doc);

// A random scalar from a small pool (ints, strings, doubles, bools, null, bytes).
crdt::Scalar RandomScalar(Rng& rng);

// Makes one random local edit on a random object of the open transaction's document: map puts
// (scalars and nested objects up to depth 3), deletes, register writes, counter increments, set
// adds and removes. Returns the status of the call.
Status RandomEdit(crdt::Document& doc, crdt::Transaction& txn, Rng& rng);

// A document built from `ops` random single-op transactions (for snapshot and decoding tests).
crdt::Document RandomDocument(uint64_t seed, int ops);

// A history of about `steps` changes by `authors` authors (node IDs 1 to `authors`) making random
// edits, each author first catching up on a random part of what the others did: concurrent
// changes, and changes that depend on several authors. In a causal order (the order made).
Result<std::vector<crdt::Change>> RandomHistory(uint64_t seed, int authors, int steps);

}  // namespace weft::testing
