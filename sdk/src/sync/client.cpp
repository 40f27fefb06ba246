// The SDK's sync client (see weft/sync.h): a Hub, an io_context on one thread, a Dialer per peer.
#include <pthread.h>

#include <atomic>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "sync/dialer.h"
#include "sync/hub.h"
#include "sync/session_auth.h"
#include "weft/crdt/document.h"
#include "weft/sync.h"

namespace weft {

const char* ConnectionStateName(ConnectionState state) {
  switch (state) {
    case ConnectionState::kConnecting: return "connecting";
    case ConnectionState::kConnected: return "connected";
    case ConnectionState::kBackoff: return "backoff";
    case ConnectionState::kStopped: return "stopped";
  }
  return "unknown";
}

namespace {

using namespace std::chrono_literals;
namespace net = boost::asio;
using sync::Dialer;
using sync::Hub;

uint64_t NowMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

uint64_t Ops(const std::vector<crdt::DotRange>& ranges) {
  uint64_t n = 0;
  for (const auto& r : ranges) n += r.last - r.first + 1;
  return n;
}

class SyncClientImpl final : public SyncClient {
 public:
  SyncClientImpl(Replica& replica, SyncOptions options)
      : replica_(replica), options_(std::move(options)), hub_(replica), work_(ioc_.get_executor()) {
    thread_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "weft-sync");  // for top -H, perf and debuggers
      ioc_.run();
    });
    presence_listener_ = hub_.AddListener([this](const sync::HubEvent& e) {
      if (e.kind != sync::HubEvent::Kind::kPresence) return;
      net::post(ioc_, [this, e] {
        PresenceCallback cb;
        {
          std::lock_guard lock(mu_);
          cb = presence_cb_;
        }
        if (cb) cb(PresenceEvent{e.doc, e.presence.node, e.presence.payload});
      });
    });
  }
  ~SyncClientImpl() override { Stop(std::chrono::milliseconds(1000)); }

  Status AddPeer(std::string_view url) override {
    auto parsed = sync::ParseWsUrl(url);
    if (!parsed.ok()) return parsed.status();
    std::lock_guard lock(mu_);
    if (stopped_) return Status(StatusCode::kAborted, "the sync client is stopped");
    if (dialers_.count(std::string(url))) return Status::Ok();
    sync::DialerOptions o;
    o.link.all_documents = options_.documents.empty();
    o.link.documents = options_.documents;
    o.link.credentials = options_.credentials;
    o.link.expected_peer = options_.relay_key;
    o.link.seal_min_seqs = options_.seal_min_seqs;
    o.link.ack_key = std::string(url);
    o.link.max_batch_changes = options_.max_batch_changes;
    // A device's Acks only tell its relays what it stored (their lag figures): one per document
    // every few milliseconds, not one per frame received.
    o.link.ack_delay = options_.ack_delay;
    o.link.max_batch_bytes = options_.max_batch_bytes;
    o.link.snapshot_chunk_bytes = options_.snapshot_chunk_bytes;
    o.link.max_snapshot_bytes = options_.max_snapshot_bytes;
    o.limits.max_frame_bytes = options_.max_frame_bytes;
    o.limits.max_queue_bytes = options_.max_send_queue_bytes;
    o.limits.connect_timeout = options_.connect_timeout;
    o.limits.handshake_timeout = options_.handshake_timeout;
    o.limits.idle_timeout = options_.idle_timeout;
    o.limits.anti_entropy_interval = options_.anti_entropy_interval;
    o.initial_backoff = options_.initial_backoff;
    o.max_backoff = options_.max_backoff;
    o.seed = options_.seed ? options_.seed + dialers_.size() : 0;
    if (parsed->tls) {
      if (!tls_) {
        auto ctx = sync::MakeClientTlsContext(options_.tls_ca_file);
        if (!ctx.ok()) return ctx.status();
        tls_ = std::move(*ctx);
      }
      o.tls = tls_;
    }
    auto d = std::make_shared<Dialer>(hub_, ioc_, std::string(url), std::move(*parsed), o);
    dialers_.emplace(std::string(url), d);
    d->Start();
    return Status::Ok();
  }

  Status RemovePeer(std::string_view url) override {
    std::shared_ptr<Dialer> d;
    {
      std::lock_guard lock(mu_);
      auto it = dialers_.find(std::string(url));
      if (it == dialers_.end()) return Status::NotFound("no peer " + std::string(url));
      d = it->second;
      dialers_.erase(it);
    }
    d->Stop();
    return Status::Ok();
  }

  std::vector<PeerStatus> Peers() override {
    std::vector<std::shared_ptr<Dialer>> ds = Dialers();
    std::vector<PeerStatus> out;
    for (const auto& d : ds) out.push_back(StatusOf(*d));
    return out;
  }

  Result<SyncSummary> WaitUntilSynced(std::string_view url,
                                      std::chrono::milliseconds timeout) override {
    return WaitUntilSyncedWith({std::string(url)}, 1, timeout);
  }

  Result<SyncSummary> WaitUntilSyncedWith(const std::vector<std::string>& urls, size_t quorum,
                                          std::chrono::milliseconds timeout) override {
    if (quorum == 0 || quorum > urls.size()) {
      return Status::InvalidArgument("a quorum of " + std::to_string(quorum) + " of " +
                                     std::to_string(urls.size()) + " peers");
    }
    struct Wait {
      std::shared_ptr<Dialer> dialer;
      std::string waiting = "the connection";
      std::optional<Status> failed;  // the peer's refusal: decided, not synced
      std::optional<SyncSummary> synced;
    };
    std::vector<Wait> waits;
    for (const std::string& url : urls) {
      std::shared_ptr<Dialer> d = Find(url);
      if (!d) return Status::NotFound("no peer " + url);
      waits.emplace_back().dialer = std::move(d);
    }
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      size_t synced = 0, failed = 0;
      for (Wait& w : waits) {
        if (!w.synced && !w.failed) Poll(w.dialer, &w.waiting, &w.failed, &w.synced);
        synced += w.synced.has_value();
        failed += w.failed.has_value();
      }
      bool timed_out = std::chrono::steady_clock::now() >= deadline;
      if (synced >= quorum || waits.size() - failed < quorum || timed_out) {
        if (synced >= quorum) {
          SyncSummary sum;
          for (const Wait& w : waits) {
            if (!w.synced) continue;
            sum.changes_sent += w.synced->changes_sent;
            sum.changes_received += w.synced->changes_received;
            sum.documents = std::max(sum.documents, w.synced->documents);
          }
          return sum;
        }
        // Why not: one peer's own error as it was; several, each named.
        if (waits.size() == 1) {
          if (waits[0].failed) return *waits[0].failed;
          return TimedOut(*waits[0].dialer, waits[0].waiting, timeout);
        }
        std::string why;
        StatusCode code = timed_out ? StatusCode::kTimeout : StatusCode::kAborted;
        for (const Wait& w : waits) {
          if (w.synced) continue;
          why += "; " + (w.failed ? w.failed->ToString()
                                  : TimedOut(*w.dialer, w.waiting, timeout).message());
        }
        return Status(code, std::to_string(synced) + " of " + std::to_string(waits.size()) +
                                " peers synced, " + std::to_string(quorum) + " needed" + why);
      }
      std::this_thread::sleep_for(10ms);
    }
  }

  Status WaitForAck(std::string_view doc, const VersionVector& version,
                    std::chrono::milliseconds timeout, std::string_view url) override {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      for (const auto& d : Dialers()) {
        if (!url.empty() && d->url() != url) continue;
        if (LiveAck(*d, doc, version)) return Status::Ok();
      }
      if (std::chrono::steady_clock::now() >= deadline) break;
      std::this_thread::sleep_for(5ms);
    }
    return Status(StatusCode::kTimeout, "no peer acknowledged the change in time");
  }

  Status WaitForAcks(std::string_view doc, const VersionVector& version, size_t quorum,
                     std::chrono::milliseconds timeout) override {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    // A peer that acknowledged stays counted (its acknowledgement is durable there), even if its
    // connection drops while others are awaited.
    std::set<std::string> acked;
    while (true) {
      std::vector<std::shared_ptr<Dialer>> ds = Dialers();
      if (quorum == 0 || quorum > ds.size()) {
        return Status::InvalidArgument("a quorum of " + std::to_string(quorum) + " of " +
                                       std::to_string(ds.size()) + " peers");
      }
      for (const auto& d : ds) {
        if (acked.count(d->url())) continue;
        if (LiveAck(*d, doc, version) || StoredAck(d->url(), doc, version)) acked.insert(d->url());
      }
      if (acked.size() >= quorum) return Status::Ok();
      if (std::chrono::steady_clock::now() >= deadline) break;
      std::this_thread::sleep_for(5ms);
    }
    return Status(StatusCode::kTimeout, std::to_string(acked.size()) + " of " +
                                            std::to_string(quorum) +
                                            " peers needed acknowledged the change in time");
  }

  Status PublishPresence(std::string_view doc, std::string payload) override {
    if (payload.size() > 64 * 1024) return Status::InvalidArgument("presence over 64 KiB");
    size_t sent = 0;
    for (const auto& d : Dialers()) {
      auto s = d->session();
      if (!s || !s->link().ready()) continue;
      s->PostToLink([doc = std::string(doc), payload](sync::Link& link) {
        (void)link.PublishPresence(doc, payload);
      });
      ++sent;
    }
    return sent ? Status::Ok() : Status(StatusCode::kDisconnected, "no peer is connected");
  }

  void SetPresenceCallback(PresenceCallback callback) override {
    std::lock_guard lock(mu_);
    presence_cb_ = std::move(callback);
  }

  void Stop(std::chrono::milliseconds grace) override {
    std::map<std::string, std::shared_ptr<Dialer>> ds;
    {
      std::lock_guard lock(mu_);
      if (stopped_) return;
      stopped_ = true;
      ds.swap(dialers_);
    }
    hub_.RemoveListener(presence_listener_);
    for (auto& [url, d] : ds) d->Stop();
    auto deadline = std::chrono::steady_clock::now() + grace;
    while (hub_.counters().connections.load() > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(5ms);
    }
    work_.reset();
    ioc_.stop();
    if (thread_.joinable()) thread_.join();
    // Handlers still queued hold sessions; they are destroyed with ioc_, before hub_.
  }

 private:
  static std::string url_str(std::string_view url) { return std::string(url); }

  // One look at a peer being waited for: sets *synced (both sides hold each other's changes and
  // the peer acknowledged them) or *failed (the peer refused), else says in *waiting what is
  // awaited.
  static void Poll(const std::shared_ptr<Dialer>& d, std::string* waiting,
                   std::optional<Status>* failed, std::optional<SyncSummary>* synced) {
    const std::string& url = d->url();
    auto s = d->session();
    if (s) {
      if (s->link().Converged(waiting)) {
        SyncSummary sum;
        sum.changes_sent = d->changes_sent();
        sum.changes_received = d->changes_received();
        sum.documents = s->link().Documents().size();
        *synced = sum;
      } else if (s->link().refused()) {
        *failed = Status(StatusCode::kAborted, url + ": " + s->link().last_error());
      } else if (std::string denied = s->link().denied(); !denied.empty()) {
        *failed = Status(StatusCode::kPermissionDenied, url + ": " + denied);
      }
    } else if (d->untrusted()) {
      *failed = Status(StatusCode::kPermissionDenied, url + ": " + d->last_error());
    }
  }
  static Status TimedOut(const Dialer& d, const std::string& waiting,
                         std::chrono::milliseconds timeout) {
    std::string last = d.last_error();
    return Status(StatusCode::kTimeout, "sync with " + d.url() + " did not complete in " +
                                            std::to_string(timeout.count()) + " ms: waiting for " +
                                            waiting +
                                            (last.empty() ? "" : "; last error: " + last));
  }
  // The peer's acknowledgement on its current connection covers `version` of `doc`.
  static bool LiveAck(const Dialer& d, std::string_view doc, const VersionVector& version) {
    auto s = d.session();
    if (!s) return false;
    auto docs = s->link().Documents();
    auto it = docs.find(std::string(doc));
    return it != docs.end() && it->second.acked.Dominates(version);
  }
  // What the replica keeps of the peer's acknowledgements covers `version` of `doc`.
  bool StoredAck(const std::string& url, std::string_view doc, const VersionVector& version) {
    auto stored = replica_.PeerVersions(url);
    if (!stored.ok()) return false;
    for (const auto& [d, v] : *stored) {
      if (d == doc) return v.Dominates(version);
    }
    return false;
  }

  std::vector<std::shared_ptr<Dialer>> Dialers() {
    std::lock_guard lock(mu_);
    std::vector<std::shared_ptr<Dialer>> out;
    for (const auto& [url, d] : dialers_) out.push_back(d);
    return out;
  }
  std::shared_ptr<Dialer> Find(std::string_view url) {
    std::lock_guard lock(mu_);
    auto it = dialers_.find(std::string(url));
    return it == dialers_.end() ? nullptr : it->second;
  }

  PeerStatus StatusOf(const Dialer& d) {
    PeerStatus p;
    p.url = d.url();
    p.state = d.state();
    p.last_error = d.last_error();
    p.failed_attempts = d.failed_attempts();
    p.changes_sent = d.changes_sent();
    p.changes_received = d.changes_received();
    p.duplicates_received = d.duplicates();
    std::map<std::string, sync::LinkDocState> live;
    if (auto s = d.session()) {
      if (s->link().peer().valid()) p.peer_node = s->link().peer();
      p.peer_is_relay = s->link().peer_is_relay();
      live = s->link().Documents();
    }
    // Documents: those of the live link, those acknowledged before, and the local ones synced.
    std::map<std::string, VersionVector> acked;
    if (auto stored = replica_.PeerVersions(d.url()); stored.ok()) {
      for (auto& [doc, v] : *stored) acked[doc] = std::move(v);
    }
    std::vector<std::string> docs = options_.documents;
    if (docs.empty()) {
      if (auto local = replica_.ListDocuments(); local.ok()) docs = std::move(*local);
      for (const auto& [doc, v] : acked) docs.push_back(doc);
      for (const auto& [doc, st] : live) docs.push_back(doc);
      std::sort(docs.begin(), docs.end());
      docs.erase(std::unique(docs.begin(), docs.end()), docs.end());
    }
    uint64_t now = NowMs();
    for (const auto& doc : docs) {
      DocumentSyncStatus ds;
      ds.doc = doc;
      VersionVector known;
      if (auto it = acked.find(doc); it != acked.end()) ds.acknowledged = it->second;
      if (auto it = live.find(doc); it != live.end()) {
        ds.live = it->second.we_sent_have && it->second.peer_sent_have;
        ds.diverged = it->second.diverged;
        ds.error = it->second.stopped;
        ds.acknowledged.Merge(it->second.acked);
        known = it->second.peer_has;
        ds.changes_sent = it->second.changes_sent;
        ds.changes_received = it->second.changes_received;
        ds.incoming_remaining = it->second.peer_remaining;
        ds.snapshot_bytes_received = it->second.snapshot_in_bytes;
        ds.snapshot_bytes_received_total = it->second.snapshot_in_total;
        ds.snapshot_bytes_sent = it->second.snapshot_out_bytes;
        ds.snapshot_bytes_sent_total = it->second.snapshot_out_total;
        ds.snapshots_received = it->second.snapshots_received;
        ds.snapshots_sent = it->second.snapshots_sent;
      }
      known.Merge(ds.acknowledged);
      if (auto pending = replica_.ChangesSince(doc, ds.acknowledged); pending.ok()) {
        ds.unacknowledged_changes = pending->size();
        if (!pending->empty()) {
          if (auto c = crdt::DecodeChange(pending->front()); c.ok() && c->time.wall_ms > 0) {
            uint64_t t = c->time.wall_ms;
            ds.oldest_unacknowledged_age = std::chrono::milliseconds(now > t ? now - t : 0);
          }
        }
      }
      if (auto local = replica_.Version(doc); local.ok()) {
        ds.behind_operations = Ops(known.Subtract(*local));
      } else {
        ds.behind_operations = known.TotalOps();
      }
      p.documents.push_back(std::move(ds));
    }
    return p;
  }

  Replica& replica_;
  SyncOptions options_;
  Hub hub_;
  net::io_context ioc_;
  net::executor_work_guard<net::io_context::executor_type> work_;
  std::thread thread_;
  uint64_t presence_listener_ = 0;

  std::mutex mu_;
  bool stopped_ = false;
  std::map<std::string, std::shared_ptr<Dialer>> dialers_;
  std::shared_ptr<sync::ssl::context> tls_;  // made for the first wss:// peer
  PresenceCallback presence_cb_;
};

}  // namespace

