// The C API over weft::SyncClient: peers, status and lag, waiting for sync and acks, presence.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>

#include "internal.h"

using namespace weft;
using namespace weft::capi;

struct weft_sync_options {
  SyncOptions o;
};

namespace {

// The presence callback: replaced under a gate so that the old one has finished when the setter
// returns.
struct Presence {
  std::mutex mu;
  std::shared_ptr<CallbackGate> gate;
  weft_presence_fn fn = nullptr;
  void* user = nullptr;
};

weft_status NullArg(const char* fn) {
  return Fail(nullptr, WEFT_INVALID_ARGUMENT, std::string(fn) + ": NULL argument");
}

std::chrono::milliseconds Ms(uint64_t ms) {
  return std::chrono::milliseconds(static_cast<int64_t>(std::min<uint64_t>(ms, uint64_t{1} << 40)));
}

}  // namespace

struct weft_sync {
  weft_replica* r = nullptr;
  std::unique_ptr<SyncClient> impl;
  ErrSlot err;
  std::shared_ptr<Presence> presence;
};

struct weft_peers {
  std::vector<PeerStatus> peers;
};

#define WEFT_CHECK(slot, expr)                               \
  do {                                                       \
    ::weft::Status weft_check_ = (expr);                     \
    if (!weft_check_.ok()) return Report(slot, weft_check_); \
  } while (0)

namespace {
// Checks a document ID and a causal token of it, and runs `wait` with the token's version.
template <typename F>
weft_status WaitOnToken(weft_sync* s, const char* doc, size_t doc_len, const char* token,
                        size_t token_len, F&& wait) {
  std::string_view d, t;
  WEFT_CHECK(&s->err, CheckText(doc, doc_len, "document ID", &d));
  WEFT_CHECK(&s->err, CheckText(token, token_len, "token", &t));
  auto dec = DecodeCausalToken(t);
  if (!dec.ok()) return Report(&s->err, dec.status());
  if (dec->first != d)
    return Fail(&s->err, WEFT_INVALID_ARGUMENT, "the token names another document");
  return Report(&s->err, wait(d, dec->second));
}
}  // namespace

