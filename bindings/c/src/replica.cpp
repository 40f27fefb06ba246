// The C API over weft::Replica: open/close, documents, transactions, reads, the change feed,
// causal tokens and raw change exchange.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "internal.h"
#include "weft/json.h"

using namespace weft;
using namespace weft::capi;

struct weft_options {
  ReplicaOptions o;
};

struct weft_subscription {
  weft_replica* r = nullptr;
  uint64_t id = 0;
  std::shared_ptr<CallbackGate> gate;
};

struct weft_blobs {
  std::vector<std::string> items;
};

struct weft_patches {
  std::vector<crdt::Patch> items;
};

struct weft_history {
  std::vector<HistoryEntry> items;
  std::vector<std::string> tokens;  // of each entry
};

namespace {

weft_status NullArg(const char* fn) {
  return Fail(nullptr, WEFT_INVALID_ARGUMENT, std::string(fn) + ": NULL argument");
}

crdt::ObjectId ToId(weft_obj o) {
  return crdt::ObjectId{crdt::NodeId{o.node}, o.seq};
}

weft_obj FromId(const crdt::ObjectId& id) {
  return weft_obj{id.node.value, id.seq};
}

int32_t TypeOfKind(ObjectKind k) {
  return static_cast<int32_t>(k) + (WEFT_MAP - 1);
}

Result<ObjectKind> KindOfType(int32_t type) {
  if (type < WEFT_MAP || type > WEFT_TEXT)
    return Status::InvalidArgument("not an object kind: " + std::to_string(type));
  return static_cast<ObjectKind>(type - (WEFT_MAP - 1));
}

weft_values::Entry EntryOf(const crdt::Value& v) {
  weft_values::Entry e;
  if (v.is_object()) {
    e.kind = TypeOfKind(v.object().kind);
    e.object = v.object().id;
  } else {
    e.scalar = v.scalar();
  }
  return e;
}

#define WEFT_CHECK(slot, expr)                               \
  do {                                                       \
    ::weft::Status weft_check_ = (expr);                     \
    if (!weft_check_.ok()) return Report(slot, weft_check_); \
  } while (0)

// A patch for C; its pointers borrow from `p`.
weft_patch ToCPatch(const crdt::Patch& p) {
  weft_patch c{};
  c.type = static_cast<int32_t>(p.type);
  c.object = FromId(p.object);
  c.key = p.key.c_str();
  c.key_len = p.key.size();
  c.siblings = p.siblings;
  c.delta = p.delta;
  c.element = FromScalar(p.element);
  c.index = p.index;
  c.length = p.length;
  c.text = p.text.c_str();
  c.text_len = p.text.size();
  return c;
}

// The version a token of `doc` names ("": the empty version).
Status VersionOfToken(std::string_view doc, std::string_view token, VersionVector* out) {
  *out = VersionVector{};
  if (token.empty()) return Status::Ok();
  auto dec = DecodeCausalToken(token);
  if (!dec.ok()) return dec.status();
  if (dec->first != doc) return Status::InvalidArgument("the token names another document");
  *out = std::move(dec->second);
  return Status::Ok();
}

// Hands a new object to the caller only after everything else succeeded.
template <typename T>
weft_status Give(std::unique_ptr<T> p, T** out) {
  *out = p.release();
  return WEFT_OK;
}

PublicKey KeyFrom(const uint8_t key[32]) {
  std::array<uint8_t, PublicKey::kSize> b{};
  std::memcpy(b.data(), key, b.size());
  return PublicKey(b);
}

}  // namespace

