// Fuzz target: an authenticated session at a relay. relay_handshake cannot get past the session
// proof (a fuzzer cannot forge an Ed25519 signature); here the target is a legitimate device with
// a real key (a Replica of its own) and an admission token: it completes the handshake with valid
// proofs, then feeds the relay's side of the connection (sync::Link as weft-relay configures it
// without --open: an admission key, a trusted relay that is not this device, access checks) the
// fuzzer's frames as that device's (fixtures.h, session: raw frames, or structured messages
// carrying prepared changes and snapshots, with the owner's grants and revokes arriving from
// another session in between).
//
// The relay holds documents of another key (the owner): "private" (the device has no role),
// "shared" (a reader; 300 changes, so that a new reader is sent a snapshot) and "team" (a
// writer), and a public one. Its store is put back as it was when an input changed it, so that
// every input starts from the same state.
//
// Properties: nothing crashes; every frame the relay sends is a valid protocol message (and every
// change it sends decodes); after a close it sends nothing and stores nothing more; a frame of the
// device never changes the relay's copy of a document the device may not write (its version; one
// exception, which the access rules allow: a reader's change that only binds an author of its own
// to its key); the relay sends the device nothing of a document it may not read (no Have,
// Changes, snapshot or presence), and passes on no presence of the device's in such a document.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "fixtures.h"
#include "identity_internal.h"
#include "sync/hub.h"
#include "sync/link.h"
#include "sync/session_auth.h"
#include "sync/wire.h"
#include "weft/replica.h"

namespace {

using namespace weft;
namespace session = fuzz::session;
namespace fs = std::filesystem;

constexpr uint64_t kRelayNow = fuzz::kBaseTime + 60'000;  // the relay's clock (ms)
constexpr crdt::NodeId kRelayNode{0x5E1A7};
constexpr crdt::NodeId kOwnerNode{0x0E1}, kOwnerActor{0x0E2};
constexpr crdt::NodeId kDeviceNode{0xDE1}, kDeviceActor{0xDE2}, kDeviceActor2{0xDE3};
constexpr crdt::NodeId kPublisherNode{0xB0A1}, kIssuerNode{0x155};
constexpr std::string_view kAudience = "wss://relay.example/sync";
constexpr size_t kMaxFrames = 64;       // frames an input may hold
constexpr size_t kSharedChanges = 300;  // over the relay's snapshot threshold (256)
constexpr uint64_t kYearSeconds = 31'536'000;

void Check(const Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
    fuzz::Violated(what);
  }
}
template <class T>
T Need(Result<T> r, const char* what) {
  Check(r.status(), what);
  return std::move(*r);
}

std::string Bytes(const PublicKey& key) {
  return std::string(reinterpret_cast<const char*>(key.bytes().data()), PublicKey::kSize);
}
std::string Bytes(const Signature& sig) {
  return std::string(reinterpret_cast<const char*>(sig.data()), sig.size());
}

std::unique_ptr<Replica> OpenReplica(const std::string& path, crdt::NodeId node, crdt::NodeId actor,
                                     uint64_t now, bool relay) {
  ReplicaOptions o;
  o.clock = [now] { return now; };
  o.new_node_id = node;
  o.new_actor = actor;
  if (relay) {
    // As weft-relay opens its store (relay.cpp), with --durability normal: every batch is
    // acknowledged at once, so that an input always takes the same path.
    o.durability = Durability::kNormal;
    o.check_drift = true;
    o.public_documents = true;
  }
  return Need(Replica::Open(path, o), "open a replica");
}

// The relay's version of every document it holds.
std::map<std::string, VersionVector> Versions(Replica& r) {
  std::map<std::string, VersionVector> out;
  for (const std::string& doc : Need(r.ListDocuments(), "list the relay's documents")) {
    auto v = r.Version(doc);
    out[doc] = v.ok() ? *v : VersionVector{};
  }
  return out;
}

// The change `r` made to `doc` since `before` (exactly one).
std::string NewChange(Replica& r, const std::string& doc, const VersionVector& before) {
  auto blobs = Need(r.ChangesSince(doc, before), "read a new change");
  if (blobs.size() != 1) fuzz::Violated("one new change");
  return blobs[0];
}

void Copy(Replica& from, Replica& to, const std::string& doc) {
  auto held = to.Version(doc);
  auto blobs = Need(from.ChangesSince(doc, held.ok() ? *held : VersionVector{}), "copy: read");
  Check(to.ApplyRemoteChanges(doc, blobs).status(), "copy: apply");
}

