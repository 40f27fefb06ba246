// Typed handles to the values of a document, for use inside Replica::Transact (read and write)
// and Replica::Read (read only).
//
// A handle names one CRDT object (a map, register, LWW register, counter or set) of one
// document. Handles are cheap values, valid only inside the Transact or Read call that produced
// them. Writing through a handle obtained in Read fails with kInvalidArgument.
//
// Nested values are reached by key: `root.Counter("likes")` returns the counter at "likes",
// creating it inside a transaction when the key is absent; a key that holds a value of another
// type gives kTypeMismatch, and in a read-only view an absent key gives kNotFound.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "weft/crdt/document.h"
#include "weft/status.h"

namespace weft {

using crdt::ObjectId;
using crdt::ObjectKind;
using crdt::Scalar;

class Txn;
class MapRef;

class ValueHandle {
 public:
  // `txn` null: read only.
  ValueHandle(const crdt::Document* doc, crdt::Transaction* txn, ObjectId id)
      : doc_(doc), txn_(txn), id_(id) {}
  ObjectId id() const { return id_; }
  // The document and the transaction (null when read only) behind the handle.
  const crdt::Document* document() const { return doc_; }
  crdt::Transaction* raw_txn() const { return txn_; }

 protected:
  Status Writable() const;

  const crdt::Document* doc_;
  crdt::Transaction* txn_;  // null in a read-only view
  ObjectId id_;
  friend class MapRef;
};

class RegisterRef : public ValueHandle {
 public:
  using ValueHandle::ValueHandle;
  // Every sibling with its causal context (empty when never written).
  Result<std::vector<crdt::MVSlot<Scalar>::Sibling>> Siblings() const;
  // The context of a read of every sibling, for SetAfterRead.
  Result<crdt::VersionVector> Context() const;
  Status Set(Scalar value);
  Status SetAfterRead(Scalar value, const crdt::VersionVector& read_context);
};

class LwwRef : public ValueHandle {
 public:
  using ValueHandle::ValueHandle;
  Result<crdt::LwwRead> Read() const;
  Status Set(Scalar value);
};

class CounterRef : public ValueHandle {
 public:
  using ValueHandle::ValueHandle;
  Result<int64_t> Value() const;
  Status Increment(int64_t delta);
};

class SetRef : public ValueHandle {
 public:
  using ValueHandle::ValueHandle;
  Result<std::vector<Scalar>> Elements() const;
  Result<bool> Contains(const Scalar& element) const;
  Status Add(Scalar element);
  Status Remove(Scalar element);
};

// Collaborative text. Positions and lengths count Unicode code points; UTF-8 in and out.
class TextRef : public ValueHandle {
 public:
  using ValueHandle::ValueHandle;
  Result<std::string> Read() const;
  Result<size_t> Size() const;
  Status Insert(size_t pos, std::string_view utf8);
  Status Delete(size_t pos, size_t len);
  // A stable position (a cursor or a selection end) and its current index.
  Result<crdt::Anchor> AnchorAt(size_t index, crdt::Bias bias = crdt::Bias::kLeft) const;
  Result<size_t> IndexOf(const crdt::Anchor& anchor) const;
};

class MapRef;

// A list of scalars and nested objects.
class ListRef : public ValueHandle {
 public:
  using ValueHandle::ValueHandle;
  Result<std::vector<crdt::Value>> Values() const;
  Result<size_t> Size() const;
  Status Insert(size_t pos, std::vector<Scalar> values);
  Result<MapRef> InsertMap(size_t pos);
  Status Delete(size_t pos, size_t len);
};

class MapRef : public ValueHandle {
 public:
  using ValueHandle::ValueHandle;
  Result<std::vector<std::string>> Keys() const;
  // Every value of the key with its causal context (siblings when written concurrently).
  Result<crdt::KeyRead> Get(std::string_view key) const;
  Status Put(std::string_view key, Scalar value);
  Status PutAfterRead(std::string_view key, Scalar value, const crdt::VersionVector& read_context);
  Status Delete(std::string_view key);

  Result<MapRef> Map(std::string_view key);
  Result<RegisterRef> Register(std::string_view key);
  Result<LwwRef> Lww(std::string_view key);
  Result<CounterRef> Counter(std::string_view key);
  Result<SetRef> Set(std::string_view key);
  Result<TextRef> Text(std::string_view key);
  Result<ListRef> List(std::string_view key);

  // The nested object of `kind` at `key`: created in a transaction when the key is absent.
  Result<ObjectId> Nested(std::string_view key, ObjectKind kind);
};

// The read-only view of a document inside Replica::Read.
class View {
 public:
  explicit View(const crdt::Document& doc) : doc_(doc) {}
  MapRef root() const { return MapRef(&doc_, nullptr, crdt::kRoot); }
  const crdt::Document& document() const { return doc_; }
  std::string ToJson() const { return doc_.ToJson(); }
  std::string CanonicalState() const { return doc_.CanonicalState(); }
  const crdt::VersionVector& version() const { return doc_.version(); }

 private:
  const crdt::Document& doc_;
};

// A transaction inside Replica::Transact.
class Txn {
 public:
  Txn(const crdt::Document& doc, crdt::Transaction& txn) : doc_(doc), txn_(txn) {}
  MapRef root() { return MapRef(&doc_, &txn_, crdt::kRoot); }
  const crdt::Document& document() const { return doc_; }
  crdt::Transaction& raw() { return txn_; }

 private:
  const crdt::Document& doc_;
  crdt::Transaction& txn_;
};

}  // namespace weft
