/* The C API, from C11: every function of weft.h, with its error paths (NULL handles, bad paths,
 * wrong types, bad UTF-8, aborted transactions), and sync through a weft-relay child process that
 * the test starts on a free loopback port and stops. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "weft.h"

static int g_checks = 0;
static pid_t g_relay = 0; /* the weft-relay child, stopped on failure too */

static void die(const char* file, int line, const char* fmt, ...) {
  va_list ap;
  char* msg = weft_thread_errmsg(NULL);
  fprintf(stderr, "%s:%d: FAILED: ", file, line);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n  last error on this thread: %s\n", msg ? msg : "(null)");
  weft_string_free(msg);
  if (g_relay > 0) kill(g_relay, SIGKILL);
  exit(1);
}

#define CHECK(cond)                                    \
  do {                                                 \
    g_checks++;                                        \
    if (!(cond)) die(__FILE__, __LINE__, "%s", #cond); \
  } while (0)
/* A call that must return exactly `want`. */
#define EXPECT(want, call)                                                                       \
  do {                                                                                           \
    weft_status got_ = (call);                                                                   \
    g_checks++;                                                                                  \
    if (got_ != (want))                                                                          \
      die(__FILE__, __LINE__, "%s returned %s (%d), expected %s", #call, weft_status_name(got_), \
          (int)got_, weft_status_name(want));                                                    \
  } while (0)
#define OK(call) EXPECT(WEFT_OK, call)
#define S(lit) lit, (sizeof(lit) - 1)

static const weft_obj kRoot = {0, 0};
static const char kBadUtf8[] = "bad\xff\xfe";
static const char kOverlong[] = "\xc0\xaf";

static char g_dir[256];

static void path_in(char* out, size_t n, const char* name) {
  snprintf(out, n, "%s/%s", g_dir, name);
}

/* Opens `name` with public documents (anyone may write them), or with documents owned by its key
 * (the access-list test). */
static weft_replica* open_replica_with(const char* name, int public_documents) {
  char p[512];
  weft_replica* r = NULL;
  weft_options* o = weft_options_create();
  CHECK(o != NULL);
  OK(weft_options_set_public_documents(o, public_documents));
  path_in(p, sizeof p, name);
  OK(weft_open(p, strlen(p), o, &r));
  weft_options_free(o);
  CHECK(r != NULL);
  return r;
}

static weft_replica* open_replica(const char* name) {
  return open_replica_with(name, 1);
}

/* The message of the last error on this thread must mention `needle`. */
static void expect_thread_msg(const char* needle) {
  size_t len = 0;
  char* m = weft_thread_errmsg(&len);
  CHECK(m != NULL);
  CHECK(strlen(m) == len);
  if (!strstr(m, needle)) die(__FILE__, __LINE__, "message '%s' lacks '%s'", m, needle);
  weft_string_free(m);
}

static char* doc_json(weft_replica* r, const char* doc);

/* ------------------------------------------------------------------ basics */

static void test_basics(void) {
  int c;
  char* m;
  size_t len = 99;
  CHECK(strcmp(weft_version(), "0.1.0") == 0);
  for (c = 0; c <= 16; c++) CHECK(strcmp(weft_status_name(c), "Unknown") != 0);
  CHECK(strcmp(weft_status_name(WEFT_NOT_FOUND), "NotFound") == 0);
  CHECK(strcmp(weft_status_name(17), "Unknown") == 0);
  CHECK(strcmp(weft_status_name(-1), "Unknown") == 0);
  /* The enum's values are fixed. */
  CHECK(WEFT_OK == 0 && WEFT_NOT_FOUND == 1 && WEFT_INVALID_ARGUMENT == 2 && WEFT_CORRUPTION == 3);
  CHECK(WEFT_IO_ERROR == 4 && WEFT_DISCONNECTED == 5 && WEFT_PERMISSION_DENIED == 6);
  CHECK(WEFT_MISSING_DEPENDENCY == 7 && WEFT_OUT_OF_RANGE == 8 && WEFT_TYPE_MISMATCH == 9);
  CHECK(WEFT_UNSUPPORTED_VERSION == 10 && WEFT_CLOCK_DRIFT == 11 && WEFT_HISTORY_TRUNCATED == 12);
  CHECK(WEFT_TIMEOUT == 13 && WEFT_BUSY == 14 && WEFT_ABORTED == 15 && WEFT_INTERNAL == 16);
  m = weft_thread_errmsg(&len);
  CHECK(m != NULL && len == strlen(m));
  weft_string_free(m);
  weft_string_free(NULL);
  weft_strings_free(NULL);
  weft_values_free(NULL);
  weft_blobs_free(NULL);
  weft_peers_free(NULL);
  weft_options_free(NULL);
  weft_sync_options_free(NULL);
  weft_commit_info_release(NULL);
  weft_unsubscribe(NULL);
  weft_sync_free(NULL);
  CHECK(weft_strings_count(NULL) == 0);
  CHECK(weft_strings_get(NULL, 0, NULL) == NULL);
  CHECK(weft_values_count(NULL) == 0);
  CHECK(weft_blobs_count(NULL) == 0);
  CHECK(weft_blobs_get(NULL, 0, NULL) == NULL);
  CHECK(weft_peers_count(NULL) == 0);
  CHECK(weft_txn_view(NULL) == NULL);
  CHECK(weft_replica_errmsg(NULL, NULL) == NULL);
  CHECK(weft_sync_errmsg(NULL, NULL) == NULL);
  {
    weft_value v = weft_null();
    CHECK(v.type == WEFT_NULL);
    v = weft_bool(7);
    CHECK(v.type == WEFT_BOOL && v.boolean == 1);
    v = weft_int(-5);
    CHECK(v.type == WEFT_INT && v.integer == -5);
    v = weft_double(2.5);
    CHECK(v.type == WEFT_DOUBLE && v.real == 2.5);
    v = weft_string(S("hi"));
    CHECK(v.type == WEFT_STRING && v.len == 2);
    v = weft_bytes("\0\1", 2);
    CHECK(v.type == WEFT_BYTES && v.len == 2);
  }
}

/* ------------------------------------------------------------------ open and close */

static void test_open(void) {
  weft_replica* r = NULL;
  weft_options* o = weft_options_create();
  char p[512];
  FILE* f;
  uint64_t node = 0, node2 = 0;
  char* m;

  CHECK(o != NULL);
  OK(weft_options_set_durability(o, 1));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_options_set_durability(o, 2));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_options_set_durability(NULL, 0));
  OK(weft_options_set_snapshot_every(o, 10, 100));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_options_set_snapshot_every(NULL, 1, 1));
  OK(weft_options_set_drift_check(o, 1, 60000));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_options_set_drift_check(NULL, 1, 1));

  /* create_if_missing off: a missing file is an error, and nothing is created. */
  OK(weft_options_set_create_if_missing(o, 0));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_options_set_create_if_missing(NULL, 0));
  path_in(p, sizeof p, "missing.db");
  CHECK(weft_open(p, strlen(p), o, &r) != WEFT_OK);
  CHECK(r == NULL);
  CHECK(access(p, F_OK) != 0);
  OK(weft_options_set_create_if_missing(o, 1));

  /* Bad paths. */
  EXPECT(WEFT_INVALID_ARGUMENT, weft_open(S(""), o, &r));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_open(S(kBadUtf8), o, &r));
  expect_thread_msg("UTF-8");
  EXPECT(WEFT_INVALID_ARGUMENT, weft_open(NULL, 5, o, &r));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_open(S("x.db"), o, NULL));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_open("a\0b", 3, o, &r));
  CHECK(weft_open(S("/nonexistent-dir/sub/x.db"), o, &r) != WEFT_OK);
  CHECK(r == NULL);

  /* A file that is not a Weft database. */
  path_in(p, sizeof p, "garbage.db");
  f = fopen(p, "wb");
  CHECK(f != NULL);
  for (int i = 0; i < 4096; i++) fputc('G', f);
  fclose(f);
  EXPECT(WEFT_CORRUPTION, weft_open(p, strlen(p), o, &r));
  CHECK(r == NULL);
  m = weft_thread_errmsg(NULL);
  CHECK(m != NULL && strlen(m) > 0);
  weft_string_free(m);

  /* A good open, with options; the node ID is stable across reopen. */
  path_in(p, sizeof p, "open.db");
  OK(weft_open(p, strlen(p), o, &r));
  OK(weft_replica_node_id(r, &node));
  CHECK(node != 0);
  EXPECT(WEFT_INVALID_ARGUMENT, weft_replica_node_id(NULL, &node));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_replica_node_id(r, NULL));
  m = weft_replica_errmsg(r, NULL);
  CHECK(m != NULL && m[0] == '\0');
  weft_string_free(m);
  OK(weft_close(r));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_close(NULL));
  OK(weft_open(p, strlen(p), NULL, &r));
  OK(weft_replica_node_id(r, &node2));
  CHECK(node == node2);
  OK(weft_close(r));
  weft_options_free(o);
}

/* ------------------------------------------------------------------ documents */

