// A deterministic simulation of Weft replicas and relays in one process.
//
// Every node is a real Replica on its own SQLite file (or, for relays sharing a store, on one
// in-memory store, following it on the simulation's thread) with a real sync::Hub; every connection
// is a pair of real sync::Links (the protocol of docs/protocol.md) whose frames travel through a
// simulated network instead of WebSockets. One thread, one seeded generator: a run is reproduced
// exactly from its seed. The network delays frames and delivers connections in any interleaving;
// a WebSocket is an ordered stream, so frames of one connection keep their order, and loss is a
// connection that drops with whatever it still carried (lost changes, lost acknowledgements);
// duplicates come from the resends after a reconnect. Partitions open and heal, nodes crash and
// reopen from their files, clocks are skewed by up to a day and jump backwards.
//
// After Heal() and Settle(), every node must hold the same canonical state and version vector for
// every document, and every change any node committed locally must be everywhere.
//
// With SimOptions::e2e_document, one more document is end-to-end encrypted (docs/security.md):
// device 0 owns it, device 1 is an admin, device 2 a writer and device 3 a reader; during the run
// the two admins grant and revoke (readers who are not in the simulation, device 3, device 4 as a
// writer), each a key rotation, while partitions are open, so rotations also race. Check() then
// wants every member device to read the same state, every relay (which holds no key) to hold the
// same version and be refused a read, and device 3, once revoked, unable to decrypt any change
// written causally after its revocation with everything it could hold (its own secret key and
// every key record the document has). Ciphertexts, keys and record hashes come from libsodium's
// generator, not the seed: a seed replays the same steps, and which of two concurrent records of
// an epoch wins (by hash) may differ between replays.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "memory_store.h"
#include "random.h"
#include "sync/hub.h"
#include "sync/link.h"
#include "temp_dir.h"
#include "weft/replica.h"

namespace weft::sim {

struct SimOptions {
  int devices = 4;
  int relays = 2;
  std::vector<std::string> documents = {"a", "b"};
  int64_t max_skew_ms = 24ll * 3600 * 1000;  // clocks are off by up to this, either way
  bool connect_at_start = true;              // scenarios connect nodes themselves
  // The last this many relays keep their data in one shared store (in memory, each under its own
  // name, as relays share a PostgreSQL database) and never connect to each other: what one stores
  // reaches the others' devices only through the store.
  int shared_store_relays = 0;
  // An end-to-end encrypted document with rotations (see above; needs at least 5 devices).
  std::string e2e_document;
};

// What Check() found; empty `problems` when the run converged and lost nothing.
struct SimReport {
  std::vector<std::string> problems;
  uint64_t commits = 0;
  uint64_t frames = 0;
  uint64_t drops = 0;
  uint64_t crashes = 0;
  uint64_t rotations = 0;       // grants and revokes committed in the encrypted document
  uint64_t sealed_checked = 0;  // its sealed changes after a revocation checked undecryptable
  uint64_t raced_epochs = 0;    // its epochs with two keys (rotations that raced)
};

class Sim {
 public:
  Sim(uint64_t seed, SimOptions options = {});
  ~Sim();

  // One random step: an edit, a delivery, a drop, a reconnect, a partition or heal, a crash, a
  // clock jump or an anti-entropy tick. Returns a one-line description (for traces of a seed).
  std::string Step();
  // Ends every partition, brings every node up and connects every device to a relay and every
  // relay to every other.
  void Heal();
  // Delivers everything in flight and runs anti-entropy until nothing moves (bounded).
  void Settle();
  // Compares every node's documents; lists what differs or was lost.
  SimReport Check();

