"""tensord.nn.init: PyTorch's torch.nn.init, computed in the daemon.

Each function fills its tensor in place (copy_ under no_grad, so parameters can be
initialised) with numbers drawn by the daemon's session generator (rand/randn ops): the
values are reproducible from the session seed (td.connect(seed=...)) and never travel
over the wire. Returns the tensor, like PyTorch.
"""
import math
import numbers

from .. import ops as _ops
from ..ops import op as _op

__all__ = [
    "calculate_gain", "uniform_", "normal_", "constant_", "zeros_", "ones_", "eye_",
    "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
    "trunc_normal_",
]


def _no_grad():
    import tensord
    return tensord.no_grad()


def _fill(tensor, value):
    with _no_grad():
        tensor.copy_(value)
    return tensor


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for a nonlinearity (PyTorch's table)."""
    linear_fns = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                  "conv_transpose2d", "conv_transpose3d")
    if nonlinearity in linear_fns or nonlinearity == "sigmoid":
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, numbers.Real) and not isinstance(param, bool):
            slope = float(param)
        else:
            raise ValueError("negative_slope %r not a valid number" % (param,))
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError("Unsupported nonlinearity %s" % (nonlinearity,))


def _calculate_fan_in_and_fan_out(tensor):
    shape = tensor.shape
    if len(shape) < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than "
                         "2 dimensions")
    receptive = 1
    for s in shape[2:]:
        receptive *= s
    return shape[1] * receptive, shape[0] * receptive


def _fan(tensor, mode):
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError("Mode %s not supported, please use one of fan_in, fan_out" % mode)
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(tensor, a=0.0, b=1.0):
    """Fills tensor with U(a, b)."""
    return _fill(tensor, _ops.rand_like(tensor) * (b - a) + a)


def normal_(tensor, mean=0.0, std=1.0):
    """Fills tensor with N(mean, std^2)."""
    return _fill(tensor, _ops.randn_like(tensor) * std + mean)


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0):
    """N(mean, std^2) restricted to [a, b]: values outside are redrawn (8 rounds, each
    keeps at least the in-range share of the draws), and what is still outside after
    that (probability below 1e-6 per element for the default bounds) is clamped."""
    x = _ops.randn_like(tensor) * std + mean
    for _ in range(8):
        out = _op("logical_or", _op("lt", x, a), _op("gt", x, b))
        x = _op("where", out, _ops.randn_like(tensor) * std + mean, x)
    return _fill(tensor, _op("clamp", x, min=a, max=b))


def constant_(tensor, val):
    return _fill(tensor, val)


def zeros_(tensor):
    return _fill(tensor, 0)


def ones_(tensor):
    return _fill(tensor, 1)


def eye_(tensor):
    shape = tensor.shape
    if len(shape) != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    return _fill(tensor, _op("eye", n=shape[0], m=shape[1], dtype=tensor.dtype))


def xavier_uniform_(tensor, gain=1.0):
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    a = gain * math.sqrt(6.0 / float(fan_in + fan_out))
    return uniform_(tensor, -a, a)


def xavier_normal_(tensor, gain=1.0):
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / float(fan_in + fan_out)))


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    """U(-bound, bound), bound = gain * sqrt(3 / fan); PyTorch's Linear and Conv2d use
    a=sqrt(5), which gives bound = 1 / sqrt(fan_in)."""
    fan = _fan(tensor, mode)
    if fan == 0:
        return tensor
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    fan = _fan(tensor, mode)
    if fan == 0:
        return tensor
    return normal_(tensor, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(fan))
