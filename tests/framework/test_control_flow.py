"""Control flow: cond, while_loop, scan and switch_case against Python reference loops (the
reference interpreter and compiled), their gradients against finite differences, the IR text
form, and the recurrent layers on scan."""

import numpy as np
import pytest

import framework as tf
from compiler.interpret import run
from compiler.parser import parse
from compiler.printer import print_graph
from compiler.verify import verify
from framework import keras

RNG = np.random.default_rng(0)


def _check(f, *args, rtol=1e-6):
    """``@function f`` compiled, its graph in the interpreter, and f run eagerly agree."""
    tf_f = tf.function(f)
    compiled = tf.nest.flatten(tf_f(*args))
    cf = tf_f.get_concrete_function(*args)
    verify(cf.graph)
    assert parse(print_graph(cf.graph)) == cf.graph
    interpreted = run(cf.graph, [np.asarray(a) for a in args])
    eager = tf.nest.flatten(f(*args))
    for c, i, e in zip(compiled, interpreted, eager):
        np.testing.assert_allclose(np.asarray(c), np.asarray(e), rtol=rtol)
        np.testing.assert_allclose(np.asarray(i), np.asarray(e), rtol=rtol)
    return cf


def test_cond_both_branches_and_several_outputs():
    def f(x):
        return tf.cond(tf.reduce_sum(x) > 0, lambda: (x * 2.0, tf.reduce_max(x)),
                       lambda: (-x, tf.reduce_min(x)))
    for x in ([1.0, 2.0, -0.5], [-1.0, -2.0, 0.5]):
        cf = _check(f, tf.constant(x))
    assert "cond" in cf.ir("traced")


def test_while_loop_matches_python_and_counts():
    def f(x, n):
        def body(i, v, s):
            return i + 1, v * 0.5 + x, s + tf.reduce_sum(v)
        return tf.while_loop(lambda i, v, s: i < n, body, (0, x, 0.0))
    x = tf.constant(RNG.normal(size=(3, 4)).astype(np.float32))
    _check(f, x, tf.constant(5))
    out = tf.function(f)(x, tf.constant(5))
    ref_v, ref_s = x.numpy(), 0.0
    for _ in range(5):
        ref_v, ref_s = ref_v * 0.5 + x.numpy(), ref_s + ref_v.sum()
    assert int(out[0]) == 5
    np.testing.assert_allclose(out[1].numpy(), ref_v, rtol=1e-6)
    np.testing.assert_allclose(float(out[2]), ref_s, rtol=1e-5)


def test_while_loop_maximum_iterations_stops_early():
    f = tf.function(lambda: tf.while_loop(lambda i: i < 100, lambda i: i + 1, [0],
                                          maximum_iterations=7))
    assert int(f()[0]) == 7


def test_scan_forward_reverse_nested_structures():
    def f(xs):
        cum = tf.scan(lambda a, x: a + x, xs)
        rev = tf.scan(lambda a, x: a * 0.5 + x, xs, initializer=tf.zeros(4), reverse=True)
        pair = tf.scan(lambda a, x: (a[0] + x, a[1] * x), xs,
                       initializer=(tf.zeros(4), tf.ones(4)))
        return cum, rev, pair
    xs = tf.constant(RNG.normal(size=(6, 4)).astype(np.float32))
    _check(f, xs, rtol=1e-5)
    cum = tf.function(f)(xs)[0].numpy()
    np.testing.assert_allclose(cum, np.cumsum(xs.numpy(), 0), rtol=1e-5)


def test_nested_control_flow_with_fusible_bodies():
    def f(x, n):
        def body(i, v):
            v = tf.cond(i % 2 == 0, lambda: tf.nn.relu(v * 1.5 - 0.2), lambda: tf.tanh(v) + x)
            return i + 1, v
        _, v = tf.while_loop(lambda i, v: i < n, body, (0, x))
        return tf.scan(lambda a, r: tf.sigmoid(a + r * v), tf.stack([x, v, x * v]))
    x = tf.constant(RNG.normal(size=(5,)).astype(np.float32))
    cf = _check(f, x, tf.constant(4), rtol=1e-5)
    fused = cf.ir("fused")
    # the loop body's elementwise ops are fused kernels inside its region
    assert "kernel" in fused and "while_loop" in fused and "scan" in fused