static void test_documents(void) {
  weft_replica* r = open_replica("docs.db");
  weft_strings* list = NULL;
  int exists = -1;
  size_t len = 0;
  const char* s;
  char* m;

  OK(weft_doc_list(r, &list));
  CHECK(weft_strings_count(list) == 0);
  weft_strings_free(list);

  OK(weft_doc_create(r, S("beta")));
  OK(weft_doc_create(r, S("alpha")));
  OK(weft_doc_create(r, S("alpha"))); /* exists: OK */
  OK(weft_doc_create(r, S("caf\xc3\xa9")));
  OK(weft_doc_exists(r, S("alpha"), &exists));
  CHECK(exists == 1);
  OK(weft_doc_exists(r, S("gamma"), &exists));
  CHECK(exists == 0);
  OK(weft_doc_list(r, &list));
  CHECK(weft_strings_count(list) == 3);
  s = weft_strings_get(list, 0, &len);
  CHECK(s && len == 5 && strcmp(s, "alpha") == 0);
  s = weft_strings_get(list, 2, &len);
  CHECK(s && len == 5 && memcmp(s, "caf\xc3\xa9", 5) == 0);
  CHECK(weft_strings_get(list, 3, &len) == NULL);
  weft_strings_free(list);

  OK(weft_doc_snapshot(r, S("alpha")));
  OK(weft_doc_delete(r, S("beta")));
  EXPECT(WEFT_NOT_FOUND, weft_doc_delete(r, S("beta")));
  m = weft_replica_errmsg(r, &len);
  CHECK(m && len > 0 && strlen(m) == len);
  weft_string_free(m);
  EXPECT(WEFT_NOT_FOUND, weft_doc_snapshot(r, S("beta")));
  OK(weft_doc_exists(r, S("beta"), &exists));
  CHECK(exists == 0);

  /* Bad IDs and NULL handles. */
  EXPECT(WEFT_INVALID_ARGUMENT, weft_doc_create(r, S(kBadUtf8)));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_doc_create(r, S(kOverlong)));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_doc_create(r, S("")));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_doc_create(r, NULL, 3));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_doc_create(NULL, S("x")));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_doc_exists(NULL, S("x"), &exists));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_doc_exists(r, S("x"), NULL));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_doc_exists(r, S(kBadUtf8), &exists));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_doc_delete(NULL, S("x")));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_doc_delete(r, S(kBadUtf8)));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_doc_list(NULL, &list));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_doc_list(r, NULL));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_doc_snapshot(NULL, S("x")));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_doc_snapshot(r, S(kBadUtf8)));
  OK(weft_close(r));
}

/* ------------------------------------------------------------------ transactions */

struct ids {
  weft_obj map, reg, lww, counter, set, list, text, listed_map;
};

static weft_status write_everything(weft_txn* t, void* user) {
  struct ids* ids = user;
  weft_value v;
  weft_value items[3];
  weft_obj other;
  v = weft_string(S("Hello"));
  OK(weft_txn_map_put(t, kRoot, S("title"), &v));
  v = weft_int(42);
  OK(weft_txn_map_put(t, kRoot, S("answer"), &v));
  v = weft_double(0.5);
  OK(weft_txn_map_put(t, kRoot, S("half"), &v));
  v = weft_bool(1);
  OK(weft_txn_map_put(t, kRoot, S("flag"), &v));
  v = weft_null();
  OK(weft_txn_map_put(t, kRoot, S("nothing"), &v));
  v = weft_bytes("\x00\x01\x02", 3);
  OK(weft_txn_map_put(t, kRoot, S("blob"), &v));
  v = weft_int(1);
  OK(weft_txn_map_put(t, kRoot, S("gone"), &v));
  OK(weft_txn_map_delete(t, kRoot, S("gone")));

  OK(weft_txn_map_object(t, kRoot, S("meta"), WEFT_MAP, &ids->map));
  v = weft_string(S("ada"));
  OK(weft_txn_map_put(t, ids->map, S("author"), &v));
  OK(weft_txn_map_object(t, kRoot, S("color"), WEFT_REGISTER, &ids->reg));
  v = weft_string(S("red"));
  OK(weft_txn_register_set(t, ids->reg, &v));
  OK(weft_txn_map_object(t, kRoot, S("status"), WEFT_LWW, &ids->lww));
  v = weft_string(S("draft"));
  OK(weft_txn_register_set(t, ids->lww, &v));
  OK(weft_txn_map_object(t, kRoot, S("likes"), WEFT_COUNTER, &ids->counter));
  OK(weft_txn_counter_add(t, ids->counter, 5));
  OK(weft_txn_counter_add(t, ids->counter, -2));
  OK(weft_txn_map_object(t, kRoot, S("tags"), WEFT_SET, &ids->set));
  v = weft_string(S("crdt"));
  OK(weft_txn_set_add(t, ids->set, &v));
  v = weft_string(S("c"));
  OK(weft_txn_set_add(t, ids->set, &v));
  OK(weft_txn_set_remove(t, ids->set, &v));
  OK(weft_txn_map_object(t, kRoot, S("items"), WEFT_LIST, &ids->list));
  items[0] = weft_int(1);
  items[1] = weft_string(S("two"));
  items[2] = weft_double(3.0);
  OK(weft_txn_list_insert(t, ids->list, 0, items, 3));
  OK(weft_txn_seq_delete(t, ids->list, 0, 1));
  OK(weft_txn_list_insert_object(t, ids->list, 2, WEFT_MAP, &ids->listed_map));
  v = weft_bool(0);
  OK(weft_txn_map_put(t, ids->listed_map, S("done"), &v));
  OK(weft_txn_map_object(t, kRoot, S("body"), WEFT_TEXT, &ids->text));
  OK(weft_txn_text_insert(t, ids->text, 0, S("h\xc3\xa9llo world")));
  OK(weft_txn_seq_delete(t, ids->text, 5, 6)); /* code points: "héllo" remains */

  /* The same key asked again gives the same object. */
  OK(weft_txn_map_object(t, kRoot, S("likes"), WEFT_COUNTER, &other));
  CHECK(other.node == ids->counter.node && other.seq == ids->counter.seq);

  /* Error paths inside a transaction: each fails and changes nothing; the txn goes on. */
  EXPECT(WEFT_TYPE_MISMATCH, weft_txn_map_object(t, kRoot, S("likes"), WEFT_TEXT, &other));
  EXPECT(WEFT_TYPE_MISMATCH, weft_txn_counter_add(t, ids->text, 1));
  EXPECT(WEFT_TYPE_MISMATCH, weft_txn_text_insert(t, ids->counter, 0, S("x")));
  EXPECT(WEFT_OUT_OF_RANGE, weft_txn_text_insert(t, ids->text, 99, S("x")));
  EXPECT(WEFT_OUT_OF_RANGE, weft_txn_seq_delete(t, ids->text, 4, 2));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_txn_text_insert(t, ids->text, 0, S(kBadUtf8)));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_txn_map_put(t, kRoot, S(kBadUtf8), &v));
  v = weft_string(S(kBadUtf8));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_txn_map_put(t, kRoot, S("k"), &v));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_txn_set_add(t, ids->set, &v));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_txn_set_remove(t, ids->set, &v));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_txn_register_set(t, ids->reg, &v));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_txn_list_insert(t, ids->list, 0, &v, 1));
  v.type = 99;
  EXPECT(WEFT_INVALID_ARGUMENT, weft_txn_map_put(t, kRoot, S("k"), &v));
  v.type = WEFT_MAP; /* an object kind is not a scalar */
  EXPECT(WEFT_INVALID_ARGUMENT, weft_txn_map_put(t, kRoot, S("k"), &v));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_txn_map_put(t, kRoot, S("k"), NULL));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_txn_map_object(t, kRoot, S("k"), 3, &other));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_txn_map_object(t, kRoot, S("k"), WEFT_MAP, NULL));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_txn_list_insert_object(t, ids->list, 0, 99, &other));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_txn_list_insert_object(t, ids->list, 0, WEFT_MAP, NULL));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_txn_list_insert(t, ids->list, 0, NULL, 2));
  {
    weft_obj nowhere = {12345, 1};
    CHECK(weft_txn_counter_add(t, nowhere, 1) == WEFT_NOT_FOUND);
  }
  return WEFT_OK;
}

static weft_status null_txn_calls(void) {
  weft_value v = weft_int(1);
  weft_obj o;
  EXPECT(WEFT_INVALID_ARGUMENT, weft_txn_map_put(NULL, kRoot, S("k"), &v));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_txn_map_put_after_read(NULL, kRoot, S("k"), &v, NULL));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_txn_map_delete(NULL, kRoot, S("k")));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_txn_map_object(NULL, kRoot, S("k"), WEFT_MAP, &o));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_txn_register_set(NULL, kRoot, &v));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_txn_register_set_after_read(NULL, kRoot, &v, NULL));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_txn_counter_add(NULL, kRoot, 1));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_txn_set_add(NULL, kRoot, &v));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_txn_set_remove(NULL, kRoot, &v));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_txn_text_insert(NULL, kRoot, 0, S("x")));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_txn_seq_delete(NULL, kRoot, 0, 1));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_txn_list_insert(NULL, kRoot, 0, &v, 1));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_txn_list_insert_object(NULL, kRoot, 0, WEFT_MAP, &o));
  return WEFT_OK;
}

struct read_ctx {
  struct ids* ids;
  int ran;
};

