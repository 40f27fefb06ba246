// Replaying editing traces through documents (the public CRDT API: transactions and changes),
// for weft-bench and the document trace tests. See trace.h for the trace format.
#pragma once

#include <vector>

#include "trace.h"
#include "weft/crdt/document.h"

namespace weft::testing {

struct DocReplay {
  // The document the trace was replayed through (one; MergeAllDocuments merges any others).
  std::vector<crdt::Document> replicas;
  // Every change, in txn order; the first makes the text (and startContent).
  std::vector<crdt::Change> changes;
  crdt::ObjectId text;
};

// Replays the trace through one document, one transaction per txn (the first change makes the
// text). A concurrent trace's txn is made at exactly its parents' version (Document::BeginAt),
// by its agent's node, so the changes are those the agents' own replicas would have made.
Result<DocReplay> ReplayTraceIntoDocuments(const Trace& trace);
// Brings every replica up to date with every change.
Status MergeAllDocuments(DocReplay* replay);
// A fresh document that applies every change as a remote change.
Result<crdt::Document> MergeIntoFreshDocument(const DocReplay& replay);

}  // namespace weft::testing
