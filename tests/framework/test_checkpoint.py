"""tf.train.Checkpoint and CheckpointManager (framework/checkpoint.py): state saved by the
object graph's structure and restored — now, or when the variables are made (deferred) —
so training goes on exactly as if never stopped; numbered checkpoints kept and pruned; a
damaged, foreign or mismatched file is a CheckpointError."""

from __future__ import annotations

import os

import numpy as np
import pytest

import framework as tf
from framework.checkpoint import CheckpointError

RNG = np.random.default_rng(0)
X = RNG.standard_normal((16, 3)).astype("f")
Y = X[:, :2] * 2.0


def _make():
    m = tf.keras.Sequential([tf.keras.layers.Dense(5, activation="tanh"),
                             tf.keras.layers.Dense(2)])
    return m, tf.keras.optimizers.Adam(0.05)


def _stepper(m, opt):
    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((m(x) - y) ** 2)
        grads = tape.gradient(loss, m.trainable_variables)
        opt.apply_gradients(zip(grads, m.trainable_variables))
        return loss
    return lambda: float(step(X, Y))


def test_restored_training_goes_on_exactly_and_deferred_values_land(tmp_path):
    m, opt = _make()
    step = _stepper(m, opt)
    ckpt = tf.train.Checkpoint(model=m, optimizer=opt, epoch=tf.Variable(7))
    for _ in range(3):
        step()
    path = ckpt.save(tmp_path / "ckpt")
    assert path == str(tmp_path / "ckpt-1") and os.path.exists(path + ".safetensors")
    after = [step() for _ in range(3)]
    m2, opt2 = _make()  # not built: its weights and Adam's slots are made later
    epoch = tf.Variable(0)
    status = tf.train.Checkpoint(model=m2, optimizer=opt2, epoch=epoch).restore(path)
    assert int(epoch.numpy()) == 7  # an existing variable: restored at once
    with pytest.raises(AssertionError, match="unrestored"):
        status.assert_consumed()
    resumed = _stepper(m2, opt2)
    assert [resumed() for _ in range(3)] == after  # bit for bit
    status.assert_consumed()
    assert int(opt2.iterations.numpy()) == 6


def test_a_manager_keeps_the_newest_and_finds_the_latest(tmp_path):
    v = tf.Variable(np.zeros(3, "f"))
    ckpt = tf.train.Checkpoint(v=v)
    manager = tf.train.CheckpointManager(ckpt, tmp_path, max_to_keep=2)
    assert manager.latest_checkpoint is None and tf.train.latest_checkpoint(tmp_path) is None
    for i in range(4):
        v.assign(np.full(3, float(i), "f"))
        manager.save()
    assert [os.path.basename(p) for p in manager.checkpoints] == ["ckpt-3", "ckpt-4"]
    assert sorted(os.listdir(tmp_path)) == ["checkpoint", "ckpt-3.safetensors",
                                            "ckpt-4.safetensors"]
    again = tf.train.CheckpointManager(tf.train.Checkpoint(v=v), tmp_path, max_to_keep=2)
    assert again.latest_checkpoint == tf.train.latest_checkpoint(tmp_path) == \
        str(tmp_path / "ckpt-4")
    v.assign(np.zeros(3, "f"))
    fresh = tf.train.Checkpoint(v=v)
    fresh.restore(manager.checkpoints[0]).assert_consumed()
    np.testing.assert_array_equal(v.numpy(), [2.0, 2.0, 2.0])
    assert int(fresh.save_counter.numpy()) == 3


def test_a_keras_model_fitted_then_restored_predicts_the_same(tmp_path):
    m, _ = _make()
    m.compile(optimizer="adam", loss="mse")
    m.fit(X, Y, epochs=2, verbose=0)
    tf.train.Checkpoint(model=m, optimizer=m.optimizer).write(tmp_path / "w")
    m2, _ = _make()
    m2.compile(optimizer="adam", loss="mse")
    tf.train.Checkpoint(model=m2, optimizer=m2.optimizer).read(tmp_path / "w")
    np.testing.assert_array_equal(m2.predict(X, verbose=0), m.predict(X, verbose=0))


def test_damaged_foreign_and_mismatched_checkpoints_are_clear_errors(tmp_path):
    from safetensors.numpy import save_file
    v = tf.Variable(np.ones((2, 3), "f"))
    path = tf.train.Checkpoint(v=v).write(tmp_path / "c") + ".safetensors"
    good = open(path, "rb").read()
    cases = {"damaged": good[: len(good) // 2],
             "damaged checkpoint": (10**15).to_bytes(8, "little") + good[8:]}
    for message, data in cases.items():
        with open(path, "wb") as f:
            f.write(data)
        with pytest.raises(CheckpointError, match=message):
            tf.train.Checkpoint(v=v).restore(tmp_path / "c")
    save_file({"v": np.ones((2, 3), "f")}, path)  # safetensors, not Kiln's
    with pytest.raises(CheckpointError, match="not a Kiln checkpoint"):
        tf.train.Checkpoint(v=v).restore(tmp_path / "c")
    tf.train.Checkpoint(v=tf.Variable(np.ones((3, 2), "f"))).write(tmp_path / "c")
    with pytest.raises(CheckpointError, match=r"is F32\[3, 2\]; the variable"):
        tf.train.Checkpoint(v=v).restore(tmp_path / "c")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        tf.train.Checkpoint(v=v).restore(tmp_path / "nothing")
