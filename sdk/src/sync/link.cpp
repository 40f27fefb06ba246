// The sync protocol of one connection (see link.h and docs/protocol.md).
#include "sync/link.h"

#include <algorithm>
#include <cstring>

#include "e2e_doc.h"
#include "identity_internal.h"
#include "sync/session_auth.h"
#include "weft/crdt/document.h"

namespace weft::sync {
namespace {

bool Names(const std::vector<NodeId>& path, NodeId node) {
  return std::find(path.begin(), path.end(), node) != path.end();
}

std::string Truncate(std::string s, size_t n) {
  if (s.size() > n) s.resize(n);
  return s;
}

ErrorCode ErrorFor(const Status& s) {
  switch (s.code()) {
    case StatusCode::kMissingDependency: return ErrorCode::kMissingDependency;
    case StatusCode::kCorruption:
    case StatusCode::kTypeMismatch:
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange:
    case StatusCode::kClockDrift:
    case StatusCode::kUnsupportedVersion: return ErrorCode::kInvalidChange;
    case StatusCode::kPermissionDenied: return ErrorCode::kPermissionDenied;
    default: return ErrorCode::kStorage;
  }
}

}  // namespace

uint16_t CloseCodeFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kMalformed: return 1002;  // protocol error
    case ErrorCode::kTooLarge: return 1009;   // message too big
    case ErrorCode::kInternal:
    case ErrorCode::kStorage: return 1011;  // internal error
    default: return 1008;                   // policy violation
  }
}

Link::Link(Hub& hub, LinkConfig config, LinkTransport transport)
    : hub_(hub), config_(std::move(config)), transport_(std::move(transport)) {}

void Link::set_listener_id(uint64_t id) {
  std::lock_guard lock(mu_);
  listener_id_ = id;
  for (const auto& [doc, d] : docs_) hub_.Listen(id, doc);
  UpdateHearing();
}

void Link::UpdateHearing() {
  if (listener_id_ == 0) return;
  if (all_docs_) {
    hub_.Widen(listener_id_);
  } else {
    hub_.Narrow(listener_id_);
  }
}

LinkDocState& Link::Track(const std::string& doc) {
  auto [it, fresh] = docs_.try_emplace(doc);
  if (fresh && listener_id_ != 0) hub_.Listen(listener_id_, doc);
  return it->second;
}

void Link::Send(const Message& m) {
  std::string frame = Encode(m);
  hub_.counters().bytes_out += frame.size();
  transport_.send(std::move(frame));
}

void Link::Report(const char* level, const char* event, std::string doc,
                  std::vector<std::pair<const char*, uint64_t>> counts, std::string error) {
  if (!hub_.logging()) return;
  LogEvent e;
  e.level = level;
  e.event = event;
  e.session = config_.log_session;
  e.node = peer_;
  if (hello_seen_) e.peer = peer_relay_ ? "relay" : "device";
  e.document = std::move(doc);
  e.counts = std::move(counts);
  e.error = std::move(error);
  hub_.Log(e);
}

void Link::Fail(ErrorCode code, std::string message, std::string doc) {
  if (closed_) return;
  last_error_ = std::string(ErrorCodeName(code)) + ": " + message;
  Report("warn", code == ErrorCode::kUnauthenticated ? "session.refused" : "session.failed", doc,
         {}, last_error_);
  ++hub_.counters().errors_sent;
  Send(ErrorMsg{code, message, doc, true});
  closed_ = true;
  transport_.close(CloseCodeFor(code), Truncate(last_error_, 120));
}

void Link::StopDoc(const std::string& doc, ErrorCode code, std::string message) {
  if (closed_) return;
  LinkDocState& d = Track(doc);
  if (!d.stopped.empty()) return;
  d.stopped = std::string(ErrorCodeName(code)) + ": " + message;
  d.stopped_by_peer = false;
  d.outbox.clear();
  d.dirty = false;
  d.snapshot_sending = false;
  d.snapshot_out = std::string();
  if (d.snapshot_receiving) {
    snapshot_in_pending_ -= d.snapshot_in.size();
    d.snapshot_receiving = false;
    d.snapshot_in = std::string();
  }
  if (pending_ && pending_->doc == doc) pending_.reset();
  last_error_ = "document \"" + doc + "\" stopped: " + d.stopped;
  Report("warn", "document.stopped", doc, {}, d.stopped);
  ++hub_.counters().documents_stopped;
  ++hub_.counters().errors_sent;
  Send(ErrorMsg{code, std::move(message), doc, /*fatal=*/false});
}

void Link::Deny(const std::string& doc) {
  LinkDocState& d = Track(doc);
  if (d.denied) return;
  ++hub_.counters().reads_denied;
  if (!d.stopped.empty()) {  // stopped for another reason: it now waits for rights
    d.stopped.clear();
  }
  StopDoc(doc, ErrorCode::kPermissionDenied, "this peer's key has no role in the document");
  d.denied = true;
}

void Link::ResumeDoc(LinkDocState& d) {
  d.stopped.clear();
  d.stopped_by_peer = false;
  d.denied = false;
  // What was sent while it was stopped was dropped on one side or the other: from the peer's Have.
  d.sent = VersionVector{};
  d.outbox.clear();
  d.dirty = true;
}

void Link::FailDoc(const std::string& doc, const Status& status) {
  if (status.code() == StatusCode::kCorruption) {
    // The changes, or this replica's own copy of the document? The latter cannot be read.
    auto local = hub_.replica().Version(doc);
    if (!local.ok() && local.status().code() == StatusCode::kCorruption) {
      return StopDoc(doc, ErrorCode::kCorruption, local.status().ToString());
    }
  }
  ErrorCode code = ErrorFor(status);
  if (code == ErrorCode::kStorage) return Fail(code, status.ToString(), doc);
  StopDoc(doc, code, status.ToString());
}

VersionVector Link::LocalVersion(const std::string& doc) const {
  auto v = hub_.replica().Version(doc);
  return v.ok() ? std::move(*v) : VersionVector{};
}

void Link::Start() {
  std::lock_guard lock(mu_);
  if (started_ || closed_) return;
  started_ = true;
  if (!config_.dialer) return;  // the accepting side waits for the Hello
  all_docs_ = config_.all_documents;
  UpdateHearing();
  nonce_ = RandomBytes(kNonceBytes);
  audience_ = config_.audience;
  HelloMsg h = OwnHello();
  h.credentials = config_.credentials;
  h.all_documents = all_docs_;
  h.audience = audience_;
  Send(h);
  // Documents are announced once the peer has proved its key (OnHello).
}

HelloMsg Link::OwnHello() const {
  HelloMsg h;
  h.node = hub_.self();
  h.agent = config_.relay ? "weft-relay/0.1" : "weft-sdk/0.1";
  h.relay = config_.relay;
  const PublicKey& key = hub_.replica().public_key();
  h.public_key.assign(reinterpret_cast<const char*>(key.bytes().data()), key.bytes().size());
  h.nonce = nonce_;
  return h;
}

