/* weft.h: the stable C API of the Weft SDK (libweft.so.0).
 *
 * The C ABI through which apps in other languages (Swift, Kotlin/JNI, Dart, C#, Python) reach
 * the C++ core. It wraps sdk/include/weft/replica.h, values.h and sync.h; docs/c-api.md explains
 * the design. The rules that hold for every function:
 *
 * Errors. Every function that can fail returns a weft_status. Its values are fixed forever (the
 * numbers of weft::StatusCode) and never reused. On failure, the message is kept per handle
 * (weft_replica_errmsg, weft_sync_errmsg) and per thread (weft_thread_errmsg), and out parameters
 * are left untouched unless said otherwise. No C++ exception crosses this API: anything thrown
 * inside is caught at the boundary and reported as WEFT_INTERNAL.
 *
 * Ownership. The caller owns every buffer or list the API returns and frees it with the free
 * function named beside it (weft_string_free, weft_strings_free, weft_values_free, ...). Pointers
 * into a list (e.g. weft_value.data) stay valid until that list is freed. Inputs are borrowed for
 * the duration of the call only.
 *
 * Strings. Every string passed in is (pointer, length) with explicit length, and must be UTF-8
 * (WEFT_INVALID_ARGUMENT otherwise); a NULL pointer is allowed only with length 0. Strings
 * returned are UTF-8 with their length, and also NUL-terminated for convenience (text may
 * itself contain NUL). Bytes scalars (WEFT_BYTES) are arbitrary binary data.
 *
 * Threads. A weft_replica may be used from any number of threads at once (as weft::Replica).
 * A weft_txn or weft_view is valid only inside the callback it was passed to, on that thread.
 * Handles must not be freed while another thread uses them.
 */
#ifndef WEFT_H_
#define WEFT_H_

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define WEFT_EXPORT __declspec(dllexport)
#elif defined(__GNUC__)
#define WEFT_EXPORT __attribute__((visibility("default")))
#else
#define WEFT_EXPORT
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Version and errors
 * ------------------------------------------------------------------------------------------- */

/* The ABI version in the soname (libweft.so.WEFT_ABI_VERSION). */
#define WEFT_ABI_VERSION 0

/* Error codes: the values of weft::StatusCode. Fixed; a value is never renumbered or reused. */
typedef enum weft_status {
  WEFT_OK = 0,
  WEFT_NOT_FOUND = 1,
  WEFT_INVALID_ARGUMENT = 2, /* also: a NULL handle, bad UTF-8, a bad enum value */
  WEFT_CORRUPTION = 3,       /* bytes that do not decode or validate (e.g. not a Weft file) */
  WEFT_IO_ERROR = 4,
  WEFT_DISCONNECTED = 5,
  WEFT_PERMISSION_DENIED = 6,
  WEFT_MISSING_DEPENDENCY = 7, /* a change arrived before a change it depends on */
  WEFT_OUT_OF_RANGE = 8,       /* an index or position past the end */
  WEFT_TYPE_MISMATCH = 9,      /* an operation on a value of another type */
  WEFT_UNSUPPORTED_VERSION = 10,
  WEFT_CLOCK_DRIFT = 11,
  WEFT_HISTORY_TRUNCATED = 12,
  WEFT_TIMEOUT = 13,
  WEFT_BUSY = 14,    /* e.g. closing a replica that a sync client still uses */
  WEFT_ABORTED = 15, /* a transaction rolled back on purpose */
  WEFT_INTERNAL = 16 /* a bug, or out of memory */
} weft_status;

/* The library's version string, e.g. "0.1.0". Static storage: do not free. Thread-safe. */
WEFT_EXPORT const char* weft_version(void);

/* A short constant name for a code ("NotFound", ...), "Unknown" for other values. Static
 * storage: do not free. Thread-safe. */
WEFT_EXPORT const char* weft_status_name(int code);

/* The message of the last failed call made on this thread (any handle, or none: e.g. a failed
 * weft_open, or a NULL handle); "" when none failed yet. A new string: free it with
 * weft_string_free. *len (when not NULL) receives its length. NULL only when out of memory. */
WEFT_EXPORT char* weft_thread_errmsg(size_t* len);

/* Frees a string returned by this API. NULL is a no-op. */
WEFT_EXPORT void weft_string_free(char* s);

/* ---------------------------------------------------------------------------------------------
 * Lists of strings (document IDs, map keys)
 * ------------------------------------------------------------------------------------------- */

typedef struct weft_strings weft_strings;

/* The number of strings. 0 for NULL. */
WEFT_EXPORT size_t weft_strings_count(const weft_strings* list);
/* The i-th string (NUL-terminated, borrowed from the list), its length in *len (when not NULL).
 * NULL when list is NULL or i is out of range. */
WEFT_EXPORT const char* weft_strings_get(const weft_strings* list, size_t i, size_t* len);
/* Frees the list and its strings. NULL is a no-op. */
WEFT_EXPORT void weft_strings_free(weft_strings* list);

/* ---------------------------------------------------------------------------------------------
 * Values
 * ------------------------------------------------------------------------------------------- */