extern "C" {

/* ---------------------------------------------------------------- options, open, close */

weft_options* weft_options_create(void) {
  try {
    return new weft_options();
  } catch (...) {
    return nullptr;
  }
}

void weft_options_free(weft_options* o) {
  delete o;
}

weft_status weft_options_set_durability(weft_options* o, int full) {
  if (!o) return NullArg("weft_options_set_durability");
  if (full != 0 && full != 1)
    return Fail(nullptr, WEFT_INVALID_ARGUMENT, "durability must be 0 (normal) or 1 (full)");
  o->o.durability = full ? Durability::kFull : Durability::kNormal;
  return WEFT_OK;
}

weft_status weft_options_set_snapshot_every(weft_options* o, uint32_t changes, uint32_t ops) {
  if (!o) return NullArg("weft_options_set_snapshot_every");
  o->o.snapshot_every = changes;
  o->o.snapshot_every_ops = ops;
  return WEFT_OK;
}

weft_status weft_options_set_create_if_missing(weft_options* o, int create) {
  if (!o) return NullArg("weft_options_set_create_if_missing");
  o->o.create_if_missing = create != 0;
  return WEFT_OK;
}

weft_status weft_options_set_public_documents(weft_options* o, int public_documents) {
  if (!o) return NullArg("weft_options_set_public_documents");
  o->o.public_documents = public_documents != 0;
  return WEFT_OK;
}

weft_status weft_options_set_drift_check(weft_options* o, int check, uint64_t max_drift_ms) {
  if (!o) return NullArg("weft_options_set_drift_check");
  o->o.check_drift = check != 0;
  o->o.max_drift_ms = max_drift_ms;
  return WEFT_OK;
}

weft_status weft_open(const char* path, size_t path_len, const weft_options* options,
                      weft_replica** out) {
  if (!out) return NullArg("weft_open");
  return Guard(nullptr, [&] {
    std::string_view p;
    WEFT_CHECK(nullptr, CheckText(path, path_len, "path", &p));
    if (p.empty()) return Fail(nullptr, WEFT_INVALID_ARGUMENT, "path is empty");
    if (p.find('\0') != std::string_view::npos)
      return Fail(nullptr, WEFT_INVALID_ARGUMENT, "path contains NUL");
    auto r = std::make_unique<weft_replica>();
    auto opened = Replica::Open(std::string(p), options ? options->o : ReplicaOptions{});
    if (!opened.ok()) return Report(nullptr, opened.status());
    r->impl = std::move(opened).value();
    return Give(std::move(r), out);
  });
}

weft_status weft_close(weft_replica* r) {
  if (!r) return NullArg("weft_close");
  return Guard(&r->err, [&] {
    {
      std::lock_guard l(r->mu);
      if (r->syncs > 0)
        return Fail(&r->err, WEFT_BUSY, "a weft_sync still uses this replica: free it first");
      if (!r->subs.empty())
        return Fail(&r->err, WEFT_BUSY, "subscriptions are still open: weft_unsubscribe them");
    }
    delete r;
    return WEFT_OK;
  });
}

char* weft_replica_errmsg(const weft_replica* r, size_t* len) {
  if (!r) return nullptr;
  try {
    std::lock_guard l(r->err.mu);
    return CopyOut(r->err.message, len);
  } catch (...) {
    return nullptr;
  }
}

weft_status weft_replica_node_id(const weft_replica* r, uint64_t* out) {
  if (!r || !out) return NullArg("weft_replica_node_id");
  *out = r->impl->node_id().value;
  return WEFT_OK;
}

weft_status weft_replica_actor_id(const weft_replica* r, uint64_t* out) {
  if (!r || !out) return NullArg("weft_replica_actor_id");
  *out = r->impl->actor_id().value;
  return WEFT_OK;
}

weft_status weft_replica_public_key(const weft_replica* r, uint8_t out[32]) {
  if (!r || !out) return NullArg("weft_replica_public_key");
  const auto& bytes = r->impl->public_key().bytes();
  std::memcpy(out, bytes.data(), bytes.size());
  return WEFT_OK;
}

/* ---------------------------------------------------------------- documents */

weft_status weft_doc_create(weft_replica* r, const char* doc, size_t doc_len) {
  if (!r) return NullArg("weft_doc_create");
  return Guard(&r->err, [&] {
    std::string_view d;
    WEFT_CHECK(&r->err, CheckText(doc, doc_len, "document ID", &d));
    return Report(&r->err, r->impl->CreateDocument(d));
  });
}

weft_status weft_doc_exists(weft_replica* r, const char* doc, size_t doc_len, int* exists) {
  if (!r || !exists) return NullArg("weft_doc_exists");
  return Guard(&r->err, [&] {
    std::string_view d;
    WEFT_CHECK(&r->err, CheckText(doc, doc_len, "document ID", &d));
    *exists = r->impl->HasDocument(d) ? 1 : 0;
    return WEFT_OK;
  });
}

weft_status weft_doc_delete(weft_replica* r, const char* doc, size_t doc_len) {
  if (!r) return NullArg("weft_doc_delete");
  return Guard(&r->err, [&] {
    std::string_view d;
    WEFT_CHECK(&r->err, CheckText(doc, doc_len, "document ID", &d));
    return Report(&r->err, r->impl->DeleteDocument(d));
  });
}

weft_status weft_doc_list(weft_replica* r, weft_strings** out) {
  if (!r || !out) return NullArg("weft_doc_list");
  return Guard(&r->err, [&] {
    auto docs = r->impl->ListDocuments();
    if (!docs.ok()) return Report(&r->err, docs.status());
    auto list = std::make_unique<weft_strings>();
    list->items = std::move(docs).value();
    return Give(std::move(list), out);
  });
}

weft_status weft_doc_snapshot(weft_replica* r, const char* doc, size_t doc_len) {
  if (!r) return NullArg("weft_doc_snapshot");
  return Guard(&r->err, [&] {
    std::string_view d;
    WEFT_CHECK(&r->err, CheckText(doc, doc_len, "document ID", &d));
    return Report(&r->err, r->impl->Snapshot(d));
  });
}

/* ---------------------------------------------------------------- transactions and reads */

void weft_commit_info_release(weft_commit_info* info) {
  if (!info) return;
  std::free(info->version_token);
  std::memset(info, 0, sizeof(*info));
}

weft_status weft_transact(weft_replica* r, const char* doc, size_t doc_len, weft_txn_fn fn,
                          void* user, weft_commit_info* info) {
  if (!r || !fn) return NullArg("weft_transact");
  return Guard(&r->err, [&] {
    std::string_view d;
    WEFT_CHECK(&r->err, CheckText(doc, doc_len, "document ID", &d));
    auto res = r->impl->Transact(d, [&](Txn& txn) -> Status {
      weft_txn t;
      t.view.doc = &txn.document();
      t.view.txn = &txn.raw();
      t.view.err = &r->err;
      weft_status code = fn(&t, user);
      if (code == WEFT_OK) return Status::Ok();
      bool known = code > WEFT_OK && code <= WEFT_INTERNAL;
      return Status(known ? static_cast<StatusCode>(code) : StatusCode::kAborted,
                    std::string("transaction aborted: its callback returned ") +
                        weft_status_name(code) + " (" + std::to_string(code) +
                        "); nothing was written");
    });
    if (!res.ok()) return Report(&r->err, res.status());
    if (info) {
      weft_commit_info ci{};
      ci.changed = res->changed ? 1 : 0;
      ci.change = FromId(res->change);
      ci.version_token = CopyOut(EncodeCausalToken(d, res->version), &ci.version_token_len);
      if (!ci.version_token) return Fail(&r->err, WEFT_INTERNAL, "out of memory (committed)");
      *info = ci;
    }
    return WEFT_OK;
  });
}

weft_status weft_read(weft_replica* r, const char* doc, size_t doc_len, weft_view_fn fn,
                      void* user) {
  if (!r || !fn) return NullArg("weft_read");
  return Guard(&r->err, [&] {
    std::string_view d;
    WEFT_CHECK(&r->err, CheckText(doc, doc_len, "document ID", &d));
    return Report(&r->err, r->impl->Read(d, [&](const View& v) {
      weft_view view;
      view.doc = &v.document();
      view.err = &r->err;
      fn(&view, user);
    }));
  });
}

const weft_view* weft_txn_view(weft_txn* txn) {
  return txn ? &txn->view : nullptr;
}

/* ---------------------------------------------------------------- reads */

#define VIEW_GUARD(name)        \
  if (!v) return NullArg(name); \
  ErrSlot* slot = v->err;       \
  return Guard(slot, [&]() -> weft_status

weft_status weft_view_to_json(const weft_view* v, char** out, size_t* out_len) {
  if (!out) return NullArg("weft_view_to_json");
  VIEW_GUARD("weft_view_to_json") {
    char* s = CopyOut(v->doc->ToJson(), out_len);
    if (!s) return Fail(slot, WEFT_INTERNAL, "out of memory");
    *out = s;
    return WEFT_OK;
  });
}

weft_status weft_view_kind(const weft_view* v, weft_obj obj, int32_t* out) {
  if (!out) return NullArg("weft_view_kind");
  VIEW_GUARD("weft_view_kind") {
    auto k = v->doc->KindOf(ToId(obj));
    if (!k.ok()) return Report(slot, k.status());
    *out = TypeOfKind(*k);
    return WEFT_OK;
  });
}

