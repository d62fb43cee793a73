"""The Python client's autograd surface (torch-like) against hand-derived derivatives:
.backward/.grad accumulation, retain_graph and create_graph, the version counter, grad
mode (no_grad, enable_grad, set_grad_enabled; thread-local; decorators), detach,
autograd.grad (allow_unused, non-leaf inputs), the .grad setter, forward-mode dual tensors,
in-place methods, error cases, a session's memory after backward and after disconnect,
and that autograd keeps ops asynchronous. Every op of test_ops.AUTOGRAD_OPS is checked to
be sent by some test here (the recorder below watches the client's graphs)."""
import gc
import time
import threading

import numpy as np
import pytest

import tensord as td
from tensord import client as td_client
from tensord.autograd import forward_ad as fwad

import tdtest_daemon
import test_ops
from test_async import Stopped

pytestmark = pytest.mark.timeout(120)

F64 = td.float64
X0 = np.array([0.5, -1.25, 2.0])

# ---- which ops this module's tests send ----------------------------------------------------
SENT_OPS = set()


@pytest.fixture(scope="module", autouse=True)
def _record_ops():
    orig = td_client.Graph.add

    def add(self, op, *a, **kw):
        SENT_OPS.add(op)
        return orig(self, op, *a, **kw)
    td_client.Graph.add = add
    yield
    td_client.Graph.add = orig


def leaf(values=X0):
    return td.tensor(np.asarray(values, np.float64), requires_grad=True)


def close(t, ref, tol=1e-12):
    a = t.detach().numpy() if isinstance(t, td.Tensor) else np.asarray(t)
    np.testing.assert_allclose(a, np.asarray(ref, np.float64), rtol=tol, atol=tol)


# ---- backward and .grad ------------------------------------------------------------------------
def test_backward_accumulates_into_grad_across_calls():
    x = leaf()
    assert x.requires_grad and x.is_leaf and x.grad_fn is None
    assert x.grad is None
    y = (x * x).sum()
    assert y.requires_grad and not y.is_leaf and y.grad_fn.name() == "SumBackward0"
    y.backward()
    close(x.grad, 2 * X0)
    (x * 3.0).sum().backward()
    close(x.grad, 2 * X0 + 3)
    # exp: d/dx sum(exp(x) * x) = exp(x) (1 + x), accumulated on top
    (x.exp() * x).sum().backward()
    close(x.grad, 2 * X0 + 3 + np.exp(X0) * (1 + X0))


def test_backward_with_gradient_for_non_scalar():
    x = leaf()
    w = np.array([1.0, -2.0, 0.25])
    (x * x * x).backward(td.tensor(w))
    close(x.grad, 3 * X0 ** 2 * w)


def test_backward_of_several_roots_and_mixed_grad_tensors():
    x = leaf()
    a = (x * x).sum()            # scalar: ones materialised when its grad is None
    b = x.exp()
    w = np.array([2.0, 0.5, -1.0])
    td.autograd.backward([a, b], [None, td.tensor(w)])
    close(x.grad, 2 * X0 + np.exp(X0) * w)


def test_second_backward_needs_retain_graph():
    x = leaf()
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    close(x.grad, 2 * np.exp(X0) * (1 + X0))
    y.backward()                    # the graph was freed by the backward before
    with pytest.raises(td.FailedPrecondition, match="backward through the graph a second "
                                                   "time.*retain_graph=True"):
        td.default_client().sync()
    close(x.grad, 2 * np.exp(X0) * (1 + X0))


def test_create_graph_third_derivative_of_x4():
    x = leaf()
    y = (x * x * x * x).sum()
    (g,) = td.autograd.grad(y, x, create_graph=True)
    assert g.requires_grad
    close(g, 4 * X0 ** 3)
    (g2,) = td.autograd.grad(g.sum(), x, create_graph=True)
    close(g2, 12 * X0 ** 2)
    (g3,) = td.autograd.grad(g2.sum(), x)
    assert not g3.requires_grad
    close(g3, 24 * X0)


def test_backward_create_graph_then_grad_of_grad():
    x = leaf()
    (x.exp() * x).sum().backward(create_graph=True)
    gx = x.grad                                       # exp(x) (1 + x), with history
    assert gx.requires_grad and not gx.is_leaf
    (h,) = td.autograd.grad((gx * 1.0).sum(), x)
    close(h, np.exp(X0) * (2 + X0))


