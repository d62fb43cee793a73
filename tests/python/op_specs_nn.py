"""NumPy references and sample cases for the neural-network ops (server/engine/ops_nn.c), in
test_ops.py's SPECS format: NN_SPECS maps an op name to cases(rng, dtype, variant) returning
objects with test_ops.Case's fields (inputs [(array, dtype)], attrs, expected arrays,
expected dtypes, mag, variadic, exact). References are written from the definitions
(PyTorch's documented semantics) in float64/complex128, never from the daemon's output.

dropout is random; its cases here are the deterministic ones (p = 0, p = 1, train = false);
tests/unit/test_nn.c checks its statistics. sgd_step and adam_step are checked by
tests/python/test_optim.py.
"""
import math

import numpy as np

import tensord as td
from spec_common import Case, hp, round_to

B, I32, I64 = td.bool_, td.int32, td.int64
F16, BF16, F32, F64, C64, C128 = (td.float16, td.bfloat16, td.float32, td.float64,
                                  td.complex64, td.complex128)


def gen(rng, d, shape, lo=-2.0, hi=2.0):
    """Random values of d as stored (bfloat16 in a float32 array)."""
    if d.kind == "c":
        z = rng.uniform(lo, hi, shape) + 1j * rng.uniform(lo, hi, shape)
        return z.astype(d.numpy_dtype)
    return round_to(rng.uniform(lo, hi, shape), d)


def pair(v, default):
    if v is None:
        return list(default)
    return [v[0], v[0]] if len(v) == 1 else list(v)


# ---- linear ------------------------------------------------------------------------------
def np_linear(x, w, b=None):
    y = x @ w.T
    return y if b is None else y + b


def linear_cases(rng, d, variant):
    table = {"basic": [((2, 3), (4, 3), True), ((3,), (2, 3), False), ((2, 2, 3), (5, 3), True)],
             "noncontig": [((3, 4), (2, 4), True)],
             "zero": [((0, 3), (2, 3), True), ((2, 0), (3, 0), True)]}
    res = []
    for xs, ws, bias in table.get(variant, []):
        x, w = gen(rng, d, xs), gen(rng, d, ws)
        ins = [(x, d), (w, d)]
        args = [hp(x), hp(w)]
        if bias:
            b = gen(rng, d, (ws[0],))
            ins.append((b, d))
            args.append(hp(b))
        exp = np_linear(*args)
        mag = float(np.max(np_linear(*[np.abs(a) for a in args]), initial=1.0))
        res.append(Case(ins, {}, exp, d, mag=mag))
    return res


# ---- conv2d, im2col, col2im ----------------------------------------------------------------
def out_size(n, k, s, p, dl):
    return (n + 2 * p - dl * (k - 1) - 1) // s + 1


def np_unfold(x, k, dilation=(1, 1), padding=(0, 0), stride=(1, 1)):
    """F.unfold on [N, C, H, W] -> [N, C*kh*kw, L]."""
    n, c, h, w = x.shape
    kh, kw = k
    ho = out_size(h, kh, stride[0], padding[0], dilation[0])
    wo = out_size(w, kw, stride[1], padding[1], dilation[1])
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    out = np.zeros((n, c, kh, kw, ho, wo), x.dtype)
    for i in range(kh):
        for j in range(kw):
            r0, c0 = i * dilation[0], j * dilation[1]
            out[:, :, i, j] = xp[:, :, r0:r0 + stride[0] * (ho - 1) + 1:stride[0],
                                 c0:c0 + stride[1] * (wo - 1) + 1:stride[1]]
    return out.reshape(n, c * kh * kw, ho * wo)


