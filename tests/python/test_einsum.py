"""Extra tests of the contraction ops (server/engine/ops_contract.c) beyond the generated
suites (test_ops.py with op_specs_contract.py, test_gradcheck.py): error messages, dtype
promotion, larger random einsum equations against np.einsum, hand-computed gradients of
diagonal equations, and einsum's speed against matmul on the same batched product."""
import time

import numpy as np
import pytest

import tensord as td

F32, F64, C64, C128 = td.float32, td.float64, td.complex64, td.complex128
I32, I64 = td.int32, td.int64

pytestmark = pytest.mark.timeout(300)


def T(client, a, d=F64):
    return td.tensor(np.asarray(a), dtype=d, client=client)


def einsum(client, eq, *arrs, d=F64):
    ins = [a if isinstance(a, td.Tensor) else T(client, a, d) for a in arrs]
    return td.op("einsum", ins, client=client, equation=eq)


def fails(fn, *words):
    with pytest.raises(td.TensordError) as ei:
        r = fn()
        r.numpy()
    msg = str(ei.value)
    for w in words:
        assert w in msg, msg
    return msg


# ---- einsum errors -------------------------------------------------------------------------
EINSUM_ERRORS = [
    ("ij,jk->ik", [(2, 3)], "names 2 operands but 1 input"),
    ("ij->ij", [(2, 3), (3,)], "names 1 operand but 2 inputs"),
    ("ijk->i", [(2, 3)], "operand 0 has 2 dims but its subscripts 'ijk' give 3"),
    ("i...jk->i", [(2, 3)], "at least 3"),
    ("ij,jk->ik", [(2, 3), (4, 2)], "size 4 for subscript 'j' but an earlier operand has 3"),
    ("i1->i", [(2, 2)], "invalid character '1'"),
    ("i.j->i", [(2, 2)], "ellipsis"),
    ("ij->k", [(2, 2)], "output subscript 'k' does not appear"),
    ("ij->ii", [(2, 2)], "output subscript 'i' appears more than once"),
    ("ii->i", [(2, 3)], "subscript 'i' is repeated in operand 0 with sizes 2 and 3"),
    ("ij->i->j", [(2, 2)], "more than one '->'"),
    ("i-j", [(2, 2)], "misplaced '-'"),
    ("......->", [(2, 2)], "more than one ellipsis"),
    ("...,...->...", [(2, 3), (4,)], "ellipsis dims of operand 1"),
    ("ij->i,j", [(2, 2)], "may not contain ','"),
]


@pytest.mark.parametrize("eq,shapes,word", EINSUM_ERRORS)
def test_einsum_errors(client, eq, shapes, word):
    arrs = [np.ones(s) for s in shapes]
    fails(lambda: einsum(client, eq, *arrs), "einsum:", word)


def test_einsum_bool_refused(client):
    t = td.tensor(np.ones((2, 2), bool), client=client)
    fails(lambda: td.op("einsum", [t], client=client, equation="ij->i"), "einsum", "bool")


# ---- einsum values ---------------------------------------------------------------------
def test_einsum_promotion(client):
    rng = np.random.default_rng(5)
    a = rng.integers(-3, 4, (2, 3))
    b = rng.uniform(-1, 1, (3, 2)).astype(np.float32)
    r = td.op("einsum", [T(client, a, I64), T(client, b, F32)], client=client,
              equation="ij,jk->ik")
    assert r.dtype == F32
    np.testing.assert_allclose(r.numpy(), a @ b.astype(np.float64), rtol=1e-5, atol=1e-5)
    r = td.op("einsum", [T(client, a, I32), T(client, a.T, I64)], client=client,
              equation="ij,jk")
    assert r.dtype == I64
    np.testing.assert_array_equal(r.numpy(), a @ a.T)
    z = (rng.uniform(-1, 1, (3,)) + 1j * rng.uniform(-1, 1, (3,))).astype(np.complex64)
    r = td.op("einsum", [T(client, b.astype(np.float64), F64), T(client, z, C64)],
              client=client, equation="jk,j->k")
    assert r.dtype == C128
    np.testing.assert_allclose(r.numpy(), np.einsum("jk,j->k", b.astype(np.float64), z),
                               rtol=1e-6)