Result<std::unique_ptr<SyncClient>> SyncClient::Create(Replica& replica, SyncOptions options) {
  if (options.max_batch_changes == 0 || options.max_batch_changes > 4096) {
    return Status::InvalidArgument("max_batch_changes is 1 to 4096");
  }
  if (options.max_frame_bytes < 4096) return Status::InvalidArgument("max_frame_bytes too small");
  if (options.max_batch_bytes == 0 || options.max_batch_bytes >= options.max_frame_bytes) {
    return Status::InvalidArgument("max_batch_bytes must be below max_frame_bytes");
  }
  if (options.snapshot_chunk_bytes == 0 ||
      options.snapshot_chunk_bytes + 4096 >= options.max_frame_bytes) {
    return Status::InvalidArgument("snapshot_chunk_bytes must be well below max_frame_bytes");
  }
  if (options.initial_backoff.count() <= 0 || options.max_backoff < options.initial_backoff) {
    return Status::InvalidArgument("backoff: 0 < initial <= max");
  }
  for (const auto& d : options.documents) {
    if (d.empty() || d.size() > 1024) return Status::InvalidArgument("bad document ID");
  }
  if (!options.tls_ca_file.empty()) {
    // A CA file that cannot be used is an error now rather than a failure of every connection.
    auto ctx = sync::MakeClientTlsContext(options.tls_ca_file);
    if (!ctx.ok()) return ctx.status();
  }
  try {
    return std::unique_ptr<SyncClient>(new SyncClientImpl(replica, std::move(options)));
  } catch (const std::exception& e) {
    return Status(StatusCode::kInternal, std::string("starting the sync client: ") + e.what());
  }
}

