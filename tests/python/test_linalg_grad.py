"""Gradients of the spectral and orthogonal factorizations (qr, eigh, eigvalsh, svd, svdvals)
and of det at singular matrices, checked through the daemon against central finite differences
of the daemon's own forward computation (never against the formulas' output).

Eigenvectors and singular vectors are defined up to a sign (a phase e^{i phi} for complex
input), so their derivatives only exist for losses that do not depend on that choice: the
functions differentiated here are gauge invariant (sum |V|^2 W, V diag(f(L)) V^H,
U diag(S) Vh, |U|^2, Q R, Q conj(Q), ...). For each, in float64 and complex128:
- VJP: autograd.grad with a random cotangent v against finite differences of
  Re(sum(conj(v) * f(x))) (dL/dx + i dL/dy for complex inputs);
- JVP: forward_ad tangents (and td.func.jvp) against (f(x + eps u) - f(x - eps u)) / 2eps;
- second order: the VJP computed with create_graph, differentiated again, against finite
  differences of Re(<w, VJP(x)>).
qr, eigvalsh, svdvals, det and the real eigh and svd also pass the generated checks of
test_gradcheck.py; the complex eigenvector/singular-vector cases are only checked here. Losses that depend on the gauge, and
the cases without a derivative (qr mode='r', qr complete with m > n, the JVP of svd with
full_matrices and m != n), must fail with an error naming the op; the VJP of svd with
full_matrices and m != n uses the first min(m, n) singular vectors, as PyTorch's.
"""
import numpy as np
import pytest

import tensord as td
from tensord.autograd import forward_ad

pytestmark = pytest.mark.timeout(600)

F64, C128 = td.float64, td.complex128
EPS = 1e-6


def _rand(rng, shape, d):
    if d is C128:
        return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    return rng.standard_normal(shape)


def _t(a, d):
    return td.tensor(np.asarray(a), dtype=d)


def _h(x):
    """x^H over the last two dims (a tensord tensor)."""
    return td.op("conj", x.mT) if x.dtype is C128 else x.mT


def _abs2(x):
    return (x * td.op("conj", x)).real if x.dtype is C128 else x * x


def _diag_embed(s, n, d):
    return td.op("unsqueeze", s, dim=-1) * _t(np.eye(n), d)


def _outs(r):
    return list(r) if isinstance(r, (list, tuple)) else [r]


def _np_outs(fn, arrays, d):
    with td.no_grad():
        return [o.numpy() for o in _outs(fn(*[_t(a, d) for a in arrays]))]


def _fd(f, arrays):
    """Central-difference gradient of the real scalar f(arrays) for each array."""
    grads = []
    for i, base in enumerate(arrays):
        g = np.zeros(base.shape, dtype=base.dtype)
        parts = (1.0, 1j) if base.dtype.kind == "c" else (1.0,)
        for j in range(base.size):
            for part in parts:
                plus = [a.copy() for a in arrays]
                minus = [a.copy() for a in arrays]
                plus[i].reshape(-1)[j] += EPS * part
                minus[i].reshape(-1)[j] -= EPS * part
                g.reshape(-1)[j] += (f(plus) - f(minus)) / (2 * EPS) * part
        grads.append(g)
    return grads


def _close(got, want, what, rtol=1e-5, atol=1e-6):
    want = np.asarray(want)
    scale = max(1.0, float(np.max(np.abs(want))) if want.size else 1.0)
    np.testing.assert_allclose(np.asarray(got), want, rtol=rtol, atol=atol * scale,
                               err_msg=what)


def _dot(vs, outs):
    return sum(float(np.real(np.sum(np.conj(v) * o))) for v, o in zip(vs, outs))


