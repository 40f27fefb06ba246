// A document: a tree of CRDT objects under a root map, changed in transactions, exchanged as
// changes.
//
// Objects are named by the dot of the operation that created them (the root map is ObjectId{}),
// or, for containers created by a map write, by a hash of where they were created (named ids).
// A map key holds a multi-value slot of values, each a scalar or a reference to a nested object,
// so concurrent writes of one key are siblings. Nested objects are registers, LWW registers,
// counters, add-wins sets and maps (lists and text join them with the sequence CRDT).
//
// Update versus delete of the same key (chosen semantics): a delete removes exactly the values it
// observed. A write of the key concurrent with the delete survives it (update wins). A nested
// object that the delete observed is removed with everything inside it, including edits made
// inside it concurrently with the delete (as in Automerge): to keep such an object, write the key
// again. Removed objects leave no metadata behind, except named containers (created by PutObject
// of a counter, set, map, list or text): concurrent creations of one at a key are one object, so a
// delete leaves it hidden rather than removed, and a later PutObject empties it (docs/crdt.md).
//
// A local Transaction applies its operations at once (reads inside it see them) and, on Commit,
// becomes one Change: the author's next contiguous run of seqs (one per operation), the document's
// version vector as its dependencies, a Lamport time and a hybrid logical time. A Rollback leaves
// the document exactly as before. Remote changes are applied whole or not at all, only after their
// dependencies (ApplyChange refuses with kMissingDependency; Receive holds them until ready), and a
// change applied twice is a no-op.
//
// Thread safety: a Document is a value-like object with no internal locking; callers serialise
// access (the SDK does).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "weft/crdt/access.h"
#include "weft/crdt/causality.h"
#include "weft/crdt/counter.h"
#include "weft/crdt/encoding.h"
#include "weft/crdt/orset.h"
#include "weft/crdt/register.h"
#include "weft/crdt/sequence.h"
#include "weft/crdt/value.h"
#include "weft/status.h"

namespace weft::crdt {

// The dot of the operation that created the object; {} is the root map. A container created by
// a map write (PutObject) is "named" instead: its id is a deterministic function of where it was
// created (NamedObjectId), with node 0, so concurrent creations of one container on several
// replicas make the same object and their contents merge.
using ObjectId = Dot;
inline constexpr ObjectId kRoot{};

enum class ObjectKind : uint8_t {
  kMap = 1,
  kRegister = 2,     // multi-value register of scalars
  kLwwRegister = 3,  // last-writer-wins register of scalars
  kCounter = 4,
  kSet = 5,   // add-wins set of scalars
  kList = 6,  // a list of values (scalars or nested objects)
  kText = 7,  // collaborative text (code points)
};
const char* ObjectKindName(ObjectKind k);

// Whether PutObject gives containers of `kind` a named id: counters, sets, maps, lists and texts.
// Registers keep dot ids (concurrent creations of one stay siblings).
bool IsMergeableKind(ObjectKind kind);
// Whether `id` is a named id (node 0, seq not 0).
constexpr bool IsNamedObject(ObjectId id) {
  return !id.node.valid() && id.seq != 0;
}
// Hashes a named container's origin to the seq of its id: a domain-separated 64-bit hash of
// (parent id, key, kind), never 0.
using NamedIdHash = uint64_t (*)(ObjectId parent, std::string_view key, ObjectKind kind);
uint64_t DefaultNamedIdHash(ObjectId parent, std::string_view key, ObjectKind kind);
// The named id of the container of `kind` created at `key` of map `parent`, with the default
// hash (a document with DocumentOptions::named_id_hash uses that instead).
ObjectId NamedObjectId(ObjectId parent, std::string_view key, ObjectKind kind);

// Where a named container was created: the document keeps this for each one, to refuse a
// creation whose id some other origin already holds (a hash collision).
struct NamedOrigin {
  ObjectId parent;
  std::string key;
  ObjectKind kind = ObjectKind::kMap;
  friend bool operator==(const NamedOrigin&, const NamedOrigin&) = default;
};

struct ObjectRef {
  ObjectId id;
  ObjectKind kind = ObjectKind::kMap;
  friend bool operator==(const ObjectRef&, const ObjectRef&) = default;
};

// What a map key holds: a scalar or a nested object.
class Value {
 public:
  Value() = default;
  Value(Scalar s) : v_(std::move(s)) {}  // NOLINT
  Value(ObjectRef r) : v_(r) {}          // NOLINT
  bool is_object() const { return std::holds_alternative<ObjectRef>(v_); }
  const Scalar& scalar() const { return std::get<Scalar>(v_); }
  const ObjectRef& object() const { return std::get<ObjectRef>(v_); }
  std::string ToString() const;
  friend bool operator==(const Value&, const Value&) = default;

