// Add-wins observed-remove set.
//
// Each element present holds the dots of the adds that put it there (at most one per node: an
// add replaces the dots its author saw). A remove carries the dots it observed and removes only
// those, so an add concurrent with a remove wins. An element whose dots are all removed is erased
// with its metadata; duplicates are recognised by the set's `seen` vector, one entry per node
// that ever wrote, so removed elements leave nothing behind (no tombstones).
//
// Remote operations must arrive in causal order (the Document guarantees it). Plain value type,
// not thread-safe.
#pragma once

#include <map>
#include <optional>
#include <vector>

#include "weft/crdt/register.h"

namespace weft::crdt {

struct Present {
  friend constexpr bool operator==(const Present&, const Present&) = default;
};

template <typename T>
class ORSet {
 public:
  struct Op {
    Dot dot;
    T element;
    VersionVector context;  // the element's dots the author observed
    bool add = true;        // false: remove
    friend bool operator==(const Op&, const Op&) = default;
  };

  Op Add(const Dot& dot, T element) {
    Op op{dot, element, ContextOf(element), true};
    Apply(op);
    return op;
  }
  // Removes the element as observed here; a no-op op (still valid) when absent.
  Op Remove(const Dot& dot, T element) {
    Op op{dot, element, ContextOf(element), false};
    Apply(op);
    return op;
  }
  bool Apply(const Op& op) {
    if (seen_.Get(op.dot.node) >= op.dot.seq) return false;
    seen_.Set(op.dot.node, op.dot.seq);
    auto it = elements_.find(op.element);
    if (it == elements_.end()) {
      if (!op.add) return true;
      it = elements_.emplace(op.element, MVSlot<Present>()).first;
    }
    it->second.Write(op.dot, op.context, op.add ? std::optional<Present>(Present{}) : std::nullopt);
    if (it->second.empty()) elements_.erase(it);
    return true;
  }

  bool Contains(const T& element) const { return elements_.count(element) != 0; }
  std::vector<T> Elements() const {
    std::vector<T> out;
    out.reserve(elements_.size());
    for (const auto& [e, slot] : elements_) out.push_back(e);
    return out;
  }
  size_t size() const { return elements_.size(); }
  VersionVector ContextOf(const T& element) const {
    auto it = elements_.find(element);
    return it == elements_.end() ? VersionVector() : it->second.Context();
  }
  const std::map<T, MVSlot<Present>>& entries() const { return elements_; }
  const VersionVector& seen() const { return seen_; }
  // Puts one element's slot (nullopt: absent) and the seen vector back as they were (undo).
  void RestoreEntry(const T& element, std::optional<MVSlot<Present>> slot, VersionVector seen) {
    if (slot)
      elements_[element] = std::move(*slot);
    else
      elements_.erase(element);
    seen_ = std::move(seen);
  }
  void Restore(std::map<T, MVSlot<Present>> elements, VersionVector seen) {
    elements_ = std::move(elements);
    seen_ = std::move(seen);
  }
  friend bool operator==(const ORSet&, const ORSet&) = default;

 private:
  std::map<T, MVSlot<Present>> elements_;
  VersionVector seen_;
};

}  // namespace weft::crdt
