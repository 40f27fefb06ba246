// Sync: connects a Replica to peers (relays or other replicas) over WebSockets.
//
// A SyncClient runs its own network thread. For each peer URL (ws://host:port[/path], or
// wss://host[:port][/path] for TLS, checked against SyncOptions::tls_ca_file) it keeps
// one connection open, reconnecting with exponential backoff and jitter, and speaks the protocol
// of docs/protocol.md: per document, both sides say what they hold (a version vector), each
// sends the other the changes it lacks in causal order and bounded batches, then both stream new
// changes live; the peer acknowledges what it has stored durably. Changes are read from the
// replica's op log when there is room to send them, so the log is the offline queue: nothing
// made offline or before a restart is lost, and a restart resumes from what the peer holds. What
// each peer acknowledged is kept in the replica (Replica::PeerVersions), so replication lag can
// be shown even while offline.
//
// Thread safety: every method may be called from any thread. Callbacks (presence) run on the
// client's network thread and must not block; they may call the client.
// Ownership: the Replica must outlive the SyncClient. Destroying the client closes its
// connections (waiting briefly for the close handshakes).
// Nothing throws across this API.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "weft/replica.h"
#include "weft/status.h"

namespace weft {

struct SyncOptions {
  // The documents to sync with every peer; empty: every document either side has, including
  // documents created later on either side.
  std::vector<std::string> documents;
  // Reconnection: the n-th consecutive failure waits min(max, initial * 2^n), jittered into
  // [half, whole] of that.
  std::chrono::milliseconds initial_backoff{250};
  std::chrono::milliseconds max_backoff{30000};
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds handshake_timeout{10000};
  std::chrono::milliseconds idle_timeout{60000};  // keep-alive pings keep a quiet link open
  // Anti-entropy: every interval, each side re-announces its versions and repairs any gap.
  std::chrono::milliseconds anti_entropy_interval{30000};
  size_t max_frame_bytes = 16u << 20;
  size_t max_batch_changes = 512;
  size_t max_batch_bytes = 1u << 20;
  size_t max_send_queue_bytes = 64u << 20;
  // Changes received from a peer are acknowledged (told to be stored here) at most this long
  // after they were stored, in one Ack for all of that time: a device in a busy document sends a
  // few Acks a second rather than one per batch received. 0: one Ack per batch, at once.
  std::chrono::milliseconds ack_delay{20};
  // Snapshot bootstrap (docs/protocol.md): a device sends a peer a snapshot of a document only
  // when its log cannot serve the peer (this replica itself started from a snapshot the peer
  // lacks part of); relays also send one to a new or far-behind peer. Snapshots travel in chunks
  // of `snapshot_chunk_bytes`; incoming ones larger than `max_snapshot_bytes` are refused.
  size_t snapshot_chunk_bytes = 256u << 10;
  size_t max_snapshot_bytes = 512u << 20;
  // Session authentication (docs/security.md): every connection proves both sides' keys.
  // An admission token for relays started with --admission-key (`weft issue-token`); raw bytes.
  std::string credentials;
  // When set, a peer that proves another key is refused (pin the relay's `weft-relay
  // --print-key`); otherwise any key is accepted for the peer, and the relays this client dials
  // are sent every document this replica holds.
  std::optional<PublicKey> relay_key;
  // In documents this device owns or administers: its state is sealed for the relay once the
  // relay acknowledges exactly its version and it holds at least this many more seqs (ops) than
  // at its last seal on the connection, so that new devices can bootstrap from a snapshot they
  // can check (docs/security.md); 0: never.
  size_t seal_min_seqs = 256;
  // Seed of the backoff jitter; 0: random.
  uint64_t seed = 0;
  // wss:// peers: the certificates (PEM) a server's certificate must chain to, e.g. a private CA
  // or a self-signed server certificate; "" trusts the system's CAs. The certificate must also
  // name the URL's host (a DNS name, or an IP address in an IP SAN). A server that is not trusted
  // fails the connection ("the server's certificate was not trusted: ...").
  std::string tls_ca_file;
};

enum class ConnectionState {
  kConnecting,  // resolving, connecting, or waiting for the handshake
  kConnected,   // handshake done: exchanging changes
  kBackoff,     // the last attempt failed or the connection dropped; waiting to retry
  kStopped,     // removed or the client is shutting down
};
const char* ConnectionStateName(ConnectionState state);

// Replication lag of one document with one peer.
struct DocumentSyncStatus {
  std::string doc;
  bool live = false;  // both sides announced the document on the current connection
  // This replica and the peer hold the same version of the document in different states (found
  // by comparing state digests; see docs/protocol.md). Sync cannot repair it: the same change IDs
  // name different changes on the two sides (e.g. a database copied to a second device).
  bool diverged = false;
  // Why the document stopped syncing with this peer on the current connection ("" while it
  // syncs): a damaged change in this replica's log ("corruption: ..."), or a change from the peer
  // that does not decode or apply ("invalid change: ..."). Nothing of it was stored; the other
  // documents go on, and the next connection tries this one again.
  std::string error;
  // What the peer acknowledged storing durably (kept across restarts).
  VersionVector acknowledged;
  // Local changes the peer has not acknowledged yet, and the age of the oldest (by its author's
  // clock; nullopt when none).
  uint64_t unacknowledged_changes = 0;
  std::optional<std::chrono::milliseconds> oldest_unacknowledged_age;
  // Operations the peer is known to hold that this replica lacks (still being received).
  uint64_t behind_operations = 0;
  // Catch-up progress: changes the peer said it still had queued for us after its last batch.
  uint64_t incoming_remaining = 0;
  // Snapshot bootstrap progress on the current connection (docs/protocol.md): bytes of the
  // snapshot received from the peer out of its total (kept once complete; 0 of 0 when none),
  // and the same for a snapshot sent to it; and how many completed each way.
  uint64_t snapshot_bytes_received = 0;
  uint64_t snapshot_bytes_received_total = 0;
  uint64_t snapshot_bytes_sent = 0;
  uint64_t snapshot_bytes_sent_total = 0;
  uint64_t snapshots_received = 0;
  uint64_t snapshots_sent = 0;
  // On the current connection.
  uint64_t changes_sent = 0;
  uint64_t changes_received = 0;
};

struct PeerStatus {
  std::string url;
  ConnectionState state = ConnectionState::kConnecting;
  std::optional<NodeId> peer_node;  // once a handshake completed
  bool peer_is_relay = false;
  std::string last_error;        // why the last connection ended or attempt failed
  uint32_t failed_attempts = 0;  // consecutive failures (the backoff exponent)
  // Since the peer was added, over every connection.
  uint64_t changes_sent = 0;
  uint64_t changes_received = 0;
  uint64_t duplicates_received = 0;
  std::vector<DocumentSyncStatus> documents;
};

// What a completed sync exchanged with one peer.
struct SyncSummary {
  uint64_t changes_sent = 0;
  uint64_t changes_received = 0;
  size_t documents = 0;  // documents exchanged
};

// Ephemeral presence of a remote node on a document (never stored).
struct PresenceEvent {
  std::string doc;
  NodeId node;
  std::string payload;
};
using PresenceCallback = std::function<void(const PresenceEvent&)>;

class SyncClient {
 public:
  // Starts the network thread. Fails with kInvalidArgument for bad options.
  static Result<std::unique_ptr<SyncClient>> Create(Replica& replica, SyncOptions options = {});
  virtual ~SyncClient() = default;

