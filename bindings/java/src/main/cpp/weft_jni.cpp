// weft_jni.cpp: the JNI layer of the Java binding (dev.weft.NativeApi), over the C API only.
//
// Thin on purpose: each native method converts its arguments (handles as jlong, strings as UTF-8
// byte arrays, never JNI's modified UTF-8), calls the C API, and turns a failed weft_status into
// a dev.weft.WeftException carrying the code and weft_thread_errmsg. The Java classes own the
// handles (closing, Cleaner) and check them before calling in.
//
// Callbacks: the C API calls transaction and read bodies on the calling thread, and change
// listeners, resolvers and presence listeners on whichever thread applied the change (a weft_sync
// network thread for remote ones). A thread that is not attached to the JVM is attached as a
// daemon thread named "weft-native" on its first callback and detached when it exits (a
// thread_local's destructor), so a sync thread is attached once, not once per call. Each
// callback runs in its own local-reference frame. Listeners and resolvers are held as global
// references, deleted by the Java side once the C API says they can no longer run.
#include <jni.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "weft.h"

namespace {

JavaVM* g_vm = nullptr;

struct Refs {
  jclass exception, value, patch, event, commit, history, summary, peer, docstat, bytes;
  jmethodID exception_ctor, value_ctor, value_type, value_int, value_real, value_data;
  jmethodID patch_ctor, event_ctor, commit_ctor, history_ctor, summary_ctor, peer_ctor,
      docstat_ctor;
  jmethodID body_run, event_sink, resolver_sink, presence_sink;
} g;

// Detaches a thread this layer attached, when the thread exits.
struct Attachment {
  bool attached = false;
  ~Attachment() {
    if (attached && g_vm) g_vm->DetachCurrentThread();
  }
};
thread_local Attachment t_attachment;

JNIEnv* CallbackEnv() {
  JNIEnv* env = nullptr;
  jint got = g_vm->GetEnv(reinterpret_cast<void**>(&env), JNI_VERSION_1_6);
  if (got == JNI_OK) return env;
  if (got != JNI_EDETACHED) return nullptr;
  JavaVMAttachArgs args{JNI_VERSION_1_6, const_cast<char*>("weft-native"), nullptr};
#ifdef __ANDROID__
  if (g_vm->AttachCurrentThreadAsDaemon(&env, &args) != JNI_OK) return nullptr;
#else
  if (g_vm->AttachCurrentThreadAsDaemon(reinterpret_cast<void**>(&env), &args) != JNI_OK) {
    return nullptr;
  }
#endif
  t_attachment.attached = true;
  return env;
}

// A callback's local-reference frame; an exception left by Java code is reported and cleared,
// since it must not be pending when control returns to the C API.
class CallbackFrame {
 public:
  explicit CallbackFrame(JNIEnv* env) : env_(env), ok_(env && env->PushLocalFrame(64) == 0) {}
  ~CallbackFrame() {
    if (!ok_) return;
    if (env_->ExceptionCheck()) {
      env_->ExceptionDescribe();
      env_->ExceptionClear();
    }
    env_->PopLocalFrame(nullptr);
  }
  bool ok() const { return ok_; }

 private:
  JNIEnv* env_;
  bool ok_;
};

template <typename T>
T* Ptr(jlong p) {
  return reinterpret_cast<T*>(static_cast<intptr_t>(p));
}

jlong Handle(const void* p) {
  return static_cast<jlong>(reinterpret_cast<intptr_t>(p));
}

weft_obj Obj(jlong node, jlong seq) {
  return weft_obj{static_cast<uint64_t>(node), static_cast<uint64_t>(seq)};
}

// A Java byte[] copied in (null stays null: the C API's NULL with length 0).
class Bytes {
 public:
  Bytes(JNIEnv* env, jbyteArray a) {
    if (!a) return;
    null_ = false;
    jsize n = env->GetArrayLength(a);
    s_.resize(static_cast<size_t>(n));
    env->GetByteArrayRegion(a, 0, n, reinterpret_cast<jbyte*>(s_.data()));
  }
  const char* data() const { return null_ ? nullptr : s_.data(); }
  const uint8_t* u8() const { return reinterpret_cast<const uint8_t*>(data()); }
  size_t size() const { return s_.size(); }

