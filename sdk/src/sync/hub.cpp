// The hub shared by a replica's sync connections (see hub.h).
#include "sync/hub.h"

#include "weft/crdt/document.h"

namespace weft::sync {
namespace {
constexpr size_t kMaxPaths = 1 << 16;
constexpr size_t kMaxRecent = 1 << 14;         // changes remembered for fan-out
constexpr size_t kMaxRecentBytes = 32u << 20;  // and their bytes
}  // namespace

Hub::Hub(Replica& replica) : replica_(replica), self_(replica.node_id()) {
  feed_id_ = replica_.Subscribe("", [this](const ChangeEvent& ev) {
    if (ev.snapshot) {
      // A new base: forget the cached one.
      std::lock_guard lock(mu_);
      bases_.erase(ev.doc);
      ++bases_generation_;
    }
    // Changes another relay stored in a shared store: remembered, so that connections fanning
    // them out read no log.
    if (!ev.followed.empty()) {
      std::vector<RecentChange> recent;
      recent.reserve(ev.followed.size());
      for (const std::string& blob : ev.followed) {
        auto c = crdt::DecodeChange(blob);
        if (!c.ok()) break;  // applied from the log, so it decodes; the log serves it otherwise
        recent.push_back({c->id(), c->end_seq(), c->lamport, std::move(c->deps), blob});
      }
      Remember(ev.doc, std::move(recent));
    }
    HubEvent e;
    e.kind = HubEvent::Kind::kDocChanged;
    e.doc = ev.doc;
    e.access = ev.access || ev.snapshot;
    Broadcast(e);
  });
}

Hub::~Hub() {
  replica_.Unsubscribe(feed_id_);
}

uint64_t Hub::AddListener(std::function<void(const HubEvent&)> fn) {
  std::lock_guard lock(mu_);
  uint64_t id = next_id_++;
  listeners_.emplace(id, std::move(fn));
  wide_.insert(id);
  return id;
}

void Hub::RemoveListener(uint64_t id) {
  std::lock_guard lock(mu_);
  listeners_.erase(id);
  wide_.erase(id);
  if (auto it = docs_of_.find(id); it != docs_of_.end()) {
    for (const std::string& doc : it->second) {
      auto d = by_doc_.find(doc);
      d->second.erase(id);
      if (d->second.empty()) by_doc_.erase(d);
    }
    docs_of_.erase(it);
  }
}

void Hub::Narrow(uint64_t id) {
  std::lock_guard lock(mu_);
  wide_.erase(id);
}

void Hub::Widen(uint64_t id) {
  std::lock_guard lock(mu_);
  if (listeners_.count(id) != 0) wide_.insert(id);
}

void Hub::Listen(uint64_t id, const std::string& doc) {
  std::lock_guard lock(mu_);
  if (listeners_.count(id) == 0 || !docs_of_[id].insert(doc).second) return;
  by_doc_[doc].insert(id);
}

void Hub::Broadcast(const HubEvent& event) {
  std::vector<std::function<void(const HubEvent&)>> targets;
  {
    std::lock_guard lock(mu_);
    auto hear = [&](uint64_t id) {
      if (id != event.origin) targets.push_back(listeners_.at(id));
    };
    for (uint64_t id : wide_) hear(id);
    if (auto it = by_doc_.find(event.doc); it != by_doc_.end()) {
      for (uint64_t id : it->second) {
        if (wide_.count(id) == 0) hear(id);
      }
    }
  }
  for (const auto& fn : targets) fn(event);
}

void Hub::RecordPath(const std::string& doc, const std::vector<crdt::Dot>& ids,
                     const std::vector<NodeId>& path,
                     const std::vector<std::vector<NodeId>>& routes) {
  if (path.empty() && routes.empty()) return;
  std::lock_guard lock(mu_);
  ++path_clock_;
  for (size_t i = 0; i < ids.size(); ++i) {
    std::vector<NodeId> full = i < routes.size() ? routes[i] : std::vector<NodeId>{};
    full.insert(full.end(), path.begin(), path.end());
    if (full.empty()) continue;
    PathKey key(doc, ids[i]);
    auto [it, inserted] = paths_.insert_or_assign(key, PathEntry{std::move(full), path_clock_});
    if (inserted) path_order_.push_back(std::move(key));
  }
  while (path_order_.size() > kMaxPaths) {
    paths_.erase(path_order_.front());
    path_order_.pop_front();
  }
}

std::vector<NodeId> Hub::PathOf(const std::string& doc, const crdt::Dot& id,
                                uint64_t* recorded_at) const {
  std::lock_guard lock(mu_);
  auto it = paths_.find(PathKey(doc, id));
  if (it == paths_.end()) return {};
  if (recorded_at) *recorded_at = it->second.recorded_at;
  return it->second.path;
}

Result<Hub::Digest> Hub::StateDigest(const std::string& doc) {
  auto version = replica_.Version(doc);
  if (!version.ok()) return version.status();
  {
    std::lock_guard lock(mu_);
    auto it = digests_.find(doc);
    if (it != digests_.end() && it->second.version == *version) return it->second;
  }
  Digest d;
  WEFT_RETURN_IF_ERROR(replica_.Read(doc, [&](const View& v) {
    d.version = v.version();
    uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a, 64-bit
    for (unsigned char c : v.CanonicalState()) h = (h ^ c) * 0x100000001b3ull;
    d.digest = h == 0 ? 1 : h;  // 0 means "not given"
  }));
  std::lock_guard lock(mu_);
  if (digests_.size() >= kMaxPaths) digests_.clear();  // bounded, like the paths
  digests_[doc] = d;
  return d;
}

uint64_t Hub::PathClock() const {
  std::lock_guard lock(mu_);
  return path_clock_;
}

void Hub::Remember(const std::string& doc, std::vector<RecentChange> changes) {
  std::lock_guard lock(mu_);
  auto& by_author = recent_[doc];
  for (auto& c : changes) {
    auto& slot = by_author[c.id.node][c.id.seq];
    if (slot) continue;
    recent_bytes_ += c.blob.size();
    recent_order_.emplace_back(doc, c.id);
    slot = std::make_shared<const RecentChange>(std::move(c));
  }
  while (recent_order_.size() > kMaxRecent || recent_bytes_ > kMaxRecentBytes) {
    const auto& [d, id] = recent_order_.front();
    auto di = recent_.find(d);
    if (di != recent_.end()) {
      auto ai = di->second.find(id.node);
      if (ai != di->second.end()) {
        auto ci = ai->second.find(id.seq);
        if (ci != ai->second.end()) {
          recent_bytes_ -= ci->second->blob.size();
          ai->second.erase(ci);
        }
        if (ai->second.empty()) di->second.erase(ai);
      }
      if (di->second.empty()) recent_.erase(di);
    }
    recent_order_.pop_front();
  }
}

std::optional<std::vector<std::shared_ptr<const RecentChange>>> Hub::RecentSince(
    const std::string& doc, const VersionVector& known, const VersionVector& local) const {
  std::vector<std::shared_ptr<const RecentChange>> out;
  {
    std::lock_guard lock(mu_);
    auto di = recent_.find(doc);
    if (di == recent_.end()) return std::nullopt;
    for (const auto& r : local.Subtract(known)) {
      auto ai = di->second.find(r.node);
      if (ai == di->second.end()) return std::nullopt;
      const auto& m = ai->second;
      // The change holding `first`, then consecutive ones up to `last`.
      auto it = m.upper_bound(r.first);
      if (it == m.begin()) return std::nullopt;
      --it;
      uint64_t next = r.first;
      while (next <= r.last) {
        if (it == m.end() || it->second->id.seq > next || it->second->end < next) {
          return std::nullopt;
        }
        out.push_back(it->second);
        next = it->second->end + 1;
        ++it;
      }
    }
  }
  // A causal order: by Lamport time, then checked against every change's dependencies (a
  // dishonest Lamport time falls back to the log).
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return std::tie(a->lamport, a->id) < std::tie(b->lamport, b->id);
  });
  VersionVector have = known;
  for (const auto& c : out) {
    if (!have.Dominates(c->deps) || have.Get(c->id.node) + 1 < c->id.seq) return std::nullopt;
    have.Advance(c->id.node, c->end);
  }
  return out;
}

bool Hub::MayRead(const std::string& doc, const PublicKey& key) {
  return replica_.MayRead(doc, key);
}

VersionVector Hub::BaseVersion(const std::string& doc) {
  uint64_t generation = 0;
  {
    std::lock_guard lock(mu_);
    if (auto it = bases_.find(doc); it != bases_.end()) return it->second;
    generation = bases_generation_;
  }
  auto b = replica_.BaseVersion(doc);
  if (!b.ok()) return {};  // absent (or unreadable: the log read that follows reports it)
  std::lock_guard lock(mu_);
  // Cache it unless an import happened meanwhile (it may be stale).
  if (generation == bases_generation_) bases_[doc] = *b;
  return *b;
}

std::optional<Hub::Upload> Hub::LastUpload(const std::string& doc, const PublicKey& peer) const {
  std::lock_guard lock(mu_);
  auto it = uploads_.find({doc, peer});
  if (it == uploads_.end()) return std::nullopt;
  return it->second;
}

void Hub::NoteUpload(const std::string& doc, const PublicKey& peer, Upload upload) {
  std::lock_guard lock(mu_);
  uploads_[{doc, peer}] = upload;
}

}  // namespace weft::sync
