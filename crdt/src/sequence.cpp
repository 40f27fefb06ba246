// SequenceCore: run-length encoded items in a B-tree, plus an id -> leaf index.
//
// Tree: leaves hold up to kLeafCap runs and are linked in document order; inner nodes hold up to
// kNodeCap children with, per child, the number of visible and of all items below it. Leaves may
// become empty (after UndoInsert); every walk skips them.
//
// Index: per node, the ranges of seqs present, each with the leaf that holds them (RangeIndex).
// The ranges cover exactly the items present, so it also answers "is this id here?".
//
// Integration of a remote insert follows the YjsMod rule (Gentle's fix of YATA, which produces the
// FugueMax order): scan right from the left origin up to the right origin, comparing the origins
// of the items met with those of the new item.
#include "weft/crdt/sequence.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <optional>
#include <unordered_map>

#include "sequence_huffman.h"

namespace weft::crdt {
namespace {

constexpr int kLeafCap = 16;
constexpr int kNodeCap = 32;
constexpr int kBulkLeafFill = 12;
constexpr int kBulkNodeFill = 24;
constexpr uint32_t kNoContent = SequenceCore::kNoContent;
constexpr uint64_t kStateVersion = 1;

struct Run {
  uint64_t node = 0;
  uint64_t seq = 0;    // id of the first item
  uint64_t lnode = 0;  // left origin of the first item (lnode 0: the start)
  uint64_t lseq = 0;
  uint64_t rnode = 0;  // right origin of every item (rnode 0: the end)
  uint64_t rseq = 0;
  uint32_t len = 0;
  uint32_t content = 0;
  bool deleted = false;
  // The view (SequenceCore's view of an earlier version): `out` when the items are not in it,
  // `vdel` the number of the view's deletes that name them.
  bool out = false;
  uint32_t vdel = 0;

  uint64_t vis() const { return deleted ? 0 : len; }
  uint64_t view() const { return !out && vdel == 0 ? len : 0; }
  uint64_t last() const { return seq + len - 1; }
};

// Same shape (ids, origins, flag); content and view not compared: what the encoding merges.
bool CanMergeShape(const Run& a, const Run& b) {
  return a.node == b.node && a.seq + a.len == b.seq && b.lnode == a.node && b.lseq == a.last() &&
         a.rnode == b.rnode && a.rseq == b.rseq && a.deleted == b.deleted &&
         static_cast<uint64_t>(a.len) + b.len <= kMaxSequenceRunLength;
}

bool CanMerge(const Run& a, const Run& b) {
  if (!CanMergeShape(a, b) || a.out != b.out || a.vdel != b.vdel) return false;
  if (a.content == kNoContent || b.content == kNoContent) {
    return a.content == kNoContent && b.content == kNoContent;
  }
  return a.content + a.len == b.content;
}

// Splits `r` at `off` (0 < off < len): r keeps [0, off), returns [off, len).
Run SplitRun(Run& r, uint32_t off) {
  Run t = r;
  t.seq = r.seq + off;
  t.lnode = r.node;
  t.lseq = r.seq + off - 1;
  t.len = r.len - off;
  if (r.content != kNoContent) t.content = r.content + off;
  r.len = off;
  return t;
}

struct Inner;
struct NodeBase {
  Inner* parent = nullptr;
  int slot = 0;  // index in parent->child
  bool is_leaf = true;
};
struct Leaf : NodeBase {
  int n = 0;
  Leaf* prev = nullptr;
  Leaf* next = nullptr;
  Run runs[kLeafCap];
};
struct Inner : NodeBase {
  int n = 0;
  NodeBase* child[kNodeCap];
  uint64_t vis[kNodeCap];
  uint64_t view[kNodeCap];
  uint64_t tot[kNodeCap];
};

// Item counts of a subtree: visible, visible in the view, all.
struct Sums {
  uint64_t vis = 0, view = 0, tot = 0;
};

// A change of those counts.
struct RunDelta {
  int64_t vis = 0, view = 0, tot = 0;
  void Add(const Run& r, int64_t sign) {
    vis += sign * static_cast<int64_t>(r.vis());
    view += sign * static_cast<int64_t>(r.view());
    tot += sign * static_cast<int64_t>(r.len);
  }
  static RunDelta Of(const Run& r) {
    RunDelta d;
    d.Add(r, 1);
    return d;
  }
};

struct Cursor {
  Leaf* leaf = nullptr;
  int idx = 0;
  uint32_t off = 0;
};

Sums LeafSums(const Leaf* l) {
  Sums s;
  for (int i = 0; i < l->n; ++i) {
    s.tot += l->runs[i].len;
    s.vis += l->runs[i].vis();
    s.view += l->runs[i].view();
  }
  return s;
}

Sums NodeSums(const NodeBase* n) {
  if (n->is_leaf) return LeafSums(static_cast<const Leaf*>(n));
  const Inner* in = static_cast<const Inner*>(n);
  Sums s;
  for (int i = 0; i < in->n; ++i) {
    s.vis += in->vis[i];
    s.view += in->view[i];
    s.tot += in->tot[i];
  }
  return s;
}

// Stores the sums of `n` in slot i of `p`.
void SetSlotSums(Inner* p, int i, const NodeBase* n) {
  Sums s = NodeSums(n);
  p->vis[i] = s.vis;
  p->view[i] = s.view;
  p->tot[i] = s.tot;
}

int ChildIndex(const Inner* p, const NodeBase* c) {
  assert(p->child[c->slot] == c);
  (void)p;
  return c->slot;
}

void FreeTree(NodeBase* n) {
  if (!n) return;
  if (n->is_leaf) {
    delete static_cast<Leaf*>(n);
    return;
  }
  Inner* in = static_cast<Inner*>(n);
  for (int i = 0; i < in->n; ++i) FreeTree(in->child[i]);
  delete in;
}

// The number of elements of the sorted data[0, n) whose key is at most `seq` (std::upper_bound),
// with a conditional move rather than a branch per step: a search's branches are unpredictable,
// and their mispredictions cost more than its compares.
template <typename T, typename Key>
size_t CountAtMost(const T* data, size_t n, uint64_t seq, Key key) {
  if (n == 0) return 0;
  const T* base = data;
  while (n > 1) {
    size_t half = n / 2;
    base = key(base[half]) <= seq ? base + half : base;
    n -= half;
  }
  return static_cast<size_t>(base - data) + (key(*base) <= seq ? 1 : 0);
}

// Sorts v[0, n) by key(element) (a uint64_t): a stable LSD radix sort in as few passes of at
// most `max_bits` (up to 13) bits as the largest key needs, moving the elements between `v` and
// `tmp` (n elements each). Returns where the sorted elements ended: `v` or `tmp`. Keys here pack a
// node's rank with a seq; the bulk paths sort tens of thousands of them, which std::sort's
// compares make several times slower. (A pass clears and sums 2^bits counts: fewer elements than
// that sort faster in more passes of fewer bits.)
template <typename T, typename Key>
T* RadixSort(T* v, T* tmp, size_t n, Key key, int max_bits = 13) {
  uint64_t max = 0;
  for (size_t i = 0; i < n; ++i) max = std::max(max, key(v[i]));
  int width = 0;
  while (width < 64 && (max >> width) != 0) ++width;
  if (width == 0) return v;
  // As few passes as digits of at most kMaxBits take, the bits shared evenly among them (each
  // pass reads and writes every element; a count table of 2^13 stays in the cache).
  const int kMaxBits = std::clamp(max_bits, 1, 13);
  const int passes = (width + kMaxBits - 1) / kMaxBits;
  const int bits = (width + passes - 1) / passes;
  const size_t buckets = size_t{1} << bits;
  const uint64_t mask = buckets - 1;
  std::vector<size_t> count(buckets + 1);
  for (int shift = 0; shift < width; shift += bits) {
    std::fill(count.begin(), count.end(), 0);
    for (size_t i = 0; i < n; ++i) ++count[((key(v[i]) >> shift) & mask) + 1];
    for (size_t i = 0; i < buckets; ++i) count[i + 1] += count[i];
    for (size_t i = 0; i < n; ++i) tmp[count[(key(v[i]) >> shift) & mask]++] = v[i];
    std::swap(v, tmp);
  }
  return v;
}

template <typename T, typename Key>
void RadixSort(std::vector<T>& v, Key key) {
  std::vector<T> tmp(v.size());
  if (RadixSort(v.data(), tmp.data(), v.size(), key) != v.data()) v.swap(tmp);
}

// The number of bits needed for values up to `max`.
int BitWidth(uint64_t max) {
  int b = 0;
  while (b < 64 && (max >> b) != 0) ++b;
  return b;
}

// One node's part of the id index: disjoint ranges [first, last] of seqs, each mapped to the
// leaf that holds those items, sorted by first. Kept in chunks of at most kChunk entries with
// the first seq of each chunk beside them, so a lookup is two binary searches and a change
// moves at most one chunk's entries (a node may have hundreds of thousands of ranges: one
// sorted array would move them all, a std::map allocates per entry).
class RangeIndex {
 public:
  struct Entry {
    uint64_t first;
    uint64_t last;
    Leaf* leaf;
  };

  bool empty() const { return chunks_.empty(); }
  // The greatest seq held (0 when empty).
  uint64_t LastSeq() const { return chunks_.empty() ? 0 : chunks_.back().back().last; }

  // The entry holding `seq`, or null.
  const Entry* Get(uint64_t seq) const {
    Pos p = UpperBound(seq);
    if (!HasPrev(p)) return nullptr;
    const Entry& e = At(Prev(p));
    return e.last >= seq ? &e : nullptr;
  }
  // True when every seq in [first, last] is held.
  bool HasAll(uint64_t first, uint64_t last) const {
    while (true) {
      const Entry* e = Get(first);
      if (!e) return false;
      if (e->last >= last) return true;
      first = e->last + 1;
    }
  }
  // True when some seq in [first, last] is held.
  bool HasAny(uint64_t first, uint64_t last) const {
    // The common question: are a new insert's ids (past every id of its author held) free?
    if (chunks_.empty() || first > chunks_.back().back().last) return false;
    return Overlap(first, last).has_value();
  }
  // The first seq held after `seq`, or 0.
  uint64_t NextStart(uint64_t seq) const {
    Pos p = UpperBound(seq);
    return AtEnd(p) ? 0 : At(p).first;
  }