 private:
  std::string s_;
  bool null_ = true;
};

jbyteArray NewBytes(JNIEnv* env, const void* p, size_t n) {
  jbyteArray a = env->NewByteArray(static_cast<jsize>(n));
  if (a && n) env->SetByteArrayRegion(a, 0, static_cast<jsize>(n), static_cast<const jbyte*>(p));
  return a;
}

// A string the C API returned, handed to Java as bytes and freed.
jbyteArray TakeString(JNIEnv* env, char* s, size_t n) {
  jbyteArray a = NewBytes(env, s, n);
  weft_string_free(s);
  return a;
}

void ThrowStatus(JNIEnv* env, weft_status st) {
  size_t len = 0;
  char* msg = weft_thread_errmsg(&len);
  jbyteArray m = msg ? TakeString(env, msg, len) : nullptr;
  if (env->ExceptionCheck()) return;
  auto ex = static_cast<jthrowable>(
      env->NewObject(g.exception, g.exception_ctor, static_cast<jint>(st), m));
  if (ex) env->Throw(ex);
}

// true when st is WEFT_OK; otherwise throws and returns false.
bool Ok(JNIEnv* env, weft_status st) {
  if (st == WEFT_OK) return true;
  ThrowStatus(env, st);
  return false;
}

weft_value In(jint type, jlong i, jdouble d, const Bytes& data) {
  weft_value v{};
  v.type = type;
  v.boolean = i != 0;
  v.integer = i;
  v.real = d;
  v.data = data.data();
  v.len = data.size();
  return v;
}

jobject ValueOut(JNIEnv* env, const weft_value& v) {
  jbyteArray data = nullptr;
  if (v.type == WEFT_STRING || v.type == WEFT_BYTES) {
    data = NewBytes(env, v.data, v.len);
    if (!data) return nullptr;
  }
  return env->NewObject(g.value, g.value_ctor, static_cast<jint>(v.type),
                        static_cast<jboolean>(v.boolean != 0), static_cast<jlong>(v.integer),
                        static_cast<jdouble>(v.real), data, static_cast<jlong>(v.object.node),
                        static_cast<jlong>(v.object.seq), static_cast<jlong>(v.time_ms),
                        static_cast<jint>(v.time_logical));
}

// A Java array of n elements of class cls, element i made by make(i) (a new local reference,
// or nullptr after a failure, with an exception pending: then the result is nullptr).
template <typename Make>
jobjectArray ArrayOf(JNIEnv* env, jclass cls, size_t n, Make make) {
  jobjectArray out = env->NewObjectArray(static_cast<jsize>(n), cls, nullptr);
  for (size_t i = 0; out && i < n; i++) {
    jobject o = make(i);
    if (!o) return nullptr;
    env->SetObjectArrayElement(out, static_cast<jsize>(i), o);
    env->DeleteLocalRef(o);
  }
  return out;
}

jobjectArray ValuesOut(JNIEnv* env, const weft_values* list) {
  return ArrayOf(env, g.value, weft_values_count(list), [&](size_t i) -> jobject {
    weft_value v;
    return Ok(env, weft_values_get(list, i, &v)) ? ValueOut(env, v) : nullptr;
  });
}

jobjectArray StringsOut(JNIEnv* env, weft_strings* list) {
  jobjectArray out = ArrayOf(env, g.bytes, weft_strings_count(list), [&](size_t i) -> jobject {
    size_t len = 0;
    const char* s = weft_strings_get(list, i, &len);
    return NewBytes(env, s, len);
  });
  weft_strings_free(list);
  return out;
}

jlongArray Longs(JNIEnv* env, std::initializer_list<jlong> v) {
  jlongArray a = env->NewLongArray(static_cast<jsize>(v.size()));
  if (a) env->SetLongArrayRegion(a, 0, static_cast<jsize>(v.size()), v.begin());
  return a;
}

jobject PatchOut(JNIEnv* env, const weft_patch& p) {
  jbyteArray key = p.key ? NewBytes(env, p.key, p.key_len) : nullptr;
  jbyteArray text = p.text ? NewBytes(env, p.text, p.text_len) : nullptr;
  jobject element = ValueOut(env, p.element);
  if (env->ExceptionCheck()) return nullptr;
  return env->NewObject(g.patch, g.patch_ctor, static_cast<jint>(p.type),
                        static_cast<jlong>(p.object.node), static_cast<jlong>(p.object.seq), key,
                        static_cast<jlong>(p.siblings), static_cast<jlong>(p.delta), element,
                        static_cast<jlong>(p.index), static_cast<jlong>(p.length), text);
}

// Patches from a list of count items, fetched by get(i, &patch).
template <typename Get>
jobjectArray PatchesOut(JNIEnv* env, size_t count, Get get) {
  return ArrayOf(env, g.patch, count, [&](size_t i) -> jobject {
    weft_patch p;
    return get(i, &p) ? PatchOut(env, p) : nullptr;
  });
}

jobject SummaryOut(JNIEnv* env, const weft_sync_summary& s) {
  return env->NewObject(g.summary, g.summary_ctor, static_cast<jlong>(s.changes_sent),
                        static_cast<jlong>(s.changes_received), static_cast<jlong>(s.documents));
}

// --- Callbacks -------------------------------------------------------------------------------

// A body run on the calling thread (transaction or read): env and the Java Body object.
struct BodyCall {
  JNIEnv* env;
  jobject body;
};

weft_status TxnBody(weft_txn* txn, void* user) {
  auto* c = static_cast<BodyCall*>(user);
  jint st = c->env->CallIntMethod(c->body, g.body_run, Handle(txn));
  // A pending exception (the Java side catches the app's) stays pending for the caller.
  if (c->env->ExceptionCheck()) return WEFT_ABORTED;
  return static_cast<weft_status>(st);
}

void ViewBody(const weft_view* view, void* user) {
  auto* c = static_cast<BodyCall*>(user);
  c->env->CallIntMethod(c->body, g.body_run, Handle(view));
}

void OnChange(const weft_change_event* e, void* user) {
  JNIEnv* env = CallbackEnv();
  CallbackFrame frame(env);
  if (!frame.ok()) return;
  jbyteArray doc = NewBytes(env, e->doc, e->doc_len);
  jobjectArray patches = PatchesOut(env, e->patch_count, [&](size_t i, weft_patch* p) {
    *p = e->patches[i];
    return true;
  });
  if (!doc || !patches) return;
  jobject event = env->NewObject(g.event, g.event_ctor, doc, static_cast<jboolean>(e->local != 0),
                                 static_cast<jlong>(e->change.node),
                                 static_cast<jlong>(e->change.seq), patches);
  if (event) env->CallVoidMethod(static_cast<jobject>(user), g.event_sink, event);
}

// The bytes of a resolver's choice, kept until the C API copies them (right after the callback
// returns, on this thread).
thread_local std::string t_chosen;

int OnConflict(const weft_conflict* c, weft_value* chosen, void* user) {
  JNIEnv* env = CallbackEnv();
  CallbackFrame frame(env);
  if (!frame.ok()) return 0;
  jbyteArray doc = NewBytes(env, c->doc, c->doc_len);
  jbyteArray key = NewBytes(env, c->key, c->key_len);
  jobjectArray sibs = ValuesOut(env, c->siblings);
  if (!doc || !key || !sibs) return 0;
  jobject v = env->CallObjectMethod(static_cast<jobject>(user), g.resolver_sink, doc,
                                    static_cast<jlong>(c->map.node), static_cast<jlong>(c->map.seq),
                                    key, sibs);
  if (env->ExceptionCheck() || !v) return 0;
  // Value's accessors do not throw; each call is still checked, as JNI requires.
  jint type = env->CallIntMethod(v, g.value_type);
  if (env->ExceptionCheck()) return 0;
  jlong i = env->CallLongMethod(v, g.value_int);
  if (env->ExceptionCheck()) return 0;
  jdouble d = env->CallDoubleMethod(v, g.value_real);
  if (env->ExceptionCheck()) return 0;
  auto data = static_cast<jbyteArray>(env->CallObjectMethod(v, g.value_data));
  if (env->ExceptionCheck()) return 0;
  Bytes b(env, data);
  t_chosen.assign(b.data() ? b.data() : "", b.size());
  *chosen = In(type, i, d, b);
  chosen->data = b.data() ? t_chosen.data() : nullptr;
  return 1;
}

void OnPresence(const char* doc, size_t doc_len, uint64_t node, const void* payload,
                size_t payload_len, void* user) {
  JNIEnv* env = CallbackEnv();
  CallbackFrame frame(env);
  if (!frame.ok()) return;
  jbyteArray d = NewBytes(env, doc, doc_len);
  jbyteArray p = NewBytes(env, payload, payload_len);
  if (!d || !p) return;
  env->CallVoidMethod(static_cast<jobject>(user), g.presence_sink, d, static_cast<jlong>(node), p);
}

// A global reference for a callback's user pointer (0 for a null object).
jlong GlobalRef(JNIEnv* env, jobject o) {
  return o ? Handle(env->NewGlobalRef(o)) : 0;
}

void DeleteGlobalRef(JNIEnv* env, jlong ref) {
  if (ref) env->DeleteGlobalRef(Ptr<_jobject>(ref));
}

bool Find(JNIEnv* env, jclass* out, const char* name) {
  jclass c = env->FindClass(name);
  if (!c) return false;
  *out = static_cast<jclass>(env->NewGlobalRef(c));
  env->DeleteLocalRef(c);
  return *out != nullptr;
}

jmethodID Method(JNIEnv* env, const char* cls, const char* name, const char* sig) {
  jclass c = env->FindClass(cls);
  if (!c) return nullptr;
  jmethodID m = env->GetMethodID(c, name, sig);
  env->DeleteLocalRef(c);
  return m;
}

}  // namespace

