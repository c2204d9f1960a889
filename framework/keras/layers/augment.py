"""Geometric augmentation layers, as ``tf.keras.layers`` (Keras 3's formulas): RandomRotation,
RandomZoom and RandomTranslation, each an affine map drawn per image and applied by
``affine_transform`` — TensorFlow's ImageProjectiveTransformV3 sampling (an output pixel
reads the input at the mapped point; "reflect", "nearest" or "constant" outside the image;
bilinear or nearest interpolation). Active when ``training`` is true or not given, the
identity in ``predict`` and ``evaluate``; they compile into the model's program."""

from __future__ import annotations

import math

import numpy as np

from ... import array_ops as A
from ... import math_ops as M
from ... import random as R
from ...segment_ops import cumsum
from .preprocessing import _hw, _Random

FILL_MODES = ("reflect", "nearest", "constant")
INTERPOLATIONS = ("bilinear", "nearest")


def _mapped(v, size: int, fill_mode: str):
    """Coordinates outside [0, size - 1] brought inside as ``fill_mode`` says (TensorFlow's
    MapCoordinate; "constant" leaves them, to read the fill value)."""
    if fill_mode == "constant":
        return v
    if fill_mode == "reflect":  # about -0.5 and size - 0.5, period 2 size
        if size <= 1:
            return v * 0.0
        u = M.floormod(v + 0.5, 2.0 * size)
        v = M.where(u < size, u, 2.0 * size - u) - 0.5
    return M.clip_by_value(v, 0.0, float(size - 1))


def affine_transform(images, transforms, interpolation="bilinear", fill_mode="reflect",
                     fill_value=0.0):
    """Each image of ``images`` (N, H, W, C) resampled through its transform, a row of
    ``transforms`` (N, 8): [a0, a1, a2, b0, b1, b2, c0, c1] maps output pixel (x, y) to
    the input point ((a0 x + a1 y + a2) / k, (b0 x + b1 y + b2) / k), k = c0 x + c1 y + 1."""
    if interpolation not in INTERPOLATIONS or fill_mode not in FILL_MODES:
        raise ValueError(f"affine_transform: interpolation must be one of {INTERPOLATIONS} "
                         f"and fill_mode one of {FILL_MODES}; received {interpolation!r}, "
                         f"{fill_mode!r}")
    x = images
    _, h, w, c = x.shape
    t = M.cast(transforms, x.dtype)

    def col(i):  # a transform entry, shaped to broadcast over (N, H, W)
        return A.reshape(t[:, i], [-1, 1, 1])
    ys = A.constant(np.arange(h, dtype=x.dtype.np).reshape(1, h, 1))
    xs = A.constant(np.arange(w, dtype=x.dtype.np).reshape(1, 1, w))
    k = col(6) * xs + col(7) * ys + 1.0
    px = _mapped((col(0) * xs + col(1) * ys + col(2)) / k, w, fill_mode)
    py = _mapped((col(3) * xs + col(4) * ys + col(5)) / k, h, fill_mode)
    # each image's first row in the flattened batch (an iota over a batch of any size)
    base = A.reshape(M.cast(cumsum(A.ones_like(t[:, 0]), exclusive=True), "int32") * (h * w),
                     [-1, 1, 1])
    flat = A.reshape(x, [-1, c])
    fill = A.constant(np.asarray(fill_value, x.dtype.np))

    def read(iy, ix):  # pixels at integer coordinates (float tensors), the fill outside
        inside = M.logical_and(M.logical_and(iy >= 0.0, iy <= h - 1.0),
                               M.logical_and(ix >= 0.0, ix <= w - 1.0))
        at = base + M.cast(M.clip_by_value(iy, 0.0, h - 1.0), "int32") * w + \
            M.cast(M.clip_by_value(ix, 0.0, w - 1.0), "int32")
        return M.where(A.expand_dims(inside, -1), A.gather(flat, at), fill)
    if interpolation == "nearest":
        return read(_round_half_away(py), _round_half_away(px))
    y0, x0 = M.floor(py), M.floor(px)
    y1, x1 = y0 + 1.0, x0 + 1.0
    wx0, wx1 = A.expand_dims(x1 - px, -1), A.expand_dims(px - x0, -1)
    top = wx0 * read(y0, x0) + wx1 * read(y0, x1)
    bottom = wx0 * read(y1, x0) + wx1 * read(y1, x1)
    return A.expand_dims(y1 - py, -1) * top + A.expand_dims(py - y0, -1) * bottom


def _round_half_away(v):
    return M.sign(v) * M.floor(M.abs(v) + 0.5)


