// Wire devices for weft-sync-bench (see wire_fleet.h).
#include "wire_fleet.h"

#include <pthread.h>

#include <algorithm>
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
        ws_(net::make_strand(ioc)),
        ack_timer_(ws_.get_executor()),
        doc_(self, NoHistory()) {}

  void Start(uint16_t port);
  void Edit(std::string element);
  bool Ready() {
    std::lock_guard lock(mu_);
    return ready_;
  }
  std::string Error() {
    std::lock_guard lock(mu_);
    return error_;
  }

 private:
  void Fail(const std::string& why) {
    std::lock_guard lock(mu_);
    if (error_.empty()) error_ = why;
  }
  void Send(const sync::Message& m) {
    queue_.push_back(sync::Encode(m));
    if (!writing_) DoWrite();
  }
  void DoWrite() {
    if (queue_.empty()) return;
    writing_ = true;
    auto self = shared_from_this();
    ws_.async_write(net::buffer(queue_.front()), [self](beast::error_code ec, size_t) {
      self->writing_ = false;
      self->queue_.pop_front();
      if (ec) return self->Fail("write: " + ec.message());
      self->DoWrite();
    });
  }
  void DoRead() {
    auto self = shared_from_this();
    ws_.async_read(buffer_, [self](beast::error_code ec, size_t) {
      if (ec) return self->Fail("read: " + ec.message());
      self->OnFrame(beast::buffers_to_string(self->buffer_.data()));
      self->buffer_.consume(self->buffer_.size());
      self->DoRead();
    });
  }
  void OnFrame(const std::string& frame);
  void ScheduleAck() {
    auto self = shared_from_this();
    ack_timer_.expires_after(kAckDelay);
    ack_timer_.async_wait([self](beast::error_code ec) {
      if (ec) return;
      if (self->ack_pending_) {
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
  websocket::stream<beast::tcp_stream> ws_;
  net::steady_timer ack_timer_;
  beast::flat_buffer buffer_;
  std::deque<std::string> queue_;
  bool writing_ = false;
  bool ack_pending_ = false;
  // The document as far as this device's own edits need it: the set's creation and its own
  // changes. Others' changes are tracked, not applied (see Track).
  crdt::Document doc_;
  crdt::VersionVector seen_;                // every change held, its own included
  std::map<crdt::NodeId, uint64_t> heads_;  // the causal frontier of what it holds
  uint64_t lamport_ = 0;                    // the greatest Lamport time held
  std::string doc_name_;
  std::string set_key_;
  // Its identity in the handshake (a wire device proves its key like any device).
  SecretKey secret_;
  PublicKey key_;
  bool owned_ = false;  // bind and sign (WireFleetOptions::owned)
  bool bound_ = false;
  std::string nonce_;

  std::mutex mu_;  // ready_, error_
  bool ready_ = false;
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
      d->doc_name_ = options_.doc;
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
    for (auto& d : devices_) d->Start(options_.port);
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
    net::post(d->ws_.get_executor(),
              [d, element = std::move(element)]() mutable { d->Edit(std::move(element)); });
  }

  void Record(int64_t sent_ns, int64_t now_ns) {
    std::lock_guard lock(mu_);
    all_.push_back({sent_ns, static_cast<double>(now_ns - sent_ns) / 1e6});
    if (sent_ns >= counted_from_) ++counted_;
  }

  WireArrivals Take(int64_t from_ns) override {
    std::lock_guard lock(mu_);
    WireArrivals out;
    for (const auto& [sent, ms] : all_) {
      if (sent < from_ns) continue;
      ++out.arrivals;
      out.latencies_ms.push_back(ms);
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
      for (const auto& a : all_) counted_ += a.first >= from_ns ? 1 : 0;
    }
    return counted_;
  }

  std::string Errors() override {
    for (auto& d : devices_) {
      if (std::string e = d->Error(); !e.empty()) return e;
    }
    return {};
  }

 private:
  WireFleetOptions options_;
  net::io_context ioc_;
  net::executor_work_guard<net::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
  std::vector<std::shared_ptr<Device>> devices_;
  std::mutex mu_;
  // (sent ns, latency ms) of every arrival; a deque, so that recording never copies it all.
  std::deque<std::pair<int64_t, double>> all_;
  int64_t counted_from_ = INT64_MAX;  // Arrived()'s last `from`, and how many arrived since
  uint64_t counted_ = 0;
};

void Device::Start(uint16_t port) {
  auto self = shared_from_this();
  net::post(ws_.get_executor(), [self, port] {
    beast::get_lowest_layer(self->ws_).async_connect(
        tcp::endpoint(net::ip::make_address("127.0.0.1"), port), [self](beast::error_code ec) {
          if (ec) return self->Fail("connect: " + ec.message());
          beast::error_code ignored;
          beast::get_lowest_layer(self->ws_).socket().set_option(tcp::no_delay(true), ignored);
          self->ws_.binary(true);
          self->ws_.read_message_max(64u << 20);
          self->ws_.async_handshake("127.0.0.1", "/", [self](beast::error_code ec) {
            if (ec) return self->Fail("handshake: " + ec.message());
            const PublicKey* key = &self->key_;
            self->nonce_ = RandomBytes(sync::kNonceBytes);
            sync::HelloMsg h;
            h.node = self->doc_.self();
            h.agent = "weft-sync-bench-wire";
            h.public_key.assign(reinterpret_cast<const char*>(key->bytes().data()),
                                PublicKey::kSize);
            h.nonce = self->nonce_;
            h.audience = "bench";
            self->Send(h);  // the relay's Hello is answered with Auth and Have (OnFrame)
            self->DoRead();
            self->ScheduleAck();
          });
        });
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
                       expires});
    Send(sync::HaveMsg{doc_name_, {}, 0});
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
    for (const auto& op : change->ops) {
      if (op.type != crdt::Op::Type::kSetAdd || !op.scalar.is<std::string>()) continue;
      const std::string& s = op.scalar.as<std::string>();
      size_t colon = s.rfind(':');
      if (colon == std::string::npos) continue;
      fleet_.Record(std::strtoll(s.c_str() + colon + 1, nullptr, 10), now);
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
  seen_.Advance(c.author, c.end_seq());
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
  Send(sync::ChangesMsg{doc_name_, {crdt::EncodeChange(*change)}, {doc_.self()}, {}, 0, false});
}

}  // namespace

std::unique_ptr<WireFleet> WireFleet::Start(const WireFleetOptions& options, std::string* error) {
  auto f = std::make_unique<WireFleetImpl>(options);
  if (!f->Init(error)) return nullptr;
  return f;
}

}  // namespace weft::bench
