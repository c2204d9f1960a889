"""``compile``/``fit``/``evaluate``/``predict`` for models.

The train step — forward, loss, gradients, optimizer update, metric updates — is one
``@framework.function`` traced with the batch dimension left symbolic, so every batch size
(the final short batch included) runs the same compiled kernels. ``model.train_function`` is
its concrete function: ``model.train_function.ir("fused")`` prints the fused step.
"""

from __future__ import annotations

import functools

import numpy as np

from .. import array_ops as A
from .. import distribute, nest
from .. import math_ops as M
from ..data import Dataset
from ..specs import TensorSpec
from ..tape import GradientTape
from ..tensor import Tensor
from . import callbacks as C
from . import losses as L
from . import metrics as Mt
from . import optimizers


def _in_scope(method):
    """Runs ``method`` in the scope of the strategy the model was made under."""
    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with self.distribute_strategy.scope():
            return method(self, *args, **kwargs)
    return run


class Trainer:
    """The training half of ``Model``."""

    def __init__(self):
        self.optimizer = None
        self.compiled_loss = None
        self.stop_training = False
        self.history = None
        self.run_eagerly = False  # predict works on a model never compiled, as in Keras
        self._output_names = None
        self._distribution_strategy = distribute.get_strategy()  # the scope it was made in
        self._reset_functions()

    @property
    def distribute_strategy(self):
        return self._distribution_strategy

    def _reset_functions(self):
        self._functions: dict = {}
        self.train_function = self.test_function = self.predict_function = None

    # -- compile --
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None,
                weighted_metrics=None, run_eagerly=False, steps_per_execution=1,
                jit_compile=None, auto_scale_loss=True, **kwargs):
        """Set the optimizer, loss(es) and metrics; ``loss`` and ``metrics`` may be names,
        objects, or (for several outputs) lists or dicts by output name. Under the
        ``mixed_float16`` policy the optimizer scales the loss (``LossScaleOptimizer``)."""
        from .mixed_precision import LossScaleOptimizer
        self.optimizer = optimizers.get(optimizer)
        if auto_scale_loss and getattr(self, "_dtype_policy", None) is not None and \
                self._dtype_policy.name == "mixed_float16" and \
                not isinstance(self.optimizer, LossScaleOptimizer):
            self.optimizer = LossScaleOptimizer(self.optimizer)
        self.loss = loss
        self._loss_weights = loss_weights
        self._metric_spec = metrics
        self.run_eagerly = bool(run_eagerly)
        self._output_names = None
        self.compiled_loss = None
        self.compiled_metrics = None
        self.loss_tracker = Mt.Mean("loss")
        self._reset_functions()

    def _outputs_named(self, y_pred):
        """The outputs' names in flatten order: a dict output's keys, a functional model's
        output layers, else ``output_1``, ``output_2``, ... (as Keras names them)."""
        if isinstance(y_pred, dict):
            return [str(k) for k in sorted(y_pred, key=repr)]
        n = len(nest.flatten(y_pred))
        if getattr(self, "outputs", None) and len(self.outputs) == n:
            return [k.layer.name for k in self.outputs]
        return [f"output_{i + 1}" for i in range(n)]

    @property
    def output_names(self) -> list:
        if self._output_names is not None:
            return list(self._output_names)
        if getattr(self, "_output_structure", None) is not None:
            return self._outputs_named(self._output_structure)
        return []

    def _targets(self, y):
        """The targets in the order of the outputs: a dict is matched by output name."""
        names = self._output_names
        if isinstance(y, dict):
            missing = [n for n in names if n not in y]
            unknown = sorted(str(k) for k in y if k not in names)
            if missing or unknown:
                what = f"no target for outputs {missing}" if missing else \
                    f"targets for unknown outputs {unknown}"
                raise ValueError(f"{self.name}: {what}; the model's outputs are {names} "
                                 f"(received target keys {sorted(map(str, y))})")
            return [y[n] for n in names]
        flat = nest.flatten(y)
        if len(flat) != len(names):
            raise ValueError(f"{self.name}: expected targets for {len(names)} outputs "
                             f"{names}; received {len(flat)}")
        return flat

    def _per_output(self, spec, names, what):
        if isinstance(spec, dict):
            unknown = set(spec) - set(names)
            if unknown:
                raise ValueError(f"compile: {what} for unknown outputs {sorted(unknown)}; "
                                 f"outputs are {names}")
            return [spec.get(n) for n in names]
        if isinstance(spec, (list, tuple)) and what != "metrics":
            if len(spec) != len(names):
                raise ValueError(f"compile: {len(spec)} {what} for {len(names)} outputs "
                                 f"{names}")
            return list(spec)
        return [spec] * len(names)

    def _build_compiled(self, y_pred):
        """Losses and metrics per output, created once the number of outputs is known."""
        if self.compiled_loss is not None:
            return
        if self.loss is None:
            raise ValueError(f"{self.name}: call compile(optimizer, loss) before fit or "
                             f"evaluate")
        names = self._outputs_named(y_pred)
        self._output_names = names
        self.compiled_loss = [L.get(x) if x is not None else None
                              for x in self._per_output(self.loss, names, "loss")]
        weights = self._loss_weights
        self._output_weights = self._per_output(weights, names, "loss_weights") \
            if weights is not None else [1.0] * len(names)
        spec = self._metric_spec or []
        if isinstance(spec, dict):
            per = self._per_output(spec, names, "metrics")
        elif spec and isinstance(spec[0], (list, tuple)):
            per = list(spec)
        else:
            per = [spec] * len(names)
        self.compiled_metrics = []
        for i, (ms, loss) in enumerate(zip(per, self.compiled_loss)):
            for m in (ms if isinstance(ms, (list, tuple)) else [ms] if ms else []):
                metric = Mt.get(m, loss)
                if len(names) > 1 and not isinstance(m, Mt.Metric):
                    metric.name = f"{names[i]}_{metric.name}"
                self.compiled_metrics.append((i, metric))
        self._output_losses = [Mt.Mean(f"{n}_loss") for n in names] if len(names) > 1 else []

    @property
    def metrics(self) -> list:
        if self.compiled_loss is None:
            return []
        return [self.loss_tracker] + self._output_losses + [m for _, m in
                                                             self.compiled_metrics]

    @property
    def metrics_names(self) -> list:
        return [m.name for m in self.metrics]

    def reset_metrics(self):
        for m in self.metrics:
            m.reset_state()

    # -- steps (override train_step/test_step to customise, as in Keras) --
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None):
        self._build_compiled(y_pred)
        ys, ps = self._targets(y), nest.flatten(y_pred)
        total, parts = None, []
        for fn, w, yt, yp in zip(self.compiled_loss, self._output_weights, ys, ps):
            if fn is None:
                continue
            part = fn(yt, yp, sample_weight)
            parts.append(part)
            term = part * w if w != 1.0 else part
            total = term if total is None else total + term
        reg = self.losses
        if reg:
            total = total + M.add_n(reg) if len(reg) > 1 else total + reg[0]
        self._last_parts, self._last_loss = parts, total
        strategy = distribute.distributed()
        if strategy is not None:
            # this worker's share of the global batch: the gradients' sum over the workers
            # is then the gradient of the global batch's mean loss (uneven shards too)
            mine = M.cast(A.shape(nest.flatten(y_pred)[0])[0], total.dtype)
            (every,) = distribute.all_reduce([mine], strategy, "sum")
            total = total * M.divide_no_nan(mine, every)
            self._scaled_loss = total
        return total

    def compute_metrics(self, x, y, y_pred, sample_weight, loss=None):
        batch = M.cast(A.shape(nest.flatten(y_pred)[0])[0], "float32")
        if loss is not None and loss is getattr(self, "_scaled_loss", None):
            loss = self._last_loss  # the metric reads this worker's own mean loss
        self.loss_tracker.update_state(loss, sample_weight=batch)
        for tracker, part in zip(self._output_losses, self._last_parts):
            tracker.update_state(part, sample_weight=batch)
        ys, ps = self._targets(y), nest.flatten(y_pred)
        for i, m in self.compiled_metrics:
            m.update_state(ys[i], ps[i], sample_weight)
        strategy = distribute.distributed()
        if strategy is not None:  # every worker's state summed: the global values
            return Mt.synced_results(self.metrics, strategy)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        x, y, sample_weight = unpack(data)
        with GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x, y, y_pred, sample_weight)
            scaled = self.optimizer.scale_loss(loss)  # (loss scaling: mixed precision)
        variables = self.trainable_variables
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        return self.compute_metrics(x, y, y_pred, sample_weight, loss)

    def test_step(self, data):
        x, y, sample_weight = unpack(data)
        y_pred = self(x, training=False)
        loss = self.compute_loss(x, y, y_pred, sample_weight)
        return self.compute_metrics(x, y, y_pred, sample_weight, loss)

    def predict_step(self, data):
        x, _, _ = unpack(data)
        return self(x, training=False)

    def _function(self, kind, data):
        """The compiled step of ``kind`` for batches shaped like ``data`` (batch dim None)."""
        from ..function import function
        key = (kind, nest.structure_key(data, lambda a: (a.dtype.str, a.shape[1:])))
        fn = self._functions.get(key)
        if fn is None:
            step = getattr(self, f"{kind}_step")
            sig = [nest.map_structure(
                lambda a: TensorSpec((None,) + a.shape[1:], a.dtype), data)]
            fn = self._functions[key] = function(lambda d: step(d), input_signature=sig,
                                                 name=f"{kind}_function")
            if not self.run_eagerly:
                setattr(self, f"{kind}_function", fn.get_concrete_function())
        return fn

    def _run(self, kind, data):
        data = nest.map_structure(_batch_array, data)
        if self.run_eagerly:
            return getattr(self, f"{kind}_step")(nest.map_structure(Tensor, data))
        return self._function(kind, data)(data)

    # -- fit / evaluate / predict --
    @_in_scope
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_freq=1,
            validation_batch_size=None, **kwargs):
        """Train for ``epochs`` epochs; returns a ``History``."""
        if self.optimizer is None:
            raise ValueError(f"{self.name}: call compile(optimizer, loss) before fit")
        verbose = (1 if verbose == "auto" else verbose) if self.distribute_strategy.is_chief \
            else 0  # progress from the first worker only
        if validation_split and validation_data is None:
            if isinstance(x, Dataset):
                raise ValueError("fit: validation_split is not supported with a Dataset; "
                                 "pass validation_data")
            x, y, sample_weight, validation_data = _split(x, y, sample_weight,
                                                          validation_split)
        train = Batches(x, y, sample_weight, _batch_size("fit", batch_size), shuffle,
                        class_weight, steps_per_epoch)
        history = C.History()
        cbs = list(callbacks or [])
        cbs = ([C.ProgbarLogger()] if verbose else []) + cbs + [history]
        params = {"epochs": epochs, "steps": train.steps, "verbose": verbose}
        cb = C.CallbackList(cbs, self, params)
        self.stop_training, self._resume_epoch = False, 0
        self._build_from_data = lambda: self._build_from(train)
        cb.on_train_begin()
        initial_epoch = max(initial_epoch, self._resume_epoch)  # BackupAndRestore's
        logs = {}
        for epoch in range(initial_epoch, epochs):
            self.reset_metrics()
            cb.on_epoch_begin(epoch)
            step = 0
            for step, batch in enumerate(train.epoch()):
                cb.on_train_batch_begin(step)
                logs = _floats(self._run("train", batch))
                cb.on_train_batch_end(step, logs)
                if self.stop_training:
                    break
            params["steps"] = params["steps"] or step + 1
            epoch_logs = dict(logs)
            if validation_data is not None and (epoch + 1) % validation_freq == 0:
                vx, vy, vw = unpack(validation_data) if isinstance(
                    validation_data, (tuple, list)) else (validation_data, None, None)
                val = self.evaluate(vx, vy, batch_size=validation_batch_size or batch_size,
                                    sample_weight=vw, verbose=0, return_dict=True,
                                    _callbacks=cb)
                epoch_logs.update({f"val_{k}": v for k, v in val.items()})
            cb.on_epoch_end(epoch, epoch_logs)
            if self.stop_training:
                break
        if epochs > initial_epoch:  # (EMA: the averages become the weights, as Keras)
            self.optimizer.finalize_variable_values(self.trainable_variables)
        cb.on_train_end(logs)
        self.history = history
        history.model, history.params = self, params
        return history

    def _build_from(self, batches):
        """Make the weights of layers that build on their first call: an eager forward
        pass on one example of the data."""
        for batch in batches.epoch():
            x, _, _ = unpack(batch)
            self(nest.map_structure(lambda a: Tensor(a[:1]), x), training=False)
            return

    @_in_scope
    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict=False, _callbacks=None, **kwargs):
        """Loss and metrics over the data: a scalar, a list (``metrics_names`` order), or a
        dict with ``return_dict=True``."""
        verbose = (1 if verbose == "auto" else verbose) if self.distribute_strategy.is_chief \
            else 0  # progress from the first worker only
        batches = Batches(x, y, sample_weight, _batch_size("evaluate", batch_size), False, None,
                          steps)
        cb = _callbacks or C.CallbackList(callbacks or [], self, {"steps": batches.steps})
        self.reset_metrics()
        cb.on_test_begin()
        bar = C.Progbar(batches.steps, verbose=verbose) if verbose else None
        logs, n = {}, 0
        for n, batch in enumerate(batches.epoch(), 1):
            cb.on_test_batch_begin(n - 1)
            logs = _floats(self._run("test", batch))
            cb.on_test_batch_end(n - 1, logs)
            if bar:
                bar.update(n, logs)
        if bar:
            bar.update(n, logs, finalize=True)
        cb.on_test_end(logs)
        return _result(self, logs, return_dict)

    @_in_scope
    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None,
                **kwargs):
        """The model's outputs for ``x``, computed in batches, as numpy arrays."""
        batches = Batches(x, None, None, _batch_size("predict", batch_size), False, None, steps)
        outs = []
        strategy = distribute.distributed()
        for batch in batches.epoch():
            out = self._run("predict", batch)  # this worker's rows, then every worker's
            outs.append([t.numpy() if strategy is None else strategy.gather(t).numpy()
                         for t in nest.flatten(out)])
        if not outs:
            raise ValueError("predict: the input is empty")
        cat = [np.concatenate(col) for col in zip(*outs)]
        return nest.pack_sequence_as(out, cat)

    @_in_scope
    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None,
                       reset_metrics=True, return_dict=False):
        if reset_metrics:
            self.reset_metrics()
        data = _pack(_convert(x), _convert(y), _convert(sample_weight))
        if class_weight is not None:
            data = _pack(data[0], data[1], _class_weights(data[1], class_weight))
        return _result(self, _floats(self._run("train", data)), return_dict)

    @_in_scope
    def test_on_batch(self, x, y=None, sample_weight=None, reset_metrics=True,
                      return_dict=False):
        if reset_metrics:
            self.reset_metrics()
        data = _pack(_convert(x), _convert(y), _convert(sample_weight))
        return _result(self, _floats(self._run("test", data)), return_dict)

    @_in_scope
    def predict_on_batch(self, x):
        out = self._run("predict", (_convert(x),))
        return nest.map_structure(lambda t: t.numpy(), out)

    # -- saving (see saving.py) --
    def save(self, filepath, overwrite=True, save_format=None, **kwargs):
        from .saving import save_model
        save_model(self, filepath, overwrite)

    def export(self, filepath):
        """A SavedModel of the inference call ("serving_default"), as Keras 3's export:
        loadable by ``tf.saved_model.load`` without this model's code."""
        from ..saved_model import save
        save(self, filepath)

    def save_weights(self, filepath, overwrite=True, save_format=None):
        from .saving import save_weights
        save_weights(self, filepath)

    def load_weights(self, filepath, skip_mismatch=False, by_name=False):
        from .saving import load_weights
        load_weights(self, filepath)


