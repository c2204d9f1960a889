"""Ftrl and Keras 3's options of every optimizer (weight_decay, gradient_accumulation_steps,
use_ema with ema_overwrite_frequency and finalize_variable_values, loss_scale_factor):
steps on fixed gradients, eagerly and compiled, against TensorFlow 2.21's Keras
(tf_values/optimizers.json, from tf_values/optimizers.py)."""

import numpy as np
import pytest
from tf_values.optimizers import CASES, run
from tf_values.reference import stored

import framework as tf

TF = stored("optimizers")


def test_every_case_has_tensorflows_values():
    assert sorted(CASES) == sorted(TF)


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("name", sorted(TF))
def test_steps_match_tensorflow(name, compiled):
    got = run(tf, **CASES[name], step_fn=tf.function if compiled else None)
    np.testing.assert_allclose(got, TF[name], rtol=2e-6, atol=2e-7)


def test_fit_ends_on_the_moving_averages_with_ema():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 3)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5]], "float32")
    model = tf.keras.Sequential([tf.keras.layers.Input((3,)), tf.keras.layers.Dense(1)])
    opt = tf.keras.optimizers.SGD(0.1, use_ema=True, ema_momentum=0.9)
    model.compile(optimizer=opt, loss="mse")
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    kernel = model.layers[0].kernel
    np.testing.assert_array_equal(kernel.numpy(), opt.get_slot(kernel, "average").numpy())


def test_options_round_trip_and_bad_ones_are_clear_errors():
    opt = tf.keras.optimizers.Ftrl(0.2, l1_regularization_strength=0.1, use_ema=True,
                                   gradient_accumulation_steps=4, weight_decay=0.01)
    clone = tf.keras.optimizers.Ftrl(**opt.get_config())
    assert clone.get_config() == opt.get_config()
    assert tf.keras.optimizers.get("ftrl").__class__ is tf.keras.optimizers.Ftrl
    with pytest.raises(ValueError, match="gradient_accumulation_steps"):
        tf.keras.optimizers.Adam(gradient_accumulation_steps=0)
    with pytest.raises(ValueError, match="learning_rate_power"):
        tf.keras.optimizers.Ftrl(learning_rate_power=0.5)


def test_weight_decay_skips_excluded_variables():
    opt = tf.keras.optimizers.SGD(0.1, weight_decay=0.5)
    a, b = tf.Variable([1.0]), tf.Variable([1.0], name="bias")
    opt.exclude_from_weight_decay(var_names=["bias"])
    opt.apply_gradients([(tf.constant([0.0]), a), (tf.constant([0.0]), b)])
    assert float(a.numpy()[0]) == pytest.approx(0.95) and float(b.numpy()[0]) == 1.0
