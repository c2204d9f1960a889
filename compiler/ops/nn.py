"""Windowed primitives on NHWC images: conv2d (HWIO filters, strides, SAME/VALID or explicit
padding, dilation, groups), max_pool and avg_pool (TensorFlow's SAME averages over the
elements inside the image only), and the pools' gradients max_pool_grad and avg_pool_grad.
conv2d's input gradient is a conv2d (of the dilated, padded output gradient with the flipped
filter); its filter gradient is conv2d_backprop_filter (TensorFlow's Conv2DBackpropFilter)."""

from __future__ import annotations

import numpy as np

from .. import dtypes as dt
from ..errors import AttrError, GradientError, ShapeError
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


def _offsets(ksize, strides, dil, geo):
    """Yield (kh, kw, index) where padded_x[index][n, oh, ow, c] is the element at window
    offset (kh, kw) of output position (oh, ow)."""
    (_, _, oh), (_, _, ow) = geo
    for kh in range(ksize[0]):
        for kw in range(ksize[1]):
            h0, w0 = kh * dil[0], kw * dil[1]
            yield kh, kw, (slice(None), slice(h0, h0 + (oh - 1) * strides[0] + 1, strides[0]),
                           slice(w0, w0 + (ow - 1) * strides[1] + 1, strides[1]))


def _pad_hw(x, geo, fill):
    (t, b, _), (l, r, _) = geo
    return np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=fill)


def _crop_hw(xp, geo):
    (t, b, _), (l, r, _) = geo
    return xp[:, t:xp.shape[1] - b, l:xp.shape[2] - r]


