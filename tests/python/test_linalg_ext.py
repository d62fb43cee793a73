"""Dedicated tests of ops_lapack_ext.c beyond the SPECS samples (op_specs_lapack_ext.py):
residuals scaled by machine epsilon on dense inputs (A X - B, P L U - A, A V - V diag(w),
the normal equations of lstsq, Q^H Q - I), info outputs for singular and non positive-definite
input, errors naming the batch element, and eig's gradient (gauge dependent, so listed in
test_gradcheck.py's DEDICATED set) through gauge-invariant functions of its outputs against
float64 central differences.
"""
import numpy as np
import pytest

import tensord as td
from tensord.autograd import forward_ad
from op_specs_linalg import gen
from spec_common import hp

F32, F64, C64, C128, I32 = td.float32, td.float64, td.complex64, td.complex128, td.int32
EPS = {F32: np.finfo(np.float32).eps, C64: np.finfo(np.float32).eps,
       F64: np.finfo(np.float64).eps, C128: np.finfo(np.float64).eps}
K = 30.0    # a backward-stable result leaves residuals of a small multiple of n eps |A|

pytestmark = pytest.mark.timeout(300)


def _h(x):
    return np.conj(np.swapaxes(x, -1, -2))


def _nrm(x):
    return float(np.max(np.abs(x), initial=0.0))


def T(a, d, client):
    return td.tensor(np.asarray(a).astype(d.numpy_dtype), dtype=d, client=client)


@pytest.mark.parametrize("d", [F32, F64, C64, C128], ids=lambda d: d.name)
def test_residuals(client, d):
    rng = np.random.default_rng(7)
    eps = EPS[d]
    for bs in ((), (3,), (2, 2)):
        for n in (1, 2, 5, 12):
            what = "%s batch %s n %d" % (d.name, bs, n)
            a = hp(gen(rng, d, bs + (n, n)) + n * np.eye(n))
            ta = T(a, d, client)
            lim = K * n * eps * max(1.0, _nrm(a))
            # solve_triangular, both sides, both triangles
            for upper in (True, False):
                tri = np.triu(a) if upper else np.tril(a)
                b = hp(gen(rng, d, bs + (n, 3)))
                x = hp(td.op("solve_triangular", ta, T(b, d, client), upper=upper,
                             client=client).numpy())
                assert _nrm(tri @ x - b) <= lim * max(1.0, _nrm(x)), "trsm " + what
                br = _h(b)
                x = hp(td.op("solve_triangular", ta, T(br, d, client), upper=upper, left=False,
                             client=client).numpy())
                assert _nrm(x @ tri - br) <= lim * max(1.0, _nrm(x)), "trsm right " + what
            # lu: P L U - A on a general (pivoting) matrix, square, tall and wide
            for m2, n2 in ((n, n), (n + 2, n), (n, n + 3)):
                g = hp(gen(rng, d, bs + (m2, n2)))
                p, l, u = (hp(o.numpy()) for o in td.op("lu", T(g, d, client), client=client))
                assert _nrm(p @ l @ u - g) <= K * max(m2, n2) * eps * max(1.0, _nrm(g)) * 4, \
                    "lu " + what
                assert np.all(np.triu(l, 1) == 0) and np.all(np.tril(u, -1) == 0)
                assert _nrm(_h(p) @ p - np.eye(m2)) == 0
            # lu_factor + lu_solve, all four forms: op(A) X - B
            lu, piv = td.op("lu_factor", ta, client=client)
            assert piv.dtype == I32
            for left in (True, False):
                for adj in (False, True):
                    b = hp(gen(rng, d, bs + ((n, 2) if left else (2, n))))
                    x = hp(td.op("lu_solve", lu, piv, T(b, d, client), left=left,
                                 adjoint=adj, client=client).numpy())
                    op = _h(a) if adj else a
                    r = op @ x - b if left else x @ op - b
                    assert _nrm(r) <= lim * 4 * max(1.0, _nrm(x)), "lu_solve %s %s %s" % (
                        left, adj, what)
            # eig of a dense matrix (real ones have complex pairs): A V - V diag(w), |v| = 1
            g = hp(gen(rng, d, bs + (n, n)))
            w, v = td.op("eig", T(g, d, client), client=client)
            assert w.dtype == {F32: C64, F64: C128}.get(d, d) and v.dtype == w.dtype
            w, v = w.numpy().astype(np.complex128), v.numpy().astype(np.complex128)
            cv = float(np.max(np.linalg.cond(v))) if n > 1 else 1.0
            assert _nrm(g @ v - v * w[..., None, :]) <= K * n * eps * max(1.0, _nrm(g)) * 10, \
                "eig " + what
            assert _nrm(np.linalg.norm(v, axis=-2) - 1) <= K * n * eps
            w2 = td.op("eigvals", T(g, d, client), client=client).numpy()
            assert _nrm(w2 - w) <= K * n * eps * max(1.0, _nrm(g)) * cv * 10, "eigvals " + what
            # lstsq: the normal equations A^H (A X - B) = 0 for every driver (tall A)
            at = hp(gen(rng, d, bs + (n + 3, n)) + np.eye(n + 3, n) * 2)
            b = hp(gen(rng, d, bs + (n + 3, 2)))
            for drv in ("gels", "gelsy", "gelsd", "gelss"):
                x = hp(td.op("lstsq", T(at, d, client), T(b, d, client), driver=drv,
                             client=client)[0].numpy())
                ne = _h(at) @ (at @ x - b)
                assert _nrm(ne) <= K * n * eps * max(1.0, _nrm(at)) ** 2 * max(1.0, _nrm(b)) \
                    * 10, "lstsq %s %s" % (drv, what)
            # householder_product with tau_i = 2 / |v_i|^2 (reflections): Q^H Q = I
            m2 = n + 2
            ah = hp(gen(rng, d, bs + (m2, n)))
            vv = np.tril(ah, -1) + np.eye(m2, n)
            tau = 2.0 / np.sum(np.abs(vv) ** 2, axis=-2)
            q = hp(td.op("householder_product", T(ah, d, client), T(tau, d, client),
                         client=client).numpy())
            assert _nrm(_h(q) @ q - np.eye(n)) <= K * m2 * eps, "householder " + what


