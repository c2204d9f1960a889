"""Reshaping and activation layers with Keras 3's names, defaults and formulas:
ZeroPadding1D/2D, Cropping1D/2D, UpSampling1D/2D (nearest), RepeatVector; ReLU, LeakyReLU,
ELU, Softmax, Identity, UnitNormalization, ActivityRegularization."""

from __future__ import annotations

from ... import array_ops as A
from ... import math_ops as M
from ... import nn
from .base import Layer


def _pairs(value, n: int, name: str, what: str) -> tuple:
    """``n`` (before, after) pairs from an int, n ints or n pairs."""
    if isinstance(value, int):
        return ((value, value),) * n
    value = tuple(value)
    if len(value) == 2 and n == 1 and all(isinstance(v, int) for v in value):
        return (value,)
    if len(value) != n:
        raise ValueError(f"{name}: {what} must be an int, {n} ints or {n} pairs; received "
                         f"{value!r}")
    out = tuple((v, v) if isinstance(v, int) else tuple(v) for v in value)
    if any(len(p) != 2 or min(p) < 0 for p in out):
        raise ValueError(f"{name}: {what} must be non-negative; received {value!r}")
    return out


class _Padding(Layer):
    rank = 1

    def __init__(self, padding=1, **kwargs):
        super().__init__(**kwargs)
        self.padding = _pairs(padding, self.rank, type(self).__name__, "padding")

    def call(self, inputs):
        return A.pad(inputs, [[0, 0], *[list(p) for p in self.padding], [0, 0]])

    def get_config(self):
        return super().get_config() | {"padding": [list(p) for p in self.padding]}


class ZeroPadding1D(_Padding):
    """Zeros before and after the steps of [batch, steps, features]."""
    rank = 1


class ZeroPadding2D(_Padding):
    """Zero rows and columns around [batch, rows, cols, channels]."""
    rank = 2

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        _channels_last(data_format, "ZeroPadding2D")
        super().__init__(padding, **kwargs)


class _Cropping(Layer):
    rank = 1

    def __init__(self, cropping=1, **kwargs):
        super().__init__(**kwargs)
        self.cropping = _pairs(cropping, self.rank, type(self).__name__, "cropping")

    def call(self, inputs):
        index = [slice(None)]
        for (lo, hi), size in zip(self.cropping, inputs.shape[1:1 + self.rank]):
            if size is not None and lo + hi >= size:
                raise ValueError(f"{self.name}: cropping {lo}+{hi} leaves nothing of {size}")
            index.append(slice(lo, size - hi if size is not None else -hi or None))
        return inputs[tuple(index)]

    def get_config(self):
        return super().get_config() | {"cropping": [list(p) for p in self.cropping]}


class Cropping1D(_Cropping):
    rank = 1


class Cropping2D(_Cropping):
    rank = 2

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        _channels_last(data_format, "Cropping2D")
        super().__init__(cropping, **kwargs)


class UpSampling1D(Layer):
    """Each step repeated ``size`` times."""

    def __init__(self, size=2, **kwargs):
        super().__init__(**kwargs)
        self.size = int(size)

    def call(self, inputs):
        return _repeat(inputs, 1, self.size)

    def get_config(self):
        return super().get_config() | {"size": self.size}


class UpSampling2D(Layer):
    """Each row and column repeated ``size`` times (nearest neighbour)."""

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        _channels_last(data_format, "UpSampling2D")
        if interpolation != "nearest":
            raise ValueError(f"UpSampling2D: interpolation {interpolation!r} is not supported "
                             f"yet; use 'nearest' (or tf.image.resize)")
        super().__init__(**kwargs)
        self.size = (size, size) if isinstance(size, int) else tuple(int(s) for s in size)

    def call(self, inputs):
        return _repeat(_repeat(inputs, 1, self.size[0]), 2, self.size[1])

    def get_config(self):
        return super().get_config() | {"size": list(self.size)}


