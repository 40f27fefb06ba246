// The sequence CRDT behind text and list values.
//
// Every element (a code point of a text, a value of a list) is an item named by a Dot. A run of n
// elements inserted together by one node takes n contiguous seqs, so items are stored run-length
// encoded. Each insert names its left origin (the visible item just before it when it was made,
// or the start) and its right origin (the item just after that one, a tombstone or not, or the
// end); concurrent inserts are ordered by the FugueMax rule (in the YjsMod formulation: the same
// total order), which never interleaves concurrent runs typed at the same place, with ties broken
// by node id. These are the origins Eg-walker and diamond-types pick, so a recorded concurrent
// history replays to the same text when ties do not arise. Deleted items stay as tombstones so
// that any concurrent change can still be merged.
//
// Internally: runs of items in a B-tree whose inner nodes count visible and total items (so a
// position is found in O(log n)), and an index from id ranges to B-tree leaves (so an id is found
// in O(log n)).
//
// The view: besides the current state, every item records whether it is part of an earlier
// version of the sequence (the view) and how many of that version's deletes name it, and the
// B-tree counts the items visible in the view. Edits can be made at positions of the view, as
// their author saw the sequence at that version, and are then merged into the current state as
// concurrent with everything outside the view (Eg-walker's "prepare" version, here kept in the
// same tree). Normally the view is the current state: every op is applied with `in_view` true.
// The caller (Document) moves the view back by retreating ops (SetInView false, AddViewDeletes
// -1) and forward by advancing them; these commute, so the order does not matter.
//
// SequenceCore is the engine: it stores, for each run, an offset into a content arena that its
// owner keeps (Text keeps code points, List<V> keeps values). Text and List<V> are the value
// types to use. All three are plain values (deep copies). Not thread-safe: an instance must not
// be used from two threads at once, not even for reads (lookups cache their last position);
// distinct instances may be used from distinct threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "weft/crdt/causality.h"
#include "weft/crdt/encoding.h"
#include "weft/crdt/utf.h"
#include "weft/status.h"

namespace weft::crdt {

// Removes items by id. Ranges are exact: every id in them names an item of the sequence.
struct DeleteOp {
  std::vector<DotRange> ranges;
  friend bool operator==(const DeleteOp&, const DeleteOp&) = default;
};

// Which neighbour an anchor sticks to. kLeft: the item before the position (text inserted at
// the anchor's position goes after it, the anchor does not move). kRight: the item after the
// position (text inserted there pushes the anchor right).
enum class Bias : uint8_t { kLeft = 0, kRight = 1 };

// A stable position: tied to an item rather than an index. `item` with node 0 is the start
// (kLeft) or the end (kRight) of the sequence.
struct Anchor {
  Dot item;
  Bias bias = Bias::kLeft;
  friend bool operator==(const Anchor&, const Anchor&) = default;
};

// Limits on untrusted input.
inline constexpr uint64_t kMaxSequenceRunLength = 1ull << 31;  // items in one insert op
inline constexpr uint64_t kMaxSequenceItems = 1ull << 32;      // items in one decoded state
inline constexpr uint64_t kMaxSequenceRuns = 1ull << 22;       // runs in one decoded state

class SequenceCore {
 public:
  // Content offset of runs decoded from a snapshot that carry no content (tombstones).
  static constexpr uint32_t kNoContent = 0xFFFFFFFFu;

  SequenceCore();
  ~SequenceCore();
  SequenceCore(const SequenceCore& other);
  SequenceCore& operator=(const SequenceCore& other);
  SequenceCore(SequenceCore&& other) noexcept;
  SequenceCore& operator=(SequenceCore&& other) noexcept;

  // Visible items.
  size_t size() const;
  // Items including tombstones.
  size_t total_items() const;

  // Inserts `len` items with ids first_id.. at visible position `pos` (0..size()); their
  // content is at offsets content..content+len-1 of the owner's arena. Sets *left / *right to
  // the origins chosen (node 0: start / end). kOutOfRange when pos > size(); kInvalidArgument
  // on a bad id or len, or when one of the ids is already taken. Nothing changes on error.
  // `in_view`: whether the new items join the view.
  Status LocalInsert(size_t pos, Dot first_id, uint64_t len, uint32_t content, Dot* left,
                     Dot* right, bool in_view = true);
  // Deletes `len` visible items from `pos`; the op names exactly the items it deleted (all newly
  // deleted). kOutOfRange (nothing changed) when pos + len > size(). `in_view`: whether the
  // delete is part of the view.
  Result<DeleteOp> LocalDelete(size_t pos, size_t len, bool in_view = true);

