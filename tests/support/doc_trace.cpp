#include "doc_trace.h"

#include <algorithm>
#include <map>

namespace weft::testing {

using namespace weft::crdt;

namespace {

constexpr uint64_t kStartMs = 1'700'000'000'000;
const NodeId kGenesisNode{0xFFFFFFFFull};

// Per author, the indexes of its changes in seq order, for catching a replica up.
struct ChangeIndex {
  std::map<NodeId, std::vector<size_t>> by_author;

  void Add(const std::vector<Change>& changes, size_t i) {
    by_author[changes[i].author].push_back(i);
  }
  // Receives into `doc` every change of the authors in `want` up to their seq there.
  Status CatchUp(const std::vector<Change>& changes, const VersionVector& want,
                 Document* doc) const {
    for (const auto& [node, seq] : want.entries()) {
      auto it = by_author.find(node);
      if (it == by_author.end()) continue;
      const auto& list = it->second;
      uint64_t have = doc->version().Get(node);
      auto first = std::upper_bound(list.begin(), list.end(), have,
                                    [&](uint64_t h, size_t i) { return h < changes[i].end_seq(); });
      for (auto c = first; c != list.end() && changes[*c].end_seq() <= seq; ++c) {
        WEFT_RETURN_IF_ERROR(doc->Receive(changes[*c]));
      }
    }
    if (doc->pending() != 0) return Status::Corruption("trace replay: changes held back");
    return Status::Ok();
  }
};

}  // namespace

Result<DocReplay> ReplayTraceIntoDocuments(const Trace& trace) {
  DocReplay out;
  DocumentOptions opts;
  opts.keep_history = false;  // the replay keeps the changes itself
  out.changes.reserve(trace.txns.size() + 1);
  {
    Document genesis(kGenesisNode, opts);
    auto t = genesis.Begin(kStartMs);
    auto text = t.PutObject(kRoot, "text", ObjectKind::kText);
    if (!text.ok()) return text.status();
    out.text = *text;
    if (!trace.start_content.empty()) {
      WEFT_RETURN_IF_ERROR(t.TextInsert(out.text, 0, trace.start_content));
    }
    out.changes.push_back(*t.Commit());
  }
  ChangeIndex index;
  index.Add(out.changes, 0);
  for (uint32_t a = 0; a < trace.num_agents; ++a) {
    out.replicas.emplace_back(AgentNode(a), opts);
    WEFT_RETURN_IF_ERROR(out.replicas.back().ApplyChange(out.changes[0]));
  }
  // The version each txn's author had after it (concurrent traces).
  std::vector<VersionVector> after(trace.concurrent ? trace.txns.size() : 0);
  uint64_t now = kStartMs;
  for (size_t i = 0; i < trace.txns.size(); ++i) {
    const TraceTxn& txn = trace.txns[i];
    Document& doc = out.replicas[txn.agent];
    if (trace.concurrent) {
      VersionVector want;
      for (uint32_t p : txn.parents) want.Merge(after[p]);
      WEFT_RETURN_IF_ERROR(index.CatchUp(out.changes, want, &doc));
    }
    auto t = doc.Begin(++now);
    for (const TracePatch& p : txn.patches) {
      if (p.del) WEFT_RETURN_IF_ERROR(t.TextDelete(out.text, p.pos, p.del));
      if (!p.insert.empty()) WEFT_RETURN_IF_ERROR(t.TextInsert(out.text, p.pos, p.insert));
    }
    std::optional<Change> c = t.Commit();
    if (c) {
      out.changes.push_back(std::move(*c));
      index.Add(out.changes, out.changes.size() - 1);
    }
    if (trace.concurrent) after[i] = doc.version();
  }
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
  for (const Change& c : replay.changes) WEFT_RETURN_IF_ERROR(fresh.ApplyChange(c));
  return fresh;
}

}  // namespace weft::testing
