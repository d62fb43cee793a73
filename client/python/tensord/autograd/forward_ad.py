"""tensord.autograd.forward_ad: forward-mode AD with dual tensors (like
torch.autograd.forward_ad). The daemon holds one dual level at a time (nesting is refused).

    with forward_ad.dual_level():
        x = forward_ad.make_dual(primal, tangent)
        y = f(x)
        value, jvp = forward_ad.unpack_dual(y)
"""
import collections

from ..tensor import Tensor
from .. import client as _client

__all__ = ["dual_level", "enter_dual_level", "exit_dual_level", "make_dual", "unpack_dual",
           "UnpackedDualTensor"]


class UnpackedDualTensor(collections.namedtuple("UnpackedDualTensor", "primal tangent")):
    """unpack_dual's result: the primal (a view without the tangent) and the tangent at
    the active level (None when the tensor has none)."""


def enter_dual_level(client=None):
    """Starts the dual level (queued; the daemon refuses a nested one). Returns: 0."""
    c = client or _client.default_client()
    c.run_op("enter_dual_level", (), {}, noutputs=0)
    return 0


def exit_dual_level(*, level=None, client=None):
    """Ends the dual level; its tangents are dropped."""
    c = client or _client.default_client()
    c.run_op("exit_dual_level", (), {}, noutputs=0)


class dual_level:  # noqa: N801 - PyTorch naming
    """Context manager: enter_dual_level on entry (yielding the level, 0), exit on exit."""

    def __init__(self, client=None):
        self._client = client

    def __enter__(self):
        return enter_dual_level(self._client)

    def __exit__(self, *exc):
        exit_dual_level(client=self._client)
        return False


def make_dual(tensor, tangent, *, level=None):
    """Returns: a view of `tensor` carrying `tangent` (same shape and dtype) at the active
    dual level."""
    if not isinstance(tensor, Tensor) or not isinstance(tangent, Tensor):
        raise TypeError("make_dual expects Tensors (primal, tangent)")
    return tensor._client.run_op("make_dual", (tensor, tangent), {})[0]


def unpack_dual(tensor, *, level=None):
    """Returns: UnpackedDualTensor(primal, tangent); tangent None when the tensor has none
    at the active level. Waits for the daemon to know whether the tangent exists."""
    if not isinstance(tensor, Tensor):
        raise TypeError("unpack_dual expects a Tensor")
    c = tensor._client
    primal = c.run_op("dual_primal", (tensor,), {})[0]
    tangent = c.run_op("dual_tangent", (tensor,), {})[0]
    if not c._resolve_defined(tangent):
        tangent = None
    return UnpackedDualTensor(primal, tangent)
