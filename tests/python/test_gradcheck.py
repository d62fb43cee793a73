"""Gradient checks for every differentiable op, generated from the op table (ListOps).

For each op whose schema says `differentiable`, the sample cases of the op suite
(test_ops.SPECS) are rerun in float64 and complex128 (where the op accepts them) with every
floating input as a leaf that requires grad, and the daemon's derivatives are compared with
central finite differences of the daemon's own forward computation:

- VJP: for a random cotangent v of each output, autograd.grad of the outputs with grad_outputs v
  must equal the gradient of the real loss L(x) = Re(sum(conj(v) * f(x))), measured by central
  differences; for complex inputs the gradient is dL/dx + i dL/dy (PyTorch's convention: the
  conjugate Wirtinger derivative times 2, so gradient descent works on complex parameters).
- JVP: the tangent of the outputs for a random input tangent u (forward_ad.make_dual) must equal
  (f(x + eps u) - f(x - eps u)) / (2 eps).
- Consistency of the two modes: Re<v, J u> == Re<J^T v, u>.
- Second order (create_graph): the gradient of L2(x) = Re(sum(conj(w) * vjp_v(x))) taken by
  autograd through the VJP must equal central differences of L2, where vjp_v is evaluated by the
  daemon at the perturbed points.

An op that is differentiable but has no case here fails test_every_differentiable_op_has_cases.
Random ops (dropout) are checked against their mask instead of finite differences.
"""
import zlib

import numpy as np
import pytest

import tensord as td
from tensord.autograd import forward_ad

import tdtest_daemon
import test_ops
from test_ops import F64, C128, SPECS, case_rng

pytestmark = pytest.mark.timeout(300)

EPS = 1e-6
VARIANTS = ("basic", "broadcast", "noncontig", "0d")
SECOND_ORDER_VARIANTS = ("basic",)
# Largest number of real degrees of freedom a case may have (finite differences cost two
# forward evaluations each).
MAX_DOF = 48


def _floating(d):
    return d.kind in "fc"


def _grad_dtype(d):
    """The dtype an input of dtype d takes in a gradient check (float64 / complex128)."""
    if d.kind == "f":
        return F64
    if d.kind == "c":
        return C128
    return d


def schema():
    return tdtest_daemon.schema()


def diff_ops():
    return sorted(n for n, s in schema().items() if getattr(s, "differentiable", False))


def _jitter(rng, a):
    """Moves float samples off exact ties and half-integers, where finite differences of
    max, round and friends are not defined."""
    if a.dtype.kind == "f":
        return a + rng.uniform(-1e-3, 1e-3, a.shape) * np.maximum(1.0, np.abs(a))
    if a.dtype.kind == "c":
        return a + (rng.uniform(-1e-3, 1e-3, a.shape) +
                    1j * rng.uniform(-1e-3, 1e-3, a.shape)) * np.maximum(1.0, np.abs(a))
    return a


# Inputs that are floating but not differentiated (PyTorch does not differentiate them
# either): nll_loss's class weights.
NONDIFF_INPUTS = {"nll_loss": {2}}


def _skip_case(name, case):
    # The padding row of an embedding gets no gradient although the forward reads it (as in
    # PyTorch), so finite differences cannot agree there by design.
    return (name in ("embedding", "embedding_backward") and "padding_idx" in case.attrs) or \
        _no_generic_derivative(name, case)


def _no_generic_derivative(name, case):
    """Factorization cases the generic checks cannot cover (tests/python/test_linalg_grad.py
    checks them): qr mode='r' and mode='complete' with m > n have no derivative (backward
    fails by design), svd full_matrices=True with m != n ignores the cotangents of the extra
    singular vectors (as PyTorch); a random cotangent on the
    eigenvectors or singular vectors of a complex matrix makes a loss that depends on their
    phases, which has no derivative either (gauge-invariant losses are checked there)."""
    if name not in ("qr", "svd", "eigh"):
        return False
    a, d = case.inputs[0]
    m, n = np.shape(a)[-2:]
    if name == "qr":
        mode = case.attrs.get("mode", "reduced")
        return mode == "r" or (mode == "complete" and m > n)
    if name == "svd" and case.attrs.get("full_matrices", True) and m != n:
        return True
    return d.kind == "c"


