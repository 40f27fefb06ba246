#include "sim.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "e2e_doc.h"
#include "identity_internal.h"
#include "replica_store.h"
#include "sqlite_store.h"

namespace weft::sim {

namespace {

std::string Hex(const std::string& bytes) {
  static const char* k = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes.substr(0, 16)) {
    out += k[c >> 4];
    out += k[c & 15];
  }
  return out;
}

// How a relay refuses a change a device forwarded from another author (replica.cpp).
constexpr const char* kOnlyOwn = "a device sends only its own changes";

}  // namespace

Sim::Sim(uint64_t seed, SimOptions options) : rng_(seed), options_(std::move(options)) {
  int n = options_.devices + options_.relays;
  nodes_.resize(n);
  if (options_.shared_store_relays > 0) shared_storage_ = store::NewMemoryStorage();
  for (int i = 0; i < n; ++i) {
    Node& node = nodes_[i];
    node.relay = i >= options_.devices;
    node.shared = i >= n - options_.shared_store_relays;
    node.name =
        node.relay ? "relay" + std::to_string(i - options_.devices) : "device" + std::to_string(i);
    node.path = dir_.path() + "/" + node.name + ".db";
    node.skew_ms = rng_.Range(-options_.max_skew_ms, options_.max_skew_ms);
    Open(i);
  }
  if (!options_.e2e_document.empty()) {
    const std::string& doc = options_.e2e_document;
    auto must = [&](const std::string& what, const Status& st) {
      if (!st.ok()) report_.problems.push_back("setup: " + what + ": " + st.ToString());
    };
    if (options_.devices < 5) report_.problems.push_back("setup: e2e_document needs 5 devices");
    for (int i = 0; i < 3; ++i) {
      SecretKey k;
      auto pk = k.Generate();
      if (pk.ok()) outsiders_.push_back(*pk);
    }
    // Device 0 opens once making owned documents, for this one (the plain ones stay public).
    owned_node_ = 0;
    CloseNode(0);
    Open(0);
    must("create", replica(0).CreateEncryptedDocument(doc));
    must("grant admin", Rotate(0, true, replica(1).public_key(), Role::kAdmin).status());
    must("grant writer", Rotate(0, true, replica(2).public_key(), Role::kWriter).status());
    must("grant reader", Rotate(0, true, replica(3).public_key(), Role::kReader).status());
    owned_node_ = -1;
    CloseNode(0);
    Open(0);
  }
  // Start connected: every device to a relay, relays all-to-all.
  if (options_.connect_at_start) Heal();
  // The encrypted document reaches its members before the run (the run then races rotations).
  if (options_.connect_at_start && !options_.e2e_document.empty()) DeliverAll();
}

Sim::~Sim() {
  while (!conns_.empty()) Drop(conns_.begin()->first);
  for (size_t i = 0; i < nodes_.size(); ++i) CloseNode(static_cast<int>(i));
}

uint64_t Sim::Now(int node) const {
  return static_cast<uint64_t>(static_cast<int64_t>(now_ms_) + nodes_[node].skew_ms);
}

void Sim::Open(int i) {
  Node& node = nodes_[i];
  ReplicaOptions o;
  o.clock = [this, i] { return Now(i); };
  o.new_node_id = NodeId{0x100u + static_cast<uint64_t>(i)};
  o.new_actor = NodeId{rng_.Next() | (uint64_t{1} << 63)};  // never one of the node IDs
  if (auto it = actor_override_.find(i); it != actor_override_.end()) o.session_actor = it->second;
  o.snapshot_every = 16;  // exercise snapshots and reopening from them
  o.check_drift = false;  // clocks here are off by up to a day on purpose
  // Every node writes every document: public ones (access lists have their own tests).
  o.public_documents = i != owned_node_;
  Result<std::unique_ptr<Replica>> r = Status::Ok();
  if (node.shared) {
    o.follow_in_background = false;  // Follow does it, on this thread
    auto st = store::OpenMemoryStore(shared_storage_, o.new_node_id, node.name);
    r = st.ok() ? OpenReplica(std::move(*st), o) : Result<std::unique_ptr<Replica>>(st.status());
  } else {
    r = Replica::Open(node.path, o);
  }
  if (!r.ok()) {
    report_.problems.push_back(node.name + ": reopen failed: " + r.status().ToString());
    node.up = false;
    return;
  }
  node.replica = std::move(*r);
  node.hub = std::make_unique<sync::Hub>(*node.replica);
  node.up = true;
}

