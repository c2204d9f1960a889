"""``tf.train.Checkpoint`` and ``tf.train.CheckpointManager``: the state of an object graph
(models and layers, optimizers with their slots and step, plain variables, nested
checkpoints and modules) saved and restored by structure, not by variable names.

A checkpoint is one safetensors file (``<prefix>.safetensors``: a JSON header of every
tensor's dtype, shape and offsets, checked by the safetensors library, then raw data; no
code, nothing unpickled), each value under its path in the graph: ``model/weights/3``,
``optimizer/iterations``, ``model/weights/3/.OPTIMIZER_SLOT/optimizer/m``. Restoring reads
only the values that match a live variable of the same shape and dtype. Values for
variables that do not exist yet — a model whose layers build on their first call, an
optimizer before its first update — wait and are assigned when those variables are made,
as TensorFlow's deferred restoration does.
"""

from __future__ import annotations

import json
import os

import numpy as np

from compiler import dtypes as dt
from runtime.files import write_atomic

from .variables import Variable

SUFFIX = ".safetensors"
STATE = "checkpoint"  # a CheckpointManager's list of checkpoints in its directory
MAX_STATE_BYTES = 1 << 20


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or does not fit the objects restored from it."""


def _walk(name: str, obj, out: dict, seen: set) -> None:
    """Every variable reachable from ``obj``, by path (slots after the variables they
    belong to: ``_slots`` below)."""
    from .keras.optimizers import Optimizer
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, Variable):
        out[name] = obj
    elif isinstance(obj, Optimizer):
        out[f"{name}/iterations"] = obj._iterations
        out[f"{name}/learning_rate"] = obj._lr
    elif isinstance(obj, Checkpoint):
        for k, v in obj._objects.items():
            _walk(f"{name}/{k}" if name else k, v, out, seen)
    elif hasattr(obj, "weights") and hasattr(obj, "trainable_weights"):  # a Keras layer
        for i, w in enumerate(obj.weights):
            out[f"{name}/weights/{i}"] = w
    elif hasattr(obj, "variables"):  # a tf.Module
        for i, v in enumerate(obj.variables):
            out[f"{name}/variables/{i}"] = v
    else:
        raise TypeError(f"Checkpoint: {name!r} is a {type(obj).__name__}; expected a "
                        f"Variable, a Keras model or layer, an optimizer, a tf.Module or a "
                        f"Checkpoint")


def _optimizers(obj, seen=None) -> list:
    from .keras.optimizers import Optimizer
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    if isinstance(obj, Optimizer):
        return [obj]
    if isinstance(obj, Checkpoint):
        return [o for v in obj._objects.values() for o in _optimizers(v, seen)]
    return []


def _slots(variables: dict, optimizers: list) -> dict:
    """Slot variables, under the path of the variable they belong to."""
    by_id = {id(v): k for k, v in variables.items()}
    out = {}
    for opt in optimizers:
        for vid, slots in opt._slots.items():
            if vid in by_id:
                for slot_name, slot in slots.items():
                    out[f"{by_id[vid]}/.OPTIMIZER_SLOT/{opt.name}/{slot_name}"] = slot
    return out


class Checkpoint:
    """``Checkpoint(model=m, optimizer=opt, step=v)``: ``save``/``write`` and
    ``restore``/``read`` the state of those objects."""

    def __init__(self, root=None, **kwargs):
        if root is not None:
            kwargs["root"] = root
        self._objects = dict(kwargs)
        for k, v in kwargs.items():
            setattr(self, k, v)
        self.save_counter = Variable(np.int64(0), trainable=False, name="save_counter")

    def _state(self) -> dict:
        variables: dict = {}
        _walk("", self, variables, set())
        return variables | _slots(variables, _optimizers(self))

    def write(self, file_prefix) -> str:
        """Write the state to ``file_prefix`` (``.safetensors`` added); returns the prefix."""
        from safetensors.numpy import save
        prefix = os.fspath(file_prefix)
        state = self._state()
        state["save_counter"] = self.save_counter
        data = save({k: np.array(v.numpy(), order="C") for k, v in state.items()},
                    metadata={"format": "kiln-checkpoint", "version": "1"})
        write_atomic(prefix + SUFFIX, data)
        return prefix

    def save(self, file_prefix) -> str:
        """Write the state to ``<file_prefix>-<n>``, n counting this object's saves."""
        self.save_counter.assign_add(np.int64(1))
        return self.write(f"{os.fspath(file_prefix)}-{int(self.save_counter.numpy())}")

    def read(self, save_path) -> LoadStatus:
        return self.restore(save_path, counter=False)

    def restore(self, save_path, counter=True) -> LoadStatus:
        """Assign every variable its saved value (now, or when it is made: deferred);
        ``save_path=None`` restores nothing (a first run)."""
        status = LoadStatus(self)
        if save_path is None:
            return status
        path = os.fspath(save_path)
        path = path if path.endswith(SUFFIX) else path + SUFFIX
        saved = _open(path)
        status._saved = set(saved.keys())
        for key, var in self._state().items():
            if key in status._saved:
                var.assign(_value(saved, key, var, path))
                status._matched.add(key)
        if "save_counter" in status._saved:  # (read() leaves this object's count alone)
            if counter:
                self.save_counter.assign(_value(saved, "save_counter", self.save_counter,
                                                path))
            status._matched.add("save_counter")
        _defer(self, saved, path, status)
        return status


