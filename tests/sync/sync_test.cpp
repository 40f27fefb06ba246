// Sync over WebSockets on loopback: devices, relays (in-process, and the weft-relay binary for the
// crash test), meshes and rings, and hostile peers. No timing assertions: waits are bounded by
// generous deadlines and only decide failure.
#include "weft/sync.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "fake_peer.h"
#include "pg_server.h"
#include "pg_store.h"
#include "random.h"
#include "relay.h"
#include "relay_process.h"
#include "sync/session_auth.h"
#include "sync/wire.h"
#include "temp_dir.h"
#include "trace.h"
#include "weft/replica.h"

using namespace weft;
using namespace std::chrono_literals;
namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

namespace {

// Devices whose documents are public (anyone may write them): most tests here are about sync
// itself; the access-list tests open owned documents with OpenPrivate.
std::unique_ptr<Replica> OpenReplica(const std::string& path) {
  ReplicaOptions o;
  o.public_documents = true;
  auto r = Replica::Open(path, o);
  REQUIRE(r.ok());
  return std::move(*r);
}

std::unique_ptr<relay::Relay> StartRelay(
    const std::string& dir, std::vector<std::string> peers = {},
    const std::function<void(relay::RelayOptions&)>& tweak = nullptr) {
  relay::RelayOptions o;
  o.listen_port = 0;
  o.data_dir = dir;
  o.peers = std::move(peers);
  o.durability = Durability::kNormal;
  o.initial_backoff = 50ms;
  o.max_backoff = 500ms;
  if (tweak) tweak(o);
  auto r = relay::Relay::Start(o);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  return std::move(*r);
}

// A new database on the test process's PostgreSQL server (started on first use; a missing
// PostgreSQL fails the test, with the reason).
std::string NewPgDatabase() {
  auto server = testing::PgServer::Shared();
  INFO(server.status().ToString());
  REQUIRE(server.ok());
  auto db = (*server)->CreateDatabase();
  REQUIRE(db.ok());
  return *db;
}

// A relay on the PostgreSQL database `db`, under `name`.
std::function<void(relay::RelayOptions&)> OnPg(const std::string& db, const std::string& name) {
  return [db, name](relay::RelayOptions& o) {
    o.store = db;
    o.store_name = name;
  };
}

std::string Url(uint16_t port) {
  return "ws://127.0.0.1:" + std::to_string(port);
}
std::string Url(const relay::Relay& r) {
  return Url(r.port());
}

SyncOptions FastOptions() {
  SyncOptions o;
  o.initial_backoff = 50ms;
  o.max_backoff = 500ms;
  return o;
}

std::string State(Replica& r, const std::string& doc) {
  std::string s = "<absent>";
  (void)r.Read(doc, [&](const View& v) { s = v.CanonicalState(); });
  return s;
}

// Polls `cond` until it holds or `limit` passes.
bool Eventually(const std::function<bool()>& cond, std::chrono::milliseconds limit = 20s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return cond();
}

void Check(const Status& s) {
  INFO(s.ToString());
  REQUIRE(s.ok());
}

// The shared start of the to-do document: its counter and set exist before anyone edits offline
// (created concurrently they would merge too, being named containers; the change counts below
// count this shared start once).
void CreateTodo(Replica& r) {
  Check(r.Transact("todo", [](Txn& t) {
           WEFT_RETURN_IF_ERROR(t.root().Counter("likes").status());
           return t.root().Set("tags").status();
         }).status());
}

// Copies every change of `doc` from one replica to another, without a network.
void Copy(Replica& from, Replica& to, const std::string& doc) {
  auto blobs = from.ChangesSince(doc, {});
  REQUIRE(blobs.ok());
  Check(to.ApplyRemoteChanges(doc, *blobs).status());
}

// Offline edits of the shared to-do document: a title (concurrent writes become siblings), a
// counter, a set, and a key of this device's own.
void EditTodo(Replica& r, const std::string& who, int n) {
  for (int i = 0; i < n; ++i) {
    auto c = r.Transact("todo", [&](Txn& t) {
      WEFT_RETURN_IF_ERROR(t.root().Put("title", Scalar("title by " + who)));
      auto likes = t.root().Counter("likes");
      if (!likes.ok()) return likes.status();
      WEFT_RETURN_IF_ERROR(likes->Increment(1));
      auto tags = t.root().Set("tags");
      if (!tags.ok()) return tags.status();
      WEFT_RETURN_IF_ERROR(tags->Add(Scalar(who + "-" + std::to_string(i))));
      return t.root().Put("by " + who, Scalar(int64_t{i}));
    });
    Check(c.status());
  }
}

int64_t Likes(Replica& r) {
  int64_t v = -1;
  (void)r.Read("todo", [&](const View& view) {
    auto root = view.root();
    auto c = root.Counter("likes");
    if (c.ok() && c->Value().ok()) v = *c->Value();
  });
  return v;
}

size_t TitleSiblings(Replica& r) {
  size_t n = 0;
  (void)r.Read("todo", [&](const View& view) {
    auto g = view.root().Get("title");
    if (g.ok()) n = g->values.size();
  });
  return n;
}

// A minimal raw WebSocket peer, to send what an honest client never would.
class RawPeer {
 public:
  explicit RawPeer(uint16_t port) : ws_(ioc_) {
    tcp::resolver resolver(ioc_);
    net::connect(ws_.next_layer(), resolver.resolve("127.0.0.1", std::to_string(port)));
    ws_.handshake("127.0.0.1", "/");
    ws_.binary(true);
    ws_.read_message_max(64u << 20);
  }
  void SendRaw(const std::string& bytes) {
    beast::error_code ec;
    ws_.write(net::buffer(bytes), ec);
    if (ec) error_ = "write: " + ec.message();
  }
  void Send(const sync::Message& m) { SendRaw(sync::Encode(m)); }
  // The next message, or nullopt when the connection closed (close code in close_code()).
  std::optional<sync::Message> Read() {
    beast::flat_buffer b;
    beast::error_code ec;
    ws_.read(b, ec);
    if (ec) {
      error_ += (error_.empty() ? "" : "; ") + ec.message();
      close_code_ = ws_.reason().code;
      return std::nullopt;
    }
    auto m = sync::Decode(beast::buffers_to_string(b.data()));
    REQUIRE(m.ok());
    return std::move(*m);
  }
  // Reads until an Error arrives (returned) or the connection closes.
  std::optional<sync::ErrorMsg> ReadError() {
    while (auto m = Read()) {
      if (auto* e = std::get_if<sync::ErrorMsg>(&*m)) return *e;
    }
    return std::nullopt;
  }
  const std::string& error() const { return error_; }
  // Reads until the connection closes; returns the close code.
  int ReadToClose() {
    while (Read()) {
    }
    return close_code_;
  }
  // The handshake of a dialer with a key of its own (testing::FakePeer): its Hello, the relay's
  // Hello, its Auth. With another protocol version, only the Hello.
  void Hello(uint32_t version = sync::kProtocolVersion) {
    fake_.emplace(crdt::NodeId{0xbad0000 + (++counter_)});
    sync::HelloMsg h = fake_->Hello();
    h.protocol_version = version;
    Send(h);
    if (version != sync::kProtocolVersion) return;
    auto reply = Read();
    REQUIRE(reply);
    auto* hello = std::get_if<sync::HelloMsg>(&*reply);
    REQUIRE(hello);
    Send(fake_->Auth(*hello));
  }
  const testing::FakePeer& fake() const { return *fake_; }

 private:
  net::io_context ioc_;
  websocket::stream<tcp::socket> ws_;
  int close_code_ = 0;
  std::string error_;
  std::optional<testing::FakePeer> fake_;
  static inline uint64_t counter_ = 0;
};

using testing::FreePort;

// The relays these tests start as child processes pass on batches of at most 16 changes; `extra`:
// more arguments (a store, ...).
std::vector<std::string> RelayArgs(std::vector<std::string> extra = {}) {
  extra.insert(extra.begin(), {"--max-batch", "16"});
  return extra;
}
using testing::RelayProcess;

}  // namespace

TEST_CASE("two devices edit offline and converge through a relay", "[sync]") {
  testing::TempDir dir;
  auto relay = StartRelay(dir.File("relay"));
  auto a = OpenReplica(dir.File("a.db"));
  auto b = OpenReplica(dir.File("b.db"));
  CreateTodo(*a);
  REQUIRE(SyncOnce(*a, Url(*relay), {}, 20s, FastOptions()).ok());
  REQUIRE(SyncOnce(*b, Url(*relay), {}, 20s, FastOptions()).ok());
  REQUIRE(State(*a, "todo") == State(*b, "todo"));
  // Offline.
  EditTodo(*a, "a", 5);
  EditTodo(*b, "b", 7);
  Check(a->Transact("notes", [](Txn& t) { return t.root().Put("a", Scalar("from a")); }).status());

  auto ra = SyncOnce(*a, Url(*relay), {}, 20s, FastOptions());
  INFO(ra.status().ToString());
  REQUIRE(ra.ok());
  CHECK(ra->changes_sent == 6);
  CHECK(ra->changes_received == 0);
  auto rb = SyncOnce(*b, Url(*relay), {}, 20s, FastOptions());
  REQUIRE(rb.ok());
  CHECK(rb->changes_sent == 7);
  CHECK(rb->changes_received == 6);
  auto ra2 = SyncOnce(*a, Url(*relay), {}, 20s, FastOptions());
  REQUIRE(ra2.ok());
  CHECK(ra2->changes_sent == 0);
  CHECK(ra2->changes_received == 7);

  for (const char* doc : {"todo", "notes"}) {
    CHECK(State(*a, doc) == State(*b, doc));
    CHECK(State(*a, doc) == State(relay->replica(), doc));
  }
  CHECK(Likes(*a) == 12);
  CHECK(TitleSiblings(*a) == 2);  // concurrent titles stay siblings
  CHECK(TitleSiblings(*b) == 2);

  // Named documents only: a third device asks for "notes" alone.
  auto c = OpenReplica(dir.File("c.db"));
  auto rc = SyncOnce(*c, Url(*relay), {"notes"}, 20s, FastOptions());
  REQUIRE(rc.ok());
  CHECK(rc->changes_received == 1);
  CHECK(!c->HasDocument("todo"));
  CHECK(State(*c, "notes") == State(*a, "notes"));
}

// The weft-relay binary on PostgreSQL: a change it acknowledged survives a SIGKILL (each commit
// is synchronous), and the relay restarted on the database serves it with the same key.
TEST_CASE("weft-relay --store postgres:// keeps acknowledged changes across a SIGKILL",
          "[sync][postgres]") {
  const std::string db = NewPgDatabase();
  testing::TempDir dir;
  const std::vector<std::string> store = {"--store", db, "--store-name", "smoke"};
  auto print_key = [&]() {
    std::string cmd = std::string(WEFT_RELAY_BINARY) + " --data " + dir.File("relay") +
                      " --store '" + db + "' --store-name smoke --print-key";
    FILE* p = popen(cmd.c_str(), "r");
    REQUIRE(p != nullptr);
    char buf[200] = {};
    const size_t n = fread(buf, 1, sizeof buf - 1, p);
    const int rc = pclose(p);
    CHECK(rc == 0);
    return std::string(buf, n);
  };
  const std::string key = print_key();
  CHECK(key.size() == 65);  // 64 hex digits and a newline

  const uint16_t port = FreePort();
  auto a = OpenReplica(dir.File("a.db"));
  CreateTodo(*a);
  EditTodo(*a, "a", 4);
  {
    RelayProcess relay(dir.File("relay"), port, RelayArgs(store));
    auto ra = SyncOnce(*a, Url(port), {}, 20s, FastOptions());
    INFO(ra.status().ToString());
    REQUIRE(ra.ok());
    CHECK(ra->changes_sent == 5);
    CHECK(WIFSIGNALED(relay.Kill(SIGKILL)));
  }
  CHECK(print_key() == key);
  RelayProcess relay(dir.File("relay"), port, RelayArgs(store));
  auto b = OpenReplica(dir.File("b.db"));
  auto rb = SyncOnce(*b, Url(port), {}, 20s, FastOptions());
  INFO(rb.status().ToString());
  REQUIRE(rb.ok());
  CHECK(rb->changes_received == 5);
  CHECK(State(*b, "todo") == State(*a, "todo"));
  CHECK(relay.Kill(SIGTERM) == 0);
}

