#!/bin/sh
# Installs the build tree into a temporary prefix, then builds and runs a small external project
# against it twice: with CMake's find_package(Weft), and with pkg-config and a plain C compiler.
# Usage: install_test.sh BUILD_DIR CONSUMER_SOURCE_DIR
set -eu
build=$1
consumer=$2
tmp=$(mktemp -d /tmp/weft-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

cmake --install "$build" --prefix "$prefix" >/dev/null
test -f "$prefix/include/weft.h"
test -f "$prefix/include/weft/replica.h"
test -f "$prefix/include/weft/status.h"
test -f "$prefix/include/weft/crdt/document.h"
test -f "$prefix/lib/cmake/Weft/WeftConfig.cmake"
test -f "$prefix/lib/cmake/Weft/WeftConfigVersion.cmake"
test -f "$prefix/lib/pkgconfig/weft.pc"
test -L "$prefix/lib/libweft.so"
test -e "$prefix/lib/libweft.so.0"

# 1. find_package(Weft) (both targets).
cmake -S "$consumer" -B "$tmp/build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
  >/dev/null
cmake --build "$tmp/build" -j2 >/dev/null
"$tmp/build/consumer_c" "$tmp/c.db"
"$tmp/build/consumer_sdk" "$tmp/sdk.db"

# 2. pkg-config, the C API alone.
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
pkg-config --exists weft
test "$(pkg-config --modversion weft)" = "$(sed -n 's/^Version: //p' "$prefix/lib/pkgconfig/weft.pc")"
libdir=$(pkg-config --variable=libdir weft)
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror "$consumer/consumer.c" -o "$tmp/consumer_pc" \
  $(pkg-config --cflags --libs weft) -Wl,-rpath,"$libdir"
"$tmp/consumer_pc" "$tmp/pc.db"
echo "ok: installed into $prefix; find_package(Weft) and pkg-config consumers built and ran"