weft_status weft_view_map_keys(const weft_view* v, weft_obj map, weft_strings** out) {
  if (!out) return NullArg("weft_view_map_keys");
  VIEW_GUARD("weft_view_map_keys") {
    auto keys = MapRef(v->doc, nullptr, ToId(map)).Keys();
    if (!keys.ok()) return Report(slot, keys.status());
    auto list = std::make_unique<weft_strings>();
    list->items = std::move(keys).value();
    return Give(std::move(list), out);
  });
}

weft_status weft_view_map_get(const weft_view* v, weft_obj map, const char* key, size_t key_len,
                              weft_values** out) {
  if (!out) return NullArg("weft_view_map_get");
  VIEW_GUARD("weft_view_map_get") {
    std::string_view k;
    WEFT_CHECK(slot, CheckText(key, key_len, "key", &k));
    auto read = MapRef(v->doc, nullptr, ToId(map)).Get(k);
    if (!read.ok()) return Report(slot, read.status());
    auto list = std::make_unique<weft_values>();
    for (const auto& e : read->values) list->entries.push_back(EntryOf(e.value));
    list->context = read->context;
    return Give(std::move(list), out);
  });
}

weft_status weft_view_map_lookup(const weft_view* v, weft_obj map, const char* key, size_t key_len,
                                 int32_t kind, weft_obj* out) {
  if (!out) return NullArg("weft_view_map_lookup");
  VIEW_GUARD("weft_view_map_lookup") {
    std::string_view k;
    WEFT_CHECK(slot, CheckText(key, key_len, "key", &k));
    auto kd = KindOfType(kind);
    if (!kd.ok()) return Report(slot, kd.status());
    MapRef m(v->doc, nullptr, ToId(map));
    auto id = m.Nested(k, *kd);
    if (!id.ok()) return Report(slot, id.status());
    *out = FromId(*id);
    return WEFT_OK;
  });
}

weft_status weft_view_register_get(const weft_view* v, weft_obj reg, weft_values** out) {
  if (!out) return NullArg("weft_view_register_get");
  VIEW_GUARD("weft_view_register_get") {
    RegisterRef ref(v->doc, nullptr, ToId(reg));
    auto sibs = ref.Siblings();
    if (!sibs.ok()) return Report(slot, sibs.status());
    auto ctx = ref.Context();
    if (!ctx.ok()) return Report(slot, ctx.status());
    auto list = std::make_unique<weft_values>();
    for (const auto& s : *sibs) {
      weft_values::Entry e;
      e.scalar = s.value;
      list->entries.push_back(std::move(e));
    }
    list->context = *ctx;
    return Give(std::move(list), out);
  });
}

weft_status weft_view_lww_get(const weft_view* v, weft_obj reg, weft_values** out) {
  if (!out) return NullArg("weft_view_lww_get");
  VIEW_GUARD("weft_view_lww_get") {
    auto read = LwwRef(v->doc, nullptr, ToId(reg)).Read();
    if (!read.ok()) return Report(slot, read.status());
    auto list = std::make_unique<weft_values>();
    if (read->value) {
      weft_values::Entry e;
      e.scalar = *read->value;
      e.time = read->time;
      list->entries.push_back(std::move(e));
      for (const auto& [s, t] : read->overwritten) {
        weft_values::Entry o;
        o.scalar = s;
        o.time = t;
        list->entries.push_back(std::move(o));
      }
    }
    return Give(std::move(list), out);
  });
}