void Link::StartDoc(const std::string& doc) {
  if (closed_) return;
  auto it = docs_.find(doc);
  if (!PeerMayRead(doc)) {
    // One the peer asked for or was syncing is refused, saying so; one it never named is simply
    // not offered (a new document of someone else's, in all-documents mode).
    if (it != docs_.end()) Deny(doc);
    return;
  }
  if (it == docs_.end()) {
    if (docs_.size() >= config_.max_documents) {
      return Fail(ErrorCode::kTooLarge,
                  "more than " + std::to_string(config_.max_documents) + " documents", doc);
    }
    Track(doc);
    it = docs_.find(doc);
  }
  LinkDocState& d = it->second;
  if (d.we_sent_have || !d.stopped.empty()) return;
  d.we_sent_have = true;
  if (auto v = hub_.replica().Version(doc);
      !v.ok() && v.status().code() == StatusCode::kCorruption) {
    // The local copy cannot be read: announcing it empty would only fetch what cannot be stored.
    return StopDoc(doc, ErrorCode::kCorruption, v.status().ToString());
  }
  HaveMsg have = LocalHave(doc, d);
  d.target_local = have.version;
  Send(have);
}

HaveMsg Link::LocalHave(const std::string& doc, const LinkDocState& d) const {
  VersionVector version = LocalVersion(doc);
  // A digest only where the peer can compare it: when it is known to hold this very version.
  // (Hashing the whole state for every Have would cost most where versions differ anyway.)
  if (!d.peer_sent_have || version != d.peer_has) return HaveMsg{doc, std::move(version), 0};
  auto digest = hub_.StateDigest(doc);
  if (!digest.ok()) return HaveMsg{doc, std::move(version), 0};
  return HaveMsg{doc, std::move(digest->version), digest->digest};
}

void Link::OnFrame(std::string_view frame) {
  std::lock_guard lock(mu_);
  if (closed_) return;
  hub_.counters().bytes_in += frame.size();
  auto m = Decode(frame, config_.limits);
  if (!m.ok()) {
    return Fail(
        m.status().code() == StatusCode::kOutOfRange ? ErrorCode::kTooLarge : ErrorCode::kMalformed,
        m.status().message());
  }
  Dispatch(*m);
  ApplyPending();
}

void Link::OnFrames(const std::vector<std::string>& frames) {
  std::lock_guard lock(mu_);
  for (const auto& frame : frames) {
    if (closed_) return;
    hub_.counters().bytes_in += frame.size();
    auto m = Decode(frame, config_.limits);
    if (!m.ok()) {
      pending_.reset();  // nothing of a burst ending in a malformed frame is stored
      return Fail(m.status().code() == StatusCode::kOutOfRange ? ErrorCode::kTooLarge
                                                               : ErrorCode::kMalformed,
                  m.status().message());
    }
    Dispatch(*m);
  }
  ApplyPending();
}

void Link::Dispatch(Message& m) {
  if (!hello_received_ && !std::holds_alternative<ErrorMsg>(m)) {
    // Before the handshake completes: the Hello, then (on the accepting side) the Auth.
    bool expected =
        hello_seen_ ? std::holds_alternative<AuthMsg>(m) : std::holds_alternative<HelloMsg>(m);
    if (!expected) {
      return Fail(ErrorCode::kUnexpected,
                  std::string("a ") + MessageName(m) + " message before the handshake completed");
    }
  }
  // Changes wait in pending_ only while more changes of the same document follow.
  if (pending_) {
    auto* c = std::get_if<ChangesMsg>(&m);
    if (!c || c->doc != pending_->doc) ApplyPending();
    if (closed_) return;
  }
  std::visit(
      [&](auto& msg) {
        using T = std::decay_t<decltype(msg)>;
        if constexpr (std::is_same_v<T, HelloMsg>) {
          OnHello(msg);
        } else if constexpr (std::is_same_v<T, HaveMsg>) {
          OnHave(msg);
        } else if constexpr (std::is_same_v<T, ChangesMsg>) {
          OnChanges(msg);
        } else if constexpr (std::is_same_v<T, AckMsg>) {
          OnAck(msg);
        } else if constexpr (std::is_same_v<T, PresenceMsg>) {
          OnPresence(msg);
        } else if constexpr (std::is_same_v<T, ErrorMsg>) {
          OnError(msg);
        } else if constexpr (std::is_same_v<T, AuthMsg>) {
          OnAuth(msg);
        } else if constexpr (std::is_same_v<T, StateSealMsg>) {
          OnSeal(msg);
        } else {
          OnSnapshotChunk(msg);
        }
      },
      m);
}

void Link::OnHello(const HelloMsg& m) {
  if (hello_seen_) return Fail(ErrorCode::kUnexpected, "a second Hello");
  if (m.protocol_version != kProtocolVersion) {
    return Fail(ErrorCode::kUnsupportedVersion,
                "protocol version " + std::to_string(m.protocol_version) +
                    " is not supported; this peer speaks version " +
                    std::to_string(kProtocolVersion) + " (upgrade the older side)");
  }
  if (!m.node.valid()) return Fail(ErrorCode::kMalformed, "a Hello without a node ID");
  if (m.node == hub_.self()) {
    return Fail(ErrorCode::kUnexpected, "connected to itself (node " + m.node.ToHex() + ")");
  }
  auto key = PublicKey::FromBytes(m.public_key);
  if (!key || m.nonce.size() != kNonceBytes) {
    return Fail(ErrorCode::kUnauthenticated, "a Hello without a public key and a nonce");
  }
  hello_seen_ = true;
  peer_ = m.node;
  peer_relay_ = m.relay;
  peer_key_ = *key;
  const PublicKey& self_key = hub_.replica().public_key();
  if (config_.dialer) {
    // The accepting side proved its key in its Hello: check it, then prove ours.
    if (config_.expected_peer && *config_.expected_peer != peer_key_) {
      return Fail(ErrorCode::kUnauthenticated, "the peer's key is " + peer_key_.ToHex() +
                                                   ", not the expected " +
                                                   config_.expected_peer->ToHex());
    }
    Status proof = CheckSessionProof(true, peer_key_, self_key, nonce_, audience_, m.expires,
                                     m.proof, UnixNow());
    if (!proof.ok()) {
      ++hub_.counters().auth_refused;
      return Fail(ErrorCode::kUnauthenticated, proof.message());
    }
    uint64_t expires = UnixNow() + kProofLifetimeSeconds;
    auto sig = hub_.replica().Sign(kSessionPurpose, SessionTranscript(false, self_key, peer_key_,
                                                                      m.nonce, audience_, expires));
    if (!sig.ok()) return Fail(ErrorCode::kInternal, sig.status().ToString());
    Send(AuthMsg{std::string(reinterpret_cast<const char*>(sig->data()), sig->size()), expires});
    announces_expected_ = m.announces;
    // The relay this device chose to dial serves it (and stores what it sends); other peers must
    // be trusted or read by the access lists.
    peer_trusted_ = config_.trusted.count(peer_key_) > 0 || (!config_.relay && peer_relay_);
    Authenticated();
    return;
  }
  if (m.audience.size() > 1024) return Fail(ErrorCode::kMalformed, "audience too long");
  audience_ = m.audience;
  peer_trusted_ = config_.trusted.count(peer_key_) > 0;
  if (config_.admission_key && !peer_trusted_) {
    Status admitted =
        CheckAdmissionToken(*config_.admission_key, peer_key_, m.credentials, UnixNow());
    if (!admitted.ok()) {
      ++hub_.counters().auth_refused;
      return Fail(ErrorCode::kUnauthenticated, admitted.message());
    }
  }
  all_docs_ = m.all_documents;
  UpdateHearing();
  if (all_docs_) {
    auto list = hub_.replica().ListDocuments();
    if (!list.ok()) return Fail(ErrorCode::kStorage, list.status().ToString());
    for (auto& d : *list) {
      if (PeerMayRead(d)) to_announce_.push_back(std::move(d));
    }
  }
  nonce_ = RandomBytes(kNonceBytes);
  HelloMsg h = OwnHello();
  h.all_documents = all_docs_;
  h.announces = static_cast<uint32_t>(to_announce_.size());
  h.expires = UnixNow() + kProofLifetimeSeconds;
  auto sig = hub_.replica().Sign(
      kSessionPurpose, SessionTranscript(true, self_key, peer_key_, m.nonce, audience_, h.expires));
  if (!sig.ok()) return Fail(ErrorCode::kInternal, sig.status().ToString());
  h.proof.assign(reinterpret_cast<const char*>(sig->data()), sig->size());
  Send(h);
  // Documents wait for the dialer's Auth.
}