/* What a value is: a scalar, or (in results only) a nested CRDT object of that kind. */
typedef enum weft_type {
  WEFT_NULL = 0,
  WEFT_BOOL = 1,
  WEFT_INT = 2,    /* int64 */
  WEFT_DOUBLE = 3, /* IEEE double */
  WEFT_STRING = 4, /* UTF-8 */
  WEFT_BYTES = 5,  /* opaque binary */
  WEFT_MAP = 16,
  WEFT_REGISTER = 17, /* multi-value register: concurrent writes stay as siblings */
  WEFT_LWW = 18,      /* last-writer-wins register (hybrid logical clock) */
  WEFT_COUNTER = 19,
  WEFT_SET = 20,  /* add-wins set of scalars */
  WEFT_LIST = 21, /* list of scalars and nested maps */
  WEFT_TEXT = 22  /* collaborative text, positions in Unicode code points */
} weft_type;

/* An object of a document, named by the dot that created it. The root map is {0, 0}. An object
 * ID stays valid as long as the object exists (on every replica). */
typedef struct weft_obj {
  uint64_t node;
  uint64_t seq;
} weft_obj;

/* One value. As input (writes) only `type` and the matching scalar field count: boolean for
 * WEFT_BOOL, integer for WEFT_INT, real for WEFT_DOUBLE, data/len for WEFT_STRING and
 * WEFT_BYTES; the other fields are ignored. As output (in a weft_values list), object kinds
 * carry `object`, and LWW reads carry the write's hybrid time in time_ms/time_logical. */
typedef struct weft_value {
  int32_t type; /* a weft_type */
  int32_t boolean;
  int64_t integer;
  double real;
  const char* data; /* WEFT_STRING (NUL-terminated in results) or WEFT_BYTES */
  size_t len;
  weft_obj object;
  uint64_t time_ms;
  uint32_t time_logical;
} weft_value;

/* Convenience constructors for inputs (they borrow `s`). */
WEFT_EXPORT weft_value weft_null(void);
WEFT_EXPORT weft_value weft_bool(int b);
WEFT_EXPORT weft_value weft_int(int64_t v);
WEFT_EXPORT weft_value weft_double(double v);
WEFT_EXPORT weft_value weft_string(const char* s, size_t len);
WEFT_EXPORT weft_value weft_bytes(const void* data, size_t len);

/* A list of values returned by a read: the siblings of a map key or register, the elements of
 * a set or list, an LWW register's winner and the values it overwrote. A list read from a map
 * key or register also remembers the read's causal context, so that a later write can replace
 * exactly what was read (weft_txn_map_put_after_read, weft_txn_register_set_after_read). */
typedef struct weft_values weft_values;

/* The number of values. 0 for NULL. */
WEFT_EXPORT size_t weft_values_count(const weft_values* list);
/* Copies the i-th value into *out (its data pointer borrows from the list). WEFT_OUT_OF_RANGE
 * for i past the end, WEFT_INVALID_ARGUMENT for NULL arguments. */
WEFT_EXPORT weft_status weft_values_get(const weft_values* list, size_t i, weft_value* out);
/* Frees the list. NULL is a no-op. */
WEFT_EXPORT void weft_values_free(weft_values* list);

/* ---------------------------------------------------------------------------------------------
 * Replica
 * ------------------------------------------------------------------------------------------- */

typedef struct weft_replica weft_replica;
typedef struct weft_options weft_options;

/* Open options (defaults as weft::ReplicaOptions). Not thread-safe; create, set, pass to
 * weft_open (which copies what it needs), free. NULL when out of memory. */
WEFT_EXPORT weft_options* weft_options_create(void);
WEFT_EXPORT void weft_options_free(weft_options* o);
/* 0: synchronous=NORMAL (survives an app crash, the default); 1: FULL (survives power loss).
 * WEFT_INVALID_ARGUMENT for other values or a NULL options. */
WEFT_EXPORT weft_status weft_options_set_durability(weft_options* o, int full);
/* Write a document's snapshot after this many changes / ops since the last one (0: never). */
WEFT_EXPORT weft_status weft_options_set_snapshot_every(weft_options* o, uint32_t changes,
                                                        uint32_t ops);
/* Whether documents this replica creates are public (nonzero: no owner, anyone may read and write
 * them) or owned by its key (0, the default). */
WEFT_EXPORT weft_status weft_options_set_public_documents(weft_options* o, int public_documents);
/* Whether to create the database when the file does not exist (default 1). */
WEFT_EXPORT weft_status weft_options_set_create_if_missing(weft_options* o, int create);
/* Refuse remote changes whose time is more than max_drift_ms ahead of the local clock (when
 * check is nonzero; default off). */
WEFT_EXPORT weft_status weft_options_set_drift_check(weft_options* o, int check,
                                                     uint64_t max_drift_ms);

/* Opens (or creates, per options; NULL: defaults) the replica at `path` into *out.
 * WEFT_CORRUPTION for a file that is not a Weft database, WEFT_UNSUPPORTED_VERSION for one
 * written by a newer Weft, WEFT_IO_ERROR / WEFT_NOT_FOUND when it cannot be opened or does not
 * exist; nothing is changed on failure and the message is in weft_thread_errmsg. Thread-safe. */
WEFT_EXPORT weft_status weft_open(const char* path, size_t path_len, const weft_options* options,
                                  weft_replica** out);

/* Closes the replica and frees the handle. WEFT_BUSY (and nothing is closed) while a weft_sync
 * made on it or a subscription on it still exists (free and end those first). Resolvers are
 * removed. Call it only when no other thread uses the replica. NULL: WEFT_INVALID_ARGUMENT. */
WEFT_EXPORT weft_status weft_close(weft_replica* r);

/* The message of the last failed call on this replica or on a txn/view/subscription of it, from
 * any thread ("" when none). A new string: free it with weft_string_free. NULL for a NULL
 * replica or when out of memory. In multi-threaded use prefer weft_thread_errmsg. */
