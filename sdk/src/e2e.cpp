#include "e2e.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>

#include "doc_id.h"

namespace weft::e2e {

namespace {

// Context strings: every hash, MAC and AEAD here is domain-separated (a string, a zero byte, the
// bytes), so that nothing made for one use is accepted for another.
constexpr std::string_view kRecordHashContext = "weft/e2e-record/v1";
constexpr std::string_view kKeyCheckContext = "weft/e2e-key-check/v1";
constexpr std::string_view kWrapContext = "weft/e2e-wrap/v1";
constexpr std::string_view kPayloadContext = "weft/e2e-payload/v1";

constexpr size_t kHashSize = 32;
constexpr size_t kNonceSize = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;  // 24
constexpr size_t kTagSize = crypto_aead_xchacha20poly1305_ietf_ABYTES;       // 16
constexpr size_t kSealedSize = EpochKey::kSize + crypto_box_SEALBYTES;       // 80
constexpr size_t kWrappedSize = kNonceSize + EpochKey::kSize + kTagSize;     // 72
constexpr size_t kReaderEntrySize = PublicKey::kSize + kSealedSize;          // 112
constexpr size_t kSignatureSize = 64;
// version, epoch
constexpr size_t kPayloadHeaderSize = 1 + 8;

static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == EpochKey::kSize);
static_assert(crypto_generichash_BYTES == kHashSize);

Status PermissionDenied(std::string m) {
  return {StatusCode::kPermissionDenied, std::move(m)};
}
Status Internal(std::string m) {
  return {StatusCode::kInternal, std::move(m)};
}

const uint8_t* U8(std::string_view s) {
  return reinterpret_cast<const uint8_t*>(s.data());
}
uint8_t* U8(std::string& s) {
  return reinterpret_cast<uint8_t*>(s.data());
}

void PutU64(std::string& out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>(v >> (8 * i)));
}
void PutU32(std::string& out, uint32_t v) {
  for (int i = 3; i >= 0; --i) out.push_back(static_cast<char>(v >> (8 * i)));
}
void PutU16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}
void PutContext(std::string& out, std::string_view context) {
  out.append(context);
  out.push_back('\0');
}
void PutKey(std::string& out, const PublicKey& key) {
  out.append(reinterpret_cast<const char*>(key.bytes().data()), PublicKey::kSize);
}

// Reads fixed-size fields from untrusted bytes; every read checks what is left first.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : rest_(bytes) {}
  size_t left() const { return rest_.size(); }
  bool Take(size_t n, std::string_view* out) {
    if (rest_.size() < n) return false;
    *out = rest_.substr(0, n);
    rest_.remove_prefix(n);
    return true;
  }
  bool Uint(size_t n, uint64_t* out) {
    std::string_view b;
    if (!Take(n, &b)) return false;
    uint64_t v = 0;
    for (char c : b) v = v << 8 | static_cast<uint8_t>(c);
    *out = v;
    return true;
  }

 private:
  std::string_view rest_;
};

// The document and epoch, as every context below binds them.
void PutDocEpoch(std::string& out, std::string_view doc, uint64_t epoch) {
  PutU16(out, static_cast<uint16_t>(doc.size()));
  out.append(doc);
  PutU64(out, epoch);
}

std::string KeyCheck(const uint8_t* key, std::string_view doc, uint64_t epoch) {
  std::string m;
  PutContext(m, kKeyCheckContext);
  PutDocEpoch(m, doc, epoch);
  std::string out(kHashSize, '\0');
  crypto_generichash(U8(out), out.size(), U8(m), m.size(), key, EpochKey::kSize);
  return out;
}

// What the wrapped previous key is bound to: this record's document, epoch and previous record.
std::string WrapAd(std::string_view doc, uint64_t epoch, std::string_view prev_hash) {
  std::string ad;
  PutContext(ad, kWrapContext);
  PutDocEpoch(ad, doc, epoch);
  ad.append(prev_hash);
  return ad;
}

