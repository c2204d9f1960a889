"""keras.mixed_precision (framework/keras/mixed_precision.py): policies, layers keeping
float32 weights and computing in float16, and LossScaleOptimizer's dynamic loss scaling
checked step by step against the numbers Keras 3 (TensorFlow 2.21) gives, eagerly and
compiled; models under mixed_float16 and mixed_bfloat16 (an MLP, the digits CNN) train to
their float32 twins' accuracy with the narrow types in their fused kernels, whose memory
is halved."""

from __future__ import annotations

import numpy as np
import pytest

import framework as tf
from framework.keras import mixed_precision as mp


@pytest.fixture
def mixed():
    mp.set_global_policy("mixed_float16")
    yield
    mp.set_global_policy("float32")


def test_policies():
    p = mp.Policy("mixed_float16")
    assert (p.name, p.compute_dtype, p.variable_dtype) == ("mixed_float16", "float16", "float32")
    assert mp.global_policy().name == "float32"
    b = mp.Policy("mixed_bfloat16")
    assert (b.compute_dtype, b.variable_dtype) == ("bfloat16", "float32")
    with pytest.raises(ValueError, match="unknown policy"):
        mp.Policy("mixed_float8")


def test_layers_keep_float32_weights_and_compute_in_float16(mixed):
    dense = tf.keras.layers.Dense(3)
    out = tf.keras.layers.Activation("softmax", dtype="float32")
    x = np.random.default_rng(0).standard_normal((4, 5)).astype("f")
    h = dense(x)
    assert dense.kernel.dtype == tf.float32 and h.dtype == tf.float16
    y = out(h)
    assert y.dtype == tf.float32
    want = x.astype("f2") @ dense.kernel.numpy().astype("f2") + dense.bias.numpy().astype("f2")
    np.testing.assert_allclose(h.numpy(), want, rtol=2e-3, atol=2e-3)
    assert dense.get_config()["dtype"] == "mixed_float16"


# Keras 3 (TensorFlow 2.21): LossScaleOptimizer(SGD(0.1), dynamic_growth_steps=2) on
# v = [1, 2], given these (scaled) gradients in turn: v, iterations and the scale after each.
GRADS = [[1.0, 1.0], [np.inf, 1.0], [1.0, 1.0], [1.0, 1.0], [np.nan, 0.0], [2.0**15] * 2]
TF = [([0.99999696, 1.9999969], 1, 32768.0), ([0.99999696, 1.9999969], 1, 16384.0),
      ([0.9999909, 1.9999908], 2, 16384.0), ([0.9999848, 1.9999847], 3, 32768.0),
      ([0.9999848, 1.9999847], 3, 16384.0), ([0.7999848, 1.7999847], 4, 16384.0)]


@pytest.mark.parametrize("compiled", [False, True])
def test_dynamic_loss_scaling_matches_keras(compiled):
    opt = mp.LossScaleOptimizer(tf.keras.optimizers.SGD(0.1), dynamic_growth_steps=2)
    v = tf.Variable([1.0, 2.0])

    def step(g):
        opt.apply_gradients([(g, v)])
        return opt.iterations
    run = tf.function(step) if compiled else step
    for g, (want_v, want_iters, want_scale) in zip(GRADS, TF):
        run(tf.constant(np.array(g, "f")))
        np.testing.assert_allclose(v.numpy(), want_v, rtol=0, atol=2e-7)
        assert int(opt.iterations.numpy()) == want_iters
        assert float(opt.dynamic_scale.numpy()) == want_scale
    assert float(opt.scale_loss(tf.constant(2.0)).numpy()) == 2.0 * 16384


def _train(policy, tmp_path=None):
    mp.set_global_policy(policy)
    try:
        tf.keras.utils.set_random_seed(0)
        rng = np.random.default_rng(1)
        x = rng.standard_normal((256, 6)).astype("f")
        y = ((x[:, 0] * x[:, 1] > 0) + (x[:, 2] > 0.5)).astype("int32")
        m = tf.keras.Sequential([tf.keras.layers.Dense(32, activation="relu",
                                                       input_shape=(6,)),
                                 tf.keras.layers.Dense(3),
                                 tf.keras.layers.Activation("softmax", dtype="float32")])
        m.compile(optimizer=tf.keras.optimizers.Adam(0.01),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        h = m.fit(x, y, epochs=15, batch_size=32, verbose=0)
        if tmp_path is not None:
            m.save(tmp_path / "m.kiln")
        return m, h.history["accuracy"][-1]
    finally:
        mp.set_global_policy("float32")


def test_a_mixed_float16_model_trains_like_its_float32_twin(tmp_path):
    m16, acc16 = _train("mixed_float16", tmp_path)
    _, acc32 = _train("float32")
    assert isinstance(m16.optimizer, mp.LossScaleOptimizer)
    assert "f16" in m16.train_function.ir("fused")
    assert acc32 > 0.8 and abs(acc16 - acc32) < 0.05
    loaded = tf.keras.models.load_model(tmp_path / "m.kiln")
    assert isinstance(loaded.optimizer, mp.LossScaleOptimizer)
    assert loaded.layers[0].compute_dtype == tf.float16


def test_a_mixed_bfloat16_model_trains_like_its_float32_twin():
    m16, acc16 = _train("mixed_bfloat16")
    _, acc32 = _train("float32")
    assert not isinstance(m16.optimizer, mp.LossScaleOptimizer)  # float32's range: none
    fused = m16.train_function.ir("fused")
    assert "bf16" in fused and 'kind="matmul"' in fused
    assert acc32 > 0.8 and abs(acc16 - acc32) < 0.05


@pytest.fixture(scope="module")
def digits_float32_accuracy():
    return _digits("float32")


def _digits(policy):
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).parents[2] / "examples"))
    from digits_cnn import build
    from digits_data import train_and_evaluate
    mp.set_global_policy(policy)
    try:
        tf.keras.utils.set_random_seed(0)
        return train_and_evaluate(build(), image=True, epochs=4, verbose=0)[1]
    finally:
        mp.set_global_policy("float32")


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_the_digits_cnn_reaches_float32_accuracy_under_mixed_policies(
        policy, digits_float32_accuracy):
    acc = _digits(policy)
    assert digits_float32_accuracy > 0.9 and acc > digits_float32_accuracy - 0.03


@pytest.mark.parametrize("narrow", [tf.float16, tf.bfloat16])
def test_narrow_activations_take_half_the_memory(narrow):
    def net(x, w1, w2):
        return tf.matmul(tf.nn.relu(tf.matmul(x, w1)), w2)
    rng = np.random.default_rng(0)
    args = [rng.standard_normal(s).astype("f") for s in ((1024, 256), (256, 512), (512, 64))]
    wide = tf.function(net).get_concrete_function(*args).cost(*args)
    half = [a.astype(narrow.np) for a in args]
    thin = tf.function(net).get_concrete_function(*half).cost(*half)
    assert 0.45 <= thin["peak_bytes"] / wide["peak_bytes"] <= 0.55
    assert 0.45 <= thin["bytes"] / wide["bytes"] <= 0.55
