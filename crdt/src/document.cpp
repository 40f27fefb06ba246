#include "weft/crdt/document.h"

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <set>

#include "change_codec.h"
#include "weft/crdt/encoding.h"
#include "weft/crdt/utf.h"

namespace weft::crdt {

const char* ObjectKindName(ObjectKind k) {
  switch (k) {
    case ObjectKind::kMap: return "map";
    case ObjectKind::kRegister: return "register";
    case ObjectKind::kLwwRegister: return "lww-register";
    case ObjectKind::kCounter: return "counter";
    case ObjectKind::kSet: return "set";
    case ObjectKind::kList: return "list";
    case ObjectKind::kText: return "text";
  }
  return "?";
}

namespace {

bool ValidKind(uint8_t k) {
  return k >= 1 && k <= 7;
}

ObjectKind KindOfObject(const Document::Object& o) {
  switch (o.index()) {
    case 0: return ObjectKind::kMap;
    case 1: return ObjectKind::kRegister;
    case 2: return ObjectKind::kLwwRegister;
    case 3: return ObjectKind::kCounter;
    case 4: return ObjectKind::kSet;
    case 5: return ObjectKind::kList;
    default: return ObjectKind::kText;
  }
}

Document::Object MakeObject(ObjectKind k) {
  switch (k) {
    case ObjectKind::kMap: return Document::MapObject{};
    case ObjectKind::kRegister: return MVRegister<Scalar>{};
    case ObjectKind::kLwwRegister: return LWWRegister<Scalar>{};
    case ObjectKind::kCounter: return Counter{};
    case ObjectKind::kSet: return ORSet<Scalar>{};
    case ObjectKind::kList: return List<Value>{};
    case ObjectKind::kText: return Text{};
  }
  return Document::MapObject{};
}

// How many distinct values a map key shows: siblings referencing one named container count once.
size_t DistinctValues(const MVSlot<Value>& slot) {
  const auto& sib = slot.siblings();
  size_t n = 0;
  for (size_t i = 0; i < sib.size(); ++i) {
    bool dup = false;
    if (sib[i].value.is_object() && IsNamedObject(sib[i].value.object().id)) {
      for (size_t j = 0; j < i && !dup; ++j) dup = sib[j].value == sib[i].value;
    }
    if (!dup) ++n;
  }
  return n;
}

std::string OriginString(const NamedOrigin& o) {
  return std::string(ObjectKindName(o.kind)) + " at key \"" + o.key + "\" of " +
         o.parent.ToString();
}

std::string KindError(ObjectId id, ObjectKind want, ObjectKind have) {
  return "object " + id.ToString() + " is a " + ObjectKindName(have) + ", not a " +
         ObjectKindName(want);
}

}  // namespace

bool IsMergeableKind(ObjectKind kind) {
  return kind != ObjectKind::kRegister && kind != ObjectKind::kLwwRegister;
}

uint64_t DefaultNamedIdHash(ObjectId parent, std::string_view key, ObjectKind kind) {
  // FNV-1a over a domain-separated, length-prefixed, little-endian encoding of the origin, then
  // the splitmix64 finaliser to spread FNV's weak high bits. Fixed forever: ids are stored.
  uint64_t h = 0xcbf29ce484222325ULL;
  auto byte = [&](uint8_t b) {
    h ^= b;
    h *= 0x100000001b3ULL;
  };
  auto u64 = [&](uint64_t v) {
    for (int i = 0; i < 8; ++i) byte(static_cast<uint8_t>(v >> (8 * i)));
  };
  for (char c : std::string_view("weft/named-object/v1")) byte(static_cast<uint8_t>(c));
  u64(parent.node.value);
  u64(parent.seq);
  byte(static_cast<uint8_t>(kind));
  u64(key.size());
  for (char c : key) byte(static_cast<uint8_t>(c));
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h == 0 ? 1 : h;
}

ObjectId NamedObjectId(ObjectId parent, std::string_view key, ObjectKind kind) {
  return ObjectId{NodeId{}, DefaultNamedIdHash(parent, key, kind)};
}

ObjectId Document::NamedId(ObjectId parent, std::string_view key, ObjectKind kind) const {
  if (!options_.named_id_hash) return NamedObjectId(parent, key, kind);
  uint64_t seq = options_.named_id_hash(parent, key, kind);
  return ObjectId{NodeId{}, seq == 0 ? 1 : seq};
}

std::string Value::ToString() const {
  if (is_object())
    return std::string("<") + ObjectKindName(object().kind) + " " + object().id.ToString() + ">";
  return scalar().ToString();
}

uint64_t OpSpan(const Op& op) {
  switch (op.type) {
    case Op::Type::kTextInsert: return CountCodePoints(op.text);
    case Op::Type::kListInsert: return op.items.size();
    case Op::Type::kSealed: return static_cast<uint64_t>(op.delta);
    default: return 1;
  }
}

uint64_t Change::span() const {
  uint64_t n = 0;
  for (const Op& op : ops) n += OpSpan(op);
  return n;
}

// ---------------------------------------------------------------------------------------------
// Change encoding

namespace {

// Format 2 is format 1 plus access ops (Op::Type::kAccess): a change without them is still
// written as format 1, byte for byte as before, so older builds read it; one with them says
// kUnsupportedVersion to an older build instead of failing on an unknown op type.
constexpr uint8_t kChangeFormat = 1;
constexpr uint8_t kAccessChangeFormat = 2;
// Format 3 is format 2 plus named containers: creations (value flag 2) and ops on them (object
// {0, hash}). A change with either is written as format 3, any other as before, so old changes
// keep their bytes and an older build says kUnsupportedVersion to a change it cannot apply.
constexpr uint8_t kNamedChangeFormat = 3;
// Format 4 is format 3 plus sealed ops (end-to-end encrypted content); as above, only changes
// that hold one are written as format 4.
constexpr uint8_t kSealedChangeFormat = 4;
// The most seqs one sealed op stands for, and the most bytes of ciphertext it carries.
constexpr uint64_t kMaxSealedSpan = uint64_t{1} << 32;
constexpr size_t kMaxSealedBytes = size_t{64} << 20;
constexpr size_t kMaxKeyBytes = 1 << 16;

// A value an op writes: u8 0 and a scalar, u8 1 and the kind of a new nested object named by the
// op's dot, or (map sets only) u8 2 and the kind of a new named container.
void EncodeValueSpec(Writer& w, const Scalar& scalar, const std::optional<ObjectKind>& kind,
                     bool named = false) {
  if (kind) {
    w.U8(named ? 2 : 1);
    w.U8(static_cast<uint8_t>(*kind));
  } else {
    w.U8(0);
    scalar.Encode(w);
  }
}

// `named` is null where named creations cannot be (list items).
void DecodeValueSpec(Reader& r, Scalar* scalar, std::optional<ObjectKind>* kind,
                     bool* named = nullptr) {
  uint8_t is_object = r.U8();
  if (is_object == 1 || (is_object == 2 && named)) {
    uint8_t k = r.U8();
    if (!ValidKind(k)) {
      r.Fail("unknown object kind");
    } else if (is_object == 2 && !IsMergeableKind(static_cast<ObjectKind>(k))) {
      r.Fail("a named object of a kind that has none");
    } else {
      *kind = static_cast<ObjectKind>(k);
      if (named) *named = is_object == 2;
    }
  } else if (is_object == 0) {
    *scalar = Scalar::Decode(r);
  } else {
    r.Fail("bad value flag");
  }
}

}  // namespace

bool internal::HasAccessOps(const Change& c) {
  return std::any_of(c.ops.begin(), c.ops.end(),
                     [](const Op& op) { return op.type == Op::Type::kAccess; });
}

void internal::EncodeOp(Writer& w, const Op& op) {
  w.U8(static_cast<uint8_t>(op.type));
  w.DotValue(op.object);
  switch (op.type) {
    case Op::Type::kMapSet:
      w.Bytes(op.key);
      w.Vector(op.context);
      EncodeValueSpec(w, op.scalar, op.new_object, op.named);
      break;
    case Op::Type::kMapDelete:
      w.Bytes(op.key);
      w.Vector(op.context);
      break;
    case Op::Type::kRegisterSet:
    case Op::Type::kSetAdd:
    case Op::Type::kSetRemove:
      w.Vector(op.context);
      op.scalar.Encode(w);
      break;
    case Op::Type::kCounterAdd: w.Zigzag(op.delta); break;
    case Op::Type::kTextInsert:
      w.DotValue(op.left);
      w.DotValue(op.right);
      w.Bytes(op.text);
      break;
    case Op::Type::kListInsert:
      w.DotValue(op.left);
      w.DotValue(op.right);
      w.Varint(op.items.size());
      for (const ListItem& item : op.items) EncodeValueSpec(w, item.scalar, item.new_object);
      break;
    case Op::Type::kSeqDelete: EncodeDeleteOp(w, DeleteOp{op.ranges}); break;
    case Op::Type::kAccess: EncodeAccessFields(w, AccessEntryOf(op, {}, 0)); break;
    case Op::Type::kSealed:
      w.Varint(static_cast<uint64_t>(op.delta));
      w.Bytes(op.proof);
      break;
  }
}

Op internal::DecodeOp(Reader& r) {
  Op op;
  uint8_t type = r.U8();
  if (type < 1 || type > 11) {
    r.Fail("unknown op type " + std::to_string(type));
    return op;
  }
  op.type = static_cast<Op::Type>(type);
  op.object = r.DotValue();
  // The root {0, 0}, an object named by a dot, or a named container {0, hash}.
  if (r.ok() && op.object.node.valid() && op.object.seq == 0) r.Fail("bad object id");
  switch (op.type) {
    case Op::Type::kMapSet: {
      op.key = std::string(r.Bytes());
      op.context = r.Vector();
      DecodeValueSpec(r, &op.scalar, &op.new_object, &op.named);
      break;
    }
    case Op::Type::kMapDelete:
      op.key = std::string(r.Bytes());
      op.context = r.Vector();
      break;
    case Op::Type::kRegisterSet:
    case Op::Type::kSetAdd:
    case Op::Type::kSetRemove:
      op.context = r.Vector();
      op.scalar = Scalar::Decode(r);
      break;
    case Op::Type::kCounterAdd: op.delta = r.Zigzag(); break;
    case Op::Type::kTextInsert:
      op.left = r.DotValue();
      op.right = r.DotValue();
      op.text = std::string(r.Bytes());
      if (r.ok() && (op.text.empty() || !ValidateUtf8(op.text).ok())) {
        r.Fail("text insert is empty or not UTF-8");
      }
      break;
    case Op::Type::kListInsert: {
      op.left = r.DotValue();
      op.right = r.DotValue();
      uint64_t n = r.Count(1);
      if (r.ok() && (n == 0 || n > kMaxSequenceRunLength)) r.Fail("bad list insert length");
      op.items.reserve(n);
      for (uint64_t i = 0; i < n && r.ok(); ++i) {
        ListItem item;
        DecodeValueSpec(r, &item.scalar, &item.new_object);
        op.items.push_back(std::move(item));
      }
      break;
    }
    case Op::Type::kSeqDelete: {
      auto d = DecodeDeleteOp(r);
      if (!d.ok())
        r.Fail(d.status().message());
      else
        op.ranges = std::move(d->ranges);
      break;
    }
    case Op::Type::kAccess: {
      if (r.ok() && op.object != kRoot) r.Fail("an access op is not on the root");
      AccessEntry e;
      DecodeAccessFields(r, &e);
      op.action = e.action;
      op.principal = std::move(e.principal);
      op.role = e.role;
      op.proof = std::move(e.proof);
      op.context = std::move(e.context);
      op.observed = std::move(e.observed);
      break;
    }
    case Op::Type::kSealed: {
      if (r.ok() && op.object != kRoot) r.Fail("a sealed op is not on the root");
      uint64_t span = r.Varint();
      op.proof = std::string(r.Bytes());
      if (r.ok() && (span == 0 || span > kMaxSealedSpan)) r.Fail("bad sealed op span");
      if (r.ok() && (op.proof.empty() || op.proof.size() > kMaxSealedBytes)) {
        r.Fail("bad sealed op ciphertext size");
      }
      op.delta = static_cast<int64_t>(span);
      break;
    }
  }
  if (op.key.size() > kMaxKeyBytes) r.Fail("key too long");
  return op;
}

namespace {
// Whether `c` creates a named container or writes into one.
bool HasNamedOps(const Change& c) {
  return std::any_of(c.ops.begin(), c.ops.end(),
                     [](const Op& op) { return op.named || IsNamedObject(op.object); });
}

uint8_t FormatOf(const Change& c) {
  if (std::any_of(c.ops.begin(), c.ops.end(),
                  [](const Op& op) { return op.type == Op::Type::kSealed; })) {
    return kSealedChangeFormat;
  }
  if (HasNamedOps(c)) return kNamedChangeFormat;
  return internal::HasAccessOps(c) ? kAccessChangeFormat : kChangeFormat;
}

void EncodeChangeTo(Writer& w, const Change& c, bool with_signature) {
  w.U8(FormatOf(c));
  w.Node(c.author);
  w.Varint(c.start_seq);
  w.Vector(c.deps);
  w.Varint(c.lamport);
  w.Varint(c.time.wall_ms);
  w.Varint(c.time.logical);
  w.Varint(c.ops.size());
  for (const Op& op : c.ops) internal::EncodeOp(w, op);
  w.Bytes(with_signature ? std::string_view(c.signature) : std::string_view());
}
}  // namespace

std::string EncodeChange(const Change& c) {
  Writer w;
  EncodeChangeTo(w, c, true);
  return w.Take();
}

std::string EncodeChangeUnsigned(const Change& c) {
  Writer w;
  EncodeChangeTo(w, c, false);
  return w.Take();
}

std::string_view KeptChanges::bytes(size_t i) const {
  uint64_t end = i + 1 < entries_.size() ? entries_[i + 1].offset : arena_.size();
  return std::string_view(arena_).substr(entries_[i].offset, end - entries_[i].offset);
}

Change KeptChanges::operator[](size_t i) const {
  Result<Change> c = DecodeChange(bytes(i));
  // Only changes encoded here, or whose encoding was checked, are kept.
  if (!c.ok()) std::abort();
  return std::move(*c);
}

std::vector<Change> KeptChanges::All() const {
  std::vector<Change> out;
  out.reserve(size());
  for (size_t i = 0; i < size(); ++i) out.push_back((*this)[i]);
  return out;
}

void KeptChanges::Append(const Change& c) {
  scratch_.Clear();
  EncodeChangeTo(scratch_, c, true);
  Append(c, scratch_.data());
}

void KeptChanges::Append(const Change& c, std::string_view bytes) {
  entries_.push_back(Entry{arena_.size(), c.author, c.start_seq, c.end_seq()});
  arena_.append(bytes);
}

Result<Change> DecodeChange(std::string_view bytes) {
  Reader r(bytes);
  uint8_t format = r.U8();
  if (r.ok() && (format < kChangeFormat || format > kSealedChangeFormat)) {
    return Status::UnsupportedVersion("change format " + std::to_string(format) +
                                      " (this build reads up to " +
                                      std::to_string(kSealedChangeFormat) + ")");
  }
  Change c;
  c.author = r.Node();
  c.start_seq = r.Varint();
  c.deps = r.Vector();
  c.lamport = r.Varint();
  c.time.wall_ms = r.Varint();
  uint64_t logical = r.Varint();
  if (logical > UINT32_MAX) r.Fail("logical time out of range");
  c.time.logical = static_cast<uint32_t>(logical);
  uint64_t n = r.Count(2);
  if (r.ok() && n == 0) r.Fail("a change has no ops");
  c.ops.reserve(n);
  for (uint64_t i = 0; i < n && r.ok(); ++i) c.ops.push_back(internal::DecodeOp(r));
  c.signature = std::string(r.Bytes());
  WEFT_RETURN_IF_ERROR(r.Finish("change"));
  if (!c.author.valid()) return Status::Corruption("change: author is the null node");
  if (c.start_seq == 0 || c.start_seq > UINT64_MAX - c.span()) {
    return Status::Corruption("change: bad start seq");
  }
  if (c.deps.Get(c.author) != 0) return Status::Corruption("change: depends on its own author");
  // One encoding per change: the lowest format that holds its ops.
  if (format != FormatOf(c)) {
    return Status::Corruption("change: format " + std::to_string(format) + " for ops of format " +
                              std::to_string(FormatOf(c)));
  }
  return c;
}

// ---------------------------------------------------------------------------------------------
// Transactions

namespace {
template <typename F>
UndoEntry Undo(F&& fn) {
  UndoEntry u;
  u.fn = std::forward<F>(fn);
  return u;
}
// The undo of a sequence insert of `count` items from `first`.
UndoEntry InsertUndo(ObjectId obj, Dot first, uint64_t count) {
  UndoEntry u;
  u.object = obj;
  u.first = first;
  u.count = count;
  return u;
}
}  // namespace

void UndoEntry::operator()(Document& doc) const {
  if (fn) {
    fn(doc);
    return;
  }
  Document::Object* o = doc.Find(object);
  if (deferred) {
    std::get<Text>(*o).DropDeferred(static_cast<size_t>(count));
    return;
  }
  auto undo = [&](auto& seq) {
    if (!is_delete) {
      seq.UndoInsert(first, count);
    } else {
      seq.UndoDelete(deleted, in_view ? &view_ranges : nullptr);
    }
  };
  if (auto* t = std::get_if<Text>(o))
    undo(*t);
  else
    undo(std::get<List<Value>>(*o));
}

namespace {
// The undo of a sequence delete: `deleted` the items it deleted, `view` its ranges when it counted
// in the view (else null).
UndoEntry DeleteUndo(ObjectId obj, std::vector<DotRange> deleted,
                     const std::vector<DotRange>* view) {
  UndoEntry u;
  u.object = obj;
  u.is_delete = true;
  u.deleted = std::move(deleted);
  if (view) {
    u.in_view = true;
    u.view_ranges = *view;
  }
  return u;
}
}  // namespace

Transaction::Transaction(Document* doc, uint64_t now_ms, NodeId author, bool at_view)
    : doc_(doc),
      now_ms_(now_ms),
      author_(author),
      at_view_(at_view),
      next_seq_(doc->version_.Get(author) + 1) {}

Transaction::Transaction(Transaction&& o) noexcept
    : doc_(o.doc_),
      now_ms_(o.now_ms_),
      author_(o.author_),
      at_view_(o.at_view_),
      at_(std::move(o.at_)),
      at_deps_(std::move(o.at_deps_)),
      at_lamport_(o.at_lamport_),
      next_seq_(o.next_seq_),
      ops_(std::move(o.ops_)),
      patches_(std::move(o.patches_)),
      undo_(std::move(o.undo_)),
      open_(o.open_) {
  o.open_ = false;
}

Transaction::~Transaction() {
  if (open_) Rollback();
}

Status Transaction::CheckLocalWrite() const {
  const AccessList& access = doc_->access_;
  // Not bound yet: the SDK binds the actor in this transaction before it commits.
  if (!access.owned() || !access.KeyOf(author_)) return Status::Ok();
  return access.CheckWrite(author_, next_seq_);
}

ViewMode Transaction::TextMode() const {
  if (at_view_) return ViewMode::kAt;
  return doc_->InView() ? ViewMode::kJoin : ViewMode::kOutside;
}

Status Transaction::CheckCurrent() const {
  if (!at_view_) return Status::Ok();
  return Status::InvalidArgument("only text edits can be made at an earlier version");
}

Status Transaction::AddAccess(Op op) {
  if (!open_) return Status::InvalidArgument("transaction is closed");
  WEFT_RETURN_IF_ERROR(CheckCurrent());
  Document& d = *doc_;
  op.type = Op::Type::kAccess;
  op.object = kRoot;
  AccessEntry e = internal::AccessEntryOf(op, Dot{author_, next_seq_}, d.lamport_ + 1);
  WEFT_RETURN_IF_ERROR(d.access_.Check(e, d.version_, d.version_.empty()));
  undo_.push_back(Undo([before = d.access_](Document& doc) { doc.access_ = before; }));
  d.access_.Add(std::move(e));
  next_seq_ += 1;
  ops_.push_back(std::move(op));
  return Status::Ok();
}

namespace {
// Per actor, the last seq of an access op `list` holds: what a new grant or revoke observed.
VersionVector ObservedOf(const AccessList& list) {
  VersionVector v;
  for (const AccessEntry& e : list.entries()) v.Advance(e.dot.node, e.dot.seq);
  return v;
}
}  // namespace

Status Transaction::CreateAccess(const Principal& owner) {
  Op op;
  op.action = AccessAction::kCreate;
  op.principal = owner;
  return AddAccess(std::move(op));
}

Status Transaction::Bind(const Principal& key, std::string proof) {
  Op op;
  op.action = AccessAction::kBind;
  op.principal = key;
  op.proof = std::move(proof);
  return AddAccess(std::move(op));
}

Status Transaction::Grant(const Principal& key, Role role) {
  Op op;
  op.action = AccessAction::kGrant;
  op.principal = key;
  op.role = role;
  op.observed = ObservedOf(doc_->access_);
  return AddAccess(std::move(op));
}

Status Transaction::Revoke(const Principal& key) {
  Op op;
  op.action = AccessAction::kRevoke;
  op.principal = key;
  op.observed = ObservedOf(doc_->access_);
  for (NodeId actor : doc_->access_.ActorsOf(key)) op.context.Set(actor, doc_->version_.Get(actor));
  return AddAccess(std::move(op));
}

Status Transaction::Encrypt(const Principal& owner) {
  Op op;
  op.action = AccessAction::kEncrypt;
  op.principal = owner;
  return AddAccess(std::move(op));
}

Status Transaction::AddKeyRecord(const Principal& admin, std::string record) {
  Op op;
  op.action = AccessAction::kKeys;
  op.principal = admin;
  op.proof = std::move(record);
  op.observed = ObservedOf(doc_->access_);
  return AddAccess(std::move(op));
}

Status Transaction::AddSealed(std::string ciphertext, uint64_t span) {
  if (!open_) return Status::InvalidArgument("transaction is closed");
  if (span == 0 || span > kMaxSealedSpan || ciphertext.empty() ||
      ciphertext.size() > kMaxSealedBytes) {
    return Status::InvalidArgument("a sealed op stands for 1 or more seqs of ciphertext");
  }
  Op op;
  op.type = Op::Type::kSealed;
  op.delta = static_cast<int64_t>(span);
  op.proof = std::move(ciphertext);
  next_seq_ += span;
  ops_.push_back(std::move(op));
  return Status::Ok();
}

Status Transaction::Add(Op op) {
  if (!open_) return Status::InvalidArgument("transaction is closed");
  WEFT_RETURN_IF_ERROR(CheckCurrent());
  Document& d = *doc_;
  if (!d.Exists(op.object)) return Status::NotFound("object " + op.object.ToString());
  WEFT_RETURN_IF_ERROR(CheckLocalWrite());
  Dot dot{author_, next_seq_};
  WEFT_RETURN_IF_ERROR(d.ApplyOpChecked(op, dot, d.clock_.last(), &undo_, &patches_));
  next_seq_ += OpSpan(op);
  ops_.push_back(std::move(op));
  return Status::Ok();
}

Status Transaction::Put(ObjectId map, std::string_view key, Scalar value) {
  auto read = doc_->Get(map, key);
  if (!read.ok()) return read.status();
  return PutAfterRead(map, key, std::move(value), read->context);
}

Status Transaction::PutAfterRead(ObjectId map, std::string_view key, Scalar value,
                                 const VersionVector& read_context) {
  Op op;
  op.type = Op::Type::kMapSet;
  op.object = map;
  op.key = std::string(key);
  op.context = read_context;
  op.scalar = std::move(value);
  return Add(std::move(op));
}

Result<ObjectId> Transaction::PutObject(ObjectId map, std::string_view key, ObjectKind kind) {
  auto read = doc_->Get(map, key);
  if (!read.ok()) return read.status();
  Op op;
  op.type = Op::Type::kMapSet;
  op.object = map;
  op.key = std::string(key);
  op.context = read->context;
  op.new_object = kind;
  if (!IsMergeableKind(kind)) {
    Dot dot{author_, next_seq_};
    WEFT_RETURN_IF_ERROR(Add(std::move(op)));
    return dot;
  }
  op.named = true;
  ObjectId id = doc_->NamedId(map, key, kind);
  // The container may exist already: at the key, or hidden since the key dropped it. The caller
  // asked for an empty one, so empty it with ops that remove only what this replica sees.
  bool existed = doc_->Exists(id);
  size_t ops_mark = ops_.size(), undo_mark = undo_.size(), patches_mark = patches_.size();
  uint64_t seq_mark = next_seq_;
  WEFT_RETURN_IF_ERROR(Add(std::move(op)));  // refuses a collision, changing nothing
  if (existed) {
    Status s = Clear(id, kind);
    if (!s.ok()) {
      // Undo the clear and the creation: the transaction is as before the call.
      while (undo_.size() > undo_mark) {
        undo_.back()(*doc_);
        undo_.pop_back();
      }
      ops_.resize(ops_mark);
      patches_.resize(patches_mark);
      next_seq_ = seq_mark;
      return s;
    }
  }
  return id;
}

Status Transaction::Clear(ObjectId id, ObjectKind kind) {
  switch (kind) {
    case ObjectKind::kCounter: {
      auto v = doc_->ReadCounter(id);
      if (!v.ok()) return v.status();
      if (*v == 0) return Status::Ok();
      // Wrapping negation, as the counter's arithmetic wraps.
      return Increment(id, static_cast<int64_t>(0 - static_cast<uint64_t>(*v)));
    }
    case ObjectKind::kText:
    case ObjectKind::kList: {
      auto n = doc_->SequenceSize(id);
      if (!n.ok()) return n.status();
      return *n == 0 ? Status::Ok() : ListDelete(id, 0, *n);
    }
    case ObjectKind::kSet: {
      auto elements = doc_->ReadSet(id);
      if (!elements.ok()) return elements.status();
      for (Scalar& e : *elements) WEFT_RETURN_IF_ERROR(SetRemove(id, std::move(e)));
      return Status::Ok();
    }
    case ObjectKind::kMap: {
      auto keys = doc_->Keys(id);
      if (!keys.ok()) return keys.status();
      for (const std::string& k : *keys) WEFT_RETURN_IF_ERROR(Delete(id, k));
      return Status::Ok();
    }
    default: return Status::Ok();
  }
}

Status Transaction::Delete(ObjectId map, std::string_view key) {
  auto read = doc_->Get(map, key);
  if (!read.ok()) return read.status();
  Op op;
  op.type = Op::Type::kMapDelete;
  op.object = map;
  op.key = std::string(key);
  op.context = read->context;
  return Add(std::move(op));
}

Status Transaction::SetRegister(ObjectId reg, Scalar value) {
  const Document::Object* o = doc_->Find(reg);
  if (!o) return Status::NotFound("object " + reg.ToString());
  VersionVector ctx;
  if (auto* mv = std::get_if<MVRegister<Scalar>>(o))
    ctx = mv->Context();
  else if (auto* lww = std::get_if<LWWRegister<Scalar>>(o))
    ctx = lww->mv().Context();
  return SetRegisterAfterRead(reg, std::move(value), ctx);
}

Status Transaction::SetRegisterAfterRead(ObjectId reg, Scalar value,
                                         const VersionVector& read_context) {
  Op op;
  op.type = Op::Type::kRegisterSet;
  op.object = reg;
  op.context = read_context;
  op.scalar = std::move(value);
  return Add(std::move(op));
}

Status Transaction::Increment(ObjectId counter, int64_t delta) {
  Op op;
  op.type = Op::Type::kCounterAdd;
  op.object = counter;
  op.delta = delta;
  return Add(std::move(op));
}

Status Transaction::SetAdd(ObjectId set, Scalar element) {
  const Document::Object* o = doc_->Find(set);
  Op op;
  op.type = Op::Type::kSetAdd;
  op.object = set;
  if (auto* s = o ? std::get_if<ORSet<Scalar>>(o) : nullptr) op.context = s->ContextOf(element);
  op.scalar = std::move(element);
  return Add(std::move(op));
}

Status Transaction::SetRemove(ObjectId set, Scalar element) {
  const Document::Object* o = doc_->Find(set);
  Op op;
  op.type = Op::Type::kSetRemove;
  op.object = set;
  if (auto* s = o ? std::get_if<ORSet<Scalar>>(o) : nullptr) op.context = s->ContextOf(element);
  op.scalar = std::move(element);
  return Add(std::move(op));
}

std::optional<Change> Transaction::Prepare() const {
  if (!open_ || ops_.empty()) return std::nullopt;
  return doc_->BuildChange(*this, ops_);
}

Change Document::BuildChange(const Transaction& t, std::vector<Op> ops) const {
  Change c;
  c.author = t.author_;
  c.start_seq = version_.Get(t.author_) + 1;
  const VersionVector& deps = t.at_view_ ? t.at_deps_ : heads_;
  // Typing in a row: the only head is the author's own, and no dependency is left to copy.
  if (deps.size() != 1 || deps.entries()[0].first != t.author_) {
    c.deps = deps;
    c.deps.Set(t.author_, 0);
  }
  c.lamport = (t.at_view_ ? t.at_lamport_ : lamport_) + 1;
  c.time = clock_.last();
  c.ops = std::move(ops);
  return c;
}

std::optional<Change> Transaction::Commit() {
  if (!open_) return std::nullopt;
  open_ = false;
  Document& d = *doc_;
  d.in_transaction_ = false;
  undo_.clear();
  if (ops_.empty()) return std::nullopt;
  Change c = d.BuildChange(*this, std::move(ops_));
  ops_.clear();
  d.version_.Set(author_, c.end_seq());
  // Held changes that waited for this (a peer built on seqs of a copy of this document) are
  // applied by the next Receive.
  d.WakeHeld(author_, c.end_seq());
  if (at_view_) {
    // It follows `at` only: the heads outside it stay heads. It joined the texts' views.
    d.heads_.DropCovered(at_);
    d.heads_.Set(author_, c.end_seq());
    d.view_.at.Set(author_, c.end_seq());
    d.view_.current = d.view_.at == d.version_;
  } else {
    // It follows everything held.
    if (d.heads_.size() == 1 && d.heads_.entries()[0].first == author_) {
      d.heads_.Set(author_, c.end_seq());
    } else {
      d.heads_ = VersionVector{{author_, c.end_seq()}};
    }
  }
  d.lamport_ = std::max(d.lamport_, c.lamport);  // one made at an earlier version is lower
  if (d.options_.keep_history) d.history_.Append(c);
  return c;
}

void Transaction::Rollback() {
  if (!open_) return;
  open_ = false;
  for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) (*it)(*doc_);
  undo_.clear();
  ops_.clear();
  patches_.clear();
  doc_->in_transaction_ = false;
}

