"""tensord.nn.functional.interpolate (and adaptive_avg_pool*d) against references written
from PyTorch's documented index rules (op_specs_interp.py: one float64 matrix per spatial
axis, built pixel by pixel), and the antialiased modes against Pillow's Image.resize on
float32 'F' images. Covers every mode with 1, 2 and 3 spatial dims, align_corners both
ways, size versus scale_factor (integer and not, with and without recompute_scale_factor),
up- and downsampling, batch and channel > 1, non-contiguous inputs, float16/bfloat16,
gradients (the adjoint matrices) and the errors PyTorch raises.

The generated suites cover the raw ops too: tests/python/test_ops.py (INTERP_SPECS) and
tests/python/test_gradcheck.py (first and second order against finite differences).
"""
import math

import numpy as np
import pytest
from PIL import Image

import tensord as td
from tensord.nn import functional as F

from op_specs_interp import apply_axes, area_matrix, linear_matrix, mats_for, nearest_matrix

pytestmark = pytest.mark.timeout(180)

RNG = np.random.default_rng(7)


# F.interpolate mode -> the raw op whose per-axis matrices (op_specs_interp.mats_for) it uses.
MODE_OP = {"nearest": "upsample_nearest", "nearest-exact": "upsample_nearest",
           "linear": "upsample_linear", "bilinear": "upsample_linear",
           "trilinear": "upsample_linear", "bicubic": "upsample_bicubic",
           "area": "adaptive_avg_pool"}


def expected(x, mode, out_size, align=False, scales=None, antialias=False):
    """Reference of F.interpolate(x, ...) given the output size and the scale factors the
    kernel sees (None: computed from the sizes)."""
    attrs = {"exact": mode == "nearest-exact", "align_corners": align, "antialias": antialias}
    for k in range(len(out_size) if scales is not None else 0):
        attrs["scale_%d" % k] = scales[k]
    return apply_axes(x, mats_for(MODE_OP[mode], x.shape[2:], out_size, attrs))


def check(got, want, tol):
    got = np.asarray(got, np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(1.0, np.abs(want).max()))


TOL = {np.float64: 1e-12, np.float32: 2e-6}

# (input shape, mode, kwargs)
CASES = [
    ((2, 3, 5), "nearest", {"size": 9}),
    ((2, 3, 9), "nearest", {"size": 4}),
    ((2, 3, 5), "nearest", {"scale_factor": 1.5}),
    ((2, 3, 7), "nearest", {"scale_factor": 0.6}),
    ((1, 2, 5, 6), "nearest", {"size": (10, 12)}),
    ((1, 2, 5, 6), "nearest", {"scale_factor": (2.3, 0.7)}),
    ((1, 2, 5, 6), "nearest", {"scale_factor": 2.3, "recompute_scale_factor": True}),
    ((1, 2, 3, 4, 5), "nearest", {"size": (4, 2, 7)}),
    ((1, 2, 3, 4, 5), "nearest", {"scale_factor": (1.7, 0.5, 1.3)}),
    ((2, 3, 5), "nearest-exact", {"size": 9}),
    ((2, 3, 11), "nearest-exact", {"scale_factor": 0.4}),
    ((1, 2, 5, 6), "nearest-exact", {"size": (3, 13)}),
    ((1, 2, 5, 6), "nearest-exact", {"scale_factor": (1.5, 2.5)}),
    ((1, 1, 3, 4, 5), "nearest-exact", {"scale_factor": 1.6}),
    ((2, 3, 5), "linear", {"size": 8}),
    ((2, 3, 5), "linear", {"size": 8, "align_corners": True}),
    ((2, 3, 9), "linear", {"scale_factor": 0.45}),
    ((2, 3, 9), "linear", {"scale_factor": 0.45, "align_corners": True}),
    ((2, 3, 5), "linear", {"scale_factor": 2.7, "recompute_scale_factor": True}),
    ((2, 2, 4, 5), "bilinear", {"size": (7, 3)}),
    ((2, 2, 4, 5), "bilinear", {"size": (7, 3), "align_corners": True}),
    ((2, 2, 6, 5), "bilinear", {"scale_factor": (1.5, 0.7)}),
    ((2, 2, 6, 5), "bilinear", {"scale_factor": 1.75, "align_corners": True}),
    ((1, 2, 6, 5), "bilinear", {"size": (1, 1), "align_corners": True}),
    ((1, 2, 3, 4, 5), "trilinear", {"size": (5, 3, 8)}),
    ((1, 2, 3, 4, 5), "trilinear", {"size": (5, 3, 8), "align_corners": True}),
    ((1, 2, 3, 4, 5), "trilinear", {"scale_factor": (1.5, 0.5, 2.2)}),
    ((2, 2, 4, 5), "bicubic", {"size": (7, 3)}),
    ((2, 2, 4, 5), "bicubic", {"size": (7, 3), "align_corners": True}),
    ((1, 3, 6, 7), "bicubic", {"scale_factor": (1.3, 0.6)}),
    ((1, 3, 6, 7), "bicubic", {"scale_factor": 2.5, "align_corners": True}),
    ((1, 3, 6, 7), "bicubic", {"scale_factor": 1.3, "recompute_scale_factor": True}),
    ((2, 3, 7), "area", {"size": 3}),
    ((2, 3, 4), "area", {"size": 9}),
    ((2, 2, 7, 5), "area", {"size": (3, 4)}),
    ((2, 2, 7, 5), "area", {"scale_factor": 0.5}),
    ((1, 2, 5, 4, 6), "area", {"size": (2, 3, 4)}),
]