#define WEFT_JNI(ret, name) extern "C" JNIEXPORT ret JNICALL Java_dev_weft_NativeApi_##name

extern "C" JNIEXPORT jint JNICALL JNI_OnLoad(JavaVM* vm, void*) {
  g_vm = vm;
  JNIEnv* env = nullptr;
  if (vm->GetEnv(reinterpret_cast<void**>(&env), JNI_VERSION_1_6) != JNI_OK) return JNI_ERR;
  bool ok =
      Find(env, &g.exception, "dev/weft/WeftException") && Find(env, &g.value, "dev/weft/Value") &&
      Find(env, &g.patch, "dev/weft/Patch") && Find(env, &g.event, "dev/weft/ChangeEvent") &&
      Find(env, &g.commit, "dev/weft/CommitInfo") &&
      Find(env, &g.history, "dev/weft/HistoryEntry") &&
      Find(env, &g.summary, "dev/weft/SyncSummary") && Find(env, &g.peer, "dev/weft/PeerStatus") &&
      Find(env, &g.docstat, "dev/weft/DocumentSyncStatus") && Find(env, &g.bytes, "[B");
  if (!ok) return JNI_ERR;
  g.exception_ctor = env->GetMethodID(g.exception, "<init>", "(I[B)V");
  g.value_ctor = env->GetMethodID(g.value, "<init>", "(IZJD[BJJJI)V");
  g.value_type = env->GetMethodID(g.value, "typeCode", "()I");
  g.value_int = env->GetMethodID(g.value, "integerBits", "()J");
  g.value_real = env->GetMethodID(g.value, "real", "()D");
  g.value_data = env->GetMethodID(g.value, "data", "()[B");
  g.patch_ctor = env->GetMethodID(g.patch, "<init>", "(IJJ[BJJLdev/weft/Value;JJ[B)V");
  g.event_ctor = env->GetMethodID(g.event, "<init>", "([BZJJ[Ldev/weft/Patch;)V");
  g.commit_ctor = env->GetMethodID(g.commit, "<init>", "(ZJJ[B)V");
  g.history_ctor = env->GetMethodID(g.history, "<init>", "(JJJJJJ[B)V");
  g.summary_ctor = env->GetMethodID(g.summary, "<init>", "(JJJ)V");
  g.peer_ctor = env->GetMethodID(g.peer, "<init>", "([BIZJZ[BJJJJ[Ldev/weft/DocumentSyncStatus;)V");
  g.docstat_ctor = env->GetMethodID(g.docstat, "<init>", "([BZJJJJJJJ)V");
  g.body_run = Method(env, "dev/weft/NativeApi$Body", "run", "(J)I");
  g.event_sink =
      Method(env, "dev/weft/NativeApi$EventSink", "onEvent", "(Ldev/weft/ChangeEvent;)V");
  g.resolver_sink = Method(env, "dev/weft/NativeApi$ResolverSink", "resolve",
                           "([BJJ[B[Ldev/weft/Value;)Ldev/weft/Value;");
  g.presence_sink = Method(env, "dev/weft/NativeApi$PresenceSink", "onPresence", "([BJ[B)V");
  if (env->ExceptionCheck()) return JNI_ERR;
  return JNI_VERSION_1_6;
}

// --- Library ---------------------------------------------------------------------------------

WEFT_JNI(jstring, version)(JNIEnv* env, jclass) {
  return env->NewStringUTF(weft_version());
}

WEFT_JNI(jstring, statusName)(JNIEnv* env, jclass, jint code) {
  return env->NewStringUTF(weft_status_name(code));
}

WEFT_JNI(void, deleteRef)(JNIEnv* env, jclass, jlong ref) {
  DeleteGlobalRef(env, ref);
}

// --- Replica ---------------------------------------------------------------------------------

