// Editing traces (../shared/traces/README.md): loading a gzipped trace, and replaying it into
// Text replicas through the public sequence API. Shared by the trace tests and weft-bench.
//
// Plain functions and value types; not thread-safe for concurrent use of one object.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "weft/crdt/sequence.h"
#include "weft/status.h"

namespace weft::testing {

struct TracePatch {
  uint64_t pos = 0;    // code points
  uint64_t del = 0;    // code points deleted at pos
  std::string insert;  // UTF-8 inserted at pos after the delete
};

struct TraceTxn {
  std::vector<TracePatch> patches;
  uint32_t agent = 0;             // concurrent traces
  std::vector<uint32_t> parents;  // concurrent traces: indexes of earlier txns
};

struct Trace {
  std::string start_content;
  std::string end_content;
  std::vector<TraceTxn> txns;
  bool concurrent = false;
  uint32_t num_agents = 1;
  size_t patch_count = 0;
};

// Reads a whole file, gunzipping it when it is gzip (plain files pass through).
Result<std::string> ReadMaybeGzip(const std::string& path);
// Parses a trace from JSON text. kInvalidArgument on malformed JSON or a bad trace shape.
Result<Trace> ParseTrace(std::string_view json);
// ReadMaybeGzip + ParseTrace.
Result<Trace> LoadTrace(const std::string& path);

// The outcome of replaying a trace.
struct Replay {
  // One replica per agent (one for a sequential trace), each holding the whole document.
  std::vector<crdt::Text> replicas;
  // The ops every txn produced, in txn order: txn t made ops[txn_begin[t] .. txn_begin[t + 1]).
  std::vector<crdt::TextOp> ops;
  std::vector<size_t> txn_begin;
  size_t patches = 0;
};

// The node id used for agent `a`.
inline crdt::NodeId AgentNode(uint32_t a) {
  return crdt::NodeId{a + 1ull};
}

// Replays the trace: every agent edits its own replica with local ops, merging the ops of a txn's
// parents (and their history) as remote ops before applying the txn's patches. For a sequential
// trace there is one replica and no merging. Does not do the final merge.
Result<Replay> ReplayTrace(const Trace& trace);
// Brings every replica up to date with every txn (remote ops in txn order).
Status MergeAll(const Trace& trace, Replay* replay);
// A fresh replica that applies every op of every txn as remote ops, in txn order.
Result<crdt::Text> MergeIntoFresh(const Replay& replay);

}  // namespace weft::testing
