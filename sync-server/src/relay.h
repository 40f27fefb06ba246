// The relay: a Weft replica with a server face.
//
// A Relay owns a Replica on an embedded SQLite store in its data directory, listens for WebSocket
// sync sessions (and HTTP /metrics and /healthz on the same port), and dials its --peer relays
// with the SDK's own dialer, so relays form a star, a mesh or a ring. Every session speaks the
// same Link protocol as the SDK; fan-out happens through the replica's change feed: a change
// stored from one session (or peer) is read from the log and sent to every other session that
// syncs its document, with the path of nodes it passed through. A change is acknowledged only
// after an fsync of its log covers it (Durability::kGroup when `durability` is kFull, the
// default: one fsync for every change stored while the one before ran).
//
// With a TLS certificate and key the listener speaks only TLS (wss://, https://.../metrics); a
// --peer may be wss:// too.
//
// Thread safety: Start, port, Metrics and Stop may be called from any thread; Stop is idempotent
// and also run by the destructor.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "weft/replica.h"
#include "weft/status.h"

namespace weft::relay {

// The relay's event log on stderr (docs/operations.md, "Logs"): one line per event (a session
// opened, refused, failed or closed, changes received, a document stopped on a connection, the
// relay started or stopped). kText for people, kJson for machines (one JSON object a line);
// kNone logs nothing beyond the start-up banner.
enum class LogFormat { kNone, kText, kJson };

struct RelayOptions {
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 8787;  // 0: any free port (see Relay::port)
  std::string data_dir;         // created if missing; holds weft-relay.db
  // The store: "" for the embedded SQLite store in data_dir (the default), or a postgres:// URL:
  // a PostgreSQL database that several relays may share (docs/storage.md, "The PostgreSQL
  // store"). data_dir is still locked (one relay per directory).
  std::string store;
  // With a PostgreSQL store: this relay's name in the shared database, the key of its identity
  // and metadata. Relays sharing one database need distinct names.
  std::string store_name = "relay";
  std::vector<std::string> peers;  // ws:// URLs of relays to dial
  // Access (docs/security.md). Every session proves both keys. Unless `open`, a device is sent
  // only the documents it may read (public ones, or owned ones whose access list names it), and
  // sends changes only as itself; `open` serves every document to every device (for local
  // experiments: the relay says so when it starts).
  bool open = false;
  // Relays of the same deployment (their keys): they read every document and forward changes
  // of any author, both ways. A --peer whose key is not here is treated like a device.
  std::vector<PublicKey> trusted_relays;
  // When set, devices must present a token signed by this key (IssueAdmissionToken).
  std::optional<PublicKey> admission_key;
  // TLS on the listener (both or neither; PEM): when set, the port speaks only TLS (sync,
  // /metrics and /healthz alike), and a connection that does not complete a TLS handshake is
  // counted (tls_handshake_failures_total) and closed.
  std::string tls_cert_file;
  std::string tls_key_file;
  // wss:// peers: the CA certificates (PEM) their certificates must chain to ("": the system's).
  std::string tls_ca_file;
  int threads = 2;
  Durability durability = Durability::kFull;
  size_t max_frame_bytes = 16u << 20;
  size_t max_batch_changes = 512;
  size_t max_send_queue_bytes = 64u << 20;
  size_t max_connections = 10000;
  // Snapshot bootstrap: a peer lacking at least this many changes of a document gets its snapshot
  // first (0: only when the log cannot serve it); see docs/protocol.md.
  size_t snapshot_min_changes = 256;
  // Incoming snapshots: larger ones (and incomplete ones of one connection together) are refused.
  size_t max_snapshot_bytes = 512u << 20;
  // Live fan-out: a session is sent a new batch at most this often, so that under load the
  // changes of that time share one frame (0: a frame per change as soon as it is stored).
  std::chrono::microseconds live_interval{2000};
  std::chrono::milliseconds handshake_timeout{10000};
  std::chrono::milliseconds idle_timeout{60000};
  std::chrono::milliseconds anti_entropy_interval{30000};
  std::chrono::milliseconds initial_backoff{250};
  std::chrono::milliseconds max_backoff{10000};
  LogFormat log_format = LogFormat::kNone;
};

class Relay {
 public:
  // Locks the data directory, opens the store, binds the listener and starts serving. kBusy when
  // another relay holds the data directory (DIR/weft-relay.lock); kIOError when the address
  // cannot be bound or the store opened; kInvalidArgument for bad options (a TLS certificate,
  // key or CA file that cannot be read, or a key that does not match the certificate).
  static Result<std::unique_ptr<Relay>> Start(RelayOptions options);
  virtual ~Relay() = default;

  // The bound port (the chosen one when listen_port was 0).
  virtual uint16_t port() const = 0;
  virtual NodeId node_id() const = 0;
  virtual Replica& replica() = 0;
  // The Prometheus text exposition served at /metrics.
  virtual std::string Metrics() = 0;
  // A counter by its metric name without the weft_relay_ prefix ("changes_in_total", ...), for
  // tests; 0 when unknown.
  virtual uint64_t Counter(const std::string& name) = 0;
  // Stops accepting, closes every session and peer link (going away), waits up to `grace`.
  virtual void Stop(std::chrono::milliseconds grace = std::chrono::milliseconds(2000)) = 0;
};

// The store of a relay in `data_dir`.
std::string StorePath(const std::string& data_dir);
// The relay's public key (its identity, made with its store when new), read from the store in
// `data_dir` without starting a relay (a running one may hold the directory).
Result<PublicKey> ReadKey(const std::string& data_dir);
// The same from the relay's configured store (options.store, else the one in data_dir).
Result<PublicKey> ReadKey(const RelayOptions& options);

}  // namespace weft::relay
