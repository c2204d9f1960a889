"""F1Score, FBetaScore, R2Score, MeanIoU and the rate-at-constraint metrics
(framework/keras/score_metrics.py): accumulated over two updates (with and without sample
weights) against what TensorFlow 2.21's Keras gives (tf_values/score_metrics.json, from
tf_values/score_metrics.py), inside a compiled fit, and their configs."""

import numpy as np
import pytest
from tf_values.reference import tensorflow_tests
from tf_values.score_metrics import cases

import framework as tf

m = tf.keras.metrics


test_every_case_has_tensorflows_values, test_values_match_tensorflow = \
    tensorflow_tests(cases(m), "score_metrics", rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("metric", [
    m.F1Score(average="macro"), m.FBetaScore(beta=2.0, threshold=0.4), m.R2Score(),
    m.MeanIoU(3), m.PrecisionAtRecall(0.5, num_thresholds=9)])
def test_config_round_trips(metric):
    clone = type(metric).from_config(metric.get_config())
    assert clone.get_config() == metric.get_config()


def test_scores_in_a_compiled_fit_match_the_metric_on_all_the_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 5)).astype("float32")
    y = np.eye(3, dtype="float32")[(x[:, 0] > 0).astype(int) + (x[:, 1] > 1)]
    model = tf.keras.Sequential([tf.keras.layers.Input((5,)),
                                 tf.keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss="categorical_crossentropy",
                  metrics=[m.F1Score(average="macro"), m.R2Score()])
    got = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    pred = model.predict(x, verbose=0)
    assert got["f1_score"] == pytest.approx(float(m.F1Score(average="macro")(y, pred)),
                                            rel=1e-5)
    assert got["r2_score"] == pytest.approx(float(m.R2Score()(y, pred)), rel=1e-5, abs=1e-6)


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="average"):
        m.F1Score(average="samples")
    with pytest.raises(ValueError, match="recall must be in"):
        m.PrecisionAtRecall(1.5)
    with pytest.raises(ValueError, match="expects"):
        m.R2Score()(np.zeros(3, "f"), np.zeros(3, "f"))
