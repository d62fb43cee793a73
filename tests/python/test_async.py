"""Asynchronous eager ops: ops return at once, their meta and errors arrive later.

Ops are queued and sent as multi-node Runs without waiting for replies; reading a meta
waits for that op's reply only, data access is a synchronising call that raises the first
error not raised yet, a failed tensor raises its op's error whenever it is used, and a
failed batch is re-sent op by op so that each op gets its own outcome and message.
Non-waiting is checked deterministically: the daemon is stopped (SIGSTOP) while ops are
issued, so an op that waited for a reply would hang until the safety timer resumes it.
"""
import gc
import os
import signal
import threading

import numpy as np
import pytest

import tensord as td

import tdtest_daemon

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def own_daemon():
    d = tdtest_daemon.Daemon(tcp=False)
    yield d
    d.stop_and_check()


class Stopped:
    """Stops a daemon process (SIGSTOP) for the duration of a with block. A safety timer
    resumes it after `limit` seconds so a client that wrongly waits fails instead of
    hanging; `.held` tells whether the daemon was still stopped at the end of the block."""

    def __init__(self, proc, limit=10.0):
        self.proc = proc
        self.limit = limit
        self.fired = threading.Event()
        self.held = False

    def _resume(self):
        self.fired.set()
        os.kill(self.proc.pid, signal.SIGCONT)

    def __enter__(self):
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.timer = threading.Timer(self.limit, self._resume)
        self.timer.start()
        return self

    def __exit__(self, *exc):
        self.timer.cancel()
        self.held = not self.fired.is_set()
        os.kill(self.proc.pid, signal.SIGCONT)


def chain_ref(n, start):
    ref = np.asarray(start, np.float32)
    for _ in range(n):
        ref = ref * np.float32(1.0001) + np.float32(0.5)
    return ref


def live(client):
    gc.collect()
    return client.stats()["session_tensors"]


def sync_message(client, fn):
    """Returns: (class, message) of the error fn(client) gets on a client that sends each
    op as its own Run (the requests the synchronous client sent)."""
    with td.Client(client.address, batch=1) as c1:
        t = fn(c1)
        with pytest.raises(td.TensordError) as ei:
            t.numpy()
        return type(ei.value), ei.value.message


# ---- ops do not wait ------------------------------------------------------------------------
# batch=1 sends a Run per op; at most MAX_OUTSTANDING (64) calls are in flight before the
# client reads a reply, so that variant issues fewer ops.
@pytest.mark.parametrize("batch,steps", [(1, 25), (64, 200)])
def test_chain_returns_without_waiting(own_daemon, batch, steps):
    with td.Client(own_daemon.unix_address, batch=batch) as c:
        x0 = np.linspace(-1, 1, 8).astype(np.float32)
        x = td.tensor(x0, client=c)
        c.schema()                      # a new client fetches the op table once (ListOps)
        c.sync()
        read0 = c.replies_read
        with Stopped(own_daemon.proc) as s:
            for _ in range(steps):
                x = x * 1.0001 + 0.5
            # metas of uploads are known locally; slicing a pending tensor needs no meta
            u = td.tensor(np.arange(6, dtype=np.int32).reshape(2, 3), client=c)
            assert u.shape == (2, 3) and u.dtype == td.int32
            y = x[2:, None][::2]
            assert x._rec is not None          # meta still pending
            read_while_stopped = c.replies_read - read0
        assert s.held, "issuing ops waited for the stopped daemon"
        assert read_while_stopped == 0
        ref = chain_ref(steps, x0)
        np.testing.assert_allclose(x.numpy(), ref, rtol=1e-5)
        np.testing.assert_allclose(y.numpy(), ref[2:, None][::2], rtol=1e-5)
        assert x.shape == (8,) and x.dtype == td.float32 and y.shape == (3, 1)
        np.testing.assert_array_equal(u.numpy(), np.arange(6).reshape(2, 3))


def test_shape_waits_for_its_own_reply_only(own_daemon):
    with td.Client(own_daemon.unix_address, batch=1) as c:
        a = td.tensor(np.ones((3, 4), np.float32), client=c)
        first = a.sum(dim=0)
        big = td.randn(700, 700, client=c)
        later = [big @ big for _ in range(3)]      # sent after `first`, slower than it
        assert first.shape == (4,) and first.dtype == td.float32
        assert first._rec is None
        # the reply of the last op (sent after `first`, slower) was not waited for
        last = later[-1]
        assert last._rec is not None and not last._rec.final(last.id).done
        assert later[-1].shape == (700, 700)
        np.testing.assert_allclose(first.numpy(), np.full(4, 3.0))