def _ids(c):
    return "%s-%s-%s" % (c[1], "x".join(map(str, c[0])),
                         "-".join("%s=%s" % kv for kv in sorted(c[2].items())))


def _out_and_scales(shape, kw):
    dim = len(shape) - 2
    if "size" in kw:
        s = kw["size"]
        return (list(s) if isinstance(s, tuple) else [s] * dim), None
    sf = kw["scale_factor"]
    sf = list(sf) if isinstance(sf, tuple) else [sf] * dim
    out = [math.floor(shape[2 + i] * sf[i]) for i in range(dim)]
    return out, (None if kw.get("recompute_scale_factor") else sf)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape,mode,kw", CASES, ids=[_ids(c) for c in CASES])
def test_interpolate_matches_reference(shape, mode, kw, dtype):
    x = RNG.uniform(-1, 1, shape).astype(dtype)
    out_size, scales = _out_and_scales(shape, kw)
    if mode == "area":
        scales = None
    want = expected(x.astype(np.float64), mode, out_size, kw.get("align_corners", False),
                    scales)
    got = F.interpolate(td.tensor(x), mode=mode, **kw)
    assert got.dtype == (td.float64 if dtype == np.float64 else td.float32)
    check(got.numpy(), want, TOL[dtype])


def test_scale_factor_is_used_in_the_index_rule():
    # 5 -> floor(5 * 1.7) = 8: the kernel uses 1/1.7, not 5/8; the two disagree.
    x = RNG.uniform(-1, 1, (1, 1, 5)).astype(np.float64)
    got = F.interpolate(td.tensor(x), scale_factor=1.7, mode="linear").numpy()
    check(got, apply_axes(x, [linear_matrix(5, 8, False, 1.7)]), 1e-12)
    assert np.abs(got - apply_axes(x, [linear_matrix(5, 8)])).max() > 1e-3
    rec = F.interpolate(td.tensor(x), scale_factor=1.7, mode="linear",
                        recompute_scale_factor=True).numpy()
    check(rec, apply_axes(x, [linear_matrix(5, 8)]), 1e-12)
    # nearest: 4 -> floor(4 * 1.4) = 5 picks other sources with scale 1/1.4 than with 4/5.
    a = nearest_matrix(4, 5, 1.4)
    b = nearest_matrix(4, 5)
    assert not np.array_equal(a, b)
    xn = np.arange(4, dtype=np.float64).reshape(1, 1, 4)
    got = F.interpolate(td.tensor(xn), scale_factor=1.4).numpy()
    np.testing.assert_array_equal(got[0, 0], a @ xn[0, 0])