WEFT_JNI(jlong, open)
(JNIEnv* env, jclass, jbyteArray path, jboolean with_options, jboolean full, jint snapshot_changes,
 jint snapshot_ops, jboolean public_documents, jboolean create, jboolean drift_check,
 jlong max_drift_ms) {
  Bytes p(env, path);
  weft_options* o = nullptr;
  if (with_options) {
    o = weft_options_create();
    weft_status st = o ? WEFT_OK : WEFT_INTERNAL;
    if (st == WEFT_OK) st = weft_options_set_durability(o, full ? 1 : 0);
    if (st == WEFT_OK && snapshot_changes >= 0) {
      st = weft_options_set_snapshot_every(o, static_cast<uint32_t>(snapshot_changes),
                                           static_cast<uint32_t>(snapshot_ops));
    }
    if (st == WEFT_OK) st = weft_options_set_public_documents(o, public_documents ? 1 : 0);
    if (st == WEFT_OK) st = weft_options_set_create_if_missing(o, create ? 1 : 0);
    if (st == WEFT_OK) {
      st =
          weft_options_set_drift_check(o, drift_check ? 1 : 0, static_cast<uint64_t>(max_drift_ms));
    }
    if (!Ok(env, st)) {
      weft_options_free(o);
      return 0;
    }
  }
  weft_replica* r = nullptr;
  weft_status st = weft_open(p.data(), p.size(), o, &r);
  weft_options_free(o);
  return Ok(env, st) ? Handle(r) : 0;
}

WEFT_JNI(void, close)(JNIEnv* env, jclass, jlong r) {
  Ok(env, weft_close(Ptr<weft_replica>(r)));
}

WEFT_JNI(jlong, nodeId)(JNIEnv* env, jclass, jlong r) {
  uint64_t id = 0;
  Ok(env, weft_replica_node_id(Ptr<weft_replica>(r), &id));
  return static_cast<jlong>(id);
}

WEFT_JNI(jlong, actorId)(JNIEnv* env, jclass, jlong r) {
  uint64_t id = 0;
  Ok(env, weft_replica_actor_id(Ptr<weft_replica>(r), &id));
  return static_cast<jlong>(id);
}

WEFT_JNI(jbyteArray, publicKey)(JNIEnv* env, jclass, jlong r) {
  uint8_t key[32];
  if (!Ok(env, weft_replica_public_key(Ptr<weft_replica>(r), key))) return nullptr;
  return NewBytes(env, key, sizeof key);
}

WEFT_JNI(void, docCreate)(JNIEnv* env, jclass, jlong r, jbyteArray doc) {
  Bytes d(env, doc);
  Ok(env, weft_doc_create(Ptr<weft_replica>(r), d.data(), d.size()));
}

WEFT_JNI(jboolean, docExists)(JNIEnv* env, jclass, jlong r, jbyteArray doc) {
  Bytes d(env, doc);
  int exists = 0;
  Ok(env, weft_doc_exists(Ptr<weft_replica>(r), d.data(), d.size(), &exists));
  return exists != 0;
}

WEFT_JNI(void, docDelete)(JNIEnv* env, jclass, jlong r, jbyteArray doc) {
  Bytes d(env, doc);
  Ok(env, weft_doc_delete(Ptr<weft_replica>(r), d.data(), d.size()));
}

WEFT_JNI(jobjectArray, docList)(JNIEnv* env, jclass, jlong r) {
  weft_strings* list = nullptr;
  if (!Ok(env, weft_doc_list(Ptr<weft_replica>(r), &list))) return nullptr;
  return StringsOut(env, list);
}

WEFT_JNI(void, docSnapshot)(JNIEnv* env, jclass, jlong r, jbyteArray doc) {
  Bytes d(env, doc);
  Ok(env, weft_doc_snapshot(Ptr<weft_replica>(r), d.data(), d.size()));
}

// --- Transactions and reads ------------------------------------------------------------------

WEFT_JNI(jobject, transact)(JNIEnv* env, jclass, jlong r, jbyteArray doc, jobject body) {
  Bytes d(env, doc);
  BodyCall call{env, body};
  weft_commit_info info{};
  weft_status st = weft_transact(Ptr<weft_replica>(r), d.data(), d.size(), TxnBody, &call, &info);
  if (env->ExceptionCheck()) return nullptr;
  if (!Ok(env, st)) return nullptr;
  jbyteArray token = NewBytes(env, info.version_token, info.version_token_len);
  jobject out =
      token ? env->NewObject(g.commit, g.commit_ctor, static_cast<jboolean>(info.changed != 0),
                             static_cast<jlong>(info.change.node),
                             static_cast<jlong>(info.change.seq), token)
            : nullptr;
  weft_commit_info_release(&info);
  return out;
}

WEFT_JNI(void, read)(JNIEnv* env, jclass, jlong r, jbyteArray doc, jobject body) {
  Bytes d(env, doc);
  BodyCall call{env, body};
  weft_status st = weft_read(Ptr<weft_replica>(r), d.data(), d.size(), ViewBody, &call);
  if (!env->ExceptionCheck()) Ok(env, st);
}

WEFT_JNI(void, readAt)
(JNIEnv* env, jclass, jlong r, jbyteArray doc, jbyteArray token, jobject body) {
  Bytes d(env, doc), t(env, token);
  BodyCall call{env, body};
  weft_status st =
      weft_read_at(Ptr<weft_replica>(r), d.data(), d.size(), t.data(), t.size(), ViewBody, &call);
  if (!env->ExceptionCheck()) Ok(env, st);
}

WEFT_JNI(jlong, txnView)(JNIEnv*, jclass, jlong t) {
  return Handle(weft_txn_view(Ptr<weft_txn>(t)));
}

// --- Reads through a view --------------------------------------------------------------------

#define VIEW Ptr<const weft_view>(v)

WEFT_JNI(jbyteArray, viewToJson)(JNIEnv* env, jclass, jlong v) {
  char* s = nullptr;
  size_t n = 0;
  if (!Ok(env, weft_view_to_json(VIEW, &s, &n))) return nullptr;
  return TakeString(env, s, n);
}

WEFT_JNI(jint, viewKind)(JNIEnv* env, jclass, jlong v, jlong node, jlong seq) {
  int32_t kind = 0;
  Ok(env, weft_view_kind(VIEW, Obj(node, seq), &kind));
  return kind;
}

WEFT_JNI(jobjectArray, viewMapKeys)(JNIEnv* env, jclass, jlong v, jlong node, jlong seq) {
  weft_strings* list = nullptr;
  if (!Ok(env, weft_view_map_keys(VIEW, Obj(node, seq), &list))) return nullptr;
  return StringsOut(env, list);
}

