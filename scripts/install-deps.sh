#!/usr/bin/env bash
# Installs, idempotently, every Debian 12 package Weft needs to build and test.
# Does nothing (and needs no network) when everything is already present.
# `install-deps.sh fuzz` also installs what `make fuzz` needs (clang 14 and libFuzzer).
set -euo pipefail

packages=(
  build-essential cmake make pkg-config git
  catch2                # unit tests (Catch2 v2, catch2/catch.hpp)
  libbenchmark-dev      # bench/
  zlib1g-dev            # reading gzipped editing traces in bench/ and tests/
  libsqlite3-dev        # sdk/ storage
  postgresql-15 libpq-dev  # the relays' PostgreSQL store (libpq); tests start a real server
  libboost1.81-dev      # Boost.Asio and Boost.Beast: WebSocket sync client and relay
  capnproto libcapnp-dev  # sync protocol messages (Cap'n Proto 0.9)
  libsodium-dev         # identities (key pairs)
  libssl-dev            # TLS (wss://): OpenSSL under Beast's ssl_stream, and test certificates
  python3
  python3-venv          # bindings/python: a venv to pip-install the package into (process test)
  python3-pip           # pip install PREFIX/share/weft/python, offline (--no-index)
  python3-setuptools    # the package's build backend (pyproject.toml), without network
  python3-wheel         # setuptools builds the wheel pip installs with it
  openjdk-17-jdk-headless  # bindings/java: javac and the JNI headers
  junit5                # bindings/java tests: JUnit 5 jars and console launcher in /usr/share/java
  qt6-base-dev          # apps/desktop-demo: Qt 6 Widgets, and Qt Test for its test
  qt6-qpa-plugins       # Qt platform plugins (offscreen for the test, xcb for windows)
  fonts-dejavu-core     # a font for the demo's text, also under Xvfb
  xvfb xauth            # make demo-screenshot: the scripted session under xvfb-run
  emscripten            # bindings/web: crdt/ compiled to WebAssembly (emcc 3.1.6, prebuilt libraries)
  nodejs                # bindings/web tests (node --test); emscripten's JS tools
  chromium              # bindings/web browser_* tests: headless Chromium, driven by playwright-core
)
# npm: Debian's nodejs 18 comes without it (package npm); a Node.js that bundles it needs none.
if ! command -v npm >/dev/null; then
  packages+=(npm)
fi
if [[ "${1:-}" == "fuzz" ]]; then
  packages+=(clang-14 libfuzzer-14-dev)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# bindings/web's npm dependencies, pinned in its package-lock.json: installed with `npm ci` into
# bindings/web/node_modules (git-ignored), again only when the lock file changed since.
install_npm_deps() {
  local web stamp sum
  web="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/bindings/web"
  stamp="$web/node_modules/.weft-lock-sha256"
  sum="$(sha256sum "$web/package-lock.json" | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$sum" ]]; then
    return 0
  fi
  echo "install-deps: npm ci in $web"
  (cd "$web" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
  echo "$sum" >"$stamp"
}

if ((${#missing[@]} == 0)); then
  install_npm_deps
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then SUDO=sudo; else
    echo "install-deps: missing packages (${missing[*]}) and not root; install them or run as root" >&2
    exit 1
  fi
else
  SUDO=
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
install_npm_deps