  // Building blocks for the scenario tests.
  int device(int i) const { return i; }
  int relay(int i) const { return options_.devices + i; }
  Result<CommitInfo> Edit(int node, const std::string& doc,
                          const std::function<Status(Txn&)>& body);
  void Connect(int a, int b);     // a dials b (b must be a relay)
  void Disconnect(int a, int b);  // drops the connection and what it carried
  // Delivers every frame now in flight on the connection a->b (in order), without the answers.
  void DeliverFrom(int from, int to);
  void DeliverAll();  // until nothing is in flight
  void Crash(int node);
  // Replaces a node's database with `bytes` (a copy taken earlier) and reopens it.
  std::string CopyDatabase(int node);
  void RestoreDatabase(int node, const std::string& bytes);
  std::string State(int node, const std::string& doc);
  size_t InFlight(int from, int to) const;
  Replica& replica(int node) { return *nodes_[node].replica; }
  // Reopens a node whose local changes will be authored by `actor` (a test of what happens when
  // two replicas share an author ID, which Weft itself never does).
  void ReopenWithActor(int node, crdt::NodeId actor);
  // Documents this node found in another state at an equal version (its hub's counter).
  uint64_t Divergences(int node) const;

 private:
  struct Node {
    std::string name;
    bool relay = false;
    bool shared = false;  // on the shared store
    std::string path;
    int64_t skew_ms = 0;
    bool up = true;
    std::unique_ptr<Replica> replica;
    std::unique_ptr<sync::Hub> hub;
  };
  struct End {
    int node = 0;
    std::unique_ptr<sync::Link> link;
    uint64_t listener = 0;
    std::deque<std::string> inbox;  // frames sent to this end, not yet delivered
  };
  struct Conn {
    uint64_t id = 0;
    End dialer, acceptor;
  };
  struct Event {
    uint64_t conn = 0;
    bool to_dialer = false;
    sync::HubEvent event;
  };

  void Open(int node);
  void CloseNode(int node);
  Conn* Find(int a, int b);
  void Drop(uint64_t conn_id);
  // Adds a problem for every document the end's link stopped.
  void NoteStopped(const End& e, SimReport* report) const;
  bool Reachable(int a, int b) const;
  // Documents a hub stopped, or had stopped by its peer, for lack of rights (not a failure).
  uint64_t ForwardRefusals(sync::Hub& hub) const;
  bool DeliverOne(Conn& c, bool to_dialer);
  void ProcessCloses();
  uint64_t ChangesMoved() const;  // changes received by every node, new or duplicate
  // Relays on the shared store take what the others stored (every document with `all`).
  void Follow(int node, bool all);
  bool RunEvents();
  uint64_t Now(int node) const;
  std::string RandomText();
  // A grant or revoke by device `admin` in the encrypted document (a key rotation when it commits).
  std::string AdminStep(int admin);
  Result<CommitInfo> Rotate(int admin, bool grant, const PublicKey& key, Role role);
  bool Member(const PublicKey& key);  // has a role in the encrypted document, as device 0 holds it
  void CheckEncrypted(SimReport* out);
  // Whether every change written after a revocation of device `node` stays sealed to it, with
  // every record the document holds and `node`'s own secret key (read from its database);
  // `expect_readable`: the opposite check, for a member (the check itself can see content).
  void CheckSealedAfter(int node, const std::vector<crdt::Dot>& after, bool expect_readable,
                        SimReport* out);

  testing::Rng rng_;
  SimOptions options_;
  testing::TempDir dir_;
  uint64_t now_ms_ = 1'750'000'000'000;
  std::vector<Node> nodes_;
  std::map<uint64_t, std::unique_ptr<Conn>> conns_;
  uint64_t next_conn_ = 1;
  std::deque<Event> events_;
  std::set<uint64_t> closing_;
  std::map<int, crdt::NodeId> actor_override_;  // connections whose link asked to close
  std::set<int> partitioned_;  // cut off from everyone else while a partition is open
  std::shared_ptr<store::MemoryStorage> shared_storage_;
  uint64_t followed_ = 0;  // documents changed by following the shared store
  // Every change committed locally: (doc, author, last seq).
  std::vector<std::tuple<std::string, crdt::NodeId, uint64_t>> committed_;
  SimReport report_;
  uint64_t stops_ = 0;    // documents stopped by the links of closed hubs
  uint64_t denials_ = 0;  // of those, stopped because a peer may not read or write them
  int owned_node_ = -1;   // the node that opens making owned documents (all others: public)
  std::vector<PublicKey> outsiders_;  // readers of the encrypted document not in the simulation
  std::vector<crdt::Dot> revokes_;    // the changes that revoked device 3
};

}  // namespace weft::sim
