// The hub: what every sync connection of one replica shares.
//
// One Hub per replica and process (the relay has one for its server sessions and its peer
// dialers; a SyncClient has its own). It turns the replica's change feed into events for every
// connection, fans presence out between connections, remembers the path of recently received
// changes (loop prevention: a change is not sent to a node it already passed through) and keeps
// the process-wide counters that /metrics reports.
//
// Thread safety: every method may be called from any thread. Listeners run on the thread that
// raised the event (often a replica commit): they must only post work elsewhere.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sync/wire.h"
#include "weft/replica.h"

namespace weft::sync {

struct HubCounters {
  std::atomic<uint64_t> connections{0};        // open now
  std::atomic<uint64_t> connections_total{0};  // accepted or dialled, with a completed Hello
  std::atomic<uint64_t> changes_in{0};         // new changes received and stored
  std::atomic<uint64_t> changes_out{0};        // changes sent
  std::atomic<uint64_t> bytes_in{0};           // frame bytes received
  std::atomic<uint64_t> bytes_out{0};          // frame bytes queued for sending
  std::atomic<uint64_t> duplicates_in{0};      // received changes already held
  std::atomic<uint64_t> loops_dropped{0};      // batches dropped because they named this node
  std::atomic<uint64_t> presence_in{0};
  std::atomic<uint64_t> presence_out{0};
  std::atomic<uint64_t> errors_sent{0};
  std::atomic<uint64_t> errors_received{0};
  std::atomic<uint64_t> slow_consumers{0};  // connections closed for a full send queue
  std::atomic<uint64_t> divergences{0};     // documents found at one version in two states
  // Documents stopped on one connection (a damaged local change, or an invalid one received).
  std::atomic<uint64_t> documents_stopped{0};
  // Handshakes refused: a proof that does not verify or has expired, or no valid admission token.
  std::atomic<uint64_t> auth_refused{0};
  // Documents a peer asked for and may not read, and changes refused for lack of rights.
  std::atomic<uint64_t> reads_denied{0};
  std::atomic<uint64_t> writes_denied{0};
  // Documents a peer stopped on a connection with permission denied (this side may not read or
  // write them there): also counted in documents_stopped.
  std::atomic<uint64_t> denials_received{0};
  std::atomic<uint64_t> snapshots_sent{0};  // snapshot bootstraps completed, each way
  std::atomic<uint64_t> snapshots_received{0};
};

// One event of a connection, for the operator's log (the relay's --log-format): what happened,
// to which peer and document, and how much. Never a document's content or a secret: the fields
// are identifiers, counts, and error messages that name no content.
struct LogEvent {
  const char* level = "info";  // "info", "warn" or "error"
  const char* event = "";      // "session.open", "changes.received", ... (docs/operations.md)
  uint64_t session = 0;        // LinkConfig::log_session (0: none)
  NodeId node;                 // the peer's node (invalid: not known yet)
  const char* peer = "";       // "relay" or "device" once known
  std::string document;        // "" when not about one document
  std::vector<std::pair<const char*, uint64_t>> counts;
  std::string error;  // what went wrong ("" when nothing did)
};

// A change this replica stored recently, as the hub remembers it for fan-out.
struct RecentChange {
  crdt::Dot id;  // author, first seq
  uint64_t end = 0;
  uint64_t lamport = 0;
  VersionVector deps;
  std::string blob;
};

struct HubEvent {
  enum class Kind { kDocChanged, kPresence };
  Kind kind = Kind::kDocChanged;
  std::string doc;
  bool access = false;   // kDocChanged: the access list may have changed
  PresenceMsg presence;  // kPresence
  uint64_t origin = 0;   // the listener that raised it (not told), 0: none
};

class Hub {
 public:
  explicit Hub(Replica& replica);
  ~Hub();
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  Replica& replica() const { return replica_; }
  NodeId self() const { return self_; }
  HubCounters& counters() { return counters_; }

  // Where connections report events (LogEvent); unset: nowhere. Set it before any connection
  // starts; `log` is called on the connections' threads, concurrently, and must not block long.
  void SetLog(std::function<void(const LogEvent&)> log) { log_ = std::move(log); }
  void Log(const LogEvent& event) const {
    if (log_) log_(event);
  }
  bool logging() const { return static_cast<bool>(log_); }

