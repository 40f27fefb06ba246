// The sync protocol of one connection (sync::Link) over an in-memory transport: batching of
// received frames into one transaction, delayed Acks, the live interval of a relay, and changes
// from different ways sharing one batch through per-change routes. No sockets, no timing
// assertions: the test plays the transport's timer itself.
#include "sync/link.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "fake_peer.h"
#include "sql_exec.h"
#include "sync/hub.h"
#include "sync/wire.h"
#include "temp_dir.h"
#include "weft/crdt/document.h"
#include "weft/crdt/history.h"
#include "weft/replica.h"

using namespace weft;
using namespace std::chrono_literals;

namespace {

// These tests are about the protocol, not access lists: their documents are public.
std::unique_ptr<Replica> Open(const std::string& path) {
  ReplicaOptions o;
  o.public_documents = true;
  auto r = Replica::Open(path, o);
  REQUIRE(r.ok());
  return std::move(*r);
}

// A change of `doc` on `r` adding `element` to the set "s"; returns the change's blob.
std::string Edit(Replica& r, const std::string& doc, const std::string& element) {
  auto c = r.Transact(doc, [&](Txn& t) {
    auto set = t.root().Set("s");
    if (!set.ok()) return set.status();
    return set->Add(Scalar(element));
  });
  REQUIRE(c.ok());
  auto blobs = r.ChangesSince(doc, VersionVector{});
  REQUIRE(blobs.ok());
  return blobs->back();
}

// One side of a connection: its Link, what it sent, and the timer it asked for.
struct End {
  std::unique_ptr<sync::Link> link;
  std::deque<std::string> sent;
  int wakes = 0;

  std::vector<sync::Message> TakeSent() {
    std::vector<sync::Message> out;
    for (auto& f : sent) {
      auto m = sync::Decode(f);
      REQUIRE(m.ok());
      out.push_back(std::move(*m));
    }
    sent.clear();
    return out;
  }
};

// The links' clock, moved by the tests.
struct FakeClock {
  std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now();
  void Advance(std::chrono::microseconds d) { now += d; }
};

void MakeLink(End& e, sync::Hub& hub, sync::LinkConfig config, bool with_timer,
              FakeClock* clock = nullptr) {
  if (clock) config.clock = [clock] { return clock->now; };
  sync::LinkTransport t;
  t.send = [&e](std::string f) { e.sent.push_back(std::move(f)); };
  t.close = [](uint16_t, std::string) {};
  t.queued = [] { return size_t{0}; };
  if (with_timer) t.wake = [&e](std::chrono::microseconds) { ++e.wakes; };
  e.link = std::make_unique<sync::Link>(hub, std::move(config), std::move(t));
}

template <typename T>
std::vector<T> Only(const std::vector<sync::Message>& ms) {
  std::vector<T> out;
  for (const auto& m : ms) {
    if (auto* x = std::get_if<T>(&m)) out.push_back(*x);
  }
  return out;
}

// The accepting side of a link to a fake dialer `peer` that syncs "doc": after this, the link is
// ready and has the peer's Have (the peer holds nothing).
// The fake dialer's Hello, then its Auth answering the link's Hello (the last frame it sent).
void Authenticate(End& e, NodeId peer, bool all_documents) {
  e.link->Start();
  testing::FakePeer fake(peer);
  e.link->OnFrame(sync::Encode(fake.Hello(all_documents)));
  REQUIRE(!e.sent.empty());
  auto reply = sync::Decode(e.sent.back());
  REQUIRE(reply.ok());
  auto* hello = std::get_if<sync::HelloMsg>(&*reply);
  REQUIRE(hello);
  e.link->OnFrame(sync::Encode(fake.Auth(*hello)));
  REQUIRE(e.link->ready());
}

void Handshake(End& e, NodeId peer) {
  Authenticate(e, peer, false);
  e.link->OnFrame(sync::Encode(sync::HaveMsg{"doc", {}, 0}));
  REQUIRE(e.link->ready());
}

}  // namespace

