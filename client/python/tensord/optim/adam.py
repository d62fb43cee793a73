"""Adam and AdamW (torch.optim.Adam / AdamW) with amsgrad and maximize, one fused
adam_step node per parameter group."""
from .. import ops as _ops
from .optimizer import Optimizer

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """For each parameter p with gradient g (negated when maximize), at step t:
        g = g + weight_decay * p            (Adam; AdamW instead p = p * (1 - lr * wd))
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g^2
        vmax = max(vmax, v)                 (amsgrad; used in place of v below)
        p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    computed in the daemon; parameters without a .grad are skipped (their step count
    still advances with their group, as the client does not wait to learn which had
    one)."""

    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, maximize=False):
        if not 0.0 <= lr:
            raise ValueError("Invalid learning rate: %s" % lr)
        if not 0.0 <= eps:
            raise ValueError("Invalid epsilon value: %s" % eps)
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError("Invalid beta parameter at index 0: %s" % betas[0])
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError("Invalid beta parameter at index 1: %s" % betas[1])
        if not 0.0 <= weight_decay:
            raise ValueError("Invalid weight_decay value: %s" % weight_decay)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize)
        super().__init__(params, defaults)

    def _step_group(self, g):
        amsgrad = bool(g["amsgrad"])
        buckets = {}
        for p in g["params"]:
            st = self.state[p]
            if "step" not in st:
                st["step"] = 0
                st["exp_avg"] = _ops.zeros_like(p)
                st["exp_avg_sq"] = _ops.zeros_like(p)
            if amsgrad and st.get("max_exp_avg_sq") is None:
                st["max_exp_avg_sq"] = _ops.zeros_like(p)
            st["step"] += 1
            buckets.setdefault(st["step"], []).append(p)
        b1, b2 = g["betas"]
        for step, ps in buckets.items():
            ins = list(ps)
            ins += [self.state[p]["exp_avg"] for p in ps]
            ins += [self.state[p]["exp_avg_sq"] for p in ps]
            if amsgrad:
                ins += [self.state[p]["max_exp_avg_sq"] for p in ps]
            _ops.op("adam_step", ins, nparams=len(ps), lr=float(g["lr"]), beta1=float(b1),
                    beta2=float(b2), eps=float(g["eps"]),
                    weight_decay=float(g["weight_decay"]), amsgrad=amsgrad,
                    decoupled_weight_decay=self._decoupled, maximize=bool(g["maximize"]),
                    step=int(step))


class AdamW(Adam):
    """Adam with decoupled weight decay (p = p * (1 - lr * weight_decay) before the
    update); weight_decay defaults to 1e-2 as in PyTorch."""

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)