crdt::Op BindOp(const Replica& signer, const std::string& doc, crdt::NodeId author,
                const PublicKey& key) {
  crdt::Op op;
  op.type = crdt::Op::Type::kAccess;
  op.action = crdt::AccessAction::kBind;
  op.principal = Bytes(key);
  op.proof =
      Bytes(Need(signer.Sign(kBindPurpose, BindingMessage(doc, author, op.principal)), "sign"));
  return op;
}
crdt::Op PutOp(const std::string& key, const std::string& value) {
  crdt::Op op;
  op.type = crdt::Op::Type::kMapSet;
  op.key = key;
  op.scalar = crdt::Scalar(value);
  return op;
}

// A change of `doc` built by hand on top of what `holder` holds: by `author` from `seq` on.
std::string Handmade(Replica& holder, const std::string& doc, crdt::NodeId author, uint64_t seq,
                     std::vector<crdt::Op> ops, uint64_t time_ms) {
  crdt::Change c;
  c.author = author;
  c.start_seq = seq;
  Check(holder.Read(doc,
                    [&](const View& v) {
                      c.deps = v.document().heads();
                      c.lamport = v.document().lamport() + 1;
                    }),
        "handmade: read");
  c.deps.Set(author, 0);
  c.time = crdt::HlcTimestamp{time_ms, 0};
  c.ops = std::move(ops);
  return crdt::EncodeChange(c);
}

// A public document of forged content claiming `author`'s seqs past those of `real`: its version
// dominates the real document's. Returns its snapshot and version.
std::pair<std::string, VersionVector> ForgedSnapshot(const VersionVector& real,
                                                     crdt::NodeId author) {
  crdt::Document d(author);
  auto t = d.Begin(fuzz::kBaseTime + 5000);
  auto text = t.PutObject(crdt::kRoot, "forged", crdt::ObjectKind::kText);
  if (!text.ok()) fuzz::Violated("forge: text");
  uint64_t need = real.Get(author) + 1;
  Check(t.TextInsert(*text, 0, std::string(need, 'x')), "forge: insert");
  t.Commit();
  if (!d.version().Dominates(real)) fuzz::Violated("forge: version");
  return {d.EncodeSnapshot(false), d.version()};
}