static void read_everything(const weft_view* v, void* user) {
  struct read_ctx* ctx = user;
  struct ids* ids = ctx->ids;
  weft_strings* keys = NULL;
  weft_values* vals = NULL;
  weft_value x;
  weft_obj o;
  weft_anchor a;
  int32_t kind = 0;
  int64_t n = 0;
  size_t size = 0, len = 0, i;
  int in = -1;
  char* s = NULL;

  ctx->ran = 1;
  OK(weft_view_to_json(v, &s, &len));
  CHECK(strstr(s, "\"title\"") != NULL && strlen(s) == len);
  weft_string_free(s);

  OK(weft_view_kind(v, kRoot, &kind));
  CHECK(kind == WEFT_MAP);
  OK(weft_view_kind(v, ids->text, &kind));
  CHECK(kind == WEFT_TEXT);
  OK(weft_view_kind(v, ids->lww, &kind));
  CHECK(kind == WEFT_LWW);

  OK(weft_view_map_keys(v, kRoot, &keys));
  CHECK(weft_strings_count(keys) == 13); /* "gone" was deleted */
  CHECK(strcmp(weft_strings_get(keys, 0, NULL), "answer") == 0);
  weft_strings_free(keys);

  OK(weft_view_map_get(v, kRoot, S("title"), &vals));
  CHECK(weft_values_count(vals) == 1);
  OK(weft_values_get(vals, 0, &x));
  CHECK(x.type == WEFT_STRING && x.len == 5 && strcmp(x.data, "Hello") == 0);
  EXPECT(WEFT_OUT_OF_RANGE, weft_values_get(vals, 1, &x));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_values_get(vals, 0, NULL));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_values_get(NULL, 0, &x));
  weft_values_free(vals);
  OK(weft_view_map_get(v, kRoot, S("answer"), &vals));
  OK(weft_values_get(vals, 0, &x));
  CHECK(x.type == WEFT_INT && x.integer == 42);
  weft_values_free(vals);
  OK(weft_view_map_get(v, kRoot, S("half"), &vals));
  OK(weft_values_get(vals, 0, &x));
  CHECK(x.type == WEFT_DOUBLE && x.real == 0.5);
  weft_values_free(vals);
  OK(weft_view_map_get(v, kRoot, S("flag"), &vals));
  OK(weft_values_get(vals, 0, &x));
  CHECK(x.type == WEFT_BOOL && x.boolean == 1);
  weft_values_free(vals);
  OK(weft_view_map_get(v, kRoot, S("nothing"), &vals));
  OK(weft_values_get(vals, 0, &x));
  CHECK(x.type == WEFT_NULL);
  weft_values_free(vals);
  OK(weft_view_map_get(v, kRoot, S("blob"), &vals));
  OK(weft_values_get(vals, 0, &x));
  CHECK(x.type == WEFT_BYTES && x.len == 3 && memcmp(x.data, "\x00\x01\x02", 3) == 0);
  weft_values_free(vals);
  OK(weft_view_map_get(v, kRoot, S("gone"), &vals));
  CHECK(weft_values_count(vals) == 0);
  weft_values_free(vals);
  OK(weft_view_map_get(v, kRoot, S("meta"), &vals));
  OK(weft_values_get(vals, 0, &x));
  CHECK(x.type == WEFT_MAP && x.object.node == ids->map.node && x.object.seq == ids->map.seq);
  weft_values_free(vals);

  OK(weft_view_map_lookup(v, kRoot, S("meta"), WEFT_MAP, &o));
  CHECK(o.node == ids->map.node && o.seq == ids->map.seq);
  OK(weft_view_map_lookup(v, kRoot, S("status"), WEFT_REGISTER, &o)); /* finds the LWW too */
  CHECK(o.seq == ids->lww.seq);
  EXPECT(WEFT_NOT_FOUND, weft_view_map_lookup(v, kRoot, S("absent"), WEFT_MAP, &o));
  EXPECT(WEFT_TYPE_MISMATCH, weft_view_map_lookup(v, kRoot, S("title"), WEFT_MAP, &o));
  EXPECT(WEFT_TYPE_MISMATCH, weft_view_map_lookup(v, kRoot, S("likes"), WEFT_SET, &o));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_view_map_lookup(v, kRoot, S("meta"), WEFT_INT, &o));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_view_map_lookup(v, kRoot, S(kBadUtf8), WEFT_MAP, &o));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_view_map_get(v, kRoot, S(kBadUtf8), &vals));
  EXPECT(WEFT_TYPE_MISMATCH, weft_view_map_get(v, ids->counter, S("x"), &vals));
  EXPECT(WEFT_TYPE_MISMATCH, weft_view_map_keys(v, ids->text, &keys));

  OK(weft_view_map_get(v, ids->map, S("author"), &vals));
  OK(weft_values_get(vals, 0, &x));
  CHECK(x.type == WEFT_STRING && strcmp(x.data, "ada") == 0);
  weft_values_free(vals);

  OK(weft_view_register_get(v, ids->reg, &vals));
  CHECK(weft_values_count(vals) == 1);
  OK(weft_values_get(vals, 0, &x));
  CHECK(x.type == WEFT_STRING && strcmp(x.data, "red") == 0);
  weft_values_free(vals);
  EXPECT(WEFT_TYPE_MISMATCH, weft_view_register_get(v, ids->counter, &vals));

  OK(weft_view_lww_get(v, ids->lww, &vals));
  CHECK(weft_values_count(vals) == 1);
  OK(weft_values_get(vals, 0, &x));
  CHECK(x.type == WEFT_STRING && strcmp(x.data, "draft") == 0 && x.time_ms > 0);
  weft_values_free(vals);
  EXPECT(WEFT_TYPE_MISMATCH, weft_view_lww_get(v, ids->reg, &vals));

  OK(weft_view_counter_get(v, ids->counter, &n));
  CHECK(n == 3);
  EXPECT(WEFT_TYPE_MISMATCH, weft_view_counter_get(v, ids->set, &n));

  OK(weft_view_set_elements(v, ids->set, &vals));
  CHECK(weft_values_count(vals) == 1);
  OK(weft_values_get(vals, 0, &x));
  CHECK(x.type == WEFT_STRING && strcmp(x.data, "crdt") == 0);
  weft_values_free(vals);
  x = weft_string(S("crdt"));
  OK(weft_view_set_contains(v, ids->set, &x, &in));
  CHECK(in == 1);
  x = weft_string(S("c"));
  OK(weft_view_set_contains(v, ids->set, &x, &in));
  CHECK(in == 0);
  x = weft_string(S(kBadUtf8));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_view_set_contains(v, ids->set, &x, &in));
  EXPECT(WEFT_TYPE_MISMATCH, weft_view_set_elements(v, ids->counter, &vals));

  OK(weft_view_text_read(v, ids->text, &s, &len));
  CHECK(len == 6 && strcmp(s, "h\xc3\xa9llo") == 0);
  weft_string_free(s);
  OK(weft_view_seq_size(v, ids->text, &size));
  CHECK(size == 5);
  EXPECT(WEFT_TYPE_MISMATCH, weft_view_text_read(v, ids->list, &s, &len));
  EXPECT(WEFT_TYPE_MISMATCH, weft_view_seq_size(v, ids->counter, &size));

  OK(weft_view_list_values(v, ids->list, &vals));
  CHECK(weft_values_count(vals) == 3);
  OK(weft_values_get(vals, 0, &x));
  CHECK(x.type == WEFT_STRING && strcmp(x.data, "two") == 0);
  OK(weft_values_get(vals, 1, &x));
  CHECK(x.type == WEFT_DOUBLE && x.real == 3.0);
  OK(weft_values_get(vals, 2, &x));
  CHECK(x.type == WEFT_MAP && x.object.seq == ids->listed_map.seq);
  weft_values_free(vals);
  OK(weft_view_seq_size(v, ids->list, &size));
  CHECK(size == 3);
  EXPECT(WEFT_TYPE_MISMATCH, weft_view_list_values(v, ids->text, &vals));

  OK(weft_view_anchor_at(v, ids->text, 2, 0, &a));
  OK(weft_view_anchor_index(v, ids->text, &a, &i));
  CHECK(i == 2);
  EXPECT(WEFT_INVALID_ARGUMENT, weft_view_anchor_at(v, ids->text, 2, 5, &a));
  EXPECT(WEFT_OUT_OF_RANGE, weft_view_anchor_at(v, ids->text, 99, 0, &a));
  a.bias = 7;
  EXPECT(WEFT_INVALID_ARGUMENT, weft_view_anchor_index(v, ids->text, &a, &i));
  a.bias = 0;
  a.item.node = 999;
  EXPECT(WEFT_NOT_FOUND, weft_view_anchor_index(v, ids->text, &a, &i));

  /* NULL view / out pointers. */
  EXPECT(WEFT_INVALID_ARGUMENT, weft_view_to_json(NULL, &s, &len));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_view_to_json(v, NULL, &len));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_view_kind(NULL, kRoot, &kind));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_view_kind(v, kRoot, NULL));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_view_map_keys(NULL, kRoot, &keys));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_view_map_get(NULL, kRoot, S("a"), &vals));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_view_map_lookup(NULL, kRoot, S("a"), WEFT_MAP, &o));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_view_register_get(NULL, kRoot, &vals));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_view_lww_get(NULL, kRoot, &vals));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_view_counter_get(NULL, kRoot, &n));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_view_set_elements(NULL, kRoot, &vals));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_view_set_contains(NULL, kRoot, &x, &in));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_view_set_contains(v, ids->set, NULL, &in));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_view_text_read(NULL, kRoot, &s, &len));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_view_seq_size(NULL, kRoot, &size));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_view_list_values(NULL, kRoot, &vals));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_view_anchor_at(NULL, kRoot, 0, 0, &a));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_view_anchor_index(NULL, kRoot, &a, &i));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_view_anchor_index(v, kRoot, NULL, &i));
}

