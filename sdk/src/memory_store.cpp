// MemoryStore (memory_store.h): the tables of SqliteStore as maps, under one lock.
#include "memory_store.h"

#include <algorithm>
#include <mutex>
#include <random>
#include <shared_mutex>

#include "op_log.h"
#include "weft/crdt/history.h"

namespace weft::store {

namespace {

struct Row {
  NodeId author;
  uint64_t start_seq = 0, end_seq = 0;
  uint32_t crc = 0;
  std::string data;
};

struct Segment {
  SegmentInfo info;  // heads included
  std::string data;
};

// One document's log: rows by seq, their keys, and segments by ID.
struct Log {
  std::map<uint64_t, Row> rows;
  std::map<std::pair<uint64_t, uint64_t>, uint64_t> by_author;  // (author, start_seq) -> seq
  std::map<uint64_t, Segment> segments;

  // Segments in log order (by last_seq).
  std::vector<const Segment*> Ordered() const {
    std::vector<const Segment*> out;
    for (const auto& [id, s] : segments) out.push_back(&s);
    std::sort(out.begin(), out.end(), [](const Segment* a, const Segment* b) {
      return a->info.last_seq < b->info.last_seq;
    });
    return out;
  }
};

}  // namespace

class MemoryStorage {
 public:
  // What is each store name's own: its node ID, metadata and peers' versions.
  struct Owner {
    NodeId node;
    std::map<std::string, std::string> meta;
    std::map<std::pair<std::string, std::string>, VersionVector> peers;
  };

  std::shared_mutex mu;
  std::map<std::string, Owner, std::less<>> owners;  // by store name
  // Per document, its last seq: seqs are per document, and never reused (not even after the
  // document is deleted and made again).
  std::map<std::string, uint64_t, std::less<>> last_seqs;
  uint64_t last_segment = 0;
  std::map<std::string, int64_t, std::less<>> documents;
  std::map<std::string, Log, std::less<>> logs;
  std::map<std::string, StoredSnapshot, std::less<>> snapshots;
  std::map<std::string, BaseSnapshot, std::less<>> bases;
  std::map<std::string, SealedSnapshotRecord, std::less<>> sealed;
  std::map<std::pair<std::string, uint64_t>, EquivocationRecord> equivocations;

  // Watchers of every store open on this storage, with the store each watches through: a write
  // through one notifies all, as foreign to the others.
  std::mutex watch_mu;
  uint64_t next_watch = 1;
  std::map<uint64_t, std::pair<Watcher, const void*>> watchers;

  void Notify(StoredNotice notice, const void* writer) {
    std::vector<std::pair<Watcher, const void*>> targets;
    {
      std::lock_guard lock(watch_mu);
      for (const auto& [id, w] : watchers) targets.push_back(w);
    }
    for (const auto& [w, store] : targets) {
      notice.foreign = store != writer;
      w(notice);
    }
  }
};

std::shared_ptr<MemoryStorage> NewMemoryStorage() {
  return std::make_shared<MemoryStorage>();
}

namespace {

std::string Decimal(const MetaEntry& e) {
  return e.type == MetaType::kInteger ? std::to_string(std::stoll(e.value)) : e.value;
}

class MemoryStore final : public Store {
 public:
  MemoryStore(std::shared_ptr<MemoryStorage> s, MemoryStorage::Owner* owner)
      : s_(std::move(s)), owner_(owner) {}
  ~MemoryStore() override { (void)Close(); }

  NodeId node_id() const override { return owner_->node; }
  const std::string& path() const override { return path_; }
  bool Shared() const override { return true; }

  Result<std::map<std::string, std::string>> GetMeta(
      const std::vector<std::string>& keys) override {
    std::shared_lock lock(s_->mu);
    std::map<std::string, std::string> out;
    for (const std::string& k : keys) {
      if (auto it = owner_->meta.find(k); it != owner_->meta.end()) out[k] = it->second;
    }
    return out;
  }

  Status PutMeta(const std::vector<MetaEntry>& entries) override {
    WEFT_RETURN_IF_ERROR(oplog::CheckMetaEntries(entries));
    std::unique_lock lock(s_->mu);
    for (const MetaEntry& e : entries) owner_->meta[e.key] = Decimal(e);
    return Status::Ok();
  }

  Result<bool> PutMetaIf(const std::vector<std::pair<std::string, std::string>>& expect,
                         const std::vector<MetaEntry>& put) override {
    WEFT_RETURN_IF_ERROR(oplog::CheckMetaEntries(put));
    std::unique_lock lock(s_->mu);
    for (const auto& [key, value] : expect) {
      auto it = owner_->meta.find(key);
      if (it == owner_->meta.end() || it->second != value) return false;
    }
    for (const MetaEntry& e : put) owner_->meta[e.key] = Decimal(e);
    return true;
  }

