// A peer's side of the sync handshake, played by a test that speaks the protocol by hand: its own
// Ed25519 key, the Hello a dialer sends, and the Auth that answers the accepting side's Hello.
// Header-only: include it from a test target that sees the SDK's internal headers.
#pragma once

#include <catch2/catch.hpp>
#include <string>

#include "identity_internal.h"
#include "sync/session_auth.h"
#include "sync/wire.h"

namespace weft::testing {

class FakePeer {
 public:
  explicit FakePeer(crdt::NodeId node) : node_(node) {
    auto key = secret_.Generate();
    REQUIRE(key.ok());
    key_ = *key;
    nonce_ = RandomBytes(sync::kNonceBytes);
  }

  const PublicKey& key() const { return key_; }
  crdt::NodeId node() const { return node_; }

  // The Hello a dialer sends first.
  sync::HelloMsg Hello(bool all_documents = false, std::string audience = "test") const {
    sync::HelloMsg h;
    h.node = node_;
    h.all_documents = all_documents;
    h.public_key.assign(reinterpret_cast<const char*>(key_.bytes().data()), PublicKey::kSize);
    h.nonce = nonce_;
    h.audience = std::move(audience);
    return h;
  }

  // The dialer's Auth answering the accepting side's Hello `reply`.
  sync::AuthMsg Auth(const sync::HelloMsg& reply, const std::string& audience = "test") const {
    REQUIRE(reply.public_key.size() == PublicKey::kSize);
    std::array<uint8_t, PublicKey::kSize> b{};
    std::memcpy(b.data(), reply.public_key.data(), b.size());
    uint64_t expires = sync::UnixNow() + 60;
    auto sig = secret_.Sign(
        kSessionPurpose,
        sync::SessionTranscript(false, key_, PublicKey(b), reply.nonce, audience, expires));
    REQUIRE(sig.ok());
    return sync::AuthMsg{std::string(reinterpret_cast<const char*>(sig->data()), sig->size()),
                         expires};
  }

  // Signs for another purpose (e.g. an author binding), as this peer's device would.
  std::string Sign(std::string_view purpose, std::string_view message) const {
    auto sig = secret_.Sign(purpose, message);
    REQUIRE(sig.ok());
    return std::string(reinterpret_cast<const char*>(sig->data()), sig->size());
  }

 private:
  crdt::NodeId node_;
  SecretKey secret_;
  PublicKey key_;
  std::string nonce_;
};

}  // namespace weft::testing