// ---------------------------------------------------------------------------------------------
// Document

Document::Document(NodeId self, DocumentOptions options)
    : self_(self), options_(options), clock_(options.max_drift_ms) {
  objects_.emplace(kRoot, MapObject{});
}
Document::Document(const Document&) = default;
Document& Document::operator=(const Document&) = default;
Document::Document(Document&&) noexcept = default;
Document& Document::operator=(Document&&) noexcept = default;
Document::~Document() = default;

Transaction Document::Begin(uint64_t now_ms) {
  // The transaction's hybrid time is fixed at its start: LWW writes in it are stamped with it.
  clock_.Now(now_ms);
  in_transaction_ = true;
  return Transaction(this, now_ms, self_, false);
}

Result<Transaction> Document::BeginAt(const VersionVector& at, uint64_t now_ms, NodeId author) {
  if (in_transaction_) return Status::InvalidArgument("a local transaction is open");
  if (!author.valid()) author = self_;
  if (at == version_) {
    clock_.Now(now_ms);
    in_transaction_ = true;
    return Transaction(this, now_ms, author, false);
  }
  if (!options_.keep_history) {
    return Status::InvalidArgument("edits at an earlier version need the document's history");
  }
  VersionVector frontier;
  uint64_t lamport = 0;
  WEFT_RETURN_IF_ERROR(ExamineVersion(at, &frontier, &lamport));
  if (at.Get(author) != version_.Get(author)) {
    return Status::InvalidArgument("the version lacks changes of the author " + author.ToHex() +
                                   " (an author's changes follow one another)");
  }
  MoveView(at);
  clock_.Now(now_ms);
  in_transaction_ = true;
  Transaction t(this, now_ms, author, true);
  t.at_ = at;
  t.at_deps_ = std::move(frontier);
  t.at_lamport_ = lamport;
  return t;
}

