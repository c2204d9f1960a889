"""keras.utils.plot_model and plot_history (framework/keras/plotting.py): the DOT text of
Sequential and functional models (layers, shapes, edges), rendered by Graphviz where it is
installed; a History's curves as a PNG."""

from __future__ import annotations

import shutil
import warnings

import numpy as np

import framework as tf


def _functional():
    a = tf.keras.Input((4,), name="a")
    b = tf.keras.Input((3,), name="b")
    h = tf.keras.layers.Dense(5, name="left")(a)
    g = tf.keras.layers.Dense(5, name="right")(b)
    out = tf.keras.layers.Add(name="sum")([h, g])
    return tf.keras.Model([a, b], out)


def test_the_dot_text_has_every_layer_shape_and_edge(tmp_path):
    seq = tf.keras.Sequential([tf.keras.layers.Dense(8, input_shape=(4,), name="d1"),
                               tf.keras.layers.Dense(2, name="d2")])
    text = tf.keras.utils.model_to_dot(seq, show_shapes=True)
    assert "d1|Dense|(?, 8)" in text and "d2|Dense|(?, 2)" in text and "l0 -> l1" in text
    f = tf.keras.utils.model_to_dot(_functional(), show_dtype=True)
    assert "left|Dense|float32" in f and "sum|Add" in f
    assert f.count("->") == 4  # a -> left, b -> right, left -> sum, right -> sum
    path = tf.keras.utils.plot_model(seq, to_file=tmp_path / "m.dot")
    assert open(path).read().startswith('digraph "')


def test_png_where_graphviz_is_installed_else_the_dot_text(tmp_path):
    seq = tf.keras.Sequential([tf.keras.layers.Dense(2, input_shape=(3,))])
    if shutil.which("dot"):
        path = tf.keras.utils.plot_model(seq, to_file=tmp_path / "m.png")
        assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = tf.keras.utils.plot_model(seq, to_file=tmp_path / "m.png")
    assert path.endswith("m.dot") and "not installed" in str(caught[0].message)


def test_a_history_draws_its_curves(tmp_path):
    m = tf.keras.Sequential([tf.keras.layers.Dense(2, input_shape=(3,))])
    m.compile(optimizer="adam", loss="mse", metrics=["mae"])
    h = m.fit(np.ones((8, 3), "f"), np.zeros((8, 2), "f"), epochs=3, verbose=0,
              validation_split=0.25)
    path = tf.keras.utils.plot_history(h, tmp_path / "curves.png")
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
