"""Numeric and image preprocessing layers, as ``tf.keras.layers`` (Keras 3's formulas):
Rescaling, Normalization (with ``adapt``), Resizing, CenterCrop, RandomCrop, RandomFlip and
RandomContrast. They are ordinary layers, so they compile into the model's program (inside
``fit`` the augmentation is part of the fused train step). The random ones act when
``training`` is true or not given (Keras 3 calls them with ``training=True`` by default)
and are the identity in ``predict`` and ``evaluate``."""

from __future__ import annotations

import numpy as np

from ... import array_ops as A
from ... import image
from ... import math_ops as M
from ... import random as R
from .base import Layer

EPSILON = 1e-7  # keras.backend.epsilon()


def _data_batches(data):
    """The arrays ``adapt`` reads: one array (or tensor), or each batch of a Dataset or
    other iterable of batches (a batch of (x, y) pairs contributes its x)."""
    from ...tensor import Tensor
    if isinstance(data, (np.ndarray, Tensor)):
        yield np.asarray(data)
        return
    for batch in data:
        if isinstance(batch, (tuple, list)):
            batch = batch[0]
        yield np.asarray(batch)


class Rescaling(Layer):
    """``inputs * scale + offset`` in the layer's float dtype."""

    supports_masking = True

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale, self.offset = scale, offset

    def call(self, inputs):
        x = M.cast(inputs, self.compute_dtype)
        return x * np.asarray(self.scale, x.dtype.np) + np.asarray(self.offset, x.dtype.np)

    def get_config(self):
        def plain(v):
            return np.asarray(v).tolist()
        return super().get_config() | {"scale": plain(self.scale), "offset": plain(self.offset)}


class Normalization(Layer):
    """``(inputs - mean) / max(sqrt(variance), 1e-7)`` (``invert``: the inverse), with
    a mean and variance per position of ``axis`` (None: one over everything): given, or
    learned from data by ``adapt`` (the population variance). Adapted statistics are
    non-trainable weights ``mean``, ``variance`` and ``count``, saved with the model."""

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        super().__init__(**kwargs)
        self.axis = () if axis is None else (axis,) if isinstance(axis, int) else tuple(axis)
        if (mean is None) != (variance is None):
            raise ValueError(f"{self.name}: pass both mean and variance, or neither (and "
                             f"adapt); received mean={mean!r}, variance={variance!r}")
        self.input_mean, self.input_variance, self.invert = mean, variance, invert

    def build(self, input_shape):
        rank = len(input_shape)
        if any(not -rank <= a < rank for a in self.axis):
            raise ValueError(f"{self.name}: axis {self.axis} out of range for inputs of rank "
                             f"{rank}")
        self._keep = tuple(sorted(a % rank for a in self.axis))
        if any(input_shape[a] is None for a in self._keep):
            raise ValueError(f"{self.name}: the kept axes {self._keep} need known sizes; "
                             f"received input shape {tuple(input_shape)}")
        self._bshape = [input_shape[a] if a in self._keep else 1 for a in range(rank)]
        shape = tuple(input_shape[a] for a in self._keep)
        if self.input_mean is None:
            self.adapt_mean = self.add_weight("mean", shape, initializer="zeros",
                                              trainable=False)
            self.adapt_variance = self.add_weight("variance", shape, initializer="ones",
                                                  trainable=False)
            self.count = self.add_weight("count", (), initializer="zeros", dtype="int64",
                                         trainable=False)
        self.built = True

    def adapt(self, data, steps=None):
        """Learn the mean and variance of ``data`` (an array, or a batched Dataset or
        iterable of batches; ``steps`` batches at most)."""
        total = None
        for i, batch in enumerate(_data_batches(data)):
            if steps is not None and i >= steps:
                break
            x = batch.astype(np.float64)
            if not self.built:
                self.build((None,) + x.shape[1:])
                self.built = True
            axes = tuple(a for a in range(x.ndim) if a not in self._keep)
            n = int(np.prod([x.shape[a] for a in axes]))
            part = (n, x.sum(axes), (x * x).sum(axes))
            total = part if total is None else tuple(t + p for t, p in zip(total, part))
        if total is None:
            raise ValueError(f"{self.name}: adapt received no data")
        n, s, ss = total
        mean = s / n
        self.adapt_mean.assign(mean.astype(self.adapt_mean.dtype.np))
        self.adapt_variance.assign(np.maximum(ss / n - mean * mean, 0.0).astype(
            self.adapt_variance.dtype.np))
        self.count.assign(np.int64(n))

    def _stats(self, dtype):
        if self.input_mean is not None:
            mean = np.broadcast_to(np.asarray(self.input_mean, dtype.np), self._bshape)
            var = np.broadcast_to(np.asarray(self.input_variance, dtype.np), self._bshape)
            return A.constant(np.ascontiguousarray(mean)), A.constant(np.ascontiguousarray(var))
        return (A.reshape(M.cast(self.adapt_mean, dtype), self._bshape),
                A.reshape(M.cast(self.adapt_variance, dtype), self._bshape))

    def call(self, inputs):
        x = M.cast(inputs, self.compute_dtype)
        mean, var = self._stats(x.dtype)
        std = M.maximum(M.sqrt(var), EPSILON)
        return mean + x * std if self.invert else (x - mean) / std

    def get_config(self):
        def plain(v):
            return None if v is None else np.asarray(v).tolist()
        axis = None if not self.axis else self.axis[0] if len(self.axis) == 1 else \
            list(self.axis)
        return super().get_config() | {"axis": axis, "mean": plain(self.input_mean),
                                       "variance": plain(self.input_variance),
                                       "invert": self.invert}