TEST_CASE("frames that arrive together are stored in one transaction with one Ack", "[link]") {
  testing::TempDir dir;
  auto author = Open(dir.File("author.db"));
  std::vector<std::string> blobs;
  for (int i = 0; i < 3; ++i) blobs.push_back(Edit(*author, "doc", "e" + std::to_string(i)));

  auto device = Open(dir.File("device.db"));
  sync::Hub hub(*device);
  End e;
  MakeLink(e, hub, sync::LinkConfig{}, /*with_timer=*/false);
  Handshake(e, NodeId{77});
  e.TakeSent();
  int events = 0;
  uint64_t sub =
      device->Subscribe("doc", [&](const ChangeEvent& ev) { events += ev.local ? 0 : 1; });

  // Three frames, one change each, handed over together.
  std::vector<std::string> frames;
  for (const auto& b : blobs) {
    frames.push_back(sync::Encode(sync::ChangesMsg{"doc", {b}, {NodeId{77}}, {}, 0, false}));
  }
  e.link->OnFrames(frames);
  auto acks = Only<sync::AckMsg>(e.TakeSent());
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].version == *author->Version("doc"));
  CHECK(*device->Version("doc") == *author->Version("doc"));
  CHECK(events == 1);  // one commit: the change feed reports one batch
  CHECK(e.link->changes_received() == 3);
  device->Unsubscribe(sub);

  SECTION("a burst ending in a malformed frame stores nothing of it") {
    auto other = Open(dir.File("other.db"));
    sync::Hub hub2(*other);
    End f;
    MakeLink(f, hub2, sync::LinkConfig{}, false);
    Handshake(f, NodeId{77});
    std::vector<std::string> bad = {frames[0], frames[1], std::string("\x01\x02\x03", 3)};
    f.link->OnFrames(bad);
    CHECK(f.link->closed());
    CHECK_FALSE(other->HasDocument("doc"));
  }
}

TEST_CASE("a device acknowledges received changes once per ack delay", "[link]") {
  testing::TempDir dir;
  auto author = Open(dir.File("author.db"));
  auto device = Open(dir.File("device.db"));
  sync::Hub hub(*device);
  End e;
  sync::LinkConfig config;
  config.ack_delay = 20ms;
  FakeClock clock;
  MakeLink(e, hub, config, /*with_timer=*/true, &clock);
  Handshake(e, NodeId{77});
  e.TakeSent();

  for (int i = 0; i < 3; ++i) {
    std::string b = Edit(*author, "doc", "e" + std::to_string(i));
    e.link->OnFrame(sync::Encode(sync::ChangesMsg{"doc", {b}, {NodeId{77}}, {}, 0, false}));
  }
  // Stored at once, acknowledged later: one timer asked for, no Ack yet.
  CHECK(*device->Version("doc") == *author->Version("doc"));
  CHECK(Only<sync::AckMsg>(e.TakeSent()).empty());
  CHECK(e.wakes == 1);
  // Before the delay has passed, the timer only asks again.
  clock.Advance(10ms);
  e.link->OnTimer();
  CHECK(Only<sync::AckMsg>(e.TakeSent()).empty());
  CHECK(e.wakes == 2);
  clock.Advance(10ms);
  e.link->OnTimer();
  auto acks = Only<sync::AckMsg>(e.TakeSent());
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].version == *author->Version("doc"));
  // Nothing more to acknowledge: the timer is quiet.
  clock.Advance(30ms);
  e.link->OnTimer();
  CHECK(e.TakeSent().empty());
  CHECK(e.wakes == 2);
}

