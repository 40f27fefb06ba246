#include "weft/json.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "weft/crdt/utf.h"

namespace weft::json {

Value Value::Bool(bool b) {
  Value v;
  v.v_ = b;
  return v;
}
Value Value::Number(double d) {
  Value v;
  v.v_ = d;
  return v;
}
Value Value::Str(std::string s) {
  Value v;
  v.v_ = std::move(s);
  return v;
}
Value Value::MakeArray(Array a) {
  Value v;
  v.v_ = std::move(a);
  return v;
}
Value Value::MakeObject(Object o) {
  Value v;
  v.v_ = std::move(o);
  return v;
}

bool Value::is_int() const {
  if (!is_number()) return false;
  double d = as_number();
  return std::floor(d) == d && d >= -9.2e18 && d <= 9.2e18;
}
bool Value::is_uint() const {
  if (!is_number()) return false;
  double d = as_number();
  return std::floor(d) == d && d >= 0 && d <= 1.8e19;
}

const Value* Value::Find(std::string_view key) const {
  if (!is_object()) return nullptr;
  for (const auto& [k, v] : as_object()) {
    if (k == key) return &v;
  }
  return nullptr;
}

void Value::Set(std::string key, Value v) {
  if (is_null()) v_ = Object{};
  for (auto& [k, old] : as_object()) {
    if (k == key) {
      old = std::move(v);
      return;
    }
  }
  as_object().emplace_back(std::move(key), std::move(v));
}

void Value::Push(Value v) {
  if (is_null()) v_ = Array{};
  as_array().push_back(std::move(v));
}

namespace {

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  Result<Value> Run() {
    Value v;
    SkipWs();
    if (!ParseValue(&v, 0)) return Error();
    SkipWs();
    if (i_ != s_.size()) {
      Fail("unexpected data after the JSON value");
      return Error();
    }
    return v;
  }

 private:
  Status Error() const {
    size_t line = 1, col = 1;
    for (size_t k = 0; k < err_pos_ && k < s_.size(); ++k) {
      if (s_[k] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return Status::InvalidArgument("JSON line " + std::to_string(line) + ", column " +
                                   std::to_string(col) + ": " + err_);
  }
  bool Fail(std::string msg) {
    if (err_.empty()) {
      err_ = std::move(msg);
      err_pos_ = i_;
    }
    return false;
  }
  void SkipWs() {
    while (i_ < s_.size()) {
      char c = s_[i_];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        ++i_;
      } else {
        break;
      }
    }
  }
  bool Literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return Fail("invalid literal");
    i_ += word.size();
    return true;
  }

  bool ParseValue(Value* out, int depth) {
    if (depth > kMaxJsonDepth) return Fail("nesting too deep");
    if (i_ >= s_.size()) return Fail("unexpected end of input");
    char c = s_[i_];
    switch (c) {
      case 'n': *out = Value::Null(); return Literal("null");
      case 't': *out = Value::Bool(true); return Literal("true");
      case 'f': *out = Value::Bool(false); return Literal("false");
      case '"': {
        std::string str;
        if (!ParseString(&str)) return false;
        *out = Value::Str(std::move(str));
        return true;
      }
      case '[': return ParseArray(out, depth);
      case '{': return ParseObject(out, depth);
      default:
        if (c == '-' || (c >= '0' && c <= '9')) return ParseNumber(out);
        return Fail(std::string("unexpected character '") + c + "'");
    }
  }

  bool ParseArray(Value* out, int depth) {
    ++i_;  // [
    Value::Array arr;
    SkipWs();
    if (i_ < s_.size() && s_[i_] == ']') {
      ++i_;
      *out = Value::MakeArray(std::move(arr));
      return true;
    }
    while (true) {
      SkipWs();
      Value v;
      if (!ParseValue(&v, depth + 1)) return false;
      arr.push_back(std::move(v));
      SkipWs();
      if (i_ >= s_.size()) return Fail("unterminated array");
      if (s_[i_] == ',') {
        ++i_;
        continue;
      }
      if (s_[i_] == ']') {
        ++i_;
        break;
      }
      return Fail("expected ',' or ']'");
    }
    *out = Value::MakeArray(std::move(arr));
    return true;
  }

  bool ParseObject(Value* out, int depth) {
    ++i_;  // {
    Value::Object obj;
    SkipWs();
    if (i_ < s_.size() && s_[i_] == '}') {
      ++i_;
      *out = Value::MakeObject(std::move(obj));
      return true;
    }
    while (true) {
      SkipWs();
      if (i_ >= s_.size() || s_[i_] != '"') return Fail("expected a string key");
      std::string key;
      if (!ParseString(&key)) return false;
      SkipWs();
      if (i_ >= s_.size() || s_[i_] != ':') return Fail("expected ':'");
      ++i_;
      SkipWs();
      Value v;
      if (!ParseValue(&v, depth + 1)) return false;
      obj.emplace_back(std::move(key), std::move(v));
      SkipWs();
      if (i_ >= s_.size()) return Fail("unterminated object");
      if (s_[i_] == ',') {
        ++i_;
        continue;
      }
      if (s_[i_] == '}') {
        ++i_;
        break;
      }
      return Fail("expected ',' or '}'");
    }
    *out = Value::MakeObject(std::move(obj));
    return true;
  }