// A relay on PostgreSQL (--store): devices sync through it; restarted on the same database it
// is the same relay (its key) with the same documents; a second relay on that database, under
// its own name, has its own key and serves the documents the first one stored.
TEST_CASE("relays keep their data in one PostgreSQL database", "[sync][postgres]") {
  const std::string db = NewPgDatabase();
  testing::TempDir dir;
  auto relay = StartRelay(dir.File("relay"), {}, OnPg(db, "relay-1"));
  const PublicKey key = relay->replica().public_key();
  auto a = OpenReplica(dir.File("a.db"));
  CreateTodo(*a);
  EditTodo(*a, "a", 3);
  auto ra = SyncOnce(*a, Url(*relay), {}, 20s, FastOptions());
  INFO(ra.status().ToString());
  REQUIRE(ra.ok());
  CHECK(ra->changes_sent == 4);
  CHECK(State(relay->replica(), "todo") == State(*a, "todo"));
  relay->Stop();
  relay.reset();

  relay = StartRelay(dir.File("relay"), {}, OnPg(db, "relay-1"));
  CHECK(relay->replica().public_key() == key);
  CHECK(State(relay->replica(), "todo") == State(*a, "todo"));

  auto second = StartRelay(dir.File("relay-2"), {}, OnPg(db, "relay-2"));
  CHECK(second->replica().public_key() != key);
  auto b = OpenReplica(dir.File("b.db"));
  auto rb = SyncOnce(*b, Url(*second), {}, 20s, FastOptions());
  INFO(rb.status().ToString());
  REQUIRE(rb.ok());
  CHECK(rb->changes_received == 4);
  CHECK(State(*b, "todo") == State(*a, "todo"));
}

// PostgreSQL stopped under a relay: a change a device commits meanwhile is not acknowledged, and
// the device hears why (the relay ends the session with a storage error); PostgreSQL started
// again, the change is acknowledged and stored, nothing lost.
TEST_CASE("a relay on PostgreSQL stopped and started again acknowledges only what it stored",
          "[sync][postgres]") {
  auto server = testing::PgServer::Start();  // its own: this test stops it
  INFO(server.status().ToString());
  REQUIRE(server.ok());
  auto db = (*server)->CreateDatabase();
  REQUIRE(db.ok());
  testing::TempDir dir;
  auto on_pg = [&](relay::RelayOptions& o) {
    o.store = *db;
    o.store_name = "relay";
  };
  auto relay = StartRelay(dir.File("relay"), {}, on_pg);
  auto a = OpenReplica(dir.File("a.db"));
  auto client = SyncClient::Create(*a, FastOptions());
  REQUIRE(client.ok());
  Check((*client)->AddPeer(Url(*relay)));
  auto first = a->Transact("doc", [](Txn& t) { return t.root().Put("k", Scalar(int64_t{1})); });
  REQUIRE(first.ok());
  Check((*client)->WaitForAck("doc", first->version, 20s));

  (*server)->Stop();
  auto second = a->Transact("doc", [](Txn& t) {
    WEFT_RETURN_IF_ERROR(t.root().Put("k", Scalar(int64_t{2})));
    return t.root().Put("while", Scalar("postgres was down"));
  });
  REQUIRE(second.ok());
  Status waited = (*client)->WaitForAck("doc", second->version, 3s);
  INFO(waited.ToString());
  CHECK(waited.code() == StatusCode::kTimeout);
  std::string last_error;
  CHECK(Eventually([&] {
    auto peers = (*client)->Peers();
    last_error = peers.empty() ? "" : peers[0].last_error;
    return last_error.find("storage") != std::string::npos;
  }));
  INFO(last_error);
  const std::string metrics = relay->Metrics();
  CHECK(metrics.find("weft_relay_errors_sent_total 0\n") == std::string::npos);

  Status again = (*server)->StartAgain();
  INFO(again.ToString());
  REQUIRE(again.ok());
  Status acked = (*client)->WaitForAck("doc", second->version, 30s);
  INFO(acked.ToString());
  CHECK(acked.ok());
  // A second device reads it through the relay, and a new relay on the database has it.
  auto b = OpenReplica(dir.File("b.db"));
  auto rb = SyncOnce(*b, Url(*relay), {}, 20s, FastOptions());
  INFO(rb.status().ToString());
  REQUIRE(rb.ok());
  CHECK(State(*b, "doc") == State(*a, "doc"));
  (*client)->Stop();
  relay->Stop();
  relay.reset();
  relay = StartRelay(dir.File("relay"), {}, on_pg);
  CHECK(State(relay->replica(), "doc") == State(*a, "doc"));
  relay->Stop();
}

namespace {

// Each author's changes of `doc` in the database `db` (a store of its own, not listening): checks
// that log seqs are unique and increasing, that no key is held twice and no two changes of an
// author overlap; returns, per author, the highest seq up to which its changes are all there.
std::map<NodeId, uint64_t> CheckedPrefixes(const std::string& db, const std::string& doc) {
  store::PgStoreOptions o;
  o.name = "checker";
  o.listen = false;
  auto st = store::OpenPgStore(db, o);
  INFO(st.status().ToString());
  REQUIRE(st.ok());
  std::map<NodeId, std::vector<std::pair<uint64_t, uint64_t>>> ranges;
  uint64_t last_seq = 0;
  store::LogRead read;
  read.segment = [&](const store::SegmentInfo&, std::string_view) {
    return Status::Corruption("a segment: this test expects rows only");
  };
  read.row = [&](const store::RowInfo& r, std::string_view) {
    if (r.seq <= last_seq) return Status::Corruption("log seqs not increasing");
    last_seq = r.seq;
    ranges[r.author].emplace_back(r.start_seq, r.end_seq);
    return Status::Ok();
  };
  Status s = (*st)->ReadLog(doc, read);
  INFO(s.ToString());
  REQUIRE(s.ok());
  std::map<NodeId, uint64_t> out;
  for (auto& [author, rs] : ranges) {
    std::sort(rs.begin(), rs.end());
    uint64_t prefix = 0;
    for (size_t i = 0; i < rs.size(); ++i) {
      if (i > 0) CHECK(rs[i].first > rs[i - 1].second);  // exactly once: no overlap
      if (rs[i].first == prefix + 1) prefix = rs[i].second;
    }
    CHECK(prefix == rs.back().second);  // no gap: an author's changes are stored in order
    out[author] = prefix;
  }
  return out;
}

}  // namespace

// weft-relay on PostgreSQL with several devices pushing at once (its appends batched), killed
// with SIGKILL mid-stream: every change a device saw acknowledged is in the database exactly
// once; restarted, the devices resend the rest, and every change is there exactly once.
TEST_CASE("weft-relay on PostgreSQL killed during concurrent batches keeps each change once",
          "[sync][postgres]") {
  const std::string db = NewPgDatabase();
  testing::TempDir dir;
  const std::vector<std::string> store = {"--store", db, "--store-name", "batch"};
  const uint16_t port = FreePort();
  // Under the snapshot-bootstrap threshold (256 changes a peer lacks) per document, so that
  // everything travels as changes and is stored as log rows.
  constexpr int kDevices = 4, kChanges = 120;
  const std::vector<std::string> docs = {"doc-0", "doc-1"};
  auto proc = std::make_unique<RelayProcess>(dir.File("relay"), port, RelayArgs(store));
  std::vector<std::unique_ptr<Replica>> devices;
  std::vector<std::unique_ptr<SyncClient>> clients;
  for (int d = 0; d < kDevices; ++d) {
    devices.push_back(OpenReplica(dir.File("d" + std::to_string(d) + ".db")));
    SyncOptions o = FastOptions();
    o.max_batch_changes = 8;  // many small batches
    auto c = SyncClient::Create(*devices.back(), o);
    REQUIRE(c.ok());
    Check((*c)->AddPeer(Url(port)));
    clients.push_back(std::move(*c));
  }
  std::vector<std::thread> writers;
  std::atomic<int> write_failures{0};
  struct JoinAll {
    std::vector<std::thread>& threads;
    ~JoinAll() {
      for (auto& t : threads) {
        if (t.joinable()) t.join();
      }
    }
  } join_writers{writers};
  for (int d = 0; d < kDevices; ++d) {
    writers.emplace_back([&, d] {
      for (int i = 0; i < kChanges; ++i) {
        const std::string key = "d" + std::to_string(d) + "-k" + std::to_string(i % 10);
        auto r = devices[d]->Transact(
            docs[i % 2], [&](Txn& t) { return t.root().Put(key, Scalar(int64_t{i})); });
        if (!r.ok()) ++write_failures;
        std::this_thread::sleep_for(3ms);
      }
    });
  }
  // The relay's counter `name` in /metrics (0 when it cannot be read).
  auto metric = [&](const std::string& name) -> uint64_t {
    try {
      net::io_context ioc;
      beast::tcp_stream s(ioc);
      tcp::resolver resolver(ioc);
      s.connect(resolver.resolve("127.0.0.1", std::to_string(port)));
      beast::http::request<beast::http::empty_body> req(beast::http::verb::get, "/metrics", 11);
      req.set(beast::http::field::host, "127.0.0.1");
      beast::http::write(s, req);
      beast::flat_buffer b;
      beast::http::response<beast::http::string_body> res;
      beast::http::read(s, b, res);
      const std::string line = "\nweft_relay_" + name + " ";
      const size_t at = res.body().find(line);
      return at == std::string::npos ? 0 : std::stoull(res.body().substr(at + line.size()));
    } catch (const std::exception&) {
      return 0;
    }
  };
  // Killed once every device has had something acknowledged, its pushes still going. (The
  // relay's replica appends under its one writer lock, so its sessions' appends reach the store
  // one at a time: log_syncs_total equals log_commits_total here.)
  auto acked_ops = [&](int d) {
    uint64_t n = 0;
    auto v = devices[d]->PeerVersions(Url(port));
    if (v.ok()) {
      for (const auto& [doc, version] : *v) n += version.TotalOps();
    }
    return n;
  };
  uint64_t appends = 0, transactions = 0;
  REQUIRE(Eventually([&] {
    for (int d = 0; d < kDevices; ++d) {
      if (acked_ops(d) == 0) return false;
    }
    return true;
  }));
  appends = metric("log_commits_total");
  transactions = metric("log_syncs_total");
  INFO("before the kill: " << appends << " appends in " << transactions << " transactions");
  CHECK(appends > 0);
  CHECK(WIFSIGNALED(proc->Kill(SIGKILL)));
  for (auto& w : writers) w.join();
  CHECK(write_failures == 0);

  // What each device saw acknowledged (kept in its database) is in PostgreSQL, exactly once.
  std::map<std::string, std::map<NodeId, uint64_t>> held;
  for (const std::string& doc : docs) held[doc] = CheckedPrefixes(db, doc);
  uint64_t acked_total = 0;
  for (int d = 0; d < kDevices; ++d) {
    auto v = devices[d]->PeerVersions(Url(port));
    REQUIRE(v.ok());
    for (const auto& [doc, version] : *v) {
      for (const auto& [author, seq] : version.entries()) {
        INFO("device " << d << ", " << doc << ", author " << author.ToHex());
        CHECK(held[doc][author] >= seq);
        acked_total += seq;
      }
    }
  }
  CHECK(acked_total > 0);

  // Restarted: the devices resend what was not stored, and everything is there once.
  proc = std::make_unique<RelayProcess>(dir.File("relay"), port, RelayArgs(store));
  for (auto& c : clients) {
    auto r = c->WaitUntilSynced(Url(port), 60s);
    INFO(r.status().ToString());
    REQUIRE(r.ok());
  }
  CHECK(Eventually(
      [&] {
        for (int d = 1; d < kDevices; ++d) {
          for (const std::string& doc : docs) {
            if (State(*devices[d], doc) != State(*devices[0], doc)) return false;
          }
        }
        return true;
      },
      60s));
  for (auto& c : clients) c->Stop();
  for (const std::string& doc : docs) {
    const auto final_held = CheckedPrefixes(db, doc);
    auto v = devices[0]->Version(doc);
    REQUIRE(v.ok());
    CHECK(v->size() == kDevices);
    for (const auto& [author, seq] : v->entries()) {
      INFO(doc << ", author " << author.ToHex());
      CHECK(final_held.count(author) == 1);
      CHECK(final_held.at(author) == seq);
    }
    CHECK(final_held.size() == v->size());
  }
  CHECK(proc->Kill(SIGTERM) == 0);
}

