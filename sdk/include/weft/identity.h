// Device identities.
//
// Every replica (a device or a relay) holds an Ed25519 key pair (libsodium), made on its first open
// and kept in its database, whose file is then readable by its owner only (0600). The secret key
// never leaves the replica: it lives in guarded memory (sodium_malloc) while the replica is open
// and is wiped when it closes. The public key is the device's identity: what sessions authenticate,
// what access lists name and what signatures are checked against (docs/security.md). Node IDs stay
// as they are (random, 64-bit): the key is the identity, the node ID a short name in paths and
// version vectors.
//
// PublicKey is a plain value type; safe to copy and share between threads.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace weft {

// An Ed25519 signature.
using Signature = std::array<uint8_t, 64>;

class PublicKey {
 public:
  static constexpr size_t kSize = 32;

  PublicKey() = default;  // all zero: no key
  explicit PublicKey(const std::array<uint8_t, kSize>& bytes) : bytes_(bytes) {}

  const std::array<uint8_t, kSize>& bytes() const { return bytes_; }
  // False for the all-zero key.
  bool valid() const;
  // 64 lowercase hexadecimal characters.
  std::string ToHex() const;
  // nullopt unless `hex` is exactly 64 hexadecimal characters (either case) naming a valid key.
  static std::optional<PublicKey> FromHex(std::string_view hex);
  // nullopt unless `bytes` is exactly kSize raw bytes naming a valid key.
  static std::optional<PublicKey> FromBytes(std::string_view bytes);
  // This device's X25519 public key (for sealed boxes to it: end-to-end encrypted documents),
  // converted from the Ed25519 key; nullopt when the bytes are not a valid Ed25519 point.
  std::optional<std::array<uint8_t, kSize>> ToX25519() const;

  friend bool operator==(const PublicKey&, const PublicKey&) = default;
  friend auto operator<=>(const PublicKey&, const PublicKey&) = default;

 private:
  std::array<uint8_t, kSize> bytes_{};
};

// What a signature is for. The label is part of the signed bytes (label, a zero byte, then the
// message), so a signature made for one purpose is never valid for another.
inline constexpr std::string_view kSessionPurpose = "weft/session/v1";      // sync handshakes
inline constexpr std::string_view kBindPurpose = "weft/bind/v1";            // author -> key
inline constexpr std::string_view kAdmissionPurpose = "weft/admission/v1";  // app tokens
inline constexpr std::string_view kChangePurpose = "weft/change/v1";        // a change's author
inline constexpr std::string_view kStatePurpose = "weft/state/v1";          // a sealed snapshot
inline constexpr std::string_view kE2eKeysPurpose = "weft/e2e-keys/v1";     // an epoch's key record
inline constexpr std::string_view kE2eStatePurpose = "weft/e2e-state/v1";   // an encrypted snapshot

// Whether `signature` is `key`'s signature of `message` for `purpose` (see Replica::Sign).
bool VerifySignature(const PublicKey& key, std::string_view purpose, std::string_view message,
                     const Signature& signature);
// The same, for a signature in raw bytes (false unless exactly 64).
bool VerifySignature(const PublicKey& key, std::string_view purpose, std::string_view message,
                     std::string_view signature);

}  // namespace weft
