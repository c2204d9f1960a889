"""Silent wrong results found by porting TensorFlow programs: each test compares with the value
TensorFlow 2.21 / Keras 3 gives on the same input (the expected numbers were computed there)."""

from __future__ import annotations

import numpy as np
import pytest

import framework as tf

K = tf.keras
Y1 = np.array([1, 0, 1, 0], np.float32)
P1 = np.array([[0.9], [0.1], [0.8], [0.3]], np.float32)


# -- y_true aligned with y_pred as Keras aligns them --

@pytest.mark.parametrize("obj, want", [
    (lambda: K.losses.BinaryCrossentropy(), 0.1976349),
    (lambda: K.losses.MeanSquaredError(), 0.0375),
    (lambda: K.losses.MeanAbsoluteError(), 0.175),
    (lambda: K.metrics.BinaryAccuracy(), 1.0),
    (lambda: K.metrics.MeanSquaredError(), 0.0375),
])
@pytest.mark.parametrize("compiled", [False, True])
def test_rank_1_labels_against_n_by_1_outputs(obj, want, compiled):
    fn = obj()
    call = tf.function(lambda y, p: fn(y, p)) if compiled else fn
    assert float(call(Y1, P1)) == pytest.approx(want, rel=1e-5)
    fn2 = obj()  # and with the ranks the other way round
    assert float(fn2(Y1[:, None], P1[:, 0])) == pytest.approx(want, rel=1e-5)


def test_accuracy_aligns_ranks():
    got = K.metrics.Accuracy()(np.array([1, 2, 3]), np.array([[1], [2], [4]]))
    assert float(got) == pytest.approx(0.6666667)


