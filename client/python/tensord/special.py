"""tensord.special: torch.special's functions computed in the daemon (accuracy in
docs/ACCURACY.md), with PyTorch's aliases (gammaln, psi, expit, ...)."""
from ._namespace import family_getattr

__getattr__, __dir__ = family_getattr(__name__, [
    "gamma", "lgamma", "digamma", "polygamma", "multigammaln", "erf", "erfc", "erfinv",
    "erfcx", "expit", "logit", "xlogy", "xlog1py", "zeta", "i0", "i0e", "i1", "i1e", "ndtr",
    "ndtri", "log_ndtr", "sinc", "entr", "bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1",
    "gammainc", "gammaincc", "softmax", "log_softmax", "logsumexp", "expm1", "log1p", "round"],
    {"gammaln": "lgamma", "psi": "digamma"})
