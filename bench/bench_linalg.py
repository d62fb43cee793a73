"""torch.linalg through the daemon (LAPACKE on OpenBLAS) vs numpy.linalg in-process, same run:
batched solve of 256 systems of 64x64, and eigh and svd of one 1024x1024 matrix.

Usage: python bench/bench_linalg.py [--reps R] [--dtype float64|float32] [--threads T]
Starts a private daemon ($TENSORD_BIN or `tensord` on PATH; `--compute-threads T`, 0 = every
online CPU, the default). Inputs are uploaded once; a daemon timing covers one Run request
(send, compute, reply with the outputs' metadata) and the sync that waits for it; outputs stay
in the daemon and are freed afterwards (not timed). NumPy runs the same call on the same
arrays in this process with its bundled OpenBLAS (its own thread count: every CPU). Prints
medians and numpy_time / daemon_time (above 1: the daemon is faster) and checks every result
against NumPy's once (solve: relative error of X; eigh: eigenvalues; svd: singular values,
and the daemon's U S Vh against A).
"""
import argparse
import os

import numpy as np

import tensord as td
from bench_common import daemon_median, median_time


def daemon_time(c, name, inputs, reps, **attrs):
    """Median seconds of one Run of op `name`, and its outputs as NumPy arrays (last run)."""
    t = daemon_median(c, lambda: c.run_op(name, inputs, **attrs), reps)
    outs = c.run_op(name, inputs, **attrs)
    arrays = [o.numpy() for o in outs]
    c.free(*outs)
    return t, arrays


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    ap.add_argument("--threads", default="0")
    args = ap.parse_args()
    dt = np.dtype(args.dtype)
    tol = 1e-9 if dt == np.float64 else 2e-3
    rng = np.random.default_rng(0)
    a_solve = (rng.standard_normal((256, 64, 64)) + 8 * np.eye(64)).astype(dt)
    b_solve = rng.standard_normal((256, 64, 1)).astype(dt)
    m = rng.standard_normal((1024, 1024))
    a_sym = ((m + m.T) / 2).astype(dt)
    a_gen = m.astype(dt)

    print("%s, median of %d; numpy %s; %d online CPUs; daemon --compute-threads %s" % (
        dt.name, args.reps, np.__version__, os.cpu_count() or 0, args.threads))
    print("%-26s %11s %11s %14s %12s" % ("op", "daemon ms", "numpy ms", "numpy/daemon",
                                         "max rel err"))
    ok = True
    with td.connect(daemon_args=["--compute-threads", args.threads], set_default=False) as c:
        ta, tb = td.tensor(a_solve, client=c), td.tensor(b_solve, client=c)
        ts, tg = td.tensor(a_sym, client=c), td.tensor(a_gen, client=c)
        c.sync()
        rows = []
        t_np = median_time(lambda: np.linalg.solve(a_solve, b_solve), args.reps)
        t_d, (x,) = daemon_time(c, "solve", [ta, tb], args.reps)
        want = np.linalg.solve(a_solve.astype(np.float64), b_solve.astype(np.float64))
        rows.append(("solve 256x(64x64)", t_d, t_np,
                     np.max(np.abs(x - want)) / np.max(np.abs(want))))
        t_np = median_time(lambda: np.linalg.eigh(a_sym), args.reps)
        t_d, (w, v) = daemon_time(c, "eigh", [ts], args.reps)
        want = np.linalg.eigvalsh(a_sym.astype(np.float64))
        rows.append(("eigh 1024x1024", t_d, t_np,
                     np.max(np.abs(w - want)) / np.max(np.abs(want))))
        t_np = median_time(lambda: np.linalg.svd(a_gen), args.reps)
        t_d, (u, s, vh) = daemon_time(c, "svd", [tg], args.reps)
        want = np.linalg.svd(a_gen.astype(np.float64), compute_uv=False)
        recon = (u.astype(np.float64) * s) @ vh.astype(np.float64)
        err = max(np.max(np.abs(s - want)) / np.max(want),
                  np.max(np.abs(recon - a_gen)) / np.max(np.abs(a_gen)))
        rows.append(("svd 1024x1024", t_d, t_np, err))
        c.free(ta, tb, ts, tg)
    for name, t_d, t_np, err in rows:
        print("%-26s %11.2f %11.2f %14.2f %12.2e" % (name, t_d * 1e3, t_np * 1e3, t_np / t_d,
                                                     err))
        ok = ok and err < tol
    if not ok:
        raise SystemExit("daemon result differs from numpy")


if __name__ == "__main__":
    main()
