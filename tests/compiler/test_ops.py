"""Every registered op: its type rule against its numpy reference on random shapes (through
the verifying interpreter), its lowering data against its reference, and numerics of the
windowed/contraction ops against naive loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from op_samples import case_for, draw_case

from compiler import dtypes as dt
from compiler import ops as P
from compiler.builder import GraphBuilder
from compiler.errors import DTypeError, OutOfRangeError, ShapeError
from compiler.interpret import run
from compiler.ir import TensorType
from compiler.ops.elementwise import SCALAR_NAMESPACE
from compiler.ops.source import philox4x32
from compiler.parser import parse
from compiler.printer import print_graph
from compiler.verify import verify

# Every primitive; ``kernel`` (a fused region) is checked by the fusion tests instead.
ALL_OPS = sorted((o for o in P.REGISTRY.values() if o.kind not in ("fusion", "control")),
                 key=lambda o: o.name)


def build(op, types, attrs):
    b = GraphBuilder(f"t_{op.name}")
    params = [b.param(f"x{i}", t) for i, t in enumerate(types)]
    outs = b.emit(op, params, attrs)
    return b.build(list(outs))


def test_every_op_has_samples_and_lowering():
    for op in ALL_OPS:
        assert case_for(op) is not None, f"{op.name} has no sample generator in op_samples.py"


@pytest.mark.parametrize("op", ALL_OPS, ids=lambda o: o.name)
@given(data=st.data())
def test_type_rule_agrees_with_ref(op, data):
    types, attrs, arrays = draw_case(op, data)
    g = verify(build(op, types, attrs))
    out = run(g, arrays)  # the interpreter checks shape and dtype against the type rule
    assert parse(print_graph(g)) == g
    with np.errstate(all="ignore"):
        direct = op.ref(*arrays, **dict(g.nodes[0].attrs))
    for d, o in zip(direct if isinstance(direct, tuple) else (direct,), out):
        d, o = np.asarray(d), np.asarray(o)
        if dt.is_narrow_np(d.dtype) or dt.is_narrow_np(o.dtype):  # (numpy's testing takes
            d, o = d.astype(np.float32), o.astype(np.float32)  # bfloat16's NaN for a number)
        np.testing.assert_array_equal(d, o)


# -- lowering data ---------------------------------------------------------------------------------

ELEMENTWISE = [o for o in ALL_OPS if o.kind in ("unary", "binary", "select", "cast")]


class _NumbaMath:
    """``math`` as numba compiles it with error_model="numpy": NaN instead of exceptions."""

    def __getattr__(self, name):
        f = {"atan2": np.arctan2, "isfinite": np.isfinite}.get(name) or getattr(np, name, None)
        if name == "erf":
            f = math.erf
        return lambda *a: float(f(*a)) if name != "isfinite" else bool(f(*a))


def _scalar_eval(op, args, attrs):
    names = [f"a{i}" for i in range(len(args))]
    expr = op.scalar(*names, **attrs)
    ns = dict(SCALAR_NAMESPACE) | {"max": max, "min": min, "abs": abs, "int": int,
                                   "float": float, "math": _NumbaMath()}
    return eval(expr, ns, dict(zip(names, args)))


@pytest.mark.parametrize("op", ELEMENTWISE, ids=lambda o: o.name)
@given(data=st.data())
def test_scalar_lowering_matches_ref(op, data):
    floats = st.floats(-30, 30) | st.sampled_from([0.0, -0.0, 1.0, 0.5, 2.5, -1.5, math.inf,
                                                    -math.inf, math.nan])
    ints = st.integers(-20, 20)
    if op is P.SELECT_:
        a = [data.draw(st.booleans()), data.draw(floats), data.draw(floats)]
        attrs, d = {}, dt.f64
    elif op is P.CAST_:
        to = data.draw(st.sampled_from([dt.f64, dt.i64, dt.bool_]))
        a, attrs, d = [data.draw(st.floats(-1e6, 1e6))], {"to": to}, dt.f64
    else:
        d = data.draw(st.sampled_from([x for x in (dt.f64, dt.i64, dt.bool_)
                                       if _accepts(op, x)]))
        gen = floats if d is dt.f64 else (ints if d is dt.i64 else st.booleans())
        a, attrs = [data.draw(gen) for _ in range(op.n_inputs)], {}
        if d is dt.i64 and op.name in ("floordiv", "mod") and a[1] == 0:
            a[1] = 3
        if d is dt.i64 and op.name == "pow":
            a[1] = abs(a[1]) % 5
    arrays = [np.asarray(x, dtype=(dt.bool_ if (op is P.SELECT_ and i == 0) else d).np)
              for i, x in enumerate(a)]
    with np.errstate(all="ignore"):
        want = np.asarray(op.ref(*arrays, **attrs))
        got = _scalar_eval(op, a, attrs)
    if isinstance(got, float) and math.isnan(got) or (want.dtype.kind == "f" and np.isnan(want)):
        assert isinstance(got, float) and math.isnan(got) and np.isnan(want), (a, got, want)
    else:
        np.testing.assert_allclose(float(got), float(want), rtol=1e-12, atol=0,
                                   err_msg=f"{op.name}{tuple(a)}")


def _accepts(op, d):
    try:
        op.infer([TensorType((), d)] * op.n_inputs, {})
        return True
    except Exception:
        return False


@pytest.mark.parametrize("op", [o for o in ALL_OPS if o.kind in ("reduce", "arg_reduce")],
                         ids=lambda o: o.name)
@given(data=st.data())
def test_reduction_lowering_matches_ref(op, data):
    xs = data.draw(st.lists(st.integers(-9, 9), min_size=1, max_size=12))
    arr = np.asarray(xs, dtype=np.float64)
    if op.kind == "reduce":
        acc = op.identity(dt.f64)
        for x in xs:
            acc = eval(op.combine("acc", "x"), dict(SCALAR_NAMESPACE), {"acc": acc, "x": x})
        want = op.ref(arr, axes=(0,), keepdims=False)
    else:
        acc = (op.identity(dt.f64)[0], -1)
        for i, x in enumerate(xs):
            if eval(op.combine(("av", "ai"), ("xv", "xi")), {},
                    {"av": acc[0], "ai": acc[1], "xv": x, "xi": i}):
                acc = (x, i)
        acc = acc[1]
        want = op.ref(arr, axis=0, output_type=dt.i64)
    assert float(acc) == float(want)


MOVEMENT = [o for o in ALL_OPS if o.kind in ("movement", "gather")]


@pytest.mark.parametrize("op", MOVEMENT, ids=lambda o: o.name)
@given(data=st.data())
def test_index_map_matches_ref(op, data):
    types, attrs, arrays = draw_case(op, data)
    g = build(op, types, attrs)
    node = g.nodes[0]
    out_t = node.outputs[0].type
    want = run(g, arrays)[0]
    if want.size == 0:
        return
    grid = np.indices(out_t.shape)
    names = [f"i{k}" for k in range(out_t.rank)]
    env = dict(zip(names, grid))
    maps = op.index_map(names, types, out_t, **node.attr_dict)
    got = np.full(out_t.shape, node.attr("value", 0), dtype=want.dtype)
    loaded = None
    if op.kind == "gather":
        loaded = arrays[1][tuple(eval(e, {}, env) * np.ones(out_t.shape, int)
                                 for e in maps[1][1])] if maps[1][1] else \
            np.broadcast_to(arrays[1], out_t.shape)
        maps = maps[:1]
    for arr, (cond, idx) in zip(arrays, maps):
        mask = np.ones(out_t.shape, bool) if cond is None else \
            np.broadcast_to(eval(cond, {}, env), out_t.shape)
        index = []
        for e in idx:
            v = loaded if e == "$1" else eval(e, {}, env)
            index.append(np.broadcast_to(v, out_t.shape)[mask])
        got[mask] = arr[tuple(index)] if index else arr
    np.testing.assert_array_equal(got, want)


def test_scatter_add_index_map_matches_ref():
    rng = np.random.default_rng(0)
    upd = rng.normal(size=(3, 4, 2))
    idx = np.array([0, 2, 2, 1])
    types = [TensorType(upd.shape, dt.f64), TensorType(idx.shape, dt.i64)]
    g = build(P.SCATTER_ADD, types, {"axis": 1, "size": 5})
    want = run(g, [upd, idx])[0]
    (_, out_idx), (_, idx_idx) = P.SCATTER_ADD.index_map(["i0", "i1", "i2"], types,
                                                         g.results[0].type, axis=1, size=5)
    got = np.zeros((3, 5, 2))
    for pos in np.ndindex(upd.shape):
        env = {"i0": pos[0], "i1": pos[1], "i2": pos[2]}
        loaded = idx[tuple(eval(e, {}, env) for e in idx_idx)]
        target = tuple(loaded if e == "$1" else eval(e, {}, env) for e in out_idx)
        got[target] += upd[pos]
    np.testing.assert_allclose(got, want)


# -- numerics against naive loops -----------------------------------------------------------------


def naive_conv(x, w, strides, pads, dil, groups):
    n, h, wd, c = x.shape
    kh, kw, cg, o = w.shape
    xp = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    oh = (xp.shape[1] - (kh - 1) * dil[0] - 1) // strides[0] + 1
    ow = (xp.shape[2] - (kw - 1) * dil[1] - 1) // strides[1] + 1
    out = np.zeros((n, oh, ow, o))
    og = o // groups
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                for oc in range(o):
                    g = oc // og
                    acc = 0.0
                    for a in range(kh):
                        for bb in range(kw):
                            for ci in range(cg):
                                acc += xp[b, i * strides[0] + a * dil[0],
                                          j * strides[1] + bb * dil[1], g * cg + ci] * \
                                    w[a, bb, ci, oc]
                    out[b, i, j, oc] = acc
    return out


@given(data=st.data())
def test_conv2d_matches_naive_loop(data):
    types, attrs, arrays = draw_case(P.CONV2D, data)
    x, w = (a.astype(np.float64) for a in arrays)
    g = build(P.CONV2D, [t.with_dtype(dt.f64) for t in types], attrs)
    got = run(g, [x, w])[0]
    from compiler.ops.nn import window_pads
    pad = attrs["padding"]
    pads = [window_pads("t", x.shape[1 + i], w.shape[i], attrs["strides"][i],
                        attrs["dilations"][i], pad if isinstance(pad, str) else pad[i])[:2]
            for i in range(2)]
    want = naive_conv(x, w, attrs["strides"], pads, attrs["dilations"], attrs["groups"])
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_pooling_matches_tensorflow_semantics():
    x = np.arange(1, 26, dtype=np.float32).reshape(1, 5, 5, 1)
    t = [TensorType(x.shape, dt.f32)]
    same = {"ksize": (2, 2), "strides": (2, 2), "padding": "SAME"}
    mx = run(build(P.MAX_POOL, t, same), [x])[0][0, :, :, 0]
    np.testing.assert_array_equal(mx, [[7, 9, 10], [17, 19, 20], [22, 24, 25]])
    avg = run(build(P.AVG_POOL, t, same), [x])[0][0, :, :, 0]
    # SAME averages only over elements inside the image (TensorFlow's rule).
    np.testing.assert_allclose(avg, [[4, 6, 7.5], [14, 16, 17.5], [21.5, 23.5, 25]])


def test_matmul_batched_broadcast_and_transposes():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 1, 4, 3)), rng.normal(size=(5, 2, 4))
    g = build(P.MATMUL, [TensorType(a.shape, dt.f64), TensorType(b.shape, dt.f64)],
              {"transpose_a": True, "transpose_b": True})
    np.testing.assert_allclose(run(g, [a, b])[0],
                               np.swapaxes(a, -1, -2) @ np.swapaxes(b, -1, -2))


def test_philox_known_answers():
    """Random123's published test vectors for Philox-4x32-10."""
    assert [int(x) for x in philox4x32((0, 0, 0, 0), (0, 0))] == \
        [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]
    assert [int(x) for x in philox4x32((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2)] == \
        [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]


def test_random_bits_are_counter_based():
    key = np.array([7, 9], np.int32)
    big = P.RANDOM_BITS.ref(key, shape=(3, 5))
    flat = P.RANDOM_BITS.ref(key, shape=(15,))
    np.testing.assert_array_equal(big.ravel(), flat)  # element i depends only on (key, i)
    other = P.RANDOM_BITS.ref(np.array([7, 10], np.int32), shape=(15,))
    assert (flat != other).mean() > 0.9


def test_edge_cases():
    empty = np.zeros((0, 3), np.float32)
    assert P.REDUCE_MAX.ref(empty, axes=(0,), keepdims=False).tolist() == [-np.inf] * 3
    assert P.REDUCE_SUM.ref(empty, axes=(0, 1), keepdims=True).shape == (1, 1)
    assert P.ROUND.ref(np.array([0.5, 1.5, 2.5, -0.5], np.float32)).tolist() == [0, 2, 2, -0]
    assert P.CAST_.ref(np.array([-1.7, 1.7]), to=dt.i32).tolist() == [-1, 1]
    x = np.array([1.0, np.nan, 3.0, np.nan])
    assert P.ARGMAX.ref(x, axis=0, output_type=dt.i64) == 1
    with pytest.raises(OutOfRangeError, match="gather: index 5 is out of range"):
        P.GATHER_.ref(np.zeros(5), np.array([5]), axis=0)


def test_type_errors_name_op_expected_received():
    f32 = lambda *s: TensorType(s, dt.f32)  # noqa: E731
    with pytest.raises(ShapeError, match=r"matmul: inner dimensions differ: f32\[32,784\] @ "
                                         r"f32\[128,10\]"):
        P.MATMUL.infer([f32(32, 784), f32(128, 10)], {"transpose_a": False,
                                                      "transpose_b": False})
    with pytest.raises(DTypeError, match=r"add: inputs must have the same dtype; received "
                                         r"f32\[2\], f64\[2\]"):
        P.ADD.infer([f32(2), TensorType((2,), dt.f64)], {})
    with pytest.raises(DTypeError, match=r"exp: input must be f16/bf16/f32/f64; received i32\[\]"):
        P.EXP.infer([TensorType((), dt.i32)], {})
    with pytest.raises(ShapeError, match="cannot be broadcast"):
        P.ADD.infer([f32(3), f32(4)], {})


def test_slice_bounds_must_fit_static_dims():
    from compiler.ir import Sym
    with pytest.raises(ShapeError, match="bounds"):
        P.SLICE.infer([TensorType((1, 1), dt.f32)], {"begin": (0, 0), "end": (Sym.named("N"), 1),
                                                     "stride": (1, 1)})


def test_slice_reference_takes_every_range_in_bounds():
    # absolute positions, -1 "before 0": the same elements as range(begin, end, stride)
    # for every begin/end the op accepts (an empty range included), a copy each time
    for d in range(5):
        x = np.arange(d * 2, dtype=np.float32).reshape(d, 2)
        for s in (1, 2, 3, -1, -2):
            lo, hi = (0, d) if s > 0 else (-1, d - 1)
            for b in range(lo, hi + 1):
                for e in range(lo, d + 1):
                    attrs = {"begin": (b, 1), "end": (e, -1), "stride": (s, -1)}
                    (t,) = P.SLICE.infer([TensorType((d, 2), dt.f32)], attrs)
                    got = P.SLICE.ref(x, **attrs)
                    want = np.array([[x[i, 1], x[i, 0]] for i in range(b, e, s)],
                                    np.float32).reshape(-1, 2)
                    assert got.shape == t.shape and np.array_equal(got, want), (d, b, e, s)
                    assert not np.shares_memory(got, x)


def test_register_refuses_incomplete_op():
    from compiler.ops.base import UNARY, OpDef, register
    with pytest.raises(ValueError, match="lacks scalar"):
        register(OpDef("t_incomplete", UNARY, lambda t, a: t, lambda x: x))
    with pytest.raises(ValueError, match="lacks vjp"):  # gradient status must be stated
        register(OpDef("t_incomplete", UNARY, lambda t, a: t, lambda x: x, scalar=str))
    with pytest.raises(ValueError, match="registered twice"):
        register(P.ADD)