  Result<std::vector<std::string>> ListDocuments() override {
    std::shared_lock lock(s_->mu);
    std::vector<std::string> out;
    for (const auto& [doc, ms] : s_->documents) out.push_back(doc);
    return out;
  }

  Result<bool> HasDocument(std::string_view doc) override {
    std::shared_lock lock(s_->mu);
    return s_->documents.find(doc) != s_->documents.end();
  }

  Status CreateDocument(std::string_view doc, int64_t created_ms) override {
    std::unique_lock lock(s_->mu);
    s_->documents.emplace(std::string(doc), created_ms);
    return Status::Ok();
  }

  Status DeleteDocument(std::string_view doc) override {
    std::unique_lock lock(s_->mu);
    auto it = s_->documents.find(doc);
    if (it == s_->documents.end()) {
      return Status::NotFound("no document \"" + std::string(doc) + "\"");
    }
    s_->documents.erase(it);
    const std::string d(doc);
    s_->logs.erase(d);
    s_->snapshots.erase(d);
    s_->bases.erase(d);
    s_->sealed.erase(d);
    for (auto e = s_->equivocations.lower_bound({d, 0});
         e != s_->equivocations.end() && e->first.first == d;) {
      e = s_->equivocations.erase(e);
    }
    return Status::Ok();
  }

  Result<AppendResult> AppendChanges(std::string_view doc, int64_t now_ms,
                                     const std::vector<NewChange>& changes) override {
    AppendResult out;
    {
      std::unique_lock lock(s_->mu);
      s_->documents.emplace(std::string(doc), now_ms);
      Log& log = s_->logs[std::string(doc)];
      for (const NewChange& c : changes) {
        auto [it, fresh] = log.by_author.try_emplace({c.author.value, c.start_seq}, 0);
        if (!fresh) continue;  // held already
        const uint64_t seq = ++s_->last_seqs[std::string(doc)];
        it->second = seq;
        log.rows.emplace(
            seq, Row{c.author, c.start_seq, c.end_seq, crdt::Crc32c(c.data), std::string(c.data)});
        if (out.stored++ == 0) out.first_seq = seq;
        out.last_seq = seq;
      }
    }
    if (out.stored > 0) s_->Notify({std::string(doc), out.first_seq, out.last_seq}, this);
    return out;
  }

  Status ReadLog(std::string_view doc, const LogRead& read) override {
    std::shared_lock lock(s_->mu);
    if (read.base) {
      if (auto it = s_->bases.find(doc); it != s_->bases.end()) {
        WEFT_RETURN_IF_ERROR(read.base(it->second.data));
      }
    }
    auto lit = s_->logs.find(doc);
    if (lit == s_->logs.end()) return Status::Ok();
    const Log& log = lit->second;
    if (read.segment) {
      for (const Segment* seg : log.Ordered()) {
        if (seg->info.last_seq <= read.after) continue;
        SegmentInfo info = seg->info;
        if (!read.with_heads) info.heads = VersionVector();
        if (read.want_segment && !read.want_segment(info)) continue;
        WEFT_RETURN_IF_ERROR(read.segment(info, seg->data));
      }
    }
    if (!read.row || read.upto <= read.after) return Status::Ok();
    auto offer = [&](uint64_t seq, const Row& r) -> Status {
      if (seq <= read.after || seq > read.upto) return Status::Ok();
      RowInfo info{seq, r.author, r.start_seq, r.end_seq};
      if (read.want_row && !read.want_row(info)) return Status::Ok();
      WEFT_RETURN_IF_ERROR(oplog::CheckRow(doc, seq, r.crc, r.data));
      return read.row(info, r.data);
    };
    if (read.authors) {
      // Per author: the row holding the given seq (or the first after it), and the rows after.
      std::vector<uint64_t> seqs;
      for (const auto& [author, seq] : *read.authors) {
        auto it = log.by_author.upper_bound({author.value, seq});
        if (it != log.by_author.begin() && std::prev(it)->first.first == author.value) --it;
        for (; it != log.by_author.end() && it->first.first == author.value; ++it) {
          seqs.push_back(it->second);
        }
      }
      std::sort(seqs.begin(), seqs.end());
      for (uint64_t seq : seqs) WEFT_RETURN_IF_ERROR(offer(seq, log.rows.at(seq)));
      return Status::Ok();
    }
    for (auto it = log.rows.upper_bound(read.after); it != log.rows.end(); ++it) {
      if (it->first > read.upto) break;
      WEFT_RETURN_IF_ERROR(offer(it->first, it->second));
    }
    return Status::Ok();
  }

