"""Keras masks: Embedding(mask_zero=True) and Masking make them, RNNs skip masked steps,
pooling, attention, batch statistics, losses and metrics leave them out, and a layer that
cannot use a mask refuses it. Expected numbers come from TensorFlow 2.21 / Keras 3 on the same
weights (generated here from a seeded numpy generator)."""

from __future__ import annotations

import numpy as np
import pytest

import framework as tf
from framework.errors import MaskError

K = tf.keras
IDS = np.array([[3, 5, 2, 0, 0], [1, 4, 0, 0, 0], [0, 7, 7, 0, 1]], np.int32)
Y = np.array([[1, 0, 1, 0, 0], [0, 1, 0, 0, 0], [1, 1, 0, 1, 0]])

LSTM_SEQ = [[[-0.234878, 0.028324, 0.004803], [-0.334528, -0.013458, -0.039936],
             [-0.409587, 0.012678, 0.002807], [-0.409587, 0.012678, 0.002807],
             [-0.409587, 0.012678, 0.002807]],
            [[-0.332587, -0.026261, 0.039361], [-0.232709, 0.172086, 0.02908],
             [-0.232709, 0.172086, 0.02908], [-0.232709, 0.172086, 0.02908],
             [-0.232709, 0.172086, 0.02908]],
            [[0.0, 0.0, 0.0], [0.440667, 0.124626, -0.220077], [0.626572, -0.025076, -0.325759],
             [0.626572, -0.025076, -0.325759], [0.039222, -0.079273, -0.03339]]]
LSTM_BACK = [[-0.325024, 0.070212, -0.008762], [-0.363655, 0.03446, 0.04431],
             [0.544807, 0.038449, -0.288419]]
GRU_LAST = [[0.026199, -0.362693, 0.388626], [-0.28968, -0.501989, 0.25656],
            [-0.093453, -0.391632, 0.287843]]
GAP = [[-0.121246, -0.048127, 0.280122, 0.717428], [0.472539, 0.076959, -0.659431, 0.161963],
       [0.444214, 0.293673, 1.232908, -0.547641]]
BN_FIRST = [-1.9724066, -0.9431244, -0.7621564, 0.6381753]
BN_MOVING_MEAN = [0.0023925, 0.0011132, 0.0040253, 0.0010416]


@pytest.fixture
def weights():
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(10, 4)).astype(np.float32)

    def ws(shapes):
        return [rng.normal(size=s).astype(np.float32) * 0.5 for s in shapes]
    return {"emb": emb, "lstm": ws([(4, 12), (3, 12), (12,)]), "gru": ws([(4, 9), (3, 9), (2, 9)]),
            "dense": ws([(4, 2), (2,)])}


def _embedded(weights):
    emb = K.layers.Embedding(10, 4, mask_zero=True)
    emb.build((None, 5))
    emb.set_weights([weights["emb"]])
    return emb, emb(IDS)


def _layer(layer, shape, ws):
    layer.build(shape)
    layer.set_weights(ws)
    return layer


def close(got, want):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-4, atol=2e-6)


def test_embedding_mask_zero_marks_padding(weights):
    _, x = _embedded(weights)
    np.testing.assert_array_equal(x._keras_mask.numpy(), IDS != 0)


@pytest.mark.parametrize("compiled", [False, True])
def test_recurrent_layers_skip_masked_steps(weights, compiled):
    _, x = _embedded(weights)
    lstm = _layer(K.layers.LSTM(3, return_sequences=True), (None, 5, 4), weights["lstm"])
    back = _layer(K.layers.LSTM(3, go_backwards=True), (None, 5, 4), weights["lstm"])
    gru = _layer(K.layers.GRU(3), (None, 5, 4), weights["gru"])
    for layer, want in ((lstm, LSTM_SEQ), (back, LSTM_BACK), (gru, GRU_LAST)):
        if compiled:
            fn = tf.function(lambda x, m, layer=layer: _with_mask(layer, x, m))
            close(fn(x, x._keras_mask), want)
        else:
            close(layer(x), want)
    np.testing.assert_array_equal(lstm(x)._keras_mask.numpy(), IDS != 0)
    assert gru(x)._keras_mask is None


def _with_mask(layer, x, mask):
    x = x * 1.0  # a new tensor (identity may return its input)
    x._keras_mask = mask
    return layer(x)


def test_custom_cell_rnn_skips_masked_steps(weights):
    """keras.layers.RNN over a cell: the output and state are carried over masked steps."""
    class Cell(K.layers.Layer):
        state_size = 2

        def build(self, shape):
            self.w = self.add_weight(shape=(shape[-1], 2), initializer="ones")

        def call(self, x, states):
            h = tf.tanh(tf.matmul(x, self.w) + states[0])
            return h, [h]

    _, x = _embedded(weights)
    out = K.layers.RNN(Cell(), return_sequences=True)(x).numpy()
    for b in range(3):
        h, prev = np.zeros(2, np.float32), np.zeros(2, np.float32)
        for t in range(5):
            if IDS[b, t]:
                h = np.tanh(x.numpy()[b, t].sum() + h)
                prev = h
            close(out[b, t], prev)