// Relays sharing a database need no peering: each follows the documents its devices use from the
// database, so a change stored through one reaches devices on another.
TEST_CASE(
    "two relays on one PostgreSQL database: a change through one reaches a device on the other",
    "[sync][postgres]") {
  const std::string db = NewPgDatabase();
  testing::TempDir dir;
  auto r1 = StartRelay(dir.File("r1"), {}, OnPg(db, "relay-1"));
  auto r2 = StartRelay(dir.File("r2"), {}, OnPg(db, "relay-2"));  // not peered
  auto a = OpenReplica(dir.File("a.db"));
  auto b = OpenReplica(dir.File("b.db"));
  auto ca = SyncClient::Create(*a, FastOptions());
  auto cb = SyncClient::Create(*b, FastOptions());
  REQUIRE(ca.ok());
  REQUIRE(cb.ok());
  Check((*ca)->AddPeer(Url(*r1)));
  Check((*cb)->AddPeer(Url(*r2)));

  auto first = a->Transact("shared", [](Txn& t) { return t.root().Put("k", Scalar(int64_t{1})); });
  REQUIRE(first.ok());
  Check(b->WaitFor(EncodeCausalToken("shared", first->version), 20s));

  // Both write at once, each through its own relay; both converge, and so do the relays.
  for (int i = 0; i < 20; ++i) {
    REQUIRE(a->Transact("shared", [&](Txn& t) {
               return t.root().Put("a" + std::to_string(i % 5), Scalar(int64_t{i}));
             }).ok());
    REQUIRE(b->Transact("shared", [&](Txn& t) {
               return t.root().Put("b" + std::to_string(i % 5), Scalar(int64_t{i}));
             }).ok());
  }
  Check(b->WaitFor(*a->CausalToken("shared"), 20s));
  Check(a->WaitFor(*b->CausalToken("shared"), 20s));
  CHECK(State(*a, "shared") == State(*b, "shared"));
  Check(r1->replica().WaitFor(*a->CausalToken("shared"), 20s));
  Check(r2->replica().WaitFor(*a->CausalToken("shared"), 20s));
  CHECK(State(r1->replica(), "shared") == State(*a, "shared"));
  CHECK(State(r2->replica(), "shared") == State(*a, "shared"));
  (*ca)->Stop();
  (*cb)->Stop();
  r1->Stop();
  r2->Stop();
}

// Backing up a relay on PostgreSQL is PostgreSQL's own business (docs/operations.md): a pg_dump of
// its database, restored into another, serves every document the relay had stored.
TEST_CASE("a pg_dump of a relay's PostgreSQL database restores into a relay that serves it all",
          "[sync][postgres]") {
  auto server = testing::PgServer::Shared();
  INFO(server.status().ToString());
  REQUIRE(server.ok());
  auto db = (*server)->CreateDatabase();
  REQUIRE(db.ok());
  testing::TempDir dir;
  auto on = [](const std::string& store) {
    return [store](relay::RelayOptions& o) {
      o.store = store;
      o.store_name = "relay";
    };
  };
  auto relay = StartRelay(dir.File("relay"), {}, on(*db));
  const PublicKey key = relay->replica().public_key();
  auto a = OpenReplica(dir.File("a.db"));
  CreateTodo(*a);
  EditTodo(*a, "a", 5);
  REQUIRE(SyncOnce(*a, Url(*relay), {}, 20s, FastOptions()).ok());
  // Dumped while the relay serves (pg_dump reads one snapshot), then the relay goes.
  const std::string dump = dir.File("relay.dump");
  Status dumped = testing::PgServer::RunTool("pg_dump", {"--format=custom", "--file=" + dump, *db});
  INFO(dumped.ToString());
  REQUIRE(dumped.ok());
  relay->Stop();
  relay.reset();

  auto restored = (*server)->CreateDatabase();
  REQUIRE(restored.ok());
  Status r =
      testing::PgServer::RunTool("pg_restore", {"--no-owner", "--dbname=" + *restored, dump});
  INFO(r.ToString());
  REQUIRE(r.ok());
  relay = StartRelay(dir.File("relay-restored"), {}, on(*restored));
  CHECK(relay->replica().public_key() == key);  // the same relay: its identity is in the dump
  auto b = OpenReplica(dir.File("b.db"));
  auto rb = SyncOnce(*b, Url(*relay), {}, 20s, FastOptions());
  INFO(rb.status().ToString());
  REQUIRE(rb.ok());
  CHECK(State(*b, "todo") == State(*a, "todo"));
  relay->Stop();
}

TEST_CASE("a live client streams changes both ways and reports lag", "[sync]") {
  testing::TempDir dir;
  auto relay = StartRelay(dir.File("relay"));
  auto a = OpenReplica(dir.File("a.db"));
  auto b = OpenReplica(dir.File("b.db"));
  auto ca = SyncClient::Create(*a, FastOptions());
  auto cb = SyncClient::Create(*b, FastOptions());
  REQUIRE(ca.ok());
  REQUIRE(cb.ok());
  Check((*ca)->AddPeer(Url(*relay)));
  Check((*cb)->AddPeer(Url(*relay)));
  REQUIRE((*ca)->WaitUntilSynced(Url(*relay), 20s).ok());
  REQUIRE((*cb)->WaitUntilSynced(Url(*relay), 20s).ok());

  std::vector<std::string> presence;
  std::mutex mu;
  (*cb)->SetPresenceCallback([&](const PresenceEvent& e) {
    std::lock_guard lock(mu);
    presence.push_back(e.payload);
  });
  for (int i = 0; i < 20; ++i) {
    auto info = a->Transact("live", [&](Txn& t) { return t.root().Put("k", Scalar(int64_t{i})); });
    REQUIRE(info.ok());
    // Semi-synchronous: wait until the relay stored it.
    if (i % 5 == 0) Check((*ca)->WaitForAck("live", info->version, 20s));
  }
  REQUIRE(Eventually([&] { return State(*a, "live") == State(*b, "live"); }));
  // Presence reaches b through the relay once both sync the document.
  REQUIRE(Eventually([&] {
    (void)(*ca)->PublishPresence("live", "cursor@3");
    std::lock_guard lock(mu);
    return !presence.empty();
  }));
  CHECK(presence.front() == "cursor@3");
  // b made no change: what it received from the relay is not lag (the relay has it), at once,
  // not only after the next anti-entropy round.
  const auto b_peers = (*cb)->Peers();
  REQUIRE(b_peers.size() == 1);
  for (const auto& d : b_peers[0].documents) {
    if (d.doc == "live") CHECK(d.unacknowledged_changes == 0);
  }

  auto peers = (*ca)->Peers();
  REQUIRE(peers.size() == 1);
  CHECK(peers[0].state == ConnectionState::kConnected);
  REQUIRE(peers[0].peer_node.has_value());
  CHECK(*peers[0].peer_node == relay->node_id());
  CHECK(peers[0].peer_is_relay);
  REQUIRE(Eventually([&] {
    auto peers = (*ca)->Peers();
    for (const auto& d : peers[0].documents) {
      if (d.doc == "live") return d.unacknowledged_changes == 0 && d.live;
    }
    return false;
  }));

  // Offline: the relay goes away; lag becomes visible and nothing is lost.
  relay->Stop();
  relay.reset();
  Check(
      a->Transact("live", [](Txn& t) { return t.root().Put("offline", Scalar("yes")); }).status());
  REQUIRE(Eventually([&] {
    auto p = (*ca)->Peers()[0];
    for (const auto& d : p.documents) {
      if (d.doc == "live")
        return p.state != ConnectionState::kConnected && d.unacknowledged_changes == 1 &&
               d.oldest_unacknowledged_age.has_value();
    }
    return false;
  }));
}

TEST_CASE("acknowledged changes survive a relay killed with SIGKILL", "[sync]") {
  testing::TempDir dir;
  uint16_t port = FreePort();
  std::string data = dir.File("relay");
  auto proc = std::make_unique<RelayProcess>(data, port, RelayArgs());
  auto a = OpenReplica(dir.File("a.db"));
  for (int i = 0; i < 400; ++i) {
    Check(a->Transact("big", [&](Txn& t) {
             return t.root().Put("k" + std::to_string(i % 50), Scalar(int64_t{i}));
           }).status());
  }
  VersionVector acked;
  {
    SyncOptions o = FastOptions();
    o.max_batch_changes = 8;  // many small batches, so the kill lands mid-sync
    auto client = SyncClient::Create(*a, o);
    REQUIRE(client.ok());
    Check((*client)->AddPeer(Url(port)));
    REQUIRE(Eventually([&] {
      auto peers = (*client)->Peers();
      for (const auto& d : peers[0].documents) {
        if (d.doc == "big" && d.acknowledged.TotalOps() > 0) return true;
      }
      return false;
    }));
    proc->Kill(SIGKILL);
    (*client)->Stop();
  }
  // What the relay acknowledged is kept in a's database.
  auto stored = a->PeerVersions(Url(port));
  REQUIRE(stored.ok());
  for (const auto& [doc, v] : *stored) {
    if (doc == "big") acked = v;
  }
  REQUIRE(acked.TotalOps() > 0);

  // Restart on the same store and port; a new device, alone, finds every acknowledged change.
  proc = std::make_unique<RelayProcess>(data, port, RelayArgs());
  auto c = OpenReplica(dir.File("c.db"));
  auto rc = SyncOnce(*c, Url(port), {"big"}, 20s, FastOptions());
  INFO(rc.status().ToString());
  REQUIRE(rc.ok());
  auto cv = c->Version("big");
  REQUIRE(cv.ok());
  CHECK(cv->Dominates(acked));

  // a resumes and everyone converges.
  auto ra = SyncOnce(*a, Url(port), {}, 20s, FastOptions());
  REQUIRE(ra.ok());
  auto rc2 = SyncOnce(*c, Url(port), {}, 20s, FastOptions());
  REQUIRE(rc2.ok());
  CHECK(State(*a, "big") == State(*c, "big"));
  // SIGTERM: a clean shutdown, exit status 0.
  int st = proc->Kill(SIGTERM);
  CHECK(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 0);
}

namespace {

// Starts one relay per entry of `dials`, each dialing the relays it names (so they may form a
// ring or a mesh), with its data under `dir`.
std::vector<std::unique_ptr<relay::Relay>> StartTopology(
    testing::TempDir& dir, const std::vector<std::vector<int>>& dials) {
  std::vector<std::unique_ptr<relay::Relay>> relays;
  // Ports are known once bound: start each relay dialing the earlier ones it names, then restart
  // (same store, same port) those that also dial later ones, with their full peer list.
  std::vector<uint16_t> ports;
  for (size_t i = 0; i < dials.size(); ++i) {
    std::vector<std::string> peers;
    for (int j : dials[i]) {
      if (static_cast<size_t>(j) < i) peers.push_back(Url(ports[j]));
    }
    relays.push_back(StartRelay(dir.File("relay" + std::to_string(i)), peers));
    ports.push_back(relays.back()->port());
  }
  for (size_t i = 0; i < dials.size(); ++i) {
    bool later = false;
    for (int j : dials[i]) later |= static_cast<size_t>(j) > i;
    if (!later) continue;
    std::vector<std::string> peers;
    for (int j : dials[i]) peers.push_back(Url(ports[j]));
    relays[i]->Stop();
    relays[i].reset();
    relays[i] = StartRelay(dir.File("relay" + std::to_string(i)), peers,
                           [&](relay::RelayOptions& o) { o.listen_port = ports[i]; });
  }
  return relays;
}

// Four devices spread over three relays, edited offline, then synced live until all converge.
void RunTopology(const std::vector<std::vector<int>>& dials) {
  testing::TempDir dir;
  auto relays = StartTopology(dir, dials);

  std::vector<std::unique_ptr<Replica>> devices;
  std::vector<std::unique_ptr<SyncClient>> clients;
  const int home[4] = {0, 1, 2, 0};
  for (int d = 0; d < 4; ++d) {
    devices.push_back(OpenReplica(dir.File("d" + std::to_string(d) + ".db")));
    if (d == 0) {
      CreateTodo(*devices[0]);
    } else {
      Copy(*devices[0], *devices[d], "todo");
    }
  }
  for (int d = 0; d < 4; ++d) EditTodo(*devices[d], "d" + std::to_string(d), 10);
  for (int d = 0; d < 4; ++d) {
    auto c = SyncClient::Create(*devices[d], FastOptions());
    REQUIRE(c.ok());
    Check((*c)->AddPeer(Url(*relays[home[d]])));
    clients.push_back(std::move(*c));
  }
  auto converged = [&](int64_t likes) {
    return Eventually(
        [&] {
          std::string s0 = State(*devices[0], "todo");
          for (auto& d : devices) {
            if (State(*d, "todo") != s0) return false;
          }
          for (auto& r : relays) {
            if (State(r->replica(), "todo") != s0) return false;
          }
          return Likes(*devices[0]) == likes;
        },
        30s);
  };
  REQUIRE(converged(40));
  CHECK(TitleSiblings(*devices[0]) == 4);  // the four offline titles are concurrent

  // Live edits while connected (while the others' edits stream in).
  for (int d = 0; d < 4; ++d) EditTodo(*devices[d], "live" + std::to_string(d), 3);
  const uint64_t total = 4 * 13;  // edits; plus the shared start, which every device had
  REQUIRE(converged(static_cast<int64_t>(total)));

  // Each node receives each change at most once more than needed.
  for (size_t i = 0; i < relays.size(); ++i) {
    uint64_t in = relays[i]->Counter("changes_in_total");
    uint64_t dup = relays[i]->Counter("duplicates_dropped_total");
    INFO("relay " << i << ": " << in << " new, " << dup << " duplicates, "
                  << relays[i]->Counter("loops_dropped_total") << " loops dropped");
    CHECK(in == total + 1);
    CHECK(dup <= in);
  }
  for (int d = 0; d < 4; ++d) {
    auto p = clients[d]->Peers();
    REQUIRE(p.size() == 1);
    INFO("device " << d << ": " << p[0].changes_received << " new, " << p[0].duplicates_received
                   << " duplicates");
    CHECK(p[0].changes_received == total - 13);
    CHECK(p[0].duplicates_received <= p[0].changes_received);
  }
  for (auto& c : clients) c->Stop();
  for (auto& r : relays) r->Stop();
}

}  // namespace