def test_sigmoid_model_learns_from_1d_labels():
    """The usual Dense(1, sigmoid) classifier on 1-D labels: the compiled loss is the per-sample
    binary cross-entropy (it was averaged over an N x N broadcast, so the model did not learn)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 2)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.float32)
    K.utils.set_random_seed(0)
    model = K.Sequential([K.Input((2,)), K.layers.Dense(1, activation="sigmoid")])
    model.compile(K.optimizers.Adam(0.1), "binary_crossentropy", metrics=["accuracy"])
    p = model.predict(x, verbose=0)
    want = -np.mean(y * np.log(p[:, 0]) + (1 - y) * np.log(1 - p[:, 0]))
    loss, _ = model.evaluate(x, y, verbose=0, batch_size=64)
    assert loss == pytest.approx(want, rel=1e-4)
    model.fit(x, y, epochs=30, batch_size=16, verbose=0)
    assert model.evaluate(x, y, verbose=0)[1] >= 0.95


# -- dict targets, losses, weights and metrics by output name --

def _two_heads():
    inp = K.Input((3,), name="x")
    z = K.layers.Dense(1, name="zeta", kernel_initializer="zeros")(inp)
    a = K.layers.Dense(1, name="alpha", kernel_initializer="zeros")(inp)
    return K.Model(inp, [z, a])  # outputs not in sorted order


X3 = np.ones((4, 3), np.float32)
YZ, YA = np.full((4, 1), 2.0, np.float32), np.full((4, 1), -5.0, np.float32)


def test_dict_targets_match_outputs_by_name():
    model = _two_heads()
    model.compile("sgd", loss={"zeta": "mse", "alpha": "mae"},
                  loss_weights={"zeta": 1.0, "alpha": 0.0}, metrics={"alpha": ["mae"]})
    assert model.output_names == ["zeta", "alpha"]
    # TensorFlow: {'alpha_loss': 5.0, 'loss': 4.0, 'zeta_loss': 4.0}
    got = model.evaluate(X3, {"zeta": YZ, "alpha": YA}, verbose=0, return_dict=True)
    assert got["loss"] == 4.0 and got["zeta_loss"] == 4.0 and got["alpha_loss"] == 5.0
    assert got["alpha_mae"] == 5.0
    ds = tf.data.Dataset.from_tensor_slices((X3, {"alpha": YA, "zeta": YZ})).batch(3)
    assert model.evaluate(ds, verbose=0, return_dict=True)["zeta_loss"] == 4.0
    logs = model.train_on_batch(X3, {"alpha": YA, "zeta": YZ}, return_dict=True)
    assert logs["zeta_loss"] == 4.0 and logs["alpha_loss"] == 5.0
    model.fit(X3, {"alpha": YA, "zeta": YZ}, epochs=2, verbose=0)


def test_dict_targets_with_missing_or_unknown_keys_are_errors():
    model = _two_heads()
    model.compile("sgd", loss="mse")
    with pytest.raises(ValueError, match=r"no target for outputs \['alpha'\].*\['zeta', 'alpha'\]"):
        model.evaluate(X3, {"zeta": YZ}, verbose=0)
    with pytest.raises(ValueError, match=r"unknown outputs \['beta'\]"):
        model.evaluate(X3, {"zeta": YZ, "alpha": YA, "beta": YA}, verbose=0)


def test_list_loss_weights_apply_per_output():
    model = _two_heads()
    model.compile("sgd", loss=["mse", "mae"], loss_weights=[1.0, 0.5])
    assert model.evaluate(X3, [YZ, YA], verbose=0, return_dict=True)["loss"] == 6.5
    with pytest.raises(ValueError, match="3 loss_weights for 2 outputs"):
        model.compile("sgd", loss="mse", loss_weights=[1.0, 0.5, 2.0])
        model.evaluate(X3, [YZ, YA], verbose=0)


def test_dict_outputs_are_named_by_their_keys():
    inp = K.Input((3,))
    model = K.Model(inp, {"b": K.layers.Dense(1, kernel_initializer="ones")(inp),
                          "a": K.layers.Dense(2, kernel_initializer="zeros")(inp)})
    model.compile("sgd", loss={"a": "mse", "b": "mse"})
    got = model.evaluate(X3, {"b": np.full((4, 1), 3.0, np.float32),
                              "a": np.zeros((4, 2), np.float32)}, verbose=0, return_dict=True)
    assert got["b_loss"] == 0.0 and got["a_loss"] == 0.0


# -- layers, predict --

def test_explicit_build_marks_the_layer_built():
    class Scale(K.layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones")

        def call(self, x):
            return x * self.w

    layer = Scale()
    layer.build((None, 3))
    assert layer.built
    layer(np.ones((2, 3), np.float32))
    assert len(layer.weights) == 1


def test_predict_on_a_model_never_compiled():
    model = K.Sequential([K.Input((4,)), K.layers.Dense(2)])
    assert model.predict(np.ones((3, 4), np.float32), verbose=0).shape == (3, 2)


# -- integer arithmetic --

def test_compiled_int32_arithmetic_wraps_as_eager():
    a = tf.constant([100000, -46341, 7], tf.int32)
    fns = [lambda a: (a * a) // 7, lambda a: a * a + a * 3, lambda a: -(a * a) % 1000]
    for fn in fns:
        eager, compiled = fn(a).numpy(), tf.function(fn)(a).numpy()
        assert compiled.dtype == np.int32
        np.testing.assert_array_equal(compiled, eager)
    assert tf.function(fns[0])(a).numpy()[0] == 201437915  # TensorFlow's value


# -- sparse labels outside [0, num_classes) --

def test_sparse_labels_out_of_range_are_errors():
    logits = np.zeros((3, 5), np.float32)
    loss = K.losses.SparseCategoricalCrossentropy(from_logits=True)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"labels must be in \[0, 5\).*received label 7 .*test_fidelity"):
        loss(np.array([1, 7, 2]), logits)
    f = tf.function(lambda y, p: loss(y, p))
    assert float(f(np.array([1, 3, 2]), logits)) == pytest.approx(np.log(5), rel=1e-6)
    with pytest.raises(tf.errors.InvalidArgumentError, match="received label -1"):
        f(np.array([1, -1, 2]), logits)
    probs = K.losses.SparseCategoricalCrossentropy()
    with pytest.raises(tf.errors.InvalidArgumentError, match="received label 5"):
        tf.function(lambda y, p: probs(y, p))(np.array([5, 0, 0]), logits + 0.2)


def test_fit_with_a_label_out_of_range_raises():
    model = K.Sequential([K.Input((4,)), K.layers.Dense(5)])
    model.compile("sgd", "sparse_categorical_crossentropy")
    x, y = np.ones((8, 4), np.float32), np.array([0, 1, 2, 3, 4, 5, 0, 1])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[0, 5\).*received label 5"):
        model.fit(x, y, verbose=0)
    model.fit(x, y % 5, verbose=0)


# -- tf.debugging asserts, eager and compiled --

def test_debugging_asserts_eager_and_compiled():
    g = tf.function(lambda x: (tf.debugging.assert_less(x, 3.0, message="x small"), x * 2)[1])
    np.testing.assert_array_equal(g(tf.constant([1.0, 2.0])).numpy(), [2.0, 4.0])
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"x small: expected x < y.*x = \[1., 4.\]"):
        g(tf.constant([1.0, 4.0]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="assert_equal"):
        tf.debugging.assert_equal([1, 2], [1, 3])
    tf.debugging.assert_equal([1, 2], [1, 2])
    finite = tf.function(lambda x: tf.debugging.assert_all_finite(tf.math.log(x), "log of x"))
    np.testing.assert_allclose(finite(tf.constant([1.0, 2.0])).numpy(), np.log([1.0, 2.0]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="log of x: found 1 non-finite"):
        finite(tf.constant([1.0, 0.0]))
    with pytest.raises(ValueError, match="expected a tensor of rank 3"):
        tf.debugging.assert_rank(tf.ones([2, 3]), 3)
    tf.debugging.assert_rank(tf.ones([2, 3]), 2)