def check(fn, arrays, d, what, second=True, seed=0):
    """fn(*tensors) -> tensor or tuple of floating tensors; arrays are its inputs (numpy,
    dtype d). Runs the VJP, JVP (forward_ad and td.func.jvp) and second-order checks."""
    rng = np.random.default_rng(seed)
    arrays = [np.asarray(a).astype(d.numpy_dtype) for a in arrays]
    outs0 = _np_outs(fn, arrays, d)
    vs = [_rand(rng, o.shape, C128 if o.dtype.kind == "c" else F64) for o in outs0]

    def grads_at(arrs, create=False):
        leaves = [_t(a, d).requires_grad_() for a in arrs]
        outs = _outs(fn(*leaves))
        gos = [_t(v, o.dtype) for v, o in zip(vs, outs)]
        gs = td.autograd.grad(outs, leaves, grad_outputs=gos, create_graph=create,
                              retain_graph=create, allow_unused=True)
        return leaves, list(gs)

    # VJP against finite differences.
    _, gs = grads_at(arrays)
    got = [np.zeros_like(a) if g is None else g.numpy() for g, a in zip(gs, arrays)]
    want = _fd(lambda arrs: _dot(vs, _np_outs(fn, arrs, d)), arrays)
    for i, (g, w) in enumerate(zip(got, want)):
        _close(g, w, "%s: VJP of input %d" % (what, i))

    # JVP (forward_ad) against finite differences and against the VJP.
    us = [_rand(rng, a.shape, d) for a in arrays]
    with forward_ad.dual_level():
        duals = [forward_ad.make_dual(_t(a, d), _t(u, d)) for a, u in zip(arrays, us)]
        tans = [forward_ad.unpack_dual(o).tangent.numpy() for o in _outs(fn(*duals))]
    fp = _np_outs(fn, [a + EPS * u for a, u in zip(arrays, us)], d)
    fm = _np_outs(fn, [a - EPS * u for a, u in zip(arrays, us)], d)
    for k, (t, a, b) in enumerate(zip(tans, fp, fm)):
        _close(t, (a - b) / (2 * EPS), "%s: JVP of output %d" % (what, k))
    lhs = _dot(vs, tans)
    rhs = sum(float(np.real(np.sum(np.conj(g) * u))) for g, u in zip(got, us))
    assert abs(lhs - rhs) <= 1e-8 * max(1.0, abs(lhs)), "%s: <v,Ju> %r != <J^T v,u> %r" % (
        what, lhs, rhs)

    # td.func.jvp gives the same tangents.
    _, tans2 = td.func.jvp(fn, tuple(_t(a, d) for a in arrays), tuple(_t(u, d) for u in us))
    for k, (t2, t) in enumerate(zip(_outs(tans2), tans)):
        _close(t2.numpy(), t, "%s: func.jvp of output %d" % (what, k), rtol=1e-10, atol=1e-12)

    if not second:
        return
    # Second order: differentiate Re<w, VJP(x)> again.
    ws = [_rand(rng, a.shape, d) for a in arrays]
    leaves, gs = grads_at(arrays, create=True)
    total = None
    for w, g in zip(ws, gs):
        if g is None or not g.requires_grad:
            continue
        term = td.op("sum", (td.op("conj", _t(w, d)) * g).real if d is C128 else _t(w, d) * g)
        total = term if total is None else total + term
    assert total is not None, "%s: the gradient has no history under create_graph" % what
    hs = td.autograd.grad([total], leaves, allow_unused=True)
    got2 = [np.zeros_like(a) if h is None else h.numpy() for h, a in zip(hs, arrays)]

    def l2(arrs):
        _, g1 = grads_at(arrs)
        return sum(float(np.real(np.sum(np.conj(w) * (0 if g is None else g.numpy()))))
                   for w, g in zip(ws, g1))

    want2 = _fd(l2, arrays)
    for i, (g, w) in enumerate(zip(got2, want2)):
        _close(g, w, "%s: second-order VJP of input %d" % (what, i), rtol=1e-4, atol=1e-5)


DTYPES = [pytest.param(F64, id="float64"), pytest.param(C128, id="complex128")]


def _herm(rng, d, n):
    a = _rand(rng, (n, n), d)
    # Distinct, well separated eigenvalues.
    return (a + np.conj(a.T)) / 2 + np.diag(np.arange(n) * 2.0)


# ---- eigh -----------------------------------------------------------------------------------
@pytest.mark.parametrize("d", DTYPES)
@pytest.mark.parametrize("uplo", ["L", "U"])
def test_eigh_gauge_invariant_functions(d, uplo):
    rng = np.random.default_rng(1)
    a = _herm(rng, d, 3)
    # The unread triangle is spoiled: it must get no gradient and no influence.
    a = a + (np.triu if uplo == "L" else np.tril)(np.full((3, 3), 7.0), 1 if uplo == "L" else -1)
    w = rng.standard_normal((3, 3))

    def f_abs2(x):
        lam, v = td.op("eigh", x, UPLO=uplo)
        return td.op("sum", _abs2(v) * _t(w, F64)) + td.op("sum", lam * lam)

    def f_func(x):
        lam, v = td.op("eigh", x, UPLO=uplo)
        return (v * td.op("unsqueeze", td.op("sin", lam), dim=-2)) @ _h(v), lam

    check(f_abs2, [a], d, "eigh sum |V|^2 W %s %s" % (d.name, uplo))
    check(f_func, [a], d, "eigh V sin(L) V^H %s %s" % (d.name, uplo))