def _windows(x, ksize, strides, dil, geo, fill):
    """Yield (kh, kw, view) with view[n, oh, ow, c] = padded x at that window offset."""
    xp = _pad_hw(x, geo, fill)
    for kh, kw, index in _offsets(ksize, strides, dil, geo):
        yield kh, kw, xp[index]


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
    acc_dt = np.float32 if dt.is_narrow_np(x.dtype) else x.dtype
    n, c, o = x.shape[0], x.shape[3], w.shape[3]
    g, cg = groups, c // groups
    out = np.zeros((n, geo[0][2], geo[1][2], g, o // g), acc_dt)
    for kh, kw, view in _windows(x.astype(acc_dt), w.shape[:2], strides, dil, geo, 0):
        wk = w[kh, kw].astype(acc_dt).reshape(cg, g, o // g)
        out += np.einsum("nhwgc,cgo->nhwgo", view.reshape(view.shape[:3] + (g, cg)), wk)
    return out.reshape(out.shape[:3] + (o,)).astype(x.dtype)


def _pad_or_crop(e, x, hw_pads):
    """Pad dims 1 and 2 of x by (lo, hi) each; negative amounts crop."""
    shape = e.type(x).shape
    if any(p < 0 for pair in hw_pads for p in pair):
        begin = [0, max(-hw_pads[0][0], 0), max(-hw_pads[1][0], 0), 0]
        end = [shape[0], shape[1] - max(-hw_pads[0][1], 0), shape[2] - max(-hw_pads[1][1], 0),
               shape[3]]
        x = e("slice", x, begin=tuple(begin), end=tuple(end), stride=(1, 1, 1, 1))
    pads = ((0, 0),) + tuple((max(lo, 0), max(hi, 0)) for lo, hi in hw_pads) + ((0, 0),)
    return e("pad", x, pads=pads) if any(map(any, pads)) else x


def _conv_dx(e, x_shape, w, g, attrs):
    """The gradient of conv2d(x, w) for x (of ``x_shape``) from the output's cotangent g:
    a stride-1 conv of g (dilated by the strides, padded to full) with the flipped filter,
    in- and out-channels swapped per group."""
    (bn, hh, ww, c), (kh, kw, cg, o) = x_shape, e.type(w).shape
    groups = attrs["groups"]
    geo, strides, dil = window_geometry("conv2d", x_shape, (kh, kw), attrs)
    (t, b, oh), (l, r, ow) = geo
    gd = g
    if strides != (1, 1):  # insert stride-1 zeros after each element (and after the last)
        gd = e("reshape", g, shape=(bn, oh, 1, ow, 1, o))
        gd = e("pad", gd, pads=((0, 0), (0, 0), (0, strides[0] - 1), (0, 0),
                                (0, strides[1] - 1), (0, 0)))
        gd = e("reshape", gd, shape=(bn, oh * strides[0], ow * strides[1], o))
    full = [((k - 1) * d - lo, (lo + size + hi) - n_out * s - hi)
            for k, d, lo, hi, size, n_out, s in ((kh, dil[0], t, b, hh, oh, strides[0]),
                                                 (kw, dil[1], l, r, ww, ow, strides[1]))]
    wf = e("slice", w, begin=(kh - 1, kw - 1, 0, 0), end=(-1, -1, cg, o),
           stride=(-1, -1, 1, 1))
    wf = e("reshape", wf, shape=(kh, kw, cg, groups, o // groups))
    wf = e("reshape", e("transpose", wf, perm=(0, 1, 4, 3, 2)),
           shape=(kh, kw, o // groups, c))
    if all(p >= 0 for pair in full for p in pair):  # the conv pads as it reads
        return e("conv2d", gd, wf, strides=(1, 1), padding=tuple(full), dilations=dil,
                 groups=groups)
    return e("conv2d", _pad_or_crop(e, gd, full), wf, strides=(1, 1), padding="VALID",
             dilations=dil, groups=groups)


def _window_attrs(attrs) -> dict:
    return {k: attrs[k] for k in ("strides", "padding", "dilations", "groups")}


def _d_conv(e, n, g):
    """dx by ``_conv_dx``; dw by conv2d_backprop_filter (x's windows against g)."""
    x, w = n.inputs
    dx = _conv_dx(e, e.type(x).shape, w, g, n.attrs) if n.needs[0] else None
    dw = e("conv2d_backprop_filter", x, g, filter_size=tuple(e.type(w).shape[:2]),
           **_window_attrs(n.attrs)) if n.needs[1] else None
    return [dx, dw]


CONV2D = register(OpDef(
    "conv2d", WINDOW, _conv_infer, _conv_ref, template="conv2d", n_inputs=2, vjp=_d_conv,
    attrs={"strides": (1, 1), "padding": "VALID", "dilations": (1, 1), "groups": 1}))


# -- conv2d's filter gradient ---------------------------------------------------------------------


def _dconv_infer(types, attrs):
    op = "conv2d_backprop_filter"
    x, g = types
    require_dtype(op, x, dt.FLOATS)
    same_dtype(op, types)
    if x.rank != 4 or g.rank != 4:
        raise ShapeError(op, f"expected the input and the output's gradient NHWC (rank 4); "
                             f"received {x} and {g}")
    kh, kw = _pair(op, "filter_size", attrs["filter_size"])
    groups, c, o = attrs["groups"], x.shape[3], g.shape[3]
    if not isinstance(groups, int) or groups < 1 or not isinstance(c, int) or \
            not isinstance(o, int) or c % groups or o % groups:
        raise ShapeError(op, f"input channels {c} and gradient channels {o} must divide by "
                             f"groups {groups}")
    geo, _, _ = window_geometry(op, x.shape, (kh, kw), attrs)
    if tuple(g.shape[:3]) != (x.shape[0], geo[0][2], geo[1][2]):
        raise ShapeError(op, f"the output's gradient must be (batch, {geo[0][2]}, "
                             f"{geo[1][2]}, channels) for input {x}; received {g}")
    return (x.with_shape((kh, kw, c // groups, o)),)


def _dconv_ref(x, g, filter_size, strides, padding, dilations, groups):
    """dw[i, j, c, o] = sum over images and output pixels of the input at window offset
    (i, j), channel c of o's group, times the output's gradient at o."""
    geo, strides, dil = window_geometry("conv2d_backprop_filter", x.shape, filter_size,
                                 {"strides": strides, "padding": padding, "dilations": dilations})
    acc_dt = np.float32 if dt.is_narrow_np(x.dtype) else x.dtype
    c, o = x.shape[3], g.shape[3]
    gg = g.astype(acc_dt).reshape(g.shape[:3] + (groups, o // groups))
    out = np.zeros(tuple(filter_size) + (c // groups, groups, o // groups), acc_dt)
    for i, j, view in _windows(x.astype(acc_dt), filter_size, strides, dil, geo, 0):
        v = view.reshape(view.shape[:3] + (groups, c // groups))
        out[i, j] = np.einsum("nhwgc,nhwgo->cgo", v, gg)
    return out.reshape(tuple(filter_size) + (c // groups, o)).astype(x.dtype)


def _d_dconv(e, n, ct):
    """conv2d_backprop_filter(x, g) is bilinear: <dw(x, g), ct> = <conv2d(x, ct), g>."""
    x, g = n.inputs
    attrs = _window_attrs(n.attrs)
    dx = _conv_dx(e, e.type(x).shape, ct, g, attrs) if n.needs[0] else None
    dg = e("conv2d", x, ct, **attrs) if n.needs[1] else None
    return [dx, dg]


CONV2D_BACKPROP_FILTER = register(OpDef(
    "conv2d_backprop_filter", WINDOW, _dconv_infer, _dconv_ref, template="conv2d", n_inputs=2,
    vjp=_d_dconv, attrs={"filter_size": REQUIRED, "strides": (1, 1), "padding": "VALID",
                         "dilations": (1, 1), "groups": 1}))


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
    acc_dt = np.float32 if dt.is_narrow_np(x.dtype) else x.dtype
    ones = np.ones((1,) + x.shape[1:3] + (1,), acc_dt)
    total = count = 0
    for (_, _, v), (_, _, c) in zip(_windows(x.astype(acc_dt), ksize, strides, dil, geo, 0),
                                    _windows(ones, ksize, strides, dil, geo, 0)):
        total, count = total + v, count + c
    return (total / count).astype(x.dtype)


_POOL_ATTRS = {"ksize": REQUIRED, "strides": REQUIRED, "padding": "VALID"}
MAX_POOL = register(OpDef(
    "max_pool", WINDOW, _pool_infer("max_pool"), _max_pool_ref, attrs=_POOL_ATTRS,
    template="pool", vjp=lambda e, n, g: [e("max_pool_grad", n.inputs[0], n.output, g,
                                            **n.attrs)]))
AVG_POOL = register(OpDef(
    "avg_pool", WINDOW, _pool_infer("avg_pool"), _avg_pool_ref, attrs=_POOL_ATTRS,
    template="pool", vjp=lambda e, n, g: [e("avg_pool_grad", g, input_size=e.type(
        n.inputs[0]).shape[1:3], **n.attrs)]))


# -- the pools' gradients -------------------------------------------------------------------------


def _pool_grad_geometry(name, x_shape, g, attrs):
    ksize = _pair(name, "ksize", attrs["ksize"])
    geo, strides, dil = window_geometry(name, x_shape, ksize, attrs)
    want = (x_shape[0], geo[0][2], geo[1][2], x_shape[3])
    if tuple(g.shape) != want:
        raise ShapeError(name, f"the gradient must have the pool's output shape "
                               f"[{','.join(map(str, want))}]; received {g}")
    return ksize, strides, dil, geo


def _max_pool_grad_infer(types, attrs):
    x, y, g = types
    same_dtype("max_pool_grad", types)
    _pool_infer("max_pool_grad")([x], attrs)
    _pool_grad_geometry("max_pool_grad", x.shape, y, attrs)
    _pool_grad_geometry("max_pool_grad", x.shape, g, attrs)
    return (x,)


def _max_pool_grad_ref(x, y, g, ksize, strides, padding):
    """Each window's gradient goes to its first maximal element (TensorFlow's MaxPoolGrad)."""
    ksize, strides, dil, geo = _pool_grad_geometry(
        "max_pool_grad", x.shape, g, {"ksize": ksize, "strides": strides, "padding": padding})
    (t, b, _), (l, r, _) = geo
    dxp = np.zeros((x.shape[0], t + x.shape[1] + b, l + x.shape[2] + r, x.shape[3]), x.dtype)
    taken = np.zeros(g.shape, bool)
    for (_, _, view), (_, _, index) in zip(
            _windows(x, ksize, strides, dil, geo, dt.from_numpy(x.dtype).min()),
            _offsets(ksize, strides, dil, geo)):
        hit = (view == y) & ~taken
        taken |= hit
        dxp[index] += np.where(hit, g, 0)
    return _crop_hw(dxp, geo)


def _second_order_max_pool(e, n, g):
    raise GradientError("max_pool_grad", "second derivatives through max_pool are not "
                        "supported yet")


MAX_POOL_GRAD = register(OpDef(
    "max_pool_grad", WINDOW, _max_pool_grad_infer, _max_pool_grad_ref, attrs=_POOL_ATTRS,
    template="pool_grad", n_inputs=3, vjp=_second_order_max_pool))


def _avg_pool_grad_infer(types, attrs):
    (g,) = types
    require_dtype("avg_pool_grad", g, dt.FLOATS)
    size = _pair("avg_pool_grad", "input_size", attrs["input_size"])
    if g.rank != 4:
        raise ShapeError("avg_pool_grad", f"expected an NHWC gradient of rank 4; received {g}")
    x_shape = (g.shape[0],) + size + (g.shape[3],)
    _pool_grad_geometry("avg_pool_grad", x_shape, g, attrs)
    return (g.with_shape(x_shape),)


def _avg_pool_grad_ref(g, ksize, strides, padding, input_size):
    """Each window's gradient shared equally by the elements it averaged (inside the image)."""
    x_shape = (g.shape[0],) + tuple(input_size) + (g.shape[3],)
    ksize, strides, dil, geo = _pool_grad_geometry(
        "avg_pool_grad", x_shape, g, {"ksize": ksize, "strides": strides, "padding": padding})
    acc_dt = np.float32 if dt.is_narrow_np(g.dtype) else g.dtype
    inside = _pad_hw(np.ones((1,) + tuple(input_size) + (1,), acc_dt), geo, 0)
    count = sum(inside[index] for _, _, index in _offsets(ksize, strides, dil, geo))
    share = g.astype(acc_dt) / count
    dxp = np.zeros((g.shape[0],) + inside.shape[1:3] + (g.shape[3],), acc_dt)
    for _, _, index in _offsets(ksize, strides, dil, geo):
        dxp[index] += share
    return _crop_hw(dxp, geo).astype(g.dtype)


AVG_POOL_GRAD = register(OpDef(
    "avg_pool_grad", WINDOW, _avg_pool_grad_infer, _avg_pool_grad_ref,
    attrs=_POOL_ATTRS | {"input_size": REQUIRED}, template="pool_grad",
    vjp=lambda e, n, g: [e("avg_pool", g, **{k: v for k, v in n.attrs.items()
                                            if k != "input_size"})]))