/* Writes, then fails: returns `user`'s code (the transaction must leave nothing). */
static weft_status write_then_fail(weft_txn* t, void* user) {
  weft_value v = weft_string(S("should not stay"));
  OK(weft_txn_map_put(t, kRoot, S("title"), &v));
  OK(weft_txn_map_put(t, kRoot, S("new key"), &v));
  return *(weft_status*)user;
}

/* A write that fails (wrong type) whose error the body passes on. */
static weft_status write_then_type_error(weft_txn* t, void* user) {
  struct ids* ids = user;
  weft_value v = weft_int(7);
  OK(weft_txn_map_put(t, kRoot, S("answer"), &v));
  OK(weft_txn_counter_add(t, ids->counter, 100));
  return weft_txn_counter_add(t, ids->text, 1);
}

static weft_status noop(weft_txn* t, void* user) {
  (void)t;
  (void)user;
  return WEFT_OK;
}

/* Reads inside a transaction see its own writes. */
static weft_status read_own_writes(weft_txn* t, void* user) {
  const weft_view* v = weft_txn_view(t);
  weft_values* vals = NULL;
  weft_value x = weft_string(S("fresh"));
  (void)user;
  CHECK(v != NULL);
  OK(weft_txn_map_put(t, kRoot, S("own"), &x));
  OK(weft_view_map_get(v, kRoot, S("own"), &vals));
  CHECK(weft_values_count(vals) == 1);
  OK(weft_values_get(vals, 0, &x));
  CHECK(strcmp(x.data, "fresh") == 0);
  weft_values_free(vals);
  return null_txn_calls();
}

static void test_transactions(void) {
  weft_replica* r = open_replica("txn.db");
  struct ids ids;
  struct read_ctx ctx = {&ids, 0};
  weft_commit_info info;
  weft_status code;
  char *before, *after, *tok1, *tok2;
  size_t len;

  memset(&ids, 0, sizeof ids);
  memset(&info, 0xab, sizeof info);
  OK(weft_transact(r, S("doc"), write_everything, &ids, &info));
  CHECK(info.changed == 1);
  CHECK(info.version_token != NULL && info.version_token_len == strlen(info.version_token));
  CHECK(strncmp(info.version_token, "doc@", 4) == 0);
  {
    uint64_t node, actor;
    OK(weft_replica_node_id(r, &node));
    OK(weft_replica_actor_id(r, &actor));
    CHECK(info.change.node == actor && info.change.seq == 1);
    CHECK(actor != node);
    EXPECT(WEFT_INVALID_ARGUMENT, weft_replica_actor_id(NULL, &actor));
    EXPECT(WEFT_INVALID_ARGUMENT, weft_replica_actor_id(r, NULL));
  }
  weft_commit_info_release(&info);
  CHECK(info.version_token == NULL && info.changed == 0);

  OK(weft_read(r, S("doc"), read_everything, &ctx));
  CHECK(ctx.ran == 1);

  /* A body that fails leaves nothing: the state and the version are as before. */
  before = doc_json(r, "doc");
  OK(weft_causal_token(r, S("doc"), &tok1, &len));
  code = WEFT_ABORTED;
  EXPECT(WEFT_ABORTED, weft_transact(r, S("doc"), write_then_fail, &code, NULL));
  expect_thread_msg("aborted");
  code = WEFT_CLOCK_DRIFT; /* any code comes back as it was */
  EXPECT(WEFT_CLOCK_DRIFT, weft_transact(r, S("doc"), write_then_fail, &code, NULL));
  code = (weft_status)1234; /* not a known code: reported as aborted */
  EXPECT(WEFT_ABORTED, weft_transact(r, S("doc"), write_then_fail, &code, NULL));
  EXPECT(WEFT_TYPE_MISMATCH, weft_transact(r, S("doc"), write_then_type_error, &ids, NULL));
  after = doc_json(r, "doc");
  OK(weft_causal_token(r, S("doc"), &tok2, &len));
  CHECK(strcmp(before, after) == 0);
  CHECK(strcmp(tok1, tok2) == 0);
  weft_string_free(before);
  weft_string_free(after);
  weft_string_free(tok2);

  /* A failed transaction on a new document does not create it. */
  code = WEFT_ABORTED;
  EXPECT(WEFT_ABORTED, weft_transact(r, S("fresh-doc"), write_then_fail, &code, NULL));
  {
    int exists = 1;
    OK(weft_doc_exists(r, S("fresh-doc"), &exists));
    CHECK(exists == 0);
  }

  /* An empty transaction writes nothing. */
  OK(weft_transact(r, S("doc"), noop, NULL, &info));
  CHECK(info.changed == 0);
  weft_commit_info_release(&info);
  OK(weft_causal_token(r, S("doc"), &tok2, &len));
  CHECK(strcmp(tok1, tok2) == 0);
  weft_string_free(tok2);
  weft_string_free(tok1);

  OK(weft_transact(r, S("doc"), read_own_writes, NULL, NULL));

  /* Errors of the calls themselves. */
  EXPECT(WEFT_INVALID_ARGUMENT, weft_transact(NULL, S("doc"), noop, NULL, NULL));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_transact(r, S("doc"), NULL, NULL, NULL));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_transact(r, S(kBadUtf8), noop, NULL, NULL));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_transact(r, S(""), noop, NULL, NULL));
  EXPECT(WEFT_NOT_FOUND, weft_read(r, S("absent"), read_everything, &ctx));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_read(NULL, S("doc"), read_everything, &ctx));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_read(r, S("doc"), NULL, &ctx));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_read(r, S(kBadUtf8), read_everything, &ctx));
  OK(weft_close(r));
}

struct json_ctx {
  char* json;
};
static void grab_json(const weft_view* v, void* user) {
  struct json_ctx* c = user;
  size_t len;
  OK(weft_view_to_json(v, &c->json, &len));
}
static char* doc_json(weft_replica* r, const char* doc) {
  struct json_ctx c = {NULL};
  OK(weft_read(r, doc, strlen(doc), grab_json, &c));
  return c.json;
}

/* ------------------------------------------------------------------ conflicts */

static weft_status set_color(weft_txn* t, void* user) {
  weft_obj reg, lww;
  weft_value v = weft_string((const char*)user, strlen((const char*)user));
  OK(weft_txn_map_object(t, kRoot, S("color"), WEFT_REGISTER, &reg));
  OK(weft_txn_register_set(t, reg, &v));
  OK(weft_txn_map_object(t, kRoot, S("status"), WEFT_LWW, &lww));
  OK(weft_txn_register_set(t, lww, &v));
  OK(weft_txn_map_put(t, kRoot, S("plain"), &v));
  return WEFT_OK;
}

/* Copies every change of `doc` that `to` lacks from `from` (raw change exchange). */
static size_t exchange(weft_replica* from, weft_replica* to, const char* doc) {
  weft_blobs* blobs = NULL;
  char* tok = NULL;
  size_t len = 0, applied = 99, n, i;
  int have = 0;
  const uint8_t* ptrs[64];
  size_t lens[64];
  OK(weft_doc_exists(to, doc, strlen(doc), &have));
  if (have) OK(weft_causal_token(to, doc, strlen(doc), &tok, &len));
  OK(weft_changes_since(from, doc, strlen(doc), tok, tok ? len : 0, &blobs));
  weft_string_free(tok);
  n = weft_blobs_count(blobs);
  CHECK(n <= 64);
  for (i = 0; i < n; i++) {
    ptrs[i] = weft_blobs_get(blobs, i, &lens[i]);
    CHECK(ptrs[i] != NULL && lens[i] > 0);
  }
  CHECK(weft_blobs_get(blobs, n, &len) == NULL);
  OK(weft_apply_changes(to, doc, strlen(doc), ptrs, lens, n, &applied));
  CHECK(applied == n);
  weft_blobs_free(blobs);
  return n;
}

struct sib_ctx {
  size_t reg_count, lww_count, plain_count;
  char lww_winner[16];
  weft_values* reg_read;
  weft_values* plain_read;
};

static void read_siblings(const weft_view* v, void* user) {
  struct sib_ctx* c = user;
  weft_obj reg, lww;
  weft_values* vals = NULL;
  weft_value x;
  OK(weft_view_map_lookup(v, kRoot, S("color"), WEFT_REGISTER, &reg));
  OK(weft_view_register_get(v, reg, &c->reg_read));
  c->reg_count = weft_values_count(c->reg_read);
  OK(weft_view_map_lookup(v, kRoot, S("status"), WEFT_LWW, &lww));
  OK(weft_view_lww_get(v, lww, &vals));
  c->lww_count = weft_values_count(vals);
  OK(weft_values_get(vals, 0, &x));
  CHECK(x.type == WEFT_STRING && x.len < sizeof c->lww_winner);
  memcpy(c->lww_winner, x.data, x.len + 1);
  weft_values_free(vals);
  OK(weft_view_map_get(v, kRoot, S("plain"), &c->plain_read));
  c->plain_count = weft_values_count(c->plain_read);
}

struct resolve_ctx {
  weft_values* reg_read;
  weft_values* plain_read;
};