def _batch_singular(d):
    return np.stack([np.eye(3), 2 * np.eye(3), np.diag([1.0, 1.0, 0.0])]).astype(d.numpy_dtype)


@pytest.mark.parametrize("d", [F32, F64, C64, C128], ids=lambda d: d.name)
def test_info_outputs(client, d):
    a = T(_batch_singular(d), d, client)
    inv, info = td.op("inv_ex", a, client=client)
    assert info.dtype == I32 and info.numpy().tolist() == [0, 0, 3]
    np.testing.assert_allclose(inv.numpy()[1], 0.5 * np.eye(3), rtol=1e-6)
    x, info = td.op("solve_ex", a, T(np.ones((3, 2)), d, client), client=client)
    assert info.numpy().tolist() == [0, 0, 3] and x.shape == (3, 3, 2)
    np.testing.assert_allclose(x.numpy()[1], 0.5 * np.ones((3, 2)), rtol=1e-6)
    lu, piv, info = td.op("lu_factor_ex", a, client=client)
    assert info.numpy().tolist() == [0, 0, 3] and piv.dtype == I32
    nonpd = np.stack([np.eye(2), -np.eye(2), np.array([[1.0, 2.0], [2.0, 1.0]])])
    lo, info = td.op("cholesky_ex", T(nonpd, d, client), client=client)
    assert info.numpy().tolist() == [0, 1, 2]
    np.testing.assert_allclose(lo.numpy()[0], np.eye(2))


@pytest.mark.parametrize("op", ["inv_ex", "solve_ex", "lu_factor_ex", "lu_factor", "cholesky_ex",
                                "lu_nopiv"])
