"""``tensor[key]``: ints, slices (any stride), ``...``, ``None`` and scalar integer tensors,
lowered to one strided ``slice``, a ``reshape`` and, for traced scalar indices, ``gather``."""

from __future__ import annotations

from compiler import dtypes as dt
from compiler import ops as P
from compiler.errors import OutOfRangeError, ShapeError
from compiler.ir import Sym

from . import tracing
from .core import apply
from .tensor import Tensor, as_operand


def _normalize_key(key, rank):
    """Expand ``...`` (or append one) so that the key has one entry per dim, plus Nones."""
    key = list(key) if isinstance(key, tuple) else [key]
    n_real = sum(k is not None and k is not Ellipsis for k in key)
    if n_real > rank:
        raise ShapeError("getitem", f"too many indices ({n_real}) for a tensor of rank {rank}",
                         tracing.where())
    ellipses = [i for i, k in enumerate(key) if k is Ellipsis]
    if len(ellipses) > 1:
        raise ShapeError("getitem", "an index can have only one ellipsis", tracing.where())
    i = ellipses[0] if ellipses else len(key)
    return key[:i] + [slice(None)] * (rank - n_real) + key[i + 1:]


def _symbolic_bounds(d: Sym, s: slice):
    """begin/end for a slice over a symbolic dim (stride 1 only)."""
    if s.step not in (None, 1):
        raise ShapeError("getitem", f"a step other than 1 needs a static dim; dim is {d}",
                         tracing.where())
    b = 0 if s.start is None else s.start
    e = d if s.stop is None else s.stop
    b = d + b if isinstance(b, int) and b < 0 else b
    e = d + e if isinstance(e, int) and e < 0 else e
    return b, e


def getitem(x, key):
    x = as_operand(x)
    shape = x.ir_type.shape
    begin, end, stride = [], [], []
    layout = []  # per output entry: "new" (None), "keep" (a slice) or a traced index tensor
    for k in _normalize_key(key, len(shape)):
        if k is None:
            layout.append("new")
            continue
        d = shape[len(begin)]
        if isinstance(k, Tensor) and not k.is_symbolic and k.ndim == 0:
            k = k.__index__()
        if isinstance(k, slice):
            if isinstance(d, Sym):
                (b, e), s = _symbolic_bounds(d, k), 1
            else:
                b, e, s = k.indices(d)
                e = -1 if s < 0 and e < 0 else e
            layout.append("keep")
        elif isinstance(k, Tensor):
            if k.ndim != 0 or not k.dtype.is_int:
                raise ShapeError("getitem", f"a tensor index must be an integer scalar; "
                                            f"received {k.ir_type} (use framework.gather)",
                                 tracing.where())
            b, e, s = 0, d, 1
            layout.append(k)
        elif hasattr(k, "__index__") and not isinstance(k, bool):
            i = k.__index__()
            if isinstance(d, int) and not -d <= i < d:
                raise OutOfRangeError("getitem", f"index {i} is out of range for dim "
                                                 f"{len(begin)} of size {d}", tracing.where())
            b = i % d if isinstance(d, int) else (d + i if i < 0 else i)
            e, s = b + 1, 1
            layout.append("drop")
        else:
            raise ShapeError("getitem", f"unsupported index {k!r}; use ints, slices, ..., None "
                                        f"or framework.gather", tracing.where())
        begin.append(b), end.append(e), stride.append(s)
    y = x
    if any(b != 0 or e != d or s != 1 for b, e, s, d in zip(begin, end, stride, shape)):
        y = apply(P.SLICE, [x], {"begin": tuple(begin), "end": tuple(end),
                                 "stride": tuple(stride)})
    dims, out, gathers = iter(y.ir_type.shape), [], []
    for entry in layout:
        d = 1 if isinstance(entry, str) and entry == "new" else next(dims)
        if isinstance(entry, Tensor):
            gathers.append((len(out), entry))
        if not (isinstance(entry, str) and entry == "drop"):
            out.append(d)
    if tuple(out) != y.ir_type.shape:
        from .array_ops import reshape
        y = reshape(y, out)
    for axis, index in reversed(gathers):  # traced scalar indices: gather, last first
        y = apply(P.GATHER_, [y, as_operand(index, dt.i32)], {"axis": axis})
    return _propagate_static(x, key, y)


def _propagate_static(x, key, y):
    """``shape(x)[0]`` keeps its known (possibly symbolic) value, so reshape can use it."""
    from .array_ops import _remember, static_value
    known = static_value(x) if x.is_symbolic else None
    if isinstance(known, tuple) and isinstance(key, (int, slice)) and not isinstance(key, bool):
        _remember(y, known[key])
    return y
