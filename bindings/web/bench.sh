#!/bin/sh
# Weft's core in WebAssembly (bindings/web, through its JS API) beside Yjs and Loro, on the same
# editing traces in the same run, each library in its own Node.js process (bench/compare's
# compare.mjs: apply = each agent's replica making its edits, one change per txn; merge = a fresh
# replica applying every change; snapshot and load). Prints JSON lines, then a table.
#   bench.sh [TRACE_FILE...]   (default: every trace in ../../../shared/traces)
# WEFT_WEB_PKG: the built package (default build/bindings/web/pkg). Installs bench/compare's npm
# packages (yjs, loro-crdt) on first use, as bench/compare/run.sh does.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
compare=$here/../../bench/compare
if [ $# -eq 0 ]; then
  set -- "$here"/../../../shared/traces/*.json.gz
fi
if [ ! -d "$compare/node_modules/yjs" ] || [ ! -d "$compare/node_modules/loro-crdt" ]; then
  (cd "$compare" && npm install --no-audit --no-fund >&2)
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for trace in "$@"; do
  for lib in weft-wasm yjs loro; do
    node "$compare/compare.mjs" --lib "$lib" "$trace" | tee -a "$out" >&2 || true
  done
done
node "$compare/table.mjs" < "$out"
