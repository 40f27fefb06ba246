// Session authentication: what each side of a sync handshake signs, and app admission tokens.
//
// Each side proves its Ed25519 key by signing the other side's fresh nonce together with both
// public keys, its role in the handshake, the audience (the URL the dialer dialled) and an expiry
// (docs/security.md). The nonce makes a recorded handshake useless against a new one; the keys
// and the role bind the proof to this pair and this direction; the expiry bounds how long a
// proof made for a slow handshake stays good.
//
// An admission token is an app server's statement "this device key may use this relay until T",
// signed by the server's key (a relay started with --admission-key checks it).
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "weft/identity.h"
#include "weft/replica.h"
#include "weft/status.h"

namespace weft::sync {

// How long a handshake proof is valid, and the clock skew tolerated between two machines.
inline constexpr uint64_t kProofLifetimeSeconds = 120;
inline constexpr uint64_t kClockSkewSeconds = 300;

uint64_t UnixNow();

// The bytes the `signer` side signs (`acceptor`: the side that accepted the connection).
std::string SessionTranscript(bool acceptor, const PublicKey& signer, const PublicKey& other,
                              std::string_view other_nonce, std::string_view audience,
                              uint64_t expires);

// Checks a handshake proof: the signature, and that `expires` is neither past (beyond the skew)
// nor further ahead than a proof's lifetime. kUnauthenticated-style errors are kPermissionDenied.
Status CheckSessionProof(bool acceptor, const PublicKey& signer, const PublicKey& other,
                         std::string_view other_nonce, std::string_view audience, uint64_t expires,
                         std::string_view proof, uint64_t now);

// An admission token for `device`, valid until `expires` (Unix seconds), signed by `issuer`.
Result<std::string> IssueAdmissionToken(const Replica& issuer, const PublicKey& device,
                                        uint64_t expires);
// OK when `token` is `admission_key`'s unexpired token for `device`; kPermissionDenied otherwise.
Status CheckAdmissionToken(const PublicKey& admission_key, const PublicKey& device,
                           std::string_view token, uint64_t now);

}  // namespace weft::sync
