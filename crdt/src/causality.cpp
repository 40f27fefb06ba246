#include "weft/crdt/causality.h"

#include <algorithm>
#include <cstdio>

namespace weft::crdt {

std::string NodeId::ToHex() const {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(value));
  return buf;
}

std::optional<NodeId> NodeId::FromHex(std::string_view hex) {
  if (hex.empty() || hex.size() > 16) return std::nullopt;
  uint64_t v = 0;
  for (char c : hex) {
    int d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      d = c - 'A' + 10;
    else
      return std::nullopt;
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  if (v == 0) return std::nullopt;
  return NodeId{v};
}

std::string Dot::ToString() const {
  return node.ToHex() + ":" + std::to_string(seq);
}

const char* OrderingName(Ordering o) {
  switch (o) {
    case Ordering::kEqual: return "equal";
    case Ordering::kBefore: return "before";
    case Ordering::kAfter: return "after";
    case Ordering::kConcurrent: return "concurrent";
  }
  return "?";
}

VersionVector::VersionVector(std::initializer_list<Entry> entries) {
  for (const auto& [n, s] : entries) Advance(n, s);
}

uint64_t VersionVector::Get(NodeId node) const {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), node,
                             [](const Entry& e, NodeId n) { return e.first < n; });
  return it != entries_.end() && it->first == node ? it->second : 0;
}

void VersionVector::Set(NodeId node, uint64_t seq) {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), node,
                             [](const Entry& e, NodeId n) { return e.first < n; });
  if (it != entries_.end() && it->first == node) {
    if (seq == 0)
      entries_.erase(it);
    else
      it->second = seq;
  } else if (seq != 0) {
    entries_.insert(it, {node, seq});
  }
}

void VersionVector::Advance(NodeId node, uint64_t seq) {
  if (seq > Get(node)) Set(node, seq);
}

Ordering VersionVector::Compare(const VersionVector& other) const {
  bool less = false, greater = false;  // some entry of this is smaller / larger
  size_t i = 0, j = 0;
  while (i < entries_.size() || j < other.entries_.size()) {
    uint64_t a = 0, b = 0;
    if (j == other.entries_.size() ||
        (i < entries_.size() && entries_[i].first < other.entries_[j].first)) {
      a = entries_[i++].second;
    } else if (i == entries_.size() || other.entries_[j].first < entries_[i].first) {
      b = other.entries_[j++].second;
    } else {
      a = entries_[i++].second;
      b = other.entries_[j++].second;
    }
    if (a < b) less = true;
    if (a > b) greater = true;
  }
  if (less && greater) return Ordering::kConcurrent;
  if (less) return Ordering::kBefore;
  if (greater) return Ordering::kAfter;
  return Ordering::kEqual;
}

bool VersionVector::Dominates(const VersionVector& other) const {
  Ordering o = Compare(other);
  return o == Ordering::kEqual || o == Ordering::kAfter;
}

void VersionVector::Merge(const VersionVector& other) {
  std::vector<Entry> out;
  out.reserve(entries_.size() + other.entries_.size());
  size_t i = 0, j = 0;
  while (i < entries_.size() || j < other.entries_.size()) {
    if (j == other.entries_.size() ||
        (i < entries_.size() && entries_[i].first < other.entries_[j].first)) {
      out.push_back(entries_[i++]);
    } else if (i == entries_.size() || other.entries_[j].first < entries_[i].first) {
      out.push_back(other.entries_[j++]);
    } else {
      out.emplace_back(entries_[i].first, std::max(entries_[i].second, other.entries_[j].second));
      ++i, ++j;
    }
  }
  entries_ = std::move(out);
}

std::optional<Dot> VersionVector::FirstMissing(const VersionVector& other) const {
  auto from = entries_.begin();
  for (const auto& [node, seq] : other.entries_) {
    // Galloping: the entries left are searched from where the last one was found.
    size_t step = 1;
    auto hi = from;
    while (hi != entries_.end() && hi->first < node) {
      from = hi;
      hi = static_cast<size_t>(entries_.end() - hi) > step ? hi + step : entries_.end();
      step *= 2;
    }
    from = std::lower_bound(from, hi, node, [](const Entry& e, NodeId n) { return e.first < n; });
    if (from == entries_.end() || from->first != node || from->second < seq) return Dot{node, seq};
  }
  return std::nullopt;
}

void VersionVector::DropCovered(const VersionVector& other) {
  size_t out = 0, j = 0;
  for (size_t i = 0; i < entries_.size(); ++i) {
    while (j < other.entries_.size() && other.entries_[j].first < entries_[i].first) ++j;
    bool covered = j < other.entries_.size() && other.entries_[j].first == entries_[i].first &&
                   entries_[i].second <= other.entries_[j].second;
    if (!covered) entries_[out++] = entries_[i];
  }
  entries_.resize(out);
}

std::vector<DotRange> VersionVector::Subtract(const VersionVector& other) const {
  std::vector<DotRange> out;
  for (const auto& [node, seq] : entries_) {
    uint64_t theirs = other.Get(node);
    if (seq > theirs) out.push_back({node, theirs + 1, seq});
  }
  return out;
}

uint64_t VersionVector::TotalOps() const {
  uint64_t n = 0;
  for (const auto& e : entries_) n += e.second;
  return n;
}

std::string VersionVector::ToString() const {
  std::string s = "{";
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (i) s += ", ";
    s += entries_[i].first.ToHex() + ":" + std::to_string(entries_[i].second);
  }
  return s + "}";
}

VersionVector DottedVersionVector::ToVersionVector() const {
  VersionVector v = context;
  v.Advance(dot.node, dot.seq);
  return v;
}

std::string HlcTimestamp::ToString() const {
  return std::to_string(wall_ms) + "." + std::to_string(logical);
}

HlcTimestamp HybridClock::Now(uint64_t physical_ms) {
  if (physical_ms > last_.wall_ms) {
    last_ = {physical_ms, 0};
  } else {
    // Physical time stood still or went backwards: keep the wall part, count logically. On the
    // (theoretical) overflow of the logical part, move the wall part on by one millisecond.
    if (last_.logical == UINT32_MAX)
      last_ = {last_.wall_ms + 1, 0};
    else
      ++last_.logical;
  }
  return last_;
}

Status HybridClock::Check(const HlcTimestamp& remote, uint64_t physical_ms) const {
  if (remote.wall_ms > physical_ms && remote.wall_ms - physical_ms > max_drift_ms_) {
    return Status::ClockDrift("remote timestamp " + remote.ToString() + " is " +
                              std::to_string(remote.wall_ms - physical_ms) +
                              " ms ahead of local time; the bound is " +
                              std::to_string(max_drift_ms_) + " ms");
  }
  return Status::Ok();
}

Status HybridClock::Observe(const HlcTimestamp& remote, uint64_t physical_ms) {
  WEFT_RETURN_IF_ERROR(Check(remote, physical_ms));
  Witness(remote);
  return Status::Ok();
}

void HybridClock::Witness(const HlcTimestamp& remote) {
  if (remote > last_) last_ = remote;
}

}  // namespace weft::crdt
