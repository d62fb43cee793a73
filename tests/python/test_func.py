"""td.func transforms (grad, grad_and_value, vjp, jvp, jacrev, jacfwd, hessian) of small
functions built from add, mul, exp and sum, against hand-derived derivatives, and jacobians
of vector functions against float64 central differences computed here with NumPy."""
import numpy as np
import pytest

import tensord as td
from tensord import func

pytestmark = pytest.mark.timeout(120)

X0 = np.array([0.3, -0.8, 1.1])
EPS = 1e-6


def t64(a):
    return td.tensor(np.asarray(a, np.float64))


def close(t, ref, tol=1e-10):
    a = t.detach().numpy() if isinstance(t, td.Tensor) else np.asarray(t)
    np.testing.assert_allclose(a, np.asarray(ref, np.float64), rtol=tol, atol=tol)


def f_scalar(x):
    return (x.exp() * x).sum()                  # grad exp(x)(1+x), hessian diag exp(x)(2+x)


def f_scalar_np(x):
    return np.sum(np.exp(x) * x)


def _vec(x):
    s = x.sum()
    y = x * x * s + x.exp()                     # y_i = x_i^2 S + exp(x_i)
    return y * (x * 0.5 + 1.0)


def f_vec_np(x):
    s = x.sum()
    return (x * x * s + np.exp(x)) * (x * 0.5 + 1.0)


def num_jac(f, x):
    """Central differences in float64: J[i, j] = d f_i / d x_j."""
    x = np.asarray(x, np.float64)
    cols = []
    for j in range(x.size):
        e = np.zeros_like(x)
        e.reshape(-1)[j] = EPS
        cols.append(((f(x + e) - f(x - e)) / (2 * EPS)).reshape(-1))
    return np.stack(cols, axis=-1).reshape(np.shape(f(x)) + x.shape)


# ---- grad ------------------------------------------------------------------------------------
def test_grad_matches_hand_derivative():
    g = func.grad(f_scalar)(t64(X0))
    assert not g.requires_grad            # nothing outside differentiates
    close(g, np.exp(X0) * (1 + X0))


def test_grad_and_value_and_aux():
    g, v = func.grad_and_value(f_scalar)(t64(X0))
    close(g, np.exp(X0) * (1 + X0))
    close(v, f_scalar_np(X0))
    g, (v, aux) = func.grad_and_value(lambda x: (f_scalar(x), x * 2.0), has_aux=True)(t64(X0))
    close(aux, 2 * X0)
    assert not aux.requires_grad
    g, aux = func.grad(lambda x: (f_scalar(x), "tag"), has_aux=True)(t64(X0))
    assert aux == "tag"
    close(g, np.exp(X0) * (1 + X0))


def test_grad_argnums_and_unused_argument():
    w0 = np.array([2.0, -1.0, 0.5])

    def f(x, w, z):
        return (x * w * x).sum()          # z is not used: zero gradient
    gx, gw, gz = func.grad(f, argnums=(0, 1, 2))(t64(X0), t64(w0), t64([1.0]))
    close(gx, 2 * w0 * X0)
    close(gw, X0 * X0)
    close(gz, [0.0])
    gw = func.grad(f, argnums=1)(t64(X0), t64(w0), None)
    close(gw, X0 * X0)


def test_grad_of_pytree_argument():
    def f(p):
        return (p["a"] * p["b"][0]).sum() + p["b"][1].exp().sum()
    a, b0, b1 = t64([1.0, 2.0]), t64([3.0, -1.0]), t64([0.5])
    g = func.grad(f)({"a": a, "b": (b0, b1)})
    close(g["a"], [3.0, -1.0])
    close(g["b"][0], [1.0, 2.0])
    close(g["b"][1], np.exp([0.5]))


def test_grad_requires_a_scalar_output():
    func.grad(lambda x: x * x)(t64(X0))
    with pytest.raises(td.InvalidArgument, match="mismatch in shape"):
        td.default_client().sync()


def test_grad_of_grad():
    # f(x) = x^3 exp(x): f' = (3x^2 + x^3) e^x, f'' = (6x + 6x^2 + x^3) e^x
    def f(x):
        return x * x * x * x.exp()
    x = t64(0.7)
    close(func.grad(f)(x), (3 * 0.49 + 0.343) * np.exp(0.7))
    close(func.grad(func.grad(f))(x), (6 * 0.7 + 6 * 0.49 + 0.343) * np.exp(0.7))
    close(func.grad(func.grad(func.grad(lambda x: x * x * x * x)))(t64(1.5)), 24 * 1.5)


def test_grad_inside_no_grad_and_of_requires_grad_input():
    with td.no_grad():
        g = func.grad(f_scalar)(t64(X0))
    close(g, np.exp(X0) * (1 + X0))
    # an input that requires grad: the result stays differentiable (create_graph)
    x = td.tensor(X0, requires_grad=True)
    g = func.grad(f_scalar)(x)
    assert g.requires_grad
    g.sum().backward()
    close(x.grad, np.exp(X0) * (2 + X0))


