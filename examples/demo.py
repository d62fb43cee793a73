"""tensord demo: compute in the daemon, check against NumPy.

Usage: python examples/demo.py [ADDRESS]
ADDRESS (or $TENSORD_ADDRESS) is unix:///path or tcp://host:port; without one a private
daemon is started (binary from $TENSORD_BIN or `tensord` on PATH).
Exit status 0 when the remote results match NumPy, 1 otherwise.
"""
import os
import sys

import numpy as np

import tensord as td


def main():
    address = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("TENSORD_ADDRESS")
    with td.connect(address, seed=2024) as client:
        print("connected to %s (server %s, session %d, seed %d)" % (
            client.address, client.server_version, client.session_id, client.seed))

        # Random inputs generated in the daemon, downloaded once for the reference.
        a = td.randn(256, 128)
        b = td.rand(128, 64) - 0.5
        bias = td.linspace(-1.0, 1.0, 64)

        # A small dense layer, a softmax over rows, and a few reductions, all remote.
        z = a @ b + bias
        h = td.tanh(z)
        logits = z * 0.5
        probs = (logits - logits.logsumexp(dim=1, keepdim=True)).exp()
        row_max = probs.amax(dim=1)
        col_mean = h.mean(dim=0)
        total = (h ** 2).sum()
        best = probs.argmax(dim=1)

        a_np, b_np, bias_np = a.numpy(), b.numpy(), bias.numpy()
        z_ref = a_np.astype(np.float64) @ b_np.astype(np.float64) + bias_np
        h_ref = np.tanh(z_ref)
        lg = z_ref * 0.5
        m = lg.max(axis=1, keepdims=True)
        lse = np.log(np.exp(lg - m).sum(axis=1, keepdims=True)) + m
        probs_ref = np.exp(lg - lse)

        checks = [
            ("tanh(a @ b + bias)", h.numpy(), h_ref),
            ("softmax rows", probs.numpy(), probs_ref),
            ("row max of softmax", row_max.numpy(), probs_ref.max(axis=1)),
            ("column mean", col_mean.numpy(), h_ref.mean(axis=0)),
            ("sum of squares", total.numpy(), (h_ref ** 2).sum()),
        ]
        ok = True
        for name, got, ref in checks:
            good = np.allclose(got, ref, rtol=1e-4, atol=1e-5)
            err = float(np.max(np.abs(got - ref))) if np.size(ref) else 0.0
            print("%-22s shape %-10s max |remote - numpy| = %.3g  %s" % (
                name, str(np.shape(got)), err, "ok" if good else "MISMATCH"))
            ok &= bool(good)
        # argmax may differ only where two logits tie to float32 precision.
        best_np = best.numpy()
        agree = np.mean(best_np == probs_ref.argmax(axis=1))
        print("%-22s agreement %.4f" % ("argmax of softmax", agree))
        ok &= bool(agree > 0.99)

        print("sum of squares: remote %.6f, numpy %.6f" % (total.item(), (h_ref ** 2).sum()))
        print("first row of softmax (remote):", np.array2string(probs.numpy()[0, :6],
                                                                precision=5))
        print("first row of softmax (numpy): ", np.array2string(probs_ref[0, :6], precision=5))
    if not ok:
        print("FAILED: remote result differs from NumPy")
        return 1
    print("OK: remote result matches NumPy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