static weft_status resolve(weft_txn* t, void* user) {
  struct resolve_ctx* c = user;
  weft_obj reg;
  weft_value v = weft_string(S("purple"));
  weft_values* lww_vals = NULL;
  OK(weft_txn_map_object(t, kRoot, S("color"), WEFT_REGISTER, &reg));
  OK(weft_txn_register_set_after_read(t, reg, &v, c->reg_read));
  OK(weft_txn_map_put_after_read(t, kRoot, S("plain"), &v, c->plain_read));
  /* A list that is not a read of a key or register has no context. */
  EXPECT(WEFT_TYPE_MISMATCH, weft_view_set_elements(weft_txn_view(t), reg, &lww_vals));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_txn_register_set_after_read(t, reg, &v, NULL));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_txn_map_put_after_read(t, kRoot, S("plain"), &v, NULL));
  EXPECT(WEFT_INVALID_ARGUMENT,
         weft_txn_map_put_after_read(t, kRoot, S(kBadUtf8), &v, c->plain_read));
  return WEFT_OK;
}

static void test_conflicts_and_raw_changes(void) {
  weft_replica* a = open_replica("conf-a.db");
  weft_replica* b = open_replica("conf-b.db");
  struct sib_ctx sa, sb;
  struct resolve_ctx rc;
  char *ja, *jb, *tok;
  size_t len, applied;
  int sat = -1;
  weft_blobs* blobs;

  /* The register objects exist on both sides first (creating them concurrently would make two
   * objects under one key); then each side writes them concurrently. */
  OK(weft_transact(a, S("d"), set_color, "white", NULL));
  CHECK(exchange(a, b, "d") == 1);
  OK(weft_transact(a, S("d"), set_color, "red", NULL));
  OK(weft_transact(b, S("d"), set_color, "blue", NULL));
  /* Before the exchange, b does not hold a's token. */
  OK(weft_causal_token(a, S("d"), &tok, &len));
  OK(weft_token_satisfied(b, tok, len, &sat));
  CHECK(sat == 0);
  EXPECT(WEFT_TIMEOUT, weft_wait_for_token(b, tok, len, 20));
  CHECK(exchange(a, b, "d") == 1);
  CHECK(exchange(b, a, "d") == 1);
  OK(weft_token_satisfied(b, tok, len, &sat));
  CHECK(sat == 1);
  OK(weft_wait_for_token(b, tok, len, 1000));
  weft_string_free(tok);
  CHECK(exchange(a, b, "d") == 0); /* nothing left to send */

  memset(&sa, 0, sizeof sa);
  memset(&sb, 0, sizeof sb);
  OK(weft_read(a, S("d"), read_siblings, &sa));
  OK(weft_read(b, S("d"), read_siblings, &sb));
  /* Concurrent register writes stay as siblings; LWW picks one winner on both sides and keeps the
   * value it overwrote; a plain map key keeps both too. */
  CHECK(sa.reg_count == 2 && sb.reg_count == 2);
  CHECK(sa.lww_count == 2 && sb.lww_count == 2);
  CHECK(strcmp(sa.lww_winner, sb.lww_winner) == 0);
  CHECK(sa.plain_count == 2 && sb.plain_count == 2);

  /* a resolves the siblings it read; after the exchange both see one value. */
  rc.reg_read = sa.reg_read;
  rc.plain_read = sa.plain_read;
  OK(weft_transact(a, S("d"), resolve, &rc, NULL));
  weft_values_free(sa.reg_read);
  weft_values_free(sa.plain_read);
  weft_values_free(sb.reg_read);
  weft_values_free(sb.plain_read);
  CHECK(exchange(a, b, "d") == 1);
  memset(&sb, 0, sizeof sb);
  OK(weft_read(b, S("d"), read_siblings, &sb));
  CHECK(sb.reg_count == 1 && sb.plain_count == 1);
  weft_values_free(sb.reg_read);
  weft_values_free(sb.plain_read);
  ja = doc_json(a, "d");
  jb = doc_json(b, "d");
  CHECK(strcmp(ja, jb) == 0);
  CHECK(strstr(ja, "purple") != NULL);
  weft_string_free(ja);
  weft_string_free(jb);

  /* Bad remote input changes nothing. */
  {
    const uint8_t junk[] = {1, 2, 3, 4, 5};
    const uint8_t* p = junk;
    size_t l = sizeof junk;
    char* before = doc_json(b, "d");
    char* after;
    EXPECT(WEFT_CORRUPTION, weft_apply_changes(b, S("d"), &p, &l, 1, &applied));
    after = doc_json(b, "d");
    CHECK(strcmp(before, after) == 0);
    weft_string_free(after);
    weft_string_free(before);
    EXPECT(WEFT_INVALID_ARGUMENT, weft_apply_changes(b, S("d"), NULL, &l, 1, &applied));
    p = NULL;
    EXPECT(WEFT_INVALID_ARGUMENT, weft_apply_changes(b, S("d"), &p, &l, 1, &applied));
    OK(weft_apply_changes(b, S("d"), NULL, NULL, 0, NULL));
  }
  /* A change whose dependency is neither held nor given. */
  {
    weft_replica* c = open_replica("conf-c.db");
    const uint8_t* p;
    size_t l;
    OK(weft_changes_since(a, S("d"), NULL, 0, &blobs));
    CHECK(weft_blobs_count(blobs) == 4);
    p = weft_blobs_get(blobs, 3, &l);
    EXPECT(WEFT_MISSING_DEPENDENCY, weft_apply_changes(c, S("d"), &p, &l, 1, &applied));
    weft_blobs_free(blobs);
    OK(weft_close(c));
  }
  EXPECT(WEFT_INVALID_ARGUMENT, weft_changes_since(a, S("d"), S("other@"), &blobs));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_changes_since(a, S("d"), S("not a token"), &blobs));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_changes_since(NULL, S("d"), NULL, 0, &blobs));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_changes_since(a, S("d"), NULL, 0, NULL));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_changes_since(a, S(kBadUtf8), NULL, 0, &blobs));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_apply_changes(NULL, S("d"), NULL, NULL, 0, NULL));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_token_satisfied(a, S("garbage"), &sat));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_token_satisfied(a, S(kBadUtf8), &sat));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_token_satisfied(NULL, S("d@"), &sat));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_token_satisfied(a, S("d@"), NULL));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_wait_for_token(a, S("garbage"), 10));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_wait_for_token(NULL, S("d@"), 10));
  EXPECT(WEFT_NOT_FOUND, weft_causal_token(a, S("absent"), &tok, &len));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_causal_token(NULL, S("d"), &tok, &len));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_causal_token(a, S("d"), NULL, &len));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_causal_token(a, S(kBadUtf8), &tok, &len));
  OK(weft_close(a));
  OK(weft_close(b));
}

/* ------------------------------------------------------------------ resolve on write */

struct resolver_ctx {
  int calls;
  size_t siblings;
  char key[16];
};

/* Picks the greatest string among the siblings. */
static int pick_greatest(const weft_conflict* c, weft_value* chosen, void* user) {
  struct resolver_ctx* ctx = user;
  size_t i, n = weft_values_count(c->siblings);
  weft_value v, best = weft_null();
  ctx->calls++;
  ctx->siblings = n;
  CHECK(c->doc_len == 1 && c->doc[0] == 'd' && c->map.node == 0 && c->key_len < 16);
  memcpy(ctx->key, c->key, c->key_len);
  ctx->key[c->key_len] = '\0';
  for (i = 0; i < n; i++) {
    OK(weft_values_get(c->siblings, i, &v));
    if (v.type == WEFT_STRING && (best.type != WEFT_STRING || strcmp(v.data, best.data) > 0))
      best = v;
  }
  if (best.type != WEFT_STRING) return 0;
  *chosen = best;
  return 1;
}

static weft_status put_k(weft_txn* t, void* user) {
  weft_value v = weft_string((const char*)user, strlen((const char*)user));
  OK(weft_txn_map_put(t, kRoot, S("k"), &v));
  return WEFT_OK;
}

static void count_k_view(const weft_view* v, void* user) {
  OK(weft_view_map_get(v, kRoot, S("k"), (weft_values**)user));
}

/* How many values key "k" of document "d" holds. */
static size_t count_k(weft_replica* r) {
  weft_values* vals = NULL;
  size_t n;
  OK(weft_read(r, S("d"), count_k_view, &vals));
  n = weft_values_count(vals);
  weft_values_free(vals);
  return n;
}