std::string PayloadAd(uint8_t version, uint64_t epoch, std::string_view header_ad) {
  std::string ad;
  ad.reserve(kPayloadContext.size() + 1 + kPayloadHeaderSize + header_ad.size());
  PutContext(ad, kPayloadContext);
  ad.push_back(static_cast<char>(version));
  PutU64(ad, epoch);
  ad.append(header_ad);
  return ad;
}

// Everything the encoding holds but the signature. Assumes the sizes were checked.
void EncodeUnsigned(const KeyRecord& r, std::string& out) {
  out.reserve(1 + 2 + r.doc.size() + 8 + kHashSize + 2 * PublicKey::kSize + 4 +
              r.readers.size() * kReaderEntrySize + kWrappedSize + kSignatureSize);
  out.push_back(static_cast<char>(kRecordVersion));
  PutDocEpoch(out, r.doc, r.epoch);
  if (r.epoch > 0) out.append(r.prev_hash);
  PutKey(out, r.admin);
  out.append(r.key_check);
  PutU32(out, static_cast<uint32_t>(r.readers.size()));
  for (const SealedKey& s : r.readers) {
    PutKey(out, s.reader);
    out.append(s.sealed);
  }
  if (r.epoch > 0) out.append(r.wrapped_prev);
}

// The checks Decode makes, for a record built in memory (a caller may have altered one).
Status CheckShape(const KeyRecord& r) {
  if (!CheckDocumentId(r.doc).ok()) return Status::Corruption("key record: bad document ID");
  const bool first = r.epoch == 0;
  if (r.prev_hash.size() != (first ? 0 : kHashSize)) {
    return Status::Corruption("key record: epoch " + std::to_string(r.epoch) +
                              (first ? " names a previous record" : " names no previous record"));
  }
  if (r.wrapped_prev.size() != (first ? 0 : kWrappedSize)) {
    return Status::Corruption("key record: bad wrapped previous key for epoch " +
                              std::to_string(r.epoch));
  }
  if (!r.admin.valid()) return Status::Corruption("key record: no admin key");
  if (r.key_check.size() != kHashSize) return Status::Corruption("key record: bad key check");
  if (r.readers.empty() || r.readers.size() > kMaxReaders) {
    return Status::Corruption("key record: 1 to " + std::to_string(kMaxReaders) + " readers, not " +
                              std::to_string(r.readers.size()));
  }
  for (size_t i = 0; i < r.readers.size(); ++i) {
    if (!r.readers[i].reader.valid() || r.readers[i].sealed.size() != kSealedSize) {
      return Status::Corruption("key record: bad reader entry " + std::to_string(i));
    }
    if (i > 0 && !(r.readers[i - 1].reader < r.readers[i].reader)) {
      return Status::Corruption("key record: readers not in ascending order of key");
    }
  }
  return Status::Ok();
}

Status Unwrap(const KeyRecord& record, const EpochKey& key, uint8_t* out) {
  std::string ad = WrapAd(record.doc, record.epoch, record.prev_hash);
  std::string_view w = record.wrapped_prev;
  unsigned long long n = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &n, nullptr, U8(w) + kNonceSize,
                                                 w.size() - kNonceSize, U8(ad), ad.size(), U8(w),
                                                 key.data()) != 0 ||
      n != EpochKey::kSize) {
    sodium_memzero(out, EpochKey::kSize);
    return Status::Corruption("key record: the previous epoch's key does not unwrap for epoch " +
                              std::to_string(record.epoch));
  }
  return Status::Ok();
}

}  // namespace

// Fills keys that come out of a sealed box or a wrap.
struct EpochKeyAccess {
  static uint8_t* Mutable(EpochKey& k) { return k.bytes_.get(); }
  static void MarkFilled(EpochKey& k) { k.filled_ = true; }
};

