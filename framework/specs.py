"""Argument handling for ``@function``: TensorSpec, flattening arguments into leaves, cache
keys, relaxing shapes, and naming symbolic dims."""

from __future__ import annotations

import numpy as np

from compiler import dtypes as dt
from compiler.errors import SignatureError
from compiler.ir import Sym, TensorType

from . import nest
from .tensor import Tensor, TensorShape, constant_array
from .variables import Variable


class TensorSpec:
    """Describes a tensor argument: a shape (``None`` for a dim known only at run time) and
    a dtype. ``input_signature=[TensorSpec([None, 784], float32)]`` traces once for every
    batch size.

    A ``None`` in the first dimension of several specs means the same size (the batch);
    other ``None`` dims are independent.
    """

    def __init__(self, shape, dtype=dt.f32, name=None):
        self.shape = TensorShape(None if d is None else int(d) for d in shape)
        self.dtype = dt.as_dtype(dtype)
        self.name = name

    @classmethod
    def from_tensor(cls, tensor, name=None) -> TensorSpec:
        return cls(tensor.shape, tensor.dtype, name)

    def _key(self):
        return (tuple(self.shape), self.dtype.name)

    def __eq__(self, other):
        return isinstance(other, TensorSpec) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        return (f"TensorSpec(shape={tuple(self.shape)}, dtype=framework.{self.dtype.tf_name}, "
                f"name={self.name!r})")

    def is_compatible_with(self, shape, dtype) -> bool:
        return dtype is self.dtype and len(shape) == len(self.shape) and all(
            s is None or s == d for s, d in zip(self.shape, shape))

    def describe(self) -> str:
        return f"{self.dtype.name}[{','.join('?' if d is None else str(d) for d in self.shape)}]"


class VariableSpec(TensorSpec):
    """A Variable argument: traced by shape and dtype, bound by reference at each call."""


# -- leaves -------------------------------------------------------------------------------------

TENSOR, VARIABLE, STATIC = "tensor", "variable", "static"


def leaf_kind(x):
    if isinstance(x, Variable):
        return VARIABLE
    if isinstance(x, (Tensor, np.ndarray, TensorSpec)):
        return TENSOR
    return STATIC


def leaf_spec(x, path: str) -> TensorSpec:
    if isinstance(x, TensorSpec):
        return x
    if isinstance(x, Variable):
        return VariableSpec(x.shape, x.dtype)
    if isinstance(x, Tensor):
        if x.is_symbolic:
            raise SignatureError(f"argument {path}", "a traced tensor cannot be passed to a "
                                 "function from outside its trace")
        return TensorSpec(x.shape, x.dtype)
    arr = np.asarray(x)
    d = dt.from_numpy(arr.dtype)
    if d is None:
        raise SignatureError(f"argument {path}", f"numpy dtype {arr.dtype} is not supported")
    return TensorSpec(arr.shape, d)


def static_key(x):
    """Python values are traced by value (hashable) or by identity."""
    try:
        hash(x)
        return ("value", type(x).__name__, x)
    except TypeError:
        return ("id", id(x))


def leaf_paths(args: dict) -> list[str]:
    """Human names for the leaves of the bound arguments: ``x``, ``batch[0]``, ``d['k']``."""
    out: list[str] = []
    for name, value in args.items():
        _paths(value, name, out)
    return out


def _paths(s, path, out):
    if isinstance(s, dict):
        for k in sorted(s, key=repr):
            _paths(s[k], f"{path}[{k!r}]", out)
    elif isinstance(s, (list, tuple)):
        for i, x in enumerate(s):
            _paths(x, f"{path}[{i}]", out)
    else:
        out.append(path)


def flatten_args(args: dict):
    """(leaves, paths, cache key). The key holds the argument names, the nesting, and per
    leaf its kind (tensor/variable) or, for Python values, the value itself."""
    leaves = nest.flatten(list(args.values()))
    leaf_keys = tuple(static_key(x) if leaf_kind(x) is STATIC else leaf_kind(x) for x in leaves)
    structure = nest.structure_key(list(args.values()), lambda x: None)
    return leaves, leaf_paths(args), (tuple(args), structure, leaf_keys)


def as_array(x, spec: TensorSpec, device: bool = False) -> np.ndarray:
    """An argument's array; with ``device``, a tensor still on the GPU stays there."""
    if isinstance(x, Tensor):
        return x._array() if device else x._value
    if type(x) is np.ndarray and x.dtype == spec.dtype.np and x.flags.c_contiguous:
        return x  # (the common case, checked without converting)
    return constant_array(x, spec.dtype, "argument")


# -- relaxing and symbols -----------------------------------------------------------------------

_NAMES = ["N", "M", "P", "Q", "R", "S", "T", "U", "V", "W"]


def symbol_name(i: int) -> str:
    return _NAMES[i] if i < len(_NAMES) else f"D{i}"


def relax(old: list[TensorSpec], new: list[TensorSpec]) -> list[TensorSpec] | None:
    """The most specific specs covering both calls (differing dims become None), or None
    when ranks or dtypes differ."""
    out = []
    for a, b in zip(old, new):
        if a is None or b is None:
            if a is not b:
                return None
            out.append(None)
            continue
        if a.dtype is not b.dtype or len(a.shape) != len(b.shape):
            return None
        spec_cls = VariableSpec if isinstance(a, VariableSpec) else TensorSpec
        out.append(spec_cls([x if x == y else None for x, y in zip(a.shape, b.shape)], a.dtype))
    return out


def symbolic_types(specs: list[TensorSpec], groups: dict | None = None) -> list[TensorType]:
    """IR types for specs. ``groups[(leaf, dim)]`` gives dims that must share a symbol;
    without it, leading None dims share ``N`` and every other None dim is its own symbol."""
    names: dict = {}
    out = []
    for i, s in enumerate(specs):
        if s is None:
            out.append(None)
            continue
        dims = []
        for j, d in enumerate(s.shape):
            if d is not None:
                dims.append(d)
                continue
            group = groups.get((i, j), (i, j)) if groups is not None else \
                ("lead" if j == 0 else (i, j))
            if group not in names:
                names[group] = symbol_name(len(names))
            dims.append(Sym.named(names[group]))
        out.append(TensorType(tuple(dims), s.dtype))
    return out


def covariation_groups(specs, history: list[list[TensorSpec]]) -> dict:
    """Relaxed dims that took equal values in every observed call share a symbol."""
    groups: dict = {}
    for i, s in enumerate(specs):
        for j, d in enumerate(s.shape if s is not None else ()):
            if d is None:
                groups[(i, j)] = tuple(h[i].shape[j] for h in history)
    return groups
