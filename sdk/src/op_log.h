// The op log's encodings and compaction policy, shared by the replica and every store: how a row's
// and a segment's bytes are checked and decoded (and how damage is reported), how versions are
// kept as text, and which rows and segments a compaction folds and merges. No I/O here: stores
// read and write, the replica decides, and both use these.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "store.h"
#include "weft/crdt/document.h"
#include "weft/status.h"

namespace weft::oplog {

// Compaction folds a document's log rows into segments; a segment holds at most this much, and
// trailing segments merge four of a size at a time (see CompactionPlanner).
inline constexpr uint64_t kSegmentMaxOps = 1ull << 18;
inline constexpr uint64_t kSegmentMaxChanges = 1ull << 17;
inline constexpr size_t kSegmentMergeFanIn = 4;

// kCorruption: `op log of "<doc>": <what>`.
Status CorruptLog(std::string_view doc, const std::string& what);
// Checks a row's bytes against the checksum stored with them (crdt::Crc32c).
Status CheckRow(std::string_view doc, uint64_t seq, uint32_t crc, std::string_view data);
// Decodes a row's bytes (already checked) into its change.
Result<crdt::Change> DecodeRow(std::string_view doc, uint64_t seq, std::string_view data);
// Decodes a segment's bytes (crdt::DecodeSegment checks its own checksum).
Result<std::vector<crdt::Change>> DecodeSegmentData(std::string_view doc, uint64_t last_seq,
                                                    std::string_view data);

// A segment's heads as stored: a version vector in the crdt::Writer::Vector encoding.
std::string EncodeHeads(const crdt::VersionVector& heads);
Result<crdt::VersionVector> DecodeHeads(std::string_view doc, uint64_t last_seq,
                                        std::string_view bytes);
// A version as stored beside a peer, base or seal: EncodeCausalToken without the "doc@" prefix.
std::string EncodeVersion(const crdt::VersionVector& v);
Result<crdt::VersionVector> DecodeVersion(std::string_view text, std::string_view what);

// Plans the compaction of one document's log up to its snapshot: the rows up to it become new
// segments; then, while the last kSegmentMergeFanIn or more segments are of the tier of the last
// one or below (tier: floor(log4(ops))), they merge into one (an LSM-style size-tiered policy: a
// change is rewritten about log4(history / batch) times, and a document keeps a few segments per
// tier). A change too large for any segment stays a row, and so does everything after it.
//
// Feed it the document's segments (AddSegment, in last_seq order), then its rows up to the
// snapshot (AddRow, in seq order, while WantRow), then Finish.
class CompactionPlanner {
 public:
  explicit CompactionPlanner(std::string_view doc) : doc_(doc) {}

  void AddSegment(const store::SegmentInfo& s);
  // False once a row too large for a segment was seen: it and every row after it stay rows.
  bool WantRow() const { return !stopped_; }
  // Decodes the row (checked by the store) and places it in a new segment.
  Status AddRow(const store::RowInfo& row, std::string_view data);
  // The compaction (empty when no row folds). `load` returns the bytes of existing segments
  // that a merge rewrites, in the order asked.
  using Loader = std::function<Result<std::vector<std::string>>(const std::vector<uint64_t>& ids)>;
  Result<store::Compaction> Finish(const Loader& load);

 private:
  struct Pending {
    uint64_t id = 0;  // an existing segment (its changes loaded only when merged), or 0: new
    uint64_t first = 0, last = 0;
    uint64_t changes = 0, ops = 0;
    std::vector<crdt::Change> cs;
  };
  std::string doc_;
  std::vector<Pending> segs_;
  size_t existing_ = 0;
  uint64_t folded_ = 0;
  bool stopped_ = false;
};

// Checks metadata entries before a store writes any: a key is not empty, an integer is one
// (kInvalidArgument naming the key).
Status CheckMetaEntries(const std::vector<store::MetaEntry>& entries);

// Plans the compaction of `doc` up to log seq `upto` (its snapshot's), reading with `read` (one
// ReadLog of the document) and `load` (its segments' bytes).
Result<store::Compaction> PlanCompaction(std::string_view doc, uint64_t upto,
                                         const std::function<Status(const store::LogRead&)>& read,
                                         const CompactionPlanner::Loader& load);

}  // namespace weft::oplog