WEFT_JNI(jlong, viewMapGet)(JNIEnv* env, jclass, jlong v, jlong node, jlong seq, jbyteArray key) {
  Bytes k(env, key);
  weft_values* list = nullptr;
  Ok(env, weft_view_map_get(VIEW, Obj(node, seq), k.data(), k.size(), &list));
  return Handle(list);
}

WEFT_JNI(jlongArray, viewMapLookup)
(JNIEnv* env, jclass, jlong v, jlong node, jlong seq, jbyteArray key, jint kind) {
  Bytes k(env, key);
  weft_obj o{};
  if (!Ok(env, weft_view_map_lookup(VIEW, Obj(node, seq), k.data(), k.size(), kind, &o))) {
    return nullptr;
  }
  return Longs(env, {static_cast<jlong>(o.node), static_cast<jlong>(o.seq)});
}

// The views that return a weft_values list, as a handle for values()/valuesFree().
#define WEFT_VIEW_LIST(name, fn)                                                \
  WEFT_JNI(jlong, name)(JNIEnv * env, jclass, jlong v, jlong node, jlong seq) { \
    weft_values* list = nullptr;                                                \
    Ok(env, fn(VIEW, Obj(node, seq), &list));                                   \
    return Handle(list);                                                        \
  }
WEFT_VIEW_LIST(viewRegisterGet, weft_view_register_get)
WEFT_VIEW_LIST(viewLwwGet, weft_view_lww_get)
WEFT_VIEW_LIST(viewSetElements, weft_view_set_elements)
WEFT_VIEW_LIST(viewListValues, weft_view_list_values)

WEFT_JNI(jlong, viewCounterGet)(JNIEnv* env, jclass, jlong v, jlong node, jlong seq) {
  int64_t n = 0;
  Ok(env, weft_view_counter_get(VIEW, Obj(node, seq), &n));
  return n;
}

WEFT_JNI(jboolean, viewSetContains)
(JNIEnv* env, jclass, jlong v, jlong node, jlong seq, jint type, jlong i, jdouble d,
 jbyteArray data) {
  Bytes b(env, data);
  weft_value e = In(type, i, d, b);
  int in = 0;
  Ok(env, weft_view_set_contains(VIEW, Obj(node, seq), &e, &in));
  return in != 0;
}

WEFT_JNI(jbyteArray, viewTextRead)(JNIEnv* env, jclass, jlong v, jlong node, jlong seq) {
  char* s = nullptr;
  size_t n = 0;
  if (!Ok(env, weft_view_text_read(VIEW, Obj(node, seq), &s, &n))) return nullptr;
  return TakeString(env, s, n);
}

WEFT_JNI(jlong, viewSeqSize)(JNIEnv* env, jclass, jlong v, jlong node, jlong seq) {
  size_t n = 0;
  Ok(env, weft_view_seq_size(VIEW, Obj(node, seq), &n));
  return static_cast<jlong>(n);
}

WEFT_JNI(jlongArray, viewAnchorAt)
(JNIEnv* env, jclass, jlong v, jlong node, jlong seq, jlong index, jint bias) {
  weft_anchor a{};
  if (!Ok(env, weft_view_anchor_at(VIEW, Obj(node, seq), static_cast<size_t>(index), bias, &a))) {
    return nullptr;
  }
  return Longs(env, {static_cast<jlong>(a.item.node), static_cast<jlong>(a.item.seq), a.bias});
}

WEFT_JNI(jlong, viewAnchorIndex)
(JNIEnv* env, jclass, jlong v, jlong node, jlong seq, jlong item_node, jlong item_seq, jint bias) {
  weft_anchor a{Obj(item_node, item_seq), bias};
  size_t index = 0;
  Ok(env, weft_view_anchor_index(VIEW, Obj(node, seq), &a, &index));
  return static_cast<jlong>(index);
}

WEFT_JNI(jobjectArray, values)(JNIEnv* env, jclass, jlong list) {
  return ValuesOut(env, Ptr<const weft_values>(list));
}

WEFT_JNI(void, valuesFree)(JNIEnv*, jclass, jlong list) {
  weft_values_free(Ptr<weft_values>(list));
}

// --- Writes ----------------------------------------------------------------------------------

#define TXN Ptr<weft_txn>(t)

WEFT_JNI(void, txnMapPut)
(JNIEnv* env, jclass, jlong t, jlong node, jlong seq, jbyteArray key, jint type, jlong i, jdouble d,
 jbyteArray data, jlong read) {
  Bytes k(env, key), b(env, data);
  weft_value v = In(type, i, d, b);
  Ok(env, read ? weft_txn_map_put_after_read(TXN, Obj(node, seq), k.data(), k.size(), &v,
                                             Ptr<const weft_values>(read))
               : weft_txn_map_put(TXN, Obj(node, seq), k.data(), k.size(), &v));
}

WEFT_JNI(void, txnMapDelete)(JNIEnv* env, jclass, jlong t, jlong node, jlong seq, jbyteArray key) {
  Bytes k(env, key);
  Ok(env, weft_txn_map_delete(TXN, Obj(node, seq), k.data(), k.size()));
}

WEFT_JNI(jlongArray, txnMapObject)
(JNIEnv* env, jclass, jlong t, jlong node, jlong seq, jbyteArray key, jint kind) {
  Bytes k(env, key);
  weft_obj o{};
  if (!Ok(env, weft_txn_map_object(TXN, Obj(node, seq), k.data(), k.size(), kind, &o))) {
    return nullptr;
  }
  return Longs(env, {static_cast<jlong>(o.node), static_cast<jlong>(o.seq)});
}

WEFT_JNI(void, txnRegisterSet)
(JNIEnv* env, jclass, jlong t, jlong node, jlong seq, jint type, jlong i, jdouble d,
 jbyteArray data, jlong read) {
  Bytes b(env, data);
  weft_value v = In(type, i, d, b);
  Ok(env,
     read ? weft_txn_register_set_after_read(TXN, Obj(node, seq), &v, Ptr<const weft_values>(read))
          : weft_txn_register_set(TXN, Obj(node, seq), &v));
}

