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

  friend bool operator==(const PublicKey&, const PublicKey&) = default;
  friend auto operator<=>(const PublicKey&, const PublicKey&) = default;

 private:
  std::array<uint8_t, kSize> bytes_{};
};

}  // namespace weft
