"""tensord.func: functional transforms like torch.func (grad, grad_and_value, vjp, jvp,
jacrev, jacfwd, hessian), built on the daemon's autograd.

There are no functorch levels: a transform makes its inputs fresh differentiable tensors
(`alias`, an identity op that is recorded when the input already requires grad so that an
outer transform still sees the dependency, else `detach().requires_grad_()`) and asks the
daemon for gradients with create_graph when an outer computation could differentiate again
(grad mode on and some tensor argument requires grad). So grad(grad(f)), jacrev(jacrev(f))
and jacfwd(jacrev(f)) (hessian) nest. Forward mode uses the daemon's dual level, which does
not nest: jacfwd(jacfwd(f)) and jvp inside jvp raise RuntimeError.

Arguments being differentiated are Tensors or tuples/lists/dicts of Tensors. Without vmap,
jacobians loop over basis vectors; the backward (or forward) passes are queued one after
another without waiting, and the only waits are for the shapes the result needs.
An input the output does not depend on gets a zero gradient (the inputs are passed to the
daemon's backward as extra roots with zero grad_outputs, so every input is reached).
"""
import functools

import numpy as np

from . import autograd as _autograd
from . import client as _client
from .autograd import forward_ad as _fwad
from .autograd.grad_mode import enable_grad, no_grad
from .tensor import Tensor

__all__ = ["grad", "grad_and_value", "vjp", "jvp", "jacrev", "jacfwd", "hessian"]


# ---- small pytrees (Tensor, tuple, list, dict) ----------------------------------------------
def _flatten(tree):
    """Returns: (leaves, spec) for a Tensor or a tuple/list/dict of them (nested)."""
    if isinstance(tree, Tensor):
        return [tree], None
    if isinstance(tree, (tuple, list)):
        leaves, specs = [], []
        for t in tree:
            lv, sp = _flatten(t)
            leaves.extend(lv)
            specs.append((len(lv), sp))
        return leaves, (type(tree), specs)
    if isinstance(tree, dict):
        keys = list(tree)
        leaves, specs = [], []
        for k in keys:
            lv, sp = _flatten(tree[k])
            leaves.extend(lv)
            specs.append((len(lv), sp))
        return leaves, (dict, keys, specs)
    raise TypeError("expected a Tensor or a tuple/list/dict of Tensors, got %s"
                    % type(tree).__name__)


def _unflatten(spec, leaves):
    if spec is None:
        return leaves[0]
    if spec[0] is dict:
        _, keys, specs = spec
        out, pos = {}, 0
        for k, (n, sp) in zip(keys, specs):
            out[k] = _unflatten(sp, leaves[pos:pos + n])
            pos += n
        return out
    typ, specs = spec
    out, pos = [], 0
    for n, sp in specs:
        out.append(_unflatten(sp, leaves[pos:pos + n]))
        pos += n
    return typ(out) if typ is tuple else out


def _tensor_leaves(obj):
    # Every Tensor in nested tuples/lists/dicts (anything else is skipped).
    if isinstance(obj, Tensor):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for o in obj:
            yield from _tensor_leaves(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from _tensor_leaves(o)


def _detach_tree(obj):
    if isinstance(obj, Tensor):
        return obj.detach() if obj._rg_state()[0] else obj
    if isinstance(obj, tuple):
        return tuple(_detach_tree(o) for o in obj)
    if isinstance(obj, list):
        return [_detach_tree(o) for o in obj]
    if isinstance(obj, dict):
        return {k: _detach_tree(v) for k, v in obj.items()}
    return obj


# ---- shared machinery ----------------------------------------------------------------------
def _outer_differentiates(args, kwargs=None):
    """Whether a computation around the transform could differentiate its results: grad
    mode is on and some tensor argument requires grad."""
    if not _client.is_grad_enabled():
        return False
    for t in _tensor_leaves((args, kwargs or {})):
        if t.requires_grad:
            return True
    return False


def _diff_input(x):
    """A fresh differentiable tensor standing for x (grad mode must be on)."""
    if not isinstance(x, Tensor):
        raise TypeError("the arguments being differentiated must be Tensors, got %s"
                        % type(x).__name__)
    if x.requires_grad:
        return x._op("alias")
    return x.detach().requires_grad_()


def _argnums(argnums, nargs, name):
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)
    if not nums:
        raise RuntimeError("%s: argnums must be non-empty" % name)
    out = []
    for a in nums:
        if not isinstance(a, int):
            raise RuntimeError("%s: argnums must be ints, got %r" % (name, a))
        if not -nargs <= a < nargs:
            raise RuntimeError("%s: got argnums=%d but only %d positional inputs"
                               % (name, a, nargs))
        out.append(a % nargs)
    if len(set(out)) != len(out):
        raise RuntimeError("%s: argnums must be unique, got %r" % (name, argnums))
    return single, out