# ---- errors ---------------------------------------------------------------------------------
def test_deferred_error_at_next_sync(client):
    a = td.ones(2, 3)
    b = td.ones(4, 5)
    bad = a @ b                      # returns a tensor; nothing raised yet
    good = a + 1
    cls, msg = sync_message(client, lambda c: td.ones(2, 3, client=c) @ td.ones(4, 5,
                                                                                client=c))
    assert cls is td.InvalidArgument and msg.startswith("node 0 (matmul): ")
    # the next synchronising call on ANY tensor raises the first pending error, once
    with pytest.raises(td.InvalidArgument) as ei:
        good.numpy()
    assert ei.value.message == msg and ei.value.code == "INVALID_ARGUMENT"
    np.testing.assert_array_equal(good.numpy(), np.full((2, 3), 2.0))
    # the failed tensor raises its error on every use of its meta or data
    for use in (lambda: bad.shape, lambda: bad.dtype, lambda: bad.numpy(),
                lambda: bad.item(), lambda: str(bad), lambda: len(bad)):
        with pytest.raises(td.InvalidArgument) as ei:
            use()
        assert ei.value.message == msg
    assert "<error: INVALID_ARGUMENT: " + msg in repr(bad)
    client.sync()                    # nothing pending any more


def test_error_propagates_to_dependent_ops(client):
    a = td.ones(2, 3)
    bad = a @ td.ones(4, 5)
    dep = (bad + 1).sum(dim=0) * 2   # queued on top of the failing op
    other = td.arange(4) * 3         # independent: unaffected
    _, msg = sync_message(client, lambda c: td.ones(2, 3, client=c) @ td.ones(4, 5,
                                                                              client=c))
    with pytest.raises(td.InvalidArgument) as ei:
        dep.numpy()
    assert ei.value.message == msg   # the original error, not "unknown id"
    np.testing.assert_array_equal(other.numpy(), [0, 3, 6, 9])
    # an op on an input known to have failed raises at once with the original error
    with pytest.raises(td.InvalidArgument) as ei:
        bad * 2
    assert ei.value.message == msg
    with pytest.raises(td.InvalidArgument):
        td.cat([a, bad])
    client.sync()


def test_error_of_a_put_propagates(client):
    # An upload the daemon rejects (a shape over max_ndim): deferred, then propagated.
    t = td.tensor(np.ones([1] * 17, np.float32))
    dep = t + 1
    with pytest.raises(td.InvalidArgument) as ei:
        client.sync()
    msg = ei.value.message
    assert "17" in msg or "ndim" in msg, msg
    with pytest.raises(td.InvalidArgument) as ei:
        dep.shape
    assert ei.value.message == msg
    with pytest.raises(td.InvalidArgument):
        t + 2
    client.sync()


def test_failed_batch_is_resent_op_by_op(own_daemon):
    # Small batches so one failing op shares its Run with good ops, and (the daemon being
    # stopped while they are issued) later Runs are already sent when the failure comes
    # back: they used outputs that the failed Run took back with it.
    with td.Client(own_daemon.unix_address, batch=4) as c:
        a_np = np.arange(6, dtype=np.float32).reshape(2, 3)
        a = td.tensor(a_np, client=c)
        c.schema()
        base = live(c)
        with Stopped(own_daemon.proc) as s:
            x1 = a + 1
            bad = a @ a                              # 2x3 @ 2x3: fails
            dep = bad.sum()                          # same batch: failure not known yet
            x2 = x1 * 2
            dropped = a - 7                          # released while still queued
            del dropped
            x3 = x2 + x1
            x4 = x3 - 1
            dep2 = dep + x4.sum()
            x5 = (x4 * 0.5).sum(dim=1)
            sent = c._conn.outstanding
        assert s.held and sent >= 3
        cls, msg = sync_message(c, lambda cc: td.tensor(a_np, client=cc) @
                                td.tensor(a_np, client=cc))
        with pytest.raises(cls) as ei:
            x5.numpy()
        assert ei.value.message == msg and msg.startswith("node 0 (matmul): ")
        e1 = a_np + 1
        e2 = e1 * 2
        e4 = e2 + e1 - 1
        np.testing.assert_allclose(x1.numpy(), e1)
        np.testing.assert_allclose(x2.numpy(), e2)
        np.testing.assert_allclose(x4.numpy(), e4)
        np.testing.assert_allclose(x5.numpy(), (e4 * 0.5).sum(1))
        for t in (bad, dep, dep2):
            with pytest.raises(cls) as ei:
                t.numpy()
            assert ei.value.message == msg
        del x1, x2, x3, x4, x5, bad, dep, dep2
        assert live(c) == base                       # nothing leaked, nothing lost
        c.sync()