def test_inplace_after_save_is_detected_by_the_version_counter():
    x = leaf()
    a = td.tensor(np.array([1.0, 2.0, 3.0]))
    z = x * a                        # saves a (at version 0)
    a.mul_(2.0)                      # copy_ bumps a's version
    close(a, [2.0, 4.0, 6.0])
    z.sum().backward()
    with pytest.raises(td.FailedPrecondition,
                       match="modified by an in-place operation: input 1 of mul is at "
                             "version 1; expected version 0"):
        td.default_client().sync()


def test_grad_of_non_leaf_inputs():
    x = leaf()
    h = x * x
    out = (h * h.exp()).sum()        # d/dh = exp(h) (1 + h)
    gh, gx = td.autograd.grad(out, [h, x])
    hv = X0 * X0
    close(gh, np.exp(hv) * (1 + hv))
    close(gx, np.exp(hv) * (1 + hv) * 2 * X0)
    assert x.grad is None             # autograd.grad touches no .grad


def test_allow_unused_and_materialize_grads():
    x, w = leaf(), leaf([1.0, 1.0, 1.0])
    y = (x * x).sum()
    gx, gw = td.autograd.grad(y, [x, w], retain_graph=True, allow_unused=True)
    assert gw is None
    close(gx, 2 * X0)
    gx, gw = td.autograd.grad(y, [x, w], retain_graph=True, materialize_grads=True)
    close(gw, [0.0, 0.0, 0.0])
    td.autograd.grad(y, [x, w])
    with pytest.raises(td.InvalidArgument, match="input 1 was not used in the graph"):
        td.default_client().sync()


def test_backward_inputs_accumulates_only_there():
    x, w = leaf(), leaf([1.0, 2.0, 3.0])
    (x * w).sum().backward(inputs=[w])
    close(w.grad, X0)
    assert x.grad is None
    (x * w).sum().backward(inputs=[w])
    close(w.grad, 2 * X0)


def test_grad_setter_and_none():
    x = leaf()
    x.grad = td.tensor(np.array([1.0, 1.0, 1.0]))
    close(x.grad, [1.0, 1.0, 1.0])
    (x * x).sum().backward()          # accumulates into the assigned grad
    close(x.grad, 1 + 2 * X0)
    x.grad = None
    assert x.grad is None
    (x * 5.0).sum().backward()
    close(x.grad, [5.0, 5.0, 5.0])
    del x.grad
    assert x.grad is None
    x.grad = td.tensor(np.ones(2))     # wrong shape: the daemon refuses
    with pytest.raises(td.InvalidArgument, match="set_grad: assigned grad"):
        td.default_client().sync()
    with pytest.raises(TypeError):
        x.grad = [1.0, 2.0, 3.0]


def test_zero_grad_in_place():
    x = leaf()
    (x * x).sum().backward()
    with td.no_grad():
        x.grad.zero_()
    close(x.grad, [0.0, 0.0, 0.0])
    (x * 2.0).sum().backward()
    close(x.grad, [2.0, 2.0, 2.0])


# ---- grad mode ---------------------------------------------------------------------------------
def test_no_grad_enable_grad_nesting():
    x = leaf()
    assert td.is_grad_enabled()
    with td.no_grad():
        assert not td.is_grad_enabled()
        y = x * 2.0
        assert not y.requires_grad and y.grad_fn is None
        with td.enable_grad():
            assert td.is_grad_enabled()
            z = x * 2.0
            assert z.requires_grad
            with td.no_grad():
                assert not (x * 2.0).requires_grad
            assert td.is_grad_enabled()
        assert not td.is_grad_enabled()
    assert td.is_grad_enabled()
    assert (x * 2.0).requires_grad
    # the daemon agrees (its reply, not the local rule): y recorded nothing
    assert y.shape == (3,) and not y.requires_grad
    z.sum().backward()
    close(x.grad, [2.0, 2.0, 2.0])


def test_no_grad_restores_mode_after_exception():
    with pytest.raises(KeyError):
        with td.no_grad():
            raise KeyError("x")
    assert td.is_grad_enabled()


