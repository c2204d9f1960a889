"""RandomRotation, RandomZoom and RandomTranslation (framework/keras/layers/augment.py):
with their draws pinned, their images against what TensorFlow 2.21's Keras gives
(tf_values/augment.json, from tf_values/augment.py) across fill modes and interpolations;
random draws per image; compiled inside a train step."""

import numpy as np
import pytest
from tf_values.augment import IMAGES, cases
from tf_values.reference import tensorflow_tests

import framework as tf
from framework.keras import layers as kl

test_every_case_has_tensorflows_values, test_values_match_tensorflow = \
    tensorflow_tests(cases(kl), "augment", rtol=1e-4, atol=1e-4)


def test_each_image_gets_its_own_draw():
    same = np.repeat(IMAGES[:1], 8, axis=0)
    out = kl.RandomRotation(0.5, seed=1)(same).numpy()
    assert len({round(float(o.sum()), 3) for o in out}) > 4


def test_augmentation_compiles_into_the_train_step():
    x = np.random.default_rng(0).random((16, 8, 8, 1)).astype("float32")
    y = (x.mean((1, 2, 3)) > 0.5).astype("int32")
    m = tf.keras.Sequential([kl.Input((8, 8, 1)), kl.RandomRotation(0.1, seed=1),
                             kl.RandomZoom(0.2, seed=2), kl.RandomTranslation(0.1, 0.1, seed=3),
                             kl.GlobalAveragePooling2D(), kl.Dense(2)])
    m.compile(optimizer="sgd",
              loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    h = m.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(h.history["loss"]).all()
    np.testing.assert_array_equal(m.layers[0](x, training=False).numpy(), x)


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="wrap"):
        kl.RandomRotation(0.1, fill_mode="wrap")
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        kl.RandomZoom(1.5)
