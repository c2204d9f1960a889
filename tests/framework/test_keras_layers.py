"""Every Keras layer through ``run_layer_test`` (shape, weights, eager == traced ==
compiled, finite-difference gradients, config and save/load round trips)."""

import numpy as np
import pytest
from keras_harness import run_layer_test

import framework as tf
from framework.keras import layers as kl

CASES = [
    (kl.Dense, {"units": 3}, (2, 4), (2, 3), 2),
    (kl.Dense, {"units": 3, "activation": "tanh", "use_bias": False}, (2, 3, 4), (2, 3, 3), 1),
    (kl.Activation, {"activation": "gelu"}, (2, 5), (2, 5), 0),
    (kl.Activation, {"activation": "softmax"}, (2, 5), (2, 5), 0),
    (kl.Dropout, {"rate": 0.5}, (2, 5), (2, 5), 0),
    (kl.Flatten, {}, (2, 3, 4), (2, 12), 0),
    (kl.Reshape, {"target_shape": (2, 6)}, (2, 3, 4), (2, 2, 6), 0),
    (kl.Reshape, {"target_shape": (-1, 3)}, (2, 3, 4), (2, 4, 3), 0),
    (kl.Permute, {"dims": (2, 1)}, (2, 3, 4), (2, 4, 3), 0),
    (kl.Concatenate, {"axis": -1}, [(2, 3), (2, 4)], (2, 7), 0),
    (kl.Add, {}, [(2, 3), (2, 3)], (2, 3), 0),
    (kl.Subtract, {}, [(2, 3), (2, 3)], (2, 3), 0),
    (kl.Multiply, {}, [(2, 3), (2, 3), (2, 3)], (2, 3), 0),
    (kl.Average, {}, [(2, 3), (2, 3)], (2, 3), 0),
    (kl.Conv1D, {"filters": 4, "kernel_size": 3}, (2, 7, 3), (2, 5, 4), 2),
    (kl.Conv1D, {"filters": 2, "kernel_size": 2, "strides": 2, "padding": "same"}, (2, 7, 3),
     (2, 4, 2), 2),
    (kl.Conv2D, {"filters": 4, "kernel_size": 3}, (2, 6, 5, 3), (2, 4, 3, 4), 2),
    (kl.Conv2D, {"filters": 2, "kernel_size": (3, 2), "strides": 2, "padding": "same",
                 "activation": "relu"}, (2, 6, 5, 3), (2, 3, 3, 2), 2),
    (kl.Conv2D, {"filters": 2, "kernel_size": 3, "dilation_rate": 2}, (1, 7, 7, 2),
     (1, 3, 3, 2), 2),
    (kl.DepthwiseConv2D, {"kernel_size": 3, "depth_multiplier": 2}, (2, 5, 5, 3),
     (2, 3, 3, 6), 2),
    (kl.Conv2DTranspose, {"filters": 3, "kernel_size": 3, "strides": 2}, (2, 3, 4, 2),
     (2, 7, 9, 3), 2),
    (kl.Conv2DTranspose, {"filters": 2, "kernel_size": 2, "strides": 2, "padding": "same"},
     (1, 3, 3, 2), (1, 6, 6, 2), 2),
    (kl.MaxPooling1D, {"pool_size": 2}, (2, 6, 3), (2, 3, 3), 0),
    (kl.AveragePooling1D, {"pool_size": 3, "strides": 1, "padding": "same"}, (2, 5, 3),
     (2, 5, 3), 0),
    (kl.MaxPooling2D, {"pool_size": 2}, (2, 4, 6, 3), (2, 2, 3, 3), 0),
    (kl.AveragePooling2D, {"pool_size": 2, "padding": "same"}, (2, 5, 5, 2), (2, 3, 3, 2), 0),
    (kl.GlobalAveragePooling1D, {}, (2, 5, 3), (2, 3), 0),
    (kl.GlobalMaxPooling1D, {}, (2, 5, 3), (2, 3), 0),
    (kl.GlobalAveragePooling2D, {}, (2, 4, 5, 3), (2, 3), 0),
    (kl.GlobalMaxPooling2D, {"keepdims": True}, (2, 4, 5, 3), (2, 1, 1, 3), 0),
    (kl.LayerNormalization, {}, (3, 5), (3, 5), 2),
    (kl.LayerNormalization, {"axis": [1, 2]}, (2, 3, 4), (2, 3, 4), 2),
    (kl.BatchNormalization, {}, (4, 3), (4, 3), 4),
    (kl.BatchNormalization, {"axis": 1}, (2, 3, 4, 4), (2, 3, 4, 4), 4),
]