  bool Hex4(uint32_t* out) {
    if (s_.size() - i_ < 4) return Fail("truncated \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      char c = s_[i_++];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        v |= static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        v |= static_cast<uint32_t>(c - 'A' + 10);
      } else {
        return Fail("bad hex digit in \\u escape");
      }
    }
    *out = v;
    return true;
  }

  bool ParseString(std::string* out) {
    ++i_;  // opening quote
    size_t start = i_;
    while (true) {
      // Fast path: copy a run of plain bytes.
      size_t j = i_;
      while (j < s_.size()) {
        unsigned char c = static_cast<unsigned char>(s_[j]);
        if (c == '"' || c == '\\' || c < 0x20) break;
        ++j;
      }
      out->append(s_.data() + i_, j - i_);
      i_ = j;
      if (i_ >= s_.size()) return Fail("unterminated string");
      char c = s_[i_];
      if (c == '"') {
        ++i_;
        break;
      }
      if (static_cast<unsigned char>(c) < 0x20) return Fail("control character in string");
      // Escape.
      ++i_;
      if (i_ >= s_.size()) return Fail("unterminated escape");
      char e = s_[i_++];
      switch (e) {
        case '"': out->push_back('"'); break;
        case '\\': out->push_back('\\'); break;
        case '/': out->push_back('/'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          uint32_t cp;
          if (!Hex4(&cp)) return false;
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (s_.size() - i_ < 6 || s_[i_] != '\\' || s_[i_ + 1] != 'u') {
              return Fail("lone high surrogate");
            }
            i_ += 2;
            uint32_t lo;
            if (!Hex4(&lo)) return false;
            if (lo < 0xDC00 || lo > 0xDFFF) return Fail("bad low surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return Fail("lone low surrogate");
          }
          crdt::AppendUtf8(*out, static_cast<char32_t>(cp));
          break;
        }
        default: return Fail("bad escape");
      }
    }
    (void)start;
    Status s = crdt::ValidateUtf8(*out);
    if (!s.ok()) return Fail("string is not valid UTF-8");
    return true;
  }

  bool ParseNumber(Value* out) {
    size_t start = i_;
    if (s_[i_] == '-') ++i_;
    if (i_ >= s_.size()) return Fail("bad number");
    if (s_[i_] == '0') {
      ++i_;
    } else if (s_[i_] >= '1' && s_[i_] <= '9') {
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    } else {
      return Fail("bad number");
    }
    bool simple_int = true;
    if (i_ < s_.size() && s_[i_] == '.') {
      simple_int = false;
      ++i_;
      if (i_ >= s_.size() || s_[i_] < '0' || s_[i_] > '9') return Fail("bad fraction");
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      simple_int = false;
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (i_ >= s_.size() || s_[i_] < '0' || s_[i_] > '9') return Fail("bad exponent");
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    }
    std::string_view num = s_.substr(start, i_ - start);
    if (simple_int && num.size() < 16) {
      int64_t v = 0;
      std::from_chars(num.data(), num.data() + num.size(), v);
      *out = Value::Number(static_cast<double>(v));
      return true;
    }
    std::string tmp(num);
    char* end = nullptr;
    double d = std::strtod(tmp.c_str(), &end);
    if (!std::isfinite(d)) return Fail("number out of range");
    *out = Value::Number(d);
    return true;
  }

  std::string_view s_;
  size_t i_ = 0;
  std::string err_;
  size_t err_pos_ = 0;
};

void SerializeTo(std::string& out, const Value& v) {
  switch (v.type()) {
    case Value::Type::kNull: out += "null"; return;
    case Value::Type::kBool: out += v.as_bool() ? "true" : "false"; return;
    case Value::Type::kNumber: {
      double d = v.as_number();
      if (!std::isfinite(d)) {
        out += "null";
      } else if (v.is_int()) {
        out += std::to_string(static_cast<int64_t>(d));
      } else {
        char buf[32];
        auto r = std::to_chars(buf, buf + sizeof buf, d);
        out.append(buf, r.ptr);
      }
      return;
    }
    case Value::Type::kString: AppendQuoted(out, v.as_string()); return;
    case Value::Type::kArray: {
      out.push_back('[');
      bool first = true;
      for (const Value& e : v.as_array()) {
        if (!first) out.push_back(',');
        first = false;
        SerializeTo(out, e);
      }
      out.push_back(']');
      return;
    }
    case Value::Type::kObject: {
      out.push_back('{');
      bool first = true;
      for (const auto& [k, e] : v.as_object()) {
        if (!first) out.push_back(',');
        first = false;
        AppendQuoted(out, k);
        out.push_back(':');
        SerializeTo(out, e);
      }
      out.push_back('}');
      return;
    }
  }
}

}  // namespace

Result<Value> Parse(std::string_view text) {
  return Parser(text).Run();
}

void AppendQuoted(std::string& out, std::string_view s) {
  out.push_back('"');
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (u < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", u);
          out += buf;
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

std::string Serialize(const Value& v) {
  std::string out;
  SerializeTo(out, v);
  return out;
}

}  // namespace weft::json
