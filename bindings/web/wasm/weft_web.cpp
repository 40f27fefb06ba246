// The crdt/ core for JavaScript: a thin embind layer over weft::crdt::Document, compiled to
// WebAssembly with emscripten. bindings/web/js/weft.js wraps it into the public JS API; nothing
// else should call it directly.
//
// Every method returns a JS value. A failure is returned, not thrown: a JS Error whose `code` is
// the weft::StatusCode number and `codeName` its name, which weft.js turns into a thrown
// WeftError. Nothing here aborts on bad input: every argument from JS is checked (object IDs,
// node IDs, versions, scalars, positions), and bytes are decoded by the core's validating
// decoders.
//
// Values crossing the boundary: object IDs and dots are "<16 hex digits>:<seq>" strings (the root
// map is "0000000000000000:0"); node IDs 16 hex digits; a version vector a plain object from node
// ID to seq (a Number; seqs stay below 2^53); bytes Uint8Array. Scalars: null, boolean, a Number
// (an integer Number within 2^53 is an int64, any other Number a double), BigInt (int64), string,
// Uint8Array (bytes), or {float64: x} to force a double. Reads give int64 as a Number when it is
// within 2^53, else as a BigInt; nested objects as {kind, id}. Patches travel as JSON text (see
// PatchesJson), and the hot path (begin, text insert and delete, commit, rollback) has plain
// exports taking numbers and a pointer to UTF-8 in the module's memory (weft_* at the end): making
// or inspecting JS values through embind is what costs most at this boundary.
//
// Thread safety: none needed (one JS thread); a Doc is not shared between workers.
#include <emscripten/bind.h>
#include <emscripten/emscripten.h>
#include <emscripten/val.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "weft/crdt/document.h"
#include "weft/crdt/history.h"

