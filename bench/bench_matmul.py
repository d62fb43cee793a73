"""Matmul through the daemon vs numpy.matmul in-process, 2048x2048, float32 and float64.

Usage: python bench/bench_matmul.py [ADDRESS] [--n N] [--reps R]
Without an address a private daemon is started ($TENSORD_BIN or `tensord` on PATH).
The inputs are uploaded first; the daemon timing covers only the Run request (send, compute,
reply with the output's metadata); the result stays in the daemon and is freed afterwards.
The two phases run apart (a pause between them) because idle OpenBLAS threads of one side
spin and would steal the cores from the other. Prints GFLOP/s (2*n^3 flops per product, median of the repetitions) and the ratio
daemon/numpy; the result is checked against NumPy once per dtype.
"""
import argparse
import os
import time

import numpy as np

import tensord as td
from bench_common import median_time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("address", nargs="?", default=os.environ.get("TENSORD_ADDRESS"))
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args()
    n = args.n
    flops = 2.0 * n ** 3
    rng = np.random.default_rng(0)
    ok = True
    with td.connect(args.address) as c:
        print("daemon %s (server %s); numpy %s; n=%d, median of %d" % (
            c.address, c.server_version, np.__version__, n, args.reps))
        print("%-8s %12s %12s %8s %12s" % ("dtype", "daemon GF/s", "numpy GF/s", "ratio",
                                          "max rel err"))
        for dt in (np.float32, np.float64):
            a_np = rng.standard_normal((n, n)).astype(dt)
            b_np = rng.standard_normal((n, n)).astype(dt)
            a = td.tensor(a_np, client=c)
            b = td.tensor(b_np, client=c)
            c.sync()

            def remote():
                out = c.run_op("matmul", [a, b])[0]
                c.free(out)

            def local():
                np.matmul(a_np, b_np)

            # OpenBLAS worker threads spin for a while after a call; let the other
            # side's pool go idle before each phase so the two do not share the cores.
            time.sleep(0.5)
            t_remote = median_time(remote, args.reps)
            time.sleep(0.5)
            t_local = median_time(local, args.reps)
            ref = np.matmul(a_np.astype(np.float64), b_np.astype(np.float64))
            got = (a @ b).numpy()
            rel = float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))
            tol = 1e-5 if dt == np.float32 else 1e-12
            good = rel < tol
            ok &= good
            g_remote = flops / t_remote / 1e9
            g_local = flops / t_local / 1e9
            print("%-8s %12.1f %12.1f %8.3f %12.2e%s" % (
                np.dtype(dt).name, g_remote, g_local, g_remote / g_local, rel,
                "" if good else "  RESULT MISMATCH"))
    if not ok:
        print("FAILED: daemon matmul differs from numpy")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
