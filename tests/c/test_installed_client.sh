#!/usr/bin/env bash
# Installs libtensord-client from the build tree into a temporary prefix, builds the example
# program against it the way a user would (pkg-config, shared library), and runs it against a
# real daemon on a temporary Unix socket.
# Usage: test_installed_client.sh BUILD_DIR SOURCE_DIR [EXTRA_CFLAGS]
set -euo pipefail
build=$1
src=$2
extra=${3:-}
tmp=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
cmake --install "$build" --prefix "$tmp/prefix" --component Unspecified >/dev/null
pc=$(dirname "$(find "$tmp/prefix" -name tensord-client.pc | head -n 1)")
export PKG_CONFIG_PATH=$pc
# shellcheck disable=SC2046
# shellcheck disable=SC2086
cc -std=c11 -Wall -Werror $extra -o "$tmp/example" "$src/client/c/examples/example.c" \
    $(pkg-config --cflags --libs tensord-client)
libdir=$(pkg-config --variable=libdir tensord-client)
"$build/server/tensord" --listen "unix://$tmp/s.sock" >"$tmp/out" 2>"$tmp/log" &
pid=$!
for _ in $(seq 200); do grep -q '^listening' "$tmp/out" && break; sleep 0.05; done
LD_LIBRARY_PATH=$libdir "$tmp/example" "unix://$tmp/s.sock"
kill -TERM "$pid"
wait "$pid"
pid=
echo "installed client example: ok"