TEST_CASE("a relay batches changes from different devices with their routes", "[link]") {
  testing::TempDir dir;
  auto relay = Open(dir.File("relay.db"));
  sync::Hub hub(*relay);
  const NodeId device_a{101}, device_b{102}, peer{103};
  sync::LinkConfig config;
  config.relay = true;
  config.live_interval = 2ms;

  // Two devices' links into the relay, and the peer the relay fans out to.
  FakeClock clock;
  End a, b, out;
  MakeLink(a, hub, config, true, &clock);
  MakeLink(b, hub, config, true, &clock);
  MakeLink(out, hub, config, true, &clock);
  Handshake(a, device_a);
  Handshake(b, device_b);
  Handshake(out, peer);
  uint64_t listener = hub.AddListener([&](const sync::HubEvent& ev) { out.link->OnEvent(ev); });
  a.TakeSent();
  b.TakeSent();
  out.TakeSent();

  auto author_a = Open(dir.File("a.db"));
  auto author_b = Open(dir.File("b.db"));
  std::string ca = Edit(*author_a, "doc", "from a");
  std::string cb = Edit(*author_b, "doc", "from b");
  // The first change goes out at once; the second arrives within the live interval and waits.
  a.link->OnFrame(sync::Encode(sync::ChangesMsg{"doc", {ca}, {device_a}, {}, 0, false}));
  auto first = Only<sync::ChangesMsg>(out.TakeSent());
  REQUIRE(first.size() == 1);
  CHECK(first[0].path == std::vector<NodeId>{device_a, relay->node_id()});
  CHECK(first[0].routes.empty());

  std::string ca2 = Edit(*author_a, "doc", "from a again");
  clock.Advance(500us);
  a.link->OnFrame(sync::Encode(sync::ChangesMsg{"doc", {ca2}, {device_a}, {}, 0, false}));
  b.link->OnFrame(sync::Encode(sync::ChangesMsg{"doc", {cb}, {device_b}, {}, 0, false}));
  // Lingering: nothing sent, a timer asked for; early, it only asks again.
  CHECK(Only<sync::ChangesMsg>(out.TakeSent()).empty());
  CHECK(out.wakes == 1);
  clock.Advance(1ms);
  out.link->OnTimer();
  CHECK(Only<sync::ChangesMsg>(out.TakeSent()).empty());
  CHECK(out.wakes == 2);
  // Once the interval has passed, both go in one batch.
  clock.Advance(1ms);
  out.link->OnTimer();
  auto batch = Only<sync::ChangesMsg>(out.TakeSent());
  REQUIRE(batch.size() == 1);
  const auto& m = batch[0];
  REQUIRE(m.changes.size() == 2);
  // Their paths differ: the batch path is the relay, each route names its device.
  CHECK(m.path == std::vector<NodeId>{relay->node_id()});
  REQUIRE(m.routes.size() == 2);
  for (size_t i = 0; i < 2; ++i) {
    auto c = crdt::DecodeChange(m.changes[i]);
    REQUIRE(c.ok());
    CHECK(m.routes[i] ==
          std::vector<NodeId>{c->author == author_a->actor_id() ? device_a : device_b});
  }
  hub.RemoveListener(listener);
}

TEST_CASE("a change whose route names the receiver is dropped as a loop, the rest applied",
          "[link]") {
  testing::TempDir dir;
  auto node = Open(dir.File("node.db"));
  sync::Hub hub(*node);
  End e;
  MakeLink(e, hub, sync::LinkConfig{}, false);
  Handshake(e, NodeId{77});
  e.TakeSent();

  auto author = Open(dir.File("author.db"));
  std::string first = Edit(*author, "doc", "one");
  // `first` reached this node earlier; it comes back through a loop with a new change.
  REQUIRE(node->ApplyRemoteChanges("doc", {first}).ok());
  std::string second = Edit(*author, "doc", "two");
  uint64_t loops = hub.counters().loops_dropped;
  sync::ChangesMsg m{"doc", {first, second}, {NodeId{77}}, {{node->node_id()}, {NodeId{88}}}, 0,
                     false};
  e.link->OnFrame(sync::Encode(m));
  CHECK_FALSE(e.link->closed());
  CHECK(hub.counters().loops_dropped == loops + 1);
  CHECK(hub.counters().duplicates_in == 0);  // the looped change was not offered to the replica
  CHECK(*node->Version("doc") == *author->Version("doc"));
}