namespace {

using emscripten::val;
using weft::Result;
using weft::Status;
using weft::StatusCode;
using namespace weft::crdt;

constexpr double kMaxSafeInteger = 9007199254740991.0;  // 2^53 - 1

val Fail(const Status& s) {
  val err = val::global("Error").new_(val(s.ToString()));
  err.set("code", static_cast<int>(s.code()));
  err.set("codeName", val(weft::StatusCodeName(s.code())));
  err.set("weftMessage", val(s.message()));
  return err;
}

val Fail(StatusCode code, std::string message) {
  return Fail(Status(code, std::move(message)));
}

val Bytes(std::string_view s) {
  val out = val::global("Uint8Array").new_(s.size());
  out.call<void>("set", val(emscripten::typed_memory_view(
                            s.size(), reinterpret_cast<const uint8_t*>(s.data()))));
  return out;
}

// A JS Uint8Array (or ArrayBuffer) as bytes; nullopt for anything else.
std::optional<std::string> BytesOf(const val& v) {
  if (!v.instanceof (val::global("Uint8Array")) && !v.instanceof (val::global("ArrayBuffer"))) {
    return std::nullopt;
  }
  return v.as<std::string>();
}

bool IsString(const val& v) {
  return v.isString();
}
bool IsNumber(const val& v) {
  return v.isNumber();
}

std::string DotString(const Dot& d) {
  return d.node.ToHex() + ":" + std::to_string(d.seq);
}

// 1 to 16 lowercase hex digits; zero allowed (the root's node).
std::optional<uint64_t> ParseHex(std::string_view hex) {
  if (hex.empty() || hex.size() > 16) return std::nullopt;
  uint64_t v = 0;
  for (char c : hex) {
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else {
      return std::nullopt;
    }
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  return v;
}

std::optional<uint64_t> ParseDecimal(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    uint64_t next = v * 10 + static_cast<uint64_t>(c - '0');
    if (next / 10 != v) return std::nullopt;  // overflow
    v = next;
  }
  return v;
}

Result<Dot> DotOf(const std::string& s, const char* what) {
  size_t colon = s.find(':');
  std::optional<uint64_t> node, seq;
  if (colon != std::string::npos) {
    node = ParseHex(std::string_view(s).substr(0, colon));
    seq = ParseDecimal(std::string_view(s).substr(colon + 1));
  }
  if (!node || !seq) {
    return Status::InvalidArgument(std::string(what) + " \"" + s +
                                   "\" is not an ID of the form <hex node>:<seq>");
  }
  return Dot{NodeId{*node}, *seq};
}

Result<Dot> DotOf(const val& v, const char* what) {
  if (!IsString(v)) return Status::InvalidArgument(std::string(what) + " must be a string");
  return DotOf(v.as<std::string>(), what);
}

Result<NodeId> NodeOf(const val& v) {
  if (IsString(v)) {
    auto n = NodeId::FromHex(v.as<std::string>());
    if (n) return *n;
  }
  return Status::InvalidArgument("a node ID must be 1 to 16 lowercase hex digits, not zero");
}

// A non-negative integer Number (a position, a length, a seq).
Result<uint64_t> IndexOf(double d, const char* what) {
  if (d >= 0 && d <= kMaxSafeInteger && std::floor(d) == d) return static_cast<uint64_t>(d);
  return Status::InvalidArgument(std::string(what) + " must be a non-negative integer");
}
Result<uint64_t> IndexOf(const val& v, const char* what) {
  if (IsNumber(v)) return IndexOf(v.as<double>(), what);
  return Status::InvalidArgument(std::string(what) + " must be a non-negative integer");
}

Result<int64_t> Int64Of(const val& v, const char* what) {
  std::string type = v.typeOf().as<std::string>();
  if (type == "number") {
    double d = v.as<double>();
    if (std::floor(d) == d && std::fabs(d) <= kMaxSafeInteger) return static_cast<int64_t>(d);
  } else if (type == "bigint") {
    std::string s = v.call<std::string>("toString");
    bool negative = !s.empty() && s[0] == '-';
    auto mag = ParseDecimal(negative ? std::string_view(s).substr(1) : std::string_view(s));
    if (mag && *mag <= (negative ? 9223372036854775808ull : 9223372036854775807ull)) {
      return negative ? static_cast<int64_t>(0 - *mag) : static_cast<int64_t>(*mag);
    }
  }
  return Status::InvalidArgument(std::string(what) +
                                 " must be an integer Number (within 2^53) or a BigInt in int64");
}

val VersionToJs(const VersionVector& v) {
  val out = val::object();
  for (const auto& [node, seq] : v.entries()) out.set(node.ToHex(), static_cast<double>(seq));
  return out;
}

Result<VersionVector> VersionOf(const val& v) {
  if (v.typeOf().as<std::string>() != "object" || v.isNull()) {
    return Status::InvalidArgument("a version must be an object of node ID -> seq");
  }
  val entries = val::global("Object").call<val>("entries", v);
  VersionVector out;
  const unsigned n = entries["length"].as<unsigned>();
  for (unsigned i = 0; i < n; ++i) {
    val e = entries[i];
    auto node = NodeOf(e[0]);
    if (!node.ok()) return node.status();
    auto seq = IndexOf(e[1], "a version's seq");
    if (!seq.ok()) return seq.status();
    out.Set(*node, *seq);
  }
  return out;
}

const char* KindName(ObjectKind k) {
  switch (k) {
    case ObjectKind::kMap: return "map";
    case ObjectKind::kRegister: return "register";
    case ObjectKind::kLwwRegister: return "lww";
    case ObjectKind::kCounter: return "counter";
    case ObjectKind::kSet: return "set";
    case ObjectKind::kList: return "list";
    case ObjectKind::kText: return "text";
  }
  return "unknown";
}

Result<ObjectKind> KindOf(const val& v) {
  if (IsString(v)) {
    std::string s = v.as<std::string>();
    for (int k = 1; k <= 7; ++k) {
      if (s == KindName(static_cast<ObjectKind>(k))) return static_cast<ObjectKind>(k);
    }
  }
  return Status::InvalidArgument(
      "an object kind must be one of map, register, lww, counter, set, list, text");
}

val ScalarToJs(const Scalar& s) {
  const auto& v = s.variant();
  switch (v.index()) {
    case 0: return val::null();
    case 1: return val(std::get<bool>(v));
    case 2: {
      int64_t i = std::get<int64_t>(v);
      if (i >= -static_cast<int64_t>(kMaxSafeInteger) &&
          i <= static_cast<int64_t>(kMaxSafeInteger)) {
        return val(static_cast<double>(i));
      }
      return val::global("BigInt")(val(std::to_string(i)));
    }
    case 3: return val(std::get<double>(v));
    case 4: return val(std::get<std::string>(v));
    default: return Bytes(std::get<weft::crdt::Bytes>(v).data);
  }
}

Result<Scalar> ScalarOf(const val& v) {
  if (v.isNull() || v.isUndefined()) return Scalar();
  std::string type = v.typeOf().as<std::string>();
  if (type == "boolean") return Scalar(v.as<bool>());
  if (type == "string") return Scalar(v.as<std::string>());
  if (type == "number") {
    double d = v.as<double>();
    if (std::floor(d) == d && std::fabs(d) <= kMaxSafeInteger) {
      return Scalar(static_cast<int64_t>(d));
    }
    return Scalar(d);
  }
  if (type == "bigint") {
    auto i = Int64Of(v, "a BigInt value");
    if (!i.ok()) return i.status();
    return Scalar(*i);
  }
  if (type == "object") {
    if (auto b = BytesOf(v)) return Scalar(weft::crdt::Bytes{std::move(*b)});
    val f = v["float64"];
    if (IsNumber(f)) return Scalar(f.as<double>());
  }
  return Status::InvalidArgument(
      "a value must be null, a boolean, a Number, a BigInt, a string, a Uint8Array or "
      "{float64: Number}, not " +
      type);
}

val ValueToJs(const Value& v) {
  if (!v.is_object()) return ScalarToJs(v.scalar());
  val o = val::object();
  o.set("kind", val(KindName(v.object().kind)));
  o.set("id", val(DotString(v.object().id)));
  return o;
}

val TimeToJs(const HlcTimestamp& t) {
  val o = val::object();
  o.set("ms", static_cast<double>(t.wall_ms));
  o.set("logical", t.logical);
  return o;
}

const char* PatchTypeName(Patch::Type t) {
  switch (t) {
    case Patch::Type::kMapKey: return "mapKey";
    case Patch::Type::kRegister: return "register";
    case Patch::Type::kCounter: return "counter";
    case Patch::Type::kSetAdd: return "setAdd";
    case Patch::Type::kSetRemove: return "setRemove";
    case Patch::Type::kInsert: return "insert";
    case Patch::Type::kDelete: return "delete";
  }
  return "unknown";
}

// Patches go to JS as JSON text (parsed there when read): building many small JS objects
// property by property through embind costs more than the whole change. Scalars: JSON values,
// except int64 beyond 2^53 {"$int": "decimal"}, doubles that JSON cannot hold {"$float": "NaN"},
// and bytes {"$bytes": "hex"}.

void JsonScalar(const Scalar& s, std::string& out) {
  const auto& v = s.variant();
  switch (v.index()) {
    case 0: out += "null"; return;
    case 1: out += std::get<bool>(v) ? "true" : "false"; return;
    case 2: {
      int64_t i = std::get<int64_t>(v);
      bool safe =
          i >= -static_cast<int64_t>(kMaxSafeInteger) && i <= static_cast<int64_t>(kMaxSafeInteger);
      out += safe ? std::to_string(i) : "{\"$int\":\"" + std::to_string(i) + "\"}";
      return;
    }
    case 3: {
      double d = std::get<double>(v);
      if (std::isnan(d) || std::isinf(d)) {
        out += std::isnan(d) ? "{\"$float\":\"NaN\"}"
                             : (d > 0 ? "{\"$float\":\"Infinity\"}" : "{\"$float\":\"-Infinity\"}");
        return;
      }
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.17g", d);
      out += buf;
      return;
    }
    case 4: weft::crdt::AppendJsonString(out, std::get<std::string>(v)); return;
    default: {
      static const char* kHex = "0123456789abcdef";
      out += "{\"$bytes\":\"";
      for (unsigned char c : std::get<weft::crdt::Bytes>(v).data) {
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 15]);
      }
      out += "\"}";
    }
  }
}

std::string PatchesJson(const std::vector<Patch>& patches) {
  std::string out = "[";
  for (const Patch& p : patches) {
    if (out.size() > 1) out.push_back(',');
    out += "{\"type\":\"";
    out += PatchTypeName(p.type);
    out += "\",\"object\":\"" + DotString(p.object) + "\"";
    switch (p.type) {
      case Patch::Type::kMapKey:
        out += ",\"key\":";
        weft::crdt::AppendJsonString(out, p.key);
        out += ",\"siblings\":" + std::to_string(p.siblings);
        break;
      case Patch::Type::kRegister: out += ",\"siblings\":" + std::to_string(p.siblings); break;
      case Patch::Type::kCounter:
        out += ",\"delta\":";
        JsonScalar(Scalar(p.delta), out);
        break;
      case Patch::Type::kSetAdd:
      case Patch::Type::kSetRemove:
        out += ",\"element\":";
        JsonScalar(p.element, out);
        break;
      case Patch::Type::kInsert:
      case Patch::Type::kDelete:
        out += ",\"index\":" + std::to_string(p.index) + ",\"length\":" + std::to_string(p.length);
        if (p.type == Patch::Type::kInsert && !p.text.empty()) {
          out += ",\"text\":";
          weft::crdt::AppendJsonString(out, p.text);
        }
        break;
    }
    out.push_back('}');
  }
  out.push_back(']');
  return out;
}

