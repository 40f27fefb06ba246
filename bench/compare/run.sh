#!/bin/sh
# Runs weft-bench and the Node.js libraries (compare.mjs) on the same traces, in the same run,
# and prints a side-by-side table with the ratios.
#   run.sh WEFT_BENCH_BINARY [TRACE_FILE...]   (default: every trace in ../../../shared/traces,
#                                               and A1.json and A2.json in $EG_DATASETS if set)
# EG_DATASETS: the datasets/ folder of the Eg-walker paper's repository (github.com/josephg/
# egwalker-paper), where A1.yjs and A1.am sit beside A1.json: Yjs and Automerge load those.
# Installs yjs, loro-crdt and @automerge/automerge into bench/compare/node_modules (git-ignored)
# on first use.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bench=${1:?usage: run.sh WEFT_BENCH_BINARY [TRACE_FILE...]}
shift
if [ $# -eq 0 ]; then
  set -- "$here"/../../../shared/traces/*.json.gz
  if [ -n "${EG_DATASETS:-}" ]; then
    set -- "$@" "$EG_DATASETS/A1.json" "$EG_DATASETS/A2.json"
  fi
fi
if [ ! -d "$here/node_modules/yjs" ] || [ ! -d "$here/node_modules/loro-crdt" ] ||
   [ ! -d "$here/node_modules/@automerge/automerge" ]; then
  (cd "$here" && npm install --no-audit --no-fund >&2)
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for trace in "$@"; do
  "$bench" trace "$trace" | tee -a "$out" >&2 || true
  for lib in yjs loro automerge; do
    node "$here/compare.mjs" --lib "$lib" "$trace" | tee -a "$out" >&2 || true
  done
done
node "$here/table.mjs" < "$out"
