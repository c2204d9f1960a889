"""ONNX export (framework/onnx.py): the digits CNN, an LSTM, a GRU over embeddings and an
attention model written from the IR, checked by onnx.checker and run by onnxruntime in a
fresh process that imports only onnxruntime, to Kiln's outputs within 1e-5; an op
with no ONNX form is an ExportError naming it and the user's line."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest

import framework as tf
import framework.onnx as kiln_onnx

RNG = np.random.default_rng(0)

RUN = """
import sys, numpy as np, onnxruntime as ort
s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
np.save(sys.argv[3], s.run(None, {s.get_inputs()[0].name: np.load(sys.argv[2])})[0])
print(sorted(m for m in sys.modules if m.split(".")[0] in ("framework", "compiler", "runtime")))
"""


def _fresh(tmp_path, model_path, x) -> np.ndarray:
    """The model's output for ``x`` from onnxruntime in a new process without Kiln."""
    np.save(tmp_path / "x.npy", x)
    out = subprocess.run([sys.executable, "-c", RUN, str(model_path), str(tmp_path / "x.npy"),
                          str(tmp_path / "y.npy")], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"  # no Kiln in that process
    return np.load(tmp_path / "y.npy")


def _ort(path, *xs):
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return s.run(None, {i.name: x for i, x in zip(s.get_inputs(), xs)})


def test_the_digits_cnn_runs_in_onnxruntime_in_a_fresh_process(tmp_path, digits_cnn):
    model, x = digits_cnn(9)
    kiln_onnx.export(model, tmp_path / "cnn.onnx")
    np.testing.assert_allclose(_fresh(tmp_path, tmp_path / "cnn.onnx", x),
                               model.predict(x, verbose=0), atol=1e-5, rtol=0)


def _models():
    lstm = tf.keras.Sequential([tf.keras.layers.LSTM(8, input_shape=(6, 3)),
                                tf.keras.layers.Dense(2)])
    gru = tf.keras.Sequential([tf.keras.layers.Embedding(20, 5, input_shape=(7,)),
                               tf.keras.layers.GRU(6, return_sequences=True),
                               tf.keras.layers.GlobalAveragePooling1D()])
    inp = tf.keras.Input((5, 8))
    att = tf.keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)(inp, inp)
    norm = tf.keras.layers.LayerNormalization()(tf.keras.layers.Add()([att, inp]))
    bn = tf.keras.layers.BatchNormalization()(norm)
    attention = tf.keras.Model(inp, tf.keras.layers.Dense(3, activation="softmax")(bn))
    return {"lstm": (lstm, RNG.standard_normal((4, 6, 3)).astype("f")),
            "gru": (gru, RNG.integers(0, 20, (3, 7)).astype("f")),
            "attention": (attention, RNG.standard_normal((3, 5, 8)).astype("f"))}


@pytest.mark.parametrize("name", ["lstm", "gru", "attention"])
def test_recurrent_and_attention_models_match_kiln(name, tmp_path):
    model, x = _models()[name]
    kiln_onnx.export(model, tmp_path / "m.onnx")
    np.testing.assert_allclose(_fresh(tmp_path, tmp_path / "m.onnx", x),
                               model.predict(x, verbose=0), atol=1e-5, rtol=0)


def test_a_function_of_many_primitives_matches(tmp_path):
    @tf.function(input_signature=[tf.TensorSpec([None, 6], tf.float32)])
    def f(x):
        y = tf.concat([tf.nn.softmax(x)[:, 1:4], tf.pad(x[:, :2], [[0, 0], [1, 0]])], axis=1)
        z = tf.where(y > 0.1, tf.math.rsqrt(tf.abs(y) + 1.0), tf.square(y))
        k = tf.cast(tf.argmax(z, axis=1), tf.float32)
        return tf.reduce_max(tf.transpose(z), axis=0) + k, tf.reduce_sum(z, axis=1)

    kiln_onnx.export(f, tmp_path / "f.onnx")
    x = RNG.standard_normal((5, 6)).astype("f")
    for got, want in zip(_ort(tmp_path / "f.onnx", x), f(x)):
        np.testing.assert_allclose(got, want.numpy(), atol=1e-5, rtol=0)


def test_an_op_with_no_onnx_form_is_named(tmp_path):
    @tf.function(input_signature=[tf.TensorSpec([3], tf.float32)])
    def noisy(x):
        return x + tf.random.stateless_uniform([3], seed=[1, 2])

    with pytest.raises(kiln_onnx.ExportError, match=r"random_bits.*test_onnx\.py"):
        kiln_onnx.export(noisy, tmp_path / "n.onnx")
    assert not os.path.exists(tmp_path / "n.onnx")