  // Maps [first, last] to `leaf`, replacing what mapped any of it, and joins the entry with a
  // neighbour that continues it in the same leaf.
  void Assign(uint64_t first, uint64_t last, Leaf* leaf) {
    if (!chunks_.empty()) {
      Entry& back = chunks_.back().back();
      if (back.first <= first && back.last + 1 >= first && back.leaf == leaf) {
        // The newest ids of a node (typing): extend the last entry.
        if (back.last < last) back.last = last;
        return;
      }
      if (first > back.last) {
        Insert(Pos{chunks_.size() - 1, chunks_.back().size()}, Entry{first, last, leaf});
        return;
      }
    }
    Pos p = UpperBound(first);
    if (HasPrev(p)) {
      // Within one entry (a leaf split moves runs): relabel that part of it.
      Pos q = Prev(p);
      Entry& e = At(q);
      if (e.first <= first && last <= e.last) {
        if (e.leaf == leaf) return;
        if (e.first == first && e.last == last) {
          e.leaf = leaf;
          JoinAround(q);
          return;
        }
        if (e.first < first && e.last > last) {
          Entry tail{last + 1, e.last, e.leaf};
          e.last = first - 1;
          Insert(Insert(p, tail), Entry{first, last, leaf});
          return;
        }
        // A head or a tail of the entry: when the entry beside it continues it in `leaf` (runs a
        // split moves, of one node, with others between them), that one grows over it, with no
        // entry inserted and removed.
        if (e.first == first) {
          SetFirst(q, last + 1);
          if (HasPrev(q)) {
            Entry& before = At(Prev(q));
            if (before.last + 1 == first && before.leaf == leaf) {
              before.last = last;
              return;
            }
          }
          JoinAround(Insert(q, Entry{first, last, leaf}));
          return;
        }
        e.last = first - 1;  // e.last == last
        if (!AtEnd(p) && At(p).first == last + 1 && At(p).leaf == leaf) {
          SetFirst(p, first);
          return;
        }
        JoinAround(Insert(p, Entry{first, last, leaf}));
        return;
      }
    }
    Erase(first, last);
    p = UpperBound(first);
    bool join_next = !AtEnd(p) && At(p).first == last + 1 && At(p).leaf == leaf;
    if (HasPrev(p)) {
      Entry& prev = At(Prev(p));
      if (prev.last + 1 == first && prev.leaf == leaf) {
        if (join_next) {
          prev.last = At(p).last;
          Remove(p);
        } else {
          prev.last = last;
        }
        return;
      }
    }
    if (join_next) {
      SetFirst(p, first);
      return;
    }
    Insert(p, Entry{first, last, leaf});
  }

  // Unmaps [first, last] (keeping the rest of the entries that overlap it).
  void Erase(uint64_t first, uint64_t last) {
    while (std::optional<Pos> o = Overlap(first, last)) {
      Entry& e = At(*o);
      if (e.first < first) {
        if (e.last > last) {
          Entry tail{last + 1, e.last, e.leaf};
          e.last = first - 1;
          Insert(Next(*o), tail);
          return;
        }
        e.last = first - 1;
      } else if (e.last > last) {
        SetFirst(*o, last + 1);
        return;
      } else {
        Remove(*o);
      }
    }
  }

  // Appends an entry after every other (Build: entries come in order).
  void Append(uint64_t first, uint64_t last, Leaf* leaf) {
    if (!chunks_.empty()) {
      Entry& back = chunks_.back().back();
      if (back.leaf == leaf && back.last + 1 == first) {
        back.last = last;
        return;
      }
      Insert(Pos{chunks_.size() - 1, chunks_.back().size()}, Entry{first, last, leaf});
      return;
    }
    Insert(Pos{0, 0}, Entry{first, last, leaf});
  }

  // Empty when the chunks are non-empty, their heads right and the entries sorted and disjoint.
  std::string Check() const {
    if (heads_.size() != chunks_.size()) return "index: chunk heads out of step";
    uint64_t prev_last = 0;
    bool any = false;
    for (size_t c = 0; c < chunks_.size(); ++c) {
      if (chunks_[c].empty() || chunks_[c].size() > kChunk) return "index: bad chunk size";
      if (heads_[c] != chunks_[c].front().first) return "index: wrong chunk head";
      for (const Entry& e : chunks_[c]) {
        if (e.first > e.last || (any && e.first <= prev_last)) return "index: ranges out of order";
        prev_last = e.last;
        any = true;
      }
    }
    return "";
  }

  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (const auto& c : chunks_)
      for (const Entry& e : c) fn(e);
  }

 private:
  static constexpr size_t kChunk = 64;
  // An entry's place: chunk c, index i; {chunks_.size(), 0} is the end.
  struct Pos {
    size_t c, i;
  };

  Entry& At(Pos p) { return chunks_[p.c][p.i]; }
  const Entry& At(Pos p) const { return chunks_[p.c][p.i]; }
  bool AtEnd(Pos p) const { return p.c >= chunks_.size(); }
  static bool HasPrev(Pos p) { return p.c > 0 || p.i > 0; }
  Pos Prev(Pos p) const {
    return p.i > 0 ? Pos{p.c, p.i - 1} : Pos{p.c - 1, chunks_[p.c - 1].size() - 1};
  }
  Pos Next(Pos p) const {
    return p.i + 1 < chunks_[p.c].size() ? Pos{p.c, p.i + 1} : Pos{p.c + 1, 0};
  }

  // The first entry whose first seq is greater than `seq`.
  Pos UpperBound(uint64_t seq) const {
    // Lookups of a node's ids cluster (an op's origins and deletes are near the previous op's):
    // first try the entries recent lookups ended on, and the ones after them. The hints are only
    // guesses, checked in full, so changes to the entries need not keep them up to date.
    for (Pos& h : hint_) {
      if (h.c < chunks_.size() && h.i < chunks_[h.c].size() && At(h).first <= seq) {
        Pos n = Next(h);
        if (AtEnd(n) || At(n).first > seq) return n;
        Pos nn = Next(n);
        if (AtEnd(nn) || At(nn).first > seq) {
          h = n;
          return nn;
        }
      }
    }
    size_t c = CountAtMost(heads_.data(), heads_.size(), seq, [](uint64_t h) { return h; });
    if (c == 0) return Pos{0, 0};
    const std::vector<Entry>& ch = chunks_[c - 1];
    size_t i = CountAtMost(ch.data(), ch.size(), seq, [](const Entry& e) { return e.first; });
    hint_[1] = hint_[0];
    hint_[0] = Pos{c - 1, i == 0 ? 0 : i - 1};
    return i < ch.size() ? Pos{c - 1, i} : Pos{c, 0};
  }
  // The first entry that overlaps [first, last], if any.
  std::optional<Pos> Overlap(uint64_t first, uint64_t last) const {
    Pos p = UpperBound(first);
    if (HasPrev(p) && At(Prev(p)).last >= first) return Prev(p);
    if (!AtEnd(p) && At(p).first <= last) return p;
    return std::nullopt;
  }
  // Joins the entry at p with its neighbours when they continue it in the same leaf.
  void JoinAround(Pos p) {
    if (Pos n = Next(p); !AtEnd(n) && At(n).first == At(p).last + 1 && At(n).leaf == At(p).leaf) {
      At(p).last = At(n).last;
      Remove(n);
    }
    if (HasPrev(p)) {
      Pos q = Prev(p);
      if (At(q).last + 1 == At(p).first && At(q).leaf == At(p).leaf) {
        At(q).last = At(p).last;
        Remove(p);
      }
    }
  }
  void SetFirst(Pos p, uint64_t first) {
    At(p).first = first;
    if (p.i == 0) heads_[p.c] = first;
  }
  // Inserts `e` before position p (which may be the end of a chunk, or the end); returns where
  // it went.
  Pos Insert(Pos p, const Entry& e) {
    if (chunks_.empty()) {
      chunks_.emplace_back().push_back(e);
      heads_.push_back(e.first);
      return Pos{0, 0};
    }
    if (p.c == chunks_.size()) p = Pos{p.c - 1, chunks_[p.c - 1].size()};
    std::vector<Entry>& ch = chunks_[p.c];
    ch.insert(ch.begin() + static_cast<std::ptrdiff_t>(p.i), e);
    if (p.i == 0) heads_[p.c] = e.first;
    if (ch.size() <= kChunk) return p;
    std::vector<Entry> half(ch.begin() + kChunk / 2, ch.end());
    ch.resize(kChunk / 2);
    uint64_t head = half.front().first;
    chunks_.insert(chunks_.begin() + static_cast<std::ptrdiff_t>(p.c) + 1, std::move(half));
    heads_.insert(heads_.begin() + static_cast<std::ptrdiff_t>(p.c) + 1, head);
    return p.i < kChunk / 2 ? p : Pos{p.c + 1, p.i - kChunk / 2};
  }
  void Remove(Pos p) {
    std::vector<Entry>& ch = chunks_[p.c];
    ch.erase(ch.begin() + static_cast<std::ptrdiff_t>(p.i));
    if (ch.empty()) {
      chunks_.erase(chunks_.begin() + static_cast<std::ptrdiff_t>(p.c));
      heads_.erase(heads_.begin() + static_cast<std::ptrdiff_t>(p.c));
    } else if (p.i == 0) {
      heads_[p.c] = ch.front().first;
    }
  }

  std::vector<std::vector<Entry>> chunks_;  // each non-empty
  std::vector<uint64_t> heads_;             // heads_[c] == chunks_[c].front().first
  // The entries at or before the seqs of the last two searches (a delete validates its ranges,
  // then marks them: two ranges of one node alternate).
  mutable Pos hint_[2] = {{0, 0}, {0, 0}};
};

}  // namespace

struct SequenceCore::Impl {
  using NodeMap = RangeIndex;

  NodeBase* root = nullptr;
  Leaf* first = nullptr;
  Leaf* last = nullptr;
  std::vector<std::pair<uint64_t, NodeMap>> index;  // sorted by node
  // Where each node's map was last found in `index`, by a hash of the node: a guess, checked on
  // use (adding a node moves the maps after it), so nothing has to keep it up to date. Ops name
  // ids of many nodes in turn (a delete's ranges, the runs a split moves), so one hint is not
  // enough.
  mutable uint32_t index_hint[64] = {};
  static size_t HintSlot(uint64_t node) { return (node * 0x9E3779B97F4A7C15ull) >> 58; }
  size_t leaf_count = 0;              // leaves in the tree (empty ones too)
  mutable Leaf* find_hint = nullptr;  // a leaf of this tree (leaves are freed only in Build)
  // FindVisible's last leaf and the number of visible items before it; null when unknown.
  mutable Leaf* vis_leaf = nullptr;
  mutable uint64_t vis_start = 0;

  Impl() {
    Leaf* l = new Leaf;
    root = first = last = l;
    leaf_count = 1;
  }
  ~Impl() { FreeTree(root); }

  // ---- sums ----
  void FixUp(NodeBase* n) {
    vis_leaf = nullptr;
    while (n->parent) {
      Inner* p = n->parent;
      SetSlotSums(p, ChildIndex(p, n), n);
      n = p;
    }
  }
  // Adds `d` to the sums above `n`.
  void AddDelta(NodeBase* n, const RunDelta& d) {
    if (d.vis != 0 && n != vis_leaf) vis_leaf = nullptr;  // may have moved the cached leaf
    while (n->parent) {
      Inner* p = n->parent;
      int i = ChildIndex(p, n);
      p->vis[i] += static_cast<uint64_t>(d.vis);
      p->view[i] += static_cast<uint64_t>(d.view);
      p->tot[i] += static_cast<uint64_t>(d.tot);
      n = p;
    }
  }
  uint64_t Visible() const { return NodeSums(root).vis; }
  uint64_t InView() const { return NodeSums(root).view; }
  uint64_t Total() const { return NodeSums(root).tot; }

  // ---- index ----
  NodeMap* MapFor(uint64_t node) const {
    auto& idx = const_cast<std::vector<std::pair<uint64_t, NodeMap>>&>(index);
    uint32_t& hint = index_hint[HintSlot(node)];
    if (hint < idx.size() && idx[hint].first == node) return &idx[hint].second;
    auto it = std::lower_bound(idx.begin(), idx.end(), node,
                               [](const auto& e, uint64_t n) { return e.first < n; });
    if (it == idx.end() || it->first != node) return nullptr;
    hint = static_cast<uint32_t>(it - idx.begin());
    return &it->second;
  }
  NodeMap& MapCreate(uint64_t node) {
    if (NodeMap* m = MapFor(node)) return *m;
    auto it = std::lower_bound(index.begin(), index.end(), node,
                               [](const auto& e, uint64_t n) { return e.first < n; });
    it = index.emplace(it, node, NodeMap{});
    index_hint[HintSlot(node)] = static_cast<uint32_t>(it - index.begin());
    return it->second;
  }