void EpochKey::Free::operator()(uint8_t* p) const {
  sodium_free(p);  // wipes it
}

EpochKey::EpochKey() {
  if (sodium_init() < 0) return;
  bytes_.reset(static_cast<uint8_t*>(sodium_malloc(kSize)));
}

Result<EpochKey> EpochKey::Generate() {
  EpochKey k;
  if (!k.bytes_) return Internal("libsodium: no guarded memory for an epoch key");
  crypto_aead_xchacha20poly1305_ietf_keygen(k.bytes_.get());
  k.filled_ = true;
  return k;
}

Result<EpochKey> NewEpochKey() {
  return EpochKey::Generate();
}

std::string SignedBytes(const KeyRecord& record) {
  std::string out;
  EncodeUnsigned(record, out);
  return out;
}

std::string EncodeKeyRecord(const KeyRecord& record) {
  std::string out;
  EncodeUnsigned(record, out);
  out.append(reinterpret_cast<const char*>(record.signature.data()), kSignatureSize);
  return out;
}

Result<KeyRecord> DecodeKeyRecord(std::string_view bytes) {
  auto bad = [](std::string what) { return Status::Corruption("key record: " + what); };
  Reader in(bytes);
  KeyRecord r;
  uint64_t version = 0, doc_size = 0, count = 0;
  std::string_view b;
  if (!in.Uint(1, &version)) return bad("empty");
  if (version != kRecordVersion) {
    return Status::UnsupportedVersion("key record: version " + std::to_string(version) +
                                      ", this build knows " + std::to_string(kRecordVersion));
  }
  if (!in.Uint(2, &doc_size) || !in.Take(doc_size, &b)) return bad("truncated in document ID");
  r.doc = std::string(b);
  if (!CheckDocumentId(r.doc).ok()) return bad("bad document ID");
  if (!in.Uint(8, &r.epoch)) return bad("truncated in epoch");
  if (r.epoch > 0) {
    if (!in.Take(kHashSize, &b)) return bad("truncated in previous record hash");
    r.prev_hash = std::string(b);
  }
  if (!in.Take(PublicKey::kSize, &b)) return bad("truncated in admin key");
  auto admin = PublicKey::FromBytes(b);
  if (!admin) return bad("no admin key");
  r.admin = *admin;
  if (!in.Take(kHashSize, &b)) return bad("truncated in key check");
  r.key_check = std::string(b);
  if (!in.Uint(4, &count)) return bad("truncated in reader count");
  if (count == 0 || count > kMaxReaders) {
    return bad("1 to " + std::to_string(kMaxReaders) + " readers, not " + std::to_string(count));
  }
  // Checked before reserving, so that a hostile count cannot make us allocate.
  if (in.left() < count * kReaderEntrySize) return bad("truncated in readers");
  r.readers.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    SealedKey s;
    if (!in.Take(PublicKey::kSize, &b)) return bad("truncated in readers");
    auto reader = PublicKey::FromBytes(b);
    if (!reader) return bad("reader " + std::to_string(i) + " has no key");
    s.reader = *reader;
    if (!r.readers.empty() && !(r.readers.back().reader < s.reader)) {
      return bad("readers not in ascending order of key");
    }
    if (!in.Take(kSealedSize, &b)) return bad("truncated in readers");
    s.sealed = std::string(b);
    r.readers.push_back(std::move(s));
  }
  if (r.epoch > 0) {
    if (!in.Take(kWrappedSize, &b)) return bad("truncated in wrapped previous key");
    r.wrapped_prev = std::string(b);
  }
  if (!in.Take(kSignatureSize, &b)) return bad("truncated in signature");
  std::memcpy(r.signature.data(), b.data(), kSignatureSize);
  if (in.left() != 0) return bad(std::to_string(in.left()) + " bytes after the signature");
  return r;
}

std::string RecordHash(const KeyRecord& record) {
  std::string m;
  PutContext(m, kRecordHashContext);
  EncodeUnsigned(record, m);
  return Blake2b(m);
}