def test_resent_batch_with_random_ops_keeps_values_consistent(own_daemon):
    with td.Client(own_daemon.unix_address, batch=8, seed=7) as c:
        r = td.randn(5, client=c)
        bad = td.ones(2, client=c) @ td.ones(3, client=c)
        s = r * 2
        got_s = None
        with pytest.raises(td.InvalidArgument):
            got_s = s.numpy()
        assert got_s is None
        np.testing.assert_allclose(s.numpy(), r.numpy() * 2, rtol=1e-6)
        with pytest.raises(td.InvalidArgument):
            bad.numpy()


def test_print_and_repr(client):
    bad = td.ones(2) @ td.ones(3)
    good = td.arange(3)
    text = repr(good)                       # repr never raises and keeps errors pending
    assert text == "tensor([0, 1, 2])"
    with pytest.raises(td.TensordError):
        str(good)                           # print() synchronises: the pending error
    assert str(good) == "tensor([0, 1, 2])"
    assert "<error:" in repr(bad)
    with pytest.raises(td.TensordError):
        print(bad)
    client.sync()


# ---- uploads, many ops, frees ---------------------------------------------------------------
def test_interleaving_with_uploads(client):
    rng = np.random.default_rng(3)
    arrs = [rng.normal(size=(50, 40)).astype(np.float32) for _ in range(6)]
    big = rng.normal(size=(1 << 20,))                        # 8 MiB, one more upload
    acc_np = np.zeros((50, 40), np.float64)
    acc = td.zeros(50, 40, dtype=td.float64)
    for i, a in enumerate(arrs):
        t = td.tensor(a)
        acc = acc + t * (i + 1) - arrs[(i + 1) % 6]          # arrays as operands: uploads
        # float32 * int stays float32, then float64 +/- float32 in float64
        acc_np = acc_np + (a * np.float32(i + 1)).astype(np.float64) - arrs[(i + 1) % 6]
        if i == 2:
            tb = td.tensor(big)
            sb = (tb * 2).sum()
    np.testing.assert_allclose(acc.numpy(), acc_np, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sb.item(), big.sum() * 2, rtol=1e-9)
    bf = td.tensor(arrs[0], dtype=td.bfloat16) + 1            # upload + cast, queued
    assert bf.dtype == td.bfloat16
    np.testing.assert_allclose(bf.numpy(), arrs[0] + 1, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("batch", [1, 64, 4096])
def test_many_outstanding_ops_no_deadlock(own_daemon, batch):
    with td.Client(own_daemon.unix_address, batch=batch) as c:
        x = td.zeros(16, dtype=td.int64, client=c)
        keep = []
        for i in range(10000):
            x = x + 1
            if i % 1000 == 0:
                keep.append(x)                               # a few live intermediates
        np.testing.assert_array_equal(x.numpy(), np.full(16, 10000))
        assert [int(k[0].item()) for k in keep] == list(range(1, 10001, 1000))
        del keep, x
        assert live(c) == 0


def test_frees_of_pending_tensors(client):
    client.sync()
    base = live(client)
    x = td.arange(10)
    ts = [x * i for i in range(50)]            # pending (queued or in flight)
    del ts                                     # released before any reply was read
    assert live(client) == base + 1
    ts = [x + i for i in range(50)]
    client.sync()
    assert live(client) == base + 51
    del ts
    assert live(client) == base + 1
    bad = x @ x.reshape(2, 5)                  # released while its failure is unknown
    del bad
    with pytest.raises(td.InvalidArgument):
        client.sync()
    y = x + 1
    assert client.free(y) == 1                 # explicit free of a pending tensor
    assert y.id == 0
    del x, y
    assert live(client) == base
    assert not client._failed                  # failed ids are forgotten once released


def test_frees_with_one_op_per_run(own_daemon):
    with td.Client(own_daemon.unix_address, batch=1) as c:
        x = td.arange(10, client=c)
        for i in range(300):
            x = x * 1 + i                          # temporaries released in flight
        assert live(c) == 1
        assert int(x.sum().item()) == sum(range(10)) + 10 * sum(range(300))


def test_closed_client_and_pending_tensors(own_daemon):
    c = td.Client(own_daemon.unix_address)
    x = td.ones(3, client=c) * 2                   # still queued when the client closes
    c.close()
    with pytest.raises(td.Unavailable):
        x.shape
    with pytest.raises(td.Unavailable):
        x + 1


def test_ops_needing_shapes_wait_for_them(client):
    x = td.arange(12).reshape(3, 4)
    parts = x.split(2, dim=1)                      # output count from the pending shape
    assert len(parts) == 2
    np.testing.assert_array_equal(parts[1].numpy(), np.arange(12).reshape(3, 4)[:, 2:])
    y = td.arange(6) * 1
    np.testing.assert_array_equal(y[-1].numpy(), 5)
    np.testing.assert_array_equal(y[..., 1].numpy(), 1)
    assert len(y.chunk(4)) == 3
    with pytest.raises(IndexError):
        y[6]