  void IndexRun(const Run& r, Leaf* leaf) { MapCreate(r.node).Assign(r.seq, r.last(), leaf); }
  // Indexes runs[0, n) to `leaf`, one lookup for each group of neighbours whose ids continue one
  // another (the pieces of one insert that deletes split stay side by side).
  void IndexRuns(const Run* runs, int n, Leaf* leaf) {
    for (int j = 0; j < n;) {
      uint64_t last_seq = runs[j].last();
      int k = j + 1;
      while (k < n && runs[k].node == runs[j].node && runs[k].seq == last_seq + 1) {
        last_seq = runs[k++].last();
      }
      MapCreate(runs[j].node).Assign(runs[j].seq, last_seq, leaf);
      j = k;
    }
  }
  void IndexErase(uint64_t node, uint64_t first, uint64_t last_seq) {
    if (NodeMap* m = MapFor(node)) m->Erase(first, last_seq);
  }

  Leaf* LeafOf(uint64_t node, uint64_t seq) const {
    const NodeMap* m = MapFor(node);
    if (!m) return nullptr;
    const RangeIndex::Entry* e = m->Get(seq);
    return e ? e->leaf : nullptr;
  }
  // True when every seq in [first, last] is present.
  bool HasAll(uint64_t node, uint64_t first, uint64_t last_seq) const {
    const NodeMap* m = MapFor(node);
    return m && m->HasAll(first, last_seq);
  }
  // True when some seq in [first, last] is present.
  bool HasAny(uint64_t node, uint64_t first, uint64_t last_seq) const {
    const NodeMap* m = MapFor(node);
    return m && m->HasAny(first, last_seq);
  }
  // Next present seq after `seq` (exclusive) of `node`, or 0.
  uint64_t NextPresent(uint64_t node, uint64_t seq) const {
    const NodeMap* m = MapFor(node);
    return m ? m->NextStart(seq) : 0;
  }

  static bool FindInLeaf(Leaf* l, uint64_t node, uint64_t seq, Cursor* c) {
    for (int i = 0; i < l->n; ++i) {
      const Run& r = l->runs[i];
      // seq - r.seq wraps to a huge value when seq < r.seq: one compare for both bounds.
      if (r.node == node && seq - r.seq < r.len) {
        *c = Cursor{l, i, static_cast<uint32_t>(seq - r.seq)};
        return true;
      }
    }
    return false;
  }
  bool Find(uint64_t node, uint64_t seq, Cursor* c) const {
    // Lookups cluster (an op's origins are usually near the previous op's): try the last leaf.
    if (find_hint && FindInLeaf(find_hint, node, seq, c)) return true;
    Leaf* l = LeafOf(node, seq);
    if (!l) return false;
    find_hint = l;
    bool found = FindInLeaf(l, node, seq, c);
    assert(found);
    return found;
  }
  bool Has(Dot d) const { return d.node.valid() && LeafOf(d.node.value, d.seq) != nullptr; }

  // ---- cursors ----
  // Moves a cursor past the end of a leaf to the start of the next non-empty leaf (if any).
  static void Normalize(Cursor* c) {
    while (c->idx >= c->leaf->n && c->leaf->next) *c = Cursor{c->leaf->next, 0, 0};
  }
  static bool AtEnd(const Cursor& c) { return c.idx >= c.leaf->n; }
  // The item at a normalized cursor, or the null Dot at the end.
  static Dot ItemAt(const Cursor& c) {
    if (AtEnd(c)) return Dot{};
    const Run& r = c.leaf->runs[c.idx];
    return Dot{NodeId{r.node}, r.seq + c.off};
  }
  // The cursor at the visible item `pos`, or the end when pos == Visible().
  static bool ScanLeaf(Leaf* l, uint64_t pos, Cursor* c) {
    for (int i = 0; i < l->n; ++i) {
      const Run& r = l->runs[i];
      if (r.deleted) continue;
      if (pos < r.len) {
        *c = Cursor{l, i, static_cast<uint32_t>(pos)};
        return true;
      }
      pos -= r.len;
    }
    return false;
  }
  // The leaf that holds item `*pos` as `counts` (Inner::vis or Inner::view) count items; leaves
  // in *pos the number of such items before it in that leaf.
  Leaf* Descend(uint64_t* pos, uint64_t (Inner::*counts)[kNodeCap]) const {
    NodeBase* n = root;
    while (!n->is_leaf) {
      Inner* in = static_cast<Inner*>(n);
      const uint64_t* c = in->*counts;
      int i = 0;
      for (; i < in->n - 1; ++i) {
        if (*pos < c[i]) break;
        *pos -= c[i];
      }
      n = in->child[i];
    }
    return static_cast<Leaf*>(n);
  }
  Cursor FindVisible(uint64_t pos) const {
    // Edits cluster: try the leaf of the previous lookup first.
    Cursor c;
    if (vis_leaf && pos >= vis_start && ScanLeaf(vis_leaf, pos - vis_start, &c)) return c;
    uint64_t target = pos;
    Leaf* l = Descend(&pos, &Inner::vis);
    vis_leaf = l;
    vis_start = target - pos;
    if (ScanLeaf(l, pos, &c)) return c;
    c = Cursor{l, l->n, 0};
    Normalize(&c);
    return c;
  }

  // Items (all, visible) before the cursor position.
  void Before(const Cursor& c, uint64_t* raw, uint64_t* vis) const {
    uint64_t t = 0, v = 0;
    for (int j = 0; j < c.idx && j < c.leaf->n; ++j) {
      t += c.leaf->runs[j].len;
      v += c.leaf->runs[j].vis();
    }
    if (c.idx < c.leaf->n) {
      t += c.off;
      if (!c.leaf->runs[c.idx].deleted) v += c.off;
    }
    const NodeBase* n = c.leaf;
    while (n->parent) {
      const Inner* p = n->parent;
      int i = ChildIndex(p, n);
      for (int j = 0; j < i; ++j) {
        t += p->tot[j];
        v += p->vis[j];
      }
      n = p;
    }
    *raw = t;
    *vis = v;
  }
  int64_t RawPos(uint64_t node, uint64_t seq) const {
    Cursor c;
    if (!Find(node, seq, &c)) return -1;
    uint64_t t, v;
    Before(c, &t, &v);
    return static_cast<int64_t>(t);
  }

  // ---- structure changes ----
  void InsertChildAfter(NodeBase* left, NodeBase* right) {
    Inner* p = left->parent;
    if (!p) {
      p = new Inner;
      p->is_leaf = false;
      p->n = 1;
      p->child[0] = left;
      left->parent = p;
      left->slot = 0;
      SetSlotSums(p, 0, left);
      root = p;
    }
    if (p->n == kNodeCap) {
      SplitInner(p);
      p = left->parent;
    }
    int i = left->slot;
    for (int j = p->n; j > i + 1; --j) {
      p->child[j] = p->child[j - 1];
      p->child[j]->slot = j;
      p->vis[j] = p->vis[j - 1];
      p->view[j] = p->view[j - 1];
      p->tot[j] = p->tot[j - 1];
    }
    p->child[i + 1] = right;
    right->parent = p;
    right->slot = i + 1;
    ++p->n;
    // `right` took items from `left`, so the sums above p change only by what the caller changed
    // in `left` before the split without counting it: add the difference rather than summing
    // every ancestor's children again.
    RunDelta d;
    d.vis = -static_cast<int64_t>(p->vis[i]);
    d.view = -static_cast<int64_t>(p->view[i]);
    d.tot = -static_cast<int64_t>(p->tot[i]);
    SetSlotSums(p, i, left);
    SetSlotSums(p, i + 1, right);
    d.vis += static_cast<int64_t>(p->vis[i] + p->vis[i + 1]);
    d.view += static_cast<int64_t>(p->view[i] + p->view[i + 1]);
    d.tot += static_cast<int64_t>(p->tot[i] + p->tot[i + 1]);
    vis_leaf = nullptr;
    AddDelta(p, d);
  }

  Inner* SplitInner(Inner* p) {
    Inner* q = new Inner;
    q->is_leaf = false;
    int h = p->n / 2;
    for (int j = h; j < p->n; ++j) {
      q->child[j - h] = p->child[j];
      q->vis[j - h] = p->vis[j];
      q->view[j - h] = p->view[j];
      q->tot[j - h] = p->tot[j];
      p->child[j]->parent = q;
      p->child[j]->slot = j - h;
    }
    q->n = p->n - h;
    p->n = h;
    InsertChildAfter(p, q);
    return q;
  }

  // Moves runs [h, n) of `l` to a new leaf after it (re-indexing them) and returns that leaf.
  Leaf* SplitLeaf(Leaf* l, int h) {
    Leaf* r = new Leaf;
    ++leaf_count;
    for (int j = h; j < l->n; ++j) r->runs[j - h] = l->runs[j];
    r->n = l->n - h;
    l->n = h;
    r->next = l->next;
    r->prev = l;
    if (l->next) l->next->prev = r;
    l->next = r;
    if (last == l) last = r;
    IndexRuns(r->runs, r->n, r);
    InsertChildAfter(l, r);
    return r;
  }

  // Inserts k (<= 2) runs at `idx` of `leaf`, indexes them and fixes the sums. The caller may
  // already have changed the leaf's other runs by `pre` items without fixing the sums.
  // Returns the cursor of the first inserted run.
  // runs[existing..k) are ids already indexed to `leaf` (pieces of a run split in place).
  Cursor LeafInsert(Leaf* leaf, int idx, const Run* runs, int k, int existing, RunDelta pre = {}) {
    Leaf* orig = leaf;
    if (leaf->n + k > kLeafCap) {
      // Every run a split moves to the new leaf is indexed again, so it moves as few as keep
      // the left part at least half full: inserts mostly land in the upper half of a leaf (an
      // editor types forward and a split leaves the cursor in its new right half), and runs
      // inserted at the end of a full leaf move none.
      int h = std::max(idx, leaf->n / 2);
      Leaf* r = SplitLeaf(leaf, h);  // recomputes the sums of both halves from their runs
      pre = {};
      if (idx > leaf->n || (idx == leaf->n && leaf->n + k > kLeafCap)) {
        idx -= leaf->n;
        leaf = r;
      }
    }
    std::memmove(static_cast<void*>(&leaf->runs[idx + k]), &leaf->runs[idx],
                 sizeof(Run) * static_cast<size_t>(leaf->n - idx));
    RunDelta d = pre;
    for (int j = 0; j < k; ++j) {
      leaf->runs[idx + j] = runs[j];
      d.Add(runs[j], 1);
    }
    leaf->n += k;
    int reindex = leaf == orig ? existing : k;
    IndexRuns(runs, reindex, leaf);
    AddDelta(leaf, d);
    return Cursor{leaf, idx, 0};
  }

  void RemoveRun(Leaf* leaf, int idx) {
    std::memmove(static_cast<void*>(&leaf->runs[idx]), &leaf->runs[idx + 1],
                 sizeof(Run) * static_cast<size_t>(leaf->n - idx - 1));
    --leaf->n;
  }