 private:
  std::variant<Scalar, ObjectRef> v_;
};

// An element of a list insert: a scalar, or a new nested object of `new_object` kind whose id is
// the element's dot.
struct ListItem {
  Scalar scalar;
  std::optional<ObjectKind> new_object;
  friend bool operator==(const ListItem&, const ListItem&) = default;
};

// One operation of a change. Every operation takes one seq of its author, except sequence
// inserts, which take one per element; an op's dot is the change's start seq plus the seqs the
// ops before it took.
struct Op {
  enum class Type : uint8_t {
    // key := scalar, or := a new object of `kind` (whose id is this op's dot, or its named id
    // when `named`)
    kMapSet = 1,
    kMapDelete = 2,    // remove the key's values named by `context`
    kRegisterSet = 3,  // register or LWW register := scalar
    kCounterAdd = 4,
    kSetAdd = 5,
    kSetRemove = 6,
    kTextInsert = 7,  // `text` between items `left` and `right`; its code points get the op's dots
    kListInsert = 8,  // `items` between `left` and `right`
    kSeqDelete = 9,   // delete the items `ranges` names from a text or list
    // An access list op (access.h) on the root: `action`, `principal`, `role` (grant), `proof`
    // (bind), `context` (revoke: the cutoffs) and `observed` (grant, revoke).
    kAccess = 10,
    // End-to-end encrypted content (docs/security.md): the ciphertext of a run of ops, opaque
    // here, in `proof`; the number of seqs that run takes in `delta` (at least 1). It takes those
    // seqs with no effect on the state: a replica without the key (a relay) keeps the change as
    // it is; the SDK of a reader applies the decrypted ops in its place, with the same seqs.
    kSealed = 11,
  };
  Type type = Type::kMapSet;
  ObjectId object;
  std::string key;        // kMapSet, kMapDelete
  VersionVector context;  // what the op replaces (map, register, set ops)
  Scalar scalar;          // kMapSet (unless new object), kRegisterSet, kSetAdd, kSetRemove
  std::optional<ObjectKind> new_object;  // kMapSet creating a nested object
  // kMapSet creating a nested object: the object's id is its named id (NamedObjectId) rather
  // than the op's dot. Changes written before named containers never set it.
  bool named = false;
  int64_t delta = 0;                            // kCounterAdd; kSealed: the seqs it takes
  Dot left, right;                              // sequence inserts: origins (node 0: start / end)
  std::string text;                             // kTextInsert: UTF-8, at least one code point
  std::vector<ListItem> items;                  // kListInsert
  std::vector<DotRange> ranges;                 // kSeqDelete
  AccessAction action = AccessAction::kCreate;  // kAccess
  Principal principal;                          // kAccess: exactly kPrincipalBytes
  Role role = Role::kNone;                      // kAccess grant
  std::string proof;       // kAccess bind, keys; kSealed: the ciphertext (opaque to crdt)
  VersionVector observed;  // kAccess grant, revoke: see access.h

  friend bool operator==(const Op&, const Op&) = default;
};

// How many seqs an op takes.
uint64_t OpSpan(const Op& op);

// The unit of storage, sync and atomicity.
struct Change {
  NodeId author;
  uint64_t start_seq = 0;  // the first op's seq; ops take start_seq .. start_seq + ops.size() - 1
  // What the change depends on: the causal frontier of the author's document when it committed
  // (the latest change of each author that no other change it held depends on), own entry
  // excluded. Holding these (and the author's earlier seqs) means holding the change's whole
  // causal past, since each of them was applied only once its own deps were held. Older changes
  // carry the author's whole version vector here, which means the same, at more bytes.
  VersionVector deps;
  uint64_t lamport = 0;
  HlcTimestamp time;
  std::vector<Op> ops;
  // The author's signature (Ed25519, 64 bytes) in documents with an access list, over the
  // document ID and EncodeChangeUnsigned (made and checked by the SDK, which holds the keys; its
  // author's own log keeps the change unsigned until it is sent); empty in public documents.
  std::string signature;

