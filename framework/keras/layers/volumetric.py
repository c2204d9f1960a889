"""3-D (volumetric) convolution and pooling layers, channels last (batch, depth, height,
width, channels), as ``tf.keras.layers``: Conv3D, MaxPooling3D, AveragePooling3D,
GlobalAveragePooling3D, GlobalMaxPooling3D. A 3-D window is a 2-D one at each depth tap:
Conv3D is one 2-D convolution per depth tap of the kernel over the depth slices folded into
the batch (their sum), a 3-D pool a 2-D pool and then a pool over depth, so each runs on the
2-D kernels (and their gradients) and compiles as they do."""

from __future__ import annotations

import numpy as np

from compiler.errors import ShapeError

from ... import array_ops as A
from ... import math_ops as M
from ... import nn, tracing
from .base import Layer
from .conv import _check_format, _Conv, _tuple


def _depth_taps(x, size, kd, stride, dilation, padding, fill=0.0):
    """The depth slices each tap of a ``kd``-deep window reads, for every output depth:
    ``kd`` tensors (batch, out depth, ...) and the output depth; "same" pads the depth as
    TensorFlow does (the extra pad at the end), with ``fill``."""
    span = (kd - 1) * dilation + 1
    if padding == "same":
        out = -(-size // stride)
        total = max((out - 1) * stride + span - size, 0)
        if total:
            pads = [[0, 0]] * x.shape.rank
            pads[1] = [total // 2, total - total // 2]
            x = A.pad(x, pads, constant_values=fill)
    else:
        out = (size - span) // stride + 1
    if out < 1:
        raise ShapeError("3-D window", f"a window of depth {span} does not fit a depth of "
                                       f"{size}", tracing.where())
    taps = [x[:, i * dilation:i * dilation + (out - 1) * stride + 1:stride] for i in range(kd)]
    return taps, out


def _folded(t):
    """(batch, depth, h, w, c) -> (batch * depth, h, w, c)."""
    return A.reshape(t, [-1] + list(t.shape[2:]))


def _unfolded(t, depth):
    return A.reshape(t, [-1, depth] + list(t.shape[1:]))


class Conv3D(_Conv):
    """3-D convolution; kernel (kd, kh, kw, in channels, filters), as Keras."""

    rank = 3

    def _kernel_shape(self, channels):
        if self.groups != 1:
            raise ValueError("Conv3D: groups > 1 is not supported")
        return super()._kernel_shape(channels)

    def call(self, inputs):
        d = inputs.shape[1]
        if d is None or any(s is None for s in inputs.shape[2:]):
            raise ShapeError(self.name, f"Conv3D needs known depth, height and width; "
                                        f"received {tuple(inputs.shape)}", tracing.where())
        taps, od = _depth_taps(inputs, d, self.kernel_size[0], self.strides[0],
                               self.dilation_rate[0], self.padding)
        y = None
        for i, t in enumerate(taps):
            part = nn.conv2d(_folded(t), self.kernel[i], self.strides[1:],
                             self.padding.upper(), dilations=self.dilation_rate[1:])
            y = part if y is None else y + part
        y = _unfolded(y, od)
        return self.activation(y + self.bias if self.use_bias else y)


class _Pool3D(Layer):
    kind = "max"
    input_ndim = 5

    def __init__(self, pool_size=(2, 2, 2), strides=None, padding="valid", data_format=None,
                 **kwargs):
        super().__init__(**kwargs)
        _check_format(type(self).__name__, data_format)
        self.pool_size = _tuple(pool_size, 3, "pool_size")
        self.strides = _tuple(strides, 3, "strides") if strides is not None else \
            self.pool_size
        if padding.lower() not in ("valid", "same"):
            raise ValueError(f"{type(self).__name__}: padding must be 'valid' or 'same'; "
                             f"received {padding!r}")
        self.padding = padding.lower()

    def call(self, inputs):
        d = inputs.shape[1]
        if d is None:
            raise ShapeError(self.name, f"needs a known depth; received "
                                        f"{tuple(inputs.shape)}", tracing.where())
        pool = nn.max_pool2d if self.kind == "max" else nn.avg_pool2d
        y = _unfolded(pool(_folded(inputs), self.pool_size[1:], self.strides[1:],
                           self.padding.upper()), d)
        kd, sd = self.pool_size[0], self.strides[0]
        low = float(np.finfo(y.dtype.np).min) if self.kind == "max" else 0.0
        taps, od = _depth_taps(y, d, kd, sd, 1, self.padding, fill=low)
        if self.kind == "max":
            out = taps[0]
            for t in taps[1:]:
                out = M.maximum(out, t)
            return out
        total = taps[0]
        for t in taps[1:]:
            total = total + t
        return total * A.constant(self._depth_share(d, od), y.dtype)

    def _depth_share(self, d, od):
        """1 / (the depth taps of each output depth inside the volume): "same" pads
        leave some out, as TensorFlow's average pooling does."""
        kd, sd = self.pool_size[0], self.strides[0]
        total = max((od - 1) * sd + kd - d, 0) if self.padding == "same" else 0
        start = np.arange(od) * sd - total // 2
        inside = np.minimum(start + kd, d) - np.maximum(start, 0)
        return (1.0 / inside).reshape(1, od, 1, 1, 1)

    def get_config(self):
        return super().get_config() | {"pool_size": list(self.pool_size),
                                       "strides": list(self.strides), "padding": self.padding}


class MaxPooling3D(_Pool3D):
    kind = "max"


class AveragePooling3D(_Pool3D):
    kind = "avg"


class _GlobalPool3D(Layer):
    kind = "avg"
    input_ndim = 5

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        _check_format(type(self).__name__, data_format)
        self.keepdims = keepdims

    def call(self, inputs):
        fn = M.reduce_mean if self.kind == "avg" else M.reduce_max
        return fn(inputs, [1, 2, 3], keepdims=self.keepdims)

    def get_config(self):
        return super().get_config() | {"keepdims": self.keepdims}


class GlobalAveragePooling3D(_GlobalPool3D):
    kind = "avg"


class GlobalMaxPooling3D(_GlobalPool3D):
    kind = "max"

