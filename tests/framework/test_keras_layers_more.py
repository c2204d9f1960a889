"""Reshaping and activation layers (framework/keras/layers/reshaping.py): each through
``run_layer_test`` (shapes, eager == traced == compiled, finite-difference gradients,
config and save/load), and its values on a fixed input against what TensorFlow 2.21's Keras
gives (numbers stored here)."""

import numpy as np
import pytest
from keras_harness import run_layer_test

import framework as tf
from framework.keras import layers as kl

CASES = [
    (kl.ZeroPadding1D, {"padding": (1, 2)}, (2, 3, 4), (2, 6, 4)),
    (kl.ZeroPadding2D, {"padding": ((1, 0), (0, 2))}, (2, 2, 3, 2), (2, 3, 5, 2)),
    (kl.Cropping1D, {"cropping": (1, 0)}, (2, 3, 4), (2, 2, 4)),
    (kl.Cropping2D, {"cropping": ((1, 0), (0, 1))}, (2, 3, 3, 2), (2, 2, 2, 2)),
    (kl.UpSampling1D, {"size": 2}, (2, 3, 4), (2, 6, 4)),
    (kl.UpSampling2D, {"size": (2, 1)}, (2, 2, 3, 2), (2, 4, 3, 2)),
    (kl.RepeatVector, {"n": 3}, (2, 4), (2, 3, 4)),
    (kl.ReLU, {"max_value": 1.5, "negative_slope": 0.1, "threshold": 0.5}, (2, 5), (2, 5)),
    (kl.LeakyReLU, {}, (2, 5), (2, 5)),
    (kl.ELU, {"alpha": 0.7}, (2, 5), (2, 5)),
    (kl.Softmax, {"axis": 1}, (2, 3, 4), (2, 3, 4)),
    (kl.Identity, {}, (2, 5), (2, 5)),
    (kl.UnitNormalization, {}, (2, 5), (2, 5)),
    (kl.ActivityRegularization, {"l1": 0.1, "l2": 0.01}, (2, 5), (2, 5)),
]


@pytest.mark.parametrize("cls,kwargs,shape,expected", CASES,
                         ids=[c[0].__name__ for c in CASES])
def test_layer_harness(cls, kwargs, shape, expected, tmp_path):
    run_layer_test(cls, kwargs, shape, expected, weights=0, tmp_path=tmp_path)


X = np.arange(-3, 3, dtype="float32").reshape(1, 2, 3)
X4 = np.arange(12, dtype="float32").reshape(1, 2, 3, 2)
# tf.keras (TensorFlow 2.21) on X and X4
TF = {
    "relu": (kl.ReLU(max_value=1.5, negative_slope=0.1, threshold=0.5), X,
             [-0.35, -0.25, -0.15, -0.05, 1.0, 1.5]),
    "leaky": (kl.LeakyReLU(), X, [-0.9, -0.6, -0.3, 0.0, 1.0, 2.0]),
    "elu": (kl.ELU(), X, [-0.95021296, -0.86466473, -0.63212055, 0.0, 1.0, 2.0]),
    "softmax": (kl.Softmax(axis=1), X, [0.04742587] * 3 + [0.95257413] * 3),
    "unitnorm": (kl.UnitNormalization(), X,
                 [-0.8017837, -0.5345225, -0.26726124, 0.0, 0.4472136, 0.8944272]),
    "crop2": (kl.Cropping2D(((1, 0), (0, 1))), X4, [6.0, 7.0, 8.0, 9.0]),
    "up2": (kl.UpSampling2D((2, 1)), X4,
            np.repeat(X4, 2, axis=1).ravel().tolist()),
    "up1": (kl.UpSampling1D(2), X, [-3, -2, -1, -3, -2, -1, 0, 1, 2, 0, 1, 2]),
    "crop1": (kl.Cropping1D((1, 0)), X, [0.0, 1.0, 2.0]),
    "repeat": (kl.RepeatVector(2), X[:, 0], [-3, -2, -1, -3, -2, -1]),
}


@pytest.mark.parametrize("name", sorted(TF))
def test_values_match_tensorflow(name):
    layer, x, want = TF[name]
    np.testing.assert_allclose(np.ravel(layer(x).numpy()), want, rtol=1e-6, atol=1e-7)