  // Inserts run `r` (new ids) before the item at cursor `c`.
  // The leaf it went to becomes Find's first guess: the next op's origins are often the items
  // just inserted (typing resumed after a delete) or near them.
  void InsertAt(Cursor c, const Run& r) {
    if (c.idx < c.leaf->n && c.off > 0) {
      Run tail = SplitRun(c.leaf->runs[c.idx], c.off);
      Run two[2] = {r, tail};
      RunDelta pre;
      pre.Add(tail, -1);
      find_hint = LeafInsert(c.leaf, c.idx + 1, two, 2, 1, pre).leaf;
      return;
    }
    if (c.idx > 0 && CanMerge(c.leaf->runs[c.idx - 1], r)) {
      c.leaf->runs[c.idx - 1].len += r.len;
      IndexRun(r, c.leaf);
      AddDelta(c.leaf, RunDelta::Of(r));
      find_hint = c.leaf;
      return;
    }
    if (c.idx == 0) {
      // Maybe the end of the previous non-empty leaf.
      Leaf* p = c.leaf->prev;
      while (p && p->n == 0) p = p->prev;
      if (p && CanMerge(p->runs[p->n - 1], r)) {
        p->runs[p->n - 1].len += r.len;
        IndexRun(r, p);
        AddDelta(p, RunDelta::Of(r));
        find_hint = p;
        return;
      }
    }
    find_hint = LeafInsert(c.leaf, c.idx, &r, 1, 1).leaf;
  }

  // Merges the run at idx with its neighbours in the same leaf when possible.
  void TryMerge(Leaf* l, int idx) {
    if (idx + 1 < l->n && CanMerge(l->runs[idx], l->runs[idx + 1])) {
      l->runs[idx].len += l->runs[idx + 1].len;
      RemoveRun(l, idx + 1);
    }
    if (idx > 0 && CanMerge(l->runs[idx - 1], l->runs[idx])) {
      l->runs[idx - 1].len += l->runs[idx].len;
      RemoveRun(l, idx);
    }
  }

  // Sets the state (deleted, out, vdel) of k items at cursor c (within one run) to `to`'s.
  void SetState(Cursor c, uint32_t k, const Run& to) {
    Leaf* l = c.leaf;
    Run& r = l->runs[c.idx];
    auto assign = [&](Run& x) {
      x.deleted = to.deleted;
      x.out = to.out;
      x.vdel = to.vdel;
    };
    if (c.off == 0 && k == r.len) {
      RunDelta d;
      d.Add(r, -1);
      assign(r);
      d.Add(r, 1);
      TryMerge(l, c.idx);
      AddDelta(l, d);
      return;
    }
    // A piece at an end of the run that joins the neighbour beside it (backspace or delete next
    // to earlier deletes): move the items over, no split.
    if (c.off == 0 && c.idx > 0) {
      Run head = r;
      Run rest = SplitRun(head, k);
      assign(head);
      Run& prev = l->runs[c.idx - 1];
      if (CanMerge(prev, head)) {
        RunDelta d;
        d.Add(r, -1);
        prev.len += k;
        r = rest;
        d.Add(head, 1);
        d.Add(rest, 1);
        AddDelta(l, d);
        return;
      }
    }
    if (c.off > 0 && c.off + k == r.len && c.idx + 1 < l->n) {
      Run front = r;
      Run piece = SplitRun(front, c.off);
      assign(piece);
      Run& next = l->runs[c.idx + 1];
      if (CanMerge(piece, next)) {
        RunDelta d;
        d.Add(r, -1);
        d.Add(front, 1);
        d.Add(piece, 1);
        piece.len += next.len;
        next = piece;
        r = front;
        AddDelta(l, d);
        return;
      }
    }
    Run pieces[3];
    int np = 0;
    Run cur = r;
    if (c.off > 0) {
      Run rest = SplitRun(cur, c.off);
      pieces[np++] = cur;
      cur = rest;
    }
    Run tail;
    bool has_tail = k < cur.len;
    if (has_tail) tail = SplitRun(cur, k);
    assign(cur);
    pieces[np++] = cur;
    if (has_tail) pieces[np++] = tail;
    // Sums change by: pieces[0] replacing r, then the inserted pieces.
    RunDelta pre;
    pre.Add(pieces[0], 1);
    pre.Add(r, -1);
    l->runs[c.idx] = pieces[0];
    Cursor at = LeafInsert(l, c.idx + 1, pieces + 1, np - 1, 0, pre);
    // The changed piece: first inserted when there was a head, else just before `at`, which is
    // the last run of `l` when a split put the inserted pieces at the start of a new leaf.
    if (c.off > 0) {
      TryMerge(at.leaf, at.idx);
    } else if (at.idx > 0) {
      TryMerge(at.leaf, at.idx - 1);
    } else {
      TryMerge(l, l->n - 1);
    }
  }

  // For every present item of [first, last] of `node`, a piece (k items from seq, in one run)
  // at a time: fn(state, seq, k) may change `state` (a copy of the piece's run) and returns true
  // when it did; the piece then takes that state.
  template <typename Fn>
  // `start`, when given, is a leaf that may hold item `first` (a guess: it is checked).
  void UpdateRange(uint64_t node, uint64_t first, uint64_t last_seq, Fn&& fn,
                   Leaf* start = nullptr) {
    uint64_t seq = first;
    while (seq <= last_seq) {
      Cursor c;
      bool found = start && FindInLeaf(start, node, seq, &c);
      start = nullptr;
      if (!found && !Find(node, seq, &c)) {
        uint64_t nx = NextPresent(node, seq);
        if (nx == 0 || nx > last_seq) return;
        seq = nx;
        continue;
      }
      Run state = c.leaf->runs[c.idx];
      uint64_t k = std::min<uint64_t>(state.len - c.off, last_seq - seq + 1);
      if (fn(state, seq, k)) SetState(c, static_cast<uint32_t>(k), state);
      if (seq + k - 1 == UINT64_MAX) return;
      seq += k;
    }
  }

  static void AppendRange(std::vector<DotRange>* out, uint64_t node, uint64_t seq, uint64_t k) {
    if (!out) return;
    if (!out->empty() && out->back().node.value == node && out->back().last + 1 == seq) {
      out->back().last = seq + k - 1;
    } else {
      out->push_back(DotRange{NodeId{node}, seq, seq + k - 1});
    }
  }

  // Sets the flag of every present item of [first, last] of `node`; appends the ranges whose flag
  // changed to *changed. With `view_delta`, also adds it to the view's delete count of each item.
  // `start`: as UpdateRange's.
  void MarkRange(uint64_t node, uint64_t first, uint64_t last_seq, bool deleted,
                 std::vector<DotRange>* changed, int view_delta = 0, Leaf* start = nullptr) {
    UpdateRange(
        node, first, last_seq,
        [&](Run& r, uint64_t seq, uint64_t k) {
          bool change = r.deleted != deleted && (deleted || r.content != kNoContent);
          if (change) {
            AppendRange(changed, node, seq, k);
            r.deleted = deleted;
          }
          if (view_delta != 0) {
            r.vdel = AddViewDelete(r.vdel, view_delta);
            change = true;
          }
          return change;
        },
        start);
  }

  // Checks the ranges of a delete (changing nothing). Sets starts[i], for i < n_starts, to the
  // leaf that holds the first item of range i: where marking it can start looking.
  Status CheckDelete(const std::vector<DotRange>& ranges, Leaf** starts, size_t n_starts) const {
    for (size_t i = 0; i < ranges.size(); ++i) {
      const DotRange& d = ranges[i];
      if (!d.node.valid() || d.first == 0 || d.last < d.first) {
        return Status::InvalidArgument("sequence delete: bad range");
      }
      const NodeMap* m = MapFor(d.node.value);
      const RangeIndex::Entry* e = m ? m->Get(d.first) : nullptr;
      if (!e || (e->last < d.last && !m->HasAll(e->last + 1, d.last))) {
        return Status::MissingDependency("sequence delete: unknown item in range");
      }
      if (i < n_starts) starts[i] = e->leaf;
    }
    return Status::Ok();
  }

  static uint32_t AddViewDelete(uint32_t vdel, int delta) {
    if (delta < 0) return vdel >= static_cast<uint32_t>(-delta) ? vdel + delta : 0;
    return vdel + static_cast<uint32_t>(delta);
  }

  // The cursor at the item `pos` of the view, or the end of the sequence when pos == InView().
  Cursor FindInView(uint64_t pos) const {
    if (pos >= InView()) return Cursor{last, last->n, 0};
    Leaf* l = Descend(&pos, &Inner::view);
    for (int i = 0; i < l->n; ++i) {
      uint64_t w = l->runs[i].view();
      if (pos < w) return Cursor{l, i, static_cast<uint32_t>(pos)};
      pos -= w;
    }
    assert(false);
    return Cursor{last, last->n, 0};
  }

  // Where an insert at visible position `pos` goes and its origins, as FugueMax picks them
  // (in the YjsMod formulation): the left origin is the visible item just before `pos` (or the
  // start), the right origin the next item after it, tombstones included (or the end). With
  // `in_view`, positions and items are those of the view: items outside it are skipped, and
  // the cursor returned is just after the left origin, with them still to be integrated past.
  Cursor Origins(uint64_t pos, bool in_view, Dot* left, Dot* right) const {
    Cursor c{first, 0, 0};
    *left = Dot{};
    if (pos > 0) {
      c = in_view ? FindInView(pos - 1) : FindVisible(pos - 1);
      *left = ItemAt(c);
      if (++c.off == c.leaf->runs[c.idx].len) {
        ++c.idx;
        c.off = 0;
      }
    }
    Normalize(&c);
    Cursor at = c;
    while (in_view && !AtEnd(c) && c.leaf->runs[c.idx].out) {
      ++c.idx;
      c.off = 0;
      Normalize(&c);
    }
    *right = ItemAt(c);
    return at;
  }

  // Deletes `len` items from visible position `pos`, of the view (`at_view`) or of the current
  // state; the op names them all, *newly_deleted (when given) those still visible in the current
  // state. `join_view`: the delete counts as one of the view.
  Result<DeleteOp> DeleteAt(uint64_t pos, uint64_t len, bool at_view, bool join_view,
                            std::vector<DotRange>* newly_deleted) {
    uint64_t size = at_view ? InView() : Visible();
    if (pos > size || len > size - pos) {
      return Status::OutOfRange("sequence delete range past the end");
    }
    DeleteOp op;
    // The item at `pos` moves on each time the previous ones are deleted.
    uint64_t remaining = len;
    while (remaining > 0) {
      Cursor c = at_view ? FindInView(pos) : FindVisible(pos);
      const Run& r = c.leaf->runs[c.idx];
      uint64_t k = std::min<uint64_t>(r.len - c.off, remaining);
      AppendRange(&op.ranges, r.node, r.seq + c.off, k);
      if (!r.deleted) AppendRange(newly_deleted, r.node, r.seq + c.off, k);
      Run state = r;
      state.deleted = true;
      if (join_view) state.vdel = 1;  // visible in the view: no delete of it named it yet
      SetState(c, static_cast<uint32_t>(k), state);
      remaining -= k;
    }
    return op;
  }