val ChangeInfo(const Change& c) {
  val o = val::object();
  o.set("id", val(DotString(c.id())));
  o.set("author", val(c.author.ToHex()));
  o.set("startSeq", static_cast<double>(c.start_seq));
  o.set("endSeq", static_cast<double>(c.end_seq()));
  o.set("deps", VersionToJs(c.deps));
  o.set("lamport", static_cast<double>(c.lamport));
  o.set("time", TimeToJs(c.time));
  o.set("ops", static_cast<double>(c.ops.size()));
  o.set("signed", !c.signature.empty());
  return o;
}

val Entries(const std::vector<KeyRead::Entry>& entries, const VersionVector& context) {
  val values = val::array();
  for (const auto& e : entries) {
    val o = val::object();
    o.set("value", ValueToJs(e.value));
    o.set("dot", val(DotString(e.clock.dot)));
    values.call<void>("push", o);
  }
  val out = val::object();
  out.set("values", values);
  out.set("context", VersionToJs(context));
  return out;
}

// Decodes every change of `list` (an array of Uint8Array) before any is applied.
// `encoded`, when given, receives each change's bytes.
Result<std::vector<Change>> DecodeAll(const val& list,
                                      std::vector<std::string>* encoded = nullptr) {
  if (!list.isArray()) return Status::InvalidArgument("changes must be an array of Uint8Array");
  std::vector<Change> out;
  const unsigned n = list["length"].as<unsigned>();
  out.reserve(n);
  if (encoded) encoded->reserve(n);
  for (unsigned i = 0; i < n; ++i) {
    auto bytes = BytesOf(list[i]);
    if (!bytes) return Status::InvalidArgument("change " + std::to_string(i) + " is not bytes");
    auto c = DecodeChange(*bytes);
    if (!c.ok()) {
      return Status(c.status().code(), "change " + std::to_string(i) + ": " + c.status().message());
    }
    out.push_back(std::move(*c));
    if (encoded) encoded->push_back(std::move(*bytes));
  }
  return out;
}

// One replica's document and its open transaction, if any.
class Doc {
 public:
  explicit Doc(std::string node_hex)
      : doc_(NodeId::FromHex(node_hex).value_or(NodeId{1})), valid_(NodeId::FromHex(node_hex)) {}

  bool valid() const { return valid_; }
  std::string nodeId() const { return doc_.self().ToHex(); }
  val version() const { return VersionToJs(doc_.version()); }
  val heads() const { return VersionToJs(doc_.heads()); }
  double lamport() const { return static_cast<double>(doc_.lamport()); }
  double pending() const { return static_cast<double>(doc_.pending()); }
  bool inTransaction() const { return txn_.has_value(); }

  // --- Transactions ---------------------------------------------------------------------------
  val begin(double now_ms) {
    if (txn_) return Fail(StatusCode::kInvalidArgument, "a transaction is already open");
    auto now = IndexOf(now_ms, "the time");
    if (!now.ok()) return Fail(now.status());
    txn_.emplace(doc_.Begin(*now));
    return val(true);
  }
  val beginAt(val at, double now_ms) {
    if (txn_) return Fail(StatusCode::kInvalidArgument, "a transaction is already open");
    auto now = IndexOf(now_ms, "the time");
    if (!now.ok()) return Fail(now.status());
    auto v = VersionOf(at);
    if (!v.ok()) return Fail(v.status());
    auto t = doc_.BeginAt(*v, *now);
    if (!t.ok()) return Fail(t.status());
    txn_.emplace(std::move(*t));
    return val(true);
  }
  // Access ops in the open transaction, for the sync client (the SDK's AddAuthorship does the
  // same): the owner's create, and the bind of this document's author to a device key, with the
  // proof the caller signed (weft/bind/v1; the keys stay in JS, in Web Crypto).
  val createAccess(val key) {
    if (!txn_) return Fail(StatusCode::kInvalidArgument, "no transaction is open");
    auto k = BytesOf(key);
    if (!k) return Fail(StatusCode::kInvalidArgument, "a key must be a Uint8Array");
    Status s = txn_->CreateAccess(*k);
    return s.ok() ? val(true) : Fail(s);
  }
  val bindAuthor(val key, val proof) {
    if (!txn_) return Fail(StatusCode::kInvalidArgument, "no transaction is open");
    auto k = BytesOf(key);
    auto p = BytesOf(proof);
    if (!k || !p)
      return Fail(StatusCode::kInvalidArgument, "a key and a proof must be Uint8Arrays");
    Status s = txn_->Bind(*k, std::move(*p));
    return s.ok() ? val(true) : Fail(s);
  }
  // Grants `key` (32 bytes) a role by its name ("reader", "writer", "admin"), or revokes its role:
  // the core checks, as it applies the change everywhere, that this author may.
  val grant(val key, std::string role) {
    if (!txn_) return Fail(StatusCode::kInvalidArgument, "no transaction is open");
    auto k = BytesOf(key);
    if (!k) return Fail(StatusCode::kInvalidArgument, "a key must be a Uint8Array");
    auto r = RoleFromName(role);
    if (!r || *r == Role::kNone || *r == Role::kOwner) {
      return Fail(StatusCode::kInvalidArgument,
                  "a role must be \"reader\", \"writer\" or \"admin\", not \"" + role + "\"");
    }
    Status s = txn_->Grant(*k, *r);
    return s.ok() ? val(true) : Fail(s);
  }
  val revoke(val key) {
    if (!txn_) return Fail(StatusCode::kInvalidArgument, "no transaction is open");
    auto k = BytesOf(key);
    if (!k) return Fail(StatusCode::kInvalidArgument, "a key must be a Uint8Array");
    Status s = txn_->Revoke(*k);
    return s.ok() ? val(true) : Fail(s);
  }
  // The access list as far as the sync client needs it: {owned, owner, bound} (owner: the owner's
  // key; bound: the key this document's author is bound to; each a Uint8Array or null).
  // What checking `change`'s authorship needs (the SDK's CheckBindings / CheckSignature, whose
  // signatures the sync client verifies with Web Crypto): {author, creates (it makes the document
  // owned), key (the key its author is bound to by this document's list or by a bind in the
  // change; null when neither), binds ([{key, proof}] in the change), signature}.
  val authorship(val bytes) const {
    auto b = BytesOf(bytes);
    if (!b) return Fail(StatusCode::kInvalidArgument, "a change must be a Uint8Array");
    auto c = DecodeChange(*b);
    if (!c.ok()) return Fail(c.status());
    const AccessList& a = doc_.access();
    val o = val::object();
    o.set("author", c->author.ToHex());
    bool creates = false;
    val binds = val::array();
    const Principal* key = a.KeyOf(c->author);
    std::optional<Principal> bound;
    for (const Op& op : c->ops) {
      if (op.type != Op::Type::kAccess) continue;
      if (op.action == AccessAction::kCreate) creates = true;
      if (op.action == AccessAction::kBind) {
        val bind = val::object();
        bind.set("key", Bytes(op.principal));
        bind.set("proof", Bytes(op.proof));
        binds.call<void>("push", bind);
        if (!bound) bound = op.principal;
      }
    }
    o.set("creates", creates);
    o.set("key", key ? Bytes(*key) : bound ? Bytes(*bound) : val::null());
    o.set("binds", binds);
    o.set("signature", Bytes(c->signature));
    return o;
  }
  val accessInfo() const {
    const AccessList& a = doc_.access();
    val o = val::object();
    o.set("owned", a.owned());
    o.set("owner", a.owned() ? Bytes(*a.owner()) : val::null());
    const Principal* k = a.KeyOf(doc_.self());
    o.set("bound", k ? Bytes(*k) : val::null());
    return o;
  }

