#include "sync/session_auth.h"

#include <chrono>

namespace weft::sync {
namespace {

void PutU64(std::string& out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>(v >> (8 * i)));
}

uint64_t GetU64(std::string_view in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | static_cast<uint8_t>(in[i]);
  return v;
}

void PutKey(std::string& out, const PublicKey& key) {
  out.append(reinterpret_cast<const char*>(key.bytes().data()), key.bytes().size());
}

std::string TokenMessage(const PublicKey& device, uint64_t expires) {
  std::string m;
  PutKey(m, device);
  PutU64(m, expires);
  return m;
}

}  // namespace

uint64_t UnixNow() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

std::string SessionTranscript(bool acceptor, const PublicKey& signer, const PublicKey& other,
                              std::string_view other_nonce, std::string_view audience,
                              uint64_t expires) {
  std::string t = acceptor ? "acceptor" : "dialer";
  t.push_back('\0');
  PutKey(t, signer);
  PutKey(t, other);
  PutU64(t, other_nonce.size());
  t.append(other_nonce);
  PutU64(t, audience.size());
  t.append(audience);
  PutU64(t, expires);
  return t;
}

Status CheckSessionProof(bool acceptor, const PublicKey& signer, const PublicKey& other,
                         std::string_view other_nonce, std::string_view audience, uint64_t expires,
                         std::string_view proof, uint64_t now) {
  if (expires + kClockSkewSeconds < now) {
    return Status(StatusCode::kPermissionDenied, "the handshake proof has expired");
  }
  if (expires > now + kProofLifetimeSeconds + kClockSkewSeconds) {
    return Status(StatusCode::kPermissionDenied,
                  "the handshake proof claims to be valid for too long");
  }
  if (!VerifySignature(signer, kSessionPurpose,
                       SessionTranscript(acceptor, signer, other, other_nonce, audience, expires),
                       proof)) {
    return Status(StatusCode::kPermissionDenied,
                  "the handshake proof is not a signature of this session by the peer's key");
  }
  return Status::Ok();
}

Result<std::string> IssueAdmissionToken(const Replica& issuer, const PublicKey& device,
                                        uint64_t expires) {
  auto sig = issuer.Sign(kAdmissionPurpose, TokenMessage(device, expires));
  if (!sig.ok()) return sig.status();
  std::string token;
  PutU64(token, expires);
  token.append(reinterpret_cast<const char*>(sig->data()), sig->size());
  return token;
}

Status CheckAdmissionToken(const PublicKey& admission_key, const PublicKey& device,
                           std::string_view token, uint64_t now) {
  if (token.empty()) {
    return Status(StatusCode::kPermissionDenied,
                  "this relay admits only devices with an admission token from its app");
  }
  if (token.size() != 8 + Signature{}.size()) {
    return Status(StatusCode::kPermissionDenied, "the admission token is malformed");
  }
  uint64_t expires = GetU64(token.substr(0, 8));
  if (expires + kClockSkewSeconds < now) {
    return Status(StatusCode::kPermissionDenied, "the admission token has expired");
  }
  if (!VerifySignature(admission_key, kAdmissionPurpose, TokenMessage(device, expires),
                       token.substr(8))) {
    return Status(StatusCode::kPermissionDenied,
                  "the admission token is not signed by this relay's admission key for this "
                  "device");
  }
  return Status::Ok();
}

}  // namespace weft::sync