  // ---- bulk build ----
  // Builds the tree from runs in document order (replacing the current one). Fails when two runs
  // share an id.
  struct Span {
    uint64_t node, seq, last;
    Leaf* leaf;
  };
  Status Build(std::vector<Run>& runs, std::vector<Span>* sorted_spans = nullptr) {
    FreeTree(root);
    find_hint = nullptr;
    vis_leaf = nullptr;
    index.clear();
    std::fill(std::begin(index_hint), std::end(index_hint), 0u);
    std::vector<NodeBase*> level;
    Leaf* prev = nullptr;
    first = nullptr;
    size_t i = 0;
    do {
      Leaf* l = new Leaf;
      while (i < runs.size() && l->n < kBulkLeafFill) l->runs[l->n++] = runs[i++];
      l->prev = prev;
      if (prev) prev->next = l;
      if (!first) first = l;
      prev = l;
      level.push_back(l);
    } while (i < runs.size());
    last = prev;
    leaf_count = level.size();
    root = nullptr;
    while (level.size() > 1) {
      std::vector<NodeBase*> up;
      for (size_t j = 0; j < level.size();) {
        Inner* in = new Inner;
        in->is_leaf = false;
        size_t remaining = level.size() - j;
        size_t take = remaining <= static_cast<size_t>(kNodeCap) ? remaining : kBulkNodeFill;
        for (size_t t = 0; t < take; ++t, ++j) {
          in->child[in->n] = level[j];
          level[j]->parent = in;
          level[j]->slot = in->n;
          SetSlotSums(in, in->n, level[j]);
          ++in->n;
        }
        up.push_back(in);
      }
      level.swap(up);
    }
    root = level[0];
    // Index: the id spans sorted by (node, seq), then each node's map built in order.
    std::vector<Span> spans;
    spans.reserve(runs.size());
    for (Leaf* l = first; l; l = l->next) {
      for (int j = 0; j < l->n; ++j)
        spans.push_back(Span{l->runs[j].node, l->runs[j].seq, l->runs[j].last(), l});
    }
    SortSpans(spans);
    NodeMap* m = nullptr;
    for (size_t k = 0; k < spans.size(); ++k) {
      const Span& sp = spans[k];
      if (k > 0 && spans[k - 1].node == sp.node && spans[k - 1].last >= sp.seq) {
        return Status::Corruption("sequence: duplicate id");
      }
      if (k == 0 || spans[k - 1].node != sp.node) {
        index.emplace_back(sp.node, NodeMap{});
        m = &index.back().second;
      }
      m->Append(sp.seq, sp.last, sp.leaf);
    }
    if (sorted_spans) *sorted_spans = std::move(spans);
    return Status::Ok();
  }

  // Sorts spans by (node, seq): by radix on the node's rank and the seq packed in one key when
  // they fit (they do unless seqs reach near 2^64), else by compares.
  static void SortSpans(std::vector<Span>& spans) {
    // The distinct nodes: a node seen lately (by a small table of its hash) is not listed again.
    std::vector<uint64_t> nodes;
    uint64_t seen[256] = {};  // node 0 names no item
    uint64_t max_seq = 0;
    for (const Span& sp : spans) {
      uint64_t& slot = seen[(sp.node * 0x9E3779B97F4A7C15ull) >> 56];
      if (slot != sp.node) {
        slot = sp.node;
        nodes.push_back(sp.node);
      }
      max_seq = std::max(max_seq, sp.seq);
    }
    std::sort(nodes.begin(), nodes.end());
    nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
    int rank_bits = BitWidth(nodes.size());
    int seq_bits = BitWidth(max_seq);
    if (spans.size() < 256 || rank_bits + seq_bits > 64) {
      std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
        return a.node != b.node ? a.node < b.node : a.seq < b.seq;
      });
      return;
    }
    struct Keyed {
      uint64_t key;
      Span span;
    };
    std::vector<Keyed> keyed;
    keyed.reserve(spans.size());
    size_t rank = 0;
    uint64_t prev = 0;
    for (size_t i = 0; i < spans.size(); ++i) {
      const Span& sp = spans[i];
      if (i == 0 || sp.node != prev) {
        rank = static_cast<size_t>(std::lower_bound(nodes.begin(), nodes.end(), sp.node) -
                                   nodes.begin());
        prev = sp.node;
      }
      uint64_t hi = seq_bits == 64 ? 0 : static_cast<uint64_t>(rank) << seq_bits;
      keyed.push_back(Keyed{hi | sp.seq, sp});
    }
    RadixSort(keyed, [](const Keyed& k) { return k.key; });
    for (size_t i = 0; i < spans.size(); ++i) spans[i] = keyed[i].span;
  }

  // True when `spans` (sorted as Build leaves them) holds (node, seq).
  static bool SpansHave(const std::vector<Span>& spans, uint64_t node, uint64_t seq) {
    auto it = std::upper_bound(spans.begin(), spans.end(), std::make_pair(node, seq),
                               [](const std::pair<uint64_t, uint64_t>& k, const Span& s) {
                                 return k.first != s.node ? k.first < s.node : k.second < s.seq;
                               });
    if (it == spans.begin()) return false;
    --it;
    return it->node == node && it->seq <= seq && seq <= it->last;
  }

  std::vector<Run> AllRuns() const {
    std::vector<Run> out;
    for (Leaf* l = first; l; l = l->next) out.insert(out.end(), l->runs, l->runs + l->n);
    return out;
  }

  // ---- deferred deletes ----
  // The validated ranges not yet marked (SequenceCore::Settle), by node: deferred[slot] holds
  // the (first, last) seqs queued for node deferred_node[slot], slots numbered as nodes first
  // queue a range. Kept apart per node, they are sorted by seq alone when they settle, in place,
  // with no buffer of keys beside them: a batch queues tens of thousands, and the memory a
  // settle touches for the first time costs a page fault per 4 KB. `queue_log` holds the slot of
  // each range in the order queued (DropDeferred takes ranges back from its end).
  struct SeqRange {
    uint64_t first;
    uint64_t last;
  };
  static constexpr uint32_t kNoSlot = UINT32_MAX;
  std::vector<std::vector<SeqRange>> deferred;
  std::vector<uint64_t> deferred_node;
  std::vector<uint32_t> queue_log;
  // A node's slot: a small table by the node's hash first (a delete names few nodes in turn,
  // runs of few nodes alternate), then the whole map. The table also holds nodes with no slot
  // (kNoSlot), for the settling pass.
  uint64_t slot_cache_node[256] = {};  // node 0 names no item
  uint32_t slot_cache[256] = {};
  std::unordered_map<uint64_t, uint32_t> slot_of;
  // Whether some queued range was not checked for presence (DeferDelete's check_present false),
  // and whether a settle found one naming an item not present (until TakeMissingUnchecked).
  bool unchecked = false;
  bool missing_unchecked = false;

  size_t queued() const { return queue_log.size(); }
  // The slot of `node`, or kNoSlot when none of its ranges is queued; with `create`, made.
  uint32_t SlotOf(uint64_t node, bool create) {
    size_t h = (node * 0x9E3779B97F4A7C15ull) >> 56;
    if (slot_cache_node[h] == node && (slot_cache[h] != kNoSlot || !create)) return slot_cache[h];
    auto it = slot_of.find(node);
    uint32_t slot = kNoSlot;
    if (it != slot_of.end()) {
      slot = it->second;
    } else if (create) {
      slot = static_cast<uint32_t>(deferred.size());
      deferred.emplace_back();
      deferred_node.push_back(node);
      slot_of.emplace(node, slot);
    }
    slot_cache_node[h] = node;
    slot_cache[h] = slot;
    return slot;
  }
  // Queues a range; `join` when it may continue the range queued last (one op's ranges).
  void Enqueue(const DotRange& d, bool join) {
    uint32_t slot = SlotOf(d.node.value, true);
    std::vector<SeqRange>& list = deferred[slot];
    if (join && queue_log.back() == slot && list.back().last + 1 == d.first) {
      list.back().last = d.last;
      return;
    }
    list.push_back(SeqRange{d.first, d.last});
    queue_log.push_back(slot);
  }
  void DropQueued(size_t mark) {
    while (queue_log.size() > mark) {
      deferred[queue_log.back()].pop_back();
      queue_log.pop_back();
    }
  }

  void Settle() {
    if (!queue_log.empty()) SettleQueued();
  }
  void SettleQueued() {
    // Marking one range costs about what the pass spends on ten runs, and a leaf holds about
    // ten: the pass pays once the ranges outnumber the leaves.
    bool all_present = true;
    if (queued() < 64 || queued() < leaf_count) {
      for (size_t slot = 0; slot < deferred.size(); ++slot) {
        const uint64_t node = deferred_node[slot];
        for (const SeqRange& r : deferred[slot]) {
          if (unchecked && !HasAll(node, r.first, r.last)) all_present = false;
          MarkRange(node, r.first, r.last, true, nullptr);
        }
      }
    } else {
      MarkAll(&all_present);
    }
    if (!all_present) missing_unchecked = true;
    // The queue's memory goes back: the batch that queued them has ended (or is settled by a
    // read, which is rare within one).
    unchecked = false;
    deferred = {};
    deferred_node = {};
    queue_log = {};
    slot_of = {};
    std::fill(std::begin(slot_cache_node), std::end(slot_cache_node), 0);
  }

  // Sorts a node's queued ranges by first seq and joins the overlapping and touching ones.
  // `tmp`: room for the radix sort, v.size() ranges at least.
  static void SortAndJoin(std::vector<SeqRange>& v, SeqRange* tmp) {
    auto less = [](const SeqRange& x, const SeqRange& y) { return x.first < y.first; };
    if (!std::is_sorted(v.begin(), v.end(), less)) {
      if (v.size() < 256) {
        std::sort(v.begin(), v.end(), less);
      } else {
        // By the seqs' offsets from the least (the fewer bits, the fewer passes), in digits of
        // about as many bits as the count of ranges has.
        uint64_t least = UINT64_MAX;
        for (const SeqRange& r : v) least = std::min(least, r.first);
        auto offset = [least](const SeqRange& r) { return r.first - least; };
        const int bits = std::max(8, BitWidth(v.size()));
        if (RadixSort(v.data(), tmp, v.size(), offset, bits) != v.data()) {
          std::copy(tmp, tmp + v.size(), v.data());
        }
      }
    }
    size_t w = 0;
    for (size_t i = 0; i < v.size(); ++i) {
      if (w > 0 && (v[w - 1].last == UINT64_MAX || v[w - 1].last + 1 >= v[i].first)) {
        v[w - 1].last = std::max(v[w - 1].last, v[i].last);
      } else {
        v[w++] = v[i];
      }
    }
    v.resize(w);
  }

  // Marks the queued ranges deleted in one pass over the leaves: each leaf's runs are rewritten
  // in place, split where a range starts or ends inside one. The same state as marking each
  // range (deletion is idempotent and the ranges commute); the runs may be cut differently,
  // which no reader sees. Ids stay in their leaf, so the index changes only for the few runs a
  // full leaf pushes into a new one. When ranges were queued unchecked, counts the items of each
  // range it meets and sets *all_present to false when some range names an item not present.
  void MarkAll(bool* all_present) {
    // Each node's ranges: sorted, disjoint.
    size_t longest = 0;
    for (const std::vector<SeqRange>& list : deferred) longest = std::max(longest, list.size());
    // SeqRange is trivial: not zeroed.
    std::unique_ptr<SeqRange[]> tmp(new SeqRange[longest]);
    size_t total = 0;
    for (std::vector<SeqRange>& list : deferred) {
      SortAndJoin(list, tmp.get());
      total += list.size();
    }
    tmp.reset();
    // With unchecked ranges: the items of each range met (disjoint ranges, disjoint runs, so a
    // range names only items present exactly when it meets as many as it spans), at
    // met[met_base[slot] + i] for range i of a slot.
    std::vector<uint64_t> met;
    std::vector<size_t> met_base(deferred.size(), 0);
    if (unchecked) {
      met.assign(total, 0);
      for (size_t slot = 1; slot < deferred.size(); ++slot) {
        met_base[slot] = met_base[slot - 1] + deferred[slot - 1].size();
      }
    }
    std::vector<uint32_t> resume(deferred.size(), 0);  // where the node's last lookup ended
    auto before = [](const SeqRange& a, const Run& r) { return a.last < r.seq; };
    std::vector<Run> out;
    out.reserve(4 * kLeafCap);
    auto emit = [&](const Run& x) {
      if (!out.empty() && CanMerge(out.back(), x)) {
        out.back().len += x.len;
      } else {
        out.push_back(x);
      }
    };
    for (Leaf* l = first; l;) {
      Leaf* next = l->next;  // leaves a full one pushes runs into are skipped
#if defined(__GNUC__)
      // The walk is bound by loading leaves (not in address order): ask for the next one early.
      if (next) {
        const char* p = reinterpret_cast<const char*>(next);
        for (size_t off = 0; off < sizeof(Leaf); off += 64) __builtin_prefetch(p + off);
      }
#endif
      out.clear();
      bool changed = false;
      uint64_t newly = 0;  // items marked that were visible
      for (int j = 0; j < l->n; ++j) {
        Run cur = l->runs[j];
        const uint32_t slot = SlotOf(cur.node, false);
        if (slot == kNoSlot) {
          emit(cur);
          continue;
        }
        // The first range of the run's node that ends at or after its first item. Runs of one
        // node often follow one another in id order: try where the last one ended first.
        const std::vector<SeqRange>& list = deferred[slot];
        const SeqRange* b = list.data();
        const SeqRange* e = b + list.size();
        const SeqRange* it = b + resume[slot];
        if (!(it != e && !before(*it, cur) && (it == b || before(*(it - 1), cur)))) {
          it = std::lower_bound(b, e, cur, before);
        }
        bool open = true;
        while (it != e && it->first <= cur.last()) {
          changed = true;
          if (it->first > cur.seq) {
            Run rest = SplitRun(cur, static_cast<uint32_t>(it->first - cur.seq));
            emit(cur);
            cur = rest;
          }
          uint64_t k = std::min(it->last, cur.last()) - cur.seq + 1;
          if (!met.empty()) met[met_base[slot] + static_cast<size_t>(it - b)] += k;
          if (k < cur.len) {
            Run rest = SplitRun(cur, static_cast<uint32_t>(k));
            newly += cur.vis();
            cur.deleted = true;
            emit(cur);
            cur = rest;
            ++it;  // it ends inside the run
          } else {
            newly += cur.vis();
            cur.deleted = true;
            emit(cur);
            open = false;
            break;
          }
        }
        if (open) emit(cur);
        resume[slot] = static_cast<uint32_t>(it - b);
      }
      if (changed) {
        int keep = std::min<int>(static_cast<int>(out.size()), kLeafCap);
        std::copy(out.begin(), out.begin() + keep, l->runs);
        l->n = keep;
        // Splitting and joining runs keeps the counts, and marking changes only the visible one:
        // the leaf's runs lost `newly` visible items, less what the runs after `keep` take with
        // them (LeafInsert counts those).
        RunDelta delta;
        delta.vis = -static_cast<int64_t>(newly);
        for (size_t j = static_cast<size_t>(keep); j < out.size(); ++j) delta.Add(out[j], -1);
        AddDelta(l, delta);
        // The rest after it, through LeafInsert (which splits the leaf and indexes what moves).
        Cursor at{l, keep - 1, 0};
        for (size_t j = static_cast<size_t>(keep); j < out.size(); ++j) {
          at = LeafInsert(at.leaf, at.idx + 1, &out[j], 1, 0);
        }
      }
      l = next;
    }
    for (size_t slot = 0; !met.empty() && slot < deferred.size(); ++slot) {
      const std::vector<SeqRange>& list = deferred[slot];
      for (size_t i = 0; i < list.size(); ++i) {
        if (list[i].last - list[i].first + 1 != met[met_base[slot] + i]) *all_present = false;
      }
    }
    vis_leaf = nullptr;
  }
};

