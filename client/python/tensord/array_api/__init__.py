"""tensord.array_api: a Python Array API standard namespace (revision 2024.12) over tensord's
Tensor and the daemon's ops, so that code written for NumPy runs against the daemon by
changing the import:

    import tensord as td
    import tensord.array_api as xp
    td.connect()
    a = xp.asarray([[1.0, 2.0], [3.0, 4.0]])
    x = xp.linalg.solve(a, xp.ones(2))
    print(xp.fft.rfft(x))

Arrays are tensord.Tensor objects (x.__array_namespace__() returns this module). Defaults
follow NumPy rather than tensord's torch-like surface: float64 for Python floats, complex128,
int64. What deviates from the standard, and why, is in docs/ARRAY_API.md.
"""
import math as _math

from . import _core
from ._core import (bool, int8, int16, int32, int64, uint8, float32,  # noqa: A004
                    float64, complex64, complex128)
from ._datatypes import (astype, can_cast, finfo, iinfo, isdtype, result_type,
                         __array_namespace_info__)
from ._creation import (arange, asarray, empty, empty_like, eye, from_dlpack, full,
                        full_like, linspace, meshgrid, ones, ones_like, tril, triu, zeros,
                        zeros_like)
from ._elementwise import *  # noqa: F401,F403
from ._elementwise import __all__ as _ew_all
from ._ops import *  # noqa: F401,F403
from ._ops import __all__ as _ops_all
from . import linalg, fft

__array_api_version__ = "2024.12"

e = _math.e
inf = _math.inf
nan = _math.nan
pi = _math.pi
newaxis = None

__all__ = (["__array_api_version__", "__array_namespace_info__", "e", "inf", "nan", "newaxis",
            "pi", "bool", "int8", "int16", "int32", "int64", "uint8", "float32", "float64",
            "complex64", "complex128", "astype", "can_cast", "finfo", "iinfo", "isdtype",
            "result_type", "arange", "asarray", "empty", "empty_like", "eye", "from_dlpack",
            "full", "full_like", "linspace", "meshgrid", "ones", "ones_like", "tril", "triu",
            "zeros", "zeros_like", "linalg", "fft"] + list(_ew_all) + list(_ops_all))

del _core
