"""Callbacks, as ``tf.keras.callbacks``: History, ProgbarLogger, EarlyStopping,
ModelCheckpoint, BackupAndRestore, TensorBoard, LearningRateScheduler, ReduceLROnPlateau,
CSVLogger, TerminateOnNaN, LambdaCallback; subclass ``Callback`` for your own. Under a multi-worker
strategy only the first worker writes files."""

from __future__ import annotations

import csv
import math
import os
import sys
import time

import numpy as np

from . import backup


class Callback:
    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None): pass
    def on_train_end(self, logs=None): pass
    def on_epoch_begin(self, epoch, logs=None): pass
    def on_epoch_end(self, epoch, logs=None): pass
    def on_train_batch_begin(self, batch, logs=None): pass
    def on_train_batch_end(self, batch, logs=None): pass
    def on_test_begin(self, logs=None): pass
    def on_test_end(self, logs=None): pass
    def on_test_batch_begin(self, batch, logs=None): pass
    def on_test_batch_end(self, batch, logs=None): pass
    def on_predict_begin(self, logs=None): pass
    def on_predict_end(self, logs=None): pass
    def on_predict_batch_begin(self, batch, logs=None): pass
    def on_predict_batch_end(self, batch, logs=None): pass


def _chief(model) -> bool:
    """Whether this process writes files: the first worker (or the only one)."""
    strategy = getattr(model, "distribute_strategy", None)
    return strategy is None or strategy.is_chief


class CallbackList:
    def __init__(self, callbacks, model, params):
        self.callbacks = list(callbacks)
        for c in self.callbacks:
            c.set_model(model)
            c.set_params(params)

    def __getattr__(self, name):
        if not name.startswith("on_"):
            raise AttributeError(name)

        def fire(*args):
            for c in self.callbacks:
                getattr(c, name)(*args)
        return fire


class History(Callback):
    """Records every epoch's logs: ``history.history["loss"]`` is a list per epoch."""

    def __init__(self):
        super().__init__()
        self.history, self.epoch = {}, []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)


def _fmt_time(seconds_per_step: float) -> str:
    if seconds_per_step >= 1:
        return f"{seconds_per_step:.0f}s/step"
    if seconds_per_step >= 1e-3:
        return f"{seconds_per_step * 1e3:.0f}ms/step"
    return f"{seconds_per_step * 1e6:.0f}us/step"


def _fmt_logs(logs) -> str:
    return "".join(f" - {k}: {v:.4f}" if abs(v) >= 1e-3 or v == 0 else f" - {k}: {v:.4e}"
                   for k, v in logs.items())


class Progbar:
    """Keras's progress bar: ``12/12 [=====] - 1s 20ms/step - loss: 0.3``. On a terminal
    it redraws in place (at most every 50 ms); otherwise it prints the final line only."""

    def __init__(self, target, width=30, verbose=1, stream=None, interval=0.05):
        self.target, self.width, self.verbose = target, width, verbose
        self.stream = stream or sys.stdout
        self.dynamic = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.perf_counter()
        self.last, self.interval = 0.0, interval

    def bar(self, current) -> str:
        if self.target is None:
            return f"{current}/Unknown"
        n = len(str(self.target))
        done = int(self.width * current / max(self.target, 1))
        arrow = "=" * max(done - 1, 0) + (">" if current < self.target else "=") \
            if done else ""
        return f"{current:{n}d}/{self.target} [{arrow}{'.' * (self.width - len(arrow))}]"

    def update(self, current, logs, finalize=False):
        now = time.perf_counter()
        elapsed = now - self.start
        if finalize:
            if self.verbose == 2:
                line = f"{current}/{current} - {elapsed:.0f}s{_fmt_logs(logs)} - " \
                       f"{elapsed * 1e3:.0f}ms/epoch - {_fmt_time(elapsed / max(current, 1))}"
            else:
                line = f"{self.bar(current)} - {elapsed:.0f}s " \
                       f"{_fmt_time(elapsed / max(current, 1))}{_fmt_logs(logs)}"
            self.stream.write(("\r" if self.dynamic else "") + line + "\n")
            self.stream.flush()
            return
        if self.verbose != 1 or not self.dynamic or now - self.last < self.interval:
            return
        self.last = now
        eta = elapsed / max(current, 1) * (self.target - current) if self.target else 0
        self.stream.write(f"\r{self.bar(current)} - ETA: {eta:.0f}s{_fmt_logs(logs)}")
        self.stream.flush()