  val put(val obj, val key, val value) {
    return Write(obj, [&](Transaction& t, ObjectId id) -> Status {
      auto s = ScalarOf(value);
      if (!s.ok()) return s.status();
      if (!IsString(key)) return Status::InvalidArgument("a key must be a string");
      return t.Put(id, key.as<std::string>(), std::move(*s));
    });
  }
  val putAfterRead(val obj, val key, val value, val context) {
    return Write(obj, [&](Transaction& t, ObjectId id) -> Status {
      auto s = ScalarOf(value);
      if (!s.ok()) return s.status();
      auto ctx = VersionOf(context);
      if (!ctx.ok()) return ctx.status();
      if (!IsString(key)) return Status::InvalidArgument("a key must be a string");
      return t.PutAfterRead(id, key.as<std::string>(), std::move(*s), *ctx);
    });
  }
  val putObject(val obj, val key, val kind) {
    ObjectId made;
    val r = Write(obj, [&](Transaction& t, ObjectId id) -> Status {
      auto k = KindOf(kind);
      if (!k.ok()) return k.status();
      if (!IsString(key)) return Status::InvalidArgument("a key must be a string");
      auto o = t.PutObject(id, key.as<std::string>(), *k);
      if (o.ok()) made = *o;
      return o.status();
    });
    return r.isTrue() ? val(DotString(made)) : r;
  }
  val del(val obj, val key) {
    return Write(obj, [&](Transaction& t, ObjectId id) -> Status {
      if (!IsString(key)) return Status::InvalidArgument("a key must be a string");
      return t.Delete(id, key.as<std::string>());
    });
  }
  val setRegister(val obj, val value) {
    return Write(obj, [&](Transaction& t, ObjectId id) -> Status {
      auto s = ScalarOf(value);
      if (!s.ok()) return s.status();
      return t.SetRegister(id, std::move(*s));
    });
  }
  val setRegisterAfterRead(val obj, val value, val context) {
    return Write(obj, [&](Transaction& t, ObjectId id) -> Status {
      auto s = ScalarOf(value);
      if (!s.ok()) return s.status();
      auto ctx = VersionOf(context);
      if (!ctx.ok()) return ctx.status();
      return t.SetRegisterAfterRead(id, std::move(*s), *ctx);
    });
  }
  val increment(val obj, val delta) {
    return Write(obj, [&](Transaction& t, ObjectId id) -> Status {
      auto d = Int64Of(delta, "a counter delta");
      if (!d.ok()) return d.status();
      return t.Increment(id, *d);
    });
  }
  val setAdd(val obj, val element) {
    return Write(obj, [&](Transaction& t, ObjectId id) -> Status {
      auto s = ScalarOf(element);
      if (!s.ok()) return s.status();
      return t.SetAdd(id, std::move(*s));
    });
  }
  val setRemove(val obj, val element) {
    return Write(obj, [&](Transaction& t, ObjectId id) -> Status {
      auto s = ScalarOf(element);
      if (!s.ok()) return s.status();
      return t.SetRemove(id, std::move(*s));
    });
  }
  val textInsert(val obj, val pos, val text) {
    return Write(obj, [&](Transaction& t, ObjectId id) -> Status {
      auto p = IndexOf(pos, "a position");
      if (!p.ok()) return p.status();
      if (!IsString(text)) return Status::InvalidArgument("text must be a string");
      return t.TextInsert(id, *p, text.as<std::string>());
    });
  }
  val seqDelete(val obj, val pos, val len) {
    return Write(obj, [&](Transaction& t, ObjectId id) -> Status {
      auto p = IndexOf(pos, "a position");
      if (!p.ok()) return p.status();
      auto n = IndexOf(len, "a length");
      if (!n.ok()) return n.status();
      return t.ListDelete(id, *p, *n);
    });
  }
  val listInsert(val obj, val pos, val values) {
    return Write(obj, [&](Transaction& t, ObjectId id) -> Status {
      auto p = IndexOf(pos, "a position");
      if (!p.ok()) return p.status();
      if (!values.isArray()) return Status::InvalidArgument("values must be an array");
      std::vector<Scalar> scalars;
      const unsigned n = values["length"].as<unsigned>();
      for (unsigned i = 0; i < n; ++i) {
        auto s = ScalarOf(values[i]);
        if (!s.ok()) return s.status();
        scalars.push_back(std::move(*s));
      }
      return t.ListInsert(id, *p, std::move(scalars));
    });
  }
  val listInsertObject(val obj, val pos, val kind) {
    ObjectId made;
    val r = Write(obj, [&](Transaction& t, ObjectId id) -> Status {
      auto p = IndexOf(pos, "a position");
      if (!p.ok()) return p.status();
      auto k = KindOf(kind);
      if (!k.ok()) return k.status();
      auto o = t.ListInsertObject(id, *p, *k);
      if (o.ok()) made = *o;
      return o.status();
    });
    return r.isTrue() ? val(DotString(made)) : r;
  }

