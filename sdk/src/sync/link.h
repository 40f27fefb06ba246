// Link: the sync protocol of one connection, independent of the transport.
//
// A Link speaks docs/protocol.md with one peer over any ordered, message-framed transport: the
// owner hands it each received frame (OnFrame), tells it when the send queue drains (OnWritable)
// and forwards the hub's events (OnEvent); the Link sends frames and asks for a close through the
// LinkTransport callbacks. The WebSocket session (ws_session.h) is its one production transport.
//
// Sending is pulled from the op log, not pushed: for each document the Link tracks what the peer
// is known to have (its Have, its Acks, what it sent) and what was sent to it, and when the
// transport has room it reads the next batch of missing changes from the replica. So catch-up
// and live streaming are one mechanism, a slow peer simply falls behind (memory stays bounded),
// and the op log is the offline queue.
//
// Thread safety: all methods may be called from any thread (an internal mutex serialises them),
// but the transport callbacks run with that mutex held and must not call back into the Link.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "sync/hub.h"
#include "sync/wire.h"
#include "weft/identity.h"

namespace weft::sync {

struct LinkConfig {
  bool dialer = false;                 // this side opened the connection (sends Hello first)
  bool relay = false;                  // the role this side announces
  bool all_documents = false;          // dialer: every document either side has
  std::vector<std::string> documents;  // dialer: the documents to sync (when not all)
  // Session authentication (docs/security.md): both sides always prove their keys.
  std::string credentials;  // dialer: an admission token for the accepting side (may be empty)
  std::string audience;     // dialer: what it dials (its URL), signed by both sides
  std::optional<PublicKey> expected_peer;  // dialer: refuse a peer that proves another key
  // Accepting side: admit only dialers with a token signed by this key (trusted peers excepted).
  std::optional<PublicKey> admission_key;
  // Peers holding these keys are relays of the same deployment: they may read every document
  // and send changes of any author.
  std::set<PublicKey> trusted;
  // Serve every document to every authenticated peer, without read checks (a relay started
  // explicitly open, for local experiments). Otherwise a peer gets an owned document only if it
  // is trusted, or is the relay this side dialled, or reads it by the document's access list.
  bool open = false;
  std::string ack_key;  // persist the peer's acks under this name (Replica::SetPeerVersion); "": no
  uint64_t log_session = 0;  // the connection's number in the hub's log events (0: none)
  size_t max_batch_changes = 512;
  size_t max_batch_bytes = 1 << 20;
  size_t max_documents = 100000;  // per connection
  size_t max_queued_frames = 8;   // the Link reads more changes only below this
  // Batching under load (both need LinkTransport::wake; without it everything is immediate):
  // - a change stored here is announced to the peer at most `live_interval` after the previous
  //   batch sent on this connection, so that changes arriving in a burst share one frame (a
  //   relay fanning out to many devices sends each a frame per interval, not per change);
  // - received changes are acknowledged at most `ack_delay` after they were stored (one Ack for
  //   the changes of that time, not one per frame). A peer waiting for an Ack (semi-synchronous
  //   writes) waits that long too: relays acknowledge at once.
  std::chrono::microseconds live_interval{0};
  std::chrono::microseconds ack_delay{0};
  // The clock of those delays; null: std::chrono::steady_clock (a seam for tests).
  std::function<std::chrono::steady_clock::time_point()> clock;
  // Snapshot bootstrap: when this side is a relay, a peer whose first Have shows it lacking at
  // least this many changes (and holding nothing this side lacks) is sent the document's snapshot
  // first, then the log after it; 0 (and on devices): only when the log cannot serve the peer
  // (it starts after a base snapshot the peer lacks part of).
  size_t snapshot_min_changes = 256;
  // A relay serves an owned document's snapshot to a peer it does not trust with the state (not
  // in `trusted`, unless `open`) only as its owner or an admin sealed it (Replica::SealState), and
  // takes one from such a peer only with a matching seal. On a device that owns or administers a
  // document: its state is sealed for the relay when the relay acknowledges exactly its version
  // and it holds at least this many more seqs than at its last seal on this connection (0: never).
  size_t seal_min_seqs = 256;
  size_t snapshot_chunk_bytes = 256u << 10;
  size_t max_snapshot_bytes = 512u << 20;  // larger incoming snapshots are refused (tooLarge)
  DecodeLimits limits;
};

struct LinkTransport {
  std::function<void(std::string frame)> send;
  // Close after the frames already queued; `code` is a WebSocket close code.
  std::function<void(uint16_t code, std::string reason)> close;
  std::function<size_t()> queued;  // frames queued and not yet written
  // Call Link::OnTimer() once `delay` has passed (an earlier request still pending may be
  // kept if it is due sooner). Optional: without it the Link never waits.
  std::function<void(std::chrono::microseconds delay)> wake;
  // Runs `fn` later where the Link's other calls run (it then calls into the Link), or never when
  // the connection is gone; callable from any thread. Optional: without it the Link waits for
  // durable storage (Durability::kGroup) in place before acknowledging.
  std::function<void(std::function<void()> fn)> defer;
};

// What a Link knows of one document.
struct LinkDocState {
  bool we_sent_have = false;
  bool peer_sent_have = false;
  VersionVector target_local;   // our version when we sent our first Have
  VersionVector target_remote;  // the peer's first Have
  VersionVector peer_has;       // what the peer is known to hold
  VersionVector acked;          // what the peer acknowledged storing durably
  VersionVector sent;           // what we sent on this connection
  uint64_t changes_sent = 0;
  uint64_t changes_received = 0;
  uint64_t duplicates = 0;
  uint64_t peer_remaining = 0;  // progress of the peer's catch-up, as it last reported
  bool diverged = false;        // the peer's Have showed our version with another state
  // Why the document stopped syncing on this connection, both ways ("" while it syncs): a damaged
  // change in the local log, or one from the peer that does not decode or apply. The other
  // documents go on. The side that stopped it tries it again at its next anti-entropy tick (its
  // Have resumes it at the peer), and so does the next connection.
  std::string stopped;
  bool stopped_by_peer = false;  // the peer's Error stopped it; the peer's next Have resumes it
  // Stopped for want of rights: this side denied the peer the document (its key may not read
  // it; checked again whenever the document changes), or the peer refused it to this side.
  bool denied = false;
  bool ack_pending = false;  // changes received and stored, not yet acknowledged
  uint64_t have_at = 0;      // Hub::PathClock() when the peer's latest Have arrived