TEST_CASE("three relays all-to-all with four devices converge without loops", "[sync]") {
  // 1 dials 0; 2 dials 0 and 1: every pair linked once.
  RunTopology({{}, {0}, {0, 1}});
}

TEST_CASE("three relays in a ring with four devices converge without loops", "[sync]") {
  // 0 -> 1 -> 2 -> 0.
  RunTopology({{1}, {2}, {0}});
}

TEST_CASE("three devices on a ring of relays create one counter and one text concurrently",
          "[sync][named]") {
  testing::TempDir dir;
  auto relays = StartTopology(dir, {{1}, {2}, {0}});  // 0 -> 1 -> 2 -> 0
  std::vector<std::unique_ptr<Replica>> devices;
  for (int d = 0; d < 3; ++d) {
    devices.push_back(OpenReplica(dir.File("d" + std::to_string(d) + ".db")));
    // Offline, each device creates the counter "n" and the text "notes" of a document none of
    // them held before, and writes into them.
    Check(devices[d]
              ->Transact("ring",
                         [&](Txn& t) {
                           auto n = t.root().Counter("n");
                           if (!n.ok()) return n.status();
                           WEFT_RETURN_IF_ERROR(n->Increment(d + 1));
                           auto notes = t.root().Text("notes");
                           if (!notes.ok()) return notes.status();
                           return notes->Insert(0, "[d" + std::to_string(d) + "]");
                         })
              .status());
  }
  std::vector<std::unique_ptr<SyncClient>> clients;
  for (int d = 0; d < 3; ++d) {
    auto c = SyncClient::Create(*devices[d], FastOptions());
    REQUIRE(c.ok());
    Check((*c)->AddPeer(Url(*relays[d])));
    clients.push_back(std::move(*c));
  }
  // Reads a device's "n" and "notes", each of which must be one value (not siblings).
  auto read = [](Replica& r, int64_t* n, std::string* notes) {
    Check(r.Read("ring", [&](const View& v) {
      auto root = v.root();
      auto gn = root.Get("n");
      auto gt = root.Get("notes");
      if (!gn.ok() || gn->values.size() != 1 || !gt.ok() || gt->values.size() != 1) return;
      auto c = root.Counter("n");
      auto t = root.Text("notes");
      if (c.ok() && c->Value().ok()) *n = *c->Value();
      if (t.ok() && t->Read().ok()) *notes = *t->Read();
    }));
  };
  auto converged = [&](int64_t sum) {
    return Eventually(
        [&] {
          std::string s0 = State(*devices[0], "ring");
          for (auto& d : devices) {
            if (State(*d, "ring") != s0) return false;
          }
          for (auto& r : relays) {
            if (State(r->replica(), "ring") != s0) return false;
          }
          int64_t n = -1;
          std::string notes;
          read(*devices[0], &n, &notes);
          return n == sum;
        },
        30s);
  };
  REQUIRE(converged(1 + 2 + 3));
  for (auto& d : devices) {
    int64_t n = -1;
    std::string notes;
    read(*d, &n, &notes);
    CHECK(n == 6);
    // One text holding the three typings, each whole.
    CHECK(notes.size() == 12);
    for (int k = 0; k < 3; ++k) CHECK(notes.find("[d" + std::to_string(k) + "]") != notes.npos);
    std::string json;
    Check(d->Read("ring", [&](const View& v) { json = v.ToJson(); }));
    CHECK(json.find("conflict") == std::string::npos);
  }
  // Live: each increments the one counter again while the others' increments stream in.
  for (int d = 0; d < 3; ++d) {
    Check(devices[d]
              ->Transact("ring",
                         [&](Txn& t) {
                           auto n = t.root().Counter("n");
                           if (!n.ok()) return n.status();
                           return n->Increment(10);
                         })
              .status());
  }
  REQUIRE(converged(36));
  for (auto& c : clients) c->Stop();
  for (auto& r : relays) r->Stop();
}

TEST_CASE("hostile frames are refused with clear errors and the relay keeps serving", "[sync]") {
  testing::TempDir dir;
  auto relay = StartRelay(dir.File("relay"), {}, [](relay::RelayOptions& o) {
    o.max_frame_bytes = 64 * 1024;
    o.handshake_timeout = 4000ms;  // also bounds the close handshake; generous for loaded CI
  });
  // An honest client connected throughout.
  auto good = OpenReplica(dir.File("good.db"));
  auto client = SyncClient::Create(*good, FastOptions());
  REQUIRE(client.ok());
  Check((*client)->AddPeer(Url(*relay)));
  REQUIRE((*client)->WaitUntilSynced(Url(*relay), 20s).ok());

  SECTION("garbage bytes") {
    RawPeer p(relay->port());
    p.SendRaw("this is not a Cap'n Proto message");
    auto e = p.ReadError();
    REQUIRE(e);
    CHECK(e->code == sync::ErrorCode::kMalformed);
    CHECK(p.ReadToClose() == 1002);
  }
  SECTION("a well-formed frame of a wrong shape") {
    RawPeer p(relay->port());
    p.SendRaw(std::string(64, '\xff'));
    auto e = p.ReadError();
    REQUIRE(e);
    CHECK(e->code == sync::ErrorCode::kMalformed);
  }
  SECTION("an unknown protocol version") {
    RawPeer p(relay->port());
    p.Hello(99);
    auto e = p.ReadError();
    REQUIRE(e);
    CHECK(e->code == sync::ErrorCode::kUnsupportedVersion);
    CHECK(e->message.find("protocol version 99 is not supported") != std::string::npos);
    CHECK(p.ReadToClose() == 1008);
  }
  SECTION("no Hello in time") {
    RawPeer p(relay->port());
    auto e = p.ReadError();
    REQUIRE(e);
    CHECK(e->code == sync::ErrorCode::kTimeout);
  }
  SECTION("a message before the Hello") {
    RawPeer p(relay->port());
    p.Send(sync::HaveMsg{"doc", {}});
    auto e = p.ReadError();
    REQUIRE(e);
    CHECK(e->code == sync::ErrorCode::kUnexpected);
  }
  SECTION("an oversized frame") {
    RawPeer p(relay->port());
    p.Hello();
    p.SendRaw(std::string(100 * 1024, 'x'));
    int code = p.ReadToClose();
    INFO(p.error());
    // The relay closes with 1009 (message too big) as soon as it has read the frame header. When
    // it does so while this peer is still writing the frame, the peer's write fails (broken pipe
    // or reset) before it can read that close frame: either way the frame was refused.
    bool cut_while_writing = p.error().rfind("write:", 0) == 0;
    CHECK((code == 1009 || cut_while_writing));
  }
  SECTION("a change with missing dependencies") {
    crdt::Document doc(crdt::NodeId{0x5151});
    std::vector<std::string> blobs;
    for (int i = 0; i < 2; ++i) {
      auto t = doc.Begin(1'700'000'000'000 + i);
      REQUIRE(t.Put(crdt::kRoot, "k", crdt::Scalar(int64_t{i})).ok());
      auto c = t.Commit();
      REQUIRE(c);
      blobs.push_back(crdt::EncodeChange(*c));
    }
    RawPeer p(relay->port());
    p.Hello();
    p.Send(sync::HaveMsg{"hostile", {}});
    sync::ChangesMsg m;
    m.doc = "hostile";
    m.changes = {blobs[1]};  // depends on blobs[0], never sent
    m.path = {crdt::NodeId{0x5151}};
    p.Send(m);
    auto e = p.ReadError();
    REQUIRE(e);
    CHECK(e->code == sync::ErrorCode::kMissingDependency);
    CHECK(e->doc == "hostile");
    CHECK_FALSE(e->fatal);  // the document stops on this connection; the connection goes on
    auto v = relay->replica().Version("hostile");
    CHECK((!v.ok() || v->empty()));  // nothing was stored
  }
  SECTION("an undecodable change") {
    RawPeer p(relay->port());
    p.Hello();
    p.Send(sync::HaveMsg{"hostile", {}});
    sync::ChangesMsg m;
    m.doc = "hostile";
    m.changes = {"definitely not a change"};
    p.Send(m);
    auto e = p.ReadError();
    REQUIRE(e);
    CHECK(e->code == sync::ErrorCode::kInvalidChange);
    CHECK(e->doc == "hostile");
    CHECK_FALSE(e->fatal);
  }

  // The relay still serves: the honest client's edits reach a new device.
  Check(good->Transact("after", [](Txn& t) { return t.root().Put("still", Scalar("here")); })
            .status());
  auto fresh = OpenReplica(dir.File("fresh.db"));
  REQUIRE(Eventually([&] {
    auto r = SyncOnce(*fresh, Url(*relay), {"after"}, 5s, FastOptions());
    return r.ok() && State(*fresh, "after") == State(*good, "after");
  }));
}

TEST_CASE("a bad URL and an unreachable peer fail clearly", "[sync]") {
  testing::TempDir dir;
  auto a = OpenReplica(dir.File("a.db"));
  auto bad = SyncOnce(*a, "http://example", {}, 1s);
  CHECK(bad.status().code() == StatusCode::kInvalidArgument);
  auto none = SyncOnce(*a, Url(FreePort()), {}, 500ms, FastOptions());
  CHECK(none.status().code() == StatusCode::kTimeout);
  CHECK(none.status().message().find("connect") != std::string::npos);
}

TEST_CASE("the relay serves /metrics and /healthz on the sync port", "[sync]") {
  testing::TempDir dir;
  auto relay = StartRelay(dir.File("relay"));
  auto a = OpenReplica(dir.File("a.db"));
  Check(a->Transact("m", [](Txn& t) { return t.root().Put("k", Scalar("v")); }).status());
  REQUIRE(SyncOnce(*a, Url(*relay), {}, 20s, FastOptions()).ok());
  auto get = [&](const std::string& target) {
    net::io_context ioc;
    beast::tcp_stream s(ioc);
    tcp::resolver resolver(ioc);
    s.connect(resolver.resolve("127.0.0.1", std::to_string(relay->port())));
    beast::http::request<beast::http::empty_body> req(beast::http::verb::get, target, 11);
    req.set(beast::http::field::host, "127.0.0.1");
    beast::http::write(s, req);
    beast::flat_buffer b;
    beast::http::response<beast::http::string_body> res;
    beast::error_code ec;
    beast::http::read(s, b, res, ec);
    return std::make_pair(res.result_int(), res.body());
  };
  auto [hc, hb] = get("/healthz");
  CHECK(hc == 200);
  CHECK(hb == "ok\n");
  auto [mc, mb] = get("/metrics");
  CHECK(mc == 200);
  CHECK(mb.find("weft_relay_changes_in_total 1\n") != std::string::npos);
  CHECK(mb.find("weft_relay_documents 1\n") != std::string::npos);
  CHECK(mb.find("# TYPE weft_relay_connections gauge") != std::string::npos);
  CHECK(get("/nope").first == 404);
}

