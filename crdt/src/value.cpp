#include "weft/crdt/value.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

namespace weft::crdt {
namespace {

enum Tag : uint8_t {
  kNull = 0,
  kFalse = 1,
  kTrue = 2,
  kInt = 3,
  kDouble = 4,
  kString = 5,
  kBytes = 6
};

// Maps a double's bits to an unsigned key whose order is IEEE 754 totalOrder.
uint64_t TotalOrderKey(double d) {
  uint64_t bits;
  std::memcpy(&bits, &d, 8);
  return (bits & (1ull << 63)) ? ~bits : bits | (1ull << 63);
}

}  // namespace

Scalar::Scalar(double d) {
  // One NaN: every NaN payload becomes the same value, so equal-looking states encode equally.
  if (std::isnan(d)) d = std::numeric_limits<double>::quiet_NaN();
  v_ = d;
}

int Scalar::Compare(const Scalar& a, const Scalar& b) {
  if (a.v_.index() != b.v_.index()) return a.v_.index() < b.v_.index() ? -1 : 1;
  switch (a.v_.index()) {
    case 0: return 0;
    case 1: return static_cast<int>(std::get<bool>(a.v_)) - static_cast<int>(std::get<bool>(b.v_));
    case 2: {
      int64_t x = std::get<int64_t>(a.v_), y = std::get<int64_t>(b.v_);
      return x < y ? -1 : x > y ? 1 : 0;
    }
    case 3: {
      uint64_t x = TotalOrderKey(std::get<double>(a.v_)), y = TotalOrderKey(std::get<double>(b.v_));
      return x < y ? -1 : x > y ? 1 : 0;
    }
    case 4: return std::get<std::string>(a.v_).compare(std::get<std::string>(b.v_));
    case 5: return std::get<Bytes>(a.v_).data.compare(std::get<Bytes>(b.v_).data);
  }
  return 0;
}

std::string Scalar::ToString() const {
  switch (v_.index()) {
    case 0: return "null";
    case 1: return std::get<bool>(v_) ? "true" : "false";
    case 2: return std::to_string(std::get<int64_t>(v_));
    case 3: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.17g", std::get<double>(v_));
      return buf;
    }
    case 4: return "\"" + std::get<std::string>(v_) + "\"";
    case 5: {
      std::string s = "b\"";
      static const char* kHex = "0123456789abcdef";
      for (unsigned char c : std::get<Bytes>(v_).data) {
        s += kHex[c >> 4];
        s += kHex[c & 15];
      }
      return s + "\"";
    }
  }
  return "?";
}

void Scalar::Encode(Writer& w) const {
  switch (v_.index()) {
    case 0: w.U8(kNull); break;
    case 1: w.U8(std::get<bool>(v_) ? kTrue : kFalse); break;
    case 2:
      w.U8(kInt);
      w.Zigzag(std::get<int64_t>(v_));
      break;
    case 3:
      w.U8(kDouble);
      w.F64(std::get<double>(v_));
      break;
    case 4:
      w.U8(kString);
      w.Bytes(std::get<std::string>(v_));
      break;
    case 5:
      w.U8(kBytes);
      w.Bytes(std::get<Bytes>(v_).data);
      break;
  }
}

Scalar Scalar::Decode(Reader& r) {
  switch (r.U8()) {
    case kNull: return Scalar();
    case kFalse: return Scalar(false);
    case kTrue: return Scalar(true);
    case kInt: return Scalar(r.Zigzag());
    case kDouble: return Scalar(r.F64());
    case kString: return Scalar(std::string(r.Bytes()));
    case kBytes: return Scalar(Bytes{std::string(r.Bytes())});
    default: r.Fail("unknown scalar tag"); return Scalar();
  }
}

}  // namespace weft::crdt
