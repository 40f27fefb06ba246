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
)
if [[ "${1:-}" == "fuzz" ]]; then
  packages+=(clang-14 libfuzzer-14-dev)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
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