def test_hand_computed_values():
    # align_corners=False, 2 -> 4: sources -0.25 (clamped to 0), 0.25, 0.75, 1.25.
    x = np.array([[[1.0, 3.0]]])
    got = F.interpolate(td.tensor(x), size=4, mode="linear").numpy()
    np.testing.assert_allclose(got[0, 0], [1.0, 1.5, 2.5, 3.0])
    got = F.interpolate(td.tensor(x), size=4, mode="linear", align_corners=True).numpy()
    np.testing.assert_allclose(got[0, 0], [1.0, 5 / 3, 7 / 3, 3.0])
    # nearest 3 -> 5 (scale 0.6): floor(0, .6, 1.2, 1.8, 2.4) = 0 0 1 1 2;
    # nearest-exact: floor(0.3, 0.9, 1.5, 2.1, 2.7) = 0 0 1 2 2.
    y = np.array([[[10.0, 20.0, 30.0]]])
    np.testing.assert_array_equal(F.interpolate(td.tensor(y), size=5).numpy()[0, 0],
                                  [10, 10, 20, 20, 30])
    np.testing.assert_array_equal(
        F.interpolate(td.tensor(y), size=5, mode="nearest-exact").numpy()[0, 0],
        [10, 10, 20, 30, 30])
    # area 5 -> 2: windows [0, 3) and [2, 5).
    z = np.array([[[1.0, 2.0, 3.0, 4.0, 5.0]]])
    np.testing.assert_allclose(F.interpolate(td.tensor(z), size=2, mode="area").numpy()[0, 0],
                               [2.0, 4.0])
    # bicubic 1x1 -> 1x1 keeps the value; a constant image stays constant (weights sum 1).
    c = np.full((1, 1, 3, 4), 2.5)
    np.testing.assert_allclose(
        F.interpolate(td.tensor(c), size=(7, 2), mode="bicubic").numpy(), 2.5, rtol=1e-14)


def test_non_contiguous_input():
    base = RNG.uniform(-1, 1, (2, 3, 6, 10))
    t = td.tensor(base)[:, :, :, ::2].transpose(-1, -2)   # (2, 3, 5, 6), not contiguous
    assert not t.is_contiguous()
    x = np.swapaxes(base[:, :, :, ::2], -1, -2)
    for mode, kw in (("bilinear", {}), ("bicubic", {"align_corners": True}),
                     ("nearest", {}), ("area", {}), ("nearest-exact", {})):
        got = F.interpolate(t, size=(4, 9), mode=mode, **kw).numpy()
        check(got, expected(x, mode, (4, 9), kw.get("align_corners", False)), 1e-12)
    got = F.interpolate(t, size=(2, 3), mode="bilinear", antialias=True).numpy()
    check(got, expected(x, "bilinear", (2, 3), antialias=True), 1e-12)


def test_half_precision_computed_in_float():
    x = RNG.uniform(-1, 1, (1, 2, 5, 6)).astype(np.float32)
    for d, tol in ((td.float16, 2e-3), (td.bfloat16, 1e-2)):
        t = td.tensor(x, dtype=d)
        xr = td.op("cast", t, dtype=td.float32).numpy().astype(np.float64)
        got = F.interpolate(t, size=(8, 4), mode="bilinear")
        assert got.dtype == d
        g = td.op("cast", got, dtype=td.float32).numpy()
        check(g, expected(xr, "bilinear", (8, 4)), tol)


# ---- antialias against Pillow ---------------------------------------------------------
def pillow_resize(img, out_hw, resample):
    im = Image.fromarray(np.ascontiguousarray(img, np.float32), mode="F")
    return np.asarray(im.resize((out_hw[1], out_hw[0]), resample=resample), np.float64)