WEFT_JNI(void, txnCounterAdd)(JNIEnv* env, jclass, jlong t, jlong node, jlong seq, jlong delta) {
  Ok(env, weft_txn_counter_add(TXN, Obj(node, seq), delta));
}

WEFT_JNI(void, txnSetAdd)
(JNIEnv* env, jclass, jlong t, jlong node, jlong seq, jint type, jlong i, jdouble d,
 jbyteArray data, jboolean remove) {
  Bytes b(env, data);
  weft_value v = In(type, i, d, b);
  Ok(env, remove ? weft_txn_set_remove(TXN, Obj(node, seq), &v)
                 : weft_txn_set_add(TXN, Obj(node, seq), &v));
}

WEFT_JNI(void, txnTextInsert)
(JNIEnv* env, jclass, jlong t, jlong node, jlong seq, jlong pos, jbyteArray text) {
  Bytes s(env, text);
  Ok(env, weft_txn_text_insert(TXN, Obj(node, seq), static_cast<size_t>(pos), s.data(), s.size()));
}

WEFT_JNI(void, txnSeqDelete)
(JNIEnv* env, jclass, jlong t, jlong node, jlong seq, jlong pos, jlong count) {
  Ok(env, weft_txn_seq_delete(TXN, Obj(node, seq), static_cast<size_t>(pos),
                              static_cast<size_t>(count)));
}

WEFT_JNI(void, txnListInsert)
(JNIEnv* env, jclass, jlong t, jlong node, jlong seq, jlong pos, jintArray types, jlongArray ints,
 jdoubleArray reals, jobjectArray datas) {
  jsize n = env->GetArrayLength(types);
  std::vector<jint> ty(static_cast<size_t>(n));
  std::vector<jlong> in(static_cast<size_t>(n));
  std::vector<jdouble> re(static_cast<size_t>(n));
  env->GetIntArrayRegion(types, 0, n, ty.data());
  env->GetLongArrayRegion(ints, 0, n, in.data());
  env->GetDoubleArrayRegion(reals, 0, n, re.data());
  std::vector<Bytes> data;
  std::vector<weft_value> values;
  data.reserve(static_cast<size_t>(n));
  for (jsize k = 0; k < n; k++) {
    auto a = static_cast<jbyteArray>(env->GetObjectArrayElement(datas, k));
    data.emplace_back(env, a);
    env->DeleteLocalRef(a);
    values.push_back(In(ty[k], in[k], re[k], data.back()));
  }
  Ok(env, weft_txn_list_insert(TXN, Obj(node, seq), static_cast<size_t>(pos), values.data(),
                               values.size()));
}

WEFT_JNI(jlongArray, txnListInsertObject)
(JNIEnv* env, jclass, jlong t, jlong node, jlong seq, jlong pos, jint kind) {
  weft_obj o{};
  if (!Ok(env,
          weft_txn_list_insert_object(TXN, Obj(node, seq), static_cast<size_t>(pos), kind, &o))) {
    return nullptr;
  }
  return Longs(env, {static_cast<jlong>(o.node), static_cast<jlong>(o.seq)});
}

// --- Change feed and resolvers ---------------------------------------------------------------

WEFT_JNI(jlongArray, subscribe)(JNIEnv* env, jclass, jlong r, jbyteArray doc, jobject sink) {
  Bytes d(env, doc);
  jlong ref = GlobalRef(env, sink);
  weft_subscription* sub = nullptr;
  if (!Ok(env, weft_subscribe(Ptr<weft_replica>(r), d.data(), d.size(), OnChange,
                              Ptr<_jobject>(ref), &sub))) {
    DeleteGlobalRef(env, ref);
    return nullptr;
  }
  jlongArray out = Longs(env, {Handle(sub), ref});
  if (!out) {
    weft_unsubscribe(sub);
    DeleteGlobalRef(env, ref);
  }
  return out;
}

WEFT_JNI(void, unsubscribe)(JNIEnv* env, jclass, jlong sub, jlong ref) {
  weft_unsubscribe(Ptr<weft_subscription>(sub));
  DeleteGlobalRef(env, ref);
}

WEFT_JNI(jlong, setResolver)(JNIEnv* env, jclass, jlong r, jbyteArray doc, jobject sink) {
  Bytes d(env, doc);
  jlong ref = GlobalRef(env, sink);
  if (!Ok(env, weft_set_conflict_resolver(Ptr<weft_replica>(r), d.data(), d.size(),
                                          sink ? OnConflict : nullptr, Ptr<_jobject>(ref)))) {
    DeleteGlobalRef(env, ref);
    return 0;
  }
  return ref;
}

// --- Access lists ----------------------------------------------------------------------------

WEFT_JNI(void, docGrant)(JNIEnv* env, jclass, jlong r, jbyteArray doc, jbyteArray key, jint role) {
  Bytes d(env, doc), k(env, key);
  Ok(env, weft_doc_grant(Ptr<weft_replica>(r), d.data(), d.size(), k.u8(), role));
}

WEFT_JNI(void, docRevoke)(JNIEnv* env, jclass, jlong r, jbyteArray doc, jbyteArray key) {
  Bytes d(env, doc), k(env, key);
  Ok(env, weft_doc_revoke(Ptr<weft_replica>(r), d.data(), d.size(), k.u8()));
}

WEFT_JNI(jbyteArray, docMembers)(JNIEnv* env, jclass, jlong r, jbyteArray doc) {
  Bytes d(env, doc);
  char* s = nullptr;
  size_t n = 0;
  if (!Ok(env, weft_doc_members(Ptr<weft_replica>(r), d.data(), d.size(), &s, &n))) {
    return nullptr;
  }
  return TakeString(env, s, n);
}

WEFT_JNI(jintArray, docRole)(JNIEnv* env, jclass, jlong r, jbyteArray doc, jbyteArray key) {
  Bytes d(env, doc), k(env, key);
  int role = 0, owned = 0;
  if (!Ok(env, weft_doc_role(Ptr<weft_replica>(r), d.data(), d.size(), k.u8(), &role, &owned))) {
    return nullptr;
  }
  jint out[2] = {role, owned};
  jintArray a = env->NewIntArray(2);
  if (a) env->SetIntArrayRegion(a, 0, 2, out);
  return a;
}

