// The C API's boundary helpers: errors, strings, scalars, string lists and value lists.
#include <cstdlib>
#include <cstring>
#include <optional>

#include "internal.h"
#include "weft/crdt/utf.h"

namespace weft::capi {
namespace {

thread_local std::string t_error;

// Whether a code is one of weft_status's values.
bool KnownCode(int code) {
  return code >= WEFT_OK && code <= WEFT_INTERNAL;
}

}  // namespace

weft_status Fail(ErrSlot* slot, weft_status code, std::string message) {
  try {
    t_error = message;
    if (slot) {
      std::lock_guard l(slot->mu);
      slot->message = std::move(message);
    }
  } catch (...) {
    // Out of memory while recording the message: the code still reports the failure.
  }
  return code;
}

weft_status Report(ErrSlot* slot, const Status& s) {
  if (s.ok()) return WEFT_OK;
  int code = static_cast<int>(s.code());
  return Fail(slot, KnownCode(code) ? static_cast<weft_status>(code) : WEFT_INTERNAL, s.ToString());
}

char* CopyOut(std::string_view s, size_t* len) {
  char* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (!p) return nullptr;
  if (!s.empty()) std::memcpy(p, s.data(), s.size());
  p[s.size()] = '\0';
  if (len) *len = s.size();
  return p;
}

Status CheckText(const char* p, size_t n, const char* what, std::string_view* out) {
  if (!p && n > 0) return Status::InvalidArgument(std::string(what) + ": NULL with a length");
  std::string_view s(p ? p : "", n);
  Status u = crdt::ValidateUtf8(s);
  if (!u.ok()) return Status::InvalidArgument(std::string(what) + " is not UTF-8: " + u.message());
  *out = s;
  return Status::Ok();
}

Result<Scalar> ToScalar(const weft_value* v) {
  if (!v) return Status::InvalidArgument("value is NULL");
  switch (v->type) {
    case WEFT_NULL: return Scalar();
    case WEFT_BOOL: return Scalar(v->boolean != 0);
    case WEFT_INT: return Scalar(static_cast<int64_t>(v->integer));
    case WEFT_DOUBLE: return Scalar(v->real);
    case WEFT_STRING: {
      std::string_view s;
      WEFT_RETURN_IF_ERROR(CheckText(v->data, v->len, "string value", &s));
      return Scalar(std::string(s));
    }
    case WEFT_BYTES:
      if (!v->data && v->len > 0) return Status::InvalidArgument("bytes value: NULL with a length");
      return Scalar(crdt::Bytes{std::string(v->data ? v->data : "", v->len)});
    default:
      if (v->type >= WEFT_MAP && v->type <= WEFT_TEXT)
        return Status::InvalidArgument("an object kind is not a scalar value");
      return Status::InvalidArgument("unknown value type " + std::to_string(v->type));
  }
}

weft_value FromScalar(const Scalar& s) {
  weft_value out{};
  const auto& var = s.variant();
  if (std::holds_alternative<bool>(var)) {
    out.type = WEFT_BOOL;
    out.boolean = std::get<bool>(var) ? 1 : 0;
  } else if (std::holds_alternative<int64_t>(var)) {
    out.type = WEFT_INT;
    out.integer = std::get<int64_t>(var);
  } else if (std::holds_alternative<double>(var)) {
    out.type = WEFT_DOUBLE;
    out.real = std::get<double>(var);
  } else if (std::holds_alternative<std::string>(var)) {
    out.type = WEFT_STRING;
    out.data = std::get<std::string>(var).c_str();
    out.len = std::get<std::string>(var).size();
  } else if (std::holds_alternative<crdt::Bytes>(var)) {
    out.type = WEFT_BYTES;
    out.data = std::get<crdt::Bytes>(var).data.c_str();
    out.len = std::get<crdt::Bytes>(var).data.size();
  } else {
    out.type = WEFT_NULL;
  }
  return out;
}

bool CallbackGate::Enter() {
  std::lock_guard l(mu_);
  if (ended_) return false;
  ++inflight_;
  return true;
}

void CallbackGate::Exit() {
  std::lock_guard l(mu_);
  --inflight_;
  cv_.notify_all();
}

namespace {
// How deep this thread is inside gated callbacks (so that End from inside a callback does not
// wait for itself).
thread_local std::vector<const CallbackGate*> t_inside;
}  // namespace

void CallbackGate::End() {
  std::unique_lock l(mu_);
  ended_ = true;
  int own = 0;
  for (const auto* g : t_inside) own += g == this;
  cv_.wait(l, [&] { return inflight_ <= own; });
}

}  // namespace weft::capi

