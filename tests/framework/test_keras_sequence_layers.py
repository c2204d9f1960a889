"""SimpleRNN, the RNN cells (SimpleRNNCell, LSTMCell, GRUCell, StackedRNNCells),
Bidirectional, TimeDistributed, GroupNormalization, RMSNormalization, Attention and
AdditiveAttention: each through ``run_layer_test`` (shapes, eager == traced == compiled,
finite-difference gradients, config and save/load), and its values on fixed inputs and
weights against what TensorFlow 2.21's Keras gives (tf_values/sequence_layers.json, written
by tf_values/sequence_layers.py)."""

import numpy as np
import pytest
from keras_harness import run_layer_test
from tf_values.reference import tensorflow_tests
from tf_values.sequence_layers import cases

import framework as tf
from framework.keras import layers as kl

test_every_case_has_tensorflows_values, test_values_match_tensorflow = \
    tensorflow_tests(cases(kl), "sequence_layers")


CASES = [
    (kl.SimpleRNN, {"units": 3, "return_sequences": True}, (2, 4, 3), (2, 4, 3), 3),
    (kl.Bidirectional, {"layer": kl.LSTM(2, return_sequences=True)}, (2, 3, 3), (2, 3, 4), 6),
    (kl.Bidirectional, {"layer": kl.GRU(2), "merge_mode": "ave"}, (2, 3, 3), (2, 2), 6),
    (kl.TimeDistributed, {"layer": kl.Dense(2)}, (2, 3, 4), (2, 3, 2), 2),
    (kl.GroupNormalization, {"groups": 2}, (2, 3, 4), (2, 3, 4), 2),
    (kl.GroupNormalization, {"groups": 3, "axis": 1}, (2, 6, 2, 2), (2, 6, 2, 2), 2),
    (kl.RMSNormalization, {"axis": [1, 2]}, (2, 3, 4), (2, 3, 4), 1),
    (kl.RNN, {"cell": kl.LSTMCell(2), "return_sequences": True}, (2, 3, 3), (2, 3, 2), 3),
    (kl.RNN, {"cell": kl.StackedRNNCells([kl.SimpleRNNCell(2, dtype="float64"),
                                          kl.GRUCell(3, dtype="float64")])},
     (2, 3, 2), (2, 3), 6),
]


@pytest.mark.parametrize("cls,kwargs,shape,expected,n", CASES,
                         ids=[f"{c[0].__name__}{i}" for i, c in enumerate(CASES)])
def test_layer_harness(cls, kwargs, shape, expected, n, tmp_path):
    kwargs = dict(kwargs)
    for key in ("layer", "cell"):  # a fresh float64 copy of the wrapped layer or cell
        if key in kwargs:
            inner = kwargs[key]
            kwargs[key] = type(inner).from_config(inner.get_config() | {"dtype": "float64"})
    run_layer_test(cls, kwargs, shape, expected, weights=n, tmp_path=tmp_path)


@pytest.mark.parametrize("cls,kwargs,n", [
    (kl.Attention, {"use_scale": True}, 1),
    (kl.Attention, {"score_mode": "concat"}, 1),
    (kl.AdditiveAttention, {}, 1),
])
def test_attention_harness(cls, kwargs, n, tmp_path):
    run_layer_test(cls, kwargs, [(2, 3, 4), (2, 5, 4)], (2, 3, 4), weights=n,
                   tmp_path=tmp_path)


def test_bidirectional_in_a_masked_model_trains_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 20, (32, 6)).astype("int32")
    ids[:, 4:] = 0  # padding, masked by the embedding
    y = (ids[:, 0] > 10).astype("int32")
    m = tf.keras.Sequential([
        kl.Input((6,), dtype="int32"),
        kl.Embedding(20, 4, mask_zero=True),
        kl.Bidirectional(kl.LSTM(3, return_sequences=True)),
        kl.TimeDistributed(kl.Dense(2)),
        kl.Bidirectional(kl.SimpleRNN(2)),
        kl.Dense(2)])
    m.compile(optimizer="adam", loss=tf.keras.losses.SparseCategoricalCrossentropy(
        from_logits=True))
    m.fit(ids, y, epochs=1, batch_size=8, verbose=0)
    # the masked steps change nothing: the same layers on the sequences without padding
    short = tf.keras.Sequential([kl.Input((4,), dtype="int32")] + m.layers)
    np.testing.assert_allclose(m.predict(ids, verbose=0), short.predict(ids[:, :4], verbose=0),
                               rtol=1e-5, atol=1e-6)
    path = tmp_path / "bi.kiln"
    m.save(path)
    loaded = tf.keras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(ids, verbose=0), m.predict(ids, verbose=0),
                               rtol=1e-6)
    names = [w.name.split("/")[0] for w in m.layers[1].weights]  # forward's, then backward's
    assert all(n.startswith("forward_lstm") for n in names[:3]) and \
        all(n.startswith("backward_lstm") for n in names[3:]) and len(names) == 6


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="merge_mode"):
        kl.Bidirectional(kl.LSTM(2), merge_mode="max")
    with pytest.raises(ValueError, match="recurrent Keras layer"):
        kl.Bidirectional(kl.Dense(2))
    with pytest.raises(ValueError, match="groups must divide"):
        kl.GroupNormalization(groups=3)(np.zeros((2, 4), "f"))
    with pytest.raises(ValueError, match="score_mode"):
        kl.Attention(score_mode="general")
    with pytest.raises(ValueError, match="at least 3 dims"):
        kl.TimeDistributed(kl.Dense(2))(np.zeros((2, 4), "f"))
