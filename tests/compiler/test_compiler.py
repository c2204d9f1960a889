"""The compiler: random graphs compiled with the full pipeline and with each pass disabled
match the reference interpreter; fusion produces the promised kernel counts."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import framework as tf
from compiler import dtypes as dt
from compiler import ops as P
from compiler.builder import GraphBuilder
from compiler.codegen.compile import compile_graph
from compiler.interpret import bind_dims, run
from compiler.ir import Literal, Sym, TensorType
from compiler.passes.pipeline import PASS_NAMES, optimize
from compiler.printer import print_graph
from runtime.program import execute

N = Sym.named("N")
UNARY = [P.NEG, P.ABS, P.EXP, P.TANH, P.SIGMOID, P.SQUARE, P.SIN, P.FLOOR, P.ERF, P.LOG1P,
         P.SQRT, P.RECIPROCAL]
BINARY = [P.ADD, P.SUB, P.MUL, P.MAXIMUM, P.MINIMUM, P.DIV, P.POW]
REDUCE = [P.REDUCE_SUM, P.REDUCE_MAX, P.REDUCE_MIN]
TOL = {dt.f32: dict(rtol=2e-5, atol=2e-5), dt.f64: dict(rtol=1e-11, atol=1e-11)}


@st.composite
def graphs(draw):
    """Random DAGs of elementwise ops with broadcasts and literals, reductions (keepdims and
    not), movement ops and matmuls over a symbolic batch."""
    d = draw(st.sampled_from([dt.f32, dt.f64]))
    c = draw(st.integers(1, 5))
    b = GraphBuilder("random")
    vals = [b.param("x", TensorType((N, c), d)), b.param("y", TensorType((N, c), d)),
            b.param("row", TensorType((c,), d)), b.param("w", TensorType((c, c), d))]
    for _ in range(draw(st.integers(1, 10))):
        x = draw(st.sampled_from(vals))
        kind = draw(st.sampled_from(["unary", "binary", "binary", "literal", "reduce",
                                     "movement", "matmul", "select", "transposed"]))
        if kind == "unary":
            op = draw(st.sampled_from(UNARY))
            if op in (P.LOG1P, P.SQRT):  # keep the domain valid so values stay comparable
                x = b.emit1(P.ABS, [x])
            vals.append(b.emit1(op, [x]))
        elif kind in ("binary", "select"):
            same = [v for v in vals if v.type.shape in (x.type.shape, x.type.shape[1:]) or
                    (x.type.rank == 2 and x.type.shape[0] == N and v.type.shape == (N, 1))]
            y = draw(st.sampled_from(same or [x]))
            if kind == "select":
                cond = b.emit1(P.GT, [x, Literal(0.0, d)])
                vals.append(b.emit1(P.SELECT_, [cond, x, y]))
            else:
                op = draw(st.sampled_from(BINARY))
                if op is P.POW:
                    x = b.emit1(P.ABS, [x])
                vals.append(b.emit1(op, [x, y]))
        elif kind == "literal":
            lit = Literal(draw(st.floats(-3, 3, width=32)), d)
            vals.append(b.emit1(draw(st.sampled_from(BINARY[:5])), [x, lit]))
        elif kind == "reduce" and x.type.rank >= 1:
            axes = draw(st.sampled_from([(x.type.rank - 1,), (0,), tuple(range(x.type.rank))]))
            vals.append(b.emit1(draw(st.sampled_from(REDUCE)), [x],
                                {"axes": axes, "keepdims": draw(st.booleans())}))
        elif kind == "movement" and x.type.rank == 2:
            how = draw(st.sampled_from(["transpose", "reshape", "slice", "pad", "concat"]))
            if how == "transpose" and x.type.shape[1] == c:
                vals.append(b.emit1(P.TRANSPOSE, [b.emit1(P.TRANSPOSE, [x], {"perm": (1, 0)})],
                                    {"perm": (1, 0)}))
            elif how == "slice":  # reverse the columns: same shape, so consumers can fuse it
                rows, cols = x.type.shape
                vals.append(b.emit1(P.SLICE, [x], {"begin": (0, cols - 1), "end": (rows, -1),
                                                   "stride": (1, -1)}))
            elif how == "pad" and x.type.shape[1] > 1:
                rows, cols = x.type.shape
                cut = b.emit1(P.SLICE, [x], {"begin": (0, 1), "end": (rows, cols),
                                             "stride": (1, 1)})
                vals.append(b.emit1(P.PAD, [cut], {"pads": ((0, 0), (0, 1)), "value": 0.5}))
            elif how == "concat" and x.type.shape[1] > 1:
                rows, cols = x.type.shape
                left = b.emit1(P.SLICE, [x], {"begin": (0, 0), "end": (rows, 1),
                                              "stride": (1, 1)})
                right = b.emit1(P.SLICE, [x], {"begin": (0, 1), "end": (rows, cols),
                                               "stride": (1, 1)})
                vals.append(b.emit1(P.CONCAT, [right, left], {"axis": 1}))
            else:
                vals.append(b.emit1(P.RESHAPE, [x], {"shape": (x.type.size(),)}))
        elif kind == "transposed":  # a fused producer read at transposed positions
            square = [v for v in vals if v.type.shape == (c, c)]
            op = draw(st.sampled_from([P.ABS, P.NEG, P.EXP]))
            p = b.emit1(op, [draw(st.sampled_from(square))])
            t = b.emit1(P.TRANSPOSE, [p], {"perm": (1, 0)})
            vals.append(b.emit1(draw(st.sampled_from(BINARY[:5])), [t, p]))
        elif kind == "matmul" and x.type.rank == 2 and x.type.shape[1] == c:
            vals.append(b.emit1(P.MATMUL, [x, vals[3]],
                                {"transpose_b": draw(st.booleans())}))
    outs = draw(st.lists(st.sampled_from(vals[4:] or vals[:1]), min_size=1, max_size=3,
                         unique_by=lambda v: v.name))
    return b.build(outs), c, d


def _args(g, n, c, d, seed):
    rng = np.random.default_rng(seed)
    shapes = {"x": (n, c), "y": (n, c), "row": (c,), "w": (c, c)}
    return [rng.normal(size=shapes[p.name]).astype(d.np) for p in g.params]


def _check(graph, args, d, disabled=(), backends=("numba",)):
    stages, _ = optimize(graph, disabled=set(disabled), verify=True)
    compiled = compile_graph_with(stages["fused"], backends)
    want = run(graph, args)
    got = execute(compiled.program, args, env=bind_dims(graph.params, args))
    assert len(got) == len(want)
    for g_, w_ in zip(got, want):
        assert g_.shape == w_.shape and g_.dtype == w_.dtype
        np.testing.assert_allclose(g_, w_, equal_nan=True, **TOL[d])
    # The fused graph itself (kernels interpreted through their regions) agrees too.
    for g_, w_ in zip(run(stages["fused"], args), want):
        np.testing.assert_allclose(g_, w_, equal_nan=True, **TOL[d])


def compile_graph_with(fused, backends=("numba",)):
    """Compile an already optimized graph (no further passes)."""
    return compile_graph(fused, target=backends, optimized=True)


# Compiling kernels is slow: half the profile's examples here, a sixth per disabled pass
# (KILN_HYPOTHESIS=stress scales both up).
# Both CPU backends: the native one takes the programs it can lower (elementwise kernels so
# far) and leaves the others to numba.
@pytest.mark.parametrize("backends", [("numba",), ("llvm", "numba")])
@settings(max_examples=max(4, settings.default.max_examples // 2))
@given(case=graphs(), n=st.integers(0, 5), seed=st.integers(0, 2**16))
def test_random_graphs_compiled_match_interpreter(backends, case, n, seed):
    g, c, d = case
    args = _args(g, n, c, d, seed)
    _check(g, args, d, backends=backends)


@pytest.mark.parametrize("disabled", PASS_NAMES)
@settings(max_examples=max(2, settings.default.max_examples // 6))
@given(case=graphs(), seed=st.integers(0, 2**16))
def test_random_graphs_with_a_pass_disabled(disabled, case, seed):
    g, c, d = case
    _check(g, _args(g, 3, c, d, seed), d, disabled=(disabled,))


# -- kernel counts ---------------------------------------------------------------------------------


def kernels_of(f, *args):
    cf = f.get_concrete_function(*args)
    fused = cf.compiled().stages["fused"]
    return [n for n in fused.nodes if n.op is P.KERNEL], fused


def test_gelu_chain_is_one_kernel():
    @tf.function
    def f(x, w, b):
        return tf.nn.gelu(x * w + b, approximate=True) * 0.5 + x

    x = np.random.default_rng(0).normal(size=(64, 32)).astype(np.float32)
    w, b = np.ones(32, np.float32), np.zeros(32, np.float32)
    ks, _ = kernels_of(f, x, w, b)
    assert len(ks) == 1 and ks[0].attr("kind") == "elementwise"
    ref = tf.nn.gelu(x * w + b, approximate=True).numpy() * 0.5 + x
    np.testing.assert_allclose(f(x, w, b).numpy(), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fn, name", [(tf.nn.softmax, "softmax"),
                                      (tf.nn.log_softmax, "log_softmax"),
                                      (lambda x: tf.nn.layer_norm(x), "layer_norm")])
def test_row_composites_are_one_kernel(fn, name):
    f = tf.function(fn)
    x = np.random.default_rng(1).normal(size=(8, 33)).astype(np.float32)
    ks, _ = kernels_of(f, x)
    assert len(ks) <= 2 and ks[0].attr("kind") == "rows", name
    np.testing.assert_allclose(f(x).numpy(), fn(tf.constant(x)).numpy(), rtol=1e-5,
                               atol=1e-6)


def test_matmul_with_epilogue_is_one_kernel():
    @tf.function
    def f(x, w, b):
        return tf.nn.relu(tf.matmul(x, w) + b)

    rng = np.random.default_rng(2)
    x, w, b = (rng.normal(size=s).astype(np.float32) for s in ((16, 8), (8, 4), (4,)))
    ks, fused = kernels_of(f, x, w, b)
    assert len(fused.nodes) == 1 and ks[0].attr("kind") == "matmul"
    assert ks[0].attr("absorbed") == ("matmul", "add", "max")
    np.testing.assert_allclose(f(x, w, b).numpy(), np.maximum(x @ w + b, 0), rtol=1e-5)


def test_mlp_forward_and_cross_entropy_kernels():
    rng = np.random.default_rng(3)
    w1 = tf.Variable(rng.normal(size=(20, 16)).astype(np.float32) * 0.1)
    b1 = tf.Variable(np.zeros(16, np.float32))
    w2 = tf.Variable(rng.normal(size=(16, 5)).astype(np.float32) * 0.1)
    b2 = tf.Variable(np.zeros(5, np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None, 20]), tf.TensorSpec([None], tf.int32)])
    def loss(x, y):
        h = tf.nn.relu(tf.matmul(x, w1) + b1)
        logits = tf.matmul(h, w2) + b2
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))

    x = rng.normal(size=(32, 20)).astype(np.float32)
    y = rng.integers(0, 5, 32).astype(np.int32)
    ks, fused = kernels_of(loss)
    assert len(ks) <= 6, fused
    tf.config.set_functions_compiled(False)
    try:
        want = loss(x, y).numpy()
    finally:
        tf.config.set_functions_compiled(True)
    np.testing.assert_allclose(loss(x, y).numpy(), want, rtol=1e-5)
    assert "# not fused:" in loss.get_concrete_function().ir("fused")


def test_compiled_and_interpreted_agree_across_batch_sizes():
    @tf.function(input_signature=[tf.TensorSpec([None, 7])])
    def f(x):
        m = tf.reduce_max(x, 1, keepdims=True)
        return tf.reduce_sum(tf.exp(x - m), 1), tf.reduce_mean(x, 0)

    rng = np.random.default_rng(4)
    for n in (0, 1, 5, 300):
        x = rng.normal(size=(n, 7)).astype(np.float32)
        a, b = f(x)
        np.testing.assert_allclose(a.numpy(), np.exp(x - x.max(1, keepdims=True)).sum(1)
                                   if n else np.zeros(0), rtol=1e-5)
        if n:
            np.testing.assert_allclose(b.numpy(), x.mean(0), rtol=1e-5, atol=1e-6)


def test_compiled_reductions_keep_nan_and_inf_semantics():
    @tf.function
    def f(x):
        return (tf.reduce_max(x, 1), tf.reduce_min(x, 1), tf.reduce_sum(x, 1),
                tf.nn.softmax(x))

    x = np.random.default_rng(5).normal(size=(5, 19)).astype(np.float32)
    x[1, 7] = np.nan
    x[2, :] = -np.inf
    x[3, 18] = np.inf  # in the remainder of the 8-lane unrolled loop
    x[4, 0] = np.nan   # in the first lane
    got = [t.numpy() for t in f(x)]
    with np.errstate(all="ignore"):
        e = np.exp(x - x.max(1, keepdims=True))
        want = [x.max(1), x.min(1), x.sum(1), e / e.sum(1, keepdims=True)]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, equal_nan=True)


def test_variable_updates_are_written_in_place():
    v = tf.Variable(np.ones((64, 32), np.float32))
    m = tf.Variable(np.zeros((64, 32), np.float32))
    buf = v._value

    @tf.function
    def step(g):
        m.assign(m * 0.9 + g)
        v.assign_sub(m * 0.1)  # reads the new m, then updates v
        return tf.reduce_sum(v)

    g = np.full((64, 32), 2.0, np.float32)
    total = step(g).numpy()
    assert v._value is buf
    np.testing.assert_allclose(v.numpy(), np.full((64, 32), 0.8), rtol=1e-6)
    np.testing.assert_allclose(total, 0.8 * 64 * 32, rtol=1e-5)
    program = step.get_concrete_function(g).compiled().program
    param_slots = set(program.params)
    in_place = [s for st in program.steps for s in st.inplace if s in param_slots]
    assert len(in_place) >= 1  # at least one variable written by its kernel, no copy back
    step(g)
    np.testing.assert_allclose(v.numpy(), 0.8 - 0.1 * (2.0 * 0.9 + 2.0), rtol=1e-5)


def test_updates_fused_after_a_product_are_written_in_place():
    """Adam's updates fused after the weight gradient's matmul: the native backend keeps
    the product in a workspace of its own, so the epilogue writes the weights and both
    moments in place (no fresh arrays, no copy back), and the step equals the reference
    interpreter's."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((64, 48)).astype(np.float32)
    y = rng.standard_normal((64, 48)).astype(np.float32)
    results = []
    for compiled in (True, False):
        tf.config.run_functions_eagerly(not compiled)
        try:
            tf.keras.utils.set_random_seed(1)
            layer = tf.keras.layers.Dense(48, use_bias=False)
            layer.build((None, 48))
            opt = tf.keras.optimizers.Adam(0.01)

            @tf.function
            def step(x, y, layer=layer, opt=opt):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_mean((layer(x) - y) ** 2)
                opt.apply_gradients(zip(tape.gradient(loss, layer.trainable_variables),
                                        layer.trainable_variables))
                return loss
            step(x, y)
            buffer = layer.kernel._value
            step(x, y)
            assert layer.kernel._value is buffer
            results.append(layer.kernel.numpy())
            if compiled:
                program = step.get_concrete_function(x, y).compiled().program
                written = {s for st in program.steps if st.fusion == "matmul"
                           for s in st.inplace if s in set(program.params)}
                assert len(written) == 3 or program.target != "llvm", program.steps
        finally:
            tf.config.run_functions_eagerly(False)
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("strides, padding, dilations", [
    (1, "SAME", 1), (2, "VALID", 1), ((1, 2), "SAME", (2, 1)),
    (1, [[0, 0], [1, 2], [0, 1], [0, 0]], 1)])
