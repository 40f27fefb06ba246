// Registers: the multi-value register (concurrent writes kept as siblings) and the
// last-writer-wins register built on it.
//
// Both follow the Dynamo/Riak rule with dotted version vectors: every write carries its own dot
// and the context it was made in (the dots of the siblings it read). Applying a write removes
// exactly the siblings named by its context and adds itself; siblings written concurrently (not
// in the context) stay. A node's next write to a register always sees its own previous one, so a
// register never holds two siblings from one node, and the read context is simply the siblings'
// dots.
//
// Remote operations must arrive in causal order (the Document guarantees it); under that
// contract Apply is idempotent and its result is the same in every causal order. Plain value
// types, not thread-safe.
#pragma once

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "weft/crdt/causality.h"

namespace weft::crdt {

// The dots-and-siblings core of a register, without deduplication: a map holds one per key and
// deduplicates for the whole map. Siblings are kept sorted by dot.
template <typename V>
class MVSlot {
 public:
  struct Sibling {
    V value;
    DottedVersionVector clock;  // clock.dot: the write; clock.context: what it replaced
    friend bool operator==(const Sibling&, const Sibling&) = default;
  };

  // The context a write must carry to replace every sibling now visible.
  VersionVector Context() const {
    VersionVector v;
    for (const auto& s : siblings_) v.Advance(s.clock.dot.node, s.clock.dot.seq);
    return v;
  }
  // Removes the siblings `context` names, then (when `value` is set) adds the write `dot`.
  void Write(const Dot& dot, const VersionVector& context, std::optional<V> value) {
    std::erase_if(siblings_, [&](const Sibling& s) { return context.Contains(s.clock.dot); });
    if (value) {
      Sibling s{std::move(*value), DottedVersionVector{dot, context}};
      auto at = std::lower_bound(siblings_.begin(), siblings_.end(), dot,
                                 [](const Sibling& x, const Dot& d) { return x.clock.dot < d; });
      siblings_.insert(at, std::move(s));
    }
  }

  const std::vector<Sibling>& siblings() const { return siblings_; }
  std::vector<Sibling>& mutable_siblings() { return siblings_; }
  bool empty() const { return siblings_.empty(); }
  friend bool operator==(const MVSlot&, const MVSlot&) = default;

 private:
  std::vector<Sibling> siblings_;
};

// A write to a register: its dot, the context it replaces, and the value (nullopt: a clear, which
// removes what it saw and adds nothing).
template <typename V>
struct RegisterOp {
  Dot dot;
  VersionVector context;
  std::optional<V> value;
  friend bool operator==(const RegisterOp&, const RegisterOp&) = default;
};

// Multi-value register.
template <typename V>
class MVRegister {
 public:
  using Sibling = typename MVSlot<V>::Sibling;
  using Op = RegisterOp<V>;

  // A local write replacing every sibling now visible. `dot` is the author's next dot.
  Op Set(const Dot& dot, V value) { return SetAfterRead(dot, std::move(value), Context()); }
  // A local write made after a read that returned `read_context` (the "version from the prior
  // read" rule): it replaces exactly the siblings that read saw; later concurrent ones stay.
  Op SetAfterRead(const Dot& dot, V value, const VersionVector& read_context) {
    Op op{dot, read_context, std::move(value)};
    Apply(op);
    return op;
  }
  // A local clear of every visible sibling.
  Op Clear(const Dot& dot) {
    Op op{dot, Context(), std::nullopt};
    Apply(op);
    return op;
  }
  // Applies a local or remote write; returns false (changing nothing) for a duplicate.
  bool Apply(const Op& op) {
    if (seen_.Get(op.dot.node) >= op.dot.seq) return false;
    slot_.Write(op.dot, op.context, op.value);
    seen_.Set(op.dot.node, op.dot.seq);
    return true;
  }

  // Every sibling with its causal context; empty when never written or cleared.
  const std::vector<Sibling>& Siblings() const { return slot_.siblings(); }
  // The context of a read of every sibling (pass it to SetAfterRead).
  VersionVector Context() const { return slot_.Context(); }
  bool HasConflict() const { return slot_.siblings().size() > 1; }
  // The dots of every write applied here (deduplication state).
  const VersionVector& seen() const { return seen_; }

  const MVSlot<V>& slot() const { return slot_; }
  // For decoding a saved state.
  void Restore(MVSlot<V> slot, VersionVector seen) {
    slot_ = std::move(slot);
    seen_ = std::move(seen);
  }
  friend bool operator==(const MVRegister&, const MVRegister&) = default;

 private:
  MVSlot<V> slot_;
  VersionVector seen_;
};

// A value stamped with the hybrid logical time of its write.
template <typename V>
struct Stamped {
  V value;
  HlcTimestamp time;
  friend bool operator==(const Stamped&, const Stamped&) = default;
};

// Last-writer-wins register on hybrid logical time, with the node ID (then seq) breaking ties.
// Underneath it is a multi-value register of stamped values, so the concurrent writes that lost
// stay inspectable (Overwritten) until a later write that has read them replaces them.
template <typename V>
class LWWRegister {
 public:
  using Op = RegisterOp<Stamped<V>>;
  using Sibling = typename MVSlot<Stamped<V>>::Sibling;

  Op Set(const Dot& dot, V value, HlcTimestamp time) {
    return reg_.Set(dot, Stamped<V>{std::move(value), time});
  }
  bool Apply(const Op& op) { return reg_.Apply(op); }

  // The winning write, or nullptr when never written.
  const Sibling* Winner() const {
    const Sibling* best = nullptr;
    for (const auto& s : reg_.Siblings()) {
      if (!best || Beats(s, *best)) best = &s;
    }
    return best;
  }
  const V* Value() const {
    const Sibling* w = Winner();
    return w ? &w->value.value : nullptr;
  }
  // The concurrent writes that lost to the winner.
  std::vector<const Sibling*> Overwritten() const {
    std::vector<const Sibling*> out;
    const Sibling* w = Winner();
    for (const auto& s : reg_.Siblings()) {
      if (&s != w) out.push_back(&s);
    }
    return out;
  }
  const MVRegister<Stamped<V>>& mv() const { return reg_; }
  MVRegister<Stamped<V>>& mutable_mv() { return reg_; }
  friend bool operator==(const LWWRegister&, const LWWRegister&) = default;

  static bool Beats(const Sibling& a, const Sibling& b) {
    return std::tie(a.value.time, a.clock.dot) > std::tie(b.value.time, b.clock.dot);
  }

 private:
  MVRegister<Stamped<V>> reg_;
};

}  // namespace weft::crdt
