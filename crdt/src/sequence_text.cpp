// Text: SequenceCore over an arena of code points.
#include <cstdint>
#include <cstring>

#include "sequence_huffman.h"
#include "weft/crdt/sequence.h"

namespace weft::crdt {
namespace {

// Whether `s` is all ASCII, checked eight bytes at a time.
bool AsciiOnly(std::string_view s) {
  uint64_t high = 0;
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    high |= w;
  }
  for (; i < s.size(); ++i) high |= static_cast<unsigned char>(s[i]);
  return (high & 0x8080808080808080ull) == 0;
}

// Widens the ASCII bytes of `s` to code points at the end of `out`.
void AppendWidened(std::string_view s, std::u32string* out) {
  size_t old = out->size();
  out->resize(old + s.size());
  char32_t* to = out->data() + old;
  const unsigned char* from = reinterpret_cast<const unsigned char*>(s.data());
  for (size_t k = 0; k < s.size(); ++k) to[k] = from[k];
}

}  // namespace

Status TextContent::Append(std::string_view s) {
  // ASCII (most edits): copied as it is, or widened once the arena is.
  if (AsciiOnly(s)) {
    if (wide_) {
      AppendWidened(s, &cps_);
    } else {
      ascii_.append(s);
    }
    return Status::Ok();
  }
  Result<std::u32string> cps = DecodeUtf8(s);
  if (!cps.ok()) return cps.status();
  if (!wide_) {
    // The first code point past ASCII: every offset stays, each code point takes four bytes.
    cps_.reserve(ascii_.size() + cps->size());
    AppendWidened(ascii_, &cps_);
    ascii_ = std::string();
    wide_ = true;
  }
  cps_.append(*cps);
  return Status::Ok();
}

void TextContent::AppendUtf8To(size_t from, size_t n, std::string* out) const {
  if (!wide_) {
    out->append(ascii_, from, n);
    return;
  }
  for (size_t i = 0; i < n; ++i) AppendUtf8(*out, cps_[from + i]);
}

TextContent& TextContent::operator=(std::u32string&& cps) {
  cps_ = std::move(cps);
  ascii_ = std::string();
  wide_ = true;
  return *this;
}

std::string Text::ToString() const {
  std::string out;
  out.reserve(size());
  core_.ForEachVisible(0, size(), [&](uint32_t c, uint32_t n) { chars_.AppendUtf8To(c, n, &out); });
  return out;
}

Result<std::string> Text::Slice(size_t pos, size_t len) const {
  if (pos > size() || len > size() - pos) return Status::OutOfRange("text range past the end");
  std::string out;
  core_.ForEachVisible(pos, len, [&](uint32_t c, uint32_t n) { chars_.AppendUtf8To(c, n, &out); });
  return out;
}

Result<char32_t> Text::At(size_t index) const {
  if (index >= size()) return Status::OutOfRange("text index past the end");
  char32_t out = 0;
  core_.ForEachVisible(index, 1, [&](uint32_t c, uint32_t) { out = chars_[c]; });
  return out;
}

Result<TextInsertOp> Text::LocalInsert(size_t pos, std::string_view text, Dot first_id,
                                       ViewMode mode) {
  TextInsertOp op;
  op.id = first_id;
  WEFT_RETURN_IF_ERROR(LocalInsert(pos, text, first_id, mode, &op.left, &op.right));
  op.text.assign(text);
  return op;
}

Status Text::LocalInsert(size_t pos, std::string_view text, Dot first_id, ViewMode mode, Dot* left,
                         Dot* right) {
  size_t old = chars_.size();
  WEFT_RETURN_IF_ERROR(chars_.Append(text));
  size_t n = chars_.size() - old;
  if (n == 0) return Status::InvalidArgument("text insert: empty text");
  if (chars_.size() >= SequenceCore::kNoContent) {
    chars_.Truncate(old);
    return Status::InvalidArgument("text insert: content arena full");
  }
  uint32_t content = static_cast<uint32_t>(old);
  Status s = mode == ViewMode::kAt ? core_.ViewInsert(pos, first_id, n, content, left, right)
                                   : core_.LocalInsert(pos, first_id, n, content, left, right,
                                                       mode == ViewMode::kJoin);
  if (!s.ok()) chars_.Truncate(old);
  return s;
}