def test_masking_layer(weights):
    seq = weights["emb"][IDS] * (IDS[..., None] != 0)
    masked = K.layers.Masking(0.0)(seq)
    np.testing.assert_array_equal(masked._keras_mask.numpy(), IDS != 0)
    lstm = _layer(K.layers.LSTM(3), (None, 5, 4), weights["lstm"])
    close(lstm(masked), [row[-1] for row in LSTM_SEQ])


def test_pooling_over_kept_steps(weights):
    _, x = _embedded(weights)
    close(K.layers.GlobalAveragePooling1D()(x), GAP)
    want = np.where((IDS != 0)[..., None], x.numpy(), -np.inf).max(1)
    close(K.layers.GlobalMaxPooling1D()(x), want)


def test_batch_normalization_statistics_leave_masked_steps_out(weights):
    _, x = _embedded(weights)
    bn = K.layers.BatchNormalization()
    close(bn(x, training=True).numpy()[0, 0], BN_FIRST)
    close(bn.moving_mean.numpy(), BN_MOVING_MEAN)


@pytest.mark.parametrize("compiled", [False, True])
def test_losses_and_metrics_weight_by_the_mask(weights, compiled):
    _, x = _embedded(weights)
    dense = _layer(K.layers.Dense(2), (None, 5, 4), weights["dense"])
    loss = K.losses.SparseCategoricalCrossentropy(from_logits=True)
    acc = K.metrics.SparseCategoricalAccuracy()

    def run(x, mask):
        logits = _with_mask(dense, x, mask)
        acc.update_state(Y, logits)
        return loss(Y, logits)
    fn = tf.function(run) if compiled else run
    assert float(fn(x, x._keras_mask)) == pytest.approx(0.688122, rel=1e-5)  # TensorFlow
    assert float(acc.result()) == pytest.approx(0.625)


def test_fit_and_evaluate_use_the_output_mask(weights):
    inp = K.Input((5,), dtype="int32")
    emb = K.layers.Embedding(10, 4, mask_zero=True)
    dense = K.layers.Dense(2)
    model = K.Model(inp, dense(emb(inp)))
    emb.set_weights([weights["emb"]])
    dense.set_weights(weights["dense"])
    model.compile("sgd", K.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    got = model.evaluate(IDS, Y, verbose=0, return_dict=True)
    assert got["loss"] == pytest.approx(0.688122, rel=1e-5)  # TensorFlow
    assert got["accuracy"] == pytest.approx(0.625)


def test_attention_honours_query_and_value_masks():
    """A functional model (TensorFlow attaches masks in functional models): the expected
    numbers are TensorFlow's."""
    ids = np.array([[3, 5, 2, 0], [1, 4, 0, 0]], np.int32)
    rng = np.random.default_rng(2)
    inp = K.Input((4,), dtype="int32")
    emb = K.layers.Embedding(10, 4, mask_zero=True)
    mha = K.layers.MultiHeadAttention(2, 3)
    e = emb(inp)
    out = mha(e, e)
    model = K.Model(inp, [out, K.layers.GlobalAveragePooling1D()(out)])
    emb.set_weights([rng.normal(size=(10, 4)).astype(np.float32)])
    model.predict(ids, verbose=0)
    mha.set_weights([rng.normal(size=w.shape).astype(np.float32) * 0.5
                     for w in mha.get_weights()])
    seq, pooled = model.predict(ids, verbose=0)
    close(seq[0, 0], [-0.21117, -0.57905, -0.53932, -0.51077])
    close(seq[0, 3], [-0.00349, -0.63988, -0.46185, -0.16985])  # a masked query: even
    close(seq[1, 2], [0.16673, -0.63508, -0.58309, 0.57149])
    close(pooled, [[-0.1997, -0.60859, -0.60817, -0.49169],
                   [-0.51005, -0.32886, -1.13287, 0.29873]])


def test_merge_layers_combine_masks(weights):
    _, x = _embedded(weights)
    y = x * 1.0
    y._keras_mask = tf.constant(IDS[:, ::-1] != 0)
    np.testing.assert_array_equal(K.layers.Add()([x, y])._keras_mask.numpy(),
                                  (IDS != 0) | (IDS[:, ::-1] != 0))
    assert K.layers.Add()([x, x * 1.0])._keras_mask is None
    np.testing.assert_array_equal(K.layers.Concatenate(axis=1)([x, y])._keras_mask.numpy(),
                                  np.concatenate([IDS != 0, IDS[:, ::-1] != 0], 1))


def test_a_layer_that_cannot_use_a_mask_refuses_it(weights):
    _, x = _embedded(weights)
    with pytest.raises(MaskError, match=r'layer "flatten\w*" \(Flatten\).*cannot use masks'
                                        r'.*test_masks.py'):
        K.layers.Flatten()(x)
    with pytest.raises(MaskError, match=r"Conv1D"):  # at model construction
        K.Sequential([K.Input((5,), dtype="int32"), K.layers.Embedding(10, 4, mask_zero=True),
                      K.layers.Conv1D(2, 3)])
    model = K.Sequential([K.Input((5,), dtype="int32"),
                          K.layers.Embedding(10, 4, mask_zero=True),
                          K.layers.GlobalAveragePooling1D(), K.layers.Flatten()])
    assert model.predict(IDS, verbose=0).shape == (3, 4)  # the pooled output has no mask
