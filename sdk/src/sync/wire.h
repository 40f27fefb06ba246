// The sync protocol's messages as plain C++ values, and their Cap'n Proto encoding.
//
// The schema is sdk/proto/weft.capnp (docs/protocol.md). Only wire.cpp sees Cap'n Proto:
// everything else in the sync module works with the structs below. Decode treats its input as
// untrusted: it bounds the Cap'n Proto traversal, validates every field it hands out and never
// throws or crashes; a bad frame is a kCorruption Status.
//
// Thread safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "weft/crdt/causality.h"
#include "weft/status.h"

namespace weft::sync {

using crdt::NodeId;
using crdt::VersionVector;

inline constexpr uint32_t kProtocolVersion = 4;
inline constexpr size_t kNonceBytes = 32;

struct HelloMsg {
  uint32_t protocol_version = kProtocolVersion;
  NodeId node;
  std::string credentials;
  bool all_documents = false;
  std::string agent;
  bool relay = false;
  // The number of Have messages that follow this Hello at once (the answering side in
  // all-documents mode), so that the dialer knows when it has heard of every document.
  uint32_t announces = 0;
  // Authentication (see the schema): raw bytes; Decode checks their sizes.
  std::string public_key;  // 32 bytes
  std::string nonce;       // 32 bytes
  std::string audience;
  std::string proof;  // empty or 64 bytes
  uint64_t expires = 0;
};

struct AuthMsg {
  std::string proof;  // 64 bytes
  uint64_t expires = 0;
};

struct HaveMsg {
  std::string doc;
  VersionVector version;
  uint64_t state_digest = 0;  // of the canonical state at `version`; 0: not given
};

struct ChangesMsg {
  std::string doc;
  std::vector<std::string> changes;
  std::vector<NodeId> path;  // every change of the batch passed through these, the sender last
  // Empty, or one per change: the nodes it passed through before `path` (Decode refuses a count
  // that differs from the changes', and a route that with the path passes DecodeLimits::max_path).
  std::vector<std::vector<NodeId>> routes;
  uint64_t remaining = 0;
  bool encrypted = false;
};

struct AckMsg {
  std::string doc;
  VersionVector version;
};

struct StateSealMsg {
  std::string doc;
  VersionVector version;
  uint64_t lamport = 0;
  std::string key;         // 32 bytes
  std::string signature;   // 64 bytes
  bool encrypted = false;  // of an encrypted snapshot (StateSeal::encrypted)
};

struct SnapshotChunkMsg {
  std::string doc;
  VersionVector version;
  uint64_t offset = 0;
  uint64_t total = 0;
  std::string data;
  std::optional<StateSealMsg> seal = std::nullopt;
};

struct PresenceMsg {
  std::string doc;
  NodeId node;
  std::string payload;
  std::vector<NodeId> path;
};

enum class ErrorCode : uint16_t {
  kInternal = 0,
  kMalformed = 1,
  kUnsupportedVersion = 2,
  kUnexpected = 3,
  kTooLarge = 4,
  kMissingDependency = 5,
  kInvalidChange = 6,
  kPermissionDenied = 7,
  kSlowConsumer = 8,
  kTimeout = 9,
  kStorage = 10,
  kDiverged = 11,
  kCorruption = 12,
  kUnauthenticated = 13,
};
const char* ErrorCodeName(ErrorCode code);

struct ErrorMsg {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
  std::string doc;
  bool fatal = true;
};

using Message = std::variant<HelloMsg, HaveMsg, ChangesMsg, AckMsg, SnapshotChunkMsg, PresenceMsg,
                             ErrorMsg, AuthMsg, StateSealMsg>;

// Limits on what Decode accepts (beyond the frame size, which the transport bounds).
struct DecodeLimits {
  size_t max_changes_per_batch = 4096;
  size_t max_path = 64;
  size_t max_vector_entries = 100000;
  size_t max_doc_id_bytes = 1024;
  size_t max_presence_bytes = 64 * 1024;
  size_t max_credentials_bytes = 16 * 1024;
};

// One frame: a single-segment-table Cap'n Proto message (unpacked).
std::string Encode(const Message& message);
Result<Message> Decode(std::string_view frame, const DecodeLimits& limits = {});

// The message's kind, for logs and errors: "hello", "have", ...
const char* MessageName(const Message& message);

}  // namespace weft::sync