def test_errors_name_batch_element(client, op):
    d = F64
    a = T(_batch_singular(d), d, client)
    with pytest.raises(td.TensordError) as ei:
        if op == "inv_ex":
            td.op("inv_ex", a, check_errors=True, client=client)[0].numpy()
        elif op == "solve_ex":
            td.op("solve_ex", a, T(np.ones((3, 1)), d, client), check_errors=True,
                  client=client)[0].numpy()
        elif op == "lu_factor_ex":
            td.op("lu_factor_ex", a, check_errors=True, client=client)[0].numpy()
        elif op == "lu_factor":
            td.op("lu_factor", a, client=client)[0].numpy()
        elif op == "cholesky_ex":
            td.op("cholesky_ex", T(-_batch_singular(d)[::-1], d, client), check_errors=True,
                  client=client)[0].numpy()
        else:
            b = np.stack([np.eye(2), np.array([[0.0, 1.0], [1.0, 0.0]])])
            td.op("lu", T(b, d, client), pivot=False, client=client)[1].numpy()
    msg = str(ei.value)
    want = {"cholesky_ex": "batch element 0", "lu_nopiv": "batch element 1"}.get(
        op, "batch element 2")
    assert want in msg, msg


def test_bad_inputs(client):
    a = T(np.eye(3), F64, client)
    cases = [
        (lambda: td.op("solve_triangular", a, T(np.ones((2, 2)), F64, client), upper=True,
                       client=client), "solve_triangular"),
        (lambda: td.op("solve_triangular", a, T(np.ones((3, 2)), F32, client), upper=True,
                       client=client), "same dtype"),
        (lambda: td.op("lu_solve", a, T(np.array([1, 2, 4]), I32, client),
                       T(np.ones((3, 1)), F64, client), client=client), "out of range"),
        (lambda: td.op("lu_solve", a, T(np.array([1, 2]), I32, client),
                       T(np.ones((3, 1)), F64, client), client=client), "pivots"),
        (lambda: td.op("lstsq", a, T(np.ones((3, 1)), F64, client), driver="qr",
                       client=client), "driver"),
        (lambda: td.op("householder_product", T(np.ones((2, 3)), F64, client),
                       T(np.ones(2), F64, client), client=client), "householder_product"),
        (lambda: td.op("eig", T(np.array([[1.0, np.nan], [0, 1]]), F64, client),
                       client=client), "batch element 0"),
    ]
    for f, want in cases:
        with pytest.raises(td.TensordError) as ei:
            r = f()
            (r[0] if isinstance(r, tuple) else r).numpy()
        assert want in str(ei.value) and "INVALID_ARGUMENT" in str(ei.value), str(ei.value)


# ---- eig's gradient through gauge-invariant functions ------------------------------------
def _eig_matrix(rng, d, n):
    s = np.eye(n) + 0.3 * rng.uniform(-1, 1, (n, n))
    w = np.arange(1, n + 1) * 1.3
    a = s @ np.diag(w) @ np.linalg.inv(s)
    if d.kind == "c":
        a = a + 0.3j * rng.uniform(-1, 1, (n, n))
    else:
        a[0, 1] += 2.0        # a complex pair among real eigenvalues
        a[1, 0] -= 2.0
    return a.astype(d.numpy_dtype)


def _f_abs(client, w_re, w_im):
    """sum(|V|^2 * W) + Re(sum(c * L)): invariant to the phase of each eigenvector."""
    def f(L, V):
        vv = td.op("mul", td.op("abs", V), td.op("abs", V))
        s1 = td.op("sum", td.op("mul", vv, td.tensor(w_re, client=client)))
        s2 = td.op("sum", td.op("real", td.op("mul", L, td.tensor(w_im, client=client))))
        return td.op("add", s1, s2)
    return f


def _f_recon(client, g):
    """Re(sum(conj(G) * V diag(L) V^-1)): V diag(L) V^-1 is A itself, for every gauge."""
    def f(L, V):
        m = td.op("matmul", td.op("mul", V, td.op("unsqueeze", L, dim=-2)), td.op("inv", V))
        return td.op("sum", td.op("real", td.op("mul", td.op("conj", td.tensor(g, client=client)),
                                                m)))
    return f