Status VerifyKeyRecordSignature(const KeyRecord& record) {
  WEFT_RETURN_IF_ERROR(CheckShape(record));
  if (!VerifySignature(record.admin, kE2eKeysPurpose, SignedBytes(record), record.signature)) {
    return Status::Corruption("key record: the signature is not its admin's, for epoch " +
                              std::to_string(record.epoch) + " of " + record.doc);
  }
  return Status::Ok();
}

Status VerifyKeyRecord(const KeyRecord& record, std::span<const PublicKey> admins) {
  WEFT_RETURN_IF_ERROR(VerifyKeyRecordSignature(record));
  if (std::find(admins.begin(), admins.end(), record.admin) == admins.end()) {
    return PermissionDenied("key record: signed by " + record.admin.ToHex() +
                            ", which is not an admin of " + record.doc);
  }
  return Status::Ok();
}

Status CheckLink(const KeyRecord& previous, const KeyRecord& next) {
  if (previous.doc != next.doc) return Status::Corruption("key records of two documents");
  if (previous.epoch + 1 != next.epoch) {
    return Status::Corruption("key record of epoch " + std::to_string(next.epoch) +
                              " does not follow epoch " + std::to_string(previous.epoch));
  }
  std::string h = RecordHash(previous);
  if (next.prev_hash.size() != h.size() ||
      sodium_memcmp(next.prev_hash.data(), h.data(), h.size()) != 0) {
    return Status::Corruption("key record of epoch " + std::to_string(next.epoch) +
                              " names another previous record");
  }
  return Status::Ok();
}

bool IsKeyOf(const KeyRecord& record, const EpochKey& key) {
  if (!key.valid() || record.key_check.size() != kHashSize) return false;
  std::string c = KeyCheck(key.data(), record.doc, record.epoch);
  return sodium_memcmp(c.data(), record.key_check.data(), kHashSize) == 0;
}

Result<KeyRecord> MakeKeyRecord(const SecretKey& admin, std::string_view doc,
                                std::span<const PublicKey> readers, const EpochKey& key,
                                const KeyRecord* previous, const EpochKey* previous_key) {
  if (sodium_init() < 0) return Internal("libsodium cannot start");
  if (Status s = CheckDocumentId(doc); !s.ok()) return s;
  if (!key.valid()) return Status::InvalidArgument("no epoch key");
  if ((previous == nullptr) != (previous_key == nullptr)) {
    return Status::InvalidArgument("a rotation needs both the previous record and its key");
  }
  KeyRecord r;
  r.doc = std::string(doc);
  r.admin = admin.public_key();
  if (!r.admin.valid()) return Status::InvalidArgument("no admin secret key");
  if (previous) {
    if (previous->doc != doc) {
      return Status::InvalidArgument("the previous record is of another document");
    }
    if (!IsKeyOf(*previous, *previous_key)) {
      return Status::InvalidArgument("the previous key is not the previous record's");
    }
    if (sodium_memcmp(previous_key->data(), key.data(), EpochKey::kSize) == 0) {
      return Status::InvalidArgument("a rotation needs a new key");
    }
    r.epoch = previous->epoch + 1;
    r.prev_hash = RecordHash(*previous);
  }
  r.key_check = KeyCheck(key.data(), r.doc, r.epoch);

  std::vector<PublicKey> sorted(readers.begin(), readers.end());
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  if (sorted.empty() || sorted.size() > kMaxReaders) {
    return Status::InvalidArgument("an epoch has 1 to " + std::to_string(kMaxReaders) +
                                   " readers, not " + std::to_string(sorted.size()));
  }
  r.readers.reserve(sorted.size());
  for (const PublicKey& reader : sorted) {
    auto x = reader.ToX25519();
    if (!x) return Status::InvalidArgument("reader " + reader.ToHex() + " is not a valid key");
    SealedKey s{reader, std::string(kSealedSize, '\0')};
    if (crypto_box_seal(U8(s.sealed), key.data(), EpochKey::kSize, x->data()) != 0) {
      return Internal("libsodium: crypto_box_seal failed");
    }
    r.readers.push_back(std::move(s));
  }

  if (previous) {
    r.wrapped_prev.assign(kWrappedSize, '\0');
    randombytes_buf(U8(r.wrapped_prev), kNonceSize);
    std::string ad = WrapAd(r.doc, r.epoch, r.prev_hash);
    unsigned long long n = 0;
    if (crypto_aead_xchacha20poly1305_ietf_encrypt(
            U8(r.wrapped_prev) + kNonceSize, &n, previous_key->data(), EpochKey::kSize, U8(ad),
            ad.size(), nullptr, U8(r.wrapped_prev), key.data()) != 0 ||
        n != EpochKey::kSize + kTagSize) {
      return Internal("libsodium: wrapping the previous key failed");
    }
  }

  auto sig = admin.Sign(kE2eKeysPurpose, SignedBytes(r));
  if (!sig.ok()) return sig.status();
  r.signature = *sig;
  return r;
}