// Everything but the session: built once per process.
class World {
 public:
  World() {
    char tmpl[] = "/tmp/weft-fuzz-session-XXXXXX";
    const char* d = mkdtemp(tmpl);
    if (d == nullptr) fuzz::Violated("cannot create a temporary directory");
    dir_ = d;
    Build();
  }
  ~World() {
    relay_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  Replica& relay() { return *relay_; }
  Replica& device() { return *device_; }
  const PublicKey& trusted_key() const { return publisher_->public_key(); }
  const PublicKey& admission_key() const { return issuer_->public_key(); }
  const std::string& token() const { return token_; }
  const std::vector<std::string>& prepared() const { return prepared_; }
  struct Snapshot {
    VersionVector version;
    std::string data;
  };
  const std::vector<Snapshot>& snapshots() const { return snapshots_; }
  const std::vector<std::pair<std::string, std::string>>& script() const { return script_; }

  VersionVector PickVersion(const std::string& doc, uint8_t pick) {
    switch (pick % session::kVersionCount) {
      case session::kPristine: return Get(pristine_, doc);
      case session::kCurrent: {
        auto v = relay_->Version(doc);
        return v.ok() ? *v : VersionVector{};
      }
      case session::kOlder: return Get(older_, doc);
      case session::kDeviceVersion: {
        auto v = device_->Version(doc);
        return v.ok() ? *v : VersionVector{};
      }
      case session::kAhead: {
        VersionVector v = Get(pristine_, doc);
        v.Advance(kDeviceActor, 1000);
        return v;
      }
      default: return {};
    }
  }

  // Puts the relay's store back as it was built when the last input changed it.
  void Restore() {
    if (Versions(*relay_) == pristine_) return;
    relay_.reset();
    CopyStore(dir_ + "/pristine.db", dir_ + "/relay.db");
    relay_ = OpenReplica(dir_ + "/relay.db", kRelayNode, {}, kRelayNow, true);
    if (Versions(*relay_) != pristine_) fuzz::Violated("the relay's store is restored");
  }

 private:
  static VersionVector Get(const std::map<std::string, VersionVector>& m, const std::string& doc) {
    auto it = m.find(doc);
    return it == m.end() ? VersionVector{} : it->second;
  }

  static void CopyStore(const std::string& from, const std::string& to) {
    for (const char* suffix : {"", "-wal", "-shm", "-lease"}) {
      std::error_code ec;
      fs::remove(to + suffix, ec);
      if (fs::exists(from + suffix)) {
        fs::copy_file(from + suffix, to + suffix, ec);
        if (ec) fuzz::Violated("copy the relay's store");
      }
    }
  }

  void Build() {
    owner_ = OpenReplica(dir_ + "/owner.db", kOwnerNode, kOwnerActor, fuzz::kBaseTime, false);
    device_ =
        OpenReplica(dir_ + "/device.db", kDeviceNode, kDeviceActor, fuzz::kBaseTime + 1000, false);
    issuer_ = OpenReplica(dir_ + "/issuer.db", kIssuerNode, {}, fuzz::kBaseTime, false);
    // Another relay of the deployment (trusted), which also wrote the public document.
    publisher_ = OpenReplica(dir_ + "/publisher.db", kPublisherNode, {}, fuzz::kBaseTime, true);
    const PublicKey& device_key = device_->public_key();
    auto put = [](Replica& r, const std::string& doc, const std::string& key,
                  const std::string& value) {
      Check(r.Transact(doc, [&](Txn& t) { return t.root().Put(key, Scalar(value)); }).status(),
            "write");
    };

    put(*owner_, "private", "diary", "secret");
    older_["private"] = Need(owner_->Version("private"), "version");
    put(*owner_, "private", "plans", "more secrets");
    put(*owner_, "team", "plan", "draft");
    older_["team"] = Need(owner_->Version("team"), "version");
    Check(owner_->Grant("team", device_key, Role::kWriter).status(), "grant writer");
    Check(owner_->Grant("shared", device_key, Role::kReader).status(), "grant reader");
    for (size_t i = 0; i < kSharedChanges; ++i) {
      if (i + 5 == kSharedChanges) older_["shared"] = Need(owner_->Version("shared"), "version");
      put(*owner_, "shared", "line" + std::to_string(i % 7), "text " + std::to_string(i));
    }
    put(*publisher_, "board", "note", "for everyone");
    older_["board"] = Need(publisher_->Version("board"), "version");
    put(*publisher_, "board", "note2", "for everyone too");

    // The relay's store.
    auto relay = OpenReplica(dir_ + "/pristine.db", kRelayNode, {}, kRelayNow, true);
    for (const char* doc : {"private", "team", "shared"}) Copy(*owner_, *relay, doc);
    Copy(*publisher_, *relay, "board");
    pristine_ = Versions(*relay);
    for (const char* doc : {"team", "shared"}) Copy(*owner_, *device_, doc);
    Copy(*publisher_, *device_, "board");

    // The device's own changes.
    prepared_.resize(session::kPreparedCount);
    auto device_change = [&](const std::string& doc, const std::function<Status(Txn&)>& body) {
      auto before = device_->Version(doc);
      Check(device_->Transact(doc, body).status(), "device write");
      return NewChange(*device_, doc, before.ok() ? *before : VersionVector{});
    };
    prepared_[session::kTeamWrite] =
        device_change("team", [](Txn& t) { return t.root().Put("plan", Scalar("device's")); });
    prepared_[session::kTeamText] = device_change("team", [](Txn& t) {
      auto text = t.raw().PutObject(crdt::kRoot, "notes", crdt::ObjectKind::kText);
      if (!text.ok()) return text.status();
      return t.raw().TextInsert(*text, 0, "from the device");
    });
    prepared_[session::kTeamCounter] = device_change("team", [](Txn& t) {
      auto counter = t.raw().PutObject(crdt::kRoot, "votes", crdt::ObjectKind::kCounter);
      if (!counter.ok()) return counter.status();
      return t.raw().Increment(*counter, 3);
    });
    prepared_[session::kMineCreate] =
        device_change("mine", [](Txn& t) { return t.root().Put("own", Scalar("device")); });
    {
      auto before = Need(device_->Version("mine"), "version");
      Check(device_->Grant("mine", owner_->public_key(), Role::kReader).status(), "grant");
      prepared_[session::kMineGrant] = NewChange(*device_, "mine", before);
    }
    prepared_[session::kBoardWrite] =
        device_change("board", [](Txn& t) { return t.root().Put("note", Scalar("device")); });

    // Changes a device may not make, by hand on top of the relay's documents.
    const uint64_t now = fuzz::kBaseTime + 2000;
    prepared_[session::kSharedWrite] = Handmade(
        *relay, "shared", kDeviceActor, 1,
        {BindOp(*device_, "shared", kDeviceActor, device_key), PutOp("line0", "defaced")}, now);
    prepared_[session::kSharedBind] =
        Handmade(*relay, "shared", kDeviceActor, 1,
                 {BindOp(*device_, "shared", kDeviceActor, device_key)}, now);
    prepared_[session::kPrivateWrite] = Handmade(
        *relay, "private", kDeviceActor, 1,
        {BindOp(*device_, "private", kDeviceActor, device_key), PutOp("diary", "read")}, now);
    prepared_[session::kTeamForgedAuthor] =
        Handmade(*relay, "team", kOwnerActor, pristine_["team"].Get(kOwnerActor) + 1,
                 {PutOp("plan", "as the owner")}, now);
    {
      crdt::Op grant;
      grant.type = crdt::Op::Type::kAccess;
      grant.action = crdt::AccessAction::kGrant;
      grant.principal = Bytes(device_key);
      grant.role = Role::kAdmin;
      prepared_[session::kTeamSelfAdmin] =
          Handmade(*relay, "team", kDeviceActor2, 1,
                   {BindOp(*device_, "team", kDeviceActor2, device_key), std::move(grant)}, now);
    }
    {
      crdt::Op bind = BindOp(*device_, "team", kDeviceActor2, device_key);
      bind.principal = Bytes(owner_->public_key());  // signed by the device, naming the owner
      prepared_[session::kTeamBadBinding] =
          Handmade(*relay, "team", kDeviceActor2, 1, {bind, PutOp("plan", "owner's?")}, now);
    }
    prepared_[session::kTeamFuture] =
        Handmade(*relay, "team", kDeviceActor2, 1,
                 {BindOp(*device_, "team", kDeviceActor2, device_key), PutOp("plan", "tomorrow's")},
                 kRelayNow + 86'400'000);

    // The owner's later changes, which another session brings to the relay (kOwnerStep).
    auto owner_change = [&](const std::string& doc, const std::function<Status()>& fn) {
      auto before = Need(owner_->Version(doc), "version");
      Check(fn(), "owner's change");
      script_.emplace_back(doc, NewChange(*owner_, doc, before));
    };
    auto owner_put = [&](const std::string& doc, const std::string& value) {
      owner_change(doc, [&] {
        return owner_->Transact(doc, [&](Txn& t) { return t.root().Put("k", Scalar(value)); })
            .status();
      });
    };
    owner_put("private", "later");
    prepared_[session::kPrivateOwnersNext] = script_.back().second;
    owner_put("shared", "later");
    owner_change("private",
                 [&] { return owner_->Grant("private", device_key, Role::kReader).status(); });
    owner_change("team", [&] { return owner_->Revoke("team", device_key).status(); });
    owner_put("team", "after the revoke");
    owner_change("shared", [&] { return owner_->Revoke("shared", device_key).status(); });
    owner_change("private", [&] { return owner_->Revoke("private", device_key).status(); });

    // Snapshots.
    snapshots_.resize(session::kSnapshotCount);
    auto forged = [&](const char* doc, session::PreparedSnapshot i) {
      auto [data, version] = ForgedSnapshot(pristine_[doc], kOwnerActor);
      snapshots_[i] = {std::move(version), std::move(data)};
    };
    forged("shared", session::kForgedShared);
    forged("private", session::kForgedPrivate);
    auto exported = [&](const char* doc, session::PreparedSnapshot i) {
      auto s = Need(device_->ExportSnapshot(doc), "export");
      snapshots_[i] = {std::move(s.version), std::move(s.data)};
    };
    exported("team", session::kDeviceTeam);
    exported("mine", session::kDeviceMine);
    exported("board", session::kDeviceBoard);

    token_ = Need(sync::IssueAdmissionToken(*issuer_, device_key, sync::UnixNow() + kYearSeconds),
                  "admission token");
    relay.reset();
    CopyStore(dir_ + "/pristine.db", dir_ + "/relay.db");
    relay_ = OpenReplica(dir_ + "/relay.db", kRelayNode, {}, kRelayNow, true);
  }

  std::string dir_;
  std::unique_ptr<Replica> owner_, device_, issuer_, publisher_, relay_;
  std::string token_;
  std::map<std::string, VersionVector> pristine_, older_;
  std::vector<std::string> prepared_;
  std::vector<Snapshot> snapshots_;
  std::vector<std::pair<std::string, std::string>> script_;
};

// The document whose content or state a message carries ("" for the handshake's messages, for
// Errors, which may name one the device was refused, and for Acks, which answer what the device
// itself sent: a batch of its own can leave it without rights, by creating a document owned by
// another key, before the relay hears of the change and stops the document).
std::string DocOf(const sync::Message& m) {
  return std::visit(
      [](const auto& msg) -> std::string {
        using T = std::decay_t<decltype(msg)>;
        if constexpr (std::is_same_v<T, sync::HelloMsg> || std::is_same_v<T, sync::AuthMsg> ||
                      std::is_same_v<T, sync::ErrorMsg> || std::is_same_v<T, sync::AckMsg>) {
          return {};
        } else {
          return msg.doc;
        }
      },
      m);
}

// One connection of the device to the relay.
class Session {
 public:
  Session(World& world, bool all_documents)
      : world_(world), hub_(world.relay()), device_key_(world.device().public_key()) {
    sync::LinkConfig config;  // as weft-relay's sessions (relay.cpp), without --open
    config.relay = true;
    config.open = false;
    config.trusted.insert(world.trusted_key());
    config.admission_key = world.admission_key();
    config.max_batch_changes = 512;
    config.limits.max_changes_per_batch = 4096;
    config.max_batch_bytes = 1u << 20;
    config.snapshot_min_changes = 256;
    config.snapshot_chunk_bytes = 256u << 10;
    config.live_interval = std::chrono::microseconds(2000);
    config.ack_delay = std::chrono::microseconds(0);
    config.max_documents = 64;
    config.clock = [this] { return now_; };
    sync::LinkTransport t;
    t.send = [this](std::string frame) { OnSent(frame); };
    t.close = [this](uint16_t, std::string) { OnCloseAsked(); };
    t.queued = [this] { return queued_; };
    t.wake = [this](std::chrono::microseconds delay) {
      auto at = now_ + delay;
      if (!wake_at_ || at < *wake_at_) wake_at_ = at;
    };
    link_ = std::make_unique<sync::Link>(hub_, std::move(config), std::move(t));
    // The link's own listener gets events later, as a session's strand would.
    listener_ = hub_.AddListener([this](const sync::HubEvent& e) {
      std::lock_guard lock(events_mu_);
      events_.push_back(e);
    });
    link_->set_listener_id(listener_);
    // Another session of the relay: what presence the device's session passes on.
    observer_ = hub_.AddListener([this](const sync::HubEvent& e) {
      if (e.kind != sync::HubEvent::Kind::kPresence || e.origin != listener_) return;
      if (!world_.relay().MayRead(e.doc, device_key_)) {
        std::fprintf(stderr, "presence in \"%s\"\n", e.doc.c_str());
        fuzz::Violated("the relay passes on no presence of a document the device may not read");
      }
    });
    link_->Start();
    Handshake(all_documents);
  }
  ~Session() {
    hub_.RemoveListener(listener_);
    hub_.RemoveListener(observer_);
  }

