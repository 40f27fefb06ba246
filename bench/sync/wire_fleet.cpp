// Wire devices for weft-sync-bench (see wire_fleet.h).
#include "wire_fleet.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "identity_internal.h"
#include "sync/session_auth.h"
#include "sync/wire.h"
#include "weft/crdt/document.h"

namespace weft::bench {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

uint64_t NowMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

constexpr auto kAckDelay = std::chrono::milliseconds(20);

class WireFleetImpl;

class Device : public std::enable_shared_from_this<Device> {
 public:
  Device(WireFleetImpl& fleet, net::io_context& ioc, crdt::NodeId self)
      : fleet_(fleet),
        strand_(net::make_strand(ioc)),
        ack_timer_(strand_),
        retry_timer_(strand_),
        doc_(self, NoHistory()) {}

  void Start();
  void Edit(std::string element);
  bool Ready() {
    std::lock_guard lock(mu_);
    return ready_;
  }
  std::string Error() {
    std::lock_guard lock(mu_);
    return error_;
  }
  uint16_t Port() const { return port_now_.load(std::memory_order_relaxed); }
  WireDeviceState State(bool own_changes) {
    std::lock_guard lock(mu_);
    WireDeviceState s;
    s.doc = doc_name_;
    s.node = doc_.self();
    s.port = Port();
    s.live = live_;
    s.reconnects = reconnects_;
    s.own_seq = own_seq_;
    s.acked_seq = acked_seq_;
    s.held = seen_;
    if (own_changes) {
      for (const auto& o : own_) s.own_starts.push_back(o.start_seq);
    }
    return s;
  }

 private:
  using Stream = websocket::stream<beast::tcp_stream>;
  // One connection: its stream and read buffer live as long as an operation on them is pending.
  struct Conn {
    explicit Conn(const net::strand<net::io_context::executor_type>& ex) : ws(ex) {}
    Stream ws;
    beast::flat_buffer buffer;
  };
  struct OwnChange {
    uint64_t start_seq = 0, end_seq = 0;
    std::string blob;
  };

  void Fail(const std::string& why) {
    std::lock_guard lock(mu_);
    if (error_.empty()) error_ = why;
  }
  // The connection `gen` failed or closed: an error, or (reconnect) the next relay after a wait.
  void Lost(uint64_t gen, const std::string& why);
  void Connect();
  // Sends on the open connection: only the handshake before it is authenticated (offline, own
  // changes are sent after the next Have exchange).
  void Send(const sync::Message& m, bool handshake = false) {
    if (!conn_ || !(authed_ || (handshake && ws_open_))) return;
    queue_.push_back(sync::Encode(m));
    if (!writing_) DoWrite();
  }
  void DoWrite() {
    if (queue_.empty()) return;
    writing_ = true;
    auto self = shared_from_this();
    auto conn = conn_;
    conn->ws.async_write(net::buffer(queue_.front()),
                         [self, conn, gen = gen_](beast::error_code ec, size_t) {
                           if (gen != self->gen_) return;
                           self->writing_ = false;
                           self->queue_.pop_front();
                           if (ec) return self->Lost(gen, "write: " + ec.message());
                           self->DoWrite();
                         });
  }
  void DoRead() {
    auto self = shared_from_this();
    auto conn = conn_;
    conn->ws.async_read(conn->buffer, [self, conn, gen = gen_](beast::error_code ec, size_t) {
      if (gen != self->gen_) return;
      if (ec) return self->Lost(gen, "read: " + ec.message());
      self->OnFrame(beast::buffers_to_string(conn->buffer.data()));
      if (gen != self->gen_) return;
      conn->buffer.consume(conn->buffer.size());
      self->DoRead();
    });
  }
  void OnFrame(const std::string& frame);
  void ScheduleAck() {
    auto self = shared_from_this();
    ack_timer_.expires_after(kAckDelay);
    ack_timer_.async_wait([self](beast::error_code ec) {
      if (ec) return;
      if (self->ack_pending_ && self->conn_) {
        self->ack_pending_ = false;
        self->Send(sync::AckMsg{self->doc_name_, self->seen_});
      }
      self->ScheduleAck();
    });
  }
  std::optional<crdt::ObjectId> SetId() const;
  // Notes a change as held: its version, the frontier and the Lamport clock, which are what the
  // device's own changes depend on and are ordered after.
  void Track(const crdt::Change& c);
  // A wire device serves no history (it only sends its own new changes): keeping every change
  // would also make all of them copy their history at the same moments as it doubles.
  static crdt::DocumentOptions NoHistory() {
    crdt::DocumentOptions o;
    o.keep_history = false;
    return o;
  }