class ProgbarLogger(Callback):
    def __init__(self, count_mode="steps", stream=None):
        super().__init__()
        self.stream = stream

    def on_epoch_begin(self, epoch, logs=None):
        verbose = self.params.get("verbose", 1)
        if verbose and self.params.get("epochs", 1) > 0:
            print(f"Epoch {epoch + 1}/{self.params['epochs']}", file=self.stream or sys.stdout,
                  flush=True)
        self.bar = Progbar(self.params.get("steps"), verbose=verbose, stream=self.stream)
        self.seen, self.logs = 0, {}

    def on_train_batch_end(self, batch, logs=None):
        self.seen, self.logs = batch + 1, logs or {}
        self.bar.update(self.seen, self.logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.params.get("verbose", 1):
            self.bar.update(self.seen, logs or self.logs, finalize=True)


class EarlyStopping(Callback):
    """Stop training when ``monitor`` has not improved by ``min_delta`` for ``patience``
    epochs; ``restore_best_weights`` puts back the best epoch's weights."""

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        super().__init__()
        self.monitor, self.patience, self.verbose = monitor, patience, verbose
        self.baseline, self.restore_best_weights = baseline, restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.mode = _mode(mode, monitor)
        self.min_delta = abs(min_delta)
        self.stopped_epoch = 0

    def on_train_begin(self, logs=None):
        self.wait, self.stopped_epoch, self.best_weights, self.best_epoch = 0, 0, None, 0
        self.best = self.baseline if self.baseline is not None else _worst(self.mode)

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
        self.wait += 1
        if _improved(self.mode, value, self.best, self.min_delta):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.restore_best_weights and self.best_weights is not None:
                self.model.set_weights(self.best_weights)

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")


def _improved(mode, value, best, min_delta=0.0) -> bool:
    """Is ``value`` better than ``best`` by more than ``min_delta`` in ``mode``?"""
    d = abs(min_delta)
    return value > best + d if mode == "max" else value < best - d


def _worst(mode) -> float:
    return -np.inf if mode == "max" else np.inf


def _mode(mode, monitor):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max'; received {mode!r}")
    if mode != "auto":
        return mode
    good = ("acc", "accuracy", "auc", "precision", "recall")
    return "max" if any(monitor.endswith(g) for g in good) else "min"


class ModelCheckpoint(Callback):
    """Save the model (or its weights) after each epoch; ``filepath`` may hold
    ``{epoch:02d}`` and log keys such as ``{val_loss:.2f}``."""

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", save_freq="epoch"):
        super().__init__()
        self.filepath, self.monitor, self.verbose = os.fspath(filepath), monitor, verbose
        self.save_best_only, self.save_weights_only = save_best_only, save_weights_only
        self.mode = _mode(mode, monitor)
        self.best = _worst(self.mode)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_best_only:
            value = logs.get(self.monitor)
            if value is None:
                return
            if not _improved(self.mode, value, self.best):
                return
            if self.verbose:
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} "
                      f"to {value:.5f}, saving model to {path}")
            self.best = value
        if not _chief(self.model):
            return
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


