"""Reductions: sum, prod, max, min over axes (with keepdims), argmax and argmin over one axis."""

from __future__ import annotations

import numpy as np

from .. import dtypes as dt
from ..ir import TensorType
from .base import ARG_REDUCE, REDUCE, OpDef, norm_axes, norm_axis, register, require_dtype
from .elementwise import BOOL, NUMERIC


def _canon(types, attrs):
    return attrs | {"axes": norm_axes("reduce", attrs["axes"], types[0].rank),
                    "keepdims": bool(attrs["keepdims"])}


def _reduced_shape(shape, axes, keepdims):
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _reduce_infer(name, allowed):
    def infer(types, attrs):
        (t,) = types
        require_dtype(name, t, allowed)
        axes = norm_axes(name, attrs["axes"], t.rank)
        return (t.with_shape(_reduced_shape(t.shape, axes, attrs["keepdims"])),)
    return infer


def expand_reduced(e, g, x_type, axes, keepdims):
    """A reduction's cotangent broadcast back over the reduced axes to the input's shape."""
    if not keepdims:
        g = e("reshape", g, shape=_reduced_shape(x_type.shape, axes, True))
    return e("broadcast_to", g, shape=x_type.shape)


def _d_sum(e, n, g):
    x = n.inputs[0]
    return [expand_reduced(e, g, e.type(x), n.attrs["axes"], n.attrs["keepdims"])]


def _d_prod(e, n, g):
    """The product of the other elements, exact with zeros: y / x where x has no zero, the
    product of the non-zeros at a lone zero, 0 elsewhere."""
    (x,), axes, keep = n.inputs, n.attrs["axes"], n.attrs["keepdims"]
    t = e.type(x)
    is_zero = e("eq", x, e.lit(0, x))
    nonzero_prod = e("reduce_prod", e("select", is_zero, e.lit(1, x), x), axes=axes, keepdims=True)
    zeros = e("reduce_sum", e("cast", is_zero, to=t.dtype), axes=axes, keepdims=True)
    others = e("select", e("eq", zeros, e.lit(0, x)), e("div", nonzero_prod, x),
               e("select", e("logical_and", is_zero, e("eq", zeros, e.lit(1, x))),
                     nonzero_prod, e.lit(0, x)))
    return [e("mul", others, expand_reduced(e, g, t, axes, keep))]


def _d_extremum(e, n, g):
    """max/min: shared equally among the elements that attain it (as TensorFlow)."""
    (x,), axes, keep = n.inputs, n.attrs["axes"], n.attrs["keepdims"]
    t = e.type(x)
    hit = e("cast", e("eq", x, expand_reduced(e, n.output, t, axes, keep)), to=t.dtype)
    count = e("reduce_sum", hit, axes=axes, keepdims=True)
    return [e("mul", e("div", hit, count), expand_reduced(e, g, t, axes, keep))]


def _reduce(name, np_fn, identity, combine, vjp, allowed=NUMERIC):
    def ref(x, axes, keepdims):
        kw = {} if np_fn in (np.sum, np.prod) else {"initial": identity(dt.from_numpy(x.dtype))}
        r = np_fn(x, axis=tuple(axes), keepdims=keepdims, **kw)
        return np.asarray(r).astype(x.dtype, copy=False)
    return register(OpDef(name, REDUCE, _reduce_infer(name, allowed), ref,
                          attrs={"axes": None, "keepdims": False}, canon=_canon,
                          identity=identity, combine=combine, vjp=vjp))


REDUCE_SUM = _reduce("reduce_sum", np.sum, lambda d: 0, lambda acc, x: f"{acc} + {x}", _d_sum)
REDUCE_PROD = _reduce("reduce_prod", np.prod, lambda d: 1, lambda acc, x: f"{acc} * {x}",
                      _d_prod)
# max/min also accept bool: reduce_any and reduce_all are max and min over bool.
REDUCE_MAX = _reduce("reduce_max", np.max, lambda d: d.min(),
                     lambda acc, x: f"kiln_max({acc}, {x})", _d_extremum, NUMERIC + BOOL)
REDUCE_MIN = _reduce("reduce_min", np.min, lambda d: d.max(),
                     lambda acc, x: f"kiln_min({acc}, {x})", _d_extremum, NUMERIC + BOOL)


def _arg_canon(types, attrs):
    return attrs | {"axis": norm_axis("argmax", attrs["axis"], types[0].rank)}


def _arg_infer(name):
    def infer(types, attrs):
        (t,) = types
        require_dtype(name, t, NUMERIC)
        axis = norm_axis(name, attrs["axis"], t.rank)
        out = attrs["output_type"]
        if out not in dt.INTS:
            from ..errors import AttrError
            raise AttrError(name, f"output_type must be i32 or i64; received {out}")
        if t.shape[axis] == 0:
            from ..errors import ShapeError
            raise ShapeError(name, f"cannot reduce over an empty axis {axis} of {t}")
        return (TensorType(_reduced_shape(t.shape, (axis,), False), out),)
    return infer


def _arg(name, np_fn, better):
    def ref(x, axis, output_type):
        return np.asarray(np_fn(x, axis=axis)).astype(output_type.np)
    # For arg reductions ``combine((acc_val, acc_idx), (x_val, x_idx))`` is the condition under
    # which x replaces acc: the first extreme wins, and the first NaN wins over any number
    # (numpy and TensorFlow agree). An index of -1 means "nothing seen yet".
    return register(OpDef(
        name, ARG_REDUCE, _arg_infer(name), ref,
        attrs={"axis": 0, "output_type": dt.i64}, canon=_arg_canon,
        identity=lambda d: (d.min() if better == ">" else d.max(), -1),
        combine=lambda acc, x: (f"({acc[1]} < 0 or {x[0]} {better} {acc[0]} "
                                f"or ({x[0]} != {x[0]} and {acc[0]} == {acc[0]}))"),
        vjp="its result is integer"))


ARGMAX = _arg("argmax", np.argmax, ">")
ARGMIN = _arg("argmin", np.argmin, "<")