def test_einsum_int_wraps_like_numpy(client):
    a = np.full((4, 4), 100, np.int8)
    r = td.op("einsum", [T(client, a, td.int8), T(client, a, td.int8)], client=client,
              equation="ij,jk->ik")
    assert r.dtype == td.int8
    np.testing.assert_array_equal(r.numpy(), np.einsum("ij,jk->ik", a.astype(np.int64),
                                                       a.astype(np.int64)).astype(np.int8))


RANDOM_EQS = [
    ("abc,cd,de->abe", [(4, 5, 6), (6, 3), (3, 7)]),
    ("ij,jk,kl,lm,mn->in", [(5, 2), (2, 8), (8, 3), (3, 9), (9, 4)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 5, 4), (2, 3, 6, 4)]),
    ("bhqk,bhkd->bhqd", [(2, 3, 5, 6), (2, 3, 6, 4)]),
    ("...ii->...i", [(3, 2, 4, 4)]),
    ("ijij->ij", [(3, 4, 3, 4)]),
    ("ab,ab,ab->a", [(6, 7), (6, 7), (1, 7)]),
    ("i,j,k->ijk", [(3,), (4,), (2,)]),
    ("pqrs,tuqvr->pstuv", [(2, 3, 4, 2), (2, 2, 3, 3, 4)]),
    ("ba,ca,da->bcd", [(3, 5), (2, 5), (4, 5)]),
    ("ijk,ikj->", [(3, 4, 4), (3, 4, 4)]),
]


@pytest.mark.parametrize("d", [F64, C128, I64, F32])
def test_einsum_random_equations(client, d):
    rng = np.random.default_rng(11)
    for eq, shapes in RANDOM_EQS:
        if d.kind == "c":
            arrs = [rng.uniform(-1, 1, s) + 1j * rng.uniform(-1, 1, s) for s in shapes]
        elif d.kind == "i":
            arrs = [rng.integers(-3, 4, s) for s in shapes]
        else:
            arrs = [rng.uniform(-1, 1, s) for s in shapes]
        arrs = [np.asarray(a).astype(d.numpy_dtype) for a in arrs]
        got = einsum(client, eq, *arrs, d=d).numpy()
        exp = np.einsum(eq, *[a.astype(np.complex128 if d.kind == "c" else
                                       np.int64 if d.kind == "i" else np.float64)
                              for a in arrs])
        if d.kind == "i":
            np.testing.assert_array_equal(got, exp, err_msg=eq)
        else:
            tol = 1e-4 if d is F32 else 1e-10
            np.testing.assert_allclose(got, exp, rtol=tol, atol=tol, err_msg=eq)


def test_einsum_strided_views(client):
    rng = np.random.default_rng(3)
    a = rng.uniform(-1, 1, (4, 6, 5))
    ta = T(client, a)
    # A reversed-free but stepped view (every other row) and a permuted view.
    v = ta[:, ::2, :]
    p = ta.transpose(0, 2)
    np.testing.assert_allclose(einsum(client, "bij,bkj->bik", v, v).numpy(),
                               np.einsum("bij,bkj->bik", a[:, ::2], a[:, ::2]), rtol=1e-12)
    np.testing.assert_allclose(einsum(client, "jib,bik->jk", p, ta[:, :, :4].transpose(1, 2)
                                      .transpose(1, 2)).numpy(),
                               np.einsum("jib,bik->jk", a.transpose(2, 1, 0), a[:, :, :4]),
                               rtol=1e-12)


