#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets and the fuzz_run dictionary.

Usage: build/venv/bin/python tests/fuzz/gen_corpus.py
Needs protoc and the protobuf Python package. Writes tests/fuzz/corpus/<target>/seed-*
(overwriting earlier seeds, leaving other files such as crash regressions alone) and
tests/fuzz/fuzz_run.dict (op and attribute names from server/engine/ops.def).
"""
import importlib
import re
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
HDR = struct.Struct("<4sHBBIIQQQ")
M_HANDSHAKE, M_PUT, M_GET, M_FREE, M_RUN, M_LIST_OPS, M_STATS = range(1, 8)
M_LIST_SESSIONS, M_KILL_SESSION, M_SET_QUOTA, M_DRAIN, M_SHUTDOWN, M_HEALTH = range(8, 14)
# The tokens of fz_server.h's token file (fuzz_admin).
FZ_ADMIN_TOKEN, FZ_USER_TOKEN = "fz-admin-0123456789abcdef", "fz-alice-0123456789abcdef"
F32, F64, I64, I32, C64 = 8, 9, 5, 4, 10


def load_pb():
    out = Path(tempfile.mkdtemp())
    subprocess.run(["protoc", f"--python_out={out}", f"--proto_path={REPO / 'proto'}",
                    str(REPO / "proto" / "tensord.proto")], check=True)
    sys.path.insert(0, str(out))
    return importlib.import_module("tensord_pb2")


pb = load_pb()


def attr(name, **kw):
    a = pb.Attr(name=name)
    if "ints" in kw:
        a.ints.values.extend(kw["ints"])
    elif "scalar" in kw:
        v = kw["scalar"]
        if isinstance(v, bool):
            a.scalar.b = v
        elif isinstance(v, int):
            a.scalar.i = v
        elif isinstance(v, complex):
            a.scalar.c.re, a.scalar.c.im = v.real, v.imag
        else:
            a.scalar.f = v
    else:
        (k, v), = kw.items()
        setattr(a, k, v)
    return a


def node(op, inputs, outputs, *attrs):
    return pb.Node(op=op, inputs=inputs, outputs=outputs, attrs=list(attrs))


def run(*nodes, discard=(), plan_only=False):
    return pb.RunRequest(nodes=list(nodes), discard=list(discard),
                         plan_only=plan_only).SerializeToString()


# Fixture ids in fuzz_run.c: 1 f32[2,3], 2 i64[3], 3 bool[2,3], 4 c64[2,2], 5 f64[],
# 6 u8[4,1], 7 f16[0,3], 8 i32[3,2] non-contiguous, 9 i64[2,3] of 0/1, 10 bf16[3].
RUN_SEEDS = [
    run(node("add", [1, 5], [100])),
    run(node("cast", [8], [100], attr("dtype", dtype=F64)),
        node("sum", [100], [101], attr("dim", ints=[0]), attr("keepdim", b=True)),
        discard=[100]),
    run(node("zeros", [], [100], attr("shape", ints=[2, 2]), attr("dtype", dtype=I32)),
        node("arange", [], [101], attr("end", scalar=5)),
        node("mul", [100, 4], [102])),
    run(node("reshape", [1], [100], attr("shape", ints=[3, -1])),
        node("matmul", [1, 100], [101])),
    run(node("gather", [1, 9], [100], attr("dim", i=1))),
    run(node("where", [3, 1, 5], [100])),
    run(node("expand", [6], [100], attr("shape", ints=[4, 3])),
        node("sum", [100], [101])),
    run(node("split", [1], [100, 101], attr("split_size", i=1), attr("dim", i=0))),
    run(node("cat", [1, 1], [100], attr("dim", i=0)),
        node("stack", [1, 1], [101], attr("dim", i=1))),
    run(node("randn", [], [100], attr("shape", ints=[3])),
        node("rand_like", [1], [101])),
    run(node("scatter", [1, 9, 1], [100], attr("dim", i=1), attr("reduce", s="add"))),
    run(node("masked_fill", [1, 3], [100], attr("value", scalar=2.5))),
    run(node("full", [], [100], attr("shape", ints=[2]), attr("fill_value", scalar=1 + 2j))),
    run(node("linspace", [], [100], attr("start", scalar=0), attr("end", scalar=1.0),
             attr("steps", i=5)),
        node("eye", [], [101], attr("n", i=3))),
    run(node("cumsum", [2], [100], attr("dim", i=0)),
        node("logsumexp", [1], [101], attr("dim", ints=[1])),
        node("var", [1], [102]),
        node("argmax", [1], [103])),
    run(node("slice", [1], [100], attr("dim", i=1), attr("start", i=-2), attr("step", i=1)),
        node("select", [1], [101], attr("dim", i=0), attr("index", i=-1)),
        node("narrow", [8], [102], attr("dim", i=0), attr("start", i=1), attr("length", i=2))),
    run(node("flip", [8], [100], attr("dims", ints=[0])),
        node("roll", [1], [101], attr("shifts", ints=[1])),
        node("tril", [1], [102]),
        node("permute", [1], [103], attr("dims", ints=[1, 0]))),
    run(node("squeeze", [6], [100]),
        node("unsqueeze", [2], [101], attr("dim", i=0)),
        node("flatten", [8], [102]),
        node("chunk", [1], [103, 104], attr("chunks", i=2), attr("dim", i=1))),
    run(node("view", [1], [100], attr("shape", ints=[6])),
        node("index_select", [1, 2], [101], attr("dim", i=0)),
        plan_only=True),
    run(node("div", [1, 2], [100], attr("rounding_mode", s="floor")),
        node("pow", [4, 5], [101]),
        node("clamp", [1], [102], attr("min", scalar=-1), attr("max", scalar=1.5)),
        node("bitwise_left_shift", [2, 2], [103])),
    run(node("abs", [4], [100]), node("angle", [4], [101]), node("real", [4], [102]),
        node("isnan", [10], [103]), node("sqrt", [7], [104])),
    run(node("randint", [], [100], attr("high", i=10), attr("shape", ints=[2, 2])),
        node("amax", [9], [101], attr("dim", ints=[-1])),
        node("prod", [6], [102]),
        node("std", [1], [103], attr("correction", f=0.0))),
    run(node("add", [1, 1], [100]), discard=[1, 100]),
]


MIN, MAX = -(1 << 63), (1 << 63) - 1
I8 = 2
def full(out, v, dt=I64, shape=(2,)):
    return node("full", [], [out], attr("shape", ints=list(shape)), attr("fill_value", scalar=v), attr("dtype", dtype=dt))
# Edge values for every op with integer attributes or integer arithmetic: INT64_MIN/MAX,
# overflow, division by zero, empty and 0-d tensors, duplicate and out-of-range dims.
EDGE_SEEDS = {
 "fdiv_min": run(full(100, MIN), full(101, -1), node("floor_divide", [100, 101], [102])),
 "rem_min": run(full(100, MIN), full(101, -1), node("remainder", [100, 101], [102])),
 "divtrunc_min": run(full(100, MIN), full(101, -1), node("div", [100, 101], [102], attr("rounding_mode", s="trunc"))),
 "divfloor_min": run(full(100, MIN), full(101, -1), node("div", [100, 101], [102], attr("rounding_mode", s="floor"))),
 "fdiv_zero": run(full(100, 5), full(101, 0), node("floor_divide", [100, 101], [102])),
 "rem_zero": run(full(100, 5), full(101, 0), node("remainder", [100, 101], [102])),
 "pow_big": run(full(100, 3), full(101, 100), node("pow", [100, 101], [102])),
 "shl_neg": run(full(100, 3), full(101, -1), node("bitwise_left_shift", [100, 101], [102])),
 "shr_neg": run(full(100, -3), full(101, 70), node("bitwise_right_shift", [100, 101], [102])),
 "shl_i8": run(full(100, 3, I8), full(101, 7, I8), node("bitwise_left_shift", [100, 101], [102])),
 "abs_min": run(full(100, MIN), node("abs", [100], [101])),
 "neg_min": run(full(100, MIN), node("neg", [100], [101])),
 "sign_min": run(full(100, MIN), node("sign", [100], [101])),
 "sum_ovf": run(full(100, MAX), node("sum", [100], [101])),
 "prod_ovf": run(full(100, MAX), node("prod", [100], [101])),
 "cumsum_ovf": run(full(100, MAX), node("cumsum", [100], [101], attr("dim", i=0))),
 "cumprod_ovf": run(full(100, MAX), node("cumprod", [100], [101], attr("dim", i=0))),
 "mul_ovf": run(full(100, MAX), node("mul", [100, 100], [101])),
 "add_ovf": run(full(100, MAX), node("add", [100, 100], [101])),
 "sub_ovf": run(full(100, MIN), full(101, 1), node("sub", [100, 101], [102])),
 "add_alpha": run(full(100, 1), node("add", [100, 100], [101], attr("alpha", scalar=MAX))),
 "sub_alpha": run(full(100, 1), node("sub", [100, 100], [101], attr("alpha", scalar=MIN))),
 "arange_big": run(node("arange", [], [100], attr("start", scalar=MIN), attr("end", scalar=MAX), attr("step", scalar=MAX))),
 "arange_neg": run(node("arange", [], [100], attr("start", scalar=MAX), attr("end", scalar=MIN), attr("step", scalar=-(1<<62)))),
 "arange_f": run(node("arange", [], [100], attr("start", scalar=0.0), attr("end", scalar=1e300), attr("step", scalar=1e299))),
 "arange_nan": run(node("arange", [], [100], attr("end", scalar=float("nan")))),
 "arange_inf": run(node("arange", [], [100], attr("end", scalar=float("inf")))),
 "arange_step0": run(node("arange", [], [100], attr("end", scalar=5), attr("step", scalar=0))),
 "arange_i8": run(node("arange", [], [100], attr("start", scalar=100), attr("end", scalar=200), attr("dtype", dtype=I8))),
 "linspace_neg": run(node("linspace", [], [100], attr("start", scalar=0), attr("end", scalar=1), attr("steps", i=-1))),
 "linspace_1": run(node("linspace", [], [100], attr("start", scalar=MIN), attr("end", scalar=MAX), attr("steps", i=3), attr("dtype", dtype=I64))),
 "randint_full": run(node("randint", [], [100], attr("low", i=MIN), attr("high", i=MAX), attr("shape", ints=[3]))),
 "randint_i8": run(node("randint", [], [100], attr("low", i=-1000), attr("high", i=1000), attr("shape", ints=[3]), attr("dtype", dtype=I8))),
 "eye_neg": run(node("eye", [], [100], attr("n", i=-1))),
 "eye_big": run(node("eye", [], [100], attr("n", i=1 << 40), attr("m", i=0))),
 "round_dec": run(node("round", [1], [100], attr("decimals", i=MIN))),
 "round_dec2": run(node("round", [2], [100], attr("decimals", i=-30))),
 "round_dec3": run(node("round", [1], [100], attr("decimals", i=400))),
 "cast_nan": run(node("full", [], [100], attr("shape", ints=[2]), attr("fill_value", scalar=float("nan"))), node("cast", [100], [101], attr("dtype", dtype=I32))),
 "cast_big": run(node("full", [], [100], attr("shape", ints=[2]), attr("fill_value", scalar=1e300)), node("cast", [100], [101], attr("dtype", dtype=I8))),
 "full_big_i8": run(full(100, MAX, I8)),
 "full_f16": run(node("full", [], [100], attr("shape", ints=[2]), attr("fill_value", scalar=1e300), attr("dtype", dtype=6))),
 "clamp_min": run(full(100, 5), node("clamp", [100], [101], attr("min", scalar=1e300))),
 "clamp_i8": run(full(100, 5, I8), node("clamp", [100], [101], attr("min", scalar=MAX), attr("max", scalar=MIN))),
 "slice_min": run(node("slice", [1], [100], attr("dim", i=1), attr("start", i=MIN), attr("end", i=MAX), attr("step", i=MIN))),
 "slice_max": run(node("slice", [1], [100], attr("dim", i=1), attr("start", i=MAX), attr("end", i=MIN), attr("step", i=-1))),
 "slice_negstep": run(node("slice", [1], [100], attr("dim", i=1), attr("step", i=-2)), node("sum", [100], [101])),
 "select_min": run(node("select", [1], [100], attr("dim", i=MIN), attr("index", i=MIN))),
 "narrow_ovf": run(node("narrow", [1], [100], attr("dim", i=1), attr("start", i=MAX), attr("length", i=MAX))),
 "narrow_neg": run(node("narrow", [1], [100], attr("dim", i=1), attr("start", i=-1), attr("length", i=MIN))),
 "transpose_min": run(node("transpose", [1], [100], attr("dim0", i=MIN), attr("dim1", i=MAX))),
 "unsqueeze_min": run(node("unsqueeze", [1], [100], attr("dim", i=MIN))),
 "flatten_min": run(node("flatten", [1], [100], attr("start_dim", i=MIN), attr("end_dim", i=MAX))),
 "split_min": run(node("split", [1], [100], attr("split_size", i=MIN))),
 "split_0": run(node("split", [1], [100], attr("split_size", i=0))),
 "split_sec": run(node("split", [1], [100, 101], attr("sections", ints=[MAX, MIN + 5]), attr("dim", i=1))),
 "chunk_min": run(node("chunk", [1], [100], attr("chunks", i=MIN))),
 "chunk_0": run(node("chunk", [7], [100], attr("chunks", i=1))),
 "roll_min": run(node("roll", [1], [100], attr("shifts", ints=[MIN]))),
 "roll_min2": run(node("roll", [1], [100], attr("shifts", ints=[MIN, MAX]), attr("dims", ints=[0, 1]))),
 "roll_empty": run(node("roll", [7], [100], attr("shifts", ints=[3]))),
 "tril_min": run(node("tril", [1], [100], attr("diagonal", i=MIN))),
 "triu_max": run(node("triu", [1], [100], attr("diagonal", i=MAX))),
 "expand_neg": run(node("expand", [6], [100], attr("shape", ints=[-2, 3]))),
 "expand_big": run(node("expand", [6], [100], attr("shape", ints=[4, MAX]))),
 "expand_huge": run(node("expand", [5], [100], attr("shape", ints=[1 << 31, 1 << 31, 1 << 31]))),
 "reshape_neg": run(node("reshape", [1], [100], attr("shape", ints=[-1, -1]))),
 "reshape_0": run(node("reshape", [7], [100], attr("shape", ints=[-1, 0]))),
 "reshape_ovf": run(node("reshape", [1], [100], attr("shape", ints=[MAX, MAX, -1]))),
 "view_min": run(node("view", [1], [100], attr("shape", ints=[MIN]))),
 "permute_dup": run(node("permute", [1], [100], attr("dims", ints=[0, 0]))),
 "permute_min": run(node("permute", [1], [100], attr("dims", ints=[MIN, 0]))),
 "squeeze_min": run(node("squeeze", [6], [100], attr("dim", ints=[MIN]))),
 "flip_min": run(node("flip", [1], [100], attr("dims", ints=[MIN]))),
 "flip_dup": run(node("flip", [1], [100], attr("dims", ints=[0, 0, -2]))),
 "sum_dim_min": run(node("sum", [1], [100], attr("dim", ints=[MIN]))),
 "sum_dim_dup": run(node("sum", [1], [100], attr("dim", ints=[1, -1]))),
 "sum_dim_many": run(node("sum", [1], [100], attr("dim", ints=[0]*16))),
 "argmax_min": run(node("argmax", [1], [100], attr("dim", i=MIN))),
 "argmax_empty": run(node("argmax", [7], [100])),
 "amax_empty": run(node("amax", [7], [100])),
 "var_corr": run(node("var", [1], [100], attr("correction", f=1e300))),
 "var_empty": run(node("var", [7], [100])),
 "mean_empty": run(node("mean", [7], [100], attr("dim", ints=[0]))),
 "lse_empty": run(node("logsumexp", [7], [100], attr("dim", ints=[0]))),
 "cumsum_min": run(node("cumsum", [1], [100], attr("dim", i=MIN))),
 "cumsum_0d": run(node("cumsum", [5], [100], attr("dim", i=0))),
 "gather_neg": run(full(100, -1, I64, (2, 3)), node("gather", [1, 100], [101], attr("dim", i=1))),
 "gather_min": run(full(100, MIN, I64, (2, 3)), node("gather", [1, 100], [101], attr("dim", i=1))),
 "gather_big": run(full(100, 1, I64, (5, 9)), node("gather", [1, 100], [101], attr("dim", i=0))),
 "scatter_neg": run(full(100, MIN, I64, (2, 3)), node("scatter", [1, 100, 1], [101], attr("dim", i=0))),
 "scatter_mul": run(node("scatter", [1, 9, 1], [100], attr("dim", i=0), attr("reduce", s="multiply"))),
 "scatter_bad": run(node("scatter", [1, 9, 1], [100], attr("dim", i=0), attr("reduce", s="max"))),
 "scatter_srcsmall": run(full(100, 1, I64, (2, 3)), node("scatter", [1, 100, 5], [101], attr("dim", i=0))),
 "scatter_0d": run(node("scatter", [5, 9, 5], [100], attr("dim", i=0))),
 "index_select_min": run(full(100, MIN, I64, (2,)), node("index_select", [1, 100], [101], attr("dim", i=0))),
 "index_select_2d": run(node("index_select", [1, 9], [100], attr("dim", i=0))),
 "index_select_0d": run(full(100, 0, I64, ()), node("index_select", [5, 100], [101], attr("dim", i=0))),
 "gather_0d": run(full(100, 0, I64, ()), node("gather", [5, 100], [101], attr("dim", i=0))),
 "masked_bcast": run(node("masked_fill", [6, 3], [100], attr("value", scalar=1))),
 "masked_big": run(node("masked_fill", [5, 3], [100], attr("value", scalar=MAX))),
 "matmul_0d": run(node("matmul", [5, 5], [100])),
 "matmul_1d": run(node("matmul", [2, 2], [100])),
 "matmul_empty": run(node("matmul", [7, 8], [100])),
 "matmul_int": run(full(100, MAX, I64, (2, 2)), node("matmul", [100, 100], [101])),
 "matmul_batch": run(node("unsqueeze", [1], [100], attr("dim", i=0)), node("expand", [100], [101], attr("shape", ints=[4, 2, 3])), node("transpose", [101], [102], attr("dim0", i=1), attr("dim1", i=2)), node("matmul", [101, 102], [103])),
 "matmul_nc": run(node("cast", [8], [100], attr("dtype", dtype=8)), node("matmul", [100, 1], [101])),
 "matmul_c": run(node("transpose", [4], [100], attr("dim0", i=0), attr("dim1", i=1)), node("matmul", [4, 100], [101])),
 "cat_empty": run(node("cat", [7, 7, 1], [100], attr("dim", i=0))),
 "cat_min": run(node("cat", [1, 1], [100], attr("dim", i=MIN))),
 "stack_max": run(node("stack", [1, 1], [100], attr("dim", i=MAX))),
 "cat_0d": run(node("cat", [5, 5], [100])),
 "where_bcast": run(node("where", [6, 5, 7], [100])),
 "contig": run(node("contiguous", [8], [100]), node("clone", [8], [101])),
 "view_nc": run(node("view", [8], [100], attr("shape", ints=[6]))),
 "reshape_nc": run(node("reshape", [8], [100], attr("shape", ints=[6]))),
 "expand_flip": run(node("expand", [6], [100], attr("shape", ints=[4, 3])), node("flip", [100], [101], attr("dims", ints=[1])), node("reshape", [100], [102], attr("shape", ints=[12]))),
 "div_c0": run(node("div", [4, 4], [100]), node("zeros_like", [4], [101]), node("div", [4, 101], [102])),
 "pow_c": run(node("pow", [4, 4], [100]), node("pow", [2, 2], [101])),
 "pow_neg_int": run(full(100, -1), node("pow", [100, 100], [101])),
 "pow_min": run(full(100, MIN), full(101, 2), node("pow", [100, 101], [102])),
 "rand_c": run(node("randn", [], [100], attr("shape", ints=[3]), attr("dtype", dtype=11)), node("rand", [], [101], attr("shape", ints=[3]), attr("dtype", dtype=7))),
 "randint_like": run(node("randint_like", [2], [100], attr("low", i=5), attr("high", i=5))),
 "scalar_tensor": run(node("scalar_tensor", [], [100], attr("value", scalar=MAX), attr("dtype", dtype=6), attr("wrapped", b=True)), node("add", [1, 100], [101])),
 # autograd: history, backward twice (the second fails: saved tensors freed), .grad,
 # create_graph, forward mode, in-place after save
 "ag_backward": run(node("requires_grad_", [1], []), node("mul", [1, 1], [100]), node("sum", [100], [101]), node("backward", [101], [], attr("nroots", i=1)), node("grad", [1], [102]), node("backward", [101], [], attr("nroots", i=1))),
 "ag_grad2": run(node("requires_grad_", [1], []), node("exp", [1], [100]), node("sum", [100], [101]), node("backward", [101, 1], [102], attr("nroots", i=1), attr("create_graph", b=True)), node("sum", [102], [103]), node("backward", [103, 1], [104], attr("nroots", i=1), attr("allow_unused", b=True))),
 "ag_dual": run(node("enter_dual_level", [], []), node("make_dual", [1, 1], [100]), node("sin", [100], [101]), node("dual_tangent", [101], [102]), node("dual_primal", [101], [103]), node("exit_dual_level", [], [])),
 "ag_inplace": run(node("requires_grad_", [4], []), node("mul", [4, 4], [100]), node("sum", [100], [101]), node("copy_", [4, 4], []), node("set_grad", [4], []), node("backward", [101], [], attr("nroots", i=1))),
 "ag_nn": run(node("requires_grad_", [1], []), node("softmax", [1], [100], attr("dim", i=1)), node("log_softmax", [100], [101], attr("dim", i=0)), node("sum", [101], [102]), node("backward", [102, 1], [103], attr("nroots", i=1))),
}


def frame(method, body=b"", data=b"", call=1):
    return HDR.pack(b"TDRP", 1, 1, 0, method, 0, call, len(body), len(data)) + body + data


def put_body(i, dtype, shape, offset=0):
    return pb.PutRequest(id=i, dtype=dtype, shape=shape, offset=offset).SerializeToString()


def put_record(body, data_len):
    return struct.pack("<H", len(body)) + data_len.to_bytes(3, "little") + body


PUT_SEEDS = [
    put_record(put_body(1, F32, [2, 3]), 24),
    put_record(put_body(2, I64, [4]), 16) + put_record(put_body(2, I64, [4], 16), 16),
    put_record(put_body(3, 99, [2]), 0) + put_record(put_body(4, F32, [-1, 2]), 0),
    put_record(put_body(5, F32, [0, 5]), 0) + put_record(put_body(6, C64, []), 8),
    put_record(put_body(7, F64, [1 << 40, 1 << 40]), 0),
    put_record(put_body(8, F32, [4]), 32),
    put_record(put_body(9, F32, [4]), 8) + put_record(put_body(9, F32, [4], 12), 4),
    put_record(put_body(1, F32, [2]), 8) + put_record(put_body(1, F32, [2]), 8),
]

HS = pb.HandshakeRequest(protocol_version=1, client_name="seed").SerializeToString()
F32_6 = struct.pack("<6f", 1, 2, 3, 4, 5, 6)
FRAME_SEEDS = [
    frame(M_HANDSHAKE, HS) + frame(M_LIST_OPS, call=2) + frame(M_STATS, call=3),
    frame(M_HANDSHAKE, HS) + frame(M_PUT, put_body(1, F32, [2, 3]), F32_6, call=2)
    + frame(M_GET, pb.GetRequest(id=1, offset=4, length=8).SerializeToString(), call=3)
    + frame(M_FREE, pb.FreeRequest(ids=[1, 2]).SerializeToString(), call=4),
    frame(M_HANDSHAKE, HS) + frame(M_PUT, put_body(1, F32, [2, 3]), F32_6[:8], call=2)
    + frame(M_PUT, put_body(1, F32, [2, 3], 8), F32_6[8:], call=3)
    + frame(M_RUN, run(discard=[1]), call=4) + frame(M_GET, pb.GetRequest(id=1).SerializeToString(), call=5),
    frame(M_PUT, put_body(1, F32, [1]), b"\0" * 4) + frame(M_HANDSHAKE, HS, call=2),
    frame(M_HANDSHAKE, HS) + frame(9, b"", call=2) + frame(M_GET, b"\xff\xff", call=3)
    + frame(M_STATS, b"", b"xx", call=4),
    frame(M_HANDSHAKE, HS) + HDR.pack(b"TDRP", 2, 1, 0, 1, 0, 5, 0, 0),
    frame(M_HANDSHAKE, HS) + frame(M_PUT, put_body(1, F32, [1 << 20]), b"\1" * 1000, call=2),
    frame(M_HANDSHAKE, HS)[:30],
    frame(M_HANDSHAKE, HS) + frame(M_PUT, put_body(1, F32, [2, 3]), F32_6, call=2)
    + frame(M_RUN, run(node("transpose", [1], [2], attr("dim0", i=0), attr("dim1", i=1)),
                       node("matmul", [1, 2], [3]), node("sum", [3], [4]), discard=[3]),
            call=3)
    + frame(M_GET, pb.GetRequest(id=2).SerializeToString(), call=4)
    + frame(M_RUN, run(node("add", [4, 1], [5]), plan_only=True), call=5)
    + frame(M_GET, pb.GetRequest(id=4).SerializeToString(), call=6),
    frame(M_HANDSHAKE, HS) + frame(M_PUT, put_body(1, F32, [2, 3]), F32_6[:12], call=2)
    + frame(M_RUN, run(node("neg", [1], [2])), call=3)
    + frame(M_PUT, put_body(1, F32, [2, 3], 12), F32_6[12:], call=4)
    + frame(M_RUN, run(node("slice", [1], [2], attr("dim", i=1), attr("step", i=2)),
                       node("split", [1], [3, 4], attr("split_size", i=1))), call=5)
    + frame(M_GET, pb.GetRequest(id=2, offset=4).SerializeToString(), call=6)
    + frame(M_FREE, pb.FreeRequest(ids=[1, 2, 3, 4]).SerializeToString(), call=7),
]


# Admin traffic for fuzz_frame (no token file there: the session is the "local" admin).
FRAME_SEEDS.append(
    frame(M_HEALTH, call=1)
    + frame(M_HANDSHAKE, pb.HandshakeRequest(protocol_version=1, client_name="seed",
                                             auth_token="ignored-without-a-token-file")
            .SerializeToString(), call=2)
    + frame(M_LIST_SESSIONS, call=3)
    + frame(M_SET_QUOTA, pb.SetQuotaRequest(user="local", max_bytes=64, max_tensors=1,
                                            max_sessions=1).SerializeToString(), call=4)
    + frame(M_PUT, put_body(1, F32, [100]), b"\0" * 400, call=5)
    + frame(M_KILL_SESSION, pb.KillSessionRequest(session_id=1).SerializeToString(), call=6)
    + frame(M_DRAIN, call=7) + frame(M_STATS, call=8) + frame(M_SHUTDOWN, call=9))


def admin_record(method, body=b""):
    """fuzz_admin record: selector (method - 1), u16 body length, body."""
    return struct.pack("<BH", method - 1, len(body)) + body


def hs_body(token):
    return pb.HandshakeRequest(protocol_version=1, client_name="seed",
                               auth_token=token).SerializeToString()


def quota(user, b=0, t=0, s=0):
    return pb.SetQuotaRequest(user=user, max_bytes=b, max_tensors=t,
                              max_sessions=s).SerializeToString()


def kill(sid):
    return pb.KillSessionRequest(session_id=sid).SerializeToString()


# fuzz_admin inputs: mode byte (0 admin, 1 user, 2 wrong token, 3 no handshake), records.
# What the Python client sends for each admin call, as admin, as a user and before auth.
ADMIN_CALLS = (admin_record(M_LIST_SESSIONS) + admin_record(M_HEALTH)
               + admin_record(M_SET_QUOTA, quota("alice", 1 << 20, 10, 2))
               + admin_record(M_SET_QUOTA, quota("nobody"))
               + admin_record(M_KILL_SESSION, kill(999999))
               + admin_record(M_KILL_SESSION, kill(0))
               + admin_record(M_STATS) + admin_record(M_DRAIN) + admin_record(M_STATS)
               + admin_record(M_HEALTH) + admin_record(M_SHUTDOWN))
ADMIN_SEEDS = {
    "seed-admin": b"\0" + ADMIN_CALLS,
    "seed-user": b"\1" + ADMIN_CALLS,
    "seed-wrong": b"\2" + admin_record(M_LIST_SESSIONS),
    "seed-noauth": b"\3" + ADMIN_CALLS,
    "seed-hs-admin": b"\3" + admin_record(M_HANDSHAKE, hs_body(FZ_ADMIN_TOKEN)) + ADMIN_CALLS,
    "seed-hs-user": b"\3" + admin_record(M_HANDSHAKE, hs_body(FZ_USER_TOKEN)) + ADMIN_CALLS,
    "seed-hs-twice": b"\3" + admin_record(M_HANDSHAKE, hs_body(FZ_USER_TOKEN))
    + admin_record(M_HANDSHAKE, hs_body(FZ_ADMIN_TOKEN)) + admin_record(M_LIST_SESSIONS),
    "seed-hs-empty": b"\3" + admin_record(M_HANDSHAKE, hs_body("")),
    "seed-hs-v2": b"\3" + admin_record(M_HANDSHAKE, pb.HandshakeRequest(
        protocol_version=2, auth_token=FZ_ADMIN_TOKEN).SerializeToString())
    + admin_record(M_HANDSHAKE, hs_body(FZ_ADMIN_TOKEN)) + admin_record(M_LIST_SESSIONS),
    "seed-quota-put": b"\0" + admin_record(M_SET_QUOTA, quota("root", 64, 1, 1))
    + admin_record(M_PUT, put_body(1, F32, [100])) + admin_record(M_PUT, put_body(2, F32, [2]))
    + admin_record(M_PUT, put_body(3, F32, [2])) + admin_record(M_LIST_SESSIONS)
    + admin_record(M_FREE, pb.FreeRequest(ids=[1, 2, 3]).SerializeToString()),
    "seed-bad-bodies": b"\0" + admin_record(M_SET_QUOTA, b"\x0a\xff\xff\xff\xff\x0f")
    + admin_record(M_KILL_SESSION, b"\x08" + b"\xff" * 10 + b"\x01")
    + admin_record(M_LIST_SESSIONS, b"\x12\x05abc") + admin_record(14, b"\x08\x01"),
}


def write(target, seeds, prefix=b""):
    d = HERE / "corpus" / target
    d.mkdir(parents=True, exist_ok=True)
    for old in list(d.glob("seed-*")) + list(d.glob("edge-*")):
        old.unlink()
    named = seeds.items() if isinstance(seeds, dict) else ((f"seed-{i:02d}", s) for i, s in
                                                          enumerate(seeds))
    for i, (name, s) in enumerate(named):
        (d / name).write_bytes(prefix(i) + s if callable(prefix) else prefix + s)


def split_seed(i):
    return struct.pack("<H", (i * 7919 + 3) & 0xFFFF)


def main():
    write("fuzz_run", {**{f"seed-{i:02d}": s for i, s in enumerate(RUN_SEEDS)},
                       **{f"edge-{k}": s for k, s in EDGE_SEEDS.items()}})
    write("fuzz_put", PUT_SEEDS, split_seed)
    write("fuzz_frame", FRAME_SEEDS, split_seed)
    write("fuzz_admin", list(ADMIN_SEEDS.values()), split_seed)
    names = set()
    for line in (REPO / "server" / "engine" / "ops.def").read_text().splitlines():
        m = re.match(r'TD_OP\((\w+),.*?,\s*"([^"]*)",\s*"[^"]*"\)\s*$', line)
        if not m:
            continue
        names.add(m.group(1))
        for spec in filter(None, m.group(2).split(",")):
            names.add(re.split(r"[:?=]", spec)[0])
    names.update(["floor", "trunc", "multiply"])   # values of the str attributes
    (HERE / "fuzz_run.dict").write_text(
        "# Generated by tests/fuzz/gen_corpus.py from server/engine/ops.def.\n"
        + "".join(f'"{n}"\n' for n in sorted(names)))


if __name__ == "__main__":
    main()
