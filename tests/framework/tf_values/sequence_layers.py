"""The cases of tests/framework/test_keras_sequence_layers.py, over either Keras's layers
module; run as a script with the bench venv (which has tensorflow-cpu) it writes
sequence_layers.json, what TensorFlow 2.21's Keras gives for them:

    .venv-bench/bin/python tests/framework/tf_values/sequence_layers.py
"""

import json
import os

import numpy as np


def det(shape, k=0):
    n = int(np.prod(shape)) if shape else 1
    return (np.sin(np.arange(n) * 0.7 + k) * 0.5).reshape(shape).astype("float32")


def setw(layer, x, k=0):
    layer(x)
    layer.set_weights([det(w.shape, k + i) for i, w in enumerate(layer.get_weights())])
    return layer


def fixed(layer, *values):
    layer([Q, X])
    layer.set_weights([np.asarray(v, "float32") for v in values])
    return layer


X = det((2, 4, 3), 5)
M = np.array([[1, 1, 1, 0], [1, 1, 0, 0]], bool)
Q = det((2, 3, 3), 9)
G = det((2, 3, 4), 11)
X5 = det((2, 3, 4, 4, 1), 7)
G4 = det((2, 3, 3, 6), 12)


def cases(kl) -> dict:
    """name -> a function computing the case with the layers of ``kl``."""
    Bi = kl.Bidirectional
    return {
        "simple_rnn": lambda: setw(kl.SimpleRNN(3, return_sequences=True), X)(X),
        "simple_rnn_masked": lambda: setw(kl.SimpleRNN(3, activation="relu"), X, 1)(
            X, mask=M),
        "bi_lstm_concat": lambda: setw(Bi(kl.LSTM(2, return_sequences=True)), X)(X),
        "bi_gru_sum_masked": lambda: setw(Bi(kl.GRU(2), merge_mode="sum"), X, 2)(X, mask=M),
        "bi_lstm_state": lambda: setw(Bi(kl.LSTM(2, return_state=True), merge_mode="ave"),
                                      X, 3)(X),
        "bi_rnn_mul": lambda: setw(Bi(kl.SimpleRNN(2, return_sequences=True),
                                      merge_mode="mul"), X, 4)(X),
        "td_dense": lambda: setw(kl.TimeDistributed(kl.Dense(2)), X, 5)(X),
        "td_conv": lambda: setw(kl.TimeDistributed(kl.Conv2D(2, 3)), X5, 6)(X5),
        "group_norm": lambda: setw(kl.GroupNormalization(groups=2), G, 8)(G),
        "group_norm_4d": lambda: setw(kl.GroupNormalization(groups=3, epsilon=1e-5), G4,
                                      9)(G4),
        "group_norm_axis1": lambda: setw(kl.GroupNormalization(groups=-1, axis=1), G, 10)(G),
        "attention": lambda: kl.Attention()([Q, X]),
        "attention_scaled_masked": lambda: fixed(kl.Attention(use_scale=True), 0.7)(
            [Q, X], mask=[np.array([[1, 1, 0], [1, 1, 1]], bool), M]),
        "attention_concat_causal": lambda: fixed(
            kl.Attention(score_mode="concat", use_scale=True), 0.6, 1.3)(
            [Q, X, X], use_causal_mask=True, return_attention_scores=True),
        "additive": lambda: fixed(kl.AdditiveAttention(), det((3,), 4))(
            [Q, X], mask=[None, M]),
        "additive_noscale": lambda: kl.AdditiveAttention(use_scale=False)([Q, X]),
        "rnn_lstm_cell": lambda: setw(kl.RNN(kl.LSTMCell(3), return_sequences=True), X,
                                      12)(X),
        "rnn_stacked_cells": lambda: setw(kl.RNN([kl.GRUCell(2), kl.SimpleRNNCell(3)]), X,
                                          13)(X, mask=M),
        "rms_norm": lambda: setw(kl.RMSNormalization(), G, 14)(G),
        "rms_norm_axes": lambda: setw(kl.RMSNormalization(axis=[1, 2], epsilon=1e-3), G,
                                      15)(G),
    }


def rounded(v):
    return [rounded(x) for x in v] if isinstance(v, list) else float(f"{v:.7g}")


def values(y):
    if isinstance(y, (list, tuple)):
        return [np.asarray(t).ravel().tolist() for t in y]
    return np.asarray(y).ravel().tolist()


def write_tensorflows(name: str, cases, of="layers", plain=None) -> None:
    """Run ``cases`` over TensorFlow's Keras (its ``of`` module) and write the results,
    as ``plain`` (default: rounded values) gives them, to ``<name>.json`` here."""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    from tensorflow import keras
    plain = plain or (lambda y: rounded(values(y)))
    out = {case: plain(make()) for case, make in cases(getattr(keras, of)).items()}
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.json"),
              "w") as f:
        json.dump(out, f, separators=(",", ":"))


if __name__ == "__main__":
    write_tensorflows("sequence_layers", cases)
