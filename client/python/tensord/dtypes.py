"""The twelve tensord dtypes, their wire codes and their NumPy counterparts.

A dtype is a small immutable object (``td.float32``) with ``name``, ``itemsize``, ``code``
(the wire enum ``tensord.v1.DType``) and ``kind`` ('b' bool, 'u' unsigned, 'i' signed,
'f' floating, 'c' complex). ``to_dtype`` accepts a DType, a name ("float32", "f4", "float"),
a NumPy dtype or a NumPy scalar type.
"""
import numpy as np

__all__ = ["DType", "to_dtype", "ALL_DTYPES", "from_code"]


class DType:
    """One tensord dtype. Compare with ``==`` (also against names and NumPy dtypes)."""

    __slots__ = ("name", "itemsize", "code", "kind", "_np")

    def __init__(self, name, itemsize, code, kind, np_dtype):
        self.name = name
        self.itemsize = itemsize
        self.code = code
        self.kind = kind
        self._np = np_dtype

    @property
    def numpy_dtype(self):
        """The NumPy dtype of ``Tensor.numpy()`` results (float32 for bfloat16)."""
        return np.dtype(np.float32) if self._np is None else np.dtype(self._np)

    @property
    def is_floating_point(self):
        return self.kind == "f"

    @property
    def is_complex(self):
        return self.kind == "c"

    @property
    def is_signed(self):
        return self.kind in "ifc"

    def __repr__(self):
        return "tensord." + self.name

    def __str__(self):
        return self.name

    def __reduce__(self):
        return (from_code, (self.code,))

    def __eq__(self, other):
        if isinstance(other, DType):
            return self is other
        try:
            return to_dtype(other) is self
        except (TypeError, ValueError):
            return NotImplemented

    def __ne__(self, other):
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self):
        return hash(("tensord.dtype", self.code))


bool_ = DType("bool", 1, 0, "b", np.bool_)
uint8 = DType("uint8", 1, 1, "u", np.uint8)
int8 = DType("int8", 1, 2, "i", np.int8)
int16 = DType("int16", 2, 3, "i", np.int16)
int32 = DType("int32", 4, 4, "i", np.int32)
int64 = DType("int64", 8, 5, "i", np.int64)
float16 = DType("float16", 2, 6, "f", np.float16)
bfloat16 = DType("bfloat16", 2, 7, "f", None)
float32 = DType("float32", 4, 8, "f", np.float32)
float64 = DType("float64", 8, 9, "f", np.float64)
complex64 = DType("complex64", 8, 10, "c", np.complex64)
complex128 = DType("complex128", 16, 11, "c", np.complex128)

ALL_DTYPES = (bool_, uint8, int8, int16, int32, int64, float16, bfloat16, float32, float64,
              complex64, complex128)
_BY_CODE = {d.code: d for d in ALL_DTYPES}
_BY_NAME = {d.name: d for d in ALL_DTYPES}
_BY_NAME.update({
    "bool_": bool_, "half": float16, "float": float32, "double": float64, "short": int16,
    "int": int32, "long": int64, "cfloat": complex64, "cdouble": complex128,
    "bf16": bfloat16, "byte": uint8, "char": int8,
})
_BY_NP = {np.dtype(d._np): d for d in ALL_DTYPES if d._np is not None}


def from_code(code):
    """Returns: the DType of a wire enum value. Raises ValueError for an unknown code."""
    try:
        return _BY_CODE[int(code)]
    except KeyError:
        raise ValueError("unknown tensord dtype code %r" % (code,)) from None


def to_dtype(x):
    """Converts a DType, a name, a NumPy dtype or scalar type to a DType.

    Returns: the DType. Raises TypeError for a NumPy dtype tensord lacks, ValueError for an
    unknown name.
    """
    if isinstance(x, DType):
        return x
    if isinstance(x, str):
        d = _BY_NAME.get(x)
        if d is not None:
            return d
        try:
            nd = np.dtype(x)
        except TypeError:
            raise ValueError("unknown dtype %r" % (x,)) from None
        return _from_np(nd, x)
    if x is bool:
        return bool_
    if x is int:
        return int64
    if x is float:
        return float32
    if x is complex:
        return complex64
    try:
        nd = np.dtype(x)
    except TypeError:
        raise TypeError("cannot interpret %r as a tensord dtype" % (x,)) from None
    return _from_np(nd, x)


def _from_np(nd, orig):
    d = _BY_NP.get(nd.newbyteorder("=") if nd.byteorder not in "=|" else nd)
    if d is None:
        raise TypeError("NumPy dtype %r has no tensord counterpart" % (orig,))
    return d
