"""The file of ``keras.callbacks.BackupAndRestore`` (callbacks.py): training that survives a
killed process. At the end of each epoch the first worker writes the model's weights, the
optimizer's state (its step, learning rate and slots: Adam's moments) and the epoch to
``backup_dir/backup.npz`` (a temporary file renamed over the last); a restarted ``fit`` with
the same callback loads it and goes on from the next epoch, on every worker, as if never
stopped. The file is numpy's npz read with ``allow_pickle=False``: every entry's header is
checked against the variable it restores (shape and dtype) before any data is read.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np

from runtime.files import write_atomic

FILE = "backup.npz"


class BackupError(ValueError):
    """A backup that does not fit the model being trained, or a damaged file."""


def write_backup(path: str, epoch: int, arrays: list) -> None:
    """The backup of ``epoch``'s end, written to a temporary name and renamed over ``path``."""
    buf = io.BytesIO()
    np.savez(buf, epoch=np.int64(epoch), **{f"v{i}": a for i, a in enumerate(arrays)})
    write_atomic(path, buf.getvalue())


def read_backup(path: str, expected: list) -> tuple[list, int]:
    """The arrays of a backup, checked against ``expected`` [(shape, dtype)], and its epoch."""
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            want = ["epoch.npy"] + [f"v{i}.npy" for i in range(len(expected))]
            if names != set(want):
                raise BackupError(f"{path}: holds {len(names) - 1} variables; the model and "
                                  f"its optimizer have {len(expected)} (a backup of another "
                                  f"model?)")
            epoch = _entry(z, "epoch.npy", ((), np.dtype(np.int64)), path)
            arrays = [_entry(z, f"v{i}.npy", (shape, np.dtype(dtype)), path)
                      for i, (shape, dtype) in enumerate(expected)]
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise BackupError(f"{path}: not a readable backup ({e})") from None
    return arrays, int(epoch)


def _entry(z: zipfile.ZipFile, name: str, expected: tuple, path: str) -> np.ndarray:
    shape, dtype = expected
    with z.open(name) as f:
        try:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                np.lib.format.read_array_header_2_0
            header = read(f)
        except ValueError as e:
            raise BackupError(f"{path}: entry {name} is damaged ({e})") from None
        got_shape, fortran, got_dtype = header
        if tuple(got_shape) != tuple(shape) or got_dtype != dtype or fortran:
            raise BackupError(f"{path}: entry {name} is {got_dtype}{list(got_shape)}; the "
                              f"model expects {dtype}{list(shape)}")
        data = f.read(int(np.prod(shape, dtype=np.int64)) * dtype.itemsize + 1)
    if len(data) != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
        raise BackupError(f"{path}: entry {name} holds {len(data)} bytes; expected "
                          f"{int(np.prod(shape)) * dtype.itemsize}")
    return np.frombuffer(data, dtype).reshape(shape).copy()