static void test_resolver(void) {
  weft_replica* x = open_replica("res-x.db");
  weft_replica* y = open_replica("res-y.db");
  struct resolver_ctx ctx;
  char *jx, *jy;
  memset(&ctx, 0, sizeof ctx);
  OK(weft_set_conflict_resolver(y, S("d"), pick_greatest, &ctx));
  OK(weft_transact(x, S("d"), put_k, "apple", NULL));
  OK(weft_transact(y, S("d"), put_k, "banana", NULL));
  CHECK(exchange(x, y, "d") == 1);
  /* y's resolver saw both siblings and wrote its choice as a local change. */
  CHECK(ctx.calls == 1 && ctx.siblings == 2 && strcmp(ctx.key, "k") == 0);
  CHECK(count_k(y) == 1);
  CHECK(exchange(y, x, "d") == 2);
  CHECK(count_k(x) == 1);
  jx = doc_json(x, "d");
  jy = doc_json(y, "d");
  CHECK(strcmp(jx, jy) == 0 && strstr(jx, "banana") != NULL);
  weft_string_free(jx);
  weft_string_free(jy);

  /* Removed: the next conflict stays for the app to resolve on read. */
  OK(weft_set_conflict_resolver(y, S("d"), NULL, NULL));
  OK(weft_transact(x, S("d"), put_k, "cherry", NULL));
  OK(weft_transact(y, S("d"), put_k, "date", NULL));
  CHECK(exchange(x, y, "d") == 1);
  CHECK(ctx.calls == 1);
  CHECK(count_k(y) == 2);

  EXPECT(WEFT_INVALID_ARGUMENT, weft_set_conflict_resolver(NULL, S("d"), pick_greatest, &ctx));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_set_conflict_resolver(y, S(kBadUtf8), pick_greatest, &ctx));
  OK(weft_set_conflict_resolver(y, NULL, 0, pick_greatest, &ctx)); /* every document */
  /* "d" has no resolver of its own (removed above): the every-document one resolves it. */
  OK(weft_transact(x, S("d"), put_k, "elder", NULL));
  OK(weft_transact(y, S("d"), put_k, "fig", NULL));
  CHECK(exchange(x, y, "d") == 1);
  CHECK(ctx.calls == 2);
  CHECK(count_k(y) == 1);
  /* One of its own, then removed again: the every-document one takes over once more. */
  OK(weft_set_conflict_resolver(y, S("d"), pick_greatest, &ctx));
  OK(weft_set_conflict_resolver(y, S("d"), NULL, NULL));
  OK(weft_transact(x, S("d"), put_k, "grape", NULL));
  OK(weft_transact(y, S("d"), put_k, "hazel", NULL));
  CHECK(exchange(x, y, "d") == 1);
  CHECK(ctx.calls == 3);
  CHECK(count_k(y) == 1);
  OK(weft_close(x));
  OK(weft_close(y));
}

/* ------------------------------------------------------------------ change feed */

struct feed {
  int events, local, remote, patches, counter_delta;
  char last_doc[32];
  weft_replica* r;
  int nested_ok;
};

static void on_change(const weft_change_event* e, void* user) {
  struct feed* f = user;
  size_t i;
  f->events++;
  if (e->local)
    f->local++;
  else
    f->remote++;
  CHECK(e->doc_len < sizeof f->last_doc);
  memcpy(f->last_doc, e->doc, e->doc_len);
  f->last_doc[e->doc_len] = '\0';
  CHECK(e->change.node != 0 && e->change.seq >= 1);
  for (i = 0; i < e->patch_count; i++) {
    const weft_patch* p = &e->patches[i];
    f->patches++;
    CHECK(p->type >= WEFT_PATCH_MAP_KEY && p->type <= WEFT_PATCH_DELETE);
    if (p->type == WEFT_PATCH_COUNTER) f->counter_delta += (int)p->delta;
    if (p->type == WEFT_PATCH_MAP_KEY) CHECK(p->key != NULL);
    if (p->type == WEFT_PATCH_INSERT && p->text_len > 0) CHECK(p->text != NULL);
  }
  /* The callback may read the replica. */
  if (f->r) {
    int exists = 0;
    f->nested_ok = weft_doc_exists(f->r, e->doc, e->doc_len, &exists) == WEFT_OK && exists;
  }
}

static weft_status bump(weft_txn* t, void* user) {
  weft_obj c;
  (void)user;
  OK(weft_txn_map_object(t, kRoot, S("n"), WEFT_COUNTER, &c));
  OK(weft_txn_counter_add(t, c, 3));
  return WEFT_OK;
}

static void test_change_feed(void) {
  weft_replica* a = open_replica("feed-a.db");
  weft_replica* b = open_replica("feed-b.db");
  struct feed all, one, other;
  weft_subscription *s_all = NULL, *s_one = NULL, *s_other = NULL;
  weft_status code = WEFT_ABORTED;

  memset(&all, 0, sizeof all);
  memset(&one, 0, sizeof one);
  memset(&other, 0, sizeof other);
  all.r = b;
  OK(weft_subscribe(b, NULL, 0, on_change, &all, &s_all));
  OK(weft_subscribe(b, S("d"), on_change, &one, &s_one));
  OK(weft_subscribe(b, S("elsewhere"), on_change, &other, &s_other));

  OK(weft_transact(b, S("d"), bump, NULL, NULL)); /* local: callback ran before return */
  CHECK(all.events == 1 && all.local == 1 && one.events == 1 && other.events == 0);
  CHECK(all.counter_delta == 3 && all.patches >= 1);
  CHECK(strcmp(all.last_doc, "d") == 0);
  CHECK(all.nested_ok == 1);
  EXPECT(WEFT_ABORTED, weft_transact(b, S("d"), write_then_fail, &code, NULL));
  CHECK(all.events == 1); /* an aborted transaction reports nothing */

  OK(weft_transact(a, S("d"), bump, NULL, NULL));
  exchange(a, b, "d");
  CHECK(all.events == 2 && all.remote == 1 && all.counter_delta == 6);

  /* Closing with open subscriptions is refused. */
  EXPECT(WEFT_BUSY, weft_close(b));
  weft_unsubscribe(s_one);
  OK(weft_transact(b, S("d"), bump, NULL, NULL));
  CHECK(all.events == 3 && one.events == 2);
  weft_unsubscribe(s_all);
  weft_unsubscribe(s_other);
  OK(weft_transact(b, S("d"), bump, NULL, NULL));
  CHECK(all.events == 3);

  EXPECT(WEFT_INVALID_ARGUMENT, weft_subscribe(NULL, NULL, 0, on_change, &all, &s_all));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_subscribe(b, NULL, 0, NULL, &all, &s_all));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_subscribe(b, NULL, 0, on_change, &all, NULL));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_subscribe(b, S(kBadUtf8), on_change, &all, &s_all));
  OK(weft_close(a));
  OK(weft_close(b));
}

/* weft_unsubscribe waits for a callback running on another thread, and no call comes after. */
struct race {
  atomic_int in_callback;
  atomic_int calls;
};

static void sleep_ms(int ms);

static void slow_callback(const weft_change_event* e, void* user) {
  struct race* r = user;
  (void)e;
  atomic_store(&r->in_callback, 1);
  sleep_ms(2);
  atomic_fetch_add(&r->calls, 1);
  atomic_store(&r->in_callback, 0);
}

struct writer {
  weft_replica* r;
  atomic_int stop;
  atomic_int commits;
};

static void* write_loop(void* arg) {
  struct writer* w = arg;
  while (!atomic_load(&w->stop)) {
    OK(weft_transact(w->r, S("d"), bump, NULL, NULL));
    atomic_fetch_add(&w->commits, 1);
  }
  return NULL;
}

static void test_unsubscribe_waits_for_callbacks(void) {
  struct writer w;
  pthread_t th;
  int i, waited = 0;
  w.r = open_replica("race.db");
  atomic_init(&w.stop, 0);
  atomic_init(&w.commits, 0);
  CHECK(pthread_create(&th, NULL, write_loop, &w) == 0);
  for (i = 0; i < 20; i++) {
    struct race r;
    weft_subscription* s = NULL;
    int calls;
    atomic_init(&r.in_callback, 0);
    atomic_init(&r.calls, 0);
    OK(weft_subscribe(w.r, S("d"), slow_callback, &r, &s));
    while (atomic_load(&r.calls) == 0) sleep_ms(1); /* the writer thread is calling it */
    weft_unsubscribe(s);
    CHECK(atomic_load(&r.in_callback) == 0);
    calls = atomic_load(&r.calls);
    sleep_ms(5);
    CHECK(atomic_load(&r.calls) == calls); /* r may go out of scope now */
    waited++;
  }
  atomic_store(&w.stop, 1);
  CHECK(pthread_join(th, NULL) == 0);
  CHECK(waited == 20 && atomic_load(&w.commits) > 20);
  OK(weft_close(w.r));
}

/* ------------------------------------------------------------------ sync through a relay */

/* Starts weft-relay on 127.0.0.1, port 0 (the kernel picks a free one); returns the port. */
static int start_relay(void) {
  int fds[2];
  char data[512], line[512];
  FILE* out;
  int port = 0;
  const char* at;
  path_in(data, sizeof data, "relay-data");
  CHECK(pipe(fds) == 0);
  g_relay = fork();
  CHECK(g_relay >= 0);
  if (g_relay == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    execl(WEFT_RELAY_BINARY, "weft-relay", "--listen", "127.0.0.1:0", "--data", data, (char*)NULL);
    _exit(127);
  }
  close(fds[1]);
  out = fdopen(fds[0], "r");
  CHECK(out != NULL);
  CHECK(fgets(line, sizeof line, out) != NULL);
  fclose(out);
  at = strstr(line, "127.0.0.1:");
  CHECK(at != NULL);
  port = atoi(at + strlen("127.0.0.1:"));
  CHECK(port > 0);
  return port;
}

static void stop_relay(void) {
  int st = 0;
  if (g_relay <= 0) return;
  kill(g_relay, SIGTERM);
  waitpid(g_relay, &st, 0);
  g_relay = 0;
}

struct presence_seen {
  volatile int count;
  uint64_t node;
  char payload[64];
};

static void on_presence(const char* doc, size_t doc_len, uint64_t node, const void* payload,
                        size_t payload_len, void* user) {
  struct presence_seen* p = user;
  if (doc_len != 1 || doc[0] != 'd' || payload_len >= sizeof p->payload) return;
  memcpy(p->payload, payload, payload_len);
  p->payload[payload_len] = '\0';
  p->node = node;
  p->count++;
}

static void sleep_ms(int ms) {
  struct timespec ts;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (long)(ms % 1000) * 1000000L;
  nanosleep(&ts, NULL);
}