extern "C" {

weft_sync_options* weft_sync_options_create(void) {
  try {
    return new weft_sync_options();
  } catch (...) {
    return nullptr;
  }
}

void weft_sync_options_free(weft_sync_options* o) {
  delete o;
}

weft_status weft_sync_options_add_document(weft_sync_options* o, const char* doc, size_t doc_len) {
  if (!o) return NullArg("weft_sync_options_add_document");
  return Guard(nullptr, [&] {
    std::string_view d;
    WEFT_CHECK(nullptr, CheckText(doc, doc_len, "document ID", &d));
    if (d.empty()) return Fail(nullptr, WEFT_INVALID_ARGUMENT, "document ID is empty");
    o->o.documents.emplace_back(d);
    return WEFT_OK;
  });
}

weft_status weft_sync_options_set_backoff(weft_sync_options* o, uint64_t initial_ms,
                                          uint64_t max_ms) {
  if (!o) return NullArg("weft_sync_options_set_backoff");
  if (initial_ms == 0 || max_ms < initial_ms)
    return Fail(nullptr, WEFT_INVALID_ARGUMENT, "backoff: need 0 < initial <= max");
  o->o.initial_backoff = Ms(initial_ms);
  o->o.max_backoff = Ms(max_ms);
  return WEFT_OK;
}

weft_status weft_sync_options_set_seed(weft_sync_options* o, uint64_t seed) {
  if (!o) return NullArg("weft_sync_options_set_seed");
  o->o.seed = seed;
  return WEFT_OK;
}

weft_status weft_sync_options_set_token(weft_sync_options* o, const char* hex, size_t hex_len) {
  if (!o || (!hex && hex_len)) return NullArg("weft_sync_options_set_token");
  std::string token;
  for (size_t i = 0; i < hex_len; i += 2) {
    auto nibble = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    int hi = nibble(hex[i]), lo = i + 1 < hex_len ? nibble(hex[i + 1]) : -1;
    if (hi < 0 || lo < 0) {
      return Fail(nullptr, WEFT_INVALID_ARGUMENT, "a token is an even number of hex digits");
    }
    token.push_back(static_cast<char>(hi << 4 | lo));
  }
  o->o.credentials = std::move(token);
  return WEFT_OK;
}

weft_status weft_sync_options_set_relay_key(weft_sync_options* o, const uint8_t key[32]) {
  if (!o || !key) return NullArg("weft_sync_options_set_relay_key");
  std::array<uint8_t, PublicKey::kSize> b{};
  std::memcpy(b.data(), key, b.size());
  PublicKey k(b);
  if (!k.valid()) return Fail(nullptr, WEFT_INVALID_ARGUMENT, "the relay key is all zero");
  o->o.relay_key = k;
  return WEFT_OK;
}

weft_status weft_issue_token(const weft_replica* issuer, const uint8_t device[32], uint64_t ttl_s,
                             char** out, size_t* out_len) {
  if (!issuer || !device || !out) return NullArg("weft_issue_token");
  std::array<uint8_t, PublicKey::kSize> b{};
  std::memcpy(b.data(), device, b.size());
  if (ttl_s == 0 || ttl_s > (uint64_t{1} << 40)) {
    return Fail(nullptr, WEFT_INVALID_ARGUMENT, "ttl_s is 1 second or more");
  }
  auto token = IssueAdmissionToken(*issuer->impl, PublicKey(b),
                                   std::chrono::seconds(static_cast<int64_t>(ttl_s)));
  if (!token.ok()) return Report(nullptr, token.status());
  static const char* k = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : *token) {
    hex += k[c >> 4];
    hex += k[c & 15];
  }
  char* s = CopyOut(hex, out_len);
  if (!s) return Fail(nullptr, WEFT_INTERNAL, "out of memory");
  *out = s;
  return WEFT_OK;
}

weft_status weft_sync_options_set_ca_file(weft_sync_options* o, const char* path, size_t path_len) {
  if (!o || (!path && path_len > 0)) return NullArg("weft_sync_options_set_ca_file");
  return Guard(nullptr, [&] {
    // A path is bytes (not necessarily UTF-8), without NUL.
    std::string p(path ? path : "", path_len);
    if (p.find('\0') != std::string::npos)
      return Fail(nullptr, WEFT_INVALID_ARGUMENT, "CA file path: a NUL byte");
    o->o.tls_ca_file = std::move(p);
    return WEFT_OK;
  });
}

weft_status weft_sync_create(weft_replica* r, const weft_sync_options* options, weft_sync** out) {
  if (!r || !out) return NullArg("weft_sync_create");
  return Guard(&r->err, [&] {
    auto s = std::make_unique<weft_sync>();
    s->r = r;
    s->presence = std::make_shared<Presence>();
    s->presence->gate = std::make_shared<CallbackGate>();
    auto client = SyncClient::Create(*r->impl, options ? options->o : SyncOptions{});
    if (!client.ok()) return Report(&r->err, client.status());
    s->impl = std::move(client).value();
    std::shared_ptr<Presence> p = s->presence;
    s->impl->SetPresenceCallback([p](const PresenceEvent& ev) {
      std::shared_ptr<CallbackGate> gate;
      weft_presence_fn fn;
      void* user;
      {
        std::lock_guard l(p->mu);
        gate = p->gate;
        fn = p->fn;
        user = p->user;
      }
      if (!fn) return;
      RunGated(*gate, [&] {
        fn(ev.doc.data(), ev.doc.size(), ev.node.value, ev.payload.data(), ev.payload.size(), user);
      });
    });
    {
      std::lock_guard l(r->mu);
      r->syncs++;
    }
    *out = s.release();
    return WEFT_OK;
  });
}