class LoadStatus:
    """What a restore matched: ``assert_consumed()`` (every saved value restored, every
    variable given one), ``assert_existing_objects_matched()``, ``expect_partial()``."""

    def __init__(self, checkpoint: Checkpoint):
        self._checkpoint, self._saved, self._matched = checkpoint, set(), set()

    def assert_consumed(self) -> LoadStatus:
        left = sorted(self._saved - self._matched)
        if left:
            raise AssertionError(f"unrestored values in the checkpoint ({len(left)}): "
                                 f"{left[:8]}{' ...' if len(left) > 8 else ''} (objects not "
                                 f"made yet, or not in this Checkpoint)")
        return self.assert_existing_objects_matched()

    def assert_existing_objects_matched(self) -> LoadStatus:
        if not self._saved:
            return self
        missing = sorted(k for k in self._checkpoint._state() if k not in self._matched)
        if missing:
            raise AssertionError(f"variables with no value in the checkpoint: {missing[:8]}")
        return self

    def expect_partial(self) -> LoadStatus:
        return self

    def run_restore_ops(self, session=None) -> None:
        pass


def _open(path: str):
    from safetensors import SafetensorError, safe_open
    try:
        f = safe_open(path, framework="np")
        if (f.metadata() or {}).get("format") != "kiln-checkpoint":
            raise CheckpointError(f"{path}: not a Kiln checkpoint")
        return f
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint") from None
    except (SafetensorError, OSError, ValueError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"{path}: damaged checkpoint ({e})") from None


def _value(saved, key: str, var, path: str) -> np.ndarray:
    """The saved value of ``var``, its shape and dtype checked before it is read."""
    from safetensors import SafetensorError
    try:
        sl = saved.get_slice(key)
        shape, dtype = tuple(sl.get_shape()), sl.get_dtype()
        want = np.dtype(var.dtype.np)
        if shape != tuple(var.shape) or SAFETENSORS_DTYPES.get(dtype) != want:
            raise CheckpointError(f"{path}: {key} is {dtype}{list(shape)}; the variable "
                                  f"{var.name} is {want}{list(var.shape)}")
        return saved.get_tensor(key)
    except SafetensorError as e:
        raise CheckpointError(f"{path}: damaged value {key} ({e})") from None