WEFT_EXPORT char* weft_replica_errmsg(const weft_replica* r, size_t* len);

/* The replica's stable node ID (random, chosen on first open): its identity in sync (handshake,
 * presence). Thread-safe. */
WEFT_EXPORT weft_status weft_replica_node_id(const weft_replica* r, uint64_t* out);
/* The author ID of the changes this open of the replica makes (weft_commit_info.change.node): the
 * last open's after a clean close, a new one after a crash or when the database was restored from
 * an old copy or copied, so that no change ID is ever reused with other content. Thread-safe. */
WEFT_EXPORT weft_status weft_replica_actor_id(const weft_replica* r, uint64_t* out);
/* This device's identity: the public half of its Ed25519 key pair (made on the first open, kept
 * in the database, whose file is owner-only), as 32 bytes into out[0..31]. Thread-safe. */
WEFT_EXPORT weft_status weft_replica_public_key(const weft_replica* r, uint8_t out[32]);

/* Documents, by ID: 1 to 1024 bytes of UTF-8. All thread-safe. */
/* Creates the document; OK when it exists. */
WEFT_EXPORT weft_status weft_doc_create(weft_replica* r, const char* doc, size_t doc_len);
/* *exists := 1 when the document exists, else 0. */
WEFT_EXPORT weft_status weft_doc_exists(weft_replica* r, const char* doc, size_t doc_len,
                                        int* exists);
/* Removes the document, its log and snapshots. WEFT_NOT_FOUND when absent. */
WEFT_EXPORT weft_status weft_doc_delete(weft_replica* r, const char* doc, size_t doc_len);
/* Every document ID, sorted, into *out (free with weft_strings_free). */
WEFT_EXPORT weft_status weft_doc_list(weft_replica* r, weft_strings** out);
/* Writes a snapshot of the document now (normally done by the snapshot policy). */
WEFT_EXPORT weft_status weft_doc_snapshot(weft_replica* r, const char* doc, size_t doc_len);

/* ---------------------------------------------------------------------------------------------
 * Transactions and reads
 * ------------------------------------------------------------------------------------------- */

typedef struct weft_txn weft_txn;
typedef struct weft_view weft_view;

/* The body of a transaction. Return WEFT_OK to commit; any other code aborts the transaction
 * and becomes the return value of weft_transact. */
typedef weft_status (*weft_txn_fn)(weft_txn* txn, void* user);
/* The body of a read. */
typedef void (*weft_view_fn)(const weft_view* view, void* user);

/* What a commit produced. Release with weft_commit_info_release. */
typedef struct weft_commit_info {
  int changed;         /* 0: the body made no ops; nothing was written */
  weft_obj change;     /* the change's ID: (author node, first seq) */
  char* version_token; /* the document's version after the commit, as a causal token */
  size_t version_token_len;
} weft_commit_info;

/* Frees what *info holds (not info itself) and zeroes it. NULL is a no-op. */
WEFT_EXPORT void weft_commit_info_release(weft_commit_info* info);

/* Runs fn(txn, user) in one transaction on `doc` (created if new). When fn returns WEFT_OK its
 * ops commit as one change and one SQLite transaction; when it returns an error, or the commit
 * fails, NOTHING is left behind (the document is as before) and that error is returned.
 * `info` (may be NULL) receives the commit's result on success.
 * Threads: fn runs on the calling thread, while the replica's writer lock is held: other
 * writers wait, readers proceed. fn may read through weft_txn_view(txn) and write through
 * weft_txn_*; it must not call weft_transact, weft_read or weft_close on this replica (that
 * would deadlock or fail). The txn handle is valid only until fn returns. Change-feed callbacks
 * for the commit run on this thread after the commit, before weft_transact returns. */
WEFT_EXPORT weft_status weft_transact(weft_replica* r, const char* doc, size_t doc_len,
                                      weft_txn_fn fn, void* user, weft_commit_info* info);

/* Runs fn(view, user) with a consistent read-only view of `doc`, on the calling thread.
 * WEFT_NOT_FOUND when the document is absent. The view is valid only until fn returns; fn must
 * not start a transaction on this replica. Any number of threads may read at once. */
WEFT_EXPORT weft_status weft_read(weft_replica* r, const char* doc, size_t doc_len, weft_view_fn fn,
                                  void* user);

/* The read view of a transaction: reads see the transaction's own writes. Valid until the
 * transaction's fn returns. NULL for a NULL txn. */
WEFT_EXPORT const weft_view* weft_txn_view(weft_txn* txn);

/* --- Reads (through a view; in a weft_read or a transaction's weft_txn_view) --------------- */

/* The whole document as human-readable JSON (conflicts as {"conflict": [...]}). Free with
 * weft_string_free. */
WEFT_EXPORT weft_status weft_view_to_json(const weft_view* v, char** out, size_t* out_len);
/* The kind of object `obj` (WEFT_MAP ... WEFT_TEXT). WEFT_NOT_FOUND when it does not exist. */
WEFT_EXPORT weft_status weft_view_kind(const weft_view* v, weft_obj obj, int32_t* out);
/* The keys of map `obj`, sorted (free with weft_strings_free). */
WEFT_EXPORT weft_status weft_view_map_keys(const weft_view* v, weft_obj map, weft_strings** out);
/* Every value of `key` of map `obj` (several: concurrent writes, siblings), with the read's
 * causal context. An absent key gives an empty list (not an error). */
WEFT_EXPORT weft_status weft_view_map_get(const weft_view* v, weft_obj map, const char* key,
                                          size_t key_len, weft_values** out);
