"""Tensor creation, shapes and movement with TensorFlow's names: constant, zeros, reshape,
transpose, concat, stack, slicing (``x[1:, ::2, None]``), gather, pad, tile, one_hot, range."""

from __future__ import annotations

import builtins
import math

import numpy as np

from compiler import dtypes as dt
from compiler import ops as P
from compiler.errors import AttrError, DTypeError, ShapeError
from compiler.ir import Dense, Literal, Sym, dim_div

from . import tracing
from .core import apply
from .tensor import Tensor, as_operand, constant_array


def _where():
    return tracing.where()


def constant(value, dtype=None, shape=None, name=None) -> Tensor:
    """A tensor from a Python value or numpy array.

    Python floats become float32 and ints int32; numpy arrays keep their dtype unless
    ``dtype`` is given. ``shape`` broadcasts a scalar or reshapes a value of matching size.

    Example:
        >>> framework.constant([[1, 2], [3, 4]], dtype=framework.float32).shape
        TensorShape([2, 2])
    """
    arr = constant_array(value, dt.as_dtype(dtype) if dtype is not None else None)
    if shape is not None:
        shape = tuple(int(s) for s in shape)
        if arr.size == 1:
            arr = np.broadcast_to(arr.reshape(()), shape)
        elif arr.size == math.prod(shape):
            arr = arr.reshape(shape)
        else:
            raise ShapeError("constant", f"value of {arr.size} elements does not fit shape "
                                         f"{list(shape)}", _where())
    if tracing.current() is not None:
        return apply(P.CONSTANT, [], {"value": Dense(arr)})
    return Tensor(np.array(arr))


def convert_to_tensor(value, dtype=None, dtype_hint=None, name=None) -> Tensor:
    """Return ``value`` as a Tensor (tensors pass through; variables are read)."""
    t = as_operand(value, dt.as_dtype(dtype) if dtype else None)
    if dtype is not None and t.dtype is not dt.as_dtype(dtype):
        raise DTypeError("convert_to_tensor", f"expected {dt.as_dtype(dtype).tf_name}; received "
                                              f"{t.dtype.tf_name}", _where())
    if isinstance(t, Literal) and dtype is None and dtype_hint is not None:
        t = as_operand(value, dt.as_dtype(dtype_hint))
    return _to_tensor(t)


def _to_tensor(x, dtype=None) -> Tensor:
    """A Tensor from an operand; scalars become constants."""
    if not isinstance(x, (Tensor, Literal)):
        x = as_operand(x, dtype)
    if isinstance(x, Literal):
        return constant(np.asarray(x.value, x.dtype.np))
    return x


# -- shapes, with static values remembered while tracing ----------------------------------------


def _remember(t: Tensor, dims) -> Tensor:
    trace = tracing.current()
    if trace is not None:
        if not hasattr(trace, "static_values"):
            trace.static_values = {}
        trace.static_values[id(t)] = (t, dims)
    return t


def static_value(x):
    """The Dim (or tuple of Dims) a traced tensor is known to hold, or None."""
    if isinstance(x, Tensor) and x.is_symbolic:
        entry = getattr(x._trace, "static_values", {}).get(id(x))
        return entry[1] if entry else None
    if isinstance(x, Tensor):
        v = x.numpy()
        return int(v) if v.ndim == 0 else tuple(int(i) for i in v)
    return x


def _dims(op: str, shape) -> tuple:
    """A user shape (list of ints / symbolic dim tensors, or a shape tensor) as IR dims."""
    known = static_value(shape) if isinstance(shape, Tensor) else shape
    if known is None:
        raise ShapeError(op, "the shape must be known at trace time (use framework.shape(x) "
                             "or Python ints)", _where())
    if isinstance(known, (int, np.integer, Sym)):
        known = (known,)
    if isinstance(known, (str, bytes)) or not hasattr(known, "__iter__"):
        raise AttrError(op, f"shape must be a list of integers or an integer tensor; "
                            f"received {shape!r}", _where())
    out = []
    for d in known:
        if isinstance(d, Tensor) and not (d.dtype.is_int or d.is_symbolic):
            raise AttrError(op, f"shape must hold integers; received a {d.dtype.tf_name} "
                                f"tensor", _where())
        v = static_value(d) if isinstance(d, Tensor) else d
        if v is None:
            raise ShapeError(op, f"a dimension is not known at trace time: {d!r}", _where())
        if isinstance(v, Sym):
            out.append(v)
        elif isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
            out.append(int(v))
        else:
            raise AttrError(op, f"shape must hold integers; received {v!r} in "
                                f"{list(known) if not isinstance(known, np.ndarray) else known}",
                            _where())
    return tuple(out)