  struct Outgoing {
    std::string blob;
    crdt::Dot id;      // author, first seq
    uint64_t end = 0;  // last seq
  };
  std::deque<Outgoing> outbox;  // read from the log, not yet sent
  bool dirty = false;           // the log may hold changes the peer lacks beyond the outbox

  // Snapshot bootstrap, each way: progress in bytes (kept after completion) and counts.
  bool bootstrap_checked = false;  // the first Refill after the peer's Have decided
  uint64_t snapshot_out_bytes = 0, snapshot_out_total = 0, snapshots_sent = 0;
  uint64_t snapshot_in_bytes = 0, snapshot_in_total = 0, snapshots_received = 0;
  bool snapshot_sending = false, snapshot_receiving = false;
  std::string snapshot_out;  // being sent
  VersionVector snapshot_out_version;
  std::optional<StateSealMsg> snapshot_out_seal;
  uint64_t snapshot_out_epoch = 0;  // of a device's encrypted snapshot
  std::string snapshot_in;          // being received
  VersionVector snapshot_in_version;
  std::optional<StateSealMsg> snapshot_in_seal;
  VersionVector sealed;  // the version this side last sealed for the peer
};

// Received changes of one document, checked and not yet stored (Link::OnFrames gathers them).
// (At namespace scope: a nested struct with default member initializers is not yet complete where
// the enclosing class declares a std::optional of it, which clang refuses.)
struct ReceivedChanges {
  std::string doc;
  std::vector<std::string> blobs;
  std::vector<std::pair<NodeId, uint64_t>> ends;  // author, last seq of each
  std::vector<RecentChange> recent;               // relay: remembered for fan-out
  uint64_t remaining = 0;                         // of the last batch
};

// WebSocket close code for a protocol error.
uint16_t CloseCodeFor(ErrorCode code);

class Link {
 public:
  Link(Hub& hub, LinkConfig config, LinkTransport transport);
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  // The hub listener ID of this link (the origin of the events it raises).
  void set_listener_id(uint64_t id);

