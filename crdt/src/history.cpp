// History segments: a run of changes stored column by column. Format (docs/storage.md):
//   "WSEG" u8(version) varint(changes) varint(ops)  version 2 when it holds access ops, else 1
//   varint(authors) fixed64(node)*            every node named, in order of first use
//   bytes(int column)*  kIntColumns of them   run-length encoded (below), in Column order
//   bytes(generic ops) bytes(signatures)      EncodeOp of ops without columns; signatures
//   block(text)                               inserted text, Huffman coded (sequence_huffman.h)
//   fixed32(CRC-32C of everything before)
// An int column (empty when it has no values) is u8(form) then: form 0, groups each a zigzag
// varint header h: h > 0 is a run of h copies of the varint that follows, h < 0 is -h literal
// varints; form 1 (sparse), groups of varint(zeros) varint(nonzero value), the last of which may
// be zeros alone. The encoder takes the shorter. Most values are residuals from a prediction (the
// next seq of the author, the previous Lamport time plus one, the dot after the previous insert,
// ...), so typical histories are long runs of zeros.
#include "weft/crdt/history.h"

#include <algorithm>
#include <array>
#include <unordered_map>

#include "change_codec.h"
#include "sequence_huffman.h"
#include "weft/crdt/encoding.h"
#include "weft/crdt/utf.h"

namespace weft::crdt {

namespace {

constexpr std::string_view kMagic = "WSEG";
constexpr uint8_t kFormat = 1;
// Format 1 plus access ops (in the generic ops): an older build says kUnsupportedVersion.
constexpr uint8_t kAccessFormat = 2;

// Slicing-by-8 tables for CRC-32C (reflected polynomial 0x82F63B78): table k advances the CRC
// over a byte followed by k zero bytes, so eight bytes cost eight lookups and no dependency chain.
using CrcTables = std::array<std::array<uint32_t, 256>, 8>;
constexpr CrcTables MakeCrcTables() {
  CrcTables t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[0][i] = c;
  }
  for (size_t k = 1; k < 8; ++k) {
    for (uint32_t i = 0; i < 256; ++i) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xff];
  }
  return t;
}
constexpr CrcTables kCrc = MakeCrcTables();

// The int columns, in the order they are stored.
enum Column : size_t {
  kAuthor,      // per change: author index
  kSeq,         // start_seq - (the author's previous end_seq in the segment + 1)
  kDepCount,    // per change: entries in deps
  kDepAuthor,   // per dep: node index
  kDepSeq,      // per dep: seq - the previous dep seq of that node
  kLamport,     // lamport - (previous lamport + 1)
  kWall,        // wall_ms - previous wall_ms
  kLogical,     // logical - (same ms ? previous logical + 1 : 0)
  kOpCount,     // per change: ops
  kSigLength,   // per change: signature bytes
  kOpType,      // per op
  kObjectNode,  // per op: 0 for the null node, else node index + 1
  kObjectSeq,   // object seq - previous op's object seq
  kLeftNode,    // text insert: left origin node (0 null, else index + 1)
  kLeftSeq,     // left seq - the seq of the last code point the previous text insert made
  kRightNode,   // text insert: right origin node
  kRightSeq,    // right seq - previous text insert's right seq
  kTextLength,  // text insert: bytes of text
  kRangeCount,  // sequence delete: ranges
  kRangeNode,   // per range: node index
  kRangeFirst,  // first - previous range's first
  kRangeSpan,   // last - first
  kIntColumns
};