def _prepare(args, nums):
    """Replaces args[i] for i in nums by differentiable copies. Returns: (args list,
    [(spec, leaves) per argnum])."""
    args = list(args)
    parts = []
    for i in nums:
        leaves, spec = _flatten(args[i])
        new = [_diff_input(t) for t in leaves]
        args[i] = _unflatten(spec, new)
        parts.append((spec, new))
    return args, parts


def _split_aux(out, has_aux, name):
    if not has_aux:
        return out, None
    if not (isinstance(out, tuple) and len(out) == 2):
        raise RuntimeError("%s(f, ..., has_aux=True): f must return a (output, aux) tuple"
                           % name)
    return out


def _vjp_grads(roots, cotangents, inputs, create, retain):
    """Gradients of sum(<roots, cotangents>) with respect to inputs, queued without
    waiting. Every input is also a root (with a zero cotangent) so none is unused, and
    roots that cannot require grad (constants) are left out. Returns: a tuple of Tensors."""
    rs, cts = [], []
    for r, ct in zip(roots, cotangents):
        rg, exact = r._rg_state()
        if exact and not rg:
            continue
        rs.append(r)
        cts.append(ct)
    with no_grad():
        zeros = [x._op("zeros_like") for x in inputs]
    return _autograd.grad(rs + list(inputs), list(inputs), grad_outputs=cts + zeros,
                          retain_graph=retain, create_graph=create)


def _regroup(parts, flat):
    out, pos = [], 0
    for spec, leaves in parts:
        n = len(leaves)
        out.append(_unflatten(spec, list(flat[pos:pos + n])))
        pos += n
    return out