def np_fold(cols, output_size, k, dilation=(1, 1), padding=(0, 0), stride=(1, 1)):
    """F.fold: [N, C*kh*kw, L] -> [N, C, H, W], summing overlaps."""
    n, ckk, _ = cols.shape
    kh, kw = k
    h, w = output_size
    c = ckk // (kh * kw)
    ho = out_size(h, kh, stride[0], padding[0], dilation[0])
    wo = out_size(w, kw, stride[1], padding[1], dilation[1])
    cols = cols.reshape(n, c, kh, kw, ho, wo)
    out = np.zeros((n, c, h + 2 * padding[0], w + 2 * padding[1]), cols.dtype)
    for i in range(kh):
        for j in range(kw):
            r0, c0 = i * dilation[0], j * dilation[1]
            out[:, :, r0:r0 + stride[0] * (ho - 1) + 1:stride[0],
                c0:c0 + stride[1] * (wo - 1) + 1:stride[1]] += cols[:, :, i, j]
    return out[:, :, padding[0]:padding[0] + h, padding[1]:padding[1] + w]


def np_conv2d(x, w, b, stride, padding, dilation, groups):
    n = x.shape[0]
    o, cg, kh, kw = w.shape
    og = o // groups
    ho = out_size(x.shape[2], kh, stride[0], padding[0], dilation[0])
    wo = out_size(x.shape[3], kw, stride[1], padding[1], dilation[1])
    out = np.zeros((n, o, ho, wo), np.result_type(x, w))
    for g in range(groups):
        cols = np_unfold(x[:, g * cg:(g + 1) * cg], (kh, kw), dilation, padding, stride)
        wg = w[g * og:(g + 1) * og].reshape(og, cg * kh * kw)
        out[:, g * og:(g + 1) * og] = np.einsum("ok,nkl->nol", wg, cols).reshape(n, og, ho, wo)
    if b is not None:
        out += b.reshape(1, o, 1, 1)
    return out


def conv_cases(rng, d, variant):
    # (x shape, w shape, bias, attrs)
    table = {
        "basic": [((1, 2, 4, 5), (3, 2, 2, 2), True, {}),
                  ((2, 4, 5, 5), (4, 2, 3, 3), False,
                   {"stride": [2], "padding": [1], "groups": 2}),
                  ((1, 1, 6, 6), (2, 1, 2, 3), True,
                   {"stride": [1, 2], "padding": [1, 0], "dilation": [2, 1]})],
        "noncontig": [((2, 3, 4, 4), (2, 3, 3, 3), True, {"padding": [1]})],
        "zero": [((0, 2, 4, 4), (3, 2, 3, 3), True, {})],
    }
    res = []
    for xs, ws, bias, attrs in table.get(variant, []):
        x, w = gen(rng, d, xs), gen(rng, d, ws)
        b = gen(rng, d, (ws[0],)) if bias else None
        args = (pair(attrs.get("stride"), (1, 1)), pair(attrs.get("padding"), (0, 0)),
                pair(attrs.get("dilation"), (1, 1)), attrs.get("groups", 1))
        exp = np_conv2d(hp(x), hp(w), None if b is None else hp(b), *args)
        amag = np_conv2d(np.abs(hp(x)), np.abs(hp(w)), None if b is None else np.abs(hp(b)),
                         *args)
        ins = [(x, d), (w, d)] + ([(b, d)] if bias else [])
        res.append(Case(ins, attrs, exp, d, mag=float(np.max(amag, initial=1.0))))
    return res


def np_conv2d_backward_input(g, w, input_size, stride, padding, dilation, groups):
    """conv2d's gradient for x: per group and sample, fold(w_g^T g_g)."""
    n, o, ho, wo = g.shape
    _, cg, kh, kw = w.shape
    og = o // groups
    out = np.zeros((n, cg * groups) + tuple(input_size), np.result_type(g, w))
    for gi in range(groups):
        wg = w[gi * og:(gi + 1) * og].reshape(og, cg * kh * kw)
        gg = g[:, gi * og:(gi + 1) * og].reshape(n, og, ho * wo)
        cols = np.einsum("ok,nol->nkl", wg, gg)
        out[:, gi * cg:(gi + 1) * cg] = np_fold(cols, input_size, (kh, kw), dilation, padding,
                                                stride)
    return out