weft_status weft_view_counter_get(const weft_view* v, weft_obj counter, int64_t* out) {
  if (!out) return NullArg("weft_view_counter_get");
  VIEW_GUARD("weft_view_counter_get") {
    auto c = CounterRef(v->doc, nullptr, ToId(counter)).Value();
    if (!c.ok()) return Report(slot, c.status());
    *out = *c;
    return WEFT_OK;
  });
}

weft_status weft_view_set_elements(const weft_view* v, weft_obj set, weft_values** out) {
  if (!out) return NullArg("weft_view_set_elements");
  VIEW_GUARD("weft_view_set_elements") {
    auto els = SetRef(v->doc, nullptr, ToId(set)).Elements();
    if (!els.ok()) return Report(slot, els.status());
    auto list = std::make_unique<weft_values>();
    for (auto& s : *els) {
      weft_values::Entry e;
      e.scalar = std::move(s);
      list->entries.push_back(std::move(e));
    }
    return Give(std::move(list), out);
  });
}

weft_status weft_view_set_contains(const weft_view* v, weft_obj set, const weft_value* element,
                                   int* out) {
  if (!out) return NullArg("weft_view_set_contains");
  VIEW_GUARD("weft_view_set_contains") {
    auto s = ToScalar(element);
    if (!s.ok()) return Report(slot, s.status());
    auto in = SetRef(v->doc, nullptr, ToId(set)).Contains(*s);
    if (!in.ok()) return Report(slot, in.status());
    *out = *in ? 1 : 0;
    return WEFT_OK;
  });
}

weft_status weft_view_text_read(const weft_view* v, weft_obj text, char** out, size_t* out_len) {
  if (!out) return NullArg("weft_view_text_read");
  VIEW_GUARD("weft_view_text_read") {
    auto t = TextRef(v->doc, nullptr, ToId(text)).Read();
    if (!t.ok()) return Report(slot, t.status());
    char* s = CopyOut(*t, out_len);
    if (!s) return Fail(slot, WEFT_INTERNAL, "out of memory");
    *out = s;
    return WEFT_OK;
  });
}

weft_status weft_view_seq_size(const weft_view* v, weft_obj seq, size_t* out) {
  if (!out) return NullArg("weft_view_seq_size");
  VIEW_GUARD("weft_view_seq_size") {
    auto n = v->doc->SequenceSize(ToId(seq));
    if (!n.ok()) return Report(slot, n.status());
    *out = *n;
    return WEFT_OK;
  });
}

weft_status weft_view_list_values(const weft_view* v, weft_obj list, weft_values** out) {
  if (!out) return NullArg("weft_view_list_values");
  VIEW_GUARD("weft_view_list_values") {
    auto vals = ListRef(v->doc, nullptr, ToId(list)).Values();
    if (!vals.ok()) return Report(slot, vals.status());
    auto res = std::make_unique<weft_values>();
    for (const auto& x : *vals) res->entries.push_back(EntryOf(x));
    return Give(std::move(res), out);
  });
}

weft_status weft_view_anchor_at(const weft_view* v, weft_obj seq, size_t index, int32_t bias,
                                weft_anchor* out) {
  if (!out) return NullArg("weft_view_anchor_at");
  VIEW_GUARD("weft_view_anchor_at") {
    if (bias != 0 && bias != 1) return Fail(slot, WEFT_INVALID_ARGUMENT, "bias must be 0 or 1");
    auto a = v->doc->AnchorAt(ToId(seq), index, bias ? crdt::Bias::kRight : crdt::Bias::kLeft);
    if (!a.ok()) return Report(slot, a.status());
    out->item = FromId(a->item);
    out->bias = a->bias == crdt::Bias::kRight ? 1 : 0;
    return WEFT_OK;
  });
}

weft_status weft_view_anchor_index(const weft_view* v, weft_obj seq, const weft_anchor* anchor,
                                   size_t* out) {
  if (!out || !anchor) return NullArg("weft_view_anchor_index");
  VIEW_GUARD("weft_view_anchor_index") {
    if (anchor->bias != 0 && anchor->bias != 1)
      return Fail(slot, WEFT_INVALID_ARGUMENT, "bias must be 0 or 1");
    crdt::Anchor a{ToId(anchor->item), anchor->bias ? crdt::Bias::kRight : crdt::Bias::kLeft};
    auto i = v->doc->IndexOfAnchor(ToId(seq), a);
    if (!i.ok()) return Report(slot, i.status());
    *out = *i;
    return WEFT_OK;
  });
}

/* ---------------------------------------------------------------- writes */

#define TXN_GUARD(name)                    \
  if (!t) return NullArg(name);            \
  ErrSlot* slot = t->view.err;             \
  const crdt::Document* doc = t->view.doc; \
  crdt::Transaction* raw = t->view.txn;    \
  (void)doc;                               \
  (void)raw;                               \
  return Guard(slot, [&]() -> weft_status

weft_status weft_txn_map_put(weft_txn* t, weft_obj map, const char* key, size_t key_len,
                             const weft_value* value) {
  TXN_GUARD("weft_txn_map_put") {
    std::string_view k;
    WEFT_CHECK(slot, CheckText(key, key_len, "key", &k));
    auto s = ToScalar(value);
    if (!s.ok()) return Report(slot, s.status());
    return Report(slot, MapRef(doc, raw, ToId(map)).Put(k, std::move(s).value()));
  });
}

