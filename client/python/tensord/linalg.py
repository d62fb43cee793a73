"""tensord.linalg: torch.linalg's functions computed in the daemon (LAPACKE), batched over
leading dimensions. A name is available when the connected daemon publishes its op."""
from ._namespace import family_getattr

__getattr__, __dir__ = family_getattr(__name__, [
    "inv", "inv_ex", "solve", "solve_ex", "solve_triangular", "det", "slogdet", "cholesky",
    "cholesky_ex", "qr", "eigh", "eigvalsh", "eig", "eigvals", "svd", "svdvals", "lstsq", "lu",
    "lu_factor", "lu_factor_ex", "lu_solve", "pinv", "matrix_rank", "matrix_norm",
    "vector_norm", "norm", "cond", "matrix_power", "matrix_exp", "cross", "vecdot",
    "multi_dot", "householder_product", "tensorsolve", "tensorinv", "diagonal", "matmul"],
    {})