def _identity_spec(rng, d, variant):
    shapes = {"basic": (3, 4), "noncontig": (3, 4), "0d": ()}
    if variant not in shapes:
        return []
    x = test_ops.gen(rng, d, shapes[variant])
    return [test_ops.Case([(x, d)], {}, test_ops.hp(x, d), d)]


# The autograd ops are not in the op suite's SPECS (no NumPy counterpart); `alias` is an
# identity and gets generic samples; make_dual and dual_primal change tangents, so their
# checks are written out below (test_make_dual_and_dual_primal_derivatives).
GRAD_SPECS = {"alias": _identity_spec}
DEDICATED = {"dropout", "make_dual", "dual_primal",
             # gauge-dependent eigenvectors: tests/python/test_linalg_ext.py
             "eig"}


def gradcheck_cases(name):
    """[(dtype, variant, index, case)] usable for gradient checks of op `name`: those with at
    most MAX_DOF real degrees of freedom, or else the smallest one (ops like conv2d need
    larger samples)."""
    sch = schema()[name]
    spec = SPECS.get(name, GRAD_SPECS.get(name))
    if spec is None or spec == "random":
        return []
    out, big = [], []
    for d in (F64, C128):
        if d not in sch.dtypes:
            continue
        for v in VARIANTS:
            for k, case in enumerate(spec(case_rng(name, d, v), d, v)):
                ins = case.inputs
                if not any(_floating(dt) for _, dt in ins) and ins:
                    continue
                nd = NONDIFF_INPUTS.get(name, ())
                dof = sum(a.size * (2 if dt.kind == "c" else 1) for i, (a, dt) in enumerate(ins)
                          if _floating(dt) and i not in nd)
                if dof == 0 or _skip_case(name, case):
                    continue
                if any(_floating(dt) and not np.all(np.isfinite(a)) for a, dt in ins):
                    continue
                # Finite differences need float64 precision in the outputs too (a cast to
                # float16 rounds every eps-sized step away).
                if any(od.kind in "fc" and od not in (F64, C128) for od in case.out_dtypes):
                    continue
                (out if dof <= MAX_DOF else big).append((dof, (d, v, k, case)))
    if not out and big:
        out = [min(big, key=lambda e: e[0])]
    return [c for _, c in out]


def _params(kind):
    params = []
    for name in diff_ops():
        if name in DEDICATED:
            continue
        for d, v, k, case in gradcheck_cases(name):
            if kind == "second" and v not in SECOND_ORDER_VARIANTS:
                continue
            params.append(pytest.param(name, d, v, k, id="%s-%s-%s-%d" % (name, d.name, v, k)))
    return params


def pytest_generate_tests(metafunc):
    if "gc_first" in metafunc.fixturenames:
        metafunc.parametrize("gc_first,gc_dtype,gc_variant,gc_k", _params("first"))
    if "gc_second" in metafunc.fixturenames:
        metafunc.parametrize("gc_second,gc_dtype,gc_variant,gc_k", _params("second"))