Result<DeleteOp> Text::LocalDelete(size_t pos, size_t len, ViewMode mode,
                                   std::vector<DotRange>* newly_deleted) {
  if (mode == ViewMode::kAt) return core_.ViewDelete(pos, len, newly_deleted);
  Result<DeleteOp> op = core_.LocalDelete(pos, len, mode == ViewMode::kJoin);
  if (op.ok() && newly_deleted) *newly_deleted = op->ranges;
  return op;
}

Status Text::Validate(const TextInsertOp& op) const {
  WEFT_RETURN_IF_ERROR(ValidateUtf8(op.text));
  bool present;
  return core_.ValidateInsert(op.id, op.left, op.right, CountCodePoints(op.text), &present);
}

Status Text::Validate(const DeleteOp& op) const {
  return core_.ValidateDelete(op);
}

Status Text::Validate(const TextOp& op) const {
  return std::visit([&](const auto& o) { return Validate(o); }, op);
}

Status Text::Apply(const TextInsertOp& op, bool in_view) {
  uint64_t inserted;
  return ApplyInsert(op.id, op.left, op.right, op.text, in_view, &inserted);
}

Status Text::ApplyInsert(Dot id, Dot left, Dot right, std::string_view text, bool in_view,
                         uint64_t* inserted) {
  *inserted = 0;
  size_t old = chars_.size();
  WEFT_RETURN_IF_ERROR(chars_.Append(text));
  size_t n = chars_.size() - old;
  if (chars_.size() >= SequenceCore::kNoContent) {
    chars_.Truncate(old);
    return Status::InvalidArgument("text insert: content arena full");
  }
  Result<bool> r = core_.ApplyInsert(id, left, right, n, static_cast<uint32_t>(old), in_view);
  if (!r.ok() || !*r) {
    chars_.Truncate(old);
  } else {
    *inserted = n;
  }
  return r.status();
}

Status Text::Apply(const TextOp& op) {
  return std::visit([&](const auto& o) { return Apply(o); }, op);
}

void Text::EncodeState(Writer& w) const {
  core_.EncodeStructure(w);
  internal::EncodeBlock(w, ToString());
}

Result<Text> Text::DecodeState(Reader& r) {
  Result<SequenceCore> core = SequenceCore::DecodeStructure(r);
  if (!core.ok()) return core.status();
  Result<std::string> bytes = internal::DecodeBlock(r);
  if (!bytes.ok()) return bytes.status();
  Result<std::u32string> cps = DecodeUtf8(*bytes);
  if (!cps.ok()) return Status::Corruption("text state: " + cps.status().message());
  if (cps->size() != core->size()) return Status::Corruption("text state: content length mismatch");
  Text out;
  out.core_ = std::move(*core);
  out.chars_ = std::move(*cps);
  return out;
}

void Text::EncodeOp(Writer& w, const TextOp& op) {
  if (const auto* ins = std::get_if<TextInsertOp>(&op)) {
    w.U8(1);
    w.DotValue(ins->id);
    w.DotValue(ins->left);
    w.DotValue(ins->right);
    w.Bytes(ins->text);
  } else {
    w.U8(2);
    EncodeDeleteOp(w, std::get<DeleteOp>(op));
  }
}

Result<TextOp> Text::DecodeOp(Reader& r) {
  uint8_t tag = r.U8();
  if (!r.ok()) return r.status("text op");
  if (tag == 1) {
    TextInsertOp ins;
    ins.id = r.DotValue();
    ins.left = r.DotValue();
    ins.right = r.DotValue();
    ins.text.assign(r.Bytes());
    if (!r.ok()) return r.status("text insert op");
    Status s = ValidateUtf8(ins.text);
    if (!s.ok()) return Status::Corruption("text insert op: " + s.message());
    if (ins.text.empty()) return Status::Corruption("text insert op: empty text");
    return TextOp(std::move(ins));
  }
  if (tag == 2) {
    Result<DeleteOp> d = DecodeDeleteOp(r);
    if (!d.ok()) return d.status();
    return TextOp(std::move(*d));
  }
  return Status::Corruption("text op: unknown tag " + std::to_string(tag));
}

}  // namespace weft::crdt
