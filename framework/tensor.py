"""``Tensor``: eager (over a numpy array) or symbolic (a value in a trace being built).

Dtype rules: ops on two tensors need equal dtypes (no implicit promotion, as in TensorFlow:
cast explicitly). Python scalars, lists and numpy arrays that meet a tensor adopt its dtype,
so ``x * 2`` and ``x + np.ones(3)`` keep ``x``'s dtype; a Python float never enters an
integer tensor. On their own, Python floats become float32, ints int32 and bools bool;
numpy arrays keep their dtype (so float64 arrays stay float64 until cast).
"""

from __future__ import annotations

import numpy as np

from compiler import dtypes as dt
from compiler.errors import DTypeError
from compiler.ir import Literal, Sym, Value

from . import tracing
from .errors import TracingError


class TensorShape(tuple):
    """A shape as TensorFlow shows it: a tuple whose unknown dims are ``None``."""

    def as_list(self) -> list:
        return list(self)

    @property
    def rank(self) -> int:
        return len(self)

    @property
    def ndims(self) -> int:
        return len(self)

    def is_fully_defined(self) -> bool:
        return all(d is not None for d in self)

    def num_elements(self) -> int | None:
        return int(np.prod(self)) if self.is_fully_defined() else None

    def __repr__(self) -> str:
        return f"TensorShape({list(self)})"