void Sim::ReopenWithActor(int node, crdt::NodeId actor) {
  actor_override_[node] = actor;
  Crash(node);
}

uint64_t Sim::Divergences(int node) const {
  return nodes_[node].hub ? nodes_[node].hub->counters().divergences.load() : 0;
}

uint64_t Sim::ForwardRefusals(sync::Hub& hub) const {
  const auto& c = hub.counters();
  uint64_t n = c.reads_denied.load() + c.denials_received.load();
  // In an owned document a device may send only its own changes: a relay refuses one it
  // forwards from another author (the change arrives from its author or a relay instead). Only
  // the encrypted document is owned here, and nobody in it may lose write access: a refusal
  // that lost a change shows as a change missing somewhere.
  if (!options_.e2e_document.empty()) n += c.writes_denied.load();
  return n;
}

void Sim::CloseNode(int i) {
  Node& node = nodes_[i];
  if (node.hub) {
    stops_ += node.hub->counters().documents_stopped.load();
    denials_ += ForwardRefusals(*node.hub);
  }
  node.hub.reset();
  node.replica.reset();
  node.up = false;
}

Sim::Conn* Sim::Find(int a, int b) {
  for (auto& [id, c] : conns_) {
    if ((c->dialer.node == a && c->acceptor.node == b) ||
        (c->dialer.node == b && c->acceptor.node == a)) {
      return c.get();
    }
  }
  return nullptr;
}

bool Sim::Reachable(int a, int b) const {
  if (!nodes_[a].up || !nodes_[b].up) return false;
  return !partitioned_.count(a) && !partitioned_.count(b);
}

void Sim::Connect(int a, int b) {
  if (a == b || Find(a, b) || !Reachable(a, b) || !nodes_[b].relay) return;
  if (nodes_[a].shared && nodes_[b].shared) return;  // they share a store instead
  auto c = std::make_unique<Conn>();
  c->id = next_conn_++;
  c->dialer.node = a;
  c->acceptor.node = b;
  uint64_t id = c->id;
  auto make = [&](End& self, End& other, bool dialer) {
    sync::LinkConfig config;
    config.dialer = dialer;
    config.relay = nodes_[self.node].relay;
    config.all_documents = dialer;
    if (!options_.e2e_document.empty() && config.relay) {
      // Relays forward each other's changes of owned documents (as weft-relay's peers option).
      for (int r = 0; r < options_.relays; ++r) {
        if (nodes_[relay(r)].replica) config.trusted.insert(nodes_[relay(r)].replica->public_key());
      }
    }
    if (dialer) config.ack_key = "sim:" + nodes_[other.node].name;
    sync::LinkTransport t;
    End* to = &other;
    t.send = [to](std::string frame) { to->inbox.push_back(std::move(frame)); };
    t.close = [this, id](uint16_t, std::string) { closing_.insert(id); };
    t.queued = [to] { return to->inbox.size(); };
    self.link = std::make_unique<sync::Link>(*nodes_[self.node].hub, config, std::move(t));
    self.listener = nodes_[self.node].hub->AddListener([this, id, dialer](const sync::HubEvent& e) {
      events_.push_back(Event{id, dialer, e});
    });
    self.link->set_listener_id(self.listener);
  };
  make(c->dialer, c->acceptor, true);
  make(c->acceptor, c->dialer, false);
  Conn* raw = c.get();
  conns_[id] = std::move(c);
  raw->dialer.link->Start();
  raw->acceptor.link->Start();
}

void Sim::Drop(uint64_t conn_id) {
  auto it = conns_.find(conn_id);
  if (it == conns_.end()) return;
  std::unique_ptr<Conn> c = std::move(it->second);
  conns_.erase(it);
  report_.drops++;
  for (End* e : {&c->dialer, &c->acceptor}) {
    NoteStopped(*e, &report_);
    e->link->OnClosed("dropped by the simulated network");
    if (nodes_[e->node].hub) nodes_[e->node].hub->RemoveListener(e->listener);
  }
}