  // The seqs the ops take (one each; a sequence insert one per element).
  uint64_t span() const;
  uint64_t end_seq() const { return start_seq + span() - 1; }  // last seq, inclusive
  Dot id() const { return {author, start_seq}; }
  friend bool operator==(const Change&, const Change&) = default;
};

// Versioned binary encoding of a change; DecodeChange validates structure (not causality, which
// needs a document: see Document::ApplyChange) and never crashes on hostile input.
std::string EncodeChange(const Change& change);
Result<Change> DecodeChange(std::string_view bytes);
// The encoding of `change` as if its signature were empty: what the signature covers.
std::string EncodeChangeUnsigned(const Change& change);

// The changes a document keeps, in the order applied: each as its encoding (EncodeChange), in
// one buffer, with its author and seqs beside it. About a fifth of the memory of the decoded
// changes for typing (a one-character insert is some 30 bytes here against some 300 decoded),
// and the bytes a peer is sent are at hand. A read decodes the change.
class KeptChanges {
 public:
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  std::string_view bytes(size_t i) const;
  NodeId author(size_t i) const { return entries_[i].author; }
  uint64_t start_seq(size_t i) const { return entries_[i].start_seq; }
  uint64_t end_seq(size_t i) const { return entries_[i].end_seq; }
  // The change, decoded (from bytes this class encoded or checked: it does not fail).
  Change operator[](size_t i) const;
  Change front() const { return (*this)[0]; }
  Change back() const { return (*this)[size() - 1]; }
  // Every change, decoded.
  std::vector<Change> All() const;
  // Memory held, in bytes (the buffer and the index, as allocated).
  size_t memory() const { return arena_.capacity() + entries_.capacity() * sizeof(Entry); }

  void Append(const Change& c);
  // A change whose encoding is already at hand (EncodeChange(c) == bytes).
  void Append(const Change& c, std::string_view bytes);

  // Iterates the changes, decoding each as it is read.
  class Iterator {
   public:
    using value_type = Change;
    using difference_type = std::ptrdiff_t;
    Iterator(const KeptChanges* kept, size_t i) : kept_(kept), i_(i) {}
    Change operator*() const { return (*kept_)[i_]; }
    Iterator& operator++() {
      ++i_;
      return *this;
    }
    bool operator==(const Iterator& o) const { return i_ == o.i_; }

   private:
    const KeptChanges* kept_;
    size_t i_;
  };
  Iterator begin() const { return Iterator(this, 0); }
  Iterator end() const { return Iterator(this, size()); }

  // The same changes, in the same order, with the same encodings.
  friend bool operator==(const KeptChanges& a, const KeptChanges& b) {
    return a.entries_ == b.entries_ && a.arena_ == b.arena_;  // scratch_ is no content
  }

 private:
  struct Entry {
    uint64_t offset;  // in arena_; the change ends where the next begins
    NodeId author;
    uint64_t start_seq;
    uint64_t end_seq;
    friend bool operator==(const Entry&, const Entry&) = default;
  };
  std::string arena_;
  std::vector<Entry> entries_;
  Writer scratch_;  // where Append encodes a change
};

// A read of one map key: every value with its causal context, and the context to hand back to a
// write that should replace exactly what was read.
struct KeyRead {
  struct Entry {
    Value value;
    DottedVersionVector clock;
  };
  // Sorted by dot; empty when the key is absent. Siblings that reference the same (named)
  // container are one value: the entry of the greatest dot stands for them.
  std::vector<Entry> values;
  VersionVector context;
  bool conflict() const { return values.size() > 1; }
};

// A read of an LWW register: the winner and the concurrent values it overwrote.
struct LwwRead {
  std::optional<Scalar> value;
  HlcTimestamp time;
  std::vector<std::pair<Scalar, HlcTimestamp>> overwritten;
};

// What one applied op changed, for change feeds: enough to update a view without re-reading the
// whole document. Ops that change nothing visible (duplicates, ops on removed objects, a set add
// of an element already present) produce no patch.
struct Patch {
  enum class Type : uint8_t {
    kMapKey = 1,    // `key` of map `object` now has `siblings` distinct values (0: the key is gone)
    kRegister = 2,  // register `object` now has `siblings` values
    kCounter = 3,   // counter `object` changed by `delta`
    kSetAdd = 4,    // `element` joined set `object`
    kSetRemove = 5,  // `element` left set `object`
    kInsert = 6,     // `length` elements (`text` for a text) inserted at `index` of `object`
    kDelete = 7,     // `length` elements deleted at `index` of `object`
  };
  Type type = Type::kMapKey;
  ObjectId object;
  std::string key;
  size_t siblings = 0;
  int64_t delta = 0;
  Scalar element;
  size_t index = 0;
  size_t length = 0;
  std::string text;
  friend bool operator==(const Patch&, const Patch&) = default;
};

struct DocumentOptions {
  uint64_t max_drift_ms = HybridClock::kDefaultMaxDriftMs;
  // Keep every change in memory, so ChangesSince can answer any peer (a relay or the SDK may
  // keep its log elsewhere and turn this off).
  bool keep_history = true;
  // For tests: replaces the hash that names containers (to force collisions). Every replica of
  // a document must use the same one.
  NamedIdHash named_id_hash = nullptr;
};

struct ApplyOptions {
  // Local physical time; when set, a change whose hybrid time is more than max_drift_ms ahead is
  // refused with kClockDrift.
  std::optional<uint64_t> now_ms;
  // When set, receives a patch for each visible effect of the changes applied, in order.
  std::vector<Patch>* patches = nullptr;
  // When given, the encodings of the changes passed to ApplyChanges, one each (to ApplyChange
  // and Receive: one), each decoding (DecodeChange) to its change: a document keeping its
  // history keeps them rather than encode the changes again.
  std::span<const std::string_view> encoded = {};
};

class Document;

// How to undo one applied op (inside a transaction, or a change that fails half way). A sequence
// insert or delete is undone without a closure (no allocation for it on the hot path); anything
// else runs `fn`.
struct UndoEntry {
  ObjectId object;
  Dot first;  // the first item a sequence insert made
  uint64_t count = 0;
  std::function<void(Document&)> fn;
  // A sequence delete (`is_delete`): the items it deleted, and, when it was counted in the view,
  // its ranges (`view_ranges`, to take out of the view again).
  bool is_delete = false;
  bool in_view = false;
  // A text delete queued in the sequence (Text::DeferDelete): `count` is the queue's mark.
  bool deferred = false;
  std::vector<DotRange> deleted;
  std::vector<DotRange> view_ranges;
  void operator()(Document& doc) const;
};

// A local transaction: build it with Document::Begin, change the document through it, then
// Commit or Rollback (destroying an open one rolls it back). One at a time per document; no
// remote change may be applied while one is open. Methods fail, changing nothing, on a missing
// object or an object of another kind.
class Transaction {
 public:
  Transaction(Transaction&&) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();