TEST_CASE("routes must match the changes and stay within the path limit", "[link]") {
  sync::ChangesMsg m{"doc", {"a", "b"}, {NodeId{1}}, {{NodeId{2}}, {NodeId{3}, NodeId{4}}},
                     0,     false};
  auto back = sync::Decode(sync::Encode(m));
  REQUIRE(back.ok());
  CHECK(std::get<sync::ChangesMsg>(*back).routes == m.routes);

  sync::ChangesMsg short_routes = m;
  short_routes.routes.pop_back();
  auto bad = sync::Decode(sync::Encode(short_routes));
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("routes") != std::string::npos);

  sync::DecodeLimits limits;
  limits.max_path = 2;  // path 1 + route 2 > 2
  auto long_route = sync::Decode(sync::Encode(m), limits);
  REQUIRE_FALSE(long_route.ok());
  CHECK(long_route.status().message().find("path too long") != std::string::npos);
}

namespace {

// Handshake, with the peer announcing `docs` as holding nothing.
void HandshakeDocs(End& e, NodeId peer, const std::vector<std::string>& docs) {
  Authenticate(e, peer, true);
  for (const auto& doc : docs) e.link->OnFrame(sync::Encode(sync::HaveMsg{doc, {}, 0}));
  REQUIRE(e.link->ready());
}

// Runs SQL on a database through sqlite3 directly (beside the replica's own connection).
void Sql(const std::string& path, const std::string& sql) {
  REQUIRE(testing::ExecSql(path, sql).empty());
}

std::vector<sync::ErrorMsg> ErrorsFor(const std::vector<sync::Message>& ms,
                                      const std::string& doc) {
  std::vector<sync::ErrorMsg> out;
  for (const auto& e : Only<sync::ErrorMsg>(ms)) {
    if (e.doc == doc) out.push_back(e);
  }
  return out;
}

bool SentChangesOf(const std::vector<sync::Message>& ms, const std::string& doc) {
  for (const auto& c : Only<sync::ChangesMsg>(ms)) {
    if (c.doc == doc) return true;
  }
  return false;
}

}  // namespace

// Dropping a looped change compacts the batch in place. A kept change before a dropped one used
// to be moved onto itself, which empties a std::string: the replica refused the empty change, and
// every reconnect met it again.
TEST_CASE("a change kept before a looped one is stored whole", "[link]") {
  const bool relay = GENERATE(false, true);
  INFO((relay ? "relay" : "device"));
  testing::TempDir dir;
  auto node = Open(dir.File("node.db"));
  sync::Hub hub(*node);
  End e;
  sync::LinkConfig config;
  config.relay = relay;
  MakeLink(e, hub, config, false);
  Handshake(e, NodeId{77});
  e.TakeSent();

  auto author_a = Open(dir.File("a.db"));
  auto author_b = Open(dir.File("b.db"));
  std::string looped = Edit(*author_a, "doc", "one");
  REQUIRE(node->ApplyRemoteChanges("doc", {looped}).ok());
  std::string fresh = Edit(*author_b, "doc", "two");
  // The new change first, then the one that came round a loop.
  sync::ChangesMsg m{"doc", {fresh, looped}, {NodeId{77}}, {{NodeId{88}}, {node->node_id()}}, 0,
                     false};
  e.link->OnFrame(sync::Encode(m));
  INFO(e.link->last_error());
  CHECK_FALSE(e.link->closed());
  CHECK(e.link->Documents().at("doc").stopped.empty());
  CHECK(hub.counters().loops_dropped == 1);
  const NodeId b = author_b->actor_id();
  CHECK(node->Version("doc")->Get(b) == author_b->Version("doc")->Get(b));
  CHECK(hub.counters().changes_in == 1);
}