void Link::OnAuth(const AuthMsg& m) {
  if (config_.dialer || hello_received_) return Fail(ErrorCode::kUnexpected, "an unexpected Auth");
  Status proof = CheckSessionProof(false, peer_key_, hub_.replica().public_key(), nonce_, audience_,
                                   m.expires, m.proof, UnixNow());
  if (!proof.ok()) {
    ++hub_.counters().auth_refused;
    return Fail(ErrorCode::kUnauthenticated, proof.message());
  }
  Authenticated();
  std::vector<std::string> docs = std::move(to_announce_);
  to_announce_.clear();
  if (all_docs_) {
    // Documents stored between the Hello and now raised events this link did not act on (it was
    // not authenticated yet): announce them too (more than the Hello promised is fine).
    auto list = hub_.replica().ListDocuments();
    if (!list.ok()) return Fail(ErrorCode::kStorage, list.status().ToString());
    std::set<std::string> promised(docs.begin(), docs.end());
    for (auto& d : *list) {
      if (!promised.count(d) && PeerMayRead(d)) docs.push_back(std::move(d));
    }
  }
  for (const auto& d : docs) StartDoc(d);
}

void Link::Authenticated() {
  hello_received_ = true;
  ++hub_.counters().connections_total;
  Report("info", "session.open");
  if (!config_.dialer) return;
  std::vector<std::string> docs = config_.documents;
  if (all_docs_) {
    auto list = hub_.replica().ListDocuments();
    if (!list.ok()) return Fail(ErrorCode::kStorage, list.status().ToString());
    docs = std::move(*list);
  }
  for (const auto& d : docs) {
    if (PeerMayRead(d)) StartDoc(d);
  }
}

bool Link::PeerMayRead(const std::string& doc) const {
  if (config_.open || peer_trusted_) return true;
  return hub_.MayRead(doc, peer_key_);
}

void Link::OnHave(const HaveMsg& m) {
  if (!docs_.count(m.doc) && docs_.size() >= config_.max_documents) {
    return Fail(ErrorCode::kTooLarge,
                "more than " + std::to_string(config_.max_documents) + " documents", m.doc);
  }
  if (!PeerMayRead(m.doc)) return Deny(m.doc);
  LinkDocState& d = Track(m.doc);
  if (!d.stopped.empty()) {
    if (!d.stopped_by_peer) {  // this side retries it at its next anti-entropy tick
      d.peer_has.Merge(m.version);
      return;
    }
    ResumeDoc(d);  // the peer announces it again: it resumed
    // It dropped this side's Have when it stopped the document (a relay that refused it until
    // this device was granted a role waits for one): announce it again, below.
    d.we_sent_have = false;
  }
  if (!d.peer_sent_have) {
    d.peer_sent_have = true;
    d.target_remote = m.version;
    ++haves_received_;
  }
  d.peer_has.Merge(m.version);
  d.have_at = hub_.PathClock();
  if (m.state_digest != 0 && LocalVersion(m.doc) == m.version) {
    // Equal versions must mean equal states; if not, say so (to the peer, the app and the
    // metrics) rather than report the document as in sync.
    auto local = hub_.StateDigest(m.doc);
    if (local.ok() && local->version == m.version && local->digest != m.state_digest) {
      if (!d.diverged) {
        d.diverged = true;
        ++hub_.counters().divergences;
        last_error_ = "document \"" + m.doc + "\" diverged: version " + m.version.ToString() +
                      " holds different states here and at the peer";
        ++hub_.counters().errors_sent;
        Send(ErrorMsg{ErrorCode::kDiverged, last_error_, m.doc, /*fatal=*/false});
      }
    } else if (local.ok() && local->version == m.version) {
      d.diverged = false;
    }
  }
  VersionVector before = d.acked;
  d.acked.Merge(m.version);
  if (d.acked != before) PersistAck(m.doc, d);
  StartDoc(m.doc);
  d.dirty = true;
  Pump();
}

void Link::OnChanges(ChangesMsg& m) {
  auto it = docs_.find(m.doc);
  if (it == docs_.end()) {
    return Fail(ErrorCode::kUnexpected, "changes for a document before its Have", m.doc);
  }
  if (m.encrypted) {
    return Fail(ErrorCode::kUnexpected, "encrypted payloads are not supported yet", m.doc);
  }
  if (!it->second.stopped.empty()) return;  // dropped: the document stopped on this connection
  std::vector<crdt::Dot> ids;
  std::vector<std::pair<NodeId, uint64_t>> ends;
  std::vector<RecentChange> recent;
  ids.reserve(m.changes.size());
  ends.reserve(m.changes.size());
  if (config_.relay) recent.reserve(m.changes.size());
  for (size_t i = 0; i < m.changes.size(); ++i) {
    auto c = crdt::DecodeChange(m.changes[i]);
    if (!c.ok()) {
      // Nothing of the document's burst is stored; its other documents go on.
      return StopDoc(m.doc, ErrorCode::kInvalidChange,
                     "change " + std::to_string(i) + " of the batch: " + c.status().message());
    }
    ids.push_back(c->id());
    ends.emplace_back(c->author, c->end_seq());
    if (config_.relay) {
      recent.push_back({c->id(), c->end_seq(), c->lamport, std::move(c->deps), m.changes[i]});
    }
  }
  // Loops: a change whose path (its route, then the batch's path) names this node came round a
  // loop and is dropped, unless this replica lost it since (restored from an old copy of its
  // database): then it is no loop but a repair, and is applied like any other change.
  const bool batch_looped = Names(m.path, hub_.self());
  bool any_looped = batch_looped;
  for (size_t i = 0; !any_looped && i < m.routes.size(); ++i) {
    any_looped = Names(m.routes[i], hub_.self());
  }
  if (any_looped) {
    auto held = hub_.replica().Version(m.doc);
    std::vector<bool> drop(m.changes.size(), false);
    size_t dropped = 0;
    for (size_t i = 0; i < m.changes.size(); ++i) {
      bool looped = batch_looped || (!m.routes.empty() && Names(m.routes[i], hub_.self()));
      if (looped && held.ok() && held->Get(ends[i].first) >= ends[i].second) {
        drop[i] = true;
        ++dropped;
      }
    }
    if (dropped > 0) ++hub_.counters().loops_dropped;
    if (dropped == m.changes.size()) return;
    if (dropped > 0) {
      // Compacts the kept changes to the front. An element is never moved onto itself: a
      // self-move leaves a std::string or std::vector empty, which once sent an empty change on.
      size_t k = 0;
      for (size_t i = 0; i < m.changes.size(); ++i) {
        if (drop[i]) continue;
        if (k != i) {
          m.changes[k] = std::move(m.changes[i]);
          ids[k] = ids[i];
          ends[k] = ends[i];
          if (!m.routes.empty()) m.routes[k] = std::move(m.routes[i]);
          if (config_.relay) recent[k] = std::move(recent[i]);
        }
        ++k;
      }
      m.changes.resize(k);
      ids.resize(k);
      ends.resize(k);
      if (!m.routes.empty()) m.routes.resize(k);
      if (config_.relay) recent.resize(k);
    }
  }
  hub_.RecordPath(m.doc, ids, m.path, m.routes);
  if (!pending_) {
    pending_.emplace();
    pending_->doc = m.doc;
  }
  ReceivedChanges& p = *pending_;
  for (auto& b : m.changes) p.blobs.push_back(std::move(b));
  p.ends.insert(p.ends.end(), ends.begin(), ends.end());
  for (auto& r : recent) p.recent.push_back(std::move(r));
  p.remaining = m.remaining;
  // A long burst (a catch-up) is stored in transactions of bounded size.
  if (p.blobs.size() >= 4 * config_.max_batch_changes) ApplyPending();
}