def np_conv2d_backward_weight(x, g, k, stride, padding, dilation, groups):
    """conv2d's gradient for w: per group, sum over samples of g_g unfold(x_g)^T."""
    n, o = g.shape[:2]
    cg, og = x.shape[1] // groups, o // groups
    out = np.zeros((o, cg) + tuple(k), np.result_type(x, g))
    for gi in range(groups):
        cols = np_unfold(x[:, gi * cg:(gi + 1) * cg], k, dilation, padding, stride)
        gg = g[:, gi * og:(gi + 1) * og].reshape(n, og, cols.shape[2])
        out[gi * og:(gi + 1) * og] = np.einsum("nol,nkl->ok", gg, cols).reshape(og, cg, *k)
    return out


# (x shape, w shape, attrs) for the two conv2d gradient ops.
CONV_BWD_TABLE = {
    "basic": [((1, 2, 4, 5), (3, 2, 2, 2), {}),
              ((2, 4, 5, 5), (4, 2, 3, 3), {"stride": [2], "padding": [1], "groups": 2}),
              ((1, 1, 6, 6), (2, 1, 2, 3),
               {"stride": [1, 2], "padding": [1, 0], "dilation": [2, 1]})],
    "noncontig": [((2, 3, 4, 4), (2, 3, 3, 3), {"padding": [1]})],
    "zero": [((0, 2, 4, 4), (3, 2, 3, 3), {})],
}


def conv_bwd_args(attrs):
    return (pair(attrs.get("stride"), (1, 1)), pair(attrs.get("padding"), (0, 0)),
            pair(attrs.get("dilation"), (1, 1)), attrs.get("groups", 1))


def conv_bwd_gshape(xs, ws, args):
    stride, padding, dilation, _ = args
    return (xs[0], ws[0], out_size(xs[2], ws[2], stride[0], padding[0], dilation[0]),
            out_size(xs[3], ws[3], stride[1], padding[1], dilation[1]))


def conv_bwd_input_cases(rng, d, variant):
    res = []
    for xs, ws, attrs in CONV_BWD_TABLE.get(variant, []):
        args = conv_bwd_args(attrs)
        g, w = gen(rng, d, conv_bwd_gshape(xs, ws, args)), gen(rng, d, ws)
        a = dict(attrs, input_size=[xs[2], xs[3]])
        exp = np_conv2d_backward_input(hp(g), hp(w), xs[2:], *args)
        amag = np_conv2d_backward_input(np.abs(hp(g)), np.abs(hp(w)), xs[2:], *args)
        res.append(Case([(g, d), (w, d)], a, exp, d, mag=float(np.max(amag, initial=1.0))))
    return res


def conv_bwd_weight_cases(rng, d, variant):
    res = []
    for xs, ws, attrs in CONV_BWD_TABLE.get(variant, []):
        args = conv_bwd_args(attrs)
        x, g = gen(rng, d, xs), gen(rng, d, conv_bwd_gshape(xs, ws, args))
        a = dict(attrs, kernel_size=[ws[2], ws[3]])
        exp = np_conv2d_backward_weight(hp(x), hp(g), ws[2:], *args)
        amag = np_conv2d_backward_weight(np.abs(hp(x)), np.abs(hp(g)), ws[2:], *args)
        res.append(Case([(x, d), (g, d)], a, exp, d, mag=float(np.max(amag, initial=1.0))))
    return res


def unfold_attrs(a):
    return (pair(a.get("kernel_size"), (1, 1)), pair(a.get("dilation"), (1, 1)),
            pair(a.get("padding"), (0, 0)), pair(a.get("stride"), (1, 1)))


