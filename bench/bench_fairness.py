"""Fair scheduling across users: another user's small request during one user's flood, with
the fair scheduler and with one FIFO of sessions (--fair-scheduling 0).

Usage: python bench/bench_fairness.py [--reps R] [--graphs G]
Runs the flood of tests/protocol/test_fairness.py (alice: 4 sessions x G pipelined graphs of
8 float64 320x320 matmuls, every result checked against NumPy; bob: 10 small Runs during the
flood, after 30 idle ones) R times per mode against a private daemon ($TENSORD_BIN, default
build/server/tensord; --threads 2 --compute-threads 1 and a token file) and prints, per mode,
the median over the repetitions of: bob's idle median latency, his median and worst latency
during the flood, and the flood's duration.
"""
import argparse
import importlib
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "protocol"))


def load_pb(tmp):
    subprocess.run(["protoc", f"--python_out={tmp}", f"--proto_path={REPO / 'proto'}",
                    str(REPO / "proto" / "tensord.proto")], check=True)
    sys.path.insert(0, tmp)
    return importlib.import_module("tensord_pb2")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--graphs", type=int, default=24)
    args = ap.parse_args()
    os.environ["TD_FAIRNESS_GRAPHS"] = str(args.graphs)
    import conftest
    import test_fairness as tf
    tf.GRAPHS = args.graphs
    with tempfile.TemporaryDirectory() as tmp:
        pb = load_pb(tmp)
        print(f"daemon {conftest.TENSORD_BIN}; 4 sessions x {args.graphs} graphs; "
              f"{args.reps} repetitions (medians)")
        print(f"{'mode':<6} {'idle ms':>8} {'busy p50 ms':>12} {'busy max ms':>12} "
              f"{'flood s':>8}")
        for mode, extra in (("fair", []), ("fifo", ["--fair-scheduling", "0"])):
            rows = []
            for r in range(args.reps):
                daemons = []
                run_dir = Path(tmp) / f"{mode}{r}"
                run_dir.mkdir()

                def start(*dargs, _dir=run_dir, _daemons=daemons):
                    d_dir = _dir / f"d{len(_daemons)}"
                    d_dir.mkdir()
                    d = conftest.Daemon(list(dargs), d_dir)
                    _daemons.append(d)
                    return d
                try:
                    idle, busy, total, _ = tf.measure(start, run_dir, pb, *extra)
                finally:
                    for d in daemons:
                        d.check_clean_exit()
                rows.append((idle, statistics.median(busy), max(busy), total))
            med = [statistics.median(col) for col in zip(*rows)]
            print(f"{mode:<6} {med[0] * 1e3:8.2f} {med[1] * 1e3:12.2f} {med[2] * 1e3:12.2f} "
                  f"{med[3]:8.2f}")


if __name__ == "__main__":
    main()