Status Document::ExamineVersion(const VersionVector& at, VersionVector* frontier,
                                uint64_t* lamport) const {
  if (!version_.Dominates(at)) {
    return Status::InvalidArgument("version " + at.ToString() + " is not held here");
  }
  if (!at.Dominates(history_base_)) {
    return Status(StatusCode::kHistoryTruncated,
                  "version " + at.ToString() + " is older than the history kept");
  }
  // Causally closed, in whole changes: the last change of each author in `at` ends there, and
  // everything it depends on is in `at` (the earlier ones were checked when it was applied).
  // One walk over `at` and the history index, both sorted by node.
  IndexHistory();
  const auto& entries = at.entries();
  std::vector<std::optional<Change>> last(entries.size());
  *lamport = 0;
  bool before_history = false;
  auto idx = view_.by_author.begin();
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& [node, seq] = entries[i];
    while (idx != view_.by_author.end() && idx->first < node) ++idx;
    if (seq <= history_base_.Get(node)) {
      before_history = true;
      continue;
    }
    if (idx != view_.by_author.end() && idx->first == node) {
      const auto& list = idx->second;
      auto c = std::lower_bound(list.begin(), list.end(), std::make_pair(seq, size_t{0}));
      if (c != list.end() && c->first == seq) last[i] = history_[c->second];
    }
    if (!last[i]) {
      return Status::InvalidArgument("version " + at.ToString() + " splits a change of " +
                                     node.ToHex());
    }
    if (at.FirstMissing(last[i]->deps)) {
      return Status::InvalidArgument("version " + at.ToString() + " lacks what change " +
                                     last[i]->id().ToString() + " depends on");
    }
    *lamport = std::max(*lamport, last[i]->lamport);
  }
  // Before the history kept, a change's time is unknown here, and at most the document's.
  if (before_history) *lamport = lamport_;
  // The frontier: the entries no other last change names as a dependency (the deps are
  // frontiers themselves, so an entry covered only further back stays; that is still correct).
  std::vector<bool> covered(entries.size(), false);
  for (size_t i = 0; i < entries.size(); ++i) {
    if (!last[i]) continue;
    for (const auto& [dep, dseq] : last[i]->deps.entries()) {
      if (dep == entries[i].first || dseq == 0) continue;
      auto it = std::lower_bound(entries.begin(), entries.end(), dep,
                                 [](const auto& e, NodeId n) { return e.first < n; });
      if (it != entries.end() && it->first == dep && it->second == dseq) {
        covered[static_cast<size_t>(it - entries.begin())] = true;
      }
    }
  }
  *frontier = VersionVector{};
  for (size_t i = 0; i < entries.size(); ++i) {
    if (!covered[i]) frontier->Set(entries[i].first, entries[i].second);
  }
  return Status::Ok();
}