void weft_sync_free(weft_sync* s) {
  if (!s) return;
  try {
    s->impl->Stop();
    {
      std::lock_guard l(s->presence->mu);
      s->presence->gate->End();
    }
    s->impl.reset();
    std::lock_guard l(s->r->mu);
    s->r->syncs--;
  } catch (...) {
    // Stop and reset do not throw.
  }
  delete s;
}

char* weft_sync_errmsg(const weft_sync* s, size_t* len) {
  if (!s) return nullptr;
  try {
    std::lock_guard l(s->err.mu);
    return CopyOut(s->err.message, len);
  } catch (...) {
    return nullptr;
  }
}

weft_status weft_sync_add_peer(weft_sync* s, const char* url, size_t url_len) {
  if (!s) return NullArg("weft_sync_add_peer");
  return Guard(&s->err, [&] {
    std::string_view u;
    WEFT_CHECK(&s->err, CheckText(url, url_len, "URL", &u));
    return Report(&s->err, s->impl->AddPeer(u));
  });
}

weft_status weft_sync_remove_peer(weft_sync* s, const char* url, size_t url_len) {
  if (!s) return NullArg("weft_sync_remove_peer");
  return Guard(&s->err, [&] {
    std::string_view u;
    WEFT_CHECK(&s->err, CheckText(url, url_len, "URL", &u));
    return Report(&s->err, s->impl->RemovePeer(u));
  });
}

weft_status weft_sync_wait_until_synced(weft_sync* s, const char* url, size_t url_len,
                                        uint64_t timeout_ms, weft_sync_summary* summary) {
  if (!s) return NullArg("weft_sync_wait_until_synced");
  return Guard(&s->err, [&] {
    std::string_view u;
    WEFT_CHECK(&s->err, CheckText(url, url_len, "URL", &u));
    auto res = s->impl->WaitUntilSynced(u, Ms(timeout_ms));
    if (!res.ok()) return Report(&s->err, res.status());
    if (summary) {
      summary->changes_sent = res->changes_sent;
      summary->changes_received = res->changes_received;
      summary->documents = res->documents;
    }
    return WEFT_OK;
  });
}

weft_status weft_sync_wait_for_ack(weft_sync* s, const char* doc, size_t doc_len, const char* token,
                                   size_t token_len, uint64_t timeout_ms, const char* url,
                                   size_t url_len) {
  if (!s) return NullArg("weft_sync_wait_for_ack");
  return Guard(&s->err, [&] {
    std::string_view u;
    WEFT_CHECK(&s->err, CheckText(url, url_len, "URL", &u));
    return WaitOnToken(s, doc, doc_len, token, token_len,
                       [&](std::string_view d, const VersionVector& v) {
                         return s->impl->WaitForAck(d, v, Ms(timeout_ms), u);
                       });
  });
}

weft_status weft_sync_wait_for_acks(weft_sync* s, const char* doc, size_t doc_len,
                                    const char* token, size_t token_len, size_t quorum,
                                    uint64_t timeout_ms) {
  if (!s) return NullArg("weft_sync_wait_for_acks");
  return Guard(&s->err, [&] {
    return WaitOnToken(s, doc, doc_len, token, token_len,
                       [&](std::string_view d, const VersionVector& v) {
                         return s->impl->WaitForAcks(d, v, quorum, Ms(timeout_ms));
                       });
  });
}

weft_status weft_sync_peers(weft_sync* s, weft_peers** out) {
  if (!s || !out) return NullArg("weft_sync_peers");
  return Guard(&s->err, [&] {
    auto p = std::make_unique<weft_peers>();
    p->peers = s->impl->Peers();
    *out = p.release();
    return WEFT_OK;
  });
}

size_t weft_peers_count(const weft_peers* p) {
  return p ? p->peers.size() : 0;
}