  void Step(std::string_view frame) {
    if (frame.empty()) return;
    const uint8_t op = static_cast<uint8_t>(frame[0]);
    const std::string_view in = frame.substr(1);
    auto at = [&](size_t i) -> uint8_t { return i < in.size() ? static_cast<uint8_t>(in[i]) : 0; };
    auto rest = [&](size_t i) { return i < in.size() ? in.substr(i) : std::string_view(); };
    auto doc = [&](size_t i) -> std::string {
      return session::kDocNames[at(i) % session::kDocCount];
    };
    auto send = [&](const sync::Message& m) { burst_.push_back(sync::Encode(m)); };
    switch (op & 0x0F) {
      case session::kHave: {
        sync::HaveMsg m{doc(0), world_.PickVersion(doc(0), at(1)), 0};
        if (at(1) & session::kWrongDigest) m.state_digest = 1;
        if (at(1) & session::kRightDigest) {
          auto d = hub_.StateDigest(m.doc);
          if (d.ok()) m.state_digest = d->digest;
        }
        send(m);
        break;
      }
      case session::kChanges: {
        sync::ChangesMsg m;
        m.doc = doc(0);
        const uint8_t flags = at(1);
        for (std::string_view blob : fuzz::SplitFrames(rest(2))) {
          if (blob.size() == 1) {
            const auto& p = world_.prepared();
            m.changes.push_back(p[static_cast<uint8_t>(blob[0]) % p.size()]);
          } else {
            m.changes.emplace_back(blob);
          }
        }
        if (flags & session::kPathDevice) m.path.push_back(kDeviceNode);
        if (flags & session::kPathLoop) m.path.push_back(kRelayNode);
        if (flags & session::kRoutes) m.routes.assign(m.changes.size(), {kOwnerNode});
        m.encrypted = (flags & session::kEncrypted) != 0;
        if (flags & session::kRemaining) m.remaining = 3;
        send(m);
        break;
      }
      case session::kAck: send(sync::AckMsg{doc(0), world_.PickVersion(doc(0), at(1))}); break;
      case session::kPresence: {
        static constexpr crdt::NodeId kNodes[] = {kDeviceNode, kRelayNode, kOwnerNode, {}};
        sync::PresenceMsg m{doc(0), kNodes[at(1) % 4], std::string(rest(2)), {}};
        if (at(1) & 16) m.path.push_back(kRelayNode);
        m.path.push_back(kDeviceNode);
        send(m);
        break;
      }
      case session::kError: {
        sync::ErrorMsg m;
        m.doc = at(0) == 0xFF ? std::string() : doc(0);
        m.code = static_cast<sync::ErrorCode>((at(1) & 0x7F) % 14);
        m.fatal = (at(1) & 0x80) != 0;
        m.message = std::string(rest(2));
        send(m);
        break;
      }
      case session::kSnapshot: {
        const auto& snaps = world_.snapshots();
        size_t pick = (at(1) & 0x0F) % (snaps.size() + 1);
        World::Snapshot s;
        if (pick < snaps.size()) {
          s = snaps[pick];
        } else {
          s.data = std::string(rest(3));
          s.version = world_.PickVersion(doc(0), at(2));
        }
        size_t chunks = 1 + (at(1) >> 4) % 3;
        size_t size = (s.data.size() + chunks - 1) / std::max<size_t>(chunks, 1);
        for (size_t offset = 0; offset < s.data.size() || offset == 0; offset += size) {
          sync::SnapshotChunkMsg m{
              doc(0), s.version, offset, s.data.size(), s.data.substr(offset, size), std::nullopt};
          send(m);
          if (size == 0) break;
        }
        break;
      }
      case session::kReplay: send(at(0) & 1 ? sync::Message(auth_) : sync::Message(hello_)); break;
      case session::kTick:
        Flush(false);
        link_->OnTick();
        After(false);
        return;
      case session::kTimer:
        Flush(false);
        now_ += std::chrono::milliseconds(at(0));
        After(false);
        return;
      case session::kOwnerStep: {
        Flush(false);
        const auto& script = world_.script();
        if (step_ < script.size()) {
          const auto& [d, blob] = script[step_++];
          Check(world_.relay().ApplyRemoteChanges(d, {blob}).status(), "the owner's change");
        }
        Protect();  // the device's rights may have changed, and so have the versions
        if (closed_) at_close_ = Versions(world_.relay());
        After(false);
        return;
      }
      case session::kOtherPresence: {
        Flush(false);
        sync::HubEvent e;
        e.kind = sync::HubEvent::Kind::kPresence;
        e.doc = doc(0);
        e.presence = sync::PresenceMsg{e.doc, kOwnerNode, std::string(rest(1)), {kOwnerNode}};
        e.origin = observer_;
        hub_.Broadcast(e);
        After(false);
        return;
      }
      case session::kClose:
        Flush(false);
        link_->OnClosed("the device closed");
        OnCloseAsked();
        After(false);
        return;
      case session::kFlush: break;
      default: burst_.emplace_back(in); break;
    }
    if ((op & 0x0F) == session::kFlush || (op & session::kEndBurst)) {
      Flush((op & session::kNoDrain) != 0);
    }
  }

