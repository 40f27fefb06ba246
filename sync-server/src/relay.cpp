// The relay server (see relay.h): Beast listener, HTTP endpoints, WebSocket sessions, peers.
#include "relay.h"

#include <pthread.h>

#include <filesystem>
#include <list>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "dir_lock.h"
#include "event_log.h"
#include "pg_store.h"
#include "replica_store.h"
#include "sync/dialer.h"
#include "sync/hub.h"
#include "sync/ws_session.h"

namespace weft::relay {
namespace {

using namespace std::chrono_literals;
namespace net = sync::net;
namespace beast = sync::beast;
namespace http = sync::http;
namespace websocket = sync::websocket;
using tcp = sync::tcp;

class RelayImpl;

// The relay's replica on its store: the embedded SQLite one in data_dir, or PostgreSQL.
Result<std::unique_ptr<Replica>> OpenRelayReplica(const RelayOptions& o, const ReplicaOptions& ro) {
  if (o.store.empty()) return Replica::Open(StorePath(o.data_dir), ro);
  store::PgStoreOptions po;
  po.name = o.store_name;
  auto st = store::OpenPgStore(o.store, po);
  if (!st.ok()) return st.status();
  return OpenReplica(std::move(*st), ro);
}

// One HTTP connection, plain or TLS (`Stream` is beast::tcp_stream or sync::TlsStream): for TLS,
// the handshake first (a peer that does not complete it is counted and dropped), then reads the
// request and either upgrades to a sync session or answers /metrics, /healthz (or 404) and closes.
template <class Stream>
class HttpSession : public std::enable_shared_from_this<HttpSession<Stream>> {
 public:
  static constexpr bool kTls = std::is_same_v<Stream, sync::TlsStream>;
  HttpSession(RelayImpl& relay, Stream stream) : relay_(relay), stream_(std::move(stream)) {}
  void Run();

 private:
  void Read();
  void OnRead(beast::error_code ec);
  beast::tcp_stream& Tcp() { return beast::get_lowest_layer(stream_); }

  RelayImpl& relay_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
};

class RelayImpl final : public Relay {
 public:
  explicit RelayImpl(RelayOptions options)
      : options_(std::move(options)), log_(options_.log_format) {}
  ~RelayImpl() override { Stop(2000ms); }

  Status Init();

  uint16_t port() const override { return port_; }
  NodeId node_id() const override { return replica_->node_id(); }
  Replica& replica() override { return *replica_; }
  std::string Metrics() override;
  uint64_t Counter(const std::string& name) override;
  void Stop(std::chrono::milliseconds grace) override;

  // From the HTTP sessions.
  template <class Stream>
  void Upgrade(Stream stream, http::request<http::string_body> req);
  void CountTlsFailure() { ++tls_failures_; }
  bool stopping() const { return stopping_; }
  std::chrono::milliseconds handshake_timeout() const { return options_.handshake_timeout; }

 private:
  void DoAccept();
  // Replication lag of one connection, over its documents (see Metrics).
  struct Lag {
    uint64_t unacked_ops = 0;      // operations held here the peer has not acknowledged
    uint64_t unacked_changes = 0;  // the changes that carry them
    uint64_t behind_ops = 0;       // operations the peer holds that this relay lacks
    double oldest_age_s = 0;       // age of the oldest unacknowledged change (author's clock)
  };
  // `acked`: per document, what the peer acknowledged; `peer_has`: what it is known to hold.
  Lag LagOf(const std::map<std::string, VersionVector>& acked,
            const std::map<std::string, VersionVector>& peer_has);
  Lag LagOf(const sync::Link& link);

  RelayOptions options_;
  EventLog log_;
  DirLock lock_;  // released last
  std::unique_ptr<Replica> replica_;
  std::unique_ptr<sync::Hub> hub_;
  net::io_context ioc_;
  std::optional<tcp::acceptor> acceptor_;
  uint16_t port_ = 0;
  std::vector<std::thread> threads_;
  std::vector<std::shared_ptr<sync::Dialer>> dialers_;
  sync::LinkConfig link_config_;
  sync::SessionLimits limits_;
  std::shared_ptr<sync::ssl::context> tls_server_;  // set: the listener speaks only TLS
  std::atomic<uint64_t> tls_failures_{0};