void Document::IndexHistory() const {
  View& v = const_cast<View&>(view_);
  for (; v.indexed < history_.size(); ++v.indexed) {
    v.by_author[history_.author(v.indexed)].emplace_back(history_.end_seq(v.indexed), v.indexed);
  }
}

void Document::ActivateView() {
  // Every text and list: in the view with no delete counted, then every delete op kept, then one
  // for each item deleted before the history kept.
  auto each = [&](auto&& fn) {
    for (auto& [id, o] : objects_) {
      if (auto* t = std::get_if<Text>(&o)) fn(*t);
      if (auto* l = std::get_if<List<Value>>(&o)) fn(*l);
    }
  };
  each([](auto& seq) { seq.ResetView(false); });
  for (const Change& c : history_) {  // each decoded as it is read
    for (const Op& op : c.ops) {
      if (op.type != Op::Type::kSeqDelete) continue;
      Object* o = Find(op.object);
      if (auto* t = o ? std::get_if<Text>(o) : nullptr) t->AddViewDeletes(DeleteOp{op.ranges}, 1);
      if (auto* l = o ? std::get_if<List<Value>>(o) : nullptr) {
        l->AddViewDeletes(DeleteOp{op.ranges}, 1);
      }
    }
  }
  each([](auto& seq) { seq.ResetView(true); });
  view_.active = true;
  view_.current = true;
}

void Document::MoveView(const VersionVector& at) {
  if (!view_.active) ActivateView();
  if (view_.current) {
    view_.current = false;
    view_.at = version_;
  }
  IndexHistory();
  auto move = [&](const VersionVector& from, const VersionVector& to, bool in) {
    for (const DotRange& r : from.Subtract(to)) {
      const auto& list = view_.by_author[r.node];
      auto c = std::lower_bound(list.begin(), list.end(), std::make_pair(r.first, size_t{0}));
      for (; c != list.end() && history_.start_seq(c->second) <= r.last; ++c) {
        const Change ch = history_[c->second];
        uint64_t seq = ch.start_seq;
        for (const Op& op : ch.ops) {
          uint64_t span = OpSpan(op);
          if (op.type == Op::Type::kTextInsert || op.type == Op::Type::kListInsert ||
              op.type == Op::Type::kSeqDelete) {
            Object* o = Find(op.object);
            auto visit = [&](auto& s) {
              if (op.type == Op::Type::kSeqDelete) {
                s.AddViewDeletes(DeleteOp{op.ranges}, in ? 1 : -1);
              } else {
                s.SetInView(Dot{ch.author, seq}, span, in);
              }
            };
            if (auto* t = o ? std::get_if<Text>(o) : nullptr) visit(*t);
            if (auto* l = o ? std::get_if<List<Value>>(o) : nullptr) visit(*l);
          }
          seq += span;
        }
      }
    }
  };
  move(view_.at, at, false);  // retreat what `at` lacks
  move(at, view_.at, true);   // advance what it adds
  view_.at = at;
  view_.current = at == version_;
}

Document::Object* Document::Find(ObjectId id) {
  auto it = objects_.find(id);
  return it == objects_.end() ? nullptr : &it->second;
}
const Document::Object* Document::Find(ObjectId id) const {
  auto it = objects_.find(id);
  return it == objects_.end() ? nullptr : &it->second;
}

bool Document::Exists(ObjectId id) const {
  return objects_.count(id) != 0;
}

Result<ObjectKind> Document::KindOf(ObjectId id) const {
  const Object* o = Find(id);
  if (!o) return Status::NotFound("object " + id.ToString());
  return KindOfObject(*o);
}

Status Document::ValidateOp(const Op& op, const Dot& dot, const Object* target) const {
  auto known = [&](const Dot& d) {
    return version_.Contains(d) || (d.node == dot.node && d.seq < dot.seq);
  };
  for (const auto& [node, seq] : op.context.entries()) {
    if (!known({node, seq})) {
      return Status::Corruption("op " + dot.ToString() + " names unknown dot " +
                                Dot{node, seq}.ToString());
    }
  }
  if (op.key.size() > kMaxKeyBytes) return Status::InvalidArgument("key longer than 64 KiB");

  ObjectKind want;
  switch (op.type) {
    case Op::Type::kMapSet:
    case Op::Type::kMapDelete: want = ObjectKind::kMap; break;
    case Op::Type::kRegisterSet: want = ObjectKind::kRegister; break;
    case Op::Type::kCounterAdd: want = ObjectKind::kCounter; break;
    case Op::Type::kTextInsert: want = ObjectKind::kText; break;
    case Op::Type::kListInsert: want = ObjectKind::kList; break;
    case Op::Type::kSeqDelete: want = ObjectKind::kText; break;  // or a list
    default: want = ObjectKind::kSet; break;
  }
  std::optional<ObjectKind> have;
  if (target) have = KindOfObject(*target);
  if (have) {
    bool register_ok = want == ObjectKind::kRegister &&
                       (*have == ObjectKind::kRegister || *have == ObjectKind::kLwwRegister);
    bool delete_ok = op.type == Op::Type::kSeqDelete && *have == ObjectKind::kList;
    if (*have != want && !register_ok && !delete_ok) {
      return Status::TypeMismatch(KindError(op.object, want, *have));
    }
  } else if (!IsNamedObject(op.object) && !known(op.object)) {
    // Not here and never seen: the op names an object from a change we do not have. (A named
    // container absent here went with an ancestor: the op is dropped, as on a removed object.)
    return Status::Corruption("op " + dot.ToString() + " targets unknown object " +
                              op.object.ToString());
  }  // else the object existed and was deleted: the op will be dropped.
  if (op.named) {
    if (op.type != Op::Type::kMapSet || !op.new_object || !IsMergeableKind(*op.new_object)) {
      return Status::Corruption("op " + dot.ToString() + ": a named creation of no container");
    }
    // A hash collision: another origin holds the id. Refused (the whole change with it), so
    // that two unrelated containers never merge.
    NamedOrigin origin{op.object, op.key, *op.new_object};
    ObjectId id = NamedId(op.object, op.key, *op.new_object);
    auto held = named_.find(id);
    if (target && held != named_.end() && !(held->second == origin)) {
      return Status::InvalidArgument("named object " + id.ToString() + " for the " +
                                     OriginString(origin) + " is held by the " +
                                     OriginString(held->second) + " (a hash collision)");
    }
  }
  return Status::Ok();
}

Status Document::ApplyOpChecked(const Op& op, const Dot& dot, const HlcTimestamp& time,
                                std::vector<UndoFn>* undo, std::vector<Patch>* patches,
                                TextTarget* text) {
  // Access ops were checked and added by CheckAccess, before the change's other ops. A sealed op
  // takes its seqs and changes nothing.
  if (op.type == Op::Type::kAccess || op.type == Op::Type::kSealed) return Status::Ok();
  Object* target;
  if (text && (op.type == Op::Type::kTextInsert || op.type == Op::Type::kSeqDelete)) {
    if (!text->object || text->id != op.object) {
      target = Find(op.object);
      text->id = op.object;
      text->object = target && std::holds_alternative<Text>(*target) ? target : nullptr;
    } else {
      target = text->object;
    }
  } else {
    if (text) text->object = nullptr;
    target = Find(op.object);
  }
  WEFT_RETURN_IF_ERROR(ValidateOp(op, dot, target));
  if (!target) return Status::Ok();  // removed concurrently: nothing left to change
  if (op.type == Op::Type::kTextInsert || op.type == Op::Type::kListInsert ||
      op.type == Op::Type::kSeqDelete) {
    // The sequence validates as it applies and changes nothing on error.
    return ApplySequenceOp(op, dot, target, undo, patches);
  }
  if (!undo) {
    ApplyOp(op, dot, time, nullptr, patches);
    return Status::Ok();
  }
  // Record how to undo the op: the part of the target it touches, as it was.
  ObjectId obj = op.object;
  if (auto* map = std::get_if<MapObject>(target)) {
    auto it = map->entries.find(op.key);
    std::optional<MVSlot<Value>> before;
    if (it != map->entries.end()) before = it->second;
    auto removed = std::make_shared<Removed>();
    VersionVector seen = map->seen;
    // The object the op creates, when it is new (a named container may exist already).
    std::optional<ObjectId> created;
    if (op.type == Op::Type::kMapSet && op.new_object) {
      ObjectId id = op.named ? NamedId(op.object, op.key, *op.new_object) : dot;
      if (!Exists(id)) created = id;
    }
    ApplyOp(op, dot, time, removed.get(), patches);
    if (created && !Exists(*created)) created.reset();  // a duplicate op created nothing
    undo->push_back(Undo([obj, key = op.key, before = std::move(before), seen = std::move(seen),
                          removed, created](Document& doc) {
      if (created) {
        doc.objects_.erase(*created);
        doc.named_.erase(*created);
      }
      doc.Reinsert(*removed);
      auto& m = std::get<MapObject>(*doc.Find(obj));
      if (before) {
        m.entries[key] = *before;
      } else {
        m.entries.erase(key);
      }
      m.seen = seen;
    }));
  } else if (auto* set = std::get_if<ORSet<Scalar>>(target)) {
    auto it = set->entries().find(op.scalar);
    std::optional<MVSlot<Present>> before;
    if (it != set->entries().end()) before = it->second;
    VersionVector seen = set->seen();
    ApplyOp(op, dot, time, nullptr, patches);
    undo->push_back(Undo(
        [obj, elem = op.scalar, before = std::move(before), seen = std::move(seen)](Document& doc) {
          std::get<ORSet<Scalar>>(*doc.Find(obj)).RestoreEntry(elem, before, seen);
        }));
  } else {
    // Registers and counters are small: keep a copy of the whole object.
    Object before = *target;
    ApplyOp(op, dot, time, nullptr, patches);
    undo->push_back(
        Undo([obj, before = std::move(before)](Document& doc) { *doc.Find(obj) = before; }));
  }
  return Status::Ok();
}