  // --- Reads ----------------------------------------------------------------------------------
  val kindOf(val obj) const {
    return Read(obj, [&](ObjectId id) -> val {
      auto k = doc_.KindOf(id);
      return k.ok() ? val(KindName(*k)) : Fail(k.status());
    });
  }
  val keys(val obj) const {
    return Read(obj, [&](ObjectId id) -> val {
      auto keys = doc_.Keys(id);
      if (!keys.ok()) return Fail(keys.status());
      val out = val::array();
      for (const auto& k : *keys) out.call<void>("push", val(k));
      return out;
    });
  }
  val get(val obj, val key) const {
    return Read(obj, [&](ObjectId id) -> val {
      if (!IsString(key)) return Fail(StatusCode::kInvalidArgument, "a key must be a string");
      auto r = doc_.Get(id, key.as<std::string>());
      if (!r.ok()) return Fail(r.status());
      return Entries(r->values, r->context);
    });
  }
  val readRegister(val obj) const {
    return Read(obj, [&](ObjectId id) -> val {
      auto r = doc_.ReadRegister(id);
      if (!r.ok()) return Fail(r.status());
      std::vector<KeyRead::Entry> entries;
      for (const auto& s : r->Siblings()) entries.push_back({Value(s.value), s.clock});
      return Entries(entries, r->Context());
    });
  }
  val readLww(val obj) const {
    return Read(obj, [&](ObjectId id) -> val {
      auto r = doc_.ReadLww(id);
      if (!r.ok()) return Fail(r.status());
      val out = val::object();
      out.set("present", r->value.has_value());
      out.set("value", r->value ? ScalarToJs(*r->value) : val::null());
      out.set("time", TimeToJs(r->time));
      val over = val::array();
      for (const auto& [s, t] : r->overwritten) {
        val o = val::object();
        o.set("value", ScalarToJs(s));
        o.set("time", TimeToJs(t));
        over.call<void>("push", o);
      }
      out.set("overwritten", over);
      return out;
    });
  }
  val readCounter(val obj) const {
    return Read(obj, [&](ObjectId id) -> val {
      auto r = doc_.ReadCounter(id);
      return r.ok() ? ScalarToJs(Scalar(*r)) : Fail(r.status());
    });
  }
  val readSet(val obj) const {
    return Read(obj, [&](ObjectId id) -> val {
      auto r = doc_.ReadSet(id);
      if (!r.ok()) return Fail(r.status());
      val out = val::array();
      for (const auto& s : *r) out.call<void>("push", ScalarToJs(s));
      return out;
    });
  }
  val readText(val obj) const {
    return Read(obj, [&](ObjectId id) -> val {
      auto r = doc_.ReadText(id);
      return r.ok() ? val(*r) : Fail(r.status());
    });
  }
  val readList(val obj) const {
    return Read(obj, [&](ObjectId id) -> val {
      auto r = doc_.ReadList(id);
      if (!r.ok()) return Fail(r.status());
      val out = val::array();
      for (const auto& v : *r) out.call<void>("push", ValueToJs(v));
      return out;
    });
  }
  val sequenceSize(val obj) const {
    return Read(obj, [&](ObjectId id) -> val {
      auto r = doc_.SequenceSize(id);
      return r.ok() ? val(static_cast<double>(*r)) : Fail(r.status());
    });
  }
  val anchorAt(val obj, val index, bool right) const {
    return Read(obj, [&](ObjectId id) -> val {
      auto i = IndexOf(index, "an index");
      if (!i.ok()) return Fail(i.status());
      auto a = doc_.AnchorAt(id, *i, right ? Bias::kRight : Bias::kLeft);
      if (!a.ok()) return Fail(a.status());
      val out = val::object();
      out.set("item", val(DotString(a->item)));
      out.set("bias", val(a->bias == Bias::kRight ? "right" : "left"));
      return out;
    });
  }
  val indexOfAnchor(val obj, val item, bool right) const {
    return Read(obj, [&](ObjectId id) -> val {
      auto dot = DotOf(item, "an anchor's item");
      if (!dot.ok()) return Fail(dot.status());
      auto i = doc_.IndexOfAnchor(id, Anchor{*dot, right ? Bias::kRight : Bias::kLeft});
      return i.ok() ? val(static_cast<double>(*i)) : Fail(i.status());
    });
  }
  std::string toJson() const { return doc_.ToJson(); }
  std::string canonicalJson() const { return doc_.CanonicalJson(); }
  val canonicalState() const { return Bytes(doc_.CanonicalState()); }

