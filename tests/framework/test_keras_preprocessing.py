"""Preprocessing layers (framework/keras/layers/preprocessing.py and lookup.py): their
values on fixed inputs against what TensorFlow 2.21's Keras gives
(tf_values/preprocessing.json, from tf_values/preprocessing.py), the differentiable ones
through ``run_layer_test``, the random ones by their statistics, and inside a compiled
train step and a tf.data pipeline."""

import numpy as np
import pytest
from keras_harness import run_layer_test
from tf_values.preprocessing import IMG, cases, plain
from tf_values.reference import stored

import framework as tf
from framework.keras import layers as kl

TF = stored("preprocessing")


def test_every_case_has_tensorflows_values():
    assert sorted(cases(kl)) == sorted(TF)


@pytest.mark.parametrize("name", sorted(TF))
def test_values_match_tensorflow(name):
    got, want = plain(cases(kl)[name]()), TF[name]
    if want and isinstance(want[0], (str, int)) and not isinstance(want[0], bool):
        assert got == want
        return
    assert len(got) == len(want)
    np.testing.assert_allclose(np.asarray(got, float), np.asarray(want, float), rtol=2e-5,
                               atol=2e-5)


CASES = [
    (kl.Rescaling, {"scale": 0.5, "offset": 1.0}, (2, 3, 4), (2, 3, 4)),
    (kl.Normalization, {"mean": [1.0, 2.0], "variance": [4.0, 0.25]}, (3, 2), (3, 2)),
    (kl.Resizing, {"height": 3, "width": 5}, (2, 4, 4, 2), (2, 3, 5, 2)),
    (kl.Resizing, {"height": 2, "width": 2, "crop_to_aspect_ratio": True}, (1, 3, 5, 1),
     (1, 2, 2, 1)),
    (kl.CenterCrop, {"height": 2, "width": 3}, (2, 4, 4, 2), (2, 2, 3, 2)),
]


@pytest.mark.parametrize("cls,kwargs,shape,expected", CASES,
                         ids=[f"{c[0].__name__}{i}" for i, c in enumerate(CASES)])
def test_layer_harness(cls, kwargs, shape, expected, tmp_path):
    run_layer_test(cls, kwargs, shape, expected, weights=0, tmp_path=tmp_path)


def test_adapted_normalization_saves_its_statistics(tmp_path):
    x = np.random.default_rng(0).normal(3.0, 2.0, (500, 4)).astype("float32")
    norm = kl.Normalization()
    norm.adapt(tf.data.Dataset.from_tensor_slices(x).batch(64))  # batches, as Keras
    np.testing.assert_allclose(norm.adapt_mean.numpy(), x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(norm.adapt_variance.numpy(), x.var(0), rtol=1e-4)
    assert int(norm.count.numpy()) == 500
    m = tf.keras.Sequential([kl.Input((4,)), norm, kl.Dense(1)])
    path = tmp_path / "norm.kiln"
    m.save(path)
    loaded = tf.keras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(x[:8], verbose=0), m.predict(x[:8], verbose=0),
                               rtol=1e-6)


