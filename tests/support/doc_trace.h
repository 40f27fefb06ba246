// Replaying editing traces through documents (the public CRDT API: transactions and changes),
// for weft-bench and the document trace tests. See trace.h for the trace format.
#pragma once

#include <vector>

#include "trace.h"
#include "weft/crdt/document.h"

namespace weft::testing {

struct DocReplay {
  // One document per agent (one for a sequential trace).
  std::vector<crdt::Document> replicas;
  // Every change, in txn order; the first makes the text (and startContent).
  std::vector<crdt::Change> changes;
  crdt::ObjectId text;
};

// Every agent edits its own document, one transaction per txn; before a txn, the agent receives
// the changes of the txn's parents and their history.
Result<DocReplay> ReplayTraceIntoDocuments(const Trace& trace);
// Brings every replica up to date with every change.
Status MergeAllDocuments(DocReplay* replay);
// A fresh document that applies every change as a remote change.
Result<crdt::Document> MergeIntoFreshDocument(const DocReplay& replay);

}  // namespace weft::testing