def unpack(data):
    """``(x, y, sample_weight)`` from a batch given as x, (x,), (x, y) or (x, y, w)."""
    if isinstance(data, tuple) and not hasattr(type(data), "_fields"):
        if len(data) == 1:
            return data[0], None, None
        if len(data) == 2:
            return data[0], data[1], None
        if len(data) == 3:
            return data
    return data, None, None


def _batch_size(method, value) -> int:
    """Keras's default of 32, or the positive int given."""
    if value is None:
        return 32
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{method}: batch_size must be a positive integer; received "
                         f"batch_size={value!r}")
    return int(value)


def _pack(x, y, w):
    return (x,) if y is None else (x, y) if w is None else (x, y, w)


def _convert(x):
    if x is None:
        return None
    return nest.map_structure(_batch_array, x)


def _batch_array(a):
    """Float64 data becomes float32 (as Keras casts to the layers' dtype)."""
    if isinstance(a, Tensor) or hasattr(a, "numpy"):
        a = a.numpy()
    a = np.asarray(a)
    if a.dtype == np.float64:
        return a.astype(np.float32)
    if a.dtype == np.bool_:
        return a.astype(np.float32)
    return a


def _floats(logs) -> dict:
    return {k: float(np.asarray(v.numpy() if hasattr(v, "numpy") else v))
            for k, v in logs.items()}