def test_conv_with_epilogue_is_one_kernel_and_matches(strides, padding, dilations):
    @tf.function
    def f(x, w, b):
        return tf.nn.relu(tf.nn.conv2d(x, w, strides, padding, dilations=dilations) + b)

    rng = np.random.default_rng(6)
    x = rng.normal(size=(3, 9, 8, 4)).astype(np.float32)
    w = rng.normal(size=(3, 2, 4, 5)).astype(np.float32)
    b = rng.normal(size=5).astype(np.float32)
    ks, fused = kernels_of(f, x, w, b)
    assert len(fused.nodes) == 1 and ks[0].attr("kind") == "conv"
    assert ks[0].attr("absorbed") == ("conv2d", "add", "max")
    tf.config.set_functions_compiled(False)
    try:
        want = f(x, w, b).numpy()
    finally:
        tf.config.set_functions_compiled(True)
    np.testing.assert_allclose(f(x, w, b).numpy(), want, rtol=1e-5, atol=1e-5)


def test_grouped_conv_stays_a_library_call():
    f = tf.function(lambda x, w: tf.nn.conv2d(x, w, 1, "SAME"))
    x = np.ones((1, 5, 5, 4), np.float32)
    w = np.ones((3, 3, 2, 6), np.float32)  # 2 groups
    ks, fused = kernels_of(f, x, w)
    assert not ks and fused.nodes[0].op is P.CONV2D
    assert f(x, w).shape == (1, 5, 5, 6)


