"""``Variable``: mutable state that ``@function`` captures by reference and updates in place."""

from __future__ import annotations

import contextlib
import threading

import numpy as np

from compiler import dtypes as dt
from compiler.errors import DTypeError, ShapeError
from runtime.buffer import Buffer

from . import tape, tracing
from .errors import TracingError
from .tensor import Tensor, TensorShape, constant_array


class Variable:
    """A tensor-valued variable, as ``tf.Variable``.

    Eager reads return a snapshot; ``assign``, ``assign_add`` and ``assign_sub`` update the
    value in place. Inside ``@function`` the variable is an input of the traced program by
    reference, and assignments become outputs written back into the same buffer, so a later
    eager read sees them.

    Args:
        initial_value: a tensor, numpy array, Python value, or a zero-argument callable
            returning one.
        trainable: whether optimizers and ``GradientTape`` watch it (default True).
        name: a name; shown as ``name:0``.
        dtype: convert the initial value to this dtype.

    Example:
        >>> v = framework.Variable([1.0, 2.0], name="v")
        >>> v.assign_add([1.0, 1.0]).numpy()
        array([2., 3.], dtype=float32)
    """

    def __init__(self, initial_value, trainable: bool = True, name: str | None = None,
                 dtype=None, shape=None):
        trace = tracing.current()
        if trace is not None and not trace.allow_variable_creation:
            raise TracingError(
                "Variable", "a @function may create variables only on its first trace; this "
                "call retraced and created another. Create the variable once, outside the "
                "function (or in __init__ of the object that owns it)", tracing.where())
        if isinstance(initial_value, Tensor) and initial_value.is_symbolic:
            # Computed inside the trace: lift it out if it needs no function argument.
            value = initial_value._trace.evaluate(initial_value)
            if value is None:
                raise TracingError("Variable", "the initial value depends on the function's "
                                   "arguments; initialize it from constants or an initializer",
                                   tracing.where())
            initial_value = value
        with tracing.active(None):  # the initial value is computed eagerly
            if callable(initial_value):
                initial_value = initial_value()
            value = constant_array(initial_value, dt.as_dtype(dtype) if dtype else None,
                                   "Variable").copy()
        if shape is not None and tuple(shape) != value.shape:
            raise ShapeError("Variable", f"initial value has shape {value.shape}; "
                                         f"expected {tuple(shape)}", tracing.where())
        from .distribute import distributed
        strategy = distributed()
        if strategy is not None:  # made in a multi-worker scope: every worker starts as rank 0
            value = strategy._broadcast(value)
        self.trainable = bool(trainable)
        from .module import scoped
        self._name = scoped(name or "Variable")
        self._lock = threading.RLock()  # (re-entered: assign reads _value under it)
        self._store = Buffer(value)     # the host array, and a device copy CUDA calls keep
        if trace is not None:
            trace.created_variables.append(self)

    # -- description --
    @property
    def name(self) -> str:
        return f"{self._name}:0"

    @property
    def dtype(self) -> dt.DType:
        return dt.from_numpy(self._host.dtype)

    @property
    def shape(self) -> TensorShape:
        return TensorShape(self._host.shape)

    @property
    def ndim(self) -> int:
        return self._host.ndim

    # -- storage: a runtime Buffer (host array, and a device copy CUDA calls keep current) --
    @property
    def _host(self) -> np.ndarray:
        """The host array as it is (its shape and dtype; not brought up to date)."""
        return self._store.host_array

    @property
    def _value(self):
        """The host array, brought up to date from the device if a CUDA function wrote it
        last. Whoever takes it may write it, so the device copy is dropped."""
        return self._store.for_writing()

    @_value.setter
    def _value(self, array):
        self._store = Buffer(array)

    def _device_array(self, memory):
        """The value on the device (copied there once; kept while only CUDA functions use
        it)."""
        return self._store.on(memory)

    def _device_written(self, array, memory) -> None:
        """A CUDA function computed the new value into ``array``."""
        self._store.device_wrote(array, memory)

    def __repr__(self) -> str:
        body = np.array2string(self._value, separator=", ", prefix="    numpy=array(")
        return (f"<framework.Variable '{self.name}' shape={tuple(self.shape)} "
                f"dtype={self.dtype.tf_name}, numpy=array({body}, dtype={self._value.dtype})>")

    # -- reading --
    def _read(self) -> Tensor:
        """The value as an op input: symbolic inside a trace, else the live buffer (cast to
        a layer's compute dtype inside its call under a mixed policy: ``autocast``)."""
        trace = tracing.current()
        if trace is None:
            if not tape.active():
                t = Tensor(self._value)
                return t if not _autocast.dtypes or _autocast.dtypes[-1] is None else \
                    self._autocast(t)
            t = Tensor(self._value.copy())  # a tape keeps it: later assigns must not change it
        else:
            t = trace.variable_value(self)
        tape.on_variable_read(self, t)
        return self._autocast(t) if _autocast.dtypes and _autocast.dtypes[-1] is not None \
            else t

    def _autocast(self, t: Tensor) -> Tensor:
        to = _autocast.dtypes[-1]
        if self._host.dtype != np.float32 or to is dt.f32:
            return t
        from .math_ops import cast
        return cast(t, to)

    def value(self) -> Tensor:
        """A snapshot of the current value (symbolic inside a trace)."""
        t = self._read()
        return t if t.is_symbolic or tape.active() else Tensor(self._value.copy())

    read_value = value

    def numpy(self) -> np.ndarray:
        if tracing.current() is not None:
            raise TracingError(".numpy()", "a variable read inside @function has no value at "
                               "trace time; return it from the function instead",
                               tracing.where())
        return self._value.copy()

    def __array__(self, dtype=None, copy=None):
        return self.numpy() if dtype is None else self.numpy().astype(dtype)

    # -- writing --
    def assign(self, value, read_value: bool = True):
        """Set the value (in place); returns the variable."""
        from .tensor import as_operand
        v = as_operand(value, self.dtype)
        trace = tracing.current()
        if trace is not None:
            from .array_ops import _to_tensor
            t = _to_tensor(v, self.dtype)
            self._check(t.dtype, tuple(t.shape))
            self._read()  # make the variable an input, so it has a place to be written back
            trace.var_values[id(self)] = t
            return self
        arr = v._value if isinstance(v, Tensor) else np.asarray(v.value, self._value.dtype)
        self._check(dt.from_numpy(arr.dtype), arr.shape)
        with self._lock:
            self._value[...] = arr
        return self

    def _check(self, dtype, shape):
        if dtype is not self.dtype:
            raise DTypeError("assign", f"variable {self.name} is {self.dtype.tf_name}; "
                                       f"received {dtype.tf_name}", tracing.where())
        if tuple(shape) != self._host.shape:
            raise ShapeError("assign", f"variable {self.name} has shape {self._host.shape}; "
                                       f"received {tuple(shape)}", tracing.where())

    def assign_add(self, delta, read_value: bool = True):
        return self.assign(self._read() + delta)

    def assign_sub(self, delta, read_value: bool = True):
        return self.assign(self._read() - delta)

    # -- arithmetic reads the value --
    def __getattr__(self, name):
        # Tensor methods and operators (x.T, x[0], ...) act on the current value.
        if name.startswith("__") or name in ("_value", "_host", "_store",
                                             "_name", "_lock", "trainable"):
            raise AttributeError(name)
        return getattr(self._read(), name)

    # Equality and hashing stay by identity (unlike tensors), so variables work in sets,
    # dicts and ``in`` tests; compare values with framework.equal(v, x).
    def __bool__(self):
        return bool(self._read())


def _forward(name):
    def method(self, *args):
        return getattr(self._read(), name)(*args)
    method.__name__ = name
    return method


for _op in ("add radd sub rsub mul rmul truediv rtruediv floordiv rfloordiv mod rmod pow rpow "
            "matmul rmatmul neg pos abs invert and rand or ror xor rxor ne lt le gt ge "
            "getitem float int index len iter format").split():
    setattr(Variable, f"__{_op}__", _forward(f"__{_op}__"))


class _Autocast(threading.local):
    dtypes: list

    def __init__(self):
        self.dtypes = []


_autocast = _Autocast()


@contextlib.contextmanager
def autocast(dtype):
    """Inside, float32 variables are read as ``dtype`` (None: as they are): a layer's call
    under a mixed policy (keras/mixed_precision.py)."""
    _autocast.dtypes.append(dtype)
    try:
        yield
    finally:
        _autocast.dtypes.pop()