  Status Put(ObjectId map, std::string_view key, Scalar value);
  // Replaces only the values a prior read returned (KeyRead::context); later concurrent ones stay.
  Status PutAfterRead(ObjectId map, std::string_view key, Scalar value,
                      const VersionVector& read_context);
  // Creates a nested object of `kind` at `key`, replacing the key's visible values. A mergeable
  // kind (IsMergeableKind) gets its named id, so concurrent creations on other replicas are the
  // same object. When that container already exists (at the key, or held since the key was
  // deleted) it is emptied in this transaction by the ops its kind has (a counter adds minus its
  // value, a text or list deletes its items, a set removes its elements, a map deletes its keys),
  // so the caller gets an empty container and edits made concurrently with this one survive.
  // kInvalidArgument, changing nothing, when another origin holds the named id (a collision).
  Result<ObjectId> PutObject(ObjectId map, std::string_view key, ObjectKind kind);
  Status Delete(ObjectId map, std::string_view key);

  Status SetRegister(ObjectId reg, Scalar value);
  Status SetRegisterAfterRead(ObjectId reg, Scalar value, const VersionVector& read_context);
  Status Increment(ObjectId counter, int64_t delta);
  Status SetAdd(ObjectId set, Scalar element);
  Status SetRemove(ObjectId set, Scalar element);

  // Text: positions and lengths in code points; `utf8` must be valid, non-empty UTF-8.
  Status TextInsert(ObjectId text, size_t pos, std::string_view utf8);
  Status TextDelete(ObjectId text, size_t pos, size_t len);
  // Lists (ListDelete also deletes from a text).
  Status ListInsert(ObjectId list, size_t pos, std::vector<Scalar> values);
  Result<ObjectId> ListInsertObject(ObjectId list, size_t pos, ObjectKind kind);
  Status ListDelete(ObjectId list, size_t pos, size_t len);

  // Access list ops (access.h). Each fails, changing nothing, with kPermissionDenied when the
  // rules refuse it (the local actor's key lacks the role, a create in a document that holds
  // changes, ...) and kInvalidArgument on a malformed key or role.
  // Makes `owner` the document's owner: only before the document holds any change.
  Status CreateAccess(const Principal& owner);
  // Binds the local actor to `key`; `proof` is stored and sent, never interpreted here.
  Status Bind(const Principal& key, std::string proof);
  // Gives `key` `role` (reader, writer or admin).
  Status Grant(const Principal& key, Role role);
  // Takes `key`'s role away, cutting each actor bound to it off at the last seq of it the
  // document holds.
  Status Revoke(const Principal& key);
  // Marks the document end-to-end encrypted (AccessAction::kEncrypt): only right after the
  // create of a new document, by its owner.
  Status Encrypt(const Principal& owner);
  // Adds a key record (AccessAction::kKeys; `record` opaque here) signed by `admin`, the local
  // actor's key, which must hold admin or owner.
  Status AddKeyRecord(const Principal& admin, std::string record);
  // Adds a sealed op (Op::Type::kSealed) standing for `span` seqs: the SDK's encrypted form of
  // content ops it removed from this transaction. No effect on the state.
  Status AddSealed(std::string ciphertext, uint64_t span);