void Sim::NoteStopped(const End& e, SimReport* report) const {
  // Nothing in the simulation damages a log or forges a change: a stopped document is a bug.
  for (const auto& [doc, d] : e.link->Documents()) {
    // A denied read is the access list at work; so is a relay refusing another author's change
    // from a device (devices forward what they hold; see ForwardRefusals).
    if (!d.stopped.empty() && !d.denied && d.stopped.find(kOnlyOwn) == std::string::npos) {
      report->problems.push_back(nodes_[e.node].name + " stopped document " + doc + ": " +
                                 d.stopped);
    }
  }
}

void Sim::Disconnect(int a, int b) {
  if (Conn* c = Find(a, b)) Drop(c->id);
}

void Sim::ProcessCloses() {
  while (!closing_.empty()) {
    uint64_t id = *closing_.begin();
    closing_.erase(closing_.begin());
    auto it = conns_.find(id);
    if (it == conns_.end()) continue;
    for (End* e : {&it->second->dialer, &it->second->acceptor}) {
      std::string err = e->link->last_error();
      if (!err.empty()) {
        report_.problems.push_back(nodes_[e->node].name + " closed a link: " + err);
      }
    }
    Drop(id);
  }
}

bool Sim::DeliverOne(Conn& c, bool to_dialer) {
  End& dst = to_dialer ? c.dialer : c.acceptor;
  if (dst.inbox.empty()) return false;
  std::string frame = std::move(dst.inbox.front());
  dst.inbox.pop_front();
  report_.frames++;
  static const bool trace = std::getenv("WEFT_SIM_TRACE") != nullptr;
  if (trace) {
    End& src = to_dialer ? c.acceptor : c.dialer;
    auto m = sync::Decode(frame);
    std::string what = m.ok() ? sync::MessageName(*m) : "bad frame";
    if (m.ok()) {
      if (auto* ch = std::get_if<sync::ChangesMsg>(&*m)) {
        what += " " + ch->doc + " [";
        for (auto& b : ch->changes) {
          auto cc = crdt::DecodeChange(b);
          if (cc.ok()) {
            what += cc->id().ToString().substr(12) + "-" + std::to_string(cc->end_seq()) + " ";
          } else {
            what += "(undecodable, " + std::to_string(b.size()) + " bytes: " + Hex(b) + ") ";
          }
        }
        what += "]";
      } else if (auto* h = std::get_if<sync::HaveMsg>(&*m)) {
        what += " " + h->doc + " " + h->version.ToString();
      } else if (auto* a = std::get_if<sync::AckMsg>(&*m)) {
        what += " " + a->doc + " " + a->version.ToString();
      }
    }
    std::fprintf(stderr, "  %s -> %s: %s\n", nodes_[src.node].name.c_str(),
                 nodes_[dst.node].name.c_str(), what.c_str());
  }
  uint64_t id = c.id;
  dst.link->OnFrame(frame);
  if (conns_.count(id)) {
    c.dialer.link->OnWritable();
    c.acceptor.link->OnWritable();
  }
  ProcessCloses();
  return true;
}

void Sim::DeliverFrom(int from, int to) {
  Conn* c = Find(from, to);
  if (!c) return;
  bool to_dialer = c->dialer.node == to;
  size_t n = (to_dialer ? c->dialer : c->acceptor).inbox.size();
  for (size_t i = 0; i < n; ++i) {
    c = Find(from, to);
    if (!c || !DeliverOne(*c, to_dialer)) break;
  }
}

size_t Sim::InFlight(int from, int to) const {
  for (const auto& [id, c] : conns_) {
    if (c->dialer.node == from && c->acceptor.node == to) return c->acceptor.inbox.size();
    if (c->acceptor.node == from && c->dialer.node == to) return c->dialer.inbox.size();
  }
  return 0;
}

bool Sim::RunEvents() {
  bool any = false;
  while (!events_.empty()) {
    Event ev = std::move(events_.front());
    events_.pop_front();
    auto it = conns_.find(ev.conn);
    if (it == conns_.end()) continue;
    any = true;
    Conn& c = *it->second;
    (ev.to_dialer ? c.dialer : c.acceptor).link->OnEvent(ev.event);
    if (conns_.count(ev.conn)) {
      c.dialer.link->OnWritable();
      c.acceptor.link->OnWritable();
    }
    ProcessCloses();
  }
  return any;
}