/* The nested object of `kind` at `key` of map `obj`. WEFT_NOT_FOUND when the key is absent,
 * WEFT_TYPE_MISMATCH when it holds something else. (A WEFT_REGISTER lookup also finds an LWW
 * register.) */
WEFT_EXPORT weft_status weft_view_map_lookup(const weft_view* v, weft_obj map, const char* key,
                                             size_t key_len, int32_t kind, weft_obj* out);
/* The siblings of a (multi-value) register, with the read's context; empty when never written. */
WEFT_EXPORT weft_status weft_view_register_get(const weft_view* v, weft_obj reg, weft_values** out);
/* An LWW register: value 0 is the current value (with its time), values 1.. are the concurrent
 * writes it overwrote (kept for inspection). Empty when never written. */
WEFT_EXPORT weft_status weft_view_lww_get(const weft_view* v, weft_obj reg, weft_values** out);
WEFT_EXPORT weft_status weft_view_counter_get(const weft_view* v, weft_obj counter, int64_t* out);
/* The elements of a set, in a fixed order (the same on every replica). */
WEFT_EXPORT weft_status weft_view_set_elements(const weft_view* v, weft_obj set, weft_values** out);
/* *out := 1 when `element` (a scalar) is in the set, else 0. */
WEFT_EXPORT weft_status weft_view_set_contains(const weft_view* v, weft_obj set,
                                               const weft_value* element, int* out);
/* The text as UTF-8 (free with weft_string_free). */
WEFT_EXPORT weft_status weft_view_text_read(const weft_view* v, weft_obj text, char** out,
                                            size_t* out_len);
/* The length of a text (code points) or a list (elements). */
WEFT_EXPORT weft_status weft_view_seq_size(const weft_view* v, weft_obj seq, size_t* out);
/* The values of a list (scalars, or nested objects with their kind and ID). */
WEFT_EXPORT weft_status weft_view_list_values(const weft_view* v, weft_obj list, weft_values** out);

/* A stable position in a text or list (a cursor or selection end), tied to an element. */
typedef struct weft_anchor {
  weft_obj item;
  int32_t bias; /* 0: sticks to the element on its left, 1: on its right */
} weft_anchor;
WEFT_EXPORT weft_status weft_view_anchor_at(const weft_view* v, weft_obj seq, size_t index,
                                            int32_t bias, weft_anchor* out);
/* The anchor's current index. WEFT_NOT_FOUND when its element is unknown here. */
WEFT_EXPORT weft_status weft_view_anchor_index(const weft_view* v, weft_obj seq,
                                               const weft_anchor* anchor, size_t* out);

/* --- Writes (inside weft_transact only) ------------------------------------------------------
 * A failed write changes nothing and the transaction stays usable; returning its error from fn
 * aborts the whole transaction. */

/* key := a scalar (replacing every value the key shows now). */
WEFT_EXPORT weft_status weft_txn_map_put(weft_txn* t, weft_obj map, const char* key, size_t key_len,
                                         const weft_value* value);
/* key := value, replacing only the values of `read` (a list from weft_view_map_get of this key);
 * values written concurrently since stay as siblings. */
WEFT_EXPORT weft_status weft_txn_map_put_after_read(weft_txn* t, weft_obj map, const char* key,
                                                    size_t key_len, const weft_value* value,
                                                    const weft_values* read);
/* Removes the key's values. */
WEFT_EXPORT weft_status weft_txn_map_delete(weft_txn* t, weft_obj map, const char* key,
                                            size_t key_len);
/* The nested object of `kind` (WEFT_MAP ... WEFT_TEXT) at `key`, created when the key is absent.
 * WEFT_TYPE_MISMATCH when the key holds another kind. */
WEFT_EXPORT weft_status weft_txn_map_object(weft_txn* t, weft_obj map, const char* key,
                                            size_t key_len, int32_t kind, weft_obj* out);
/* Register or LWW register := scalar. */
WEFT_EXPORT weft_status weft_txn_register_set(weft_txn* t, weft_obj reg, const weft_value* value);
/* Multi-value register := value, replacing exactly the siblings of `read` (from
 * weft_view_register_get): how an app resolves siblings. */
WEFT_EXPORT weft_status weft_txn_register_set_after_read(weft_txn* t, weft_obj reg,
                                                         const weft_value* value,
                                                         const weft_values* read);
WEFT_EXPORT weft_status weft_txn_counter_add(weft_txn* t, weft_obj counter, int64_t delta);
WEFT_EXPORT weft_status weft_txn_set_add(weft_txn* t, weft_obj set, const weft_value* element);
WEFT_EXPORT weft_status weft_txn_set_remove(weft_txn* t, weft_obj set, const weft_value* element);
/* Inserts non-empty UTF-8 at code point `pos`. WEFT_OUT_OF_RANGE past the end. */
WEFT_EXPORT weft_status weft_txn_text_insert(weft_txn* t, weft_obj text, size_t pos,
                                             const char* utf8, size_t len);
/* Deletes `count` elements at `pos` of a text (code points) or list. */
WEFT_EXPORT weft_status weft_txn_seq_delete(weft_txn* t, weft_obj seq, size_t pos, size_t count);
/* Inserts `count` scalars at `pos` of a list. */
WEFT_EXPORT weft_status weft_txn_list_insert(weft_txn* t, weft_obj list, size_t pos,
                                             const weft_value* values, size_t count);
/* Inserts a new nested object of `kind` at `pos` of a list; its ID into *out. */
WEFT_EXPORT weft_status weft_txn_list_insert_object(weft_txn* t, weft_obj list, size_t pos,
                                                    int32_t kind, weft_obj* out);

