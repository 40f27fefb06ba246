#include "weft/values.h"

namespace weft {

Status ValueHandle::Writable() const {
  if (!txn_) return Status::InvalidArgument("a read-only view cannot write");
  return Status::Ok();
}

Result<std::vector<crdt::MVSlot<Scalar>::Sibling>> RegisterRef::Siblings() const {
  auto reg = doc_->ReadRegister(id_);
  if (!reg.ok()) return reg.status();
  return reg->Siblings();
}

Result<crdt::VersionVector> RegisterRef::Context() const {
  auto kind = doc_->KindOf(id_);
  if (!kind.ok()) return kind.status();
  if (*kind == ObjectKind::kLwwRegister)
    return Status::TypeMismatch("an LWW register has no read context");
  auto reg = doc_->ReadRegister(id_);
  if (!reg.ok()) return reg.status();
  return reg->Context();
}

Status RegisterRef::Set(Scalar value) {
  WEFT_RETURN_IF_ERROR(Writable());
  return txn_->SetRegister(id_, std::move(value));
}

Status RegisterRef::SetAfterRead(Scalar value, const crdt::VersionVector& read_context) {
  WEFT_RETURN_IF_ERROR(Writable());
  return txn_->SetRegisterAfterRead(id_, std::move(value), read_context);
}

Result<crdt::LwwRead> LwwRef::Read() const {
  return doc_->ReadLww(id_);
}

Status LwwRef::Set(Scalar value) {
  WEFT_RETURN_IF_ERROR(Writable());
  return txn_->SetRegister(id_, std::move(value));
}

Result<int64_t> CounterRef::Value() const {
  return doc_->ReadCounter(id_);
}

Status CounterRef::Increment(int64_t delta) {
  WEFT_RETURN_IF_ERROR(Writable());
  return txn_->Increment(id_, delta);
}

Result<std::vector<Scalar>> SetRef::Elements() const {
  return doc_->ReadSet(id_);
}

Result<bool> SetRef::Contains(const Scalar& element) const {
  auto all = doc_->ReadSet(id_);
  if (!all.ok()) return all.status();
  for (const auto& e : *all) {
    if (e == element) return true;
  }
  return false;
}

Status SetRef::Add(Scalar element) {
  WEFT_RETURN_IF_ERROR(Writable());
  return txn_->SetAdd(id_, std::move(element));
}

Status SetRef::Remove(Scalar element) {
  WEFT_RETURN_IF_ERROR(Writable());
  return txn_->SetRemove(id_, std::move(element));
}

Result<std::vector<std::string>> MapRef::Keys() const {
  return doc_->Keys(id_);
}

Result<crdt::KeyRead> MapRef::Get(std::string_view key) const {
  return doc_->Get(id_, key);
}

Status MapRef::Put(std::string_view key, Scalar value) {
  WEFT_RETURN_IF_ERROR(Writable());
  return txn_->Put(id_, key, std::move(value));
}

Status MapRef::PutAfterRead(std::string_view key, Scalar value,
                            const crdt::VersionVector& read_context) {
  WEFT_RETURN_IF_ERROR(Writable());
  return txn_->PutAfterRead(id_, key, std::move(value), read_context);
}

Status MapRef::Delete(std::string_view key) {
  WEFT_RETURN_IF_ERROR(Writable());
  return txn_->Delete(id_, key);
}

Result<ObjectId> MapRef::Nested(std::string_view key, ObjectKind kind) {
  auto read = doc_->Get(id_, key);
  if (!read.ok()) return read.status();
  // Of several siblings, the one of the wanted kind with the greatest dot.
  const crdt::Value* other = nullptr;
  for (auto it = read->values.rbegin(); it != read->values.rend(); ++it) {
    const crdt::Value& v = it->value;
    bool same = v.is_object() &&
                (v.object().kind == kind ||
                 (kind == ObjectKind::kRegister && v.object().kind == ObjectKind::kLwwRegister));
    if (same) return v.object().id;
    other = &v;
  }
  if (other) {
    return Status::TypeMismatch("key \"" + std::string(key) + "\" holds " + other->ToString() +
                                ", not a " + crdt::ObjectKindName(kind));
  }
  if (!txn_) return Status::NotFound("no key \"" + std::string(key) + "\"");
  return txn_->PutObject(id_, key, kind);
}

namespace {
template <typename Ref>
Result<Ref> Make(MapRef& m, const crdt::Document* doc, crdt::Transaction* txn, std::string_view key,
                 ObjectKind kind) {
  auto id = m.Nested(key, kind);
  if (!id.ok()) return id.status();
  return Ref(doc, txn, *id);
}
}  // namespace

Result<TextRef> MapRef::Text(std::string_view key) {
  return Make<TextRef>(*this, doc_, txn_, key, ObjectKind::kText);
}
Result<ListRef> MapRef::List(std::string_view key) {
  return Make<ListRef>(*this, doc_, txn_, key, ObjectKind::kList);
}

Result<std::string> TextRef::Read() const {
  return doc_->ReadText(id_);
}
Result<size_t> TextRef::Size() const {
  auto t = doc_->TextObject(id_);
  if (!t.ok()) return t.status();
  return (*t)->size();
}
Status TextRef::Insert(size_t pos, std::string_view utf8) {
  WEFT_RETURN_IF_ERROR(Writable());
  return txn_->TextInsert(id_, pos, utf8);
}
Status TextRef::Delete(size_t pos, size_t len) {
  WEFT_RETURN_IF_ERROR(Writable());
  return txn_->TextDelete(id_, pos, len);
}
Result<crdt::Anchor> TextRef::AnchorAt(size_t index, crdt::Bias bias) const {
  return doc_->AnchorAt(id_, index, bias);
}
Result<size_t> TextRef::IndexOf(const crdt::Anchor& anchor) const {
  return doc_->IndexOfAnchor(id_, anchor);
}

Result<std::vector<crdt::Value>> ListRef::Values() const {
  return doc_->ReadList(id_);
}
Result<size_t> ListRef::Size() const {
  auto kind = doc_->KindOf(id_);
  if (!kind.ok()) return kind.status();
  if (*kind != ObjectKind::kList) return Status::TypeMismatch("not a list");
  return doc_->SequenceSize(id_);
}
Status ListRef::Insert(size_t pos, std::vector<Scalar> values) {
  WEFT_RETURN_IF_ERROR(Writable());
  return txn_->ListInsert(id_, pos, std::move(values));
}
Result<MapRef> ListRef::InsertMap(size_t pos) {
  WEFT_RETURN_IF_ERROR(Writable());
  auto id = txn_->ListInsertObject(id_, pos, ObjectKind::kMap);
  if (!id.ok()) return id.status();
  return MapRef(doc_, txn_, *id);
}
Status ListRef::Delete(size_t pos, size_t len) {
  WEFT_RETURN_IF_ERROR(Writable());
  auto kind = doc_->KindOf(id_);
  if (!kind.ok()) return kind.status();
  if (*kind != ObjectKind::kList) return Status::TypeMismatch("not a list");
  return txn_->ListDelete(id_, pos, len);
}

Result<MapRef> MapRef::Map(std::string_view key) {
  return Make<MapRef>(*this, doc_, txn_, key, ObjectKind::kMap);
}
Result<RegisterRef> MapRef::Register(std::string_view key) {
  return Make<RegisterRef>(*this, doc_, txn_, key, ObjectKind::kRegister);
}
Result<LwwRef> MapRef::Lww(std::string_view key) {
  return Make<LwwRef>(*this, doc_, txn_, key, ObjectKind::kLwwRegister);
}
Result<CounterRef> MapRef::Counter(std::string_view key) {
  return Make<CounterRef>(*this, doc_, txn_, key, ObjectKind::kCounter);
}
Result<SetRef> MapRef::Set(std::string_view key) {
  return Make<SetRef>(*this, doc_, txn_, key, ObjectKind::kSet);
}

}  // namespace weft
