#include "presence.h"

#include <charconv>
#include <vector>

namespace weft::demo {
namespace {

constexpr std::string_view kMagic = "weft-demo-presence/1";

std::string EncodeAnchor(const std::optional<crdt::Anchor>& a) {
  if (!a) return "-";
  std::string s = a->item.node.valid() ? a->item.node.ToHex() + "." + std::to_string(a->item.seq)
                                       : std::string("0.0");
  s += a->bias == crdt::Bias::kLeft ? ".L" : ".R";
  return s;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t at = s.find(sep, start);
    if (at == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, at - start));
    start = at + 1;
  }
}

// false for malformed text; `out` reset for "-".
bool DecodeAnchor(std::string_view s, std::optional<crdt::Anchor>* out) {
  out->reset();
  if (s == "-") return true;
  auto parts = Split(s, '.');
  if (parts.size() != 3) return false;
  crdt::Anchor a;
  if (parts[2] == "L") {
    a.bias = crdt::Bias::kLeft;
  } else if (parts[2] == "R") {
    a.bias = crdt::Bias::kRight;
  } else {
    return false;
  }
  uint64_t seq = 0;
  auto [ptr, ec] = std::from_chars(parts[1].data(), parts[1].data() + parts[1].size(), seq);
  if (ec != std::errc() || ptr != parts[1].data() + parts[1].size() || parts[1].empty()) {
    return false;
  }
  if (parts[0] == "0") {
    if (seq != 0) return false;
  } else {
    auto node = crdt::NodeId::FromHex(parts[0]);
    if (!node || seq == 0) return false;
    a.item = crdt::Dot{*node, seq};
  }
  *out = a;
  return true;
}

bool ValidColor(std::string_view c) {
  if (c.size() != 7 || c[0] != '#') return false;
  for (char ch : c.substr(1)) {
    bool hex = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
    if (!hex) return false;
  }
  return true;
}

}  // namespace

std::string SanitizeName(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) continue;
    out.push_back(c);
  }
  if (out.size() > kMaxNameBytes) {
    size_t cut = kMaxNameBytes;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
    out.resize(cut);
  }
  if (out.empty()) out = "anonymous";
  return out;
}

std::string EncodePresence(const Presence& p) {
  std::string s(kMagic);
  s += '\n' + SanitizeName(p.name) + '\n' + (ValidColor(p.color) ? p.color : "#808080") + '\n' +
       EncodeAnchor(p.cursor) + '\n' + EncodeAnchor(p.anchor);
  return s;
}

std::optional<Presence> DecodePresence(std::string_view payload) {
  if (payload.size() > 1024) return std::nullopt;
  auto lines = Split(payload, '\n');
  if (lines.size() != 5 || lines[0] != kMagic) return std::nullopt;
  Presence p;
  if (lines[1].empty() || lines[1].size() > kMaxNameBytes) return std::nullopt;
  if (SanitizeName(lines[1]) != lines[1]) return std::nullopt;
  p.name = std::string(lines[1]);
  if (!ValidColor(lines[2])) return std::nullopt;
  p.color = std::string(lines[2]);
  if (!DecodeAnchor(lines[3], &p.cursor) || !DecodeAnchor(lines[4], &p.anchor)) {
    return std::nullopt;
  }
  return p;
}

}  // namespace weft::demo