/* ---------------------------------------------------------------------------------------------
 * Change feed
 * ------------------------------------------------------------------------------------------- */

/* What one op of a commit changed (Patch in weft/crdt/document.h). */
typedef enum weft_patch_type {
  WEFT_PATCH_MAP_KEY = 1,    /* `key` of map `object` now has `siblings` values (0: gone) */
  WEFT_PATCH_REGISTER = 2,   /* register `object` now has `siblings` values */
  WEFT_PATCH_COUNTER = 3,    /* counter `object` changed by `delta` */
  WEFT_PATCH_SET_ADD = 4,    /* `element` joined set `object` */
  WEFT_PATCH_SET_REMOVE = 5, /* `element` left set `object` */
  WEFT_PATCH_INSERT = 6,     /* `length` elements (`text` for a text) inserted at `index` */
  WEFT_PATCH_DELETE = 7      /* `length` elements deleted at `index` */
} weft_patch_type;

typedef struct weft_patch {
  int32_t type; /* a weft_patch_type */
  weft_obj object;
  const char* key;
  size_t key_len;
  size_t siblings;
  int64_t delta;
  weft_value element;
  size_t index;
  size_t length;
  const char* text;
  size_t text_len;
} weft_patch;

/* One commit, local or remote. Every pointer in it is valid only during the callback. */
typedef struct weft_change_event {
  const char* doc;
  size_t doc_len;
  int local; /* 1: committed by this replica, 0: a remote change */
  weft_obj change;
  const weft_patch* patches;
  size_t patch_count;
} weft_change_event;

typedef void (*weft_change_fn)(const weft_change_event* event, void* user);
typedef struct weft_subscription weft_subscription;

/* Calls fn(event, user) after each commit of `doc` (doc_len 0: every document), in commit
 * order, one call at a time. Threads: fn runs on the thread that committed: the caller of
 * weft_transact for local commits, a weft_sync network thread for remote ones; after the commit,
 * with no lock held: it may read the replica and may start transactions (on the same document
 * too), but a sync callback must not block for long. The subscription handle goes into *out;
 * end it with weft_unsubscribe before weft_close (which fails with WEFT_BUSY until then). */
WEFT_EXPORT weft_status weft_subscribe(weft_replica* r, const char* doc, size_t doc_len,
                                       weft_change_fn fn, void* user, weft_subscription** out);
/* Ends the subscription and frees it. When it returns, fn is not running (unless it is called
 * from inside fn itself) and will not be called again, so `user` may be freed. NULL: no-op. */
WEFT_EXPORT void weft_unsubscribe(weft_subscription* s);

/* ---------------------------------------------------------------------------------------------
 * Resolve on write
 * ------------------------------------------------------------------------------------------- */

/* A map key that a remote change left with concurrent siblings. Pointers are valid during the
 * callback only. */
typedef struct weft_conflict {
  const char* doc;
  size_t doc_len;
  weft_obj map;
  const char* key;
  size_t key_len;
  const weft_values* siblings; /* the values (scalars or objects) */
} weft_conflict;

/* Returns 1 after filling *chosen with a scalar to write as a local change that replaces exactly
 * the siblings shown (its data is copied when fn returns; it may point into `siblings`), or 0 to
 * leave the siblings for the app to resolve on read. */
typedef int (*weft_resolver_fn)(const weft_conflict* conflict, weft_value* chosen, void* user);

/* Sets the resolver for `doc` (doc_len 0: every document without its own), replacing any earlier
 * one; fn NULL removes it. Threads: fn runs on the thread that applied the remote change (a
 * weft_sync network thread, or the caller of weft_apply_changes), after the change is committed
 * and reported to the change feed; it may read the replica. When this call returns, a replaced
 * resolver is no longer running (unless replaced from inside itself). A resolver choice that
 * fails validation (e.g. bad UTF-8) is ignored and the siblings stay. weft_close removes the
 * resolvers. */
WEFT_EXPORT weft_status weft_set_conflict_resolver(weft_replica* r, const char* doc, size_t doc_len,
                                                   weft_resolver_fn fn, void* user);

/* ---------------------------------------------------------------------------------------------
 * Access lists (docs/security.md). A document this replica creates is owned by its key (unless
 * weft_options_set_public_documents): only the devices its owner and admins grant a role read or
 * write it, on every relay and device. Grants and revokes are changes, synced like any other.
 * ------------------------------------------------------------------------------------------- */

typedef enum weft_role {
  WEFT_ROLE_NONE = 0,
  WEFT_ROLE_READER = 1,
  WEFT_ROLE_WRITER = 2,
  WEFT_ROLE_ADMIN = 3,
  WEFT_ROLE_OWNER = 4
} weft_role;

/* Gives the device with public key `key` (32 bytes) `role` (reader, writer or admin) in `doc`.
 * WEFT_PERMISSION_DENIED unless this device is the owner or an admin (admin: owner only). */
WEFT_EXPORT weft_status weft_doc_grant(weft_replica* r, const char* doc, size_t doc_len,
                                       const uint8_t key[32], int role);
/* Takes that device's role away: its later changes are refused everywhere the revocation
 * reaches, and relays stop serving it the document. */
WEFT_EXPORT weft_status weft_doc_revoke(weft_replica* r, const char* doc, size_t doc_len,
                                        const uint8_t key[32]);
