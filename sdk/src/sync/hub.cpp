// The hub shared by a replica's sync connections (see hub.h).
#include "sync/hub.h"

namespace weft::sync {
namespace {
constexpr size_t kMaxPaths = 1 << 16;
}

Hub::Hub(Replica& replica) : replica_(replica), self_(replica.node_id()) {
  feed_id_ = replica_.Subscribe("", [this](const ChangeEvent& ev) {
    HubEvent e;
    e.kind = HubEvent::Kind::kDocChanged;
    e.doc = ev.doc;
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
  return id;
}

void Hub::RemoveListener(uint64_t id) {
  std::lock_guard lock(mu_);
  listeners_.erase(id);
}

void Hub::Broadcast(const HubEvent& event) {
  std::vector<std::function<void(const HubEvent&)>> targets;
  {
    std::lock_guard lock(mu_);
    targets.reserve(listeners_.size());
    for (const auto& [id, fn] : listeners_) {
      if (id != event.origin) targets.push_back(fn);
    }
  }
  for (const auto& fn : targets) fn(event);
}

void Hub::RecordPath(const std::string& doc, const std::vector<crdt::Dot>& ids,
                     const std::vector<NodeId>& path) {
  if (path.empty()) return;
  std::lock_guard lock(mu_);
  ++path_clock_;
  for (const auto& id : ids) {
    PathKey key(doc, id);
    auto [it, inserted] = paths_.insert_or_assign(key, PathEntry{path, path_clock_});
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

}  // namespace weft::sync
