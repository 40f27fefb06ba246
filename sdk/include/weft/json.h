// A small, strict JSON reader and writer (RFC 8259), for test fixtures, editing traces and the
// command-line tool.
//
// Strict: no comments, no trailing commas, no leading zeros, no NaN, strings must be valid UTF-8
// with valid escapes (surrogate pairs combined, lone surrogates rejected), nesting limited to
// kMaxJsonDepth. A parse error says where ("line 3, column 14: ..."). Values are plain value
// types; not thread-safe for concurrent mutation.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "weft/status.h"

namespace weft::json {

inline constexpr int kMaxJsonDepth = 512;

class Value {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  using Array = std::vector<Value>;
  using Object = std::vector<std::pair<std::string, Value>>;  // in document order

  Value() = default;
  static Value Null() { return Value(); }
  static Value Bool(bool b);
  static Value Number(double d);
  static Value Str(std::string s);
  static Value MakeArray(Array a = {});
  static Value MakeObject(Object o = {});

  Type type() const { return static_cast<Type>(v_.index()); }
  bool is_null() const { return type() == Type::kNull; }
  bool is_bool() const { return type() == Type::kBool; }
  bool is_number() const { return type() == Type::kNumber; }
  bool is_string() const { return type() == Type::kString; }
  bool is_array() const { return type() == Type::kArray; }
  bool is_object() const { return type() == Type::kObject; }

  // Preconditions: the matching type.
  bool as_bool() const { return std::get<bool>(v_); }
  double as_number() const { return std::get<double>(v_); }
  const std::string& as_string() const { return std::get<std::string>(v_); }
  const Array& as_array() const { return std::get<Array>(v_); }
  Array& as_array() { return std::get<Array>(v_); }
  const Object& as_object() const { return std::get<Object>(v_); }
  Object& as_object() { return std::get<Object>(v_); }

  // True when the number is an integer that fits in int64 / uint64 exactly.
  bool is_int() const;
  bool is_uint() const;
  int64_t as_int() const { return static_cast<int64_t>(as_number()); }
  uint64_t as_uint() const { return static_cast<uint64_t>(as_number()); }

  // Object member by key (the first one), or nullptr (also when not an object).
  const Value* Find(std::string_view key) const;
  // Appends or replaces a member (makes this an object if null).
  void Set(std::string key, Value v);
  // Appends to an array (makes this an array if null).
  void Push(Value v);

  friend bool operator==(const Value& a, const Value& b) { return a.v_ == b.v_; }

 private:
  // Alternatives in the order of Type.
  std::variant<std::monostate, bool, double, std::string, Array, Object> v_;
};

// Parses one JSON text (surrounding whitespace allowed). kInvalidArgument with the position on
// any error.
Result<Value> Parse(std::string_view text);

// Compact JSON (no spaces). Numbers that are integers print without a fraction; others with the
// shortest form that round-trips. Non-finite numbers print as null.
std::string Serialize(const Value& v);
// Appends `s` as a JSON string literal (quotes and escapes) to `out`.
void AppendQuoted(std::string& out, std::string_view s);

}  // namespace weft::json