  // The transport is open: the dialer sends Hello and its Haves.
  void Start();
  void OnFrame(std::string_view frame);
  // Frames that arrived together, in order: consecutive Changes of one document are stored in
  // one transaction (and acknowledged once), as if the peer had sent them as one batch.
  void OnFrames(const std::vector<std::string>& frames);
  // The delay asked for through LinkTransport::wake has passed.
  void OnTimer();
  void OnWritable();
  void OnEvent(const HubEvent& event);
  // Periodic anti-entropy: re-announce every document, repair what the live stream missed.
  void OnTick();
  // The accepting side got no Hello in time.
  void OnHelloTimeout();
  // The transport closed (for any reason); `reason` is kept when no error is known.
  void OnClosed(const std::string& reason);
  Status PublishPresence(std::string_view doc, std::string payload);

  // Status, safe from any thread.
  bool ready() const;  // Hello exchanged and not closed
  bool closed() const;
  NodeId peer() const;
  bool peer_is_relay() const;
  // The peer's proven public key (invalid before the handshake completes).
  PublicKey peer_key() const;
  std::string last_error() const;
  bool refused() const;  // the peer sent a fatal Error
  // Why a document was refused to this side for want of rights ("" when none was).
  std::string denied() const;
  uint64_t changes_sent() const;
  uint64_t changes_received() const;
  uint64_t duplicates() const;
  std::map<std::string, LinkDocState> Documents() const;  // without outboxes
  // True when, for every document of this link (those named, or all announced), both sides hold
  // what the other had when they first exchanged Haves, and the peer acknowledged it. Otherwise
  // false, with what is awaited in `waiting`.
  bool Converged(std::string* waiting) const;

 private:
  void Send(const Message& m);
  // Reports an event of this connection to the hub's log (when it has one).
  void Report(const char* level, const char* event, std::string doc = {},
              std::vector<std::pair<const char*, uint64_t>> counts = {}, std::string error = {});
  void Fail(ErrorCode code, std::string message, std::string doc = {});
  // Stops `doc` on this connection (LinkDocState::stopped) and tells the peer with a non-fatal
  // Error; the connection and its other documents go on.
  void StopDoc(const std::string& doc, ErrorCode code, std::string message);
  // A failure to store or serve `doc`: local storage failures close the connection (Fail), a
  // failure of the document's content stops only that document (StopDoc).
  void FailDoc(const std::string& doc, const Status& status);
  // The peer may not read `doc`: stop it on this connection (the peer hears why, once).
  void Deny(const std::string& doc);
  // Syncs a stopped document again (from the peer's next Have on).
  void ResumeDoc(LinkDocState& d);
  void StartDoc(const std::string& doc);
  void Pump();
  void Refill(const std::string& doc, LinkDocState& d);
  bool SendBatch(const std::string& doc, LinkDocState& d);
  // Starts sending the snapshot of `doc` when the peer needs or should get one (see LinkConfig).
  bool MaybeStartSnapshot(const std::string& doc, LinkDocState& d, const VersionVector& known,
                          size_t missing_changes);
  bool SendSnapshotChunk(const std::string& doc, LinkDocState& d);
  // Refuses the snapshot of `doc` the peer is sending (see OnSnapshotChunk): stops the document
  // (which drops what arrived of it).
  void RefuseSnapshot(const std::string& doc);
  void PersistAck(const std::string& doc, const LinkDocState& d);
  VersionVector LocalVersion(const std::string& doc) const;
  // Our Have of `doc`, with the state digest when the peer is known to hold the same version.
  HaveMsg LocalHave(const std::string& doc, const LinkDocState& d) const;

