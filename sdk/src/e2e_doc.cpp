#include "e2e_doc.h"

#include <algorithm>
#include <utility>

namespace weft::e2e {

namespace {

bool IsContent(const crdt::Op& op) {
  return op.type != crdt::Op::Type::kAccess;
}

void AppendU64(std::string& out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void AppendBytes(std::string& out, std::string_view b) {
  AppendU64(out, b.size());
  out.append(b);
}

}  // namespace

bool HasSealed(const crdt::Change& c) {
  return std::any_of(c.ops.begin(), c.ops.end(),
                     [](const crdt::Op& op) { return op.type == crdt::Op::Type::kSealed; });
}

bool HasKeysOps(const crdt::Change& c) {
  return std::any_of(c.ops.begin(), c.ops.end(), [](const crdt::Op& op) {
    return op.type == crdt::Op::Type::kAccess && op.action == crdt::AccessAction::kKeys;
  });
}

Result<KeyRecord> CheckKeysOp(std::string_view doc, const crdt::Op& op) {
  auto record = DecodeKeyRecord(op.proof);
  if (!record.ok())
    return Status(record.status().code(), "key record: " + record.status().message());
  if (record->doc != doc) {
    return Status(StatusCode::kPermissionDenied, "a key record of another document");
  }
  if (std::string_view(reinterpret_cast<const char*>(record->admin.bytes().data()),
                       PublicKey::kSize) != op.principal) {
    return Status(StatusCode::kPermissionDenied,
                  "a key record signed by another key than its keys op names");
  }
  if (Status s = VerifyKeyRecordSignature(*record); !s.ok()) {
    return Status(s.code(),
                  "key record of epoch " + std::to_string(record->epoch) + ": " + s.message());
  }
  return record;
}

Status CheckLayout(const crdt::Change& c, bool encrypted) {
  size_t sealed = 0, plain = 0;
  for (const crdt::Op& op : c.ops) {
    if (op.type == crdt::Op::Type::kSealed) {
      ++sealed;
    } else if (IsContent(op)) {
      ++plain;
    }
  }
  if (encrypted && plain > 0) {
    return Status(StatusCode::kPermissionDenied,
                  "content in clear in an end-to-end encrypted document");
  }
  if (encrypted && sealed > 1) {
    return Status(StatusCode::kPermissionDenied, "a change holds more than one sealed op");
  }
  if (!encrypted && sealed > 0) {
    return Status(StatusCode::kPermissionDenied,
                  "a sealed op in a document that is not end-to-end encrypted");
  }
  return Status::Ok();
}

std::string ChangeHeader(std::string_view doc, const crdt::Change& c, uint64_t first_seq,
                         uint64_t span) {
  std::string out = "weft/e2e-change/v1";
  out.push_back('\0');
  AppendBytes(out, doc);
  AppendBytes(out, c.author.ToHex());
  AppendU64(out, first_seq);
  AppendU64(out, span);
  AppendBytes(out, c.deps.ToString());
  AppendU64(out, c.lamport);
  AppendU64(out, c.time.wall_ms);
  AppendU64(out, c.time.logical);
  return out;
}

std::string EncodeEncryptedSnapshot(const KeyRecord& record, std::string_view payload) {
  std::string out(1, static_cast<char>(kSnapshotVersion));
  AppendBytes(out, EncodeKeyRecord(record));
  out.append(payload);
  return out;
}

Result<EncryptedSnapshot> DecodeEncryptedSnapshot(std::string_view bytes) {
  if (bytes.empty()) return Status::Corruption("an empty encrypted snapshot");
  if (static_cast<uint8_t>(bytes[0]) != kSnapshotVersion) {
    return Status(
        StatusCode::kUnsupportedVersion,
        "an encrypted snapshot of version " + std::to_string(static_cast<uint8_t>(bytes[0])));
  }
  if (bytes.size() < 9) return Status::Corruption("a truncated encrypted snapshot");
  uint64_t size = 0;
  for (size_t i = 1; i < 9; ++i) size = (size << 8) | static_cast<uint8_t>(bytes[i]);
  if (size > bytes.size() - 9) return Status::Corruption("a truncated encrypted snapshot");
  auto record = DecodeKeyRecord(bytes.substr(9, size));
  if (!record.ok()) {
    return Status(record.status().code(),
                  "encrypted snapshot's key record: " + record.status().message());
  }
  if (Status s = VerifyKeyRecordSignature(*record); !s.ok()) {
    return Status(s.code(), "encrypted snapshot's key record: " + s.message());
  }
  EncryptedSnapshot out;
  out.record_hash = RecordHash(*record);
  out.record = std::move(*record);
  out.payload = std::string(bytes.substr(9 + size));
  auto epoch = PayloadEpoch(out.payload);
  if (!epoch.ok()) {
    return Status(epoch.status().code(), "encrypted snapshot: " + epoch.status().message());
  }
  if (*epoch != out.record.epoch) {
    return Status::Corruption("an encrypted snapshot whose payload names another epoch (" +
                              std::to_string(*epoch) + ") than its key record (" +
                              std::to_string(out.record.epoch) + ")");
  }
  return out;
}

std::string SnapshotHeader(std::string_view doc, const crdt::VersionVector& version,
                           uint64_t lamport, std::string_view record_hash) {
  std::string out = "weft/e2e-snapshot/v1";
  out.push_back('\0');
  AppendBytes(out, doc);
  AppendBytes(out, version.ToString());
  AppendU64(out, lamport);
  AppendBytes(out, record_hash);
  return out;
}

// ---------------------------------------------------------------------------------------------
// DocKeys

bool DocKeys::Take(std::string_view doc, const crdt::Op& op, crdt::Dot dot) {
  if (!seen_.insert(dot).second) return false;
  auto record = CheckKeysOp(doc, op);
  if (!record.ok()) return false;
  HeldRecord held{std::move(*record), {}, dot};
  held.hash = RecordHash(held.record);
  // The same record twice (two ops): one is enough.
  if (!by_hash_.emplace(held.hash, records_.size()).second) return false;
  records_.push_back(std::move(held));
  return true;
}

void DocKeys::Refresh(std::string_view doc, const crdt::AccessList& access, const SecretKey& mine) {
  bool added = false;
  for (const crdt::AccessEntry& e : access.entries()) {
    if (e.action != crdt::AccessAction::kKeys || seen_.count(e.dot) != 0) continue;
    crdt::Op op;
    op.type = crdt::Op::Type::kAccess;
    op.action = e.action;
    op.principal = e.principal;
    op.proof = e.proof;
    added = Take(doc, op, e.dot) || added;
  }
  if (added) OpenAll(mine);
}

void DocKeys::RefreshWith(std::string_view doc, const crdt::Change& c, const SecretKey& mine) {
  bool added = false;
  uint64_t seq = c.start_seq;
  for (const crdt::Op& op : c.ops) {
    if (op.type == crdt::Op::Type::kAccess && op.action == crdt::AccessAction::kKeys) {
      added = Take(doc, op, crdt::Dot{c.author, seq}) || added;
    }
    seq += crdt::OpSpan(op);
  }
  if (added) OpenAll(mine);
}

void DocKeys::OpenAll(const SecretKey& mine) {
  for (const HeldRecord& r : records_) {
    if (keys_.count(r.hash) != 0 || !tried_.insert(r.hash).second) continue;
    auto key = OpenEpochKey(r.record, mine);
    if (key.ok()) keys_.emplace(r.hash, std::move(*key));
  }
  // Back through the chain: each key held unwraps the one before it (each step once).
  for (size_t i = 0; i < records_.size(); ++i) {
    size_t at = i;
    while (records_[at].record.epoch > 0) {
      const HeldRecord& r = records_[at];
      auto k = keys_.find(r.hash);
      auto p = by_hash_.find(r.record.prev_hash);
      if (k == keys_.end() || p == by_hash_.end()) break;
      const HeldRecord& prev = records_[p->second];
      if (keys_.count(prev.hash) != 0) break;  // walked already
      auto key = UnwrapPreviousKey(r.record, k->second, prev.record);
      if (!key.ok()) break;
      keys_.emplace(prev.hash, std::move(*key));
      at = p->second;
    }
  }
  by_epoch_.clear();
  for (const HeldRecord& r : records_) {
    if (keys_.count(r.hash) != 0) by_epoch_[r.record.epoch].push_back(r.hash);
  }
}

const HeldRecord* DocKeys::Newest() const {
  const HeldRecord* best = nullptr;
  for (const HeldRecord& r : records_) {
    if (!best || CompareRecords(r.record, best->record) > 0) best = &r;
  }
  return best;
}

const EpochKey* DocKeys::KeyOf(const std::string& hash) const {
  auto it = keys_.find(hash);
  return it == keys_.end() ? nullptr : &it->second;
}

std::vector<const EpochKey*> DocKeys::KeysOfEpoch(uint64_t epoch) const {
  std::vector<const EpochKey*> out;
  auto it = by_epoch_.find(epoch);
  if (it == by_epoch_.end()) return out;
  for (const std::string& h : it->second) out.push_back(&keys_.at(h));
  return out;
}

bool DocKeys::HoldsEveryKeyOf(uint64_t epoch) const {
  for (const HeldRecord& r : records_) {
    if (r.record.epoch == epoch && keys_.count(r.hash) == 0) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Sealing and opening changes

Result<crdt::Change> SealChange(std::string_view doc, const crdt::Change& plain,
                                const KeyRecord& record, const EpochKey& key) {
  size_t first = plain.ops.size(), last = 0;
  for (size_t i = 0; i < plain.ops.size(); ++i) {
    if (!IsContent(plain.ops[i])) continue;
    if (plain.ops[i].type == crdt::Op::Type::kSealed) {
      return Status::InvalidArgument("a change to seal holds a sealed op already");
    }
    if (first != plain.ops.size() && i != last + 1) {
      return Status::InvalidArgument(
          "content and access ops interleave in one change of an end-to-end encrypted document");
    }
    if (first == plain.ops.size()) first = i;
    last = i;
  }
  if (first == plain.ops.size()) return plain;
  uint64_t first_seq = plain.start_seq;
  for (size_t i = 0; i < first; ++i) first_seq += crdt::OpSpan(plain.ops[i]);
  crdt::Change inner;
  inner.author = plain.author;
  inner.start_seq = first_seq;
  inner.lamport = plain.lamport;
  inner.time = plain.time;
  inner.ops.assign(plain.ops.begin() + static_cast<std::ptrdiff_t>(first),
                   plain.ops.begin() + static_cast<std::ptrdiff_t>(last) + 1);
  const uint64_t span = inner.span();
  auto payload = EncryptPayload(key, record.epoch, ChangeHeader(doc, plain, first_seq, span),
                                crdt::EncodeChangeUnsigned(inner));
  if (!payload.ok()) return payload.status();
  crdt::Change out = plain;
  out.ops.erase(out.ops.begin() + static_cast<std::ptrdiff_t>(first),
                out.ops.begin() + static_cast<std::ptrdiff_t>(last) + 1);
  crdt::Op sealed;
  sealed.type = crdt::Op::Type::kSealed;
  sealed.delta = static_cast<int64_t>(span);
  sealed.proof = std::move(*payload);
  out.ops.insert(out.ops.begin() + static_cast<std::ptrdiff_t>(first), std::move(sealed));
  return out;
}

Result<std::optional<crdt::Change>> OpenChange(std::string_view doc, const crdt::Change& c,
                                               const DocKeys& keys, uint64_t* missing) {
  size_t at = c.ops.size();
  uint64_t first_seq = c.start_seq;
  for (size_t i = 0; i < c.ops.size(); ++i) {
    if (c.ops[i].type == crdt::Op::Type::kSealed) {
      at = i;
      break;
    }
    first_seq += crdt::OpSpan(c.ops[i]);
  }
  if (at == c.ops.size()) return std::optional<crdt::Change>(c);
  const crdt::Op& sealed = c.ops[at];
  const uint64_t span = crdt::OpSpan(sealed);
  auto epoch = PayloadEpoch(sealed.proof);
  if (!epoch.ok()) return Status(epoch.status().code(), "sealed op: " + epoch.status().message());
  std::vector<const EpochKey*> candidates = keys.KeysOfEpoch(*epoch);
  if (candidates.empty()) {
    *missing = *epoch;
    return std::optional<crdt::Change>();
  }
  const std::string header = ChangeHeader(doc, c, first_seq, span);
  for (const EpochKey* key : candidates) {
    auto plain = DecryptPayload(*key, header, sealed.proof);
    if (!plain.ok()) continue;
    auto inner = crdt::DecodeChange(*plain);
    if (!inner.ok()) {
      return Status::Corruption("sealed op decrypts to no change: " + inner.status().message());
    }
    if (inner->author != c.author || inner->start_seq != first_seq || inner->span() != span ||
        !inner->signature.empty()) {
      return Status::Corruption("sealed op decrypts to other seqs than it takes");
    }
    for (const crdt::Op& op : inner->ops) {
      if (!IsContent(op) || op.type == crdt::Op::Type::kSealed) {
        return Status::Corruption("sealed op decrypts to an access or sealed op");
      }
    }
    crdt::Change out = c;
    out.ops.erase(out.ops.begin() + static_cast<std::ptrdiff_t>(at));
    out.ops.insert(out.ops.begin() + static_cast<std::ptrdiff_t>(at),
                   std::make_move_iterator(inner->ops.begin()),
                   std::make_move_iterator(inner->ops.end()));
    return std::optional<crdt::Change>(std::move(out));
  }
  // After concurrent rotations an epoch has several records: one this device is not a reader
  // of may be the one the change was sealed under. Only holding every key of the epoch makes a
  // failure a proof of tampering.
  if (!keys.HoldsEveryKeyOf(*epoch)) {
    *missing = *epoch;
    return std::optional<crdt::Change>();
  }
  return Status(StatusCode::kPermissionDenied,
                "sealed op of change " + c.id().ToString() +
                    " does not decrypt under the key of epoch " + std::to_string(*epoch) +
                    " held here (altered, moved or replayed ciphertext)");
}

}  // namespace weft::e2e
