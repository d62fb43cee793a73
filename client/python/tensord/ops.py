"""Op functions: a generic caller for every op the daemon publishes (ListOps), plus
hand-written PyTorch-like signatures for the common ones.

Generic calling convention, ``op(name, *args, **attrs)``: the first ``max_inputs`` positional
arguments are inputs (Tensors, Python numbers, array data; a variadic op such as cat takes a
list first), the remaining positional arguments fill the op's attributes in schema order,
and keyword arguments name attributes. An attribute given as None is left out.
"""
import operator

import numpy as np

from . import client as _client
from . import dtypes as _dt
from .tensor import Tensor, _norm_shape

__all__ = [
    "op", "make_op_function", "tensor", "asarray", "from_numpy", "zeros", "ones", "empty",
    "full", "scalar_tensor", "arange", "linspace", "eye", "rand", "randn", "randint",
    "zeros_like", "ones_like", "empty_like", "full_like", "rand_like", "randn_like",
    "randint_like", "reshape", "view", "permute", "expand", "split", "gather", "scatter",
    "index_select", "cast", "clip", "flip", "numel",
]


def _pick_client(inputs, client):
    if client is not None:
        return client
    for x in inputs:
        if isinstance(x, Tensor):
            return x._client
        if isinstance(x, (list, tuple)):
            for y in x:
                if isinstance(y, Tensor):
                    return y._client
    return _client.default_client()


def op(name, *args, client=None, noutputs=None, **attrs):
    """Runs any op by name (see the module doc for the calling convention).

    Returns: a Tensor, or a tuple of Tensors for ops with several outputs (split, chunk).
    Raises TensordError subclasses for errors the daemon reports.
    """
    c = _pick_client(args, client)
    sch = c.op_schema(name)
    if sch.max_inputs < 0:
        if args and isinstance(args[0], (list, tuple)):
            inputs = list(args[0])
            rest = args[1:]
        else:
            n = 0
            while n < len(args) and (isinstance(args[n], Tensor) or
                                     isinstance(args[n], np.ndarray)):
                n += 1
            inputs = list(args[:n])
            rest = args[n:]
    else:
        inputs = list(args[:sch.max_inputs])
        rest = args[sch.max_inputs:]
    names = [a.name for a in sch.attrs]
    if len(rest) > len(names):
        raise TypeError("%s() takes at most %d inputs and %d attributes (%s), got %d "
                        "arguments" % (name, max(sch.max_inputs, 0), len(names),
                                       ", ".join(names), len(args)))
    for k, v in zip(names, rest):
        if k in attrs:
            raise TypeError("%s() got multiple values for attribute %r" % (name, k))
        attrs[k] = v
    outs = c.run_op(name, inputs, attrs, noutputs)
    if sch.num_outputs == 1:
        return outs[0]
    return tuple(outs)


def make_op_function(name):
    """Returns: a function running op `name` through op() (used for every published op)."""
    def fn(*args, **kw):
        return op(name, *args, **kw)
    fn.__name__ = name
    fn.__qualname__ = name
    c = _client.default_client(required=False)
    sch = c.schema().get(name) if c is not None else None
    if sch is not None:
        fn.__doc__ = "%s\n\n%s" % (sch.doc, sch)
    fn._td_generated = True
    return fn


# ---- creation ----------------------------------------------------------------------------
def _leaf(t, requires_grad, dtype=None):
    """Marks a new tensor as a leaf requiring grad when asked. dtype: the tensor's dtype
    when the caller knows it (else the check waits for the meta). Returns: t."""
    if requires_grad:
        if t._dtype is None and dtype is not None:
            d = _dt.to_dtype(dtype)
            if d.kind not in "fc":
                raise RuntimeError("only Tensors of floating point and complex dtype can "
                                   "require gradients (got %s)" % d.name)
        elif t._dtype is None:
            t._meta()
        t.requires_grad_(True)
    return t


def _scalar_dtype(*values):
    # The dtype creation ops infer from Python scalars (float32 for any float, like torch).
    kinds = [type(v) for v in values if v is not None]
    if any(k is complex for k in kinds):
        return _dt.complex64
    if any(isinstance(v, float) or (isinstance(v, np.floating)) for v in values):
        return _dt.float32
    return None


