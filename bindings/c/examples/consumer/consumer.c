/* Uses the installed C API: opens a replica, commits a change, reads it back. */
#include <stdio.h>
#include <string.h>
#include <weft.h>

static const weft_obj kRoot = {0, 0};

static weft_status write(weft_txn* t, void* user) {
  weft_value v = weft_string("from C", 6);
  weft_obj counter;
  weft_status s;
  (void)user;
  if ((s = weft_txn_map_put(t, kRoot, "greeting", 8, &v)) != WEFT_OK) return s;
  if ((s = weft_txn_map_object(t, kRoot, "count", 5, WEFT_COUNTER, &counter)) != WEFT_OK) return s;
  return weft_txn_counter_add(t, counter, 2);
}

static void read(const weft_view* v, void* user) {
  char** json = user;
  size_t len;
  if (weft_view_to_json(v, json, &len) != WEFT_OK) *json = NULL;
}

int main(int argc, char** argv) {
  weft_replica* r = NULL;
  char* json = NULL;
  int ok;
  if (argc != 2) return 2;
  if (weft_open(argv[1], strlen(argv[1]), NULL, &r) != WEFT_OK) return 1;
  if (weft_transact(r, "doc", 3, write, NULL, NULL) != WEFT_OK) return 1;
  if (weft_read(r, "doc", 3, read, &json) != WEFT_OK || !json) return 1;
  ok = strstr(json, "from C") != NULL && strstr(json, "2") != NULL;
  printf("weft %s: %s\n", weft_version(), json);
  weft_string_free(json);
  if (weft_close(r) != WEFT_OK) return 1;
  return ok ? 0 : 1;
}