def dim_size(x, axis: int, dtype=dt.i32):
    """Size of one dimension: a Python int when static, else a scalar tensor."""
    d = as_operand(x).ir_type.shape[axis]
    if isinstance(d, int):
        return d
    return _remember(apply(P.DIM_SIZE, [], {"dim": d, "dtype": dt.as_dtype(dtype)}), d)


def shape(input, out_type=dt.i32, name=None) -> Tensor:
    """The shape as a 1-D integer tensor (symbolic dims are computed at run time)."""
    x = as_operand(input)
    dims = x.ir_type.shape
    parts = [reshape(_to_tensor(dim_size(x, i, out_type), out_type), [1]) if isinstance(d, Sym)
             else constant([d], out_type) for i, d in enumerate(dims)]
    out = concat(parts, 0) if parts else constant(np.zeros(0, dt.as_dtype(out_type).np))
    return _remember(out, dims)


def size(input, out_type=dt.i32, name=None) -> Tensor:
    """The number of elements, as a scalar tensor (computed at run time if symbolic)."""
    x = as_operand(input)
    n = x.ir_type.size()
    return _remember(_to_tensor(dim_size(reshape(x, [-1]), 0, out_type), out_type), n)


def rank(input, name=None) -> Tensor:
    """The number of dims, as an int32 scalar tensor."""
    return constant(as_operand(input).ndim, dt.i32)


# -- creation -------------------------------------------------------------------------------------


def fill(dims, value, name=None, _op="fill") -> Tensor:
    """A tensor of shape ``dims`` filled with ``value`` (its dtype)."""
    return broadcast_to(as_operand(value), _dims(_op, dims))


def zeros(shape, dtype=dt.f32, name=None) -> Tensor:
    """A tensor of ``shape`` filled with 0 (default float32)."""
    return fill(shape, Literal(0, dt.as_dtype(dtype)), _op="zeros")


def ones(shape, dtype=dt.f32, name=None) -> Tensor:
    """A tensor of ``shape`` filled with 1 (default float32)."""
    return fill(shape, Literal(1, dt.as_dtype(dtype)), _op="ones")


def zeros_like(input, dtype=None, name=None) -> Tensor:
    """Zeros with the shape (and by default the dtype) of ``input``."""
    x = as_operand(input)
    return broadcast_to(Literal(0, dt.as_dtype(dtype or x.dtype)), x.ir_type.shape)


def ones_like(input, dtype=None, name=None) -> Tensor:
    """Ones with the shape (and by default the dtype) of ``input``."""
    x = as_operand(input)
    return broadcast_to(Literal(1, dt.as_dtype(dtype or x.dtype)), x.ir_type.shape)


def identity(input, name=None) -> Tensor:
    """Return the input as a tensor (a Variable is read)."""
    return _to_tensor(as_operand(input))


def range(start, limit=None, delta=1, dtype=None, name=None) -> Tensor:
    """``[start, start+delta, ...)`` up to ``limit`` (exclusive), as tf.range."""
    if limit is None:
        start, limit = 0, start
    start, limit, delta = (static_value(v) for v in (start, limit, delta))
    if delta == 0:
        raise AttrError("range", "delta must not be 0", _where())
    floaty = any(isinstance(v, float) for v in (start, limit, delta))
    d = dt.as_dtype(dtype) if dtype else (dt.f32 if floaty else dt.i32)
    n = max(0, math.ceil((limit - start) / delta))
    r = apply(P.IOTA, [], {"shape": (n,), "axis": 0, "dtype": d})
    if delta != 1:
        r = r * delta
    return r + start if start != 0 else r