// Marks the current thread as inside `gate` for the lifetime of the object.
namespace weft::capi {
struct InsideGate {
  explicit InsideGate(const CallbackGate* g) { t_inside.push_back(g); }
  ~InsideGate() { t_inside.pop_back(); }
};
void RunGated(CallbackGate& gate, const std::function<void()>& fn) {
  if (!gate.Enter()) return;
  {
    InsideGate in(&gate);
    try {
      fn();
    } catch (...) {
      // A callback has nowhere to report to; C callbacks do not throw.
    }
  }
  gate.Exit();
}
}  // namespace weft::capi

using namespace weft;
using namespace weft::capi;

using namespace weft;
using namespace weft::capi;

extern "C" {

const char* weft_version(void) {
  return WEFT_VERSION_STRING;
}

const char* weft_status_name(int code) {
  if (code < WEFT_OK || code > WEFT_INTERNAL) return "Unknown";
  return StatusCodeName(static_cast<StatusCode>(code));
}

char* weft_thread_errmsg(size_t* len) {
  try {
    return CopyOut(t_error, len);
  } catch (...) {
    return nullptr;
  }
}

void weft_string_free(char* s) {
  std::free(s);
}

size_t weft_strings_count(const weft_strings* list) {
  return list ? list->items.size() : 0;
}

const char* weft_strings_get(const weft_strings* list, size_t i, size_t* len) {
  if (!list || i >= list->items.size()) return nullptr;
  if (len) *len = list->items[i].size();
  return list->items[i].c_str();
}

void weft_strings_free(weft_strings* list) {
  delete list;
}

weft_value weft_null(void) {
  return weft_value{};
}
weft_value weft_bool(int b) {
  weft_value v{};
  v.type = WEFT_BOOL;
  v.boolean = b ? 1 : 0;
  return v;
}
weft_value weft_int(int64_t i) {
  weft_value v{};
  v.type = WEFT_INT;
  v.integer = i;
  return v;
}
weft_value weft_double(double d) {
  weft_value v{};
  v.type = WEFT_DOUBLE;
  v.real = d;
  return v;
}
weft_value weft_string(const char* s, size_t len) {
  weft_value v{};
  v.type = WEFT_STRING;
  v.data = s;
  v.len = len;
  return v;
}
weft_value weft_bytes(const void* data, size_t len) {
  weft_value v{};
  v.type = WEFT_BYTES;
  v.data = static_cast<const char*>(data);
  v.len = len;
  return v;
}

size_t weft_values_count(const weft_values* list) {
  return list ? list->entries.size() : 0;
}

weft_status weft_values_get(const weft_values* list, size_t i, weft_value* out) {
  if (!list || !out) return Fail(nullptr, WEFT_INVALID_ARGUMENT, "weft_values_get: NULL argument");
  if (i >= list->entries.size())
    return Fail(nullptr, WEFT_OUT_OF_RANGE, "weft_values_get: index past the end");
  const auto& e = list->entries[i];
  weft_value v{};
  if (e.kind != 0) {
    v.type = e.kind;
  } else {
    v = FromScalar(e.scalar);
  }
  v.object = weft_obj{e.object.node.value, e.object.seq};
  v.time_ms = e.time.wall_ms;
  v.time_logical = e.time.logical;
  *out = v;
  return WEFT_OK;
}

void weft_values_free(weft_values* list) {
  delete list;
}

}  // extern "C"