TEST_CASE("a relay with full durability acknowledges through its group commit", "[sync]") {
  testing::TempDir dir;
  auto relay = StartRelay(dir.File("relay"), {},
                          [](relay::RelayOptions& o) { o.durability = Durability::kFull; });
  auto a = OpenReplica(dir.File("a.db"));
  for (int i = 0; i < 20; ++i) {
    Check(a->Transact("g", [&](Txn& t) {
             return t.root().Put("k" + std::to_string(i), i);
           }).status());
  }
  // WaitUntilSynced (inside SyncOnce) returns once the relay acknowledged everything: each Ack
  // followed an fsync of the relay's log covering the changes.
  REQUIRE(SyncOnce(*a, Url(*relay), {}, 20s, FastOptions()).ok());
  CHECK(relay->Counter("changes_in_total") == 20);
  const uint64_t syncs = relay->Counter("log_syncs_total");
  CHECK(syncs >= 1);
  CHECK(relay->Counter("log_commits_total") >= syncs);
  CHECK(relay->Counter("log_sync_failures_total") == 0);
  std::string m = relay->Metrics();
  CHECK(m.find("# TYPE weft_relay_log_syncs_total counter") != std::string::npos);
  // A relay restarted on the same directory holds them.
  relay->Stop();
  relay.reset();
  auto again = StartRelay(dir.File("relay"));
  CHECK(again->replica().Version("g")->Dominates(*a->Version("g")));
}

namespace {

std::string ReadText(Replica& r, const std::string& doc) {
  std::string out = "<absent>";
  (void)r.Read(doc, [&](const View& v) {
    auto t = v.root().Text("text");
    if (t.ok()) {
      auto s = t->Read();
      if (s.ok()) out = *s;
    }
  });
  return out;
}

// Replays the automerge-paper trace into `doc` of `r`, `per_txn` patches a transaction, and returns
// its endContent. Where the traces are not checked out beside the repository (../shared), an
// editing history of the same shape is made up instead (typing with deletions; ASCII, so that
// positions are bytes) and its expected end computed here.
std::string ReplayPaper(Replica& r, const std::string& doc, size_t per_txn) {
  const std::string path = std::string(WEFT_TRACES_DIR) + "/automerge-paper.json.gz";
  std::optional<testing::Trace> loaded;
  std::vector<testing::TracePatch> made_up;
  std::string expected;
  if (std::ifstream(path).good()) {
    auto trace = testing::LoadTrace(path);
    INFO(trace.status().ToString());
    REQUIRE(trace.ok());
    loaded = std::move(*trace);
    expected = loaded->end_content;
  } else {
    WARN(path << " not found: a made-up editing history of 200,000 patches instead");
    testing::Rng rng(2024);
    size_t cursor = 0;
    for (int i = 0; i < 200000; ++i) {
      testing::TracePatch p;
      if (rng.Chance(10)) cursor = rng.Below(expected.size() + 1);
      if (!expected.empty() && cursor > 0 && rng.Chance(25)) {
        p.pos = --cursor;
        p.del = 1;
        expected.erase(p.pos, 1);
      } else {
        p.pos = cursor++;
        p.insert = std::string(1, static_cast<char>('a' + rng.Below(26)));
        expected.insert(p.pos, p.insert);
      }
      made_up.push_back(std::move(p));
    }
  }
  std::vector<const testing::TracePatch*> patches;
  if (loaded) {
    for (const auto& txn : loaded->txns) {
      for (const auto& p : txn.patches) patches.push_back(&p);
    }
  } else {
    for (const auto& p : made_up) patches.push_back(&p);
  }
  for (size_t i = 0; i < patches.size(); i += per_txn) {
    Check(r.Transact(doc, [&](Txn& t) {
             auto text = t.root().Text("text");
             if (!text.ok()) return text.status();
             for (size_t k = i; k < std::min(patches.size(), i + per_txn); ++k) {
               if (patches[k]->del)
                 WEFT_RETURN_IF_ERROR(text->Delete(patches[k]->pos, patches[k]->del));
               if (!patches[k]->insert.empty()) {
                 WEFT_RETURN_IF_ERROR(text->Insert(patches[k]->pos, patches[k]->insert));
               }
             }
             return Status::Ok();
           }).status());
  }
  return expected;
}

void Append(Replica& r, const std::string& doc, const std::string& s) {
  Check(r.Transact(doc, [&](Txn& t) {
           auto text = t.root().Text("text");
           if (!text.ok()) return text.status();
           auto n = text->Size();
           if (!n.ok()) return n.status();
           return text->Insert(*n, s);
         }).status());
}

std::optional<DocumentSyncStatus> DocStatus(SyncClient& c, const std::string& doc) {
  auto peers = c.Peers();
  if (peers.empty()) return std::nullopt;
  for (const auto& d : peers[0].documents) {
    if (d.doc == doc) return d;
  }
  return std::nullopt;
}

}  // namespace

TEST_CASE("a new device bootstraps automerge-paper from a snapshot and catches up", "[sync]") {
  testing::TempDir dir;
  auto relay = StartRelay(dir.File("relay"));
  // The relay holds the whole trace in its log (about 1000 changes of 260 patches each).
  const std::string end = ReplayPaper(relay->replica(), "paper", 260);
  REQUIRE(ReadText(relay->replica(), "paper") == end);

  auto b = OpenReplica(dir.File("b.db"));
  auto client = SyncClient::Create(*b, FastOptions());
  REQUIRE(client.ok());
  Check((*client)->AddPeer(Url(*relay)));
  auto synced = (*client)->WaitUntilSynced(Url(*relay), 30s);
  INFO(synced.status().ToString());
  REQUIRE(synced.ok());
  CHECK(ReadText(*b, "paper") == end);
  CHECK(State(*b, "paper") == State(relay->replica(), "paper"));
  // It came as one snapshot, in chunks, with its progress shown; not as the log.
  auto st = DocStatus(**client, "paper");
  REQUIRE(st);
  CHECK(st->snapshots_received == 1);
  CHECK(st->snapshot_bytes_received_total > 0);
  CHECK(st->snapshot_bytes_received == st->snapshot_bytes_received_total);
  CHECK(st->changes_received == 0);
  CHECK(relay->Counter("snapshots_sent_total") == 1);
  // b's log starts after the snapshot.
  auto base = b->BaseVersion("paper");
  REQUIRE(base.ok());
  CHECK(*base == *relay->replica().Version("paper"));

  // Edits after the snapshot arrive from the log, live, both ways.
  Append(relay->replica(), "paper", "\n% edited on the relay after the snapshot\n");
  Append(*b, "paper", "% and on b\n");
  REQUIRE(Eventually([&] { return State(*b, "paper") == State(relay->replica(), "paper"); }));
  const std::string final_text = ReadText(*b, "paper");
  CHECK(final_text.size() > end.size());
  CHECK(final_text.find("% edited on the relay after the snapshot") != std::string::npos);
  CHECK(final_text.find("% and on b") != std::string::npos);
  auto st2 = DocStatus(**client, "paper");
  REQUIRE(st2);
  CHECK(st2->changes_received == 1);
  CHECK(st2->snapshots_received == 1);
  (*client)->Stop();
  client->reset();

  // Reopened, b loads its base snapshot and replays its log after it.
  b.reset();
  b = OpenReplica(dir.File("b.db"));
  CHECK(ReadText(*b, "paper") == final_text);

  // A relay that bootstrapped from a snapshot cannot serve the log before it: it sends its own
  // snapshot to a new device in turn.
  // relay2 sends a snapshot only when its log cannot serve a peer (relay1 offers one at 256).
  auto relay2 = StartRelay(dir.File("relay2"), {Url(*relay)},
                           [](relay::RelayOptions& o) { o.snapshot_min_changes = 0; });
  REQUIRE(Eventually([&] { return State(relay2->replica(), "paper") == State(*b, "paper"); }));
  CHECK(relay2->Counter("snapshots_received_total") == 1);
  auto base2 = relay2->replica().BaseVersion("paper");
  REQUIRE(base2.ok());
  CHECK(!base2->entries().empty());
  auto c = OpenReplica(dir.File("c.db"));
  auto rc = SyncOnce(*c, Url(*relay2), {"paper"}, 30s, FastOptions());
  INFO(rc.status().ToString());
  REQUIRE(rc.ok());
  CHECK(ReadText(*c, "paper") == final_text);
  CHECK(relay2->Counter("snapshots_sent_total") == 1);
}

TEST_CASE("a bad snapshot is refused and changes nothing", "[sync]") {
  testing::TempDir dir;
  auto a = OpenReplica(dir.File("a.db"));
  Check(a->Transact("d", [](Txn& t) { return t.root().Put("k", Scalar("a")); }).status());
  auto snap = a->ExportSnapshot("d");
  REQUIRE(snap.ok());
  CHECK(a->ExportSnapshot("absent").status().code() == StatusCode::kNotFound);

  auto b = OpenReplica(dir.File("b.db"));
  // Hostile bytes: truncations, flipped bytes, garbage. Never a crash; nothing stored.
  std::vector<std::string> bad = {"", "garbage", std::string(100, '\xff')};
  for (size_t n = 0; n < snap->data.size(); n += 3) bad.push_back(snap->data.substr(0, n));
  for (size_t i = 0; i < snap->data.size(); ++i) {
    std::string f = snap->data;
    f[i] = static_cast<char>(f[i] ^ 0x5a);
    bad.push_back(f);
  }
  size_t refused = 0;
  for (const auto& bytes : bad) {
    auto r = b->ImportSnapshot("d", bytes);
    if (!r.ok()) {
      ++refused;
      CHECK(r.status().code() == StatusCode::kCorruption);
      CHECK_FALSE(b->HasDocument("d"));
    } else {
      // A flip the format cannot tell from another valid state: then it is a valid snapshot.
      Check(b->DeleteDocument("d"));
    }
  }
  CHECK(refused >= bad.size() / 2);
  // A version that is not the snapshot's.
  VersionVector wrong;
  wrong.Advance(crdt::NodeId{42}, 7);
  CHECK(b->ImportSnapshot("d", snap->data, &wrong).status().code() == StatusCode::kCorruption);
  CHECK_FALSE(b->HasDocument("d"));

  // b has a change of its own that the snapshot lacks: refused, b keeps it.
  Check(b->Transact("d", [](Txn& t) { return t.root().Put("mine", Scalar("b")); }).status());
  std::string before = State(*b, "d");
  auto over = b->ImportSnapshot("d", snap->data, &snap->version);
  CHECK(over.status().code() == StatusCode::kInvalidArgument);
  CHECK(State(*b, "d") == before);
  auto b_base = b->BaseVersion("d");
  REQUIRE(b_base.ok());
  CHECK(b_base->entries().empty());

  // A far-behind replica (all it holds is in the snapshot) takes it; the log after it follows.
  auto c = OpenReplica(dir.File("c.db"));
  Copy(*a, *c, "d");
  Check(a->Transact("d", [](Txn& t) { return t.root().Put("k2", Scalar("a2")); }).status());
  auto snap2 = a->ExportSnapshot("d");
  REQUIRE(snap2.ok());
  auto imported = c->ImportSnapshot("d", snap2->data, &snap2->version);
  REQUIRE(imported.ok());
  CHECK(*imported == snap2->version);
  CHECK(State(*c, "d") == State(*a, "d"));

  // Over the wire: a hostile snapshot chunk gets an error and a close; the relay stores nothing.
  auto relay = StartRelay(dir.File("relay"));
  {
    RawPeer p(relay->port());
    p.Hello();
    p.Send(sync::HaveMsg{"hostile", {}});
    sync::SnapshotChunkMsg m{"hostile", {}, 0, 7, "garbage"};
    p.Send(m);
    auto e = p.ReadError();
    REQUIRE(e);
    CHECK(e->code == sync::ErrorCode::kInvalidChange);
    CHECK(e->message.find("snapshot") != std::string::npos);
  }
  {
    RawPeer p(relay->port());
    p.Hello();
    p.Send(sync::HaveMsg{"hostile", {}});
    sync::SnapshotChunkMsg m{"hostile", {}, 5, 10, "later"};  // not from the start
    p.Send(m);
    auto e = p.ReadError();
    REQUIRE(e);
    CHECK(e->code == sync::ErrorCode::kUnexpected);
  }
  {
    RawPeer p(relay->port());
    p.Hello();
    p.Send(sync::HaveMsg{"hostile", {}});
    sync::SnapshotChunkMsg m{"hostile", {}, 0, 3, "toolong"};  // past its total
    p.Send(m);
    auto e = p.ReadError();
    REQUIRE(e);
    CHECK(e->code == sync::ErrorCode::kMalformed);
  }
  CHECK_FALSE(relay->replica().HasDocument("hostile"));
  // Size limits: one snapshot, and the incomplete snapshots of a connection together.
  auto small = StartRelay(dir.File("small"), {},
                          [](relay::RelayOptions& o) { o.max_snapshot_bytes = 1000; });
  {
    RawPeer p(small->port());
    p.Hello();
    p.Send(sync::HaveMsg{"big", {}});
    p.Send(sync::SnapshotChunkMsg{"big", {}, 0, 1001, "x"});
    auto e = p.ReadError();
    REQUIRE(e);
    CHECK(e->code == sync::ErrorCode::kTooLarge);
  }
  {
    RawPeer p(small->port());
    p.Hello();
    p.Send(sync::HaveMsg{"a", {}});
    p.Send(sync::HaveMsg{"b", {}});
    p.Send(sync::SnapshotChunkMsg{"a", {}, 0, 900, std::string(600, 'a')});
    p.Send(sync::SnapshotChunkMsg{"b", {}, 0, 900, std::string(600, 'b')});
    auto e = p.ReadError();
    REQUIRE(e);
    CHECK(e->code == sync::ErrorCode::kTooLarge);
    CHECK(e->message.find("in progress") != std::string::npos);
  }
  CHECK_FALSE(small->replica().HasDocument("a"));
  // The relay keeps serving.
  auto d = OpenReplica(dir.File("d.db"));
  Check(d->Transact("ok", [](Txn& t) { return t.root().Put("k", Scalar("v")); }).status());
  REQUIRE(SyncOnce(*d, Url(*relay), {}, 20s, FastOptions()).ok());
}