// ---------------------------------------------------------------------------------------------

SequenceCore::SequenceCore() : impl_(std::make_unique<Impl>()) {}
SequenceCore::~SequenceCore() = default;
SequenceCore::SequenceCore(const SequenceCore& other) : impl_(std::make_unique<Impl>()) {
  other.impl_->Settle();
  std::vector<Run> runs = other.impl_->AllRuns();
  Status s = impl_->Build(runs);
  (void)s;
}
SequenceCore& SequenceCore::operator=(const SequenceCore& other) {
  if (this != &other) {
    SequenceCore copy(other);
    *this = std::move(copy);
  }
  return *this;
}
SequenceCore::SequenceCore(SequenceCore&& other) noexcept : impl_(std::move(other.impl_)) {
  other.impl_ = std::make_unique<Impl>();
}
SequenceCore& SequenceCore::operator=(SequenceCore&& other) noexcept {
  std::swap(impl_, other.impl_);
  return *this;
}

size_t SequenceCore::size() const {
  impl_->Settle();
  return impl_->Visible();
}
size_t SequenceCore::total_items() const {
  return impl_->Total();
}

size_t SequenceCore::run_count() const {
  impl_->Settle();
  size_t n = 0;
  for (Leaf* l = impl_->first; l; l = l->next) n += static_cast<size_t>(l->n);
  return n;
}

namespace {
Status CheckNewIds(Dot id, uint64_t len) {
  if (!id.node.valid()) return Status::InvalidArgument("sequence insert: node 0");
  if (id.seq == 0) return Status::InvalidArgument("sequence insert: seq 0");
  if (len == 0) return Status::InvalidArgument("sequence insert: empty");
  if (len > kMaxSequenceRunLength) return Status::InvalidArgument("sequence insert: too long");
  if (id.seq > UINT64_MAX - (len - 1))
    return Status::InvalidArgument("sequence insert: seq overflow");
  return Status::Ok();
}
}  // namespace

Status SequenceCore::LocalInsert(size_t pos, Dot first_id, uint64_t len, uint32_t content,
                                 Dot* left, Dot* right, bool in_view) {
  impl_->Settle();
  WEFT_RETURN_IF_ERROR(CheckNewIds(first_id, len));
  if (content != kNoContent && static_cast<uint64_t>(content) + len >= kNoContent) {
    return Status::InvalidArgument("sequence insert: content arena full");
  }
  Impl& m = *impl_;
  if (pos > m.Visible()) return Status::OutOfRange("sequence insert position past the end");
  if (m.HasAny(first_id.node.value, first_id.seq, first_id.seq + len - 1)) {
    return Status::InvalidArgument("sequence insert: id already used");
  }
  // Every item is in the current state: nothing to integrate past.
  Cursor c = m.Origins(pos, false, left, right);
  Run r;
  r.node = first_id.node.value;
  r.seq = first_id.seq;
  r.lnode = left->node.value;
  r.lseq = left->seq;
  r.rnode = right->node.value;
  r.rseq = right->seq;
  r.len = static_cast<uint32_t>(len);
  r.content = content;
  r.out = !in_view;
  m.InsertAt(c, r);
  return Status::Ok();
}

Result<DeleteOp> SequenceCore::LocalDelete(size_t pos, size_t len, bool in_view) {
  impl_->Settle();
  return impl_->DeleteAt(pos, len, false, in_view, nullptr);
}

Status SequenceCore::ValidateInsert(Dot first_id, Dot left, Dot right, uint64_t len,
                                    bool* already_present) const {
  *already_present = false;
  WEFT_RETURN_IF_ERROR(CheckNewIds(first_id, len));
  const Impl& m = *impl_;
  uint64_t node = first_id.node.value, last_seq = first_id.seq + len - 1;
  if (m.HasAny(node, first_id.seq, last_seq)) {
    if (m.HasAll(node, first_id.seq, last_seq)) {
      *already_present = true;
      return Status::Ok();
    }
    return Status::InvalidArgument("sequence insert: ids partly present");
  }
  if (!left.node.valid() && left.seq != 0) return Status::InvalidArgument("bad left origin");
  if (!right.node.valid() && right.seq != 0) return Status::InvalidArgument("bad right origin");
  if (left.node.valid() && !m.Has(left)) {
    return Status::MissingDependency("sequence insert: unknown left origin " + left.ToString());
  }
  if (right.node.valid() && !m.Has(right)) {
    return Status::MissingDependency("sequence insert: unknown right origin " + right.ToString());
  }
  if (left.node.valid() && right.node.valid()) {
    if (m.RawPos(left.node.value, left.seq) >= m.RawPos(right.node.value, right.seq)) {
      return Status::InvalidArgument("sequence insert: right origin not after left origin");
    }
  }
  return Status::Ok();
}

Result<bool> SequenceCore::ApplyInsert(Dot first_id, Dot left, Dot right, uint64_t len,
                                       uint32_t content, bool in_view) {
  WEFT_RETURN_IF_ERROR(CheckNewIds(first_id, len));
  if (content != kNoContent && static_cast<uint64_t>(content) + len >= kNoContent) {
    return Status::InvalidArgument("sequence insert: content arena full");
  }
  Impl& m = *impl_;
  uint64_t node = first_id.node.value, last_seq = first_id.seq + len - 1;
  if (m.HasAny(node, first_id.seq, last_seq)) {
    if (m.HasAll(node, first_id.seq, last_seq)) return false;
    return Status::InvalidArgument("sequence insert: ids partly present");
  }
  if (!left.node.valid() && left.seq != 0) return Status::InvalidArgument("bad left origin");
  if (!right.node.valid() && right.seq != 0) return Status::InvalidArgument("bad right origin");
  // Cursor just after the left origin.
  Cursor c;
  if (left.node.valid()) {
    if (!m.Find(left.node.value, left.seq, &c)) {
      return Status::MissingDependency("sequence insert: unknown left origin " + left.ToString());
    }
    if (++c.off == c.leaf->runs[c.idx].len) {
      ++c.idx;
      c.off = 0;
    }
  } else {
    c = Cursor{m.first, 0, 0};
  }
  Impl::Normalize(&c);
  Run r;
  r.node = node;
  r.seq = first_id.seq;
  r.lnode = left.node.value;
  r.lseq = left.seq;
  r.rnode = right.node.value;
  r.rseq = right.seq;
  r.len = static_cast<uint32_t>(len);
  r.content = content;
  r.out = !in_view;

  // Nothing between the origins (so the right one is here): no concurrency to resolve.
  if (Impl::ItemAt(c) == right) {
    m.InsertAt(c, r);
    return true;
  }
  Cursor right_c;
  if (right.node.valid() && !m.Find(right.node.value, right.seq, &right_c)) {
    return Status::MissingDependency("sequence insert: unknown right origin " + right.ToString());
  }
  // Concurrent inserts between the origins: the YjsMod / FugueMax scan.
  int64_t total = static_cast<int64_t>(m.Total());
  int64_t left_pos = -1;
  uint64_t raw, vis;
  if (left.node.valid()) left_pos = m.RawPos(left.node.value, left.seq);
  int64_t right_pos = total;
  if (right.node.valid()) {
    m.Before(right_c, &raw, &vis);
    right_pos = static_cast<int64_t>(raw);
  }
  if (right_pos <= left_pos) {
    return Status::InvalidArgument("sequence insert: right origin not after left origin");
  }
  int64_t i = left_pos + 1;
  Cursor dest = c;
  bool scanning = false;
  while (true) {
    if (!scanning) dest = c;
    if (i >= total || i == right_pos) break;
    const Run& o = c.leaf->runs[c.idx];
    int64_t oleft;
    if (c.off > 0) {
      oleft = i - 1;
    } else {
      oleft = o.lnode ? m.RawPos(o.lnode, o.lseq) : -1;
    }
    if (oleft < left_pos) break;
    if (oleft == left_pos) {
      int64_t oright = o.rnode ? m.RawPos(o.rnode, o.rseq) : total;
      if (oright < right_pos) {
        scanning = true;
      } else if (oright == right_pos) {
        Dot other{NodeId{o.node}, o.seq + c.off};
        if (first_id < other) break;
        scanning = false;
      } else {
        scanning = false;
      }
    }
    // The rest of this run has its left origin inside the run (after left_pos): skipped.
    int64_t run_end = i + static_cast<int64_t>(o.len - c.off);
    int64_t next = run_end;
    if (right_pos > i && right_pos < run_end) next = right_pos;
    c.off += static_cast<uint32_t>(next - i);
    if (c.off >= o.len) {
      ++c.idx;
      c.off = 0;
      Impl::Normalize(&c);
    }
    i = next;
  }
  m.InsertAt(dest, r);
  return true;
}