  // The end of the input: what is left, then the transport closes.
  void Finish() {
    Flush(false);
    if (!closed_) link_->OnTick();
    After(false);
    link_->OnClosed("end of input");
    OnCloseAsked();
    if (Versions(world_.relay()) != at_close_) {
      fuzz::Violated("nothing is stored after a close");
    }
  }

 private:
  using Clock = std::chrono::steady_clock;

  void Handshake(bool all_documents) {
    hello_.node = kDeviceNode;
    hello_.credentials = world_.token();
    hello_.all_documents = all_documents;
    hello_.agent = "weft-sdk/0.1";
    hello_.public_key = Bytes(device_key_);
    hello_.nonce = std::string(sync::kNonceBytes, 'n');
    hello_.audience = std::string(kAudience);
    link_->OnFrames({sync::Encode(hello_)});
    if (!relay_hello_) fuzz::Violated("the relay answers a legitimate device's Hello");
    auto relay_key = PublicKey::FromBytes(relay_hello_->public_key);
    if (!relay_key || *relay_key != world_.relay().public_key()) {
      fuzz::Violated("the relay's Hello names its key");
    }
    Check(sync::CheckSessionProof(true, *relay_key, device_key_, hello_.nonce, kAudience,
                                  relay_hello_->expires, relay_hello_->proof, sync::UnixNow()),
          "the relay's proof");
    const uint64_t expires = sync::UnixNow() + sync::kProofLifetimeSeconds;
    auto sig = world_.device().Sign(
        kSessionPurpose, sync::SessionTranscript(false, device_key_, *relay_key,
                                                 relay_hello_->nonce, kAudience, expires));
    auth_ = sync::AuthMsg{Bytes(Need(std::move(sig), "sign the session")), expires};
    authenticated_ = true;  // from here on, every frame is checked against the device's rights
    link_->OnFrames({sync::Encode(auth_)});
    if (!link_->ready()) {
      std::fprintf(stderr, "%s\n", link_->last_error().c_str());
      fuzz::Violated("a legitimate device is admitted");
    }
    Protect();
    After(false);
  }