def tensor(data, dtype=None, *, client=None, requires_grad=False):
    """A new tensor in the daemon from data: a NumPy array (keeps its dtype), nested lists
    or a scalar (float -> float32, int -> int64, bool, complex -> complex64, like
    torch.tensor), or a Tensor (copied, without autograd history). dtype converts; bfloat16
    uploads float32 and casts in the daemon. requires_grad makes it a leaf that requires
    grad."""
    if isinstance(data, Tensor):
        from .autograd.grad_mode import no_grad
        with no_grad():
            t = data if dtype is None else data.to(dtype)
            t = t.clone() if t is data else t
        return _leaf(t, requires_grad, dtype)
    c = client or _client.default_client()
    return _leaf(c.upload(data, dtype), requires_grad)


def asarray(data, dtype=None, *, client=None, requires_grad=False):
    """Like tensor(), but a Tensor of the requested dtype is returned as is."""
    if isinstance(data, Tensor):
        return data if dtype is None else data.to(dtype)
    return tensor(data, dtype, client=client, requires_grad=requires_grad)


def from_numpy(arr, *, client=None):
    """Uploads a NumPy array, keeping its dtype."""
    return tensor(np.asarray(arr), client=client)


def _creation(name, shape, dtype, client, requires_grad=False, default=_dt.float32,
              **attrs):
    c = client or _client.default_client()
    t = op(name, client=c, shape=list(_norm_shape(shape)),
           dtype=None if dtype is None else _dt.to_dtype(dtype), **attrs)
    return _leaf(t, requires_grad, default if dtype is None else dtype)


def zeros(*shape, dtype=None, client=None, requires_grad=False):
    return _creation("zeros", shape, dtype, client, requires_grad)


def ones(*shape, dtype=None, client=None, requires_grad=False):
    return _creation("ones", shape, dtype, client, requires_grad)


def empty(*shape, dtype=None, client=None, requires_grad=False):
    return _creation("empty", shape, dtype, client, requires_grad)


def full(shape, fill_value, dtype=None, *, client=None, requires_grad=False):
    if hasattr(shape, "__index__"):
        shape = (shape,)
    return _creation("full", (tuple(shape),), dtype, client, requires_grad,
                     _scalar_dtype(fill_value), fill_value=fill_value)


def scalar_tensor(value, dtype=None, *, client=None, requires_grad=False):
    c = client or _client.default_client()
    return _leaf(op("scalar_tensor", client=c, value=value, dtype=dtype), requires_grad,
                 dtype if dtype is not None else _scalar_dtype(value))


def arange(start, end=None, step=None, *, dtype=None, client=None, requires_grad=False):
    """arange(end) or arange(start, end[, step]); dtype inferred like torch.arange."""
    c = client or _client.default_client()
    if end is None:
        start, end = None, start
    t = op("arange", client=c, start=start, end=end, step=step, dtype=dtype)
    return _leaf(t, requires_grad,
                 dtype if dtype is not None else _scalar_dtype(start, end, step))


def linspace(start, end, steps, *, dtype=None, client=None, requires_grad=False):
    c = client or _client.default_client()
    t = op("linspace", client=c, start=start, end=end, steps=steps, dtype=dtype)
    return _leaf(t, requires_grad, dtype if dtype is not None else
                 (_scalar_dtype(start, end) or _dt.float32))


def eye(n, m=None, *, dtype=None, client=None, requires_grad=False):
    c = client or _client.default_client()
    return _leaf(op("eye", client=c, n=n, m=m, dtype=dtype), requires_grad,
                 dtype if dtype is not None else _dt.float32)


def rand(*shape, dtype=None, client=None, requires_grad=False):
    return _creation("rand", shape, dtype, client, requires_grad)


def randn(*shape, dtype=None, client=None, requires_grad=False):
    return _creation("randn", shape, dtype, client, requires_grad)


def randint(low, high=None, size=None, *, dtype=None, client=None):
    """randint(high, size) or randint(low, high, size), like torch.randint."""
    if size is None:
        if high is None:
            raise TypeError("randint() needs high and size")
        low, high, size = 0, low, high
    c = client or _client.default_client()
    if hasattr(size, "__index__"):
        size = (size,)
    return op("randint", client=c, low=low, high=high, shape=list(_norm_shape((size,))),
              dtype=dtype)


def _like_dtype(x, dtype):
    if dtype is not None:
        return dtype
    return x._dtype if isinstance(x, Tensor) else None


def zeros_like(x, dtype=None, *, requires_grad=False):
    return _leaf(op("zeros_like", x, dtype=dtype), requires_grad, _like_dtype(x, dtype))


