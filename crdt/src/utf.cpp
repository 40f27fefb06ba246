#include "weft/crdt/utf.h"

#include <cstdint>
#include <cstring>

namespace weft::crdt {
namespace {

// Decodes one code point at s[i]; returns the number of bytes, or 0 when malformed.
size_t DecodeOne(std::string_view s, size_t i, char32_t* out) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + i;
  size_t left = s.size() - i;
  unsigned char b0 = p[0];
  if (b0 < 0x80) {
    *out = b0;
    return 1;
  }
  size_t n;
  char32_t cp;
  char32_t min;
  if ((b0 & 0xE0) == 0xC0) {
    n = 2, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    n = 3, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    n = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (left < n) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((p[k] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (p[k] & 0x3F);
  }
  if (cp < min || !IsScalarValue(cp)) return 0;
  *out = cp;
  return n;
}

Status BadUtf8(size_t at) {
  return Status::InvalidArgument("invalid UTF-8 at byte " + std::to_string(at));
}

}  // namespace

Status ValidateUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    char32_t cp;
    size_t n = DecodeOne(s, i, &cp);
    if (n == 0) return BadUtf8(i);
    i += n;
  }
  return Status::Ok();
}

Result<std::u32string> DecodeUtf8(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    char32_t cp;
    size_t n = DecodeOne(s, i, &cp);
    if (n == 0) return BadUtf8(i);
    out.push_back(cp);
    i += n;
  }
  return out;
}

void AppendUtf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string EncodeUtf8(std::u32string_view cps) {
  std::string out;
  out.reserve(cps.size());
  for (char32_t c : cps) AppendUtf8(out, c);
  return out;
}

size_t CountCodePoints(std::string_view s) {
  // Every byte but a continuation byte (10xxxxxx) starts a code point. Eight bytes at a time:
  // a continuation byte has bit 7 set and bit 6 clear.
  size_t n = 0, i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    uint64_t cont = (w & ~(w << 1) & 0x8080808080808080ull) >> 7;  // 1 per continuation byte
    n += 8 -
         static_cast<size_t>((cont * 0x0101010101010101ull) >> 56);  // their sum, in the top byte
  }
  for (; i < s.size(); ++i) n += (static_cast<unsigned char>(s[i]) & 0xC0) != 0x80;
  return n;
}

Result<size_t> CodePointToUtf16(std::string_view utf8, size_t cp_index) {
  size_t i = 0, cps = 0, units = 0;
  while (cps < cp_index) {
    if (i >= utf8.size()) return Status::OutOfRange("code point index past the end");
    char32_t cp;
    size_t n = DecodeOne(utf8, i, &cp);
    if (n == 0) return BadUtf8(i);
    units += cp >= 0x10000 ? 2 : 1;
    ++cps;
    i += n;
  }
  return units;
}

Result<size_t> Utf16ToCodePoint(std::string_view utf8, size_t utf16_offset) {
  size_t i = 0, cps = 0, units = 0;
  while (units < utf16_offset) {
    if (i >= utf8.size()) return Status::OutOfRange("UTF-16 offset past the end");
    char32_t cp;
    size_t n = DecodeOne(utf8, i, &cp);
    if (n == 0) return BadUtf8(i);
    units += cp >= 0x10000 ? 2 : 1;
    ++cps;
    i += n;
  }
  if (units != utf16_offset) {
    return Status::InvalidArgument("UTF-16 offset inside a surrogate pair");
  }
  return cps;
}

Result<size_t> CodePointToUtf16(std::u32string_view cps, size_t cp_index) {
  if (cp_index > cps.size()) return Status::OutOfRange("code point index past the end");
  size_t units = 0;
  for (size_t i = 0; i < cp_index; ++i) units += cps[i] >= 0x10000 ? 2 : 1;
  return units;
}

Result<size_t> Utf16ToCodePoint(std::u32string_view cps, size_t utf16_offset) {
  size_t units = 0, i = 0;
  while (units < utf16_offset) {
    if (i >= cps.size()) return Status::OutOfRange("UTF-16 offset past the end");
    units += cps[i] >= 0x10000 ? 2 : 1;
    ++i;
  }
  if (units != utf16_offset) {
    return Status::InvalidArgument("UTF-16 offset inside a surrogate pair");
  }
  return i;
}

}  // namespace weft::crdt