def one_hot(indices, depth, on_value=None, off_value=None, axis=-1, dtype=None, name=None):
    """One-hot vectors of length ``depth`` (out-of-range indices give all ``off_value``)."""
    idx = as_operand(indices)
    if not idx.dtype.is_int:
        raise DTypeError("one_hot", f"indices must be integers; received "
                                    f"{idx.dtype.tf_name} indices", _where())
    if not isinstance(depth, (int, np.integer)) or isinstance(depth, bool) or depth < 0:
        raise AttrError("one_hot", f"depth must be a non-negative int; received {depth!r}",
                        _where())
    d = dt.as_dtype(dtype) if dtype else dt.f32
    hot = apply(P.EQ, [expand_dims(idx, -1),
                       apply(P.IOTA, [], {"shape": (int(depth),), "axis": 0,
                                          "dtype": idx.dtype})])
    from .math_ops import where
    out = where(hot, Literal(1 if on_value is None else on_value, d),
                Literal(0 if off_value is None else off_value, d))
    if axis not in (-1, out.ndim - 1):
        perm = list(np.arange(out.ndim - 1))
        perm.insert(axis % out.ndim, out.ndim - 1)
        out = transpose(out, perm)
    return out


# -- reshaping and movement -----------------------------------------------------------------------


def broadcast_to(input, shape, name=None) -> Tensor:
    """Broadcast ``input`` to ``shape`` (numpy rules: dims of 1 stretch)."""
    x = as_operand(input)
    return apply(P.BROADCAST_TO, [x], {"shape": _dims("broadcast_to", shape)})


def reshape(tensor, shape, name=None) -> Tensor:
    """Reshape; one dim may be -1 (inferred, also when the batch dim is symbolic)."""
    x = as_operand(tensor)
    dims = list(_dims("reshape", shape))
    if dims.count(-1) > 1:
        raise ShapeError("reshape", f"at most one dim may be -1; received {dims}", _where())
    if -1 in dims:
        known = 1
        for d in dims:
            if d != -1:
                known = d * known if isinstance(d, Sym) else known * d
        missing = dim_div(x.ir_type.size(), known)
        if missing is None:
            raise ShapeError("reshape", f"cannot reshape {x.ir_type} to {dims}: "
                                        f"{x.ir_type.size()} elements do not divide by {known}",
                             _where())
        dims[dims.index(-1)] = missing
    if tuple(dims) == x.ir_type.shape and isinstance(x, Tensor):
        return x
    return apply(P.RESHAPE, [x], {"shape": tuple(dims)})


def transpose(a, perm=None, conjugate=False, name=None) -> Tensor:
    """Permute dims by ``perm`` (default: reverse them)."""
    x = as_operand(a)
    perm = tuple(reversed(np.arange(x.ndim).tolist())) if perm is None else \
        tuple(int(p) % max(x.ndim, 1) for p in perm)
    return apply(P.TRANSPOSE, [x], {"perm": perm})


def expand_dims(input, axis, name=None) -> Tensor:
    """Insert a dim of size 1 at ``axis`` (negative counts from the end)."""
    x = as_operand(input)
    shape = list(x.ir_type.shape)
    if not -len(shape) - 1 <= axis <= len(shape):
        raise AttrError("expand_dims", f"axis {axis} is out of range for rank {len(shape)}",
                        _where())
    shape.insert(axis % (len(shape) + 1), 1)
    return reshape(x, shape)


def squeeze(input, axis=None, name=None) -> Tensor:
    """Remove dims of size 1 (all of them, or those in ``axis``)."""
    x = as_operand(input)
    shape = x.ir_type.shape
    if axis is None:
        axes = [i for i, d in enumerate(shape) if d == 1]
    else:
        axes = [a % len(shape) for a in ([axis] if isinstance(axis, int) else axis)]
        for a in axes:
            if shape[a] != 1:
                raise ShapeError("squeeze", f"cannot squeeze dim {a} of size {shape[a]} "
                                            f"in {x.ir_type}", _where())
    return reshape(x, [d for i, d in enumerate(shape) if i not in axes])


def concat(values, axis, name=None) -> Tensor:
    """Join tensors along an existing ``axis``; other dims must agree."""
    ts = [_to_tensor(as_operand(v, _first_dtype(values))) for v in values]
    if len(ts) == 1:
        return ts[0]
    return apply(P.CONCAT, ts, {"axis": int(axis)})


def _first_dtype(values):
    for v in values:
        if hasattr(v, "dtype") and isinstance(v.dtype, dt.DType):
            return v.dtype
    return None


def stack(values, axis=0, name=None) -> Tensor:
    """Join tensors of equal shape along a new ``axis``."""
    like = _first_dtype(values)
    ts = [_to_tensor(as_operand(v, like)) for v in values]
    rank_ = ts[0].ndim + 1
    if not -rank_ <= axis < rank_:
        raise AttrError("stack", f"axis {axis} is out of range for rank {rank_}", _where())
    return concat([expand_dims(t, axis % rank_) for t in ts], axis % rank_)


