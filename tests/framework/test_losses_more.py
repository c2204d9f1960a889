"""Keras losses KLDivergence, Hinge, SquaredHinge, CategoricalHinge, LogCosh, Poisson,
MeanSquaredLogarithmicError, MeanAbsolutePercentageError, CosineSimilarity: values with the
default reduction, with sample weights and summed, against TensorFlow 2.21's Keras on the
same inputs (numbers stored here)."""

import numpy as np
import pytest

import framework as tf

L = tf.keras.losses
YT = np.array([[0.2, 0.8, 0.0], [0.5, 0.25, 0.25]], "float32")
YP = np.array([[0.1, 0.7, 0.2], [0.3, 0.3, 0.4]], "float32")
YS = np.array([[1.0, -1.0, 1.0], [-1.0, 1.0, 1.0]], "float32")
YB = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]], "float32")
LOGITS = np.array([[0.3, -0.6, 1.2], [-0.4, 0.9, -1.5]], "float32")
W = np.array([1.0, 0.5], "float32")

# name: (class, y_true, y_pred, TF's mean, TF's weighted mean, TF's sum)
TF = {
    "kld": (L.KLDivergence, YT, YP, 0.16889230906963348, 0.14580944180488586,
            0.33778461813926697),
    "hinge": (L.Hinge, YB, LOGITS, 0.7166666984558105, 0.44999998807907104, 1.433333396911621),
    "sqhinge": (L.SquaredHinge, YS, LOGITS, 1.2116667032241821, 0.6600000262260437,
                2.4233334064483643),
    "cathinge": (L.CategoricalHinge, YT, YP, 0.7975000143051147, 0.5537500381469727,
                 1.5950000286102295),
    "logcosh": (L.LogCosh, YT, LOGITS, 0.5014769434928894, 0.3644523620605469,
                1.0029538869857788),
    "poisson": (L.Poisson, YT, YP, 0.6463181376457214, 0.4686471223831177, 1.2926362752914429),
    "msle": (L.MeanSquaredLogarithmicError, YT, YP, 0.013156447559595108,
             0.010251488536596298, 0.026312895119190216),
    "mape": (L.MeanAbsolutePercentageError, YP, YT + 0.1, 67.95635223388672,
             57.192466735839844, 135.91270446777344),
    "cos": (L.CosineSimilarity, YT, LOGITS, 0.34449511766433716, 0.26486736536026,
            0.6889902353286743),
}


@pytest.mark.parametrize("name", sorted(TF))
def test_matches_tensorflow(name):
    cls, a, b, mean, weighted, total = TF[name]
    assert float(cls()(a, b)) == pytest.approx(mean, rel=2e-6)
    assert float(cls()(a, b, sample_weight=W)) == pytest.approx(weighted, rel=2e-6)
    assert float(cls(reduction="sum")(a, b)) == pytest.approx(total, rel=2e-6)


@pytest.mark.parametrize("name", ["kld", "hinge", "logcosh", "poisson", "msle", "mape",
                                  "cosine_similarity"])
def test_by_name_in_compile(name):
    m = tf.keras.Sequential([tf.keras.layers.Dense(3, activation="softplus",
                                                   input_shape=(3,))])
    m.compile(optimizer="sgd", loss=name)
    h = m.fit(YT + 0.05, YT + 0.05, epochs=2, verbose=0)
    assert np.isfinite(h.history["loss"]).all()