def _id(case):
    return f"{case[0].__name__}-{'-'.join(f'{k}={v}' for k, v in case[1].items())}"


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_layer(case, tmp_path):
    cls, kwargs, shape, expected, n_weights = case
    run_layer_test(cls, kwargs, shape, expected, weights=n_weights, tmp_path=tmp_path)


RNN_CASES = [
    (kl.LSTM, {"units": 3}, (2, 4, 3), (2, 3)),
    (kl.LSTM, {"units": 2, "return_sequences": True, "go_backwards": True}, (2, 3, 2),
     (2, 3, 2)),
    # a GRU step once made three kernels each yield the same sunk view (corrupt outputs)
    (kl.GRU, {"units": 4, "return_sequences": True}, (2, 5, 3), (2, 5, 4)),
    (kl.GRU, {"units": 2, "activation": "relu"}, (2, 3, 2), (2, 2)),
]


@pytest.mark.parametrize("case", RNN_CASES, ids=[_id(c) for c in RNN_CASES])
def test_recurrent_layer(case, tmp_path):
    cls, kwargs, shape, expected = case
    run_layer_test(cls, kwargs, shape, expected, weights=3, trainable=3, tmp_path=tmp_path)


def test_lstm_matches_a_numpy_reference():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 4, 3))
    layer = kl.LSTM(5, return_state=True, dtype="float64")
    out, h, c = (t.numpy() for t in layer(x))
    w, u, b = (v.numpy() for v in layer.weights)
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    hh, cc = np.zeros((2, 5)), np.zeros((2, 5))
    for t in range(4):
        z = x[:, t] @ w + hh @ u + b
        i, f, g, o = np.split(z, 4, axis=1)
        cc = sig(f) * cc + sig(i) * np.tanh(g)
        hh = sig(o) * np.tanh(cc)
    np.testing.assert_allclose(out, hh, rtol=1e-10)
    np.testing.assert_allclose(h, hh, rtol=1e-10)
    np.testing.assert_allclose(c, cc, rtol=1e-10)
    np.testing.assert_array_equal(b[5:10], 1.0)  # unit_forget_bias


def test_gru_matches_a_numpy_reference():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 3, 4))
    layer = kl.GRU(3, bias_initializer="random_normal", dtype="float64")
    out = layer(x).numpy()
    w, u, b = (v.numpy() for v in layer.weights)
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    h = np.zeros((2, 3))
    for t in range(3):
        xz, xr, xh = np.split(x[:, t] @ w + b[0], 3, axis=1)
        rz, rr, rh = np.split(h @ u + b[1], 3, axis=1)
        z, r = sig(xz + rz), sig(xr + rr)
        h = z * h + (1 - z) * np.tanh(xh + r * rh)
    np.testing.assert_allclose(out, h, rtol=1e-10)


def test_multi_head_attention(tmp_path):
    rng = np.random.default_rng(3)
    q, v = rng.normal(size=(2, 4, 5)), rng.normal(size=(2, 6, 5))
    layer = kl.MultiHeadAttention(num_heads=2, key_dim=3, dtype="float64")
    out, scores = layer(q, v, return_attention_scores=True)
    assert out.shape == (2, 4, 5) and scores.shape == (2, 2, 4, 6)
    assert len(layer.weights) == 8
    wq, bq, wk, bk, wv, bv, wo, bo = (w.numpy() for w in layer.weights)
    qh = np.einsum("bqd,dhk->bhqk", q, wq) + bq.transpose(0, 1)[None, :, None, :]
    kh = np.einsum("bvd,dhk->bhvk", v, wk) + bk[None, :, None, :]
    vh = np.einsum("bvd,dhk->bhvk", v, wv) + bv[None, :, None, :]
    s = np.einsum("bhqk,bhvk->bhqv", qh, kh) / np.sqrt(3)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    ref = np.einsum("bhqv,bhvk,hko->bqo", p, vh, wo) + bo
    np.testing.assert_allclose(scores.numpy(), p, rtol=1e-10)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-10)
    # causal mask: no weight on later positions
    _, causal = layer(q, q, return_attention_scores=True, use_causal_mask=True)
    assert np.all(np.triu(causal.numpy()[0, 0], 1) == 0)
    # an explicit mask, compiled, and the gradient of the query
    mask = rng.random((2, 4, 6)) > 0.3
    f = tf.function(lambda a, b, m: layer(a, b, attention_mask=m))
    np.testing.assert_allclose(f(q, v, mask).numpy(),
                               layer(q, v, attention_mask=mask).numpy(), rtol=1e-9)
    qv = tf.Variable(q)
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(layer(qv, v) ** 2)
    g = tape.gradient(y, qv).numpy()
    eps, i = 1e-6, (1, 2, 3)
    qp, qm = q.copy(), q.copy()
    qp[i] += eps
    qm[i] -= eps
    fd = (np.sum(layer(qp, v).numpy() ** 2) - np.sum(layer(qm, v).numpy() ** 2)) / (2 * eps)
    assert abs(g[i] - fd) < 1e-5 * max(1, abs(fd))
    # functional use and save/load
    inp = tf.keras.Input((4, 5), dtype="float64")
    model = tf.keras.Model(inp, layer(inp, inp, use_causal_mask=True))
    model.save(tmp_path / "mha.kiln")
    loaded = tf.keras.models.load_model(tmp_path / "mha.kiln")
    np.testing.assert_allclose(loaded(q).numpy(), model(q).numpy(), rtol=1e-9)