TEST_CASE("a second relay on the same data directory fails at start", "[sync]") {
  testing::TempDir dir;
  auto relay = StartRelay(dir.File("relay"));
  relay::RelayOptions o;
  o.listen_port = 0;
  o.data_dir = dir.File("relay");
  auto second = relay::Relay::Start(o);
  REQUIRE_FALSE(second.ok());
  CHECK(second.status().code() == StatusCode::kBusy);
  CHECK(second.status().message().find("in use by another weft-relay") != std::string::npos);

  // The binary: exits non-zero with the message on stderr.
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    close(fds[1]);
    std::string data = dir.File("relay");
    execl(WEFT_RELAY_BINARY, "weft-relay", "--listen", "127.0.0.1:0", "--data", data.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  std::string err;
  char buf[256];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) err.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  INFO(err);
  REQUIRE(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) != 0);
  CHECK(err.find("in use by another weft-relay") != std::string::npos);

  // Once the first stops, the directory is free again.
  relay->Stop();
  relay.reset();
  auto again = StartRelay(dir.File("relay"));
  CHECK(again->port() != 0);
}

namespace {

// The value of the first sample of `name` whose labels contain `label` ("" when absent).
std::string Sample(const std::string& metrics, const std::string& name, const std::string& label) {
  size_t pos = 0;
  while ((pos = metrics.find("\n" + name + "{", pos)) != std::string::npos) {
    size_t eol = metrics.find('\n', pos + 1);
    std::string line = metrics.substr(pos + 1, eol - pos - 1);
    pos = eol;
    size_t close = line.find("} ");
    if (close == std::string::npos || line.substr(0, close).find(label) == std::string::npos) {
      continue;
    }
    return line.substr(close + 2);
  }
  return "";
}

}  // namespace

TEST_CASE("the relay reports lag per peer relay and per session in /metrics", "[sync]") {
  testing::TempDir dir;
  auto relay = StartRelay(dir.File("relay"));
  Check(relay->replica()
            .Transact("m", [](Txn& t) { return t.root().Put("k", Scalar("v")); })
            .status());

  // A session that takes the change and does not acknowledge it.
  RawPeer p(relay->port());
  p.Hello();
  p.Send(sync::HaveMsg{"m", {}});
  VersionVector got;
  while (auto m = p.Read()) {
    if (auto* c = std::get_if<sync::ChangesMsg>(&*m)) {
      for (const auto& blob : c->changes) {
        auto ch = crdt::DecodeChange(blob);
        REQUIRE(ch.ok());
        got.Advance(ch->author, ch->end_seq());
      }
      break;
    }
  }
  REQUIRE(got.TotalOps() == 1);
  const std::string session = "session=\"1\"";
  std::string m = relay->Metrics();
  INFO(m);
  CHECK(m.find("# TYPE weft_relay_session_unacknowledged_changes gauge") != std::string::npos);
  CHECK(Sample(m, "weft_relay_session_unacknowledged_changes", session) == "1");
  CHECK(Sample(m, "weft_relay_session_unacknowledged_operations", session) == "1");
  CHECK_FALSE(Sample(m, "weft_relay_session_oldest_unacknowledged_age_seconds", session).empty());
  // Its Ack clears the lag.
  p.Send(sync::AckMsg{"m", got});
  REQUIRE(Eventually([&] {
    return Sample(relay->Metrics(), "weft_relay_session_unacknowledged_changes", session) == "0";
  }));

  // A relay that dials this one: no lag once synced; while the link is down, its new changes
  // count as unacknowledged for that peer.
  const std::string url = Url(*relay);
  auto relay2 = StartRelay(dir.File("relay2"), {url});
  REQUIRE(
      Eventually([&] { return State(relay2->replica(), "m") == State(relay->replica(), "m"); }));
  const std::string peer = "peer=\"" + url + "\"";
  REQUIRE(Eventually([&] {
    auto m2 = relay2->Metrics();
    return Sample(m2, "weft_relay_peer_connected", peer) == "1" &&
           Sample(m2, "weft_relay_peer_unacknowledged_changes", peer) == "0";
  }));
  relay->Stop();
  REQUIRE(Eventually(
      [&] { return Sample(relay2->Metrics(), "weft_relay_peer_connected", peer) == "0"; }));
  for (int i = 0; i < 3; ++i) {
    Check(relay2->replica()
              .Transact("m", [&](Txn& t) { return t.root().Put("k", Scalar(int64_t{i})); })
              .status());
  }
  std::string m2 = relay2->Metrics();
  INFO(m2);
  CHECK(Sample(m2, "weft_relay_peer_unacknowledged_changes", peer) == "3");
  CHECK(Sample(m2, "weft_relay_peer_unacknowledged_operations", peer) == "3");
  CHECK_FALSE(Sample(m2, "weft_relay_peer_oldest_unacknowledged_age_seconds", peer).empty());
}

TEST_CASE("a far-behind device catches up from a snapshot, a device with edits from the log",
          "[sync]") {
  testing::TempDir dir;
  auto relay = StartRelay(dir.File("relay"));
  auto put = [](Replica& r, int i) {
    Check(r.Transact("fb", [&](Txn& t) {
             return t.root().Put("k" + std::to_string(i % 20), Scalar(int64_t{i}));
           }).status());
  };
  put(relay->replica(), 0);
  auto d = OpenReplica(dir.File("d.db"));
  auto e = OpenReplica(dir.File("e.db"));
  REQUIRE(SyncOnce(*d, Url(*relay), {"fb"}, 20s, FastOptions()).ok());
  REQUIRE(SyncOnce(*e, Url(*relay), {"fb"}, 20s, FastOptions()).ok());
  // While both are away, the relay gets 300 more changes; e also edits offline.
  for (int i = 1; i <= 300; ++i) put(relay->replica(), i);
  put(*e, 1000);

  auto run = [&](Replica& r) {
    auto client = SyncClient::Create(r, FastOptions());
    REQUIRE(client.ok());
    Check((*client)->AddPeer(Url(*relay)));
    auto synced = (*client)->WaitUntilSynced(Url(*relay), 20s);
    INFO(synced.status().ToString());
    REQUIRE(synced.ok());
    auto st = DocStatus(**client, "fb");
    REQUIRE(st);
    return *st;
  };
  // d holds nothing the relay lacks: it takes the snapshot as its new base.
  auto sd = run(*d);
  CHECK(sd.snapshots_received == 1);
  CHECK(State(*d, "fb") == State(relay->replica(), "fb"));
  auto dbase = d->BaseVersion("fb");
  REQUIRE(dbase.ok());
  CHECK(dbase->TotalOps() == 301);
  // Reopened, d loads its base (its older log rows are in it) and matches still.
  const std::string d_state = State(*d, "fb");
  d.reset();
  d = OpenReplica(dir.File("d.db"));
  CHECK(State(*d, "fb") == d_state);
  // e has a change of its own the relay lacks: a snapshot would lose it, so the log is sent.
  auto se = run(*e);
  CHECK(se.snapshots_received == 0);
  CHECK(se.changes_received == 300);
  REQUIRE(Eventually([&] { return State(*e, "fb") == State(relay->replica(), "fb"); }));
}

TEST_CASE("a replayed or forged handshake is refused and counted", "[sync][security]") {
  testing::TempDir dir;
  auto relay = StartRelay(dir.File("relay"));

  // An honest handshake, recorded frame by frame.
  RawPeer honest(relay->port());
  testing::FakePeer device(crdt::NodeId{0xd1});
  sync::HelloMsg hello = device.Hello();
  honest.Send(hello);
  auto reply = honest.Read();
  REQUIRE(reply);
  auto* relay_hello = std::get_if<sync::HelloMsg>(&*reply);
  REQUIRE(relay_hello);
  sync::AuthMsg auth = device.Auth(*relay_hello);
  honest.Send(auth);
  honest.Send(sync::HaveMsg{"d", {}});
  auto have = honest.Read();
  REQUIRE(have);
  CHECK(std::holds_alternative<sync::HaveMsg>(*have));  // admitted
  CHECK(relay->Counter("auth_refused_total") == 0);

  SECTION("the recorded frames replayed on a new connection") {
    RawPeer replay(relay->port());
    replay.Send(hello);
    auto r = replay.Read();
    REQUIRE(r);
    REQUIRE(std::holds_alternative<sync::HelloMsg>(*r));  // a fresh nonce: the old proof is void
    replay.Send(auth);
    auto e = replay.ReadError();
    REQUIRE(e);
    CHECK(e->code == sync::ErrorCode::kUnauthenticated);
    CHECK(e->fatal);
    CHECK(relay->Metrics().find("weft_relay_auth_refused_total 1\n") != std::string::npos);
  }
  SECTION("a proof signed by another key than the one in the Hello") {
    testing::FakePeer impostor(crdt::NodeId{0xd2});
    RawPeer p(relay->port());
    sync::HelloMsg h = device.Hello();  // claims the device's key
    h.node = crdt::NodeId{0xd2};
    p.Send(h);
    auto r = p.Read();
    REQUIRE(r);
    auto* rh = std::get_if<sync::HelloMsg>(&*r);
    REQUIRE(rh);
    p.Send(impostor.Auth(*rh));  // but cannot sign as it
    auto e = p.ReadError();
    REQUIRE(e);
    CHECK(e->code == sync::ErrorCode::kUnauthenticated);
    CHECK(relay->Counter("auth_refused_total") == 1);
  }
  SECTION("a Hello without a key") {
    RawPeer p(relay->port());
    sync::HelloMsg h;
    h.node = crdt::NodeId{0xd3};
    p.Send(h);
    auto e = p.ReadError();
    REQUIRE(e);
    CHECK(e->code == sync::ErrorCode::kUnauthenticated);
  }
  SECTION("documents before the Auth") {
    RawPeer p(relay->port());
    testing::FakePeer other(crdt::NodeId{0xd4});
    p.Send(other.Hello());
    REQUIRE(p.Read());
    p.Send(sync::HaveMsg{"d", {}});
    auto e = p.ReadError();
    REQUIRE(e);
    CHECK(e->code == sync::ErrorCode::kUnexpected);
  }
}

