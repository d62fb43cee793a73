"""Client.deadline(): Runs sent inside the block carry RunRequest.deadline_ms; the daemon
stops a graph past it between nodes and rolls it back, and the block's outputs raise
DeadlineExceeded. Expected values come from NumPy; the time a full chain takes is measured
on the same daemon in the same test, so the bound is relative, not a fixed number."""
import gc
import time

import numpy as np
import pytest

import tensord as td

import tdtest_daemon

pytestmark = pytest.mark.timeout(300)

N = 384          # matrix size of the chain's matmuls


@pytest.fixture
def own():
    d = tdtest_daemon.Daemon(tcp=False)
    c = td.Client(d.unix_address, batch=1 << 14)
    yield c
    c.close()
    d.stop_and_check()


def chain(c, x, w, steps):
    y = x
    for _ in range(steps):
        y = c.run_op("matmul", [y, w])[0]
    return y


def operands(c):
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.standard_normal((N, N)))
    x = rng.standard_normal((N, N))
    return x, q, c.upload(x), c.upload(q)


def timed_chain(c, xt, wt, steps):
    t0 = time.perf_counter()
    y = chain(c, xt, wt, steps).numpy()
    return time.perf_counter() - t0, y


def test_deadline_stops_a_long_graph_and_rolls_back(own):
    c = own
    x, q, xt, wt = operands(c)
    full, y = timed_chain(c, xt, wt, 40)
    np.testing.assert_allclose(y, x @ np.linalg.matrix_power(q, 40), rtol=1e-9, atol=1e-9)
    c.sync()
    gc.collect()
    base = c.stats()
    # A chain ten times as long under a deadline of a quarter of the short chain's time.
    steps = 400
    limit = max(full / 4, 0.02)
    t0 = time.perf_counter()
    with c.deadline(limit):
        y = chain(c, xt, wt, steps)
    with pytest.raises(td.DeadlineExceeded, match="deadline"):
        y.numpy()
    took = time.perf_counter() - t0
    print(f"40 matmuls: {full:.3f} s; deadline {limit:.3f} s on 400: stopped after {took:.3f} s")
    # Stopped well before the 400 steps (about 10x `full`) could have run.
    assert took < limit + full, (took, limit, full)
    # Every output of the block failed; what ran of the graph was rolled back.
    del y
    gc.collect()
    c.sync()
    after = c.stats()
    assert after["session_tensors"] == base["session_tensors"]
    assert after["session_bytes"] == base["session_bytes"]
    # Inputs made before the block are intact, and later ops run without a deadline.
    np.testing.assert_array_equal(xt.numpy(), x)
    full2, y2 = timed_chain(c, xt, wt, 40)
    np.testing.assert_allclose(y2, x @ np.linalg.matrix_power(q, 40), rtol=1e-9, atol=1e-9)


def test_deadline_long_enough_changes_nothing(own):
    c = own
    x, q, xt, wt = operands(c)
    with c.deadline(600):
        y = chain(c, xt, wt, 5)
        z = y + 1.0
    np.testing.assert_allclose(z.numpy(), x @ np.linalg.matrix_power(q, 5) + 1.0,
                               rtol=1e-9, atol=1e-9)


def test_ops_queued_before_the_block_carry_no_deadline(own):
    c = own
    x, q, xt, wt = operands(c)
    before = chain(c, xt, wt, 60)           # queued, not yet sent
    with c.deadline(0.001):
        after = chain(c, xt, wt, 300)
    # (Data access raises the first error not raised yet, so the failed block goes first.)
    with pytest.raises(td.DeadlineExceeded):
        after.numpy()
    np.testing.assert_allclose(before.numpy(), x @ np.linalg.matrix_power(q, 60),
                               rtol=1e-9, atol=1e-9)
    # Nested blocks: the inner deadline applies inside, the outer one again after it.
    with c.deadline(600):
        with c.deadline(0.001):
            inner = chain(c, xt, wt, 300)
        outer = chain(c, xt, wt, 2)
    with pytest.raises(td.DeadlineExceeded):
        inner.numpy()
    np.testing.assert_allclose(outer.numpy(), x @ q @ q, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf")])
def test_bad_deadline(client, bad):
    with pytest.raises(ValueError, match="deadline"):
        with client.deadline(bad):
            pass


def test_cancel_stops_running_and_queued_runs(own):
    c = own
    x, q, xt, wt = operands(c)
    full, _ = timed_chain(c, xt, wt, 40)
    c.sync()
    gc.collect()
    base = c.stats()
    first = chain(c, xt, wt, 400)                   # ~10x `full`: still running at cancel
    with c._conn.lock:                              # sent now as its own Run (the client
        c._flush()                                  # batches up to 1 << 14 ops otherwise)
    second = chain(c, xt, wt, 400)                  # queued behind it on the daemon
    t0 = time.perf_counter()
    n = c.cancel()
    took = time.perf_counter() - t0
    print(f"40 matmuls {full:.3f} s; cancel of 2 x 400 returned after {took:.3f} s, {n} marked")
    assert n == 2
    assert took < 5 * full + 0.5, (took, full)      # far less than the 20x `full` of both
    for t in (first, second):
        with pytest.raises(td.Cancelled):
            t.numpy()
    del first, second
    gc.collect()
    c.sync()                                        # nothing left pending
    after = c.stats()
    assert after["session_tensors"] == base["session_tensors"]
    assert after["session_bytes"] == base["session_bytes"]
    np.testing.assert_allclose(chain(c, xt, wt, 3).numpy(), x @ q @ q @ q, rtol=1e-9,
                               atol=1e-9)
    assert c.cancel() == 0                          # nothing in flight: nothing to cancel