void Link::ApplyPending() {
  if (!pending_) return;
  ReceivedChanges p = std::move(*pending_);
  pending_.reset();
  if (closed_) return;
  LinkDocState& d = Track(p.doc);
  // Once stored, and before the other connections hear of them, a relay remembers them, so that
  // fanning them out reads no log (a device's one other direction is its own changes).
  Replica::StoredHook remember;
  if (config_.relay) {
    remember = [&](const ApplyReport&) { hub_.Remember(p.doc, std::move(p.recent)); };
  }
  uint64_t bytes = 0;
  for (const auto& b : p.blobs) bytes += b.size();
  // A peer that is not trusted to forward others' changes sends only its own.
  auto r = hub_.replica().ApplyRemoteChanges(
      p.doc, p.blobs, remember, peer_trusted_ ? std::nullopt : std::optional<PublicKey>(peer_key_));
  if (!r.ok()) {
    if (r.status().code() == StatusCode::kPermissionDenied) ++hub_.counters().writes_denied;
    return FailDoc(p.doc, r.status());
  }
  // The peer sent them from its log, so it has them durably: they count as acknowledged (in
  // memory; the peer's next Ack or Have persists it), or every change received would show as lag
  // until then.
  for (const auto& [node, end] : p.ends) {
    d.peer_has.Advance(node, end);
    d.acked.Advance(node, end);
  }
  d.changes_received += r->applied;
  d.duplicates += r->duplicates;
  Report("info", "changes.received", p.doc,
         {{"changes", r->applied}, {"duplicates", r->duplicates}, {"bytes", bytes}});
  d.peer_remaining = p.remaining;
  changes_received_ += r->applied;
  duplicates_ += r->duplicates;
  hub_.counters().changes_in += r->applied;
  hub_.counters().duplicates_in += r->duplicates;
  // Acknowledge, now or soon, once the changes are durable: at once when ApplyRemoteChanges
  // committed them durably, else (Durability::kGroup) once the replica's log sync covers them.
  if (r->commit == 0) return SendAck(p.doc, d, r->version);
  if (!transport_.defer) {
    Status durable = hub_.replica().WaitDurable(r->commit);
    if (!durable.ok()) return Fail(ErrorCode::kStorage, durable.ToString(), p.doc);
    return SendAck(p.doc, d, r->version);
  }
  hub_.replica().WhenDurable(
      r->commit, [this, defer = transport_.defer, doc = p.doc, version = r->version](Status s) {
        defer([this, doc, version, s] {
          std::lock_guard lock(mu_);
          if (closed_) return;
          if (!s.ok()) return Fail(ErrorCode::kStorage, s.ToString(), doc);
          auto it = docs_.find(doc);
          if (it != docs_.end()) SendAck(doc, it->second, version);
        });
      });
}

void Link::SendAck(const std::string& doc, LinkDocState& d, const VersionVector& version) {
  if (config_.ack_delay.count() <= 0 || !transport_.wake) {
    d.ack_pending = false;
    return Send(AckMsg{doc, version});
  }
  d.ack_pending = true;
  if (!acks_waiting_) {
    acks_waiting_ = true;
    ack_due_ = Now() + config_.ack_delay;
    Wake(ack_due_);
  }
}

void Link::FlushAcks() {
  acks_waiting_ = false;
  for (auto& [doc, d] : docs_) {
    if (!d.ack_pending) continue;
    d.ack_pending = false;
    // Everything the replica holds of the document is stored: the Ack covers it all.
    Send(AckMsg{doc, LocalVersion(doc)});
    if (closed_) return;
  }
}

void Link::Wake(Clock::time_point when) {
  auto delay = std::chrono::duration_cast<std::chrono::microseconds>(when - Now());
  transport_.wake(std::max(delay, std::chrono::microseconds(0)));
}

void Link::OnTimer() {
  std::lock_guard lock(mu_);
  if (closed_ || !hello_received_) return;
  const auto now = Now();
  if (acks_waiting_) {
    if (now >= ack_due_) {
      FlushAcks();
    } else {
      Wake(ack_due_);
    }
  }
  if (lingering_) {
    if (now >= last_batch_ + config_.live_interval) {
      lingering_ = false;
      Pump();
    } else {
      Wake(last_batch_ + config_.live_interval);
    }
  }
}

void Link::OnAck(const AckMsg& m) {
  auto it = docs_.find(m.doc);
  if (it == docs_.end()) return Fail(ErrorCode::kUnexpected, "an Ack for an unknown document");
  LinkDocState& d = it->second;
  d.peer_has.Merge(m.version);
  VersionVector before = d.acked;
  d.acked.Merge(m.version);
  if (d.acked != before) PersistAck(m.doc, d);
  MaybeSeal(m.doc, d, m.version);
}

bool Link::StateTrusted() const {
  return config_.open || config_.trusted.count(peer_key_) > 0;
}

namespace {

StateSealMsg SealMsg(const std::string& doc, const StateSeal& seal) {
  return {doc,
          seal.version,
          seal.lamport,
          std::string(reinterpret_cast<const char*>(seal.key.bytes().data()), PublicKey::kSize),
          seal.signature,
          seal.encrypted};
}

std::optional<StateSeal> SealOf(const StateSealMsg& m) {
  auto key = PublicKey::FromBytes(m.key);
  if (!key) return std::nullopt;
  return StateSeal{m.version, m.lamport, *key, m.signature, m.encrypted};
}

// Whether `key` is a reader of the key record encrypted snapshot `data` is encrypted under (a
// relay serves it only to them: anyone else could not open it).
bool ReaderOfSnapshot(std::string_view data, const PublicKey& key) {
  auto snap = e2e::DecodeEncryptedSnapshot(data);
  if (!snap.ok()) return false;
  const auto& readers = snap->record.readers;
  return std::any_of(readers.begin(), readers.end(),
                     [&](const e2e::SealedKey& k) { return k.reader == key; });
}

}  // namespace