  // Starts syncing with the peer at `url` (ws://host:port[/path] or wss://host[:port][/path],
  // port 443 by default); OK when already added. kInvalidArgument for a URL that is neither, or
  // for a wss:// URL when the CA certificates (SyncOptions::tls_ca_file) cannot be loaded.
  virtual Status AddPeer(std::string_view url) = 0;
  // Closes the connection to `url`. kNotFound when not added.
  virtual Status RemovePeer(std::string_view url) = 0;

  // Connection state and replication lag per peer and document.
  virtual std::vector<PeerStatus> Peers() = 0;

  // Blocks until, for every document of the peer (SyncOptions::documents, or all), both sides
  // hold what the other held when the current connection announced it, and the peer has
  // acknowledged it; returns what was sent and received since the peer was added. kTimeout when
  // `timeout` passes first (the message says what is awaited and the last connection error);
  // the peer's refusal (e.g. kUnsupportedVersion) ends the wait at once, and so does a server
  // certificate that is not trusted (kPermissionDenied; the client still retries). kNotFound for
  // a URL not added.
  virtual Result<SyncSummary> WaitUntilSynced(std::string_view url,
                                              std::chrono::milliseconds timeout) = 0;

  // Semi-synchronous durability: blocks until a peer (`url`, or any peer when empty) has
  // acknowledged storing every change named by `version` of `doc` (e.g. CommitInfo::version from
  // Transact), or the timeout passes (kTimeout).
  virtual Status WaitForAck(std::string_view doc, const VersionVector& version,
                            std::chrono::milliseconds timeout, std::string_view url = {}) = 0;

