"""td.save / td.load: state_dicts (nested dicts, lists and tuples of tensors, NumPy arrays,
numbers, strings, None) to and from a local file.

The file is a NumPy .npz archive: one array per tensor, plus `__tensord__` holding the
structure as JSON (keys keep their type: a str, int, float, bool, None or tuple key
comes back as such). Loading uses np.load(allow_pickle=False) and json, so a file can
hold only data: nothing in it is executed or imported, whatever its origin. Objects of
any other type are refused when saving.
"""
import collections
import io
import json
import numbers

import numpy as np

from .dtypes import bfloat16 as _bfloat16, to_dtype as _to_dtype
from .tensor import Tensor

__all__ = ["save", "load"]

_FORMAT = "tensord-save"
_VERSION = 1
_META = "__tensord__"


def _enc_key(k):
    if isinstance(k, tuple):
        return {"tuple": [_enc_key(x) for x in k]}
    if k is None or isinstance(k, (str, bool)):
        return {"v": k}
    if isinstance(k, numbers.Integral):
        return {"v": int(k)}
    if isinstance(k, numbers.Real):
        return {"f": float(k)}
    raise TypeError("td.save: dict keys must be str, int, float, bool, None or tuples of "
                    "them, got %s" % type(k).__name__)


def _dec_key(e):
    if "tuple" in e:
        return tuple(_dec_key(x) for x in e["tuple"])
    if "f" in e:
        return float(e["f"])
    return e["v"]


class _Writer:
    def __init__(self):
        self.arrays = {}

    def _add(self, arr):
        name = "a%d" % len(self.arrays)
        self.arrays[name] = arr
        return name

    def enc(self, obj, path):
        if isinstance(obj, Tensor):
            dtype = obj.dtype
            return {"t": "tensor", "a": self._add(np.ascontiguousarray(obj.detach().numpy())),
                    "dtype": dtype.name}
        if isinstance(obj, np.ndarray):
            if obj.dtype.hasobject or obj.dtype.kind not in "biufc":
                raise TypeError("td.save: %s: arrays of dtype %s cannot be saved"
                                % (path or "<root>", obj.dtype))
            return {"t": "ndarray", "a": self._add(np.ascontiguousarray(obj))}
        if isinstance(obj, np.generic):
            obj = obj.item()
        if obj is None or isinstance(obj, (str, bool)):
            return {"t": "py", "v": obj}
        if isinstance(obj, numbers.Integral):
            return {"t": "py", "v": int(obj)}
        if isinstance(obj, numbers.Real):
            return {"t": "float", "v": repr(float(obj))}
        if isinstance(obj, numbers.Complex):
            return {"t": "complex", "re": repr(obj.real), "im": repr(obj.imag)}
        if isinstance(obj, collections.abc.Mapping):
            kind = "odict" if isinstance(obj, collections.OrderedDict) else "dict"
            return {"t": kind, "items": [[_enc_key(k), self.enc(v, "%s[%r]" % (path, k))]
                                         for k, v in obj.items()]}
        if isinstance(obj, (list, tuple)):
            return {"t": "list" if isinstance(obj, list) else "tuple",
                    "items": [self.enc(v, "%s[%d]" % (path, i)) for i, v in enumerate(obj)]}
        raise TypeError("td.save: %s: objects of type %s cannot be saved (tensors, arrays, "
                        "numbers, strings, None, and dicts/lists/tuples of them can)"
                        % (path or "<root>", type(obj).__name__))


def save(obj, f):
    """Writes obj (a state_dict or any nesting of dicts, lists and tuples of tensors,
    arrays, numbers, strings and None) to f, a path or a binary file object. Tensors are
    downloaded (a synchronising call)."""
    w = _Writer()
    tree = w.enc(obj, "")
    meta = json.dumps({"format": _FORMAT, "version": _VERSION, "root": tree})
    arrays = dict(w.arrays)
    arrays[_META] = np.frombuffer(meta.encode("utf-8"), dtype=np.uint8)
    if isinstance(f, (str, bytes)) or hasattr(f, "__fspath__"):
        with open(f, "wb") as fh:
            np.savez(fh, **arrays)
    else:
        np.savez(f, **arrays)


class _Reader:
    def __init__(self, npz, client, as_numpy):
        self.npz = npz
        self.client = client
        self.as_numpy = as_numpy

    def _array(self, name):
        if not isinstance(name, str) or name == _META or name not in self.npz.files:
            raise ValueError("td.load: corrupt file: missing array %r" % (name,))
        return self.npz[name]

    def dec(self, e):
        if not isinstance(e, dict) or "t" not in e:
            raise ValueError("td.load: corrupt file: bad entry %r" % (e,))
        t = e["t"]
        if t == "tensor":
            arr = self._array(e["a"])
            dtype = _to_dtype(e["dtype"])
            if self.as_numpy:
                return arr
            from .ops import tensor
            return tensor(arr, dtype if dtype is _bfloat16 else None, client=self.client)
        if t == "ndarray":
            return self._array(e["a"])
        if t == "py":
            return e["v"]
        if t == "float":
            return float(e["v"])
        if t == "complex":
            return complex(float(e["re"]), float(e["im"]))
        if t in ("dict", "odict"):
            d = collections.OrderedDict() if t == "odict" else {}
            for k, v in e["items"]:
                d[_dec_key(k)] = self.dec(v)
            return d
        if t == "list":
            return [self.dec(v) for v in e["items"]]
        if t == "tuple":
            return tuple(self.dec(v) for v in e["items"])
        raise ValueError("td.load: corrupt file: unknown entry type %r" % (t,))


def load(f, map_location=None, *, client=None, as_numpy=False):
    """Reads what save() wrote from f (a path or a binary file object). Tensors are
    uploaded to client (default: the default client) with their saved dtype, or returned
    as NumPy arrays with as_numpy. map_location: None or "cpu" (tensord tensors live in
    the daemon). Raises ValueError for a file that is not a tensord save file."""
    if map_location not in (None, "cpu"):
        raise ValueError("td.load: map_location must be None or 'cpu', got %r"
                         % (map_location,))
    if isinstance(f, (bytes, bytearray)):
        f = io.BytesIO(f)
    try:
        npz = np.load(f, allow_pickle=False)
    except (OSError, ValueError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise ValueError("td.load: not a tensord save file: %s" % e) from None
    if not hasattr(npz, "files"):
        raise ValueError("td.load: not a tensord save file (a plain .npy array)")
    with npz:
        if _META not in npz.files:
            raise ValueError("td.load: not a tensord save file (no %s entry)" % _META)
        try:
            meta = json.loads(bytes(npz[_META]).decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise ValueError("td.load: corrupt file: %s" % e) from None
        if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
            raise ValueError("td.load: not a tensord save file")
        if meta.get("version") != _VERSION:
            raise ValueError("td.load: unsupported file version %r" % (meta.get("version"),))
        return _Reader(npz, client, as_numpy).dec(meta.get("root"))
