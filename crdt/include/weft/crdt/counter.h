// A counter that any replica may increment or decrement (a PN-counter in op-based form).
//
// Each node's contribution is kept apart, so the value is their sum and a node's own total can
// be read. Arithmetic wraps modulo 2^64 (defined, the same on every replica) rather than
// overflowing. Operations of one node arrive in causal order (the Document guarantees it), which
// makes the per-node `seen` entry enough to drop duplicates. Plain value type, not thread-safe.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "weft/crdt/causality.h"

namespace weft::crdt {

class Counter {
 public:
  struct Op {
    Dot dot;
    int64_t delta = 0;
    friend bool operator==(const Op&, const Op&) = default;
  };

  // A local increment (negative: decrement) by the author of `dot`.
  Op Add(const Dot& dot, int64_t delta) {
    Op op{dot, delta};
    Apply(op);
    return op;
  }
  // Applies a local or remote op; returns false (changing nothing) for a duplicate.
  bool Apply(const Op& op) {
    if (seen_.Get(op.dot.node) >= op.dot.seq) return false;
    seen_.Set(op.dot.node, op.dot.seq);
    uint64_t& total = TotalFor(op.dot.node);
    total += static_cast<uint64_t>(op.delta);
    return true;
  }

  int64_t Value() const {
    uint64_t sum = 0;
    for (const auto& [node, total] : totals_) sum += total;
    return static_cast<int64_t>(sum);
  }
  // Each node's contribution, sorted by node (zero totals included: they still carry history).
  const std::vector<std::pair<NodeId, uint64_t>>& totals() const { return totals_; }
  const VersionVector& seen() const { return seen_; }
  void Restore(std::vector<std::pair<NodeId, uint64_t>> totals, VersionVector seen) {
    totals_ = std::move(totals);
    seen_ = std::move(seen);
  }
  friend bool operator==(const Counter&, const Counter&) = default;

 private:
  uint64_t& TotalFor(NodeId node) {
    auto it = totals_.begin();
    while (it != totals_.end() && it->first < node) ++it;
    if (it == totals_.end() || it->first != node) it = totals_.insert(it, {node, 0});
    return it->second;
  }

  std::vector<std::pair<NodeId, uint64_t>> totals_;
  VersionVector seen_;
};

}  // namespace weft::crdt
