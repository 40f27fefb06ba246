#!/usr/bin/env bash
# make demo: a relay on an embedded store and two demo windows (Alice and Bob, two replicas) side
# by side. Usage: run-demo.sh BUILD_DIR PORT DATA_DIR. Stops the relay when both windows close.
# The relay is secure as started (authenticated devices, access lists): Alice's window creates the
# document and owns it; Bob's waits until Alice invites his key (see apps/desktop-demo/README.md).
set -euo pipefail
build=${1:-build}
port=${2:-8790}
data=${3:-./weft-demo-data}
mkdir -p "$data"
url="ws://127.0.0.1:$port"

if [[ -z "${DISPLAY:-}" && -z "${WAYLAND_DISPLAY:-}" ]]; then
  echo "make demo: no display (DISPLAY is not set); try 'make demo-screenshot' for a headless run" >&2
  exit 1
fi

"$build/sync-server/weft-relay" --listen "127.0.0.1:$port" --data "$data/relay" &
relay=$!
trap 'kill $relay 2>/dev/null; wait $relay 2>/dev/null || true' EXIT
for _ in $(seq 50); do  # until the relay listens
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 0.1
done

demo="$build/apps/desktop-demo/weft-demo"
"$demo" --db "$data/alice.db" --relay "$url" --name Alice --side left &
alice=$!
sleep 1.5  # Alice creates the document first: it is hers, and Bob's window waits to be invited
"$demo" --db "$data/bob.db" --relay "$url" --name Bob --side right &
bob=$!
echo "weft demo: relay on $url, data in $data; close both windows to stop"
echo "weft demo: Alice owns the document; to invite Bob, press Copy beside his key (People panel),"
echo "           paste it into Alice's Invite field, choose writer or reader, press Invite"
wait $alice $bob || true
