#include "trace.h"

#include <zlib.h>

#include <algorithm>

#include "weft/json.h"

namespace weft::testing {

using crdt::DeleteOp;
using crdt::Dot;
using crdt::Text;
using crdt::TextInsertOp;
using crdt::TextOp;

Result<std::string> ReadMaybeGzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");  // transparently reads uncompressed files too
  if (!f) return Status::IOError("cannot open " + path);
  gzbuffer(f, 1 << 17);
  std::string out;
  char buf[1 << 16];
  while (true) {
    int n = gzread(f, buf, sizeof buf);
    if (n < 0) {
      int err;
      std::string msg = gzerror(f, &err);
      gzclose(f);
      return Status::IOError("reading " + path + ": " + msg);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  gzclose(f);
  return out;
}

namespace {

Status Bad(const std::string& m) {
  return Status::InvalidArgument("trace: " + m);
}

}  // namespace

Result<Trace> ParseTrace(std::string_view text) {
  Result<json::Value> parsed = json::Parse(text);
  if (!parsed.ok()) return parsed.status();
  const json::Value& root = *parsed;
  if (!root.is_object()) return Bad("not an object");
  Trace t;
  if (const json::Value* s = root.Find("startContent")) {
    if (!s->is_string()) return Bad("startContent is not a string");
    t.start_content = s->as_string();
  }
  const json::Value* end = root.Find("endContent");
  if (!end || !end->is_string()) return Bad("missing endContent");
  t.end_content = end->as_string();
  if (const json::Value* k = root.Find("kind")) {
    if (!k->is_string()) return Bad("kind is not a string");
    t.concurrent = k->as_string() == "concurrent";
  }
  if (const json::Value* n = root.Find("numAgents")) {
    if (!n->is_uint() || n->as_uint() == 0 || n->as_uint() > 1000000) return Bad("bad numAgents");
    t.num_agents = static_cast<uint32_t>(n->as_uint());
  }
  const json::Value* txns = root.Find("txns");
  if (!txns || !txns->is_array()) return Bad("missing txns");
  t.txns.reserve(txns->as_array().size());
  for (const json::Value& tv : txns->as_array()) {
    if (!tv.is_object()) return Bad("txn is not an object");
    TraceTxn txn;
    const json::Value* patches = tv.Find("patches");
    if (!patches || !patches->is_array()) return Bad("txn without patches");
    for (const json::Value& pv : patches->as_array()) {
      const auto* a = pv.is_array() ? &pv.as_array() : nullptr;
      if (!a || a->size() != 3 || !(*a)[0].is_uint() || !(*a)[1].is_uint() ||
          !(*a)[2].is_string()) {
        return Bad("patch is not [pos, delete_count, text]");
      }
      txn.patches.push_back(TracePatch{(*a)[0].as_uint(), (*a)[1].as_uint(), (*a)[2].as_string()});
    }
    t.patch_count += txn.patches.size();
    if (t.concurrent) {
      const json::Value* agent = tv.Find("agent");
      if (!agent || !agent->is_uint() || agent->as_uint() >= t.num_agents) return Bad("bad agent");
      txn.agent = static_cast<uint32_t>(agent->as_uint());
      const json::Value* parents = tv.Find("parents");
      if (!parents || !parents->is_array()) return Bad("txn without parents");
      for (const json::Value& p : parents->as_array()) {
        if (!p.is_uint() || p.as_uint() >= t.txns.size()) return Bad("bad parent index");
        txn.parents.push_back(static_cast<uint32_t>(p.as_uint()));
      }
    }
    t.txns.push_back(std::move(txn));
  }
  if (!t.concurrent) t.num_agents = 1;
  return t;
}

Result<Trace> LoadTrace(const std::string& path) {
  Result<std::string> text = ReadMaybeGzip(path);
  if (!text.ok()) return text.status();
  return ParseTrace(*text);
}

namespace {

struct AgentState {
  Text text;
  std::vector<bool> applied;  // per txn
  uint64_t next_seq = 1;
};

// The node that writes a trace's startContent (not an agent).
constexpr crdt::NodeId kStartNode{0x8000000000000000ull};

Status ApplyRemoteTxn(const Replay& replay, size_t t, Text* text) {
  for (size_t i = replay.txn_begin[t]; i < replay.txn_begin[t + 1]; ++i) {
    WEFT_RETURN_IF_ERROR(text->Apply(replay.ops[i]));
  }
  return Status::Ok();
}

// Applies to `st` every txn in the history of `roots` it lacks, in txn order.
Status MergeHistory(const Trace& trace, const Replay& replay, const std::vector<uint32_t>& roots,
                    AgentState* st) {
  std::vector<uint32_t> stack(roots.begin(), roots.end()), missing;
  while (!stack.empty()) {
    uint32_t t = stack.back();
    stack.pop_back();
    if (st->applied[t]) continue;
    st->applied[t] = true;
    missing.push_back(t);
    for (uint32_t p : trace.txns[t].parents) {
      if (!st->applied[p]) stack.push_back(p);
    }
  }
  std::sort(missing.begin(), missing.end());
  for (uint32_t t : missing) WEFT_RETURN_IF_ERROR(ApplyRemoteTxn(replay, t, &st->text));
  return Status::Ok();
}

// Applies one txn's patches locally, appending the ops made.
Status ApplyLocalTxn(const TraceTxn& txn, crdt::NodeId node, AgentState* st,
                     std::vector<TextOp>* ops) {
  for (const TracePatch& p : txn.patches) {
    if (p.del > 0) {
      Result<DeleteOp> d = st->text.LocalDelete(p.pos, p.del);
      if (!d.ok()) return d.status();
      ops->emplace_back(std::move(*d));
    }
    if (!p.insert.empty()) {
      Result<TextInsertOp> ins = st->text.LocalInsert(p.pos, p.insert, Dot{node, st->next_seq});
      if (!ins.ok()) return ins.status();
      st->next_seq += crdt::CountCodePoints(p.insert);
      ops->emplace_back(std::move(*ins));
    }
  }
  return Status::Ok();
}

}  // namespace

Result<Replay> ReplayTrace(const Trace& trace) {
  Replay out;
  out.ops.reserve(trace.patch_count + 1);
  out.txn_begin.reserve(trace.txns.size() + 1);
  std::vector<AgentState> agents(trace.num_agents);
  for (AgentState& a : agents) a.applied.assign(trace.txns.size(), false);
  if (!trace.start_content.empty()) {
    // Every replica starts from the same insert of startContent (before the first txn).
    Text base;
    Result<TextInsertOp> ins = base.LocalInsert(0, trace.start_content, Dot{kStartNode, 1});
    if (!ins.ok()) return ins.status();
    for (AgentState& a : agents) WEFT_RETURN_IF_ERROR(a.text.Apply(*ins));
    out.ops.emplace_back(std::move(*ins));
  }
  // An agent's replica holds exactly the history of its previous txn; a txn's positions are
  // relative to the history of its parents, so the previous txn must be in that history.
  std::vector<int64_t> last_own(trace.num_agents, -1);
  std::vector<size_t> stamp(trace.concurrent ? trace.txns.size() : 0, SIZE_MAX);
  for (size_t t = 0; t < trace.txns.size(); ++t) {
    const TraceTxn& txn = trace.txns[t];
    AgentState& st = agents[txn.agent];
    if (trace.concurrent) {
      int64_t prev = last_own[txn.agent];
      if (prev >= 0) {
        // Search back from the parents, never below `prev` (parents precede their children).
        bool found = false;
        std::vector<uint32_t> stack(txn.parents.begin(), txn.parents.end());
        while (!stack.empty() && !found) {
          uint32_t p = stack.back();
          stack.pop_back();
          if (static_cast<int64_t>(p) < prev || stamp[p] == t) continue;
          stamp[p] = t;
          found = static_cast<int64_t>(p) == prev;
          for (uint32_t q : trace.txns[p].parents) stack.push_back(q);
        }
        if (!found) {
          return Status::InvalidArgument("trace: txn " + std::to_string(t) + " of agent " +
                                         std::to_string(txn.agent) +
                                         " does not follow that agent's previous txn");
        }
      }
      last_own[txn.agent] = static_cast<int64_t>(t);
      // The ops of earlier txns are complete; close the list for MergeHistory.
      out.txn_begin.push_back(out.ops.size());
      WEFT_RETURN_IF_ERROR(MergeHistory(trace, out, txn.parents, &st));
      out.txn_begin.pop_back();
    }
    out.txn_begin.push_back(out.ops.size());
    Status s = ApplyLocalTxn(txn, AgentNode(txn.agent), &st, &out.ops);
    if (!s.ok()) return Status(s.code(), "txn " + std::to_string(t) + ": " + s.message());
    st.applied[t] = true;
    out.patches += txn.patches.size();
  }
  out.txn_begin.push_back(out.ops.size());
  for (AgentState& a : agents) out.replicas.push_back(std::move(a.text));
  return out;
}

Status MergeAll(const Trace& trace, Replay* replay) {
  if (!trace.concurrent) return Status::Ok();
  // Which txns each replica holds: its own and their histories.
  for (uint32_t a = 0; a < replay->replicas.size(); ++a) {
    AgentState st;
    st.text = std::move(replay->replicas[a]);
    st.applied.assign(trace.txns.size(), false);
    std::vector<uint32_t> own;
    for (uint32_t t = 0; t < trace.txns.size(); ++t) {
      if (trace.txns[t].agent == a) own.push_back(t);
    }
    // Mark the history of the agent's own txns as applied (the replica has it already).
    std::vector<uint32_t> stack = own;
    while (!stack.empty()) {
      uint32_t t = stack.back();
      stack.pop_back();
      if (st.applied[t]) continue;
      st.applied[t] = true;
      for (uint32_t p : trace.txns[t].parents) stack.push_back(p);
    }
    std::vector<uint32_t> all(trace.txns.size());
    for (uint32_t t = 0; t < all.size(); ++t) all[t] = t;
    WEFT_RETURN_IF_ERROR(MergeHistory(trace, *replay, all, &st));
    replay->replicas[a] = std::move(st.text);
  }
  return Status::Ok();
}

Result<Text> MergeIntoFresh(const Replay& replay) {
  Text fresh;
  for (const TextOp& op : replay.ops) WEFT_RETURN_IF_ERROR(fresh.Apply(op));
  return fresh;
}

}  // namespace weft::testing