static weft_status write_title(weft_txn* t, void* user) {
  weft_value v = weft_string((const char*)user, strlen((const char*)user));
  OK(weft_txn_map_put(t, kRoot, S("title"), &v));
  return WEFT_OK;
}

/* ------------------------------------------------------------------ time travel */

static void test_identity(void) {
  weft_replica* r = open_replica("identity.db");
  uint8_t a[32], b[32];
  size_t i, nonzero = 0;
  OK(weft_replica_public_key(r, a));
  for (i = 0; i < 32; i++) nonzero += a[i] != 0;
  CHECK(nonzero > 0);
  OK(weft_close(r));
  r = open_replica("identity.db");
  OK(weft_replica_public_key(r, b));
  CHECK(memcmp(a, b, 32) == 0); /* the same identity on every open */
  EXPECT(WEFT_INVALID_ARGUMENT, weft_replica_public_key(r, NULL));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_replica_public_key(NULL, b));
  OK(weft_close(r));
}

/* Access lists: the creator owns a document; it grants a writer, whose role shows; a stranger's
 * grant is refused; bad arguments fail clearly; admission tokens are issued. */
static void test_access(void) {
  weft_replica* owner = open_replica_with("owner.db", 0);
  weft_replica* other = open_replica_with("other.db", 0);
  uint8_t owner_key[32], other_key[32], zero[32] = {0};
  char* members = NULL;
  char* token = NULL;
  size_t n = 0;
  int role = -1, owned = -1;
  OK(weft_replica_public_key(owner, owner_key));
  OK(weft_replica_public_key(other, other_key));
  OK(weft_transact(owner, S("acl"), put_k, "v", NULL));
  OK(weft_doc_role(owner, S("acl"), owner_key, &role, &owned));
  CHECK(role == WEFT_ROLE_OWNER && owned == 1);
  OK(weft_doc_role(owner, S("acl"), other_key, &role, &owned));
  CHECK(role == WEFT_ROLE_NONE);
  OK(weft_doc_grant(owner, S("acl"), other_key, WEFT_ROLE_WRITER));
  OK(weft_doc_role(owner, S("acl"), other_key, &role, &owned));
  CHECK(role == WEFT_ROLE_WRITER);
  OK(weft_doc_members(owner, S("acl"), &members, &n));
  CHECK(strstr(members, "\"writer\"") != NULL && strstr(members, "\"owner\"") != NULL);
  CHECK(strlen(members) == n);
  weft_string_free(members);
  OK(weft_doc_revoke(owner, S("acl"), other_key));
  OK(weft_doc_role(owner, S("acl"), other_key, &role, &owned));
  CHECK(role == WEFT_ROLE_NONE);
  /* The other replica owns its own "acl": a grant in the owner's copy needs the owner's key. */
  EXPECT(WEFT_INVALID_ARGUMENT, weft_doc_grant(owner, S("acl"), other_key, WEFT_ROLE_OWNER));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_doc_grant(owner, S("acl"), NULL, WEFT_ROLE_READER));
  EXPECT(WEFT_NOT_FOUND, weft_doc_members(owner, S("absent"), &members, &n));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_issue_token(owner, other_key, 0, &token, &n));
  OK(weft_issue_token(owner, other_key, 60, &token, &n));
  CHECK(n == 144 && strlen(token) == 144);
  weft_string_free(token);
  {
    weft_sync_options* so = weft_sync_options_create();
    OK(weft_sync_options_set_token(so, S("abcd")));
    EXPECT(WEFT_INVALID_ARGUMENT, weft_sync_options_set_token(so, S("abc")));
    EXPECT(WEFT_INVALID_ARGUMENT, weft_sync_options_set_relay_key(so, zero));
    OK(weft_sync_options_set_relay_key(so, owner_key));
    weft_sync_options_free(so);
  }
  OK(weft_close(other));
  OK(weft_close(owner));
}

static void test_encrypted(void) {
  weft_replica* owner = open_replica_with("e2e.db", 0);
  char* info = NULL;
  size_t n = 0;
  OK(weft_doc_create_encrypted(owner, S("vault")));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_doc_create_encrypted(owner, S("vault")));
  OK(weft_transact(owner, S("vault"), put_k, "v", NULL));
  OK(weft_doc_encryption(owner, S("vault"), &info, &n));
  CHECK(strlen(info) == n);
  CHECK(strstr(info, "\"encrypted\":true") != NULL);
  CHECK(strstr(info, "\"has_key\":true") != NULL);
  CHECK(strstr(info, "\"missing_epochs\":[]") != NULL);
  weft_string_free(info);
  OK(weft_transact(owner, S("plain"), put_k, "v", NULL));
  OK(weft_doc_encryption(owner, S("plain"), &info, &n));
  CHECK(strstr(info, "\"encrypted\":false") != NULL);
  weft_string_free(info);
  EXPECT(WEFT_NOT_FOUND, weft_doc_encryption(owner, S("absent"), &info, &n));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_doc_create_encrypted(owner, S("")));
  OK(weft_close(owner));
}

static void test_time_travel(void) {
  weft_replica* r = open_replica("travel.db");
  weft_history* h = NULL;
  weft_history_entry e;
  weft_patches* patches = NULL;
  weft_patch p;
  struct json_ctx c = {NULL};
  char* now;
  OK(weft_transact(r, S("d"), put_k, "one", NULL));
  OK(weft_transact(r, S("d"), put_k, "two", NULL));
  OK(weft_transact(r, S("d"), put_k, "three", NULL));
  OK(weft_doc_history(r, S("d"), &h));
  CHECK(weft_history_count(h) == 3);
  OK(weft_history_get(h, 0, &e));
  CHECK(e.ops == 1 && e.time_ms > 0 && e.end_seq == e.change.seq);
  CHECK(e.token != NULL && e.token_len == strlen(e.token));
  /* The document at the first version. */
  OK(weft_read_at(r, S("d"), e.token, e.token_len, grab_json, &c));
  CHECK(strcmp(c.json, "{\"k\":\"one\"}") == 0);
  weft_string_free(c.json);
  c.json = NULL;
  /* An empty token: before the first change. */
  OK(weft_read_at(r, S("d"), NULL, 0, grab_json, &c));
  CHECK(strcmp(c.json, "{}") == 0);
  weft_string_free(c.json);
  /* The live document is untouched. */
  now = doc_json(r, "d");
  CHECK(strcmp(now, "{\"k\":\"three\"}") == 0);
  weft_string_free(now);
  {
    /* From the first version to the last: two writes of k. */
    weft_history_entry last;
    OK(weft_history_get(h, 2, &last));
    OK(weft_diff(r, S("d"), e.token, e.token_len, last.token, last.token_len, &patches));
    CHECK(weft_patches_count(patches) == 2);
    OK(weft_patches_get(patches, 1, &p));
    CHECK(p.type == WEFT_PATCH_MAP_KEY && p.key_len == 1 && p.key[0] == 'k' && p.siblings == 1);
    EXPECT(WEFT_OUT_OF_RANGE, weft_patches_get(patches, 2, &p));
    weft_patches_free(patches);
    /* Backwards is refused. */
    EXPECT(WEFT_INVALID_ARGUMENT,
           weft_diff(r, S("d"), last.token, last.token_len, e.token, e.token_len, &patches));
  }
  EXPECT(WEFT_OUT_OF_RANGE, weft_history_get(h, 3, &e));
  weft_history_free(h);
  /* Bad tokens and documents. */
  EXPECT(WEFT_INVALID_ARGUMENT, weft_read_at(r, S("d"), S("d@zz"), grab_json, &c));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_read_at(r, S("d"), S("other@"), grab_json, &c));
  EXPECT(WEFT_NOT_FOUND, weft_read_at(r, S("d"), S("d@00000000000000ff.5"), grab_json, &c));
  EXPECT(WEFT_NOT_FOUND, weft_doc_history(r, S("absent"), &h));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_read_at(r, S("d"), NULL, 0, NULL, NULL));
  CHECK(weft_history_count(NULL) == 0 && weft_patches_count(NULL) == 0);
  weft_history_free(NULL);
  weft_patches_free(NULL);
  OK(weft_close(r));
}