weft_status weft_txn_map_put_after_read(weft_txn* t, weft_obj map, const char* key, size_t key_len,
                                        const weft_value* value, const weft_values* read) {
  if (!read) return NullArg("weft_txn_map_put_after_read");
  TXN_GUARD("weft_txn_map_put_after_read") {
    std::string_view k;
    WEFT_CHECK(slot, CheckText(key, key_len, "key", &k));
    if (!read->context)
      return Fail(slot, WEFT_INVALID_ARGUMENT, "the values were not read from a map key");
    auto s = ToScalar(value);
    if (!s.ok()) return Report(slot, s.status());
    return Report(
        slot, MapRef(doc, raw, ToId(map)).PutAfterRead(k, std::move(s).value(), *read->context));
  });
}

weft_status weft_txn_map_delete(weft_txn* t, weft_obj map, const char* key, size_t key_len) {
  TXN_GUARD("weft_txn_map_delete") {
    std::string_view k;
    WEFT_CHECK(slot, CheckText(key, key_len, "key", &k));
    return Report(slot, MapRef(doc, raw, ToId(map)).Delete(k));
  });
}

weft_status weft_txn_map_object(weft_txn* t, weft_obj map, const char* key, size_t key_len,
                                int32_t kind, weft_obj* out) {
  if (!out) return NullArg("weft_txn_map_object");
  TXN_GUARD("weft_txn_map_object") {
    std::string_view k;
    WEFT_CHECK(slot, CheckText(key, key_len, "key", &k));
    auto kd = KindOfType(kind);
    if (!kd.ok()) return Report(slot, kd.status());
    auto id = MapRef(doc, raw, ToId(map)).Nested(k, *kd);
    if (!id.ok()) return Report(slot, id.status());
    *out = FromId(*id);
    return WEFT_OK;
  });
}

weft_status weft_txn_register_set(weft_txn* t, weft_obj reg, const weft_value* value) {
  TXN_GUARD("weft_txn_register_set") {
    auto s = ToScalar(value);
    if (!s.ok()) return Report(slot, s.status());
    return Report(slot, RegisterRef(doc, raw, ToId(reg)).Set(std::move(s).value()));
  });
}

weft_status weft_txn_register_set_after_read(weft_txn* t, weft_obj reg, const weft_value* value,
                                             const weft_values* read) {
  if (!read) return NullArg("weft_txn_register_set_after_read");
  TXN_GUARD("weft_txn_register_set_after_read") {
    if (!read->context)
      return Fail(slot, WEFT_INVALID_ARGUMENT, "the values were not read from a register");
    auto s = ToScalar(value);
    if (!s.ok()) return Report(slot, s.status());
    return Report(
        slot, RegisterRef(doc, raw, ToId(reg)).SetAfterRead(std::move(s).value(), *read->context));
  });
}

weft_status weft_txn_counter_add(weft_txn* t, weft_obj counter, int64_t delta) {
  TXN_GUARD("weft_txn_counter_add") {
    return Report(slot, CounterRef(doc, raw, ToId(counter)).Increment(delta));
  });
}

weft_status weft_txn_set_add(weft_txn* t, weft_obj set, const weft_value* element) {
  TXN_GUARD("weft_txn_set_add") {
    auto s = ToScalar(element);
    if (!s.ok()) return Report(slot, s.status());
    return Report(slot, SetRef(doc, raw, ToId(set)).Add(std::move(s).value()));
  });
}

weft_status weft_txn_set_remove(weft_txn* t, weft_obj set, const weft_value* element) {
  TXN_GUARD("weft_txn_set_remove") {
    auto s = ToScalar(element);
    if (!s.ok()) return Report(slot, s.status());
    return Report(slot, SetRef(doc, raw, ToId(set)).Remove(std::move(s).value()));
  });
}

weft_status weft_txn_text_insert(weft_txn* t, weft_obj text, size_t pos, const char* utf8,
                                 size_t len) {
  TXN_GUARD("weft_txn_text_insert") {
    std::string_view s;
    WEFT_CHECK(slot, CheckText(utf8, len, "text", &s));
    return Report(slot, TextRef(doc, raw, ToId(text)).Insert(pos, s));
  });
}

weft_status weft_txn_seq_delete(weft_txn* t, weft_obj seq, size_t pos, size_t count) {
  TXN_GUARD("weft_txn_seq_delete") {
    return Report(slot, raw->ListDelete(ToId(seq), pos, count));
  });
}

weft_status weft_txn_list_insert(weft_txn* t, weft_obj list, size_t pos, const weft_value* values,
                                 size_t count) {
  TXN_GUARD("weft_txn_list_insert") {
    if (!values && count > 0) return Fail(slot, WEFT_INVALID_ARGUMENT, "values: NULL");
    std::vector<Scalar> items;
    items.reserve(count);
    for (size_t i = 0; i < count; i++) {
      auto s = ToScalar(&values[i]);
      if (!s.ok()) return Report(slot, s.status());
      items.push_back(std::move(s).value());
    }
    return Report(slot, ListRef(doc, raw, ToId(list)).Insert(pos, std::move(items)));
  });
}

weft_status weft_txn_list_insert_object(weft_txn* t, weft_obj list, size_t pos, int32_t kind,
                                        weft_obj* out) {
  if (!out) return NullArg("weft_txn_list_insert_object");
  TXN_GUARD("weft_txn_list_insert_object") {
    auto kd = KindOfType(kind);
    if (!kd.ok()) return Report(slot, kd.status());
    auto id = raw->ListInsertObject(ToId(list), pos, *kd);
    if (!id.ok()) return Report(slot, id.status());
    *out = FromId(*id);
    return WEFT_OK;
  });
}