  Result<std::optional<FoundRow>> FindRow(std::string_view doc, NodeId author,
                                          uint64_t seq) override {
    std::shared_lock lock(s_->mu);
    auto lit = s_->logs.find(doc);
    if (lit == s_->logs.end()) return std::optional<FoundRow>();
    const Log& log = lit->second;
    auto it = log.by_author.upper_bound({author.value, seq});
    if (it == log.by_author.begin() || std::prev(it)->first.first != author.value) {
      return std::optional<FoundRow>();
    }
    --it;
    const Row& r = log.rows.at(it->second);
    WEFT_RETURN_IF_ERROR(oplog::CheckRow(doc, it->second, r.crc, r.data));
    return std::optional<FoundRow>(
        FoundRow{{it->second, r.author, r.start_seq, r.end_seq}, r.data});
  }

  Result<uint64_t> LastSeq(std::string_view doc) override {
    std::shared_lock lock(s_->mu);
    auto lit = s_->logs.find(doc);
    if (lit == s_->logs.end()) return uint64_t{0};
    uint64_t out = lit->second.rows.empty() ? 0 : lit->second.rows.rbegin()->first;
    for (const auto& [id, seg] : lit->second.segments) out = std::max(out, seg.info.last_seq);
    return out;
  }

  Result<std::vector<std::string>> ReadSegments(std::string_view doc,
                                                const std::vector<uint64_t>& ids) override {
    std::shared_lock lock(s_->mu);
    auto lit = s_->logs.find(doc);
    std::vector<std::string> out;
    for (uint64_t id : ids) {
      if (lit == s_->logs.end()) return oplog::CorruptLog(doc, "a segment vanished");
      auto it = lit->second.segments.find(id);
      if (it == lit->second.segments.end()) return oplog::CorruptLog(doc, "a segment vanished");
      out.push_back(it->second.data);
    }
    return out;
  }

  Result<std::optional<StoredSnapshot>> GetSnapshot(std::string_view doc) override {
    std::shared_lock lock(s_->mu);
    auto it = s_->snapshots.find(doc);
    if (it == s_->snapshots.end()) return std::optional<StoredSnapshot>();
    return std::optional<StoredSnapshot>(it->second);
  }

  Status WriteSnapshot(std::string_view doc, uint64_t upto, std::string_view data,
                       const Compaction& compaction) override {
    std::unique_lock lock(s_->mu);
    Log& log = s_->logs[std::string(doc)];
    for (uint64_t id : compaction.replaced) {
      if (log.segments.count(id) == 0) {
        return Status::Aborted("op log of \"" + std::string(doc) +
                               "\" changed during its compaction (a segment it merges is gone)");
      }
    }
    for (const auto& [id, seg] : log.segments) {
      if (std::find(compaction.replaced.begin(), compaction.replaced.end(), id) !=
          compaction.replaced.end()) {
        continue;
      }
      for (const NewSegment& g : compaction.added) {
        if (g.first_seq <= seg.info.last_seq && seg.info.first_seq <= g.last_seq) {
          return Status::Aborted("op log of \"" + std::string(doc) +
                                 "\" changed during its compaction (its rows were compacted)");
        }
      }
    }
    // A snapshot never goes back to an older one (another store may have written a newer one).
    auto [snap, fresh] = s_->snapshots.try_emplace(std::string(doc));
    if (fresh || snap->second.upto <= upto) snap->second = StoredSnapshot{upto, std::string(data)};
    for (uint64_t id : compaction.replaced) log.segments.erase(id);
    for (const NewSegment& g : compaction.added) {
      const uint64_t id = ++s_->last_segment;
      log.segments.emplace(
          id, Segment{{id, g.first_seq, g.last_seq, g.changes, g.ops, g.heads}, g.data});
    }
    if (compaction.folded > 0) {
      for (auto it = log.rows.begin(); it != log.rows.end() && it->first <= compaction.folded;) {
        log.by_author.erase({it->second.author.value, it->second.start_seq});
        it = log.rows.erase(it);
      }
    }
    return Status::Ok();
  }

  Result<std::optional<BaseSnapshot>> GetBase(std::string_view doc, bool with_data) override {
    std::shared_lock lock(s_->mu);
    auto it = s_->bases.find(doc);
    if (it == s_->bases.end()) return std::optional<BaseSnapshot>();
    BaseSnapshot b;
    b.version = it->second.version;
    if (with_data) b.data = it->second.data;
    return std::optional<BaseSnapshot>(std::move(b));
  }