# ---- running an op -------------------------------------------------------------------------
class Problem:
    """One op application with its differentiable inputs as numpy arrays."""

    def __init__(self, client, name, case, variant, seed):
        self.client = client
        self.name = name
        self.case = case
        self.variant = variant
        rng = np.random.default_rng(seed)
        self.arrays = []
        self.dtypes = []
        for a, d in case.inputs:
            gd = _grad_dtype(d)
            arr = np.asarray(a).astype(gd.numpy_dtype) if _floating(d) else np.asarray(a)
            if _floating(d):
                arr = _jitter(rng, arr)
            # Always an ndarray (0-d included), so perturbing through reshape(-1) writes it.
            self.arrays.append(np.array(arr, copy=True))
            self.dtypes.append(gd)
        nd = NONDIFF_INPUTS.get(name, ())
        self.diff = [i for i, d in enumerate(self.dtypes) if _floating(d) and i not in nd]
        self.rng = rng

    def upload(self, arrays, requires_grad=False):
        nc = self.variant == "noncontig"
        ts = []
        for i, (a, d) in enumerate(zip(arrays, self.dtypes)):
            t = test_ops.upload(self.client, a, d, nc)
            if requires_grad and i in self.diff:
                # detach keeps the view's geometry, so a non-contiguous leaf stays so.
                t = t.detach().requires_grad_()
            ts.append(t)
        return ts

    def apply(self, ins):
        if self.case.variadic:
            out = td.op(self.name, ins, client=self.client, **self.case.attrs)
        else:
            out = td.op(self.name, *ins, client=self.client, **self.case.attrs)
        return list(out) if isinstance(out, tuple) else [out]

    def forward_np(self, arrays):
        with td.no_grad():
            outs = self.apply(self.upload(arrays))
        return [o.numpy() for o in outs]


def _rand_like(rng, a):
    if a.dtype.kind == "c":
        return rng.standard_normal(a.shape) + 1j * rng.standard_normal(a.shape)
    return rng.standard_normal(a.shape)


def _loss(outs, vs):
    total = 0.0
    for o, v in zip(outs, vs):
        if v is None:
            continue
        total += float(np.real(np.sum(np.conj(v) * o.astype(v.dtype))))
    return total


def _fd_grad(p, f):
    """Central-difference gradient of the real scalar f(arrays) with respect to each
    differentiable input (dL/dx + i dL/dy for complex)."""
    grads = []
    for i in p.diff:
        base = p.arrays[i]
        g = np.zeros(base.shape, dtype=base.dtype)
        flat = g.reshape(-1)
        parts = (1.0, 1j) if base.dtype.kind == "c" else (1.0,)
        for j in range(base.size):
            for part in parts:
                plus = [np.array(a, copy=True) for a in p.arrays]
                minus = [np.array(a, copy=True) for a in p.arrays]
                plus[i].reshape(-1)[j] += EPS * part
                minus[i].reshape(-1)[j] -= EPS * part
                d = (f(plus) - f(minus)) / (2 * EPS)
                flat[j] += d * (1.0 if part == 1.0 else 1j)
        grads.append(g)
    return grads


def _close(got, want, what, rtol=1e-5, atol_scale=1e-6):
    got = np.asarray(got)
    want = np.asarray(want)
    scale = max(1.0, float(np.max(np.abs(want))) if want.size else 1.0)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol_scale * scale, err_msg=what)


def _cotangents(p, outs):
    vs = []
    for o in outs:
        vs.append(_rand_like(p.rng, o).astype(o.dtype) if o.dtype.kind in "fc" else None)
    return vs


def _vjp(p, leaves, outs_t, vs, create_graph=False):
    roots, gos = [], []
    for o, v in zip(outs_t, vs):
        if v is not None and o.requires_grad:
            roots.append(o)
            gos.append(td.tensor(v, dtype=o.dtype, client=p.client))
    if not roots:
        return [None] * len(leaves)
    return list(td.autograd.grad(roots, leaves, grad_outputs=gos, create_graph=create_graph,
                                 retain_graph=create_graph, allow_unused=True))


def _seed(name, d, variant, k):
    return zlib.crc32(("%s/%s/%s/%d" % (name, d.name, variant, k)).encode())


# ---- the tests -----------------------------------------------------------------------------
def test_every_differentiable_op_has_cases(client):
    missing = [n for n in diff_ops() if n not in DEDICATED and not gradcheck_cases(n)]
    assert not missing, "differentiable ops without gradient-check cases: %s" % missing
    assert len(diff_ops()) > 80


