"""Large elementwise ops and reductions through the daemon vs NumPy in-process.

Usage: python bench/bench_elementwise.py [--n N] [--reps R] [--threads T ...]
Starts one private daemon per engine thread count given with --threads ($TENSORD_BIN or
`tensord` on PATH; `--compute-threads T`, 0 = every online CPU, `default` = no option, for
daemons older than that option) and times, on float32 vectors of N elements (default 16M =
64 MiB each): add(a, b), exp(a) and sum(a). The inputs are uploaded once; a daemon timing
covers one Run request (send, compute, reply with the output's metadata) and the sync that
waits for it; the output stays in the daemon and is freed afterwards (not timed). NumPy runs
the same op on the same arrays in this process (np.add / np.exp with a fresh output, np.sum).
Prints the median of the repetitions and the ratio numpy_time / daemon_time (above 1: the
daemon is faster). Each result is checked against NumPy once.
"""
import argparse
import os

import numpy as np

import tensord as td
from bench_common import daemon_median, median_time


def bench_daemon(threads, a_np, b_np, reps):
    """Returns: {op: seconds} and {op: max relative error vs numpy} for one daemon."""
    times, errs = {}, {}
    args = [] if threads == "default" else ["--compute-threads", threads]
    with td.connect(daemon_args=args, set_default=False) as c:
        a = td.tensor(a_np, client=c)
        b = td.tensor(b_np, client=c)
        c.sync()
        cases = {
            "add": (lambda: c.run_op("add", [a, b])[0], lambda: a_np + b_np),
            "exp": (lambda: c.run_op("exp", [a])[0], lambda: np.exp(a_np)),
            "sum": (lambda: c.run_op("sum", [a])[0],
                    lambda: np.sum(a_np.astype(np.float64)).astype(np.float32)),
        }
        for name, (remote, ref) in cases.items():
            # remote() sends without waiting for the reply; daemon_median's sync waits for it.
            times[name] = daemon_median(c, lambda: [remote()], reps)
            out = remote()
            got = out.numpy()
            c.free(out)
            want = ref()
            scale = max(float(np.max(np.abs(want))), 1e-30)
            errs[name] = float(np.max(np.abs(got.astype(np.float64) - want))) / scale
        c.free(a, b)
    return times, errs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=16 * 1024 * 1024)
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--threads", nargs="+", default=["1", "0"],
                    help="engine thread counts to run (--compute-threads), 0 = all CPUs, "
                         "'default' = the daemon's default without the option")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    a_np = rng.standard_normal(args.n).astype(np.float32)
    b_np = rng.standard_normal(args.n).astype(np.float32)
    numpy_cases = {
        "add": lambda: np.add(a_np, b_np),
        "exp": lambda: np.exp(a_np),
        "sum": lambda: np.sum(a_np),
    }
    t_np = {k: median_time(f, args.reps) for k, f in numpy_cases.items()}
    print("n=%d float32, median of %d; numpy %s; %d online CPUs" % (
        args.n, args.reps, np.__version__, os.cpu_count() or 0))
    print("%-4s %-16s %11s %11s %14s %12s" % ("op", "engine threads", "daemon ms", "numpy ms",
                                              "numpy/daemon", "max rel err"))
    ok = True
    for threads in args.threads:
        times, errs = bench_daemon(threads, a_np, b_np, args.reps)
        label = threads + (" (all CPUs)" if threads == "0" else "")
        for name in ("add", "exp", "sum"):
            tol = 1e-6
            good = errs[name] < tol
            ok &= good
            print("%-4s %-16s %11.2f %11.2f %14.2f %12.1e%s" % (
                name, label, times[name] * 1e3, t_np[name] * 1e3, t_np[name] / times[name],
                errs[name], "" if good else "  RESULT MISMATCH"))
    if not ok:
        print("FAILED: daemon result differs from numpy")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