# ---- gradients of diagonals, by hand ---------------------------------------------------------
def test_einsum_diagonal_gradients(client):
    x0 = np.arange(9.0).reshape(3, 3)
    x = T(client, x0).requires_grad_()
    y = einsum(client, "ii->i", x)
    v = np.array([1.0, -2.0, 5.0])
    (g,) = td.autograd.grad([y], [x], grad_outputs=[T(client, v)])
    np.testing.assert_array_equal(g.numpy(), np.diag(v))
    y = einsum(client, "ii", x)
    (g,) = td.autograd.grad([y], [x], grad_outputs=[T(client, 3.0)])
    np.testing.assert_array_equal(g.numpy(), 3.0 * np.eye(3))
    # 'iji->j': d y_j / d x[a, j, c] = [a == c].
    x1 = T(client, np.ones((2, 3, 2))).requires_grad_()
    y = einsum(client, "iji->j", x1)
    (g,) = td.autograd.grad([y], [x1], grad_outputs=[T(client, [1.0, 2.0, 3.0])])
    exp = np.zeros((2, 3, 2))
    for i in range(2):
        exp[i, :, i] = [1.0, 2.0, 3.0]
    np.testing.assert_array_equal(g.numpy(), exp)


def test_trace_and_diagonal_gradients(client):
    x = T(client, np.ones((2, 3, 4))).requires_grad_()
    y = td.op("trace", x, client=client, offset=1)
    (g,) = td.autograd.grad([y], [x], grad_outputs=[T(client, [2.0, -1.0])])
    exp = np.zeros((2, 3, 4))
    for k in range(3):
        exp[0, k, k + 1] = 2.0
        exp[1, k, k + 1] = -1.0
    np.testing.assert_array_equal(g.numpy(), exp)
    y = td.op("diagonal", x, client=client, offset=-1, dim1=2, dim2=1)
    assert y.shape == (2, 3)
    gv = np.arange(6.0).reshape(2, 3)
    (g,) = td.autograd.grad([y], [x], grad_outputs=[T(client, gv)])
    exp = np.zeros((2, 3, 4))
    for b in range(2):
        for k in range(3):
            exp[b, k, k + 1] = gv[b, k]
    np.testing.assert_array_equal(g.numpy(), exp)


# ---- other ops' errors -----------------------------------------------------------------------
def test_contract_errors(client):
    m = T(client, np.ones((2, 3)))
    v3 = T(client, np.ones(3))
    fails(lambda: td.op("outer", m, v3, client=client), "outer:", "1-d")
    m32 = T(client, np.ones((3, 2)))
    fails(lambda: td.op("cross", m32, m32, client=client), "cross:", "size 2 along dim 1")
    fails(lambda: td.op("cross", v3, v3, client=client, dim=2), "cross:", "dim 2 out of range")
    fails(lambda: td.op("vecdot", m, T(client, np.ones((4, 3))), client=client), "vecdot:")
    fails(lambda: td.op("multi_dot", [m], client=client), "multi_dot")
    fails(lambda: td.op("multi_dot", [m, m], client=client), "multi_dot:",
          "input 1 has 2 rows but input 0 has 3 columns")
    fails(lambda: td.op("multi_dot", [m, T(client, np.ones((3, 2, 2))), m], client=client),
          "multi_dot:", "input 1 is 3-d")
    fails(lambda: td.op("diagonal", v3, client=client), "diagonal:", "at least 2 dims")
    fails(lambda: td.op("diagonal", m, client=client, dim1=1, dim2=-1), "diagonal:", "same dim")
    fails(lambda: td.op("trace", v3, client=client), "trace:", "at least 2 dims")
    fails(lambda: td.op("matrix_power", m, client=client, n=2), "matrix_power:", "square")
    fails(lambda: td.op("matrix_power", T(client, np.eye(2), I64), client=client, n=-1),
          "matrix_power:", "negative n")
    fails(lambda: td.op("tensorsolve", T(client, np.ones((2, 3, 4))), m, client=client),
          "tensorsolve:", "prod")
    fails(lambda: td.op("tensorsolve", T(client, np.eye(6).reshape(2, 3, 6)),
                        m, client=client, dims=[0, 0]), "tensorsolve:", "listed twice")
    fails(lambda: td.op("tensorinv", T(client, np.ones((2, 3))), client=client, ind=1),
          "tensorinv:", "2 != 3")
    fails(lambda: td.op("tensorinv", T(client, np.ones((2, 2))), client=client, ind=0),
          "tensorinv:", "ind must be")


