#!/bin/sh
# Checks the dynamic symbol table of libweft.so: every defined, exported symbol is weft_*, the C
# API's entry points are there, and the soname is the versioned one.
# Usage: check_exports.sh LIBRARY EXPECTED_SONAME
set -eu
lib=$1
want_soname=$2
syms=$(nm -D --defined-only "$lib" | awk '{print $NF}' | sed 's/@.*//')
count=$(printf '%s\n' "$syms" | grep -c '^weft_' || true)
bad=$(printf '%s\n' "$syms" | grep -v '^weft_' | grep -v '^WEFT_0$' || true)
if [ -n "$bad" ]; then
  echo "non-weft_ symbols exported from $lib:"
  printf '%s\n' "$bad" | head -50
  exit 1
fi
for f in weft_open weft_close weft_transact weft_read weft_subscribe weft_sync_create \
         weft_thread_errmsg weft_string_free; do
  printf '%s\n' "$syms" | grep -qx "$f" || { echo "missing export: $f"; exit 1; }
done
soname=$(objdump -p "$lib" | awk '/SONAME/ {print $2}')
if [ "$soname" != "$want_soname" ]; then
  echo "soname is '$soname', expected '$want_soname'"
  exit 1
fi
echo "ok: $count weft_ symbols exported, nothing else; soname $soname"
