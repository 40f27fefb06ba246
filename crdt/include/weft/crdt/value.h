// Scalar values: what a register, a map key, a set element or a list slot holds when it is not a
// nested CRDT. A Scalar is null, a bool, a 64-bit integer, a double, a UTF-8 string or bytes.
//
// Scalars have a total order (type first, then value; doubles by IEEE total order) so that sets
// and canonical encodings are the same on every replica. Plain value type.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "weft/crdt/encoding.h"

namespace weft::crdt {

struct Null {
  friend constexpr auto operator<=>(const Null&, const Null&) = default;
};

// Opaque bytes, distinct from text.
struct Bytes {
  std::string data;
  friend auto operator<=>(const Bytes&, const Bytes&) = default;
};

class Scalar {
 public:
  using Variant = std::variant<Null, bool, int64_t, double, std::string, Bytes>;

  Scalar() = default;                             // null
  Scalar(Null) {}                                 // NOLINT
  Scalar(bool b) : v_(b) {}                       // NOLINT
  Scalar(int v) : v_(static_cast<int64_t>(v)) {}  // NOLINT
  Scalar(int64_t v) : v_(v) {}                    // NOLINT
  Scalar(double d);                               // NOLINT
  Scalar(std::string s) : v_(std::move(s)) {}     // NOLINT
  Scalar(const char* s) : v_(std::string(s)) {}   // NOLINT
  Scalar(Bytes b) : v_(std::move(b)) {}           // NOLINT

  bool is_null() const { return std::holds_alternative<Null>(v_); }
  template <typename T>
  bool is() const {
    return std::holds_alternative<T>(v_);
  }
  template <typename T>
  const T& as() const {
    return std::get<T>(v_);
  }
  const Variant& variant() const { return v_; }

  // A short human-readable form: null, true, 42, 1.5, "text", b"6869".
  std::string ToString() const;

  // Total order: null < bool < int < double < string < bytes; doubles by bit pattern order
  // (IEEE totalOrder), so NaN and -0.0 have fixed places.
  friend bool operator==(const Scalar& a, const Scalar& b) { return Compare(a, b) == 0; }
  friend bool operator<(const Scalar& a, const Scalar& b) { return Compare(a, b) < 0; }
  static int Compare(const Scalar& a, const Scalar& b);

  void Encode(Writer& w) const;
  // Decodes one scalar; on bad input sets the reader's error and returns null.
  static Scalar Decode(Reader& r);

 private:
  Variant v_;
};

}  // namespace weft::crdt