Status SequenceCore::ValidateDelete(const std::vector<DotRange>& ranges) const {
  return impl_->CheckDelete(ranges, nullptr, 0);
}

Status SequenceCore::ApplyDelete(const std::vector<DotRange>& ranges,
                                 std::vector<DotRange>* newly_deleted, bool in_view) {
  impl_->Settle();
  // The check finds where the first ranges start; marking them starts there (the leaves are a
  // guess once marking an earlier range has split some).
  constexpr size_t kStarts = 8;
  Leaf* starts[kStarts] = {};
  WEFT_RETURN_IF_ERROR(impl_->CheckDelete(ranges, starts, kStarts));
  for (size_t i = 0; i < ranges.size(); ++i) {
    const DotRange& d = ranges[i];
    impl_->MarkRange(d.node.value, d.first, d.last, true, newly_deleted, in_view ? 1 : 0,
                     i < kStarts ? starts[i] : nullptr);
  }
  return Status::Ok();
}

Status SequenceCore::DeferDelete(const std::vector<DotRange>& ranges, size_t* mark,
                                 bool check_present) {
  Impl& m = *impl_;
  if (check_present) {
    WEFT_RETURN_IF_ERROR(m.CheckDelete(ranges, nullptr, 0));
  } else {
    // Only that no range reaches past the greatest seq held of its node. Every seq up to that
    // one has been taken by an op applied already (a node's seqs are contiguous and its changes
    // come in order), so an item up to there that is not here now never will be: the check when
    // the ranges settle then says whether they named items present now.
    for (const DotRange& d : ranges) {
      if (!d.node.valid() || d.first == 0 || d.last < d.first) {
        return Status::InvalidArgument("sequence delete: bad range");
      }
      const Impl::NodeMap* nm = m.MapFor(d.node.value);
      if (!nm || d.last > nm->LastSeq()) {
        return Status::MissingDependency("sequence delete: unknown item in range");
      }
    }
    if (!ranges.empty()) m.unchecked = true;
  }
  *mark = m.queued();
  // Ranges of the op that continue one another are queued as one.
  for (size_t i = 0; i < ranges.size(); ++i) m.Enqueue(ranges[i], i > 0);
  return Status::Ok();
}

void SequenceCore::DropDeferred(size_t mark) {
  impl_->DropQueued(mark);
}

void SequenceCore::Settle() {
  impl_->Settle();
}

bool SequenceCore::has_deferred() const {
  return impl_->queued() != 0;
}

bool SequenceCore::TakeMissingUnchecked() {
  bool missing = impl_->missing_unchecked;
  impl_->missing_unchecked = false;
  return missing;
}

void SequenceCore::UndoInsert(Dot first, uint64_t len) {
  if (!first.node.valid() || len == 0 || first.seq == 0 || first.seq > UINT64_MAX - (len - 1)) {
    return;
  }
  Impl& m = *impl_;
  uint64_t node = first.node.value, seq = first.seq, last_seq = first.seq + len - 1;
  while (seq <= last_seq) {
    Cursor c;
    if (!m.Find(node, seq, &c)) {
      uint64_t nx = m.NextPresent(node, seq);
      if (nx == 0 || nx > last_seq) return;
      seq = nx;
      continue;
    }
    Leaf* l = c.leaf;
    Run& r = l->runs[c.idx];
    uint64_t k = std::min<uint64_t>(r.len - c.off, last_seq - seq + 1);
    if (c.off == 0 && k == r.len) {
      m.RemoveRun(l, c.idx);
      m.FixUp(l);
    } else if (c.off == 0) {
      Run rest = SplitRun(r, static_cast<uint32_t>(k));
      r = rest;
      m.FixUp(l);
    } else if (c.off + k == r.len) {
      r.len = c.off;
      m.FixUp(l);
    } else {
      Run mid = SplitRun(r, c.off);
      Run tail = SplitRun(mid, static_cast<uint32_t>(k));
      m.LeafInsert(l, c.idx + 1, &tail, 1, 0);
    }
    m.IndexErase(node, seq, seq + k - 1);
    if (seq + k - 1 == UINT64_MAX) return;
    seq += k;
  }
}

void SequenceCore::UndoDelete(const std::vector<DotRange>& ranges,
                              const std::vector<DotRange>* view_ranges) {
  impl_->Settle();
  for (const DotRange& d : ranges) {
    if (!d.node.valid() || d.first == 0 || d.last < d.first) continue;
    impl_->MarkRange(d.node.value, d.first, d.last, false, nullptr);
  }
  if (view_ranges) AddViewDeletes(*view_ranges, -1);
}

// ---- the view ----

void SequenceCore::ResetView(bool count_unnamed_deletes) {
  impl_->Settle();
  std::vector<Run> runs = impl_->AllRuns();
  std::vector<Run> merged;
  merged.reserve(runs.size());
  for (Run& r : runs) {
    if (count_unnamed_deletes) {
      if (r.deleted && r.vdel == 0) r.vdel = 1;
    } else {
      r.out = false;
      r.vdel = 0;
    }
    if (!merged.empty() && CanMerge(merged.back(), r)) {
      merged.back().len += r.len;
    } else {
      merged.push_back(r);
    }
  }
  Status s = impl_->Build(merged);  // the same ids as before: cannot fail
  assert(s.ok());
  (void)s;
}

size_t SequenceCore::view_size() const {
  impl_->Settle();
  return impl_->InView();
}

void SequenceCore::SetInView(Dot first, uint64_t len, bool in) {
  impl_->Settle();
  if (!first.node.valid() || len == 0 || first.seq == 0 || first.seq > UINT64_MAX - (len - 1)) {
    return;
  }
  impl_->UpdateRange(first.node.value, first.seq, first.seq + len - 1,
                     [&](Run& r, uint64_t, uint64_t) {
                       if (r.out == !in) return false;
                       r.out = !in;
                       return true;
                     });
}

void SequenceCore::AddViewDeletes(const std::vector<DotRange>& ranges, int delta) {
  impl_->Settle();
  for (const DotRange& d : ranges) {
    if (!d.node.valid() || d.first == 0 || d.last < d.first) continue;
    impl_->UpdateRange(d.node.value, d.first, d.last, [&](Run& r, uint64_t, uint64_t) {
      uint32_t v = Impl::AddViewDelete(r.vdel, delta);
      if (v == r.vdel) return false;
      r.vdel = v;
      return true;
    });
  }
}

Status SequenceCore::ViewInsert(size_t pos, Dot first_id, uint64_t len, uint32_t content, Dot* left,
                                Dot* right) {
  impl_->Settle();
  Impl& m = *impl_;
  if (pos > m.InView()) return Status::OutOfRange("sequence insert position past the end");
  Dot l, r;
  m.Origins(pos, true, &l, &r);
  Result<bool> done = ApplyInsert(first_id, l, r, len, content, true);
  if (!done.ok()) return done.status();
  if (!*done) return Status::InvalidArgument("sequence insert: id already used");
  *left = l;
  *right = r;
  return Status::Ok();
}

Result<DeleteOp> SequenceCore::ViewDelete(size_t pos, size_t len,
                                          std::vector<DotRange>* newly_deleted) {
  impl_->Settle();
  return impl_->DeleteAt(pos, len, true, true, newly_deleted);
}

Result<Dot> SequenceCore::IdAt(size_t index) const {
  impl_->Settle();
  if (index >= size()) return Status::OutOfRange("sequence index past the end");
  return Impl::ItemAt(impl_->FindVisible(index));
}

Result<size_t> SequenceCore::IndexOf(Dot id, bool* visible) const {
  impl_->Settle();
  Cursor c;
  if (!id.node.valid() || !impl_->Find(id.node.value, id.seq, &c)) {
    return Status::NotFound("sequence: no item " + id.ToString());
  }
  uint64_t raw, vis;
  impl_->Before(c, &raw, &vis);
  if (visible) *visible = !c.leaf->runs[c.idx].deleted;
  return static_cast<size_t>(vis);
}

Result<Anchor> SequenceCore::AnchorAt(size_t index, Bias bias) const {
  size_t n = size();
  if (index > n) return Status::OutOfRange("anchor index past the end");
  Anchor a;
  a.bias = bias;
  if (bias == Bias::kLeft) {
    if (index > 0) a.item = Impl::ItemAt(impl_->FindVisible(index - 1));
  } else {
    if (index < n) a.item = Impl::ItemAt(impl_->FindVisible(index));
  }
  return a;
}

Result<size_t> SequenceCore::IndexOfAnchor(const Anchor& anchor) const {
  if (!anchor.item.node.valid()) return anchor.bias == Bias::kLeft ? size_t{0} : size();
  bool visible = false;
  Result<size_t> at = IndexOf(anchor.item, &visible);
  if (!at.ok()) return at.status();
  return *at + (anchor.bias == Bias::kLeft && visible ? 1 : 0);
}

void SequenceCore::ForEachVisible(size_t pos, size_t len,
                                  const std::function<void(uint32_t, uint32_t)>& fn) const {
  impl_->Settle();
  if (len == 0) return;
  Cursor c = impl_->FindVisible(pos);
  uint64_t remaining = len;
  while (remaining > 0) {
    Impl::Normalize(&c);
    if (Impl::AtEnd(c)) return;
    const Run& r = c.leaf->runs[c.idx];
    if (!r.deleted) {
      uint64_t k = std::min<uint64_t>(r.len - c.off, remaining);
      fn(r.content + c.off, static_cast<uint32_t>(k));
      remaining -= k;
    }
    c.off = 0;
    ++c.idx;
  }
}

// ---- encoding ----
//
// version, node table (sorted node ids), run count, then four columns, each a block
// (sequence_huffman.h), over the canonical runs (maximal merges of same-shape runs):
//   headers: varint deleted | left_mode << 1 | right_mode << 2 | node_index << 4
//   seqs:    zigzag(seq - next expected seq of that node)
//   lengths: varint len
//   origins: the explicit origins: varint (node_index + 1, or 0 for the start / end), then
//            zigzag(origin seq - run seq) when not 0
// left_mode 1: the origin is the item just before the run (or the start, for the first run).
// right_mode 1: the item just after the run (or the end, for the last run); 2: the same right
// origin as the next run; 0: explicit.

namespace {
constexpr uint64_t kRightExplicit = 0, kRightNext = 1, kRightSameAsNext = 2;
}  // namespace

