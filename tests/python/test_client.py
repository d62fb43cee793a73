"""The Python client: operators and PyTorch promotion of Python numbers, indexing, data
access, errors, chunked and large transfers, the embedded daemon, dtype round trips."""
import gc
import io
import os

import numpy as np
import pytest

import tensord as td
from tensord._progress import Progress
from tensord.client import bf16_bits_to_f32, f32_to_bf16_bits

import tdtest_daemon

pytestmark = pytest.mark.timeout(180)


def np_of(t):
    return t.numpy()


# ---- operators with Python numbers: PyTorch promotion ---------------------------------------
@pytest.mark.parametrize("dtype,scalar,expected", [
    (td.int32, 2.5, td.float32),
    (td.int32, 2, td.int32),
    (td.int8, 3, td.int8),
    (td.uint8, 1.5, td.float32),
    (td.float16, 2.5, td.float16),
    (td.bfloat16, 2, td.bfloat16),
    (td.float64, 2.5, td.float64),
    (td.bool_, 1, td.int64),
    (td.bool_, 1.5, td.float32),
    (td.bool_, True, td.bool_),
    (td.int64, True, td.int64),
    (td.float32, 1j, td.complex64),
    (td.float64, 1j, td.complex128),
    (td.int16, 2j, td.complex64),
])
def test_scalar_promotion(client, dtype, scalar, expected):
    x = td.tensor(np.array([1, 0, 3]), dtype=dtype)
    assert (x + scalar).dtype == expected
    assert (scalar + x).dtype == expected
    assert (x * scalar).dtype == expected


def test_tensor_promotion(client):
    a8 = td.tensor(np.array([1, 2], np.int8))
    u8 = td.tensor(np.array([3, 4], np.uint8))
    assert (a8 + u8).dtype == td.int16
    i32 = td.tensor(np.array([1, 2], np.int32))
    h = td.tensor(np.array([0.5, 0.25], np.float16))
    assert (i32 + h).dtype == td.float16
    i64 = td.tensor(np.array([1, 2], np.int64))
    f32_0d = td.tensor(np.float32(0.5))
    assert (i64 + f32_0d).dtype == td.float32        # 0-d raises the category
    f32 = td.tensor(np.array([1.0, 2.0], np.float32))
    f64_0d = td.tensor(np.float64(0.5))
    assert (f32 + f64_0d).dtype == td.float32        # but not the precision
    i64_0d = td.tensor(np.int64(5))
    assert (i32 + i64_0d).dtype == td.int32
    c64 = td.tensor(np.array([1j], np.complex64))
    assert (c64 + td.tensor(np.array([1.0], np.float64))).dtype == td.complex128
    bf = td.tensor(np.array([1.0], np.float32), dtype=td.bfloat16)
    assert (bf + h).dtype == td.float32


