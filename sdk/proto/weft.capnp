# The Weft sync protocol: one Message per WebSocket binary frame. The SDK owns it (sdk/src/sync/
# speaks it for devices and relays alike; weft-relay links the SDK).
# docs/protocol.md describes the exchange; this file is the wire format. Fields are only ever added
# (never renumbered or reused), so a peer of the same protocol version ignores what it does not know.
@0xe34b3244b82d9e46;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("weft::proto");

# The version this schema describes (sdk/src/sync/wire.cpp checks that kProtocolVersion is this).
# A Hello with another version is answered with an Error (code unsupportedVersion) and a close;
# Error keeps its encoding across versions, so that a peer of any version reads that refusal.
# Version 2 authenticates both sides (Hello.publicKey, nonce, proof; Auth).
# Version 3 adds signed snapshots (StateSeal, SnapshotChunk.seal).
# Version 4 adds encrypted snapshots of end-to-end encrypted documents (StateSeal.encrypted), which
# devices send to relays.
const protocolVersion :UInt32 = 4;

# One entry of a version vector: node -> highest contiguous seq held.
struct VersionEntry {
  node @0 :UInt64;
  seq @1 :UInt64;
}

# The first message each side sends. The dialling side sends it first; the accepting side answers
# with its own Hello, or with an Error and a close.
struct Hello {
  protocolVersion @0 :UInt32;
  nodeId @1 :UInt64;          # the sender's replica node ID (never 0)
  credentials @2 :Data;       # the dialer's admission token, when the relay asks for one
  allDocuments @3 :Bool;      # sync every document either side has, including new ones
  agent @4 :Text;             # "weft-sdk/0.1", "weft-relay/0.1": for logs only
  role @5 :Role;
  announces @6 :UInt32;       # how many Have messages follow this Hello at once (allDocuments)
  # Session authentication (docs/security.md). Each side's Ed25519 public key and a fresh random
  # nonce; the dialer names the `audience` it dials (its URL). The accepting side's Hello carries
  # its `proof`: its signature of the dialer's nonce with both keys, the audience and `expires`
  # (Unix seconds); the dialer answers with an Auth carrying its own proof of the acceptor's
  # nonce. No document is announced before both proofs are checked.
  publicKey @7 :Data;         # 32 bytes
  nonce @8 :Data;             # 32 bytes
  audience @9 :Text;
  proof @10 :Data;            # 64 bytes (accepting side only)
  expires @11 :UInt64;
  enum Role {
    device @0;
    relay @1;
  }
}

# The dialer's answer to the accepting side's Hello: its signature of that side's nonce (see
# Hello). The accepting side announces nothing before it has checked it.
struct Auth {
  proof @0 :Data;             # 64 bytes
  expires @1 :UInt64;
}

# "This is what I hold durably of `doc`": starts (or, periodically, repairs) the exchange of one
# document and subscribes the sender to its live changes. The receiver answers with its own Have
# once per connection and document, then sends the changes the sender lacks.
struct Have {
  doc @0 :Text;
  version @1 :List(VersionEntry);
  # A 64-bit FNV-1a hash of the sender's canonical state at `version`, sent when the sender knows
  # the receiver holds that version too (0: not given). A receiver holding exactly `version`
  # compares it with its own: equal versions with different states mean the two replicas
  # diverged (e.g. an author's seqs reused by a restored copy), which comparing versions alone
  # cannot see.
  stateDigest @2 :UInt64;
}

# A bounded batch of changes of one document, in causal order. Each change is the opaque encoding
# of crdt::EncodeChange (which carries the author's signature field); `encrypted` is reserved for
# end-to-end encrypted payloads (a later issue) and must be false for now.
struct Changes {
  doc @0 :Text;
  changes @1 :List(Data);
  path @2 :List(UInt64);      # node IDs every change of this batch passed through, the sender last
  remaining @3 :UInt64;       # changes still to come in this catch-up after this batch (progress)
  encrypted @4 :Bool;
  # Empty, or one entry per change: the node IDs that change passed through before it joined
  # `path` (its whole path is its route followed by `path`). Lets changes that came by different
  # ways share one batch (a relay fanning out changes from many devices).
  routes @5 :List(List(UInt64));
}

# "I have stored durably everything named by `version` of `doc`" (the receiver's whole version).
struct Ack {
  doc @0 :Text;
  version @1 :List(VersionEntry);
}

# A chunk of a document snapshot, for bootstrapping a new or far-behind replica (reserved: defined
# so peers agree on it, not yet sent by this version; a receiver answers it with an Error).
struct SnapshotChunk {
  doc @0 :Text;
  version @1 :List(VersionEntry);  # the version the snapshot holds
  offset @2 :UInt64;
  total @3 :UInt64;                # total bytes of the snapshot (progress)
  data @4 :Data;
  # The owner's or an admin's seal of the snapshot's state (with the first chunk), for an owned
  # document: a device that does not trust the sender with the state takes the snapshot only when
  # the seal matches it.
  seal @5 :StateSeal;
}

# A signature of a document's state at a version by its owner or an admin (Replica::SealState):
# over the document, the version, the Lamport time and a BLAKE2b-256 digest of the canonical state.
# A device sends it to a relay that holds exactly its version; the relay checks it against its own
# state and keeps that snapshot to bootstrap new devices, who check it again.
struct StateSeal {
  doc @0 :Text;
  version @1 :List(VersionEntry);
  lamport @2 :UInt64;
  key @3 :Data;
  signature @4 :Data;
  # The seal of an end-to-end encrypted document's snapshot: the signature (purpose
  # weft/e2e-state/v1) covers a BLAKE2b-256 digest of the snapshot's bytes as sent (its key
  # record, then its ciphertext) instead of the state, which a relay cannot read. A device that is
  # an owner or an admin sends such a snapshot to a relay that holds exactly its version; the relay
  # checks the seal and keeps the bytes, and serves them only to readers of that key record.
  encrypted @5 :Bool;
}

# Ephemeral per-document state (who is here, cursors as stable anchors): fanned out to the other
# subscribers of the document, never stored. `payload` is opaque to relays.
struct Presence {
  doc @0 :Text;
  node @1 :UInt64;            # whose presence this is
  payload @2 :Data;
  path @3 :List(UInt64);      # loop prevention, as for Changes
}

# A refusal. `fatal`: the sender closes the connection after it. A refusal that names a `doc` and
# is not fatal stops that document, both ways, on this connection only (the others go on syncing);
# the next connection tries it again.
struct Error {
  code @0 :Code;
  message @1 :Text;
  doc @2 :Text;
  fatal @3 :Bool;
  enum Code {
    internal @0;
    malformed @1;             # the frame is not a Message of this schema
    unsupportedVersion @2;
    unexpected @3;            # a valid message at the wrong time (e.g. before Hello)
    tooLarge @4;
    missingDependency @5;
    invalidChange @6;         # a change that does not decode or validate
    permissionDenied @7;
    slowConsumer @8;
    timeout @9;
    storage @10;              # the receiver could not store the changes
    diverged @11;             # same version, different state (see Have.stateDigest); not fatal
    corruption @12;           # the sender's own stored copy of the document is damaged; not fatal
    unauthenticated @13;      # the handshake's proof, key or admission token was refused
  }
}

struct Message {
  union {
    hello @0 :Hello;
    have @1 :Have;
    changes @2 :Changes;
    ack @3 :Ack;
    snapshotChunk @4 :SnapshotChunk;
    presence @5 :Presence;
    error @6 :Error;
    auth @7 :Auth;
    seal @8 :StateSeal;
  }
}