def test_first_order(client, gc_first, gc_dtype, gc_variant, gc_k):
    name = gc_first
    case = [c for d, v, k, c in gradcheck_cases(name)
            if d == gc_dtype and v == gc_variant and k == gc_k][0]
    p = Problem(client, name, case, gc_variant, seed=_seed(name, gc_dtype, gc_variant, gc_k))
    what = "%s %s %s attrs=%s" % (name, gc_dtype.name, gc_variant, case.attrs)
    outs0 = p.forward_np(p.arrays)
    if not all(np.all(np.isfinite(o)) for o in outs0 if o.dtype.kind in "fc"):
        pytest.skip("non-finite outputs at the sample point")
    vs = _cotangents(p, outs0)

    # Reverse mode.
    leaves = p.upload(p.arrays, requires_grad=True)
    outs_t = p.apply(leaves)
    grads = _vjp(p, [leaves[i] for i in p.diff], outs_t, vs)
    got = [np.zeros_like(p.arrays[i]) if g is None else g.numpy()
           for g, i in zip(grads, p.diff)]
    want = _fd_grad(p, lambda arrs: _loss(p.forward_np(arrs), vs))
    for i, g, w in zip(p.diff, got, want):
        _close(g, w, "%s: VJP of input %d" % (what, i))

    # Forward mode.
    us = [_rand_like(p.rng, p.arrays[i]).astype(p.arrays[i].dtype) for i in p.diff]
    with forward_ad.dual_level():
        ins = p.upload(p.arrays)
        for i, u in zip(p.diff, us):
            ins[i] = forward_ad.make_dual(ins[i], td.tensor(u, dtype=p.dtypes[i],
                                                            client=p.client))
        outs_d = p.apply(ins)
        tangents = []
        for o in outs_d:
            t = forward_ad.unpack_dual(o).tangent if o.dtype.kind in "fc" else None
            tangents.append(None if t is None else t.numpy())
    plus = [a.copy() for a in p.arrays]
    minus = [a.copy() for a in p.arrays]
    for i, u in zip(p.diff, us):
        plus[i] = plus[i] + EPS * u
        minus[i] = minus[i] - EPS * u
    fp, fm = p.forward_np(plus), p.forward_np(minus)
    for k, (t, a, b) in enumerate(zip(tangents, fp, fm)):
        if a.dtype.kind not in "fc":
            continue
        fd = (a.astype(np.complex128) - b.astype(np.complex128)) / (2 * EPS)
        if a.dtype.kind == "f":
            fd = fd.real
        _close(np.zeros_like(fd) if t is None else t, fd, "%s: JVP of output %d" % (what, k))

    # The two modes agree: Re<v, J u> == Re<J^T v, u>.
    lhs = sum(float(np.real(np.sum(np.conj(v) * (0 if t is None else t))))
              for v, t in zip(vs, tangents) if v is not None)
    rhs = sum(float(np.real(np.sum(np.conj(g) * u))) for g, u in zip(got, us))
    assert abs(lhs - rhs) <= 1e-8 * max(1.0, abs(lhs)), "%s: <v,Ju>=%r, <J^T v,u>=%r" % (
        what, lhs, rhs)