  Result<uint64_t> ImportBase(std::string_view doc, int64_t now_ms, const VersionVector& version,
                              std::string_view data, const std::string* seal) override {
    {
      std::unique_lock lock(s_->mu);
      const std::string d(doc);
      s_->documents.emplace(d, now_ms);
      s_->bases[d] = BaseSnapshot{version, std::string(data)};
      if (seal) s_->sealed[d] = SealedSnapshotRecord{version, *seal, std::string(data)};
      s_->snapshots.erase(d);
    }
    s_->Notify({std::string(doc), 0, 0, true}, this);
    return uint64_t{0};
  }

  Status PutSealedSnapshot(std::string_view doc, const VersionVector& version,
                           std::string_view seal, std::string_view data) override {
    std::unique_lock lock(s_->mu);
    s_->sealed[std::string(doc)] =
        SealedSnapshotRecord{version, std::string(seal), std::string(data)};
    return Status::Ok();
  }

  Result<std::optional<SealedSnapshotRecord>> GetSealedSnapshot(std::string_view doc) override {
    std::shared_lock lock(s_->mu);
    auto it = s_->sealed.find(doc);
    if (it == s_->sealed.end()) return std::optional<SealedSnapshotRecord>();
    return std::optional<SealedSnapshotRecord>(it->second);
  }

  Status RecordEquivocation(const EquivocationRecord& e) override {
    std::unique_lock lock(s_->mu);
    s_->equivocations.try_emplace({e.doc, e.author.value}, e);
    return Status::Ok();
  }

  Result<std::vector<EquivocationRecord>> Equivocations(
      std::optional<std::string_view> doc) override {
    std::shared_lock lock(s_->mu);
    std::vector<EquivocationRecord> out;
    for (const auto& [key, e] : s_->equivocations) {
      if (!doc || key.first == *doc) out.push_back(e);
    }
    return out;
  }

  Status SetPeerVersion(std::string_view peer, std::string_view doc, const VersionVector& version,
                        int64_t) override {
    std::unique_lock lock(s_->mu);
    owner_->peers[{std::string(peer), std::string(doc)}] = version;
    return Status::Ok();
  }

  Result<std::vector<std::pair<std::string, VersionVector>>> PeerVersions(
      std::string_view peer) override {
    std::shared_lock lock(s_->mu);
    std::vector<std::pair<std::string, VersionVector>> out;
    for (auto it = owner_->peers.lower_bound({std::string(peer), std::string()});
         it != owner_->peers.end() && it->first.first == peer; ++it) {
      out.emplace_back(it->first.second, it->second);
    }
    return out;
  }

  void WhenDurable(uint64_t, std::function<void(Status)> fn) override { fn(Status::Ok()); }
  Status WaitDurable(uint64_t) override { return Status::Ok(); }
  uint64_t LatestCommit() override { return 0; }
  SyncStats GetSyncStats() override { return {}; }

  uint64_t Watch(Watcher watcher) override {
    std::lock_guard lock(s_->watch_mu);
    const uint64_t id = s_->next_watch++;
    s_->watchers.emplace(id, std::make_pair(std::move(watcher), static_cast<const void*>(this)));
    std::lock_guard mine(watch_mu_);
    watching_.push_back(id);
    return id;
  }
  void Unwatch(uint64_t id) override {
    std::lock_guard lock(s_->watch_mu);
    s_->watchers.erase(id);
  }

  void ReclaimSpace() override {}
  Status Close() override {
    std::vector<uint64_t> ids;
    {
      std::lock_guard mine(watch_mu_);
      ids.swap(watching_);
    }
    for (uint64_t id : ids) Unwatch(id);
    return Status::Ok();
  }

 private:
  std::shared_ptr<MemoryStorage> s_;
  MemoryStorage::Owner* owner_;  // in s_->owners, which never drops one
  const std::string path_;       // none
  std::mutex watch_mu_;
  std::vector<uint64_t> watching_;  // this store's watchers, removed at Close
};

}  // namespace

Result<std::unique_ptr<Store>> OpenMemoryStore(std::shared_ptr<MemoryStorage> storage,
                                               NodeId new_node_id, std::string_view name) {
  if (!storage) return Status::InvalidArgument("no storage to open a memory store on");
  MemoryStorage::Owner* owner;
  {
    std::unique_lock lock(storage->mu);
    auto it = storage->owners.find(name);
    if (it == storage->owners.end())
      it = storage->owners.emplace(std::string(name), MemoryStorage::Owner{}).first;
    owner = &it->second;
    if (!owner->node.valid()) {
      std::random_device rd;
      uint64_t id = new_node_id.value;
      while (id == 0) id = (static_cast<uint64_t>(rd()) << 32) ^ rd();
      owner->node = NodeId{id};
    }
  }
  return std::unique_ptr<Store>(std::make_unique<MemoryStore>(std::move(storage), owner));
}

}  // namespace weft::store