  size_t size() const { return ops_.size(); }
  // The visible effects of the ops so far, in order.
  const std::vector<Patch>& patches() const { return patches_; }
  // The patches, moved out (the transaction keeps none after).
  std::vector<Patch> TakePatches() { return std::exchange(patches_, {}); }
  // The change Commit would produce now (nullopt when there are no ops), without ending it.
  std::optional<Change> Prepare() const;
  // Ends the transaction; the change (empty ops: nothing to commit, returns nullopt) is applied
  // and logged. Cannot fail.
  std::optional<Change> Commit();
  void Rollback();

 private:
  friend class Document;
  Transaction(Document* doc, uint64_t now_ms, NodeId author, bool at_view);
  Status Add(Op op);
  // Completes the sequence insert built as the last of ops_ (drops it on error).
  Status AddSequenceInsert();
  Status PlaceSequenceInsert(Op& op);
  // Whether the local actor may add a data op now: in an owned document, once it is bound, its
  // key must be allowed to write (AccessList::CheckWrite).
  Status CheckLocalWrite() const;
  // Empties container `id` of `kind` with ops of its kind (PutObject of an existing one).
  Status Clear(ObjectId id, ObjectKind kind);
  Status AddAccess(Op op);

  // Refuses ops other than text edits in a transaction at an earlier version.
  Status CheckCurrent() const;
  // How text edits relate to the texts' views (SequenceCore).
  ViewMode TextMode() const;
  Document* doc_;
  uint64_t now_ms_;
  NodeId author_;
  // Made by BeginAt at an earlier version `at_`: positions are those of the texts' views.
  bool at_view_ = false;
  VersionVector at_;
  VersionVector at_deps_;    // the frontier of at_
  uint64_t at_lamport_ = 0;  // the greatest Lamport time in at_
  uint64_t next_seq_;
  std::vector<Op> ops_;
  std::vector<Patch> patches_;
  std::vector<UndoEntry> undo_;
  bool open_ = true;
};

// Whether a remote change can be applied now (Document::CheckReady), decided without building a
// message: for callers that order many changes, where most checks find a change not yet ready.
enum class Readiness : uint8_t {
  kReady,      // everything it depends on is held (ApplyChange still checks its ops and clock)
  kDuplicate,  // held already: applying it is a no-op
  kWaiting,    // a dependency is missing: ReadyCheck::waits_for
  kInvalid,    // it can never be applied; ApplyChange says why
};
struct ReadyCheck {
  Readiness readiness = Readiness::kReady;
  // kWaiting: a dot the document lacks. The change is worth checking again once it holds it.
  Dot waits_for;
};

// Changes held back for causal delivery, filed under the dot each waits for, so that admitting
// one costs O(log n) however many are held: checking every held change on every arrival is
// quadratic in a batch in reverse dependency order. Holds the caller's ids, not the changes.
// A plain value; not thread-safe.
class WaitIndex {
 public:
  // Files `id`, whose `change` CheckReady found kWaiting on `waits_for`. It is woken when the
  // document holds `waits_for`, and also when the change's author reaches its start seq (the
  // change is then a duplicate or invalid, whatever else it waits for).
  void Wait(const Change& change, const Dot& waits_for, uint64_t id) {
    waiting_.emplace(waits_for, id);
    if (waits_for.node != change.author) waiting_.emplace(Dot{change.author, change.start_seq}, id);
  }
  // Calls `fn(id)` for every id filed under a dot of `node` up to `seq`, and forgets them: call
  // it when the document's version of `node` reaches `seq`. An id can be woken more than once
  // (it is filed under two dots, and again each time it is filed) and can still be waiting:
  // check it again before applying it.
  template <typename Fn>
  void Wake(NodeId node, uint64_t seq, Fn&& fn) {
    auto it = waiting_.lower_bound(Dot{node, 0});
    while (it != waiting_.end() && it->first.node == node && it->first.seq <= seq) {
      fn(it->second);
      it = waiting_.erase(it);
    }
  }
  bool empty() const { return waiting_.empty(); }
  void clear() { waiting_.clear(); }