def ones_like(x, dtype=None, *, requires_grad=False):
    return _leaf(op("ones_like", x, dtype=dtype), requires_grad, _like_dtype(x, dtype))


def empty_like(x, dtype=None, *, requires_grad=False):
    return _leaf(op("empty_like", x, dtype=dtype), requires_grad, _like_dtype(x, dtype))


def full_like(x, fill_value, dtype=None, *, requires_grad=False):
    return _leaf(op("full_like", x, fill_value=fill_value, dtype=dtype), requires_grad,
                 _like_dtype(x, dtype))


def rand_like(x, dtype=None, *, requires_grad=False):
    return _leaf(op("rand_like", x, dtype=dtype), requires_grad, _like_dtype(x, dtype))


def randn_like(x, dtype=None, *, requires_grad=False):
    return _leaf(op("randn_like", x, dtype=dtype), requires_grad, _like_dtype(x, dtype))


def randint_like(x, low, high=None, dtype=None):
    """randint_like(x, high) or randint_like(x, low, high)."""
    if high is None:
        low, high = 0, low
    return op("randint_like", x, low=low, high=high, dtype=dtype)


# ---- shapes and indexing -----------------------------------------------------------------
def reshape(x, *shape):
    return op("reshape", x, shape=list(_norm_shape(shape)))


def view(x, *shape):
    return op("view", x, shape=list(_norm_shape(shape)))


def permute(x, *dims):
    return op("permute", x, dims=list(_norm_shape(dims)))


def expand(x, *shape):
    return op("expand", x, shape=list(_norm_shape(shape)))


def flip(x, *dims):
    return op("flip", x, dims=list(_norm_shape(dims)))


def split(x, split_size_or_sections, dim=0):
    """torch.split: an int gives pieces of that size (the last smaller), a list the sizes.
    Returns: a tuple of Tensors (views)."""
    if hasattr(split_size_or_sections, "__index__"):
        return op("split", x, split_size=operator.index(split_size_or_sections), dim=dim)
    return op("split", x, sections=list(split_size_or_sections), dim=dim)


def gather(x, dim, index):
    """torch.gather(input, dim, index)."""
    return op("gather", x, index, dim=dim)


def scatter(x, dim, index, src, reduce=None):
    """torch.scatter(input, dim, index, src, reduce=None): a copy of x with src written."""
    return op("scatter", x, index, src, dim=dim, reduce=reduce)


def index_select(x, dim, index):
    """torch.index_select(input, dim, index)."""
    return op("index_select", x, index, dim=dim)


def cast(x, dtype):
    return op("cast", x, dtype=_dt.to_dtype(dtype))


def clip(x, min=None, max=None):
    return op("clamp", x, min=min, max=max)


def numel(x):
    return x.numel()


# ---- torch signatures over ops whose wire form differs ----------------------------------
def einsum(equation, *operands):
    """torch.einsum(equation, *operands); operands may also be given as one list."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    return op("einsum", *operands, equation=equation)


def diagonal(x, offset=0, dim1=0, dim2=1):
    """torch.diagonal: the offset diagonal of dims dim1 and dim2, appended as the last dim
    (the op's own defaults are torch.linalg.diagonal's, -2 and -1)."""
    return op("diagonal", x, offset=offset, dim1=dim1, dim2=dim2)


def nonzero(x, *, as_tuple=False):
    """torch.nonzero: [count, ndim] int64 coordinates of the non-zero elements in row-major
    order (a tuple of ndim 1-d tensors with as_tuple). The size depends on the data, so this
    waits for count_nonzero(x) (as torch does on a GPU) before queueing the op."""
    cnt = int(op("count_nonzero", x).item())
    idx = op("nonzero", x, count=cnt)
    if not as_tuple:
        return idx
    return tuple(op("select", idx, dim=1, index=i) for i in range(idx.shape[1]))


def unique(x, sorted=True, return_inverse=False, return_counts=False, dim=None):
    """torch.unique of the flattened input: sorted distinct values (each NaN distinct), and
    with return_inverse the index of each element's value (x's shape), with return_counts
    the count of each value. Waits for unique_count(x) first (the size depends on the
    data). dim is not supported."""
    if dim is not None:
        raise NotImplementedError("unique: dim is not supported; unique flattens its input")
    cnt = int(op("unique_count", x).item())
    values, _, inverse, counts = op("unique", x, count=cnt)
    out = (values,)
    if return_inverse:
        out += (inverse,)
    if return_counts:
        out += (counts,)
    return out[0] if len(out) == 1 else out