def test_grad_mode_decorators():
    x = leaf()

    @td.no_grad()
    def f1(t):
        assert not td.is_grad_enabled()
        return t * t

    @td.no_grad
    def f2(t):
        return t * t

    @td.enable_grad()
    def f3(t):
        return t * t

    @td.set_grad_enabled(False)
    def f4(t):
        return t * t

    assert td.is_grad_enabled()        # decorating does not change the mode
    assert not f1(x).requires_grad and not f2(x).requires_grad
    assert not f4(x).requires_grad
    with td.no_grad():
        y = f3(x)
        assert not td.is_grad_enabled()
    assert y.requires_grad
    assert f1.__name__ == "f1"

    @td.no_grad()
    def gen(t):
        for _ in range(2):
            yield t * t, td.is_grad_enabled()
    for v, mode in gen(x):
        assert not mode and not v.requires_grad
        assert td.is_grad_enabled()


def test_set_grad_enabled_call_and_context():
    x = leaf()
    prev = td.set_grad_enabled(False)
    try:
        assert not td.is_grad_enabled()
        assert not (x * 1.0).requires_grad
    finally:
        td.set_grad_enabled(True)
    assert prev is not None and td.is_grad_enabled()
    with td.set_grad_enabled(False):
        assert not td.is_grad_enabled()
    assert td.is_grad_enabled()


def test_grad_mode_is_thread_local():
    seen = {}

    def worker():
        seen["mode"] = td.is_grad_enabled()
        with td.no_grad():
            seen["inner"] = td.is_grad_enabled()

    with td.no_grad():
        t = threading.Thread(target=worker)
        t.start()
        t.join()
        assert not td.is_grad_enabled()
    assert seen == {"mode": True, "inner": False}
    assert td.is_grad_enabled()


def test_no_grad_nodes_carry_the_flag():
    x = leaf()
    sent = []
    c = td.default_client()
    orig = c._conn.send

    def spy(method, msg, *a, **kw):
        if method == td._wire.RUN:
            sent.extend((n.op, n.no_grad) for n in msg.nodes)
        return orig(method, msg, *a, **kw)
    c.sync()
    c._conn.send = spy
    try:
        with td.no_grad():
            x * 2.0
        (x * 3.0).exp()
        c.sync()
    finally:
        c._conn.send = orig
    assert ("mul", True) in sent and ("scalar_tensor", True) in sent
    assert ("mul", False) in sent and ("exp", False) in sent


# ---- detach, requires_grad, alias ------------------------------------------------------------
def test_detach_shares_data_without_history():
    x = leaf()
    y = x * 2.0
    d = y.detach()
    assert not d.requires_grad and d.is_leaf and d.grad_fn is None
    close(d, 2 * X0)
    xd = x.detach()
    with td.no_grad():
        xd.add_(1.0)                   # same storage as x
    close(x, X0 + 1)
    e = (x * 1.0)
    e.detach_()
    assert not e.requires_grad and e.grad_fn is None
    close(e, X0 + 1)


def test_requires_grad_flag_and_leaves():
    t = td.tensor(np.array([1.0, 2.0]))
    assert not t.requires_grad and t.is_leaf
    t.requires_grad = True
    assert t.requires_grad and t.is_leaf
    (t * t).sum().backward()
    close(t.grad, [2.0, 4.0])
    t.requires_grad_(False)
    assert not (t * t).requires_grad
    nl = leaf() * 2.0
    nl.requires_grad_(True)           # already requires grad: allowed
    with pytest.raises(RuntimeError, match="only change requires_grad flags of leaf"):
        nl.requires_grad = False
    for factory in (lambda: td.zeros(2, requires_grad=True),
                    lambda: td.ones(2, 2, dtype=F64, requires_grad=True),
                    lambda: td.randn(3, requires_grad=True),
                    lambda: td.rand(3, requires_grad=True),
                    lambda: td.full((2,), 1.5, requires_grad=True),
                    lambda: td.arange(0.0, 3.0, requires_grad=True),
                    lambda: td.empty(2, requires_grad=True),
                    lambda: td.linspace(0, 1, 4, requires_grad=True),
                    lambda: td.eye(2, requires_grad=True),
                    lambda: td.zeros_like(t, requires_grad=True)):
        f = factory()
        assert f.requires_grad and f.is_leaf
        (f * f).sum().backward()
        close(f.grad, 2 * f.detach().numpy())


def test_alias_is_a_recorded_identity():
    x = leaf()
    a = x.alias()
    assert a.requires_grad and not a.is_leaf
    (a * a).sum().backward()
    close(x.grad, 2 * X0)
    b = td.tensor(np.array([1.0])).alias()
    assert not b.requires_grad