  // Registers a listener; returns its ID (never 0), also used as the origin of its events. It
  // hears of every document until Narrow.
  uint64_t AddListener(std::function<void(const HubEvent&)> fn);
  void RemoveListener(uint64_t id);
  // From now on the listener hears only of the documents given to Listen (a connection syncing a
  // few documents of a relay's many: an event costs the connections that have its document, not
  // every connection); Widen: of every document again.
  void Narrow(uint64_t id);
  void Widen(uint64_t id);
  void Listen(uint64_t id, const std::string& doc);
  // Tells every listener but event.origin that hears of event.doc.
  void Broadcast(const HubEvent& event);

  // Remembers that the change ids[i] of `doc` arrived through routes[i] (when given) followed by
  // `path` (bounded: the oldest are forgotten). Keyed by document too: an author's seqs count
  // per document, so one dot names different changes in different documents.
  void RecordPath(const std::string& doc, const std::vector<crdt::Dot>& ids,
                  const std::vector<NodeId>& path,
                  const std::vector<std::vector<NodeId>>& routes = {});
  // The path a change of `doc` arrived through; empty when it was made here or is forgotten.
  // `recorded_at` (optional) receives the PathClock() value at which it was recorded.
  std::vector<NodeId> PathOf(const std::string& doc, const crdt::Dot& id,
                             uint64_t* recorded_at = nullptr) const;
  // The document's version and a 64-bit FNV-1a hash of its canonical state at that version (for
  // Have.stateDigest), cached while the version stays the same. kNotFound when absent.
  struct Digest {
    VersionVector version;
    uint64_t digest = 0;
  };
  Result<Digest> StateDigest(const std::string& doc);

  // Counts RecordPath calls: a link compares when a path was recorded with when it last heard
  // the peer's Have, so that a Have saying the peer lacks a change outranks the path.
  uint64_t PathClock() const;

  // Fan-out without reading the log once per connection: the changes received from peers are
  // remembered (bounded: the oldest are forgotten), and a connection that needs exactly the
  // changes of `doc` in `local` but not in `known` gets them from here, in a causal order
  // (checked against their dependencies), or nullopt when any is not remembered (then it reads
  // the log).
  void Remember(const std::string& doc, std::vector<RecentChange> changes);
  std::optional<std::vector<std::shared_ptr<const RecentChange>>> RecentSince(
      const std::string& doc, const VersionVector& known, const VersionVector& local) const;

  // Whether the holder of `key` may be sent `doc`: a public document (no owner), one this replica
  // does not hold, or one whose access list gives the key a role.
  bool MayRead(const std::string& doc, const PublicKey& key);

  // Replica::BaseVersion, cached (it changes only when a snapshot is imported).
  VersionVector BaseVersion(const std::string& doc);

  // The encrypted snapshot of `doc` this device last sent the peer holding `peer` (its seqs and
  // key epoch): kept across connections, so that a reconnect does not send the whole state again.
  struct Upload {
    uint64_t seqs = 0;
    uint64_t epoch = 0;
  };
  std::optional<Upload> LastUpload(const std::string& doc, const PublicKey& peer) const;
  void NoteUpload(const std::string& doc, const PublicKey& peer, Upload upload);

 private:
  Replica& replica_;
  NodeId self_;
  HubCounters counters_;
  std::function<void(const LogEvent&)> log_;
  uint64_t feed_id_ = 0;

  mutable std::mutex mu_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, std::function<void(const HubEvent&)>> listeners_;
  std::set<uint64_t> wide_;  // listeners hearing of every document
  std::map<std::string, std::set<uint64_t>, std::less<>>
      by_doc_;                                         // narrowed listeners, by document
  std::map<uint64_t, std::set<std::string>> docs_of_;  // and their documents
  using PathKey = std::pair<std::string, crdt::Dot>;
  struct PathEntry {
    std::vector<NodeId> path;
    uint64_t recorded_at = 0;
  };
  std::map<PathKey, PathEntry> paths_;
  uint64_t path_clock_ = 0;
  std::map<std::string, Digest> digests_;  // the last digest computed of each document
  std::deque<PathKey> path_order_;

  // doc -> author -> first seq -> change; and the order they were remembered in (for eviction).
  std::map<std::string, std::map<NodeId, std::map<uint64_t, std::shared_ptr<const RecentChange>>>>
      recent_;
  std::deque<std::pair<std::string, crdt::Dot>> recent_order_;
  size_t recent_bytes_ = 0;
  std::map<std::string, VersionVector> bases_;  // cached BaseVersion per document
  uint64_t bases_generation_ = 0;               // bumped by every snapshot import
  std::map<std::pair<std::string, PublicKey>, Upload> uploads_;
};

}  // namespace weft::sync
