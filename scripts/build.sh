#!/usr/bin/env bash
# Configures and builds tensord into BUILD_DIR and installs the Python client into the venv.
# Usage: scripts/build.sh [BUILD_DIR] [extra cmake args...]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
shift || true
venv=$here/build/venv
mkdir -p "$build"
log=$build/cmake-configure.log
cmake -S "$here" -B "$build" -DTD_WERROR=ON "$@" >"$log" 2>&1 || { cat "$log"; exit 1; }
cmake --build "$build" -j"$(nproc)"
"$venv/bin/python" -m pip install -q --no-deps --force-reinstall "$here/client/python"