def test_switch_case_with_default():
    def f(i):
        return tf.switch_case(i, [lambda: tf.constant(10.0), lambda: tf.constant(20.0)],
                              default=lambda: tf.constant(-1.0))
    g = tf.function(f)
    assert [float(g(tf.constant(k))) for k in (0, 1, 2, -3)] == [10.0, 20.0, -1.0, -1.0]
    assert float(f(1)) == 20.0


def test_variable_assigned_in_a_branch():
    v = tf.Variable(1.0)

    @tf.function
    def f(p):
        tf.cond(p > 0, lambda: v.assign(v * 3.0), lambda: v.assign_add(1.0))
        return v.read_value()
    assert float(f(tf.constant(1.0))) == 3.0
    assert float(f(tf.constant(-1.0))) == 4.0 and float(v.numpy()) == 4.0


# -- gradients ------------------------------------------------------------------------------------


def _fd_check(loss, x, eps=1e-6, rtol=1e-5):
    """The compiled tape gradient of ``loss`` against central differences (float64)."""
    @tf.function
    def grad(x):
        with tf.GradientTape() as t:
            t.watch(x)
            y = loss(x)
        return t.gradient(y, x)
    g = grad(tf.constant(x)).numpy()
    num = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[i] = eps
        num[i] = (float(loss(tf.constant(x + d))) - float(loss(tf.constant(x - d)))) / (2 * eps)
    np.testing.assert_allclose(g, num, rtol=rtol, atol=1e-7)


def test_gradient_through_cond_takes_the_taken_branch():
    def loss(x):
        return tf.cond(tf.reduce_sum(x) > 0, lambda: tf.reduce_sum(tf.sin(x) * x),
                       lambda: tf.reduce_sum(x * x * x))
    _fd_check(loss, RNG.normal(size=(4,)) + 1.0)
    _fd_check(loss, RNG.normal(size=(4,)) - 2.0)


def test_gradient_through_bounded_while_loop():
    def loss(x):
        _, v = tf.while_loop(lambda i, v: tf.logical_and(i < 4, tf.reduce_sum(v) < 50.0),
                             lambda i, v: (i + 1, v * x + tf.sin(v)), (0, x),
                             maximum_iterations=6)
        return tf.reduce_sum(v)
    _fd_check(loss, RNG.uniform(0.5, 1.5, size=(3,)))


def test_gradient_through_scan_carries_elems_and_captures():
    w = RNG.normal(size=(3,))

    def loss(x):
        wt = tf.constant(w)
        ys = tf.scan(lambda a, e: tf.tanh(a * wt + e * x), tf.stack([x, x * x, -x]),
                     initializer=x)
        return tf.reduce_sum(ys * ys)
    _fd_check(loss, RNG.normal(size=(3,)))


def test_unbounded_while_loop_gradient_is_a_clear_error():
    @tf.function
    def f(x):
        with tf.GradientTape() as t:
            t.watch(x)
            _, y = tf.while_loop(lambda i, v: i < 3, lambda i, v: (i + 1, v * x), (0, x))
        return t.gradient(y, x)
    with pytest.raises(tf.errors.GradientError, match="maximum_iterations"):
        f(tf.constant([1.0]))


# -- the recurrent layers on scan -----------------------------------------------------------------


def _traced_nodes(layer, steps):
    x = tf.constant(RNG.normal(size=(2, steps, 3)).astype(np.float32))
    f = tf.function(lambda x: layer(x))
    graph = f.get_concrete_function(x).graph
    return sum(1 for _ in graph.walk())


@pytest.mark.parametrize("cls", [keras.layers.LSTM, keras.layers.GRU])
def test_recurrent_ir_size_is_independent_of_sequence_length(cls):
    layer = cls(4, return_sequences=True)
    layer(tf.constant(np.zeros((2, 5, 3), np.float32)))
    assert _traced_nodes(layer, 5) == _traced_nodes(layer, 40)


