#include "sequence_huffman.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

namespace weft::crdt::internal {
namespace {

constexpr int kMaxBits = 15;
constexpr uint8_t kModeRaw = 0;
constexpr uint8_t kModeHuffman = 1;
constexpr int kTableBits = 10;

using Lengths = std::array<uint8_t, 256>;

// Huffman code lengths for `freq`, at most kMaxBits. Deterministic: ties break by symbol.
Lengths BuildLengths(std::array<uint64_t, 256> freq) {
  Lengths len{};
  while (true) {
    std::vector<int> syms;
    for (int s = 0; s < 256; ++s) {
      if (freq[s]) syms.push_back(s);
    }
    len.fill(0);
    if (syms.empty()) return len;
    if (syms.size() == 1) {
      len[syms[0]] = 1;
      return len;
    }
    std::stable_sort(syms.begin(), syms.end(), [&](int a, int b) { return freq[a] < freq[b]; });
    // Two-queue Huffman: leaves in order, internal nodes in creation order.
    struct Node {
      uint64_t w;
      int parent;
    };
    std::vector<Node> nodes;  // leaves 0..n-1 (sorted), internal after
    size_t n = syms.size();
    for (int s : syms) nodes.push_back(Node{freq[s], -1});
    size_t li = 0, ii = n;
    auto take = [&]() -> size_t {
      if (li < n && (ii >= nodes.size() || nodes[li].w <= nodes[ii].w)) return li++;
      return ii++;
    };
    for (size_t k = 0; k + 1 < n; ++k) {
      size_t a = take();
      size_t b = take();
      nodes.push_back(Node{nodes[a].w + nodes[b].w, -1});
      nodes[a].parent = nodes[b].parent = static_cast<int>(nodes.size() - 1);
    }
    std::vector<int> depth(nodes.size(), 0);
    int max_depth = 0;
    for (size_t k = nodes.size() - 1; k-- > 0;) {
      depth[k] = depth[static_cast<size_t>(nodes[k].parent)] + 1;
    }
    for (size_t k = 0; k < n; ++k) {
      len[syms[k]] = static_cast<uint8_t>(depth[k]);
      max_depth = std::max(max_depth, depth[k]);
    }
    if (max_depth <= kMaxBits) return len;
    for (uint64_t& f : freq) {
      if (f) f = (f >> 1) | 1;
    }
  }
}

// Canonical codes from lengths: codes[s] (MSB-first, len[s] bits).
std::array<uint32_t, 256> CanonicalCodes(const Lengths& len) {
  std::array<uint32_t, 256> codes{};
  uint32_t code = 0;
  for (int l = 1; l <= kMaxBits; ++l) {
    for (int s = 0; s < 256; ++s) {
      if (len[s] == l) codes[s] = code++;
    }
    code <<= 1;
  }
  return codes;
}

std::string HuffmanBody(std::string_view data, const Lengths& len) {
  std::array<uint32_t, 256> codes = CanonicalCodes(len);
  std::string out;
  out.reserve(data.size() / 2 + 16);
  uint64_t acc = 0;
  int nbits = 0;
  for (char c : data) {
    auto s = static_cast<uint8_t>(c);
    acc = (acc << len[s]) | codes[s];
    nbits += len[s];
    while (nbits >= 8) {
      nbits -= 8;
      out.push_back(static_cast<char>((acc >> nbits) & 0xff));
    }
  }
  if (nbits > 0) out.push_back(static_cast<char>((acc << (8 - nbits)) & 0xff));
  return out;
}

}  // namespace

void EncodeBlock(Writer& w, std::string_view data) {
  std::array<uint64_t, 256> freq{};
  for (char c : data) ++freq[static_cast<uint8_t>(c)];
  Lengths len = BuildLengths(freq);
  uint64_t bits = 0;
  for (int s = 0; s < 256; ++s) bits += freq[s] * len[s];
  uint64_t huff_size = 1 + 128 + 10 + (bits + 7) / 8;
  if (data.size() < 256 || huff_size >= data.size()) {
    w.U8(kModeRaw);
    w.Bytes(data);
    return;
  }
  w.U8(kModeHuffman);
  w.Varint(data.size());
  for (int s = 0; s < 256; s += 2) w.U8(static_cast<uint8_t>(len[s] | (len[s + 1] << 4)));
  w.Bytes(HuffmanBody(data, len));
}

Result<std::string> DecodeBlock(Reader& r) {
  uint8_t mode = r.U8();
  if (!r.ok()) return r.status("block");
  if (mode == kModeRaw) {
    std::string_view s = r.Bytes();
    if (!r.ok()) return r.status("block");
    return std::string(s);
  }
  if (mode != kModeHuffman) return Status::Corruption("block: unknown mode");
  uint64_t n = r.Varint();
  Lengths len{};
  for (int s = 0; s < 256; s += 2) {
    uint8_t b = r.U8();
    len[s] = b & 15;
    len[s + 1] = static_cast<uint8_t>(b >> 4);
  }
  std::string_view body = r.Bytes();
  if (!r.ok()) return r.status("block");
  // Every symbol takes at least one bit.
  if (n > body.size() * 8) return Status::Corruption("block: length exceeds its bits");
  // Kraft: the code must not be oversubscribed, and must have a symbol.
  uint64_t kraft = 0;
  int count[kMaxBits + 1] = {};
  for (int s = 0; s < 256; ++s) {
    if (len[s]) {
      kraft += 1ull << (kMaxBits - len[s]);
      ++count[len[s]];
    }
  }
  if (kraft == 0 || kraft > (1ull << kMaxBits)) return Status::Corruption("block: bad code table");
  // Canonical decoding tables: symbols sorted by (length, symbol).
  std::vector<uint8_t> sorted;
  for (int l = 1; l <= kMaxBits; ++l) {
    for (int s = 0; s < 256; ++s) {
      if (len[s] == l) sorted.push_back(static_cast<uint8_t>(s));
    }
  }
  int first_code[kMaxBits + 2] = {};
  int first_index[kMaxBits + 2] = {};
  {
    int code = 0, index = 0;
    for (int l = 1; l <= kMaxBits; ++l) {
      first_code[l] = code;
      first_index[l] = index;
      code = (code + count[l]) << 1;
      index += count[l];
    }
  }
  // Fast table for codes of at most kTableBits bits: (symbol, length), length 0 = slow path.
  std::vector<uint16_t> table(1u << kTableBits, 0);
  {
    std::array<uint32_t, 256> codes = CanonicalCodes(len);
    for (int s = 0; s < 256; ++s) {
      if (len[s] == 0 || len[s] > kTableBits) continue;
      uint32_t base = codes[s] << (kTableBits - len[s]);
      for (uint32_t k = 0; k < (1u << (kTableBits - len[s])); ++k) {
        table[base + k] = static_cast<uint16_t>(s | (len[s] << 8));
      }
    }
  }
  std::string out;
  out.resize(n);
  const auto* p = reinterpret_cast<const uint8_t*>(body.data());
  uint64_t total_bits = body.size() * 8;
  uint64_t pos = 0;                     // bit position
  auto peek = [&](int k) -> uint32_t {  // next k bits, zero-padded past the end
    uint32_t v = 0;
    for (int b = 0; b < k; ++b) {
      uint64_t bp = pos + static_cast<uint64_t>(b);
      uint32_t bit = bp < total_bits ? (p[bp >> 3] >> (7 - (bp & 7))) & 1 : 0;
      v = (v << 1) | bit;
    }
    return v;
  };
  for (uint64_t i = 0; i < n; ++i) {
    uint32_t look;
    if (pos + 24 <= total_bits) {
      uint64_t byte = pos >> 3;
      uint32_t w24 = (static_cast<uint32_t>(p[byte]) << 16) |
                     (static_cast<uint32_t>(p[byte + 1]) << 8) | p[byte + 2];
      look = (w24 >> (24 - kTableBits - (pos & 7))) & ((1u << kTableBits) - 1);
    } else {
      look = peek(kTableBits);
    }
    uint16_t e = table[look];
    if (e != 0) {
      uint64_t l = e >> 8;
      if (pos + l > total_bits) return Status::Corruption("block: truncated bits");
      out[i] = static_cast<char>(e & 0xff);
      pos += l;
      continue;
    }
    int code = 0;
    bool found = false;
    for (int l = 1; l <= kMaxBits; ++l) {
      if (pos >= total_bits) return Status::Corruption("block: truncated bits");
      code = (code << 1) | static_cast<int>((p[pos >> 3] >> (7 - (pos & 7))) & 1);
      ++pos;
      if (code - first_code[l] < count[l]) {
        out[i] =
            static_cast<char>(sorted[static_cast<size_t>(first_index[l] + code - first_code[l])]);
        found = true;
        break;
      }
    }
    if (!found) return Status::Corruption("block: invalid code");
  }
  if ((total_bits - pos) >= 8) return Status::Corruption("block: trailing bytes");
  return out;
}

}  // namespace weft::crdt::internal