  // Checks a remote insert. Sets *already_present when every id is already here (applying it is
  // a no-op). Errors: kInvalidArgument (bad id, zero or huge length, some but not all ids
  // present, right origin not after the left one), kMissingDependency (an origin is unknown).
  Status ValidateInsert(Dot first_id, Dot left, Dot right, uint64_t len,
                        bool* already_present) const;
  // Validates, then integrates. Returns true when inserted, false when already present (no-op).
  Result<bool> ApplyInsert(Dot first_id, Dot left, Dot right, uint64_t len, uint32_t content,
                           bool in_view = true);
  // Errors: kInvalidArgument (empty or reversed range, node 0), kMissingDependency (unknown id).
  Status ValidateDelete(const std::vector<DotRange>& ranges) const;
  Status ValidateDelete(const DeleteOp& op) const { return ValidateDelete(op.ranges); }
  // Validates, then marks the items deleted. Appends the ranges that were visible before (the
  // newly deleted ones) to *newly_deleted when given. Idempotent, except that each application
  // `in_view` counts once more as a delete of the view.
  Status ApplyDelete(const std::vector<DotRange>& ranges,
                     std::vector<DotRange>* newly_deleted = nullptr, bool in_view = true);
  Status ApplyDelete(const DeleteOp& op, std::vector<DotRange>* newly_deleted = nullptr,
                     bool in_view = true) {
    return ApplyDelete(op.ranges, newly_deleted, in_view);
  }

  // Deferred deletes: a batch of remote deletes (a long history applied at once) is marked in
  // one pass over the runs when the sequence is next read (Settle), rather than one lookup and
  // one split per range. DeferDelete validates `ranges` as ApplyDelete does (nothing changes on
  // error), queues them and sets *mark to the queue's length before them. Deletes here are not
  // counted in the view (ApplyDelete with in_view false). Every method below that reads or edits
  // the visible state settles first; ApplyInsert, ValidateInsert, ValidateDelete, UndoInsert and
  // total_items do not need to (inserts integrate by ids and raw positions), so a remote change
  // can defer its deletes, insert after them and be undone (DropDeferred) before anything settles.
  // With `check_present` false, only the form of the ranges is checked now, and that none
  // reaches past the greatest seq of its node held; whether they name only items present is
  // checked when they settle, and TakeMissingUnchecked says whether one did not (a batch applied to
  // a new sequence checks its deletes that way, in the one pass, and applies again if one fails).
  Status DeferDelete(const std::vector<DotRange>& ranges, size_t* mark, bool check_present = true);
  // Takes back the deletes queued from `mark` on (the undo of DeferDelete, in reverse order; the
  // queue is never settled between the two within one change).
  void DropDeferred(size_t mark);
  // Applies the queued deletes. O(k log n) for k ranges, or one pass over the runs when k is
  // large beside the sequence.
  void Settle();
  // Whether deletes are queued.
  bool has_deferred() const;
  // Whether a settle since the last call found a range queued unchecked that names an item not
  // present (its present items were marked all the same); clears that.
  bool TakeMissingUnchecked();

  // Physically removes items first..first+len-1 (which must have been inserted by the latest
  // local inserts, undone in reverse order; no other item may name them as origin).
  void UndoInsert(Dot first, uint64_t len);
  // Marks the items in `ranges` visible again (the ranges a delete newly deleted), and takes one
  // view delete off the items of `view_ranges` (the ranges of a delete applied in the view).
  void UndoDelete(const std::vector<DotRange>& ranges,
                  const std::vector<DotRange>* view_ranges = nullptr);

