"""tensord.nn.functional: PyTorch's torch.nn.functional over daemon ops.

Every function queues ops in the daemon and returns at once (see the package doc on
asynchronous execution); nothing here downloads data. Argument names and defaults follow
PyTorch. Options PyTorch has and tensord does not (max_norm of embedding, padding modes
other than zeros) raise NotImplementedError instead of being ignored.
"""
import math
import numbers

from ..ops import op as _op
from ..tensor import Tensor

__all__ = [
    "linear", "conv2d", "max_pool2d", "avg_pool2d", "relu", "gelu", "tanh", "sigmoid",
    "softmax", "log_softmax", "dropout", "embedding", "layer_norm", "flatten", "mse_loss",
    "l1_loss", "nll_loss", "cross_entropy", "binary_cross_entropy_with_logits",
    "interpolate", "upsample", "upsample_nearest", "upsample_bilinear", "adaptive_avg_pool1d",
    "adaptive_avg_pool2d", "adaptive_avg_pool3d",
]

_REDUCTIONS = ("none", "mean", "sum")


def _pair(v, name):
    if isinstance(v, numbers.Integral) and not isinstance(v, bool):
        return [int(v), int(v)]
    v = [int(x) for x in v]
    if len(v) == 1:
        return v * 2
    if len(v) != 2:
        raise ValueError("%s must be an int or a pair of ints, got %r" % (name, v))
    return v


