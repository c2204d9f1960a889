"""Python's operators on tensors (``x + y``, ``-x``, ``x < y``, ``x[i]``, ``x.T``), attached to
``Tensor`` by the op layer, as JAX attaches its array methods, so that tensor.py imports no
op module. ``framework`` imports this module before anything else of its own."""

from __future__ import annotations

from . import array_ops as _a
from . import math_ops as _m
from .tensor import Tensor

# x OP y and its reflected form y OP x
_BINARY = {"add": _m.add, "sub": _m.subtract, "mul": _m.multiply, "truediv": _m.truediv,
           "floordiv": _m.floordiv, "mod": _m.floormod, "pow": _m.pow, "matmul": _m.matmul,
           "and": _m.logical_and, "or": _m.logical_or, "xor": _m.logical_xor}
_COMPARE = {"eq": _m.equal, "ne": _m.not_equal, "lt": _m.less, "le": _m.less_equal,
            "gt": _m.greater, "ge": _m.greater_equal}
_UNARY = {"neg": _m.negative, "abs": _m.abs, "invert": _m.logical_not}


def _binary(fn):
    return lambda self, other: fn(self, other)


def _reflected(fn):
    return lambda self, other: fn(other, self)


def _unary(fn):
    return lambda self: fn(self)


for _name, _fn in _BINARY.items():
    setattr(Tensor, f"__{_name}__", _binary(_fn))
    setattr(Tensor, f"__r{_name}__", _reflected(_fn))
for _name, _fn in _COMPARE.items():
    setattr(Tensor, f"__{_name}__", _binary(_fn))
for _name, _fn in _UNARY.items():
    setattr(Tensor, f"__{_name}__", _unary(_fn))
Tensor.__pos__ = lambda self: self
Tensor.__getitem__ = lambda self, key: _a.getitem(self, key)
Tensor.T = property(lambda self: _a.transpose(self), doc="The transpose (axes reversed).")