/* ---------------------------------------------------------------- change feed */

weft_status weft_subscribe(weft_replica* r, const char* doc, size_t doc_len, weft_change_fn fn,
                           void* user, weft_subscription** out) {
  if (!r || !fn || !out) return NullArg("weft_subscribe");
  return Guard(&r->err, [&] {
    std::string_view d;
    WEFT_CHECK(&r->err, CheckText(doc, doc_len, "document ID", &d));
    auto sub = std::make_unique<weft_subscription>();
    sub->r = r;
    sub->gate = std::make_shared<CallbackGate>();
    std::shared_ptr<CallbackGate> gate = sub->gate;
    {
      std::lock_guard l(r->mu);
      r->subs.insert(sub.get());
    }
    sub->id = r->impl->Subscribe(d, [gate, fn, user](const ChangeEvent& ev) {
      RunGated(*gate, [&] {
        std::vector<weft_patch> patches(ev.patches.size());
        for (size_t i = 0; i < ev.patches.size(); i++) patches[i] = ToCPatch(ev.patches[i]);
        weft_change_event e{};
        e.doc = ev.doc.c_str();
        e.doc_len = ev.doc.size();
        e.local = ev.local ? 1 : 0;
        e.change = FromId(ev.change);
        e.patches = patches.data();
        e.patch_count = patches.size();
        fn(&e, user);
      });
    });
    return Give(std::move(sub), out);
  });
}

void weft_unsubscribe(weft_subscription* s) {
  if (!s) return;
  try {
    s->r->impl->Unsubscribe(s->id);
    s->gate->End();
    std::lock_guard l(s->r->mu);
    s->r->subs.erase(s);
  } catch (...) {
    // Unsubscribe and erase do not throw; nothing to report from a void function.
  }
  delete s;
}

/* ---------------------------------------------------------------- resolve on write */

weft_status weft_set_conflict_resolver(weft_replica* r, const char* doc, size_t doc_len,
                                       weft_resolver_fn fn, void* user) {
  if (!r) return NullArg("weft_set_conflict_resolver");
  return Guard(&r->err, [&] {
    std::string_view d;
    WEFT_CHECK(&r->err, CheckText(doc, doc_len, "document ID", &d));
    std::shared_ptr<CallbackGate> old;
    if (!fn) {
      // Removed: a document without its own falls back to the every-document resolver.
      {
        std::lock_guard l(r->mu);
        auto it = r->resolvers.find(std::string(d));
        if (it != r->resolvers.end()) {
          old = it->second;
          r->resolvers.erase(it);
        }
      }
      r->impl->SetConflictResolver(d, nullptr);
      if (old) old->End();
      return WEFT_OK;
    }
    auto gate = std::make_shared<CallbackGate>();
    {
      std::lock_guard l(r->mu);
      auto& slot = r->resolvers[std::string(d)];
      old = slot;
      slot = gate;
    }
    r->impl->SetConflictResolver(
        d, [gate, fn, user](const ConflictInfo& info) -> std::optional<Scalar> {
          std::optional<Scalar> chosen;
          RunGated(*gate, [&] {
            weft_values sibs;
            for (const auto& v : info.siblings) sibs.entries.push_back(EntryOf(v));
            weft_conflict c{};
            c.doc = info.doc.c_str();
            c.doc_len = info.doc.size();
            c.map = FromId(info.object);
            c.key = info.key.c_str();
            c.key_len = info.key.size();
            c.siblings = &sibs;
            weft_value out = weft_null();
            if (fn(&c, &out, user) != 1) return;
            auto s = ToScalar(&out);  // copies before `sibs` goes
            if (s.ok()) chosen = std::move(s).value();
          });
          return chosen;
        });
    if (old) old->End();
    return WEFT_OK;
  });
}

/* ---------------------------------------------------------------- causal tokens */

/* ---------------------------------------------------------------- access lists */

weft_status weft_doc_grant(weft_replica* r, const char* doc, size_t doc_len, const uint8_t key[32],
                           int role) {
  if (!r || !key) return NullArg("weft_doc_grant");
  return Guard(&r->err, [&] {
    std::string_view d;
    WEFT_CHECK(&r->err, CheckText(doc, doc_len, "document ID", &d));
    if (role < WEFT_ROLE_READER || role > WEFT_ROLE_ADMIN) {
      return Fail(&r->err, WEFT_INVALID_ARGUMENT, "a role to grant is reader, writer or admin");
    }
    return Report(&r->err, r->impl->Grant(d, KeyFrom(key), static_cast<Role>(role)).status());
  });
}

weft_status weft_doc_revoke(weft_replica* r, const char* doc, size_t doc_len,
                            const uint8_t key[32]) {
  if (!r || !key) return NullArg("weft_doc_revoke");
  return Guard(&r->err, [&] {
    std::string_view d;
    WEFT_CHECK(&r->err, CheckText(doc, doc_len, "document ID", &d));
    return Report(&r->err, r->impl->Revoke(d, KeyFrom(key)).status());
  });
}