def _factor(layer, factor, name):
    """Keras's factor: f gives (-f, f); a pair (lower, upper) as given, sorted."""
    if isinstance(factor, (int, float)):
        lower, upper = -abs(float(factor)), abs(float(factor))
    elif isinstance(factor, (tuple, list)) and len(factor) == 2:
        lower, upper = sorted(float(v) for v in factor)
    else:
        raise ValueError(f"{type(layer).__name__}: {name} must be a number or a pair; "
                         f"received {factor!r}")
    if lower < -1.0 or upper > 1.0:
        raise ValueError(f"{type(layer).__name__}: {name} must lie in [-1, 1]; received "
                         f"{factor!r}")
    return lower, upper


class _Affine(_Random):
    def __init__(self, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, **kwargs):
        super().__init__(seed, **kwargs)
        if fill_mode not in FILL_MODES:
            raise ValueError(f"{type(self).__name__}: fill_mode must be one of {FILL_MODES} "
                             f"('wrap' is not supported); received {fill_mode!r}")
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"{type(self).__name__}: interpolation must be one of "
                             f"{INTERPOLATIONS}; received {interpolation!r}")
        self.fill_mode, self.interpolation = fill_mode, interpolation
        self.fill_value = float(fill_value)

    def augment(self, x):
        single = x.shape.rank == 3
        if single:
            x = A.expand_dims(x, 0)
        h, w = _hw(self, x)
        n = A.shape(x)[0] if x.shape[0] is None else x.shape[0]
        y = affine_transform(x, self.transforms(n, h, w), self.interpolation,
                             self.fill_mode, self.fill_value)
        return A.squeeze(y, [0]) if single else y

    def draw(self, n, lower, upper):
        return R.uniform([n, 1], lower, upper, seed=self.seed)

    def get_config(self):
        return super().get_config() | {"fill_mode": self.fill_mode,
                                       "interpolation": self.interpolation,
                                       "fill_value": self.fill_value}


def _rows(*cols):
    zeros = cols[0] * 0.0
    return A.concat(list(cols) + [zeros, zeros], 1)


class RandomRotation(_Affine):
    """Each image rotated about its centre by an angle drawn from ``factor`` turns
    (``factor`` f: [-f, f] x 360 degrees)."""

    def __init__(self, factor, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.factor = factor
        self._range = _factor(self, factor, "factor")

    def transforms(self, n, h, w):
        angle = self.draw(n, self._range[0] * 360.0, self._range[1] * 360.0) * (math.pi / 180)
        cx, cy = 0.5 * (w - 1), 0.5 * (h - 1)
        cos, sin = M.cos(angle), M.sin(angle)
        return _rows(cos, -sin, cx - cx * cos + cy * sin, sin, cos, cy - cx * sin - cy * cos)

    def get_config(self):
        return super().get_config() | {"factor": self.factor}


class RandomZoom(_Affine):
    """Each image zoomed about its centre: its height by 1 + a draw from
    ``height_factor`` (negative: in, positive: out), its width by ``width_factor``'s
    (None: the height's)."""

    def __init__(self, height_factor, width_factor=None, fill_mode="reflect",
                 interpolation="bilinear", seed=None, fill_value=0.0, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.height_factor, self.width_factor = height_factor, width_factor
        self._h = _factor(self, height_factor, "height_factor")
        self._w = None if width_factor is None else _factor(self, width_factor,
                                                            "width_factor")

    def transforms(self, n, h, w):
        zh = self.draw(n, 1.0 + self._h[0], 1.0 + self._h[1])
        zw = zh if self._w is None else self.draw(n, 1.0 + self._w[0], 1.0 + self._w[1])
        zero = zh * 0.0
        return _rows(zw, zero, (w - 1) / 2.0 * (1.0 - zw), zero, zh, (h - 1) / 2.0 * (1.0 - zh))

    def get_config(self):
        return super().get_config() | {"height_factor": self.height_factor,
                                       "width_factor": self.width_factor}


class RandomTranslation(_Affine):
    """Each image shifted by a draw from ``height_factor`` of its height and one from
    ``width_factor`` of its width."""

    def __init__(self, height_factor, width_factor, fill_mode="reflect",
                 interpolation="bilinear", seed=None, fill_value=0.0, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.height_factor, self.width_factor = height_factor, width_factor
        self._h = _factor(self, height_factor, "height_factor")
        self._w = _factor(self, width_factor, "width_factor")

    def transforms(self, n, h, w):
        dy = self.draw(n, *self._h) * float(h)
        dx = self.draw(n, *self._w) * float(w)
        one = dy * 0.0 + 1.0
        return _rows(one, one * 0.0, -dx, one * 0.0, one, -dy)

    def get_config(self):
        return super().get_config() | {"height_factor": self.height_factor,
                                       "width_factor": self.width_factor}