def im2col_cases(rng, d, variant):
    table = {"basic": [((1, 2, 4, 5), {"kernel_size": [2]}),
                       ((2, 1, 5, 5), {"kernel_size": [3, 2], "padding": [1], "stride": [2, 1],
                                       "dilation": [1, 2]}),
                       ((2, 4, 4), {"kernel_size": [2], "stride": [2]})],
             "noncontig": [((2, 3, 4, 4), {"kernel_size": [2]})],
             "zero": [((0, 2, 3, 3), {"kernel_size": [2]})]}
    res = []
    for xs, attrs in table.get(variant, []):
        x = gen(rng, d, xs)
        v = hp(x)
        exp = np_unfold(v if v.ndim == 4 else v[None], *unfold_attrs(attrs))
        if v.ndim == 3:
            exp = exp[0]
        res.append(Case([(x, d)], attrs, exp, d))
    return res


def col2im_cases(rng, d, variant):
    table = {"basic": [((1, 8, 12), {"output_size": [4, 5], "kernel_size": [2]}),
                       ((2, 6, 15), {"output_size": [5], "kernel_size": [3, 2], "padding": [1],
                                    "stride": [2, 1], "dilation": [1, 2]}),
                       ((4, 4), {"output_size": [4, 4], "kernel_size": [2], "stride": [2]})],
             "noncontig": [((2, 12, 9), {"output_size": [4, 4], "kernel_size": [2]})],
             "zero": [((0, 8, 9), {"output_size": [4, 4], "kernel_size": [2]})]}
    res = []
    for xs, attrs in table.get(variant, []):
        x = gen(rng, d, xs)
        v = hp(x)
        k, dl, p, s = unfold_attrs(attrs)
        exp = np_fold(v if v.ndim == 3 else v[None], pair(attrs["output_size"], None), k, dl,
                      p, s)
        if v.ndim == 2:
            exp = exp[0]
        res.append(Case([(x, d)], attrs, exp, d, mag=4.0))
    return res


# ---- pooling ----------------------------------------------------------------------------------
def pool_out(n, k, s, p, dl, ceil):
    num = n + 2 * p - dl * (k - 1) - 1 + (s - 1 if ceil else 0)
    o = num // s + 1
    if ceil and (o - 1) * s >= n + p:
        o -= 1
    return o


def pool_geom(a, shape, dil=True):
    k = pair(a.get("kernel_size"), (1, 1))
    s = pair(a.get("stride"), k)
    p = pair(a.get("padding"), (0, 0))
    dl = pair(a.get("dilation"), (1, 1)) if dil else [1, 1]
    ceil = a.get("ceil_mode", False)
    ho = pool_out(shape[-2], k[0], s[0], p[0], dl[0], ceil)
    wo = pool_out(shape[-1], k[1], s[1], p[1], dl[1], ceil)
    return k, s, p, dl, ho, wo


def np_max_pool(x, a):
    """Values and flat H*W indices; the first maximum in row-major window order wins,
    NaN wins (PyTorch's CPU rule)."""
    k, s, p, dl, ho, wo = pool_geom(a, x.shape)
    lead = x.shape[:-2]
    h, w = x.shape[-2:]
    xf = x.reshape(int(np.prod(lead)), h, w)
    vals = np.zeros((xf.shape[0], ho, wo), x.dtype)
    idx = np.zeros((xf.shape[0], ho, wo), np.int64)
    for pl in range(xf.shape[0]):
        for oh in range(ho):
            for ow in range(wo):
                best, bi = -np.inf, None
                for i in range(k[0]):
                    r = oh * s[0] - p[0] + i * dl[0]
                    if r < 0 or r >= h:
                        continue
                    for j in range(k[1]):
                        cc = ow * s[1] - p[1] + j * dl[1]
                        if cc < 0 or cc >= w:
                            continue
                        v = xf[pl, r, cc]
                        if bi is None or v > best or np.isnan(v):
                            best, bi = v, r * w + cc
                vals[pl, oh, ow] = best
                idx[pl, oh, ow] = bi
    return vals.reshape(lead + (ho, wo)), idx.reshape(lead + (ho, wo))