weft_status weft_doc_members(weft_replica* r, const char* doc, size_t doc_len, char** out,
                             size_t* out_len) {
  if (!r || !out) return NullArg("weft_doc_members");
  return Guard(&r->err, [&] {
    std::string_view d;
    WEFT_CHECK(&r->err, CheckText(doc, doc_len, "document ID", &d));
    auto access = r->impl->Access(d);
    if (!access.ok()) return Report(&r->err, access.status());
    json::Value j = json::Value::MakeObject();
    for (const auto& [key, role] : access->members) {
      j.Set(key.ToHex(), json::Value::Str(crdt::RoleName(role)));
    }
    char* s = CopyOut(json::Serialize(j), out_len);
    if (!s) return Fail(&r->err, WEFT_INTERNAL, "out of memory");
    *out = s;
    return WEFT_OK;
  });
}

weft_status weft_doc_create_encrypted(weft_replica* r, const char* doc, size_t doc_len) {
  if (!r) return NullArg("weft_doc_create_encrypted");
  return Guard(&r->err, [&] {
    std::string_view d;
    WEFT_CHECK(&r->err, CheckText(doc, doc_len, "document ID", &d));
    return Report(&r->err, r->impl->CreateEncryptedDocument(d));
  });
}

weft_status weft_doc_encryption(weft_replica* r, const char* doc, size_t doc_len, char** out,
                                size_t* out_len) {
  if (!r || !out) return NullArg("weft_doc_encryption");
  return Guard(&r->err, [&] {
    std::string_view d;
    WEFT_CHECK(&r->err, CheckText(doc, doc_len, "document ID", &d));
    auto e = r->impl->Encryption(d);
    if (!e.ok()) return Report(&r->err, e.status());
    json::Value j = json::Value::MakeObject();
    j.Set("encrypted", json::Value::Bool(e->encrypted));
    j.Set("epoch", json::Value::Number(static_cast<double>(e->epoch)));
    j.Set("has_key", json::Value::Bool(e->has_key));
    json::Value missing = json::Value::MakeArray();
    for (uint64_t m : e->missing_epochs) missing.Push(json::Value::Number(static_cast<double>(m)));
    j.Set("missing_epochs", std::move(missing));
    char* s = CopyOut(json::Serialize(j), out_len);
    if (!s) return Fail(&r->err, WEFT_INTERNAL, "out of memory");
    *out = s;
    return WEFT_OK;
  });
}

weft_status weft_doc_role(weft_replica* r, const char* doc, size_t doc_len, const uint8_t key[32],
                          int* role, int* owned) {
  if (!r || !key || !role || !owned) return NullArg("weft_doc_role");
  return Guard(&r->err, [&] {
    std::string_view d;
    WEFT_CHECK(&r->err, CheckText(doc, doc_len, "document ID", &d));
    auto access = r->impl->Access(d);
    if (!access.ok()) return Report(&r->err, access.status());
    auto it = access->members.find(KeyFrom(key));
    *role = it == access->members.end() ? WEFT_ROLE_NONE : static_cast<int>(it->second);
    *owned = access->owned ? 1 : 0;
    return WEFT_OK;
  });
}

weft_status weft_causal_token(weft_replica* r, const char* doc, size_t doc_len, char** out,
                              size_t* out_len) {
  if (!r || !out) return NullArg("weft_causal_token");
  return Guard(&r->err, [&] {
    std::string_view d;
    WEFT_CHECK(&r->err, CheckText(doc, doc_len, "document ID", &d));
    auto t = r->impl->CausalToken(d);
    if (!t.ok()) return Report(&r->err, t.status());
    char* s = CopyOut(*t, out_len);
    if (!s) return Fail(&r->err, WEFT_INTERNAL, "out of memory");
    *out = s;
    return WEFT_OK;
  });
}

weft_status weft_token_satisfied(weft_replica* r, const char* token, size_t token_len, int* out) {
  if (!r || !out) return NullArg("weft_token_satisfied");
  return Guard(&r->err, [&] {
    std::string_view t;
    WEFT_CHECK(&r->err, CheckText(token, token_len, "token", &t));
    auto ok = r->impl->Satisfies(t);
    if (!ok.ok()) return Report(&r->err, ok.status());
    *out = *ok ? 1 : 0;
    return WEFT_OK;
  });
}

weft_status weft_wait_for_token(weft_replica* r, const char* token, size_t token_len,
                                uint64_t timeout_ms) {
  if (!r) return NullArg("weft_wait_for_token");
  return Guard(&r->err, [&] {
    std::string_view t;
    WEFT_CHECK(&r->err, CheckText(token, token_len, "token", &t));
    auto ms = std::chrono::milliseconds(
        static_cast<int64_t>(std::min<uint64_t>(timeout_ms, uint64_t{1} << 40)));
    return Report(&r->err, r->impl->WaitFor(t, ms));
  });
}

/* ---------------------------------------------------------------- raw changes */

size_t weft_blobs_count(const weft_blobs* b) {
  return b ? b->items.size() : 0;
}

const uint8_t* weft_blobs_get(const weft_blobs* b, size_t i, size_t* len) {
  if (!b || i >= b->items.size()) return nullptr;
  if (len) *len = b->items[i].size();
  return reinterpret_cast<const uint8_t*>(b->items[i].data());
}

void weft_blobs_free(weft_blobs* b) {
  delete b;
}

/* ---------------------------------------------------------------- time travel */

weft_status weft_read_at(weft_replica* r, const char* doc, size_t doc_len, const char* token,
                         size_t token_len, weft_view_fn fn, void* user) {
  if (!r || !fn) return NullArg("weft_read_at");
  return Guard(&r->err, [&] {
    std::string_view d, t;
    WEFT_CHECK(&r->err, CheckText(doc, doc_len, "document ID", &d));
    WEFT_CHECK(&r->err, CheckText(token, token_len, "token", &t));
    VersionVector at;
    WEFT_CHECK(&r->err, VersionOfToken(d, t, &at));
    return Report(&r->err, r->impl->ReadAt(d, at, [&](const View& v) {
      weft_view view;
      view.doc = &v.document();
      view.err = &r->err;
      fn(&view, user);
    }));
  });
}