def _repeat(x, axis: int, times: int):
    """``x`` with every index along ``axis`` repeated ``times`` times in place."""
    if times == 1:
        return x
    shape = list(x.shape)
    expanded = A.expand_dims(x, axis + 1)
    target = shape[:axis + 1] + [times] + shape[axis + 1:]
    tiled = A.broadcast_to(expanded, [A.shape(x)[0] if d is None else d for d in target])
    return A.reshape(tiled, [-1] + shape[1:axis] + [shape[axis] * times] + shape[axis + 1:])


def _channels_last(data_format, name):
    if data_format not in (None, "channels_last"):
        raise ValueError(f"{name}: only data_format='channels_last' is supported; received "
                         f"{data_format!r}")


class RepeatVector(Layer):
    """[batch, features] -> [batch, n, features]."""

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        self.n = int(n)

    def call(self, inputs):
        return _repeat(A.expand_dims(inputs, 1), 1, self.n)

    def get_config(self):
        return super().get_config() | {"n": self.n}


class ReLU(Layer):
    """``max_value`` above it, ``x`` from ``threshold`` up, ``negative_slope * (x -
    threshold)`` below (Keras's ReLU layer)."""

    supports_masking = True

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        if max_value is not None and max_value < 0 or negative_slope < 0 or threshold < 0:
            raise ValueError(f"ReLU: max_value, negative_slope and threshold must be >= 0; "
                             f"received {max_value}, {negative_slope}, {threshold}")
        self.max_value, self.negative_slope, self.threshold = max_value, negative_slope, \
            threshold

    def call(self, inputs):
        x = inputs
        below = (x - self.threshold) * self.negative_slope if self.negative_slope else \
            A.zeros_like(x)
        y = M.where(x >= self.threshold, x, below)
        return y if self.max_value is None else M.minimum(y, float(self.max_value))

    def get_config(self):
        return super().get_config() | {"max_value": self.max_value, "negative_slope":
                                       self.negative_slope, "threshold": self.threshold}


class LeakyReLU(Layer):
    supports_masking = True

    def __init__(self, negative_slope=0.3, **kwargs):
        if "alpha" in kwargs:  # (the Keras 2 name)
            negative_slope = kwargs.pop("alpha")
        super().__init__(**kwargs)
        self.negative_slope = float(negative_slope)

    def call(self, inputs):
        return nn.leaky_relu(inputs, self.negative_slope)

    def get_config(self):
        return super().get_config() | {"negative_slope": self.negative_slope}


class ELU(Layer):
    supports_masking = True

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = float(alpha)

    def call(self, inputs):
        return M.where(inputs > 0, inputs, (M.exp(M.minimum(inputs, 0.0)) - 1.0) * self.alpha)

    def get_config(self):
        return super().get_config() | {"alpha": self.alpha}


class Softmax(Layer):
    supports_masking = True

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, inputs, mask=None):
        if mask is not None:  # masked positions get no probability, as Keras
            inputs = inputs + (1.0 - M.cast(mask, inputs.dtype)) * -1e9
        return nn.softmax(inputs, axis=self.axis)

    def get_config(self):
        return super().get_config() | {"axis": self.axis}


class Identity(Layer):
    supports_masking = True

    def call(self, inputs):
        return A.identity(inputs)


class UnitNormalization(Layer):
    """``x / ||x||`` along ``axis`` (an L2 norm of at least 1e-12)."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, inputs):
        return nn.l2_normalize(inputs, axis=self.axis)

    def get_config(self):
        return super().get_config() | {"axis": self.axis}


class ActivityRegularization(Layer):
    """Passes its input on and adds ``l1 * sum|x| + l2 * sum x^2`` to the model's losses."""

    supports_masking = True

    def __init__(self, l1=0.0, l2=0.0, **kwargs):
        super().__init__(**kwargs)
        self.l1, self.l2 = float(l1), float(l2)

    def call(self, inputs):
        if self.l1 or self.l2:
            from ..regularizers import L1L2
            self.add_loss(L1L2(self.l1, self.l2)(inputs))
        return inputs

    def get_config(self):
        return super().get_config() | {"l1": self.l1, "l2": self.l2}
