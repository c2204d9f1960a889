"""BackupAndRestore's file (framework/keras/backup.py): written atomically by fit, read back
only when every entry's header matches the variable it restores; a damaged, foreign or
hostile file is a BackupError before any data is read (nothing is unpickled)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from framework import keras
from framework.keras.backup import BackupError, read_backup

RNG = np.random.default_rng(0)
X, Y = RNG.standard_normal((40, 4)).astype("f"), RNG.integers(0, 2, 40).astype("int32")


def _model():
    m = keras.Sequential([keras.layers.Dense(3, input_shape=(4,))])
    m.compile(optimizer="adam",
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return m


def _fit(m, folder, epochs):
    return m.fit(X, Y, epochs=epochs, batch_size=20, verbose=0, shuffle=False,
                 callbacks=[keras.callbacks.BackupAndRestore(folder, delete_checkpoint=False)])


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_fit_resumes_after_the_last_backed_up_epoch(tmp_path):
    m = _model()
    _fit(m, tmp_path, 2)
    assert (tmp_path / "backup.npz").exists()
    again = _model()
    h = _fit(again, tmp_path, 3)  # epochs 0 and 1 are done: only epoch 2 runs
    assert h.epoch == [2]
    assert int(again.optimizer.iterations.numpy()) == 2 * 2 + 2  # Adam's step restored


def test_a_damaged_or_foreign_backup_is_a_clear_error(tmp_path):
    m = _model()
    _fit(m, tmp_path, 1)
    path = tmp_path / "backup.npz"
    good = path.read_bytes()
    expected = [(tuple(v.shape), v.dtype.np) for v in
                list(m.weights) + list(m.optimizer.variables)]
    read_backup(str(path), expected)  # the real one reads
    cases = {
        "damaged or not the expected file": good[: len(good) // 2],
        "holds entries": _npz(epoch=np.int64(0), v0=np.zeros(3, "f")),
        "expected float32": _npz(epoch=np.int64(0), **{f"v{i}": np.zeros(7, "f")
                                                        for i in range(len(expected))}),
    }
    for message, data in cases.items():
        path.write_bytes(data)
        with pytest.raises(BackupError, match=message):
            _fit(_model(), tmp_path, 2)


def test_an_entry_declaring_a_huge_or_pickled_array_is_refused_unread(tmp_path):
    m = _model()
    _fit(m, tmp_path, 1)
    path = tmp_path / "backup.npz"
    n = len(list(m.weights) + list(m.optimizer.variables))
    buf = io.BytesIO()  # v0's header declares 10^12 floats; no data follows
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("epoch.npy", _entry(np.int64(0)))
        huge = b"\x93NUMPY\x01\x00" + _header("{'descr': '<f4', 'fortran_order': False, "
                                              "'shape': (1000000000000,), }")
        z.writestr("v0.npy", huge)
        for i in range(1, n):
            z.writestr(f"v{i}.npy", _entry(np.zeros(1, "f")))
    path.write_bytes(buf.getvalue())
    with pytest.raises(BackupError, match="1000000000000"):
        _fit(_model(), tmp_path, 2)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("epoch.npy", _entry(np.int64(0)))
        z.writestr("v0.npy", _entry(np.array([object()], dtype=object)))
        for i in range(1, n):
            z.writestr(f"v{i}.npy", _entry(np.zeros(1, "f")))
    path.write_bytes(buf.getvalue())
    with pytest.raises(BackupError, match="object"):
        _fit(_model(), tmp_path, 2)


def _entry(a) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(a), allow_pickle=True)
    return buf.getvalue()


def _header(text: str) -> bytes:
    body = text.encode("latin1")
    body += b" " * (63 - (len(body) + 10) % 64) + b"\n"
    return len(body).to_bytes(2, "little") + body

