"""``keras.callbacks.BackupAndRestore``: training that survives a killed process. At the end
of each epoch the first worker writes the model's weights, the optimizer's state (its step,
learning rate and slots: Adam's moments) and the epoch to ``backup_dir/backup.npz`` (a
temporary file renamed over the last); a restarted ``fit`` with the same callback loads it
and goes on from the next epoch, on every worker, as if never stopped. The file is numpy's
npz read with ``allow_pickle=False``: every entry's header is checked against the variable it
restores (shape and dtype) before any data is read.
"""

from __future__ import annotations

import io
import os
import zipfile

import numpy as np

from runtime.files import write_atomic

from .callbacks import Callback

FILE = "backup.npz"


class BackupError(ValueError):
    """A backup that does not fit the model being trained, or a damaged file."""


class BackupAndRestore(Callback):
    """Back up at each epoch's end (``save_freq="epoch"``); restore at ``fit``'s start; delete
    the backup when training ends normally (``delete_checkpoint``)."""

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint=True,
                 save_before_preemption=False):
        super().__init__()
        if save_freq != "epoch":
            raise ValueError(f"BackupAndRestore: save_freq must be 'epoch' (a mid-epoch "
                             f"backup is not supported); received {save_freq!r}")
        self.backup_dir, self.delete_checkpoint = os.fspath(backup_dir), delete_checkpoint
        self.path = os.path.join(self.backup_dir, FILE)

    def _state(self) -> list:
        """The variables a backup holds, in order: the model's weights (made now, if its
        layers build on their first call), then the optimizer's (its slots built for every
        trainable weight)."""
        model = self.model
        if not model.weights:
            model._build_from_data()
        opt = model.optimizer
        opt.build(model.trainable_variables)
        return list(model.weights) + list(opt.variables)

    def on_train_begin(self, logs=None):
        if not os.path.exists(self.path):
            return
        state = self._state()
        arrays, epoch = read_backup(self.path, [(tuple(v.shape), v.dtype.np) for v in state])
        for v, a in zip(state, arrays):
            v.assign(a)
        self.model._resume_epoch = epoch + 1  # fit starts from the epoch after it

    def on_epoch_end(self, epoch, logs=None):
        if not self.model.distribute_strategy.is_chief:
            return  # one writer: the first worker
        os.makedirs(self.backup_dir, exist_ok=True)
        buf = io.BytesIO()
        state = self._state()
        np.savez(buf, epoch=np.int64(epoch), **{f"v{i}": v.numpy() for i, v in enumerate(state)})
        write_atomic(self.path, buf.getvalue())

    def on_train_end(self, logs=None):
        if self.delete_checkpoint and not self.model.stop_training and \
                self.model.distribute_strategy.is_chief and os.path.exists(self.path):
            os.unlink(self.path)


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
