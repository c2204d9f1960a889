"""Composites (softmax, norms, activations, cross-entropies) and nn wrappers against numpy
and scipy, in float64."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special
from test_ops import naive_conv

import framework as tf

rng = np.random.default_rng(0)
X = rng.normal(size=(4, 7)) * 3


def close(t, want, rtol=1e-10, atol=1e-12):
    np.testing.assert_allclose(t.numpy(), want, rtol=rtol, atol=atol)


@pytest.mark.parametrize("name, fn, ref", [
    ("relu", tf.nn.relu, lambda x: np.maximum(x, 0)),
    ("relu6", tf.nn.relu6, lambda x: np.clip(x, 0, 6)),
    ("leaky_relu", tf.nn.leaky_relu, lambda x: np.where(x > 0, x, 0.2 * x)),
    ("elu", tf.nn.elu, lambda x: np.where(x > 0, x, np.expm1(x))),
    ("selu", tf.nn.selu, lambda x: 1.0507009873554805 * np.where(
        x > 0, x, 1.6732632423543772 * np.expm1(x))),
    ("gelu", tf.nn.gelu, lambda x: x * 0.5 * (1 + special.erf(x / math.sqrt(2)))),
    ("gelu_tanh", lambda x: tf.nn.gelu(x, approximate=True), lambda x: 0.5 * x * (
        1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))),
    ("silu", tf.nn.silu, lambda x: x * special.expit(x)),
    ("softplus", tf.nn.softplus, lambda x: np.logaddexp(0, x)),
    ("softsign", tf.nn.softsign, lambda x: x / (1 + abs(x))),
    ("sigmoid", tf.nn.sigmoid, special.expit),
    ("log_sigmoid", tf.math.log_sigmoid, lambda x: -np.logaddexp(0, -x)),
    ("softmax", tf.nn.softmax, lambda x: special.softmax(x, -1)),
    ("log_softmax", tf.nn.log_softmax, lambda x: special.log_softmax(x, -1)),
    ("softmax_axis0", lambda x: tf.nn.softmax(x, 0), lambda x: special.softmax(x, 0)),
    ("l2_normalize", lambda x: tf.nn.l2_normalize(x, -1),
     lambda x: x / np.sqrt((x * x).sum(-1, keepdims=True))),
])
def test_activation_composites(name, fn, ref):
    close(fn(tf.constant(X)), ref(X))


def test_stability_at_extremes():
    big = tf.constant([[1000.0, -1000.0, 0.0]])
    np.testing.assert_allclose(tf.nn.softmax(big).numpy(), [[1, 0, 0]])
    np.testing.assert_allclose(tf.nn.softplus(big).numpy(), [[1000, 0, math.log(2)]])
    neg = tf.constant([[-np.inf, -np.inf]])
    assert tf.reduce_logsumexp(neg, 1).numpy()[0] == -np.inf


def test_cross_entropies():
    labels = special.softmax(rng.normal(size=(4, 7)), -1)
    close(tf.nn.softmax_cross_entropy_with_logits(labels, X),
          -(labels * special.log_softmax(X, -1)).sum(-1))
    idx = np.array([0, 6, 3, 3])
    close(tf.nn.sparse_softmax_cross_entropy_with_logits(idx, tf.constant(X)),
          -special.log_softmax(X, -1)[np.arange(4), idx])
    z = (rng.random(X.shape) > 0.5).astype(np.float64)
    close(tf.nn.sigmoid_cross_entropy_with_logits(labels=z, logits=X),
          -(z * np.log(special.expit(X)) + (1 - z) * np.log(1 - special.expit(X))), 1e-9)
    close(tf.nn.l2_loss(tf.constant(X)), (X ** 2).sum() / 2)


def test_normalization():
    mean, var = tf.nn.moments(tf.constant(X), [0])
    close(mean, X.mean(0))
    close(var, X.var(0))
    g, b = rng.normal(size=7), rng.normal(size=7)
    want = (X - X.mean(-1, keepdims=True)) / np.sqrt(X.var(-1, keepdims=True) + 1e-3) * g + b
    close(tf.nn.layer_norm(tf.constant(X), g, b), want)
    close(tf.nn.batch_normalization(tf.constant(X), X.mean(0), X.var(0), b, g, 1e-5),
          (X - X.mean(0)) / np.sqrt(X.var(0) + 1e-5) * g + b)


def test_conv_wrappers():
    x = rng.normal(size=(2, 6, 5, 4))
    w = rng.normal(size=(3, 2, 4, 6))
    close(tf.nn.conv2d(x, w, strides=[1, 2, 1, 1], padding="VALID"),
          naive_conv(x, w, (2, 1), ((0, 0), (0, 0)), (1, 1), 1), 1e-9)
    gw = rng.normal(size=(3, 3, 2, 6))  # 4 in-channels with 2 per group: groups=2
    close(tf.nn.conv2d(x, gw, 1, "SAME"), naive_conv(x, gw, (1, 1), ((1, 1), (1, 1)), (1, 1), 2),
          1e-9)
    dw = rng.normal(size=(3, 3, 4, 2))
    got = tf.nn.depthwise_conv2d(x, dw, [1, 1, 1, 1], "VALID").numpy()
    for c in range(4):
        for m in range(2):
            ref = naive_conv(x[..., c:c + 1], dw[:, :, c:c + 1, m:m + 1], (1, 1),
                             ((0, 0), (0, 0)), (1, 1), 1)
            np.testing.assert_allclose(got[..., c * 2 + m], ref[..., 0], rtol=1e-9)
    x1, w1 = rng.normal(size=(2, 9, 3)), rng.normal(size=(3, 3, 5))
    want = naive_conv(x1[:, None], w1[None], (1, 2), ((0, 0), (1, 1)), (1, 1), 1)[:, 0]
    close(tf.nn.conv1d(x1, w1, stride=2, padding="SAME"), want, 1e-9)


def test_pool_wrappers():
    x = rng.normal(size=(2, 6, 4, 3))
    got = tf.nn.max_pool2d(x, 2, 2, "VALID").numpy()
    np.testing.assert_allclose(got, x.reshape(2, 3, 2, 2, 2, 3).max((2, 4)))
    got = tf.nn.avg_pool2d(x, [2, 2], [2, 2], "VALID").numpy()
    np.testing.assert_allclose(got, x.reshape(2, 3, 2, 2, 2, 3).mean((2, 4)))
    x1 = rng.normal(size=(2, 8, 3))
    np.testing.assert_allclose(tf.nn.max_pool1d(x1, 2, 2, "VALID").numpy(),
                               x1.reshape(2, 4, 2, 3).max(2))
    np.testing.assert_allclose(tf.nn.avg_pool(x1, 4, 4, "VALID").numpy(),
                               x1.reshape(2, 2, 4, 3).mean(2))


def test_dropout_scales_and_zeroes():
    tf.random.set_seed(3)
    x = tf.ones([200, 100])
    y = tf.nn.dropout(x, 0.25).numpy()
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)
    assert tf.nn.dropout(x, 0.0) is not None


def test_linalg():
    a, v = rng.normal(size=(3, 4)), rng.normal(size=4)
    close(tf.linalg.matvec(a, v), a @ v)
    close(tf.linalg.norm(a), np.linalg.norm(a))
    close(tf.matmul(a, a, transpose_b=True), a @ a.T)