  // ---- the view (see the top of this file) ----
  // Rebuilds the view from scratch, in two steps: ResetView(false) puts every item in it with no
  // delete counted; after the caller has counted every delete op it knows (AddViewDeletes),
  // ResetView(true) counts one for each deleted item no op named (deleted before the history the
  // caller holds). O(n).
  void ResetView(bool count_unnamed_deletes);
  // Items visible in the view.
  size_t view_size() const;
  // Puts items first..first+len-1 into the view (an insert advanced) or takes them out (one
  // retreated). Ids not present are skipped.
  void SetInView(Dot first, uint64_t len, bool in);
  // Adds `delta` (1: a delete advanced, -1: retreated) to the view's delete count of every item
  // of `ranges`. Ids not present are skipped.
  void AddViewDeletes(const std::vector<DotRange>& ranges, int delta);
  // Inserts at position `pos` of the view (0..view_size()): the origins are the item of the view
  // just before (a tombstone of the view included) and the visible item of the view at `pos`,
  // and the items integrate among concurrent ones as a remote insert would. The items join the
  // view. Errors as LocalInsert; nothing changes on error.
  Status ViewInsert(size_t pos, Dot first_id, uint64_t len, uint32_t content, Dot* left,
                    Dot* right);
  // Deletes `len` items of the view from `pos` (the delete joins the view); the op names them
  // all, *newly_deleted (when given) those that were still visible in the current state.
  // kOutOfRange (nothing changed) past the end of the view.
  Result<DeleteOp> ViewDelete(size_t pos, size_t len, std::vector<DotRange>* newly_deleted);

  // The id of the visible item at `index`; kOutOfRange past the end.
  Result<Dot> IdAt(size_t index) const;
  // The visible index of item `id` (for a tombstone: the index it would have). kNotFound when
  // absent. Sets *visible when given.
  Result<size_t> IndexOf(Dot id, bool* visible = nullptr) const;
  // An anchor at visible position `index` (0..size()); kOutOfRange past the end.
  Result<Anchor> AnchorAt(size_t index, Bias bias) const;
  // The current position of an anchor; kNotFound when its item is unknown here.
  Result<size_t> IndexOfAnchor(const Anchor& anchor) const;

  // Calls fn(content_offset, count) for the visible items [pos, pos+len), in order, one call per
  // run piece. Precondition: pos + len <= size().
  void ForEachVisible(size_t pos, size_t len,
                      const std::function<void(uint32_t, uint32_t)>& fn) const;

  // Canonical encoding of ids, origins and tombstones (no content). Two replicas that applied
  // the same ops write the same bytes.
  void EncodeStructure(Writer& w) const;
  // Decodes a structure; visible runs get content offsets 0..size()-1 in order, tombstones get
  // kNoContent. Validates everything; kCorruption on bad input.
  static Result<SequenceCore> DecodeStructure(Reader& r);

  // Internal consistency check for tests: tree sums, links and the id index. Empty when fine.
  std::string CheckInvariants() const;
  // Number of runs stored (for tests and benchmarks).
  size_t run_count() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// How a local edit relates to SequenceCore's view.
enum class ViewMode : uint8_t {
  kJoin = 0,     // positions in the current state; the edit joins the view (it is current)
  kOutside = 1,  // positions in the current state; the edit stays out of the view
  kAt = 2,       // positions in the view; the edit joins it (an edit made at that version)
};

// An insert into a text: `text` (UTF-8, at least one code point) gets ids id, id+1, ... one per
// code point, between `left` and `right` (node 0: the start / the end).
struct TextInsertOp {
  Dot id;
  Dot left;
  Dot right;
  std::string text;
  friend bool operator==(const TextInsertOp&, const TextInsertOp&) = default;
};
using TextOp = std::variant<TextInsertOp, DeleteOp>;

// The content arena of a Text (append-only; runs name code points by their offset in it): one
// byte per code point while every code point is ASCII (most text: a quarter of the memory, and
// UTF-8 in and out is a copy), four bytes each from the first one that is not. A value type.
class TextContent {
 public:
  size_t size() const { return wide_ ? cps_.size() : ascii_.size(); }
  char32_t operator[](size_t i) const {
    return wide_ ? cps_[i] : static_cast<char32_t>(static_cast<unsigned char>(ascii_[i]));
  }
  // Appends the code points of UTF-8 `s`. On bad UTF-8, fails and changes nothing.
  Status Append(std::string_view s);
  // Drops the code points from offset n on (n <= size()).
  void Truncate(size_t n) {
    if (wide_) {
      cps_.resize(n);
    } else {
      ascii_.resize(n);
    }
  }
  // Appends code points [from, from + n) to `out` as UTF-8.
  void AppendUtf8To(size_t from, size_t n, std::string* out) const;
  // Replaces the content with `cps`.
  TextContent& operator=(std::u32string&& cps);

