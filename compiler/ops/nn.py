"""Windowed primitives on NHWC images: conv2d (HWIO filters, strides, SAME/VALID or explicit
padding, dilation, groups), max_pool and avg_pool (TensorFlow's SAME averages over the
elements inside the image only)."""

from __future__ import annotations

import numpy as np

from .. import dtypes as dt
from ..errors import AttrError, ShapeError
from .base import REQUIRED, WINDOW, OpDef, register, require_dtype, same_dtype


def _pair(op, name, v):
    v = (v, v) if isinstance(v, int) else tuple(v)
    if len(v) != 2 or any(not isinstance(x, int) or x < 1 for x in v):
        raise AttrError(op, f"{name} must be a positive int or a pair; received {v!r}")
    return v


def window_pads(op, size, k, stride, dilation, padding):
    """(pad_lo, pad_hi, out) for one spatial dim, with TensorFlow's SAME/VALID rules."""
    if not isinstance(size, int):
        raise ShapeError(op, f"spatial dims must be static; received {size}")
    eff = (k - 1) * dilation + 1
    if padding == "SAME":
        out = -(-size // stride)
        total = max((out - 1) * stride + eff - size, 0)
        return total // 2, total - total // 2, out
    if padding == "VALID":
        lo = hi = 0
    elif isinstance(padding, tuple) and len(padding) == 2:
        lo, hi = padding
    else:
        raise AttrError(op, f"padding must be 'SAME', 'VALID' or [lo, hi] pairs; "
                            f"received {padding!r}")
    out = (size + lo + hi - eff) // stride + 1
    if out < 1:
        raise ShapeError(op, f"window {k} (dilation {dilation}) does not fit in input size "
                             f"{size} with padding {padding!r}")
    return lo, hi, out


def window_geometry(op, x_shape, ksize, attrs):
    """((pad_lo, pad_hi, out) per spatial dim, strides, dilations) of an NHWC window op."""
    strides = _pair(op, "strides", attrs["strides"])
    dil = _pair(op, "dilations", attrs.get("dilations", 1))
    padding = attrs["padding"]
    if not isinstance(padding, str):
        padding = tuple(tuple(p) for p in padding)
        if len(padding) != 2:
            raise AttrError(op, f"explicit padding needs 2 [lo, hi] pairs; received {padding}")
    per_dim = padding if not isinstance(padding, str) else (padding, padding)
    return [window_pads(op, x_shape[1 + i], ksize[i], strides[i], dil[i], per_dim[i])
            for i in range(2)], strides, dil


def _windows(x, ksize, strides, dil, geo, fill):
    """Yield (kh, kw, view) with view[n, oh, ow, c] = padded x at that window offset."""
    (t, b, oh), (l, r, ow) = geo
    xp = np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=fill)
    for kh in range(ksize[0]):
        for kw in range(ksize[1]):
            h0, w0 = kh * dil[0], kw * dil[1]
            yield kh, kw, xp[:, h0:h0 + (oh - 1) * strides[0] + 1:strides[0],
                             w0:w0 + (ow - 1) * strides[1] + 1:strides[1], :]


# -- conv2d ---------------------------------------------------------------------------------------


def _conv_infer(types, attrs):
    x, w = types
    require_dtype("conv2d", x, dt.FLOATS)
    same_dtype("conv2d", types)
    if x.rank != 4 or w.rank != 4:
        raise ShapeError("conv2d", f"expected input NHWC and filter HWIO (rank 4); received "
                                   f"{x} and {w}")
    g = attrs["groups"]
    c, o = x.shape[3], w.shape[3]
    if not isinstance(g, int) or g < 1 or c % g or o % g or w.shape[2] * g != c:
        raise ShapeError("conv2d", f"input channels {c} must equal filter in-channels "
                                   f"{w.shape[2]} x groups {g}, and {o} out-channels must divide "
                                   f"by groups; received {x} and {w}")
    geo, _, _ = window_geometry("conv2d", x.shape, w.shape[:2], attrs)
    return (x.with_shape((x.shape[0], geo[0][2], geo[1][2], o)),)


def _conv_ref(x, w, strides, padding, dilations, groups):
    geo, strides, dil = window_geometry("conv2d", x.shape, w.shape[:2],
                                 {"strides": strides, "padding": padding, "dilations": dilations})
    acc_dt = np.float32 if x.dtype == np.float16 else x.dtype
    n, c, o = x.shape[0], x.shape[3], w.shape[3]
    g, cg = groups, c // groups
    out = np.zeros((n, geo[0][2], geo[1][2], g, o // g), acc_dt)
    for kh, kw, view in _windows(x.astype(acc_dt), w.shape[:2], strides, dil, geo, 0):
        wk = w[kh, kw].astype(acc_dt).reshape(cg, g, o // g)
        out += np.einsum("nhwgc,cgo->nhwgo", view.reshape(view.shape[:3] + (g, cg)), wk)
    return out.reshape(out.shape[:3] + (o,)).astype(x.dtype)


CONV2D = register(OpDef(
    "conv2d", WINDOW, _conv_infer, _conv_ref, template="conv2d", n_inputs=2,
    attrs={"strides": (1, 1), "padding": "VALID", "dilations": (1, 1), "groups": 1}))


# -- pooling --------------------------------------------------------------------------------------


def _pool_infer(name):
    def infer(types, attrs):
        (x,) = types
        require_dtype(name, x, dt.FLOATS if name == "avg_pool" else dt.FLOATS + dt.INTS)
        if x.rank != 4:
            raise ShapeError(name, f"expected an NHWC input of rank 4; received {x}")
        ksize = _pair(name, "ksize", attrs["ksize"])
        geo, _, _ = window_geometry(name, x.shape, ksize, attrs)
        return (x.with_shape((x.shape[0], geo[0][2], geo[1][2], x.shape[3])),)
    return infer


def _max_pool_ref(x, ksize, strides, padding):
    ksize = _pair("max_pool", "ksize", ksize)
    geo, strides, dil = window_geometry("max_pool", x.shape, ksize, {"strides": strides,
                                                              "padding": padding})
    out = None
    for _, _, view in _windows(x, ksize, strides, dil, geo, dt.from_numpy(x.dtype).min()):
        out = view.copy() if out is None else np.maximum(out, view)
    return out


def _avg_pool_ref(x, ksize, strides, padding):
    ksize = _pair("avg_pool", "ksize", ksize)
    geo, strides, dil = window_geometry("avg_pool", x.shape, ksize, {"strides": strides,
                                                              "padding": padding})
    acc_dt = np.float32 if x.dtype == np.float16 else x.dtype
    ones = np.ones((1,) + x.shape[1:3] + (1,), acc_dt)
    total = count = 0
    for (_, _, v), (_, _, c) in zip(_windows(x.astype(acc_dt), ksize, strides, dil, geo, 0),
                                    _windows(ones, ksize, strides, dil, geo, 0)):
        total, count = total + v, count + c
    return (total / count).astype(x.dtype)


_POOL_ATTRS = {"ksize": REQUIRED, "strides": REQUIRED, "padding": "VALID"}
MAX_POOL = register(OpDef("max_pool", WINDOW, _pool_infer("max_pool"), _max_pool_ref,
                          attrs=_POOL_ATTRS, template="pool"))
AVG_POOL = register(OpDef("avg_pool", WINDOW, _pool_infer("avg_pool"), _avg_pool_ref,
                          attrs=_POOL_ATTRS, template="pool"))