def np_avg_pool(x, a):
    k, s, p, _, ho, wo = pool_geom(a, x.shape, dil=False)
    h, w = x.shape[-2:]
    xf = x.reshape(int(np.prod(x.shape[:-2])), h, w)
    out = np.zeros((xf.shape[0], ho, wo), x.dtype)
    divs = np.zeros((ho, wo))
    for oh in range(ho):
        for ow in range(wo):
            h0, w0 = oh * s[0] - p[0], ow * s[1] - p[1]
            h1, w1 = min(h0 + k[0], h + p[0]), min(w0 + k[1], w + p[1])
            size = (h1 - h0) * (w1 - w0)
            h0c, w0c, h1c, w1c = max(h0, 0), max(w0, 0), min(h1, h), min(w1, w)
            if a.get("divisor_override") is not None:
                dv = a["divisor_override"]
            elif a.get("count_include_pad", True):
                dv = size
            else:
                dv = (h1c - h0c) * (w1c - w0c)
            divs[oh, ow] = dv
            out[:, oh, ow] = xf[:, h0c:h1c, w0c:w1c].sum(axis=(1, 2)) / dv
    return out.reshape(x.shape[:-2] + (ho, wo)), divs


def np_avg_pool_backward(g, a, hw):
    k, s, p, _, ho, wo = pool_geom(a, hw, dil=False)
    h, w = hw
    gf = g.reshape(int(np.prod(g.shape[:-2])), ho, wo)
    out = np.zeros((gf.shape[0], h, w), g.dtype)
    _, divs = np_avg_pool(np.zeros((1, h, w)), a)
    for oh in range(ho):
        for ow in range(wo):
            h0, w0 = oh * s[0] - p[0], ow * s[1] - p[1]
            h1, w1 = min(h0 + k[0], h + p[0]), min(w0 + k[1], w + p[1])
            h0c, w0c, h1c, w1c = max(h0, 0), max(w0, 0), min(h1, h), min(w1, w)
            out[:, h0c:h1c, w0c:w1c] += (gf[:, oh, ow] / divs[oh, ow])[:, None, None]
    return out.reshape(g.shape[:-2] + (h, w))


POOL_TABLE = {
    "basic": [((1, 2, 4, 4), {"kernel_size": [2]}),
              ((2, 1, 5, 5), {"kernel_size": [3], "stride": [2], "padding": [1],
                              "ceil_mode": True}),
              ((2, 5, 6), {"kernel_size": [2, 3], "stride": [1, 2]})],
    "noncontig": [((2, 2, 4, 4), {"kernel_size": [2], "stride": [1]})],
    "zero": [((0, 2, 4, 4), {"kernel_size": [2]}), ((2, 0, 3, 3), {"kernel_size": [2]})],
}


def max_pool_cases(rng, d, variant):
    res = []
    table = list(POOL_TABLE.get(variant, []))
    if variant == "basic":
        table.append(((1, 1, 5, 5), {"kernel_size": [2], "dilation": [2], "padding": [1]}))
    for xs, attrs in table:
        x = gen(rng, d, xs)
        vals, idx = np_max_pool(hp(x), attrs)
        res.append(Case([(x, d)], attrs, [vals, idx], [d, I64]))
    return res


def max_pool_backward_cases(rng, d, variant):
    res = []
    for xs, attrs in POOL_TABLE.get(variant, []):
        x = gen(rng, d, xs)
        _, idx = np_max_pool(hp(x), attrs)
        g = gen(rng, d, idx.shape)
        hw = list(xs[-2:])
        npl = int(np.prod(xs[:-2]))
        exp = np.zeros(xs, np.float64).reshape(npl, hw[0] * hw[1])
        gf = hp(g).reshape(npl, idx.shape[-2] * idx.shape[-1])
        inf = idx.reshape(gf.shape)
        for pl in range(exp.shape[0]):
            np.add.at(exp[pl], inf[pl], gf[pl])
        res.append(Case([(g, d), (idx, I64)], {"input_size": hw}, exp.reshape(xs), d,
                          mag=4.0))
    return res


