"""Cumulative, segment and counting ops (``tf.math.cumsum``, ``unsorted_segment_sum``,
``bincount``, ``confusion_matrix``, ...): composites of the primitives, so they trace,
compile and (where TensorFlow has one) differentiate like any other op.

Cumulative sums run as a ``scan`` along the axis; segment sums are a ``scatter_add``;
segment maxima compare every element with every segment (a [segments, n] mask)."""

from __future__ import annotations

import numpy as np

from compiler import dtypes as dt
from compiler import ops as P
from compiler.errors import AttrError, ShapeError
from compiler.ops.base import norm_axis

from . import tracing
from .array_ops import (
    convert_to_tensor,
    expand_dims,
    one_hot,
    reshape,
    reverse,
    transpose,
    zeros_like,
)
from .core import apply
from .math_ops import cast, divide_no_nan, reduce_max, where
from .tensor import Tensor, as_operand


def axis_of(op, x, axis) -> int:
    """``axis`` of ``x`` as a non-negative int (the ops' own check, with the user's line)."""
    try:
        return norm_axis(op, int(axis) if isinstance(axis, np.integer) else axis,
                         x.shape.rank)
    except AttrError as e:
        raise e.with_location(tracing.where()) from None


def _cumulative(op, combine, x, axis, exclusive, reverse_):
    from .control_flow import scan_steps
    x = as_operand(x)
    if x.shape.rank == 0:
        raise ShapeError(op, "expected a tensor of rank >= 1; received a scalar",
                         tracing.where())
    a = axis_of(op, x, axis)
    perm = [a] + [d for d in range(x.shape.rank) if d != a]
    xs = transpose(x, perm) if a else x
    if reverse_:
        xs = reverse(xs, [0])

    def step(acc, row):
        new = combine(acc, row)
        return new, acc if exclusive else new
    _, out = scan_steps(step, zeros_like(xs[0]) + (0 if combine is _add else 1), xs)
    if reverse_:
        out = reverse(out, [0])
    return transpose(out, list(np.argsort(perm))) if a else out


def _add(a, b):
    return a + b


def _mul(a, b):
    return a * b


def cumsum(x, axis=0, exclusive=False, reverse=False, name=None) -> Tensor:
    """Running sums along ``axis``; ``exclusive`` leaves each element out of its own sum,
    ``reverse`` sums from the end (as ``tf.math.cumsum``).

    Example:
        >>> framework.math.cumsum([1, 2, 3], exclusive=True).numpy()
        array([0, 1, 3], dtype=int32)
    """
    return _cumulative("cumsum", _add, x, axis, exclusive, reverse)


def cumprod(x, axis=0, exclusive=False, reverse=False, name=None) -> Tensor:
    """Running products along ``axis`` (``exclusive``, ``reverse`` as ``cumsum``)."""
    return _cumulative("cumprod", _mul, x, axis, exclusive, reverse)


def _segments(op, data, ids, num_segments):
    data, ids = as_operand(data), as_operand(ids)
    if not ids.dtype.is_int:
        raise AttrError(op, f"segment_ids must be integers; received {ids.dtype.tf_name}",
                        tracing.where())
    if tuple(data.shape[:ids.shape.rank]) != tuple(ids.shape):
        raise ShapeError(op, f"segment_ids of shape {tuple(ids.shape)} must be a prefix of "
                             f"the data's shape {tuple(data.shape)}", tracing.where())
    n = num_segments
    if isinstance(n, Tensor):
        n = n.numpy() if not n.is_symbolic else None
    if n is None or isinstance(n, bool) or int(np.asarray(n)) < 0:
        raise AttrError(op, f"num_segments must be a non-negative int known when tracing; "
                            f"received {num_segments!r}", tracing.where())
    return data, ids, int(np.asarray(n))


def unsorted_segment_sum(data, segment_ids, num_segments, name=None) -> Tensor:
    """``out[s] = sum of data[i] where segment_ids[i] == s`` (a scatter_add).

    Example:
        >>> framework.math.unsorted_segment_sum([1., 2., 3.], [1, 0, 1], 2).numpy()
        array([2., 4.], dtype=float32)
    """
    data, ids, n = _segments("unsorted_segment_sum", data, segment_ids, num_segments)
    return apply(P.SCATTER_ADD, [data, ids], {"axis": 0, "size": n})


