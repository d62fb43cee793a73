"""Optimizer: the base of tensord's optimizers (torch.optim.Optimizer).

An optimizer keeps PyTorch's param_groups (a list of dicts holding 'params' and the
hyperparameters) and per-parameter state (daemon tensors such as momentum buffers, created
lazily with zeros_like on the first step). step() queues one fused update node per
parameter group (sgd_step, adam_step): the daemon reads every parameter's .grad itself and
updates parameters and state in place, so a step costs no round trip and moves no data.
"""
import collections
import copy
import numbers

import numpy as np

from .. import ops as _ops
from ..tensor import Tensor

__all__ = ["Optimizer", "required"]


class _Required:
    def __repr__(self):
        return "<required parameter>"


required = _Required()


def _no_grad():
    import tensord
    return tensord.no_grad()


class Optimizer:
    """Base class: Optimizer(params, defaults). params is an iterable of Tensors or of
    dicts (parameter groups: 'params' plus hyperparameters overriding defaults)."""

    def __init__(self, params, defaults):
        self.defaults = defaults
        self.state = collections.defaultdict(dict)
        self.param_groups = []
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable "
                            "of Tensors or dicts, but got Tensor")
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def __getstate__(self):
        raise TypeError("tensord optimizers cannot be pickled; use td.save(opt.state_dict())")

    def __repr__(self):
        s = type(self).__name__ + " ("
        for i, g in enumerate(self.param_groups):
            s += "\nParameter Group %d" % i
            for k in sorted(g):
                if k != "params":
                    s += "\n    %s: %s" % (k, g[k])
        return s + "\n)"

    def add_param_group(self, param_group):
        """Adds a group: {'params': tensors, hyperparameter: value...}; hyperparameters
        it omits take the optimizer's defaults."""
        if not isinstance(param_group, dict):
            raise TypeError("param_group must be a dict, but got %s"
                            % type(param_group).__name__)
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered "
                            "collections, but the ordering of tensors in sets will change "
                            "between runs. Please use a list instead.")
        else:
            params = list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError("optimizer can only optimize Tensors, but one of the params "
                                "is %s" % type(p).__name__)
        group = dict(param_group)
        group["params"] = params
        for k, v in self.defaults.items():
            if v is required and k not in group:
                raise ValueError("parameter group didn't specify a value of required "
                                 "optimization parameter %s" % k)
            group.setdefault(k, v)
        if len({id(p) for p in params}) != len(params):
            raise ValueError("optimizer contains a parameter group with duplicate "
                             "parameters")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        """Clears the .grad of every parameter (set_grad ops queued without waiting); with
        set_to_none=False existing gradients are zeroed in place instead."""
        from ..nn.modules import _zero_grads
        _zero_grads([p for g in self.param_groups for p in g["params"]], set_to_none)

    def step(self, closure=None):
        """Queues the update of every parameter group (one fused op node per group, under
        no_grad, without waiting). Returns: the closure's loss, if a closure is given."""
        loss = self._run_closure(closure)
        with _no_grad():
            for g in self.param_groups:
                self._step_group(g)
        return loss

    def _step_group(self, group):
        raise NotImplementedError("%s does not implement _step_group()" % type(self).__name__)

    def _run_closure(self, closure):
        if closure is None:
            return None
        import tensord
        enable = getattr(tensord, "enable_grad", None)
        if enable is None:
            return closure()
        with enable():
            return closure()

    # ---- state_dict ------------------------------------------------------------------
    def state_dict(self):
        """{'state': {index: {name: tensor or number}}, 'param_groups': [{hyperparameters,
        'params': [indices]}]}, indices numbering the parameters across groups in order,
        like PyTorch. State tensors are the optimizer's own (not copies)."""
        index = {}
        groups = []
        for g in self.param_groups:
            packed = {k: v for k, v in g.items() if k != "params"}
            ids = []
            for p in g["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            packed["params"] = ids
            groups.append(packed)
        state = {}
        for g in self.param_groups:
            for p in g["params"]:
                if p in self.state and self.state[p]:
                    state[index[id(p)]] = dict(self.state[p])
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restores hyperparameters and state saved by state_dict() (tensord Tensors,
        NumPy arrays or numbers; tensors are copied into new daemon tensors)."""
        groups = self.param_groups
        saved = state_dict["param_groups"]
        if len(groups) != len(saved):
            raise ValueError("loaded state dict has a different number of parameter groups")
        for g, s in zip(groups, saved):
            if len(g["params"]) != len(s["params"]):
                raise ValueError("loaded state dict contains a parameter group that doesn't "
                                 "match the size of optimizer's group")
        id_map = {}
        for g, s in zip(groups, saved):
            for i, p in zip(s["params"], g["params"]):
                id_map[int(i)] = p
        new_state = collections.defaultdict(dict)
        for k, v in state_dict["state"].items():
            k = int(k)
            if k not in id_map:
                continue
            p = id_map[k]
            new_state[p] = {name: self._load_value(p, name, val) for name, val in v.items()}
        new_groups = []
        for g, s in zip(groups, saved):
            ng = {k: copy.deepcopy(v) for k, v in s.items() if k != "params"}
            ng["params"] = g["params"]
            new_groups.append(ng)
        self.state = new_state
        self.param_groups = new_groups

    def _load_value(self, param, name, val):
        if name == "step":
            return _as_number(val)
        if isinstance(val, Tensor):
            return _ops.op("clone", val)
        if isinstance(val, np.ndarray):
            return _ops.tensor(val)
        return val


def _as_number(v):
    if isinstance(v, Tensor):
        v = v.item()
    elif isinstance(v, np.ndarray):
        v = v.reshape(()).item()
    if isinstance(v, numbers.Real) and float(v) == int(v):
        return int(v)
    return v
