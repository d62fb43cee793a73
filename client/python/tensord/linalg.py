"""tensord.linalg: torch.linalg's functions computed in the daemon (LAPACKE), batched over
leading dimensions: inv, solve, det, slogdet, cholesky, qr, eigh, eigvalsh, svd, svdvals."""
from ._namespace import family_getattr

__getattr__, __dir__ = family_getattr(__name__, [
    "inv", "solve", "det", "slogdet", "cholesky", "qr", "eigh", "eigvalsh", "svd", "svdvals"],
    {"matmul": "matmul"})