@pytest.mark.parametrize("d", DTYPES)
def test_eigh_batched(d):
    rng = np.random.default_rng(2)
    a = np.stack([_herm(rng, d, 2), _herm(rng, d, 2)])

    def f(x):
        lam, v = td.op("eigh", x)
        return (v * td.op("unsqueeze", lam * lam * lam, dim=-2)) @ _h(v)

    check(f, [a], d, "eigh batched V L^3 V^H %s" % d.name)


def test_eigh_complex_phase_dependent_loss_fails():
    rng = np.random.default_rng(3)
    x = _t(_herm(rng, C128, 3), C128).requires_grad_()
    lam, v = td.op("eigh", x)
    # Re V[0, 0] changes with the phase of the first eigenvector: no derivative.
    loss = td.op("sum", v.real * _t(np.eye(3), F64))
    with pytest.raises(td.TensordError, match="eigh"):
        td.autograd.grad([loss], [x])[0].numpy()


@pytest.mark.parametrize("d", DTYPES)
def test_eigvalsh(d):
    rng = np.random.default_rng(4)
    a = _herm(rng, d, 3)
    check(lambda x: td.op("eigvalsh", x, UPLO="U"), [a], d, "eigvalsh %s" % d.name)
    # Hand-computed: for A = diag(1, 3) rotated, d(lambda_max)/dA = v v^H.
    c, s = np.cos(0.3), np.sin(0.3)
    q = np.array([[c, -s], [s, c]])
    x = _t(q @ np.diag([1.0, 3.0]) @ q.T, F64).requires_grad_()
    (g,) = td.autograd.grad([td.op("eigvalsh", x)], [x], grad_outputs=[_t([0.0, 1.0], F64)])
    vv = np.outer(q[:, 1], q[:, 1])
    # The lower triangle is read: the off-diagonal entry counts twice, the upper gets none.
    np.testing.assert_allclose(g.numpy(), np.array([[vv[0, 0], 0], [2 * vv[1, 0], vv[1, 1]]]),
                               atol=1e-13)


# ---- svd ------------------------------------------------------------------------------------
SV_SHAPES = [(3, 3), (4, 2), (2, 4), (2, 3, 2)]