def unsorted_segment_mean(data, segment_ids, num_segments, name=None) -> Tensor:
    """The mean of each segment (0 for an empty one)."""
    data, ids, n = _segments("unsorted_segment_mean", data, segment_ids, num_segments)
    total = unsorted_segment_sum(data, ids, n)
    count = unsorted_segment_sum(cast(zeros_like(ids) + 1, data.dtype), ids, n)
    while count.shape.rank < total.shape.rank:
        count = expand_dims(count, -1)
    return divide_no_nan(total, count)


def unsorted_segment_max(data, segment_ids, num_segments, name=None) -> Tensor:
    """The maximum of each segment (the dtype's lowest value for an empty one, as
    TensorFlow)."""
    data, ids, n = _segments("unsorted_segment_max", data, segment_ids, num_segments)
    if ids.shape.rank != 1:
        raise ShapeError("unsorted_segment_max", f"segment_ids must be 1-D; received shape "
                                                 f"{tuple(ids.shape)}", tracing.where())
    low = np.finfo(data.dtype.np).min if data.dtype.is_float else np.iinfo(data.dtype.np).min
    member = cast(one_hot(ids, n, dtype=dt.f32), "bool")     # [n_items, segments]
    member = transpose(member, [1, 0])                         # [segments, n_items]
    while member.shape.rank < data.shape.rank + 1:
        member = expand_dims(member, -1)
    picked = where(member, expand_dims(data, 0), convert_to_tensor(low, data.dtype))
    return reduce_max(picked, 1)


def _count(ids_value) -> int:
    a = np.asarray(ids_value)
    return int(a.max()) + 1 if a.size else 0


def segment_sum(data, segment_ids, name=None) -> Tensor:
    """Sums of sorted segments: ``segment_ids`` must be sorted; their count is the last id
    plus one, so the ids must be known (eager, or a constant) — as TensorFlow's shape."""
    ids = as_operand(segment_ids)
    if ids.is_symbolic:
        raise ShapeError("segment_sum", "the number of segments depends on the ids' values; "
                                        "inside @function use unsorted_segment_sum with "
                                        "num_segments", tracing.where())
    values = ids.numpy()
    if np.any(np.diff(values.reshape(-1)) < 0):
        raise AttrError("segment_sum", f"segment_ids must be sorted; received {values}",
                        tracing.where())
    return unsorted_segment_sum(data, ids, _count(values))


def bincount(arr, weights=None, minlength=None, maxlength=None, dtype=dt.i32, name=None):
    """How often each value 0, 1, ... occurs in the non-negative ints ``arr`` (weighted by
    ``weights``); the length is ``max(arr) + 1`` at least ``minlength`` and at most
    ``maxlength``. Inside ``@function`` pass ``minlength`` and ``maxlength`` equal (a
    length known when tracing)."""
    a = reshape(as_operand(arr), [-1])
    if a.is_symbolic:
        if minlength is None or minlength != maxlength:
            raise ShapeError("bincount", "inside @function the length must be known: pass "
                                         "minlength == maxlength", tracing.where())
        n = int(minlength)
    else:
        n = max(_count(a.numpy()), int(minlength or 0))
        n = min(n, int(maxlength)) if maxlength is not None else n
    w = cast(zeros_like(a) + 1, dtype) if weights is None else \
        reshape(as_operand(weights), [-1])
    keep = a < n  # values past maxlength are dropped, as TensorFlow
    return unsorted_segment_sum(where(keep, w, zeros_like(w)), where(keep, a, zeros_like(a)), n)


def confusion_matrix(labels, predictions, num_classes=None, weights=None, dtype=dt.i32,
                     name=None) -> Tensor:
    """``[num_classes, num_classes]`` counts: row = true label, column = prediction.

    Example:
        >>> framework.math.confusion_matrix([0, 1, 1], [0, 1, 0], num_classes=2).numpy()
        array([[1, 0],
               [1, 1]], dtype=int32)
    """
    labels = cast(reshape(as_operand(labels), [-1]), dt.i32)
    preds = cast(reshape(as_operand(predictions), [-1]), dt.i32)
    if num_classes is None:
        if labels.is_symbolic or preds.is_symbolic:
            raise ShapeError("confusion_matrix", "inside @function pass num_classes",
                             tracing.where())
        num_classes = max(_count(labels.numpy()), _count(preds.numpy()))
    n = int(num_classes)
    w = cast(zeros_like(labels) + 1, dtype) if weights is None else \
        cast(reshape(as_operand(weights), [-1]), dtype)
    flat = unsorted_segment_sum(w, labels * n + preds, n * n)
    return reshape(flat, [n, n])
