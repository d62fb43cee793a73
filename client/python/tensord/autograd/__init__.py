"""tensord.autograd: reverse-mode AD driven from the client; the work happens in the daemon.

backward() and grad() queue one `backward` op (inputs: the roots, their grad_outputs when
given, then the tensors to differentiate; attrs nroots, ngrad, retain_graph, create_graph,
allow_unused). Like any op they do not wait: errors (a root that does not require grad, a
graph freed by an earlier backward, a saved tensor modified in place) surface at the next
synchronising call. Only grad(..., allow_unused=True) waits, to learn which results are
None.
"""
from .. import client as _client
from ..tensor import Tensor
from .grad_mode import no_grad, enable_grad, set_grad_enabled, is_grad_enabled
from . import forward_ad

__all__ = ["backward", "grad", "no_grad", "enable_grad", "set_grad_enabled",
           "is_grad_enabled", "forward_ad"]


def _as_tuple(x, what):
    if isinstance(x, Tensor):
        return (x,)
    if isinstance(x, (list, tuple)):
        for i, t in enumerate(x):
            if not isinstance(t, Tensor):
                raise TypeError("%s[%d] must be a Tensor, got %s" % (what, i,
                                                                    type(t).__name__))
        return tuple(x)
    raise TypeError("%s must be a Tensor or a sequence of Tensors, got %s"
                    % (what, type(x).__name__))


def _grad_list(grads, roots, what):
    """Returns: None (every root gets ones) or one Tensor per root: a root with no grad
    given gets ones_like (only for one-element roots, like PyTorch)."""
    if grads is None:
        return None
    if isinstance(grads, Tensor) or _client.is_scalar(grads):
        grads = (grads,)
    grads = list(grads)
    if len(grads) != len(roots):
        raise RuntimeError("%s should be a sequence of length %d, got %d"
                           % (what, len(roots), len(grads)))
    if all(g is None for g in grads):
        return None
    out = []
    with no_grad():
        for i, (g, r) in enumerate(zip(grads, roots)):
            if g is None:
                if r.numel() != 1:
                    raise RuntimeError("grad can be implicitly created only for scalar "
                                       "outputs (element %d has %d elements)"
                                       % (i, r.numel()))
                g = r._op("ones_like")
            elif not isinstance(g, Tensor):
                if not _client.is_scalar(g):
                    raise TypeError("%s[%d] must be a Tensor or None, got %s"
                                    % (what, i, type(g).__name__))
                g = r._op("full_like", fill_value=g)
            out.append(g)
    return out


def _check_roots(roots):
    for i, r in enumerate(roots):
        rg, exact = r._rg_state()
        if exact and not rg:
            raise RuntimeError("element %d of tensors does not require grad and does not "
                               "have a grad_fn" % i)


def _run_backward(roots, grads, inputs, retain_graph, create_graph, allow_unused):
    c = roots[0]._client
    ins = list(roots) + list(grads or ()) + list(inputs)
    attrs = {"nroots": len(roots), "ngrad": len(grads) if grads else 0,
             "retain_graph": bool(retain_graph), "create_graph": bool(create_graph),
             "allow_unused": bool(allow_unused)}
    return c.run_op("backward", ins, attrs, noutputs=len(inputs))


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False,
             inputs=None):
    """Accumulates the gradients of `tensors` (weighted by grad_tensors; None for a
    one-element root means 1) into the .grad of the leaves they depend on, or only of
    `inputs` when given. retain_graph (default: create_graph) keeps the graph for another
    backward; create_graph records the gradient computation (higher-order derivatives).
    Queued, not waited for (except with inputs=, which reads the existing .grad)."""
    roots = _as_tuple(tensors, "tensors")
    if not roots:
        raise RuntimeError("backward: no tensors to differentiate")
    if retain_graph is None:
        retain_graph = create_graph
    _check_roots(roots)
    grads = _grad_list(grad_tensors, roots, "grad_tensors")
    if inputs is None:
        _run_backward(roots, grads, (), retain_graph, create_graph, False)
        return
    ins = _as_tuple(inputs, "inputs")
    if not ins:
        raise RuntimeError("backward: inputs= must not be empty")
    outs = _run_backward(roots, grads, ins, retain_graph, create_graph, True)
    c = roots[0]._client
    for x, g in zip(ins, outs):
        if not c._resolve_defined(g):
            continue
        old = x.grad
        with set_grad_enabled(create_graph):
            x.grad = g if old is None else old + g


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=None, materialize_grads=False):
    """Gradients of `outputs` (weighted by grad_outputs) with respect to each of `inputs`,
    without touching any .grad. Returns: a tuple with one Tensor per input (None for an
    input the outputs do not depend on, which needs allow_unused; zeros instead with
    materialize_grads). retain_graph defaults to create_graph; create_graph makes the
    results differentiable. Queued without waiting unless allow_unused."""
    roots = _as_tuple(outputs, "outputs")
    ins = _as_tuple(inputs, "inputs")
    if not roots:
        raise RuntimeError("grad: no outputs to differentiate")
    if not ins:
        raise RuntimeError("grad requires non-empty inputs")
    if allow_unused is None:
        allow_unused = materialize_grads
    if materialize_grads and not allow_unused:
        raise ValueError("Expected allow_unused to be True or not passed when "
                         "materialize_grads=True")
    if retain_graph is None:
        retain_graph = create_graph
    _check_roots(roots)
    for i, x in enumerate(ins):
        rg, exact = x._rg_state()
        if exact and not rg:
            raise RuntimeError("One of the differentiated Tensors does not require grad "
                               "(input %d)" % i)
    grads = _grad_list(grad_outputs, roots, "grad_outputs")
    outs = _run_backward(roots, grads, ins, retain_graph, create_graph, allow_unused)
    if not allow_unused:
        return tuple(outs)
    c = roots[0]._client
    res = []
    for x, g in zip(ins, outs):
        if c._resolve_defined(g):
            res.append(g)
        elif materialize_grads:
            with no_grad():
                res.append(x._op("zeros_like"))
        else:
            res.append(None)
    return tuple(res)