def _size(layer, height, width):
    if not all(isinstance(v, (int, np.integer)) and v > 0 for v in (height, width)):
        raise ValueError(f"{type(layer).__name__}: height and width must be positive ints; "
                         f"received {height!r}, {width!r}")
    return int(height), int(width)


def _hw(layer, x):
    if x.shape.rank not in (3, 4) or x.shape[-3] is None or x.shape[-2] is None:
        raise ValueError(f"{layer.name}: expected images (batch, height, width, channels) of "
                         f"known height and width; received shape {tuple(x.shape)}")
    return x.shape[-3], x.shape[-2]


def _smart_resize(x, height, width, interpolation="bilinear"):
    """The largest centred crop of ``x`` with the target's aspect ratio, resized to it
    (keras.preprocessing.image.smart_resize)."""
    h, w = x.shape[-3], x.shape[-2]
    ch = max(min(h, int(w * height / width)), 1)
    cw = max(min(w, int(h * width / height)), 1)
    x = image.crop_to_bounding_box(x, (h - ch) // 2, (w - cw) // 2, ch, cw)
    if (ch, cw) != (height, width):
        x = image.resize(x, [height, width], method=interpolation)
    return x


class Resizing(Layer):
    """Images resized to ``(height, width)`` (half-pixel centres, as TensorFlow's
    ``image.resize``); ``crop_to_aspect_ratio`` first takes the largest centred crop with
    the target's aspect ratio."""

    def __init__(self, height, width, interpolation="bilinear", crop_to_aspect_ratio=False,
                 **kwargs):
        super().__init__(**kwargs)
        self.height, self.width = _size(self, height, width)
        if interpolation not in ("bilinear", "nearest"):
            raise ValueError(f"Resizing: interpolation must be 'bilinear' or 'nearest'; "
                             f"received {interpolation!r}")
        self.interpolation, self.crop_to_aspect_ratio = interpolation, crop_to_aspect_ratio

    def call(self, inputs):
        x = M.cast(inputs, self.compute_dtype)
        _hw(self, x)
        if self.crop_to_aspect_ratio:
            return _smart_resize(x, self.height, self.width, self.interpolation)
        return image.resize(x, [self.height, self.width], method=self.interpolation)

    def get_config(self):
        return super().get_config() | {"height": self.height, "width": self.width,
                                       "interpolation": self.interpolation,
                                       "crop_to_aspect_ratio": self.crop_to_aspect_ratio}


class CenterCrop(Layer):
    """The centred ``(height, width)`` window of each image; an image smaller than that
    is cropped to the target's aspect ratio and resized to it, as Keras."""

    def __init__(self, height, width, **kwargs):
        super().__init__(**kwargs)
        self.height, self.width = _size(self, height, width)

    def call(self, inputs):
        x = M.cast(inputs, self.compute_dtype)
        h, w = _hw(self, x)
        if h >= self.height and w >= self.width:
            return image.crop_to_bounding_box(x, (h - self.height) // 2, (w - self.width) // 2,
                                              self.height, self.width)
        return _smart_resize(x, self.height, self.width)

    def get_config(self):
        return super().get_config() | {"height": self.height, "width": self.width}


class _Random(Layer):
    """An augmentation: active when ``training`` is true or not given."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed

    def call(self, inputs, training=None):
        x = M.cast(inputs, self.compute_dtype)
        _hw(self, x)
        return self.augment(x) if training is None or training else self.infer(x)

    def infer(self, x):
        return x

    def draws(self, x):
        """The shape of one draw per image, broadcasting over it."""
        return [x.ir_type.shape[0], 1, 1, 1] if x.shape.rank == 4 else [1, 1, 1]

    def get_config(self):
        return super().get_config() | {"seed": self.seed}


class RandomFlip(_Random):
    """Each image mirrored left-right and/or upside down with probability 1/2 (``mode``:
    "horizontal", "vertical" or "horizontal_and_vertical", each direction drawn apart)."""

    MODES = ("horizontal", "vertical", "horizontal_and_vertical")

    def __init__(self, mode="horizontal_and_vertical", seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        if mode not in self.MODES:
            raise ValueError(f"RandomFlip: mode must be one of {self.MODES}; received "
                             f"{mode!r}")
        self.mode = mode

    def augment(self, x):
        r = x.shape.rank
        if self.mode != "vertical":
            x = M.where(R.uniform(self.draws(x), seed=self.seed) < 0.5,
                        A.reverse(x, [r - 2]), x)
        if self.mode != "horizontal":
            x = M.where(R.uniform(self.draws(x), seed=self.seed) < 0.5,
                        A.reverse(x, [r - 3]), x)
        return x

    def get_config(self):
        return super().get_config() | {"mode": self.mode}


def _factor(layer, factor):
    """Keras's ``factor``: a number f gives (f, f), a pair (lower, upper) as given."""
    if isinstance(factor, (int, float)):
        lower = upper = abs(float(factor))
    elif isinstance(factor, (tuple, list)) and len(factor) == 2:
        lower, upper = (float(v) for v in factor)
    else:
        raise ValueError(f"{type(layer).__name__}: factor must be a number or a pair; "
                         f"received {factor!r}")
    if not 0 <= lower <= 1 or upper < 0:
        raise ValueError(f"{type(layer).__name__}: factor must lie in [0, 1] (upper may "
                         f"exceed 1); received {factor!r}")
    return lower, upper


class RandomContrast(_Random):
    """Each image's contrast scaled by a factor drawn from ``[1 - lower, 1 + upper]``
    about its per-channel mean, then clipped to ``value_range``."""

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        self.factor = factor
        self._lower, self._upper = _factor(self, factor)
        self.value_range = tuple(value_range)

    def augment(self, x):
        r = x.shape.rank
        f = R.uniform(self.draws(x), 1.0 - self._lower, 1.0 + self._upper, dtype=x.dtype,
                      seed=self.seed)
        mean = M.reduce_mean(x, [r - 3, r - 2], keepdims=True)
        return M.clip_by_value((x - mean) * f + mean, *self.value_range)

    def get_config(self):
        return super().get_config() | {"factor": self.factor,
                                       "value_range": list(self.value_range)}


class RandomCrop(_Random):
    """While training, one ``(height, width)`` window of the batch at a random offset (an
    image not larger than the window: its largest centred crop with the window's aspect
    ratio, resized to it); otherwise the images as they are, as Keras 3."""

    def __init__(self, height, width, seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        self.height, self.width = _size(self, height, width)

    def augment(self, x):
        h, w = _hw(self, x)
        if h <= self.height or w <= self.width:
            return _smart_resize(x, self.height, self.width)
        top = R.uniform([], 0, h - self.height + 1, dtype="int32", seed=self.seed)
        left = R.uniform([], 0, w - self.width + 1, dtype="int32", seed=self.seed)
        return image.crop_to_bounding_box(x, top, left, self.height, self.width)

    def get_config(self):
        return super().get_config() | {"height": self.height, "width": self.width}