def avg_pool_cases(rng, d, variant):
    res = []
    table = list(POOL_TABLE.get(variant, []))
    if variant == "basic":
        table += [((1, 2, 5, 5), {"kernel_size": [3], "stride": [2], "padding": [1],
                                  "count_include_pad": False, "ceil_mode": True}),
                  ((1, 1, 4, 4), {"kernel_size": [3], "padding": [1], "stride": [1],
                                  "divisor_override": 2})]
    for xs, attrs in table:
        x = gen(rng, d, xs)
        exp, _ = np_avg_pool(hp(x), attrs)
        res.append(Case([(x, d)], attrs, exp, d, mag=2.0))
    return res


def avg_pool_backward_cases(rng, d, variant):
    res = []
    table = list(POOL_TABLE.get(variant, []))
    if variant == "basic":
        table.append(((1, 2, 5, 5), {"kernel_size": [3], "stride": [2], "padding": [1],
                                     "count_include_pad": False, "ceil_mode": True}))
    for xs, attrs in table:
        _, _, _, _, ho, wo = pool_geom(attrs, xs, dil=False)
        g = gen(rng, d, tuple(xs[:-2]) + (ho, wo))
        a = dict(attrs)
        a["input_size"] = list(xs[-2:])
        exp = np_avg_pool_backward(hp(g), attrs, xs[-2:])
        res.append(Case([(g, d)], a, exp, d, mag=4.0))
    return res


# ---- softmax, dropout, embedding, layer_norm, gelu, erf, nll_loss ----------------------------
def np_softmax(x, dim, log):
    if x.ndim == 0:
        return np.zeros_like(x) if log else np.ones_like(x)
    m = np.max(x, axis=dim, keepdims=True) if x.size else x
    e = np.exp(x - m)
    s = np.sum(e, axis=dim, keepdims=True)
    return (x - m - np.log(s)) if log else e / s


def softmax_cases(log):
    def cases(rng, d, variant):
        table = {"basic": [((3, 4), 1), ((3, 4), 0), ((2, 3, 4), -2), ((5,), 0)],
                 "noncontig": [((3, 4), -1), ((4, 3), 0)],
                 "zero": [((0, 4), 1), ((3, 0), 0)],
                 "0d": [((), 0), ((), -1)]}
        res = []
        for shape, dim in table.get(variant, []):
            x = gen(rng, d, shape, -4, 4)
            res.append(Case([(x, d)], {"dim": dim}, np_softmax(hp(x), dim, log), d,
                              mag=4.0 if log else 1.0))
        return res
    return cases


def dropout_cases(rng, d, variant):
    shape = {"basic": (3, 4), "noncontig": (3, 4), "zero": (0, 4), "0d": ()}.get(variant)
    if shape is None:
        return []
    x = gen(rng, d, shape)
    v = hp(x)
    ones = np.ones(shape, bool)
    return [Case([(x, d)], {"p": 0.0}, [v, ones], [d, B]),
            Case([(x, d)], {"p": 0.5, "train": False}, [v, ones], [d, B]),
            Case([(x, d)], {"p": 1.0}, [np.zeros(shape), ~ones], [d, B])]


def embedding_cases(rng, d, variant):
    table = {"basic": [((5, 3), np.array([[4, 0, 2], [1, 1, 3]]), I64, {}),
                       ((4, 2), np.array([3, 0, 3]), I32, {"padding_idx": 0}),
                       ((3, 4), np.array(1), I64, {})],
             "noncontig": [((5, 3), np.array([[4, 0], [2, 1]]), I64, {})],
             "zero": [((5, 3), np.zeros((0, 2), np.int64), I64, {}),
                      ((0, 3), np.zeros((0,), np.int64), I64, {})]}
    res = []
    for ws, idx, idt, attrs in table.get(variant, []):
        w = gen(rng, d, ws)
        idx = idx.astype(idt.numpy_dtype)
        res.append(Case([(w, d), (idx, idt)], attrs, hp(w)[idx.astype(np.int64)], d))
    return res