  // --- Changes, snapshots, history --------------------------------------------------------------
  // Decodes every change first (nothing is applied when one does not decode), then receives them
  // in order: one whose dependencies are missing is held until they arrive. A change that decodes
  // but is invalid here (an author without the role to write, a grant by a non-admin, a bad op)
  // stops the batch with its error: with `atomic`, nothing of the batch is applied (as the SDK's
  // replica refuses a remote batch), else the changes before it stay applied.
  val applyChanges(val list, bool atomic) {
    if (txn_) return Fail(StatusCode::kInvalidArgument, "a transaction is open");
    std::vector<std::string> encoded;
    auto changes = DecodeAll(list, &encoded);
    if (!changes.ok()) return Fail(changes.status());
    std::vector<Patch> patches;
    ApplyOptions opts;
    opts.patches = &patches;
    if (atomic) {
      Status s = ApplyAtomic(&*changes, encoded, opts);
      if (!s.ok()) return Fail(s);
    } else {
      for (size_t i = 0; i < changes->size(); ++i) {
        // The history keeps the bytes as they came (they decoded to the change).
        std::string_view bytes = encoded[i];
        ApplyOptions one = opts;
        one.encoded = std::span<const std::string_view>(&bytes, 1);
        Status s = doc_.Receive(std::move((*changes)[i]), one);
        if (!s.ok()) {
          return Fail(s.code(), "change " + std::to_string(i) + ": " + s.message());
        }
      }
    }
    val out = val::array();
    out.call<void>("push", val(PatchesJson(patches)), static_cast<double>(doc_.pending()));
    return out;
  }
  // applyChanges with `atomic`: the changes that can be applied are, in passes over the batch
  // (so a batch in any order needs no held changes), each checked by the core (its access list's
  // rules included) as it is applied; the first that fails puts the document back as it was
  // before the batch (a copy, made only for a batch of several changes: a single change that
  // fails changes nothing). What still waits for dependencies outside the batch is held.
  Status ApplyAtomic(std::vector<Change>* changes, const std::vector<std::string>& encoded,
                     const ApplyOptions& opts) {
    std::optional<Document> before;
    if (changes->size() > 1) before.emplace(doc_);
    std::vector<bool> done(changes->size(), false);
    bool applied_any = false;
    Status failure;
    for (bool progress = true; progress && failure.ok();) {
      progress = false;
      for (size_t i = 0; i < changes->size() && failure.ok(); ++i) {
        if (done[i]) continue;
        const Change& c = (*changes)[i];
        if (doc_.HasChange({c.author, c.end_seq()})) {
          done[i] = true;  // a duplicate
          continue;
        }
        if (doc_.CheckReady(c).readiness == Readiness::kWaiting) continue;
        std::string_view bytes = encoded[i];
        ApplyOptions one = opts;
        one.encoded = std::span<const std::string_view>(&bytes, 1);
        Status s = doc_.ApplyChange(c, one);
        if (!s.ok()) {
          failure = Status(s.code(), "change " + std::to_string(i) + ": " + s.message());
          break;
        }
        done[i] = progress = applied_any = true;
      }
    }
    if (!failure.ok()) {
      if (before) doc_ = std::move(*before);
      return failure;
    }
    // Held: what waits on changes not in this batch. Receive also applies the changes held
    // earlier that this batch's changes made ready (a duplicate received does only that).
    bool received = false;
    for (size_t i = 0; i < changes->size(); ++i) {
      if (done[i]) continue;
      WEFT_RETURN_IF_ERROR(doc_.Receive(std::move((*changes)[i]), opts));
      received = true;
    }
    if (!received && applied_any && doc_.pending() > 0) {
      for (size_t i = 0; i < changes->size(); ++i) {
        if (done[i]) return doc_.Receive((*changes)[i], opts);
      }
    }
    return Status::Ok();
  }
  val changesSince(val peer) const {
    auto v = VersionOf(peer);
    if (!v.ok()) return Fail(v.status());
    auto cs = doc_.EncodedChangesSince(*v);
    if (!cs.ok()) return Fail(cs.status());
    val out = val::array();
    for (std::string_view c : *cs) out.call<void>("push", Bytes(c));
    return out;
  }
  val encodeSnapshot(bool with_history) const { return Bytes(doc_.EncodeSnapshot(with_history)); }
  // The kept history: each change with the version it led to.
  val history() const {
    auto cs = doc_.ChangesSince(VersionVector{});
    val out = val::array();
    VersionVector v;
    if (!cs.ok()) return Fail(cs.status());
    for (const Change& c : *cs) {
      v.Advance(c.author, c.end_seq());
      val o = ChangeInfo(c);
      o.set("version", VersionToJs(v));
      out.call<void>("push", o);
    }
    return out;
  }
  // Replaces this (fresh) document by `src` as it was at version `to`, rebuilt from the history
  // `src` keeps; with `from`, also returns the patches from `from` to `to`.
  val rebuildFrom(const Doc& src, val to_val, val from_val) {
    if (txn_) return Fail(StatusCode::kInvalidArgument, "a transaction is open");
    auto to = VersionOf(to_val);
    if (!to.ok()) return Fail(to.status());
    std::optional<VersionVector> from;
    if (!from_val.isUndefined() && !from_val.isNull()) {
      auto f = VersionOf(from_val);
      if (!f.ok()) return Fail(f.status());
      if (!to->Dominates(*f)) {
        return Fail(StatusCode::kInvalidArgument,
                    "version " + f->ToString() + " is not earlier than " + to->ToString());
      }
      from = *f;
    }
    if (!src.doc_.version().Dominates(*to)) {
      return Fail(StatusCode::kNotFound, "this document does not hold version " + to->ToString());
    }
    auto cs = src.doc_.ChangesSince(VersionVector{});
    if (!cs.ok()) return Fail(cs.status());
    Document out(doc_.self());
    std::vector<Patch> patches;
    auto pass = [&](const VersionVector& v, std::vector<Patch>* gather) -> Status {
      ApplyOptions opts;
      opts.patches = gather;
      for (const Change& c : *cs) {
        uint64_t held = v.Get(c.author);
        if (held < c.start_seq || out.HasChange({c.author, c.end_seq()})) continue;
        if (held < c.end_seq()) {
          return Status::InvalidArgument("version " + v.ToString() + " splits change " +
                                         c.id().ToString());
        }
        Status s = out.ApplyChange(c, opts);
        if (!s.ok()) {
          return Status::InvalidArgument("version " + v.ToString() + " holds change " +
                                         c.id().ToString() + " without its dependencies");
        }
      }
      if (out.version() != v) {
        return Status::InvalidArgument("version " + v.ToString() +
                                       " is not one the document was at");
      }
      return Status::Ok();
    };
    Status s = pass(from ? *from : *to, nullptr);
    if (s.ok() && from) s = pass(*to, &patches);
    if (!s.ok()) return Fail(s);
    doc_ = std::move(out);
    return val(PatchesJson(patches));
  }

  // --- The lean path (the weft_* exports below) ----------------------------------------------
  // This Doc's address, for the exports; JS keeps it beside the embind object, which owns it.
  uintptr_t handle() { return reinterpret_cast<uintptr_t>(this); }
  // The failure of the last lean call that returned a status code (a JS Error as Fail makes).
  val lastError() const { return Fail(last_error_); }