TEST_CASE("a damaged change in the local log stops its document, not the connection", "[link]") {
  testing::TempDir dir;
  const std::string path = dir.File("node.db");
  ReplicaOptions options;
  options.snapshot_every = 0;  // every change stays a row of the log
  options.snapshot_every_ops = 0;
  options.public_documents = true;
  auto opened = Replica::Open(path, options);
  REQUIRE(opened.ok());
  auto node = std::move(*opened);
  Edit(*node, "a", "x");
  Edit(*node, "b", "y");
  REQUIRE(node->Version("a").ok());  // both documents are held in memory: only the log is damaged
  REQUIRE(node->Version("b").ok());
  SECTION("bytes that fail their checksum") {
    Sql(path, "UPDATE changes SET data = X'00' || substr(data, 2) WHERE doc = 'a'");
  }
  SECTION("bytes that pass their checksum and do not decode") {
    const std::string junk = "\x01\x02\x03";
    Sql(path, "UPDATE changes SET data = X'010203', crc = " +
                  std::to_string(static_cast<int64_t>(crdt::Crc32c(junk))) + " WHERE doc = 'a'");
  }
  sync::Hub hub(*node);
  End e;
  MakeLink(e, hub, sync::LinkConfig{}, false);
  HandshakeDocs(e, NodeId{77}, {"a", "b"});
  e.link->OnWritable();
  auto sent = e.TakeSent();
  auto errors = ErrorsFor(sent, "a");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].code == sync::ErrorCode::kCorruption);
  CHECK_FALSE(errors[0].fatal);
  CHECK_FALSE(SentChangesOf(sent, "a"));  // nothing damaged goes on the wire
  CHECK(SentChangesOf(sent, "b"));        // the other document is served
  CHECK_FALSE(e.link->closed());
  auto docs = e.link->Documents();
  CHECK(docs.at("a").stopped.find("corruption") != std::string::npos);
  CHECK(docs.at("b").stopped.empty());
  CHECK(hub.counters().documents_stopped == 1);
  std::string waiting;
  CHECK_FALSE(e.link->Converged(&waiting));
  CHECK(waiting.find("\"a\", stopped") != std::string::npos);
  // Anti-entropy tries it again (once a tick): still damaged, it stops again, alone.
  e.link->OnTick();
  auto again = e.TakeSent();
  CHECK(ErrorsFor(again, "a").size() == 1);
  CHECK_FALSE(SentChangesOf(again, "a"));
  CHECK_FALSE(e.link->closed());
  CHECK(hub.counters().documents_stopped == 2);
}

TEST_CASE("a change from the peer that does not decode stops its document, not the connection",
          "[link]") {
  testing::TempDir dir;
  auto node = Open(dir.File("node.db"));
  auto author = Open(dir.File("author.db"));
  std::string good_a = Edit(*author, "a", "x");
  std::string good_b = Edit(*author, "b", "y");
  sync::Hub hub(*node);
  End e;
  MakeLink(e, hub, sync::LinkConfig{}, false);
  HandshakeDocs(e, NodeId{77}, {"a", "b"});
  e.TakeSent();

  // A burst: a valid change of "a", then one that does not decode, then a change of "b".
  std::vector<std::string> frames = {
      sync::Encode(sync::ChangesMsg{"a", {good_a}, {NodeId{77}}, {}, 0, false}),
      sync::Encode(sync::ChangesMsg{"a", {"not a change"}, {NodeId{77}}, {}, 0, false}),
      sync::Encode(sync::ChangesMsg{"b", {good_b}, {NodeId{77}}, {}, 0, false})};
  e.link->OnFrames(frames);
  auto errors = ErrorsFor(e.TakeSent(), "a");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].code == sync::ErrorCode::kInvalidChange);
  CHECK_FALSE(errors[0].fatal);
  CHECK_FALSE(e.link->closed());
  CHECK_FALSE(node->HasDocument("a"));  // nothing of the document's burst was stored
  CHECK(*node->Version("b") == *author->Version("b"));
  // Later changes of the stopped document are dropped on this connection.
  e.link->OnFrame(sync::Encode(sync::ChangesMsg{"a", {good_a}, {NodeId{77}}, {}, 0, false}));
  CHECK_FALSE(node->HasDocument("a"));
  CHECK(e.link->Documents().at("a").stopped.find("invalid change") != std::string::npos);
}

