"""``run_layer_test``: the checks every Keras layer must pass.

Output shape (against ``compute_output_shape``), weight counts, eager == traced (reference
interpreter) == compiled outputs, gradients of the inputs and weights by central finite
differences (the layer in float64), and the ``get_config``/``from_config`` and model
save/load round trips.
"""

from __future__ import annotations

import numpy as np

import framework as tf
from framework import config
from framework.keras import layers as kl


def _inputs(input_shape, int_range, rng, dtype):
    def one(shape):
        if int_range is not None:
            return rng.integers(0, int_range, size=shape).astype(np.int32)
        return rng.normal(size=shape).astype(dtype)
    if isinstance(input_shape, list):
        return [one(s) for s in input_shape]
    return one(input_shape)


def _close(a, b, tol, what):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, f"{what}: shapes {a.shape} vs {b.shape}"
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol, err_msg=what)


def run_layer_test(cls, kwargs, input_shape, expected_shape=None, weights=None,
                   trainable=None, int_range=None, grad=True, call_kwargs=None, tmp_path=None,
                   eps=1e-6, tol=1e-6):
    """Check ``cls(**kwargs)`` on random inputs of ``input_shape`` (a list for several
    inputs); returns the layer."""
    rng = np.random.default_rng(0)
    x = _inputs(input_shape, int_range, rng, np.float64)
    call_kwargs = call_kwargs or {}
    layer = cls(**kwargs, dtype="float64")
    y = layer(x, **call_kwargs)
    out = y.numpy()

    # shapes and weights
    batchless = [(None,) + tuple(s)[1:] for s in input_shape] if isinstance(input_shape, list) \
        else (None,) + tuple(input_shape)[1:]
    predicted = tuple(layer.compute_output_shape(batchless))
    assert predicted[1:] == out.shape[1:], f"compute_output_shape {predicted} vs {out.shape}"
    if expected_shape is not None:
        assert out.shape == tuple(expected_shape)
    if weights is not None:
        assert len(layer.weights) == weights, [w.name for w in layer.weights]
    if trainable is not None:
        assert len(layer.trainable_weights) == trainable

    # eager == traced (interpreter) == compiled
    f = tf.function(lambda t: layer(t, **call_kwargs))
    config.set_functions_compiled(False)
    try:
        traced = f(x).numpy()
    finally:
        config.set_functions_compiled(True)
    compiled = f(x).numpy()
    _close(traced, out, 1e-12, f"{cls.__name__}: traced vs eager")
    _close(compiled, out, 1e-9, f"{cls.__name__}: compiled vs eager")

    # gradients of sum(y * c) by central differences
    if grad:
        c = rng.normal(size=out.shape)
        sources = [] if int_range is not None else \
            [tf.Variable(a) for a in (x if isinstance(x, list) else [x])]
        sources += list(layer.trainable_weights)

        def loss():
            xs = [s.value() for s in sources[: len(sources) - len(layer.trainable_weights)]]
            inp = x if int_range is not None else (xs if isinstance(x, list) else xs[0])
            return tf.reduce_sum(layer(inp, **call_kwargs) * c)

        with tf.GradientTape() as tape:
            value = loss()
        grads = tape.gradient(value, sources)
        for s, g in zip(sources, grads):
            base = s.numpy().copy()
            flat = base.reshape(-1)
            picks = rng.choice(flat.size, size=min(flat.size, 6), replace=False)
            for i in picks:
                bumped = flat.copy()
                bumped[i] += eps
                s.assign(bumped.reshape(base.shape))
                up = float(loss().numpy())
                bumped[i] -= 2 * eps
                s.assign(bumped.reshape(base.shape))
                down = float(loss().numpy())
                s.assign(base)
                fd = (up - down) / (2 * eps)
                got = 0.0 if g is None else float(g.numpy().reshape(-1)[i])
                assert abs(got - fd) <= 1e-5 * max(1.0, abs(fd)), \
                    f"{cls.__name__}: d/d{s.name}[{i}] = {got}, finite differences {fd}"

    # config round trip: same config, same outputs with the same weights
    config_ = layer.get_config()
    clone = cls.from_config(config_)
    assert clone.get_config() | {"name": None} == config_ | {"name": None}
    clone(x, **call_kwargs)
    clone.set_weights(layer.get_weights())
    _close(clone(x, **call_kwargs).numpy(), out, 1e-12, f"{cls.__name__}: from_config")

    # save/load round trip inside a functional model
    if tmp_path is not None:
        shapes = input_shape if isinstance(input_shape, list) else [input_shape]
        dtype = "int32" if int_range is not None else "float64"
        ins = [kl.Input(shape=tuple(s)[1:], dtype=dtype) for s in shapes]
        model = tf.keras.Model(ins if isinstance(input_shape, list) else ins[0],
                               layer(ins if isinstance(input_shape, list) else ins[0],
                                     **call_kwargs))
        path = tmp_path / f"{cls.__name__}.kiln"
        model.save(path)
        loaded = tf.keras.models.load_model(path)
        _close(loaded(x).numpy(), out, tol, f"{cls.__name__}: save/load")
    return layer