  // The versions of the documents the device may not write (owned, and it holds no writer role).
  void Protect() {
    protected_.clear();
    Replica& relay = world_.relay();
    for (const auto& [doc, version] : Versions(relay)) {
      auto access = relay.Access(doc);
      if (!access.ok() || !access->owned) continue;
      auto it = access->members.find(device_key_);
      if (it != access->members.end() && it->second >= Role::kWriter) continue;
      protected_[doc] = version;
    }
  }

  void Flush(bool no_drain) {
    if (burst_.empty()) return;
    std::vector<std::string> frames = std::move(burst_);
    burst_.clear();
    if (trace_) {
      for (const auto& f : frames) Trace("device", f);
    }
    link_->OnFrames(frames);
    After(no_drain);
  }

  // What a session's strand does after frames: time passes, timers and events run, the socket
  // drains; then the properties that hold between frames.
  void After(bool no_drain) {
    now_ += std::chrono::milliseconds(1);
    if (wake_at_ && *wake_at_ <= now_) {
      wake_at_.reset();
      link_->OnTimer();
    }
    for (int round = 0; round < 8; ++round) {
      std::vector<sync::HubEvent> events;
      {
        std::lock_guard lock(events_mu_);
        events.swap(events_);
      }
      if (events.empty()) break;
      for (const auto& e : events) link_->OnEvent(e);
    }
    if (!no_drain) {
      for (int i = 0; i < 64; ++i) {
        size_t before = sent_;
        queued_ = 0;
        link_->OnWritable();
        if (sent_ == before) break;
      }
    }
    Replica& relay = world_.relay();
    for (const auto& [doc, version] : protected_) {
      auto now = relay.Version(doc);
      if (!now.ok() || (*now != version && !OnlyOwnBindings(doc, version, *now))) {
        std::fprintf(stderr, "\"%s\": %s, then %s\n", doc.c_str(), version.ToString().c_str(),
                     now.ok() ? now->ToString().c_str() : now.status().ToString().c_str());
        fuzz::Violated("the device changes no document it may not write");
      }
    }
  }