# ---- reverse mode ----------------------------------------------------------------------------
def grad_and_value(func, argnums=0, has_aux=False):
    """Returns: a function computing (gradient, value) of func, whose output must be a 0-d
    tensor; ((gradient, (value, aux)) with has_aux). argnums: which positional arguments
    to differentiate (an int gives one gradient, a tuple a tuple of them)."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        single, nums = _argnums(argnums, len(args), "grad_and_value")
        create = _outer_differentiates(args, kwargs)
        with enable_grad():
            dargs, parts = _prepare(args, nums)
            out = func(*dargs, **kwargs)
            out, aux = _split_aux(out, has_aux, "grad")
            if not isinstance(out, Tensor):
                raise RuntimeError("grad_and_value(f)(*args): expected f(*args) to return a "
                                   "Tensor, got %s" % type(out).__name__)
            # A 0-d one: the daemon's backward refuses it (shape mismatch) when out is not
            # a scalar, like torch.func.grad, without waiting for out's shape here.
            with no_grad():
                seed = out._op("ones_like").sum()
            flat_in = [t for _, leaves in parts for t in leaves]
            g = _vjp_grads([out], [seed], flat_in, create, create)
        grads = _regroup(parts, g)
        res = grads[0] if single else tuple(grads)
        if not create:
            out = out.detach()
            aux = _detach_tree(aux)
        if has_aux:
            return res, (out, aux)
        return res, out
    return wrapper


def grad(func, argnums=0, has_aux=False):
    """Returns: a function computing the gradient of func (0-d output) with respect to the
    arguments in argnums (grad, aux with has_aux). Nests: grad(grad(f))."""
    gv = grad_and_value(func, argnums, has_aux)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        g, value = gv(*args, **kwargs)
        if has_aux:
            return g, value[1]
        return g
    return wrapper


def vjp(func, *primals, has_aux=False):
    """Runs func(*primals). Returns: (output, vjp_fn) (and aux with has_aux); vjp_fn(ct)
    takes cotangents shaped like the output and returns a tuple with one gradient per
    primal. vjp_fn may be called several times."""
    create = _outer_differentiates(primals)
    with enable_grad():
        dargs, parts = _prepare(primals, range(len(primals)))
        out = func(*dargs)
        out, aux = _split_aux(out, has_aux, "vjp")
    flat_out, out_spec = _flatten(out)
    flat_in = [t for _, leaves in parts for t in leaves]

    def vjp_fn(*cotangents):
        ct = cotangents[0] if len(cotangents) == 1 else tuple(cotangents)
        flat_ct, _ = _flatten(ct)
        if len(flat_ct) != len(flat_out):
            raise RuntimeError("vjp_fn: expected cotangents for %d outputs, got %d"
                               % (len(flat_out), len(flat_ct)))
        make = _client.is_grad_enabled() and (
            create or any(t.requires_grad for t in flat_ct))
        with enable_grad():
            g = _vjp_grads(flat_out, flat_ct, flat_in, make, True)
        return tuple(_regroup(parts, g))

    shown = out if create else _detach_tree(out)
    if has_aux:
        return shown, vjp_fn, (aux if create else _detach_tree(aux))
    return shown, vjp_fn


def _output_row_basis(out):
    """Returns: (out shape, a (numel,) + shape tensor of one-hot cotangents)."""
    shape = tuple(out.shape)
    m = int(np.prod(shape, dtype=np.int64))
    eye = np.eye(m).reshape((m,) + shape)
    with no_grad():
        basis = _client_of(out).upload(eye, out.dtype)
    return shape, m, basis


def _client_of(t):
    return t._client


def _assemble(rows, lead_shape, tail_shape, dim_new):
    """Stacks per-basis-vector results (along dim_new) into a jacobian of shape
    lead + tail."""
    shape = tuple(lead_shape) + tuple(tail_shape)
    if len(rows) == 1:
        return rows[0].reshape(shape)
    from . import ops as _ops
    return _ops.op("stack", list(rows), dim=dim_new).reshape(shape)


def jacrev(func, argnums=0, has_aux=False):
    """Returns: a function computing the jacobian of func (a Tensor output) with respect to
    the argnums arguments by reverse mode: one backward per output element, queued
    together. The jacobian has shape output.shape + input.shape (a tuple of them for a
    tuple argnums)."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        single, nums = _argnums(argnums, len(args), "jacrev")
        for i in nums:
            if not isinstance(args[i], Tensor):
                raise RuntimeError("jacrev: the differentiated arguments must be Tensors")
        create = _outer_differentiates(args, kwargs)
        in_shapes = [tuple(args[i].shape) for i in nums]
        with enable_grad():
            dargs, parts = _prepare(args, nums)
            out = func(*dargs, **kwargs)
            out, aux = _split_aux(out, has_aux, "jacrev")
            if not isinstance(out, Tensor):
                raise RuntimeError("jacrev: f must return a Tensor, got %s"
                                   % type(out).__name__)
            flat_in = [t for _, leaves in parts for t in leaves]
            out_shape, m, basis = _output_row_basis(out)
            rows = []
            for i in range(m):
                retain = create or i < m - 1
                rows.append(_vjp_grads([out], [basis[i]], flat_in, create, retain))
            jacs = []
            for k, shp in enumerate(in_shapes):
                if m == 0:
                    with no_grad():
                        from . import ops as _ops
                        jacs.append(_ops.zeros(*(out_shape + shp), dtype=out.dtype,
                                               client=out._client))
                    continue
                jacs.append(_assemble([r[k] for r in rows], out_shape, shp, 0))
        res = jacs[0] if single else tuple(jacs)
        if has_aux:
            return res, (aux if create else _detach_tree(aux))
        return res
    return wrapper


# ---- forward mode ----------------------------------------------------------------------------
class _DualScope:
    """One dual level per client at a time: nesting is refused here, before the daemon."""

    def __init__(self, client, what):
        self.client = client
        self.what = what

    def __enter__(self):
        if getattr(self.client, "_td_dual_active", False):
            raise RuntimeError("%s: forward-mode AD does not nest (the daemon has one dual "
                               "level); jacfwd(jacfwd(f)) and jvp inside jvp are not "
                               "supported, use jacfwd(jacrev(f))" % self.what)
        self.client._td_dual_active = True
        try:
            _fwad.enter_dual_level(self.client)
        except BaseException:
            self.client._td_dual_active = False
            raise
        return self

    def __exit__(self, *exc):
        try:
            _fwad.exit_dual_level(client=self.client)
        finally:
            self.client._td_dual_active = False
        return False