  WireFleetImpl& fleet_;
  net::strand<net::io_context::executor_type> strand_;
  std::shared_ptr<Conn> conn_;  // null while offline
  bool ws_open_ = false;        // its WebSocket handshake is done
  bool authed_ = false;         // it sent Auth: changes and Acks may follow
  uint64_t gen_ = 0;            // the connection's number: callbacks of older ones are ignored
  net::steady_timer ack_timer_;
  net::steady_timer retry_timer_;
  std::deque<std::string> queue_;
  bool writing_ = false;
  bool ack_pending_ = false;
  // The document as far as this device's own edits need it: the set's creation and its own
  // changes. Others' changes are tracked, not applied (see Track).
  crdt::Document doc_;
  crdt::VersionVector seen_;                // every change held, its own included (mu_)
  std::map<crdt::NodeId, uint64_t> heads_;  // the causal frontier of what it holds
  uint64_t lamport_ = 0;                    // the greatest Lamport time held
  std::string doc_name_;
  std::string set_key_;
  std::vector<uint16_t> ports_;  // its relays, the one it connects to first
  size_t port_index_ = 0;
  std::atomic<uint16_t> port_now_{0};
  bool reconnect_ = false;
  // With reconnect_: its own changes, to send what a relay lacks (mu_).
  std::vector<OwnChange> own_;
  // Its identity in the handshake (a wire device proves its key like any device).
  SecretKey secret_;
  PublicKey key_;
  bool owned_ = false;  // bind and sign (WireFleetOptions::owned)
  bool bound_ = false;
  std::string nonce_;

  std::mutex mu_;  // ready_, error_, and what State reads
  bool ready_ = false;
  bool live_ = false;
  uint64_t reconnects_ = 0;
  uint64_t own_seq_ = 0;
  uint64_t acked_seq_ = 0;
  std::string error_;

  friend class WireFleetImpl;
};

class WireFleetImpl final : public WireFleet {
 public:
  explicit WireFleetImpl(const WireFleetOptions& o) : options_(o), work_(ioc_.get_executor()) {}
  ~WireFleetImpl() override {
    ioc_.stop();
    for (auto& t : threads_) t.join();
  }