class MinimalCell(keras.layers.Layer):
    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = self.state_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight("kernel", (input_shape[-1], self.units))
        self.recurrent = self.add_weight("recurrent", (self.units, self.units))

    def call(self, inputs, states):
        h = tf.tanh(tf.matmul(inputs, self.kernel) + tf.matmul(states[0], self.recurrent))
        return h, [h]


def test_rnn_with_a_custom_cell_matches_numpy_and_trains():
    layer = keras.layers.RNN(MinimalCell(3), return_sequences=True, return_state=True)
    x = RNG.normal(size=(2, 4, 5)).astype(np.float32)
    seq, h = layer(x)
    k, r = (w.numpy() for w in layer.weights)
    hh = np.zeros((2, 3), np.float32)
    for t in range(4):
        hh = np.tanh(x[:, t] @ k + hh @ r)
        np.testing.assert_allclose(seq.numpy()[:, t], hh, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h.numpy(), hh, rtol=1e-5, atol=1e-6)
    compiled = tf.function(lambda x: layer(x))(tf.constant(x))  # one scan op
    np.testing.assert_allclose(compiled[0].numpy(), seq.numpy(), rtol=1e-5, atol=1e-6)
    model = keras.Sequential([keras.Input((4, 5)), keras.layers.RNN(MinimalCell(3)),
                              keras.layers.Dense(1)])
    # eager steps: the compiled scan gradient is checked by finite differences above
    model.compile(optimizer="adam", loss="mse", run_eagerly=True)
    hist = model.fit(x, np.ones((2, 1), np.float32), epochs=3, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]


# -- compiled loops and loop-invariant code motion ------------------------------------------------


def _loops(cf):
    from runtime.program import walk_steps
    return [st for st in walk_steps(cf.compiled().program)
            if st.kind == "control" and st.fusion != "cond"]


def collatz(n):
    steps = 0
    while n != 1:
        if n % 2 == 0:
            n = n // 2
        else:
            n = 3 * n + 1
        steps += 1
    return steps


def _decaying_sums(xs, w):
    return tf.scan(lambda a, r: a * w[0] + tf.tanh(r) * w[1:], xs)


@pytest.mark.parametrize("fn, args", [
    (collatz, (np.int32(27),)),
    (_decaying_sums, (RNG.normal(size=(50, 3)).astype(np.float32),
                      np.array([0.9, 1.0, 2.0, 3.0], np.float32))),
])
def test_loops_of_kernels_run_as_one_compiled_function(fn, args, monkeypatch, numba_backend):
    import compiler.codegen.program as codegen_program
    args = [tf.constant(a) for a in args]
    compiled = tf.function(fn)
    (loop,) = _loops(compiled.get_concrete_function(*args))
    assert loop.name.startswith("loop") and "@numba.njit" in loop.source
    monkeypatch.setattr(codegen_program, "plan_loop", lambda *a: None)  # region by region
    stepwise = tf.function(fn)
    (loop,) = _loops(stepwise.get_concrete_function(*args))
    assert not loop.source
    np.testing.assert_allclose(compiled(*args).numpy(), stepwise(*args).numpy(), rtol=1e-6)
    np.testing.assert_allclose(compiled(*args).numpy(), np.asarray(fn(*args)), rtol=1e-5)


def test_loop_invariant_work_is_hoisted_out_of_the_body():
    cf = _check(_decaying_sums, tf.constant(RNG.normal(size=(6, 3)).astype(np.float32)),
                tf.constant(np.array([0.5, 1.0, 2.0, 3.0], np.float32)), rtol=1e-5)
    optimized = cf.ir("optimized")
    body = optimized[optimized.index("= scan"):]
    assert "slice" in optimized[:optimized.index("= scan")] and "slice" not in body


@pytest.mark.parametrize("cls", [keras.layers.LSTM, keras.layers.GRU])
def test_recurrent_layers_run_their_steps_as_one_compiled_loop(cls, numba_backend):
    layer = cls(4, return_sequences=True)
    x = tf.constant(RNG.normal(size=(2, 6, 3)).astype(np.float32))
    f = tf.function(lambda x: layer(x))
    (loop,) = _loops(f.get_concrete_function(x))
    assert loop.source
    np.testing.assert_allclose(f(x).numpy(), layer(x).numpy(), rtol=1e-5, atol=1e-6)