def embedding_backward_cases(rng, d, variant):
    table = {"basic": [(np.array([[4, 0, 2], [1, 4, 4]]), I64, 5, 3, {}),
                       (np.array([3, 0, 3, 1]), I32, 4, 2, {"padding_idx": 3}),
                       (np.array(1), I64, 3, 4, {"padding_idx": -1})],
             "noncontig": [(np.array([[4, 0], [2, 4]]), I64, 5, 3, {})],
             "zero": [(np.zeros((0,), np.int64), I64, 4, 3, {}),
                      (np.array([1, 0]), I64, 2, 0, {})]}
    res = []
    for idx, idt, nw, dim, attrs in table.get(variant, []):
        g = gen(rng, d, idx.shape + (dim,))
        exp = np.zeros((nw, dim), hp(g).dtype)
        np.add.at(exp, idx.reshape(-1), hp(g).reshape(idx.size, dim))
        pad = attrs.get("padding_idx")
        if pad is not None:
            exp[pad % nw] = 0
        a = dict(attrs)
        a["num_weights"] = nw
        res.append(Case([(g, d), (idx.astype(idt.numpy_dtype), idt)], a, exp, d, mag=4.0))
    return res


def np_layer_norm(x, ns, w, b, eps):
    axes = tuple(range(x.ndim - len(ns), x.ndim))
    mean = np.mean(x, axis=axes, keepdims=True) if x.size else \
        np.zeros(x.shape[:x.ndim - len(ns)] + (1,) * len(ns))
    var = np.mean((x - mean) ** 2, axis=axes, keepdims=True) if x.size else mean
    rstd = 1.0 / np.sqrt(var + eps)
    y = (x - mean) * rstd
    if w is not None:
        y = y * w
    if b is not None:
        y = y + b
    return [y, mean, rstd]


def layer_norm_cases(rng, d, variant):
    table = {"basic": [((2, 3, 4), [4], 2, {}), ((2, 3, 4), [3, 4], 1, {"eps": 0.1}),
                       ((5,), [5], 0, {})],
             "noncontig": [((3, 4), [4], 2, {})],
             "zero": [((0, 4), [4], 2, {})]}
    res = []
    for shape, ns, naff, attrs in table.get(variant, []):
        x = gen(rng, d, shape)
        ins = [(x, d)]
        aff = []
        for _ in range(naff):
            p = gen(rng, d, tuple(ns))
            ins.append((p, d))
            aff.append(hp(p))
        aff += [None] * (2 - naff)
        a = dict(attrs)
        a["normalized_shape"] = ns
        exp = np_layer_norm(hp(x), ns, aff[0], aff[1], attrs.get("eps", 1e-5))
        res.append(Case(ins, a, exp, [d, d, d], mag=4.0))
    return res


_erf = np.vectorize(math.erf, otypes=[np.float64])


def np_gelu(x, approximate):
    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1 + _erf(x / math.sqrt(2)))


def ew_shape(variant):
    return {"basic": (3, 4), "noncontig": (3, 4), "zero": (0, 4), "0d": ()}.get(variant)


def gelu_cases(rng, d, variant):
    shape = ew_shape(variant)
    if shape is None:
        return []
    x = gen(rng, d, shape, -3, 3)
    return [Case([(x, d)], {}, np_gelu(hp(x), "none"), d),
            Case([(x, d)], {"approximate": "tanh"}, np_gelu(hp(x), "tanh"), d)]


