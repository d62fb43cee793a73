"""Timing helpers shared by the Python benchmarks (bench_common.c/h are the C benchmarks'
counterpart). The benchmarks run as `python bench/bench_x.py`, which puts bench/ on sys.path,
so they import this file as `bench_common`."""
import statistics
import time


def median_time(fn, reps):
    """Median seconds of one call of fn over reps timed calls, after one untimed warm-up call
    (thread pools, page faults, storage cache)."""
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def daemon_median(c, run, reps):
    """Median seconds of run() plus the c.sync() that waits for its replies, over reps timed
    calls after one untimed warm-up. run sends op requests on client c (without waiting for
    the replies) and returns their output tensors, which are freed after each call (untimed)."""
    c.free(*run())
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        outs = run()
        c.sync()
        samples.append(time.perf_counter() - t0)
        c.free(*outs)
    return statistics.median(samples)
