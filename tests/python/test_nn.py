"""td.nn: every module's forward against a NumPy reference written out here (convolution
and pooling by explicit loops), losses with weights, ignore_index and reductions,
parameter registration and naming, train/eval, state_dict and td.save/td.load round
trips, PyTorch-style initialisation, and the gradients of a small Linear model against
hand-derived NumPy gradients."""
import collections
import math
import os
import pickle

import numpy as np
import pytest

import tensord as td
from tensord import nn
from tensord.nn import functional as F

pytestmark = pytest.mark.timeout(120)

RNG = np.random.default_rng(20240601)


def rnd(*shape, dtype=np.float64):
    return RNG.standard_normal(shape).astype(dtype)


def close(a, b, tol=1e-10):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


@pytest.fixture
def fresh(daemon, client):
    """make(seed): a new session with that generator seed, made the default client."""
    made = []

    def make(seed):
        c = td.connect(daemon.unix_address, seed=seed)
        made.append(c)
        return c
    yield make
    td.set_default_client(client)
    for c in made:
        c.close()


def set_params(module, **arrays):
    module.load_state_dict({k: v for k, v in arrays.items()}, strict=False)


# ---- NumPy references ------------------------------------------------------------------
def conv2d_ref(x, w, b, stride, padding, dilation, groups):
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    sh, sw = stride
    ph, pw = padding
    dh, dw = dilation
    xp = np.zeros((n, c, h + 2 * ph, wd + 2 * pw), x.dtype)
    xp[:, :, ph:ph + h, pw:pw + wd] = x
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, o, ho, wo), x.dtype)
    opg = o // groups
    for ni in range(n):
        for oi in range(o):
            g = oi // opg
            for i in range(ho):
                for j in range(wo):
                    acc = 0.0
                    for ci in range(cg):
                        for u in range(kh):
                            for v in range(kw):
                                acc += xp[ni, g * cg + ci, i * sh + u * dh, j * sw + v * dw] \
                                    * w[oi, ci, u, v]
                    out[ni, oi, i, j] = acc + (b[oi] if b is not None else 0.0)
    return out