void Sim::DeliverAll() {
  for (int round = 0; round < 100000; ++round) {
    bool moved = RunEvents();
    std::vector<uint64_t> ids;
    for (const auto& [id, c] : conns_) ids.push_back(id);
    for (uint64_t id : ids) {
      for (bool to_dialer : {false, true}) {
        auto it = conns_.find(id);
        if (it != conns_.end()) moved |= DeliverOne(*it->second, to_dialer);
      }
    }
    if (!moved) return;
  }
  report_.problems.push_back("the network did not go quiet after 100000 rounds");
}

Result<CommitInfo> Sim::Edit(int node, const std::string& doc,
                             const std::function<Status(Txn&)>& body) {
  if (!nodes_[node].up) return Status::Aborted(nodes_[node].name + " is down");
  auto info = nodes_[node].replica->Transact(doc, body);
  if (info.ok() && info->changed) {
    report_.commits++;
    committed_.emplace_back(doc, info->change.node, info->version.Get(info->change.node));
  }
  return info;
}

std::string Sim::RandomText() {
  static const char* kPieces[] = {"a", "b", "xy", "é", "ß", "€", "😀", " "};
  std::string s;
  int n = static_cast<int>(rng_.Range(1, 3));
  for (int i = 0; i < n; ++i) s += kPieces[rng_.Below(std::size(kPieces))];
  return s;
}

void Sim::Crash(int node) {
  std::vector<uint64_t> ids;
  for (const auto& [id, c] : conns_) {
    if (c->dialer.node == node || c->acceptor.node == node) ids.push_back(id);
  }
  for (uint64_t id : ids) Drop(id);
  CloseNode(node);
  report_.crashes++;
  Open(node);
}