 private:
  std::multimap<Dot, uint64_t> waiting_;
};

class Document {
 public:
  explicit Document(NodeId self, DocumentOptions options = {});
  Document(const Document&);
  Document& operator=(const Document&);
  Document(Document&&) noexcept;
  Document& operator=(Document&&) noexcept;
  ~Document();

  NodeId self() const { return self_; }
  // The changes this document holds, as node -> last seq.
  const VersionVector& version() const { return version_; }
  // The causal frontier of version(): what the next local change will depend on (Change::deps).
  const VersionVector& heads() const { return heads_; }
  uint64_t lamport() const { return lamport_; }
  // The access list (access.h): part of the state.
  const AccessList& access() const { return access_; }

  // Starts a local transaction at physical time `now_ms` (milliseconds since the epoch).
  Transaction Begin(uint64_t now_ms);
  // Starts a transaction that edits the document as it was at version `at` (Automerge's
  // changeAt): text positions are those of each text at `at`, and the change depends on `at`
  // only, so it merges with everything else the document holds as a concurrent change would.
  // `author` (default: self) makes the change; replaying recorded history may use other
  // authors. Only text edits (TextInsert, TextDelete) may be made at an earlier version; other
  // ops return kInvalidArgument. Needs keep_history. Errors, with no transaction started:
  // kInvalidArgument when `at` is not a causally closed version this document holds (or splits
  // a change), or when it lacks a change of `author` the document holds (an author's changes
  // form one chain); kHistoryTruncated when `at` is older than the history kept; kInvalidArgument
  // when a transaction is open or history is not kept. Moving to `at` costs O(log n) for each
  // op between it and the version of the previous BeginAt.
  Result<Transaction> BeginAt(const VersionVector& at, uint64_t now_ms, NodeId author = {});

  // Applies a remote change whole, after checking its dependencies and every op. OK for a
  // duplicate (nothing changes). kMissingDependency when a dependency is absent; kCorruption or
  // kTypeMismatch for an invalid change; kClockDrift as in ApplyOptions. Nothing changes on error.
  Status ApplyChange(const Change& change, const ApplyOptions& options = {});
  // Applies `changes` in order, each as ApplyChange would, and stops at the first that fails,
  // returning its error: the changes before it stay applied, nothing of it does. The text deletes
  // of the whole batch are marked together at the end (one pass over each text when they are
  // many), so a long history (a new replica catching up) applies faster than change by change.
  Status ApplyChanges(std::span<const Change> changes, const ApplyOptions& options = {});
  // Like ApplyChange, but a change whose dependencies are missing is held and applied as soon as
  // they arrive. Returns the error of an invalid change (which is dropped). A held change that
  // turns out invalid when its dependencies arrive is dropped without a word; one with the id of
  // a change already held is not held twice. Each held change costs O(log n) to admit.
  Status Receive(Change change, const ApplyOptions& options = {});
  // The number of changes held by Receive.
  size_t pending() const { return pending_.size(); }
  // Whether `change` could be applied now, without building a message (ApplyChange says why
  // not). For callers that order many changes; see Readiness.
  ReadyCheck CheckReady(const Change& change) const;
  bool HasChange(const Dot& id) const { return version_.Contains(id); }

  // The changes a peer with `peer_version` lacks, in causal order. kHistoryTruncated when they
  // reach back before the history kept here.
  Result<std::vector<Change>> ChangesSince(const VersionVector& peer_version) const;
  // The same, as their encodings (EncodeChange), which stay valid until the document changes.
  Result<std::vector<std::string_view>> EncodedChangesSince(
      const VersionVector& peer_version) const;
  // Every change kept, in the order applied (a causal order).
  const KeptChanges& history() const { return history_; }

  // Reads. Object reads fail with kNotFound or kTypeMismatch.
  bool Exists(ObjectId id) const;
  Result<ObjectKind> KindOf(ObjectId id) const;
  Result<std::vector<std::string>> Keys(ObjectId map) const;
  Result<KeyRead> Get(ObjectId map, std::string_view key) const;
  Result<MVRegister<Scalar>> ReadRegister(ObjectId reg) const;
  Result<LwwRead> ReadLww(ObjectId reg) const;
  Result<int64_t> ReadCounter(ObjectId counter) const;
  Result<std::vector<Scalar>> ReadSet(ObjectId set) const;
  Result<std::string> ReadText(ObjectId text) const;
  Result<std::vector<Value>> ReadList(ObjectId list) const;
  // Visible length of a text (code points) or a list.
  Result<size_t> SequenceSize(ObjectId seq) const;
  // Stable positions in a text or list: an anchor tied to an item, and its current index.
  Result<Anchor> AnchorAt(ObjectId seq, size_t index, Bias bias) const;
  Result<size_t> IndexOfAnchor(ObjectId seq, const Anchor& anchor) const;
  // The text object (for UTF-16 conversions and item ids); kNotFound / kTypeMismatch otherwise.
  Result<const Text*> TextObject(ObjectId text) const;
  // A deterministic pick among a key's values (the one with the greatest dot), for callers that
  // want one value; Get shows them all.
  Result<std::optional<Value>> GetOne(ObjectId map, std::string_view key) const;

