"""td.optim: SGD and Adam/AdamW trajectories on a quadratic against the update rules
written out in NumPy below (PyTorch's algorithms), zero_grad, parameter groups, optimizer
state_dict round trips through td.save/td.load, and the error cases of the sgd_step and
adam_step ops."""
import os

import numpy as np
import pytest

import tensord as td
from tensord import nn

pytestmark = pytest.mark.timeout(120)

RNG = np.random.default_rng(4242)
STEPS = 5


def close(a, b, tol=1e-10):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


class Quadratic:
    """loss = sum(a * (p - c)^2) over parameters p; grad = 2 a (p - c)."""

    def __init__(self, shapes):
        self.a = [np.abs(RNG.standard_normal(s)) + 0.5 for s in shapes]
        self.c = [RNG.standard_normal(s) for s in shapes]
        self.p0 = [RNG.standard_normal(s) for s in shapes]

    def params(self):
        return [nn.Parameter(td.tensor(p.copy())) for p in self.p0]

    def loss(self, params):
        total = None
        for p, a, c in zip(params, self.a, self.c):
            d = p - td.tensor(c)
            term = td.op("sum", d * d * td.tensor(a))
            total = term if total is None else total + term
        return total

    def grads(self, ps):
        return [2 * a * (p - c) for p, a, c in zip(ps, self.a, self.c)]


def sgd_ref(q, steps, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
            maximize=False):
    ps = [p.copy() for p in q.p0]
    bufs = [None] * len(ps)
    out = []
    for _ in range(steps):
        gs = q.grads(ps)
        for i, (p, g) in enumerate(zip(ps, gs)):
            g = -g if maximize else g
            if weight_decay:
                g = g + weight_decay * p
            if momentum:
                if bufs[i] is None:
                    bufs[i] = g.copy()
                else:
                    bufs[i] = momentum * bufs[i] + (1 - dampening) * g
                g = g + momentum * bufs[i] if nesterov else bufs[i]
            ps[i] = p - lr * g
        out.append([p.copy() for p in ps])
    return out


def adam_ref(q, steps, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
             maximize=False, decoupled=False):
    b1, b2 = betas
    ps = [p.copy() for p in q.p0]
    m = [np.zeros_like(p) for p in ps]
    v = [np.zeros_like(p) for p in ps]
    vmax = [np.zeros_like(p) for p in ps]
    out = []
    for t in range(1, steps + 1):
        gs = q.grads(ps)
        for i, (p, g) in enumerate(zip(ps, gs)):
            g = -g if maximize else g
            if decoupled:
                p = p * (1 - lr * weight_decay)
            elif weight_decay:
                g = g + weight_decay * p
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
            if amsgrad:
                vmax[i] = np.maximum(vmax[i], v[i])
                denom = np.sqrt(vmax[i]) / np.sqrt(bc2) + eps
            else:
                denom = np.sqrt(v[i]) / np.sqrt(bc2) + eps
            ps[i] = p - lr / bc1 * m[i] / denom
        out.append([p.copy() for p in ps])
    return out


def run(q, opt_cls, steps=STEPS, **kw):
    params = q.params()
    opt = opt_cls(params, **kw)
    traj = []
    for _ in range(steps):
        opt.zero_grad()
        q.loss(params).backward()
        opt.step()
        traj.append([p.detach().numpy() for p in params])
    return traj, opt, params


def check(traj, ref):
    for got_step, ref_step in zip(traj, ref):
        for g, r in zip(got_step, ref_step):
            close(g, r)


SHAPES = [(3, 4), (5,)]


@pytest.mark.parametrize("kw", [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.3),
    dict(lr=0.05, momentum=0.8, nesterov=True),
    dict(lr=0.05, momentum=0.5, weight_decay=0.1),
    dict(lr=0.02, weight_decay=0.2),
    dict(lr=0.01, momentum=0.9, maximize=True),
])
def test_sgd_trajectory(kw):
    q = Quadratic(SHAPES)
    traj, _, _ = run(q, td.optim.SGD, **kw)
    check(traj, sgd_ref(q, STEPS, **kw))