TEST_CASE("a document the peer stopped is stopped on this side too", "[link]") {
  testing::TempDir dir;
  auto node = Open(dir.File("node.db"));
  Edit(*node, "a", "x");
  sync::Hub hub(*node);
  End e;
  MakeLink(e, hub, sync::LinkConfig{}, false);
  HandshakeDocs(e, NodeId{77}, {});
  e.TakeSent();
  e.link->OnFrame(
      sync::Encode(sync::ErrorMsg{sync::ErrorCode::kCorruption, "damaged", "a", false}));
  e.link->OnWritable();
  CHECK_FALSE(SentChangesOf(e.TakeSent(), "a"));
  CHECK_FALSE(e.link->closed());
  CHECK(e.link->Documents().at("a").stopped.find("the peer stopped it") != std::string::npos);
  // The peer's next Have (its anti-entropy retry) resumes it: this side announces and sends it.
  e.link->OnFrame(sync::Encode(sync::HaveMsg{"a", {}, 0}));
  auto sent = e.TakeSent();
  CHECK(SentChangesOf(sent, "a"));
  CHECK(e.link->Documents().at("a").stopped.empty());
}

TEST_CASE("a document stopped for a change from the peer is tried again at the next tick",
          "[link]") {
  testing::TempDir dir;
  auto node = Open(dir.File("node.db"));
  auto author = Open(dir.File("author.db"));
  std::string good = Edit(*author, "a", "x");
  sync::Hub hub(*node);
  End e;
  MakeLink(e, hub, sync::LinkConfig{}, false);
  HandshakeDocs(e, NodeId{77}, {"a"});
  e.TakeSent();
  e.link->OnFrame(
      sync::Encode(sync::ChangesMsg{"a", {"not a change"}, {NodeId{77}}, {}, 0, false}));
  REQUIRE(ErrorsFor(e.TakeSent(), "a").size() == 1);
  // The tick announces it again; the peer resumes and sends what it has, now valid.
  e.link->OnTick();
  auto haves = Only<sync::HaveMsg>(e.TakeSent());
  REQUIRE(haves.size() == 1);
  CHECK(haves[0].doc == "a");
  e.link->OnFrame(sync::Encode(sync::ChangesMsg{"a", {good}, {NodeId{77}}, {}, 0, false}));
  CHECK(*node->Version("a") == *author->Version("a"));
  CHECK(e.link->Documents().at("a").stopped.empty());
  CHECK_FALSE(e.link->closed());
}

namespace {

// The accepting side of a relay's link to `fake`, authenticated; it announced nothing.
void AuthenticateAs(End& e, const testing::FakePeer& fake) {
  e.link->Start();
  e.link->OnFrame(sync::Encode(fake.Hello()));
  auto reply = sync::Decode(e.sent.back());
  REQUIRE(reply.ok());
  e.link->OnFrame(sync::Encode(fake.Auth(std::get<sync::HelloMsg>(*reply))));
  REQUIRE(e.link->ready());
  e.TakeSent();
}

// A public document claiming seqs of `author` past those of `real`: forged content with a version
// that dominates the real document's. Returns its snapshot and version.
std::pair<std::string, VersionVector> Forged(const VersionVector& real, NodeId author) {
  crdt::Document d(author);
  auto t = d.Begin(1'700'000'000'000);
  auto text = t.PutObject(crdt::kRoot, "forged", crdt::ObjectKind::kText);
  REQUIRE(text.ok());
  REQUIRE(t.TextInsert(*text, 0, std::string(real.Get(author) + 1, 'x')).ok());
  t.Commit();
  REQUIRE(d.version().Dominates(real));
  return {d.EncodeSnapshot(false), d.version()};
}

}  // namespace