Result<SyncSummary> SyncOnce(Replica& replica, std::string_view url,
                             const std::vector<std::string>& documents,
                             std::chrono::milliseconds timeout, SyncOptions options) {
  return SyncOnce(replica, {std::string(url)}, 1, documents, timeout, std::move(options));
}

Result<SyncSummary> SyncOnce(Replica& replica, const std::vector<std::string>& urls, size_t quorum,
                             const std::vector<std::string>& documents,
                             std::chrono::milliseconds timeout, SyncOptions options) {
  if (quorum == 0 || quorum > urls.size()) {
    return Status::InvalidArgument("a quorum of " + std::to_string(quorum) + " of " +
                                   std::to_string(urls.size()) + " peers");
  }
  options.documents = documents;
  auto client = SyncClient::Create(replica, std::move(options));
  if (!client.ok()) return client.status();
  for (const std::string& url : urls) WEFT_RETURN_IF_ERROR((*client)->AddPeer(url));
  auto r = (*client)->WaitUntilSyncedWith(urls, quorum, timeout);
  (*client)->Stop();
  return r;
}

Result<std::string> IssueAdmissionToken(const Replica& issuer, const PublicKey& device,
                                        std::chrono::seconds ttl) {
  if (!device.valid()) return Status::InvalidArgument("no device key to admit");
  if (ttl.count() <= 0) return Status::InvalidArgument("an admission token needs a positive ttl");
  return sync::IssueAdmissionToken(issuer, device,
                                   sync::UnixNow() + static_cast<uint64_t>(ttl.count()));
}

}  // namespace weft