# ---- forward mode ------------------------------------------------------------------------------
def test_dual_tensors_give_jvps():
    x = td.tensor(X0)
    v = np.array([1.0, -2.0, 0.5])
    with fwad.dual_level():
        d = fwad.make_dual(x, td.tensor(v))
        y = d.exp() * d
        p, t = fwad.unpack_dual(y)
        close(p, np.exp(X0) * X0)
        close(t, np.exp(X0) * (1 + X0) * v)
        assert isinstance(fwad.unpack_dual(y), fwad.UnpackedDualTensor)
        plain = fwad.unpack_dual(x)
        assert plain.tangent is None
        close(plain.primal, X0)
        assert fwad.unpack_dual(p).tangent is None    # the primal view has no tangent
        # detach keeps the tangent (daemon semantics, like PyTorch)
        close(fwad.unpack_dual(d.detach()).tangent, v)
    with fwad.dual_level():
        assert fwad.unpack_dual(d).tangent is None    # the old level's tangent is gone


def test_make_dual_outside_a_level_fails():
    fwad.make_dual(td.tensor(X0), td.tensor(X0))
    with pytest.raises(td.FailedPrecondition, match="no dual level is active"):
        td.default_client().sync()


# ---- in place ----------------------------------------------------------------------------------
def test_inplace_methods():
    a = td.tensor(np.array([1.0, -2.0, 3.0]))
    a.add_(1.0)
    close(a, [2.0, -1.0, 4.0])
    a.add_(td.tensor(np.array([1.0, 1.0, 1.0])), alpha=2)
    close(a, [4.0, 1.0, 6.0])
    a.sub_(1.0)
    a.mul_(2.0)
    a.div_(4.0)
    close(a, [1.5, 0.0, 2.5])
    a.clamp_(min=0.5, max=2.0)
    close(a, [1.5, 0.5, 2.0])
    a.fill_(7.0)
    close(a, [7.0, 7.0, 7.0])
    a.copy_(td.tensor(np.array([1.0, 2.0, 3.0])))
    a.exp_()                           # generic in-place form of an op
    close(a, np.exp([1.0, 2.0, 3.0]))
    a.zero_()
    close(a, [0.0, 0.0, 0.0])
    b = td.tensor(np.arange(6.0).reshape(2, 3))
    b[0, 1:] = 9.0
    b[1] = td.tensor(np.array([-1.0, -2.0, -3.0]))
    close(b, [[0.0, 9.0, 9.0], [-1.0, -2.0, -3.0]])
    b[b.detach() < 0] = 0.0
    close(b, [[0.0, 9.0, 9.0], [0.0, 0.0, 0.0]])
    c = td.tensor(np.array([1.0, 2.0]))
    alias = c
    c += 1.0
    assert c is alias
    close(alias, [2.0, 3.0])


def test_inplace_and_autograd():
    x = leaf()
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad is being used "
                                           "in an in-place operation"):
        x.add_(1.0)
    with pytest.raises(RuntimeError, match="in-place"):
        x[0] = 1.0
    with td.no_grad():
        x.mul_(2.0)                    # allowed without grad mode
    close(x, 2 * X0)
    y = x * 1.0
    with pytest.raises(RuntimeError, match="in-place operation on a tensor that requires "
                                           "grad"):
        y.mul_(2.0)
    s = y.sum()
    s += 1.0                           # rebinds to the out-of-place result
    s.backward()
    close(x.grad, [1.0, 1.0, 1.0])


# ---- errors ------------------------------------------------------------------------------------
def test_errors():
    t = td.tensor(np.array([1.0, 2.0]))
    with pytest.raises(RuntimeError, match="does not require grad and does not have a "
                                           "grad_fn"):
        t.sum().backward()
    with pytest.raises(RuntimeError, match="does not require grad"):
        td.autograd.grad((leaf() * 2.0).sum(), t)
    x = leaf()
    (x * x).backward()
    with pytest.raises(td.InvalidArgument, match="grad can be implicitly created only for "
                                                 "scalar outputs"):
        td.default_client().sync()
    with pytest.raises(RuntimeError, match="only Tensors of floating point and complex "
                                           "dtype can require gradients"):
        td.tensor(np.array([1, 2])).requires_grad_()
    with pytest.raises(RuntimeError, match="floating point"):
        td.zeros(2, dtype=td.int64, requires_grad=True)
    with pytest.raises(RuntimeError, match="floating point"):
        td.arange(4, requires_grad=True)
    with pytest.raises(RuntimeError, match="detach\\(\\).numpy\\(\\)"):
        x.numpy()
    np.testing.assert_allclose(x.detach().numpy(), X0)
    assert (x * 2.0).sum().item() == pytest.approx(2 * X0.sum())   # item() is allowed
    assert x.tolist() == pytest.approx(list(X0))
    with pytest.raises(RuntimeError, match="mismatch|length"):
        td.autograd.backward([x.sum()], [None, None])