def _result(model, logs, return_dict):
    if return_dict:
        return logs
    values = [logs[m] for m in model.metrics_names if m in logs]
    return values[0] if len(values) == 1 else values


def _class_weights(y, class_weight):
    labels = np.asarray(y)
    if labels.ndim > 1 and labels.shape[-1] > 1:
        labels = labels.argmax(-1)
    labels = labels.reshape(len(labels), -1)[:, 0].astype(np.int64)
    table = np.ones(max(max(class_weight) + 1, labels.max() + 1), np.float32)
    for k, v in class_weight.items():
        table[int(k)] = v
    return table[labels]


def _split(x, y, w, fraction):
    """The last ``fraction`` of the samples (before shuffling) become validation data."""
    n = len(nest.flatten(x)[0])
    cut = int(n * (1.0 - fraction))
    if cut <= 0 or cut >= n:
        raise ValueError(f"fit: validation_split={fraction} leaves no training or no "
                         f"validation samples out of {n}")

    def part(s, sl):
        return None if s is None else nest.map_structure(lambda a: np.asarray(a)[sl], s)
    head, tail = slice(0, cut), slice(cut, n)
    return part(x, head), part(y, head), part(w, head), \
        _pack(part(x, tail), part(y, tail), part(w, tail))


class Batches:
    """Batches of numpy arrays (or a Dataset's elements), one epoch per ``epoch()`` call;
    under a strategy with several workers, this worker's slice of each (global) batch."""

    def __init__(self, x, y, sample_weight, batch_size, shuffle, class_weight, steps):
        self.strategy = distribute.distributed()
        self.dataset = x if isinstance(x, Dataset) else None
        self.class_weight, self.shuffle, self.batch_size = class_weight, shuffle, batch_size
        self._iter = None
        if self.dataset is not None:
            card = self.dataset.cardinality()
            self.steps = steps or (card if card >= 0 else None)
            return
        if x is None:
            raise ValueError("expected input data x; received None")
        self.data = _pack(_convert(x), _convert(y), _convert(sample_weight))
        flat = nest.flatten(self.data)
        sizes = {len(a) for a in flat}
        if len(sizes) != 1:
            raise ValueError(f"x, y and sample_weight must have the same number of samples; "
                             f"received {sorted(len(a) for a in flat)}")
        self.n = sizes.pop()
        self.steps = steps or -(-self.n // batch_size)
        if class_weight is not None and y is not None:
            self.data = _pack(self.data[0], self.data[1],
                              _class_weights(self.data[1], class_weight))

    def epoch(self):
        if self.strategy is None:
            yield from self._global()
            return
        for batch in self._global():
            yield nest.map_structure(lambda a: a[self.strategy._shard(len(a))], batch)

    def _global(self):
        if self.dataset is not None:
            if self.steps is not None and self._iter is None and \
                    self.dataset.cardinality() < 0:  # infinite: keep one iterator
                self._iter = self.dataset.as_numpy_iterator()
            it = self._iter or self.dataset.as_numpy_iterator()
            for i, batch in enumerate(it):
                yield _as_tuple(batch)
                if self.steps is not None and i + 1 >= self.steps:
                    return
            return
        order = None if not self.shuffle else np.random.permutation(self.n) \
            if self.strategy is None else self.strategy._order(self.n)  # rank 0's order
        for s in range(0, self.n, self.batch_size):
            if order is None:
                sl = slice(s, s + self.batch_size)
            else:
                sl = order[s:s + self.batch_size]
            yield nest.map_structure(lambda a, sl=sl: a[sl], self.data)


def _as_tuple(batch):
    batch = nest.map_structure(_batch_array, batch)
    return tuple(batch) if isinstance(batch, list) and len(batch) in (2, 3) else batch
