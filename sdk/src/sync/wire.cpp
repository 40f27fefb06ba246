// Cap'n Proto encoding of the sync messages (see wire.h).
#include "sync/wire.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstring>

#include "doc_id.h"
#include "weft/proto/weft.capnp.h"

namespace weft::sync {

// The version a Hello carries is the one the schema describes.
static_assert(kProtocolVersion == proto::PROTOCOL_VERSION,
              "kProtocolVersion and the schema's protocolVersion differ");

namespace {

// Traversal limit for one frame: generous for any honest message of the frame's size, and a
// bound on the work an amplification attack (a pointer reused many times) can cause.
constexpr uint64_t kMinTraversalWords = 1024;
constexpr int kNestingLimit = 16;

template <typename Builder>
void SetVector(Builder builder, const VersionVector& v) {
  auto list = builder(static_cast<unsigned>(v.size()));
  unsigned i = 0;
  for (const auto& [node, seq] : v.entries()) {
    list[i].setNode(node.value);
    list[i].setSeq(seq);
    ++i;
  }
}

template <typename Builder>
void SetPath(Builder builder, const std::vector<NodeId>& path) {
  auto list = builder(static_cast<unsigned>(path.size()));
  for (unsigned i = 0; i < path.size(); ++i) list.set(i, path[i].value);
}

kj::ArrayPtr<const kj::byte> Bytes(const std::string& s) {
  return kj::ArrayPtr<const kj::byte>(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

std::string ToString(capnp::Data::Reader d) {
  return std::string(reinterpret_cast<const char*>(d.begin()), d.size());
}
std::string ToString(capnp::Text::Reader t) {
  return std::string(t.cStr(), t.size());
}

// With its explicit size: converting a std::string through const char* would cut it at a NUL.
capnp::Text::Reader Text(const std::string& s) {
  return capnp::Text::Reader(s.data(), s.size());
}

Status Bad(std::string what) {
  return Status::Corruption("malformed message: " + std::move(what));
}

Result<VersionVector> ReadVector(capnp::List<proto::VersionEntry>::Reader list,
                                 const DecodeLimits& limits, const char* what) {
  if (list.size() > limits.max_vector_entries) return Bad(std::string(what) + " too long");
  VersionVector v;
  for (auto e : list) {
    if (e.getNode() == 0) return Bad(std::string(what) + " names node 0");
    if (v.Get(NodeId{e.getNode()}) != 0) return Bad(std::string(what) + " repeats a node");
    v.Set(NodeId{e.getNode()}, e.getSeq());
  }
  return v;
}

Result<std::vector<NodeId>> ReadPath(capnp::List<uint64_t>::Reader list,
                                     const DecodeLimits& limits) {
  if (list.size() > limits.max_path) return Bad("path too long");
  std::vector<NodeId> path;
  for (uint64_t n : list) {
    if (n == 0) return Bad("path names node 0");
    path.push_back(NodeId{n});
  }
  return path;
}

Result<std::string> ReadDoc(capnp::Text::Reader t, const DecodeLimits& limits) {
  if (t.size() == 0 || t.size() > limits.max_doc_id_bytes) {
    return Bad("a document ID is 1 to " + std::to_string(limits.max_doc_id_bytes) + " bytes");
  }
  std::string doc = ToString(t);
  if (!CheckDocumentId(doc).ok()) return Bad("a document ID is not UTF-8 without NUL bytes");
  return doc;
}

Result<StateSealMsg> ReadSeal(proto::StateSeal::Reader s, const DecodeLimits& limits) {
  StateSealMsg out;
  auto doc = ReadDoc(s.getDoc(), limits);
  if (!doc.ok()) return doc.status();
  out.doc = std::move(*doc);
  auto v = ReadVector(s.getVersion(), limits, "version");
  if (!v.ok()) return v.status();
  out.version = std::move(*v);
  out.lamport = s.getLamport();
  if (s.getKey().size() != 32) return Bad("a seal's key is 32 bytes");
  if (s.getSignature().size() != 64) return Bad("a seal's signature is 64 bytes");
  out.key = ToString(s.getKey());
  out.signature = ToString(s.getSignature());
  out.encrypted = s.getEncrypted();
  return out;
}

void WriteSeal(proto::StateSeal::Builder b, const StateSealMsg& m) {
  b.setDoc(Text(m.doc));
  SetVector([&](unsigned n) { return b.initVersion(n); }, m.version);
  b.setLamport(m.lamport);
  b.setKey(Bytes(m.key));
  b.setSignature(Bytes(m.signature));
  b.setEncrypted(m.encrypted);
}

Result<Message> DecodeRoot(proto::Message::Reader m, const DecodeLimits& limits) {
  switch (m.which()) {
    case proto::Message::HELLO: {
      auto h = m.getHello();
      HelloMsg out;
      out.protocol_version = h.getProtocolVersion();
      out.node = NodeId{h.getNodeId()};
      if (h.getCredentials().size() > limits.max_credentials_bytes) return Bad("credentials");
      out.credentials = ToString(h.getCredentials());
      out.all_documents = h.getAllDocuments();
      if (h.getAgent().size() > 256) return Bad("agent too long");
      out.agent = ToString(h.getAgent());
      out.relay = h.getRole() == proto::Hello::Role::RELAY;
      out.announces = h.getAnnounces();
      if (h.getPublicKey().size() != 32 && h.getPublicKey().size() != 0) return Bad("public key");
      out.public_key = ToString(h.getPublicKey());
      if (h.getNonce().size() != kNonceBytes && h.getNonce().size() != 0) return Bad("nonce");
      out.nonce = ToString(h.getNonce());
      if (h.getAudience().size() > 1024) return Bad("audience too long");
      out.audience = ToString(h.getAudience());
      if (h.getProof().size() != 64 && h.getProof().size() != 0) return Bad("proof");
      out.proof = ToString(h.getProof());
      out.expires = h.getExpires();
      return Message(std::move(out));
    }
    case proto::Message::SEAL: {
      auto seal = ReadSeal(m.getSeal(), limits);
      if (!seal.ok()) return seal.status();
      return Message(std::move(*seal));
    }
    case proto::Message::AUTH: {
      auto a = m.getAuth();
      if (a.getProof().size() != 64) return Bad("an Auth proof is 64 bytes");
      return Message(AuthMsg{ToString(a.getProof()), a.getExpires()});
    }
    case proto::Message::HAVE: {
      auto h = m.getHave();
      auto doc = ReadDoc(h.getDoc(), limits);
      if (!doc.ok()) return doc.status();
      auto v = ReadVector(h.getVersion(), limits, "version");
      if (!v.ok()) return v.status();
      return Message(HaveMsg{std::move(*doc), std::move(*v), h.getStateDigest()});
    }
    case proto::Message::CHANGES: {
      auto c = m.getChanges();
      ChangesMsg out;
      auto doc = ReadDoc(c.getDoc(), limits);
      if (!doc.ok()) return doc.status();
      out.doc = std::move(*doc);
      auto list = c.getChanges();
      if (list.size() > limits.max_changes_per_batch) {
        return Status::OutOfRange("a batch of " + std::to_string(list.size()) +
                                  " changes is over the limit of " +
                                  std::to_string(limits.max_changes_per_batch));
      }
      out.changes.reserve(list.size());
      for (auto d : list) {
        if (d.size() == 0) return Bad("empty change");
        out.changes.push_back(ToString(d));
      }
      auto path = ReadPath(c.getPath(), limits);
      if (!path.ok()) return path.status();
      out.path = std::move(*path);
      auto routes = c.getRoutes();
      if (routes.size() != 0) {
        if (routes.size() != list.size()) return Bad("routes do not match the changes");
        DecodeLimits route_limits = limits;
        route_limits.max_path = limits.max_path - std::min(limits.max_path, out.path.size());
        out.routes.reserve(routes.size());
        for (auto r : routes) {
          auto route = ReadPath(r, route_limits);
          if (!route.ok()) return route.status();
          out.routes.push_back(std::move(*route));
        }
      }
      out.remaining = c.getRemaining();
      out.encrypted = c.getEncrypted();
      return Message(std::move(out));
    }
    case proto::Message::ACK: {
      auto a = m.getAck();
      auto doc = ReadDoc(a.getDoc(), limits);
      if (!doc.ok()) return doc.status();
      auto v = ReadVector(a.getVersion(), limits, "version");
      if (!v.ok()) return v.status();
      return Message(AckMsg{std::move(*doc), std::move(*v)});
    }
    case proto::Message::SNAPSHOT_CHUNK: {
      auto s = m.getSnapshotChunk();
      SnapshotChunkMsg out;
      auto doc = ReadDoc(s.getDoc(), limits);
      if (!doc.ok()) return doc.status();
      out.doc = std::move(*doc);
      auto v = ReadVector(s.getVersion(), limits, "version");
      if (!v.ok()) return v.status();
      out.version = std::move(*v);
      out.offset = s.getOffset();
      out.total = s.getTotal();
      // Read the data once: every read counts against the traversal limit.
      auto data = s.getData();
      if (data.size() == 0) return Bad("an empty snapshot chunk");
      if (out.offset > out.total || data.size() > out.total - out.offset) {
        return Bad("a snapshot chunk past the snapshot's total size");
      }
      out.data = ToString(data);
      if (s.hasSeal()) {
        auto seal = ReadSeal(s.getSeal(), limits);
        if (!seal.ok()) return seal.status();
        if (seal->doc != out.doc || seal->version != out.version) {
          return Bad("a snapshot chunk's seal is of another document or version");
        }
        out.seal = std::move(*seal);
      }
      return Message(std::move(out));
    }
    case proto::Message::PRESENCE: {
      auto p = m.getPresence();
      PresenceMsg out;
      auto doc = ReadDoc(p.getDoc(), limits);
      if (!doc.ok()) return doc.status();
      out.doc = std::move(*doc);
      out.node = NodeId{p.getNode()};
      if (!out.node.valid()) return Bad("presence of node 0");
      if (p.getPayload().size() > limits.max_presence_bytes) return Bad("presence too large");
      out.payload = ToString(p.getPayload());
      auto path = ReadPath(p.getPath(), limits);
      if (!path.ok()) return path.status();
      out.path = std::move(*path);
      return Message(std::move(out));
    }
    case proto::Message::ERROR: {
      auto e = m.getError();
      ErrorMsg out;
      uint16_t code = static_cast<uint16_t>(e.getCode());
      out.code = code <= static_cast<uint16_t>(ErrorCode::kUnauthenticated)
                     ? static_cast<ErrorCode>(code)
                     : ErrorCode::kInternal;
      out.message = ToString(e.getMessage()).substr(0, 4096);
      out.doc = ToString(e.getDoc()).substr(0, limits.max_doc_id_bytes);
      out.fatal = e.getFatal();
      return Message(std::move(out));
    }
  }
  return Bad("unknown message kind " + std::to_string(static_cast<int>(m.which())));
}

}  // namespace

const char* ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInternal: return "internal";
    case ErrorCode::kMalformed: return "malformed";
    case ErrorCode::kUnsupportedVersion: return "unsupported version";
    case ErrorCode::kUnexpected: return "unexpected message";
    case ErrorCode::kTooLarge: return "too large";
    case ErrorCode::kMissingDependency: return "missing dependency";
    case ErrorCode::kInvalidChange: return "invalid change";
    case ErrorCode::kPermissionDenied: return "permission denied";
    case ErrorCode::kSlowConsumer: return "slow consumer";
    case ErrorCode::kTimeout: return "timeout";
    case ErrorCode::kStorage: return "storage";
    case ErrorCode::kDiverged: return "diverged";
    case ErrorCode::kCorruption: return "corruption";
    case ErrorCode::kUnauthenticated: return "unauthenticated";
  }
  return "unknown";
}

const char* MessageName(const Message& message) {
  static const char* const kNames[] = {"hello",    "have",  "changes", "ack", "snapshot chunk",
                                       "presence", "error", "auth",    "seal"};
  return kNames[message.index()];
}

std::string Encode(const Message& message) {
  capnp::MallocMessageBuilder builder;
  auto root = builder.initRoot<proto::Message>();
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, HelloMsg>) {
          auto h = root.initHello();
          h.setProtocolVersion(m.protocol_version);
          h.setNodeId(m.node.value);
          h.setCredentials(Bytes(m.credentials));
          h.setAllDocuments(m.all_documents);
          h.setAgent(Text(m.agent));
          h.setRole(m.relay ? proto::Hello::Role::RELAY : proto::Hello::Role::DEVICE);
          h.setAnnounces(m.announces);
          h.setPublicKey(Bytes(m.public_key));
          h.setNonce(Bytes(m.nonce));
          h.setAudience(Text(m.audience));
          h.setProof(Bytes(m.proof));
          h.setExpires(m.expires);
        } else if constexpr (std::is_same_v<T, StateSealMsg>) {
          WriteSeal(root.initSeal(), m);
        } else if constexpr (std::is_same_v<T, AuthMsg>) {
          auto a = root.initAuth();
          a.setProof(Bytes(m.proof));
          a.setExpires(m.expires);
        } else if constexpr (std::is_same_v<T, HaveMsg>) {
          auto h = root.initHave();
          h.setDoc(Text(m.doc));
          SetVector([&](unsigned n) { return h.initVersion(n); }, m.version);
          h.setStateDigest(m.state_digest);
        } else if constexpr (std::is_same_v<T, ChangesMsg>) {
          auto c = root.initChanges();
          c.setDoc(Text(m.doc));
          auto list = c.initChanges(static_cast<unsigned>(m.changes.size()));
          for (unsigned i = 0; i < m.changes.size(); ++i) list.set(i, Bytes(m.changes[i]));
          SetPath([&](unsigned n) { return c.initPath(n); }, m.path);
          if (!m.routes.empty()) {
            auto routes = c.initRoutes(static_cast<unsigned>(m.routes.size()));
            for (unsigned i = 0; i < m.routes.size(); ++i) {
              SetPath([&](unsigned n) { return routes.init(i, n); }, m.routes[i]);
            }
          }
          c.setRemaining(m.remaining);
          c.setEncrypted(m.encrypted);
        } else if constexpr (std::is_same_v<T, AckMsg>) {
          auto a = root.initAck();
          a.setDoc(Text(m.doc));
          SetVector([&](unsigned n) { return a.initVersion(n); }, m.version);
        } else if constexpr (std::is_same_v<T, SnapshotChunkMsg>) {
          auto s = root.initSnapshotChunk();
          s.setDoc(Text(m.doc));
          SetVector([&](unsigned n) { return s.initVersion(n); }, m.version);
          s.setOffset(m.offset);
          s.setTotal(m.total);
          s.setData(Bytes(m.data));
          if (m.seal) WriteSeal(s.initSeal(), *m.seal);
        } else if constexpr (std::is_same_v<T, PresenceMsg>) {
          auto p = root.initPresence();
          p.setDoc(Text(m.doc));
          p.setNode(m.node.value);
          p.setPayload(Bytes(m.payload));
          SetPath([&](unsigned n) { return p.initPath(n); }, m.path);
        } else if constexpr (std::is_same_v<T, ErrorMsg>) {
          auto e = root.initError();
          e.setCode(static_cast<proto::Error::Code>(m.code));
          e.setMessage(Text(m.message));
          e.setDoc(Text(m.doc));
          e.setFatal(m.fatal);
        }
      },
      message);
  auto words = capnp::messageToFlatArray(builder);
  auto bytes = words.asBytes();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

Result<Message> Decode(std::string_view frame, const DecodeLimits& limits) {
  if (frame.empty() || frame.size() % sizeof(capnp::word) != 0) {
    return Bad("a frame is a whole number of 8-byte words (got " + std::to_string(frame.size()) +
               " bytes)");
  }
  // Copy into word-aligned memory: the WebSocket buffer gives no alignment guarantee.
  auto words = kj::heapArray<capnp::word>(frame.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), frame.data(), frame.size());
  capnp::ReaderOptions options;
  options.traversalLimitInWords = std::max<uint64_t>(kMinTraversalWords, words.size() * 2);
  options.nestingLimit = kNestingLimit;
  Result<Message> out = Bad("undecoded");
  kj::Maybe<kj::Exception> failure = kj::runCatchingExceptions([&]() {
    capnp::FlatArrayMessageReader reader(words.asPtr(), options);
    if (reader.getEnd() != words.end()) {
      out = Bad("trailing bytes after the message");
      return;
    }
    out = DecodeRoot(reader.getRoot<proto::Message>(), limits);
  });
  KJ_IF_MAYBE (e, failure) {
    return Bad(std::string(e->getDescription().cStr()).substr(0, 300));
  }
  return out;
}

}  // namespace weft::sync
