"""16-bit floats (float16, bfloat16) in compiled code: the native backend fuses their
elementwise ops, reductions and matmuls, storing them narrow and computing (and
accumulating) in float32; casts to them inside a kernel round as a store would. And every
differentiable op's gradient in each against float64, in the interpreter and compiled,
within a tolerance stated per dtype."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from op_samples import draw_case
from test_vjp import DIFFERENTIABLE, _domain, build

import framework as tf
from compiler import dtypes as dt
from compiler import ops as P
from compiler.codegen.compile import compile_graph
from compiler.interpret import run
from compiler.transforms.vjp import vjp_graph
from runtime import bconv
from runtime.program import execute

# |g16 - g64| <= TOL * (max |g64| + 1): float16 keeps 11 bits (eps 9.8e-4), bfloat16 8
# (eps 7.8e-3); the inputs, the cotangent and each op's result are rounded on the way
TOL = {dt.f16: 3e-2, dt.bf16: 2e-1}
NARROW = [dt.f16, dt.bf16]


@pytest.mark.parametrize("d", NARROW, ids=str)
def test_a_narrow_chain_and_its_row_reductions_are_one_kernel(d):
    x = np.random.default_rng(0).normal(size=(64, 100)).astype(d.np)
    f = tf.function(lambda x: tf.nn.softmax(tf.tanh(x * 2.0) + 1.0))
    y = f(x).numpy()
    wide = np.exp(np.tanh(x.astype(np.float32) * 2) + 1)
    want = (wide / wide.sum(1, keepdims=True)).astype(d.np)  # rounded once, at the end
    assert y.dtype == d.np
    assert _ulps(y, want) <= 1
    fused = f.get_concrete_function(x).ir("fused")
    assert fused.count("= kernel") == 1 and f"{d.name}[64,100] = kernel" in fused


def _ulps(a, b) -> int:
    """The largest distance in units of the last place between two arrays of a 16-bit
    float (their bit patterns, as ordered integers)."""
    def ordered(x):
        u = np.asarray(x).view(np.uint16).astype(np.int32)
        return np.where(u & 0x8000, 0x8000 - u, u)
    return int(np.abs(ordered(a) - ordered(b)).max(initial=0))


@pytest.mark.parametrize("d", NARROW, ids=str)
@pytest.mark.parametrize("axis", [0, 1])
def test_narrow_sums_accumulate_in_float32(axis, d):
    # 4096 ones: a float16 accumulator stops at 2048 (2048 + 1 rounds back to 2048), a
    # bfloat16 one at 256
    ones = np.ones((4096, 16) if axis == 0 else (16, 4096), d.np)
    got = tf.function(lambda x: tf.reduce_sum(x, axis))(ones).numpy()
    np.testing.assert_array_equal(got.astype(np.float32), np.full(16, 4096.0))


@pytest.mark.parametrize("d", NARROW, ids=str)
def test_a_cast_to_a_narrow_float_inside_a_kernel_rounds(d):
    x = np.random.default_rng(1).normal(size=(8, 8)).astype(d.np)
    x[0, :3] = [np.inf, -np.inf, np.nan]
    f = tf.function(lambda x: tf.cast(tf.cast(x, tf.float32) / 3.0, d) * 3.0)
    want = ((x.astype(np.float32) / 3).astype(d.np).astype(np.float32) * 3).astype(d.np)
    np.testing.assert_array_equal(f(x).numpy().astype(np.float32), want.astype(np.float32))


@pytest.mark.parametrize("d", NARROW, ids=str)
def test_the_numba_backend_keeps_narrow_floats_in_library_calls(d):
    from compiler.builder import GraphBuilder
    from compiler.ir import TensorType
    b = GraphBuilder("f")
    x = b.param("x", TensorType((4, 4), d))
    (m,) = b.emit(P.MUL, [x, x])
    g = b.build(list(b.emit(P.EXP, [m])))
    compiled = compile_graph(g, target="numba")
    assert all(n.op is not P.KERNEL for n in compiled.stages["fused"].nodes)
    a = np.random.default_rng(2).normal(size=(4, 4)).astype(d.np)
    (out,) = execute(compiled.program, [a])
    want = np.exp(a.astype(np.float32) * a.astype(np.float32))
    np.testing.assert_allclose(out.astype(np.float32), want, rtol=2e-2)


@pytest.mark.parametrize("narrow", NARROW, ids=str)
@pytest.mark.parametrize("op", [o for o in DIFFERENTIABLE if o not in (
    P.ALL_REDUCE, P.CAST_, P.MAX_POOL_GRAD)], ids=lambda o: o.name)
@settings(max_examples=2, deadline=None)
@given(data=st.data())
def test_narrow_gradients_match_float64(op, narrow, data):
    types, attrs, arrays = draw_case(op, data)
    if not any(t.dtype.is_float for t in types):
        return
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    arrays = [_domain(op, i, a, rng) for i, a in enumerate(arrays)]
    half = [a.astype(narrow.np) if a.dtype.kind == "f" or dt.is_narrow_np(a.dtype) else a
            for a in arrays]
    grads = {}
    for d in (dt.f64, narrow):
        ts = [t.with_dtype(d) if t.dtype.is_float else t for t in types]
        xs = [a.astype(d.np) if a.dtype.kind == "f" or dt.is_narrow_np(a.dtype) else a
              for a in half]  # the same values in both
        g = build(op, ts, attrs)
        wrt = [i for i, t in enumerate(ts) if t.dtype.is_float]
        outs = run(g, xs)
        if not all(np.isfinite(o.astype(np.float64)).all() for o in outs):
            return  # outside float16's range (or an empty max): nothing to compare
        cts = [np.asarray(np.random.default_rng(7).standard_normal(np.shape(o)))
               .astype(narrow.np).astype(d.np) for o in outs]
        pull = vjp_graph(g, wrt, unconnected="zero")
        grads[d] = run(pull, xs + cts)[len(outs):]
        if d is narrow:
            compiled = execute(compile_graph(pull).program, xs + cts)[len(outs):]
    for g64, g16, c16 in zip(grads[dt.f64], grads[narrow], compiled):
        scale = TOL[narrow] * (np.abs(g64).max(initial=0) + 1)
        assert g16.dtype == narrow.np and c16.dtype == narrow.np
        assert np.abs(g16.astype(np.float64) - g64).max(initial=0) <= scale, op.name
        assert np.abs(c16.astype(np.float64) - g64).max(initial=0) <= scale, op.name


@pytest.mark.parametrize("d", NARROW, ids=str)
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True)])
def test_narrow_matmuls_match_float32(ta, tb, d):
    rng = np.random.default_rng(3)
    a = rng.normal(size=(70, 33) if ta else (33, 70)).astype(d.np)
    w = rng.normal(size=(50, 70) if tb else (70, 50)).astype(d.np)
    bias = rng.normal(size=50).astype(d.np)
    plain = tf.function(lambda a, w: tf.matmul(a, w, transpose_a=ta, transpose_b=tb))
    fused = tf.function(lambda a, w, c: tf.nn.relu(
        tf.matmul(a, w, transpose_a=ta, transpose_b=tb) + c))
    wa = (a.T if ta else a).astype(np.float32)
    ww = (w.T if tb else w).astype(np.float32)
    product = (wa @ ww).astype(d.np)
    assert _ulps(plain(a, w).numpy(), product) <= 1
    want = np.maximum(product.astype(np.float32) + bias.astype(np.float32), 0).astype(d.np)
    assert _ulps(fused(a, w, bias).numpy(), want) <= 1
    ir = fused.get_concrete_function(a, w, bias).ir("fused")
    assert ir.count("= kernel") == 1 and 'kind="matmul"' in ir


@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("d", NARROW, ids=str)
def test_narrow_convolutions_and_pools_match_float32(d, channels):
    """Widened for the float32 routines, or (bfloat16, an even channel count, a CPU with
    AVX-512 BF16) read as they are by runtime/bconv.py."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 9, 9, channels)).astype(d.np)
    k = (rng.normal(size=(3, 3, channels, 4)) * 0.3).astype(d.np)
    c = rng.normal(size=4).astype(d.np)

    def net(x, k, c, smooth=False):
        y = tf.nn.conv2d(x, k, 1, "SAME") + c
        if smooth:
            return tf.nn.avg_pool2d(tf.tanh(y), 2, 2, "VALID")
        return tf.nn.max_pool2d(tf.nn.relu(y), 2, 2, "VALID")
    f = tf.function(net)
    got = f(x, k, c).numpy()
    wide = [a.astype(np.float32) for a in (x, k, c)]
    y = np.maximum(tf.nn.conv2d(wide[0], wide[1], 1, "SAME").numpy().astype(d.np)
                   .astype(np.float32) + wide[2], 0).astype(d.np).astype(np.float32)
    want = y[:, :8, :8].reshape(2, 4, 2, 4, 2, 4).max((2, 4)).astype(d.np)
    assert got.dtype == d.np and _ulps(got, want) <= 1
    fused = f.get_concrete_function(x, k, c).ir("fused")
    assert 'kind="conv"' in fused and "library" not in fused
    assert ("kiln_bconv" in f.get_concrete_function(x, k, c).ir("kernels")) == (
        d is dt.bf16 and bconv.takes(channels))
    @tf.function
    def grads(x, k, c):
        with tf.GradientTape() as tape:
            tape.watch([x, k])
            # smooth: relu's and max's gradients jump where rounding breaks a near-tie
            y = tf.reduce_sum(net(x, k, c, smooth=True))
        return tape.gradient(y, [x, k])
    gx, gk = (g.numpy() for g in grads(x, k, c))
    wx, wk = (g.numpy() for g in grads(*(tf.constant(a) for a in wide)))
    for g, w in ((gx, wx), (gk, wk)):  # the float32 gradients, to the narrow precision
        assert g.dtype == d.np
        assert np.abs(g.astype(np.float32) - w).max() <= TOL[d] * (np.abs(w).max() + 1)