  int LeanBegin(double now_ms) {
    if (txn_) return Failed(Status::InvalidArgument("a transaction is already open"));
    auto now = IndexOf(now_ms, "the time");
    if (!now.ok()) return Failed(now.status());
    txn_.emplace(doc_.Begin(*now));
    return 0;
  }
  int LeanTextInsert(Dot id, double pos, std::string_view text) {
    if (!txn_) return Failed(Status::InvalidArgument("no transaction is open"));
    auto p = IndexOf(pos, "a position");
    if (!p.ok()) return Failed(p.status());
    return Failed(txn_->TextInsert(id, *p, text));
  }
  int LeanSeqDelete(Dot id, double pos, double len) {
    if (!txn_) return Failed(Status::InvalidArgument("no transaction is open"));
    auto p = IndexOf(pos, "a position");
    if (!p.ok()) return Failed(p.status());
    auto n = IndexOf(len, "a length");
    if (!n.ok()) return Failed(n.status());
    return Failed(txn_->ListDelete(id, *p, *n));
  }
  // Commits; the change and its patches are kept until the next commit. With `eager`, writes the
  // change's bytes and its patches as JSON into out_ (sizes[0], sizes[1], at sizes[2]); without,
  // weft.js asks for either only when it is read (weft_change_bytes, lastPatches, localChange).
  // sizes[3] and sizes[4]: the change's start seq, high and low 32 bits. Returns 1 with a change,
  // 0 when nothing changed, -code on failure.
  int LeanCommit(bool eager, uint32_t* sizes) {
    if (!txn_) return -Failed(Status::InvalidArgument("no transaction is open"));
    last_patches_ = txn_->TakePatches();
    std::optional<Change> c = txn_->Commit();
    txn_.reset();
    if (!c) return 0;
    sizes[3] = static_cast<uint32_t>(c->start_seq >> 32);
    sizes[4] = static_cast<uint32_t>(c->start_seq);
    // Its bytes are in the kept history (the document keeps its history unless made without).
    const KeptChanges& h = doc_.history();
    if (!h.empty() && h.author(h.size() - 1) == c->author &&
        h.start_seq(h.size() - 1) == c->start_seq) {
      last_kept_ = h.size() - 1;
      last_change_.reset();
    } else {
      last_change_ = std::move(*c);
    }
    if (eager) {
      LeanChangeBytes(sizes);
      out_ += PatchesJson(last_patches_);
      sizes[1] = static_cast<uint32_t>(out_.size()) - sizes[0];
      sizes[2] = reinterpret_cast<uintptr_t>(out_.data());
    }
    return 1;
  }
  // The last commit's bytes into out_ (sizes[0] bytes at sizes[2]).
  void LeanChangeBytes(uint32_t* sizes) {
    if (last_change_) {
      out_ = EncodeChange(*last_change_);
    } else {
      out_.assign(doc_.history().bytes(last_kept_));
    }
    sizes[0] = static_cast<uint32_t>(out_.size());
    sizes[1] = 0;
    sizes[2] = reinterpret_cast<uintptr_t>(out_.data());
  }
  // The patches of the last commit, as JSON.
  std::string lastPatches() const { return PatchesJson(last_patches_); }
  // An earlier local change (this document's author, that start seq), from the history: its
  // bytes and the document's version just before it was committed ({bytes, before}).
  val localChange(double seq_hi, double seq_lo) const {
    uint64_t seq = (static_cast<uint64_t>(seq_hi) << 32) | static_cast<uint64_t>(seq_lo);
    const KeptChanges& h = doc_.history();
    VersionVector before = doc_.version();
    for (size_t i = h.size(); i-- > 0;) {
      // Walking back, each author's entry ends at the seq before its earliest later change.
      before.Set(h.author(i), h.start_seq(i) - 1);
      if (h.author(i) == doc_.self() && h.start_seq(i) == seq) {
        val out = val::object();
        out.set("bytes", Bytes(h.bytes(i)));
        out.set("before", VersionToJs(before));
        return out;
      }
    }
    return Fail(StatusCode::kNotFound, "the change is not in the kept history");
  }
  int LeanLoadSnapshot(std::string_view bytes) {
    if (txn_) return Failed(Status::InvalidArgument("a transaction is open"));
    auto d = Document::DecodeSnapshot(bytes, doc_.self());
    if (!d.ok()) return Failed(d.status());
    doc_ = std::move(*d);
    return 0;
  }
  int LeanRollback() {
    if (!txn_) return Failed(Status::InvalidArgument("no transaction is open"));
    txn_->Rollback();
    txn_.reset();
    return 0;
  }

 private:
  // 0 for ok, else the status code (the status kept for lastError()).
  int Failed(Status s) {
    if (s.ok()) return 0;
    int code = static_cast<int>(s.code());
    last_error_ = std::move(s);
    return code;
  }

  template <typename Fn>
  val Write(const val& obj, Fn&& fn) {
    if (!txn_) return Fail(StatusCode::kInvalidArgument, "no transaction is open");
    auto id = DotOf(obj, "an object ID");
    if (!id.ok()) return Fail(id.status());
    Status s = fn(*txn_, *id);
    return s.ok() ? val(true) : Fail(s);
  }
  template <typename Fn>
  val Read(const val& obj, Fn&& fn) const {
    auto id = DotOf(obj, "an object ID");
    if (!id.ok()) return Fail(id.status());
    return fn(*id);
  }

  Document doc_;
  bool valid_;
  std::optional<Transaction> txn_;
  Status last_error_;
  std::string out_;                  // LeanCommit's output, valid until the next commit
  std::vector<Patch> last_patches_;  // the last commit's
  // The last commit's change: in the kept history at last_kept_, or here when not kept.
  size_t last_kept_ = 0;
  std::optional<Change> last_change_;
};

// What an encoded change holds, without a document (validates it as DecodeChange does).
val decodeChange(val bytes) {
  auto b = BytesOf(bytes);
  if (!b) return Fail(StatusCode::kInvalidArgument, "a change must be a Uint8Array");
  auto c = DecodeChange(*b);
  if (!c.ok()) return Fail(c.status());
  return ChangeInfo(*c);
}

// What a change's signature covers (EncodeChangeUnsigned), and the change with a signature set:
// the sync client signs its own changes of owned documents as they leave, as the SDK does.
val changeUnsigned(val bytes) {
  auto b = BytesOf(bytes);
  if (!b) return Fail(StatusCode::kInvalidArgument, "a change must be a Uint8Array");
  auto c = DecodeChange(*b);
  if (!c.ok()) return Fail(c.status());
  return Bytes(EncodeChangeUnsigned(*c));
}
val changeWithSignature(val bytes, val signature) {
  auto b = BytesOf(bytes);
  auto sig = BytesOf(signature);
  if (!b || !sig)
    return Fail(StatusCode::kInvalidArgument, "a change and a signature must be Uint8Arrays");
  auto c = DecodeChange(*b);
  if (!c.ok()) return Fail(c.status());
  c->signature = std::move(*sig);
  return Bytes(EncodeChange(*c));
}

// Compacts changes into a history segment (history.h), and back.
val encodeSegment(val list) {
  auto changes = DecodeAll(list);
  if (!changes.ok()) return Fail(changes.status());
  if (changes->empty()) return Fail(StatusCode::kInvalidArgument, "a segment needs a change");
  return Bytes(EncodeSegment(*changes));
}
val decodeSegment(val bytes) {
  auto b = BytesOf(bytes);
  if (!b) return Fail(StatusCode::kInvalidArgument, "a segment must be a Uint8Array");
  auto cs = DecodeSegment(*b);
  if (!cs.ok()) return Fail(cs.status());
  val out = val::array();
  for (const Change& c : *cs) out.call<void>("push", Bytes(EncodeChange(c)));
  return out;
}

}  // namespace