AA_SIZES = [((32, 27), (8, 9)), ((32, 27), (13, 7)), ((20, 20), (10, 10)),
            ((21, 17), (5, 16)), ((31, 12), (10, 30)), ((9, 11), (19, 23)),
            ((40, 7), (3, 7)), ((17, 29), (17, 11))]


@pytest.mark.parametrize("mode,resample", [("bilinear", Image.BILINEAR),
                                           ("bicubic", Image.BICUBIC)])
@pytest.mark.parametrize("in_hw,out_hw", AA_SIZES,
                         ids=["%dx%d-%dx%d" % (a + b) for a, b in AA_SIZES])
def test_antialias_matches_pillow(mode, resample, in_hw, out_hw):
    img = RNG.uniform(0, 255, in_hw).astype(np.float32)
    want = pillow_resize(img, out_hw, resample)
    x = td.tensor(img.reshape(1, 1, *in_hw))
    got = F.interpolate(x, size=out_hw, mode=mode, antialias=True, align_corners=False)
    assert got.dtype == td.float32
    got = got.numpy()[0, 0].astype(np.float64)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * 255)
    # float64 agrees with the float64 reference to rounding.
    got64 = F.interpolate(td.tensor(img.reshape(1, 1, *in_hw).astype(np.float64)),
                          size=out_hw, mode=mode, antialias=True).numpy()
    check(got64, expected(img.reshape(1, 1, *in_hw).astype(np.float64), mode, out_hw,
                          antialias=True), 1e-12)


def test_antialias_batch_channels_and_scale_factor():
    x = RNG.uniform(-1, 1, (2, 3, 23, 19)).astype(np.float32)
    got = F.interpolate(td.tensor(x), scale_factor=0.37, mode="bicubic", antialias=True)
    out = (math.floor(23 * 0.37), math.floor(19 * 0.37))
    want = expected(x.astype(np.float64), "bicubic", out, scales=[0.37, 0.37],
                    antialias=True)
    check(got.numpy(), want, 2e-6)
    for n in range(2):
        for c in range(3):
            p = pillow_resize(x[n, c], out, Image.BICUBIC)
            # Pillow uses in/out as its scale; 1/0.37 differs, so compare with recompute.
            r = F.interpolate(td.tensor(x[n:n + 1, c:c + 1]), scale_factor=0.37,
                              mode="bicubic", antialias=True, recompute_scale_factor=True)
            np.testing.assert_allclose(r.numpy()[0, 0], p, rtol=1e-5, atol=1e-5)


def test_antialias_upsampling():
    x = RNG.uniform(-1, 1, (1, 2, 4, 5))
    # Bilinear: the antialiased filter reduces to plain bilinear when upsampling.
    aa = F.interpolate(td.tensor(x), size=(9, 11), mode="bilinear", antialias=True).numpy()
    plain = F.interpolate(td.tensor(x), size=(9, 11), mode="bilinear").numpy()
    check(aa, plain, 1e-12)
    # Bicubic: PyTorch's antialiased path keeps Pillow's a = -0.5 (plain bicubic uses
    # A = -0.75), so upsampling with antialias equals Pillow, not plain bicubic.
    aa = F.interpolate(td.tensor(x.astype(np.float32)), size=(9, 11), mode="bicubic",
                       antialias=True).numpy()
    for c in range(2):
        p = pillow_resize(x[0, c].astype(np.float32), (9, 11), Image.BICUBIC)
        np.testing.assert_allclose(aa[0, c], p, rtol=1e-5, atol=1e-5)
    plain = F.interpolate(td.tensor(x), size=(9, 11), mode="bicubic").numpy()
    assert np.abs(aa - plain).max() > 1e-3


# ---- gradients ------------------------------------------------------------------------
@pytest.mark.parametrize("mode,kw", [("nearest", {}), ("nearest-exact", {}),
                                     ("bilinear", {"align_corners": True}),
                                     ("bilinear", {"antialias": True}),
                                     ("bicubic", {}), ("bicubic", {"antialias": True}),
                                     ("area", {})])