 private:
  std::string ascii_;   // while !wide_: every code point < 0x80, one byte each
  std::u32string cps_;  // once wide_
  bool wide_ = false;
};

// Collaborative text: positions in code points, UTF-8 in and out.
class Text {
 public:
  size_t size() const { return core_.size(); }  // code points
  std::string ToString() const;                 // UTF-8
  // UTF-8 of code points [pos, pos+len); kOutOfRange past the end.
  Result<std::string> Slice(size_t pos, size_t len) const;
  Result<char32_t> At(size_t index) const;

  // Inserts UTF-8 `text` at code point `pos` with ids first_id.. (one per code point) and
  // returns the op to send. kInvalidArgument on bad UTF-8, empty text or a taken id,
  // kOutOfRange past the end; nothing changes on error.
  Result<TextInsertOp> LocalInsert(size_t pos, std::string_view text, Dot first_id,
                                   ViewMode mode = ViewMode::kJoin);
  // The same, giving only the origins it chose (the caller keeps the text): no copy of it.
  Status LocalInsert(size_t pos, std::string_view text, Dot first_id, ViewMode mode, Dot* left,
                     Dot* right);
  // *newly_deleted (when given): the ranges the delete took out of the current state.
  Result<DeleteOp> LocalDelete(size_t pos, size_t len, ViewMode mode = ViewMode::kJoin,
                               std::vector<DotRange>* newly_deleted = nullptr);

  Status Validate(const TextInsertOp& op) const;
  Status Validate(const DeleteOp& op) const;
  Status Validate(const TextOp& op) const;
  // Validate, then apply; nothing changes on error. Applying an op twice is a no-op.
  // `in_view`: whether the op joins the view (SequenceCore).
  Status Apply(const TextInsertOp& op, bool in_view = true);
  Status Apply(const DeleteOp& op, std::vector<DotRange>* newly_deleted = nullptr,
               bool in_view = true) {
    return ApplyDelete(op.ranges, newly_deleted, in_view);
  }
  Status Apply(const TextOp& op);
  // The same as Apply, from the parts of an op (no op to build, no copy of the text).
  // *inserted: the code points inserted (0 when the op was here already).
  Status ApplyInsert(Dot id, Dot left, Dot right, std::string_view text, bool in_view,
                     uint64_t* inserted);
  Status ApplyDelete(const std::vector<DotRange>& ranges, std::vector<DotRange>* newly_deleted,
                     bool in_view) {
    return core_.ApplyDelete(ranges, newly_deleted, in_view);
  }

  // Deferred deletes (see SequenceCore).
  Status DeferDelete(const std::vector<DotRange>& ranges, size_t* mark, bool check_present = true) {
    return core_.DeferDelete(ranges, mark, check_present);
  }
  bool TakeMissingUnchecked() { return core_.TakeMissingUnchecked(); }
  void DropDeferred(size_t mark) { core_.DropDeferred(mark); }
  void Settle() { core_.Settle(); }
  bool has_deferred() const { return core_.has_deferred(); }

  // Undo of local ops of an aborted transaction, in reverse order (see SequenceCore).
  void UndoInsert(Dot first, uint64_t len) { core_.UndoInsert(first, len); }
  void UndoInsert(const TextInsertOp& op) { UndoInsert(op.id, CountCodePoints(op.text)); }
  void UndoDelete(const DeleteOp& newly_deleted, const DeleteOp* in_view = nullptr) {
    core_.UndoDelete(newly_deleted.ranges, in_view ? &in_view->ranges : nullptr);
  }
  void UndoDelete(const std::vector<DotRange>& newly_deleted,
                  const std::vector<DotRange>* in_view) {
    core_.UndoDelete(newly_deleted, in_view);
  }
  // The view (SequenceCore): moving it, and its length.
  void ResetView(bool count_unnamed_deletes) { core_.ResetView(count_unnamed_deletes); }
  void SetInView(Dot first, uint64_t len, bool in) { core_.SetInView(first, len, in); }
  void AddViewDeletes(const DeleteOp& op, int delta) { core_.AddViewDeletes(op.ranges, delta); }
  size_t view_size() const { return core_.view_size(); }

  Result<Dot> IdAt(size_t index) const { return core_.IdAt(index); }
  Result<size_t> IndexOf(Dot id) const { return core_.IndexOf(id); }
  Result<Anchor> AnchorAt(size_t index, Bias bias) const { return core_.AnchorAt(index, bias); }
  Result<size_t> IndexOfAnchor(const Anchor& a) const { return core_.IndexOfAnchor(a); }