def unstack(value, num=None, axis=0, name=None) -> list:
    """Split along ``axis`` into a list of tensors with that dim removed."""
    x = as_operand(value)
    n = x.ir_type.shape[axis]
    if isinstance(n, Sym):
        raise ShapeError("unstack", f"cannot unstack along symbolic dim {n}", _where())
    index = (builtins.slice(None),) * (axis % x.ndim)
    return [getitem(x, index + (i,)) for i in builtins.range(n)]


def split(value, num_or_size_splits, axis=0, num=None, name=None) -> list:
    """Split along ``axis`` into equal parts (an int) or parts of the given sizes."""
    x = as_operand(value)
    axis = axis % x.ndim
    n = x.ir_type.shape[axis]
    sizes = [n // num_or_size_splits] * num_or_size_splits \
        if isinstance(num_or_size_splits, int) else list(num_or_size_splits)
    if sum(sizes) != n:
        raise ShapeError("split", f"sizes {sizes} do not add up to dim {axis} of "
                                  f"{x.ir_type}", _where())
    out, start = [], 0
    for s in sizes:
        out.append(getitem(x, (builtins.slice(None),) * axis + (builtins.slice(start, start + s),)))
        start += s
    return out


def tile(input, multiples, name=None) -> Tensor:
    """Repeat ``input`` ``multiples[i]`` times along each dim i."""
    x = as_operand(input)
    mult = [int(m) for m in _dims("tile", multiples)]
    shape = x.ir_type.shape
    inter = [d for m, s in zip(mult, shape) for d in (1, s)]
    target = [d for m, s in zip(mult, shape) for d in (m, s)]
    y = broadcast_to(reshape(x, inter), target)
    return reshape(y, [s * m if isinstance(s, Sym) else m * s for m, s in zip(mult, shape)])


def reverse(tensor, axis, name=None) -> Tensor:
    """Reverse the order of elements along each axis in ``axis``."""
    x = as_operand(tensor)
    axes = {a % x.ndim for a in axis}
    return getitem(x, tuple(builtins.slice(None, None, -1) if i in axes else builtins.slice(None)
                            for i in builtins.range(x.ndim)))


def gather(params, indices, validate_indices=None, axis=None, batch_dims=0, name=None):
    """Take slices of ``params`` along ``axis`` at ``indices`` (an embedding lookup)."""
    if batch_dims:
        raise AttrError("gather", "batch_dims other than 0 is not supported", _where())
    return apply(P.GATHER_, [as_operand(params), as_operand(indices, dt.i32)],
                 {"axis": 0 if axis is None else int(axis)})


def pad(tensor, paddings, mode="CONSTANT", constant_values=0, name=None) -> Tensor:
    """Pad with a constant, or mirror the edges (``REFLECT``, ``SYMMETRIC``)."""
    x = as_operand(tensor)
    pads = tuple((int(lo), int(hi)) for lo, hi in np.asarray(static_value(paddings)
                                                            if isinstance(paddings, Tensor)
                                                            else paddings).tolist())
    mode = mode.upper()
    if mode == "CONSTANT":
        v = as_operand(constant_values, x.dtype)
        return apply(P.PAD, [x], {"pads": pads, "value": v.value if isinstance(v, Literal)
                                  else float(v.numpy())})
    if mode not in ("REFLECT", "SYMMETRIC"):
        raise AttrError("pad", f"mode must be CONSTANT, REFLECT or SYMMETRIC; received {mode!r}",
                        _where())
    for axis, (lo, hi) in enumerate(pads):  # mirror padding is a gather with static indices
        if lo or hi:
            n = x.ir_type.shape[axis]
            idx = np.pad(np.arange(n), (lo, hi), mode=mode.lower())
            x = gather(x, constant(idx.astype(np.int32)), axis=axis)
    return x


def slice(input_, begin, size, name=None) -> Tensor:
    """tf.slice: ``size[i] == -1`` takes everything from ``begin[i]`` on."""
    x = as_operand(input_)
    key = tuple(builtins.slice(b, None if s == -1 else b + s) for b, s in zip(begin, size))
    return getitem(x, key)


from .indexing import getitem  # noqa: E402,F401