def test_singular_inputs_name_the_batch_element(client):
    a = np.stack([np.eye(3), np.diag([1.0, 0.0, 1.0]), np.eye(3)])
    fails(lambda: td.op("matrix_power", T(client, a), client=client, n=-2),
          "matrix_power:", "batch element 1", "singular")
    fails(lambda: td.op("tensorinv", T(client, np.zeros((2, 2, 2, 2))), client=client),
          "tensorinv:", "singular")
    fails(lambda: td.op("tensorsolve", T(client, np.zeros((2, 2))), T(client, np.ones(2)),
                        client=client), "tensorsolve:", "singular")


def test_multi_dot_order_does_not_change_values(client):
    # Shapes where the optimal order is not left to right (10x100 @ 100x5 @ 5x50).
    rng = np.random.default_rng(2)
    ms = [rng.uniform(-1, 1, s) for s in ((10, 100), (100, 5), (5, 50))]
    got = td.op("multi_dot", [T(client, m) for m in ms], client=client).numpy()
    np.testing.assert_allclose(got, ms[0] @ ms[1] @ ms[2], rtol=1e-12, atol=1e-12)


# ---- speed ---------------------------------------------------------------------------------
def _best(fn, reps=7):
    fn()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def test_einsum_batched_gemm_speed_close_to_matmul(client):
    rng = np.random.default_rng(0)
    a = T(client, rng.uniform(-1, 1, (64, 128, 128)).astype(np.float32), F32)
    b = T(client, rng.uniform(-1, 1, (64, 128, 128)).astype(np.float32), F32)
    s = T(client, np.zeros((), np.float32), F32)

    def run_mm():
        (td.op("matmul", a, b, client=client).sum() + s).numpy()

    def run_es():
        (td.op("einsum", [a, b], client=client, equation="bij,bjk->bik").sum() + s).numpy()

    np.testing.assert_allclose(
        td.op("einsum", [a, b], client=client, equation="bij,bjk->bik").numpy(),
        td.op("matmul", a, b, client=client).numpy(), rtol=1e-5, atol=1e-4)
    t_mm, t_es = _best(run_mm), _best(run_es)
    print("einsum bij,bjk->bik 64x128x128 float32: %.2f ms, matmul %.2f ms, ratio %.2f"
          % (t_es * 1e3, t_mm * 1e3, t_es / t_mm))
    # Same BLAS calls; the bound leaves room for a machine shared with other work.
    assert t_es <= 1.5 * t_mm + 2e-3


def test_einsum_long_chain_left_to_right(client):
    # 40 operands: beyond the greedy search's limit the pairs go left to right.
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    n = 40
    eq = ",".join(letters[i] + letters[i + 1] for i in range(n)) + "->" + letters[0] + letters[n]
    rng = np.random.default_rng(4)
    arrs = [rng.uniform(-1, 1, (2, 2)) for _ in range(n)]
    got = einsum(client, eq, *arrs).numpy()
    np.testing.assert_allclose(got, np.linalg.multi_dot(arrs), rtol=1e-10, atol=1e-14)


def test_einsum_explicit_output_without_ellipsis_sums_it(client):
    # NumPy refuses '...i->i'; the daemon sums the ellipsis dims instead.
    a = np.arange(24.0).reshape(2, 3, 4)
    got = einsum(client, "...i->i", a).numpy()
    np.testing.assert_array_equal(got, np.einsum("...i->...i", a).sum(axis=(0, 1)))