def pool_out(size, k, s, p, d, ceil):
    num = size + 2 * p - d * (k - 1) - 1
    o = (-(-num // s) if ceil else num // s) + 1
    if ceil and (o - 1) * s >= size + p:
        o -= 1
    return o


def max_pool_ref(x, k, s, p, d, ceil):
    n, c, h, w = x.shape
    ho, wo = pool_out(h, k, s, p, d, ceil), pool_out(w, k, s, p, d, ceil)
    vals = np.full((n, c, ho, wo), -np.inf)
    idx = np.zeros((n, c, ho, wo), np.int64)
    for ni in range(n):
        for ci in range(c):
            for i in range(ho):
                for j in range(wo):
                    for u in range(k):
                        for v in range(k):
                            hh, ww = i * s - p + u * d, j * s - p + v * d
                            if 0 <= hh < h and 0 <= ww < w and \
                                    (x[ni, ci, hh, ww] > vals[ni, ci, i, j]):
                                vals[ni, ci, i, j] = x[ni, ci, hh, ww]
                                idx[ni, ci, i, j] = hh * w + ww
    return vals, idx


def avg_pool_ref(x, k, s, p, ceil, count_include_pad, divisor_override):
    n, c, h, w = x.shape
    ho, wo = pool_out(h, k, s, p, 1, ceil), pool_out(w, k, s, p, 1, ceil)
    out = np.zeros((n, c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            h0, w0 = i * s - p, j * s - p
            h1, w1 = min(h0 + k, h + p), min(w0 + k, w + p)
            pool = (h1 - h0) * (w1 - w0)
            h0, w0, h1, w1 = max(h0, 0), max(w0, 0), min(h1, h), min(w1, w)
            if divisor_override:
                div = divisor_override
            elif count_include_pad:
                div = pool
            else:
                div = (h1 - h0) * (w1 - w0)
            out[:, :, i, j] = x[:, :, h0:h1, w0:w1].sum(axis=(2, 3)) / div
    return out


def log_softmax_ref(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


# ---- layers ----------------------------------------------------------------------------
def test_linear_forward_and_shapes():
    lin = nn.Linear(5, 3).double()
    w, b, x = rnd(3, 5), rnd(3), rnd(4, 5)
    set_params(lin, weight=w, bias=b)
    close(lin(td.tensor(x)).detach().numpy(), x @ w.T + b)
    x3 = rnd(2, 4, 5)
    close(lin(td.tensor(x3)).detach().numpy(), x3 @ w.T + b)
    nb = nn.Linear(5, 3, bias=False).double()
    assert nb.bias is None
    assert [n for n, _ in nb.named_parameters()] == ["weight"]
    set_params(nb, weight=w)
    close(nb(td.tensor(x)).detach().numpy(), x @ w.T)


def test_linear_and_conv_default_init(fresh):
    # PyTorch: kaiming_uniform(a=sqrt(5)) gives U(-1/sqrt(fan_in), 1/sqrt(fan_in)); the
    # bias has the same bound.
    fresh(7)
    lin = nn.Linear(400, 300)
    w, b = lin.weight.detach().numpy(), lin.bias.detach().numpy()
    bound = 1 / math.sqrt(400)
    assert w.shape == (300, 400) and w.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    # U(-c, c) has std c/sqrt(3) and mean 0; 120000 draws pin both to ~1%.
    assert abs(w.std() - bound / math.sqrt(3)) < 0.01 * bound
    assert abs(w.mean()) < 0.01 * bound
    conv = nn.Conv2d(6, 8, (3, 5), groups=2)
    cw = conv.weight.detach().numpy()
    assert cw.shape == (8, 3, 3, 5)
    cb = 1 / math.sqrt(3 * 3 * 5)
    assert np.abs(cw).max() <= cb and np.abs(conv.bias.detach().numpy()).max() <= cb
    assert np.abs(cw).max() > 0.8 * cb
    # Same seed, same weights; another seed, others.
    fresh(7)
    assert np.array_equal(nn.Linear(400, 300).weight.detach().numpy(), w)
    fresh(8)
    assert not np.array_equal(nn.Linear(400, 300).weight.detach().numpy(), w)


@pytest.mark.parametrize("stride,padding,dilation,groups,bias", [
    (1, 0, 1, 1, True), (2, 1, 1, 1, True), ((1, 2), (2, 1), 1, 1, False),
    (1, 1, 2, 1, True), (1, 1, 1, 2, True), (2, "valid", 1, 1, True), (1, "same", 1, 1, True),
])
def test_conv2d_forward(stride, padding, dilation, groups, bias):
    conv = nn.Conv2d(4, 6, 3, stride, padding, dilation, groups, bias).double()
    w = rnd(6, 4 // groups, 3, 3)
    b = rnd(6) if bias else None
    set_params(conv, weight=w, **({"bias": b} if bias else {}))
    x = rnd(2, 4, 7, 6)
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
    pad = {"valid": (0, 0), "same": (1, 1)}.get(padding, padding) \
        if isinstance(padding, str) else pair(padding)
    want = conv2d_ref(x, w, b, pair(stride), pair(pad), pair(dilation), groups)
    got = conv(td.tensor(x)).detach().numpy()
    assert got.shape == want.shape
    close(got, want)


def test_conv2d_same_padding_rejects_asymmetric():
    conv = nn.Conv2d(1, 1, 2, padding="same")
    with pytest.raises(NotImplementedError, match="asymmetric"):
        conv(td.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match="divisible"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(NotImplementedError, match="padding_mode"):
        nn.Conv2d(1, 1, 3, padding_mode="reflect")


@pytest.mark.parametrize("k,s,p,d,ceil", [
    (2, None, 0, 1, False), (3, 2, 1, 1, False), (3, 2, 1, 1, True), (2, 1, 0, 2, False),
    (3, 3, 0, 1, True),
])
def test_max_pool2d(k, s, p, d, ceil):
    x = rnd(2, 3, 7, 8)
    vals, idx = max_pool_ref(x, k, s or k, p, d, ceil)
    m = nn.MaxPool2d(k, s, p, d, return_indices=True, ceil_mode=ceil)
    gv, gi = m(td.tensor(x))
    close(gv.detach().numpy(), vals)
    assert gi.dtype == td.int64
    np.testing.assert_array_equal(gi.detach().numpy(), idx)
    close(F.max_pool2d(td.tensor(x), k, s, p, d, ceil).detach().numpy(), vals)


@pytest.mark.parametrize("k,s,p,ceil,cip,div", [
    (2, None, 0, False, True, None), (3, 2, 1, False, True, None),
    (3, 2, 1, False, False, None), (3, 2, 1, True, False, None), (2, 2, 1, True, True, None),
    (3, 1, 1, False, True, 5),
])
def test_avg_pool2d(k, s, p, ceil, cip, div):
    x = rnd(2, 3, 7, 6)
    want = avg_pool_ref(x, k, s or k, p, ceil, cip, div)
    got = nn.AvgPool2d(k, s, p, ceil, cip, div)(td.tensor(x)).detach().numpy()
    assert got.shape == want.shape
    close(got, want)


def test_layer_norm():
    x = rnd(3, 4, 5)
    ln = nn.LayerNorm((4, 5), eps=1e-3).double()
    close(ln.weight.detach().numpy(), np.ones((4, 5)))
    close(ln.bias.detach().numpy(), np.zeros((4, 5)))
    w, b = rnd(4, 5), rnd(4, 5)
    set_params(ln, weight=w, bias=b)
    mu = x.mean(axis=(1, 2), keepdims=True)
    var = x.var(axis=(1, 2), keepdims=True)
    want = (x - mu) / np.sqrt(var + 1e-3) * w + b
    close(ln(td.tensor(x)).detach().numpy(), want, 1e-9)
    plain = nn.LayerNorm(5, elementwise_affine=False)
    assert list(plain.parameters()) == []
    mu = x.mean(axis=2, keepdims=True)
    want = (x - mu) / np.sqrt(x.var(axis=2, keepdims=True) + 1e-5)
    close(plain(td.tensor(x)).detach().numpy(), want, 1e-9)
    # bias without weight: weight of ones
    close(F.layer_norm(td.tensor(x), 5, None, td.tensor(b[0])).detach().numpy(), want + b[0], 1e-9)


def test_embedding():
    emb = nn.Embedding(10, 4, padding_idx=2)
    wt = emb.weight.detach().numpy()
    assert wt.shape == (10, 4)
    np.testing.assert_array_equal(wt[2], np.zeros(4, np.float32))
    assert np.all(wt[[0, 1, 3]] != 0)
    idx = np.array([[1, 2, 9], [0, 0, 3]])
    got = emb(td.tensor(idx)).detach().numpy()
    np.testing.assert_array_equal(got, wt[idx])
    neg = nn.Embedding(5, 2, padding_idx=-1)
    assert neg.padding_idx == 4
    with pytest.raises(ValueError):
        nn.Embedding(5, 2, padding_idx=5)
    pre = nn.Embedding.from_pretrained(td.tensor(np.arange(6.0).reshape(3, 2)))
    np.testing.assert_array_equal(pre(td.tensor(np.array([2, 0]))).detach().numpy(),
                                  [[4.0, 5.0], [0.0, 1.0]])


def test_activations_softmax_flatten():
    x = rnd(3, 5)
    t = td.tensor(x)
    close(nn.ReLU()(t).detach().numpy(), np.maximum(x, 0))
    close(nn.Tanh()(t).detach().numpy(), np.tanh(x))
    close(nn.Sigmoid()(t).detach().numpy(), 1 / (1 + np.exp(-x)))
    erf = np.vectorize(math.erf)
    close(nn.GELU()(t).detach().numpy(), 0.5 * x * (1 + erf(x / math.sqrt(2))), 1e-9)
    tanh_form = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    close(nn.GELU("tanh")(t).detach().numpy(), tanh_form, 1e-9)
    for dim in (0, 1, -1):
        ls = log_softmax_ref(x, dim)
        close(nn.LogSoftmax(dim)(t).detach().numpy(), ls)
        close(nn.Softmax(dim=dim)(t).detach().numpy(), np.exp(ls))
    with pytest.raises(TypeError, match="dim"):
        F.softmax(t)
    x4 = rnd(2, 3, 4, 5)
    assert nn.Flatten()(td.tensor(x4)).shape == (2, 60)
    assert nn.Flatten(0, 2)(td.tensor(x4)).shape == (24, 5)
    close(nn.Flatten()(td.tensor(x4)).detach().numpy(), x4.reshape(2, 60))


def test_dropout_train_and_eval():
    p = 0.3
    x = np.abs(rnd(200, 100)) + 0.5
    d = nn.Dropout(p)
    assert d.training
    y = d(td.tensor(x)).detach().numpy()
    zero = y == 0
    assert abs(zero.mean() - p) < 0.02
    close(y[~zero], x[~zero] / (1 - p))
    d.eval()
    np.testing.assert_array_equal(d(td.tensor(x)).detach().numpy(), x)
    d.train()
    np.testing.assert_array_equal(nn.Dropout(0.0)(td.tensor(x)).detach().numpy(), x)
    assert (nn.Dropout(1.0)(td.tensor(x)).detach().numpy() == 0).all()
    with pytest.raises(ValueError):
        nn.Dropout(1.5)
    # train()/eval() reach every submodule
    seq = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Dropout(), nn.ReLU()))
    seq.eval()
    assert [m.training for m in seq.modules()] == [False] * 5
    seq.train()
    assert all(m.training for m in seq.modules())


# ---- losses ----------------------------------------------------------------------------
def reduce_ref(v, reduction):
    return {"none": v, "sum": v.sum(), "mean": v.mean()}[reduction]


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_mse_l1(reduction):
    a, b = rnd(4, 3), rnd(4, 3)
    close(nn.MSELoss(reduction=reduction)(td.tensor(a), td.tensor(b)).detach().numpy(),
          reduce_ref((a - b) ** 2, reduction))
    close(nn.L1Loss(reduction=reduction)(td.tensor(a), td.tensor(b)).detach().numpy(),
          reduce_ref(np.abs(a - b), reduction))
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="avg")


def nll_ref(logp, target, weight, ignore_index, reduction):
    n = len(target)
    w = np.ones(logp.shape[1]) if weight is None else weight
    keep = target != ignore_index
    safe = np.where(keep, target, 0)
    wi = np.where(keep, w[safe], 0.0)
    per = -logp[np.arange(n), safe] * wi
    if reduction == "none":
        return per
    if reduction == "sum":
        return per.sum()
    return per.sum() / wi.sum()


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore", [-100, 1])
def test_cross_entropy_and_nll(reduction, weighted, ignore):
    x = rnd(6, 4)
    target = np.array([0, 1, 3, 1, 2, 0])
    weight = np.array([0.5, 2.0, 1.0, 3.0]) if weighted else None
    want = nll_ref(log_softmax_ref(x, 1), target, weight, ignore, reduction)
    wt = td.tensor(weight) if weighted else None
    ce = nn.CrossEntropyLoss(weight=wt, ignore_index=ignore, reduction=reduction)
    close(ce(td.tensor(x), td.tensor(target)).detach().numpy(), want, 1e-9)
    nll = nn.NLLLoss(weight=wt, ignore_index=ignore, reduction=reduction)
    close(nll(td.tensor(log_softmax_ref(x, 1)), td.tensor(target)).detach().numpy(), want, 1e-9)
    if weighted:
        assert "weight" in dict(ce.named_buffers())


def test_cross_entropy_probabilities_and_label_smoothing():
    x = rnd(5, 4)
    logp = log_softmax_ref(x, 1)
    probs = np.abs(rnd(5, 4))
    probs /= probs.sum(axis=1, keepdims=True)
    w = np.array([1.0, 2.0, 0.5, 1.5])
    close(F.cross_entropy(td.tensor(x), td.tensor(probs)).detach().numpy(),
          (-(probs * logp).sum(1)).mean(), 1e-9)
    got = F.cross_entropy(td.tensor(x), td.tensor(probs), weight=td.tensor(w),
                          reduction="sum")
    close(got.detach().numpy(), (-(probs * logp * w).sum(1)).sum(), 1e-9)
    # label smoothing with class indices, ignore_index and weights (PyTorch's formula:
    # (1-e) * nll + e * sum_c(-w_c logp_c) / C, the mean over the summed target weights)
    target = np.array([0, 3, 1, 2, 1])
    eps = 0.2
    keep = target != 1
    nll = -logp[np.arange(5), target] * w[target] * keep
    smooth = -(logp * w).sum(1) / 4 * keep
    want = ((1 - eps) * nll + eps * smooth).sum() / (w[target] * keep).sum()
    # (1e-7: the daemon holds a Python float such as 1 - eps in float32 when it meets a
    # float64 tensor, unlike PyTorch, which keeps it in double)
    close(F.cross_entropy(td.tensor(x), td.tensor(target), weight=td.tensor(w),
                          ignore_index=1, label_smoothing=eps).detach().numpy(), want, 1e-7)
    nll0 = -logp[np.arange(5), target]
    smooth0 = -logp.sum(1) / 4
    got = F.cross_entropy(td.tensor(x), td.tensor(target), label_smoothing=eps,
                          reduction="none")
    close(got.detach().numpy(), (1 - eps) * nll0 + eps * smooth0, 1e-7)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_bce_with_logits(reduction):
    x = rnd(4, 3) * 30          # large logits: the stable form must not overflow
    y = (RNG.random((4, 3)) > 0.5).astype(np.float64)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    logsig = lambda v: -np.logaddexp(0, -v)  # noqa: E731
    base = -(y * logsig(x) + (1 - y) * logsig(-x))
    close(nn.BCEWithLogitsLoss(reduction=reduction)(td.tensor(x), td.tensor(y)).detach().numpy(),
          reduce_ref(base, reduction), 1e-9)
    w, pw = np.abs(rnd(3)), np.array([0.5, 2.0, 3.0])
    want = -w * (pw * y * logsig(x) + (1 - y) * logsig(-x))
    got = nn.BCEWithLogitsLoss(weight=td.tensor(w), pos_weight=td.tensor(pw),
                               reduction=reduction)(td.tensor(x), td.tensor(y)).detach().numpy()
    close(got, reduce_ref(want, reduction), 1e-9)
    assert np.isfinite(sig(0.0))


# ---- module machinery ------------------------------------------------------------------
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(8, 3)
        self.register_buffer("scale", td.ones(3))
        self.register_buffer("scratch", td.zeros(2), persistent=False)
        self.plain = 5

    def forward(self, x):
        h = self.features(x)
        return self.head(td.op("flatten", h, start_dim=1)) * self.scale


def test_registration_names_and_repr():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["features.0.weight", "features.0.bias", "head.weight", "head.bias"]
    assert [n for n, _ in net.named_buffers()] == ["scale", "scratch"]
    assert [n for n, _ in net.named_children()] == ["features", "head"]
    assert [n for n, _ in net.named_modules()] == ["", "features", "features.0",
                                                   "features.1", "head"]
    assert all(isinstance(p, nn.Parameter) for p in net.parameters())
    assert all(p.requires_grad for p in net.parameters())
    assert net.plain == 5 and "plain" not in net._parameters
    sd = net.state_dict()
    assert list(sd) == ["scale", "features.0.weight", "features.0.bias", "head.weight",
                        "head.bias"]
    # Shared parameters count once; replacing one re-registers it.
    seq = nn.Sequential(net.head, net.head)
    assert len(list(seq.parameters())) == 2
    net.head = nn.Linear(8, 4)
    assert net.head.out_features == 4
    with pytest.raises(TypeError):
        net.head.weight = td.zeros(4, 8)
    del net.scale
    assert "scale" not in net.state_dict()
    want = ("Sequential(\n"
            "  (0): Conv2d(1, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))\n"
            "  (1): ReLU()\n"
            "  (2): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, "
            "ceil_mode=False)\n"
            "  (3): Flatten(start_dim=1, end_dim=-1)\n"
            "  (4): Linear(in_features=128, out_features=10, bias=True)\n"
            ")")
    model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(128, 10))
    assert repr(model) == want
    assert len(model) == 5 and isinstance(model[-1], nn.Linear)
    assert len(model[1:3]) == 2
    p = nn.Parameter(td.tensor(np.array([1.0, 2.0])))
    assert repr(p).startswith("Parameter containing:\ntensor(")


def test_parameter_shares_data_and_requires_grad():
    base = td.tensor(np.array([1.0, 2.0, 3.0]))
    p = nn.Parameter(base)
    assert p.requires_grad and not base.requires_grad
    np.testing.assert_array_equal(p.detach().numpy(), [1, 2, 3])
    with td.no_grad():
        base.copy_(td.tensor(np.array([4.0, 5.0, 6.0])))
    np.testing.assert_array_equal(p.detach().numpy(), [4, 5, 6])
    q = nn.Parameter(np.zeros(2), requires_grad=False)
    assert not q.requires_grad
    with pytest.raises(TypeError):
        pickle.dumps(p)


def test_state_dict_round_trip_and_strict_errors(tmp_path):
    a, b = Net(), Net()
    x = td.tensor(rnd(2, 1, 2, 2, dtype=np.float32))
    assert not np.allclose(a(x).detach().numpy(), b(x).detach().numpy())
    res = b.load_state_dict(a.state_dict())
    assert res.missing_keys == [] and res.unexpected_keys == []
    np.testing.assert_array_equal(a(x).detach().numpy(), b(x).detach().numpy())
    # The loaded values are copies: changing a afterwards leaves b alone.
    with td.no_grad():
        a.head.bias.copy_(td.zeros(3))
    assert not np.array_equal(a.head.bias.detach().numpy(), b.head.bias.detach().numpy())
    # Through a file, with NumPy arrays as well.
    path = os.path.join(tmp_path, "net.td")
    td.save(b.state_dict(), path)
    c = Net()
    c.load_state_dict(td.load(path))
    np.testing.assert_array_equal(b(x).detach().numpy(), c(x).detach().numpy())
    c2 = Net()
    c2.load_state_dict(td.load(path, as_numpy=True))
    np.testing.assert_array_equal(b(x).detach().numpy(), c2(x).detach().numpy())
    sd = a.state_dict()
    del sd["head.bias"]
    sd["extra"] = td.zeros(1)
    with pytest.raises(RuntimeError) as e:
        b.load_state_dict(sd)
    msg = str(e.value)
    assert 'Missing key(s) in state_dict: "head.bias"' in msg
    assert 'Unexpected key(s) in state_dict: "extra"' in msg
    res = b.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["head.bias"] and res.unexpected_keys == ["extra"]
    sd = a.state_dict()
    sd["head.weight"] = td.zeros(3, 9)
    with pytest.raises(RuntimeError, match=r"size mismatch for head.weight.*\[3, 9\].*\[3, 8\]"):
        b.load_state_dict(sd, strict=False)


def test_save_load_values_and_safety(tmp_path):
    obj = collections.OrderedDict([
        ("f32", td.tensor(rnd(2, 3, dtype=np.float32))),
        ("bf16", td.tensor(np.array([1.5, -2.25], np.float32)).to(td.bfloat16)),
        ("i64", td.tensor(np.array([1, 2, 3]))),
        ("nested", {0: {"step": 3, "lr": 0.1, "b": True, "none": None},
                    (1, "x"): [1, 2.5, "s", (3, 4)]}),
        ("arr", np.arange(4, dtype=np.int16)),
        ("c", 1 + 2j),
    ])
    path = os.path.join(tmp_path, "obj")
    td.save(obj, path)
    assert os.path.exists(path)           # the name is kept as given
    got = td.load(path)
    assert isinstance(got, collections.OrderedDict) and list(got) == list(obj)
    np.testing.assert_array_equal(got["f32"].detach().numpy(), obj["f32"].detach().numpy())
    assert got["bf16"].dtype == td.bfloat16
    np.testing.assert_array_equal(got["bf16"].detach().numpy(), [1.5, -2.25])
    assert got["i64"].dtype == td.int64
    assert got["nested"] == {0: {"step": 3, "lr": 0.1, "b": True, "none": None},
                             (1, "x"): [1, 2.5, "s", (3, 4)]}
    assert got["arr"].dtype == np.int16 and got["c"] == 1 + 2j
    with pytest.raises(TypeError, match="cannot be saved"):
        td.save({"f": lambda: 0}, os.path.join(tmp_path, "bad"))
    # A pickle (which could run code when loaded) is refused, not unpickled.
    evil = os.path.join(tmp_path, "evil")
    with open(evil, "wb") as f:
        pickle.dump({"x": np.zeros(2, dtype=object)}, f)
    with pytest.raises(ValueError, match="not a tensord save file"):
        td.load(evil)
    np.savez(os.path.join(tmp_path, "plain.npz"), a=np.zeros(2))
    with pytest.raises(ValueError, match="not a tensord save file"):
        td.load(os.path.join(tmp_path, "plain.npz"))


# ---- gradients -------------------------------------------------------------------------
def test_linear_model_gradients_match_numpy():
    lin = nn.Linear(3, 2).double()
    w, b = rnd(2, 3), rnd(2)
    set_params(lin, weight=w, bias=b)
    x, t = rnd(4, 3), rnd(4, 2)
    xt = td.tensor(x).requires_grad_()
    loss = nn.MSELoss()(lin(xt), td.tensor(t))
    y = x @ w.T + b
    close(loss.item(), ((y - t) ** 2).mean())
    loss.backward()
    dy = 2 * (y - t) / y.size
    close(lin.weight.grad.detach().numpy(), dy.T @ x)
    close(lin.bias.grad.detach().numpy(), dy.sum(0))
    close(xt.grad.detach().numpy(), dy @ w)
    # A second backward accumulates; zero_grad clears.
    loss2 = nn.MSELoss(reduction="sum")(lin(td.tensor(x)), td.tensor(t))
    loss2.backward()
    close(lin.bias.grad.detach().numpy(), dy.sum(0) + (2 * (y - t)).sum(0))
    lin.zero_grad()
    assert lin.weight.grad is None and lin.bias.grad is None


def test_cross_entropy_mlp_gradients_match_numpy():
    # Linear -> ReLU -> Linear -> cross entropy, backpropagated by hand.
    net = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3)).double()
    w1, b1, w2, b2 = rnd(5, 4), rnd(5), rnd(3, 5), rnd(3)
    net.load_state_dict({"0.weight": w1, "0.bias": b1, "2.weight": w2, "2.bias": b2})
    x, t = rnd(6, 4), np.array([0, 2, 1, 1, 0, 2])
    loss = nn.CrossEntropyLoss()(net(td.tensor(x)), td.tensor(t))
    loss.backward()
    h = x @ w1.T + b1
    a = np.maximum(h, 0)
    z = a @ w2.T + b2
    p = np.exp(log_softmax_ref(z, 1))
    close(loss.item(), -log_softmax_ref(z, 1)[np.arange(6), t].mean())
    dz = p.copy()
    dz[np.arange(6), t] -= 1
    dz /= 6
    da = dz @ w2
    dh = da * (h > 0)
    close(net[2].weight.grad.detach().numpy(), dz.T @ a)
    close(net[2].bias.grad.detach().numpy(), dz.sum(0))
    close(net[0].weight.grad.detach().numpy(), dh.T @ x)
    close(net[0].bias.grad.detach().numpy(), dh.sum(0))


def test_init_functions(fresh):
    fresh(11)
    w = td.empty(200, 300)
    nn.init.xavier_uniform_(w, gain=2.0)
    a = 2.0 * math.sqrt(6.0 / 500)
    v = w.detach().numpy()
    assert np.abs(v).max() <= a and np.abs(v).max() > 0.95 * a
    nn.init.normal_(w, 3.0, 0.5)
    v = w.detach().numpy()
    assert abs(v.mean() - 3.0) < 0.01 and abs(v.std() - 0.5) < 0.01
    nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    assert abs(w.detach().numpy().std() - math.sqrt(2.0) / math.sqrt(200)) < 0.002
    nn.init.trunc_normal_(w, 0.0, 1.0, -0.5, 1.0)
    v = w.detach().numpy()
    assert v.min() >= -0.5 and v.max() <= 1.0
    # the truncated normal on [-0.5, 1] has mean (phi(-0.5) - phi(1)) / (Phi(1) - Phi(-0.5))
    phi = lambda t: math.exp(-t * t / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda t: (1 + math.erf(t / math.sqrt(2))) / 2  # noqa: E731
    assert abs(v.mean() - (phi(-0.5) - phi(1)) / (cdf(1) - cdf(-0.5))) < 0.01
    nn.init.constant_(w, 0.25)
    assert (w.detach().numpy() == 0.25).all()
    nn.init.zeros_(w)
    assert (w.detach().numpy() == 0).all()
    e = td.empty(3, 4)
    nn.init.eye_(e)
    np.testing.assert_array_equal(e.detach().numpy(), np.eye(3, 4))
    assert nn.init.calculate_gain("tanh") == 5.0 / 3
    assert nn.init.calculate_gain("leaky_relu", 0.2) == math.sqrt(2 / 1.04)
    with pytest.raises(ValueError):
        nn.init.xavier_uniform_(td.empty(3))
    # Parameters are initialised in place, under no_grad, and stay leaves.
    lin = nn.Linear(3, 2)
    nn.init.ones_(lin.weight)
    assert lin.weight.requires_grad and lin.weight.grad_fn is None
    np.testing.assert_array_equal(lin.weight.detach().numpy(), np.ones((2, 3)))


def test_containers_hooks_and_dtype_conversion():
    ml = nn.ModuleList([nn.Linear(2, 2), nn.ReLU()])
    ml.append(nn.Linear(2, 1))
    md = nn.ModuleDict({"a": nn.Linear(1, 1)})
    md["b"] = nn.Tanh()

    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.ml, self.md = ml, md

    h = Holder()
    assert [n for n, _ in h.named_parameters()] == [
        "ml.0.weight", "ml.0.bias", "ml.2.weight", "ml.2.bias", "md.a.weight", "md.a.bias"]
    assert len(ml) == 3 and list(md.keys()) == ["a", "b"] and "b" in md
    seq = nn.Sequential(collections.OrderedDict([("fc", nn.Linear(2, 3)), ("act", nn.ReLU())]))
    assert seq.fc is seq[0] and [n for n, _ in seq.named_children()] == ["fc", "act"]
    seen = []
    handle = seq.register_forward_hook(lambda m, args, out: seen.append(out.shape) or out * 0)
    x = td.tensor(np.ones((4, 2), np.float32))
    assert (seq(x).detach().numpy() == 0).all() and seen == [(4, 3)]
    handle.remove()
    assert (seq(x).detach().numpy() >= 0).all() and len(seen) == 1
    seq.double()
    assert seq.fc.weight.dtype == td.float64 and isinstance(seq.fc.weight, nn.Parameter)
    assert seq.fc.weight.requires_grad
    assert seq(td.tensor(np.ones((1, 2)))).dtype == td.float64
    with pytest.raises(TypeError):
        seq.to(td.int32)
    seq.requires_grad_(False)
    assert not any(p.requires_grad for p in seq.parameters())
