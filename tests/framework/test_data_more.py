"""tf.data beyond the basics (framework/data/): the elements of pipelines using
from_generator, filter, zip, skip, take, concatenate, enumerate, padded_batch, unbatch,
rebatch, interleave, flat_map, window, shard and text, against what TensorFlow 2.21 gives
(tf_values/datasets.json, from tf_values/datasets.py); cardinalities; element_spec; map
compiled once and on threads; cache in memory and in a file."""

import os
import subprocess
import sys

import numpy as np
import pytest
from tf_values.datasets import cardinalities, cases, elements
from tf_values.reference import stored

import framework as tf

TF = stored("datasets")
D = tf.data.Dataset


def test_every_case_has_tensorflows_values():
    assert sorted(cases(tf)) == sorted(k for k in TF if k != "cardinality")


@pytest.mark.parametrize("name", sorted(k for k in TF if k != "cardinality"))
def test_elements_match_tensorflow(name):
    assert elements(cases(tf)[name]()) == TF[name]  # (the floats here are exact)


def test_cardinalities_match_tensorflow():
    assert {k: int(v) for k, v in cardinalities(tf).items()} == TF["cardinality"]


def test_element_spec_follows_the_transformations():
    ds = D.from_tensor_slices((np.zeros((6, 3), "float32"), np.arange(6)))
    x, y = ds.batch(4).element_spec
    assert tuple(x.shape) == (None, 3) and tuple(y.shape) == (None,)
    x, _ = ds.batch(4, drop_remainder=True).element_spec
    assert tuple(x.shape) == (4, 3) and x.dtype == tf.float32
    i, (x, _) = ds.enumerate().element_spec
    assert i.dtype == tf.int64 and tuple(x.shape) == (3,)
    assert tuple(ds.map(lambda a, b: a[:2]).element_spec.shape) == (2,)  # the first one's


def test_map_is_compiled_once_and_runs_on_threads_in_order():
    calls = []

    def f(x):
        calls.append(1)  # Python runs once per trace, as tf.data
        return tf.sqrt(tf.cast(x, tf.float32)) * 2.0 + 1.0
    ds = D.range(64).map(f, num_parallel_calls=tf.data.AUTOTUNE)
    got = [float(v) for v in ds.as_numpy_iterator()]
    np.testing.assert_allclose(got, np.sqrt(np.arange(64)) * 2 + 1, rtol=1e-6)
    assert len(calls) == 1
    unordered = D.range(64).map(f, num_parallel_calls=4, deterministic=False)
    assert sorted(float(v) for v in unordered.as_numpy_iterator()) == pytest.approx(sorted(got))


def test_map_falls_back_to_python_where_it_cannot_trace():
    lookup = tf.keras.layers.StringLookup(vocabulary=["a", "b"])
    ds = D.from_tensor_slices(np.array(["b", "z", "a"])).map(lookup)
    assert [int(v) for v in ds.as_numpy_iterator()] == [2, 0, 1]
    ds = D.range(4).map(lambda x: x.numpy() * 3)  # reads the value in Python
    assert [int(v) for v in ds.as_numpy_iterator()] == [0, 3, 6, 9]


def test_cache_in_memory_runs_the_pipeline_once():
    calls = []

    def gen():
        calls.append(1)
        yield from range(3)
    ds = D.from_generator(gen, output_signature=tf.TensorSpec([], tf.int64)).cache()
    assert [list(ds.as_numpy_iterator()) for _ in range(3)] == [[0, 1, 2]] * 3
    assert len(calls) == 1


def test_cache_file_is_read_by_another_process(tmp_path):
    path = tmp_path / "cache.kdc"
    ds = D.from_tensor_slices({"x": np.arange(6.0).reshape(3, 2), "s": np.array(["a", "b",
                                                                                "c"])})
    first = elements(ds.cache(str(path)))
    assert path.exists() and not [p for p in os.listdir(tmp_path) if p != "cache.kdc"]
    code = ("import framework as tf, sys\n"
            "sys.path.insert(0, sys.argv[2])\n"
            "from tf_values.datasets import elements\n"
            "ds = tf.data.Dataset.range(0).cache(sys.argv[1])  # the file, not this source\n"
            "print(elements(ds))\n")
    here = os.path.dirname(__file__)
    out = subprocess.run([sys.executable, "-c", code, str(path), here], capture_output=True,
                         text=True, timeout=120, env=dict(os.environ, PYTHONPATH=os.getcwd()))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == str(first)
    path.write_bytes(path.read_bytes()[:100])  # damaged
    with pytest.raises(ValueError, match="damaged"):
        list(D.range(0).cache(str(path)).as_numpy_iterator())


def test_bad_inputs_are_clear_errors():
    def gen():
        yield np.zeros(3, "float32")
    ds = D.from_generator(gen, output_signature=tf.TensorSpec([2], tf.float32))
    with pytest.raises(ValueError, match="element 0 has shape"):
        list(ds.as_numpy_iterator())
    with pytest.raises(ValueError, match="bool scalar"):
        list(D.range(3).filter(lambda x: x * 2).as_numpy_iterator())
    with pytest.raises(ValueError, match="index must be"):
        D.range(3).shard(2, 2)
    with pytest.raises(TypeError, match="must return a Dataset"):
        list(D.range(3).flat_map(lambda x: x).as_numpy_iterator())


def test_an_elementwise_map_then_batch_runs_once_a_batch():
    x = np.random.default_rng(0).random((200, 6)).astype("float32")
    shapes = []

    def f(v):
        shapes.append(tuple(v.shape))  # once per trace
        return tf.tanh(v * 2.0 - 1.0) + tf.constant([0.5] * 6)
    ds = D.from_tensor_slices(x).map(f).batch(64)
    out = np.concatenate(list(ds.as_numpy_iterator()))
    np.testing.assert_allclose(out, np.tanh(x * 2 - 1) + 0.5, rtol=1e-6, atol=1e-6)
    assert (64, 6) in shapes and len(shapes) <= 3  # the element, the batch, the last batch


@pytest.mark.parametrize("f", [
    lambda v: v - tf.reduce_mean(v),                      # a reduction over the element
    lambda v: v + tf.random.uniform([]),                  # one draw an element
    lambda v: tf.reshape(v, [2, 3]),                      # a reshape of the element
])
def test_other_maps_stay_per_element_under_batch(f):
    x = np.random.default_rng(1).random((10, 6)).astype("float32")
    batched = np.concatenate(list(D.from_tensor_slices(x).map(f).batch(4)
                                  .as_numpy_iterator()))
    assert batched.shape[0] == 10
    if batched.shape[1:] == (6,) and not np.allclose(batched, x - x.mean(1, keepdims=True)):
        offsets = batched - x  # the random case: a different draw for every element
        assert np.allclose(offsets, offsets[:, :1]) and len(np.unique(offsets[:, 0])) > 5


def test_uint8_images_enter_as_int64_and_batches_keep_an_open_batch_dim():
    images = np.arange(3 * 4 * 4, dtype=np.uint8).reshape(3, 4, 4)
    ds = D.from_tensor_slices(images).map(lambda x: tf.cast(x, tf.float32) / 255.0)
    assert D.from_tensor_slices(images).element_spec.dtype == tf.int64  # as constant()
    spec = ds.batch(2).element_spec
    assert tuple(spec.shape) == (None, 4, 4) and spec.dtype == tf.float32
    assert tuple(ds.batch(2, drop_remainder=True).element_spec.shape) == (2, 4, 4)
    np.testing.assert_allclose(np.concatenate(list(ds.batch(2).as_numpy_iterator())),
                               images / 255.0, rtol=1e-6)