size_t weft_patches_count(const weft_patches* p) {
  return p ? p->items.size() : 0;
}

weft_status weft_patches_get(const weft_patches* p, size_t i, weft_patch* out) {
  if (!p || !out) return NullArg("weft_patches_get");
  if (i >= p->items.size()) return Fail(nullptr, WEFT_OUT_OF_RANGE, "no patch at that index");
  *out = ToCPatch(p->items[i]);
  return WEFT_OK;
}

void weft_patches_free(weft_patches* p) {
  delete p;
}

weft_status weft_diff(weft_replica* r, const char* doc, size_t doc_len, const char* from,
                      size_t from_len, const char* to, size_t to_len, weft_patches** out) {
  if (!r || !out) return NullArg("weft_diff");
  return Guard(&r->err, [&] {
    std::string_view d, f, t;
    WEFT_CHECK(&r->err, CheckText(doc, doc_len, "document ID", &d));
    WEFT_CHECK(&r->err, CheckText(from, from_len, "token", &f));
    WEFT_CHECK(&r->err, CheckText(to, to_len, "token", &t));
    VersionVector vf, vt;
    WEFT_CHECK(&r->err, VersionOfToken(d, f, &vf));
    WEFT_CHECK(&r->err, VersionOfToken(d, t, &vt));
    auto patches = r->impl->Diff(d, vf, vt);
    if (!patches.ok()) return Report(&r->err, patches.status());
    auto list = std::make_unique<weft_patches>();
    list->items = std::move(patches).value();
    return Give(std::move(list), out);
  });
}

weft_status weft_doc_history(weft_replica* r, const char* doc, size_t doc_len, weft_history** out) {
  if (!r || !out) return NullArg("weft_doc_history");
  return Guard(&r->err, [&] {
    std::string_view d;
    WEFT_CHECK(&r->err, CheckText(doc, doc_len, "document ID", &d));
    auto entries = r->impl->History(d);
    if (!entries.ok()) return Report(&r->err, entries.status());
    auto h = std::make_unique<weft_history>();
    h->items = std::move(entries).value();
    h->tokens.reserve(h->items.size());
    for (const HistoryEntry& e : h->items) h->tokens.push_back(EncodeCausalToken(d, e.version));
    return Give(std::move(h), out);
  });
}

size_t weft_history_count(const weft_history* h) {
  return h ? h->items.size() : 0;
}

weft_status weft_history_get(const weft_history* h, size_t i, weft_history_entry* out) {
  if (!h || !out) return NullArg("weft_history_get");
  if (i >= h->items.size()) return Fail(nullptr, WEFT_OUT_OF_RANGE, "no entry at that index");
  const HistoryEntry& e = h->items[i];
  *out = weft_history_entry{};
  out->change = FromId(e.change);
  out->end_seq = e.end_seq;
  out->lamport = e.lamport;
  out->time_ms = e.time_ms;
  out->ops = e.ops;
  out->token = h->tokens[i].c_str();
  out->token_len = h->tokens[i].size();
  return WEFT_OK;
}

void weft_history_free(weft_history* h) {
  delete h;
}

/* ---------------------------------------------------------------- raw change exchange */

weft_status weft_changes_since(weft_replica* r, const char* doc, size_t doc_len, const char* token,
                               size_t token_len, weft_blobs** out) {
  if (!r || !out) return NullArg("weft_changes_since");
  return Guard(&r->err, [&] {
    std::string_view d, t;
    WEFT_CHECK(&r->err, CheckText(doc, doc_len, "document ID", &d));
    WEFT_CHECK(&r->err, CheckText(token, token_len, "token", &t));
    VersionVector peer;
    WEFT_CHECK(&r->err, VersionOfToken(d, t, &peer));
    auto changes = r->impl->ChangesSince(d, peer);
    if (!changes.ok()) return Report(&r->err, changes.status());
    auto b = std::make_unique<weft_blobs>();
    b->items = std::move(changes).value();
    return Give(std::move(b), out);
  });
}

weft_status weft_apply_changes(weft_replica* r, const char* doc, size_t doc_len,
                               const uint8_t* const* blobs, const size_t* lens, size_t count,
                               size_t* applied) {
  if (!r || (count > 0 && (!blobs || !lens))) return NullArg("weft_apply_changes");
  return Guard(&r->err, [&] {
    std::string_view d;
    WEFT_CHECK(&r->err, CheckText(doc, doc_len, "document ID", &d));
    std::vector<ChangeBlob> changes;
    changes.reserve(count);
    for (size_t i = 0; i < count; i++) {
      if (!blobs[i] && lens[i] > 0) return Fail(&r->err, WEFT_INVALID_ARGUMENT, "blob is NULL");
      if (lens[i] == 0) {
        changes.emplace_back();
      } else {
        changes.emplace_back(reinterpret_cast<const char*>(blobs[i]), lens[i]);
      }
    }
    auto rep = r->impl->ApplyRemoteChanges(d, changes);
    if (!rep.ok()) return Report(&r->err, rep.status());
    if (applied) *applied = rep->applied;
    return WEFT_OK;
  });
}

}  // extern "C"