weft_status weft_peers_get(const weft_peers* p, size_t i, weft_peer_info* out) {
  if (!p || !out) return NullArg("weft_peers_get");
  if (i >= p->peers.size()) return Fail(nullptr, WEFT_OUT_OF_RANGE, "peer index past the end");
  const PeerStatus& s = p->peers[i];
  weft_peer_info o{};
  o.url = s.url.c_str();
  o.url_len = s.url.size();
  o.state = static_cast<int32_t>(s.state);
  o.has_peer_node = s.peer_node.has_value() ? 1 : 0;
  o.peer_node = s.peer_node ? s.peer_node->value : 0;
  o.peer_is_relay = s.peer_is_relay ? 1 : 0;
  o.last_error = s.last_error.c_str();
  o.last_error_len = s.last_error.size();
  o.failed_attempts = s.failed_attempts;
  o.changes_sent = s.changes_sent;
  o.changes_received = s.changes_received;
  o.duplicates_received = s.duplicates_received;
  o.document_count = s.documents.size();
  *out = o;
  return WEFT_OK;
}

weft_status weft_peers_document(const weft_peers* p, size_t i, size_t j, weft_doc_sync_info* out) {
  if (!p || !out) return NullArg("weft_peers_document");
  if (i >= p->peers.size() || j >= p->peers[i].documents.size())
    return Fail(nullptr, WEFT_OUT_OF_RANGE, "peer or document index past the end");
  const DocumentSyncStatus& d = p->peers[i].documents[j];
  weft_doc_sync_info o{};
  o.doc = d.doc.c_str();
  o.doc_len = d.doc.size();
  o.live = d.live ? 1 : 0;
  o.acknowledged_operations = d.acknowledged.TotalOps();
  o.unacknowledged_changes = d.unacknowledged_changes;
  o.oldest_unacknowledged_age_ms =
      d.oldest_unacknowledged_age ? static_cast<int64_t>(d.oldest_unacknowledged_age->count()) : -1;
  o.behind_operations = d.behind_operations;
  o.incoming_remaining = d.incoming_remaining;
  o.changes_sent = d.changes_sent;
  o.changes_received = d.changes_received;
  *out = o;
  return WEFT_OK;
}

void weft_peers_free(weft_peers* p) {
  delete p;
}

weft_status weft_sync_publish_presence(weft_sync* s, const char* doc, size_t doc_len,
                                       const void* payload, size_t payload_len) {
  if (!s || (!payload && payload_len > 0)) return NullArg("weft_sync_publish_presence");
  return Guard(&s->err, [&] {
    std::string_view d;
    WEFT_CHECK(&s->err, CheckText(doc, doc_len, "document ID", &d));
    std::string data;
    if (payload_len > 0) data.assign(static_cast<const char*>(payload), payload_len);
    return Report(&s->err, s->impl->PublishPresence(d, std::move(data)));
  });
}

weft_status weft_sync_set_presence_callback(weft_sync* s, weft_presence_fn fn, void* user) {
  if (!s) return NullArg("weft_sync_set_presence_callback");
  return Guard(&s->err, [&] {
    auto fresh = std::make_shared<CallbackGate>();
    std::shared_ptr<CallbackGate> old;
    {
      std::lock_guard l(s->presence->mu);
      old = s->presence->gate;
      s->presence->gate = fresh;
      s->presence->fn = fn;
      s->presence->user = user;
    }
    old->End();  // the old callback is not running once this returns
    return WEFT_OK;
  });
}

weft_status weft_sync_once(weft_replica* r, const char* url, size_t url_len, const char* doc,
                           size_t doc_len, uint64_t timeout_ms, weft_sync_summary* summary) {
  if (!r) return NullArg("weft_sync_once");
  return Guard(&r->err, [&] {
    std::string_view u, d;
    WEFT_CHECK(&r->err, CheckText(url, url_len, "URL", &u));
    WEFT_CHECK(&r->err, CheckText(doc, doc_len, "document ID", &d));
    std::vector<std::string> docs;
    if (!d.empty()) docs.emplace_back(d);
    auto res = SyncOnce(*r->impl, u, docs, Ms(timeout_ms));
    if (!res.ok()) return Report(&r->err, res.status());
    if (summary) {
      summary->changes_sent = res->changes_sent;
      summary->changes_received = res->changes_received;
      summary->documents = res->documents;
    }
    return WEFT_OK;
  });
}

}  // extern "C"
