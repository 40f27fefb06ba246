// Wire devices for weft-sync-bench: many protocol clients on one network thread.
//
// A wire device speaks the sync protocol (docs/protocol.md) to a relay over its own WebSocket:
// it decodes every change the relay sends and tracks what it holds (its version vector, causal
// frontier and Lamport clock), acknowledges that every 20 ms (as SDK devices do), and makes its
// own edits as real changes that depend on everything it has seen. It applies only the set's
// creation and its own edits to a document (a crdt::Document, no SQLite): applying all 100
// devices' changes 100 times over took more of this machine's two cores than the relay did. It
// is what a device costs the relay, without the cost of 100 devices' own work sharing the cores
// with it: the relay's own latency and fan-out, as a fleet of real devices (each with its own
// CPU) would see them.
//
// weft-scale-bench uses the same devices on many documents and several relays (doc_of, ports_of):
// with `reconnect`, a device whose connection fails connects to its next relay, exchanges Haves
// and sends the own changes that relay lacks (as SDK devices resume from their log), and keeps
// what it needs to check that nothing acknowledged was lost (States).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "weft/crdt/causality.h"
#include "weft/identity.h"

namespace weft::bench {

struct WireFleetOptions {
  int devices = 100;
  uint16_t port = 0;  // the relay, on 127.0.0.1
  std::string doc = "shared";
  std::string set_key = "s";  // the root key of the set every edit adds to
  int threads = 1;            // network threads for the whole fleet
  // An owned document: each device binds its author to its key with its first change and signs
  // every change, as SDK devices do. `before_connect` gets the devices' keys before they connect
  // (to grant them a role).
  bool owned = false;
  std::function<void(const std::vector<PublicKey>&)> before_connect;
  // Many documents and relays: device i syncs doc_of(i) (else `doc`) with the relays on the
  // ports ports_of(i) (else `port`), connecting to the first. Arrivals are then also split by
  // whether the author and the receiver were on the same relay (WireArrivals::within_ms).
  std::function<std::string(int)> doc_of;
  std::function<std::vector<uint16_t>(int)> ports_of;
  // A connection that fails or closes is not an error (Errors): the device connects to its next
  // relay after a short wait, and keeps its own changes to send what that relay lacks.
  bool reconnect = false;
};

// Latencies of arrivals (milliseconds from the start of the author's commit to the arrival's
// decoding at another device), for edits whose send time is at or after `measure_from_ns`.
struct WireArrivals {
  uint64_t arrivals = 0;
  std::vector<double> latencies_ms;
  // With ports_of: the same latencies split by whether the author (when it was last connected)
  // and the receiver were connected to the same relay.
  std::vector<double> within_ms, across_ms;
};

// One device as the fleet last saw it (WireFleet::States).
struct WireDeviceState {
  std::string doc;
  crdt::NodeId node;
  uint16_t port = 0;  // the relay it is connected to, or last tried
  bool live = false;  // connected and past the handshake
  uint64_t reconnects = 0;
  uint64_t own_seq = 0;              // the last seq of its own changes (0: none yet)
  uint64_t acked_seq = 0;            // of those, the last a relay's Ack covered
  crdt::VersionVector held;          // every change it holds, its own included
  std::vector<uint64_t> own_starts;  // start_seq of each own change (with own_changes only)
};

class WireFleet {
 public:
  // Connects every device and waits until each holds the document's set; false (with `error`)
  // when that takes longer than 60 s.
  static std::unique_ptr<WireFleet> Start(const WireFleetOptions& options, std::string* error);
  virtual ~WireFleet() = default;

  // Device `i` adds `element` to the set now (on the fleet's network thread; returns at once).
  virtual void Edit(int i, std::string element) = 0;
  // Arrivals of edits sent at or after `from_ns` (steady clock), summed over the devices; and
  // clears them.
  virtual WireArrivals Take(int64_t from_ns) = 0;
  // Arrivals counted so far (all, measured or not).
  virtual uint64_t Arrived(int64_t from_ns) = 0;
  // Devices whose connection failed, with why (empty when all are up).
  virtual std::string Errors() = 0;
  // Every device's state, in device order; `own_changes` adds the start of each own change.
  virtual std::vector<WireDeviceState> States(bool own_changes) = 0;
};

}  // namespace weft::bench
