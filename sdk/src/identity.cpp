#include "weft/identity.h"

#include "identity_internal.h"
#include "weft/replica.h"

namespace weft {

bool PublicKey::valid() const {
  for (uint8_t b : bytes_) {
    if (b != 0) return true;
  }
  return false;
}

std::string PublicKey::ToHex() const {
  static const char* k = "0123456789abcdef";
  std::string out;
  out.reserve(2 * kSize);
  for (uint8_t b : bytes_) {
    out += k[b >> 4];
    out += k[b & 15];
  }
  return out;
}

std::optional<PublicKey> PublicKey::FromHex(std::string_view hex) {
  if (hex.size() != 2 * kSize) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::array<uint8_t, kSize> bytes{};
  for (size_t i = 0; i < kSize; ++i) {
    int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    bytes[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  PublicKey key(bytes);
  if (!key.valid()) return std::nullopt;
  return key;
}

std::optional<PublicKey> PublicKey::FromBytes(std::string_view bytes) {
  if (bytes.size() != kSize) return std::nullopt;
  std::array<uint8_t, kSize> b{};
  std::memcpy(b.data(), bytes.data(), kSize);
  PublicKey key(b);
  if (!key.valid()) return std::nullopt;
  return key;
}

std::optional<std::array<uint8_t, PublicKey::kSize>> PublicKey::ToX25519() const {
  if (!valid() || sodium_init() < 0) return std::nullopt;
  std::array<uint8_t, kSize> x{};
  if (crypto_sign_ed25519_pk_to_curve25519(x.data(), bytes_.data()) != 0) return std::nullopt;
  return x;
}

SecretKey::SecretKey() {
  if (sodium_init() < 0) return;
  bytes_ = static_cast<uint8_t*>(sodium_malloc(kSize));
}

SecretKey::~SecretKey() {
  if (bytes_) sodium_free(bytes_);  // wipes it
}

Result<PublicKey> SecretKey::Generate() {
  if (!bytes_)
    return Status(StatusCode::kInternal, "libsodium: no guarded memory for a secret key");
  std::array<uint8_t, PublicKey::kSize> pk{};
  if (crypto_sign_keypair(pk.data(), bytes_) != 0) {
    return Status(StatusCode::kInternal, "libsodium: crypto_sign_keypair failed");
  }
  loaded_ = true;
  return PublicKey(pk);
}

Result<PublicKey> SecretKey::Load(std::string_view stored) {
  if (!bytes_)
    return Status(StatusCode::kInternal, "libsodium: no guarded memory for a secret key");
  if (stored.size() != kSize) {
    return Status::Corruption("the device secret key has " + std::to_string(stored.size()) +
                              " bytes, not " + std::to_string(kSize));
  }
  std::memcpy(bytes_, stored.data(), kSize);
  std::array<uint8_t, PublicKey::kSize> pk{};
  crypto_sign_ed25519_sk_to_pk(pk.data(), bytes_);
  loaded_ = true;
  return PublicKey(pk);
}

std::string_view SecretKey::ForStorage() const {
  return bytes_ ? std::string_view(reinterpret_cast<const char*>(bytes_), kSize)
                : std::string_view();
}

namespace {

// The bytes a signature covers: the purpose, a zero byte, the message.
std::string Signed(std::string_view purpose, std::string_view message) {
  std::string out;
  out.reserve(purpose.size() + 1 + message.size());
  out.append(purpose);
  out.push_back('\0');
  out.append(message);
  return out;
}

}  // namespace

std::string BindingMessage(std::string_view doc, crdt::NodeId actor, std::string_view key) {
  std::string m(doc);
  m.push_back('\0');
  for (int i = 7; i >= 0; --i) m.push_back(static_cast<char>(actor.value >> (8 * i)));
  m.append(key);
  return m;
}

std::string Blake2b(std::string_view bytes) {
  std::string out(crypto_generichash_BYTES, '\0');
  if (sodium_init() < 0) return out;
  crypto_generichash(reinterpret_cast<uint8_t*>(out.data()), out.size(),
                     reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), nullptr, 0);
  return out;
}

std::string ChangeMessage(std::string_view doc, const crdt::Change& change) {
  std::string m(doc);
  m.push_back('\0');
  m += crdt::EncodeChangeUnsigned(change);
  return Blake2b(m);
}

std::string StateMessage(std::string_view doc, const crdt::VersionVector& version, uint64_t lamport,
                         std::string_view state_digest) {
  std::string m(doc);
  m.push_back('\0');
  m += EncodeCausalToken("", version);
  m.push_back('\0');
  for (int i = 7; i >= 0; --i) m.push_back(static_cast<char>(lamport >> (8 * i)));
  m.append(state_digest);
  return m;
}

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (sodium_init() >= 0) randombytes_buf(out.data(), n);
  return out;
}

Result<Signature> SecretKey::Sign(std::string_view purpose, std::string_view message) const {
  if (!loaded_) return Status(StatusCode::kInternal, "no secret key to sign with");
  std::string bytes = Signed(purpose, message);
  Signature sig{};
  if (crypto_sign_detached(sig.data(), nullptr, reinterpret_cast<const uint8_t*>(bytes.data()),
                           bytes.size(), bytes_) != 0) {
    return Status(StatusCode::kInternal, "libsodium: crypto_sign_detached failed");
  }
  return sig;
}

PublicKey SecretKey::public_key() const {
  std::array<uint8_t, PublicKey::kSize> pk{};
  if (loaded_) crypto_sign_ed25519_sk_to_pk(pk.data(), bytes_);
  return PublicKey(pk);
}

Status SecretKey::OpenSealed(std::string_view sealed, uint8_t* out, size_t out_size) const {
  if (!loaded_) return Status(StatusCode::kInternal, "no secret key to open a sealed box with");
  if (sealed.size() != out_size + crypto_box_SEALBYTES) {
    return Status(StatusCode::kPermissionDenied,
                  "a sealed box of " + std::to_string(sealed.size()) + " bytes, not " +
                      std::to_string(out_size + crypto_box_SEALBYTES));
  }
  // The X25519 pair converted from the Ed25519 one, in guarded memory, wiped at once after use.
  auto* x =
      static_cast<uint8_t*>(sodium_malloc(crypto_box_SECRETKEYBYTES + crypto_box_PUBLICKEYBYTES));
  if (!x) return Status(StatusCode::kInternal, "libsodium: no guarded memory for an X25519 key");
  uint8_t* x_sk = x;
  uint8_t* x_pk = x + crypto_box_SECRETKEYBYTES;
  Status status;
  if (crypto_sign_ed25519_sk_to_curve25519(x_sk, bytes_) != 0 ||
      crypto_scalarmult_base(x_pk, x_sk) != 0) {
    status = Status(StatusCode::kInternal, "libsodium: cannot convert the device key to X25519");
  } else if (crypto_box_seal_open(out, reinterpret_cast<const uint8_t*>(sealed.data()),
                                  sealed.size(), x_pk, x_sk) != 0) {
    sodium_memzero(out, out_size);
    status = Status(StatusCode::kPermissionDenied,
                    "the sealed box was not made to this device's key, or was altered");
  }
  sodium_free(x);  // wipes it
  return status;
}

bool VerifySignature(const PublicKey& key, std::string_view purpose, std::string_view message,
                     const Signature& signature) {
  if (!key.valid() || sodium_init() < 0) return false;
  std::string bytes = Signed(purpose, message);
  return crypto_sign_verify_detached(signature.data(),
                                     reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                                     key.bytes().data()) == 0;
}

bool VerifySignature(const PublicKey& key, std::string_view purpose, std::string_view message,
                     std::string_view signature) {
  if (signature.size() != Signature{}.size()) return false;
  Signature sig{};
  std::memcpy(sig.data(), signature.data(), sig.size());
  return VerifySignature(key, purpose, message, sig);
}

}  // namespace weft