uint64_t Zig(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
int64_t Unzig(uint64_t u) {
  return static_cast<int64_t>((u >> 1) ^ (~(u & 1) + 1));
}
// Residuals are differences of unsigned values, taken modulo 2^64: exact for any input.
int64_t Diff(uint64_t a, uint64_t b) {
  return static_cast<int64_t>(a - b);
}

// An int column is stored in whichever of two forms is shorter, named by its first byte:
// kRuns (runs and literals) or kSparse (mostly zeros: pairs of a zero count and a value).
enum ColumnForm : uint8_t { kRuns = 0, kSparse = 1 };

class IntColumn {
 public:
  void Add(uint64_t v) { values_.push_back(v); }
  void AddDiff(uint64_t actual, uint64_t predicted) { Add(Zig(Diff(actual, predicted))); }

  std::string Encode() const {
    if (values_.empty()) return {};
    std::string runs = Runs(), sparse = Sparse();
    return runs.size() <= sparse.size() ? runs : sparse;
  }

 private:
  std::string Runs() const {
    Writer w;
    w.U8(kRuns);
    std::vector<uint64_t> literals;
    auto flush = [&] {
      if (literals.empty()) return;
      w.Zigzag(-static_cast<int64_t>(literals.size()));
      for (uint64_t v : literals) w.Varint(v);
      literals.clear();
    };
    for (size_t i = 0; i < values_.size();) {
      size_t j = i + 1;
      while (j < values_.size() && values_[j] == values_[i]) ++j;
      if (j - i >= 2) {
        flush();
        w.Zigzag(static_cast<int64_t>(j - i));
        w.Varint(values_[i]);
      } else {
        literals.push_back(values_[i]);
      }
      i = j;
    }
    flush();
    return w.Take();
  }

  // Groups of varint(zeros before) varint(value); the last group may be zeros alone.
  std::string Sparse() const {
    Writer w;
    w.U8(kSparse);
    uint64_t zeros = 0;
    for (uint64_t v : values_) {
      if (v == 0) {
        ++zeros;
        continue;
      }
      w.Varint(zeros);
      w.Varint(v);
      zeros = 0;
    }
    if (zeros > 0) w.Varint(zeros);
    return w.Take();
  }

  std::vector<uint64_t> values_;
};

class IntReader {
 public:
  IntReader() : r_(std::string_view()) {}
  explicit IntReader(std::string_view in) : r_(in) {
    if (!r_.done()) {
      uint8_t form = r_.U8();
      if (form > kSparse) r_.Fail("unknown column form");
      sparse_ = form == kSparse;
    }
  }

  uint64_t Next() {
    if (sparse_) return NextSparse();
    if (left_ == 0) {
      if (!r_.ok()) return 0;
      if (r_.done()) return r_.Fail("a column ends early");
      int64_t h = r_.Zigzag();
      if (h > 0) {
        left_ = static_cast<uint64_t>(h);
        literal_ = false;
        value_ = r_.Varint();
      } else if (h < 0) {
        left_ = static_cast<uint64_t>(-(h + 1)) + 1;
        literal_ = true;
      } else {
        return r_.Fail("an empty run");
      }
      if (!r_.ok()) return 0;
    }
    --left_;
    return literal_ ? r_.Varint() : value_;
  }
  // The value predicted plus the residual read.
  uint64_t NextFrom(uint64_t predicted) { return predicted + static_cast<uint64_t>(Unzig(Next())); }
  bool ok() const { return r_.ok(); }
  Status Finish(std::string_view what) {
    if (r_.ok() && (left_ != 0 || pending_ || !r_.done())) {
      r_.Fail("a column holds more values than used");
    }
    return r_.status(what);
  }

 private:
  uint64_t NextSparse() {
    if (left_ > 0) {
      --left_;
      return 0;
    }
    if (pending_) {
      pending_ = false;
      return value_;
    }
    if (!r_.ok()) return 0;
    if (r_.done()) return r_.Fail("a column ends early");
    left_ = r_.Varint();
    if (!r_.done()) {
      value_ = r_.Varint();
      if (r_.ok() && value_ == 0) return r_.Fail("a zero among the values of a sparse column");
      pending_ = true;
    } else if (left_ == 0) {
      return r_.Fail("an empty group");
    }
    if (!r_.ok()) return 0;
    return NextSparse();
  }

  Reader r_;
  bool sparse_ = false;
  uint64_t left_ = 0;
  bool literal_ = false;
  bool pending_ = false;
  uint64_t value_ = 0;
};

// Node indices, in order of first use.
class AuthorTable {
 public:
  uint64_t Index(NodeId n) {
    if (has_last_ && n == last_node_) return last_index_;  // most fields name the last node again
    auto [it, added] = index_.emplace(n.value, nodes_.size());
    if (added) nodes_.push_back(n);
    has_last_ = true;
    last_node_ = n;
    last_index_ = it->second;
    return it->second;
  }
  const std::vector<NodeId>& nodes() const { return nodes_; }

 private:
  std::vector<NodeId> nodes_;
  std::unordered_map<uint64_t, uint64_t> index_;
  bool has_last_ = false;
  NodeId last_node_;
  uint64_t last_index_ = 0;
};

// Per node index, a value remembered between changes (0 until set).
class PerNode {
 public:
  uint64_t& operator[](uint64_t i) {
    if (i >= v_.size()) v_.resize(i + 1, 0);
    return v_[i];
  }

 private:
  std::vector<uint64_t> v_;
};

}  // namespace