# ---- memory ------------------------------------------------------------------------------------
def test_session_memory_returns_to_zero(daemon):
    main = td.default_client()
    base = main.stats()["server_bytes"]
    c = td.Client(daemon.unix_address)
    try:
        x = td.tensor(np.linspace(-1, 1, 1000), client=c, requires_grad=True)
        for _ in range(3):
            y = (x.exp() * x * x).sum()
            y.backward()
        g = x.grad
        assert g.shape == (1000,)
        del y, g
        (gx,) = td.autograd.grad((x * x).sum(), x)
        del gx
        x.grad = None
        del x
        gc.collect()
        st = c.stats()
        assert st["session_tensors"] == 0 and st["session_bytes"] == 0, st
        # a create_graph .grad refers to its own history (a cycle): freed at disconnect
        x = td.tensor(np.linspace(-1, 1, 1000), client=c, requires_grad=True)
        (x * x * x).sum().backward(create_graph=True)
        assert c.stats()["session_bytes"] > 0
    finally:
        c.close()
    # The daemon tears the session down after the close arrives: wait for it (bounded).
    deadline = time.monotonic() + 10
    while main.stats()["server_bytes"] != base and time.monotonic() < deadline:
        time.sleep(0.02)
    assert main.stats()["server_bytes"] == base


# ---- asynchrony ------------------------------------------------------------------------------
@pytest.fixture
def own_daemon():
    d = tdtest_daemon.Daemon(tcp=False)
    yield d
    d.stop_and_check()


def test_autograd_does_not_wait(own_daemon):
    with td.Client(own_daemon.unix_address) as c:
        x = td.tensor(X0, client=c, requires_grad=True)
        w = td.tensor(np.array([1.0, 2.0, 3.0]), client=c)
        c.schema()
        c.sync()
        read0 = c.replies_read
        with Stopped(own_daemon.proc) as s:
            outs = []
            for _ in range(20):
                y = (x * w).exp().sum()
                assert y.requires_grad and y.grad_fn is not None
                y.backward(retain_graph=True)
                (g,) = td.autograd.grad(y, x)
                outs.append(g)
                with td.no_grad():
                    w.mul_(1.0)
            waited = c.replies_read - read0
        assert s.held, "autograd waited for the stopped daemon"
        assert waited == 0
        ref = np.exp(X0 * [1.0, 2.0, 3.0]) * [1.0, 2.0, 3.0]
        close(x.grad, 20 * ref)
        close(outs[-1], ref)


# ---- every autograd op is exercised ------------------------------------------------------------
def test_zz_every_autograd_op_is_sent_by_these_tests():
    # Runs last (file order): the recorder saw the ops of every test above.
    wanted = set(test_ops.AUTOGRAD_OPS) - {"sgd_step", "adam_step"}
    assert len(wanted) >= 12
    missing = wanted - SENT_OPS
    assert not missing, "autograd ops no test here sends: %s" % sorted(missing)


# ---- the asynchronous client under autograd's usage patterns ---------------------------------
def test_released_input_of_a_queued_op_is_freed_after_it():
    c = td.default_client()
    x = td.randn(3)
    c.sync()
    ref = x.numpy() * 2
    y = x * 2.0                        # queued, not sent
    del x                              # its free must not overtake the queued Run
    gc.collect()
    z = td.tensor(np.array([1.0]))    # an upload sends right away
    np.testing.assert_allclose(y.numpy(), ref)
    del z


def test_parameters_made_from_dropped_uploads_survive_a_failed_batch():
    # detach + requires_grad_ on an upload the caller drops at once, then a failing op in
    # the same stream: the re-sent ops still find their inputs.
    c = td.default_client()
    ps = [td.tensor(np.full(3, float(i))).detach().requires_grad_() for i in range(3)]
    losses = [(p * p).sum() for p in ps]
    bad = td.tensor(np.ones(2)) @ td.tensor(np.ones(3))
    with pytest.raises(td.InvalidArgument):
        c.sync()
    del bad
    for i, (p, l) in enumerate(zip(ps, losses)):
        l.backward()
        close(p.grad, np.full(3, 2.0 * i))