/* The access list as JSON, {"<64 hex key>": "owner"|"admin"|"writer"|"reader"} ("{}" for a public
 * document); free with weft_string_free. WEFT_NOT_FOUND when the document is absent. */
WEFT_EXPORT weft_status weft_doc_members(weft_replica* r, const char* doc, size_t doc_len,
                                         char** out, size_t* out_len);
/* Creates `doc` end-to-end encrypted and owned by this device (docs/security.md): relays store
 * and forward only ciphertext; weft_doc_grant and weft_doc_revoke rotate its key.
 * WEFT_INVALID_ARGUMENT when the document exists already. */
WEFT_EXPORT weft_status weft_doc_create_encrypted(weft_replica* r, const char* doc, size_t doc_len);
/* The document's encryption as JSON, {"encrypted": bool, "epoch": N, "has_key": bool,
 * "missing_epochs": [N, ...]}: a document holding content of a missing epoch cannot be read here
 * (reads fail with WEFT_PERMISSION_DENIED). Free with weft_string_free. WEFT_NOT_FOUND when the
 * document is absent. */
WEFT_EXPORT weft_status weft_doc_encryption(weft_replica* r, const char* doc, size_t doc_len,
                                            char** out, size_t* out_len);
/* *role := the role (weft_role) of `key` in `doc`; *owned := 0 for a public document. */
WEFT_EXPORT weft_status weft_doc_role(weft_replica* r, const char* doc, size_t doc_len,
                                      const uint8_t key[32], int* role, int* owned);

/* ---------------------------------------------------------------------------------------------
 * Causal tokens (cross-device read-after-write)
 * ------------------------------------------------------------------------------------------- */

/* The document's current version as a short URL-safe token (free with weft_string_free).
 * WEFT_NOT_FOUND when the document is absent. Thread-safe. */
WEFT_EXPORT weft_status weft_causal_token(weft_replica* r, const char* doc, size_t doc_len,
                                          char** out, size_t* out_len);
/* *out := 1 when this replica holds everything `token` (from any replica) names, else 0.
 * WEFT_INVALID_ARGUMENT for a malformed token. */
WEFT_EXPORT weft_status weft_token_satisfied(weft_replica* r, const char* token, size_t token_len,
                                             int* out);
/* Blocks the calling thread until the replica holds everything `token` names (WEFT_OK) or
 * timeout_ms passes (WEFT_TIMEOUT). Changes arrive through a weft_sync on another thread. */
WEFT_EXPORT weft_status weft_wait_for_token(weft_replica* r, const char* token, size_t token_len,
                                            uint64_t timeout_ms);

/* ---------------------------------------------------------------------------------------------
 * Time travel: a document as it was at a version, what changed between two versions, and its
 * history. Each call rebuilds the document from its op log (the cost grows with its history).
 * A version is a causal token of the document (weft_causal_token, weft_history_entry.token);
 * an empty token (NULL/0) is the document before its first change.
 * ------------------------------------------------------------------------------------------- */

/* Calls fn(view, user) with a read-only view of `doc` as it was at `token`, on this thread;
 * the view is valid only during the call. Fails without calling fn: WEFT_NOT_FOUND when the
 * document is absent or this replica does not hold all of the version (yet);
 * WEFT_INVALID_ARGUMENT for a malformed token, a token of another document, or a version the
 * document cannot have been at; WEFT_HISTORY_TRUNCATED when the version is older than the
 * snapshot this replica's history of the document starts from. Thread-safe. */
WEFT_EXPORT weft_status weft_read_at(weft_replica* r, const char* doc, size_t doc_len,
                                     const char* token, size_t token_len, weft_view_fn fn,
                                     void* user);

/* A list of patches (free with weft_patches_free). */
typedef struct weft_patches weft_patches;
WEFT_EXPORT size_t weft_patches_count(const weft_patches* p);
/* The i-th patch; its pointers borrow from the list. WEFT_OUT_OF_RANGE past the end. */
WEFT_EXPORT weft_status weft_patches_get(const weft_patches* p, size_t i, weft_patch* out);
WEFT_EXPORT void weft_patches_free(weft_patches* p);

/* What changed from version `from` to version `to` of `doc`: the patches the change feed would
 * have reported while applying the changes `to` holds beyond `from`. `from` must be an earlier
 * version (WEFT_INVALID_ARGUMENT otherwise); the other failures are weft_read_at's. */
WEFT_EXPORT weft_status weft_diff(weft_replica* r, const char* doc, size_t doc_len,
                                  const char* from, size_t from_len, const char* to, size_t to_len,
                                  weft_patches** out);

/* One change of a document's history. `token` borrows from the list. */
typedef struct weft_history_entry {
  weft_obj change;  /* (author, first seq) */
  uint64_t end_seq; /* its last seq */
  uint64_t lamport;
  uint64_t time_ms; /* the author's clock at commit (hybrid logical time, milliseconds) */
  size_t ops;
  const char* token; /* the version the change led to, as a causal token */
  size_t token_len;
} weft_history_entry;
typedef struct weft_history weft_history;
/* The changes of `doc` in this replica's log order (a causal order), oldest first; after the base
 * snapshot when the replica was bootstrapped from one. WEFT_NOT_FOUND when absent. Free with
 * weft_history_free. Thread-safe. */
WEFT_EXPORT weft_status weft_doc_history(weft_replica* r, const char* doc, size_t doc_len,
                                         weft_history** out);
WEFT_EXPORT size_t weft_history_count(const weft_history* h);
/* The i-th entry. WEFT_OUT_OF_RANGE past the end. */
WEFT_EXPORT weft_status weft_history_get(const weft_history* h, size_t i, weft_history_entry* out);
WEFT_EXPORT void weft_history_free(weft_history* h);