  std::mutex mu_;
  // Accepted sessions, by a number of this relay's (the session label of /metrics).
  std::list<std::pair<uint64_t, std::weak_ptr<sync::WsSession>>> sessions_;
  uint64_t next_session_ = 1;
  std::atomic<bool> stopping_{false};
  bool stopped_ = false;
};

template <class Stream>
void HttpSession<Stream>::Run() {
  Tcp().expires_after(relay_.handshake_timeout());
  if constexpr (kTls) {
    stream_.async_handshake(sync::ssl::stream_base::server,
                            [self = this->shared_from_this()](beast::error_code ec) {
                              // Not TLS (e.g. a ws:// client), or TLS it cannot agree on.
                              if (ec) return self->relay_.CountTlsFailure();
                              self->Read();
                            });
  } else {
    Read();
  }
}

template <class Stream>
void HttpSession<Stream>::Read() {
  parser_.emplace();
  parser_->body_limit(8192);
  parser_->header_limit(16384);
  http::async_read(
      stream_, buffer_, *parser_,
      [self = this->shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
}

template <class Stream>
void HttpSession<Stream>::OnRead(beast::error_code ec) {
  if (ec) return;  // timeout, reset or a malformed request: drop the connection
  auto req = parser_->release();
  if (websocket::is_upgrade(req)) {
    if (relay_.stopping()) return;
    Tcp().expires_never();
    return relay_.Upgrade(std::move(stream_), std::move(req));
  }
  auto res = std::make_shared<http::response<http::string_body>>();
  res->version(req.version());
  res->set(http::field::server, "weft-relay/0.1");
  res->keep_alive(false);
  std::string target(req.target());
  if (req.method() == http::verb::get && target == "/metrics") {
    res->result(http::status::ok);
    res->set(http::field::content_type, "text/plain; version=0.0.4");
    res->body() = relay_.Metrics();
  } else if (req.method() == http::verb::get && target == "/healthz") {
    res->result(http::status::ok);
    res->set(http::field::content_type, "text/plain");
    res->body() = "ok\n";
  } else {
    res->result(http::status::not_found);
    res->set(http::field::content_type, "text/plain");
    res->body() = "not found: GET /metrics, GET /healthz, or a WebSocket upgrade for sync\n";
  }
  res->prepare_payload();
  http::async_write(stream_, *res,
                    [self = this->shared_from_this(), res](beast::error_code, size_t) {
                      if constexpr (kTls) {
                        // close_notify, so that the client sees a clean end of the response.
                        self->stream_.async_shutdown([self](beast::error_code) {
                          beast::error_code ignored;
                          self->Tcp().socket().close(ignored);
                        });
                      } else {
                        beast::error_code ignored;
                        self->Tcp().socket().shutdown(tcp::socket::shutdown_send, ignored);
                      }
                    });
}

Status RelayImpl::Init() {
  if (options_.data_dir.empty()) return Status::InvalidArgument("--data DIR is required");
  if (options_.tls_cert_file.empty() != options_.tls_key_file.empty()) {
    return Status::InvalidArgument(
        "TLS needs both a certificate and a key (--tls-cert, --tls-key)");
  }
  if (!options_.tls_cert_file.empty()) {
    auto ctx = sync::MakeServerTlsContext(options_.tls_cert_file, options_.tls_key_file);
    if (!ctx.ok()) return ctx.status();
    tls_server_ = std::move(*ctx);
  }
  std::shared_ptr<sync::ssl::context> tls_client;
  for (const auto& url : options_.peers) {
    auto parsed = sync::ParseWsUrl(url);
    if (!parsed.ok()) return parsed.status();
    if (parsed->tls && !tls_client) {
      auto ctx = sync::MakeClientTlsContext(options_.tls_ca_file);
      if (!ctx.ok()) return ctx.status();
      tls_client = std::move(*ctx);
    }
  }
  if (options_.threads < 1) options_.threads = 1;
  std::error_code fec;
  std::filesystem::create_directories(options_.data_dir, fec);
  if (fec) return Status::IOError("cannot create " + options_.data_dir + ": " + fec.message());
  WEFT_RETURN_IF_ERROR(lock_.Acquire(options_.data_dir));
  ReplicaOptions ro;
  // Full durability with group commit: a change is acknowledged once an fsync covers it, and
  // one fsync covers every change stored while the one before ran (no thread waits for it).
  ro.durability =
      options_.durability == Durability::kFull ? Durability::kGroup : options_.durability;
  ro.check_drift = true;  // a relay trusts its own clock
  // A relay authors no documents of its own: one its operator writes into its store directly
  // (seeding, tests, benchmarks) is public, not owned by the relay's key.
  ro.public_documents = true;
  auto r = OpenRelayReplica(options_, ro);
  if (!r.ok()) return r.status();
  replica_ = std::move(*r);
  hub_ = std::make_unique<sync::Hub>(*replica_);
  if (log_.enabled()) hub_->SetLog([this](const sync::LogEvent& e) { log_.Write(e); });

  link_config_.relay = true;
  link_config_.open = options_.open;
  link_config_.trusted.insert(options_.trusted_relays.begin(), options_.trusted_relays.end());
  link_config_.admission_key = options_.admission_key;
  link_config_.max_batch_changes = options_.max_batch_changes;
  link_config_.limits.max_changes_per_batch = std::max<size_t>(options_.max_batch_changes, 4096);
  limits_.max_frame_bytes = options_.max_frame_bytes;
  limits_.max_queue_bytes = options_.max_send_queue_bytes;
  limits_.handshake_timeout = options_.handshake_timeout;
  limits_.idle_timeout = options_.idle_timeout;
  limits_.anti_entropy_interval = options_.anti_entropy_interval;
  link_config_.max_batch_bytes = std::min<size_t>(1u << 20, options_.max_frame_bytes / 2);
  link_config_.snapshot_min_changes = options_.snapshot_min_changes;
  link_config_.max_snapshot_bytes = options_.max_snapshot_bytes;
  link_config_.snapshot_chunk_bytes = std::min<size_t>(256u << 10, options_.max_frame_bytes / 4);
  link_config_.live_interval = options_.live_interval;
  link_config_.ack_delay = std::chrono::microseconds(0);  // semi-synchronous writers wait for it

  beast::error_code ec;
  auto addr = net::ip::make_address(options_.listen_host, ec);
  if (ec) return Status::InvalidArgument("bad listen address " + options_.listen_host);
  tcp::endpoint ep(addr, options_.listen_port);
  acceptor_.emplace(net::make_strand(ioc_));
  acceptor_->open(ep.protocol(), ec);
  if (!ec) acceptor_->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_->bind(ep, ec);
  if (!ec) acceptor_->listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::IOError("cannot listen on " + options_.listen_host + ":" +
                           std::to_string(options_.listen_port) + ": " + ec.message());
  }
  port_ = acceptor_->local_endpoint().port();
  DoAccept();

  for (const auto& url : options_.peers) {
    auto parsed = sync::ParseWsUrl(url);
    if (!parsed.ok()) return parsed.status();
    sync::DialerOptions o;
    o.link = link_config_;
    o.link.all_documents = true;
    o.link.ack_key = url;
    o.limits = limits_;
    o.initial_backoff = options_.initial_backoff;
    o.max_backoff = options_.max_backoff;
    o.tls = tls_client;
    auto d = std::make_shared<sync::Dialer>(*hub_, ioc_, url, std::move(*parsed), o);
    dialers_.push_back(d);
    d->Start();
  }
  if (log_.enabled()) {
    sync::LogEvent e;
    e.event = "relay.start";
    e.counts = {{"port", port_}, {"peers", options_.peers.size()}, {"open", options_.open}};
    log_.Write(e);
  }
  for (int i = 0; i < options_.threads; ++i) {
    threads_.emplace_back([this] {
      pthread_setname_np(pthread_self(), "weft-relay");  // for top -H, perf and debuggers
      ioc_.run();
    });
  }
  return Status::Ok();
}

void RelayImpl::DoAccept() {
  acceptor_->async_accept(net::make_strand(ioc_), [this](beast::error_code ec, tcp::socket s) {
    if (stopping_ || !acceptor_->is_open()) return;
    if (!ec) {
      if (hub_->counters().connections.load() >= options_.max_connections) {
        beast::error_code ignored;
        s.close(ignored);
      } else if (tls_server_) {
        std::make_shared<HttpSession<sync::TlsStream>>(*this,
                                                       sync::TlsStream(std::move(s), *tls_server_))
            ->Run();
      } else {
        std::make_shared<HttpSession<beast::tcp_stream>>(*this, beast::tcp_stream(std::move(s)))
            ->Run();
      }
    }
    DoAccept();
  });
}

template <class Stream>
void RelayImpl::Upgrade(Stream stream, http::request<http::string_body> req) {
  sync::LinkConfig config = link_config_;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    config.log_session = next_session_++;
  }
  auto session = std::make_shared<sync::WsSession>(*hub_, std::move(stream), config, limits_);
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    // Forget sessions that have ended.
    sessions_.remove_if([](const auto& w) { return w.second.expired(); });
    sessions_.emplace_back(config.log_session, session);
  }
  session->Accept(std::move(req));
}

void RelayImpl::Stop(std::chrono::milliseconds grace) {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    stopping_ = true;
  }
  if (acceptor_) {
    net::post(acceptor_->get_executor(), [this] {
      beast::error_code ignored;
      acceptor_->close(ignored);
    });
  }
  for (auto& d : dialers_) d->Stop();
  std::list<std::pair<uint64_t, std::weak_ptr<sync::WsSession>>> sessions;
  {
    std::lock_guard lock(mu_);
    sessions = sessions_;
  }
  for (auto& w : sessions) {
    if (auto s = w.second.lock()) s->Close(1001, "the relay is shutting down");
  }
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (hub_ && hub_->counters().connections.load() > 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  ioc_.stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  if (log_.enabled() && hub_) {
    sync::LogEvent e;
    e.event = "relay.stop";
    e.counts = {{"changes_received", hub_->counters().changes_in.load()},
                {"changes_sent", hub_->counters().changes_out.load()}};
    log_.Write(e);
  }
}

RelayImpl::Lag RelayImpl::LagOf(const std::map<std::string, VersionVector>& acked,
                                const std::map<std::string, VersionVector>& peer_has) {
  Lag l;
  uint64_t now = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count());
  static const VersionVector kNone;
  for (const auto& [doc, a] : acked) {
    auto local = replica_->Version(doc);
    if (!local.ok()) continue;
    auto h = peer_has.find(doc);
    const VersionVector& has = h == peer_has.end() ? kNone : h->second;
    for (const auto& r : local->Subtract(a)) l.unacked_ops += r.last - r.first + 1;
    for (const auto& r : has.Subtract(*local)) l.behind_ops += r.last - r.first + 1;
    if (a.Dominates(*local)) continue;
    auto pending = replica_->ChangesSince(doc, a);
    if (!pending.ok() || pending->empty()) continue;
    l.unacked_changes += pending->size();
    if (auto c = crdt::DecodeChange(pending->front()); c.ok() && c->time.wall_ms > 0) {
      double age = now > c->time.wall_ms ? static_cast<double>(now - c->time.wall_ms) / 1000.0 : 0;
      l.oldest_age_s = std::max(l.oldest_age_s, age);
    }
  }
  return l;
}

