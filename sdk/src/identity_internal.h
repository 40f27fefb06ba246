// The device's secret key, inside the SDK only (see weft/identity.h).
//
// A resource type: not copyable; its bytes live in libsodium's guarded memory (sodium_malloc:
// guard pages, never swapped where the system allows) and are wiped when it is destroyed.
// Not thread-safe for writes (Generate, Load); reads may be shared once it is set.
#pragma once

#include <sodium.h>

#include <cstdint>
#include <cstring>
#include <string_view>

#include "weft/crdt/causality.h"
#include "weft/crdt/document.h"
#include "weft/identity.h"
#include "weft/status.h"

namespace weft {

// What an author's binding to a key signs (kBindPurpose): the document, the author and the key
// (32 raw bytes), so that it binds that author in that document only.
std::string BindingMessage(std::string_view doc, crdt::NodeId actor, std::string_view key);

// What a change's signature signs (kChangePurpose): a BLAKE2b-256 digest of the document ID, a
// zero byte and crdt::EncodeChangeUnsigned, so that it holds for that change in that document
// only (a change replayed into another document, or altered in any byte, does not verify).
std::string ChangeMessage(std::string_view doc, const crdt::Change& change);

// What a state seal signs (kStatePurpose): the document ID, the version (as a causal token), the
// Lamport time and the BLAKE2b-256 digest of the canonical state.
std::string StateMessage(std::string_view doc, const crdt::VersionVector& version, uint64_t lamport,
                         std::string_view state_digest);

// A BLAKE2b-256 digest of `bytes`.
std::string Blake2b(std::string_view bytes);

// `n` random bytes from libsodium's generator (for nonces).
std::string RandomBytes(size_t n);

class SecretKey {
 public:
  static constexpr size_t kSize = crypto_sign_SECRETKEYBYTES;  // Ed25519: seed and public key

  SecretKey();
  ~SecretKey();
  SecretKey(const SecretKey&) = delete;
  SecretKey& operator=(const SecretKey&) = delete;

  // A new random key pair; returns its public key.
  Result<PublicKey> Generate();
  // Takes the key from its stored bytes; returns the public key it holds. kCorruption for bytes
  // of the wrong size.
  Result<PublicKey> Load(std::string_view stored);
  // The bytes to store in the replica's own database (and nowhere else).
  std::string_view ForStorage() const;
  // Signs `message` for `purpose` (see VerifySignature). kInternal when no key is loaded.
  Result<Signature> Sign(std::string_view purpose, std::string_view message) const;
  // The public half of the loaded key (all zero when none is loaded).
  PublicKey public_key() const;
  // Opens a sealed box (crypto_box_seal) made to this device's X25519 key (PublicKey::ToX25519)
  // into `out`, which must be exactly `out_size` bytes: the plaintext's size. The converted
  // X25519 secret lives only in guarded memory for the call. kPermissionDenied when the box was
  // not made to this key or was altered; kInternal when no key is loaded.
  Status OpenSealed(std::string_view sealed, uint8_t* out, size_t out_size) const;

 private:
  uint8_t* bytes_ = nullptr;
  bool loaded_ = false;  // Generate or Load succeeded: bytes_ holds a key, not sodium_malloc's fill
};

}  // namespace weft
