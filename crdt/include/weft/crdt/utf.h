// UTF-8 / UTF-16 / code point helpers for the text CRDT.
//
// Weft counts text positions in Unicode code points. Editors built on Qt or JavaScript count in
// UTF-16 code units, so these helpers convert between the two for a given string. All functions
// are pure and thread-safe. Invalid UTF-8 (overlong forms, surrogates, code points above
// U+10FFFF, truncated sequences) is rejected with kInvalidArgument.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "weft/status.h"

namespace weft::crdt {

// OK when `s` is well-formed UTF-8, else kInvalidArgument naming the byte offset.
Status ValidateUtf8(std::string_view s);
// The code points of `s`, or kInvalidArgument.
Result<std::u32string> DecodeUtf8(std::string_view s);
// Appends the UTF-8 form of `cp` (precondition: a Unicode scalar value).
void AppendUtf8(std::string& out, char32_t cp);
// UTF-8 form of code points (precondition: all are Unicode scalar values).
std::string EncodeUtf8(std::u32string_view cps);
// The number of code points in valid UTF-8 `s` (counts lead bytes; precondition: valid).
size_t CountCodePoints(std::string_view s);
// True when `cp` is a Unicode scalar value (not a surrogate, at most U+10FFFF).
constexpr bool IsScalarValue(char32_t cp) {
  return cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
}

// The UTF-16 offset of code point index `cp_index` in UTF-8 `utf8`. kInvalidArgument on bad
// UTF-8, kOutOfRange when cp_index exceeds the number of code points.
Result<size_t> CodePointToUtf16(std::string_view utf8, size_t cp_index);
// The code point index of UTF-16 offset `utf16_offset` in UTF-8 `utf8`. kOutOfRange when the
// offset is past the end, kInvalidArgument when it falls inside a surrogate pair or on bad UTF-8.
Result<size_t> Utf16ToCodePoint(std::string_view utf8, size_t utf16_offset);
// The same conversions over code points already decoded.
Result<size_t> CodePointToUtf16(std::u32string_view cps, size_t cp_index);
Result<size_t> Utf16ToCodePoint(std::u32string_view cps, size_t utf16_offset);

}  // namespace weft::crdt