# ---- vjp / jvp -------------------------------------------------------------------------------
def test_vjp_against_numerical_jacobian():
    J = num_jac(f_vec_np, X0)
    out, vjp_fn = func.vjp(_vec, t64(X0))
    close(out, f_vec_np(X0))
    for ct in ([1.0, 0.0, 0.0], [0.5, -2.0, 1.0]):
        (g,) = vjp_fn(t64(ct))
        close(g, np.asarray(ct) @ J, 1e-7)


def test_vjp_several_primals_and_outputs():
    def f(x, y):
        return x * y, (x * x).sum()
    x0, y0 = np.array([1.0, 2.0]), np.array([-1.0, 3.0])
    (o1, o2), vjp_fn = func.vjp(f, t64(x0), t64(y0))
    close(o1, x0 * y0)
    gx, gy = vjp_fn((t64([1.0, 1.0]), t64(2.0)))
    close(gx, y0 + 2 * 2 * x0)
    close(gy, x0)


def test_jvp_against_hand_derivative():
    v = np.array([1.0, -1.0, 2.0])
    out, tan = func.jvp(f_scalar, (t64(X0),), (t64(v),))
    close(out, f_scalar_np(X0))
    close(tan, np.sum(np.exp(X0) * (1 + X0) * v))
    out, tan = func.jvp(_vec, (t64(X0),), (t64(v),))
    close(tan, num_jac(f_vec_np, X0) @ v, 1e-7)
    # an output that does not depend on the primal: zero tangent
    c = t64([4.0])
    out, tan = func.jvp(lambda x: c * 2.0, (t64(X0),), (t64(v),))
    close(out, [8.0])
    close(tan, [0.0])


# ---- jacobians -------------------------------------------------------------------------------
@pytest.mark.parametrize("jac", [func.jacrev, func.jacfwd], ids=["jacrev", "jacfwd"])
def test_jacobian_of_vector_function(jac):
    J = jac(_vec)(t64(X0))
    assert J.shape == (3, 3)
    close(J, num_jac(f_vec_np, X0), 1e-7)


@pytest.mark.parametrize("jac", [func.jacrev, func.jacfwd], ids=["jacrev", "jacfwd"])
def test_jacobian_shapes_and_argnums(jac):
    a0 = np.array([[1.0, 2.0], [3.0, -1.0]])
    b0 = np.array([0.5, -0.25])

    def f(a, b):
        return (a * b).exp() * b               # (2, 2) output
    Ja, Jb = jac(f, argnums=(0, 1))(t64(a0), t64(b0))
    assert Ja.shape == (2, 2, 2, 2) and Jb.shape == (2, 2, 2)
    close(Ja, num_jac(lambda a: np.exp(a * b0) * b0, a0), 1e-7)
    close(Jb, num_jac(lambda b: np.exp(a0 * b) * b, b0), 1e-7)
    Js = jac(f_scalar)(t64(X0))               # scalar output: the gradient
    assert Js.shape == (3,)
    close(Js, np.exp(X0) * (1 + X0))


def test_hessian_diag():
    H = func.hessian(f_scalar)(t64(X0))
    assert H.shape == (3, 3)
    close(H, np.diag(np.exp(X0) * (2 + X0)))


def test_hessian_of_coupled_function():
    # f(x) = sum(x)^2 * sum(exp(x)) : compare with central differences of the gradient
    def f(x):
        s = x.sum()
        return s * s * x.exp().sum()

    def grad_np(x):
        s, e = x.sum(), np.exp(x)
        return 2 * s * e.sum() + s * s * e
    H = func.hessian(f)(t64(X0))
    close(H, num_jac(grad_np, X0), 1e-6)
    Hrr = func.jacrev(func.jacrev(f))(t64(X0))
    close(Hrr, num_jac(grad_np, X0), 1e-6)


def test_jacrev_of_jacrev_of_vector_function():
    # d^2 y_i / dx_j dx_k of y_i = x_i^2 S + exp(x_i) (S = sum x): 2 S d_ij d_ik +
    # 2 x_i (d_ij + d_ik) + exp(x_i) d_ij d_ik
    def f(x):
        return x * x * x.sum() + x.exp()
    T = func.jacrev(func.jacrev(f))(t64(X0))
    n = len(X0)
    ref = np.zeros((n, n, n))
    S = X0.sum()
    for i in range(n):
        for j in range(n):
            for k in range(n):
                ref[i, j, k] = (2 * S + np.exp(X0[i])) * (i == j == k) + \
                    2 * X0[i] * ((i == j) + (i == k))
    close(T, ref)
    T2 = func.jacfwd(func.jacrev(f))(t64(X0))
    close(T2, ref)


def test_forward_mode_does_not_nest():
    with pytest.raises(RuntimeError, match="does not nest"):
        func.jacfwd(func.jacfwd(f_scalar))(t64(X0))
    # the level was left: forward mode still works
    close(func.jacfwd(f_scalar)(t64(X0)), np.exp(X0) * (1 + X0))