def _check_reduction(reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError("%r is not a valid value for reduction (none, mean or sum)"
                         % (reduction,))


def _reduce(loss, reduction):
    if reduction == "mean":
        return _op("mean", loss)
    if reduction == "sum":
        return _op("sum", loss)
    return loss


# ---- layers --------------------------------------------------------------------------
def linear(input, weight, bias=None):
    """y = input @ weight.T + bias (weight: out_features x in_features)."""
    if bias is None:
        return _op("linear", input, weight)
    return _op("linear", input, weight, bias)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-d cross-correlation of (N, C, H, W) or (C, H, W) input with a
    (out_channels, in_channels/groups, kH, kW) weight. padding: int, pair, "valid", or
    "same" (stride 1; the total padding per dim must be even, as tensord pads
    symmetrically)."""
    stride = _pair(stride, "stride")
    dilation = _pair(dilation, "dilation")
    if isinstance(padding, str):
        if padding == "valid":
            padding = [0, 0]
        elif padding == "same":
            if stride != [1, 1]:
                raise ValueError("padding='same' is not supported for strided convolutions")
            kh, kw = weight.shape[-2:]
            tot = [dilation[0] * (kh - 1), dilation[1] * (kw - 1)]
            if tot[0] % 2 or tot[1] % 2:
                raise NotImplementedError(
                    "padding='same' needs asymmetric padding for kernel %dx%d with "
                    "dilation %s; tensord's conv2d pads symmetrically" % (kh, kw, dilation))
            padding = [tot[0] // 2, tot[1] // 2]
        else:
            raise ValueError("invalid padding string %r, should be one of valid, same"
                             % (padding,))
    else:
        padding = _pair(padding, "padding")
    ins = [input, weight] if bias is None else [input, weight, bias]
    return _op("conv2d", *ins, stride=stride, padding=padding, dilation=dilation,
               groups=int(groups))


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """2-d max pooling. Returns: the pooled values, or (values, indices) with
    return_indices (indices into each flattened H*W plane, like PyTorch)."""
    k = _pair(kernel_size, "kernel_size")
    s = k if stride is None or (not isinstance(stride, numbers.Integral) and
                                len(stride) == 0) else _pair(stride, "stride")
    values, indices = _op("max_pool2d", input, kernel_size=k, stride=s,
                          padding=_pair(padding, "padding"),
                          dilation=_pair(dilation, "dilation"), ceil_mode=bool(ceil_mode))
    if return_indices:
        return values, indices
    return values


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """2-d average pooling."""
    k = _pair(kernel_size, "kernel_size")
    s = k if stride is None or (not isinstance(stride, numbers.Integral) and
                                len(stride) == 0) else _pair(stride, "stride")
    return _op("avg_pool2d", input, kernel_size=k, stride=s,
               padding=_pair(padding, "padding"), ceil_mode=bool(ceil_mode),
               count_include_pad=bool(count_include_pad),
               divisor_override=None if divisor_override is None else int(divisor_override))


def relu(input, inplace=False):
    return _op("relu", input)


def gelu(input, approximate="none"):
    if approximate not in ("none", "tanh"):
        raise ValueError("approximate must be 'none' or 'tanh', got %r" % (approximate,))
    return _op("gelu", input, approximate=approximate)


def tanh(input):
    return _op("tanh", input)


def sigmoid(input):
    return _op("sigmoid", input)


def _softmax_dim(dim, name):
    if dim is None:
        raise TypeError("%s() needs dim (tensord has no implicit-dim legacy rule)" % name)
    return int(dim)


def softmax(input, dim=None, dtype=None):
    if dtype is not None:
        input = _op("cast", input, dtype=dtype)
    return _op("softmax", input, dim=_softmax_dim(dim, "softmax"))


def log_softmax(input, dim=None, dtype=None):
    if dtype is not None:
        input = _op("cast", input, dtype=dtype)
    return _op("log_softmax", input, dim=_softmax_dim(dim, "log_softmax"))


def dropout(input, p=0.5, training=True, inplace=False):
    """Zeroes each element with probability p and scales the rest by 1/(1-p) when
    training; the input itself otherwise. The mask comes from the session generator."""
    if not 0.0 <= p <= 1.0:
        raise ValueError("dropout probability has to be between 0 and 1, but got %r" % (p,))
    if not training or p == 0.0:
        return input
    out, _mask = _op("dropout", input, p=float(p), train=True)
    return out


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
              scale_grad_by_freq=False, sparse=False):
    """Rows of weight at the integer indices of input (any shape). padding_idx rows get
    no gradient."""
    if max_norm is not None:
        raise NotImplementedError("embedding: max_norm is not supported by tensord")
    if scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding: scale_grad_by_freq and sparse are not "
                                  "supported by tensord")
    if padding_idx is not None and padding_idx < 0:
        n = weight.shape[0]
        if padding_idx < -n:
            raise ValueError("padding_idx must be within num_embeddings")
        padding_idx += n
    return _op("embedding", weight, input, padding_idx=padding_idx)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalises over the trailing dims normalized_shape, then scales and shifts."""
    if isinstance(normalized_shape, numbers.Integral):
        normalized_shape = [int(normalized_shape)]
    ns = [int(s) for s in normalized_shape]
    if weight is None and bias is not None:
        weight = _op("ones", shape=ns, dtype=bias.dtype)
    ins = [input]
    if weight is not None:
        ins.append(weight)
        if bias is not None:
            ins.append(bias)
    y, _mean, _rstd = _op("layer_norm", *ins, normalized_shape=ns, eps=float(eps))
    return y


def flatten(input, start_dim=0, end_dim=-1):
    return _op("flatten", input, start_dim=start_dim, end_dim=end_dim)


# ---- losses --------------------------------------------------------------------------
def mse_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    _check_reduction(reduction)
    d = input - target
    return _reduce(d * d, reduction)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    _check_reduction(reduction)
    return _reduce(abs(input - target), reduction)


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    """Negative log likelihood of class-index targets: input (N, C, ...) log-probabilities,
    target (N, ...) int64. weight: per-class weights (mean divides by the summed weights
    of the counted targets); targets equal to ignore_index count nothing."""
    _check_reduction(reduction)
    ins = [input, target] if weight is None else [input, target, weight]
    return _op("nll_loss", *ins, reduction=reduction, ignore_index=int(ignore_index))


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100,
                  reduce=None, reduction="mean", label_smoothing=0.0):
    """log_softmax over dim 1 (dim 0 for unbatched input) then nll_loss; a floating
    target of the input's shape is read as class probabilities (a target whose meta is
    still pending is taken as class indices without waiting; see _is_probabilities)."""
    _check_reduction(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError("label_smoothing must be between 0.0 and 1.0, got %r"
                         % (label_smoothing,))
    # The class dim is 1 (0 for unbatched input), which for the (N, C) and (C,) inputs that
    # nll_loss takes is the last dim: while the input's meta is pending (it was just
    # computed), dim -1 avoids waiting for it, and nll_loss rejects other ranks.
    nd = _known_ndim(input)
    cdim = -1 if nd is None else (0 if nd == 1 else 1)
    logp = log_softmax(input, cdim)
    if _is_probabilities(target):
        # Class probabilities: -sum_c w_c * t_c * logp_c, mean over the batch elements.
        cdim = 0 if input.ndim == 1 else 1
        nclass = input.shape[cdim]
        if label_smoothing:
            target = target * (1.0 - label_smoothing) + label_smoothing / nclass
        prod = logp * target
        if weight is not None:
            wshape = [1] * input.ndim
            wshape[cdim] = nclass
            prod = prod * _op("reshape", weight, shape=wshape)
        loss = -_op("sum", prod, dim=[cdim])
        if reduction == "mean":
            n = input.numel() // nclass
            return _op("sum", loss) / n
        return _reduce(loss, reduction)
    if label_smoothing:
        return _smoothed_nll(logp, target, weight, ignore_index, reduction,
                             label_smoothing, cdim)
    return nll_loss(logp, target, weight, ignore_index=ignore_index, reduction=reduction)


def _known_ndim(t):
    """t's rank when its meta is already known (an upload, or a read reply), else None;
    never waits for the daemon."""
    if isinstance(t, Tensor) and t._shape is not None:
        return len(t._shape)
    return None


def _is_probabilities(target):
    # PyTorch reads a floating target as class probabilities. A target whose meta is
    # still pending (made by an op whose reply has not been read) is taken as class
    # indices without waiting for it; nll_loss rejects a floating one with an error.
    if not isinstance(target, Tensor) or target._dtype is None:
        return False
    return target._dtype.kind in "fc"


def _smoothed_nll(logp, target, weight, ignore_index, reduction, eps, cdim):
    # PyTorch: (1 - eps) * nll + eps * smooth, smooth = -sum_c(w_c * logp_c) / C per element,
    # ignored targets count 0; mean divides both by the same denominator as nll's mean
    # (the summed weight of the counted targets, or their number without weights).
    nclass = logp.shape[cdim]
    nll = nll_loss(logp, target, weight, ignore_index=ignore_index, reduction="none")
    lw = logp
    if weight is not None:
        wshape = [1] * logp.ndim
        wshape[cdim] = nclass
        lw = logp * _op("reshape", weight, shape=wshape)
    smooth = -_op("sum", lw, dim=[cdim]) / nclass
    keep = _op("ne", target, ignore_index)
    smooth = _op("where", keep, smooth, 0.0)
    loss = nll * (1.0 - eps) + smooth * eps
    if reduction == "none":
        return loss
    total = _op("sum", loss)
    if reduction == "sum":
        return total
    if weight is None:
        denom = _op("sum", keep)
    else:
        safe = _op("where", keep, target, 0)
        wt = _op("index_select", weight, _op("reshape", safe, shape=[-1]), dim=0)
        denom = _op("sum", _op("where", _op("reshape", keep, shape=[-1]), wt, 0.0))
    return total / denom


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None,
                                     reduce=None, reduction="mean", pos_weight=None):
    """Sigmoid + binary cross entropy in the stable form
    max(x, 0) - x*y + log1p(exp(-|x|)); with pos_weight p:
    (1 - y)*x + (1 + (p - 1)*y) * (log1p(exp(-|x|)) + max(-x, 0))."""
    _check_reduction(reduction)
    x, y = input, target
    soft = _op("log1p", _op("exp", -abs(x)))
    if pos_weight is None:
        loss = _op("relu", x) - x * y + soft
    else:
        lw = (pos_weight - 1) * y + 1
        loss = (1 - y) * x + lw * (soft + _op("relu", -x))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


