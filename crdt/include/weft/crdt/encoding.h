// Binary encoding primitives for changes, snapshots and canonical state.
//
// Writer appends little-endian fixed-width integers, LEB128 varints, zigzag varints and
// length-prefixed byte strings. Reader decodes untrusted bytes: every read is bounds-checked, a
// failed read sets a sticky error and returns zeros, and lengths and counts are checked against
// the bytes that remain before anything is allocated, so a hostile length cannot make it
// allocate more than the input's size.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "weft/crdt/causality.h"
#include "weft/status.h"

namespace weft::crdt {

// Writes into a buffer it grows a few hundred bytes ahead of what it holds, so that a value is
// stored in place (the standard string's append and push_back are calls into the library,
// which, byte by byte, cost more than the encoding itself in WebAssembly).
class Writer {
 public:
  Writer() = default;
  // Appends to `out` (taken back with Take).
  explicit Writer(std::string out) : out_(std::move(out)), len_(out_.size()) {}
  void U8(uint8_t v) {
    *Room(1) = static_cast<char>(v);
    ++len_;
  }
  void Fixed64(uint64_t v) {
    char* p = Room(8);
    for (int i = 0; i < 8; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
    len_ += 8;
  }
  void Varint(uint64_t v) {
    char* p = Room(10);
    size_t n = 0;
    while (v >= 0x80) {
      p[n++] = static_cast<char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    p[n++] = static_cast<char>(v);
    len_ += n;
  }
  void Zigzag(int64_t v) {
    Varint((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
  }
  void F64(double d) {
    uint64_t bits;
    std::memcpy(&bits, &d, 8);
    Fixed64(bits);
  }
  void Bytes(std::string_view s) {
    Varint(s.size());
    Raw(s);
  }
  void Raw(std::string_view s) {
    if (s.empty()) return;
    std::memcpy(Room(s.size()), s.data(), s.size());
    len_ += s.size();
  }
  void Node(NodeId n) { Fixed64(n.value); }
  void DotValue(const Dot& d) {
    Node(d.node);
    Varint(d.seq);
  }
  void Vector(const VersionVector& v) {
    Varint(v.size());
    for (const auto& [n, s] : v.entries()) {
      Node(n);
      Varint(s);
    }
  }

  size_t size() const { return len_; }
  std::string_view data() const { return std::string_view(out_.data(), len_); }
  // Forgets what was written, keeping the buffer for what comes next.
  void Clear() { len_ = 0; }
  std::string Take() {
    out_.resize(len_);
    len_ = 0;
    return std::move(out_);
  }

 private:
  // Where the next `n` bytes go.
  char* Room(size_t n) {
    if (out_.size() - len_ < n) out_.resize(len_ + n + kSlack);
    return out_.data() + len_;
  }
  static constexpr size_t kSlack = 256;
  std::string out_;
  size_t len_ = 0;  // bytes written; out_ beyond them is room
};

class Reader {
 public:
  explicit Reader(std::string_view in) : p_(in.data()), end_(in.data() + in.size()) {}

  uint8_t U8() {
    if (!Need(1)) return 0;
    return static_cast<uint8_t>(*p_++);
  }
  uint64_t Fixed64() {
    if (!Need(8)) return 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(p_[i])) << (8 * i);
    p_ += 8;
    return v;
  }
  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (!Need(1)) return 0;
      uint8_t b = static_cast<uint8_t>(*p_++);
      if (shift == 63 && b > 1) return Fail("varint overflows 64 bits");
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    return Fail("varint too long");
  }
  int64_t Zigzag() {
    uint64_t u = Varint();
    return static_cast<int64_t>((u >> 1) ^ (~(u & 1) + 1));
  }
  double F64() {
    uint64_t bits = Fixed64();
    double d;
    std::memcpy(&d, &bits, 8);
    return d;
  }
  std::string_view Bytes() {
    uint64_t n = Varint();
    if (!Need(n)) return {};
    std::string_view s(p_, n);
    p_ += n;
    return s;
  }
  std::string_view Raw(size_t n) {
    if (!Need(n)) return {};
    std::string_view s(p_, n);
    p_ += n;
    return s;
  }
  NodeId Node() { return NodeId{Fixed64()}; }
  Dot DotValue() {
    Dot d;
    d.node = Node();
    d.seq = Varint();
    return d;
  }
  // A count of items that each take at least `min_item_bytes`: fails when the input cannot hold
  // that many, so a caller can reserve() it safely.
  uint64_t Count(size_t min_item_bytes = 1) {
    uint64_t n = Varint();
    if (ok_ && min_item_bytes && n > remaining() / min_item_bytes) {
      Fail("count " + std::to_string(n) + " exceeds the remaining input");
      return 0;
    }
    return n;
  }
  // A version vector: nodes strictly increasing, no zero seqs (its canonical form).
  VersionVector Vector() {
    VersionVector v;
    uint64_t n = Count(9);
    NodeId prev{0};
    for (uint64_t i = 0; i < n && ok_; ++i) {
      NodeId node = Node();
      uint64_t seq = Varint();
      if (!ok_) break;
      if (!node.valid() || node <= prev || seq == 0) {
        Fail("version vector not in canonical form");
        break;
      }
      v.Set(node, seq);
      prev = node;
    }
    return v;
  }

  // Marks the input as bad (the first message wins) and returns 0 for convenience.
  uint64_t Fail(std::string message) {
    if (ok_) {
      ok_ = false;
      error_ = std::move(message);
    }
    p_ = end_;
    return 0;
  }
  bool ok() const { return ok_; }
  bool done() const { return p_ == end_; }
  size_t remaining() const { return static_cast<size_t>(end_ - p_); }
  // OK, or Corruption naming `what` and the first problem found.
  Status status(std::string_view what) const {
    if (ok_) return Status::Ok();
    return Status::Corruption(std::string(what) + ": " + error_);
  }
  // Like status(), and also fails when bytes are left over.
  Status Finish(std::string_view what) {
    if (ok_ && p_ != end_) Fail(std::to_string(remaining()) + " trailing bytes");
    return status(what);
  }

 private:
  bool Need(uint64_t n) {
    if (!ok_) return false;
    if (n > remaining()) {
      Fail("truncated");
      return false;
    }
    return true;
  }

  const char* p_;
  const char* end_;
  bool ok_ = true;
  std::string error_;
};

}  // namespace weft::crdt