// The lean path for hot edits: plain exports taking numbers and pointers into the module's memory,
// called by weft.js without embind (no JS values made or read per call). A Doc is its handle();
// an object ID is its node's and its seq's high and low 32 bits; text is UTF-8 that weft.js wrote
// into the scratch buffer. Each returns 0 or a status code (Doc::lastError() says what failed).
namespace {
Dot LeanDot(uint32_t node_hi, uint32_t node_lo, uint32_t seq_hi, uint32_t seq_lo) {
  return Dot{NodeId{(static_cast<uint64_t>(node_hi) << 32) | node_lo},
             (static_cast<uint64_t>(seq_hi) << 32) | seq_lo};
}
}  // namespace

extern "C" {

// A buffer of at least `size` bytes for weft.js to write text into (valid until the next call).
EMSCRIPTEN_KEEPALIVE char* weft_scratch(size_t size) {
  static std::string scratch;
  if (scratch.size() < size) scratch.resize(size);
  return scratch.data();
}

// Where weft_commit and weft_change_bytes write their results: the change's size, the patches'
// size, their address; the change's start seq (high and low 32 bits).
EMSCRIPTEN_KEEPALIVE uint32_t* weft_commit_sizes() {
  static uint32_t sizes[5];
  return sizes;
}

EMSCRIPTEN_KEEPALIVE int weft_begin(uintptr_t doc, double now_ms) {
  return reinterpret_cast<Doc*>(doc)->LeanBegin(now_ms);
}

EMSCRIPTEN_KEEPALIVE int weft_text_insert(uintptr_t doc, uint32_t node_hi, uint32_t node_lo,
                                          uint32_t seq_hi, uint32_t seq_lo, double pos,
                                          const char* text, size_t size) {
  return reinterpret_cast<Doc*>(doc)->LeanTextInsert(LeanDot(node_hi, node_lo, seq_hi, seq_lo), pos,
                                                     std::string_view(text, size));
}

EMSCRIPTEN_KEEPALIVE int weft_seq_delete(uintptr_t doc, uint32_t node_hi, uint32_t node_lo,
                                         uint32_t seq_hi, uint32_t seq_lo, double pos, double len) {
  return reinterpret_cast<Doc*>(doc)->LeanSeqDelete(LeanDot(node_hi, node_lo, seq_hi, seq_lo), pos,
                                                    len);
}

// 1 with a change (see weft_commit_sizes), 0 when nothing changed, -code on failure.
EMSCRIPTEN_KEEPALIVE int weft_commit(uintptr_t doc, int eager) {
  return reinterpret_cast<Doc*>(doc)->LeanCommit(eager != 0, weft_commit_sizes());
}

// The last commit's bytes (see weft_commit_sizes).
EMSCRIPTEN_KEEPALIVE void weft_change_bytes(uintptr_t doc) {
  reinterpret_cast<Doc*>(doc)->LeanChangeBytes(weft_commit_sizes());
}

// Replaces a fresh Doc by the snapshot's document (`size` bytes at `bytes`, which the caller
// malloc'd and frees).
EMSCRIPTEN_KEEPALIVE int weft_load_snapshot(uintptr_t doc, const char* bytes, size_t size) {
  return reinterpret_cast<Doc*>(doc)->LeanLoadSnapshot(std::string_view(bytes, size));
}

EMSCRIPTEN_KEEPALIVE int weft_rollback(uintptr_t doc) {
  return reinterpret_cast<Doc*>(doc)->LeanRollback();
}

}  // extern "C"

EMSCRIPTEN_BINDINGS(weft_core) {
  using emscripten::class_;
  using emscripten::function;
  class_<Doc>("Doc")
      .constructor<std::string>()
      .function("valid", &Doc::valid)
      .function("nodeId", &Doc::nodeId)
      .function("version", &Doc::version)
      .function("heads", &Doc::heads)
      .function("lamport", &Doc::lamport)
      .function("pending", &Doc::pending)
      .function("inTransaction", &Doc::inTransaction)
      .function("begin", &Doc::begin)
      .function("beginAt", &Doc::beginAt)
      .function("createAccess", &Doc::createAccess)
      .function("bindAuthor", &Doc::bindAuthor)
      .function("grant", &Doc::grant)
      .function("revoke", &Doc::revoke)
      .function("accessInfo", &Doc::accessInfo)
      .function("authorship", &Doc::authorship)
      .function("put", &Doc::put)
      .function("putAfterRead", &Doc::putAfterRead)
      .function("putObject", &Doc::putObject)
      .function("del", &Doc::del)
      .function("setRegister", &Doc::setRegister)
      .function("setRegisterAfterRead", &Doc::setRegisterAfterRead)
      .function("increment", &Doc::increment)
      .function("setAdd", &Doc::setAdd)
      .function("setRemove", &Doc::setRemove)
      .function("textInsert", &Doc::textInsert)
      .function("seqDelete", &Doc::seqDelete)
      .function("handle", &Doc::handle)
      .function("lastError", &Doc::lastError)
      .function("lastPatches", &Doc::lastPatches)
      .function("localChange", &Doc::localChange)
      .function("listInsert", &Doc::listInsert)
      .function("listInsertObject", &Doc::listInsertObject)
      .function("kindOf", &Doc::kindOf)
      .function("keys", &Doc::keys)
      .function("get", &Doc::get)
      .function("readRegister", &Doc::readRegister)
      .function("readLww", &Doc::readLww)
      .function("readCounter", &Doc::readCounter)
      .function("readSet", &Doc::readSet)
      .function("readText", &Doc::readText)
      .function("readList", &Doc::readList)
      .function("sequenceSize", &Doc::sequenceSize)
      .function("anchorAt", &Doc::anchorAt)
      .function("indexOfAnchor", &Doc::indexOfAnchor)
      .function("toJson", &Doc::toJson)
      .function("canonicalJson", &Doc::canonicalJson)
      .function("canonicalState", &Doc::canonicalState)
      .function("applyChanges", &Doc::applyChanges)
      .function("changesSince", &Doc::changesSince)
      .function("encodeSnapshot", &Doc::encodeSnapshot)
      .function("history", &Doc::history)
      .function("rebuildFrom", &Doc::rebuildFrom);
  function("decodeChange", &decodeChange);
  function("changeUnsigned", &changeUnsigned);
  function("changeWithSignature", &changeWithSignature);
  function("encodeSegment", &encodeSegment);
  function("decodeSegment", &decodeSegment);
}