# ---- interpolation (server/engine/ops_interp.c) ----------------------------------------
def _adaptive_size(input, output_size, n, name):
    if isinstance(output_size, numbers.Integral) and not isinstance(output_size, bool):
        sizes = [int(output_size)] * n
    else:
        sizes = list(output_size)
        if len(sizes) != n:
            raise ValueError("%s: output_size must have %d elements, got %r"
                             % (name, n, output_size))
    if any(s is None for s in sizes):
        shape = input.shape
        sizes = [shape[len(shape) - n + i] if s is None else s for i, s in enumerate(sizes)]
    return [int(s) for s in sizes]


def adaptive_avg_pool1d(input, output_size):
    """Adaptive average pooling over the last dim of [N, C, L] or [C, L]."""
    return _op("adaptive_avg_pool", input,
               output_size=_adaptive_size(input, output_size, 1, "adaptive_avg_pool1d"))


def adaptive_avg_pool2d(input, output_size):
    """Adaptive average pooling over the last two dims (None keeps that dim's size)."""
    return _op("adaptive_avg_pool", input,
               output_size=_adaptive_size(input, output_size, 2, "adaptive_avg_pool2d"))


def adaptive_avg_pool3d(input, output_size):
    """Adaptive average pooling over the last three dims (None keeps that dim's size)."""
    return _op("adaptive_avg_pool", input,
               output_size=_adaptive_size(input, output_size, 3, "adaptive_avg_pool3d"))