def _tangent_of(out):
    """out's tangent at the active level, zeros when it has none, without waiting: the
    tangent of out + (a zero dual), which always has one."""
    with no_grad():
        z = out._op("zeros_like")
        zt = out._op("zeros_like")
    zd = _fwad.make_dual(z, zt)
    return (out + zd)._op("dual_tangent")


def jvp(func, primals, tangents, has_aux=False):
    """Runs func(*primals) with forward-mode tangents. Returns: (output, jvp_out) where
    jvp_out is the directional derivative along tangents (zeros where the output does not
    depend on the primals); (output, jvp_out, aux) with has_aux."""
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise RuntimeError("jvp: primals and tangents must be tuples")
    if len(primals) != len(tangents):
        raise RuntimeError("jvp: expected %d tangents, got %d" % (len(primals),
                                                                  len(tangents)))
    flat_p, spec = _flatten(tuple(primals))
    flat_t, _ = _flatten(tuple(tangents))
    if len(flat_p) != len(flat_t):
        raise RuntimeError("jvp: tangents must have the structure of primals")
    c = flat_p[0]._client if flat_p else _client.default_client()
    create = _outer_differentiates(primals)
    with _DualScope(c, "jvp"):
        duals = [_fwad.make_dual(p, t) for p, t in zip(flat_p, flat_t)]
        out = func(*_unflatten(spec, duals))
        out, aux = _split_aux(out, has_aux, "jvp")
        flat_o, ospec = _flatten(out)
        tans = [_tangent_of(o) for o in flat_o]
        prims = [o._op("dual_primal") for o in flat_o]
    prim = _unflatten(ospec, prims)
    tan = _unflatten(ospec, tans)
    if not create:
        prim = _detach_tree(prim)
        aux = _detach_tree(aux)
    if has_aux:
        return prim, tan, aux
    return prim, tan


def jacfwd(func, argnums=0, has_aux=False):
    """Returns: a function computing the jacobian of func (a Tensor output) with respect to
    the argnums arguments by forward mode: one evaluation of func per input element, all
    at one dual level and queued together. Shape: output.shape + input.shape."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        single, nums = _argnums(argnums, len(args), "jacfwd")
        for i in nums:
            if not isinstance(args[i], Tensor):
                raise RuntimeError("jacfwd: the differentiated arguments must be Tensors")
        c = args[nums[0]]._client
        jacs = []
        aux = None
        with _DualScope(c, "jacfwd"):
            for i in nums:
                x = args[i]
                in_shape = tuple(x.shape)
                n = int(np.prod(in_shape, dtype=np.int64))
                eye = np.eye(n).reshape((n,) + in_shape)
                with no_grad():
                    basis = c.upload(eye, x.dtype)
                cols = []
                out = None
                for j in range(n):
                    a = list(args)
                    a[i] = _fwad.make_dual(x, basis[j])
                    o = func(*a, **kwargs)
                    o, ax = _split_aux(o, has_aux, "jacfwd")
                    if aux is None:
                        aux = ax
                    if not isinstance(o, Tensor):
                        raise RuntimeError("jacfwd: f must return a Tensor, got %s"
                                           % type(o).__name__)
                    out = o
                    cols.append(_tangent_of(o))
                if n == 0:
                    o = func(*args, **kwargs)
                    o, aux = _split_aux(o, has_aux, "jacfwd")
                    with no_grad():
                        from . import ops as _ops
                        jacs.append(_ops.zeros(*(tuple(o.shape) + in_shape), dtype=o.dtype,
                                               client=c))
                    continue
                out_shape = tuple(out.shape)
                jacs.append(_assemble(cols, out_shape, in_shape, len(out_shape)))
        res = jacs[0] if single else tuple(jacs)
        if has_aux:
            if not _outer_differentiates(args, kwargs):
                aux = _detach_tree(aux)
            return res, aux
        return res
    return wrapper


def hessian(func, argnums=0):
    """Returns: a function computing the hessian of func (0-d output): jacfwd(jacrev(f)),
    of shape input.shape + input.shape."""
    return jacfwd(jacrev(func, argnums), argnums)
