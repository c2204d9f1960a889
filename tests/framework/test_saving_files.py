"""Saved models you can trust (framework/keras/saving.py over runtime/files.py): training
resumed from ``model.save`` goes on bit-identically (the optimizer's state is saved); every
damaged or hostile file raises ``SavingError`` or loads the right weights (truncations, byte
flips, hostile configs, zip bombs); a killed save leaves nothing behind; files get the
user's umask."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

import framework as tf
from framework.keras.saving import SavingError

RNG = np.random.default_rng(0)
X = RNG.normal(size=(96, 6)).astype(np.float32)
Y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 0.5)


def _model():
    m = tf.keras.Sequential([tf.keras.layers.Dense(8, activation="relu", input_shape=(6,)),
                             tf.keras.layers.Dense(3)])
    init = np.random.default_rng(1)
    m.set_weights([init.normal(size=w.shape).astype(np.float32) * 0.4 for w in m.weights])
    m.compile(optimizer=tf.keras.optimizers.Adam(0.01), metrics=["accuracy"],
              loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return m


def _fit(m, epochs):
    return m.fit(X, Y, epochs=epochs, batch_size=32, verbose=0, shuffle=False)


def test_training_resumed_from_a_saved_model_goes_on_bit_identically(tmp_path):
    straight = _model()
    _fit(straight, 4)
    first = _model()
    _fit(first, 2)
    first.save(tmp_path / "m.kiln")
    resumed = tf.keras.models.load_model(tmp_path / "m.kiln")
    _fit(resumed, 2)
    for a, b in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert int(resumed.optimizer.iterations.numpy()) == 4 * 3


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    m = _model()
    _fit(m, 1)
    path = tmp_path_factory.mktemp("good") / "m.kiln"
    m.save(path)
    return path.read_bytes(), [w.copy() for w in m.get_weights()]


def _loads(data: bytes, tmp_path, weights) -> str:
    """'error' or 'loaded' (the right weights); anything else fails the test."""
    path = tmp_path / "case.kiln"
    path.write_bytes(data)
    try:
        m = tf.keras.models.load_model(path)
    except SavingError:
        return "error"
    for a, b in zip(m.get_weights(), weights):
        np.testing.assert_array_equal(a, b)
    return "loaded"


def test_truncated_and_byte_flipped_files_raise_saving_error(saved, tmp_path):
    data, weights = saved
    outcomes = [_loads(data[:n], tmp_path, weights)
                for n in np.linspace(0, len(data) - 1, 40).astype(int)]
    assert set(outcomes) == {"error"}
    rng = np.random.default_rng(2)
    flips = []
    for at in rng.integers(0, len(data), 120):
        bad = bytearray(data)
        bad[at] ^= 1 << int(rng.integers(0, 8))
        flips.append(_loads(bytes(bad), tmp_path, weights))
    assert flips.count("error") > 60  # the rest flipped bytes no reader looks at


def _rewrite(data: bytes, **replace) -> bytes:
    """The model file with entries replaced (bytes, or a function of the config dict)."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name in src.namelist():
            new = replace.get(name.replace(".", "_"), src.read(name))
            if callable(new):
                cfg = json.loads(src.read(name))
                new(cfg)
                new = json.dumps(cfg).encode()
            z.writestr(name, new)
    return out.getvalue()


def test_hostile_configs_resolve_only_registered_classes(saved, tmp_path):
    data, weights = saved

    def optimizer(name):
        def edit(cfg):
            cfg["compile"]["optimizer"]["class_name"] = name
        return edit

    def layer(cfg):
        cfg["model"]["config"]["layers"][0]["class_name"] = "print"

    def huge(cfg):
        cfg["weights"][0]["shape"] = [10**12]

    def not_a_dict(cfg):
        cfg["compile"]["loss"] = {"class_name": "open", "config": {"file": "/etc/passwd"}}

    for edit in (optimizer("get"), optimizer("math"), optimizer("schedules"), layer, huge,
                 not_a_dict):
        assert _loads(_rewrite(data, config_json=edit), tmp_path, weights) == "error"


def test_zip_bombs_and_pickles_are_refused_before_inflating(saved, tmp_path):
    data, weights = saved
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:  # 100 MiB of zeros
        z.writestr("w00000.npy", bytes(100 << 20))
    t0 = time.perf_counter()
    assert _loads(_rewrite(data, weights_npz=bomb.getvalue()), tmp_path, weights) == "error"
    assert _loads(_rewrite(data, config_json=b" " * (20 << 20)), tmp_path, weights) == "error"
    assert time.perf_counter() - t0 < 2.0  # refused from the sizes the archive declares
    npz = zipfile.ZipFile(io.BytesIO(zipfile.ZipFile(io.BytesIO(data)).read("weights.npz")))
    pickled = io.BytesIO()
    with zipfile.ZipFile(pickled, "w") as z:
        for name in npz.namelist():
            arr = io.BytesIO()
            np.lib.format.write_array(arr, np.array([print], dtype=object), allow_pickle=True)
            z.writestr(name, arr.getvalue() if name == "w00000.npy" else npz.read(name))
    assert _loads(_rewrite(data, weights_npz=pickled.getvalue()), tmp_path, weights) == "error"


KILLED = """
import sys, numpy as np, framework as tf
m = tf.keras.Sequential([tf.keras.layers.Dense(700, input_shape=(700,))])
print("ready", flush=True)
while True:
    m.save(sys.argv[1])
"""


def test_a_killed_save_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "m.kiln"
    for delay in np.linspace(0.05, 0.6, 8):
        p = subprocess.Popen([sys.executable, "-c", KILLED, str(path)], stdout=subprocess.PIPE)
        assert p.stdout.readline().strip() == b"ready"
        time.sleep(float(delay))
        p.send_signal(signal.SIGKILL)
        p.wait()
        # nothing is left, but for a save killed between naming its complete file and
        # renaming it (two system calls): the next write into the folder removes that
        left = [f for f in os.listdir(tmp_path) if f != "m.kiln"]
        assert all(f.startswith(".tmp-") for f in left) and len(left) <= 1
    tf.keras.models.load_model(path).save(path)  # the last complete save, saved again
    assert os.listdir(tmp_path) == ["m.kiln"]


def test_saved_files_get_the_users_umask(tmp_path):
    old = os.umask(0o027)
    try:
        _model().save(tmp_path / "m.kiln")
    finally:
        os.umask(old)
    assert (tmp_path / "m.kiln").stat().st_mode & 0o777 == 0o640


def test_a_write_removes_the_temporaries_of_writers_that_died(tmp_path):
    from runtime.files import write_atomic
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f".tmp-{gone}-0123456789ab"
    alive = tmp_path / f".tmp-{os.getppid()}-0123456789ab"  # a running writer's: kept
    other = tmp_path / ".tmp-notours"
    for f in (stale, alive, other):
        f.write_bytes(b"x")
    write_atomic(tmp_path / "out.bin", b"data")
    assert sorted(os.listdir(tmp_path)) == sorted([alive.name, other.name, "out.bin"])