def test_gradient_is_the_adjoint(mode, kw):
    x = RNG.uniform(-1, 1, (2, 2, 7, 6))
    out = (4, 9)
    xt = td.tensor(x, requires_grad=True)
    y = F.interpolate(xt, size=out, mode=mode, **kw)
    g = RNG.uniform(-1, 1, (2, 2) + out)
    (gx,) = td.autograd.grad([y], [xt], [td.tensor(g)])
    # The reference is linear: column j of its matrix is its value at the j-th unit image,
    # and the gradient is that matrix transposed applied to g.
    want = np.zeros_like(x)
    flat = want.reshape(2, 2, -1)
    for j in range(x.shape[2] * x.shape[3]):
        e = np.zeros((1, 1) + x.shape[2:])
        e.reshape(-1)[j] = 1.0
        col = expected(e, mode, out, kw.get("align_corners", False),
                       antialias=kw.get("antialias", False))[0, 0]
        flat[:, :, j] = np.tensordot(g, col, axes=([2, 3], [0, 1]))
    check(gx.numpy(), want, 1e-12)


def test_second_order_gradient_flows():
    x = RNG.uniform(-1, 1, (1, 1, 4, 5))
    xt = td.tensor(x, requires_grad=True)
    y = F.interpolate(xt, size=(6, 3), mode="bicubic")
    (gx,) = td.autograd.grad([(y * y).sum()], [xt], create_graph=True)
    # d/dx sum(gx * v) = 2 M^T M v for the linear map M.
    v = RNG.uniform(-1, 1, x.shape)
    (hv,) = td.autograd.grad([(gx * td.tensor(v)).sum()], [xt])
    m = np.zeros((18, 20))
    for j in range(20):
        e = np.zeros((1, 1, 4, 5))
        e.reshape(-1)[j] = 1.0
        m[:, j] = expected(e, "bicubic", (6, 3)).reshape(-1)
    check(hv.numpy().reshape(-1), 2 * m.T @ (m @ v.reshape(-1)), 1e-12)


# ---- adaptive pooling and aliases ----------------------------------------------------------
def test_adaptive_avg_pool_functions():
    x = RNG.uniform(-1, 1, (2, 3, 7, 5))
    got = F.adaptive_avg_pool2d(td.tensor(x), (3, None)).numpy()
    check(got, apply_axes(x, [area_matrix(7, 3), area_matrix(5, 5)]), 1e-12)
    got = F.adaptive_avg_pool2d(td.tensor(x[0]), 2).numpy()   # unbatched [C, H, W]
    check(got, apply_axes(x[0], [area_matrix(7, 2), area_matrix(5, 2)]), 1e-12)
    got = F.adaptive_avg_pool1d(td.tensor(x[0, 0]), 4).numpy()
    check(got, apply_axes(x[0, 0], [area_matrix(5, 4)]), 1e-12)
    v = RNG.uniform(-1, 1, (1, 2, 5, 4, 3))
    got = F.adaptive_avg_pool3d(td.tensor(v), (2, 3, 1)).numpy()
    check(got, apply_axes(v, [area_matrix(5, 2), area_matrix(4, 3), area_matrix(3, 1)]),
          1e-12)


def test_upsample_aliases():
    x = RNG.uniform(-1, 1, (1, 2, 3, 4))
    check(F.upsample_bilinear(td.tensor(x), size=(5, 7)).numpy(),
          expected(x, "bilinear", (5, 7), align=True), 1e-12)
    check(F.upsample_nearest(td.tensor(x), scale_factor=2).numpy(),
          expected(x, "nearest", (6, 8), scales=[2.0, 2.0]), 1e-12)
    check(F.upsample(td.tensor(x), size=(2, 3), mode="bicubic").numpy(),
          expected(x, "bicubic", (2, 3)), 1e-12)


