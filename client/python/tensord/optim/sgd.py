"""SGD with momentum, dampening, weight decay, Nesterov momentum and maximize
(torch.optim.SGD), one fused sgd_step node per parameter group."""
from .. import ops as _ops
from .optimizer import Optimizer, required

__all__ = ["SGD"]


class SGD(Optimizer):
    """For each parameter p with gradient g (negated when maximize):
        g = g + weight_decay * p
        b = g on the first step, else momentum * b + (1 - dampening) * g   (momentum != 0)
        g = g + momentum * b with nesterov, else b
        p = p - lr * g
    computed in the daemon; parameters without a .grad are skipped."""

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False, *, maximize=False):
        if lr is not required and lr < 0.0:
            raise ValueError("Invalid learning rate: %s" % lr)
        if momentum < 0.0:
            raise ValueError("Invalid momentum value: %s" % momentum)
        if weight_decay < 0.0:
            raise ValueError("Invalid weight_decay value: %s" % weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _step_group(self, g):
        params = g["params"]
        if not params:
            return
        attrs = dict(lr=float(g["lr"]), momentum=float(g["momentum"]),
                     dampening=float(g["dampening"]),
                     weight_decay=float(g["weight_decay"]),
                     nesterov=bool(g["nesterov"]), maximize=bool(g["maximize"]))
        if g["momentum"] == 0:
            _ops.op("sgd_step", list(params), nparams=len(params), first_step=False, **attrs)
            return
        fresh, old = [], []
        for p in params:
            st = self.state[p]
            if st.get("momentum_buffer") is None:
                st["momentum_buffer"] = _ops.zeros_like(p)
                fresh.append(p)
            else:
                old.append(p)
        for ps, first in ((old, False), (fresh, True)):
            if ps:
                bufs = [self.state[p]["momentum_buffer"] for p in ps]
                _ops.op("sgd_step", ps + bufs, nparams=len(ps), first_step=first, **attrs)