Result<EpochKey> OpenEpochKey(const KeyRecord& record, const SecretKey& mine) {
  WEFT_RETURN_IF_ERROR(VerifyKeyRecordSignature(record));
  PublicKey me = mine.public_key();
  auto it = std::lower_bound(record.readers.begin(), record.readers.end(), me,
                             [](const SealedKey& s, const PublicKey& k) { return s.reader < k; });
  if (it == record.readers.end() || it->reader != me) {
    return PermissionDenied("this device (" + me.ToHex() + ") is not a reader of epoch " +
                            std::to_string(record.epoch) + " of " + record.doc);
  }
  EpochKey k;
  if (EpochKeyAccess::Mutable(k) == nullptr) {
    return Internal("libsodium: no guarded memory for an epoch key");
  }
  WEFT_RETURN_IF_ERROR(mine.OpenSealed(it->sealed, EpochKeyAccess::Mutable(k), EpochKey::kSize));
  EpochKeyAccess::MarkFilled(k);
  if (!IsKeyOf(record, k)) {
    return Status::Corruption("key record: the key sealed to this device is not epoch " +
                              std::to_string(record.epoch) + "'s key");
  }
  return k;
}

Result<EpochKey> UnwrapPreviousKey(const KeyRecord& record, const EpochKey& key,
                                   const KeyRecord& previous) {
  if (record.epoch == 0) return Status::InvalidArgument("epoch 0 has no previous key");
  WEFT_RETURN_IF_ERROR(CheckShape(record));
  WEFT_RETURN_IF_ERROR(CheckLink(previous, record));
  if (!IsKeyOf(record, key)) {
    return PermissionDenied("not the key of epoch " + std::to_string(record.epoch) + " of " +
                            record.doc);
  }
  EpochKey k;
  if (EpochKeyAccess::Mutable(k) == nullptr) {
    return Internal("libsodium: no guarded memory for an epoch key");
  }
  WEFT_RETURN_IF_ERROR(Unwrap(record, key, EpochKeyAccess::Mutable(k)));
  EpochKeyAccess::MarkFilled(k);
  if (!IsKeyOf(previous, k)) {
    return Status::Corruption("key record: the wrapped key is not epoch " +
                              std::to_string(previous.epoch) + "'s key");
  }
  return k;
}