_INTERP_OPS = {("nearest", 3): "n", ("nearest", 4): "n", ("nearest", 5): "n",
               ("nearest-exact", 3): "x", ("nearest-exact", 4): "x", ("nearest-exact", 5): "x",
               ("area", 3): "a", ("area", 4): "a", ("area", 5): "a",
               ("linear", 3): "l", ("bilinear", 4): "l", ("trilinear", 5): "l",
               ("bicubic", 4): "c"}
_INTERP_RANK = {"linear": 3, "bilinear": 4, "trilinear": 5}


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """torch.nn.functional.interpolate: resizes [N, C, *spatial] (1 to 3 spatial dims).

    Same arguments, checks and index rules as PyTorch: with scale_factor the output size is
    floor(in * scale_factor) and the kernel uses 1 / scale_factor as its scale (unless
    recompute_scale_factor is True, then in / out); mode 'area' is adaptive average pooling;
    antialias (bilinear, bicubic on 4-d input) is Pillow's filter widened when downsampling.
    """
    if mode in ("nearest", "area", "nearest-exact"):
        if align_corners is not None:
            raise ValueError("align_corners option can only be set with the interpolating "
                             "modes: linear | bilinear | bicubic | trilinear")
    elif align_corners is None:
        align_corners = False
    nd = input.dim()
    dim = nd - 2
    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    if size is not None:
        scale_factors = None
        if isinstance(size, (list, tuple)):
            if len(size) != dim:
                raise ValueError(
                    "Input and output must have the same number of spatial dimensions, but "
                    "got input with spatial dimensions of %s and output size of %s. Please "
                    "provide input tensor in (N, C, d1, d2, ...,dK) format and output size in "
                    "(o1, o2, ...,oK) format." % (list(input.shape[2:]), size))
            if not all(isinstance(s, numbers.Integral) for s in size):
                raise TypeError("expected size to be one of int or Tuple[int] or Tuple[int, "
                                "int] or Tuple[int, int, int], but got size with types %s"
                                % ([type(s) for s in size],))
            output_size = [int(s) for s in size]
        else:
            output_size = [int(size)] * dim
    elif scale_factor is not None:
        output_size = None
        if isinstance(scale_factor, (list, tuple)):
            if len(scale_factor) != dim:
                raise ValueError(
                    "Input and scale_factor must have the same number of spatial dimensions, "
                    "but got input with spatial dimensions of %s and scale_factor of shape %s."
                    " Please provide input tensor in (N, C, d1, d2, ...,dK) format and "
                    "scale_factor in (s1, s2, ...,sK) format."
                    % (list(input.shape[2:]), scale_factor))
            scale_factors = [float(s) for s in scale_factor]
        else:
            scale_factors = [float(scale_factor)] * dim
    else:
        raise ValueError("either size or scale_factor should be defined")
    if recompute_scale_factor is not None and recompute_scale_factor and size is not None:
        raise ValueError("recompute_scale_factor is not meaningful with an explicit size.")
    if mode == "area" and output_size is None:
        recompute_scale_factor = True
    if scale_factors is not None:
        shape = input.shape
        output_size = [math.floor(float(shape[i + 2]) * scale_factors[i]) for i in range(dim)]
        if recompute_scale_factor is not None and recompute_scale_factor:
            scale_factors = None
    if antialias and not (mode in ("bilinear", "bicubic") and nd == 4):
        raise ValueError("Anti-alias option is restricted to bilinear and bicubic modes and "
                         "requires a 4-D tensor as input")
    kind = _INTERP_OPS.get((mode, nd))
    if kind is None:
        want = _INTERP_RANK.get(mode)
        if want is not None and nd in (3, 4, 5):
            raise NotImplementedError("Got %dD input, but %s mode needs %dD input"
                                      % (nd, mode, want))
        raise NotImplementedError(
            "Input Error: Only 3D, 4D and 5D input Tensors supported (got %dD) for the modes: "
            "nearest | linear | bilinear | bicubic | trilinear | area | nearest-exact "
            "(got %s)" % (nd, mode))
    if kind == "a":
        return _op("adaptive_avg_pool", input, output_size=output_size)
    attrs = {"size": output_size}
    if scale_factors is not None:
        for i, s in enumerate(scale_factors):
            attrs["scale_%d" % i] = s
    if kind in ("n", "x"):
        return _op("upsample_nearest", input, exact=kind == "x", **attrs)
    name = "upsample_linear" if kind == "l" else "upsample_bicubic"
    return _op(name, input, align_corners=bool(align_corners), antialias=bool(antialias),
               **attrs)


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Deprecated alias of interpolate (as in PyTorch)."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None):
    """Deprecated: interpolate(..., mode='nearest')."""
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None):
    """Deprecated: interpolate(..., mode='bilinear', align_corners=True)."""
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)