  // Whether `doc` went from `before` to `now` by changes in the relay's log alone (not a new
  // base) holding nothing but bindings of their authors to the device's key. The access rules
  // take such a change from anyone bound to nothing else (a bind is a fact, and writes nothing),
  // so a reader can add them; anything more is a breach.
  bool OnlyOwnBindings(const std::string& doc, const VersionVector& before,
                       const VersionVector& now) {
    auto blobs = world_.relay().ChangesSince(doc, before);
    if (!blobs.ok()) return false;
    VersionVector covered = before;
    for (const auto& blob : *blobs) {
      auto c = crdt::DecodeChange(blob);
      if (!c.ok()) return false;
      for (const crdt::Op& op : c->ops) {
        if (op.type != crdt::Op::Type::kAccess || op.action != crdt::AccessAction::kBind ||
            op.principal != Bytes(device_key_)) {
          return false;
        }
      }
      covered.Advance(c->author, c->end_seq());
    }
    return covered == now;
  }

  void OnCloseAsked() {
    if (closed_) return;
    closed_ = true;
    at_close_ = Versions(world_.relay());
  }

  // WEFT_FUZZ_TRACE=1: every frame of the session on stderr, to read what an input does.
  static void Trace(const char* from, const std::string& frame) {
    auto m = sync::Decode(frame);
    if (!m.ok()) {
      std::fprintf(stderr, "%s: (%s)\n", from, m.status().ToString().c_str());
      return;
    }
    std::string what = sync::MessageName(*m), doc = DocOf(*m);
    if (auto* e = std::get_if<sync::ErrorMsg>(&*m)) {
      doc = e->doc;
      what += " " + e->message;
    }
    if (auto* a = std::get_if<sync::AckMsg>(&*m)) doc = a->doc;
    if (auto* c = std::get_if<sync::ChangesMsg>(&*m)) {
      what += " (" + std::to_string(c->changes.size()) + ")";
    }
    std::fprintf(stderr, "%s: %s \"%s\"\n", from, what.c_str(), doc.c_str());
  }