  // Canonical state: structure, then the visible text as UTF-8.
  void EncodeState(Writer& w) const;
  static Result<Text> DecodeState(Reader& r);
  static void EncodeOp(Writer& w, const TextOp& op);
  static Result<TextOp> DecodeOp(Reader& r);

  const SequenceCore& core() const { return core_; }

 private:
  SequenceCore core_;
  TextContent chars_;  // content arena (append-only); runs point into it
};

// Op encoding shared by text and lists.
void EncodeDeleteOp(Writer& w, const DeleteOp& op);
Result<DeleteOp> DecodeDeleteOp(Reader& r);

// An insert into a list: values get ids id, id+1, ...
template <typename V>
struct ListInsertOp {
  Dot id;
  Dot left;
  Dot right;
  std::vector<V> values;
  friend bool operator==(const ListInsertOp&, const ListInsertOp&) = default;
};
template <typename V>
using ListOp = std::variant<ListInsertOp<V>, DeleteOp>;

// A list of values of type V (copyable). Encoding takes the caller's codec for V:
// encode: void(Writer&, const V&); decode: Result<V>(Reader&).
template <typename V>
class List {
 public:
  size_t size() const { return core_.size(); }
  Result<V> At(size_t index) const {
    if (index >= size()) return Status::OutOfRange("list index past the end");
    V out{};
    core_.ForEachVisible(index, 1, [&](uint32_t c, uint32_t) { out = values_[c]; });
    return out;
  }
  Result<std::vector<V>> Slice(size_t pos, size_t len) const {
    if (pos > size() || len > size() - pos) return Status::OutOfRange("list range past the end");
    std::vector<V> out;
    out.reserve(len);
    core_.ForEachVisible(pos, len, [&](uint32_t c, uint32_t n) {
      out.insert(out.end(), values_.begin() + c, values_.begin() + c + n);
    });
    return out;
  }
  std::vector<V> Values() const { return *Slice(0, size()); }

  // Lists take no edits at an earlier version (ViewMode::kAt); see Text.
  Result<ListInsertOp<V>> LocalInsert(size_t pos, std::vector<V> values, Dot first_id,
                                      bool in_view = true) {
    if (values.empty()) return Status::InvalidArgument("empty list insert");
    if (values_.size() + values.size() >= SequenceCore::kNoContent) {
      return Status::InvalidArgument("list content arena full");
    }
    ListInsertOp<V> op;
    op.id = first_id;
    uint32_t content = static_cast<uint32_t>(values_.size());
    WEFT_RETURN_IF_ERROR(
        core_.LocalInsert(pos, first_id, values.size(), content, &op.left, &op.right, in_view));
    values_.insert(values_.end(), values.begin(), values.end());
    op.values = std::move(values);
    return op;
  }
  Result<DeleteOp> LocalDelete(size_t pos, size_t len, bool in_view = true) {
    return core_.LocalDelete(pos, len, in_view);
  }

  Status Validate(const ListInsertOp<V>& op) const {
    bool present;
    return core_.ValidateInsert(op.id, op.left, op.right, op.values.size(), &present);
  }
  Status Validate(const DeleteOp& op) const { return core_.ValidateDelete(op); }
  Status Validate(const ListOp<V>& op) const {
    return std::visit([&](const auto& o) { return Validate(o); }, op);
  }
  Status Apply(const ListInsertOp<V>& op, bool in_view = true) {
    if (values_.size() + op.values.size() >= SequenceCore::kNoContent) {
      return Status::InvalidArgument("list content arena full");
    }
    uint32_t content = static_cast<uint32_t>(values_.size());
    Result<bool> r =
        core_.ApplyInsert(op.id, op.left, op.right, op.values.size(), content, in_view);
    if (!r.ok()) return r.status();
    if (*r) values_.insert(values_.end(), op.values.begin(), op.values.end());
    return Status::Ok();
  }
  Status Apply(const DeleteOp& op, std::vector<DotRange>* newly_deleted = nullptr,
               bool in_view = true) {
    return core_.ApplyDelete(op.ranges, newly_deleted, in_view);
  }
  Status ApplyDelete(const std::vector<DotRange>& ranges, std::vector<DotRange>* newly_deleted,
                     bool in_view) {
    return core_.ApplyDelete(ranges, newly_deleted, in_view);
  }
  Status Apply(const ListOp<V>& op) {
    return std::visit([&](const auto& o) { return Apply(o); }, op);
  }

