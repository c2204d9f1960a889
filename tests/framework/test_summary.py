"""tf.summary and keras.callbacks.TensorBoard (framework/summary.py): event files written
with TensorBoard's own writer, read back with its EventAccumulator; summaries from a
compiled function land after the step, in order; `tensorboard --logdir` serves the
scalars over HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util.tensor_util import make_ndarray

import framework as tf


def _read(folder) -> EventAccumulator:
    acc = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    acc.Reload()
    return acc


def _values(acc, tag):
    return [(e.step, make_ndarray(e.tensor_proto)) for e in acc.Tensors(tag)]


def test_eager_and_compiled_summaries_read_back(tmp_path):
    writer = tf.summary.create_file_writer(tmp_path)
    v = tf.Variable(np.arange(6.0, dtype="f"))

    @tf.function
    def step(i):
        tf.summary.scalar("mean", tf.reduce_mean(v * 2.0), step=i)
        tf.summary.histogram("v", v, step=i)
        v.assign_add(tf.ones(6))
        return v

    with writer.as_default():
        assert tf.summary.scalar("eager", 1.5, step=0)
        tf.summary.text("note", "hello", step=0)
        tf.summary.image("img", np.random.default_rng(0).random((2, 4, 5, 3)), step=0)
        for i in range(3):
            step(tf.constant(i, tf.int64))
    assert not tf.summary.scalar("nowhere", 1.0, step=0)  # no default writer
    acc = _read(tmp_path)
    assert [(s, float(x)) for s, x in _values(acc, "eager")] == [(0, 1.5)]
    assert [(s, float(x)) for s, x in _values(acc, "mean")] == [(0, 5.0), (1, 7.0), (2, 9.0)]
    hist = _values(acc, "v")[2][1]  # buckets [left, right, count]: 6 values counted
    assert hist.shape[1] == 3 and hist[:, 2].sum() == 6
    assert _values(acc, "note")[0][1].item() == b"hello"
    img = _values(acc, "img")[0][1]
    assert img[:2].tolist() == [b"5", b"4"] and img[2][:8] == b"\x89PNG\r\n\x1a\n"


def test_record_if_and_steps(tmp_path):
    writer = tf.summary.create_file_writer(tmp_path)
    with writer.as_default(step=7):
        with tf.summary.record_if(False):
            assert not tf.summary.scalar("off", 1.0)
        assert tf.summary.scalar("on", 2.0)
    with pytest.raises(ValueError, match="no step"), writer.as_default():
        tf.summary.scalar("stepless", 1.0)
    acc = _read(tmp_path)
    assert "off" not in acc.Tags()["tensors"] and _values(acc, "on")[0][0] == 7


def _fit(log_dir):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 4)).astype("f")
    y = (x.sum(1) > 0).astype("int32")
    m = tf.keras.Sequential([tf.keras.layers.Dense(4, activation="relu", input_shape=(4,)),
                             tf.keras.layers.Dense(2)])
    m.compile(optimizer="adam", metrics=["accuracy"],
              loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return m.fit(x, y, epochs=3, batch_size=16, validation_split=0.25, verbose=0,
                 callbacks=[tf.keras.callbacks.TensorBoard(log_dir, histogram_freq=1,
                                                           update_freq=2,
                                                           profile_batch=(2, 3))])


def test_the_keras_callback_writes_tensorboards_run_layout(tmp_path):
    h = _fit(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["train", "validation"]
    train, val = _read(tmp_path / "train"), _read(tmp_path / "validation")
    np.testing.assert_allclose([float(x) for _, x in _values(train, "epoch_loss")],
                               h.history["loss"], rtol=1e-6)
    np.testing.assert_allclose([float(x) for _, x in _values(val, "epoch_accuracy")],
                               h.history["val_accuracy"], rtol=1e-6)
    assert [s for s, _ in _values(train, "batch_loss")] == [2, 4, 6, 8]  # 3 batches an epoch
    kernel = h.model.layers[0].kernel.name.split(":")[0]  # e.g. dense/kernel
    assert [s for s, _ in _values(train, kernel)] == [0, 1, 2]  # histogram_freq=1
    trace = json.loads((tmp_path / "train" / "kiln_trace_2_3.json").read_text())
    steps = {e["name"] for e in trace["traceEvents"]}  # two batches' kernels
    assert len(trace["traceEvents"]) == 2 * len(steps) and any("matmul" in s for s in steps)
    nodes = train.Graph().node  # the fused train step: kernels as groups of their ops
    assert any(n.op == "matmul" and "/" in n.name for n in nodes)
    assert any(n.op == "Placeholder" and n.name.endswith("kernel") for n in nodes)


def test_tensorboard_serves_the_scalars(tmp_path):
    h = _fit(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    board = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "tensorboard"),
                              "--logdir", str(tmp_path), "--host", "127.0.0.1", "--port",
                              str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/data/plugin/scalars/scalars?run=train&tag=epoch_loss"
        for _ in range(120):
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    points = json.loads(r.read())
                if len(points) == 3:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        np.testing.assert_allclose([p[2] for p in points], h.history["loss"], rtol=1e-6)
        assert [p[1] for p in points] == [0, 1, 2]
    finally:
        board.kill()