class Tensor:
    """A multi-dimensional array with a dtype; see the module docstring for dtype rules.

    Eager tensors wrap a numpy array (``t.numpy()``, ``np.asarray(t)``); inside a
    ``@function`` trace, tensors are symbolic and record ops into the graph.

    Example:
        >>> x = framework.constant([[1.0, 2.0]])
        >>> (x * 2 + 1).numpy()
        array([[3., 5.]], dtype=float32)
    """

    __slots__ = ("_host", "_buf", "_sym", "_trace", "_keras_mask", "__weakref__")
    __array_priority__ = 100  # numpy defers ndarray + Tensor to Tensor.__radd__

    def __init__(self, value=None, sym: Value | None = None, trace=None, buffer=None):
        self._host = value      # the numpy array (from _buf when first read)
        self._buf = buffer      # a runtime Buffer: a value a compiled function left on a GPU
        self._sym = sym
        self._trace = trace
        self._keras_mask = None  # Keras: which time steps a layer's output holds (bool)

    @property
    def _value(self) -> np.ndarray:
        """The host array; a result left on the GPU is copied back once, when first read."""
        if self._host is None and self._buf is not None:
            self._host = self._buf.host()
        return self._host

    def _array(self):
        """The host array, or the device array while the value lives only there."""
        return self._host if self._host is not None or self._buf is None else self._buf.current

    @property
    def device(self) -> str:
        """Where the value lives, as TensorFlow names it."""
        where = "GPU" if self._buf is not None else "CPU"
        return f"/job:localhost/replica:0/task:0/device:{where}:0"

    # -- description --
    @property
    def is_symbolic(self) -> bool:
        return self._sym is not None

    @property
    def dtype(self) -> dt.DType:
        if self._sym is not None:
            return self._sym.type.dtype
        return dt.from_numpy(self._array().dtype)

    @property
    def shape(self) -> TensorShape:
        if self._sym is not None:
            return TensorShape(None if isinstance(d, Sym) else d for d in self._sym.type.shape)
        return TensorShape(self._array().shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    rank = ndim

    def get_shape(self) -> TensorShape:
        return self.shape

    @property
    def ir_type(self):
        """This tensor's IR type, with symbolic dims by name (``f32[N,784]``)."""
        from compiler.ir import TensorType
        return self._sym.type if self._sym is not None else TensorType(self._array().shape,
                                                                       self.dtype)

    def __format__(self, spec: str) -> str:
        """``f"{loss:.4f}"`` formats the value as numpy does (a scalar with any spec)."""
        if self._sym is not None:
            raise TracingError("format()", "a traced tensor has no value yet; use "
                               "framework.print inside @function", tracing.where())
        return format(self._value if self._value.ndim else self._value.item(), spec)

    def numpy(self) -> np.ndarray:
        """The value as a numpy array (a copy). Not available while tracing."""
        if self._sym is not None:
            raise TracingError(".numpy()", "a traced tensor has no value yet; return it from "
                               "the function, or call .numpy() outside @function", tracing.where())
        return self._value.copy()

    def __array__(self, dtype=None, copy=None):
        if self._sym is not None:
            raise TracingError("np.asarray()", "a traced tensor has no value yet; use "
                               "framework ops inside @function", tracing.where())
        return self._value if dtype is None else self._value.astype(dtype)

    def __repr__(self) -> str:
        if self._sym is not None:
            return f"<framework.Tensor %{self._sym.name} shape={self._shape_text()} " \
                   f"dtype={self.dtype.tf_name}>"
        body = np.array2string(self._value, separator=" ")
        body = "\n" + body if "\n" in body else body  # TensorFlow's layout
        return f"framework.Tensor({body}, shape={self._shape_text()}, dtype={self.dtype.tf_name})"

    def _shape_text(self) -> str:
        s = tuple(self.shape)
        return "(" + ", ".join(str(d) for d in s) + ("," if len(s) == 1 else "") + ")"

    __str__ = __repr__

    # -- Python conversions: refused on traced tensors, with the fix in the message --
    def _static(self, what: str):
        if self._sym is not None:
            raise TracingError(
                what, "a traced tensor has no value at trace time; select values with "
                "framework.where(cond, x, y), or pass the value as a Python argument so it is "
                "static (each new value retraces)", tracing.where())
        return self._value

    def __bool__(self):
        v = self._static("bool() of a tensor (`if tensor:`, `and`, `or`, `not`)")
        if v.size != 1:
            raise DTypeError("bool()", f"the truth value of a tensor with {v.size} elements is "
                                       f"ambiguous; use reduce_any or reduce_all", tracing.where())
        return bool(v)

    def __int__(self):
        return int(self._static("int() of a tensor"))

    def __float__(self):
        return float(self._static("float() of a tensor"))

    def __index__(self):
        v = self._static("using a tensor as an index")
        if not dt.from_numpy(v.dtype).is_int:
            raise DTypeError("__index__", f"only integer tensors can be indices; received "
                                          f"{self.dtype.tf_name}", tracing.where())
        return int(v)

    def __len__(self):
        s = self.shape
        if not s:
            raise TypeError("len() of a scalar tensor")
        if s[0] is None:
            raise TracingError("len()", "the first dimension is not known at trace time; use "
                               "framework.shape(x)[0]", tracing.where())
        return s[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __hash__(self):
        raise TypeError("Tensor is unhashable (== is elementwise); use id(tensor) as a key")

    # Operators (x + y, x[i], x.T) are attached by operators.py, from the op layer.


# -- conversion ----------------------------------------------------------------------------------

_DEFAULT = {bool: dt.bool_, int: dt.i32, float: dt.f32}


def _python_dtype(x) -> dt.DType:
    for py, d in _DEFAULT.items():
        if type(x) is py:
            return d
    if isinstance(x, np.generic):
        d = dt.from_numpy(x.dtype)
        if d is not None:
            return d
    if isinstance(x, (bool, np.bool_)):
        return dt.bool_
    if isinstance(x, (int, np.integer)):
        return dt.i32
    return dt.f32


def _fits(value_kind: str, target: dt.DType) -> bool:
    """May a value of numpy kind ``value_kind`` adopt ``target``? (never float -> int)"""
    if target.is_bool:
        return value_kind == "b"
    if target.is_int:
        return value_kind in "iu"
    return value_kind in "iuf"


def array_dtype(np_dtype) -> dt.DType | None:
    """The Kiln dtype a numpy array of ``np_dtype`` becomes: its own, else int64 for other
    integers (uint8 images) and float32 for other floats; None for the rest."""
    d = dt.from_numpy(np_dtype)
    if d is None:
        d = {"i": dt.i64, "u": dt.i64, "f": dt.f32}.get(np.dtype(np_dtype).kind)
    return d


def constant_array(value, dtype: dt.DType | None, what: str = "constant") -> np.ndarray:
    """A Python/numpy value as a numpy array of a Kiln dtype (the conversion rules above)."""
    if isinstance(value, Tensor):
        arr = value._static(what)
    else:
        arr = np.asarray(value)
    if dtype is None:
        if isinstance(value, np.ndarray) or isinstance(value, np.generic) or \
                isinstance(value, Tensor):
            dtype = array_dtype(arr.dtype)
        else:
            kind = arr.dtype.kind
            dtype = {"b": dt.bool_, "i": dt.i32, "u": dt.i32, "f": dt.f32}.get(kind)
        if dtype is None:
            raise DTypeError(what, f"cannot make a tensor from {type(value).__name__} with "
                                   f"numpy dtype {arr.dtype}", tracing.where())
    elif not _fits("f" if dt.is_narrow_np(arr.dtype) else arr.dtype.kind, dtype) and arr.size:
        raise DTypeError(what, f"cannot convert {_short(value)} to a {dtype.tf_name} tensor",
                         tracing.where())
    return np.require(np.asarray(arr, dtype=dtype.np), requirements="C")


def _short(value) -> str:
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."


def as_operand(x, like: dt.DType | None = None):
    """Turn an op input into a Tensor or (for Python scalars) a typed Literal.

    ``like`` is the dtype of the tensor this value meets, adopted by Python/numpy values.
    """
    if isinstance(x, (Tensor, Literal)):
        return x
    if isinstance(x, _variable_class()):
        return x._read()
    if isinstance(x, (bool, int, float, np.generic)) and not isinstance(x, np.ndarray):
        target = like or _python_dtype(x)
        kind = np.asarray(x).dtype.kind
        if not _fits(kind, target):
            raise DTypeError("operand", f"cannot use {x!r} ({type(x).__name__}) with a "
                                        f"{target.tf_name} tensor; cast explicitly",
                             tracing.where())
        return Literal(x, target)
    return Tensor(constant_array(x, like))


def is_tensor_like(x) -> bool:
    return isinstance(x, (Tensor, _variable_class()))


def _variable_class():
    global _Variable
    if _Variable is None:
        from .variables import Variable
        _Variable = Variable
    return _Variable


_Variable = None
