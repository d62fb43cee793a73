"""tensord.array_api.fft: the standard's FFT extension, computed in the daemon (FFTW)."""
import operator

from . import _core
from ._core import run

__all__ = ["fft", "ifft", "fftn", "ifftn", "rfft", "irfft", "rfftn", "irfftn", "hfft", "ihfft",
           "fftfreq", "rfftfreq", "fftshift", "ifftshift"]

_NORMS = ("backward", "ortho", "forward")


def _check(x, fname, norm, kinds):
    _core.check_array(x, "fft." + fname)
    if norm not in _NORMS:
        raise ValueError("fft.%s: norm must be one of %s, got %r" % (fname, _NORMS, norm))
    if x.dtype.kind == "c" and kinds == "f":
        raise TypeError("fft.%s: x must be real-valued, got %s" % (fname, x.dtype.name))
    if x.dtype.kind == "b":
        raise TypeError("fft.%s: x must be numeric" % fname)


def _one(opname, kinds):
    def f(x, /, *, n=None, axis=-1, norm="backward"):
        _check(x, opname, norm, kinds)
        a = _core.norm_one_axis(axis, x.ndim, "fft." + opname)
        if n is not None:
            n = operator.index(n)
            if n < 1:
                raise ValueError("fft.%s: n must be a positive integer, got %d" % (opname, n))
        return run(opname, x, n=n, dim=a, norm=norm)
    f.__name__ = f.__qualname__ = opname
    f.__doc__ = "torch.fft.%s / numpy.fft.%s along one axis." % (opname, opname)
    return f


def _many(opname, kinds):
    def f(x, /, *, s=None, axes=None, norm="backward"):
        _check(x, opname, norm, kinds)
        if axes is None:
            axes = list(range(x.ndim)) if s is None else \
                list(range(x.ndim - len(s), x.ndim))
        axes = [_core.norm_one_axis(a, x.ndim, "fft." + opname) for a in axes]
        if s is not None:
            s = [operator.index(v) for v in s]
            if len(s) != len(axes):
                raise ValueError("fft.%s: s and axes must have the same length" % opname)
            s = [x.shape[a] if v == -1 else v for v, a in zip(s, axes)]
        if not axes:
            return run("clone", x)
        return run(opname, x, s=s, dim=axes, norm=norm)
    f.__name__ = f.__qualname__ = opname
    f.__doc__ = "torch.fft.%s / numpy.fft.%s over several axes." % (opname, opname)
    return f


fft = _one("fft", "c")
ifft = _one("ifft", "c")
rfft = _one("rfft", "f")
irfft = _one("irfft", "c")
hfft = _one("hfft", "c")
ihfft = _one("ihfft", "f")
fftn = _many("fftn", "c")
ifftn = _many("ifftn", "c")
rfftn = _many("rfftn", "f")
irfftn = _many("irfftn", "c")


def _freq(opname, n, d, dtype, device):
    _core.check_device(device, "fft." + opname)
    n = operator.index(n)
    if n < 1:
        raise ValueError("fft.%s: n must be a positive integer, got %d" % (opname, n))
    dt = _core.to_dtype(dtype) or _core.DEFAULT_FLOAT
    if dt.kind != "f":
        raise TypeError("fft.%s: dtype must be real floating, got %s" % (opname, dt.name))
    return run(opname, n=n, d=float(d), dtype=dt)


def fftfreq(n, /, *, d=1.0, dtype=None, device=None):
    return _freq("fftfreq", n, d, dtype, device)


def rfftfreq(n, /, *, d=1.0, dtype=None, device=None):
    return _freq("rfftfreq", n, d, dtype, device)


def _shift(opname, x, axes):
    _core.check_array(x, "fft." + opname)
    if axes is None:
        dims = None
    else:
        if not isinstance(axes, (tuple, list)):
            axes = [axes]
        dims = [_core.norm_one_axis(a, x.ndim, "fft." + opname) for a in axes]
        if not dims:
            return run("clone", x)
    return run(opname, x, dim=dims)


def fftshift(x, /, *, axes=None):
    return _shift("fftshift", x, axes)


def ifftshift(x, /, *, axes=None):
    return _shift("ifftshift", x, axes)
