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

import numpy as np

from runtime.files import read_array, read_zip, write_atomic

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
    names = {"epoch.npy"} | {f"v{i}.npy" for i in range(len(expected))}
    total = sum(int(np.prod(s, dtype=np.int64)) * np.dtype(d).itemsize + 4096
                for s, d in expected) + 4096
    entries = read_zip(path, path, BackupError, max_entry=total, max_total=total, names=names)
    epoch = read_array(entries["epoch.npy"], f"{path}: epoch", BackupError, (), np.int64)
    arrays = [read_array(entries[f"v{i}.npy"], f"{path}: v{i}", BackupError, shape, dtype)
              for i, (shape, dtype) in enumerate(expected)]
    return arrays, int(epoch)
