#include "doc_trace.h"

#include <algorithm>
#include <map>

namespace weft::testing {

using namespace weft::crdt;

namespace {

constexpr uint64_t kStartMs = 1'700'000'000'000;
const NodeId kGenesisNode{0xFFFFFFFFull};

// A concurrent trace through one document: each txn is made at exactly its parents' version
// (Document::BeginAt). An agent's txns may be concurrent with one another (a trace from git
// history has branches); the document needs each author's changes to follow one another, so such
// a txn goes to another of the agent's nodes (its lanes).
Status ReplayConcurrent(const Trace& trace, Document* doc, DocReplay* out) {
  std::vector<VersionVector> after(trace.txns.size());  // the version after each txn
  std::vector<std::vector<NodeId>> lanes(trace.num_agents);
  uint64_t next_lane = 0;
  uint64_t now = kStartMs;
  for (size_t i = 0; i < trace.txns.size(); ++i) {
    const TraceTxn& txn = trace.txns[i];
    VersionVector at{{kGenesisNode, 1}};  // every txn follows the change that made the text
    for (uint32_t p : txn.parents) at.Merge(after[p]);
    NodeId author;
    for (NodeId lane : lanes[txn.agent]) {
      if (at.Get(lane) == doc->version().Get(lane)) {
        author = lane;
        break;
      }
    }
    if (!author.valid()) {
      author =
          lanes[txn.agent].empty() ? AgentNode(txn.agent) : NodeId{(1ull << 32) + (++next_lane)};
      lanes[txn.agent].push_back(author);
    }
    Result<Transaction> t = doc->BeginAt(at, ++now, author);
    if (!t.ok()) return t.status();
    for (const TracePatch& p : txn.patches) {
      Status s = p.del ? t->TextDelete(out->text, p.pos, p.del) : Status::Ok();
      if (s.ok() && !p.insert.empty()) s = t->TextInsert(out->text, p.pos, p.insert);
      if (!s.ok()) {
        return Status(s.code(), "txn " + std::to_string(i) + ": " + s.message());
      }
    }
    std::optional<Change> c = t->Commit();
    if (c) {
      at.Set(author, c->end_seq());
      out->changes.push_back(std::move(*c));
    }
    after[i] = std::move(at);
  }
  return Status::Ok();
}

}  // namespace

Result<DocReplay> ReplayTraceIntoDocuments(const Trace& trace) {
  DocReplay out;
  DocumentOptions opts;
  // A concurrent replay edits at earlier versions, which needs the history; a sequential one
  // keeps the changes itself.
  opts.keep_history = trace.concurrent;
  out.changes.reserve(trace.txns.size() + 1);
  Document doc(AgentNode(0), opts);
  {
    Result<Transaction> t = doc.BeginAt(doc.version(), kStartMs, kGenesisNode);
    if (!t.ok()) return t.status();
    auto text = t->PutObject(kRoot, "text", ObjectKind::kText);
    if (!text.ok()) return text.status();
    out.text = *text;
    if (!trace.start_content.empty()) {
      WEFT_RETURN_IF_ERROR(t->TextInsert(out.text, 0, trace.start_content));
    }
    out.changes.push_back(*t->Commit());
  }
  if (trace.concurrent) {
    WEFT_RETURN_IF_ERROR(ReplayConcurrent(trace, &doc, &out));
  } else {
    uint64_t now = kStartMs;
    for (const TraceTxn& txn : trace.txns) {
      auto t = doc.Begin(++now);
      for (const TracePatch& p : txn.patches) {
        if (p.del) WEFT_RETURN_IF_ERROR(t.TextDelete(out.text, p.pos, p.del));
        if (!p.insert.empty()) WEFT_RETURN_IF_ERROR(t.TextInsert(out.text, p.pos, p.insert));
      }
      std::optional<Change> c = t.Commit();
      if (c) out.changes.push_back(std::move(*c));
    }
  }
  out.replicas.push_back(std::move(doc));
  return out;
}

Status MergeAllDocuments(DocReplay* replay) {
  if (replay->replicas.size() < 2) return Status::Ok();
  for (Document& doc : replay->replicas) {
    for (const Change& c : replay->changes) WEFT_RETURN_IF_ERROR(doc.Receive(c));
    if (doc.pending() != 0) return Status::Corruption("trace merge: changes held back");
  }
  return Status::Ok();
}

Result<Document> MergeIntoFreshDocument(const DocReplay& replay) {
  DocumentOptions opts;
  opts.keep_history = false;
  Document fresh(NodeId{0xFFFFFFFEull}, opts);
  WEFT_RETURN_IF_ERROR(fresh.ApplyChanges(replay.changes));
  return fresh;
}

}  // namespace weft::testing
