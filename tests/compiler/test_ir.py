"""The IR: text round trip (hand-written and random graphs), regions, symbolic dims, the
verifier, parse errors and DOT export."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from compiler import dtypes as dt
from compiler import ops as P
from compiler.builder import GraphBuilder
from compiler.errors import ParseError, VerifyError
from compiler.interpret import run
from compiler.ir import Dense, Graph, Literal, Loc, Node, Sym, TensorType, Value, parse_dim
from compiler.ops.base import REGISTRY, UNARY, OpDef, register
from compiler.parser import parse
from compiler.printer import print_graph, to_dot
from compiler.verify import verify

N = Sym.named("N")


def _map_ref(x, regions):
    f = regions[0]
    return np.vectorize(lambda v: f(np.asarray(v, x.dtype))[0], otypes=[x.dtype])(x)


# An op with a region (a scalar body applied to every element), to exercise regions in the
# printer, parser, verifier and interpreter before control flow arrives. Registered only
# while a test uses it, so the registry-wide op tests never see it.
MAP = OpDef("t_map", UNARY, lambda types, attrs: (types[0],), _map_ref, scalar=lambda a: a,
            vjp="a test op")


@pytest.fixture
def map_op():
    register(MAP)
    yield MAP
    del REGISTRY[MAP.name]


MLP = '''\
func @mlp_loss(%x: f32[N,784], %w1: f32[784,128], %b1: f32[128]) -> f32[] {
  %0: f32[N,128] = matmul %x, %w1 loc("mlp.py":9)
  %1: f32[N,128] = add %0, %b1
  %2: f32[N,128] = max %1, 0.0:f32  # relu
  %3: f32[]      = reduce_sum %2 {axes=[0, 1]}
  return %3
}
'''


def test_design_example_parses_and_round_trips():
    g = parse(MLP)
    verify(g)
    assert g.nodes[0].loc == Loc("mlp.py", 9)
    assert g.nodes[2].op is P.MAXIMUM and g.nodes[2].inputs[1] == Literal(0.0, dt.f32)
    assert g.params[0].type == TensorType((N, 784), dt.f32)
    assert parse(print_graph(g)) == g
    x = np.ones((3, 784), np.float32)
    w = np.full((784, 128), 0.01, np.float32)
    (out,) = run(g, [x, w, np.zeros(128, np.float32)])
    assert out == pytest.approx(3 * 128 * 7.84, rel=1e-4)  # float32 sums of 784 terms


def test_literals_and_constants_round_trip_exactly():
    b = GraphBuilder("lits")
    x = b.param("x", TensorType((3,), dt.f32))
    y = x
    for v in (math.inf, -math.inf, math.nan, -0.0, 0.1, 1e-45, 3.4028234663852886e38):
        y = b.emit1(P.ADD, [y, Literal(v, dt.f32)])
    small = b.emit1(P.CONSTANT, [], {"value": Dense(np.array([1.5, -2.25, np.nan],
                                                            np.float32))})
    big = b.emit1(P.CONSTANT, [], {"value": Dense(np.random.default_rng(0).normal(
        size=(5, 7)).astype(np.float32))})
    flags = b.emit1(P.CONSTANT, [], {"value": Dense(np.array([True, False]))})
    y = b.emit1(P.ADD, [y, small])
    g = b.build([y, big, flags])
    text = print_graph(g)
    assert "0x" in text and "dense<f32[3]: [1.5, -2.25, nan]>" in text
    g2 = parse(text)
    assert g2 == g and print_graph(g2) == text


def test_symbolic_dims_print_and_parse():
    for text in ("N", "N*784", "M+N", "-1+N", "N*2+M*3", "M*N"):
        d = parse_dim(text)
        assert parse_dim(str(d)) == d
    assert N * 784 == 784 * N and str(N * 28 * 28) == "N*784"
    assert (N + N) == 2 * N and (N + 3) + (-3) == N


def test_regions_round_trip_verify_and_run(map_op):
    b = GraphBuilder("with_region")
    x = b.param("x", TensorType((N, 2), dt.f32))
    r = b.region()
    p = r.param("e", TensorType((), dt.f32))
    sq = r.emit1(P.MUL, [p, p])
    body = r.build([r.emit1(P.ADD, [sq, Literal(1.0, dt.f32)])])
    (y,) = b.emit(MAP, [x], regions=(body,), loc=Loc("t.py", 3))
    g = b.build([y])
    text = print_graph(g)
    assert "region(%e: f32[]) {" in text and "yield %" in text
    g2 = parse(text)
    assert g2 == g
    verify(g2)
    xs = np.array([[1, 2], [3, 4]], np.float32)
    np.testing.assert_array_equal(run(g2, [xs])[0], xs * xs + 1)


def test_verify_catches_broken_graphs():
    g = parse(MLP)
    n0 = g.nodes[0]
    wrong_type = Node(P.MATMUL, n0.inputs, (Value("0", TensorType((N, 127), dt.f32)),),
                      n0.attrs)
    with pytest.raises(VerifyError, match=r"differ from the type rule's"):
        verify(Graph(g.name, g.params, (wrong_type,) + g.nodes[1:], g.results))
    with pytest.raises(VerifyError, match=r"%1 is used before it is defined"):
        verify(Graph(g.name, g.params, (g.nodes[2],) + g.nodes, g.results))
    with pytest.raises(VerifyError, match="defined twice"):
        verify(Graph(g.name, g.params, g.nodes + (g.nodes[3],), g.results))
    bad_attrs = Node(P.REDUCE_SUM, g.nodes[3].inputs, g.nodes[3].outputs,
                     (("axes", (1, 0)), ("keepdims", False)))
    with pytest.raises(VerifyError, match="not canonical"):
        verify(Graph(g.name, g.params, g.nodes[:3] + (bad_attrs,), g.results))
    wrong_use = Node(P.ADD, (Value("0", TensorType((N, 128), dt.f64)), g.params[2]),
                     g.nodes[1].outputs)
    with pytest.raises(VerifyError, match="used as f64"):
        verify(Graph(g.name, g.params, g.nodes[:1] + (wrong_use,) + g.nodes[2:], g.results))


@pytest.mark.parametrize("text, message", [
    ("func @f(%x: f32[2]) -> f32[2] {\n  return %y\n}", "line 2: use of undefined value %y"),
    ("func @f(%x: f32[2]) -> f32[2] {\n  %0: f32[2] = frobnicate %x\n  return %0\n}",
     "line 2: unknown op 'frobnicate'"),
    ("func @f(%x: q32[2]) -> f32[2] {\n  return %x\n}", "line 1: expected a dtype"),
    ("func @f(%x: f32[2]) -> f32[3] {\n  return %x\n}", "declared results"),
    ("func @f(%x: f32[2]) -> f32[2] {\n  %0: f32[2] = neg %x {bogus=1}\n  return %0\n}",
     "unknown attribute `bogus`"),
    ("func @f(%x: f32[2]) -> f32[2] {\n  %0: f32[2] = neg %x $\n}", "unexpected character"),
])
def test_parse_errors_name_the_line(text, message):
    with pytest.raises(ParseError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse(text)


def test_dot_export():
    dot = to_dot(parse(MLP))
    assert dot.startswith('digraph "mlp_loss"') and dot.rstrip().endswith("}")
    assert '"p_x" -> "n0"' in dot and "reduce_sum" in dot and "0.0:f32" in dot


# -- random graphs ---------------------------------------------------------------------------------

UNARY_OPS = [P.NEG, P.ABS, P.EXP, P.TANH, P.SIGMOID, P.SQUARE, P.SIN, P.FLOOR]
BINARY_OPS = [P.ADD, P.SUB, P.MUL, P.MAXIMUM, P.MINIMUM, P.DIV]


@st.composite
def random_graphs(draw):
    b = GraphBuilder("random")
    d = draw(st.sampled_from([dt.f32, dt.f64]))
    shape = (N, draw(st.integers(1, 4)))
    vals = [b.param(f"p{i}", TensorType(shape, d)) for i in range(draw(st.integers(1, 3)))]
    vals.append(b.param("row", TensorType(shape[1:], d)))
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["unary", "binary", "literal", "reduce", "movement"]))
        x = draw(st.sampled_from(vals))
        if kind == "unary":
            vals.append(b.emit1(draw(st.sampled_from(UNARY_OPS)), [x]))
        elif kind == "binary":
            y = draw(st.sampled_from([v for v in vals if v.type.shape in
                                      (x.type.shape, x.type.shape[1:], ())] or [x]))
            vals.append(b.emit1(draw(st.sampled_from(BINARY_OPS)), [x, y]))
        elif kind == "literal":
            lit = Literal(draw(st.floats(-4, 4, width=32)), d)
            vals.append(b.emit1(draw(st.sampled_from(BINARY_OPS)), [x, lit]))
        elif kind == "reduce" and x.type.rank:
            op = draw(st.sampled_from([P.REDUCE_SUM, P.REDUCE_MAX]))
            vals.append(b.emit1(op, [x], {"axes": [draw(st.integers(-x.type.rank,
                                                                     x.type.rank - 1))],
                                          "keepdims": draw(st.booleans())}))
        elif kind == "movement" and x.type.rank == 2:
            vals.append(b.emit1(P.RESHAPE, [x], {"shape": (x.type.size(),)}))
    results = draw(st.lists(st.sampled_from(vals[len(b.params):] or vals), min_size=1,
                            max_size=3))
    return b.build(results), shape, d


@given(random_graphs(), st.integers(1, 3))
def test_random_graphs_round_trip_and_interpret(case, n):
    g, shape, d = case
    verify(g)
    text = print_graph(g)
    g2 = parse(text)
    assert g2 == g and print_graph(g2) == text
    rng = np.random.default_rng(n)
    args = [rng.normal(size=(n,) + shape[1:] if p.type.rank == 2 else shape[1:]).astype(d.np)
            for p in g.params]
    for a, b in zip(run(g, args), run(g2, args)):
        np.testing.assert_array_equal(a, b)


def test_interpreter_catches_a_ref_that_disagrees_with_its_type_rule():
    liar = OpDef("t_liar", UNARY, lambda types, attrs: (types[0],),
                 lambda x: np.concatenate([x, x]), scalar=lambda a: a, vjp="a test op")
    register(liar)
    try:
        b = GraphBuilder("lie")
        x = b.param("x", TensorType((N,), dt.f32))
        g = b.build([b.emit1(liar, [x])])
        with pytest.raises(RuntimeError, match=r"ref of t_liar returned float32\[4\] but its "
                                               r"type rule promised f32\[2\]"):
            run(g, [np.ones(2, np.float32)])
    finally:
        del REGISTRY[liar.name]


@pytest.mark.parametrize("d", [dt.f16, dt.bf16], ids=str)
def test_narrow_float_types_literals_and_constants_round_trip(d):
    b = GraphBuilder("narrow")
    x = b.param("x", TensorType((3,), d))
    y = b.emit1(P.ADD, [x, Literal(1.1, d)])  # 1.1 rounded to the dtype
    c = b.emit1(P.CONSTANT, [], {"value": Dense(np.array([1.5, -2.25, 3.1], d.np))})
    g = b.build([b.emit1(P.MUL, [y, c]), b.emit1(P.CAST_, [y], {"to": dt.f32})])
    text = print_graph(g)
    assert f"{d.name}[3]" in text
    g2 = parse(text)
    assert g2 == g and print_graph(g2) == text
    a = np.array([1.0, 2.0, -3.0], d.np)
    out, wide = run(g2, [a])
    assert out.dtype == d.np and wide.dtype == np.float32
    np.testing.assert_array_equal(wide, (a + d.np.type(1.1)).astype(np.float32))
