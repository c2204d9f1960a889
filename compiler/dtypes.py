"""Element types of the IR: f16, bf16, f32, f64, i32, i64, bool (bfloat16 arrays are
ml_dtypes', the numpy dtype TensorFlow and JAX use).

A ``DType`` is an interned object: compare with ``is``. Dtype rules (see README): ops on two
tensors require equal dtypes (no implicit promotion, as in TensorFlow); a Python scalar adopts
the dtype of the tensor it meets, so ``x * 2.0`` stays f32 for an f32 ``x``.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np


class DType:
    """An element type (``framework.float32`` ...); interned, so compare with ``is``."""

    __slots__ = ("name", "np", "kind", "bits")

    def __init__(self, name: str, np_dtype, kind: str, bits: int):
        self.name = name          # IR spelling: "f32"
        self.np = np.dtype(np_dtype)
        self.kind = kind          # "f", "i" or "b"
        self.bits = bits

    @property
    def is_float(self) -> bool:
        return self.kind == "f"

    @property
    def is_int(self) -> bool:
        return self.kind == "i"

    @property
    def is_bool(self) -> bool:
        return self.kind == "b"

    @property
    def tf_name(self) -> str:
        if self.name == "bf16":
            return "bfloat16"
        return {"f": f"float{self.bits}", "i": f"int{self.bits}", "b": "bool"}[self.kind]

    def __repr__(self) -> str:
        return f"framework.{self.tf_name}"

    def __str__(self) -> str:
        return self.name

    def __reduce__(self):  # keeps identity through copy/pickle
        return (from_name, (self.name,))

    @property
    def is_narrow(self) -> bool:
        return self.kind == "f" and self.bits == 16

    def min(self):
        """Smallest value (``-inf`` for floats): the identity of ``max``."""
        return -np.inf if self.is_float else (False if self.is_bool else int(np.iinfo(self.np).min))

    def max(self):
        return np.inf if self.is_float else (True if self.is_bool else int(np.iinfo(self.np).max))


f16 = DType("f16", np.float16, "f", 16)
bf16 = DType("bf16", ml_dtypes.bfloat16, "f", 16)
f32 = DType("f32", np.float32, "f", 32)
f64 = DType("f64", np.float64, "f", 64)
i32 = DType("i32", np.int32, "i", 32)
i64 = DType("i64", np.int64, "i", 64)
bool_ = DType("bool", np.bool_, "b", 8)

ALL = (f16, bf16, f32, f64, i32, i64, bool_)
FLOATS = (f16, bf16, f32, f64)
NARROW = (f16, bf16)  # 16-bit floats: compiled code computes and accumulates them in f32
INTS = (i32, i64)
_BY_NAME = {d.name: d for d in ALL} | {d.tf_name: d for d in ALL}
_BY_NP = {d.np: d for d in ALL}


def from_name(name: str) -> DType:
    return _BY_NAME[name]


def is_dtype_name(name: str) -> bool:
    return name in _BY_NAME


def from_numpy(np_dtype) -> DType | None:
    """The DType of a numpy dtype, or None when Kiln has no such dtype."""
    return _BY_NP.get(np.dtype(np_dtype))


def as_dtype(x) -> DType:
    """Accept a DType, an IR or TensorFlow name (``"f32"``/``"float32"``) or a numpy dtype."""
    if isinstance(x, DType):
        return x
    if isinstance(x, str) and x in _BY_NAME:
        return _BY_NAME[x]
    try:
        d = from_numpy(x)
    except TypeError:
        d = None
    if d is None:
        names = ", ".join(d.tf_name for d in ALL)
        raise TypeError(f"dtype: expected one of {names}; received {x!r}")
    return d


def scalar_value(value, dtype: DType):
    """A Python scalar rounded to ``dtype`` (so f32 literals print and parse exactly)."""
    if dtype.is_bool:
        return bool(value)
    if dtype.is_int:
        return int(value)
    return float(dtype.np.type(value))


def is_narrow_np(np_dtype) -> bool:
    """Whether a numpy dtype is a 16-bit float (float16, or ml_dtypes' bfloat16, whose
    numpy kind is "V")."""
    d = np.dtype(np_dtype)
    return d == np.float16 or d == bf16.np