@pytest.mark.parametrize("kw", [
    dict(lr=0.1),
    dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6),
    dict(lr=0.05, weight_decay=0.1),
    dict(lr=0.05, amsgrad=True),
    dict(lr=0.05, maximize=True),
])
def test_adam_trajectory(kw):
    q = Quadratic(SHAPES)
    traj, _, _ = run(q, td.optim.Adam, **kw)
    check(traj, adam_ref(q, STEPS, **kw))


@pytest.mark.parametrize("kw", [dict(lr=0.05), dict(lr=0.05, weight_decay=0.3, amsgrad=True)])
def test_adamw_trajectory(kw):
    q = Quadratic(SHAPES)
    traj, _, _ = run(q, td.optim.AdamW, **kw)
    ref_kw = dict(kw)
    ref_kw.setdefault("weight_decay", 1e-2)
    check(traj, adam_ref(q, STEPS, decoupled=True, **ref_kw))


def test_param_groups_and_hyperparameter_changes():
    q = Quadratic([(4,), (3,)])
    params = q.params()
    opt = td.optim.SGD([{"params": [params[0]]}, {"params": [params[1]], "lr": 0.01}],
                       lr=0.1, momentum=0.5)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[1]["lr"] == 0.01
    assert opt.param_groups[1]["momentum"] == 0.5
    q0 = Quadratic.__new__(Quadratic)
    q0.a, q0.c, q0.p0 = [q.a[0]], [q.c[0]], [q.p0[0]]
    q1 = Quadratic.__new__(Quadratic)
    q1.a, q1.c, q1.p0 = [q.a[1]], [q.c[1]], [q.p0[1]]
    for _ in range(3):
        opt.zero_grad()
        q.loss(params).backward()
        opt.step()
    close(params[0].detach().numpy(), sgd_ref(q0, 3, 0.1, momentum=0.5)[-1][0])
    close(params[1].detach().numpy(), sgd_ref(q1, 3, 0.01, momentum=0.5)[-1][0])
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [params[0]]})
    with pytest.raises(ValueError, match="Invalid learning rate"):
        td.optim.SGD(params, lr=-1)
    with pytest.raises(ValueError, match="Nesterov"):
        td.optim.SGD(params, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="beta"):
        td.optim.Adam(params, betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="empty"):
        td.optim.Adam([])


def test_zero_grad_and_params_without_grad():
    q = Quadratic([(3,), (2,)])
    params = q.params()
    opt = td.optim.SGD(params, lr=0.1, momentum=0.9)
    q.loss(params).backward()
    assert params[0].grad is not None
    opt.zero_grad(set_to_none=False)
    close(params[0].grad.detach().numpy(), np.zeros(3))
    opt.zero_grad()
    assert params[0].grad is None and params[1].grad is None
    # Only the first parameter gets a gradient: the second is skipped by the step.
    d = params[0] - td.tensor(q.c[0])
    td.op("sum", d * d).backward()
    before = params[1].detach().numpy()
    opt.step()
    np.testing.assert_array_equal(params[1].detach().numpy(), before)
    close(params[0].detach().numpy(), q.p0[0] - 0.1 * 2 * (q.p0[0] - q.c[0]))


@pytest.mark.parametrize("cls,kw", [
    (td.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True)),
    (td.optim.Adam, dict(lr=0.05, amsgrad=True)),
    (td.optim.AdamW, dict(lr=0.05)),
])
def test_optimizer_state_dict_round_trip(tmp_path, cls, kw):
    q = Quadratic(SHAPES)
    _, opt, params = run(q, cls, steps=3, **kw)
    sd = opt.state_dict()
    assert sorted(sd["state"]) == [0, 1]
    assert sd["param_groups"][0]["params"] == [0, 1]
    path = os.path.join(tmp_path, "opt")
    td.save({"opt": sd, "params": [p.detach() for p in params]}, path)
    loaded = td.load(path)
    params2 = [nn.Parameter(t) for t in loaded["params"]]
    opt2 = cls(params2, lr=123.0)
    opt2.load_state_dict(loaded["opt"])
    assert opt2.param_groups[0]["lr"] == kw["lr"]
    # The restored state is a copy: stepping the original leaves it alone.
    for o, ps in ((opt, params), (opt2, params2)):
        for _ in range(2):
            o.zero_grad()
            q.loss(ps).backward()
            o.step()
    for a, b in zip(params, params2):
        close(a.detach().numpy(), b.detach().numpy(), 0)
    full = (sgd_ref(q, 5, **kw) if cls is td.optim.SGD else
            adam_ref(q, 5, decoupled=cls is td.optim.AdamW,
                     **dict(kw, weight_decay=1e-2) if cls is td.optim.AdamW else kw))
    for a, r in zip(params2, full[-1]):
        close(a.detach().numpy(), r)
    with pytest.raises(ValueError, match="number of parameter groups"):
        opt2.load_state_dict({"state": {}, "param_groups": []})
    with pytest.raises(ValueError, match="size of optimizer's group"):
        opt2.load_state_dict({"state": {}, "param_groups": [dict(sd["param_groups"][0],
                                                                  params=[0])]})


