#!/usr/bin/env bash
# Configures and builds tensord into BUILD_DIR and installs the Python client into the venv.
# Usage: scripts/build.sh [BUILD_DIR] [extra cmake args...]
# Env:   TD_VENV  the Python venv (default <repo>/build/venv, made by scripts/setup.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
shift || true
venv=${TD_VENV:-$here/build/venv}
mkdir -p "$build"
# BLAS/LAPACK: the venv's scipy-openblas32 (scripts/requirements.txt; NumPy's OpenBLAS build)
# when it is installed, else Debian's OpenBLAS. An explicit -DTD_SCIPY_OPENBLAS_DIR=... among
# the arguments wins (empty: Debian's).
blas=()
case " $* " in
*" -DTD_SCIPY_OPENBLAS_DIR="*) ;;
*)
    if sob=$("$venv/bin/python" -c \
        'import os, scipy_openblas32 as s; print(os.path.dirname(s.get_lib_dir()))' \
        2>/dev/null); then
        blas=("-DTD_SCIPY_OPENBLAS_DIR=$sob")
    else
        blas=("-DTD_SCIPY_OPENBLAS_DIR=")   # also clears a value cached by an earlier run
    fi
    ;;
esac
log=$build/cmake-configure.log
cmake -S "$here" -B "$build" -DTD_WERROR=ON "${blas[@]}" "$@" >"$log" 2>&1 ||
    { cat "$log"; exit 1; }
cmake --build "$build" -j"$(nproc)"
"$venv/bin/python" -m pip install -q --no-deps --force-reinstall "$here/client/python"