TEST_CASE("a client that pins the relay's key refuses an impostor", "[sync][security]") {
  testing::TempDir dir;
  auto relay = StartRelay(dir.File("relay"));
  auto other = StartRelay(dir.File("other"));
  auto a = OpenReplica(dir.File("a.db"));
  Check(a->Transact("d", [](Txn& t) { return t.root().Put("k", Scalar("v")); }).status());
  SyncOptions o = FastOptions();
  o.relay_key = relay->replica().public_key();
  REQUIRE(SyncOnce(*a, Url(*relay), {}, 20s, o).ok());
  // The same pin against a relay with another key (an impostor at that address).
  auto refused = SyncOnce(*a, Url(*other), {}, 3s, o);
  REQUIRE_FALSE(refused.ok());
  INFO(refused.status().ToString());
  CHECK(refused.status().message().find("not the expected") != std::string::npos);
  CHECK_FALSE(other->replica().HasDocument("d"));
}

TEST_CASE("a relay with an admission key admits only devices with its token", "[sync][security]") {
  testing::TempDir dir;
  auto issuer = OpenReplica(dir.File("issuer.db"));  // the app's account server
  auto relay = StartRelay(dir.File("relay"), {},
                          [&](relay::RelayOptions& o) { o.admission_key = issuer->public_key(); });
  auto a = OpenReplica(dir.File("a.db"));
  auto b = OpenReplica(dir.File("b.db"));
  Check(a->Transact("d", [](Txn& t) { return t.root().Put("k", Scalar("v")); }).status());

  SyncOptions o = FastOptions();
  auto none = SyncOnce(*a, Url(*relay), {}, 3s, o);
  REQUIRE_FALSE(none.ok());
  CHECK(none.status().message().find("admission token") != std::string::npos);

  // A token for another device does not admit this one.
  auto for_b = sync::IssueAdmissionToken(*issuer, b->public_key(), sync::UnixNow() + 3600);
  REQUIRE(for_b.ok());
  o.credentials = *for_b;
  REQUIRE_FALSE(SyncOnce(*a, Url(*relay), {}, 3s, o).ok());
  // An expired one neither.
  auto expired = sync::IssueAdmissionToken(*issuer, a->public_key(), sync::UnixNow() - 3600);
  REQUIRE(expired.ok());
  o.credentials = *expired;
  auto old = SyncOnce(*a, Url(*relay), {}, 3s, o);
  REQUIRE_FALSE(old.ok());
  CHECK(old.status().message().find("expired") != std::string::npos);
  // A token signed by the device itself neither.
  auto self_signed = sync::IssueAdmissionToken(*a, a->public_key(), sync::UnixNow() + 3600);
  REQUIRE(self_signed.ok());
  o.credentials = *self_signed;
  REQUIRE_FALSE(SyncOnce(*a, Url(*relay), {}, 3s, o).ok());
  CHECK_FALSE(relay->replica().HasDocument("d"));
  CHECK(relay->Counter("auth_refused_total") >= 4);

  auto good = sync::IssueAdmissionToken(*issuer, a->public_key(), sync::UnixNow() + 3600);
  REQUIRE(good.ok());
  o.credentials = *good;
  REQUIRE(SyncOnce(*a, Url(*relay), {}, 20s, o).ok());
  CHECK(relay->replica().HasDocument("d"));
}

