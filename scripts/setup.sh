#!/usr/bin/env bash
# Installs everything tensord needs on a Debian 12 machine and creates the Python venv.
# Idempotent: packages already present are skipped, an existing venv is reused.
# Usage: scripts/setup.sh [BUILD_DIR]   (default: build)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}

pkgs=(build-essential cmake pkg-config git
      libuv1-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler
      nanopb libnanopb-dev libopenblas-dev liblapacke-dev libcmocka-dev libfftw3-dev
      libclang-rt-14-dev clang
      libyaml-dev nettle-dev    # libyaml: --config files; nettle: SHA-256 of auth tokens
      libssl-dev openssl)       # OpenSSL 3: TLS on TCP listeners; the CLI makes test certs
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "setup: installing ${missing[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

py=${PYTHON:-python3}
venv=$build/venv
if [ ! -x "$venv/bin/python" ]; then
    mkdir -p "$build"
    "$py" -m venv "$venv"
fi
stamp=$venv/.deps-stamp
req=$here/scripts/requirements.txt
if [ ! -f "$stamp" ] || [ "$req" -nt "$stamp" ]; then
    "$venv/bin/python" -m pip install -q --upgrade pip
    "$venv/bin/python" -m pip install -q -r "$req"
    touch "$stamp"
fi