@pytest.mark.parametrize("channels", [32, 33])
def test_bfloat16_filter_gradients_run_on_bf16_dot_products(channels):
    """A bfloat16 conv2d's filter gradient of at least NR channels and MR gradient
    channels runs on runtime/bconv.py (pairs of pixels), also where the convolution
    itself (an odd channel count) does not."""
    rng = np.random.default_rng(6)
    x = rng.normal(size=(3, 10, 9, channels)).astype(dt.bf16.np)
    k = (rng.normal(size=(3, 3, channels, 16)) * 0.1).astype(dt.bf16.np)

    @tf.function
    def grad(x, k):
        with tf.GradientTape() as tape:
            tape.watch(k)
            y = tf.reduce_sum(tf.tanh(tf.nn.conv2d(x, k, 1, "SAME")))
        return tape.gradient(y, k)
    got = grad(x, k).numpy()
    want = grad(*(tf.constant(a.astype(np.float32)) for a in (x, k))).numpy()
    assert got.dtype == dt.bf16.np
    assert np.abs(got.astype(np.float32) - want).max() <= TOL[dt.bf16] * np.abs(want).max()
    kernels = grad.get_concrete_function(x, k).ir("kernels")
    assert ("kiln_bconv_filter" in kernels) == bconv.filter_takes(channels, 16)
    assert ('"kiln_bconv"' in kernels) == bconv.takes(channels)