Result<std::vector<EpochKey>> KeysThroughChain(std::span<const KeyRecord> chain, EpochKey latest) {
  if (chain.empty()) return Status::InvalidArgument("no key records");
  if (!IsKeyOf(chain.back(), latest)) {
    return PermissionDenied("not the key of the last record of the chain");
  }
  std::vector<EpochKey> keys;
  keys.reserve(chain.size());
  keys.push_back(std::move(latest));
  for (size_t i = chain.size() - 1; i > 0; --i) {
    auto prev = UnwrapPreviousKey(chain[i], keys.back(), chain[i - 1]);
    if (!prev.ok()) return prev.status();
    keys.push_back(std::move(prev).value());
  }
  if (chain.front().epoch != 0) {
    return Status::InvalidArgument("the chain does not start at epoch 0");
  }
  std::reverse(keys.begin(), keys.end());
  return keys;
}

Result<std::string> EncryptPayload(const EpochKey& key, uint64_t epoch, std::string_view header_ad,
                                   std::string_view plaintext) {
  if (!key.valid()) return Status::InvalidArgument("no epoch key");
  std::string out;
  out.reserve(kPayloadHeaderSize + kNonceSize + plaintext.size() + kTagSize);
  out.push_back(static_cast<char>(kPayloadVersion));
  PutU64(out, epoch);
  out.resize(kPayloadHeaderSize + kNonceSize + plaintext.size() + kTagSize);
  uint8_t* nonce = U8(out) + kPayloadHeaderSize;
  randombytes_buf(nonce, kNonceSize);
  std::string ad = PayloadAd(kPayloadVersion, epoch, header_ad);
  unsigned long long n = 0;
  if (crypto_aead_xchacha20poly1305_ietf_encrypt(nonce + kNonceSize, &n, U8(plaintext),
                                                 plaintext.size(), U8(ad), ad.size(), nullptr,
                                                 nonce, key.data()) != 0) {
    return Internal("libsodium: encryption failed");
  }
  return out;
}

Result<uint64_t> PayloadEpoch(std::string_view payload) {
  Reader in(payload);
  uint64_t version = 0, epoch = 0;
  if (!in.Uint(1, &version)) return Status::Corruption("encrypted payload: empty");
  if (version != kPayloadVersion) {
    return Status::UnsupportedVersion("encrypted payload: version " + std::to_string(version) +
                                      ", this build knows " + std::to_string(kPayloadVersion));
  }
  if (!in.Uint(8, &epoch) || in.left() < kNonceSize + kTagSize) {
    return Status::Corruption("encrypted payload: " + std::to_string(payload.size()) +
                              " bytes, shorter than its header, nonce and tag");
  }
  return epoch;
}

Result<std::string> DecryptPayload(const EpochKey& key, std::string_view header_ad,
                                   std::string_view payload) {
  auto epoch = PayloadEpoch(payload);
  if (!epoch.ok()) return epoch.status();
  if (!key.valid()) return Status::InvalidArgument("no epoch key");
  const uint8_t* nonce = U8(payload) + kPayloadHeaderSize;
  const size_t ct_size = payload.size() - kPayloadHeaderSize - kNonceSize;
  std::string ad = PayloadAd(kPayloadVersion, *epoch, header_ad);
  std::string out(ct_size - kTagSize, '\0');
  unsigned long long n = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(U8(out), &n, nullptr, nonce + kNonceSize, ct_size,
                                                 U8(ad), ad.size(), nonce, key.data()) != 0) {
    return PermissionDenied("encrypted payload of epoch " + std::to_string(*epoch) +
                            " does not decrypt: a key of another epoch or document, or the "
                            "payload or its header was altered");
  }
  out.resize(n);
  return out;
}

int CompareRecords(const KeyRecord& a, const KeyRecord& b) {
  if (a.epoch != b.epoch) return a.epoch < b.epoch ? -1 : 1;
  std::string ha = RecordHash(a), hb = RecordHash(b);
  int c = ha.compare(hb);
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

const KeyRecord* NewestRecord(std::span<const KeyRecord> records) {
  const KeyRecord* best = nullptr;
  for (const KeyRecord& r : records) {
    if (best == nullptr || CompareRecords(*best, r) < 0) best = &r;
  }
  return best;
}

}  // namespace weft::e2e