void Link::MaybeSeal(const std::string& doc, LinkDocState& d, const VersionVector& acked) {
  if (config_.relay || config_.seal_min_seqs == 0 || d.snapshot_sending) return;
  const VersionVector local = LocalVersion(doc);
  if (acked != local) return;
  auto enc = hub_.replica().Encryption(doc);
  if (enc.ok() && enc->encrypted) return MaybeSealEncrypted(doc, d, local, enc->epoch);
  if (local.TotalOps() < d.sealed.TotalOps() + config_.seal_min_seqs) return;
  d.sealed = local;  // once per version, sealed or not (a public document, or no admin here)
  auto seal = hub_.replica().SealState(doc);
  if (!seal.ok() || seal->version != local) return;
  Send(SealMsg(doc, *seal));
}

void Link::MaybeSealEncrypted(const std::string& doc, LinkDocState& d, const VersionVector& local,
                              uint64_t epoch) {
  // The relay cannot make a snapshot of what it cannot read: this device sends one, encrypted
  // and sealed, when the relay holds exactly its version. Each upload is the whole state, so it
  // waits for a quarter of the document's seqs (at least seal_min_seqs) more than the last one,
  // and a new key epoch (a grant or a revoke): a new member can open only a snapshot encrypted
  // under an epoch whose record names it.
  const auto before = hub_.LastUpload(doc, peer_key_);
  const uint64_t last = before ? before->seqs : 0;
  const uint64_t wait = std::max<uint64_t>(config_.seal_min_seqs, last / 4);
  const bool new_epoch = before && before->epoch != epoch;
  if (!new_epoch && local.TotalOps() < last + wait) return;
  if (d.sealed == local) return;  // tried at this version on this connection already
  d.sealed = local;               // once per version, sealed or not (not an admin here)
  auto snap = hub_.replica().SealEncryptedState(doc);
  if (!snap.ok() || snap->version != local || !snap->seal) return;
  d.snapshot_sending = true;
  d.snapshot_out = std::move(snap->data);
  d.snapshot_out_version = std::move(snap->version);
  d.snapshot_out_seal = SealMsg(doc, *snap->seal);
  d.snapshot_out_bytes = 0;
  d.snapshot_out_total = d.snapshot_out.size();
  d.snapshot_out_epoch = epoch;
  Pump();
}

void Link::OnSeal(const StateSealMsg& m) {
  if (!config_.relay) return;  // only relays keep sealed snapshots, to serve new devices
  if (m.encrypted) {
    // An encrypted snapshot's seal travels with its bytes (SnapshotChunk), never alone.
    ++hub_.counters().writes_denied;
    return;
  }
  if (docs_.find(m.doc) == docs_.end()) {
    return Fail(ErrorCode::kUnexpected, "a seal for a document before its Have", m.doc);
  }
  auto seal = SealOf(m);
  Status s = seal ? hub_.replica().KeepSealedSnapshot(m.doc, *seal)
                  : Status(StatusCode::kPermissionDenied, "a seal's key is not a key");
  // A seal of another version than this relay's (it moved on meanwhile) is dropped; a forged one
  // is counted.
  if (s.code() == StatusCode::kPermissionDenied) ++hub_.counters().writes_denied;
}

void Link::OnSnapshotChunk(const SnapshotChunkMsg& m) {
  auto it = docs_.find(m.doc);
  if (it == docs_.end()) {
    return Fail(ErrorCode::kUnexpected, "a snapshot chunk for a document before its Have", m.doc);
  }
  LinkDocState& d = it->second;
  // Dropped, as changes are, while the document is stopped on this connection (the rest of a
  // refused snapshot may still be on its way).
  if (!d.stopped.empty()) return;
  // A snapshot is state without history: nothing in it can be checked against an access list
  // (who wrote what, who granted what). Only a peer this side trusts (a trusted relay, or the
  // relay a device dialled) may replace an owned document with one, or bring one in.
  const bool checked = config_.open || peer_trusted_;
  // An encrypted snapshot, sealed by the owner or an admin: a relay keeps it (it cannot read it),
  // a device opens it; either checks the seal, whoever sent it.
  const bool encrypted = (m.offset == 0 ? m.seal : d.snapshot_in_seal) &&
                         (m.offset == 0 ? m.seal->encrypted : d.snapshot_in_seal->encrypted);
  if (encrypted && config_.relay && m.offset == 0) {
    // Refused before a byte is kept when it cannot be kept: not an encrypted document here, a
    // version this relay does not hold, or not the owner's or an admin's seal.
    auto enc = hub_.replica().Encryption(m.doc);
    auto access = hub_.replica().Access(m.doc);
    auto signer = PublicKey::FromBytes(m.seal->key);
    bool may = enc.ok() && enc->encrypted && LocalVersion(m.doc).Dominates(m.version) && signer &&
               access.ok();
    if (may) {
      auto role = access->members.find(*signer);
      may = role != access->members.end() &&
            (role->second == Role::kOwner || role->second == Role::kAdmin);
    }
    if (!may) {
      ++hub_.counters().writes_denied;
      return StopDoc(m.doc, ErrorCode::kPermissionDenied,
                     "an encrypted snapshot is kept only of an end-to-end encrypted document, at a "
                     "version held here, sealed by its owner or an admin");
    }
  }
  if (!checked && !encrypted && m.offset == 0) {
    auto access = hub_.replica().Access(m.doc);
    if (access.ok() && access->owned) return RefuseSnapshot(m.doc);
  }
  if (m.offset == 0) {
    if (m.total > config_.max_snapshot_bytes) {
      return Fail(ErrorCode::kTooLarge,
                  "a snapshot of " + std::to_string(m.total) + " bytes is over the limit of " +
                      std::to_string(config_.max_snapshot_bytes),
                  m.doc);
    }
    snapshot_in_pending_ -= d.snapshot_in.size();  // a restarted snapshot replaces the old one
    d.snapshot_receiving = true;
    d.snapshot_in_seal = m.seal;
    d.snapshot_in = std::string();  // grows with the bytes that arrive, not with `total`
    d.snapshot_in_version = m.version;
    d.snapshot_in_total = m.total;
    d.snapshot_in_bytes = 0;
  } else if (!d.snapshot_receiving || m.offset != d.snapshot_in.size() ||
             m.total != d.snapshot_in_total || m.version != d.snapshot_in_version) {
    return Fail(ErrorCode::kUnexpected, "a snapshot chunk out of sequence", m.doc);
  }
  // wire.cpp checked that the chunk is not empty and ends within `total`. Snapshots of several
  // documents may arrive interleaved: together they stay within the limit too.
  if (snapshot_in_pending_ + m.data.size() > config_.max_snapshot_bytes) {
    return Fail(ErrorCode::kTooLarge,
                "snapshots in progress over the limit of " +
                    std::to_string(config_.max_snapshot_bytes) + " bytes",
                m.doc);
  }
  d.snapshot_in.append(m.data);
  snapshot_in_pending_ += m.data.size();
  d.snapshot_in_bytes = d.snapshot_in.size();
  if (d.snapshot_in.size() < d.snapshot_in_total) return;
  snapshot_in_pending_ -= d.snapshot_in.size();
  d.snapshot_receiving = false;
  std::string data = std::move(d.snapshot_in);
  d.snapshot_in = std::string();
  if (encrypted && config_.relay) return KeepEncryptedSnapshot(m.doc, data, *d.snapshot_in_seal);
  if (!checked && !encrypted) {
    // The document may have become owned while the chunks arrived, or the snapshot may be of an
    // owned one (bytes that do not decode are ImportSnapshot's to refuse).
    auto access = hub_.replica().Access(m.doc);
    auto decoded = crdt::Document::DecodeSnapshot(data, hub_.self());
    if ((access.ok() && access->owned) || (decoded.ok() && decoded->access().owned())) {
      return RefuseSnapshot(m.doc);
    }
  }
  std::optional<StateSeal> seal;
  if (d.snapshot_in_seal) {
    seal = SealOf(*d.snapshot_in_seal);
    if (!seal) return StopDoc(m.doc, ErrorCode::kPermissionDenied, "snapshot: a seal's bad key");
  }
  auto r = hub_.replica().ImportSnapshot(m.doc, data, &d.snapshot_in_version,
                                         seal ? &*seal : nullptr, !StateTrusted());
  if (!r.ok()) {
    const StatusCode c = r.status().code();
    // A snapshot of a format this build does not know stops the document, not the session.
    ErrorCode code = c == StatusCode::kCorruption || c == StatusCode::kUnsupportedVersion
                         ? ErrorCode::kInvalidChange
                     : c == StatusCode::kInvalidArgument  ? ErrorCode::kUnexpected
                     : c == StatusCode::kPermissionDenied ? ErrorCode::kPermissionDenied
                                                          : ErrorCode::kStorage;
    std::string message = "snapshot: " + r.status().ToString();
    if (code == ErrorCode::kStorage) return Fail(code, std::move(message), m.doc);
    return StopDoc(m.doc, code, std::move(message));
  }
  d.peer_has.Merge(d.snapshot_in_version);
  ++d.snapshots_received;
  ++hub_.counters().snapshots_received;
  // The snapshot is durable (ImportSnapshot committed it): acknowledge.
  Send(AckMsg{m.doc, *r});
}

