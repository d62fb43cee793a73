"""torch.fft's fft of 2^20 complex64 points through the daemon (FFTW) vs numpy.fft.fft
in-process (pocketfft).

Usage: python bench/bench_fft.py [--log2n K] [--reps R] [--threads T ...]
Starts one private daemon per engine thread count given with --threads ($TENSORD_BIN or
`tensord` on PATH; `--compute-threads T`, 0 = every online CPU) and times fft of a complex64
vector of 2^K points (default K = 20). The input is uploaded once; a daemon timing covers one
Run request (send, plan with FFTW_ESTIMATE, transform, reply with the output's metadata) and
the sync that waits for it; the output stays in the daemon and is freed afterwards (not
timed). NumPy runs np.fft.fft on the same array in this process (NumPy 2.x transforms
complex64 in single precision with pocketfft and returns complex64). Prints medians and numpy_time / daemon_time (above 1: the daemon is faster), and checks
the daemon's result against NumPy's once (max error relative to the largest magnitude).
"""
import argparse
import os

import numpy as np

import tensord as td
from bench_common import daemon_median, median_time


def bench_daemon(threads, x_np, reps):
    args = ["--compute-threads", threads]
    with td.connect(daemon_args=args, set_default=False) as c:
        x = td.tensor(x_np, client=c)
        c.sync()
        t = daemon_median(c, lambda: c.run_op("fft", [x]), reps)
        out = c.run_op("fft", [x])[0]
        got = out.numpy()
        c.free(out, x)
    want = np.fft.fft(x_np.astype(np.complex128))
    err = float(np.max(np.abs(got - want)) / np.max(np.abs(want)))
    return t, err


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--log2n", type=int, default=20)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--threads", nargs="+", default=["1", "0"])
    args = ap.parse_args()
    n = 1 << args.log2n
    rng = np.random.default_rng(0)
    x_np = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64)
    t_np = median_time(lambda: np.fft.fft(x_np), args.reps)
    print("fft of 2^%d complex64, median of %d; numpy %s; %d online CPUs" % (
        args.log2n, args.reps, np.__version__, os.cpu_count() or 0))
    print("%-16s %11s %11s %14s %12s" % ("engine threads", "daemon ms", "numpy ms",
                                         "numpy/daemon", "max rel err"))
    ok = True
    for threads in args.threads:
        t_d, err = bench_daemon(threads, x_np, args.reps)
        print("%-16s %11.3f %11.3f %14.2f %12.2e" % (threads, t_d * 1e3, t_np * 1e3,
                                                    t_np / t_d, err))
        ok = ok and err < 1e-5
    if not ok:
        raise SystemExit("daemon result differs from numpy")


if __name__ == "__main__":
    main()