  void UndoInsert(Dot first, uint64_t len) { core_.UndoInsert(first, len); }
  void UndoDelete(const DeleteOp& newly_deleted, const DeleteOp* in_view = nullptr) {
    core_.UndoDelete(newly_deleted.ranges, in_view ? &in_view->ranges : nullptr);
  }
  void UndoDelete(const std::vector<DotRange>& newly_deleted,
                  const std::vector<DotRange>* in_view) {
    core_.UndoDelete(newly_deleted, in_view);
  }
  void ResetView(bool count_unnamed_deletes) { core_.ResetView(count_unnamed_deletes); }
  void SetInView(Dot first, uint64_t len, bool in) { core_.SetInView(first, len, in); }
  void AddViewDeletes(const DeleteOp& op, int delta) { core_.AddViewDeletes(op.ranges, delta); }

  Result<Dot> IdAt(size_t index) const { return core_.IdAt(index); }
  Result<size_t> IndexOf(Dot id) const { return core_.IndexOf(id); }
  Result<Anchor> AnchorAt(size_t index, Bias bias) const { return core_.AnchorAt(index, bias); }
  Result<size_t> IndexOfAnchor(const Anchor& a) const { return core_.IndexOfAnchor(a); }

  template <typename EncodeFn>
  void EncodeState(Writer& w, EncodeFn&& encode) const {
    core_.EncodeStructure(w);
    w.Varint(size());
    core_.ForEachVisible(0, size(), [&](uint32_t c, uint32_t n) {
      for (uint32_t i = 0; i < n; ++i) encode(w, values_[c + i]);
    });
  }
  template <typename DecodeFn>
  static Result<List> DecodeState(Reader& r, DecodeFn&& decode) {
    Result<SequenceCore> core = SequenceCore::DecodeStructure(r);
    if (!core.ok()) return core.status();
    List out;
    out.core_ = std::move(*core);
    uint64_t n = r.Count(1);
    if (!r.ok() || n != out.core_.size()) return Status::Corruption("list: value count mismatch");
    out.values_.reserve(n);
    for (uint64_t i = 0; i < n; ++i) {
      Result<V> v = decode(r);
      if (!v.ok()) return v.status();
      if (!r.ok()) return r.status("list value");
      out.values_.push_back(std::move(*v));
    }
    return out;
  }
  template <typename EncodeFn>
  static void EncodeOp(Writer& w, const ListOp<V>& op, EncodeFn&& encode) {
    if (const auto* ins = std::get_if<ListInsertOp<V>>(&op)) {
      w.U8(1);
      w.DotValue(ins->id);
      w.DotValue(ins->left);
      w.DotValue(ins->right);
      w.Varint(ins->values.size());
      for (const V& v : ins->values) encode(w, v);
    } else {
      w.U8(2);
      EncodeDeleteOp(w, std::get<DeleteOp>(op));
    }
  }
  template <typename DecodeFn>
  static Result<ListOp<V>> DecodeOp(Reader& r, DecodeFn&& decode) {
    uint8_t tag = r.U8();
    if (tag == 1) {
      ListInsertOp<V> ins;
      ins.id = r.DotValue();
      ins.left = r.DotValue();
      ins.right = r.DotValue();
      uint64_t n = r.Count(1);
      if (!r.ok()) return r.status("list insert op");
      if (n == 0 || n > kMaxSequenceRunLength) return Status::Corruption("list insert length");
      ins.values.reserve(n);
      for (uint64_t i = 0; i < n; ++i) {
        Result<V> v = decode(r);
        if (!v.ok()) return v.status();
        if (!r.ok()) return r.status("list value");
        ins.values.push_back(std::move(*v));
      }
      return ListOp<V>(std::move(ins));
    }
    if (tag == 2) {
      Result<DeleteOp> d = DecodeDeleteOp(r);
      if (!d.ok()) return d.status();
      return ListOp<V>(std::move(*d));
    }
    if (!r.ok()) return r.status("list op");
    return Status::Corruption("list op: unknown tag");
  }

  const SequenceCore& core() const { return core_; }

 private:
  SequenceCore core_;
  std::vector<V> values_;  // content arena (append-only)
};

}  // namespace weft::crdt