void Link::KeepEncryptedSnapshot(const std::string& doc, const std::string& data,
                                 const StateSealMsg& m) {
  auto seal = SealOf(m);
  Status s = seal ? hub_.replica().KeepEncryptedSnapshot(doc, data, *seal)
                  : Status(StatusCode::kPermissionDenied, "a seal's key is not a key");
  // One of another version than this relay's (it moved on meanwhile) is dropped; one that does
  // not check is counted. Neither stops the document: the log still serves every peer.
  if (s.code() == StatusCode::kPermissionDenied || s.code() == StatusCode::kCorruption) {
    ++hub_.counters().writes_denied;
  }
}

void Link::RefuseSnapshot(const std::string& doc) {
  ++hub_.counters().writes_denied;
  StopDoc(doc, ErrorCode::kPermissionDenied,
          "a snapshot of an owned document is taken only from a trusted peer (its content cannot "
          "be checked against the access list); send the log");
}

void Link::OnPresence(const PresenceMsg& m) {
  auto it = docs_.find(m.doc);
  if (it == docs_.end()) return Fail(ErrorCode::kUnexpected, "presence for an unknown document");
  // Not from a peer without rights, nor for a document it never announced (its rights were
  // checked by its Have; an Error alone also makes an entry here).
  if (it->second.denied || !it->second.peer_sent_have) return;
  if (Names(m.path, hub_.self())) {
    ++hub_.counters().loops_dropped;
    return;
  }
  ++hub_.counters().presence_in;
  HubEvent e;
  e.kind = HubEvent::Kind::kPresence;
  e.doc = m.doc;
  e.presence = m;
  e.origin = listener_id_;
  hub_.Broadcast(e);
}

void Link::OnError(const ErrorMsg& m) {
  ++hub_.counters().errors_received;
  last_error_ = std::string("the peer refused: ") + ErrorCodeName(m.code) + ": " + m.message;
  if (m.code == ErrorCode::kDiverged) {
    auto it = docs_.find(m.doc);
    if (it != docs_.end() && !it->second.diverged) {
      it->second.diverged = true;
      ++hub_.counters().divergences;
    }
  }
  if (!m.fatal && !m.doc.empty() && m.code != ErrorCode::kDiverged) {
    // The peer stopped the document on this connection: so does this side (without an answer).
    auto it = docs_.find(m.doc);
    if (it == docs_.end() && docs_.size() < config_.max_documents) {
      Track(m.doc);
      it = docs_.find(m.doc);
    }
    if (it != docs_.end() && it->second.stopped.empty()) {
      LinkDocState& d = it->second;
      d.stopped = std::string("the peer stopped it: ") + ErrorCodeName(m.code) + ": " + m.message;
      d.stopped_by_peer = true;
      d.denied = m.code == ErrorCode::kPermissionDenied;
      if (d.denied) ++hub_.counters().denials_received;
      d.outbox.clear();
      d.dirty = false;
      if (pending_ && pending_->doc == m.doc) pending_.reset();
      ++hub_.counters().documents_stopped;
    }
  }
  if (m.fatal) {
    refused_ = true;
    closed_ = true;
    transport_.close(1000, "");
  }
}

void Link::OnEvent(const HubEvent& e) {
  std::lock_guard lock(mu_);
  if (closed_ || !hello_received_) return;
  auto it = docs_.find(e.doc);
  if (e.kind == HubEvent::Kind::kDocChanged) {
    if (it == docs_.end()) {
      if (all_docs_) StartDoc(e.doc);
      return;
    }
    // The change may have granted or revoked the peer's role: a revoked reader loses the
    // document at once; a document it was denied and may now read starts again.
    if (e.access && !config_.open && !peer_trusted_) {
      bool may = PeerMayRead(e.doc);
      if (!may && !it->second.denied) return Deny(e.doc);
      if (may && it->second.denied && !it->second.stopped_by_peer) {
        ResumeDoc(it->second);
        it->second.we_sent_have = false;
        StartDoc(e.doc);
        return;
      }
    }
    it->second.dirty = true;
    if (lingering_) return;  // the timer pumps
    if (config_.live_interval.count() > 0 && transport_.wake &&
        Now() < last_batch_ + config_.live_interval) {
      // A batch went out a moment ago: let more changes gather for the next one.
      lingering_ = true;
      Wake(last_batch_ + config_.live_interval);
      return;
    }
    Pump();
    return;
  }
  // Presence: ephemeral, dropped rather than queued when the connection is busy.
  if (it == docs_.end() || !it->second.peer_sent_have || it->second.denied) return;
  if (Names(e.presence.path, peer_) || e.presence.node == peer_) return;
  if (transport_.queued() >= config_.max_queued_frames * 4) return;
  PresenceMsg p = e.presence;
  p.path.push_back(hub_.self());
  ++hub_.counters().presence_out;
  Send(p);
}

Status Link::PublishPresence(std::string_view doc, std::string payload) {
  std::lock_guard lock(mu_);
  if (closed_ || !hello_received_) return Status(StatusCode::kDisconnected, "not connected");
  auto it = docs_.find(std::string(doc));
  if (it == docs_.end()) return Status::NotFound("the document is not synced with this peer");
  Send(PresenceMsg{std::string(doc), hub_.self(), std::move(payload), {hub_.self()}});
  ++hub_.counters().presence_out;
  return Status::Ok();
}

void Link::OnWritable() {
  std::lock_guard lock(mu_);
  Pump();
}

