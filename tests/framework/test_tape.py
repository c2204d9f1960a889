"""GradientTape and the functional API: TensorFlow's tape semantics, composites against finite
differences, eager == traced (interpreted) == compiled gradients, and training loops."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import framework as tf
from compiler.errors import GradientError
from framework import config


def fd_directional(f, xs, i, v, eps=1e-6):
    plus = [x + eps * v if k == i else x for k, x in enumerate(xs)]
    minus = [x - eps * v if k == i else x for k, x in enumerate(xs)]
    return (float(f(*[tf.constant(a) for a in plus])) -
            float(f(*[tf.constant(a) for a in minus]))) / (2 * eps)


def tape_grads(f, xs):
    ts = [tf.constant(x) for x in xs]
    with tf.GradientTape() as tape:
        tape.watch(ts)
        y = f(*ts)
    return [g.numpy() for g in tape.gradient(y, ts)]


def check_composite(f, xs, rng, traced=True):
    """Eager tape gradients against central differences (float64), then the same gradients
    traced and interpreted, and traced and compiled."""
    xs = [np.asarray(x, np.float64) for x in xs]
    grads = tape_grads(f, xs)
    for i, g in enumerate(grads):
        v = rng.standard_normal(xs[i].shape)
        np.testing.assert_allclose(np.sum(g * v), fd_directional(f, xs, i, v), rtol=1e-5,
                                   atol=1e-7, err_msg=f"input {i}")
    if traced:
        step = tf.function(lambda *ts: tape_grads_traced(f, ts))
        for compiled in (False, True):
            config.set_functions_compiled(compiled)
            try:
                out = step(*[tf.constant(x) for x in xs])
            finally:
                config.set_functions_compiled(True)
            for g, o in zip(grads, out):
                np.testing.assert_allclose(o.numpy(), g, rtol=1e-9, atol=1e-12)


def tape_grads_traced(f, ts):
    with tf.GradientTape() as tape:
        tape.watch(list(ts))
        y = f(*ts)
    return tape.gradient(y, list(ts))


COMPOSITES = {
    "softmax": lambda x, w: tf.reduce_sum(tf.nn.softmax(x) * w),
    "log_softmax": lambda x, w: tf.reduce_sum(tf.nn.log_softmax(x, axis=0) * w),
    "layer_norm": lambda x, w: tf.reduce_sum(tf.nn.layer_norm(x) * w),
    "gelu": lambda x, w: tf.reduce_sum(tf.nn.gelu(x) * w),
    "gelu_tanh": lambda x, w: tf.reduce_sum(tf.nn.gelu(x, approximate=True) * w),
    "softmax_xent": lambda x, w: tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(
        tf.nn.softmax(w), x)),
    "sigmoid_xent": lambda x, w: tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(
        tf.sigmoid(w), x)),
    "moments": lambda x, w: tf.reduce_sum(tf.nn.moments(x * w, axes=[0])[1]),
    "logsumexp": lambda x, w: tf.reduce_logsumexp(x + w),
    "elu_selu_softplus": lambda x, w: tf.reduce_sum(tf.nn.elu(x) * w + tf.nn.selu(w) +
                                                    tf.nn.softplus(x)),
    "l2_normalize": lambda x, w: tf.reduce_sum(tf.nn.l2_normalize(x, axis=-1) * w),
}


@pytest.mark.parametrize("name", sorted(COMPOSITES))
@settings(max_examples=6, deadline=None)
@given(rows=st.integers(1, 4), cols=st.integers(1, 5), bcast=st.booleans(),
       seed=st.integers(0, 2**16))
def test_composites_match_finite_differences(name, rows, cols, bcast, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, cols))
    w = rng.standard_normal((1, cols) if bcast else (rows, cols))  # w broadcasts over rows
    check_composite(COMPOSITES[name], [x, w], rng, traced=seed % 3 == 0)


def test_sparse_cross_entropy_and_gather():
    rng = np.random.default_rng(0)
    labels = tf.constant(np.array([2, 0, 1], np.int32))
    check_composite(lambda x: tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels, logits=x)), [rng.standard_normal((3, 4))], rng)
    idx = tf.constant(np.array([[0, 2], [2, 2]], np.int32))
    check_composite(lambda x, w: tf.reduce_sum(tf.gather(x, idx, axis=1) * w),
                    [rng.standard_normal((3, 4)), rng.standard_normal((2, 2))], rng)


@pytest.mark.parametrize("padding,strides,dil", [("SAME", 1, 1), ("VALID", 2, 1),
                                                 ("SAME", 2, 1), ("VALID", 1, 2)])
def test_conv_and_pooling_match_finite_differences(padding, strides, dil):
    rng = np.random.default_rng(strides * 10 + dil)
    x = rng.standard_normal((2, 7, 6, 3))
    w = rng.standard_normal((3, 2, 3, 4))

    def net(x, w):
        y = tf.nn.conv2d(x, w, strides=strides, padding=padding, dilations=dil)
        y = tf.nn.max_pool2d(tf.tanh(y), 2, 1, "SAME") + tf.nn.avg_pool2d(y, 2, 2, padding)[
            :, :1, :1]
        return tf.reduce_sum(y * y)
    check_composite(net, [x, w], rng)
    g = rng.standard_normal((3, 3, 1, 6))  # depthwise: groups = channels
    check_composite(lambda x, w: tf.reduce_sum(tf.nn.depthwise_conv2d(
        x, w, (1, 2, 2, 1), "SAME") ** 2), [x, g[:, :, :, :3].reshape(3, 3, 3, 1)], rng)


# -- TensorFlow's tape semantics -------------------------------------------------------------------


def test_variables_watched_tensors_not():
    v = tf.Variable(2.0)
    frozen = tf.Variable(3.0, trainable=False)
    x = tf.constant(4.0)
    with tf.GradientTape() as tape:
        y = v * frozen * x
    gv, gf, gx = tape.gradient(y, [v, frozen, x])
    assert float(gv) == 12.0 and gf is None and gx is None
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(frozen)
        y = v * frozen
    assert tape.gradient(y, v) is None
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(frozen)
        y = v * frozen
    assert tape.watched_variables() == [frozen]
    assert float(tape.gradient(y, frozen)) == 2.0


def test_persistent_and_non_persistent():
    x = tf.constant([1.0, 2.0])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = x * x
    tape.gradient(y, x)
    with pytest.raises(RuntimeError, match="non-persistent"):
        tape.gradient(y, x)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = x * x
        z = tf.sin(x)
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), [2, 4])
    np.testing.assert_allclose(tape.gradient(z, x).numpy(), np.cos([1, 2]), rtol=1e-6)
    np.testing.assert_allclose(tape.gradient([y, z], x).numpy(), [2, 4] + np.cos([1, 2]),
                               rtol=1e-6)
    np.testing.assert_allclose(tape.gradient(y, x, output_gradients=[3.0, -1.0]).numpy(),
                               [6, -4])


def test_unconnected_integer_stop_gradient_and_stop_recording():
    x, u = tf.constant(1.5), tf.constant(2.0)
    i = tf.constant(3)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, u, i])
        y = x * tf.cast(i, tf.float32) + tf.stop_gradient(x * x)
        with tape.stop_recording():
            z = x * 10.0
        w = y + z
    gx, gu, gi = tape.gradient(y, [x, u, i])
    assert float(gx) == 3.0 and gu is None and gi is None
    assert float(tape.gradient(w, x)) == 3.0  # z was not recorded
    zeros = tape.gradient(y, {"u": u}, unconnected_gradients="zero")
    assert float(zeros["u"]) == 0.0
    assert tape.gradient(y, u, unconnected_gradients=tf.UnconnectedGradients.ZERO).numpy() == 0


def test_nested_tapes_give_second_derivatives():
    x = tf.constant(0.7)
    with tf.GradientTape() as outer:
        outer.watch(x)
        with tf.GradientTape() as inner:
            inner.watch(x)
            y = tf.tanh(x) * x
        dy = inner.gradient(y, x)
    d2y = outer.gradient(dy, x)
    t = np.tanh(0.7)
    np.testing.assert_allclose(float(dy), (1 - t * t) * 0.7 + t, rtol=1e-6)
    np.testing.assert_allclose(float(d2y), 2 * (1 - t * t) - 2 * t * (1 - t * t) * 0.7,
                               rtol=1e-5)


def test_custom_gradient_eager_traced_and_nested():
    @tf.custom_gradient
    def clip_grad(x):
        return tf.identity(x) * 1.0, lambda dy: tf.clip_by_value(dy, -1.0, 1.0)

    @tf.custom_gradient
    def cube(x):
        return x * x * x, lambda dy: dy * 3.0 * x * x  # differentiable itself

    x = tf.constant([0.5, 3.0])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = clip_grad(x) * 5.0
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), [1, 1])
    traced = tf.function(lambda x: tf.grad(lambda x: tf.reduce_sum(clip_grad(x) * 5.0))(x))
    np.testing.assert_allclose(traced(x).numpy(), [1, 1])
    d2 = tf.grad(lambda x: tf.reduce_sum(tf.grad(lambda x: tf.reduce_sum(cube(x)))(x)))(x)
    np.testing.assert_allclose(d2.numpy(), [3.0, 18.0])


def test_grad_and_value_and_grad():
    def f(x, y):
        return tf.reduce_sum(x * x * y)
    x, y = tf.constant([1.0, 2.0]), tf.constant([3.0, 4.0])
    np.testing.assert_allclose(tf.grad(f)(x, y).numpy(), [6, 16])
    gx, gy = tf.grad(f, argnums=(0, 1))(x, y)
    np.testing.assert_allclose(gy.numpy(), [1, 4])
    (value, aux), g = tf.value_and_grad(lambda x: (f(x, y), "aux"), has_aux=True)(x)
    assert float(value) == 19.0 and aux == "aux"
    compiled = tf.function(tf.value_and_grad(f, argnums=1))
    value, g = compiled(x, y)
    assert float(value) == 19.0 and g.numpy().tolist() == [1.0, 4.0]
    inner = tf.function(lambda x: tf.reduce_sum(tf.exp(x)))  # a @function under a tape
    np.testing.assert_allclose(tf.grad(inner)(x).numpy(), np.exp([1, 2]), rtol=1e-6)
    with pytest.raises(ValueError, match="float scalar"):
        tf.grad(lambda x: x * 2)(x)


def test_second_derivative_of_max_pool_is_a_clear_error():
    x = tf.constant(np.random.default_rng(0).standard_normal((1, 4, 4, 1)))

    def g(x):
        return tf.reduce_sum(tf.grad(lambda x: tf.reduce_sum(tf.nn.max_pool2d(x, 2, 2, "VALID")
                                                            ** 2))(x))
    with pytest.raises(GradientError, match="max_pool"):
        tf.grad(g)(x)


def test_gradient_accumulation_through_variable_reads_in_python_loops():
    v = tf.Variable([1.0, -2.0])
    acc = tf.Variable([0.0, 0.0])
    xs = [tf.constant([1.0, 2.0]), tf.constant([3.0, -1.0]), tf.constant([0.5, 0.5])]

    def accumulate():
        acc.assign([0.0, 0.0])
        with tf.GradientTape() as tape:
            loss = 0.0
            for x in xs:  # unrolled at trace time: three reads of v
                loss = loss + tf.reduce_sum(v * v * x)
        acc.assign_add(tape.gradient(loss, v))
        for x in xs:  # one tape per micro-batch, gradients summed into acc
            with tf.GradientTape() as tape:
                part = tf.reduce_sum(v * x)
            acc.assign_add(tape.gradient(part, v))
        return acc.read_value()

    want = 2 * v.numpy() * sum(x.numpy() for x in xs) + sum(x.numpy() for x in xs)
    np.testing.assert_allclose(accumulate().numpy(), want)
    np.testing.assert_allclose(tf.function(accumulate)().numpy(), want)


# -- training ----------------------------------------------------------------------------------


def _mlp_problem():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 8)).astype(np.float32)
    y = (np.sin(x[:, :1] * 2) + x[:, 1:2] * x[:, 2:3]).astype(np.float32)
    params = [tf.Variable(rng.standard_normal((8, 32)).astype(np.float32) * 0.4),
              tf.Variable(np.zeros(32, np.float32)),
              tf.Variable(rng.standard_normal((32, 1)).astype(np.float32) * 0.2),
              tf.Variable(np.zeros(1, np.float32))]
    return tf.constant(x), tf.constant(y), params


def _train_step(x, y, params, lr=0.2):
    w1, b1, w2, b2 = params
    with tf.GradientTape() as tape:
        h = tf.tanh(tf.matmul(x, w1) + b1)
        loss = tf.reduce_mean(tf.square(tf.matmul(h, w2) + b2 - y))
    for p, g in zip(params, tape.gradient(loss, params)):
        p.assign_sub(lr * g)
    return loss


LOSS_TARGET = 0.1  # the targets have variance ~1.4 (first loss ~1.45)


@pytest.mark.parametrize("mode", ["eager", "function"])
def test_two_layer_mlp_trains(mode):
    x, y, params = _mlp_problem()
    step = _train_step if mode == "eager" else tf.function(_train_step)
    first = float(step(x, y, params))
    for _ in range(300):
        loss = float(step(x, y, params))
    assert first > 0.5 and loss < LOSS_TARGET, (first, loss)


def test_compiled_step_matches_eager_and_updates_in_place():
    x, y, params = _mlp_problem()
    _, _, twins = _mlp_problem()
    step = tf.function(_train_step)
    buffers = [p._value for p in params]
    for _ in range(3):
        a, b = float(step(x, y, params)), float(_train_step(x, y, twins))
        np.testing.assert_allclose(a, b, rtol=1e-5)
    for p, t, buf in zip(params, twins, buffers):
        np.testing.assert_allclose(p.numpy(), t.numpy(), rtol=1e-4, atol=1e-6)
        assert p._value is buf  # updated in place, never replaced
    cf = step.get_concrete_function(x, y, params)
    stats = cf.compiled().stats
    assert stats["kernels"] <= 12 and stats["library_calls"] == 0, stats
    fused = cf.ir("fused")
    # The update is fused into the gradient kernels: a kernel that ends in the SGD update.
    assert any("matmul" in line and "sub" in line for line in fused.splitlines()
               if "= kernel" in line)


def test_bad_use_gets_typed_errors_with_the_user_line():
    x = tf.constant([1.0, 2.0])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = x * x
    with pytest.raises(TypeError, match=r"sources must be tensors or variables; received str"
                                        r".*test_tape.py:\d+"):
        tape.gradient(y, "x")
    with pytest.raises(TypeError, match="one output gradient per target"):
        tape.gradient([y, y], x, output_gradients=[1.0])
    with pytest.raises(TypeError, match="expected tensors or variables"):
        tape.watch(3)

    @tf.custom_gradient
    def bad(x):
        return x * 2.0, lambda dy: (dy, dy)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = bad(x)
    with pytest.raises(TypeError, match="return 1 gradients"):
        tape.gradient(y, x)
    with pytest.raises(TypeError, match="argnums"):
        tf.grad(lambda x: tf.reduce_sum(x), argnums=3)(x)