void SequenceCore::EncodeStructure(Writer& w) const {
  impl_->Settle();
  std::vector<Run> runs;
  for (Leaf* l = impl_->first; l; l = l->next) {
    for (int j = 0; j < l->n; ++j) {
      const Run& r = l->runs[j];
      if (!runs.empty() && CanMergeShape(runs.back(), r)) {
        runs.back().len += r.len;
      } else {
        runs.push_back(r);
      }
    }
  }
  std::vector<uint64_t> nodes;
  for (const Run& r : runs) {
    nodes.push_back(r.node);
    if (r.lnode) nodes.push_back(r.lnode);
    if (r.rnode) nodes.push_back(r.rnode);
  }
  std::sort(nodes.begin(), nodes.end());
  nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
  auto node_index = [&](uint64_t n) -> uint64_t {
    return static_cast<uint64_t>(std::lower_bound(nodes.begin(), nodes.end(), n) - nodes.begin());
  };
  w.Varint(kStateVersion);
  w.Varint(nodes.size());
  for (uint64_t n : nodes) w.Fixed64(n);
  w.Varint(runs.size());
  Writer headers, seqs, lens, origins;
  std::vector<uint64_t> expected(nodes.size(), 1);
  auto origin = [&](uint64_t on, uint64_t os, const Run& r) {
    if (on == 0) {
      origins.Varint(0);
    } else {
      origins.Varint(node_index(on) + 1);
      origins.Zigzag(static_cast<int64_t>(os - r.seq));
    }
  };
  for (size_t i = 0; i < runs.size(); ++i) {
    const Run& r = runs[i];
    uint64_t pl_node = 0, pl_seq = 0, nr_node = 0, nr_seq = 0;
    if (i > 0) pl_node = runs[i - 1].node, pl_seq = runs[i - 1].last();
    if (i + 1 < runs.size()) nr_node = runs[i + 1].node, nr_seq = runs[i + 1].seq;
    bool left_implicit = r.lnode == pl_node && r.lseq == pl_seq;
    uint64_t right_mode = kRightExplicit;
    if (r.rnode == nr_node && r.rseq == nr_seq) {
      right_mode = kRightNext;
    } else if (i + 1 < runs.size() && r.rnode == runs[i + 1].rnode && r.rseq == runs[i + 1].rseq) {
      right_mode = kRightSameAsNext;
    }
    uint64_t ni = node_index(r.node);
    headers.Varint((r.deleted ? 1u : 0u) | (left_implicit ? 2u : 0u) | (right_mode << 2) |
                   (ni << 4));
    seqs.Zigzag(static_cast<int64_t>(r.seq - expected[ni]));
    expected[ni] = r.seq + r.len;
    lens.Varint(r.len);
    if (!left_implicit) origin(r.lnode, r.lseq, r);
    if (right_mode == kRightExplicit) origin(r.rnode, r.rseq, r);
  }
  internal::EncodeBlock(w, headers.data());
  internal::EncodeBlock(w, seqs.data());
  internal::EncodeBlock(w, lens.data());
  internal::EncodeBlock(w, origins.data());
}

Result<SequenceCore> SequenceCore::DecodeStructure(Reader& rd) {
  auto bad = [](const char* what) {
    return Status::Corruption(std::string("sequence state: ") + what);
  };
  uint64_t version = rd.Varint();
  if (!rd.ok()) return rd.status("sequence state");
  if (version != kStateVersion) {
    return Status::UnsupportedVersion("sequence state version " + std::to_string(version));
  }
  uint64_t nn = rd.Count(8);
  std::vector<uint64_t> nodes;
  nodes.reserve(nn);
  for (uint64_t i = 0; i < nn && rd.ok(); ++i) {
    uint64_t n = rd.Fixed64();
    if (!rd.ok()) break;
    if (n == 0 || (!nodes.empty() && n <= nodes.back())) return bad("node table not canonical");
    nodes.push_back(n);
  }
  uint64_t nr = rd.Varint();
  if (!rd.ok()) return rd.status("sequence state");
  std::string cols[4];
  for (std::string& c : cols) {
    Result<std::string> b = internal::DecodeBlock(rd);
    if (!b.ok()) return b.status();
    c = std::move(*b);
  }
  Reader headers(cols[0]), seqs(cols[1]), lens(cols[2]), origins(cols[3]);
  // Each run takes at least one byte in each of the first three columns.
  if (nr > cols[0].size() || nr > cols[1].size() || nr > cols[2].size()) {
    return bad("run count exceeds the columns");
  }
  if (nr > kMaxSequenceRuns) return bad("too many runs");
  std::vector<Run> runs;
  runs.reserve(nr);
  std::vector<uint8_t> modes;  // bit 0: left implicit; bits 1-2: right mode
  modes.reserve(nr);
  std::vector<uint64_t> expected(nodes.size(), 1);
  uint64_t total = 0;
  auto read_origin = [&](const Run& r, uint64_t* on, uint64_t* os) -> bool {
    uint64_t idx = origins.Varint();
    if (!origins.ok()) return false;
    if (idx == 0) {
      *on = 0, *os = 0;
      return true;
    }
    if (idx > nodes.size()) return false;
    int64_t delta = origins.Zigzag();
    if (!origins.ok()) return false;
    uint64_t s = r.seq + static_cast<uint64_t>(delta);
    if (s == 0) return false;
    if (delta > 0 && s < r.seq) return false;
    if (delta < 0 && s > r.seq) return false;
    *on = nodes[idx - 1], *os = s;
    return true;
  };
  for (uint64_t i = 0; i < nr; ++i) {
    uint64_t header = headers.Varint();
    int64_t delta = seqs.Zigzag();
    uint64_t len = lens.Varint();
    if (!headers.ok() || !seqs.ok() || !lens.ok()) return bad("truncated column");
    uint64_t ni = header >> 4;
    if (ni >= nodes.size()) return bad("node index out of range");
    if (len == 0 || len > kMaxSequenceRunLength) return bad("run length");
    Run r;
    r.node = nodes[ni];
    r.seq = expected[ni] + static_cast<uint64_t>(delta);
    if ((delta > 0 && r.seq < expected[ni]) || (delta < 0 && r.seq > expected[ni]) || r.seq == 0) {
      return bad("seq out of range");
    }
    if (r.seq > UINT64_MAX - (len - 1)) return bad("seq overflow");
    r.len = static_cast<uint32_t>(len);
    r.deleted = header & 1;
    expected[ni] = r.seq + len;  // wraps to 0 only after the last possible seq; harmless
    total += len;
    if (total > kMaxSequenceItems) return bad("too many items");
    bool left_implicit = header & 2;
    uint64_t right_mode = (header >> 2) & 3;
    if (right_mode > kRightSameAsNext) return bad("right origin mode");
    if (right_mode == kRightSameAsNext && i + 1 == nr) return bad("right origin mode");
    if (!left_implicit && !read_origin(r, &r.lnode, &r.lseq)) return bad("left origin");
    if (right_mode == kRightExplicit && !read_origin(r, &r.rnode, &r.rseq)) {
      return bad("right origin");
    }
    runs.push_back(r);
    modes.push_back(static_cast<uint8_t>((left_implicit ? 1 : 0) | (right_mode << 1)));
  }
  if (!headers.done() || !seqs.done() || !lens.done() || !origins.done()) {
    return bad("trailing column bytes");
  }
  // Implicit origins; right origins "same as the next run" resolve from the end.
  for (size_t i = runs.size(); i-- > 0;) {
    Run& r = runs[i];
    if (modes[i] & 1) {
      if (i > 0) {
        r.lnode = runs[i - 1].node, r.lseq = runs[i - 1].last();
      } else {
        r.lnode = r.lseq = 0;
      }
    }
    uint64_t right_mode = modes[i] >> 1;
    if (right_mode == kRightNext) {
      if (i + 1 < runs.size()) {
        r.rnode = runs[i + 1].node, r.rseq = runs[i + 1].seq;
      } else {
        r.rnode = r.rseq = 0;
      }
    } else if (right_mode == kRightSameAsNext) {
      r.rnode = runs[i + 1].rnode, r.rseq = runs[i + 1].rseq;
    }
  }
  uint64_t content = 0;
  for (Run& r : runs) {
    if (r.deleted) {
      r.vdel = 1;  // the view is the current state: some delete named it
      r.content = kNoContent;
    } else {
      if (content + r.len >= kNoContent) return bad("too many visible items");
      r.content = static_cast<uint32_t>(content);
      content += r.len;
    }
  }
  SequenceCore out;
  std::vector<Impl::Span> spans;
  WEFT_RETURN_IF_ERROR(out.impl_->Build(runs, &spans));
  for (const Run& r : runs) {
    if (r.lnode && !Impl::SpansHave(spans, r.lnode, r.lseq)) return bad("unknown left origin");
    if (r.rnode && !Impl::SpansHave(spans, r.rnode, r.rseq)) return bad("unknown right origin");
  }
  return out;
}

// ---- invariants ----

namespace {
std::string CheckNode(const NodeBase* n, Sums* sums, int depth, int* leaf_depth) {
  if (n->is_leaf) {
    if (*leaf_depth < 0) *leaf_depth = depth;
    if (*leaf_depth != depth) return "leaves at different depths";
    *sums = LeafSums(static_cast<const Leaf*>(n));
    const Leaf* l = static_cast<const Leaf*>(n);
    for (int i = 0; i < l->n; ++i) {
      if (l->runs[i].len == 0) return "empty run";
    }
    return "";
  }
  const Inner* in = static_cast<const Inner*>(n);
  if (in->n == 0) return "empty inner node";
  Sums total;
  for (int i = 0; i < in->n; ++i) {
    if (in->child[i]->parent != in) return "bad parent pointer";
    if (in->child[i]->slot != i) return "bad slot";
    Sums c;
    std::string e = CheckNode(in->child[i], &c, depth + 1, leaf_depth);
    if (!e.empty()) return e;
    if (c.vis != in->vis[i] || c.view != in->view[i] || c.tot != in->tot[i]) return "bad sums";
    total.vis += c.vis;
    total.view += c.view;
    total.tot += c.tot;
  }
  *sums = total;
  return "";
}
}  // namespace

std::string SequenceCore::CheckInvariants() const {
  impl_->Settle();
  const Impl& m = *impl_;
  if (m.root->parent) return "root has a parent";
  Sums sums;
  int leaf_depth = -1;
  std::string e = CheckNode(m.root, &sums, 0, &leaf_depth);
  if (!e.empty()) return e;
  uint64_t items = 0;
  const Leaf* prev = nullptr;
  for (const Leaf* l = m.first; l; l = l->next) {
    if (l->prev != prev) return "bad leaf links";
    prev = l;
    for (int i = 0; i < l->n; ++i) {
      const Run& r = l->runs[i];
      items += r.len;
      for (uint64_t s : {r.seq, r.last()}) {
        if (m.LeafOf(r.node, s) != l) return "index does not map run to its leaf";
      }
    }
  }
  if (prev != m.last) return "bad last leaf";
  if (items != sums.tot) return "item count mismatch";
  uint64_t indexed = 0;
  for (const auto& [node, map] : m.index) {
    (void)node;
    if (std::string bad = map.Check(); !bad.empty()) return bad;
    map.ForEach([&](const RangeIndex::Entry& e) { indexed += e.last - e.first + 1; });
  }
  if (indexed != items)
    return "index covers " + std::to_string(indexed) + " items, tree has " + std::to_string(items);
  return "";
}

// ---- ops ----

void EncodeDeleteOp(Writer& w, const DeleteOp& op) {
  w.Varint(op.ranges.size());
  for (const DotRange& d : op.ranges) {
    w.Node(d.node);
    w.Varint(d.first);
    w.Varint(d.last - d.first);
  }
}

Result<DeleteOp> DecodeDeleteOp(Reader& r) {
  DeleteOp op;
  uint64_t n = r.Count(10);
  op.ranges.reserve(n);
  for (uint64_t i = 0; i < n && r.ok(); ++i) {
    DotRange d;
    d.node = r.Node();
    d.first = r.Varint();
    uint64_t span = r.Varint();
    if (!r.ok()) break;
    if (!d.node.valid() || d.first == 0 || d.first > UINT64_MAX - span) {
      return Status::Corruption("delete op: bad range");
    }
    d.last = d.first + span;
    op.ranges.push_back(d);
  }
  if (!r.ok()) return r.status("delete op");
  return op;
}

}  // namespace weft::crdt