void Document::RemoveTree(ObjectId id, Removed* removed) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return;
  std::vector<ObjectId> children;
  if (auto* m = std::get_if<MapObject>(&it->second)) {
    for (const auto& [k, slot] : m->entries) {
      for (const auto& s : slot.siblings()) {
        if (s.value.is_object() && !IsNamedObject(s.value.object().id)) {
          children.push_back(s.value.object().id);
        }
      }
    }
    // The named containers created in this map, referenced or hidden.
    for (const auto& [nid, origin] : named_) {
      if (origin.parent == id) children.push_back(nid);
    }
  } else if (auto* l = std::get_if<List<Value>>(&it->second)) {
    for (const Value& v : l->Values()) {
      if (v.is_object()) children.push_back(v.object().id);
    }
  }
  std::optional<NamedOrigin> origin;
  if (auto n = named_.find(id); n != named_.end()) {
    origin = std::move(n->second);
    named_.erase(n);
  }
  if (removed) removed->push_back({id, std::move(it->second), std::move(origin)});
  objects_.erase(it);
  for (ObjectId c : children) RemoveTree(c, removed);
}

void Document::Reinsert(Removed& removed) {
  for (RemovedObject& r : removed) {
    objects_.emplace(r.id, std::move(r.object));
    if (r.origin) named_.emplace(r.id, std::move(*r.origin));
  }
}

void Document::ApplyOp(const Op& op, const Dot& dot, const HlcTimestamp& time, Removed* removed,
                       std::vector<Patch>* patches) {
  Object* target = Find(op.object);
  if (!target) return;  // deleted concurrently: the op has nothing left to change
  switch (op.type) {
    case Op::Type::kTextInsert:
    case Op::Type::kListInsert:
    case Op::Type::kSeqDelete: (void)ApplySequenceOp(op, dot, target, nullptr, patches); return;
    case Op::Type::kAccess: return;  // the access list holds it
    case Op::Type::kSealed: return;  // opaque content: takes its seqs, changes nothing
    case Op::Type::kMapSet:
    case Op::Type::kMapDelete: {
      auto& map = std::get<MapObject>(*target);
      if (map.seen.Get(dot.node) >= dot.seq) return;
      map.seen.Set(dot.node, dot.seq);
      auto it = map.entries.find(op.key);
      if (it == map.entries.end()) {
        if (op.type == Op::Type::kMapDelete) return;
        it = map.entries.emplace(op.key, MVSlot<Value>()).first;
      }
      // The objects the op replaces go with their subtrees, except named containers: they stay
      // (hidden when no value references them), so that a creation of the same container
      // concurrent with this op finds what the others wrote into it in every order.
      std::vector<ObjectId> dropped;
      for (const auto& s : it->second.siblings()) {
        if (op.context.Contains(s.clock.dot) && s.value.is_object() &&
            !IsNamedObject(s.value.object().id)) {
          dropped.push_back(s.value.object().id);
        }
      }
      std::optional<Value> v;
      ObjectId created = dot;
      if (op.type == Op::Type::kMapSet) {
        if (op.new_object) {
          if (op.named) created = NamedId(op.object, op.key, *op.new_object);
          v = Value(ObjectRef{created, *op.new_object});
        } else {
          v = Value(op.scalar);
        }
      }
      it->second.Write(dot, op.context, std::move(v));
      size_t siblings = DistinctValues(it->second);
      if (it->second.empty()) map.entries.erase(it);
      if (patches) {
        Patch p;
        p.type = Patch::Type::kMapKey;
        p.object = op.object;
        p.key = op.key;
        p.siblings = siblings;
        patches->push_back(std::move(p));
      }
      // `map` may not survive RemoveTree's erasures of other entries of objects_ (std::map keeps
      // references stable, so it does), but keep the order: write first, then drop subtrees.
      for (ObjectId c : dropped) RemoveTree(c, removed);
      if (op.type == Op::Type::kMapSet && op.new_object) {
        // A named container created before (here or by a concurrent op) is joined, not remade.
        if (objects_.emplace(created, MakeObject(*op.new_object)).second && op.named) {
          named_.emplace(created, NamedOrigin{op.object, op.key, *op.new_object});
        }
      }
      return;
    }
    case Op::Type::kRegisterSet: {
      size_t siblings;
      if (auto* mv = std::get_if<MVRegister<Scalar>>(target)) {
        if (!mv->Apply({dot, op.context, op.scalar})) return;
        siblings = mv->Siblings().size();
      } else {
        auto& lww = std::get<LWWRegister<Scalar>>(*target);
        if (!lww.Apply({dot, op.context, Stamped<Scalar>{op.scalar, time}})) return;
        siblings = lww.mv().Siblings().size();
      }
      if (patches) {
        Patch p;
        p.type = Patch::Type::kRegister;
        p.object = op.object;
        p.siblings = siblings;
        patches->push_back(std::move(p));
      }
      return;
    }
    case Op::Type::kCounterAdd:
      if (std::get<Counter>(*target).Apply({dot, op.delta}) && patches && op.delta != 0) {
        Patch p;
        p.type = Patch::Type::kCounter;
        p.object = op.object;
        p.delta = op.delta;
        patches->push_back(std::move(p));
      }
      return;
    case Op::Type::kSetAdd:
    case Op::Type::kSetRemove: {
      auto& set = std::get<ORSet<Scalar>>(*target);
      bool before = set.Contains(op.scalar);
      set.Apply({dot, op.scalar, op.context, op.type == Op::Type::kSetAdd});
      bool after = set.Contains(op.scalar);
      if (patches && before != after) {
        Patch p;
        p.type = after ? Patch::Type::kSetAdd : Patch::Type::kSetRemove;
        p.object = op.object;
        p.element = op.scalar;
        patches->push_back(std::move(p));
      }
      return;
    }
  }
}