def _central_diff(val, a, d, eps=1e-6):
    """Central-difference gradient of the real scalar val(array) at a (dtype d; for complex d
    the real and imaginary parts are perturbed separately: grad = dv/dRe + i dv/dIm)."""
    g = np.zeros(a.shape, a.dtype)
    for idx in np.ndindex(*a.shape):
        for part in ((1.0, 1j) if d.kind == "c" else (1.0,)):
            p, m = a.copy(), a.copy()
            p[idx] += eps * part
            m[idx] -= eps * part
            g[idx] += (val(p) - val(m)) / (2 * eps) * part
    return g


def _fd(client, d, a, f, eps=1e-6):
    def val(x):
        with td.no_grad():
            L, V = td.op("eig", td.tensor(x, dtype=d, client=client), client=client)
            return float(f(L, V).numpy())
    return _central_diff(val, a, d, eps)


@pytest.mark.parametrize("d", [F64, C128], ids=lambda d: d.name)
@pytest.mark.parametrize("which", ["abs", "recon"])
def test_eig_gradient_gauge_invariant(client, d, which):
    rng = np.random.default_rng(5)
    n = 3
    a = _eig_matrix(rng, d, n)
    if which == "abs":
        f = _f_abs(client, rng.standard_normal((n, n)),
                   rng.standard_normal(n) + 1j * rng.standard_normal(n))
    else:
        gm = rng.standard_normal((n, n)) + (1j * rng.standard_normal((n, n))
                                            if d.kind == "c" else 0)
        f = _f_recon(client, gm)
    want = _fd(client, d, a, f)
    # Reverse mode.
    x = td.tensor(a, dtype=d, client=client, requires_grad=True)
    L, V = td.op("eig", x, client=client)
    (g,) = td.autograd.grad([f(L, V)], [x])
    np.testing.assert_allclose(g.numpy(), want, rtol=1e-5, atol=1e-6 * max(1, _nrm(want)))
    # Forward mode: the tangent of f along u equals Re<grad, u>.
    u = rng.standard_normal(a.shape) + (1j * rng.standard_normal(a.shape) if d.kind == "c" else 0)
    with forward_ad.dual_level():
        xd = forward_ad.make_dual(td.tensor(a, dtype=d, client=client),
                                  td.tensor(u.astype(d.numpy_dtype), dtype=d, client=client))
        L, V = td.op("eig", xd, client=client)
        t = float(forward_ad.unpack_dual(f(L, V)).tangent.numpy())
    assert abs(t - np.real(np.sum(np.conj(want) * u))) <= 1e-5 * max(1.0, abs(t))
    if which == "recon":
        # V diag(L) V^-1 = A: the gradient is G itself (its real part for real A).
        np.testing.assert_allclose(g.numpy(), np.real(gm) if d.kind == "f" else gm,
                                   rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("d", [F64, C128], ids=lambda d: d.name)
def test_eig_second_order_gauge_invariant(client, d):
    rng = np.random.default_rng(9)
    n = 3
    a = _eig_matrix(rng, d, n)
    f = _f_abs(client, rng.standard_normal((n, n)), rng.standard_normal(n))
    w = rng.standard_normal(a.shape) + (1j * rng.standard_normal(a.shape) if d.kind == "c" else 0)

    def grad_dot(arr):
        x = td.tensor(arr, dtype=d, client=client, requires_grad=True)
        L, V = td.op("eig", x, client=client)
        (g,) = td.autograd.grad([f(L, V)], [x])
        return float(np.real(np.sum(np.conj(w) * g.numpy())))

    want = _central_diff(grad_dot, a, d)
    x = td.tensor(a, dtype=d, client=client, requires_grad=True)
    L, V = td.op("eig", x, client=client)
    (g,) = td.autograd.grad([f(L, V)], [x], create_graph=True)
    tw = td.tensor(w.astype(d.numpy_dtype), dtype=d, client=client)
    s = td.op("sum", td.op("real", td.op("mul", td.op("conj", tw), g)))
    (h,) = td.autograd.grad([s], [x])
    np.testing.assert_allclose(h.numpy(), want, rtol=1e-4, atol=1e-5 * max(1, _nrm(want)))