  using Clock = std::chrono::steady_clock;
  // Handles one decoded frame (changes are gathered into pending_ and stored by ApplyPending).
  void Dispatch(Message& m);
  void ApplyPending();
  void SendAck(const std::string& doc, LinkDocState& d, const VersionVector& version);
  void FlushAcks();
  void Wake(Clock::time_point when);
  Clock::time_point Now() const { return config_.clock ? config_.clock() : Clock::now(); }

  void OnHello(const HelloMsg& m);
  void OnAuth(const AuthMsg& m);
  HelloMsg OwnHello() const;  // node, agent, role, key and nonce
  // The handshake is done: announce this side's documents.
  void Authenticated();
  // Whether the peer may be sent `doc` (LinkConfig::open, trusted, or a reader of it).
  bool PeerMayRead(const std::string& doc) const;
  void OnHave(const HaveMsg& m);
  void OnChanges(ChangesMsg& m);
  void OnAck(const AckMsg& m);
  void OnSnapshotChunk(const SnapshotChunkMsg& m);
  void OnSeal(const StateSealMsg& m);
  // After the peer acknowledged `acked` of `doc`: seals the state for it when due (see
  // LinkConfig::seal_min_seqs).
  void MaybeSeal(const std::string& doc, LinkDocState& d, const VersionVector& acked);
  // MaybeSeal for an end-to-end encrypted document at `epoch`: sends its encrypted snapshot.
  void MaybeSealEncrypted(const std::string& doc, LinkDocState& d, const VersionVector& local,
                          uint64_t epoch);
  // Keeps an encrypted snapshot a device sent (a relay).
  void KeepEncryptedSnapshot(const std::string& doc, const std::string& data,
                             const StateSealMsg& seal);
  // Whether the peer's snapshots are taken without a seal (and it is served unsealed ones).
  bool StateTrusted() const;
  void OnPresence(const PresenceMsg& m);
  void OnError(const ErrorMsg& m);

  Hub& hub_;
  const LinkConfig config_;
  const LinkTransport transport_;

  mutable std::mutex mu_;
  // The state of `doc` on this link, made when new: the hub then tells this link of `doc`.
  LinkDocState& Track(const std::string& doc);
  // Has the hub tell this link of every document (all_docs_) or only of its own.
  void UpdateHearing();
  uint64_t listener_id_ = 0;
  bool started_ = false;
  bool hello_seen_ = false;      // the peer's Hello arrived
  bool hello_received_ = false;  // ...and both sides are authenticated: documents may flow
  std::string nonce_;            // the fresh nonce this side sent
  std::string audience_;         // as the dialer named it
  PublicKey peer_key_;
  bool peer_trusted_ = false;
  std::vector<std::string>
      to_announce_;  // accepting side: the documents to announce once authenticated
  bool closed_ = false;
  bool all_docs_ = false;
  NodeId peer_;
  bool peer_relay_ = false;
  uint32_t announces_expected_ = 0;
  uint32_t haves_received_ = 0;
  std::string last_error_;
  bool refused_ = false;
  std::map<std::string, LinkDocState> docs_;
  uint64_t changes_sent_ = 0, changes_received_ = 0, duplicates_ = 0;
  bool close_reported_ = false;       // the session.close event
  uint64_t snapshot_in_pending_ = 0;  // bytes of incomplete incoming snapshots, all documents

  std::optional<ReceivedChanges> pending_;  // see OnFrames
  bool lingering_ = false;                  // live changes wait for live_interval to pass
  Clock::time_point last_batch_{};          // when the last Changes batch was sent
  Clock::time_point ack_due_{};             // when pending acks must go out
  bool acks_waiting_ = false;
};

}  // namespace weft::sync