@pytest.mark.parametrize("size, padding", [(8, "VALID"), (7, "SAME"), (7, "VALID")])
@pytest.mark.parametrize("d", NARROW, ids=str)
def test_narrow_pools_and_their_gradients_are_float32_rounded(d, size, padding):
    """A narrow pool's gradient whose 2x2 windows tile the image (an even size, or SAME's
    padding) is stored in its own dtype, each element once (native:
    windows_llvm.stores_narrow); else, like the pools, kept in float32 for the epilogue:
    either way, the float32 result rounded (max's gradient to each window's first maximal
    element, avg's divided by the elements inside the image; a row past the last VALID
    window keeps zero)."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, size, size, 5)).astype(d.np)
    x[0, 0, 0, 0] = x[0, 0, 1, 0]  # a tie inside a window
    out = -(-size // 2) if padding == "SAME" else size // 2
    g = rng.normal(size=(2, out, out, 5)).astype(d.np)

    @tf.function
    def pools(x, g):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            m, a = tf.nn.max_pool2d(x, 2, 2, padding), tf.nn.avg_pool2d(x, 2, 2, padding)
        return m, tape.gradient(m, x, output_gradients=g), tape.gradient(
            a, x, output_gradients=g)
    got = [v.numpy() for v in pools(x, g)]
    wide = [a.astype(np.float32) for a in (x, g)]  # the interpreter's float32 results
    want = [v.astype(d.np) for v in run(pools.get_concrete_function(*wide).graph, wide)]
    for name, a, w in zip(("max_pool", "max_pool_grad", "avg_pool_grad"), got, want):
        assert a.dtype == d.np and np.array_equal(a, w), name
    assert np.count_nonzero(got[1][:, 0:2, 0:2]) == 2 * 5  # one element a window