// --- Causal tokens, time travel, raw changes -------------------------------------------------

WEFT_JNI(jbyteArray, causalToken)(JNIEnv* env, jclass, jlong r, jbyteArray doc) {
  Bytes d(env, doc);
  char* s = nullptr;
  size_t n = 0;
  if (!Ok(env, weft_causal_token(Ptr<weft_replica>(r), d.data(), d.size(), &s, &n))) {
    return nullptr;
  }
  return TakeString(env, s, n);
}

WEFT_JNI(jboolean, tokenSatisfied)(JNIEnv* env, jclass, jlong r, jbyteArray token) {
  Bytes t(env, token);
  int out = 0;
  Ok(env, weft_token_satisfied(Ptr<weft_replica>(r), t.data(), t.size(), &out));
  return out != 0;
}

WEFT_JNI(void, waitForToken)(JNIEnv* env, jclass, jlong r, jbyteArray token, jlong timeout_ms) {
  Bytes t(env, token);
  Ok(env, weft_wait_for_token(Ptr<weft_replica>(r), t.data(), t.size(),
                              static_cast<uint64_t>(timeout_ms)));
}

WEFT_JNI(jobjectArray, diff)
(JNIEnv* env, jclass, jlong r, jbyteArray doc, jbyteArray from, jbyteArray to) {
  Bytes d(env, doc), f(env, from), t(env, to);
  weft_patches* p = nullptr;
  if (!Ok(env, weft_diff(Ptr<weft_replica>(r), d.data(), d.size(), f.data(), f.size(), t.data(),
                         t.size(), &p))) {
    return nullptr;
  }
  jobjectArray out = PatchesOut(env, weft_patches_count(p), [&](size_t i, weft_patch* patch) {
    return Ok(env, weft_patches_get(p, i, patch));
  });
  weft_patches_free(p);
  return out;
}

WEFT_JNI(jobjectArray, history)(JNIEnv* env, jclass, jlong r, jbyteArray doc) {
  Bytes d(env, doc);
  weft_history* h = nullptr;
  if (!Ok(env, weft_doc_history(Ptr<weft_replica>(r), d.data(), d.size(), &h))) return nullptr;
  jobjectArray out = ArrayOf(env, g.history, weft_history_count(h), [&](size_t i) -> jobject {
    weft_history_entry e;
    if (!Ok(env, weft_history_get(h, i, &e))) return nullptr;
    jbyteArray token = NewBytes(env, e.token, e.token_len);
    if (!token) return nullptr;
    jobject o = env->NewObject(g.history, g.history_ctor, static_cast<jlong>(e.change.node),
                               static_cast<jlong>(e.change.seq), static_cast<jlong>(e.end_seq),
                               static_cast<jlong>(e.lamport), static_cast<jlong>(e.time_ms),
                               static_cast<jlong>(e.ops), token);
    env->DeleteLocalRef(token);
    return o;
  });
  weft_history_free(h);
  return out;
}

WEFT_JNI(jobjectArray, changesSince)
(JNIEnv* env, jclass, jlong r, jbyteArray doc, jbyteArray token) {
  Bytes d(env, doc), t(env, token);
  weft_blobs* b = nullptr;
  if (!Ok(env,
          weft_changes_since(Ptr<weft_replica>(r), d.data(), d.size(), t.data(), t.size(), &b))) {
    return nullptr;
  }
  jobjectArray out = ArrayOf(env, g.bytes, weft_blobs_count(b), [&](size_t i) -> jobject {
    size_t len = 0;
    const uint8_t* p = weft_blobs_get(b, i, &len);
    return NewBytes(env, p, len);
  });
  weft_blobs_free(b);
  return out;
}

WEFT_JNI(jlong, applyChanges)(JNIEnv* env, jclass, jlong r, jbyteArray doc, jobjectArray blobs) {
  Bytes d(env, doc);
  jsize n = env->GetArrayLength(blobs);
  std::vector<Bytes> copies;
  copies.reserve(static_cast<size_t>(n));
  std::vector<const uint8_t*> ptrs;
  std::vector<size_t> lens;
  for (jsize i = 0; i < n; i++) {
    auto a = static_cast<jbyteArray>(env->GetObjectArrayElement(blobs, i));
    copies.emplace_back(env, a);
    env->DeleteLocalRef(a);
    ptrs.push_back(copies.back().u8());
    lens.push_back(copies.back().size());
  }
  size_t applied = 0;
  Ok(env, weft_apply_changes(Ptr<weft_replica>(r), d.data(), d.size(), ptrs.data(), lens.data(),
                             ptrs.size(), &applied));
  return static_cast<jlong>(applied);
}

// --- Sync ------------------------------------------------------------------------------------

WEFT_JNI(jlong, syncCreate)
(JNIEnv* env, jclass, jlong r, jobjectArray docs, jlong backoff_initial, jlong backoff_max,
 jlong seed, jbyteArray token, jbyteArray relay_key, jbyteArray ca_file) {
  weft_sync_options* o = weft_sync_options_create();
  weft_status st = o ? WEFT_OK : WEFT_INTERNAL;
  jsize n = env->GetArrayLength(docs);
  for (jsize i = 0; st == WEFT_OK && i < n; i++) {
    auto a = static_cast<jbyteArray>(env->GetObjectArrayElement(docs, i));
    Bytes d(env, a);
    env->DeleteLocalRef(a);
    st = weft_sync_options_add_document(o, d.data(), d.size());
  }
  if (st == WEFT_OK && backoff_initial > 0) {
    st = weft_sync_options_set_backoff(o, static_cast<uint64_t>(backoff_initial),
                                       static_cast<uint64_t>(backoff_max));
  }
  if (st == WEFT_OK && seed != 0) st = weft_sync_options_set_seed(o, static_cast<uint64_t>(seed));
  Bytes t(env, token), k(env, relay_key), ca(env, ca_file);
  if (st == WEFT_OK && t.data()) st = weft_sync_options_set_token(o, t.data(), t.size());
  if (st == WEFT_OK && k.data()) st = weft_sync_options_set_relay_key(o, k.u8());
  if (st == WEFT_OK && ca.data()) st = weft_sync_options_set_ca_file(o, ca.data(), ca.size());
  weft_sync* s = nullptr;
  if (st == WEFT_OK) st = weft_sync_create(Ptr<weft_replica>(r), o, &s);
  weft_sync_options_free(o);
  return Ok(env, st) ? Handle(s) : 0;
}

