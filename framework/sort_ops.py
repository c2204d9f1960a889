"""Sorting: ``sort``, ``argsort`` and ``math.top_k`` as composites of the primitives.

Each element's place in its row is the number of elements ahead of it (larger, for a
descending order; equal ones ahead when they come earlier, so the order is stable and ties
keep their positions as in TensorFlow). The row is then read out by place. This compares all
pairs of a row ([..., n, n]): exact, differentiable and fused, for rows of up to a few
thousand elements."""

from __future__ import annotations

import numpy as np

from compiler import dtypes as dt
from compiler import ops as P
from compiler.errors import AttrError, ShapeError

from . import tracing
from .array_ops import expand_dims, transpose, zeros_like
from .core import apply
from .math_ops import cast, equal, greater, less, logical_and, reduce_sum, where
from .segment_ops import axis_of
from .tensor import Tensor, as_operand


def _places(x, descending: bool):
    """Each element's position in its sorted row (last axis), and the row's indices."""
    n = x.ir_type.shape[-1]  # (a symbolic size when the row length is known only at run time)
    a, b = expand_dims(x, -1), expand_dims(x, -2)          # [..., i, 1], [..., 1, j]
    idx = apply(P.IOTA, [], {"shape": (n,), "axis": 0, "dtype": dt.i32})
    earlier = less(expand_dims(idx, 0), expand_dims(idx, -1))  # [i, j]: j < i
    ahead = greater(b, a) if descending else less(b, a)
    ties = logical_and(equal(b, a), earlier)
    place = reduce_sum(cast(ahead, dt.i32), -1) + reduce_sum(cast(ties, dt.i32), -1)
    return place, idx


def _read_out(values, place, idx, k):
    """``values`` of each row in order of ``place``, the first ``k``."""
    slots = expand_dims(idx[:k], -1)                       # [k, 1]
    pick = equal(expand_dims(place, -2), slots)             # [..., k, n]
    return reduce_sum(where(pick, expand_dims(values, -2), zeros_like(expand_dims(values, -2))),
                      -1)


def _along_last(op, fn, x, axis):
    x = as_operand(x)
    rank = x.shape.rank
    if rank == 0:
        raise ShapeError(op, "expected a tensor of rank >= 1; received a scalar",
                         tracing.where())
    a = axis_of(op, x, axis)
    if a == rank - 1:
        return fn(x)
    perm = [d for d in range(rank) if d != a] + [a]
    back = list(np.argsort(perm))
    out = fn(transpose(x, perm))
    return tuple(transpose(o, back) for o in out) if isinstance(out, tuple) else \
        transpose(out, back)


def _direction(op, direction) -> bool:
    if direction not in ("ASCENDING", "DESCENDING"):
        raise AttrError(op, f"direction must be 'ASCENDING' or 'DESCENDING'; received "
                            f"{direction!r}", tracing.where())
    return direction == "DESCENDING"


def sort(values, axis=-1, direction="ASCENDING", name=None) -> Tensor:
    """``values`` sorted along ``axis``.

    Example:
        >>> framework.sort([3, 1, 2]).numpy()
        array([1, 2, 3], dtype=int32)
    """
    desc = _direction("sort", direction)

    def run(x):
        place, idx = _places(x, desc)
        return _read_out(x, place, idx, x.shape[-1])
    return _along_last("sort", run, values, axis)


def argsort(values, axis=-1, direction="ASCENDING", stable=False, name=None) -> Tensor:
    """The indices that sort ``values`` along ``axis`` (int32; ties in index order)."""
    desc = _direction("argsort", direction)

    def run(x):
        place, idx = _places(x, desc)
        return _read_out(idx + zeros_like(place), place, idx, x.shape[-1])
    return _along_last("argsort", run, values, axis)


def top_k(input, k=1, sorted=True, index_type=dt.i32, name=None):
    """The ``k`` largest entries of the last axis and their indices, largest first (ties:
    the lower index first), as ``tf.math.top_k``. Returns ``(values, indices)``."""
    x = as_operand(input)
    n = x.shape[-1] if x.shape.rank else None
    if x.shape.rank and n is None:
        raise AttrError("top_k", "the last dim must be known when the function is traced (k "
                                 "rows are read out); received a size known only at run time",
                        tracing.where())
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or n is None or \
            not 0 <= k <= n:
        raise AttrError("top_k", f"k must be an int in [0, {n}] (the last dim); received "
                                 f"{k!r}", tracing.where())
    place, idx = _places(x, True)
    values = _read_out(x, place, idx, int(k))
    indices = _read_out(idx + zeros_like(place), place, idx, int(k))
    return TopKV2(values, cast(indices, index_type))


class TopKV2(tuple):
    """``(values, indices)`` with the names TensorFlow gives them."""

    def __new__(cls, values, indices):
        return super().__new__(cls, (values, indices))

    values = property(lambda self: self[0])
    indices = property(lambda self: self[1])