def test_second_order(client, gc_second, gc_dtype, gc_variant, gc_k):
    name = gc_second
    case = [c for d, v, k, c in gradcheck_cases(name)
            if d == gc_dtype and v == gc_variant and k == gc_k][0]
    p = Problem(client, name, case, gc_variant, seed=_seed(name, gc_dtype, "second", gc_k))
    what = "%s %s %s attrs=%s (second order)" % (name, gc_dtype.name, gc_variant, case.attrs)
    outs0 = p.forward_np(p.arrays)
    if not all(np.all(np.isfinite(o)) for o in outs0 if o.dtype.kind in "fc"):
        pytest.skip("non-finite outputs at the sample point")
    vs = _cotangents(p, outs0)
    ws = [_rand_like(p.rng, p.arrays[i]).astype(p.arrays[i].dtype) for i in p.diff]

    def vjp_np(arrs):
        leaves = p.upload(arrs, requires_grad=True)
        grads = _vjp(p, [leaves[i] for i in p.diff], p.apply(leaves), vs)
        return [np.zeros_like(arrs[i]) if g is None else g.numpy()
                for g, i in zip(grads, p.diff)]

    def l2(arrs):
        return sum(float(np.real(np.sum(np.conj(w) * g))) for w, g in zip(ws, vjp_np(arrs)))

    leaves = p.upload(p.arrays, requires_grad=True)
    diff_leaves = [leaves[i] for i in p.diff]
    grads = _vjp(p, diff_leaves, p.apply(leaves), vs, create_graph=True)
    terms = [td.sum(td.real(td.conj(td.tensor(w, client=p.client)) * g) if g.dtype.kind == "c"
                    else td.tensor(w, client=p.client) * g)
             for w, g in zip(ws, grads) if g is not None and g.requires_grad]
    if terms:
        total = terms[0]
        for t in terms[1:]:
            total = total + t
        hv = td.autograd.grad([total], diff_leaves, allow_unused=True)
        got = [np.zeros_like(p.arrays[i]) if h is None else h.numpy()
               for h, i in zip(hv, p.diff)]
    else:
        got = [np.zeros_like(p.arrays[i]) for i in p.diff]
    want = _fd_grad(p, l2)
    for i, g, w in zip(p.diff, got, want):
        _close(g, w, "%s: input %d" % (what, i), rtol=1e-4, atol_scale=1e-5)


def test_dropout_gradient_follows_its_mask(client):
    if "dropout" not in schema():
        pytest.skip("no dropout op in this daemon")
    x = td.tensor(np.random.default_rng(3).standard_normal((6, 7)), dtype=F64,
                  requires_grad=True)
    out, mask = td.op("dropout", x, p=0.3, train=True)
    v = np.random.default_rng(4).standard_normal((6, 7))
    (g,) = td.autograd.grad([out], [x], grad_outputs=[td.tensor(v, dtype=F64)])
    m = mask.numpy().astype(np.float64)
    np.testing.assert_allclose(g.numpy(), v * m / 0.7, rtol=1e-12)
    np.testing.assert_allclose(out.detach().numpy(), x.detach().numpy() * m / 0.7, rtol=1e-12)
    u = np.random.default_rng(5).standard_normal((6, 7))
    with forward_ad.dual_level():
        d = forward_ad.make_dual(td.tensor(x.detach().numpy(), dtype=F64), td.tensor(u, dtype=F64))
        o2, m2 = td.op("dropout", d, p=0.3, train=True)
        t = forward_ad.unpack_dual(o2).tangent.numpy()
    np.testing.assert_allclose(t, u * m2.numpy().astype(np.float64) / 0.7, rtol=1e-12)


def test_make_dual_and_dual_primal_derivatives(client):
    rng = np.random.default_rng(11)
    p, t, v = (rng.standard_normal((2, 3)) for _ in range(3))
    x = td.tensor(p, dtype=F64, requires_grad=True)
    with forward_ad.dual_level():
        d = forward_ad.make_dual(x, td.tensor(t, dtype=F64))
        # make_dual is differentiable in its primal: the reverse gradient reaches x.
        y = d * d
        np.testing.assert_allclose(forward_ad.unpack_dual(y).tangent.detach().numpy(),
                                   2 * p * t, rtol=1e-12)
        (g,) = td.autograd.grad([y], [x], grad_outputs=[td.tensor(v, dtype=F64)])
        np.testing.assert_allclose(g.numpy(), 2 * p * v, rtol=1e-12)
        # dual_primal: same values, no tangent, and reverse gradients pass through.
        prim = forward_ad.unpack_dual(d).primal
        assert forward_ad.unpack_dual(prim).tangent is None
        (g2,) = td.autograd.grad([prim * 3.0], [x], grad_outputs=[td.tensor(v, dtype=F64)])
        np.testing.assert_allclose(g2.numpy(), 3 * v, rtol=1e-12)