/* ---------------------------------------------------------------------------------------------
 * Raw change exchange (sync without a network, e.g. through files)
 * ------------------------------------------------------------------------------------------- */

typedef struct weft_blobs weft_blobs;
WEFT_EXPORT size_t weft_blobs_count(const weft_blobs* b);
/* The i-th blob (borrowed). NULL when out of range. */
WEFT_EXPORT const uint8_t* weft_blobs_get(const weft_blobs* b, size_t i, size_t* len);
WEFT_EXPORT void weft_blobs_free(weft_blobs* b);

/* The encoded changes of `doc` that a replica at `token` (a causal token of this document;
 * NULL/0: one that has nothing) lacks, in causal order. Free with weft_blobs_free. */
WEFT_EXPORT weft_status weft_changes_since(weft_replica* r, const char* doc, size_t doc_len,
                                           const char* token, size_t token_len, weft_blobs** out);
/* Validates and applies encoded changes (any order) in one transaction: all or nothing.
 * WEFT_CORRUPTION for a malformed change, WEFT_MISSING_DEPENDENCY when one depends on a change
 * neither held nor given. *applied (may be NULL) := the number of new changes applied. */
WEFT_EXPORT weft_status weft_apply_changes(weft_replica* r, const char* doc, size_t doc_len,
                                           const uint8_t* const* blobs, const size_t* lens,
                                           size_t count, size_t* applied);

/* ---------------------------------------------------------------------------------------------
 * Sync with peers (relays or other replicas) over WebSockets
 * ------------------------------------------------------------------------------------------- */

typedef struct weft_sync weft_sync;
typedef struct weft_sync_options weft_sync_options;

/* Sync options (defaults as weft::SyncOptions). Not thread-safe. */
WEFT_EXPORT weft_sync_options* weft_sync_options_create(void);
WEFT_EXPORT void weft_sync_options_free(weft_sync_options* o);
/* Adds a document to sync (none added: every document either side has). */
WEFT_EXPORT weft_status weft_sync_options_add_document(weft_sync_options* o, const char* doc,
                                                       size_t doc_len);
/* Reconnection backoff: the n-th failure waits min(max, initial * 2^n), jittered. */
WEFT_EXPORT weft_status weft_sync_options_set_backoff(weft_sync_options* o, uint64_t initial_ms,
                                                      uint64_t max_ms);
/* Seed of the backoff jitter (0: random). */
WEFT_EXPORT weft_status weft_sync_options_set_seed(weft_sync_options* o, uint64_t seed);
/* The admission token for relays started with --admission-key (weft_issue_token's hex string). */
WEFT_EXPORT weft_status weft_sync_options_set_token(weft_sync_options* o, const char* hex,
                                                    size_t hex_len);
/* Refuse a relay that does not prove this public key (32 bytes; `weft-relay --print-key`). */
WEFT_EXPORT weft_status weft_sync_options_set_relay_key(weft_sync_options* o,
                                                        const uint8_t key[32]);
/* An admission token (hex; free with weft_string_free) for the device with public key `device`,
 * valid for ttl_s seconds, signed by `issuer`'s key: an app's account server keeps a replica as
 * its issuing identity and starts its relays with --admission-key set to that replica's key. */
WEFT_EXPORT weft_status weft_issue_token(const weft_replica* issuer, const uint8_t device[32],
                                         uint64_t ttl_s, char** out, size_t* out_len);
/* wss:// peers: the CA certificates (a PEM file, e.g. a private CA or a self-signed server
 * certificate) that a server's certificate must chain to; path_len 0: the system's CAs (the
 * default). The certificate must also name the URL's host. The file is read by weft_sync_create,
 * which fails with WEFT_INVALID_ARGUMENT when it cannot be used; a server that is not trusted
 * fails each connection ("the server's certificate was not trusted: ...", retried with backoff)
 * and ends weft_sync_wait_until_synced with WEFT_PERMISSION_DENIED. */
WEFT_EXPORT weft_status weft_sync_options_set_ca_file(weft_sync_options* o, const char* path,
                                                      size_t path_len);

/* Starts a sync client for `r` (options NULL: defaults) with its own network thread. The
 * replica must outlive it: weft_close fails with WEFT_BUSY until weft_sync_free. */
WEFT_EXPORT weft_status weft_sync_create(weft_replica* r, const weft_sync_options* options,
                                         weft_sync** out);
/* Closes every connection (waiting up to about a second for close handshakes), stops the thread
 * and frees the client. Must not be called from a weft_sync callback. NULL: no-op. */
WEFT_EXPORT void weft_sync_free(weft_sync* s);
/* The message of the last failed call on this client ("" when none); free with
 * weft_string_free. */
WEFT_EXPORT char* weft_sync_errmsg(const weft_sync* s, size_t* len);

/* Every weft_sync function below is thread-safe. */
/* Starts syncing with the peer at `url` (ws://host:port[/path], or wss://host[:port][/path] over
 * TLS, see weft_sync_options_set_ca_file); OK when already added.
 * WEFT_INVALID_ARGUMENT for a URL that is not ws://. Connecting happens in the background. */
WEFT_EXPORT weft_status weft_sync_add_peer(weft_sync* s, const char* url, size_t url_len);
/* Closes the connection to `url`. WEFT_NOT_FOUND when not added. */
WEFT_EXPORT weft_status weft_sync_remove_peer(weft_sync* s, const char* url, size_t url_len);