# safetensors' dtype codes (checkpoints and SavedModel values)
SAFETENSORS_DTYPES = {code: np.dtype(name) for code, name in (
    ("F16", "float16"), ("F32", "float32"), ("F64", "float64"), ("I8", "int8"),
    ("I16", "int16"), ("I32", "int32"), ("I64", "int64"), ("U8", "uint8"), ("BOOL", "bool"))} | {
    "BF16": dt.bf16.np}


def _defer(ckpt: Checkpoint, saved, path: str, status: LoadStatus) -> None:
    """Saved values whose variables do not exist yet wait on their owners: a layer takes
    its own when its weights are made (``Layer.__call__``), an optimizer its slots when it
    builds them."""
    left = status._saved - status._matched - {"save_counter"}
    if not left:
        return
    for name, obj in ckpt._objects.items():
        if hasattr(obj, "weights") and any(k.startswith(f"{name}/weights/") for k in left):
            obj._pending_restore = (ckpt, saved, path, status, name)
    for opt in _optimizers(ckpt):
        opt._pending_restore = (ckpt, saved, path, status, None)


def apply_pending(obj) -> None:
    """Assign ``obj`` (a layer or optimizer whose variables were just made) the values a
    restore left for them."""
    from . import tracing
    ckpt, saved, path, status, name = obj._pending_restore
    state = ckpt._state()
    left = [k for k in status._saved - status._matched if k in state]
    with tracing.active(None):  # (inside a trace: assigned now, not recorded)
        for key in left:
            state[key].assign(_value(saved, key, state[key], path))
            status._matched.add(key)
    def mine(key):  # a layer's weights under its name; an optimizer's slots anywhere
        return key.startswith(f"{name}/") if name is not None else \
            f"/.OPTIMIZER_SLOT/{obj.name}/" in key
    if not any(mine(k) for k in status._saved - status._matched):
        obj._pending_restore = None  # nothing left for it: no more work on its calls


class CheckpointManager:
    """Numbered checkpoints in ``directory``, at most ``max_to_keep`` of them (the oldest
    deleted first); ``latest_checkpoint`` is the newest one's prefix."""

    def __init__(self, checkpoint: Checkpoint, directory, max_to_keep=5,
                 checkpoint_name="ckpt"):
        self.checkpoint, self.directory = checkpoint, os.fspath(directory)
        self.max_to_keep, self.checkpoint_name = max_to_keep, checkpoint_name
        os.makedirs(self.directory, exist_ok=True)
        self._paths = _state(self.directory)

    @property
    def checkpoints(self) -> list:
        return list(self._paths)

    @property
    def latest_checkpoint(self) -> str | None:
        return self._paths[-1] if self._paths else None

    def save(self, checkpoint_number=None) -> str:
        prefix = os.path.join(self.directory, self.checkpoint_name)
        if checkpoint_number is None:
            path = self.checkpoint.save(prefix)
        else:
            path = self.checkpoint.write(f"{prefix}-{int(checkpoint_number)}")
        self._paths = [p for p in self._paths if p != path] + [path]
        while self.max_to_keep is not None and len(self._paths) > self.max_to_keep:
            old = self._paths.pop(0)
            if os.path.exists(old + SUFFIX):
                os.unlink(old + SUFFIX)
        write_atomic(os.path.join(self.directory, STATE), json.dumps(
            {"model_checkpoint_path": path, "all_model_checkpoint_paths": self._paths}))
        return path


def _state(directory: str) -> list:
    path = os.path.join(directory, STATE)
    if not os.path.exists(path) or os.path.getsize(path) > MAX_STATE_BYTES:
        return []
    try:
        with open(path) as f:
            paths = json.load(f).get("all_model_checkpoint_paths", [])
    except (ValueError, OSError, AttributeError):
        return []
    return [p for p in paths if isinstance(p, str) and os.path.exists(p + SUFFIX)]


def latest_checkpoint(checkpoint_dir) -> str | None:
    """The newest checkpoint a CheckpointManager wrote in ``checkpoint_dir`` (or None)."""
    paths = _state(os.fspath(checkpoint_dir))
    return paths[-1] if paths else None