def test_operators_values(client):
    a_np = np.array([[1, -2, 3], [4, 5, -6]], np.int32)
    b_np = np.array([[2, 3, 1], [1, 2, 4]], np.int32)
    a, b = td.tensor(a_np), td.tensor(b_np)
    np.testing.assert_array_equal(np_of(a + b), a_np + b_np)
    np.testing.assert_array_equal(np_of(a - b), a_np - b_np)
    np.testing.assert_array_equal(np_of(a * b), a_np * b_np)
    np.testing.assert_allclose(np_of(a / b), a_np / b_np, rtol=1e-6)
    assert (a / b).dtype == td.float32
    np.testing.assert_array_equal(np_of(a // b), a_np // b_np)
    np.testing.assert_array_equal(np_of(a % b), a_np % b_np)
    np.testing.assert_array_equal(np_of(a ** b), a_np ** b_np)
    np.testing.assert_array_equal(np_of(a @ b.T), a_np @ b_np.T)
    np.testing.assert_array_equal(np_of(-a), -a_np)
    np.testing.assert_array_equal(np_of(abs(a)), np.abs(a_np))
    np.testing.assert_array_equal(np_of(a & b), a_np & b_np)
    np.testing.assert_array_equal(np_of(a | b), a_np | b_np)
    np.testing.assert_array_equal(np_of(a ^ b), a_np ^ b_np)
    np.testing.assert_array_equal(np_of(~a), ~a_np)
    np.testing.assert_array_equal(np_of(a << b), a_np << b_np)
    np.testing.assert_array_equal(np_of(a >> 1), a_np >> 1)
    for op in ("__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__ne__"):
        r = getattr(a, op)(b)
        assert r.dtype == td.bool_
        np.testing.assert_array_equal(np_of(r), getattr(a_np, op)(b_np))


def test_reflected_operators_with_scalars(client):
    x_np = np.array([1.0, 2.0, 4.0], np.float32)
    x = td.tensor(x_np)
    np.testing.assert_allclose(np_of(2.5 - x), 2.5 - x_np)
    np.testing.assert_allclose(np_of(1 / x), 1 / x_np)
    np.testing.assert_allclose(np_of(2 ** x), 2 ** x_np)
    np.testing.assert_allclose(np_of(7 // x), 7 // x_np)
    np.testing.assert_allclose(np_of(7 % x), 7 % x_np)
    np.testing.assert_allclose(np_of(x ** 2), x_np ** 2)
    np.testing.assert_array_equal(np_of(x > 1.5), x_np > 1.5)
    np.testing.assert_array_equal(np_of(2 < x), 2 < x_np)
    i = td.tensor(np.array([1, 2, 3], np.int64))
    np.testing.assert_array_equal(np_of(1 << i), 1 << np.array([1, 2, 3]))
    np.testing.assert_array_equal(np_of(6 & i), 6 & np.array([1, 2, 3]))
    r = 10 - td.tensor(np.array([1, 2], np.int16))
    assert r.dtype == td.int16
    np.testing.assert_array_equal(np_of(r), [9, 8])
    # NumPy arrays on the left defer to the tensor
    r = np.array([1.0, 1.0, 1.0], np.float32) + x
    assert isinstance(r, td.Tensor)
    np.testing.assert_allclose(np_of(r), x_np + 1)


# ---- indexing -----------------------------------------------------------------------------
X_NP = np.arange(60, dtype=np.float32).reshape(3, 4, 5)


@pytest.mark.parametrize("key", [
    1, -1, (slice(None), slice(1, 3)), (slice(None, None, 2), slice(None, None, -1)),
    (Ellipsis, -1), (None, 1, Ellipsis, None), (1, 2, 3), (slice(-3, None), slice(None),
                                                            slice(4, 0, -2)),
    (slice(None), [2, 0]), np.array([True, False, True]), (Ellipsis, [-1, 0, 0]),
    (slice(1, None), None, slice(None, None, 3)), Ellipsis, (), (slice(5, 10),),
    np.array([[0, 2], [1, 1]]),
], ids=lambda k: repr(k).replace(" ", ""))
def test_indexing_like_numpy(client, key):
    x = td.tensor(X_NP)
    got = x[key]
    exp = X_NP[key]
    assert got.shape == exp.shape
    np.testing.assert_array_equal(np_of(got), exp)


def test_indexing_with_tensors_and_masks(client):
    x = td.tensor(X_NP)
    idx = td.tensor(np.array([2, 0], np.int64))
    np.testing.assert_array_equal(np_of(x[idx]), X_NP[[2, 0]])
    mask = X_NP % 3 == 0
    np.testing.assert_array_equal(np_of(x[td.tensor(mask)]), X_NP[mask])
    np.testing.assert_array_equal(np_of(x[1][x[1] > 30]), X_NP[1][X_NP[1] > 30])


def test_indexing_errors(client):
    x = td.tensor(X_NP)
    with pytest.raises(IndexError):
        x[3]
    with pytest.raises(IndexError):
        x[0, 0, 0, 0]
    with pytest.raises(IndexError):
        x[:, -5]


# ---- data access ----------------------------------------------------------------------------
def test_item_tolist_numpy(client):
    t = td.tensor([[1.5, 2.0], [3.0, -4.0]])
    assert t.dtype == td.float32 and t.shape == (2, 2) and t.ndim == 2 and t.numel() == 4
    assert t.size(1) == 2 and len(t) == 2 and t.device == "cpu"
    assert t.tolist() == [[1.5, 2.0], [3.0, -4.0]]
    assert t[1, 1].item() == -4.0
    a = t.numpy()
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, [[1.5, 2.0], [3.0, -4.0]])
    assert float(t[0, 0]) == 1.5 and int(t[1, 0]) == 3
    assert bool(t[0, 0]) is True
    assert [r.tolist() for r in t] == [[1.5, 2.0], [3.0, -4.0]]
    s = td.tensor(7)
    assert s.dtype == td.int64 and s.shape == () and s.item() == 7
    assert td.tensor(True).dtype == td.bool_
    assert td.tensor(1 + 2j).item() == 1 + 2j
    assert np.asarray(t).shape == (2, 2)
    with pytest.raises(ValueError):
        t.item()
    with pytest.raises(TypeError):
        len(s)
    r = repr(t)
    assert "tensor(" in r and "-4." in r
    assert "int8" in repr(td.tensor(np.array([1], np.int8)))


def test_methods_and_generated_functions(client):
    x_np = np.array([[0.5, -1.0, 2.0], [3.0, 0.25, -0.75]], np.float32)
    x = td.tensor(x_np)
    np.testing.assert_allclose(np_of(td.sin(x)), np.sin(x_np), rtol=1e-6)
    np.testing.assert_allclose(np_of(x.exp()), np.exp(x_np), rtol=1e-6)
    np.testing.assert_allclose(np_of(td.op("tanh", x)), np.tanh(x_np), rtol=1e-6)
    np.testing.assert_allclose(np_of(x.sum(dim=1)), x_np.sum(1), rtol=1e-6)
    np.testing.assert_allclose(np_of(x.sum(1, True)), x_np.sum(1, keepdims=True), rtol=1e-6)
    assert x.sum().shape == ()
    np.testing.assert_allclose(np_of(x.var(dim=0, correction=0)), x_np.var(0), rtol=1e-6)
    np.testing.assert_allclose(np_of(x.mean()), x_np.mean(), rtol=1e-6)
    np.testing.assert_array_equal(np_of(x.argmax(dim=1)), x_np.argmax(1))
    np.testing.assert_array_equal(np_of(x.reshape(3, 2)), x_np.reshape(3, 2))
    np.testing.assert_array_equal(np_of(x.reshape((6,))), x_np.reshape(6))
    np.testing.assert_array_equal(np_of(x.permute(1, 0)), x_np.T)
    np.testing.assert_array_equal(np_of(x.T), x_np.T)
    np.testing.assert_array_equal(np_of(x.mT), x_np.T)
    np.testing.assert_array_equal(np_of(x.unsqueeze(0)), x_np[None])
    np.testing.assert_array_equal(np_of(x.flip(0)), x_np[::-1])
    np.testing.assert_array_equal(np_of(x.clamp(min=0.0, max=1.0)), np.clip(x_np, 0, 1))
    np.testing.assert_array_equal(np_of(round(x)), np.round(x_np))
    np.testing.assert_array_equal(np_of(td.cat([x, x], dim=1)), np.concatenate([x_np] * 2, 1))
    np.testing.assert_array_equal(np_of(td.stack([x, x])), np.stack([x_np] * 2))
    parts = td.split(x, [1, 2], dim=1)
    assert [p.shape for p in parts] == [(2, 1), (2, 2)]
    assert len(x.chunk(2, dim=1)) == 2
    idx = td.tensor(np.array([[2, 0], [1, 1]], np.int64))
    np.testing.assert_array_equal(np_of(x.gather(1, idx)), np.take_along_axis(x_np, idx.numpy(),
                                                                              1))
    np.testing.assert_array_equal(np_of(td.index_select(x, 1, td.tensor([2, 0]))),
                                  x_np[:, [2, 0]])
    np.testing.assert_array_equal(np_of(td.where(x > 0, x, 0.0)), np.where(x_np > 0, x_np, 0))
    np.testing.assert_array_equal(np_of(x.masked_fill(x < 0, 9.0)), np.where(x_np < 0, 9, x_np))
    assert x.to(td.float64).dtype == td.float64 and x.to("float32") is x
    assert x.astype(np.int32).dtype == td.int32 and x.long().dtype == td.int64
    np.testing.assert_array_equal(np_of(td.zeros(2, 3, dtype=td.int8)), np.zeros((2, 3)))
    np.testing.assert_array_equal(np_of(td.ones((2,))), [1, 1])
    np.testing.assert_array_equal(np_of(td.full((2, 2), 3)), np.full((2, 2), 3))
    assert td.full((2,), 3).dtype == td.int64 and td.full((2,), 1.5).dtype == td.float32
    np.testing.assert_array_equal(np_of(td.arange(5)), np.arange(5))
    np.testing.assert_array_equal(np_of(td.arange(1, 10, 3)), [1, 4, 7])
    assert td.arange(5).dtype == td.int64 and td.arange(0.0, 1.0, 0.5).dtype == td.float32
    np.testing.assert_allclose(np_of(td.linspace(0, 1, 5)), np.linspace(0, 1, 5))
    np.testing.assert_array_equal(np_of(td.eye(3)), np.eye(3))
    np.testing.assert_array_equal(np_of(td.full_like(x, 2.0)), np.full((2, 3), 2.0))
    assert td.zeros_like(x, dtype=td.int16).dtype == td.int16
    assert "sin" in dir(td) and "sin" in dir(x)
    with pytest.raises(TypeError):
        x.sum(bogus=1)
    with pytest.raises(AttributeError):
        td.no_such_op
    with pytest.raises(AttributeError):
        x.no_such_op


# ---- errors ---------------------------------------------------------------------------------
def test_errors_carry_the_daemons_message(client):
    # Ops are asynchronous: a bad op returns a tensor at once and its error (the daemon's
    # class and message) is raised by the next synchronising call.
    a = td.ones(2, 3)
    b = td.ones(4, 5)
    bad = a @ b
    with pytest.raises(td.InvalidArgument) as ei:
        bad.numpy()
    e = ei.value
    assert isinstance(e, td.TensordError) and isinstance(e, ValueError)
    assert e.code == "INVALID_ARGUMENT" and e.code_value == 3
    assert "matmul" in e.message and "matmul" in str(e)
    # the op's own node index, as if it had been sent alone (batching is invisible)
    assert e.message.startswith("node 0 (matmul): "), e.message
    assert "3 != 4" in e.message
    with pytest.raises(td.TensordError):
        (td.ones(2, 3) + td.ones(4)).numpy()
    # the session goes on after an error
    np.testing.assert_array_equal(np_of(a + 1), np.full((2, 3), 2.0))
    ghost = td.Tensor(client, 987654321, td.float32, (2,))
    with pytest.raises(td.NotFound):
        ghost.numpy()
    ghost._id = 0
    with pytest.raises(td.TensordError) as ei:
        td.op("reshape", a, shape=[7]).numpy()
    assert "reshape" in ei.value.message and "7" in ei.value.message
    with pytest.raises(AttributeError):
        td.op("definitely_not_an_op", a)


def test_frees_are_batched_and_sent(client):
    gc.collect()
    client.stats()                      # sends the frees queued so far
    base = client.stats()["session_tensors"]
    ts = [td.ones(4) for _ in range(20)]
    assert client.stats()["session_tensors"] == base + 20
    del ts
    assert client.stats()["session_tensors"] == base


# ---- transfers ------------------------------------------------------------------------------
@pytest.mark.parametrize("dt", td.dtypes, ids=lambda d: d.name)
def test_dtype_round_trip(client, dt):
    rng = np.random.default_rng(dt.code)
    if dt is td.bool_:
        a = rng.random((5, 7)) < 0.5
    elif dt.kind in "iu":
        info = np.iinfo(dt.numpy_dtype)
        a = rng.integers(info.min, info.max, (5, 7), endpoint=True).astype(dt.numpy_dtype)
    elif dt.kind == "c":
        a = (rng.normal(size=(5, 7)) + 1j * rng.normal(size=(5, 7))).astype(dt.numpy_dtype)
    elif dt is td.bfloat16:
        a = bf16_bits_to_f32(f32_to_bf16_bits(rng.normal(size=(5, 7)).astype(np.float32)))
    else:
        a = (rng.normal(size=(5, 7)) * 100).astype(dt.numpy_dtype)
    t = td.tensor(a, dtype=dt)
    assert t.dtype == dt and t.shape == (5, 7)
    back = t.numpy()
    assert back.dtype == dt.numpy_dtype
    np.testing.assert_array_equal(back, a)
    # a non-contiguous view downloads in C order too
    np.testing.assert_array_equal(t.T.numpy(), a.T)


def test_list_and_numpy_dtype_inference(client):
    assert td.tensor([1.0, 2]).dtype == td.float32
    assert td.tensor([1, 2]).dtype == td.int64
    assert td.tensor([True, False]).dtype == td.bool_
    assert td.tensor([1j, 2]).dtype == td.complex64
    assert td.tensor(np.array([1.0])).dtype == td.float64
    assert td.tensor(np.array([1.0], np.float16)).dtype == td.float16
    assert td.from_numpy(np.array([1], np.uint8)).dtype == td.uint8
    assert td.asarray([1, 2], dtype=td.float64).dtype == td.float64
    x = td.tensor([1, 2])
    assert td.asarray(x) is x
    np.testing.assert_array_equal(td.tensor([[1, 2], [3, 4]], dtype="int8").numpy(),
                                  [[1, 2], [3, 4]])
    b = td.tensor(np.array([1.0, 2.5, 1e-3], np.float32), dtype=td.bfloat16)
    assert b.dtype == td.bfloat16 and b.numpy().dtype == np.float32
    np.testing.assert_allclose(b.numpy(), [1.0, 2.5, 1e-3], rtol=1e-2)


def test_chunked_transfer_small_max_frame_data():
    d = tdtest_daemon.Daemon(extra_args=["--max-frame-data", "65536"], tcp=False)
    try:
        with td.Client(d.unix_address) as c:
            assert c.max_frame_data == 65536
            a = np.random.default_rng(5).normal(size=(1 << 17,))      # 1 MiB of float64
            t = td.tensor(a, client=c)
            np.testing.assert_array_equal(t.numpy(), a)
            np.testing.assert_allclose((t * 2).numpy(), a * 2)
            big = td.tensor(np.arange(3 << 16, dtype=np.int32).reshape(3, -1), client=c)
            np.testing.assert_array_equal(big[:, 1:].numpy(),
                                          np.arange(3 << 16, dtype=np.int32).reshape(3, -1)[:, 1:])
    finally:
        d.stop_and_check()


def test_large_transfer_100mb(client):
    a = np.random.default_rng(7).random(25_000_000, dtype=np.float32)    # 100 MB
    t = td.tensor(a)
    back = t.numpy()
    assert back.shape == a.shape
    assert np.array_equal(back, a)
    del t, back


def test_tcp_client(tcp_client):
    c = tcp_client
    x = td.tensor(np.arange(6.0).reshape(2, 3), client=c)
    np.testing.assert_array_equal((x @ x.T).numpy(), np.arange(6.0).reshape(2, 3) @
                                  np.arange(6.0).reshape(2, 3).T)
    assert c.seed == 99


# ---- the embedded daemon ----------------------------------------------------------------------
def test_connect_without_address_starts_and_stops_a_daemon(client):
    assert os.environ.get("TENSORD_BIN")
    c = td.connect(seed=5, set_default=False)
    try:
        proc = c._proc
        assert proc is not None and proc.poll() is None
        assert c.address.startswith("unix://")
        x = td.arange(10, client=c)
        assert x.sum().item() == 45
        assert c.seed == 5
    finally:
        rc = c.close()
    assert rc == 0
    assert proc.poll() == 0
    assert not os.path.exists(c.address[len("unix://"):])
    with pytest.raises(td.Unavailable):
        td.arange(3, client=c)


def test_connect_missing_binary(monkeypatch):
    monkeypatch.setenv("TENSORD_BIN", "/nonexistent/tensord")
    with pytest.raises(FileNotFoundError, match="TENSORD_BIN"):
        td.connect(set_default=False)


# ---- progress bar -----------------------------------------------------------------------------
class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_draws_on_a_tty():
    s = _Tty()
    p = Progress("upload", 200 << 20, stream=s)
    assert p.active
    p.update(100 << 20)
    p.update(100 << 20)
    p.close()
    out = s.getvalue()
    assert "100.0%" in out and "MiB/s" in out and out.endswith("\n")
    quiet = io.StringIO()
    p = Progress("upload", 200 << 20, stream=quiet)
    p.update(1 << 20)
    p.close()
    assert quiet.getvalue() == ""
    s = _Tty()
    p = Progress("upload", 1 << 20, stream=s)
    p.update(1 << 20)
    p.close()
    assert s.getvalue() == ""