std::string Sim::CopyDatabase(int node) {
  // A backup as an app would take it: with the database closed (WAL checkpointed into it).
  Crash(node);
  std::ifstream in(nodes_[node].path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void Sim::RestoreDatabase(int node, const std::string& bytes) {
  std::vector<uint64_t> ids;
  for (const auto& [id, c] : conns_) {
    if (c->dialer.node == node || c->acceptor.node == node) ids.push_back(id);
  }
  for (uint64_t id : ids) Drop(id);
  CloseNode(node);
  std::error_code ec;
  std::filesystem::remove(nodes_[node].path + "-wal", ec);
  std::filesystem::remove(nodes_[node].path + "-shm", ec);
  std::ofstream out(nodes_[node].path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  Open(node);
}

std::string Sim::State(int node, const std::string& doc) {
  if (!nodes_[node].up) return "(down)";
  std::string out;
  Status s = nodes_[node].replica->Read(doc, [&](const View& v) { out = v.CanonicalState(); });
  if (s.code() == StatusCode::kNotFound) return "(absent)";
  if (!s.ok()) return "(error: " + s.ToString() + ")";
  return out;
}

std::string Sim::Step() {
  now_ms_ += rng_.Below(40);
  const int n = static_cast<int>(nodes_.size());
  const uint64_t roll = rng_.Below(100);
  if (roll < 30) {  // a local edit on a device
    int d = static_cast<int>(rng_.Below(options_.devices));
    std::string doc = options_.documents[rng_.Below(options_.documents.size())];
    if (!options_.e2e_document.empty() && rng_.Chance(40)) {
      // Only where it arrived: an edit elsewhere would create a public document of that name.
      if (!nodes_[d].up || !replica(d).HasDocument(options_.e2e_document)) return "no vault";
      if (d < 2 && rng_.Chance(50)) return AdminStep(d);
      doc = options_.e2e_document;
    }
    uint64_t kind = rng_.Below(8);
    std::string key = "k" + std::to_string(rng_.Below(3));
    int64_t number = static_cast<int64_t>(rng_.Below(1000));
    std::string text = RandomText();
    uint64_t r1 = rng_.Next(), r2 = rng_.Next();
    auto info = Edit(d, doc, [&](Txn& t) -> Status {
      MapRef root = t.root();
      switch (kind) {
        case 0: return root.Put(key, Scalar(number));
        case 1: return root.Delete(key);
        case 2: {
          auto c = root.Counter("count");
          return c.ok() ? c->Increment(static_cast<int64_t>(r1 % 7) - 2) : c.status();
        }
        case 3: {
          auto s = root.Set("tags");
          if (!s.ok()) return s.status();
          Scalar e("t" + std::to_string(r1 % 4));
          return r2 % 3 == 0 ? s->Remove(e) : s->Add(e);
        }
        case 4: {
          auto tx = root.Text("text");
          if (!tx.ok()) return tx.status();
          auto size = tx->Size();
          if (!size.ok()) return size.status();
          if (r2 % 3 == 0 && *size > 0) {
            size_t pos = r1 % *size;
            return tx->Delete(pos, std::min<size_t>(1 + r2 % 3, *size - pos));
          }
          return tx->Insert(r1 % (*size + 1), text);
        }
        case 5: {  // create, delete and re-create a nested map under the same key
          if (r2 % 3 == 0) return root.Delete("nested");
          auto m = root.Map("nested");
          return m.ok() ? m->Put(key, Scalar(number)) : m.status();
        }
        case 6: {
          auto l = root.List("list");
          if (!l.ok()) return l.status();
          auto size = l->Size();
          if (!size.ok()) return size.status();
          if (r2 % 3 == 0 && *size > 0) return l->Delete(r1 % *size, 1);
          return l->Insert(r1 % (*size + 1), {Scalar(number)});
        }
        default: {
          auto reg = root.Register("title");
          return reg.ok() ? reg->Set(Scalar(text)) : reg.status();
        }
      }
    });
    return nodes_[d].name + " edits " + doc + (info.ok() ? "" : " (refused)");
  }
  if (roll < 70) {  // deliver one frame on a random connection with something in flight
    std::vector<std::pair<uint64_t, bool>> busy;
    for (const auto& [id, c] : conns_) {
      if (!c->dialer.inbox.empty()) busy.emplace_back(id, true);
      if (!c->acceptor.inbox.empty()) busy.emplace_back(id, false);
    }
    if (!busy.empty()) {
      auto [id, to_dialer] = busy[rng_.Below(busy.size())];
      DeliverOne(*conns_[id], to_dialer);
      return "deliver";
    }
    RunEvents();
    return "events";
  }
  if (roll < 80) {
    if (options_.shared_store_relays > 0 && roll < 75) {
      const int a = static_cast<int>(nodes_.size()) - 1 -
                    static_cast<int>(rng_.Below(options_.shared_store_relays));
      const bool all = rng_.Chance(20);
      Follow(a, all);
      return nodes_[a].name + (all ? " polls" : " follows") + " the shared store";
    }
    RunEvents();
    return "events";
  }
  if (roll < 84) {  // the network drops a connection with what it carried
    if (conns_.empty()) return "no connection to drop";
    auto it = conns_.begin();
    std::advance(it, rng_.Below(conns_.size()));
    Drop(it->first);
    return "drop";
  }
  if (roll < 91) {  // a node (re)connects
    int a = static_cast<int>(rng_.Below(n));
    int b = relay(static_cast<int>(rng_.Below(options_.relays)));
    Connect(a, b);
    return "connect " + nodes_[a].name + " -> " + nodes_[b].name;
  }
  if (roll < 93) {  // a partition cuts one or two nodes off
    int a = static_cast<int>(rng_.Below(n));
    partitioned_.insert(a);
    std::vector<uint64_t> ids;
    for (const auto& [id, c] : conns_) {
      if (!Reachable(c->dialer.node, c->acceptor.node)) ids.push_back(id);
    }
    for (uint64_t id : ids) Drop(id);
    return "partition " + nodes_[a].name;
  }
  if (roll < 95) {
    partitioned_.clear();
    return "heal partitions";
  }
  if (roll < 97) {
    int a = static_cast<int>(rng_.Below(n));
    Crash(a);
    return "crash " + nodes_[a].name;
  }
  if (roll < 98) {  // a clock jumps backwards (by up to an hour, within the skew bound)
    int a = static_cast<int>(rng_.Below(n));
    Node& node = nodes_[a];
    node.skew_ms = std::max(-options_.max_skew_ms,
                            node.skew_ms - static_cast<int64_t>(rng_.Below(3600 * 1000)));
    return "clock of " + node.name + " jumps back";
  }
  // Anti-entropy on one end of a connection.
  if (conns_.empty()) return "tick (no connection)";
  auto it = conns_.begin();
  std::advance(it, rng_.Below(conns_.size()));
  (rng_.Chance(50) ? it->second->dialer : it->second->acceptor).link->OnTick();
  ProcessCloses();
  return "tick";
}

Result<CommitInfo> Sim::Rotate(int admin, bool grant, const PublicKey& key, Role role) {
  if (!nodes_[admin].up) return Status::Aborted(nodes_[admin].name + " is down");
  const std::string& doc = options_.e2e_document;
  auto info = grant ? replica(admin).Grant(doc, key, role) : replica(admin).Revoke(doc, key);
  if (info.ok() && info->changed) {
    report_.commits++;
    report_.rotations++;
    committed_.emplace_back(doc, info->change.node, info->version.Get(info->change.node));
  }
  return info;
}

std::string Sim::AdminStep(int admin) {
  const std::string& doc = options_.e2e_document;
  // Grants an outside reader, or revokes it when it has a role (as `who` holds the list).
  auto toggle = [&](int who, const PublicKey& outsider) {
    auto access = replica(who).Access(doc);
    const bool member = access.ok() && access->members.count(outsider) != 0;
    return Rotate(who, !member, outsider, Role::kReader);
  };
  const uint64_t what = rng_.Below(6);
  const PublicKey outsider = outsiders_.empty() ? PublicKey() : outsiders_[rng_.Below(3)];
  Result<CommitInfo> info = Status::Ok();
  std::string says;
  switch (what) {
    case 0:
    case 1:
      info = toggle(admin, outsider);
      says = "grants or revokes an outside reader";
      break;
    case 2:
    case 3:
      info = Rotate(admin, false, replica(3).public_key(), Role::kNone);
      if (info.ok() && info->changed) revokes_.push_back(info->change);
      says = "revokes device3";
      break;
    case 4:
      info = Rotate(admin, true, replica(4).public_key(), Role::kWriter);
      says = "grants device4 writer";
      break;
    default: {
      // A race: device1 is cut off, and both admins rotate on their own side.
      partitioned_.insert(1);
      std::vector<uint64_t> ids;
      for (const auto& [id, c] : conns_) {
        if (!Reachable(c->dialer.node, c->acceptor.node)) ids.push_back(id);
      }
      for (uint64_t id : ids) Drop(id);
      const PublicKey other = outsiders_.empty() ? PublicKey() : outsiders_[rng_.Below(3)];
      auto theirs = nodes_[1].up ? toggle(1, other) : Status::Aborted("device1 is down");
      info = toggle(0, outsider);
      if (!theirs.ok()) info = theirs;
      return "partition device1; both admins rotate" + std::string(info.ok() ? "" : " (refused)");
    }
  }
  return nodes_[admin].name + " " + says + (info.ok() ? "" : " (refused)");
}

bool Sim::Member(const PublicKey& key) {
  if (!nodes_[0].up) return false;
  auto access = replica(0).Access(options_.e2e_document);
  return access.ok() && access->members.count(key) != 0;
}

void Sim::CheckEncrypted(SimReport* out) {
  const std::string& doc = options_.e2e_document;
  auto add = [&](const std::string& p) { out->problems.push_back(doc + ": " + p); };
  const std::string first = State(0, doc);
  if (first.rfind("(", 0) == 0) return add("the owner cannot read it: " + first);
  auto v0 = replica(0).Version(doc);
  if (!v0.ok()) return add("no version on device0");
  bool revoked = false;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const int n = static_cast<int>(i);
    const Node& node = nodes_[i];
    if (!node.up) continue;
    const bool member = !node.relay && Member(replica(n).public_key());
    if (!node.relay && !member) {
      // Not a member at the end: relays refuse it the document; nothing to converge.
      revoked |= n == 3;
      continue;
    }
    auto v = replica(n).Version(doc);
    if (!v.ok() || *v != *v0) {
      add(node.name + " has version " + (v.ok() ? v->ToString() : v.status().ToString()) +
          ", device0 " + v0->ToString());
    }
    if (member) {
      std::string s = State(n, doc);
      if (s != first) add(node.name + " reads another state: " + s.substr(0, 120));
      auto e = replica(n).Encryption(doc);
      if (!e.ok() || !e->has_key || !e->missing_epochs.empty()) {
        add(node.name + " is a member and lacks a key");
      }
    } else {
      Status st = replica(n).Read(doc, [](const View&) {});
      if (st.code() != StatusCode::kPermissionDenied) {
        add(node.name + " (a relay) reads it: " + st.ToString());
      }
    }
  }
  if (revoked && revokes_.empty()) add("device3 lost its role without a revoke");
  if (revoked) CheckSealedAfter(3, revokes_, /*expect_readable=*/false, out);
  // The same check with the owner's key must see every change: the check can fail.
  CheckSealedAfter(0, revokes_, /*expect_readable=*/true, out);
}

void Sim::CheckSealedAfter(int node, const std::vector<crdt::Dot>& after, bool expect_readable,
                           SimReport* out) {
  const std::string& doc = options_.e2e_document;
  auto add = [&](const std::string& p) { out->problems.push_back(doc + ": " + p); };
  // The device's secret key, from its own database (closed for the read).
  std::vector<uint64_t> ids;
  for (const auto& [id, c] : conns_) {
    if (c->dialer.node == node || c->acceptor.node == node) ids.push_back(id);
  }
  for (uint64_t id : ids) Drop(id);
  CloseNode(node);
  SecretKey mine;
  {
    auto st = store::OpenSqliteStore(nodes_[node].path, {});
    if (!st.ok())
      return add("reading the key of " + nodes_[node].name + ": " + st.status().ToString());
    auto meta = (*st)->GetMeta({"device_secret_key"});
    if (!meta.ok() || meta->count("device_secret_key") == 0 ||
        !mine.Load(meta->at("device_secret_key")).ok()) {
      add("no device key in " + nodes_[node].name + "'s database");
    }
  }
  Open(node);
  // Every change of the document, from a relay (a revoked device is not sent the later ones).
  auto blobs = replica(relay(0)).ChangesSince(doc, {});
  if (!blobs.ok()) return add("relay0 serves no log: " + blobs.status().ToString());
  std::vector<crdt::Change> changes;
  e2e::DocKeys keys;
  for (const ChangeBlob& b : *blobs) {
    auto c = crdt::DecodeChange(b);
    if (!c.ok()) return add("relay0 serves an undecodable change");
    keys.RefreshWith(doc, *c, mine);
    changes.push_back(std::move(*c));
  }
  if (expect_readable) {
    std::map<uint64_t, std::set<std::string>> checks;  // distinct keys by epoch
    for (const e2e::HeldRecord& r : keys.records())
      checks[r.record.epoch].insert(r.record.key_check);
    for (const auto& [epoch, set] : checks) out->raced_epochs += set.size() > 1;
  }
  // Each change's causal past (the log is in causal order): its deps, their pasts, and the
  // author's earlier changes.
  std::map<crdt::NodeId, std::map<uint64_t, crdt::VersionVector>> past;  // by author, end seq
  auto past_of = [&](crdt::NodeId a, uint64_t seq) -> const crdt::VersionVector* {
    auto it = past.find(a);
    if (it == past.end()) return nullptr;
    auto at = it->second.lower_bound(seq);
    return at == it->second.end() ? nullptr : &at->second;
  };
  for (const crdt::Change& c : changes) {
    crdt::VersionVector v = c.deps;
    for (const auto& e : c.deps.entries()) {
      if (auto* p = past_of(e.first, e.second)) v.Merge(*p);
    }
    if (c.start_seq > 1) {
      if (auto* p = past_of(c.author, c.start_seq - 1)) v.Merge(*p);
    }
    v.Advance(c.author, c.end_seq());
    past[c.author][c.end_seq()] = v;
    const bool later = std::any_of(after.begin(), after.end(), [&](const crdt::Dot& r) {
      return c.id() != r && v.Contains(r);
    });
    if (!e2e::HasSealed(c) || (!later && !expect_readable)) continue;
    uint64_t missing = 0;
    auto opened = e2e::OpenChange(doc, c, keys, &missing);
    const bool read = opened.ok() && opened->has_value();
    if (expect_readable && !read) {
      add(nodes_[node].name + " cannot open change " + c.id().ToString() + ": " +
          (opened.ok() ? "no key for epoch " + std::to_string(missing)
                       : opened.status().ToString()));
    }
    if (!expect_readable) {
      out->sealed_checked++;
      if (read || !opened.ok()) {
        add(nodes_[node].name + ", revoked, " + (read ? "decrypts" : "holds every key of") +
            " change " + c.id().ToString() + " written after its revocation");
      }
    }
  }
}

void Sim::Heal() {
  partitioned_.clear();
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (!nodes_[i].up) Open(static_cast<int>(i));
  }
  for (int d = 0; d < options_.devices; ++d) {
    bool linked = false;
    for (int r = 0; r < options_.relays; ++r) linked |= Find(d, relay(r)) != nullptr;
    if (!linked) Connect(d, relay(static_cast<int>(rng_.Below(options_.relays))));
  }
  for (int a = 0; a < options_.relays; ++a) {
    for (int b = a + 1; b < options_.relays; ++b) Connect(relay(a), relay(b));
  }
}

void Sim::Follow(int node, bool all) {
  if (nodes_[node].up && nodes_[node].shared) followed_ += nodes_[node].replica->FollowStore(all);
}

uint64_t Sim::ChangesMoved() const {
  uint64_t n = followed_;
  for (const Node& node : nodes_) {
    if (node.hub) n += node.hub->counters().changes_in + node.hub->counters().duplicates_in;
  }
  return n;
}

void Sim::Settle() {
  for (int round = 0; round < 20; ++round) {
    DeliverAll();
    // Anti-entropy everywhere: whatever the live stream missed is repaired now.
    uint64_t before = ChangesMoved();
    for (size_t i = 0; i < nodes_.size(); ++i) Follow(static_cast<int>(i), true);
    std::vector<uint64_t> ids;
    for (const auto& [id, c] : conns_) ids.push_back(id);
    for (uint64_t id : ids) {
      auto it = conns_.find(id);
      if (it == conns_.end()) continue;
      it->second->dialer.link->OnTick();
      it->second->acceptor.link->OnTick();
      ProcessCloses();
    }
    DeliverAll();
    if (ChangesMoved() == before) break;
    // A tick exchanges Haves; once nothing but Haves moves, the next round stops.
    Heal();
  }
}

SimReport Sim::Check() {
  SimReport out = report_;
  uint64_t stops = stops_, refusals = denials_;
  for (const Node& node : nodes_) {
    if (node.hub) {
      stops += node.hub->counters().documents_stopped.load();
      refusals += ForwardRefusals(*node.hub);
    }
  }
  // (A refusal on a document already stopped stops nothing more: hence the comparison.)
  stops = stops > refusals ? stops - refusals : 0;
  if (stops > 0) {
    out.problems.push_back(std::to_string(stops) +
                           " time(s) a link stopped a document (see the other problems)");
  }
  for (const auto& [id, c] : conns_) {
    NoteStopped(c->dialer, &out);
    NoteStopped(c->acceptor, &out);
  }
  for (const std::string& doc : options_.documents) {
    // A document nobody wrote is absent everywhere; otherwise every node must hold it.
    std::string first = State(0, doc);
    crdt::VersionVector v0;
    for (size_t i = 0; i < nodes_.size(); ++i) {
      std::string s = State(static_cast<int>(i), doc);
      if (s != first) {
        out.problems.push_back(doc + ": " + nodes_[i].name + " differs from " + nodes_[0].name +
                               " (" + Hex(s) + " vs " + Hex(first) + ")");
      }
      if (!nodes_[i].up) continue;
      auto v = nodes_[i].replica->Version(doc);
      if (!v.ok()) continue;
      if (i == 0) v0 = *v;
      if (*v != v0) {
        out.problems.push_back(doc + ": " + nodes_[i].name + " has version " + v->ToString() +
                               ", " + nodes_[0].name + " " + v0.ToString());
      }
    }
  }
  if (!options_.e2e_document.empty()) CheckEncrypted(&out);
  for (const auto& [doc, author, seq] : committed_) {
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (!nodes_[i].up) continue;
      // Devices without a role in the encrypted document are not sent it.
      if (doc == options_.e2e_document && !nodes_[i].relay &&
          !Member(replica(static_cast<int>(i)).public_key())) {
        continue;
      }
      auto v = nodes_[i].replica->Version(doc);
      if (!v.ok() || v->Get(author) < seq) {
        out.problems.push_back(doc + ": " + nodes_[i].name + " lacks change " + author.ToHex() +
                               ":" + std::to_string(seq) + " that was committed");
        break;
      }
    }
  }
  return out;
}

}  // namespace weft::sim