namespace {

// Patches for deleted ranges: positions in the state after the delete, ascending, so that a view
// applying them one after the other to its old state ends in the new one.
void DeletePatches(const SequenceCore& core, ObjectId obj, const std::vector<DotRange>& newly,
                   std::vector<Patch>* patches) {
  std::vector<std::pair<size_t, size_t>> runs;  // (index, length)
  for (const DotRange& r : newly) {
    size_t first = *core.IndexOf({r.node, r.first});
    size_t last = *core.IndexOf({r.node, r.last});
    if (first == last) {
      runs.emplace_back(first, static_cast<size_t>(r.last - r.first + 1));
      continue;
    }
    // Visible items of others sit between these ids: one run per position.
    for (uint64_t seq = r.first; seq <= r.last; ++seq) {
      size_t at = *core.IndexOf({r.node, seq});
      if (!runs.empty() && runs.back().first == at)
        ++runs.back().second;
      else
        runs.emplace_back(at, 1);
    }
  }
  std::stable_sort(runs.begin(), runs.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  size_t start = patches->size();
  for (const auto& [at, len] : runs) {
    if (patches->size() > start && patches->back().index == at) {
      patches->back().length += len;
      continue;
    }
    Patch p;
    p.type = Patch::Type::kDelete;
    p.object = obj;
    p.index = at;
    p.length = len;
    patches->push_back(std::move(p));
  }
}

// Queues a text delete (Text::DeferDelete), with its undo; lists `obj` in *unsettled when it is
// the text's first queued delete. Kept out of ApplySequenceOp, whose other paths are hot too.
Status DeferTextDelete(Text* t, ObjectId obj, const std::vector<DotRange>& ranges,
                       bool check_present, std::vector<UndoEntry>* undo,
                       std::vector<ObjectId>* unsettled) {
  size_t mark = 0;
  WEFT_RETURN_IF_ERROR(t->DeferDelete(ranges, &mark, check_present));
  if (mark == 0) unsettled->push_back(obj);
  if (undo) {
    UndoEntry u;
    u.object = obj;
    u.is_delete = true;
    u.deferred = true;
    u.count = mark;
    undo->push_back(std::move(u));
  }
  return Status::Ok();
}

Patch InsertPatch(ObjectId obj, size_t index, size_t length, std::string text) {
  Patch p;
  p.type = Patch::Type::kInsert;
  p.object = obj;
  p.index = index;
  p.length = length;
  p.text = std::move(text);
  return p;
}

}  // namespace

Status Document::ApplySequenceOp(const Op& op, const Dot& dot, Object* target,
                                 std::vector<UndoFn>* undo, std::vector<Patch>* patches) {
  ObjectId obj = op.object;
  // Every item an op names was made by a change it depends on: one missing is corruption.
  auto bad = [&](const Status& s) {
    return Status::Corruption("op " + dot.ToString() + ": " + s.message());
  };
  if (op.type == Op::Type::kTextInsert) {
    Text& t = std::get<Text>(*target);
    uint64_t n = 0;
    Status s = t.ApplyInsert(dot, op.left, op.right, op.text, InView(), &n);
    if (!s.ok()) return bad(s);
    if (n == 0) return Status::Ok();  // already here
    if (undo) {
      undo->push_back(InsertUndo(obj, dot, n));
    }
    if (patches) patches->push_back(InsertPatch(obj, *t.IndexOf(dot), n, op.text));
    return Status::Ok();
  }
  if (op.type == Op::Type::kListInsert) {
    auto& l = std::get<List<Value>>(*target);
    ListInsertOp<Value> ins{dot, op.left, op.right, {}};
    std::vector<ObjectId> created;
    for (size_t i = 0; i < op.items.size(); ++i) {
      const ListItem& item = op.items[i];
      if (item.new_object) {
        Dot id{dot.node, dot.seq + i};
        ins.values.push_back(Value(ObjectRef{id, *item.new_object}));
        created.push_back(id);
      } else {
        ins.values.push_back(Value(item.scalar));
      }
    }
    size_t before = l.size();
    Status s = l.Apply(ins, InView());
    if (!s.ok()) return bad(s);
    uint64_t n = l.size() - before;
    if (n == 0) return Status::Ok();  // already here
    for (size_t i = 0; i < created.size(); ++i) {
      objects_.emplace(created[i], MakeObject(*op.items[created[i].seq - dot.seq].new_object));
    }
    if (undo) {
      undo->push_back(Undo([obj, dot, n, created](Document& d) {
        for (ObjectId c : created) d.objects_.erase(c);
        std::get<List<Value>>(*d.Find(obj)).UndoInsert(dot, n);
      }));
    }
    if (patches) patches->push_back(InsertPatch(obj, *l.IndexOf(dot), n, {}));
    return Status::Ok();
  }
  // A delete from a text or a list.
  // Deletes are counted in the views once BeginAt made them active (ActivateView).
  const bool in_view = InView() && view_.active;
  if (auto* t = std::get_if<Text>(target); t && batching_ && !patches && !in_view) {
    // Nothing to report: the delete is queued in the text and marked with the others of the
    // batch (SettleSequences), in one pass when they are many.
    // In a batch on a new document, whether the items are present is checked when the deletes
    // settle (ApplyChanges).
    Status s = DeferTextDelete(t, obj, op.ranges, !lazy_deletes_, undo, &unsettled_);
    return s.ok() ? s : bad(s);
  }
  std::vector<DotRange> newly;
  newly.reserve(op.ranges.size());
  std::shared_ptr<Removed> removed;  // made only when the delete drops nested objects
  if (auto* t = std::get_if<Text>(target)) {
    Status s = t->ApplyDelete(op.ranges, &newly, in_view);
    if (!s.ok()) return bad(s);
    // A delete that found only tombstones still counted in the view: its undo takes that back.
    if (newly.empty() && !in_view) return Status::Ok();
    if (patches) DeletePatches(t->core(), obj, newly, patches);
  } else {
    auto& l = std::get<List<Value>>(*target);
    // The nested objects held by the items about to go.
    std::vector<ObjectId> dropped;
    for (const DotRange& r : op.ranges) {
      // Only seqs that can name an item: those this document holds of the author, and those of
      // this change before this op (a range from a hostile peer may reach to 2^64).
      uint64_t held = version_.Get(r.node);
      if (r.node == dot.node && dot.seq > 0) held = std::max(held, dot.seq - 1);
      const uint64_t last = std::min(r.last, held);
      for (uint64_t seq = r.first; seq <= last; ++seq) {
        bool visible = false;
        auto at = l.core().IndexOf({r.node, seq}, &visible);
        if (!at.ok() || !visible) continue;
        auto v = l.At(*at);
        if (v.ok() && v->is_object()) dropped.push_back(v->object().id);
      }
    }
    Status s = l.ApplyDelete(op.ranges, &newly, in_view);
    if (!s.ok()) return bad(s);
    if (newly.empty() && !in_view) return Status::Ok();
    if (patches) DeletePatches(l.core(), obj, newly, patches);
    if (!dropped.empty() && undo) removed = std::make_shared<Removed>();
    for (ObjectId c : dropped) RemoveTree(c, undo ? removed.get() : nullptr);
  }
  if (undo && !removed) {
    undo->push_back(DeleteUndo(obj, std::move(newly), in_view ? &op.ranges : nullptr));
  } else if (undo) {
    std::optional<DeleteOp> view;
    if (in_view) view = DeleteOp{op.ranges};
    undo->push_back(Undo([obj, newly = DeleteOp{newly}, view, removed](Document& d) {
      d.Reinsert(*removed);
      Object* o = d.Find(obj);
      const DeleteOp* v = view ? &*view : nullptr;
      if (auto* t = std::get_if<Text>(o))
        t->UndoDelete(newly, v);
      else
        std::get<List<Value>>(*o).UndoDelete(newly, v);
    }));
  }
  return Status::Ok();
}

Status Transaction::AddSequenceInsert() {
  // The op is built in place (no move of it): the last of ops_, taken back on error.
  Status s = PlaceSequenceInsert(ops_.back());
  if (!s.ok()) ops_.pop_back();
  return s;
}

Status Transaction::PlaceSequenceInsert(Op& op) {
  // Local inserts go through the sequence's own LocalInsert, which picks the origins.
  if (!open_) return Status::InvalidArgument("transaction is closed");
  Document& d = *doc_;
  Document::Object* target = d.Find(op.object);
  if (!target) return Status::NotFound("object " + op.object.ToString());
  WEFT_RETURN_IF_ERROR(CheckLocalWrite());
  Dot dot{author_, next_seq_};
  ObjectId obj = op.object;
  uint64_t n;
  size_t pos = op.left.seq;  // the caller passes the index in left.seq
  if (op.type == Op::Type::kTextInsert) {
    auto* t = std::get_if<Text>(target);
    if (!t) return Status::TypeMismatch(KindError(obj, ObjectKind::kText, KindOfObject(*target)));
    WEFT_RETURN_IF_ERROR(t->LocalInsert(pos, op.text, dot, TextMode(), &op.left, &op.right));
    n = OpSpan(op);
    undo_.push_back(InsertUndo(obj, dot, n));
    // At an earlier version, the patch says where the text went in the current state.
    patches_.push_back(InsertPatch(obj, at_view_ ? *t->IndexOf(dot) : pos, n, op.text));
  } else {
    WEFT_RETURN_IF_ERROR(CheckCurrent());
    auto* l = std::get_if<List<Value>>(target);
    if (!l) return Status::TypeMismatch(KindError(obj, ObjectKind::kList, KindOfObject(*target)));
    std::vector<Value> values;
    std::vector<std::pair<ObjectId, ObjectKind>> created;
    for (size_t i = 0; i < op.items.size(); ++i) {
      if (op.items[i].new_object) {
        Dot id{dot.node, dot.seq + i};
        values.push_back(Value(ObjectRef{id, *op.items[i].new_object}));
        created.emplace_back(id, *op.items[i].new_object);
      } else {
        values.push_back(Value(op.items[i].scalar));
      }
    }
    auto ins = l->LocalInsert(pos, std::move(values), dot, d.InView());
    if (!ins.ok()) return ins.status();
    op.left = ins->left;
    op.right = ins->right;
    n = op.items.size();
    std::vector<ObjectId> ids;
    for (const auto& [id, kind] : created) {
      d.objects_.emplace(id, MakeObject(kind));
      ids.push_back(id);
    }
    undo_.push_back(Undo([obj, dot, n, ids](Document& doc) {
      for (ObjectId c : ids) doc.objects_.erase(c);
      std::get<List<Value>>(*doc.Find(obj)).UndoInsert(dot, n);
    }));
    patches_.push_back(InsertPatch(obj, pos, n, {}));
  }
  next_seq_ += n;
  return Status::Ok();
}

Status Transaction::TextInsert(ObjectId text, size_t pos, std::string_view utf8) {
  WEFT_RETURN_IF_ERROR(ValidateUtf8(utf8));
  if (utf8.empty()) return Status::InvalidArgument("empty text insert");
  Op& op = ops_.emplace_back();
  op.type = Op::Type::kTextInsert;
  op.object = text;
  op.left = Dot{NodeId{}, pos};
  op.text = std::string(utf8);
  return AddSequenceInsert();
}

Status Transaction::ListInsert(ObjectId list, size_t pos, std::vector<Scalar> values) {
  if (values.empty()) return Status::InvalidArgument("empty list insert");
  Op& op = ops_.emplace_back();
  op.type = Op::Type::kListInsert;
  op.object = list;
  op.left = Dot{NodeId{}, pos};
  for (Scalar& v : values) op.items.push_back(ListItem{std::move(v), std::nullopt});
  return AddSequenceInsert();
}

Result<ObjectId> Transaction::ListInsertObject(ObjectId list, size_t pos, ObjectKind kind) {
  Op& op = ops_.emplace_back();
  op.type = Op::Type::kListInsert;
  op.object = list;
  op.left = Dot{NodeId{}, pos};
  op.items.push_back(ListItem{Scalar(), kind});
  Dot id{author_, next_seq_};
  WEFT_RETURN_IF_ERROR(AddSequenceInsert());
  return id;
}

namespace {
Status SequenceDelete(Document::Object* target, ObjectId obj, size_t pos, size_t len, ViewMode mode,
                      DeleteOp* out, DeleteOp* newly, std::vector<ObjectId>* dropped) {
  if (auto* t = std::get_if<Text>(target)) {
    auto del = t->LocalDelete(pos, len, mode, &newly->ranges);
    if (!del.ok()) return del.status();
    *out = std::move(*del);
    return Status::Ok();
  }
  auto* l = std::get_if<List<Value>>(target);
  if (!l) return Status::TypeMismatch(KindError(obj, ObjectKind::kList, KindOfObject(*target)));
  auto items = l->Slice(pos, len);
  if (!items.ok()) return items.status();
  for (const Value& v : *items) {
    if (v.is_object()) dropped->push_back(v.object().id);
  }
  auto del = l->LocalDelete(pos, len, mode == ViewMode::kJoin);
  if (!del.ok()) return del.status();
  *out = std::move(*del);
  *newly = *out;
  return Status::Ok();
}
}  // namespace

Status Transaction::TextDelete(ObjectId text, size_t pos, size_t len) {
  const Document::Object* o = doc_->Find(text);
  if (!o) return Status::NotFound("object " + text.ToString());
  if (!std::holds_alternative<Text>(*o)) {
    return Status::TypeMismatch(KindError(text, ObjectKind::kText, KindOfObject(*o)));
  }
  return ListDelete(text, pos, len);
}

Status Transaction::ListDelete(ObjectId seq, size_t pos, size_t len) {
  if (!open_) return Status::InvalidArgument("transaction is closed");
  Document& d = *doc_;
  Document::Object* target = d.Find(seq);
  if (!target) return Status::NotFound("object " + seq.ToString());
  if (!std::holds_alternative<Text>(*target)) WEFT_RETURN_IF_ERROR(CheckCurrent());
  WEFT_RETURN_IF_ERROR(CheckLocalWrite());
  if (len == 0) {
    size_t size =
        std::holds_alternative<Text>(*target)
            ? (at_view_ ? std::get<Text>(*target).view_size() : std::get<Text>(*target).size())
        : std::holds_alternative<List<Value>>(*target) ? std::get<List<Value>>(*target).size()
                                                       : 0;
    if (pos > size) return Status::OutOfRange("position past the end");
    return Status::Ok();
  }
  DeleteOp del, newly;
  std::vector<ObjectId> dropped;
  ViewMode mode = TextMode();
  WEFT_RETURN_IF_ERROR(SequenceDelete(target, seq, pos, len, mode, &del, &newly, &dropped));
  if (at_view_ && !newly.ranges.empty()) {
    // The patches say which items left the current state, and where.
    DeletePatches(std::get<Text>(*target).core(), seq, newly.ranges, &patches_);
  }
  const std::vector<DotRange>* view = mode != ViewMode::kOutside ? &del.ranges : nullptr;
  if (dropped.empty()) {
    undo_.push_back(DeleteUndo(seq, std::move(newly.ranges), view));
  } else {
    auto removed = std::make_shared<Document::Removed>();
    for (ObjectId c : dropped) d.RemoveTree(c, removed.get());
    std::optional<DeleteOp> in_view;
    if (view) in_view = del;
    undo_.push_back(Undo([seq, newly, in_view, removed](Document& doc) {
      doc.Reinsert(*removed);
      Document::Object* o = doc.Find(seq);
      const DeleteOp* v = in_view ? &*in_view : nullptr;
      if (auto* t = std::get_if<Text>(o))
        t->UndoDelete(newly, v);
      else
        std::get<List<Value>>(*o).UndoDelete(newly, v);
    }));
  }
  if (!at_view_) {
    Patch p;
    p.type = Patch::Type::kDelete;
    p.object = seq;
    p.index = pos;
    p.length = len;
    patches_.push_back(std::move(p));
  }
  Op& op = ops_.emplace_back();
  op.type = Op::Type::kSeqDelete;
  op.object = seq;
  op.ranges = std::move(del.ranges);
  next_seq_ += 1;
  return Status::Ok();
}

Result<std::string> Document::ReadText(ObjectId id) const {
  auto t = TextObject(id);
  if (!t.ok()) return t.status();
  return (*t)->ToString();
}

Result<const Text*> Document::TextObject(ObjectId id) const {
  const Object* o = Find(id);
  if (!o) return Status::NotFound("object " + id.ToString());
  auto* t = std::get_if<Text>(o);
  if (!t) return Status::TypeMismatch(KindError(id, ObjectKind::kText, KindOfObject(*o)));
  return t;
}

Result<std::vector<Value>> Document::ReadList(ObjectId id) const {
  const Object* o = Find(id);
  if (!o) return Status::NotFound("object " + id.ToString());
  auto* l = std::get_if<List<Value>>(o);
  if (!l) return Status::TypeMismatch(KindError(id, ObjectKind::kList, KindOfObject(*o)));
  return l->Values();
}

namespace {
const SequenceCore* CoreOf(const Document::Object* o) {
  if (auto* t = std::get_if<Text>(o)) return &t->core();
  if (auto* l = std::get_if<List<Value>>(o)) return &l->core();
  return nullptr;
}
}  // namespace

Result<size_t> Document::SequenceSize(ObjectId id) const {
  const Object* o = Find(id);
  if (!o) return Status::NotFound("object " + id.ToString());
  const SequenceCore* core = CoreOf(o);
  if (!core) return Status::TypeMismatch("object " + id.ToString() + " is not a text or list");
  return core->size();
}

Result<Anchor> Document::AnchorAt(ObjectId id, size_t index, Bias bias) const {
  const Object* o = Find(id);
  if (!o) return Status::NotFound("object " + id.ToString());
  const SequenceCore* core = CoreOf(o);
  if (!core) return Status::TypeMismatch("object " + id.ToString() + " is not a text or list");
  return core->AnchorAt(index, bias);
}

Result<size_t> Document::IndexOfAnchor(ObjectId id, const Anchor& anchor) const {
  const Object* o = Find(id);
  if (!o) return Status::NotFound("object " + id.ToString());
  const SequenceCore* core = CoreOf(o);
  if (!core) return Status::TypeMismatch("object " + id.ToString() + " is not a text or list");
  return core->IndexOfAnchor(anchor);
}

namespace {

// Where a remote change stands against a document's version, in the order CheckChange reports it.
enum class Verdict : uint8_t {
  kReady,
  kDuplicate,
  // Invalid.
  kNullAuthor,
  kNoOps,
  kBadStartSeq,
  kOverlap,
  kOwnAuthorDep,
  // Waiting: for the author's seqs before the change, or for another node's.
  kAfterGap,
  kMissingDeps,
};

// Builds no string: this runs for every held change each time one of its dependencies arrives.
Verdict Judge(const Change& c, const VersionVector& version, Dot* waits_for) {
  if (!c.author.valid()) return Verdict::kNullAuthor;
  if (c.ops.empty()) return Verdict::kNoOps;
  if (c.start_seq == 0) return Verdict::kBadStartSeq;
  uint64_t have = version.Get(c.author);
  // The span reads every op and counts the code points of every text: only a change that may
  // overlap what is held, or reach past the last seq, needs it (no change in memory spans 2^63
  // seqs), so a change that comes in order is not read an extra time.
  const bool need_span = c.start_seq <= have || c.start_seq > (uint64_t{1} << 63);
  const uint64_t span = need_span ? c.span() : 0;
  if (need_span && c.start_seq > UINT64_MAX - span) return Verdict::kBadStartSeq;
  if (c.start_seq <= have) {
    return c.start_seq + span - 1 <= have ? Verdict::kDuplicate : Verdict::kOverlap;
  }
  if (c.start_seq > have + 1) {
    *waits_for = Dot{c.author, c.start_seq - 1};
    return Verdict::kAfterGap;
  }
  if (c.deps.Get(c.author) != 0) return Verdict::kOwnAuthorDep;
  if (auto missing = version.FirstMissing(c.deps)) {
    *waits_for = *missing;
    return Verdict::kMissingDeps;
  }
  return Verdict::kReady;
}

}  // namespace

ReadyCheck Document::CheckReady(const Change& c) const {
  ReadyCheck r;
  switch (Judge(c, version_, &r.waits_for)) {
    case Verdict::kReady: r.readiness = Readiness::kReady; break;
    case Verdict::kDuplicate: r.readiness = Readiness::kDuplicate; break;
    case Verdict::kAfterGap:
    case Verdict::kMissingDeps: r.readiness = Readiness::kWaiting; break;
    case Verdict::kNullAuthor:
    case Verdict::kNoOps:
    case Verdict::kBadStartSeq:
    case Verdict::kOverlap:
    case Verdict::kOwnAuthorDep: r.readiness = Readiness::kInvalid; break;
  }
  return r;
}

Status Document::CheckChange(const Change& c, const ApplyOptions& options, bool* duplicate) const {
  Dot need;
  switch (Judge(c, version_, &need)) {
    case Verdict::kReady: break;
    case Verdict::kDuplicate:
      if (duplicate) *duplicate = true;
      return Status::Ok();
    case Verdict::kNullAuthor: return Status::Corruption("change author is the null node");
    case Verdict::kNoOps: return Status::Corruption("change has no ops");
    case Verdict::kBadStartSeq: return Status::Corruption("change has a bad start seq");
    case Verdict::kOverlap:
      return Status::Corruption("change " + c.id().ToString() + " overlaps changes already held");
    case Verdict::kOwnAuthorDep: return Status::Corruption("change depends on its own author");
    case Verdict::kAfterGap:
      return Status::MissingDependency("change " + c.id().ToString() + " needs " +
                                       c.author.ToHex() + ":" +
                                       std::to_string(version_.Get(c.author) + 1) + " first");
    case Verdict::kMissingDeps:
      return Status::MissingDependency("change " + c.id().ToString() + " depends on " +
                                       c.deps.ToString() + "; this document has " +
                                       version_.ToString());
  }
  // Causality cannot be forged through the Lamport time either: a change's is one past the
  // greatest of the changes its author held, all of which this document holds now (they are
  // its dependencies), so it is at most one past this document's. An inflated one would let
  // its author's later ops sort after everything anyone writes (access ops are ordered by it).
  if (c.lamport == 0 || c.lamport > lamport_ + 1) {
    return Status::Corruption("change " + c.id().ToString() + " has Lamport time " +
                              std::to_string(c.lamport) + "; its dependencies allow 1 to " +
                              std::to_string(lamport_ + 1));
  }
  if (options.now_ms) WEFT_RETURN_IF_ERROR(clock_.Check(c.time, *options.now_ms));
  return Status::Ok();
}

Status Document::CheckAccess(const Change& c, std::optional<AccessList>* next) const {
  // A public document and a change of data ops only: nothing to check (and no op spans to count).
  if (!access_.owned() && !internal::HasAccessOps(c)) return Status::Ok();
  const AccessList* list = &access_;
  bool data = false;
  uint64_t seq = c.start_seq;
  for (const Op& op : c.ops) {
    if (op.type != Op::Type::kAccess) {
      data = true;
    } else {
      if (!*next) *next = access_;
      AccessEntry e = internal::AccessEntryOf(op, Dot{c.author, seq}, c.lamport);
      Status s = (*next)->Check(e, version_, version_.empty());
      if (!s.ok()) return s;
      (*next)->Add(std::move(e));
      list = &**next;
    }
    seq += OpSpan(op);
  }
  if (!list->owned()) return Status::Ok();
  if (data) return list->CheckWrite(c.author, c.end_seq());  // which also needs a bound author
  if (!list->KeyOf(c.author)) {
    return Status(StatusCode::kPermissionDenied,
                  "author " + c.author.ToHex() + " is not bound to a key in this document");
  }
  return Status::Ok();
}

namespace {
// Ops whose text and ranges are asked for ahead of applying them. A batch's changes were decoded
// (or made) well before it applies them, so the text and the ranges each op points to are out of
// the cache, and reading them was a miss per op (a tenth of A1's merge time, in the ranges of
// its deletes).
// The op itself is asked for further ahead: reading the pointers to its text and ranges missed
// too (an Op spans several cache lines, and apply reads fields in four of them).
constexpr size_t kPrefetchOps = 8;
constexpr size_t kPrefetchOpLines = 16;
void PrefetchOp(const Op& op) {
#if defined(__GNUC__)
  __builtin_prefetch(op.text.data());
  if (!op.ranges.empty()) __builtin_prefetch(op.ranges.data());
#else
  (void)op;
#endif
}
void PrefetchOpLines(const Op& op) {
#if defined(__GNUC__)
  const char* p = reinterpret_cast<const char*>(&op);
  const char* end = reinterpret_cast<const char*>(&op.ranges + 1);  // the last field read
  for (; p < end; p += 64) __builtin_prefetch(p);
#else
  (void)op;
#endif
}
}  // namespace

Status Document::ApplyChecked(const Change& c, std::vector<Patch>* patches,
                              std::string_view encoded) {
  std::optional<AccessList> next_access;
  if (Status s = CheckAccess(c, &next_access); !s.ok()) {
    return Status(s.code(), "change " + c.id().ToString() + ": " + s.message());
  }
  // Ops are validated one by one against the state the earlier ops of the change left (an op may
  // name an object or an item an earlier op of the same change made); on the first invalid op,
  // everything the change did is undone.
  std::vector<UndoFn> own_undo;
  std::vector<UndoFn>& undo = batching_ ? batch_undo_ : own_undo;
  undo.clear();
  // A failing op changes nothing itself, so a change of one op needs no undo log; nor does one
  // of a batch on a new document (ApplyChanges starts again from the empty document).
  std::vector<UndoFn>* log = c.ops.size() > 1 && !lazy_deletes_ ? &undo : nullptr;
  if (log) undo.reserve(c.ops.size());
  size_t patch_count = patches ? patches->size() : 0;
  uint64_t seq = c.start_seq;
  // A change of one op has nothing to reuse the text for.
  TextTarget text;
  TextTarget* text_cache = c.ops.size() > 1 ? &text : nullptr;
  for (size_t i = 0; i < c.ops.size(); ++i) {
    const Op& op = c.ops[i];
    if (i + kPrefetchOpLines < c.ops.size()) PrefetchOpLines(c.ops[i + kPrefetchOpLines]);
    if (i + kPrefetchOps < c.ops.size()) PrefetchOp(c.ops[i + kPrefetchOps]);
    Status s = ApplyOpChecked(op, Dot{c.author, seq}, c.time, log, patches, text_cache);
    if (!s.ok()) {
      for (auto it = undo.rbegin(); it != undo.rend(); ++it) (*it)(*this);
      if (patches) patches->resize(patch_count);
      return Status(s.code(), "change " + c.id().ToString() + ": " + s.message());
    }
    seq += OpSpan(op);
  }
  undo.clear();
  if (next_access) access_ = std::move(*next_access);
  version_.Set(c.author, seq - 1);
  WakeHeld(c.author, seq - 1);
  // The frontier: what the change depends on is no longer latest; the change is.
  heads_.DropCovered(c.deps);
  heads_.Set(c.author, seq - 1);
  lamport_ = std::max(lamport_, c.lamport);
  clock_.Witness(c.time);
  if (options_.keep_history) {
    if (encoded.empty()) {
      history_.Append(c);
    } else {
      history_.Append(c, encoded);
    }
  }
  return Status::Ok();
}

Status Document::ApplyChange(const Change& change, const ApplyOptions& options) {
  if (in_transaction_) return Status::InvalidArgument("a local transaction is open");
  bool duplicate = false;
  WEFT_RETURN_IF_ERROR(CheckChange(change, options, &duplicate));
  if (duplicate) return Status::Ok();
  return ApplyChecked(change, options.patches,
                      options.encoded.empty() ? std::string_view() : options.encoded[0]);
}

Status Document::ApplyChanges(std::span<const Change> changes, const ApplyOptions& options) {
  if (in_transaction_) return Status::InvalidArgument("a local transaction is open");
  // A new document (a replica catching up on a long history): text deletes are checked for the
  // presence of their items in the pass that marks them, not one lookup per range as they come,
  // and no change keeps an undo log. Should a range name an item not present, or a change fail
  // (which leaves what it did so far), the batch is applied again from the empty document,
  // checking each delete as it comes and undoing a failed change, which stops at that change.
  if (version_.empty() && pending_.empty() && !view_.active && !options.patches &&
      changes.size() > 1) {
    Document empty = *this;
    lazy_deletes_ = true;
    Status result = ApplyBatch(changes, options);
    lazy_deletes_ = false;
    if (result.ok() && !missing_unchecked_) return result;
    *this = std::move(empty);
  }
  return ApplyBatch(changes, options);
}

Status Document::ApplyBatch(std::span<const Change> changes, const ApplyOptions& options) {
  Status result = Status::Ok();
  batching_ = true;
  for (size_t k = 0; k < changes.size(); ++k) {
    const Change& c = changes[k];
    if (k + 1 < changes.size()) {
      const std::vector<Op>& next = changes[k + 1].ops;
      for (size_t i = 0; i < next.size() && i < kPrefetchOpLines; ++i) PrefetchOpLines(next[i]);
      for (size_t i = 0; i < next.size() && i < kPrefetchOps; ++i) PrefetchOp(next[i]);
    }
    bool duplicate = false;
    Status s = CheckChange(c, options, &duplicate);
    if (s.ok() && !duplicate) {
      s = ApplyChecked(c, options.patches,
                       k < options.encoded.size() ? options.encoded[k] : std::string_view());
    }
    if (!s.ok()) {
      result = s;
      break;
    }
  }
  batching_ = false;
  batch_undo_ = {};
  SettleSequences();
  return result;
}

void Document::SettleSequences() {
  missing_unchecked_ = false;
  for (ObjectId id : unsettled_) {
    Object* o = Find(id);
    auto* t = o ? std::get_if<Text>(o) : nullptr;
    if (!t) {
      // Removed (with deletes queued) by a later change of the batch: deletes queued unchecked
      // were never checked.
      if (lazy_deletes_) missing_unchecked_ = true;
      continue;
    }
    t->Settle();
    if (t->TakeMissingUnchecked()) missing_unchecked_ = true;
  }
  unsettled_.clear();
}

Status Document::Receive(Change change, const ApplyOptions& options) {
  if (in_transaction_) return Status::InvalidArgument("a local transaction is open");
  // Checked without building a message first: a change that must wait is no error.
  ReadyCheck r = CheckReady(change);
  if (r.readiness == Readiness::kWaiting) {
    Hold(std::move(change), r.waits_for);
    return Status::Ok();
  }
  if (r.readiness != Readiness::kDuplicate) {
    WEFT_RETURN_IF_ERROR(CheckChange(change, options));
    WEFT_RETURN_IF_ERROR(
        ApplyChecked(change, options.patches,
                     options.encoded.empty() ? std::string_view() : options.encoded[0]));
  }
  DrainPending(options);
  return Status::Ok();
}

void Document::Hold(Change change, const Dot& waits_for) {
  if (!pending_ids_.insert(change.id()).second) return;
  uint64_t n = next_arrival_++;
  waiting_.Wait(change, waits_for, n);
  pending_.emplace(n, std::move(change));
}

void Document::WakeHeld(NodeId node, uint64_t seq) {
  if (waiting_.empty()) return;
  waiting_.Wake(node, seq, [this](uint64_t n) { ready_.insert(n); });
}

void Document::DrainPending(const ApplyOptions& options) {
  // The held change that arrived first among those that can be applied goes first, as when every
  // held change was checked in arrival order after each apply; applying it may wake more.
  while (!ready_.empty()) {
    uint64_t n = *ready_.begin();
    ready_.erase(ready_.begin());
    auto it = pending_.find(n);
    if (it == pending_.end()) continue;  // woken twice, and gone already
    ReadyCheck r = CheckReady(it->second);
    if (r.readiness == Readiness::kWaiting) {
      waiting_.Wait(it->second, r.waits_for, n);
      continue;
    }
    Change c = std::move(it->second);
    pending_.erase(it);
    pending_ids_.erase(c.id());
    // An invalid held change is dropped (its error reaches no caller), and so is a duplicate.
    if (r.readiness == Readiness::kReady &&
        (!options.now_ms || clock_.Check(c.time, *options.now_ms).ok())) {
      (void)ApplyChecked(c, options.patches);
    }
  }
  // What is left filed belongs to changes no longer held.
  if (pending_.empty()) waiting_.clear();
}

Result<std::vector<Change>> Document::ChangesSince(const VersionVector& peer) const {
  auto encoded = EncodedChangesSince(peer);
  if (!encoded.ok()) return encoded.status();
  std::vector<Change> out;
  out.reserve(encoded->size());
  for (std::string_view bytes : *encoded) out.push_back(*DecodeChange(bytes));
  return out;
}

Result<std::vector<std::string_view>> Document::EncodedChangesSince(
    const VersionVector& peer) const {
  if (!options_.keep_history && !peer.Dominates(version_)) {
    return Status::HistoryTruncated("this document keeps no history");
  }
  for (const auto& [node, seq] : history_base_.entries()) {
    if (peer.Get(node) < seq) {
      return Status::HistoryTruncated("changes of " + node.ToHex() + " up to " +
                                      std::to_string(seq) + " are no longer kept");
    }
  }
  std::vector<std::string_view> out;
  for (size_t i = 0; i < history_.size(); ++i) {
    if (history_.end_seq(i) > peer.Get(history_.author(i))) out.push_back(history_.bytes(i));
  }
  return out;
}

Result<std::vector<std::string>> Document::Keys(ObjectId id) const {
  const Object* o = Find(id);
  if (!o) return Status::NotFound("object " + id.ToString());
  auto* m = std::get_if<MapObject>(o);
  if (!m) return Status::TypeMismatch(KindError(id, ObjectKind::kMap, KindOfObject(*o)));
  std::vector<std::string> keys;
  keys.reserve(m->entries.size());
  for (const auto& [k, slot] : m->entries) keys.push_back(k);
  return keys;
}

Result<KeyRead> Document::Get(ObjectId id, std::string_view key) const {
  const Object* o = Find(id);
  if (!o) return Status::NotFound("object " + id.ToString());
  auto* m = std::get_if<MapObject>(o);
  if (!m) return Status::TypeMismatch(KindError(id, ObjectKind::kMap, KindOfObject(*o)));
  KeyRead read;
  auto it = m->entries.find(key);
  if (it == m->entries.end()) return read;
  for (const auto& s : it->second.siblings()) {
    // Siblings that reference one named container are one value: keep the greatest dot.
    if (s.value.is_object() && IsNamedObject(s.value.object().id)) {
      auto same = std::find_if(read.values.begin(), read.values.end(),
                               [&](const KeyRead::Entry& e) { return e.value == s.value; });
      if (same != read.values.end()) read.values.erase(same);
    }
    read.values.push_back({s.value, s.clock});
  }
  read.context = it->second.Context();
  return read;
}

Result<std::optional<Value>> Document::GetOne(ObjectId id, std::string_view key) const {
  auto read = Get(id, key);
  if (!read.ok()) return read.status();
  if (read->values.empty()) return std::optional<Value>();
  return std::optional<Value>(read->values.back().value);
}

Result<MVRegister<Scalar>> Document::ReadRegister(ObjectId id) const {
  const Object* o = Find(id);
  if (!o) return Status::NotFound("object " + id.ToString());
  auto* r = std::get_if<MVRegister<Scalar>>(o);
  if (!r) return Status::TypeMismatch(KindError(id, ObjectKind::kRegister, KindOfObject(*o)));
  return *r;
}

Result<LwwRead> Document::ReadLww(ObjectId id) const {
  const Object* o = Find(id);
  if (!o) return Status::NotFound("object " + id.ToString());
  auto* r = std::get_if<LWWRegister<Scalar>>(o);
  if (!r) return Status::TypeMismatch(KindError(id, ObjectKind::kLwwRegister, KindOfObject(*o)));
  LwwRead read;
  if (const auto* w = r->Winner()) {
    read.value = w->value.value;
    read.time = w->value.time;
  }
  for (const auto* s : r->Overwritten())
    read.overwritten.emplace_back(s->value.value, s->value.time);
  return read;
}

Result<int64_t> Document::ReadCounter(ObjectId id) const {
  const Object* o = Find(id);
  if (!o) return Status::NotFound("object " + id.ToString());
  auto* c = std::get_if<Counter>(o);
  if (!c) return Status::TypeMismatch(KindError(id, ObjectKind::kCounter, KindOfObject(*o)));
  return c->Value();
}

Result<std::vector<Scalar>> Document::ReadSet(ObjectId id) const {
  const Object* o = Find(id);
  if (!o) return Status::NotFound("object " + id.ToString());
  auto* s = std::get_if<ORSet<Scalar>>(o);
  if (!s) return Status::TypeMismatch(KindError(id, ObjectKind::kSet, KindOfObject(*o)));
  return s->Elements();
}

}  // namespace weft::crdt