def test_random_flip_mirrors_whole_images_half_the_time():
    x = np.arange(64 * 2 * 3, dtype="float32").reshape(64, 2, 3, 1)
    y = kl.RandomFlip("horizontal", seed=3)(x).numpy()
    flipped = [np.array_equal(y[i], x[i, :, ::-1]) for i in range(64)]
    kept = [np.array_equal(y[i], x[i]) for i in range(64)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 16 <= sum(flipped) <= 48
    np.testing.assert_array_equal(kl.RandomFlip()(x, training=False).numpy(), x)


def test_random_contrast_scales_about_the_mean_within_the_factor():
    x = IMG.astype("float32")
    y = kl.RandomContrast(0.4, seed=1)(x).numpy()
    mean = x.mean((1, 2), keepdims=True)
    assert y.min() >= 0 and y.max() <= 255  # clipped to value_range
    for i in range(2):
        inside = (y[i] > 0) & (y[i] < 255) & (np.abs(x[i] - mean[i]) > 1)
        f = (y[i] - mean[i])[inside] / (x[i] - mean[i])[inside]
        assert np.allclose(f, f[0], rtol=1e-3)  # one factor per image
        assert 0.6 - 1e-4 <= f[0] <= 1.4 + 1e-4


def test_random_crop_is_a_window_of_the_image_while_training():
    x = np.arange(6 * 5, dtype="float32").reshape(1, 6, 5, 1)
    y = kl.RandomCrop(3, 2, seed=0)(x).numpy()[0, :, :, 0]
    windows = [x[0, i:i + 3, j:j + 2, 0] for i in range(4) for j in range(4)]
    assert any(np.array_equal(y, w) for w in windows)


def test_augmentation_trains_inside_the_compiled_step():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (32, 8, 8, 1)).astype("float32")
    y = (x[:, :4].mean((1, 2, 3)) > x[:, 4:].mean((1, 2, 3))).astype("int32")
    m = tf.keras.Sequential([
        kl.Input((8, 8, 1)), kl.Rescaling(1 / 255.0), kl.RandomFlip("horizontal", seed=1),
        kl.RandomContrast(0.2, seed=2, value_range=(0, 1)), kl.RandomCrop(6, 6, seed=3),
        kl.GlobalAveragePooling2D(), kl.Dense(2)])  # (no crop in predict, as Keras 3)
    m.compile(optimizer="adam",
              loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    h = m.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert np.isfinite(h.history["loss"]).all()
    assert "random" in m.train_function.ir("optimized")  # the draws are in the step
    assert m.predict(x[:2], verbose=0).shape == (2, 2)


def test_lookups_feed_ids_into_a_compiled_model():
    text = np.array(["good movie", "bad movie", "good good", "bad"])
    vec = kl.TextVectorization(output_sequence_length=3)
    vec.adapt(text)
    ids = vec(text).numpy()
    m = tf.keras.Sequential([kl.Input((3,), dtype="int64"),
                             kl.Embedding(vec.vocabulary_size(), 2, mask_zero=True),
                             kl.GlobalAveragePooling1D(), kl.Dense(1)])
    m.compile(optimizer="sgd", loss="mse")
    m.fit(ids, np.array([1, 0, 1, 0], "float32"), epochs=1, verbose=0)
    # IntegerLookup traced inside @function gives its eager ids
    look = kl.IntegerLookup(vocabulary=[7, 3, 9], num_oov_indices=2, mask_token=0)
    raw = np.array([[7, 4, 0], [9, 3, 5]])
    np.testing.assert_array_equal(tf.function(lambda t: look(t))(raw).numpy(),
                                  look(raw).numpy())


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="num_bins or bin_boundaries"):
        kl.Discretization()
    with pytest.raises(ValueError, match="mode must be one of"):
        kl.RandomFlip("diagonal")
    with pytest.raises(ValueError, match="FarmHash"):
        kl.StringLookup(num_oov_indices=2)
    with pytest.raises(ValueError, match="distinct"):
        kl.StringLookup(vocabulary=["a", "a"])
    with pytest.raises(ValueError, match="num_oov_indices=0"):
        kl.StringLookup(vocabulary=["a"], num_oov_indices=0)(np.array(["b"]))
    with pytest.raises(ValueError, match="call adapt"):
        kl.Discretization(num_bins=3)(np.zeros(2, "float32"))


@pytest.mark.parametrize("cls,kwargs,shape,expected", [
    (kl.CategoryEncoding, {"num_tokens": 6}, (3, 4), (3, 6)),
    (kl.CategoryEncoding, {"num_tokens": 6, "output_mode": "one_hot"}, (5,), (5, 6)),
    (kl.Discretization, {"bin_boundaries": [1.0, 3.0]}, (3, 4), (3, 4)),
    (kl.IntegerLookup, {"vocabulary": [1, 3, 5], "num_oov_indices": 2}, (3, 4), (3, 4)),
], ids=["multi_hot", "one_hot", "discretization", "integer_lookup"])
def test_integer_layers_harness(cls, kwargs, shape, expected, tmp_path):
    # integer inputs: eager == traced == compiled, config and save/load (no gradients)
    run_layer_test(cls, kwargs, shape, expected, weights=0, int_range=6, grad=False,
                   tmp_path=tmp_path)


# TensorFlow 2.21: strings.to_hash_bucket_fast(s, 2**62) for each length path of FarmHash
FINGERPRINTS = [1936946117179621455, 3694432073954588131, 3066228220894225694,
    2640714258260161385, 1897425971756105985, 3786372426573024488, 3430003927990384362,
    4570271001221851636, 2800675501336285770, 653807226908884511, 3999049019338133246,
    4328006109088684861, 4555407945498560506, 3080958293828885289, 525935771297148851,
    4371302378668044787]


def test_fingerprint64_is_tensorflows_for_every_length():
    from framework.keras.layers.lookup import fingerprint64
    strings = [b"", b"a", b"ab", b"abc", b"abcd", b"hello", b"12345678", b"123456789abcdef",
               b"0123456789abcdefg", b"x" * 31, b"y" * 33, b"z" * 63, b"w" * 64, b"q" * 65,
               bytes(range(200)), b"the quick brown fox jumps over the lazy dog" * 5]
    assert [fingerprint64(s) % 2 ** 62 for s in strings] == FINGERPRINTS
