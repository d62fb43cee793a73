#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang, coverage instrumentation, ASan and
# UBSan into build-fuzz, then fuzzes each for a bounded time, starting from its checked-in
# corpus. Exits non-zero when any target finds a crash, leak, UB report, timeout or OOM.
# Usage: scripts/fuzz.sh [target...]        (default: every target)
# Env:   TD_FUZZ_SECONDS  seconds per target (default 45)
#        TD_FUZZ_BUILD    build folder (default <repo>/build-fuzz)
# Everything fuzzing writes (the grown corpus, crash artifacts, logs) stays in the build
# folder; the checked-in corpus is only read.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${TD_FUZZ_BUILD:-$here/build-fuzz}
seconds=${TD_FUZZ_SECONDS:-45}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_frame fuzz_put fuzz_run fuzz_admin)

declare -A max_len=([fuzz_frame]=131072 [fuzz_put]=4096 [fuzz_run]=8192 [fuzz_admin]=4096)
declare -A extra=([fuzz_run]="-dict=$here/tests/fuzz/fuzz_run.dict")

command -v clang >/dev/null || { echo "fuzz: clang not found" >&2; exit 1; }
mkdir -p "$build"
log=$build/cmake-configure.log
CC=clang cmake -S "$here" -B "$build" -DTD_WERROR=ON -DTD_SANITIZE=ON -DTD_BUILD_BENCH=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link" \
    >"$log" 2>&1 || { cat "$log"; exit 1; }
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
mkdir -p "$build/artifacts"
for t in "${targets[@]}"; do
    corpus=$build/corpus/$t
    mkdir -p "$corpus"
    echo "=== fuzz $t for ${seconds}s"
    # The first corpus folder receives new inputs: the build's, never the checked-in one.
    if "$build/tests/fuzz/$t" "$corpus" "$here/tests/fuzz/corpus/$t" \
        -max_total_time="$seconds" -max_len="${max_len[$t]}" -rss_limit_mb=2048 \
        -timeout=30 -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" \
        ${extra[$t]:-} >"$build/$t.log" 2>&1; then
        grep -E "^stat::number_of_executed_units|^stat::average_exec_per_sec|^#[0-9]+.*DONE" \
            "$build/$t.log" || true
    else
        status=1
        tail -n 60 "$build/$t.log"
        echo "fuzz: $t FAILED; input saved under $build/artifacts/ (log $build/$t.log)" >&2
    fi
done
if [ $status -ne 0 ]; then
    echo "fuzz: FAILED" >&2
else
    echo "fuzz: every target ran ${seconds}s without a finding"
fi
exit $status
