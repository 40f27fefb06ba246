// Causality: node IDs, dots, version vectors, dotted version vectors, Lamport and hybrid
// logical clocks.
//
// Every replica has a random 64-bit NodeId. Every operation a replica authors consumes the next
// value of that replica's sequence counter, so the operation is named by a Dot (node, seq), and
// the seqs of one node are contiguous (1, 2, 3, ...). A VersionVector maps each node to the
// highest seq seen from it; because seqs are contiguous and delivered in causal order, it names
// exactly the set of operations a replica holds.
//
// Clocks never read the time: physical time is handed in by the caller (STYLE.md: no clocks in
// crdt/). All types here are plain values; none is thread-safe for concurrent mutation.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "weft/status.h"

namespace weft::crdt {

struct NodeId {
  uint64_t value = 0;  // 0 is reserved (no node; the root object)

  constexpr bool valid() const { return value != 0; }
  // 16 lowercase hex digits.
  std::string ToHex() const;
  // Parses 1 to 16 hex digits; nullopt on anything else or on 0.
  static std::optional<NodeId> FromHex(std::string_view hex);

  friend constexpr auto operator<=>(const NodeId&, const NodeId&) = default;
};

// One operation's identity: the node that authored it and that node's sequence number (from 1).
struct Dot {
  NodeId node;
  uint64_t seq = 0;

  std::string ToString() const;  // "00000000000000ab:12"
  friend constexpr auto operator<=>(const Dot&, const Dot&) = default;
};

// How two version vectors (or the histories they name) relate.
enum class Ordering { kEqual, kBefore, kAfter, kConcurrent };
const char* OrderingName(Ordering o);

// A run of seqs of one node: (node, first..last), both inclusive.
struct DotRange {
  NodeId node;
  uint64_t first = 0;
  uint64_t last = 0;
  friend constexpr auto operator<=>(const DotRange&, const DotRange&) = default;
};

// node -> highest contiguous seq seen. Entries are kept sorted by node, without zeros, so two
// vectors naming the same history are equal member by member.
class VersionVector {
 public:
  using Entry = std::pair<NodeId, uint64_t>;

  VersionVector() = default;
  VersionVector(std::initializer_list<Entry> entries);

  // 0 when the node is absent.
  uint64_t Get(NodeId node) const;
  // Sets the entry for `node` (removes it when seq is 0).
  void Set(NodeId node, uint64_t seq);
  // Raises the entry for `node` to at least `seq`.
  void Advance(NodeId node, uint64_t seq);
  // True when the dot is among the operations this vector names.
  bool Contains(const Dot& dot) const { return dot.seq != 0 && dot.seq <= Get(dot.node); }

  Ordering Compare(const VersionVector& other) const;
  // True when this names every operation `other` names.
  bool Dominates(const VersionVector& other) const;
  // Pointwise maximum.
  void Merge(const VersionVector& other);
  // The first entry (by node) of `other` this vector does not reach, as the dot it lacks;
  // nullopt when it dominates `other`. O(k log(n / k)) for k entries of `other`.
  std::optional<Dot> FirstMissing(const VersionVector& other) const;
  // Removes every entry `other` reaches (seq at most other's): one pass.
  void DropCovered(const VersionVector& other);
  // The dots this vector has that `other` lacks, as one range per node, sorted by node.
  std::vector<DotRange> Subtract(const VersionVector& other) const;

  const std::vector<Entry>& entries() const { return entries_; }
  bool empty() const { return entries_.empty(); }
  size_t size() const { return entries_.size(); }
  uint64_t TotalOps() const;     // the number of dots named
  std::string ToString() const;  // "{00..01:3, 00..07:1}"

  friend bool operator==(const VersionVector&, const VersionVector&) = default;

 private:
  std::vector<Entry> entries_;
};

// A dotted version vector: one write's own dot plus the causal context it was made in (the dots
// it supersedes). Riak-style: the dot names the write, the context names what it saw, so two
// writes are concurrent exactly when neither's context contains the other's dot.
struct DottedVersionVector {
  Dot dot;
  VersionVector context;

  // True when this write knew of `other` (and so replaced it).
  bool Descends(const DottedVersionVector& other) const {
    return other.dot == dot || context.Contains(other.dot);
  }
  bool ConcurrentWith(const DottedVersionVector& other) const {
    return !Descends(other) && !other.Descends(*this);
  }
  // The full set of dots this names, as a version vector (context plus own dot). Exact when the
  // dot directly follows the context's entry for its node, an upper bound otherwise.
  VersionVector ToVersionVector() const;

  friend bool operator==(const DottedVersionVector&, const DottedVersionVector&) = default;
};

// Lamport clock: a counter that is at least one more than anything observed.
class LamportClock {
 public:
  uint64_t Tick() { return ++time_; }
  void Observe(uint64_t remote) {
    if (remote > time_) time_ = remote;
  }
  uint64_t time() const { return time_; }
  void Reset(uint64_t t) { time_ = t; }

 private:
  uint64_t time_ = 0;
};

// Hybrid logical clock timestamp (Kulkarni et al.): physical milliseconds plus a logical counter
// that orders events within the same millisecond and keeps causality when clocks disagree.
struct HlcTimestamp {
  uint64_t wall_ms = 0;
  uint32_t logical = 0;
  friend constexpr auto operator<=>(const HlcTimestamp&, const HlcTimestamp&) = default;
  std::string ToString() const;
};

class HybridClock {
 public:
  // `max_drift_ms`: a remote timestamp more than this ahead of local physical time is refused.
  explicit HybridClock(uint64_t max_drift_ms = kDefaultMaxDriftMs) : max_drift_ms_(max_drift_ms) {}

  static constexpr uint64_t kDefaultMaxDriftMs = 60ull * 60 * 1000;  // one hour

  // A timestamp for a local event at physical time `physical_ms`: greater than every timestamp
  // this clock has issued or observed.
  HlcTimestamp Now(uint64_t physical_ms);
  // Checks a remote timestamp against `physical_ms` without changing the clock.
  Status Check(const HlcTimestamp& remote, uint64_t physical_ms) const;
  // Merges a remote timestamp. Fails with kClockDrift, changing nothing, when `remote` is more
  // than max_drift_ms ahead of `physical_ms`.
  Status Observe(const HlcTimestamp& remote, uint64_t physical_ms);
  // Merges a remote timestamp already accepted elsewhere (no drift check).
  void Witness(const HlcTimestamp& remote);

  HlcTimestamp last() const { return last_; }
  void Reset(HlcTimestamp t) { last_ = t; }
  uint64_t max_drift_ms() const { return max_drift_ms_; }
  void set_max_drift_ms(uint64_t ms) { max_drift_ms_ = ms; }

 private:
  uint64_t max_drift_ms_;
  HlcTimestamp last_;
};

}  // namespace weft::crdt