RelayImpl::Lag RelayImpl::LagOf(const sync::Link& link) {
  std::map<std::string, VersionVector> acked, has;
  for (const auto& [doc, st] : link.Documents()) {
    if (!st.peer_sent_have) continue;
    acked[doc] = st.acked;
    has[doc] = st.peer_has;
  }
  return LagOf(acked, has);
}

uint64_t RelayImpl::Counter(const std::string& name) {
  auto& c = hub_->counters();
  if (name == "connections") return c.connections;
  if (name == "connections_total") return c.connections_total;
  if (name == "changes_in_total") return c.changes_in;
  if (name == "changes_out_total") return c.changes_out;
  if (name == "bytes_in_total") return c.bytes_in;
  if (name == "bytes_out_total") return c.bytes_out;
  if (name == "duplicates_dropped_total") return c.duplicates_in;
  if (name == "loops_dropped_total") return c.loops_dropped;
  if (name == "divergences_total") return c.divergences;
  if (name == "documents_stopped_total") return c.documents_stopped;
  if (name == "errors_sent_total") return c.errors_sent;
  if (name == "auth_refused_total") return c.auth_refused;
  if (name == "reads_denied_total") return c.reads_denied;
  if (name == "writes_denied_total") return c.writes_denied;
  if (name == "slow_consumers_total") return c.slow_consumers;
  if (name == "snapshots_sent_total") return c.snapshots_sent;
  if (name == "snapshots_received_total") return c.snapshots_received;
  if (name == "tls_handshake_failures_total") return tls_failures_;
  if (name == "signatures_refused_total") return replica_->Integrity().signatures_refused;
  if (name == "equivocations_total") return replica_->Integrity().equivocations;
  auto log = replica_->LogSync();
  if (name == "log_commits_total") return log.commits;
  if (name == "log_syncs_total") return log.syncs;
  if (name == "log_sync_failures_total") return log.failures;
  if (name == "log_checkpoints_total") return log.checkpoints;
  return 0;
}