uint32_t Crc32c(std::string_view data) {
  uint32_t c = 0xFFFFFFFFu;
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  size_t n = data.size();
  for (; n >= 8; n -= 8, p += 8) {
    uint32_t lo =
        c ^ (uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24);
    c = kCrc[7][lo & 0xff] ^ kCrc[6][(lo >> 8) & 0xff] ^ kCrc[5][(lo >> 16) & 0xff] ^
        kCrc[4][lo >> 24] ^ kCrc[3][p[4]] ^ kCrc[2][p[5]] ^ kCrc[1][p[6]] ^ kCrc[0][p[7]];
  }
  for (; n > 0; --n, ++p) c = kCrc[0][(c ^ *p) & 0xff] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

std::string EncodeSegment(const std::vector<Change>& changes) {
  std::vector<const Change*> ptrs;
  ptrs.reserve(changes.size());
  for (const Change& c : changes) ptrs.push_back(&c);
  return EncodeSegment(ptrs);
}

std::string EncodeSegment(const std::vector<const Change*>& changes) {
  AuthorTable authors;
  std::array<IntColumn, kIntColumns> col;
  Writer generic;
  std::string text, signatures;
  PerNode last_end, last_dep;
  uint64_t lamport = 0, wall = 0, logical = 0, object_seq = 0, cursor = 0, left_seq = 0,
           right_seq = 0;
  uint64_t ops = 0;
  auto node_or_null = [&](NodeId n) -> uint64_t { return n.valid() ? authors.Index(n) + 1 : 0; };
  for (const Change* cp : changes) {
    const Change& c = *cp;
    uint64_t a = authors.Index(c.author);
    col[kAuthor].Add(a);
    col[kSeq].AddDiff(c.start_seq, last_end[a] + 1);
    col[kDepCount].Add(c.deps.size());
    for (const auto& [node, seq] : c.deps.entries()) {
      uint64_t d = authors.Index(node);
      col[kDepAuthor].Add(d);
      col[kDepSeq].AddDiff(seq, last_dep[d]);
      last_dep[d] = seq;
    }
    col[kLamport].AddDiff(c.lamport, lamport + 1);
    lamport = c.lamport;
    col[kWall].AddDiff(c.time.wall_ms, wall);
    col[kLogical].AddDiff(c.time.logical, c.time.wall_ms == wall ? logical + 1 : 0);
    wall = c.time.wall_ms;
    logical = c.time.logical;
    col[kOpCount].Add(c.ops.size());
    col[kSigLength].Add(c.signature.size());
    signatures += c.signature;
    uint64_t seq = c.start_seq;
    for (const Op& op : c.ops) {
      ++ops;
      col[kOpType].Add(static_cast<uint64_t>(op.type));
      col[kObjectNode].Add(node_or_null(op.object.node));
      col[kObjectSeq].AddDiff(op.object.seq, object_seq);
      object_seq = op.object.seq;
      uint64_t span = OpSpan(op);
      if (op.type == Op::Type::kTextInsert) {
        col[kLeftNode].Add(node_or_null(op.left.node));
        col[kLeftSeq].AddDiff(op.left.seq, left_seq);
        col[kRightNode].Add(node_or_null(op.right.node));
        col[kRightSeq].AddDiff(op.right.seq, right_seq);
        col[kTextLength].Add(op.text.size());
        text += op.text;
        cursor = left_seq = seq + span - 1;
        right_seq = op.right.seq;
      } else if (op.type == Op::Type::kSeqDelete) {
        col[kRangeCount].Add(op.ranges.size());
        uint64_t predicted = cursor;
        for (const DotRange& r : op.ranges) {
          col[kRangeNode].Add(authors.Index(r.node));
          col[kRangeFirst].AddDiff(r.first, predicted);
          col[kRangeSpan].Add(r.last - r.first);
          predicted = r.first;
        }
        if (!op.ranges.empty()) cursor = op.ranges.back().first - 1;
      } else {
        internal::EncodeOp(generic, op);
      }
      seq += span;
    }
    last_end[a] = seq - 1;
  }
  bool access = std::any_of(changes.begin(), changes.end(),
                            [](const Change* c) { return internal::HasAccessOps(*c); });
  Writer w;
  w.Raw(kMagic);
  w.U8(access ? kAccessFormat : kFormat);
  w.Varint(changes.size());
  w.Varint(ops);
  w.Varint(authors.nodes().size());
  for (NodeId n : authors.nodes()) w.Node(n);
  for (const IntColumn& c : col) w.Bytes(c.Encode());
  w.Bytes(generic.data());
  w.Bytes(signatures);
  internal::EncodeBlock(w, text);
  uint32_t crc = Crc32c(w.data());
  for (int i = 0; i < 4; ++i) w.U8(static_cast<uint8_t>(crc >> (8 * i)));
  return w.Take();
}

Result<std::vector<Change>> DecodeSegment(std::string_view bytes) {
  if (bytes.size() < kMagic.size() + 5 || bytes.substr(0, kMagic.size()) != kMagic) {
    return Status::Corruption("not a history segment");
  }
  std::string_view body = bytes.substr(0, bytes.size() - 4);
  uint32_t stored = 0;
  for (int i = 0; i < 4; ++i) {
    stored |= static_cast<uint32_t>(static_cast<uint8_t>(bytes[body.size() + i])) << (8 * i);
  }
  if (Crc32c(body) != stored) return Status::Corruption("history segment: checksum mismatch");
  Reader r(body);
  r.Raw(kMagic.size());
  uint8_t format = r.U8();
  if (r.ok() && format != kFormat && format != kAccessFormat) {
    return Status::UnsupportedVersion("history segment format " + std::to_string(format));
  }
  uint64_t n = r.Varint();
  uint64_t total_ops = r.Varint();
  if (r.ok() && (n == 0 || n > kMaxSegmentChanges || total_ops < n || total_ops > kMaxSegmentOps)) {
    r.Fail("bad change or op count");
  }
  uint64_t n_authors = r.Count(8);
  std::vector<NodeId> nodes;
  nodes.reserve(n_authors);
  std::unordered_map<uint64_t, bool> seen;
  for (uint64_t i = 0; i < n_authors && r.ok(); ++i) {
    NodeId node = r.Node();
    if (!node.valid() || !seen.emplace(node.value, true).second) r.Fail("bad author table");
    nodes.push_back(node);
  }
  std::array<IntReader, kIntColumns> col;
  for (auto& c : col) c = IntReader(r.Bytes());
  Reader generic(r.Bytes());
  Reader signatures(r.Bytes());
  std::string text;
  if (r.ok()) {
    auto t = internal::DecodeBlock(r);
    if (!t.ok()) return Status::Corruption("history segment text: " + t.status().message());
    text = std::move(*t);
  }
  WEFT_RETURN_IF_ERROR(r.Finish("history segment"));

  bool bad = false;
  std::string why;
  auto fail = [&](std::string msg) {
    if (!bad) why = std::move(msg);
    bad = true;
  };
  auto node_at = [&](uint64_t i) -> NodeId {
    if (i >= nodes.size()) {
      fail("node index out of range");
      return NodeId{};
    }
    return nodes[i];
  };
  auto node_or_null = [&](uint64_t i) -> NodeId { return i == 0 ? NodeId{} : node_at(i - 1); };
  auto columns_ok = [&] {
    for (const auto& c : col) {
      if (!c.ok()) return false;
    }
    return generic.ok() && signatures.ok();
  };

  std::vector<Change> out;
  out.reserve(n);
  PerNode last_end, last_dep;
  uint64_t lamport = 0, wall = 0, logical = 0, object_seq = 0, cursor = 0, left_seq = 0,
           right_seq = 0;
  uint64_t ops_left = total_ops;
  uint64_t ranges_left = kMaxSegmentOps;  // bounds what a run-length encoded column can make
  size_t text_pos = 0;
  for (uint64_t i = 0; i < n && !bad && columns_ok(); ++i) {
    Change c;
    uint64_t a = col[kAuthor].Next();
    c.author = node_at(a);
    if (bad) break;
    c.start_seq = col[kSeq].NextFrom(last_end[a] + 1);
    uint64_t deps = col[kDepCount].Next();
    if (deps > nodes.size()) fail("too many dependencies");
    NodeId prev{0};
    for (uint64_t k = 0; k < deps && !bad && columns_ok(); ++k) {
      uint64_t d = col[kDepAuthor].Next();
      NodeId node = node_at(d);
      if (bad) break;
      uint64_t seq = col[kDepSeq].NextFrom(last_dep[d]);
      last_dep[d] = seq;
      if (node <= prev || seq == 0) fail("dependencies not in canonical form");
      prev = node;
      c.deps.Set(node, seq);
    }
    c.lamport = col[kLamport].NextFrom(lamport + 1);
    lamport = c.lamport;
    c.time.wall_ms = col[kWall].NextFrom(wall);
    uint64_t lg = col[kLogical].NextFrom(c.time.wall_ms == wall ? logical + 1 : 0);
    if (lg > UINT32_MAX) fail("logical time out of range");
    c.time.logical = static_cast<uint32_t>(lg);
    wall = c.time.wall_ms;
    logical = lg;
    uint64_t op_count = col[kOpCount].Next();
    if (op_count == 0 || op_count > ops_left) fail("bad op count");
    uint64_t sig = col[kSigLength].Next();
    c.signature = std::string(signatures.Raw(sig));
    if (bad || !columns_ok()) break;
    ops_left -= op_count;
    c.ops.reserve(op_count);
    uint64_t seq = c.start_seq;
    for (uint64_t k = 0; k < op_count && !bad && columns_ok(); ++k) {
      uint64_t type = col[kOpType].Next();
      NodeId obj_node = node_or_null(col[kObjectNode].Next());
      uint64_t obj_seq = col[kObjectSeq].NextFrom(object_seq);
      object_seq = obj_seq;
      Op op;
      if (type == static_cast<uint64_t>(Op::Type::kTextInsert)) {
        op.type = Op::Type::kTextInsert;
        op.left.node = node_or_null(col[kLeftNode].Next());
        op.left.seq = col[kLeftSeq].NextFrom(left_seq);
        op.right.node = node_or_null(col[kRightNode].Next());
        op.right.seq = col[kRightSeq].NextFrom(right_seq);
        uint64_t len = col[kTextLength].Next();
        if (len == 0 || len > text.size() - text_pos) {
          fail("text insert length out of range");
          break;
        }
        op.text = text.substr(text_pos, len);
        text_pos += len;
        if (!ValidateUtf8(op.text).ok()) fail("text insert is not UTF-8");
        right_seq = op.right.seq;
      } else if (type == static_cast<uint64_t>(Op::Type::kSeqDelete)) {
        op.type = Op::Type::kSeqDelete;
        uint64_t ranges = col[kRangeCount].Next();
        if (ranges > ranges_left) fail("too many delete ranges");
        uint64_t predicted = cursor;
        ranges_left -= bad ? 0 : ranges;
        for (uint64_t m = 0; m < ranges && !bad && columns_ok(); ++m) {
          DotRange d;
          d.node = node_at(col[kRangeNode].Next());
          d.first = col[kRangeFirst].NextFrom(predicted);
          predicted = d.first;
          uint64_t span = col[kRangeSpan].Next();
          if (d.first == 0 || d.first > UINT64_MAX - span) fail("bad delete range");
          d.last = d.first + span;
          op.ranges.push_back(d);
        }
      } else {
        op = internal::DecodeOp(generic);
        if (!generic.ok()) break;
        if (static_cast<uint64_t>(op.type) != type || op.type == Op::Type::kTextInsert ||
            op.type == Op::Type::kSeqDelete || op.object != Dot{obj_node, obj_seq}) {
          fail("op type does not match its column");
        }
      }
      if (bad || !columns_ok()) break;
      op.object = Dot{obj_node, obj_seq};
      // The root, an object named by a dot, or a named container {0, hash}.
      if (op.object.node.valid() && op.object.seq == 0) fail("bad object id");
      uint64_t span = OpSpan(op);
      if (op.type == Op::Type::kTextInsert) cursor = left_seq = seq + span - 1;
      if (op.type == Op::Type::kSeqDelete && !op.ranges.empty()) {
        cursor = op.ranges.back().first - 1;
      }
      seq += span;
      c.ops.push_back(std::move(op));
    }
    if (bad || !columns_ok()) break;
    if (c.start_seq == 0 || c.start_seq > UINT64_MAX - c.span()) fail("bad start seq");
    if (c.deps.Get(c.author) != 0) fail("a change depends on its own author");
    last_end[a] = seq - 1;
    out.push_back(std::move(c));
  }
  if (bad) return Status::Corruption("history segment: " + why);
  for (auto& c : col) WEFT_RETURN_IF_ERROR(c.Finish("history segment column"));
  WEFT_RETURN_IF_ERROR(generic.Finish("history segment ops"));
  WEFT_RETURN_IF_ERROR(signatures.Finish("history segment signatures"));
  bool access = std::any_of(out.begin(), out.end(),
                            [](const Change& c) { return internal::HasAccessOps(c); });
  if (access != (format == kAccessFormat)) {
    return Status::Corruption("history segment: format " + std::to_string(format) +
                              (access ? " with" : " without") + " access ops");
  }
  if (out.size() != n || ops_left != 0 || text_pos != text.size()) {
    return Status::Corruption("history segment: counts do not add up");
  }
  return out;
}

}  // namespace weft::crdt