# ---- errors -------------------------------------------------------------------------------
def test_python_errors_like_pytorch():
    x3 = td.tensor(np.zeros((1, 2, 4)))
    x4 = td.tensor(np.zeros((1, 2, 4, 4)))
    x5 = td.tensor(np.zeros((1, 1, 2, 2, 2)))
    x2 = td.tensor(np.zeros((2, 4)))
    for mode in ("nearest", "area", "nearest-exact"):
        with pytest.raises(ValueError, match="align_corners"):
            F.interpolate(x4, size=2, mode=mode, align_corners=False)
    with pytest.raises(NotImplementedError, match="3D input, but bilinear"):
        F.interpolate(x3, size=2, mode="bilinear")
    with pytest.raises(NotImplementedError, match="4D input, but linear"):
        F.interpolate(x4, size=2, mode="linear")
    with pytest.raises(NotImplementedError, match="4D input, but trilinear"):
        F.interpolate(x4, size=2, mode="trilinear")
    with pytest.raises(NotImplementedError, match="5D input, but bilinear"):
        F.interpolate(x5, size=2, mode="bilinear")
    with pytest.raises(NotImplementedError, match="Only 3D, 4D and 5D"):
        F.interpolate(x5, size=2, mode="bicubic")
    with pytest.raises(NotImplementedError, match="Only 3D, 4D and 5D"):
        F.interpolate(x4, size=2, mode="cubic")
    with pytest.raises(NotImplementedError, match="Only 3D, 4D and 5D"):
        F.interpolate(x2, size=[], mode="nearest")
    with pytest.raises(ValueError, match="only one of size or scale_factor"):
        F.interpolate(x4, size=2, scale_factor=2.0)
    with pytest.raises(ValueError, match="either size or scale_factor"):
        F.interpolate(x4)
    with pytest.raises(ValueError, match="same number of spatial dimensions"):
        F.interpolate(x4, size=(2, 3, 4))
    with pytest.raises(ValueError, match="same number of spatial dimensions"):
        F.interpolate(x4, scale_factor=(2.0,))
    with pytest.raises(TypeError, match="expected size"):
        F.interpolate(x4, size=(2.5, 3))
    with pytest.raises(ValueError, match="recompute_scale_factor"):
        F.interpolate(x4, size=2, recompute_scale_factor=True)
    with pytest.raises(ValueError, match="Anti-alias"):
        F.interpolate(x4, size=2, mode="nearest", antialias=True)
    with pytest.raises(ValueError, match="Anti-alias"):
        F.interpolate(x3, size=2, mode="linear", antialias=True)


def test_daemon_errors_name_the_op(client):
    x3 = td.tensor(np.zeros((1, 2, 4)))
    x4 = td.tensor(np.zeros((1, 2, 4, 4)))
    bad = [
        ("upsample_bicubic", x3, {"size": [5]}, "bicubic"),
        ("upsample_linear", x4, {"size": [5]}, "got 4-d"),
        ("upsample_linear", x3, {"size": [5], "antialias": True}, "antialias"),
        ("upsample_nearest", x4, {"size": [0, 3]}, "greater than 0"),
        ("upsample_nearest", x3, {"size": [5], "scale_1": 2.0}, "scale_1"),
        ("upsample_linear", x3, {"size": [5], "scale_0": -1.0}, "scale_0"),
        ("upsample_nearest", x4, {"size": [1, 2, 3, 4]}, "size"),
        ("adaptive_avg_pool", x3, {"output_size": [2, 2, 2]}, "expected"),
        ("upsample_linear_backward", x4, {"input_size": [0, 2]}, "greater than 0"),
    ]
    for name, x, attrs, words in bad:
        with pytest.raises(td.InvalidArgument) as ei:
            td.op(name, x, **attrs).numpy()
        assert name in str(ei.value) and words in str(ei.value), str(ei.value)
    with pytest.raises(td.InvalidArgument, match="upsample_nearest"):
        td.op("upsample_nearest", td.tensor(np.zeros((1, 1, 2), np.int64)), size=[3]).numpy()
    # Downscaling to nothing: floor(4 * 0.1) = 0.
    with pytest.raises(td.InvalidArgument, match="upsample_linear"):
        F.interpolate(x4, scale_factor=0.1, mode="bilinear").numpy()