# ---- the fused ops' own errors -----------------------------------------------------------
def leaf(shape, grad=True):
    p = nn.Parameter(td.tensor(RNG.standard_normal(shape)))
    if grad:
        td.op("sum", p * p).backward()
    return p


def test_sgd_step_op_errors():
    p, r = leaf((3,)), leaf((2, 2))
    with pytest.raises(td.InvalidArgument,
                       match=r"sgd_step: 2 inputs given; expected 1 per parameter for nparams 3"):
        td.op("sgd_step", [p, r], nparams=3, lr=0.1)
        td.default_client().sync()
    with pytest.raises(td.InvalidArgument,
                       match=r"sgd_step: 3 inputs given; expected 2 per parameter"):
        # momentum buffers: one per parameter, same shape
        td.op("sgd_step", [p, r, td.zeros(3)], nparams=2, lr=0.1, momentum=0.9)
        td.default_client().sync()
    with pytest.raises(td.InvalidArgument,
                       match=r"sgd_step: momentum buffer 1 is float64 \[4\], its parameter is "
                             r"float64 \[2,2\]"):
        td.op("sgd_step", [p, r, td.zeros(3, dtype=td.float64), td.zeros(4, dtype=td.float64)],
              nparams=2, lr=0.1, momentum=0.9)
        td.default_client().sync()
    before = p.detach().numpy()
    with pytest.raises(td.InvalidArgument, match=r"sgd_step: .*nparams 0"):
        td.op("sgd_step", [p], nparams=0, lr=0.1)
        td.default_client().sync()
    np.testing.assert_array_equal(p.detach().numpy(), before)


def test_adam_step_op_errors():
    p, r = leaf((3,)), leaf((2,))
    z = lambda *s: td.zeros(*s, dtype=td.float64)  # noqa: E731
    with pytest.raises(td.InvalidArgument,
                       match=r"adam_step: 5 inputs given; expected 3 per parameter"):
        td.op("adam_step", [p, r, z(3), z(2), z(3)], nparams=2, lr=0.1, step=1)
        td.default_client().sync()
    with pytest.raises(td.InvalidArgument,
                       match=r"adam_step: exp_avg_sq 1 is float64 \[5\], its parameter is "
                             r"float64 \[2\]"):
        td.op("adam_step", [p, r, z(3), z(2), z(3), z(5)], nparams=2, lr=0.1, step=1)
        td.default_client().sync()
    with pytest.raises(td.InvalidArgument, match=r"adam_step: step must be >= 1, got 0"):
        td.op("adam_step", [p, z(3), z(3)], nparams=1, lr=0.1, step=0)
        td.default_client().sync()
    with pytest.raises(td.InvalidArgument,
                       match=r"adam_step: 3 inputs given; expected 4 per parameter"):
        td.op("adam_step", [p, z(3), z(3)], nparams=1, lr=0.1, step=1, amsgrad=True)
        td.default_client().sync()
    before = p.detach().numpy()
    td.op("adam_step", [p, z(3), z(3)], nparams=1, lr=0.1, step=1)
    g = 2 * before
    # first Adam step: m_hat = g, v_hat = g^2, so p -= lr * g / (|g| + eps)
    close(p.detach().numpy(), before - 0.1 * g / (np.abs(g) + 1e-8))