// A snapshot is state without history: its content cannot be checked against the access list.
// A reader once replaced an owned document at the relay with a public one of its own making (any
// content, no owner); a peer without any role did the same after an Error made the document known
// to the link.
TEST_CASE("a peer that is not trusted cannot replace or bring in an owned document by a snapshot",
          "[link][security]") {
  testing::TempDir dir;
  auto owner = Replica::Open(dir.File("owner.db"));  // its documents are owned by its key
  REQUIRE(owner.ok());
  auto relay = Open(dir.File("relay.db"));
  testing::FakePeer reader(NodeId{0x7ead});
  REQUIRE((*owner)->Transact("doc", [](Txn& t) { return t.root().Put("k", Scalar("v")); }).ok());
  REQUIRE((*owner)->Grant("doc", reader.key(), Role::kReader).ok());
  REQUIRE(relay->ApplyRemoteChanges("doc", *(*owner)->ChangesSince("doc", {})).ok());
  const VersionVector before = *relay->Version("doc");
  const std::string state = [&] {
    std::string s;
    REQUIRE(relay->Read("doc", [&](const View& v) { s = v.CanonicalState(); }).ok());
    return s;
  }();
  auto [data, version] = Forged(before, (*owner)->actor_id());
  sync::SnapshotChunkMsg chunk{"doc", version, 0, data.size(), data};
  sync::Hub hub(*relay);
  End e;
  sync::LinkConfig config;
  config.relay = true;
  MakeLink(e, hub, config, false);

  SECTION("a reader, after its Have, in two chunks") {
    AuthenticateAs(e, reader);
    e.link->OnFrame(sync::Encode(sync::HaveMsg{"doc", before, 0}));
    e.TakeSent();
    const size_t half = data.size() / 2;
    e.link->OnFrame(
        sync::Encode(sync::SnapshotChunkMsg{"doc", version, 0, data.size(), data.substr(0, half)}));
    // The rest was on its way: dropped, not a protocol error.
    e.link->OnFrame(
        sync::Encode(sync::SnapshotChunkMsg{"doc", version, half, data.size(), data.substr(half)}));
    auto errors = ErrorsFor(e.TakeSent(), "doc");
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].code == sync::ErrorCode::kPermissionDenied);
    CHECK_FALSE(errors[0].fatal);
    CHECK_FALSE(e.link->closed());
    CHECK(hub.counters().writes_denied == 1);
  }
  SECTION("a stranger, after an Error naming the document") {
    testing::FakePeer stranger(NodeId{0x5a});
    AuthenticateAs(e, stranger);
    e.link->OnFrame(
        sync::Encode(sync::ErrorMsg{sync::ErrorCode::kInvalidChange, "stop", "doc", false}));
    e.link->OnFrame(sync::Encode(chunk));
    CHECK_FALSE(e.link->closed());
  }
  SECTION("a reader, a document the relay does not hold") {
    AuthenticateAs(e, reader);
    e.link->OnFrame(sync::Encode(sync::HaveMsg{"other", {}, 0}));
    auto snap = (*owner)->ExportSnapshot("doc");
    REQUIRE(snap.ok());
    e.link->OnFrame(sync::Encode(
        sync::SnapshotChunkMsg{"other", snap->version, 0, snap->data.size(), snap->data}));
    auto errors = ErrorsFor(e.TakeSent(), "other");
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].code == sync::ErrorCode::kPermissionDenied);
    CHECK_FALSE(relay->HasDocument("other"));
  }
  CHECK(*relay->Version("doc") == before);
  std::string after;
  REQUIRE(relay->Read("doc", [&](const View& v) { after = v.CanonicalState(); }).ok());
  CHECK(after == state);

  // A public document's snapshot is still taken from any peer (as before access lists).
  auto author = Open(dir.File("author.db"));
  Edit(*author, "pub", "x");
  auto pub = author->ExportSnapshot("pub");
  REQUIRE(pub.ok());
  End e2;
  MakeLink(e2, hub, config, false);
  AuthenticateAs(e2, testing::FakePeer(NodeId{0x9b}));
  e2.link->OnFrame(sync::Encode(sync::HaveMsg{"pub", {}, 0}));
  e2.link->OnFrame(
      sync::Encode(sync::SnapshotChunkMsg{"pub", pub->version, 0, pub->data.size(), pub->data}));
  CHECK(Only<sync::AckMsg>(e2.TakeSent()).size() == 1);
  CHECK(*relay->Version("pub") == pub->version);
}