def test_embedding(tmp_path):
    run_layer_test(kl.Embedding, {"input_dim": 7, "output_dim": 3}, (2, 4), (2, 4, 3),
                   weights=1, int_range=7, tmp_path=tmp_path)


def test_batch_norm_training_updates_moving_statistics():
    layer = kl.BatchNormalization(momentum=0.5)
    x = np.random.default_rng(0).normal(2.0, 3.0, size=(64, 3)).astype(np.float32)
    y = layer(x, training=True).numpy()
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(y.std(0), 1, atol=1e-3)
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.5 * x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(layer.moving_variance.numpy(), 0.5 + 0.5 * x.var(0), rtol=1e-4)
    assert len(layer.trainable_weights) == 2 and len(layer.non_trainable_weights) == 2
    # inference uses the moving statistics
    inf = layer(x, training=False).numpy()
    ref = (x - layer.moving_mean.numpy()) / np.sqrt(layer.moving_variance.numpy() + 1e-3)
    np.testing.assert_allclose(inf, ref, rtol=1e-5, atol=1e-5)


def test_dropout_training_scales_kept_units():
    layer = kl.Dropout(0.25, seed=3)
    x = np.ones((200, 50), np.float32)
    y = layer(x, training=True).numpy()
    kept = y != 0
    assert 0.7 < kept.mean() < 0.8
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x)


def test_layer_tracks_sublayers_and_regularization_losses():
    class Block(kl.Layer):
        def __init__(self):
            super().__init__()
            self.a = kl.Dense(4, kernel_regularizer=tf.keras.regularizers.l2(0.1))
            self.b = [kl.Dense(2)]

        def call(self, x):
            return self.b[0](self.a(x))

    block = Block()
    x = np.ones((3, 5), np.float32)
    block(x)
    assert len(block.weights) == 4 and len(block.trainable_weights) == 4
    k = block.a.kernel.numpy()
    np.testing.assert_allclose(float(block.losses[0].numpy()), 0.1 * (k ** 2).sum(), rtol=1e-5)
    block.trainable = False
    assert block.trainable_weights == [] and len(block.non_trainable_weights) == 4


def test_add_weight_and_custom_layer_in_a_compiled_function():
    class Scale(kl.Layer):
        def build(self, input_shape):
            self.s = self.add_weight("s", (input_shape[-1],), initializer="ones")

        def call(self, x):
            return x * self.s

    layer = Scale()
    f = tf.function(lambda x: layer(x))
    np.testing.assert_allclose(f(np.full((2, 3), 2.0, np.float32)).numpy(), 2.0)
    assert [w.name for w in layer.weights] == [f"{layer.name}/s:0"]


def test_unknown_argument_and_bad_shapes_raise_typed_errors():
    with pytest.raises(TypeError, match="unknown arguments"):
        kl.Dense(3, kernel_size=2)
    with pytest.raises(ValueError, match="units"):
        kl.Dense(0)
    d = kl.Dense(3, name="proj")
    d(np.ones((2, 4), np.float32))
    with pytest.raises(tf.errors.ShapeError, match=r'layer "proj": expected axis -1 of the '
                       r"input to have value 4; received input with shape \(None, 5\) "
                       r"\(.*test_keras_layers.py:\d+\)"):
        d(np.ones((2, 5), np.float32))
