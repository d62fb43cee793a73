"""Parameter: a leaf tensor in the daemon that requires grad (torch.nn.Parameter)."""
from .. import ops as _ops
from ..tensor import Tensor

__all__ = ["Parameter", "Buffer"]


class Parameter(Tensor):
    """A Tensor that a Module registers as a parameter when assigned as an attribute.

    Parameter(data) is a new leaf sharing data's storage in the daemon (a detached view,
    like torch.nn.Parameter), marked as requiring grad unless requires_grad=False. data
    may be a Tensor or array data (uploaded). Nothing waits for the daemon.
    """

    __slots__ = ()

    def __new__(cls, data=None, requires_grad=True):
        if data is None:
            data = _ops.empty(0)
        elif not isinstance(data, Tensor):
            data = _ops.tensor(data)
        t = data.detach()
        t.__class__ = cls
        if requires_grad:
            t.requires_grad_(True)
        return t

    def __init__(self, data=None, requires_grad=True):
        # The object is fully built by __new__ (Tensor.__init__ takes daemon ids).
        pass

    def __repr__(self):
        return "Parameter containing:\n" + Tensor.__repr__(self)

    def __str__(self):
        return "Parameter containing:\n" + Tensor.__str__(self)

    def __reduce__(self):
        raise TypeError("tensord.nn.Parameter cannot be pickled; use td.save(state_dict)")


class Buffer:
    """Marks a tensor assigned to a Module attribute as a buffer (torch.nn.Buffer):
    `self.running = td.nn.Buffer(t)` is `self.register_buffer("running", t)`."""

    __slots__ = ("data", "persistent")

    def __init__(self, data, persistent=True):
        if not isinstance(data, Tensor):
            data = _ops.tensor(data)
        self.data = data
        self.persistent = bool(persistent)