  // A human-readable JSON rendering of the whole document (conflicts as {"conflict": [...]}).
  std::string ToJson() const;
  // One key of a map rendered as ToJson would (nullopt: the key is absent).
  Result<std::optional<std::string>> KeyToJson(ObjectId map, std::string_view key) const;
  // The canonical state as JSON, with every object, sibling, dot and context: equal on two
  // replicas exactly when CanonicalState is (for tools and tests; see `weft dump`).
  std::string CanonicalJson() const;

  // The canonical encoding of the state: equal on two replicas exactly when their states (and
  // version vectors) are equal. Excludes history, clocks and held changes.
  std::string CanonicalState() const;
  // A compact, versioned snapshot: the state, clocks and, when `with_history`, every change kept.
  std::string EncodeSnapshot(bool with_history = false) const;
  // Decodes and validates a snapshot into a document owned by `self`.
  static Result<Document> DecodeSnapshot(std::string_view bytes, NodeId self,
                                         DocumentOptions options = {});

  // Internals, shared with Transaction and the encoder.
  const auto* FindObject(ObjectId id) const { return Find(id); }
  // The origin of every named container held, by id.
  const std::map<ObjectId, NamedOrigin>& named_origins() const { return named_; }
  struct MapObject {
    std::map<std::string, MVSlot<Value>, std::less<>> entries;
    VersionVector seen;
    friend bool operator==(const MapObject&, const MapObject&) = default;
  };
  using Object = std::variant<MapObject, MVRegister<Scalar>, LWWRegister<Scalar>, Counter,
                              ORSet<Scalar>, List<Value>, Text>;

 private:
  friend class Transaction;
  struct Snapshotter;

  using UndoFn = UndoEntry;
  friend struct UndoEntry;
  // An object removed with its subtree, kept to undo the removal.
  struct RemovedObject {
    ObjectId id;
    Object object;
    std::optional<NamedOrigin> origin;
  };
  using Removed = std::vector<RemovedObject>;
  // `target`: the object the op names (Find(op.object)), or null when absent.
  Status ValidateOp(const Op& op, const Dot& dot, const Object* target) const;
  // The text the last text op of a change named: text ops remove no object, so the pointer
  // stays good while text ops follow one another (any other op clears it).
  struct TextTarget {
    ObjectId id;
    Object* object = nullptr;
  };
  // Validates `op` against the current state and applies it; appends its undo when `undo` is set.
  // `text` (when given) spares looking up the text of consecutive text ops.
  Status ApplyOpChecked(const Op& op, const Dot& dot, const HlcTimestamp& time,
                        std::vector<UndoFn>* undo, std::vector<Patch>* patches,
                        TextTarget* text = nullptr);
  // Applies a validated op; `removed` collects objects it removed (for undo), when given.
  void ApplyOp(const Op& op, const Dot& dot, const HlcTimestamp& time, Removed* removed,
               std::vector<Patch>* patches);
  // Removes `id` and its subtree: the objects its values reference and the named containers
  // created in it. A named container is removed only with an ancestor made by a dot (see
  // docs/crdt.md); when its key drops it, it stays, hidden.
  void RemoveTree(ObjectId id, Removed* removed);
  void Reinsert(Removed& removed);
  // The named id of a container created at (`parent`, `key`, `kind`), with this document's hash.
  ObjectId NamedId(ObjectId parent, std::string_view key, ObjectKind kind) const;
  // Applies a sequence op (validated); records undo and patches.
  Status ApplySequenceOp(const Op& op, const Dot& dot, Object* target, std::vector<UndoFn>* undo,
                         std::vector<Patch>* patches);
  // OK for a change that can be applied now, and for a duplicate (then *duplicate, when given, is
  // set).
  Status CheckChange(const Change& change, const ApplyOptions& options,
                     bool* duplicate = nullptr) const;
  // Applies a checked change; its encoding goes into the history when kept (`encoded`, when
  // given, is it).
  Status ApplyChecked(const Change& c, std::vector<Patch>* patches, std::string_view encoded = {});
  // Checks the change against the access list: on success, `next` holds the list with the
  // change's access ops added (when it has any).
  Status CheckAccess(const Change& change, std::optional<AccessList>* next) const;
  // Holds a change CheckReady found waiting (unless one with its id is held).
  void Hold(Change change, const Dot& waits_for);
  // The version of `node` reached `seq`: held changes waiting on it may be ready.
  void WakeHeld(NodeId node, uint64_t seq);
  // Applies the held changes that are ready, in the order they arrived (dropping invalid ones),
  // until none is.
  void DrainPending(const ApplyOptions& options);
  Object* Find(ObjectId id);
  const Object* Find(ObjectId id) const;

