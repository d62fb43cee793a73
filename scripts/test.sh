#!/usr/bin/env bash
# Sets up and runs every test: the warnings-as-errors build (unit, integration, protocol and
# Python tests), then the same suites against an AddressSanitizer+UBSan build and a
# ThreadSanitizer build, then a bounded libFuzzer run of the daemon's input paths
# (TD_FUZZ_SECONDS per target, default 20).
# Exits non-zero on any failure.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/setup.sh"
py=$here/build/venv/bin/python
status=0

run_suite() {   # $1 build dir, $2 label
    local build=$1 label=$2
    echo "=== [$label] ctest"
    (cd "$build" && ctest --output-on-failure -j2) || status=1
    # One pytest run per folder: each has its own conftest.py.
    for suite in protocol python; do
        echo "=== [$label] pytest tests/$suite"
        TENSORD_BIN="$build/server/tensord" "$py" -m pytest -q -p no:cacheprovider \
            "$here/tests/$suite" || status=1
    done
}

"$here/scripts/build.sh" "$here/build"
run_suite "$here/build" release

if [ "${TD_SKIP_ASAN:-0}" != 1 ]; then
    "$here/scripts/build.sh" "$here/build-asan" -DTD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug \
        -DTD_BUILD_BENCH=OFF
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    run_suite "$here/build-asan" asan
fi

# The daemon's threads (event loop, workers, engine pool) under ThreadSanitizer: any report
# makes the daemon exit 66, which the suites' teardown checks.
if [ "${TD_SKIP_TSAN:-0}" != 1 ]; then
    "$here/scripts/build.sh" "$here/build-tsan" -DTD_TSAN=ON -DTD_BUILD_BENCH=OFF
    (
        export TSAN_OPTIONS="halt_on_error=0 exitcode=66 report_signal_unsafe=0"
        # OpenBLAS is not instrumented: its worker threads hand GEMM blocks over with their
        # own spin flags, which TSan cannot see, so every multithreaded GEMM (conv2d's batched
        # one) reads as a race. Our threads are what this pass checks; BLAS runs on one.
        export OPENBLAS_NUM_THREADS=1
        run_suite "$here/build-tsan" tsan
        exit $status
    ) || status=1
fi

# Bounded fuzzing of framing, decoding and request validation (clang + libFuzzer).
if [ "${TD_SKIP_FUZZ:-0}" != 1 ]; then
    echo "=== fuzz"
    TD_FUZZ_SECONDS=${TD_FUZZ_SECONDS:-20} "$here/scripts/fuzz.sh" || status=1
fi

if [ $status -ne 0 ]; then
    echo "tests: FAILED" >&2
else
    echo "tests: all suites passed"
fi
exit $status