def threshold_backward_cases(rng, d, variant):
    shape = ew_shape(variant)
    if shape is None:
        return []
    g, x = gen(rng, d, shape), gen(rng, d, shape)
    res = [Case([(g, d), (x, d)], {}, np.where(hp(x) > 0, hp(g), 0.0), d),
           Case([(g, d), (x, d)], {"threshold": 0.5}, np.where(hp(x) > 0.5, hp(g), 0.0), d)]
    if variant == "basic" and x.size >= 2:
        # exactly zero where x <= threshold, even for an infinite or NaN g
        gi, xi = g.copy(), x.copy()
        gi.flat[0], xi.flat[0] = np.inf, -1.0
        gi.flat[1], xi.flat[1] = np.nan, 0.0
        res.append(Case([(gi, d), (xi, d)], {}, np.where(hp(xi) > 0, hp(gi), 0.0), d))
    return res


def erf_cases(rng, d, variant):
    shape = ew_shape(variant)
    if shape is None:
        return []
    x = gen(rng, d, shape, -2.5, 2.5)
    return [Case([(x, d)], {}, _erf(hp(x)), d)]


def np_nll(lp, t, w, reduction, ignore):
    t = np.asarray(t)
    n = t.size
    lp2 = lp.reshape(n, lp.shape[-1]) if lp.ndim == 2 else lp.reshape(1, lp.shape[-1])
    tf = t.reshape(-1)
    c = lp2.shape[1]
    wt = np.ones(c) if w is None else w
    keep = tf != ignore
    ti = np.where(keep, tf, 0)
    per = np.where(keep, -wt[ti] * lp2[np.arange(len(tf)), ti], 0.0)
    ws = np.where(keep, wt[ti], 0.0)
    if reduction == "none":
        return per.reshape(t.shape)
    if reduction == "sum":
        return np.array(per.sum())
    with np.errstate(all="ignore"):
        return np.array(per.sum() / ws.sum())


def nll_cases(rng, d, variant):
    table = {"basic": [((4, 3), [2, 0, 1, 1], True, {}),
                       ((4, 3), [2, -100, 1, 0], False, {"reduction": "sum"}),
                       ((4, 3), [2, 0, 1, 2], True, {"reduction": "none", "ignore_index": 1}),
                       ((3,), 1, True, {}), ((3,), 2, False, {"reduction": "none"})],
             "noncontig": [((4, 3), [2, 0, 1, 1], True, {"ignore_index": 0})],
             "zero": [((0, 3), [], True, {"reduction": "none"}),
                      ((0, 3), [], False, {"reduction": "sum"})]}
    res = []
    for shape, t, weighted, attrs in table.get(variant, []):
        lp = gen(rng, d, shape, -3, 0)
        ta = np.array(t, np.int64)
        ins = [(lp, d), (ta, I64)]
        w = None
        if weighted:
            wa = gen(rng, d, (shape[-1],), 0.5, 2)
            ins.append((wa, d))
            w = hp(wa)
        exp = np_nll(hp(lp), ta, w, attrs.get("reduction", "mean"),
                     attrs.get("ignore_index", -100))
        res.append(Case(ins, attrs, exp, d, mag=8.0))
    return res


NN_SPECS = {
    "linear": linear_cases,
    "conv2d": conv_cases,
    "conv2d_backward_input": conv_bwd_input_cases,
    "conv2d_backward_weight": conv_bwd_weight_cases,
    "im2col": im2col_cases,
    "col2im": col2im_cases,
    "max_pool2d": max_pool_cases,
    "max_pool2d_backward": max_pool_backward_cases,
    "avg_pool2d": avg_pool_cases,
    "avg_pool2d_backward": avg_pool_backward_cases,
    "softmax": softmax_cases(False),
    "log_softmax": softmax_cases(True),
    "dropout": dropout_cases,
    "embedding": embedding_cases,
    "embedding_backward": embedding_backward_cases,
    "layer_norm": layer_norm_cases,
    "gelu": gelu_cases,
    "erf": erf_cases,
    "threshold_backward": threshold_backward_cases,
    "nll_loss": nll_cases,
}
