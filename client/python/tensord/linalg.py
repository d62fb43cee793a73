"""tensord.linalg: torch.linalg's functions computed in the daemon (LAPACKE), batched over
leading dimensions. A name is available when the connected daemon publishes its op.

norm, vector_norm, matrix_norm and cond are written out here so that they take torch's
argument forms: ord/p as a number (2, -1, float('inf')) or a string ('fro', 'nuc'), dim as an
int or a sequence. The ops themselves carry a matrix ord as a string (numbers in decimal).
"""
import math

from ._namespace import family_getattr

__getattr__, __dir__ = family_getattr(__name__, [
    "inv", "inv_ex", "solve", "solve_ex", "solve_triangular", "det", "slogdet", "cholesky",
    "cholesky_ex", "qr", "eigh", "eigvalsh", "eig", "eigvals", "svd", "svdvals", "lstsq", "lu",
    "lu_factor", "lu_factor_ex", "lu_solve", "pinv", "matrix_rank", "matrix_norm",
    "vector_norm", "norm", "cond", "matrix_power", "matrix_exp", "cross", "vecdot",
    "multi_dot", "householder_product", "tensorsolve", "tensorinv", "diagonal", "matmul"],
    {})


def _ord_str(ord):
    """A number or string ord as the ops' string form: 2 -> '2', inf -> 'inf'."""
    if ord is None or isinstance(ord, str):
        return ord
    if isinstance(ord, bool):
        raise TypeError("ord must be a number or a string, got bool")
    v = float(ord)
    if math.isnan(v):
        raise ValueError("ord must not be NaN")
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return str(int(v)) if v.is_integer() else repr(v)


def _dims(dim):
    if dim is None:
        return None
    if isinstance(dim, int):
        return [dim]
    return [int(d) for d in dim]


def _run(name, x, client, **attrs):
    from .ops import op
    return op(name, x, client=client, **{k: v for k, v in attrs.items() if v is not None})


def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None, client=None):
    """torch.linalg.vector_norm: ord any real number or +-inf; dim None reduces every dim."""
    if isinstance(ord, str):
        ord = float(ord)
    return _run("vector_norm", x, client, ord=float(ord), dim=_dims(dim), keepdim=keepdim,
                dtype=dtype)


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None, client=None):
    """torch.linalg.matrix_norm: ord 'fro', 'nuc', inf, -inf, 1, -1, 2 or -2."""
    return _run("matrix_norm", A, client, ord=_ord_str(ord), dim=_dims(dim), keepdim=keepdim,
                dtype=dtype)


def norm(A, ord=None, dim=None, keepdim=False, *, dtype=None, client=None):
    """torch.linalg.norm: a vector or matrix norm chosen by ord and dim like PyTorch."""
    return _run("norm", A, client, ord=_ord_str(ord), dim=_dims(dim), keepdim=keepdim,
                dtype=dtype)


def cond(A, p=None, *, client=None):
    """torch.linalg.cond: p None/2/-2 from singular values, else norm(A, p) norm(A^-1, p)."""
    return _run("cond", A, client, p=_ord_str(p))


def multi_dot(tensors, *, client=None):
    """torch.linalg.multi_dot(tensors): the product of a list of matrices (the first may be
    1-d, a row; the last 1-d, a column) in the cheapest order."""
    from .ops import op
    return op("multi_dot", *tensors, client=client)