  void OnSent(const std::string& frame) {
    if (trace_) Trace("relay", frame);
    fuzz::Expect(!closed_, "no frame is sent after a close");
    ++sent_;
    ++queued_;
    auto m = sync::Decode(frame);
    if (!m.ok()) {
      std::fprintf(stderr, "the relay sent: %s\n", m.status().ToString().c_str());
      fuzz::Violated("every frame the relay sends is a valid protocol message");
    }
    if (!authenticated_) {
      if (auto* h = std::get_if<sync::HelloMsg>(&*m)) relay_hello_ = *h;
      return;
    }
    fuzz::Expect(
        !std::holds_alternative<sync::HelloMsg>(*m) && !std::holds_alternative<sync::AuthMsg>(*m),
        "the relay sends one Hello and no Auth");
    if (auto* c = std::get_if<sync::ChangesMsg>(&*m)) {
      for (const auto& blob : c->changes) {
        fuzz::Expect(crdt::DecodeChange(blob).ok(), "every change the relay sends decodes");
      }
    }
    const std::string doc = DocOf(*m);
    if (!doc.empty() && !world_.relay().MayRead(doc, device_key_)) {
      std::fprintf(stderr, "a %s of \"%s\"\n", sync::MessageName(*m), doc.c_str());
      fuzz::Violated("the relay sends the device nothing of a document it may not read");
    }
  }

  const bool trace_ = std::getenv("WEFT_FUZZ_TRACE") != nullptr;
  World& world_;
  sync::Hub hub_;
  const PublicKey device_key_;
  std::unique_ptr<sync::Link> link_;
  uint64_t listener_ = 0, observer_ = 0;
  std::mutex events_mu_;
  std::vector<sync::HubEvent> events_;
  Clock::time_point now_ = Clock::time_point(std::chrono::hours(1));
  std::optional<Clock::time_point> wake_at_;
  size_t queued_ = 0, sent_ = 0;
  bool authenticated_ = false, closed_ = false;
  std::optional<sync::HelloMsg> relay_hello_;
  sync::HelloMsg hello_;
  sync::AuthMsg auth_;
  std::vector<std::string> burst_;
  size_t step_ = 0;
  std::map<std::string, VersionVector> protected_, at_close_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World world;
  if (size == 0) return 0;
  world.Restore();
  std::string_view in(reinterpret_cast<const char*>(data), size);
  {
    Session s(world, (in[0] & 1) != 0);
    size_t n = 0;
    for (std::string_view frame : fuzz::SplitFrames(in.substr(1))) {
      if (++n > kMaxFrames) break;
      s.Step(frame);
    }
    s.Finish();
  }
  return 0;
}