def test_activity_regularization_adds_its_loss_to_training():
    reg = kl.ActivityRegularization(l1=0.1, l2=0.01)
    reg(X)
    assert float(reg.losses[0].numpy()) == pytest.approx(1.09, rel=1e-6)  # TF: 1.09
    m = tf.keras.Sequential([kl.Dense(2, input_shape=(3,), kernel_initializer="ones",
                                      use_bias=False), kl.ActivityRegularization(l1=1.0)])
    m.compile(optimizer="sgd", loss="mse")
    x = np.ones((4, 3), "f")
    loss = m.evaluate(x, np.zeros((4, 2), "f"), verbose=0)
    assert loss == pytest.approx(9.0 + 4 * 2 * 3.0, rel=1e-6)  # mse 9 + l1 of 8 threes


NOISE = [
    (kl.GaussianNoise, {"stddev": 0.5}, (2, 5), (2, 5), 0),
    (kl.GaussianDropout, {"rate": 0.3}, (2, 5), (2, 5), 0),
    (kl.AlphaDropout, {"rate": 0.3}, (2, 5), (2, 5), 0),
    (kl.SpatialDropout1D, {"rate": 0.3}, (2, 3, 4), (2, 3, 4), 0),
    (kl.SpatialDropout2D, {"rate": 0.3}, (2, 3, 3, 4), (2, 3, 3, 4), 0),
    (kl.PReLU, {}, (2, 3, 4), (2, 3, 4), 1),
    (kl.PReLU, {"shared_axes": [1]}, (2, 3, 4), (2, 3, 4), 1),
]


@pytest.mark.parametrize("cls,kwargs,shape,expected,n", NOISE,
                         ids=[c[0].__name__ for c in NOISE])
def test_noise_layers_harness(cls, kwargs, shape, expected, n, tmp_path):
    run_layer_test(cls, kwargs, shape, expected, weights=n, tmp_path=tmp_path)


def test_noise_while_training_has_keras_statistics():
    x = np.ones((200, 50, 8), "f")
    noisy = kl.GaussianNoise(0.5, seed=1)(x, training=True).numpy() - 1.0
    assert abs(noisy.mean()) < 0.01 and abs(noisy.std() - 0.5) < 0.01
    mult = kl.GaussianDropout(0.2, seed=1)(x, training=True).numpy()
    assert abs(mult.mean() - 1.0) < 0.01 and abs(mult.std() - 0.5) < 0.01  # sqrt(.2/.8)
    drop = kl.SpatialDropout1D(0.25, seed=1)(x, training=True).numpy()
    per_channel = drop[:, 0, :]  # a channel is dropped (0) or kept (1/0.75) at every step
    assert (drop == per_channel[:, None, :]).all()
    np.testing.assert_allclose(np.unique(per_channel), [0.0, 1 / 0.75], rtol=1e-6)
    assert abs((per_channel == 0).mean() - 0.25) < 0.05
    np.testing.assert_array_equal(kl.GaussianNoise(0.5)(x).numpy(), x)  # inference: identity
    z = np.random.default_rng(2).standard_normal((400, 500)).astype("f")  # mean 0, var 1
    kept = kl.AlphaDropout(0.2, seed=3)(z, training=True).numpy()
    assert abs(kept.mean()) < 0.01 and abs(kept.var() - 1.0) < 0.01  # both preserved
    alpha = -1.6732632423543772 * 1.0507009873554805
    a = (0.8 * (1 + 0.2 * alpha ** 2)) ** -0.5
    dropped = np.isclose(kept, a * alpha * 0.8, rtol=0, atol=1e-6)  # alpha*a + b, Keras's
    assert abs(dropped.mean() - 0.2) < 0.01


def test_prelu_matches_tensorflow():
    layer = kl.PReLU(alpha_initializer=tf.keras.initializers.Constant(0.25))
    # tf.keras (TensorFlow 2.21) on X: [-0.75, -0.5, -0.25, 0, 1, 2]
    np.testing.assert_allclose(layer(X).numpy().ravel(), [-0.75, -0.5, -0.25, 0.0, 1.0, 2.0])
