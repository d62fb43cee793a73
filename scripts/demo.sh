#!/usr/bin/env bash
# The main job: set up, build, start a daemon on a private Unix socket, run the demo client
# (a computation done in the daemon, checked against NumPy), stop the daemon.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/setup.sh"
"$here/scripts/build.sh" "$here/build"
tmp=$(mktemp -d)
sock="$tmp/tensord.sock"
"$here/build/server/tensord" --listen "unix://$sock" >"$tmp/out" 2>"$tmp/log" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do grep -q '^listening' "$tmp/out" && break; sleep 0.05; done
grep -q '^listening' "$tmp/out" || { cat "$tmp/log"; echo "demo: daemon did not start" >&2; exit 1; }
echo "demo: daemon pid $pid on unix://$sock"
"$here/build/venv/bin/python" "$here/examples/demo.py" "unix://$sock"