void Link::OnTick() {
  std::lock_guard lock(mu_);
  if (closed_ || !hello_received_) return;
  for (auto& [doc, d] : docs_) {
    // A document this side stopped is tried again (its Have tells the peer to resume it), unless
    // its local copy still cannot be read.
    if (d.denied && !d.stopped_by_peer) {  // denied here: starts again once the peer may read
      if (!PeerMayRead(doc)) continue;
      ResumeDoc(d);
      d.we_sent_have = false;
      StartDoc(doc);
      continue;
    }
    if (!d.stopped.empty() && !d.stopped_by_peer) {
      auto local = hub_.replica().Version(doc);
      if (!local.ok() && local.status().code() == StatusCode::kCorruption) continue;
      ResumeDoc(d);
    }
    if (!d.we_sent_have || !d.stopped.empty()) continue;
    Send(LocalHave(doc, d));
    d.dirty = true;
  }
  Pump();
}

void Link::OnHelloTimeout() {
  std::lock_guard lock(mu_);
  if (!hello_received_) Fail(ErrorCode::kTimeout, "no Hello in time");
}

void Link::OnClosed(const std::string& reason) {
  std::lock_guard lock(mu_);
  if (!close_reported_) {
    close_reported_ = true;
    Report("info", "session.close", {},
           {{"documents", docs_.size()},
            {"changes_received", changes_received_},
            {"changes_sent", changes_sent_},
            {"duplicates", duplicates_}},
           last_error_.empty() ? reason : last_error_);
  }
  closed_ = true;
  pending_.reset();
  if (last_error_.empty() && !reason.empty()) last_error_ = reason;
}

void Link::Pump() {
  if (closed_ || !hello_received_) return;
  bool progress = true;
  while (progress && transport_.queued() < config_.max_queued_frames && !closed_) {
    progress = false;
    for (auto& [doc, d] : docs_) {
      if (!d.peer_sent_have || !d.stopped.empty()) continue;
      if (d.snapshot_sending) {
        // The snapshot goes first, alone: the log after it follows once it is sent.
        if (SendSnapshotChunk(doc, d)) progress = true;
        if (transport_.queued() >= config_.max_queued_frames || closed_) break;
        continue;
      }
      if (d.outbox.empty() && d.dirty && !lingering_) {
        d.dirty = false;
        Refill(doc, d);
        if (d.snapshot_sending) progress = true;  // it starts on the next round
      }
      if (!d.outbox.empty() && SendBatch(doc, d)) progress = true;
      if (transport_.queued() >= config_.max_queued_frames || closed_) break;
    }
  }
}

void Link::Refill(const std::string& doc, LinkDocState& d) {
  VersionVector base = d.peer_has;
  base.Merge(d.sent);
  // Nothing to read when the peer holds (or was sent) everything here: the common case for a
  // change that just arrived from this very peer, and it spares a read of the log.
  VersionVector local = LocalVersion(doc);
  if (base.Dominates(local)) return;
  // Live fan-out: the few changes the peer lacks were just received from another peer and are
  // remembered by the hub (once the first exchange decided about a snapshot, and when the peer
  // holds this replica's base).
  if (d.bootstrap_checked && base.Dominates(hub_.BaseVersion(doc))) {
    if (auto recent = hub_.RecentSince(doc, base, local)) {
      for (const auto& c : *recent) d.outbox.push_back({c->blob, c->id, c->end});
      return;
    }
  }
  auto blobs = hub_.replica().ChangesSince(doc, base);
  if (!blobs.ok()) {
    if (blobs.status().code() == StatusCode::kCorruption) {
      // A damaged log (checksum or segment): this document cannot be served, the others can.
      return StopDoc(doc, ErrorCode::kCorruption, blobs.status().ToString());
    }
    if (blobs.status().code() != StatusCode::kNotFound) {
      Fail(ErrorCode::kStorage, blobs.status().ToString(), doc);
    }
    return;
  }
  if (MaybeStartSnapshot(doc, d, base, blobs->size())) return;
  // Nothing goes on the wire that does not decode: a change read back damaged stops the document
  // here, rather than at every peer that would refuse it on every reconnect.
  for (size_t i = 0; i < blobs->size(); ++i) {
    auto c = crdt::DecodeChange((*blobs)[i]);
    if (!c.ok()) {
      d.outbox.clear();
      return StopDoc(doc, ErrorCode::kCorruption,
                     "the local log holds a change that does not decode: " + c.status().message());
    }
    d.outbox.push_back({std::move((*blobs)[i]), c->id(), c->end_seq()});
  }
}

bool Link::SendBatch(const std::string& doc, LinkDocState& d) {
  ChangesMsg m;
  m.doc = doc;
  std::vector<std::vector<NodeId>> paths;  // of each change in m.changes
  size_t bytes = 0;
  while (!d.outbox.empty() && m.changes.size() < config_.max_batch_changes) {
    auto& o = d.outbox.front();
    if (d.peer_has.Contains({o.id.node, o.end}) || d.sent.Contains({o.id.node, o.end})) {
      d.outbox.pop_front();
      continue;
    }
    uint64_t recorded_at = 0;
    std::vector<NodeId> path = hub_.PathOf(doc, o.id, &recorded_at);
    if (Names(path, peer_) && recorded_at > d.have_at) {
      // It passed through the peer on its way here, after the peer's latest Have: the peer has
      // it. (A Have heard later that lacks it wins: the peer may have lost it since, restored
      // from an old copy of its database, and anti-entropy must be able to repair that.)
      d.sent.Advance(o.id.node, o.end);
      d.outbox.pop_front();
      continue;
    }
    if (!m.changes.empty() && bytes + o.blob.size() > config_.max_batch_bytes) break;
    bytes += o.blob.size();
    d.sent.Advance(o.id.node, o.end);
    m.changes.push_back(std::move(o.blob));
    paths.push_back(std::move(path));
    d.outbox.pop_front();
  }
  if (m.changes.empty()) return false;
  // The batch's path: the nodes every change passed through (the longest common tail of their
  // paths), then this node; what else a change passed through goes in its route.
  size_t common = paths.front().size();
  for (const auto& p : paths) {
    size_t n = 0;
    while (n < common && n < p.size() &&
           p[p.size() - 1 - n] == paths.front()[paths.front().size() - 1 - n]) {
      ++n;
    }
    common = n;
  }
  m.path.assign(paths.front().end() - static_cast<std::ptrdiff_t>(common), paths.front().end());
  m.path.push_back(hub_.self());
  bool routed = false;
  for (const auto& p : paths) routed = routed || p.size() > common;
  if (routed) {
    m.routes.reserve(paths.size());
    for (auto& p : paths) {
      p.resize(p.size() - common);
      m.routes.push_back(std::move(p));
    }
  }
  m.remaining = d.outbox.size();
  if (config_.live_interval.count() > 0) last_batch_ = Now();
  d.changes_sent += m.changes.size();
  changes_sent_ += m.changes.size();
  hub_.counters().changes_out += m.changes.size();
  Send(m);
  return true;
}

