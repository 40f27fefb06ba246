#include "op_log.h"

#include <algorithm>
#include <charconv>

#include "weft/crdt/encoding.h"
#include "weft/crdt/history.h"
#include "weft/replica.h"

namespace weft::oplog {

Status CorruptLog(std::string_view doc, const std::string& what) {
  return Status::Corruption("op log of \"" + std::string(doc) + "\": " + what);
}

Status CheckRow(std::string_view doc, uint64_t seq, uint32_t crc, std::string_view data) {
  if (crdt::Crc32c(data) != crc) {
    return CorruptLog(doc, "change at log seq " + std::to_string(seq) + ": checksum mismatch");
  }
  return Status::Ok();
}

Result<crdt::Change> DecodeRow(std::string_view doc, uint64_t seq, std::string_view data) {
  auto c = crdt::DecodeChange(data);
  if (!c.ok()) {
    return CorruptLog(doc,
                      "change at log seq " + std::to_string(seq) + ": " + c.status().message());
  }
  return c;
}

Result<std::vector<crdt::Change>> DecodeSegmentData(std::string_view doc, uint64_t last_seq,
                                                    std::string_view data) {
  auto cs = crdt::DecodeSegment(data);
  if (!cs.ok()) {
    return CorruptLog(doc, "segment ending at log seq " + std::to_string(last_seq) + ": " +
                               cs.status().message());
  }
  return cs;
}

std::string EncodeHeads(const crdt::VersionVector& heads) {
  crdt::Writer w;
  w.Vector(heads);
  return w.Take();
}

Result<crdt::VersionVector> DecodeHeads(std::string_view doc, uint64_t last_seq,
                                        std::string_view bytes) {
  crdt::Reader r(bytes);
  crdt::VersionVector heads = r.Vector();
  if (!r.Finish("heads").ok()) {
    return CorruptLog(doc, "segment ending at log seq " + std::to_string(last_seq) + ": bad heads");
  }
  return heads;
}

std::string EncodeVersion(const crdt::VersionVector& v) {
  return EncodeCausalToken("", v).substr(1);  // "@node.seq,..." without the '@'
}

Result<crdt::VersionVector> DecodeVersion(std::string_view text, std::string_view what) {
  auto t = DecodeCausalToken("x@" + std::string(text));
  if (!t.ok()) return Status::Corruption(std::string(what) + ": " + t.status().message());
  return std::move(t->second);
}

namespace {

// Segments of about the same size (ops within a factor of four) share a tier.
int Tier(uint64_t ops) {
  int bits = 0;
  while (ops > 1) ops >>= 1, ++bits;
  return bits / 2;
}

}  // namespace

void CompactionPlanner::AddSegment(const store::SegmentInfo& s) {
  Pending g;
  g.id = s.id;
  g.first = s.first_seq;
  g.last = s.last_seq;
  g.changes = s.changes;
  g.ops = s.ops;
  segs_.push_back(std::move(g));
  existing_ = segs_.size();
}

Status CompactionPlanner::AddRow(const store::RowInfo& row, std::string_view data) {
  if (stopped_) return Status::Ok();
  auto c = DecodeRow(doc_, row.seq, data);
  if (!c.ok()) return c.status();
  const uint64_t ops = c->ops.size();
  // A change too large for any segment stays a row, and so does everything after it.
  if (ops > crdt::kMaxSegmentOps) {
    stopped_ = true;
    return Status::Ok();
  }
  if (segs_.size() == existing_ || segs_.back().ops + ops > kSegmentMaxOps ||
      segs_.back().changes + 1 > kSegmentMaxChanges) {
    segs_.emplace_back();
    segs_.back().first = row.seq;
  }
  Pending& g = segs_.back();
  g.last = row.seq;
  ++g.changes;
  g.ops += ops;
  g.cs.push_back(std::move(*c));
  folded_ = row.seq;
  return Status::Ok();
}

Result<store::Compaction> CompactionPlanner::Finish(const Loader& load) {
  store::Compaction out;
  if (folded_ == 0) return out;
  out.folded = folded_;
  while (segs_.size() >= kSegmentMergeFanIn) {
    const int tier = Tier(segs_.back().ops);
    size_t begin = segs_.size();
    uint64_t ops = 0, changes = 0;
    while (begin > 0 && Tier(segs_[begin - 1].ops) <= tier) {
      --begin;
      ops += segs_[begin].ops;
      changes += segs_[begin].changes;
    }
    if (segs_.size() - begin < kSegmentMergeFanIn || ops > kSegmentMaxOps ||
        changes > kSegmentMaxChanges) {
      break;
    }
    std::vector<uint64_t> ids;
    for (size_t i = begin; i < segs_.size(); ++i) {
      if (segs_[i].id != 0) ids.push_back(segs_[i].id);
    }
    std::vector<std::string> datas;
    if (!ids.empty()) {
      auto loaded = load(ids);
      if (!loaded.ok()) return loaded.status();
      if (loaded->size() != ids.size()) return CorruptLog(doc_, "a segment vanished");
      datas = std::move(*loaded);
    }
    Pending merged;
    merged.first = segs_[begin].first;
    merged.last = segs_.back().last;
    merged.ops = ops;
    merged.changes = changes;
    merged.cs.reserve(changes);
    size_t next = 0;
    for (size_t i = begin; i < segs_.size(); ++i) {
      Pending& g = segs_[i];
      if (g.id != 0) {
        auto cs = DecodeSegmentData(doc_, g.last, datas[next++]);
        if (!cs.ok()) return cs.status();
        g.cs = std::move(*cs);
        out.replaced.push_back(g.id);
      }
      for (crdt::Change& c : g.cs) merged.cs.push_back(std::move(c));
    }
    segs_.resize(begin);
    segs_.push_back(std::move(merged));
  }
  for (const Pending& g : segs_) {
    if (g.id != 0) continue;
    store::NewSegment n;
    n.first_seq = g.first;
    n.last_seq = g.last;
    n.changes = g.changes;
    n.ops = g.ops;
    for (const crdt::Change& c : g.cs) {
      n.heads.Set(c.author, std::max(n.heads.Get(c.author), c.end_seq()));
    }
    n.data = crdt::EncodeSegment(g.cs);
    out.added.push_back(std::move(n));
  }
  return out;
}

Status CheckMetaEntries(const std::vector<store::MetaEntry>& entries) {
  for (const store::MetaEntry& e : entries) {
    if (e.key.empty()) return Status::InvalidArgument("a metadata key is empty");
    if (e.type != store::MetaType::kInteger) continue;
    int64_t v = 0;
    const char* end = e.value.data() + e.value.size();
    auto [p, ec] = std::from_chars(e.value.data(), end, v);
    if (e.value.empty() || ec != std::errc() || p != end) {
      return Status::InvalidArgument("metadata \"" + e.key + "\" is not a 64-bit integer");
    }
  }
  return Status::Ok();
}

Result<store::Compaction> PlanCompaction(std::string_view doc, uint64_t upto,
                                         const std::function<Status(const store::LogRead&)>& read,
                                         const CompactionPlanner::Loader& load) {
  CompactionPlanner planner(doc);
  store::LogRead r;
  r.upto = upto;
  // Segments by their description only: the bytes of those a merge rewrites are loaded then.
  r.want_segment = [&](const store::SegmentInfo& s) {
    planner.AddSegment(s);
    return false;
  };
  r.segment = [](const store::SegmentInfo&, std::string_view) { return Status::Ok(); };
  r.want_row = [&](const store::RowInfo&) { return planner.WantRow(); };
  r.row = [&](const store::RowInfo& row, std::string_view data) {
    return planner.AddRow(row, data);
  };
  WEFT_RETURN_IF_ERROR(read(r));
  return planner.Finish(load);
}

}  // namespace weft::oplog