class LearningRateScheduler(Callback):
    """Set the learning rate at each epoch start to ``schedule(epoch, lr)``."""

    def __init__(self, schedule, verbose=0):
        super().__init__()
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, logs=None):
        lr = float(self.model.optimizer.learning_rate.numpy())
        try:
            new = self.schedule(epoch, lr)
        except TypeError:  # schedule(epoch) only
            new = self.schedule(epoch)
        self.model.optimizer.learning_rate = float(new)
        if self.verbose:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {new}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["lr"] = float(self.model.optimizer.learning_rate.numpy())


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` has not improved for
    ``patience`` epochs (not below ``min_lr``; then wait ``cooldown`` epochs)."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0):
        super().__init__()
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be < 1; received {factor}")
        self.monitor, self.factor, self.patience, self.verbose = monitor, factor, patience, \
            verbose
        self.mode, self.min_delta = _mode(mode, monitor), min_delta
        self.cooldown, self.min_lr = cooldown, min_lr

    def on_train_begin(self, logs=None):
        self.wait, self.cooldown_counter = 0, 0
        self.best = _worst(self.mode)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        opt = self.model.optimizer
        logs["lr"] = float(opt.learning_rate.numpy())
        value = logs.get(self.monitor)
        if value is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if _improved(self.mode, value, self.best, self.min_delta):
            self.best, self.wait = value, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = float(opt.learning_rate.numpy())
                if old > self.min_lr:
                    new = max(old * self.factor, self.min_lr)
                    opt.learning_rate = new
                    if self.verbose:
                        print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning "
                              f"rate to {new}.")
                    self.cooldown_counter, self.wait = self.cooldown, 0


class CSVLogger(Callback):
    """Append one row per epoch (``epoch`` and every log) to a CSV file."""

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename, self.sep, self.append = os.fspath(filename), separator, append

    def on_train_begin(self, logs=None):
        self.file = None
        if not _chief(self.model):
            return
        exists = self.append and os.path.exists(self.filename) and \
            os.path.getsize(self.filename) > 0
        self.file = open(self.filename, "a" if self.append else "w", newline="")
        self.writer, self.keys, self.header_done = None, None, exists

    def on_epoch_end(self, epoch, logs=None):
        if self.file is None:
            return
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            self.writer = csv.writer(self.file, delimiter=self.sep)
            if not self.header_done:
                self.writer.writerow(["epoch"] + self.keys)
        self.writer.writerow([epoch] + [logs.get(k, "NA") for k in self.keys])
        self.file.flush()

    def on_train_end(self, logs=None):
        if self.file is not None:
            self.file.close()


class TerminateOnNaN(Callback):
    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and (math.isnan(loss) or math.isinf(loss)):
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


class LambdaCallback(Callback):
    """A callback from functions: ``LambdaCallback(on_epoch_end=lambda epoch, logs: ...)``."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_batch_begin=None,
                 on_batch_end=None, on_train_begin=None, on_train_end=None, **kwargs):
        super().__init__()
        fns = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end,
                   on_train_batch_begin=on_batch_begin, on_train_batch_end=on_batch_end,
                   on_train_begin=on_train_begin, on_train_end=on_train_end) | kwargs
        for name, fn in fns.items():
            if fn is not None:
                setattr(self, name, fn)


class BackupAndRestore(Callback):
    """Back up the weights, the optimizer's state and the epoch at each epoch's end (the
    first worker, atomically: backup.py); restore them at ``fit``'s start, which then goes on
    from the next epoch; delete the backup when training ends normally."""

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint=True,
                 save_before_preemption=False):
        super().__init__()
        if save_freq != "epoch":
            raise ValueError(f"BackupAndRestore: save_freq must be 'epoch' (a mid-epoch "
                             f"backup is not supported); received {save_freq!r}")
        self.backup_dir, self.delete_checkpoint = os.fspath(backup_dir), delete_checkpoint
        self.path = os.path.join(self.backup_dir, backup.FILE)

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
        arrays, epoch = backup.read_backup(self.path, [(tuple(v.shape), v.dtype.np) for v in state])
        for v, a in zip(state, arrays):
            v.assign(a)
        self.model._resume_epoch = epoch + 1  # fit starts from the epoch after it

    def on_epoch_end(self, epoch, logs=None):
        if not _chief(self.model):
            return  # one writer: the first worker
        os.makedirs(self.backup_dir, exist_ok=True)
        backup.write_backup(self.path, epoch, [v.numpy() for v in self._state()])

    def on_train_end(self, logs=None):
        if self.delete_checkpoint and not self.model.stop_training and \
                _chief(self.model) and os.path.exists(self.path):
            os.unlink(self.path)


class TensorBoard(Callback):
    """TensorBoard logs of training (tf.summary, framework/summary.py): ``epoch_<metric>``
    scalars under ``log_dir/train`` and ``log_dir/validation`` (the ``val_`` logs),
    ``batch_<metric>`` every ``update_freq`` batches (``"batch"``: each), and a histogram of
    every weight every ``histogram_freq`` epochs, (``write_graph``) the fused train step for
    the graph dashboard, and (``profile_batch=(first, last)``, counted from 1) those
    batches' kernels as a Chrome trace-event timeline,
    ``train/kiln_trace_<first>_<last>.json``; the first worker only. Not yet: images of
    weights and embeddings."""

    def __init__(self, log_dir="logs", histogram_freq=0, write_graph=True,
                 write_images=False, write_steps_per_second=False, update_freq="epoch",
                 profile_batch=0, embeddings_freq=0, embeddings_metadata=None):
        super().__init__()
        self.log_dir, self.histogram_freq = os.fspath(log_dir), int(histogram_freq)
        self.write_graph = write_graph
        batches = (profile_batch, profile_batch) if isinstance(profile_batch, int) else \
            tuple(int(b) for b in (profile_batch.split(",") if isinstance(profile_batch, str)
                                   else profile_batch))
        if len(batches) != 2 or batches[0] > batches[1]:
            raise ValueError(f"TensorBoard: profile_batch must be a batch number or a pair "
                             f"(first, last); received {profile_batch!r}")
        self.profile_batch, self._profile = batches, None
        self.update_freq = 1 if update_freq == "batch" else update_freq
        self._writers: dict = {}
        self._step = 0

    def _writer(self, run: str):
        from .. import summary
        if run not in self._writers:
            self._writers[run] = summary.create_file_writer(os.path.join(self.log_dir, run))
        return self._writers[run]

    def _scalars(self, run: str, prefix: str, logs: dict, step: int) -> None:
        from .. import summary
        with self._writer(run).as_default(step=step):
            for k, v in logs.items():
                summary.scalar(f"{prefix}{k}", float(v))

    def on_train_begin(self, logs=None):
        self._step = 0

    def on_train_batch_begin(self, batch, logs=None):
        if self._step + 1 == self.profile_batch[0] and self.profile_batch[0] > 0:
            from ..debugging import Profile
            self._profile = Profile().__enter__()

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        if self._profile is not None and self._step == self.profile_batch[1]:
            self._profile.__exit__(None, None, None)
            if _chief(self.model):
                first, last = self.profile_batch
                os.makedirs(os.path.join(self.log_dir, "train"), exist_ok=True)
                self._profile.write_trace(os.path.join(
                    self.log_dir, "train", f"kiln_trace_{first}_{last}.json"))
            self._profile = None
        if self._step == 1 and self.write_graph and _chief(self.model) and \
                self.model.train_function is not None:  # compiled by the first batch
            from .. import summary
            with self._writer("train").as_default():
                summary.graph(self.model.train_function)
        if isinstance(self.update_freq, int) and _chief(self.model) and \
                self._step % self.update_freq == 0:
            self._scalars("train", "batch_", logs or {}, self._step)

    def on_epoch_end(self, epoch, logs=None):
        if not _chief(self.model):
            return
        logs = logs or {}
        self._scalars("train", "epoch_", {k: v for k, v in logs.items()
                                          if not k.startswith("val_")}, epoch)
        val = {k[4:]: v for k, v in logs.items() if k.startswith("val_")}
        if val:
            self._scalars("validation", "epoch_", val, epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            from .. import summary
            with self._writer("train").as_default(step=epoch):
                for w in self.model.weights:
                    summary.histogram(w.name.split(":")[0], w.numpy())

    def on_train_end(self, logs=None):
        for w in self._writers.values():
            w.close()
        self._writers = {}