@pytest.mark.parametrize("d", DTYPES)
@pytest.mark.parametrize("shape", SV_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_svd_gauge_invariant_functions(d, shape):
    rng = np.random.default_rng(5)
    a = _rand(rng, shape, d)
    m, n = shape[-2], shape[-1]
    k = min(m, n)
    w1 = rng.standard_normal(shape[:-2] + (m, k))
    w2 = rng.standard_normal(shape[:-2] + (k, n))

    def f_usv(x):
        u, s, vh = td.op("svd", x, full_matrices=False)
        return (u * td.op("unsqueeze", s, dim=-2)) @ vh

    def f_abs2(x):
        u, s, vh = td.op("svd", x, full_matrices=False)
        return (td.op("sum", _abs2(u) * _t(w1, F64)) + td.op("sum", _abs2(vh) * _t(w2, F64))
                + td.op("sum", s * s * s))

    def f_proj(x):
        # U diag(S^2) U^H and Vh^H diag(exp S) Vh: each factor alone, gauge invariant.
        u, s, vh = td.op("svd", x, full_matrices=False)
        pu = (u * td.op("unsqueeze", s * s, dim=-2)) @ _h(u)
        pv = (_h(vh) * td.op("unsqueeze", td.op("exp", s), dim=-2)) @ vh
        return pu, pv

    what = "svd %s %s" % (d.name, shape)
    check(f_usv, [a], d, what + " U S Vh")
    check(f_abs2, [a], d, what + " |U|^2, |Vh|^2")
    check(f_proj, [a], d, what + " U S^2 U^H, V e^S V^H")


@pytest.mark.parametrize("d", DTYPES)
def test_svd_full_matrices_square(d):
    rng = np.random.default_rng(6)
    a = _rand(rng, (3, 3), d)

    def f(x):
        u, s, vh = td.op("svd", x, full_matrices=True)
        return (u * td.op("unsqueeze", td.op("sin", s), dim=-2)) @ vh

    check(f, [a], d, "svd full_matrices square %s" % d.name)


@pytest.mark.parametrize("d", DTYPES)
def test_svdvals(d):
    rng = np.random.default_rng(7)
    for shape in [(3, 3), (4, 2), (2, 3)]:
        check(lambda x: td.op("svdvals", x), [_rand(rng, shape, d)], d,
              "svdvals %s %s" % (d.name, shape))


@pytest.mark.parametrize("shape", [(4, 2), (2, 4)])
def test_svd_full_matrices_non_square_uses_first_k_vectors(shape):
    """As PyTorch: with full_matrices=True and m != n, backward uses the first min(m, n)
    columns of U and rows of Vh and ignores cotangents on the others (an arbitrary basis of
    the complement). U[:, :k] diag(S) Vh[:k] is A itself, so the gradient of
    sum(W * (U[:, :k] diag(S) Vh[:k])) is W exactly, and adding the extra vectors to the loss
    changes nothing. The JVP is refused, naming svd."""
    rng = np.random.default_rng(8)
    a = rng.standard_normal(shape)
    w = rng.standard_normal(shape)
    k = min(shape)
    x = _t(a, F64).requires_grad_()
    u, s, vh = td.op("svd", x, full_matrices=True)
    rec = (td.op("narrow", u, dim=-1, start=0, length=k) * td.op("unsqueeze", s, dim=-2)) @ \
        td.op("narrow", vh, dim=-2, start=0, length=k)
    loss = td.op("sum", rec * _t(w, F64)) + td.op("sum", u) + td.op("sum", vh)
    g = td.autograd.grad([loss], [x])[0].numpy()
    # sum(u) + sum(vh) depend on the first k vectors too (sign-dependent, but a fixed point
    # gives a fixed gradient): compare with the thin svd's gradient of the same loss.
    x2 = _t(a, F64).requires_grad_()
    u2, s2, vh2 = td.op("svd", x2, full_matrices=False)
    rec2 = (u2 * td.op("unsqueeze", s2, dim=-2)) @ vh2
    loss2 = td.op("sum", rec2 * _t(w, F64)) + td.op("sum", u2) + td.op("sum", vh2)
    g2 = td.autograd.grad([loss2], [x2])[0].numpy()
    np.testing.assert_allclose(g, g2, rtol=1e-10, atol=1e-12)
    x3 = _t(a, F64).requires_grad_()
    u3, s3, vh3 = td.op("svd", x3, full_matrices=True)
    rec3 = (td.op("narrow", u3, dim=-1, start=0, length=k) *
            td.op("unsqueeze", s3, dim=-2)) @ td.op("narrow", vh3, dim=-2, start=0, length=k)
    g3 = td.autograd.grad([td.op("sum", rec3 * _t(w, F64))], [x3])[0].numpy()
    np.testing.assert_allclose(g3, w, rtol=1e-10, atol=1e-12)
    with forward_ad.dual_level():
        dual = forward_ad.make_dual(_t(a, F64), _t(np.ones(shape), F64))
        with pytest.raises(td.TensordError, match="svd.*full_matrices=False"):
            td.op("svd", dual, full_matrices=True)[1].numpy()


def test_svd_complex_phase_dependent_loss_fails():
    rng = np.random.default_rng(9)
    x = _t(_rand(rng, (3, 3), C128), C128).requires_grad_()
    u, s, vh = td.op("svd", x, full_matrices=False)
    with pytest.raises(td.TensordError, match="svd"):
        td.autograd.grad([td.op("sum", u.real)], [x])[0].numpy()


# ---- qr -------------------------------------------------------------------------------------
@pytest.mark.parametrize("d", DTYPES)
@pytest.mark.parametrize("shape,mode", [((3, 3), "reduced"), ((4, 2), "reduced"),
                                        ((2, 4), "reduced"), ((2, 3, 2), "reduced"),
                                        ((2, 4), "complete"), ((3, 3), "complete")],
                         ids=lambda p: "x".join(map(str, p)) if isinstance(p, tuple) else p)
def test_qr(d, shape, mode):
    rng = np.random.default_rng(10)
    a = _rand(rng, shape, d)

    def f_raw(x):
        return td.op("qr", x, mode=mode)

    def f_inv(x):
        q, r = td.op("qr", x, mode=mode)
        qq = q * td.op("conj", q) if d is C128 else q * q
        return q @ r, qq, q @ _h(q)

    what = "qr %s %s %s" % (d.name, shape, mode)
    # Q and R themselves are unique once R's diagonal is real, as LAPACK returns it.
    check(f_raw, [a], d, what + " (Q, R)")
    check(f_inv, [a], d, what + " QR, Q conj(Q), Q Q^H")


@pytest.mark.parametrize("shape,mode,match", [
    ((3, 3), "r", "qr: the derivative of linalg.qr depends on Q"),
    ((4, 2), "complete", "qr: the QR decomposition is not differentiable when mode='complete'")])
def test_qr_without_derivative_fails(shape, mode, match):
    x = _t(np.random.default_rng(11).standard_normal(shape), F64).requires_grad_()
    q, r = td.op("qr", x, mode=mode)
    with pytest.raises(td.TensordError, match=match):
        td.autograd.grad([td.op("sum", r)], [x])[0].numpy()
    with forward_ad.dual_level():
        dual = forward_ad.make_dual(_t(np.eye(*shape), F64), _t(np.ones(shape), F64))
        with pytest.raises(td.TensordError, match="qr"):
            td.op("qr", dual, mode=mode)[1].numpy()


# ---- det at singular matrices ---------------------------------------------------------------
def _adjugate(a):
    n = a.shape[-1]
    adj = np.zeros_like(a)
    for i in range(n):
        for j in range(n):
            minor = np.delete(np.delete(a, i, 0), j, 1)
            adj[j, i] = (-1) ** (i + j) * np.linalg.det(minor)
    return adj


@pytest.mark.parametrize("d", DTYPES)
def test_det_gradient_at_singular_matrix_is_the_adjugate(d):
    rng = np.random.default_rng(12)
    b = _rand(rng, (3, 2), d)
    c = _rand(rng, (2, 3), d)
    a = b @ c  # rank 2: det 0, adjugate nonzero
    adj = _adjugate(a)
    assert np.max(np.abs(adj)) > 0.1
    one = [_t(np.ones(()), d)]
    x = _t(a, d).requires_grad_()
    (g,) = td.autograd.grad([td.op("det", x)], [x], grad_outputs=one)
    # d det / dA = adj(A)^T; the VJP of a holomorphic f is grad * conj(f').
    np.testing.assert_allclose(g.numpy(), np.conj(adj.T), atol=1e-10)
    # Exactly singular in floating point too (LU meets an exact zero pivot).
    e = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]])
    x = _t(e, d).requires_grad_()
    (g,) = td.autograd.grad([td.op("det", x)], [x], grad_outputs=one)
    np.testing.assert_allclose(g.numpy(), _adjugate(e).T, atol=1e-12)
    # Against finite differences, first and second order (through svd's derivatives; for
    # complex input the second derivative divides by the zero singular value, as PyTorch's).
    check(lambda x: td.op("det", x), [a], d, "det at a rank-2 matrix %s" % d.name,
          second=(d is F64))
    # A rank n - 2 matrix: the adjugate is 0, and so is the gradient.
    z = np.outer(_rand(rng, 3, d), _rand(rng, 3, d))
    x = _t(z, d).requires_grad_()
    (g,) = td.autograd.grad([td.op("det", x)], [x], grad_outputs=one)
    np.testing.assert_allclose(g.numpy(), np.zeros((3, 3)), atol=1e-12)


def test_det_batch_with_one_singular_element():
    rng = np.random.default_rng(13)
    a = np.stack([rng.standard_normal((3, 3)) + 3 * np.eye(3),
                  np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])])
    x = _t(a, F64).requires_grad_()
    (g,) = td.autograd.grad([td.op("det", x)], [x], grad_outputs=[_t([2.0, -1.0], F64)])
    want = np.stack([2.0 * _adjugate(a[0]).T, -1.0 * _adjugate(a[1]).T])
    np.testing.assert_allclose(g.numpy(), want, atol=1e-11)
    with forward_ad.dual_level():
        u = rng.standard_normal((2, 3, 3))
        t = forward_ad.unpack_dual(td.op("det", forward_ad.make_dual(_t(a, F64), _t(u, F64))))
        np.testing.assert_allclose(t.tangent.numpy(),
                                   [np.sum(_adjugate(a[i]).T * u[i]) for i in range(2)],
                                   atol=1e-11)