  // Durability on several peers: blocks until at least `quorum` of this client's peers have
  // each acknowledged storing every change named by `version` of `doc` (on the current
  // connection, or on an earlier one: what each peer acknowledged is kept in the replica).
  // kTimeout when fewer did in time (the message says how many); kInvalidArgument when `quorum`
  // is 0 or exceeds the number of peers.
  virtual Status WaitForAcks(std::string_view doc, const VersionVector& version, size_t quorum,
                             std::chrono::milliseconds timeout) = 0;

  // Blocks until at least `quorum` of the peers `urls` are synced as WaitUntilSynced says, and
  // returns their summaries added up. Fails at once when so many peers refused that the quorum
  // cannot be reached, and with kTimeout when fewer got there in time; either message names each
  // peer that did not and why. kInvalidArgument for a quorum of 0 or over urls.size(), kNotFound
  // for a URL not added.
  virtual Result<SyncSummary> WaitUntilSyncedWith(const std::vector<std::string>& urls,
                                                  size_t quorum,
                                                  std::chrono::milliseconds timeout) = 0;

  // Presence: sends `payload` (opaque, at most 64 KiB) to every peer that syncs `doc`, which fan
  // it out to their other subscribers; never stored. kDisconnected when no peer is connected.
  virtual Status PublishPresence(std::string_view doc, std::string payload) = 0;
  virtual void SetPresenceCallback(PresenceCallback callback) = 0;

  // Closes every connection (waiting up to `grace` for close handshakes) and stops the thread.
  // Called by the destructor; later calls do nothing.
  virtual void Stop(std::chrono::milliseconds grace = std::chrono::milliseconds(1000)) = 0;
};

// Connects to `url`, syncs `documents` (all when empty) until both sides have each other's
// changes, then disconnects: for `weft sync`. Fails with kTimeout (and what was awaited), the
// peer's refusal, or kInvalidArgument for a bad URL.
Result<SyncSummary> SyncOnce(Replica& replica, std::string_view url,
                             const std::vector<std::string>& documents,
                             std::chrono::milliseconds timeout, SyncOptions options = {});

// SyncOnce with several peers at once: connects to every URL, and succeeds once `quorum` of them
// (1 to urls.size()) are synced (both sides hold each other's changes and the peer acknowledged
// storing them), with their summaries added up; fails as WaitUntilSyncedWith does.
Result<SyncSummary> SyncOnce(Replica& replica, const std::vector<std::string>& urls, size_t quorum,
                             const std::vector<std::string>& documents,
                             std::chrono::milliseconds timeout, SyncOptions options = {});

// An admission token (SyncOptions::credentials) for the device holding `device`, valid for
// `ttl`, signed by `issuer`: an app's account server keeps a replica as its issuing identity and
// starts its relays with --admission-key set to that replica's public key. Raw bytes (72).
Result<std::string> IssueAdmissionToken(const Replica& issuer, const PublicKey& device,
                                        std::chrono::seconds ttl);

}  // namespace weft
