"""tensord: a Python client for the tensord out-of-process tensor engine.

    import tensord as td
    td.connect()                      # private daemon on a temporary Unix socket
    a = td.randn(256, 256)
    b = td.tensor(numpy_array)
    c = (a @ b).sum(dim=1).tanh()
    print(c.numpy())

Every op the daemon publishes (ListOps) is available as ``td.<op>(...)`` and as a Tensor
method; ``td.op(name, *inputs, **attrs)`` runs any op by name.

Asynchronous execution (like CUDA's kernel launches):

- An op returns its Tensor at once and never waits for the daemon. Ops are queued and
  sent as one multi-node Run when 64 nodes are queued (``connect(batch=N)``; ``batch=1``
  sends every op as its own Run) or when something needs a result. The first op of a
  client fetches the daemon's op table once.
- A tensor's meta (``.shape``, ``.dtype``, ``.ndim``, ``len()``, ``.stride()``...) is
  pending until the reply of the Run that made it has been read; reading it sends the
  queue and waits for that reply only. Uploads know their meta at once. Python-side logic
  that needs a shape (split/chunk output counts, integer and array indexing, ``.T``,
  ``.to()``) waits for it; plain slicing and other ops do not.
- Synchronising calls: ``.numpy()``, ``.item()``, ``.tolist()``, ``bool()``, ``float()``,
  ``str()``/``print()``, ``client.sync()``. They send the queue, wait for their result, and
  raise the first error of an earlier op or upload that has not been raised yet (one
  error, reported once, whichever tensor the call is on). ``repr()`` waits but never
  raises: a failed tensor shows its error and a pending error stays pending.
- A failed op's tensors are failed: using their meta or data raises the op's error (the
  daemon's TensordError subclass and message, e.g. ``InvalidArgument: node 0 (matmul):
  ...``) every time. An op on a tensor already known to have failed raises that original
  error at once; an op queued on a tensor whose failure arrives later fails with the
  original error too.
- When a batched Run fails, the daemon undoes all of it and the client re-sends its ops
  one per Run, so every op gets its own outcome and message as if sent alone. (Random
  ops re-sent this way draw new numbers: the failed Run advanced the session generator.)
- Tensors freed by garbage collection are freed in the daemon after their Run (queued
  ones through the Run's discard list).

Autograd (torch-like; the graph lives in the daemon): ``requires_grad``, ``.backward()``,
``.grad``, ``.grad_fn``, ``.detach()``, ``td.no_grad()``/``td.enable_grad()``/
``td.set_grad_enabled()`` (per thread; nodes sent with grad mode off carry no_grad),
``td.autograd.grad/backward``, ``td.autograd.forward_ad`` and the functional transforms in
``td.func`` (grad, vjp, jvp, jacrev, jacfwd, hessian). Ops stay asynchronous: the client
keeps requires_grad locally; backward is one more queued op. Reading ``.grad`` (None or
not) and ``grad(..., allow_unused=True)`` wait for the daemon's answer.
"""
from . import dtypes as _dtypes
from .dtypes import (DType, to_dtype, bool_, uint8, int8, int16, int32, int64, float16,
                     bfloat16, float32, float64, complex64, complex128)
from ._wire import (TensordError, Cancelled, Unknown, InvalidArgument, DeadlineExceeded,
                    NotFound, AlreadyExists, PermissionDenied, ResourceExhausted,
                    FailedPrecondition, Aborted, OutOfRange, Unimplemented, Internal,
                    Unavailable, DataLoss, Unauthenticated)
from .client import Client, Graph, OpSchema, connect, default_client, set_default_client
from .tensor import Tensor
from .ops import (op, tensor, asarray, from_numpy, zeros, ones, empty, full, scalar_tensor,
                  arange, linspace, eye, rand, randn, randint, zeros_like, ones_like,
                  empty_like, full_like, rand_like, randn_like, randint_like, reshape, view,
                  permute, expand, split, gather, scatter, index_select, cast, clip, flip,
                  numel, einsum, diagonal, nonzero, unique)

from .autograd.grad_mode import no_grad, enable_grad, set_grad_enabled, is_grad_enabled
from . import autograd
from . import func

__version__ = "0.1.0"

# PyTorch-style dtype aliases; `tensord.bool` shadows the builtin only inside this namespace.
globals()["bool"] = bool_
half = float16
float = float32          # noqa: A001 - torch naming
double = float64
short = int16
int = int32              # noqa: A001 - torch naming
long = int64
cfloat = complex64
cdouble = complex128
dtypes = _dtypes.ALL_DTYPES


def __getattr__(name):
    # Ops the daemon publishes that have no hand-written function: tensord.<op>.
    if not name.startswith("_"):
        c = default_client(required=False)
        if c is not None and name in c.schema():
            from .ops import make_op_function
            return make_op_function(name)
    raise AttributeError("module 'tensord' has no attribute %r%s" % (
        name, "" if default_client(required=False) is not None
        else " (connect() first to load the daemon's ops)"))

# ---- td.nn, td.optim, td.save/td.load (tensord/nn, tensord/optim, serialization.py) ----
from . import nn, optim  # noqa: E402
from .serialization import save, load  # noqa: E402

# ---- torch-like op namespaces (tensord/fft.py, linalg.py, special.py) -------------------
# Imported here so the module attributes are these namespaces, not the same-named ops that
# connect() adds for every op of the daemon's table (it keeps names already defined).
from . import fft, linalg, special  # noqa: E402

# ---- the Python Array API namespace (tensord/array_api; docs/ARRAY_API.md) ---------------
from . import array_api  # noqa: E402