  NodeId self_;
  DocumentOptions options_;
  VersionVector version_;
  // The causal frontier of version_ (see Change::deps), or more (a document decoded from a
  // snapshot starts from its whole version): the deps of the next local change.
  VersionVector heads_;
  uint64_t lamport_ = 0;
  HybridClock clock_;
  std::map<ObjectId, Object> objects_;
  // The origin of each named container in objects_.
  std::map<ObjectId, NamedOrigin> named_;
  AccessList access_;
  KeptChanges history_;
  VersionVector history_base_;  // the version before the first change in history_
  // Changes Receive holds until their dependencies arrive, by arrival number, and their ids.
  std::map<uint64_t, Change> pending_;
  std::set<Dot> pending_ids_;
  uint64_t next_arrival_ = 0;
  // Held changes filed under what each waits for, and those that may be ready (woken, not yet
  // checked again), by arrival number. Every held change not in ready_ is waiting on a dot
  // version_ lacks, under which it is filed.
  WaitIndex waiting_;
  std::set<uint64_t> ready_;
  bool in_transaction_ = false;
  // Within ApplyChanges: text deletes are queued (Text::DeferDelete) in the texts listed in
  // unsettled_, and settled when it returns. A single change marks its deletes at once (as cheap
  // for a few ranges, and it keeps the leaves CheckDelete found).
  bool batching_ = false;
  std::vector<ObjectId> unsettled_;
  // Within ApplyChanges on a new document: text deletes are queued without checking that their
  // items are present (SequenceCore::DeferDelete), which the settle checks, setting
  // missing_unchecked_ when one named an item not present; and no change keeps an undo log (on
  // either failure, the batch is applied again from the empty document, checking as it goes).
  bool lazy_deletes_ = false;
  bool missing_unchecked_ = false;
  // Within ApplyChanges: the undo log of the change being applied, kept (cleared) from one
  // change to the next rather than allocated for each.
  std::vector<UndoEntry> batch_undo_;

  // Every text's view (SequenceCore) shows version `at`; when `current`, it is version_ (every
  // change applied joins it) and `at` is not kept. BeginAt moves it.
  // Until the first BeginAt at an earlier version the views are not kept up to date (deletes are
  // not counted: merging stays as fast as without them); ActivateView rebuilds them.
  struct View {
    bool active = false;
    bool current = true;
    VersionVector at;
    // Each author's changes in history_[0, indexed), in seq order: (last seq, index).
    std::map<NodeId, std::vector<std::pair<uint64_t, size_t>>> by_author;
    size_t indexed = 0;
  };
  View view_;
  // Checks that `at` is a causally closed version held here, in whole changes, and finds its
  // causal frontier (what a change made at `at` depends on) and its greatest Lamport time.
  Status ExamineVersion(const VersionVector& at, VersionVector* frontier, uint64_t* lamport) const;
  // Moves the texts' views to `at` (checked by ExamineVersion).
  void MoveView(const VersionVector& at);
  // Rebuilds every view as the current version, from the history kept.
  void ActivateView();
  // Whether local edits and changes applied now join the views.
  bool InView() const { return view_.current; }
  // Marks the deletes queued in unsettled_'s texts.
  void SettleSequences();
  // ApplyChanges, once: applies in order, stops at the first change that fails, settles.
  Status ApplyBatch(std::span<const Change> changes, const ApplyOptions& options);
  // Brings view_.by_author up to date with history_.
  void IndexHistory() const;
  // The change a local transaction's ops make.
  Change BuildChange(const Transaction& t, std::vector<Op> ops) const;
};

// Appends `s` to `out` as a JSON string: quoted, with '"', '\\' and control characters escaped
// (the bytes are taken as UTF-8 and otherwise copied as they are), as ToJson writes strings.
void AppendJsonString(std::string& out, std::string_view s);

}  // namespace weft::crdt