/* What a completed sync exchanged. */
typedef struct weft_sync_summary {
  uint64_t changes_sent;
  uint64_t changes_received;
  uint64_t documents;
} weft_sync_summary;

/* Blocks until both sides hold each other's changes of every synced document and the peer has
 * acknowledged them (WEFT_OK, *summary filled when not NULL), or timeout_ms passes
 * (WEFT_TIMEOUT, the message says what is awaited). WEFT_NOT_FOUND for a URL not added. */
WEFT_EXPORT weft_status weft_sync_wait_until_synced(weft_sync* s, const char* url, size_t url_len,
                                                    uint64_t timeout_ms,
                                                    weft_sync_summary* summary);
/* Blocks until a peer (`url`, or any when url_len is 0) has acknowledged storing durably every
 * change that `token` (a causal token of `doc`, e.g. weft_commit_info.version_token) names, or
 * timeout_ms passes (WEFT_TIMEOUT). */
WEFT_EXPORT weft_status weft_sync_wait_for_ack(weft_sync* s, const char* doc, size_t doc_len,
                                               const char* token, size_t token_len,
                                               uint64_t timeout_ms, const char* url,
                                               size_t url_len);
/* Durability on several relays: blocks until at least `quorum` of the client's peers have each
 * acknowledged storing every change `token` names (on the current connection or an earlier
 * one), or timeout_ms passes (WEFT_TIMEOUT, the message says how many did).
 * WEFT_INVALID_ARGUMENT for a quorum of 0 or over the number of peers. */
WEFT_EXPORT weft_status weft_sync_wait_for_acks(weft_sync* s, const char* doc, size_t doc_len,
                                                const char* token, size_t token_len, size_t quorum,
                                                uint64_t timeout_ms);

/* Connection states. */
typedef enum weft_connection_state {
  WEFT_CONNECTING = 0,
  WEFT_CONNECTED = 1,
  WEFT_BACKOFF = 2, /* the last attempt failed or the link dropped; waiting to retry */
  WEFT_STOPPED = 3
} weft_connection_state;

/* One peer's status (pointers borrow from the weft_peers list). */
typedef struct weft_peer_info {
  const char* url;
  size_t url_len;
  int32_t state; /* a weft_connection_state */
  int has_peer_node;
  uint64_t peer_node;
  int peer_is_relay;
  const char* last_error; /* why the last connection ended or attempt failed ("" when none) */
  size_t last_error_len;
  uint32_t failed_attempts;
  uint64_t changes_sent; /* since the peer was added */
  uint64_t changes_received;
  uint64_t duplicates_received;
  size_t document_count;
} weft_peer_info;

/* Replication lag of one document with one peer. */
typedef struct weft_doc_sync_info {
  const char* doc;
  size_t doc_len;
  int live;                             /* both sides announced it on the current connection */
  uint64_t acknowledged_operations;     /* ops the peer acknowledged storing durably */
  uint64_t unacknowledged_changes;      /* local changes the peer has not acknowledged yet */
  int64_t oldest_unacknowledged_age_ms; /* age of the oldest of them; -1 when none */
  uint64_t behind_operations;           /* ops the peer holds that this replica lacks */
  uint64_t incoming_remaining;          /* catch-up progress */
  uint64_t changes_sent;                /* on the current connection */
  uint64_t changes_received;
} weft_doc_sync_info;

typedef struct weft_peers weft_peers;
/* A snapshot of every peer's connection state and replication lag (free with weft_peers_free). */
WEFT_EXPORT weft_status weft_sync_peers(weft_sync* s, weft_peers** out);
WEFT_EXPORT size_t weft_peers_count(const weft_peers* p);
/* WEFT_OUT_OF_RANGE past the end. */
WEFT_EXPORT weft_status weft_peers_get(const weft_peers* p, size_t i, weft_peer_info* out);
WEFT_EXPORT weft_status weft_peers_document(const weft_peers* p, size_t i, size_t j,
                                            weft_doc_sync_info* out);
WEFT_EXPORT void weft_peers_free(weft_peers* p);

/* Presence: ephemeral data (cursors, who is online), never stored. Sends `payload` (at most
 * 64 KiB of bytes) to every peer syncing `doc`. WEFT_DISCONNECTED when no peer is connected. */
WEFT_EXPORT weft_status weft_sync_publish_presence(weft_sync* s, const char* doc, size_t doc_len,
                                                   const void* payload, size_t payload_len);
/* Called with a remote node's presence. Pointers are valid during the call only. */
typedef void (*weft_presence_fn)(const char* doc, size_t doc_len, uint64_t node,
                                 const void* payload, size_t payload_len, void* user);
/* Sets (fn NULL: clears) the presence callback. Threads: fn runs on the client's network thread
 * and must not block nor call weft_sync_free; it may call other weft_sync functions. When this
 * returns, an earlier callback is no longer running (unless called from inside it). */
WEFT_EXPORT weft_status weft_sync_set_presence_callback(weft_sync* s, weft_presence_fn fn,
                                                        void* user);

/* One-shot sync: connects to `url`, syncs `doc` (doc_len 0: every document) until both sides
 * have each other's changes, disconnects. Blocks the caller. WEFT_TIMEOUT, the peer's refusal,
 * or WEFT_INVALID_ARGUMENT for a bad URL. */
WEFT_EXPORT weft_status weft_sync_once(weft_replica* r, const char* url, size_t url_len,
                                       const char* doc, size_t doc_len, uint64_t timeout_ms,
                                       weft_sync_summary* summary);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_H_ */