static void test_sync(void) {
  int port = start_relay();
  char url[64];
  size_t url_len;
  weft_replica* a = open_replica("sync-a.db");
  weft_replica* b = open_replica("sync-b.db");
  weft_replica* c = open_replica("sync-c.db");
  weft_sync_options* o = weft_sync_options_create();
  weft_sync *sa = NULL, *sb = NULL;
  weft_sync_summary sum;
  weft_commit_info info;
  weft_peers* peers = NULL;
  weft_peer_info pi;
  weft_doc_sync_info di;
  struct presence_seen seen;
  uint64_t node_a = 0;
  char *ja, *jb, *m;
  int i;

  snprintf(url, sizeof url, "ws://127.0.0.1:%d", port);
  url_len = strlen(url);
  memset(&seen, 0, sizeof seen);

  CHECK(o != NULL);
  OK(weft_sync_options_add_document(o, S("d")));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_sync_options_add_document(o, S(kBadUtf8)));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_sync_options_add_document(o, S("")));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_sync_options_add_document(NULL, S("d")));
  OK(weft_sync_options_set_backoff(o, 50, 500));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_sync_options_set_backoff(o, 0, 500));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_sync_options_set_backoff(o, 600, 500));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_sync_options_set_backoff(NULL, 50, 500));
  OK(weft_sync_options_set_seed(o, 7));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_sync_options_set_seed(NULL, 7));
  {
    /* A CA file for wss:// peers: one that cannot be read is refused when the client is made. */
    weft_sync_options* tls = weft_sync_options_create();
    char missing[512];
    path_in(missing, sizeof missing, "no-such-ca.pem");
    EXPECT(WEFT_INVALID_ARGUMENT, weft_sync_options_set_ca_file(NULL, S("ca.pem")));
    EXPECT(WEFT_INVALID_ARGUMENT, weft_sync_options_set_ca_file(tls, "a\0b", 3));
    OK(weft_sync_options_set_ca_file(tls, missing, strlen(missing)));
    EXPECT(WEFT_INVALID_ARGUMENT, weft_sync_create(c, tls, &sa));
    expect_thread_msg("no-such-ca.pem");
    OK(weft_sync_options_set_ca_file(tls, NULL, 0)); /* the system's CAs */
    weft_sync_options_free(tls);
  }

  /* Offline edits on both sides. */
  OK(weft_transact(a, S("d"), write_title, "from a", &info));
  OK(weft_transact(b, S("d"), bump, NULL, NULL));

  OK(weft_sync_create(a, o, &sa));
  OK(weft_sync_create(b, o, &sb));
  weft_sync_options_free(o);
  EXPECT(WEFT_INVALID_ARGUMENT, weft_sync_create(NULL, NULL, &sa));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_sync_create(a, NULL, NULL));
  OK(weft_sync_set_presence_callback(sb, on_presence, &seen));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_sync_set_presence_callback(NULL, on_presence, &seen));

  EXPECT(WEFT_INVALID_ARGUMENT, weft_sync_add_peer(sa, S("http://127.0.0.1:1")));
  m = weft_sync_errmsg(sa, NULL);
  CHECK(m != NULL && strlen(m) > 0);
  weft_string_free(m);
  EXPECT(WEFT_INVALID_ARGUMENT, weft_sync_add_peer(sa, S(kBadUtf8)));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_sync_add_peer(NULL, url, url_len));
  OK(weft_sync_add_peer(sa, url, url_len));
  OK(weft_sync_add_peer(sa, url, url_len)); /* already added: OK */
  OK(weft_sync_wait_until_synced(sa, url, url_len, 20000, &sum));
  CHECK(sum.changes_sent == 1 && sum.changes_received == 0);
  /* Status and lag, while a alone has synced (b has not connected yet): a's change is
   * acknowledged, nothing is pending either way. */
  OK(weft_sync_peers(sa, &peers));
  CHECK(weft_peers_count(peers) == 1);
  OK(weft_peers_get(peers, 0, &pi));
  CHECK(pi.url_len == url_len && memcmp(pi.url, url, url_len) == 0);
  CHECK(pi.state == WEFT_CONNECTED && pi.has_peer_node == 1 && pi.peer_is_relay == 1);
  CHECK(pi.changes_sent >= 1 && pi.document_count == 1);
  OK(weft_peers_document(peers, 0, 0, &di));
  CHECK(di.doc_len == 1 && di.doc[0] == 'd' && di.live == 1);
  CHECK(di.unacknowledged_changes == 0 && di.oldest_unacknowledged_age_ms == -1);
  CHECK(di.acknowledged_operations >= 1);
  EXPECT(WEFT_OUT_OF_RANGE, weft_peers_get(peers, 1, &pi));
  EXPECT(WEFT_OUT_OF_RANGE, weft_peers_document(peers, 0, 1, &di));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_peers_get(NULL, 0, &pi));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_peers_document(peers, 0, 0, NULL));
  weft_peers_free(peers);
  EXPECT(WEFT_INVALID_ARGUMENT, weft_sync_peers(NULL, &peers));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_sync_peers(sa, NULL));

  OK(weft_sync_add_peer(sb, url, url_len));
  EXPECT(WEFT_NOT_FOUND, weft_sync_wait_until_synced(sa, S("ws://127.0.0.1:1"), 100, &sum));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_sync_wait_until_synced(NULL, url, url_len, 100, &sum));
  OK(weft_sync_wait_until_synced(sa, url, url_len, 20000, &sum));
  CHECK(sum.changes_sent >= 1);
  OK(weft_sync_wait_until_synced(sb, url, url_len, 20000, NULL));
  OK(weft_sync_wait_until_synced(sa, url, url_len, 20000, &sum));

  /* a's commit is acknowledged by the relay; b catches up with a's token. */
  OK(weft_sync_wait_for_ack(sa, S("d"), info.version_token, info.version_token_len, 20000, url,
                            url_len));
  OK(weft_sync_wait_for_ack(sa, S("d"), info.version_token, info.version_token_len, 20000, NULL,
                            0));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_sync_wait_for_ack(sa, S("e"), info.version_token,
                                                       info.version_token_len, 10, NULL, 0));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_sync_wait_for_ack(sa, S("d"), S("junk"), 10, NULL, 0));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_sync_wait_for_ack(NULL, S("d"), S("d@"), 10, NULL, 0));
  /* A quorum of the one peer: met; of two: more than a has. */
  OK(weft_sync_wait_for_acks(sa, S("d"), info.version_token, info.version_token_len, 1, 20000));
  EXPECT(WEFT_INVALID_ARGUMENT,
         weft_sync_wait_for_acks(sa, S("d"), info.version_token, info.version_token_len, 2, 10));
  EXPECT(WEFT_INVALID_ARGUMENT,
         weft_sync_wait_for_acks(sa, S("d"), info.version_token, info.version_token_len, 0, 10));
  EXPECT(WEFT_INVALID_ARGUMENT,
         weft_sync_wait_for_acks(sa, S("e"), info.version_token, info.version_token_len, 1, 10));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_sync_wait_for_acks(NULL, S("d"), S("d@"), 1, 10));
  OK(weft_wait_for_token(b, info.version_token, info.version_token_len, 20000));
  weft_commit_info_release(&info);
  for (i = 0; i < 200; i++) { /* b's change reaches a */
    ja = doc_json(a, "d");
    jb = doc_json(b, "d");
    if (strcmp(ja, jb) == 0) break;
    weft_string_free(ja);
    weft_string_free(jb);
    ja = jb = NULL;
    sleep_ms(50);
  }
  CHECK(ja != NULL && jb != NULL && strcmp(ja, jb) == 0);
  CHECK(strstr(ja, "from a") != NULL && strstr(ja, "3") != NULL);
  weft_string_free(ja);
  weft_string_free(jb);

  /* Presence: a publishes, b hears it through the relay (never stored). */
  OK(weft_replica_node_id(a, &node_a));
  for (i = 0; i < 200 && seen.count == 0; i++) {
    OK(weft_sync_publish_presence(sa, S("d"), "cursor:4", 8));
    sleep_ms(50);
  }
  CHECK(seen.count > 0);
  CHECK(seen.node == node_a && strcmp(seen.payload, "cursor:4") == 0);
  OK(weft_sync_set_presence_callback(sb, NULL, NULL));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_sync_publish_presence(NULL, S("d"), "x", 1));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_sync_publish_presence(sa, S("d"), NULL, 1));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_sync_publish_presence(sa, S(kBadUtf8), "x", 1));

  /* The replica cannot close under a live sync client. */
  EXPECT(WEFT_BUSY, weft_close(a));

  /* Remove the peer: later presence has nowhere to go. */
  OK(weft_sync_remove_peer(sa, url, url_len));
  EXPECT(WEFT_NOT_FOUND, weft_sync_remove_peer(sa, url, url_len));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_sync_remove_peer(NULL, url, url_len));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_sync_remove_peer(sa, S(kBadUtf8)));
  EXPECT(WEFT_DISCONNECTED, weft_sync_publish_presence(sa, S("d"), "x", 1));
  weft_sync_free(sa);
  weft_sync_free(sb);

  /* One-shot sync of a fresh replica. */
  OK(weft_sync_once(c, url, url_len, S("d"), 20000, &sum));
  CHECK(sum.changes_received >= 2);
  ja = doc_json(a, "d");
  jb = doc_json(c, "d");
  CHECK(strcmp(ja, jb) == 0);
  weft_string_free(ja);
  weft_string_free(jb);
  OK(weft_sync_once(c, url, url_len, NULL, 0, 20000, NULL));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_sync_once(c, S("nope://x"), NULL, 0, 1000, NULL));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_sync_once(NULL, url, url_len, NULL, 0, 1000, NULL));
  EXPECT(WEFT_INVALID_ARGUMENT, weft_sync_once(c, url, url_len, S(kBadUtf8), 1000, NULL));
  stop_relay();
  /* No relay any more: a one-shot sync times out. */
  EXPECT(WEFT_TIMEOUT, weft_sync_once(c, url, url_len, S("d"), 300, NULL));

  OK(weft_close(a));
  OK(weft_close(b));
  OK(weft_close(c));
}

int main(void) {
  char cmd[300];
  strcpy(g_dir, "/tmp/weft-c-api-XXXXXX");
  CHECK(mkdtemp(g_dir) != NULL);
  test_basics();
  test_open();
  test_documents();
  test_transactions();
  test_conflicts_and_raw_changes();
  test_resolver();
  test_change_feed();
  test_unsubscribe_waits_for_callbacks();
  test_identity();
  test_access();
  test_encrypted();
  test_time_travel();
  test_sync();
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
  printf("c_api_test: %d checks passed\n", g_checks);
  return 0;
}
