"""Reverse mode on the IR: every differentiable primitive's gradient rule against central finite
differences in float64 on random shapes (with broadcasting), second derivatives, and the
transform's bookkeeping (fan-out, unconnected inputs, integer inputs)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from op_samples import draw_case

from compiler import dtypes as dt
from compiler import ops as P
from compiler.builder import GraphBuilder
from compiler.errors import GradientError
from compiler.interpret import run
from compiler.ir import TensorType
from compiler.transforms.vjp import vjp_graph
from compiler.verify import verify

DIFFERENTIABLE = sorted((o for o in P.REGISTRY.values() if o.differentiable and
                         o.kind not in ("fusion", "control")), key=lambda o: o.name)

# Inputs kept inside the domain where the function is smooth.
POSITIVE = {"log", "sqrt", "rsqrt", "reciprocal", "pow"}
AWAY_FROM_ZERO = {"abs", "div", "mod", "atan2"}


def test_every_op_states_its_gradient():
    for op in P.REGISTRY.values():
        assert op.differentiable or (isinstance(op.vjp, str) and op.vjp), op.name
    assert {"exp", "matmul", "conv2d", "max_pool", "gather", "reduce_max"} <= \
        {o.name for o in DIFFERENTIABLE}
    assert not P.ARGMAX.differentiable and not P.EQ.differentiable


def _domain(op, i, a, rng):
    if not (a.dtype.kind == "f" or dt.is_narrow_np(a.dtype)):
        return a
    if op.name in POSITIVE and i == 0 or op.name == "log1p":
        return rng.uniform(0.5, 2.0, a.shape)
    if op.name in AWAY_FROM_ZERO or (op.name == "pow" and i == 1):
        return np.where(rng.random(a.shape) < 0.5, -1, 1) * rng.uniform(0.5, 2.0, a.shape)
    if op.name == "mod" and i == 0:
        return rng.uniform(0.1, 0.4, a.shape) + rng.integers(-3, 3, a.shape)
    return a


def as_f64(types, arrays):
    types = [t.with_dtype(dt.f64) if t.dtype.is_float else t for t in types]
    arrays = [a.astype(np.float64) if a.dtype.kind == "f" or dt.is_narrow_np(a.dtype) else a
              for a in arrays]
    return types, arrays


def build(op, types, attrs):
    b = GraphBuilder(f"f_{op.name}")
    params = [b.param(f"x{i}", t) for i, t in enumerate(types)]
    return b.build(list(b.emit(op, params, attrs)))


def check_fd(graph, arrays, rng, wrt=None, eps=1e-6, rtol=1e-5, atol=1e-7):
    """<grad, v> from the pullback against (L(x + eps v) - L(x - eps v)) / 2 eps, where
    L = sum(ct * f(x)), for a random direction v in each differentiated input."""
    wrt = [i for i, p in enumerate(graph.params) if p.type.dtype.is_float] if wrt is None \
        else wrt
    outs = run(graph, arrays)
    if not all(np.isfinite(o).all() for o in outs):
        return None  # e.g. a max over an empty axis: no derivative to check
    cts = [rng.standard_normal(np.shape(o)).astype(o.dtype) for o in outs]
    pull = verify(vjp_graph(graph, wrt, unconnected="zero"))
    grads = run(pull, arrays + cts)[len(outs):]

    def loss(xs):
        return sum(float(np.sum(c * o)) for c, o in zip(cts, run(graph, xs)))

    for i, g in zip(wrt, grads):
        assert g.shape == np.shape(arrays[i]), (graph.params[i], g.shape)
        v = rng.standard_normal(np.shape(arrays[i]))
        plus = [(a + eps * v).astype(a.dtype) if k == i else a for k, a in enumerate(arrays)]
        minus = [(a - eps * v).astype(a.dtype) if k == i else a for k, a in enumerate(arrays)]
        fd = (loss(plus) - loss(minus)) / (2 * eps)
        np.testing.assert_allclose(float(np.sum(g * v)), fd, rtol=rtol, atol=atol,
                                   err_msg=f"gradient of input {i}")
    return pull


@pytest.mark.parametrize("op", DIFFERENTIABLE, ids=lambda o: o.name)
@settings(max_examples=20)
@given(data=st.data())
def test_vjp_matches_finite_differences(op, data):
    types, attrs, arrays = draw_case(op, data)
    if not any(t.dtype.is_float for t in types):
        return
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    if op is P.CAST_:  # a float32 input widened: linear, so a coarse step is exact enough
        if not attrs["to"].is_float:
            return
        g = build(op, [types[0].with_dtype(dt.f32)], {"to": dt.f64})
        check_fd(g, [arrays[0].astype(np.float32)], rng, eps=0.25, rtol=1e-4, atol=1e-4)
        return
    types, arrays = as_f64(types, arrays)
    arrays = [_domain(op, i, a, rng) for i, a in enumerate(arrays)]
    if op.name in ("max_pool", "reduce_max", "reduce_min") and arrays[0].size:
        # no ties (float16 draws have few distinct values): a tie is a kink, where finite
        # differences average the two sides and the gradient picks one
        a = arrays[0]
        arrays[0] = a + rng.permutation(a.size).reshape(a.shape) * 1e-4
    if op.name in ("max", "min"):  # keep the finite difference off the kink where x == y
        for _ in range(20):
            gap = np.abs(np.subtract(*np.broadcast_arrays(*arrays)))
            if gap.size == 0 or gap.min() > 1e-3:
                break
            arrays[1] = arrays[1] + 0.37
    g = build(op, types, attrs)
    if op is P.MAX_POOL_GRAD:
        with pytest.raises(GradientError, match="second derivatives"):
            vjp_graph(g, [2])
        return
    if op is P.ALL_REDUCE and attrs["reduction"] in ("max", "min"):
        with pytest.raises(GradientError, match="no gradient through"):
            vjp_graph(g, [0])
        return
    check_fd(g, arrays, rng)


def _chain(shape_x, shape_w, body):
    b = GraphBuilder("f")
    x = b.param("x", TensorType(shape_x, dt.f64))
    w = b.param("w", TensorType(shape_w, dt.f64))
    return b.build([body(b, x, w)])


def _second_order(graph, arrays, rng):
    """Differentiate the pullback again: d/dx <grad_x f, v>."""
    pull = vjp_graph(graph, [0])
    n_out = len(graph.results)
    cts = [rng.standard_normal(np.shape(o)) for o in run(graph, arrays)]
    # The pullback's parameters: x, w, ct...; differentiate its gradient output w.r.t. x.
    check_fd(pull, arrays + cts, rng, wrt=[0], eps=1e-5, rtol=1e-4, atol=1e-6)
    return n_out


@pytest.mark.parametrize("name", ["exp", "tanh", "sigmoid", "log", "sqrt", "erf", "sin",
                                  "reciprocal", "square"])
def test_second_derivatives_of_elementwise_ops(name):
    rng = np.random.default_rng(1)
    op = P.REGISTRY[name]
    g = _chain((3, 4), (4,), lambda b, x, w: b.emit1(op, [b.emit1(P.MUL, [x, w])]))
    x = rng.uniform(0.5, 1.5, (3, 4))
    _second_order(g, [x, rng.uniform(0.5, 1.5, 4)], rng)


def test_second_derivatives_of_matmul_and_softmax():
    rng = np.random.default_rng(2)

    def softmax_of_matmul(b, x, w):
        z = b.emit1(P.MATMUL, [x, w])
        m = b.emit1(P.REDUCE_MAX, [z], {"axes": (1,), "keepdims": True})
        e = b.emit1(P.EXP, [b.emit1(P.SUB, [z, m])])
        s = b.emit1(P.REDUCE_SUM, [e], {"axes": (1,), "keepdims": True})
        return b.emit1(P.DIV, [e, s])

    g = _chain((3, 4), (4, 5), softmax_of_matmul)
    _second_order(g, [rng.standard_normal((3, 4)), rng.standard_normal((4, 5))], rng)
    g = _chain((3, 4), (4, 5), lambda b, x, w: b.emit1(P.TANH, [b.emit1(P.MATMUL, [x, w])]))
    _second_order(g, [rng.standard_normal((3, 4)), rng.standard_normal((4, 5))], rng)


def test_fan_out_is_summed_and_broadcasts_reduced():
    # f(x, w) = sum((x * w) + x * x), w broadcast over rows: df/dx = w + 2x, df/dw = sum_rows x
    g = _chain((3, 4), (1, 4), lambda b, x, w: b.emit1(P.REDUCE_SUM, [b.emit1(P.ADD, [
        b.emit1(P.MUL, [x, w]), b.emit1(P.MUL, [x, x])])]))
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((3, 4)), rng.standard_normal((1, 4))
    _, gx, gw = run(vjp_graph(g), [x, w, np.float64(1.0)])
    np.testing.assert_allclose(gx, w + 2 * x)
    np.testing.assert_allclose(gw, x.sum(0, keepdims=True))


def test_unconnected_and_integer_parameters():
    b = GraphBuilder("f")
    x = b.param("x", TensorType((3,), dt.f64))
    b.param("u", TensorType((3,), dt.f64))
    i = b.param("i", TensorType((3,), dt.i32))
    y = b.emit1(P.MUL, [x, b.emit1(P.CAST_, [i], {"to": dt.f64})])
    g = b.build([y])
    with pytest.raises(GradientError, match="does not depend on parameter %u"):
        vjp_graph(g, [0, 1])
    pull = vjp_graph(g, [0, 1], unconnected="zero")
    out = run(pull, [np.ones(3), np.ones(3), np.arange(3, dtype=np.int32), np.ones(3)])
    np.testing.assert_array_equal(out[1], [0, 1, 2])
    np.testing.assert_array_equal(out[2], [0, 0, 0])
    assert len(vjp_graph(g, unconnected="zero").results) == 3  # i (integer): no gradient
    assert len(vjp_graph(g, [0], unconnected="zero").results) == 2