std::string RelayImpl::Metrics() {
  std::ostringstream o;
  auto& c = hub_->counters();
  auto metric = [&](const char* name, const char* type, const char* help, uint64_t v) {
    o << "# HELP weft_relay_" << name << " " << help << "\n# TYPE weft_relay_" << name << " "
      << type << "\nweft_relay_" << name << " " << v << "\n";
  };
  metric("connections", "gauge", "Open sync connections (sessions and peer links).", c.connections);
  metric("connections_total", "counter", "Sync connections that completed a handshake.",
         c.connections_total);
  auto docs = replica_->ListDocuments();
  metric("documents", "gauge", "Documents stored.", docs.ok() ? docs->size() : 0);
  metric("changes_in_total", "counter", "New changes received and stored.", c.changes_in);
  metric("changes_out_total", "counter", "Changes sent.", c.changes_out);
  metric("bytes_in_total", "counter", "Frame bytes received.", c.bytes_in);
  metric("bytes_out_total", "counter", "Frame bytes sent.", c.bytes_out);
  metric("duplicates_dropped_total", "counter", "Received changes already held.", c.duplicates_in);
  metric("loops_dropped_total", "counter", "Batches dropped because their path named this relay.",
         c.loops_dropped);
  metric("divergences_total", "counter",
         "Documents a peer holds at this relay's version in another state (state digests differ).",
         c.divergences);
  metric("presence_in_total", "counter", "Presence messages received.", c.presence_in);
  metric("presence_out_total", "counter", "Presence messages sent.", c.presence_out);
  metric("errors_sent_total", "counter",
         "Error messages sent (each closes a connection or stops one document on it).",
         c.errors_sent);
  metric("documents_stopped_total", "counter",
         "Documents stopped on one connection: a damaged change in this relay's log, or an "
         "invalid change received (the connection's other documents go on).",
         c.documents_stopped);
  metric("auth_refused_total", "counter",
         "Handshakes refused: a session proof that does not verify, is replayed or expired, or a "
         "missing or bad admission token.",
         c.auth_refused);
  metric("reads_denied_total", "counter",
         "Documents a peer asked for or lost and may not read (no role in the access list).",
         c.reads_denied);
  metric("writes_denied_total", "counter",
         "Changes refused for lack of rights: an author without a writer role, a change past its "
         "author's revocation, or a device sending changes of another author.",
         c.writes_denied);
  const IntegrityCounters integrity = replica_->Integrity();
  metric("signatures_refused_total", "counter",
         "Changes refused because their author's signature did not verify: altered on the way, "
         "forged, or replayed into another document.",
         integrity.signatures_refused);
  metric("equivocations_total", "counter",
         "Authors caught signing two different changes at one seq (frozen in that document).",
         integrity.equivocations);
  metric("slow_consumers_total", "counter", "Connections closed for a full send queue.",
         c.slow_consumers);
  metric("snapshots_sent_total", "counter", "Document snapshots sent to bootstrap a peer.",
         c.snapshots_sent);
  metric("snapshots_received_total", "counter", "Document snapshots received and imported.",
         c.snapshots_received);
  metric("tls_handshake_failures_total", "counter",
         "Connections to the TLS listener closed for a failed TLS handshake (not TLS, or no "
         "common version or cipher).",
         tls_failures_);
  // Group commit (--durability full): commits per fsync is commits_total / syncs_total.
  auto log = replica_->LogSync();
  metric("log_commits_total", "counter", "Commits made durable by the log sync (group commit).",
         log.commits);
  metric("log_syncs_total", "counter", "Fsyncs of the log, each covering one commit or more.",
         log.syncs);
  metric("log_sync_failures_total", "counter",
         "Fsyncs of the log that failed (their changes were not acknowledged).", log.failures);
  metric("log_checkpoints_total", "counter", "WAL checkpoints run off the commit path.",
         log.checkpoints);
  // Per-peer lag: the relays this one dials (peer="URL"), and every accepted session
  // (session="N", node="peer node ID").
  std::ostringstream connected, unacked_ops, behind, unacked, age;
  auto sample = [](std::ostringstream& out, const char* name, const std::string& labels,
                   auto value) {
    out << "weft_relay_" << name << "{" << labels << "} " << value << "\n";
  };
  auto lag = [&](const char* prefix, const std::string& labels, const Lag& l) {
    std::string p(prefix);
    sample(unacked, (p + "_unacknowledged_changes").c_str(), labels, l.unacked_changes);
    sample(unacked_ops, (p + "_unacknowledged_operations").c_str(), labels, l.unacked_ops);
    sample(age, (p + "_oldest_unacknowledged_age_seconds").c_str(), labels, l.oldest_age_s);
    sample(behind, (p + "_behind_operations").c_str(), labels, l.behind_ops);
  };
  for (const auto& d : dialers_) {
    auto s = d->session();
    bool up = s && s->link().ready();
    std::string labels = "peer=\"" + d->url() + "\"";
    sample(connected, "peer_connected", labels, up ? 1 : 0);
    // Every document (a peer relay syncs them all), against what the peer acknowledged on this
    // link or earlier ones (kept in the replica), so the lag grows while the link is down.
    std::map<std::string, VersionVector> acked, has;
    if (auto all = replica_->ListDocuments(); all.ok()) {
      for (const auto& doc : *all) acked[doc];
    }
    if (auto stored = replica_->PeerVersions(d->url()); stored.ok()) {
      for (auto& [doc, v] : *stored) acked[doc].Merge(v);
    }
    if (s) {
      for (const auto& [doc, st] : s->link().Documents()) {
        acked[doc].Merge(st.acked);
        has[doc] = st.peer_has;
      }
    }
    lag("peer", labels, LagOf(acked, has));
  }
  std::list<std::pair<uint64_t, std::weak_ptr<sync::WsSession>>> sessions;
  {
    std::lock_guard lock(mu_);
    sessions = sessions_;
  }
  for (const auto& [id, w] : sessions) {
    auto s = w.lock();
    if (!s || !s->link().ready()) continue;
    std::string labels =
        "session=\"" + std::to_string(id) + "\",node=\"" + s->link().peer().ToHex() + "\"";
    lag("session", labels, LagOf(s->link()));
  }
  // Families in Prometheus order: one HELP/TYPE, then its samples (peers, then sessions).
  auto family = [&](const std::string& all, const char* name, const char* help) {
    o << "# HELP weft_relay_" << name << " " << help << "\n# TYPE weft_relay_" << name
      << " gauge\n";
    std::istringstream in(all);
    std::string line;
    std::string prefix = std::string("weft_relay_") + name + "{";
    while (std::getline(in, line)) {
      if (line.rfind(prefix, 0) == 0) o << line << "\n";
    }
  };
  std::string all_lag = unacked.str() + unacked_ops.str() + age.str() + behind.str();
  family(connected.str(), "peer_connected", "Whether the link to a --peer relay is up.");
  for (const char* who : {"peer", "session"}) {
    std::string w(who);
    std::string whom = w == "peer" ? "the --peer relay" : "the connected session's peer";
    family(all_lag, (w + "_unacknowledged_changes").c_str(),
           ("Changes held here that " + whom + " has not acknowledged.").c_str());
    family(all_lag, (w + "_unacknowledged_operations").c_str(),
           ("Operations held here that " + whom + " has not acknowledged.").c_str());
    family(all_lag, (w + "_oldest_unacknowledged_age_seconds").c_str(),
           ("Age of the oldest change " + whom + " has not acknowledged (0: none).").c_str());
    family(all_lag, (w + "_behind_operations").c_str(),
           ("Operations " + whom + " holds that this relay lacks.").c_str());
  }
  return o.str();
}

}  // namespace

std::string StorePath(const std::string& data_dir) {
  return data_dir + "/weft-relay.db";
}

Result<PublicKey> ReadKey(const RelayOptions& options) {
  if (options.store.empty()) return ReadKey(options.data_dir);
  auto r = OpenRelayReplica(options, ReplicaOptions{});
  if (!r.ok()) return r.status();
  return (*r)->public_key();
}

Result<PublicKey> ReadKey(const std::string& data_dir) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) return Status::IOError("cannot create " + data_dir + ": " + ec.message());
  auto r = Replica::Open(StorePath(data_dir));
  if (!r.ok()) return r.status();
  return (*r)->public_key();
}

Result<std::unique_ptr<Relay>> Relay::Start(RelayOptions options) {
  try {
    auto r = std::make_unique<RelayImpl>(std::move(options));
    WEFT_RETURN_IF_ERROR(r->Init());
    return std::unique_ptr<Relay>(std::move(r));
  } catch (const std::exception& e) {
    return Status(StatusCode::kInternal, std::string("starting the relay: ") + e.what());
  }
}

}  // namespace weft::relay