  bool Init(std::string* error) {
    std::mt19937_64 rng(std::random_device{}());
    std::vector<PublicKey> keys;
    for (int i = 0; i < options_.devices; ++i) {
      auto d = std::make_shared<Device>(*this, ioc_, crdt::NodeId{rng() | 1});
      d->doc_name_ = options_.doc_of ? options_.doc_of(i) : options_.doc;
      d->ports_ = options_.ports_of ? options_.ports_of(i) : std::vector<uint16_t>{options_.port};
      if (d->ports_.empty()) {
        *error = "a wire device without a relay";
        return false;
      }
      d->reconnect_ = options_.reconnect;
      d->set_key_ = options_.set_key;
      d->owned_ = options_.owned;
      auto key = d->secret_.Generate();
      if (!key.ok()) {
        *error = "key: " + key.status().ToString();
        return false;
      }
      d->key_ = *key;
      keys.push_back(*key);
      devices_.push_back(d);
    }
    if (options_.before_connect) options_.before_connect(keys);
    for (int t = 0; t < std::max(1, options_.threads); ++t) {
      threads_.emplace_back([this] {
        pthread_setname_np(pthread_self(), "wire-devices");
        ioc_.run();
      });
    }
    for (auto& d : devices_) d->Start();
    auto deadline = Clock::now() + std::chrono::seconds(60);
    for (auto& d : devices_) {
      while (!d->Ready()) {
        if (std::string e = d->Error(); !e.empty() || Clock::now() > deadline) {
          *error = e.empty() ? "a wire device did not get the document within 60 s" : e;
          return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    return true;
  }

  void Edit(int i, std::string element) override {
    auto d = devices_.at(static_cast<size_t>(i));
    net::post(d->strand_,
              [d, element = std::move(element)]() mutable { d->Edit(std::move(element)); });
  }

  // An arrival at `receiver` of the edit `element` ("author:seq:sent_ns") sent at `sent_ns`.
  void Record(const Device& receiver, const std::string& element, int64_t sent_ns, int64_t now_ns) {
    bool across = false;
    if (options_.ports_of) {
      size_t author = static_cast<size_t>(std::strtoull(element.c_str(), nullptr, 10));
      across = author < devices_.size() && devices_[author]->Port() != receiver.Port();
    }
    std::lock_guard lock(mu_);
    all_.push_back({sent_ns, static_cast<double>(now_ns - sent_ns) / 1e6, across});
    if (sent_ns >= counted_from_) ++counted_;
  }

  WireArrivals Take(int64_t from_ns) override {
    std::lock_guard lock(mu_);
    WireArrivals out;
    for (const auto& a : all_) {
      if (a.sent_ns < from_ns) continue;
      ++out.arrivals;
      out.latencies_ms.push_back(a.ms);
      if (options_.ports_of) (a.across ? out.across_ms : out.within_ms).push_back(a.ms);
    }
    all_.clear();
    counted_ = 0;
    return out;
  }

  uint64_t Arrived(int64_t from_ns) override {
    std::lock_guard lock(mu_);
    if (from_ns != counted_from_) {  // counted from now on as they arrive (polling stays cheap)
      counted_from_ = from_ns;
      counted_ = 0;
      for (const auto& a : all_) counted_ += a.sent_ns >= from_ns ? 1 : 0;
    }
    return counted_;
  }

  std::string Errors() override {
    for (auto& d : devices_) {
      if (std::string e = d->Error(); !e.empty()) return e;
    }
    return {};
  }

  std::vector<WireDeviceState> States(bool own_changes) override {
    std::vector<WireDeviceState> out;
    out.reserve(devices_.size());
    for (auto& d : devices_) out.push_back(d->State(own_changes));
    return out;
  }

 private:
  WireFleetOptions options_;
  net::io_context ioc_;
  net::executor_work_guard<net::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
  std::vector<std::shared_ptr<Device>> devices_;
  std::mutex mu_;
  // Every arrival; a deque, so that recording never copies it all.
  struct Arrival {
    int64_t sent_ns;
    double ms;
    bool across;  // the author and the receiver were on different relays
  };
  std::deque<Arrival> all_;
  int64_t counted_from_ = INT64_MAX;  // Arrived()'s last `from`, and how many arrived since
  uint64_t counted_ = 0;
};

void Device::Start() {
  auto self = shared_from_this();
  net::post(strand_, [self] {
    self->Connect();
    self->ScheduleAck();
  });
}

void Device::Connect() {
  auto self = shared_from_this();
  auto conn = std::make_shared<Conn>(strand_);
  conn_ = conn;
  const uint64_t gen = gen_;
  const uint16_t port = ports_[port_index_];
  port_now_.store(port, std::memory_order_relaxed);
  beast::get_lowest_layer(conn->ws).async_connect(
      tcp::endpoint(net::ip::make_address("127.0.0.1"), port),
      [self, conn, gen](beast::error_code ec) {
        if (gen != self->gen_) return;
        if (ec) return self->Lost(gen, "connect: " + ec.message());
        beast::error_code ignored;
        beast::get_lowest_layer(conn->ws).socket().set_option(tcp::no_delay(true), ignored);
        conn->ws.binary(true);
        conn->ws.read_message_max(64u << 20);
        conn->ws.async_handshake("127.0.0.1", "/", [self, gen](beast::error_code ec) {
          if (gen != self->gen_) return;
          if (ec) return self->Lost(gen, "handshake: " + ec.message());
          const PublicKey* key = &self->key_;
          self->nonce_ = RandomBytes(sync::kNonceBytes);
          sync::HelloMsg h;
          h.node = self->doc_.self();
          h.agent = "weft-sync-bench-wire";
          h.public_key.assign(reinterpret_cast<const char*>(key->bytes().data()), PublicKey::kSize);
          h.nonce = self->nonce_;
          h.audience = "bench";
          self->ws_open_ = true;
          self->Send(h, true);  // the relay's Hello is answered with Auth and Have (OnFrame)
          self->DoRead();
        });
      });
}

void Device::Lost(uint64_t gen, const std::string& why) {
  if (gen != gen_) return;
  if (!reconnect_) return Fail(why);
  ++gen_;  // callbacks of this connection are ignored from now on
  beast::error_code ignored;
  if (conn_) beast::get_lowest_layer(conn_->ws).socket().close(ignored);
  conn_.reset();
  ws_open_ = authed_ = false;
  queue_.clear();
  writing_ = false;
  size_t attempts;
  {
    std::lock_guard lock(mu_);
    live_ = false;
    attempts = ++reconnects_;
  }
  // The next relay, after a short wait (longer while none answers).
  port_index_ = (port_index_ + 1) % ports_.size();
  retry_timer_.expires_after(std::chrono::milliseconds(
      std::min<size_t>(1000, 50 * std::max<size_t>(1, attempts / ports_.size()))));
  auto self = shared_from_this();
  retry_timer_.async_wait([self](beast::error_code ec) {
    if (!ec) self->Connect();
  });
}

std::optional<crdt::ObjectId> Device::SetId() const {
  auto read = doc_.Get(crdt::kRoot, set_key_);
  if (!read.ok() || read->values.empty() || !read->values.front().value.is_object()) {
    return std::nullopt;
  }
  return read->values.front().value.object().id;
}

void Device::OnFrame(const std::string& frame) {
  auto m = sync::Decode(frame);
  if (!m.ok()) return Fail("a frame that does not decode: " + m.status().ToString());
  if (auto* e = std::get_if<sync::ErrorMsg>(&*m)) return Fail("relay error: " + e->message);
  if (auto* h = std::get_if<sync::HelloMsg>(&*m)) {
    if (h->public_key.size() != PublicKey::kSize) return Fail("a relay Hello without a key");
    std::array<uint8_t, PublicKey::kSize> b{};
    std::memcpy(b.data(), h->public_key.data(), b.size());
    PublicKey relay(b);
    if (Status s = sync::CheckSessionProof(true, relay, key_, nonce_, "bench", h->expires, h->proof,
                                           sync::UnixNow());
        !s.ok()) {
      return Fail("relay proof: " + s.ToString());
    }
    uint64_t expires = sync::UnixNow() + sync::kProofLifetimeSeconds;
    auto sig = secret_.Sign(
        kSessionPurpose, sync::SessionTranscript(false, key_, relay, h->nonce, "bench", expires));
    if (!sig.ok()) return Fail("sign: " + sig.status().ToString());
    Send(sync::AuthMsg{std::string(reinterpret_cast<const char*>(sig->data()), sig->size()),
                       expires},
         true);
    authed_ = true;
    {
      std::lock_guard lock(mu_);
      live_ = true;
    }
    // What it holds (nothing, the first time): the relay sends what it lacks.
    Send(sync::HaveMsg{doc_name_, seen_, 0});
    return;
  }
  if (auto* a = std::get_if<sync::AckMsg>(&*m); a && reconnect_) {
    std::lock_guard lock(mu_);
    acked_seq_ = std::max(acked_seq_, a->version.Get(doc_.self()));
    return;
  }
  if (auto* have = std::get_if<sync::HaveMsg>(&*m); have && reconnect_) {
    // The relay's Have: send the own changes it lacks (made offline, or sent to a relay that
    // did not store them), oldest first.
    const uint64_t held = have->version.Get(doc_.self());
    std::vector<std::string> batch;
    {
      std::lock_guard lock(mu_);
      for (const auto& o : own_) {
        if (o.end_seq > held) batch.push_back(o.blob);
      }
    }
    for (size_t i = 0; i < batch.size(); i += 256) {
      sync::ChangesMsg c{doc_name_, {}, {doc_.self()}, {}, 0, false};
      for (size_t k = i; k < std::min(batch.size(), i + 256); ++k) {
        c.changes.push_back(std::move(batch[k]));
      }
      Send(c);
    }
    return;
  }
  if (std::holds_alternative<sync::SnapshotChunkMsg>(*m)) {
    return Fail("a snapshot: wire devices start from the log");
  }
  auto* c = std::get_if<sync::ChangesMsg>(&*m);
  if (!c) return;  // Hello, Have, Ack, Presence: nothing to do
  const int64_t now = NowNs();
  for (const auto& blob : c->changes) {
    auto change = crdt::DecodeChange(blob);
    if (!change.ok()) return Fail("a change that does not decode");
    if (reconnect_ && seen_.Get(change->author) >= change->end_seq()) continue;  // again
    for (const auto& op : change->ops) {
      if (op.type != crdt::Op::Type::kSetAdd || !op.scalar.is<std::string>()) continue;
      const std::string& s = op.scalar.as<std::string>();
      size_t colon = s.rfind(':');
      if (colon == std::string::npos) continue;
      fleet_.Record(*this, s, std::strtoll(s.c_str() + colon + 1, nullptr, 10), now);
    }
    Track(*change);
    if (ready_) continue;  // the set exists: others' changes are tracked only
    if (Status st = doc_.Receive(std::move(*change)); !st.ok()) {
      return Fail("a change that does not apply: " + st.ToString());
    }
  }
  ack_pending_ = true;
  if (!ready_ && SetId()) {
    std::lock_guard lock(mu_);
    ready_ = true;
  }
}

void Device::Track(const crdt::Change& c) {
  lamport_ = std::max(lamport_, c.lamport);
  {
    std::lock_guard lock(mu_);
    seen_.Advance(c.author, c.end_seq());
  }
  // The relay sends changes in causal order: what this one depends on is no longer a head.
  for (const auto& [node, seq] : c.deps.entries()) {
    if (auto it = heads_.find(node); it != heads_.end() && it->second <= seq) heads_.erase(it);
  }
  uint64_t& head = heads_[c.author];
  head = std::max(head, c.end_seq());
}

void Device::Edit(std::string element) {
  auto set = SetId();
  if (!set) return Fail("an edit before the document arrived");
  auto t = doc_.Begin(NowMs());
  if (owned_ && !bound_) {
    // The author's first change in an owned document binds it to the device's key.
    const std::string me(reinterpret_cast<const char*>(key_.bytes().data()), PublicKey::kSize);
    auto proof = secret_.Sign(kBindPurpose, BindingMessage(doc_name_, doc_.self(), me));
    if (!proof.ok()) return Fail("bind: " + proof.status().ToString());
    if (Status s = t.Bind(me, std::string(reinterpret_cast<const char*>(proof->data()), 64));
        !s.ok()) {
      return Fail("bind: " + s.ToString());
    }
    bound_ = true;
  }
  if (Status s = t.SetAdd(*set, crdt::Scalar(std::move(element))); !s.ok()) {
    return Fail("edit: " + s.ToString());
  }
  auto change = t.Commit();
  if (!change) return;
  // Made on the partial document: it depends on, and is ordered after, everything held.
  change->deps = crdt::VersionVector();
  for (const auto& [node, seq] : heads_) {
    if (node != change->author) change->deps.Set(node, seq);
  }
  change->lamport = ++lamport_;
  Track(*change);
  if (owned_) {
    auto sig = secret_.Sign(kChangePurpose, ChangeMessage(doc_name_, *change));
    if (!sig.ok()) return Fail("sign: " + sig.status().ToString());
    change->signature.assign(reinterpret_cast<const char*>(sig->data()), sig->size());
  }
  std::string blob = crdt::EncodeChange(*change);
  {
    std::lock_guard lock(mu_);
    own_seq_ = change->end_seq();
    if (reconnect_) own_.push_back({change->start_seq, change->end_seq(), blob});
  }
  Send(sync::ChangesMsg{doc_name_, {std::move(blob)}, {doc_.self()}, {}, 0, false});
}

}  // namespace

std::unique_ptr<WireFleet> WireFleet::Start(const WireFleetOptions& options, std::string* error) {
  auto f = std::make_unique<WireFleetImpl>(options);
  if (!f->Init(error)) return nullptr;
  return f;
}

}  // namespace weft::bench