namespace {

// A device whose documents are owned by its key (the default outside these tests).
std::unique_ptr<Replica> OpenPrivate(const std::string& path) {
  auto r = Replica::Open(path);
  REQUIRE(r.ok());
  return std::move(*r);
}

std::string KeyBytes(const PublicKey& key) {
  return std::string(reinterpret_cast<const char*>(key.bytes().data()), PublicKey::kSize);
}

// A change of `doc` made by hand: by `author` from `seq` on, on top of everything `holder` holds,
// setting "entry" to `value`; first binding `author` to `bind_as`'s key (signed by it) when given.
std::string HandmadeChange(Replica& holder, const std::string& doc, crdt::NodeId author,
                           uint64_t seq, const testing::FakePeer* bind_as,
                           const std::string& value) {
  crdt::Change c;
  c.author = author;
  c.start_seq = seq;
  REQUIRE(holder
              .Read(doc,
                    [&](const View& v) {
                      c.deps = v.document().heads();
                      c.lamport = v.document().lamport() + 1;
                    })
              .ok());
  c.deps.Set(author, 0);
  c.time = crdt::HlcTimestamp{static_cast<uint64_t>(sync::UnixNow()) * 1000, 0};
  if (bind_as) {
    crdt::Op bind;
    bind.type = crdt::Op::Type::kAccess;
    bind.action = crdt::AccessAction::kBind;
    bind.principal = KeyBytes(bind_as->key());
    bind.proof = bind_as->Sign(kBindPurpose, BindingMessage(doc, author, bind.principal));
    c.ops.push_back(bind);
  }
  crdt::Op put;
  put.type = crdt::Op::Type::kMapSet;
  put.key = "entry";
  put.scalar = crdt::Scalar(value);
  c.ops.push_back(put);
  // Signed by the key it binds to (an owned document's changes carry their author's signature).
  if (bind_as) c.signature = bind_as->Sign(kChangePurpose, ChangeMessage(doc, c));
  return crdt::EncodeChange(c);
}

// The handshake as `fake`, then `doc`'s Have and a batch of `change`: the relay's Error, or
// nullopt when it acknowledged the change (stored it).
std::optional<sync::ErrorMsg> SendAs(RawPeer& p, const testing::FakePeer& fake,
                                     const std::string& doc, const std::string& change) {
  p.Send(fake.Hello());
  auto reply = p.Read();
  REQUIRE(reply);
  auto* hello = std::get_if<sync::HelloMsg>(&*reply);
  REQUIRE(hello);
  p.Send(fake.Auth(*hello));
  p.Send(sync::HaveMsg{doc, {}});
  sync::ChangesMsg m;
  m.doc = doc;
  m.changes = {change};
  m.path = {fake.node()};
  p.Send(m);
  // An Error refuses the change; an Ack means the relay stored it.
  while (auto r = p.Read()) {
    if (auto* e = std::get_if<sync::ErrorMsg>(&*r)) return *e;
    if (std::holds_alternative<sync::AckMsg>(*r)) return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace

TEST_CASE("a forged author, a reader's write and a stranger's write are refused everywhere",
          "[sync][security]") {
  testing::TempDir dir;
  auto relay = StartRelay(dir.File("relay"));
  auto owner = OpenPrivate(dir.File("owner.db"));
  Check(owner->Transact("diary", [](Txn& t) { return t.root().Put("entry", Scalar("mine")); })
            .status());
  testing::FakePeer reader(crdt::NodeId{0xeade7});
  testing::FakePeer writer(crdt::NodeId{0x1717e7});
  Check(owner->Grant("diary", reader.key(), Role::kReader).status());
  Check(owner->Grant("diary", writer.key(), Role::kWriter).status());
  REQUIRE(SyncOnce(*owner, Url(*relay), {}, 20s, FastOptions()).ok());
  const std::string before = State(relay->replica(), "diary");

  SECTION("a writer sends a change under the owner's author") {
    RawPeer p(relay->port());
    uint64_t next = relay->replica().Version("diary")->Get(owner->actor_id()) + 1;
    auto e = SendAs(p, writer, "diary",
                    HandmadeChange(relay->replica(), "diary", owner->actor_id(), next, nullptr,
                                   "forged as the owner"));
    REQUIRE(e);
    CHECK(e->code == sync::ErrorCode::kPermissionDenied);
    CHECK(e->message.find("another author") != std::string::npos);
    CHECK(relay->Counter("writes_denied_total") == 1);
    CHECK(State(relay->replica(), "diary") == before);
  }
  SECTION("a writer binds its author to the owner's key without the owner's signature") {
    RawPeer p(relay->port());
    testing::FakePeer pretender(crdt::NodeId{0x9e7});
    auto change = HandmadeChange(relay->replica(), "diary", writer.node(), 1, &pretender, "x");
    // The binding names the writer's key but is signed by another: swap the principal.
    auto decoded = crdt::DecodeChange(change);
    REQUIRE(decoded.ok());
    decoded->ops[0].principal = KeyBytes(owner->public_key());
    auto e = SendAs(p, writer, "diary", crdt::EncodeChange(*decoded));
    REQUIRE(e);
    CHECK(e->code == sync::ErrorCode::kPermissionDenied);
    CHECK(e->message.find("not signed by that key") != std::string::npos);
    CHECK(State(relay->replica(), "diary") == before);
  }
  SECTION("a reader writes: the relay refuses, and so does a device it reaches another way") {
    auto change = HandmadeChange(relay->replica(), "diary", reader.node(), 1, &reader, "defaced");
    RawPeer p(relay->port());
    auto e = SendAs(p, reader, "diary", change);
    REQUIRE(e);
    CHECK(e->code == sync::ErrorCode::kPermissionDenied);
    CHECK(e->message.find("reader") != std::string::npos);
    CHECK(State(relay->replica(), "diary") == before);
    // A malicious relay forwarding it: the owner's device checks it too.
    auto direct = owner->ApplyRemoteChanges("diary", {change});
    REQUIRE_FALSE(direct.ok());
    CHECK(direct.status().code() == StatusCode::kPermissionDenied);
    // Nor may it store a change that only binds its author: the list would grow for good.
    auto bind_only = crdt::DecodeChange(change);
    REQUIRE(bind_only.ok());
    bind_only->ops.pop_back();
    bind_only->signature = reader.Sign(kChangePurpose, ChangeMessage("diary", *bind_only));
    RawPeer q(relay->port());
    e = SendAs(q, reader, "diary", crdt::EncodeChange(*bind_only));
    REQUIRE(e);
    CHECK(e->code == sync::ErrorCode::kPermissionDenied);
    CHECK(e->message.find("reader") != std::string::npos);
    CHECK(State(relay->replica(), "diary") == before);
    CHECK(owner->ApplyRemoteChanges("diary", {crdt::EncodeChange(*bind_only)}).status().code() ==
          StatusCode::kPermissionDenied);
  }
  SECTION("a writer's change altered after it was signed") {
    auto change = crdt::DecodeChange(
        HandmadeChange(relay->replica(), "diary", writer.node(), 1, &writer, "ok"));
    REQUIRE(change.ok());
    change->ops.back().scalar = crdt::Scalar(std::string("altered"));
    RawPeer p(relay->port());
    auto e = SendAs(p, writer, "diary", crdt::EncodeChange(*change));
    REQUIRE(e);
    CHECK(e->code == sync::ErrorCode::kPermissionDenied);
    CHECK(e->message.find("signature") != std::string::npos);
    CHECK(relay->Counter("signatures_refused_total") == 1);
    CHECK(State(relay->replica(), "diary") == before);
  }
  SECTION("a writer signs two different changes at one seq") {
    {
      RawPeer p(relay->port());
      REQUIRE_FALSE(SendAs(
          p, writer, "diary",
          HandmadeChange(relay->replica(), "diary", writer.node(), 1, &writer, "one history")));
    }
    const std::string first = State(relay->replica(), "diary");
    REQUIRE(first != before);
    RawPeer p(relay->port());
    // Made on the state before the first, as a copy of the writer's database would.
    (void)SendAs(p, writer, "diary",
                 HandmadeChange(*owner, "diary", writer.node(), 1, &writer, "another history"));
    REQUIRE(Eventually([&] { return relay->Counter("equivocations_total") == 1; }));
    CHECK(State(relay->replica(), "diary") == first);
    auto found = relay->replica().Equivocations();
    REQUIRE(found.ok());
    REQUIRE(found->size() == 1);
    CHECK(found->front().key == writer.key());
  }
  SECTION("a writer writes") {
    RawPeer p(relay->port());
    p.Send(writer.Hello());
    auto reply = p.Read();
    REQUIRE(reply);
    p.Send(writer.Auth(std::get<sync::HelloMsg>(*reply)));
    p.Send(sync::HaveMsg{"diary", {}});
    sync::ChangesMsg m;
    m.doc = "diary";
    m.changes = {HandmadeChange(relay->replica(), "diary", writer.node(), 1, &writer, "ok")};
    m.path = {writer.node()};
    p.Send(m);
    REQUIRE(Eventually([&] { return State(relay->replica(), "diary") != before; }));
    CHECK(relay->Counter("writes_denied_total") == 0);
  }
}

TEST_CASE("a connected device gets a document as soon as it is granted, and loses it when revoked",
          "[sync][security]") {
  testing::TempDir dir;
  auto relay = StartRelay(dir.File("relay"));
  auto owner = OpenPrivate(dir.File("owner.db"));
  auto member = OpenPrivate(dir.File("member.db"));
  auto client = SyncClient::Create(*member, FastOptions());
  REQUIRE(client.ok());
  Check((*client)->AddPeer(Url(*relay)));
  REQUIRE((*client)->WaitUntilSynced(Url(*relay), 20s).ok());
  // Created and synced while the member has no role: it is not offered the document (nor told
  // of it: its sync is not refused).
  Check(
      owner->Transact("plan", [](Txn& t) { return t.root().Put("step", Scalar("one")); }).status());
  REQUIRE(SyncOnce(*owner, Url(*relay), {}, 20s, FastOptions()).ok());
  std::this_thread::sleep_for(200ms);
  CHECK_FALSE(member->HasDocument("plan"));
  REQUIRE((*client)->WaitUntilSynced(Url(*relay), 20s).ok());
  // Granted: the live session gets it without reconnecting.
  Check(owner->Grant("plan", member->public_key(), Role::kReader).status());
  REQUIRE(SyncOnce(*owner, Url(*relay), {}, 20s, FastOptions()).ok());
  REQUIRE(Eventually([&] {
    return member->HasDocument("plan") && State(*member, "plan") == State(*owner, "plan");
  }));
  // Revoked: later changes do not reach it.
  Check(owner->Revoke("plan", member->public_key()).status());
  Check(
      owner->Transact("plan", [](Txn& t) { return t.root().Put("step", Scalar("two")); }).status());
  REQUIRE(SyncOnce(*owner, Url(*relay), {}, 20s, FastOptions()).ok());
  REQUIRE(Eventually([&] { return relay->Counter("reads_denied_total") >= 1; }));
  std::this_thread::sleep_for(200ms);
  std::string seen;
  REQUIRE(member->Read("plan", [&](const View& v) { seen = v.ToJson(); }).ok());
  CHECK(seen.find("two") == std::string::npos);
}

TEST_CASE("a new device takes an owned document's snapshot only as its owner sealed it",
          "[sync][security]") {
  testing::TempDir dir;
  auto relay = StartRelay(dir.File("relay"));
  auto owner = OpenPrivate(dir.File("owner.db"));
  auto member = OpenPrivate(dir.File("member.db"));
  // Enough seqs for the relay to offer a snapshot (300 changes) and for the owner to seal.
  for (int i = 0; i < 300; ++i) {
    Check(owner
              ->Transact("notes",
                         [&](Txn& t) { return t.root().Put("k" + std::to_string(i % 7), i); })
              .status());
  }
  Check(owner->Grant("notes", member->public_key(), Role::kReader).status());

  SECTION("sealed: a snapshot, checked against the seal") {
    REQUIRE(SyncOnce(*owner, Url(*relay), {}, 20s, FastOptions()).ok());
    // The owner sealed its state once the relay acknowledged all of it.
    REQUIRE(Eventually([&] { return relay->replica().SealedSnapshot("notes").ok(); }));
    auto sealed = relay->replica().SealedSnapshot("notes");
    REQUIRE(sealed->seal);
    CHECK(sealed->seal->key == owner->public_key());
    CHECK(sealed->version == *owner->Version("notes"));
    auto client = SyncClient::Create(*member, FastOptions());
    REQUIRE(client.ok());
    Check((*client)->AddPeer(Url(*relay)));
    REQUIRE((*client)->WaitUntilSynced(Url(*relay), 30s).ok());
    CHECK(State(*member, "notes") == State(*owner, "notes"));
    auto st = DocStatus(**client, "notes");
    REQUIRE(st);
    CHECK(st->snapshots_received == 1);
    CHECK(st->changes_received == 0);
    // The member keeps the seal with it.
    CHECK(member->SealedSnapshot("notes").ok());
    (*client)->Stop();
  }
  SECTION("not sealed: the log, every change checked") {
    SyncOptions no_seal = FastOptions();
    no_seal.seal_min_seqs = 0;
    REQUIRE(SyncOnce(*owner, Url(*relay), {}, 20s, no_seal).ok());
    CHECK(relay->replica().SealedSnapshot("notes").status().code() == StatusCode::kNotFound);
    auto client = SyncClient::Create(*member, FastOptions());
    REQUIRE(client.ok());
    Check((*client)->AddPeer(Url(*relay)));
    REQUIRE((*client)->WaitUntilSynced(Url(*relay), 30s).ok());
    CHECK(State(*member, "notes") == State(*owner, "notes"));
    auto st = DocStatus(**client, "notes");
    REQUIRE(st);
    CHECK(st->snapshots_received == 0);
    CHECK(st->changes_received > 0);
    (*client)->Stop();
  }
}

TEST_CASE("a device refused a document it named gets it as soon as it is granted",
          "[sync][security]") {
  testing::TempDir dir;
  auto relay = StartRelay(dir.File("relay"));
  auto owner = OpenPrivate(dir.File("owner.db"));
  auto member = OpenPrivate(dir.File("member.db"));
  Check(
      owner->Transact("plan", [](Txn& t) { return t.root().Put("step", Scalar("one")); }).status());
  REQUIRE(SyncOnce(*owner, Url(*relay), {}, 20s, FastOptions()).ok());
  // The member names the document: the relay refuses it, the member holds nothing.
  SyncOptions o = FastOptions();
  o.documents = {"plan"};
  o.anti_entropy_interval = 120s;  // the grant must not wait for a repair round
  auto client = SyncClient::Create(*member, o);
  REQUIRE(client.ok());
  Check((*client)->AddPeer(Url(*relay)));
  auto synced = (*client)->WaitUntilSynced(Url(*relay), 20s);
  REQUIRE_FALSE(synced.ok());
  CHECK(synced.status().code() == StatusCode::kPermissionDenied);
  CHECK_FALSE(member->HasDocument("plan"));
  // Granted: the relay offers it again, the member announces what it holds again (the relay
  // dropped its first announcement when it refused it), and the document arrives.
  Check(owner->Grant("plan", member->public_key(), Role::kWriter).status());
  REQUIRE(SyncOnce(*owner, Url(*relay), {}, 20s, FastOptions()).ok());
  REQUIRE(Eventually([&] { return State(*member, "plan") == State(*owner, "plan"); }, 10s));
  // Its writes reach the owner.
  Check(member->Transact("plan", [](Txn& t) { return t.root().Put("step", Scalar("two")); })
            .status());
  REQUIRE(Eventually(
      [&] {
        REQUIRE(SyncOnce(*owner, Url(*relay), {}, 20s, FastOptions()).ok());
        return State(*member, "plan") == State(*owner, "plan");
      },
      10s));
}

TEST_CASE("a quorum of relays: synced and acknowledged by W of N, or a timeout naming the rest",
          "[sync][quorum]") {
  testing::TempDir dir;
  std::vector<std::unique_ptr<relay::Relay>> relays;
  std::vector<std::string> urls;
  for (int i = 0; i < 3; ++i) {
    relays.push_back(StartRelay(dir.File("relay" + std::to_string(i))));
    urls.push_back(Url(*relays.back()));
  }
  auto a = OpenReplica(dir.File("a.db"));
  auto info = a->Transact("q", [](Txn& t) { return t.root().Put("k", Scalar(int64_t{1})); });
  REQUIRE(info.ok());

  SECTION("W of N in one sync, with one relay down") {
    relays[2]->Stop();
    auto r = SyncOnce(*a, urls, 2, {}, 20s, FastOptions());
    INFO(r.status().ToString());
    REQUIRE(r.ok());
    CHECK(r->changes_sent == 2);  // the change, to each of the two relays up
    // Each of the two holds it: a new device reads it from either alone.
    for (int i = 0; i < 2; ++i) {
      auto b = OpenReplica(dir.File("b" + std::to_string(i) + ".db"));
      REQUIRE(SyncOnce(*b, urls[static_cast<size_t>(i)], {}, 20s, FastOptions()).ok());
      CHECK(State(*b, "q") == State(*a, "q"));
    }
  }
  SECTION("two relays down: the quorum of two times out, naming both") {
    relays[1]->Stop();
    relays[2]->Stop();
    auto r = SyncOnce(*a, urls, 2, {}, 1500ms, FastOptions());
    REQUIRE(r.status().code() == StatusCode::kTimeout);
    CHECK(r.status().message().find("1 of 3 peers synced, 2 needed") != std::string::npos);
    CHECK(r.status().message().find(urls[1]) != std::string::npos);
    CHECK(r.status().message().find(urls[2]) != std::string::npos);
    // A quorum of one is still met.
    CHECK(SyncOnce(*a, urls, 1, {}, 20s, FastOptions()).ok());
  }
  SECTION("an app waits until its change is stored on W relays") {
    relays[2]->Stop();
    auto c = SyncClient::Create(*a, FastOptions());
    REQUIRE(c.ok());
    for (const auto& u : urls) Check((*c)->AddPeer(u));
    Check((*c)->WaitForAcks("q", info->version, 2, 20s));
    auto more = a->Transact("q", [](Txn& t) { return t.root().Put("k", Scalar(int64_t{2})); });
    REQUIRE(more.ok());
    Check((*c)->WaitForAcks("q", more->version, 2, 20s));
    Status three = (*c)->WaitForAcks("q", more->version, 3, 500ms);
    CHECK(three.code() == StatusCode::kTimeout);
    CHECK(three.message().find("2 of 3") != std::string::npos);
    CHECK((*c)->WaitForAcks("q", more->version, 4, 10ms).code() == StatusCode::kInvalidArgument);
    CHECK((*c)->WaitForAcks("q", more->version, 0, 10ms).code() == StatusCode::kInvalidArgument);
    // A relay that acknowledged stays counted after it went away.
    relays[0]->Stop();
    Check((*c)->WaitForAcks("q", more->version, 2, 1s));
    (*c)->Stop();
  }
  SECTION("bad quorums are refused before connecting") {
    CHECK(SyncOnce(*a, urls, 0, {}, 1s).status().code() == StatusCode::kInvalidArgument);
    CHECK(SyncOnce(*a, urls, 4, {}, 1s).status().code() == StatusCode::kInvalidArgument);
  }
  for (auto& r : relays) r->Stop();
}

TEST_CASE("failover: devices with two relays go on through one when the other dies, and return",
          "[sync][quorum]") {
  testing::TempDir dir;
  auto r1 = StartRelay(dir.File("r1"));
  auto r2 = StartRelay(dir.File("r2"));  // not peered: only the devices join them
  const uint16_t port1 = r1->port();
  const std::string u1 = Url(*r1), u2 = Url(*r2);
  auto a = OpenReplica(dir.File("a.db"));
  auto b = OpenReplica(dir.File("b.db"));
  auto ca = SyncClient::Create(*a, FastOptions());
  auto cb = SyncClient::Create(*b, FastOptions());
  REQUIRE(ca.ok());
  REQUIRE(cb.ok());
  for (const auto& u : {u1, u2}) {
    Check((*ca)->AddPeer(u));
    Check((*cb)->AddPeer(u));
  }
  auto first = a->Transact("f", [](Txn& t) { return t.root().Put("k", Scalar(int64_t{1})); });
  REQUIRE(first.ok());
  Check((*ca)->WaitForAcks("f", first->version, 2, 20s));

  r1->Stop();
  r1.reset();
  auto later = a->Transact("f", [](Txn& t) { return t.root().Put("k", Scalar(int64_t{2})); });
  REQUIRE(later.ok());
  Check((*ca)->WaitForAck("f", later->version, 20s, u2));
  Check(b->WaitFor(EncodeCausalToken("f", later->version), 20s));

  // r1 comes back on its store and port: a's client reconnects and sends what r1 lacks.
  r1 = StartRelay(dir.File("r1"), {}, [&](relay::RelayOptions& o) { o.listen_port = port1; });
  Check((*ca)->WaitForAck("f", later->version, 20s, u1));
  auto c = OpenReplica(dir.File("c.db"));
  REQUIRE(SyncOnce(*c, u1, {}, 20s, FastOptions()).ok());
  CHECK(State(*c, "f") == State(*a, "f"));
  (*ca)->Stop();
  (*cb)->Stop();
  r1->Stop();
  r2->Stop();
}