WEFT_JNI(void, syncFree)(JNIEnv*, jclass, jlong s) {
  weft_sync_free(Ptr<weft_sync>(s));
}

WEFT_JNI(void, syncAddPeer)(JNIEnv* env, jclass, jlong s, jbyteArray url) {
  Bytes u(env, url);
  Ok(env, weft_sync_add_peer(Ptr<weft_sync>(s), u.data(), u.size()));
}

WEFT_JNI(void, syncRemovePeer)(JNIEnv* env, jclass, jlong s, jbyteArray url) {
  Bytes u(env, url);
  Ok(env, weft_sync_remove_peer(Ptr<weft_sync>(s), u.data(), u.size()));
}

WEFT_JNI(jobject, syncWaitUntilSynced)
(JNIEnv* env, jclass, jlong s, jbyteArray url, jlong timeout_ms) {
  Bytes u(env, url);
  weft_sync_summary sum{};
  if (!Ok(env, weft_sync_wait_until_synced(Ptr<weft_sync>(s), u.data(), u.size(),
                                           static_cast<uint64_t>(timeout_ms), &sum))) {
    return nullptr;
  }
  return SummaryOut(env, sum);
}

WEFT_JNI(void, syncWaitForAck)
(JNIEnv* env, jclass, jlong s, jbyteArray doc, jbyteArray token, jlong timeout_ms, jbyteArray url) {
  Bytes d(env, doc), t(env, token), u(env, url);
  Ok(env, weft_sync_wait_for_ack(Ptr<weft_sync>(s), d.data(), d.size(), t.data(), t.size(),
                                 static_cast<uint64_t>(timeout_ms), u.data(), u.size()));
}

WEFT_JNI(jobjectArray, syncPeers)(JNIEnv* env, jclass, jlong s) {
  weft_peers* p = nullptr;
  if (!Ok(env, weft_sync_peers(Ptr<weft_sync>(s), &p))) return nullptr;
  jobjectArray out = ArrayOf(env, g.peer, weft_peers_count(p), [&](size_t i) -> jobject {
    weft_peer_info info;
    if (!Ok(env, weft_peers_get(p, i, &info))) return nullptr;
    jobjectArray docs = ArrayOf(env, g.docstat, info.document_count, [&](size_t j) -> jobject {
      weft_doc_sync_info ds;
      if (!Ok(env, weft_peers_document(p, i, j, &ds))) return nullptr;
      jbyteArray name = NewBytes(env, ds.doc, ds.doc_len);
      if (!name) return nullptr;
      jobject o = env->NewObject(
          g.docstat, g.docstat_ctor, name, static_cast<jboolean>(ds.live != 0),
          static_cast<jlong>(ds.acknowledged_operations),
          static_cast<jlong>(ds.unacknowledged_changes),
          static_cast<jlong>(ds.oldest_unacknowledged_age_ms),
          static_cast<jlong>(ds.behind_operations), static_cast<jlong>(ds.incoming_remaining),
          static_cast<jlong>(ds.changes_sent), static_cast<jlong>(ds.changes_received));
      env->DeleteLocalRef(name);
      return o;
    });
    jbyteArray url = docs ? NewBytes(env, info.url, info.url_len) : nullptr;
    jbyteArray err = url ? NewBytes(env, info.last_error, info.last_error_len) : nullptr;
    jobject o = err ? env->NewObject(g.peer, g.peer_ctor, url, static_cast<jint>(info.state),
                                     static_cast<jboolean>(info.has_peer_node != 0),
                                     static_cast<jlong>(info.peer_node),
                                     static_cast<jboolean>(info.peer_is_relay != 0), err,
                                     static_cast<jlong>(info.failed_attempts),
                                     static_cast<jlong>(info.changes_sent),
                                     static_cast<jlong>(info.changes_received),
                                     static_cast<jlong>(info.duplicates_received), docs)
                    : nullptr;
    env->DeleteLocalRef(docs);
    env->DeleteLocalRef(url);
    env->DeleteLocalRef(err);
    return o;
  });
  weft_peers_free(p);
  return out;
}

WEFT_JNI(void, syncPublishPresence)
(JNIEnv* env, jclass, jlong s, jbyteArray doc, jbyteArray payload) {
  Bytes d(env, doc), p(env, payload);
  Ok(env, weft_sync_publish_presence(Ptr<weft_sync>(s), d.data(), d.size(), p.data(), p.size()));
}

WEFT_JNI(jlong, syncSetPresence)(JNIEnv* env, jclass, jlong s, jobject sink) {
  jlong ref = GlobalRef(env, sink);
  if (!Ok(env, weft_sync_set_presence_callback(Ptr<weft_sync>(s), sink ? OnPresence : nullptr,
                                               Ptr<_jobject>(ref)))) {
    DeleteGlobalRef(env, ref);
    return 0;
  }
  return ref;
}

WEFT_JNI(jbyteArray, issueToken)(JNIEnv* env, jclass, jlong r, jbyteArray device, jlong ttl) {
  Bytes k(env, device);
  char* s = nullptr;
  size_t n = 0;
  if (!Ok(env,
          weft_issue_token(Ptr<weft_replica>(r), k.u8(), static_cast<uint64_t>(ttl), &s, &n))) {
    return nullptr;
  }
  return TakeString(env, s, n);
}

WEFT_JNI(jobject, syncOnce)
(JNIEnv* env, jclass, jlong r, jbyteArray url, jbyteArray doc, jlong timeout_ms) {
  Bytes u(env, url), d(env, doc);
  weft_sync_summary sum{};
  if (!Ok(env, weft_sync_once(Ptr<weft_replica>(r), u.data(), u.size(), d.data(), d.size(),
                              static_cast<uint64_t>(timeout_ms), &sum))) {
    return nullptr;
  }
  return SummaryOut(env, sum);
}