@pytest.mark.parametrize("name, fn, sx, sy", [
    ("transpose", lambda x, y: tf.transpose(x) * 2.0 + y, (5, 4), (4, 5)),
    ("slice", lambda x, y: x[1:, ::-2] - y, (5, 8), (4, 4)),
    ("pad", lambda x, y: tf.pad(x, [[1, 0], [0, 2]], constant_values=3.0) * y, (4, 3), (5, 5)),
    ("concat", lambda x, y: tf.concat([x, y], 1) + 1.0, (3, 2), (3, 4)),
    ("reshape", lambda x, y: tf.reshape(x, [6, 4]) + y, (4, 6), (6, 4)),
    ("softmax_of_transpose", lambda x, y: tf.nn.softmax(tf.transpose(x)) + y, (7, 3), (3, 7)),
])
def test_movement_ops_fold_into_kernels(name, fn, sx, sy):
    f = tf.function(fn)
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=sx).astype(np.float32), rng.normal(size=sy).astype(np.float32)
    ks, fused = kernels_of(f, x, y)
    assert len(fused.nodes) == 1 and len(ks) == 1, name
    tf.config.set_functions_compiled(False)
    try:
        want = f(x, y).numpy()
    finally:
        tf.config.set_functions_compiled(True)
    np.testing.assert_allclose(f(x, y).numpy(), want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("fn", [lambda x: tf.transpose(tf.abs(x)) * tf.abs(x),
                                lambda x: tf.abs(x) - tf.transpose(tf.exp(tf.abs(x)))])
def test_transpose_of_a_fused_producer(fn):
    """A view reads memory: its producer is not merged into the view's kernel (this crashed
    the CPU renderer)."""
    f = tf.function(fn)
    x = np.array([[1.0, -2.0], [3.0, 4.0]], np.float32)
    ks, _ = kernels_of(f, x)
    assert len(ks) == 2
    np.testing.assert_allclose(f(x).numpy(), fn(x).numpy(), rtol=1e-6)


@pytest.mark.parametrize("pool", [tf.nn.max_pool2d, tf.nn.avg_pool2d])
@pytest.mark.parametrize("ksize, strides, padding", [(2, 2, "VALID"), (3, 2, "SAME"),
                                                     ((3, 2), (1, 2), "SAME")])
def test_pooling_kernels_match(pool, ksize, strides, padding):
    f = tf.function(lambda x: pool(x, ksize, strides, padding))
    x = np.random.default_rng(8).normal(size=(2, 7, 6, 5)).astype(np.float32)
    x[0, 1, 1, 1] = np.nan
    ks, _ = kernels_of(f, x)
    assert len(ks) == 1 and ks[0].attr("kind") == "pool"
    tf.config.set_functions_compiled(False)
    try:
        want = f(x).numpy()
    finally:
        tf.config.set_functions_compiled(True)
    np.testing.assert_allclose(f(x).numpy(), want, rtol=1e-6, equal_nan=True)


def test_no_in_place_write_over_an_input_read_through_a_view():
    @tf.function
    def f(x):
        y = tf.nn.softmax(x)           # materialized by a rows kernel, dies in the next one
        return y[:, ::-1] * 2.0 + 1.0  # reads y reversed: writing into y would corrupt it

    x = np.random.default_rng(9).normal(size=(6, 9)).astype(np.float32)
    ks, _ = kernels_of(f, x)
    assert len(ks) == 2
    e = np.exp(x - x.max(1, keepdims=True))
    want = (e / e.sum(1, keepdims=True))[:, ::-1] * 2.0 + 1.0
    np.testing.assert_allclose(f(x).numpy(), want, rtol=1e-5)


def test_steady_state_calls_allocate_nothing():
    from runtime.buffer import POOL

    @tf.function
    def f(x, w):
        h = tf.nn.relu(tf.matmul(x, w))
        return tf.nn.softmax(h * 2.0), tf.reduce_sum(h)

    x = np.random.default_rng(10).normal(size=(64, 32)).astype(np.float32)
    w = np.random.default_rng(11).normal(size=(32, 16)).astype(np.float32)
    for _ in range(3):
        out = f(x, w)  # the previous results die here and return their buffers
    before = POOL.stats["allocations"]
    for _ in range(20):
        out = f(x, w)
    assert POOL.stats["allocations"] == before
    assert out[0].shape == (64, 16)


def test_fusion_never_creates_a_cycle_between_kernels():
    """G = exp(x); H = reshape(G); K = sin(z); G absorbs g1 + K (so G now reads K); then
    m = K * H may not join K: H reads G, which reads K. A stale dependency set allowed it."""
    from compiler.parser import parse
    from compiler.passes.fuse import fuse
    from compiler.verify import verify
    g = parse("""func @f(%x: f32[4], %z: f32[4]) -> (f32[4], f32[4]) {
      %0: f32[4] = exp %x
      %1: f32[4] = reshape %0 {shape=[4]}
      %2: f32[4] = sin %z
      %3: f32[4] = add %0, %2
      %4: f32[4] = mul %2, %1
      return %3, %4
    }""")
    fused = verify(fuse(g))
    args = [np.linspace(-1, 1, 4).astype(np.float32), np.arange(4, dtype=np.float32)]
    for got, want in zip(run(fused, args), run(g, args)):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    assert "a cycle" in print_graph(fused)


@pytest.mark.parametrize("shape,axes", [((37, 300), (0,)), ((5, 7, 130), (0, 1)),
                                        ((0, 9), (0,))])
def test_column_reductions_run_blocked_and_match(shape, axes, numba_backend):
    """Reductions over leading axes (bias gradients) use the column-blocked loop nest, with
    their prologue, epilogue and full-shaped outputs, for symbolic leading dims too."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal(shape[-1:]).astype(np.float32)

    def f(x, w):
        t = tf.tanh(x * w)
        return tf.reduce_sum(t, axis=axes) * 2.0 - w, tf.reduce_max(t, axis=axes), t

    spec = [tf.TensorSpec([None] + list(shape[1:]), tf.float32), tf.TensorSpec(w.shape)]
    compiled = tf.function(f, input_signature=spec)
    got = compiled(x, w)
    want = f(tf.constant(x), tf.constant(w))
    for g, e in zip(got, want):
        np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=1e-5, atol=1e-5)
    assert "cb_ in prange" in compiled.get_concrete_function().ir("kernels")


def test_views_of_parameters_load_inside_their_consumers():
    """A reshape/transpose of an input is an index-mapped load in each kernel that reads it,
    not a copy of its own (keep-, row- and broadcast-shaped uses)."""
    @tf.function
    def f(x, y, b):
        col = tf.reshape(y, [-1, 1])                       # keep-shaped in the row kernel
        s = tf.reduce_sum(x * col, axis=1)
        bias = tf.transpose(tf.reshape(b, [5, 2]))         # broadcast operand: [2, 5]
        return s * tf.reshape(y, [-1]), x[:, :5] + tf.reshape(bias, [10])[:5]

    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 10)).astype(np.float32)
    y = rng.standard_normal((6,)).astype(np.float32)
    b = rng.standard_normal((10,)).astype(np.float32)
    got = f(x, y, b)
    s = (x * y[:, None]).sum(1)
    np.testing.assert_allclose(got[0].numpy(), s * y, rtol=1e-5)
    np.testing.assert_allclose(got[1].numpy(), x[:, :5] + b.reshape(5, 2).T.reshape(10)[:5],
                               rtol=1e-6)
    stats = f.get_concrete_function(x, y, b).compiled().stats
    assert stats["library_calls"] == 0, f.get_concrete_function(x, y, b).ir("fused")


def test_window_kernels_never_write_over_their_input():
    # A pool whose input dies at it must not reuse the input's buffer: each output element
    # reads its neighbours, which an in-place write would already have overwritten.
    x = np.random.default_rng(0).normal(size=(2, 5, 3))
    f = tf.function(lambda t: tf.nn.avg_pool1d(t * 2.0, 3, 1, "SAME"))
    ref = tf.nn.avg_pool1d(tf.constant(x * 2.0), 3, 1, "SAME").numpy()
    np.testing.assert_allclose(f(x).numpy(), ref, rtol=1e-12)
    steps = f.get_concrete_function(x).compiled().program.steps
    assert all(st.inplace == [None] for st in steps if st.fusion == "pool")



@pytest.mark.parametrize("pool", ["max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize("shape,k,s,pad", [((2, 6, 6, 3), 2, 2, "VALID"),
                                           ((2, 5, 7, 2), 3, 2, "SAME"),
                                           ((1, 4, 4, 1), 3, 1, "SAME")])
def test_pool_gradients_compile_to_kernels(pool, shape, k, s, pad):
    x = np.random.default_rng(0).normal(size=shape)
    x[0, 0, 0, 0] = x[0, 0, 1, 0]  # a tie: the first maximum takes the gradient
    op = getattr(tf.nn, pool)

    def f(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = op(x, k, s, pad)
            loss = tf.reduce_sum(y * y)
        return tape.gradient(loss, x)

    g = tf.function(f)
    np.testing.assert_allclose(g(x).numpy(), f(tf.constant(x)).numpy(), rtol=1e-12)
    steps = g.get_concrete_function(x).compiled().program.steps
    assert [st.fusion for st in steps if "pool_grad" in st.name] == ["pool"]


def test_random_bits_fuse_into_their_consumers_with_the_reference_bits():
    f = tf.function(lambda key, x: tf.random.stateless_uniform(tf.shape(x), seed=key) * x,
                    input_signature=[tf.TensorSpec([2], tf.int32),
                                     tf.TensorSpec([None, 7], tf.float32)])
    key = np.array([2**31 - 1, -(2**31)], np.int32)
    for n in (1, 5, 9):  # every word of a Philox block, a symbolic batch
        x = np.ones((n, 7), np.float32)
        ref = tf.random.stateless_uniform([n, 7], seed=key).numpy()
        np.testing.assert_array_equal(f(key, x).numpy(), ref)
    steps = f.get_concrete_function().compiled().program.steps
    assert [st.kind for st in steps] == ["kernel"]


def test_independent_elementwise_producers_merge_into_their_consumer():
    # exp(-x), sigmoid(y) and the product chain share one domain: one kernel, not three.
    f = tf.function(lambda x, y: tf.exp(-x) * tf.sigmoid(y) + x * y)
    x, y = np.random.default_rng(0).normal(size=(2, 3, 4))
    np.testing.assert_allclose(f(x, y).numpy(), np.exp(-x) / (1 + np.exp(-y)) + x * y,
                               rtol=1e-12)
    assert f.get_concrete_function(x, y).compiled().stats["kernels"] == 1


def test_a_view_sunk_into_several_copy_steps_is_computed_once():
    # A concat read by two slices that no kernel consumes: fusion once emitted the concat
    # (and the reshapes under it) for each slice, and the duplicate buffers gave garbage.
    import framework as tf

    @tf.function
    def f(x, v):
        s = tf.stack([x, v, x * v])
        return s[:1], s[1:], tf.concat([s[:1], s[1:]], 0)
    x = np.arange(1, 6, dtype=np.float32)
    want = np.stack([x, 2 * x, 2 * x * x])
    a, b, c = f(tf.constant(x), tf.constant(2 * x))
    np.testing.assert_array_equal(a.numpy(), want[:1])
    np.testing.assert_array_equal(b.numpy(), want[1:])
    np.testing.assert_array_equal(c.numpy(), want)
    fused = f.get_concrete_function(tf.constant(x), tf.constant(2 * x)).ir("fused")
    assert fused.count("= concat") == 2


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_integer_floordiv_mod_and_pow_with_negative_operands(dtype):
    # Compiled integer division once went through the float path, where numba's np.fmod of
    # integers is wrong for negative operands: 5 // -2 gave -1.
    import framework as tf
    a = np.array([5, 7, -5, -7, 0, 3, 9], dtype)
    b = np.array([-2, 2, -2, 3, 5, 0, -4], dtype)
    f = tf.function(lambda x, y: (x // y, x % y, x ** tf.abs(y)))
    got = [t.numpy() for t in f(tf.constant(a), tf.constant(b))]
    want = [np.where(b != 0, np.floor_divide(a, np.where(b == 0, 1, b)), 0),
            np.where(b != 0, np.mod(a, np.where(b == 0, 1, b)), 0), a ** np.abs(b)]
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_copy_kernels_are_chosen_by_a_pass_for_the_target():
    """A lone movement op: numpy's on the CPU, a copy kernel on a device; the choice is made
    on the fused graph (passes/copies.py), not while lowering."""
    from compiler.passes.copies import add_copy_kernels
    f = tf.function(lambda x: tf.transpose(x))
    fused = f.get_concrete_function(np.ones((2, 3), np.float32)).compiled().stages["fused"]
    assert [n.op for n in fused.nodes] == [P.TRANSPOSE]
    assert add_copy_kernels(fused, everywhere=False) is fused
    (kernel,) = add_copy_kernels(fused, everywhere=True).nodes
    assert kernel.op is P.KERNEL and kernel.attr("domain") == (3, 2)
