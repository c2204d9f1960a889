"""Keras metrics RootMeanSquaredError, LogCoshError, CosineSimilarity,
MeanSquaredLogarithmicError, MeanAbsolutePercentageError, KLDivergence and the counts
TruePositives/FalsePositives/TrueNegatives/FalseNegatives: results after one and after two
updates against TensorFlow 2.21's Keras on the same inputs (numbers stored here), eagerly
and inside fit."""

import numpy as np
import pytest

import framework as tf

Mt = tf.keras.metrics
YT = np.array([[0.2, 0.8, 0.0], [0.5, 0.25, 0.25]], "float32")
YP = np.array([[0.1, 0.7, 0.2], [0.3, 0.3, 0.4]], "float32")
YB = np.array([1, 0, 1, 1, 0, 0], "float32")
PB = np.array([0.9, 0.6, 0.4, 0.7, 0.2, 0.5], "float32")

# name: (metric, y_true, y_pred, TF after update(a, b), TF after a second update(b, a))
TF = {
    "rmse": (Mt.RootMeanSquaredError, YT, YP, 0.14433757960796356, 0.14433757960796356),
    "logcosh": (Mt.LogCoshError, YT, YP, 0.010362833738327026, 0.010362843982875347),
    "cos": (Mt.CosineSimilarity, YT, YP, 0.9336623549461365, 0.9336623549461365),
    "msle": (Mt.MeanSquaredLogarithmicError, YT, YP, 0.013156447559595108,
             0.013156447559595108),
    "mape": (Mt.MeanAbsolutePercentageError, YT + 0.1, YP, 44.57672119140625,
             56.266536712646484),
    "kld": (Mt.KLDivergence, YT, YP, 0.16889230906963348, 0.7915449142456055),
}


@pytest.mark.parametrize("name", sorted(TF))
def test_matches_tensorflow(name):
    cls, a, b, first, second = TF[name]
    m = cls()
    m.update_state(a, b)
    assert float(m.result()) == pytest.approx(first, rel=2e-6)
    m.update_state(b, a)
    assert float(m.result()) == pytest.approx(second, rel=2e-6)


def test_weighted_rmse_and_confusion_counts():
    m = Mt.RootMeanSquaredError()
    m.update_state(YT, YP, sample_weight=np.array([1.0, 0.5], "float32"))
    assert float(m.result()) == pytest.approx(0.1433720886707306, rel=2e-6)  # TF
    counts = {cls: float(cls()(YB, PB)) for cls in (Mt.TruePositives, Mt.FalsePositives,
                                                    Mt.TrueNegatives, Mt.FalseNegatives)}
    assert list(counts.values()) == [2.0, 1.0, 2.0, 1.0]  # TF: 2, 1, 2, 1
    tp = Mt.TruePositives(thresholds=[0.3, 0.65])
    tp.update_state(YB, PB)
    assert tp.result().numpy().tolist() == [3.0, 2.0]  # TF


def test_by_name_in_fit():
    m = tf.keras.Sequential([tf.keras.layers.Dense(1, activation="sigmoid",
                                                   input_shape=(2,))])
    m.compile(optimizer="sgd", loss="binary_crossentropy",
              metrics=["true_positives", "root_mean_squared_error", "logcosh"])
    x = np.random.default_rng(0).standard_normal((16, 2)).astype("f")
    y = (x[:, :1] > 0).astype("f")
    h = m.fit(x, y, epochs=1, batch_size=16, verbose=0)
    pred = m.predict(x, verbose=0)  # the weights after the step; the metric saw before it
    assert set(h.history) == {"loss", "true_positives", "root_mean_squared_error", "logcosh"}
    assert 0 <= h.history["true_positives"][0] <= 16
    res = m.evaluate(x, y, verbose=0, return_dict=True)
    assert res["true_positives"] == float(((pred > 0.5) & (y > 0.5)).sum())
    assert res["root_mean_squared_error"] == pytest.approx(
        float(np.sqrt(((pred - y) ** 2).mean())), rel=1e-5)
