"""The pipelines of tests/framework/test_data_more.py, over either framework's tf.data; run
as a script with the bench venv (which has tensorflow-cpu) it writes datasets.json, the
elements TensorFlow 2.21 gives:

    .venv-bench/bin/python tests/framework/tf_values/datasets.py
"""

import json
import os

import numpy as np


def elements(ds) -> list:
    """Every element as nested lists (windows: each window's elements)."""
    def plain(x):
        if hasattr(x, "as_numpy_iterator"):
            return [plain(e) for e in x.as_numpy_iterator()]
        if isinstance(x, (tuple, list)):
            return [plain(e) for e in x]
        if isinstance(x, dict):
            return {k: plain(v) for k, v in sorted(x.items())}
        a = np.asarray(x)
        return a.astype(str).tolist() if a.dtype.kind in "SUO" else a.tolist()
    return [plain(e) for e in (ds if _has_windows(ds) else ds.as_numpy_iterator())]


def _has_windows(ds):
    first = next(iter(ds), None)
    return first is not None and any(hasattr(x, "as_numpy_iterator") for x in (
        first if isinstance(first, tuple) else (first,)))


def gen():
    for i in range(5):
        yield np.arange(i, dtype="float32"), {"n": i}


def cases(tf) -> dict:
    D = tf.data.Dataset
    sig = (tf.TensorSpec([None], tf.float32), {"n": tf.TensorSpec([], tf.int64)})
    return {
        "from_generator": lambda: D.from_generator(gen, output_signature=sig),
        "filter_map": lambda: D.range(12).filter(lambda x: x % 3 > 0).map(lambda x: x * x),
        "zip_skip_take": lambda: D.zip((D.range(10).skip(3), D.range(4).map(
            lambda x: tf.cast(x, tf.float32) / 2))).take(3),
        "concatenate_enumerate": lambda: D.range(3).concatenate(D.range(10, 12)).enumerate(7),
        "padded_batch": lambda: D.range(1, 6).map(lambda x: tf.fill([x], x)).padded_batch(
            2, padding_values=tf.constant(-1, tf.int64)),
        "padded_batch_shapes": lambda: D.from_generator(gen, output_signature=sig).map(
            lambda a, d: (a, d["n"])).padded_batch(3, padded_shapes=([6], []),
                                                   drop_remainder=True),
        "unbatch_rebatch": lambda: D.range(10).batch(4).unbatch().batch(3),
        "rebatch": lambda: D.range(7).batch(3).rebatch(2),
        "interleave": lambda: D.range(1, 6).interleave(
            lambda x: D.from_tensors(x).repeat(x), cycle_length=2, block_length=2),
        "flat_map": lambda: D.range(4).flat_map(lambda x: D.range(x)),
        "window_flat_map": lambda: D.range(9).window(4, shift=3, stride=2).flat_map(
            lambda w: w.batch(4)),
        "window_tuple": lambda: D.zip((D.range(5), D.range(5, 10))).window(
            2, shift=2, drop_remainder=True),
        "shard": lambda: D.range(11).shard(4, 3),
        "shuffle_seeded_sorted": lambda: D.range(20).shuffle(5, seed=1).batch(20).map(
            lambda x: tf.sort(x)),
        "strings": lambda: D.from_tensor_slices(np.array(["a", "bb", "ccc"])).batch(2),
    }


def cardinalities(tf) -> dict:
    D = tf.data.Dataset
    return {
        "batch": D.range(10).batch(3).cardinality(),
        "batch_drop": D.range(10).batch(3, drop_remainder=True).cardinality(),
        "skip": D.range(10).skip(4).cardinality(),
        "take_repeat": D.range(10).repeat().take(7).cardinality(),
        "repeat": D.range(10).repeat().cardinality(),
        "shard": D.range(10).shard(3, 2).cardinality(),
        "filter": D.range(10).filter(lambda x: x > 2).cardinality(),
        "zip": D.zip((D.range(10), D.range(4))).cardinality(),
        "concatenate": D.range(10).concatenate(D.range(4)).cardinality(),
        "enumerate": D.range(10).enumerate().cardinality(),
    }


if __name__ == "__main__":
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf
    out = {name: elements(make()) for name, make in cases(tf).items()}
    out["cardinality"] = {k: int(v) for k, v in cardinalities(tf).items()}
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "datasets.json"),
              "w") as f:
        json.dump(out, f, separators=(",", ":"))