bool Link::MaybeStartSnapshot(const std::string& doc, LinkDocState& d, const VersionVector& known,
                              size_t missing_changes) {
  if (closed_) return false;
  // The log starts after a base snapshot the peer lacks part of: only a snapshot can serve it.
  bool needed = !known.Dominates(hub_.BaseVersion(doc));
  // A new or far-behind peer (checked once, on its first Have): a snapshot is cheaper than the
  // log, when everything the peer holds is in it (so that it can take the snapshot as its base).
  // Only relays offer it: a device pushes its log, so that relays keep whole histories.
  bool first = !d.bootstrap_checked;
  d.bootstrap_checked = true;
  bool worth = first && config_.relay && config_.snapshot_min_changes > 0 &&
               missing_changes >= config_.snapshot_min_changes &&
               LocalVersion(doc).Dominates(known);
  if (!needed && !worth) return false;
  // An owned document goes to a peer not trusted with the state only as a seal vouches for it:
  // the latest sealed snapshot, when the peer holds nothing past it; else the log.
  auto access = hub_.replica().Access(doc);
  auto enc = hub_.replica().Encryption(doc);
  const bool encrypted = enc.ok() && enc->encrypted;
  // An encrypted document: the latest encrypted snapshot a member sealed, to a reader of its key
  // record only (nobody here can read one, trusted or not).
  const bool sealed_only = encrypted || (!StateTrusted() && access.ok() && access->owned);
  auto snap = sealed_only ? hub_.replica().SealedSnapshot(doc) : hub_.replica().ExportSnapshot(doc);
  if (!snap.ok()) {
    if (snap.status().code() != StatusCode::kNotFound) {
      Fail(ErrorCode::kStorage, snap.status().ToString(), doc);
    }
    return false;
  }
  if (sealed_only && !snap->version.Dominates(known)) return false;
  // ... to a reader of its key record that holds nothing of the document (one that holds some
  // takes the log: see Replica::ImportSnapshot).
  if (encrypted && (!known.empty() || !snap->seal || !snap->seal->encrypted ||
                    !ReaderOfSnapshot(snap->data, peer_key_))) {
    return false;
  }
  d.outbox.clear();
  d.snapshot_sending = true;
  d.snapshot_out = std::move(snap->data);
  d.snapshot_out_version = std::move(snap->version);
  d.snapshot_out_seal.reset();
  if (snap->seal) d.snapshot_out_seal = SealMsg(doc, *snap->seal);
  d.snapshot_out_bytes = 0;
  d.snapshot_out_total = d.snapshot_out.size();
  return true;
}

bool Link::SendSnapshotChunk(const std::string& doc, LinkDocState& d) {
  SnapshotChunkMsg m;
  m.doc = doc;
  m.version = d.snapshot_out_version;
  m.offset = d.snapshot_out_bytes;
  m.total = d.snapshot_out_total;
  size_t n = std::min<uint64_t>(std::max<size_t>(config_.snapshot_chunk_bytes, 1),
                                d.snapshot_out_total - d.snapshot_out_bytes);
  m.data = d.snapshot_out.substr(d.snapshot_out_bytes, n);
  if (m.offset == 0) m.seal = d.snapshot_out_seal;
  d.snapshot_out_bytes += n;
  Send(m);
  if (d.snapshot_out_bytes == d.snapshot_out_total) {
    // A device's upload of an encrypted snapshot, all of it on its way (a relay that moved on
    // meanwhile keeps it all the same: it holds every change in it).
    if (!config_.relay && d.snapshot_out_seal && d.snapshot_out_seal->encrypted) {
      hub_.NoteUpload(doc, peer_key_, {d.snapshot_out_version.TotalOps(), d.snapshot_out_epoch});
    }
    d.snapshot_sending = false;
    d.snapshot_out = std::string();
    d.sent.Merge(d.snapshot_out_version);
    ++d.snapshots_sent;
    ++hub_.counters().snapshots_sent;
    d.dirty = true;  // then the log after the snapshot
  }
  return true;
}

void Link::PersistAck(const std::string& doc, const LinkDocState& d) {
  if (config_.ack_key.empty()) return;
  (void)hub_.replica().SetPeerVersion(config_.ack_key, doc, d.acked);
}

bool Link::ready() const {
  std::lock_guard lock(mu_);
  return hello_received_ && !closed_;
}
bool Link::closed() const {
  std::lock_guard lock(mu_);
  return closed_;
}
NodeId Link::peer() const {
  std::lock_guard lock(mu_);
  return peer_;
}
bool Link::peer_is_relay() const {
  std::lock_guard lock(mu_);
  return peer_relay_;
}
std::string Link::denied() const {
  std::lock_guard lock(mu_);
  for (const auto& [doc, d] : docs_) {
    if (d.denied && d.stopped_by_peer) return "\"" + doc + "\": " + d.stopped;
  }
  return {};
}
PublicKey Link::peer_key() const {
  std::lock_guard lock(mu_);
  return hello_received_ ? peer_key_ : PublicKey();
}
bool Link::refused() const {
  std::lock_guard lock(mu_);
  return refused_;
}
std::string Link::last_error() const {
  std::lock_guard lock(mu_);
  return last_error_;
}
uint64_t Link::changes_sent() const {
  std::lock_guard lock(mu_);
  return changes_sent_;
}
uint64_t Link::changes_received() const {
  std::lock_guard lock(mu_);
  return changes_received_;
}
uint64_t Link::duplicates() const {
  std::lock_guard lock(mu_);
  return duplicates_;
}

std::map<std::string, LinkDocState> Link::Documents() const {
  std::lock_guard lock(mu_);
  std::map<std::string, LinkDocState> out;
  for (const auto& [doc, d] : docs_) {
    LinkDocState copy;
    copy.we_sent_have = d.we_sent_have;
    copy.peer_sent_have = d.peer_sent_have;
    copy.target_local = d.target_local;
    copy.target_remote = d.target_remote;
    copy.peer_has = d.peer_has;
    copy.acked = d.acked;
    copy.sent = d.sent;
    copy.changes_sent = d.changes_sent;
    copy.changes_received = d.changes_received;
    copy.duplicates = d.duplicates;
    copy.peer_remaining = d.peer_remaining;
    copy.diverged = d.diverged;
    copy.stopped = d.stopped;
    copy.stopped_by_peer = d.stopped_by_peer;
    copy.denied = d.denied;
    copy.bootstrap_checked = d.bootstrap_checked;
    copy.snapshot_out_bytes = d.snapshot_out_bytes;
    copy.snapshot_out_total = d.snapshot_out_total;
    copy.snapshots_sent = d.snapshots_sent;
    copy.snapshot_in_bytes = d.snapshot_in_bytes;
    copy.snapshot_in_total = d.snapshot_in_total;
    copy.snapshots_received = d.snapshots_received;
    copy.snapshot_sending = d.snapshot_sending;
    copy.snapshot_receiving = d.snapshot_receiving;
    out.emplace(doc, std::move(copy));
  }
  return out;
}

bool Link::Converged(std::string* waiting) const {
  std::lock_guard lock(mu_);
  auto wait = [&](std::string why) {
    if (waiting) *waiting = std::move(why);
    return false;
  };
  if (closed_) return wait("the connection is closed");
  if (!hello_received_) return wait("the handshake");
  if (all_docs_ && haves_received_ < announces_expected_) return wait("the peer's documents");
  for (const auto& [doc, d] : docs_) {
    if (!d.stopped.empty()) return wait("\"" + doc + "\", stopped (" + d.stopped + ")");
    if (!d.we_sent_have || !d.peer_sent_have) return wait("the Have of \"" + doc + "\"");
    if (!d.acked.Dominates(d.target_local)) return wait("the peer's Ack of \"" + doc + "\"");
    if (d.snapshot_sending) return wait("the snapshot of \"" + doc + "\" to be sent");
    if (!LocalVersion(doc).Dominates(d.target_remote)) {
      return wait("the peer's changes of \"" + doc + "\"");
    }
  }
  return true;
}

}  // namespace weft::sync