// An Error from the peer makes an entry for the document it names, without a check of its rights:
// presence for such a document once went out to every other session of it.
TEST_CASE("presence is passed on only for a document the peer announced and may read",
          "[link][security]") {
  testing::TempDir dir;
  auto owner = Replica::Open(dir.File("owner.db"));
  REQUIRE(owner.ok());
  auto relay = Open(dir.File("relay.db"));
  REQUIRE((*owner)->Transact("doc", [](Txn& t) { return t.root().Put("k", Scalar("v")); }).ok());
  REQUIRE(relay->ApplyRemoteChanges("doc", *(*owner)->ChangesSince("doc", {})).ok());
  Edit(*relay, "pub", "x");
  sync::Hub hub(*relay);
  int passed_on = 0;
  uint64_t other = hub.AddListener([&](const sync::HubEvent& ev) {
    if (ev.kind == sync::HubEvent::Kind::kPresence) ++passed_on;
  });
  End e;
  sync::LinkConfig config;
  config.relay = true;
  MakeLink(e, hub, config, false);
  testing::FakePeer stranger(NodeId{0x5a});
  AuthenticateAs(e, stranger);
  e.link->OnFrame(
      sync::Encode(sync::ErrorMsg{sync::ErrorCode::kInvalidChange, "stop", "doc", false}));
  e.link->OnFrame(
      sync::Encode(sync::PresenceMsg{"doc", stranger.node(), "{\"at\":1}", {stranger.node()}}));
  CHECK(passed_on == 0);
  CHECK_FALSE(e.link->closed());
  // A document it may read, once announced.
  e.link->OnFrame(sync::Encode(sync::HaveMsg{"pub", {}, 0}));
  e.link->OnFrame(
      sync::Encode(sync::PresenceMsg{"pub", stranger.node(), "{\"at\":1}", {stranger.node()}}));
  CHECK(passed_on == 1);
  hub.RemoveListener(other);
}

namespace {

// A relay's connection hears of a change only when it syncs the change's document: with a
// thousand devices over a hundred documents, an event costs the ten connections that have it, not
// every connection. A connection syncing every document still hears of all of them.
TEST_CASE("a connection hears of the documents it syncs only, unless it syncs every one",
          "[link]") {
  testing::TempDir dir;
  auto relay = Open(dir.File("relay.db"));
  sync::Hub hub(*relay);
  struct Listening {
    End end;
    std::vector<std::string> heard;
    uint64_t id = 0;
  };
  Listening few, all;
  for (auto* l : {&few, &all}) {
    sync::LinkConfig config;
    config.relay = true;
    MakeLink(l->end, hub, config, false);
    l->id = hub.AddListener([l](const sync::HubEvent& ev) {
      l->heard.push_back(ev.doc);
      l->end.link->OnEvent(ev);
    });
    l->end.link->set_listener_id(l->id);
  }
  testing::FakePeer one(NodeId{0x5b}), every(NodeId{0x5c});
  AuthenticateAs(few.end, one);
  few.end.link->OnFrame(sync::Encode(sync::HaveMsg{"a", {}, 0}));
  all.end.link->Start();
  all.end.link->OnFrame(sync::Encode(every.Hello(/*all_documents=*/true)));
  auto reply = sync::Decode(all.end.sent.back());
  REQUIRE(reply.ok());
  all.end.link->OnFrame(sync::Encode(every.Auth(std::get<sync::HelloMsg>(*reply))));
  REQUIRE(all.end.link->ready());

  Edit(*relay, "a", "x");
  Edit(*relay, "b", "y");
  Edit(*relay, "a", "z");
  CHECK(few.heard == std::vector<std::string>{"a", "a"});
  CHECK(all.heard == std::vector<std::string>{"a", "b", "a"});
  // The change of "b" reached the connection syncing every document.
  bool b_offered = false;
  for (const auto& m : all.end.TakeSent()) {
    if (auto* h = std::get_if<sync::HaveMsg>(&m)) b_offered |= h->doc == "b";
    if (auto* c = std::get_if<sync::ChangesMsg>(&m)) b_offered |= c->doc == "b";
  }
  CHECK(b_offered);
  hub.RemoveListener(few.id);
  hub.RemoveListener(all.id);
}

}  // namespace
