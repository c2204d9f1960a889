"""Convolution and pooling layers (channels last): Conv1D, Conv2D, DepthwiseConv2D,
SeparableConv1D/2D, Conv1DTranspose, Conv2DTranspose, Max/AveragePooling1D/2D,
GlobalAverage/MaxPooling1D/2D. Kernels have Keras's shapes, so weights carry over."""

from __future__ import annotations

import numpy as np

from compiler.errors import ShapeError

from ... import array_ops as A
from ... import math_ops as M
from ... import nn, tracing
from ...errors import MaskError
from .. import initializers
from .base import Layer, positive_int
from .core import _ser_init, kernel_bias_config, set_kernel_bias


def _tuple(v, n, what):
    v = (v,) * n if isinstance(v, int) else tuple(v)
    if len(v) != n or any(not isinstance(x, int) or x < 1 for x in v):
        raise ValueError(f"{what} must be a positive int or {n} of them; received {v!r}")
    return v


class _Ranked:
    """Convolutions and pooling take inputs of rank ``rank + 2`` (batch, dims, channels)."""

    @property
    def input_ndim(self):
        return self.rank + 2


def _check_format(name, data_format):
    if data_format not in (None, "channels_last"):
        raise ValueError(f"{name}: only data_format='channels_last' is supported; received "
                         f"{data_format!r}")


class _Conv(_Ranked, Layer):
    rank = 2

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        _check_format(type(self).__name__, data_format)
        n = self.rank
        self.filters = positive_int(type(self).__name__, "filters", filters)
        self.groups = positive_int(type(self).__name__, "groups", groups)
        self.kernel_size = _tuple(kernel_size, n, "kernel_size")
        self.strides = _tuple(strides, n, "strides")
        self.dilation_rate = _tuple(dilation_rate, n, "dilation_rate")
        if padding.lower() not in ("valid", "same"):
            raise ValueError(f"{type(self).__name__}: padding must be 'valid' or 'same'; "
                             f"received {padding!r}")
        self.padding = padding.lower()
        set_kernel_bias(self, activation, use_bias, kernel_initializer, bias_initializer,
                        kernel_regularizer, bias_regularizer)

    def _kernel_shape(self, channels):
        if channels is None or channels % self.groups:
            raise ShapeError(self.name, f"input channels must be known and divisible by "
                                        f"groups={self.groups}; received {channels}",
                             tracing.where())
        return self.kernel_size + (channels // self.groups, self.filters)

    def build(self, input_shape):
        self._last_dim = input_shape[-1]
        self.kernel = self.add_weight("kernel", self._kernel_shape(input_shape[-1]),
                                      initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer)
        self.bias = self.add_weight("bias", (self.filters,), initializer=self.bias_initializer,
                                    regularizer=self.bias_regularizer) if self.use_bias else None
        self.built = True

    def call(self, inputs):
        pad = self.padding.upper()
        if self.rank == 1:
            y = nn.conv1d(inputs, self.kernel, self.strides[0], pad,
                          dilations=self.dilation_rate[0])
        else:
            y = nn.conv2d(inputs, self.kernel, self.strides, pad, dilations=self.dilation_rate)
        if self.use_bias:
            y = y + self.bias
        return self.activation(y)

    def get_config(self):
        return super().get_config() | {
            "filters": self.filters, "kernel_size": list(self.kernel_size),
            "strides": list(self.strides), "padding": self.padding,
            "dilation_rate": list(self.dilation_rate), "groups": self.groups,
        } | kernel_bias_config(self)


class Conv2D(_Conv):
    rank = 2


class Conv1D(_Conv):
    rank = 1


class DepthwiseConv2D(_Conv):
    """One filter (times ``depth_multiplier``) per input channel; its kernel is Keras's
    [KH, KW, channels, depth_multiplier]."""

    def __init__(self, kernel_size, strides=1, padding="valid", depth_multiplier=1,
                 depthwise_initializer="glorot_uniform", **kwargs):
        kwargs.setdefault("kernel_initializer", depthwise_initializer)
        super().__init__(1, kernel_size, strides, padding, **kwargs)
        self.depth_multiplier = positive_int("DepthwiseConv2D", "depth_multiplier",
                                             depth_multiplier)

    def build(self, input_shape):
        self.filters = input_shape[-1] * self.depth_multiplier
        super().build(input_shape)

    def _kernel_shape(self, channels):
        return self.kernel_size + (channels, self.depth_multiplier)

    def call(self, inputs):
        y = nn.depthwise_conv2d(inputs, self.kernel, self.strides, self.padding.upper(),
                                dilations=self.dilation_rate)
        return self.activation(y + self.bias if self.use_bias else y)

    def get_config(self):
        cfg = super().get_config()
        for k in ("filters", "groups"):
            cfg.pop(k)
        return cfg | {"depth_multiplier": self.depth_multiplier}


class _SeparableConv(_Conv):
    """A depthwise convolution (``depth_multiplier`` filters per input channel) followed by
    a pointwise (1 x 1) one mixing the channels into ``filters``; Keras's weights
    ``depthwise_kernel`` [K..., channels, multiplier], ``pointwise_kernel`` [1..., channels
    x multiplier, filters] and ``bias``."""

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, depth_multiplier=1, activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs):
        super().__init__(filters, kernel_size, strides, padding, data_format, dilation_rate,
                         activation=activation, use_bias=use_bias,
                         kernel_initializer=pointwise_initializer,
                         bias_initializer=bias_initializer, **kwargs)
        self.depth_multiplier = positive_int(type(self).__name__, "depth_multiplier",
                                             depth_multiplier)
        self.depthwise_initializer = initializers.get(depthwise_initializer)

    def build(self, input_shape):
        c, m = input_shape[-1], self.depth_multiplier
        if c is None:
            raise ShapeError(self.name, "input channels must be known", tracing.where())
        self.depthwise_kernel = self.add_weight(
            "depthwise_kernel", self.kernel_size + (c, m), initializer=self.depthwise_initializer)
        self.pointwise_kernel = self.add_weight(
            "pointwise_kernel", (1,) * self.rank + (c * m, self.filters),
            initializer=self.kernel_initializer, regularizer=self.kernel_regularizer)
        self.bias = self.add_weight("bias", (self.filters,), initializer=self.bias_initializer,
                                    regularizer=self.bias_regularizer) if self.use_bias else None
        self.built = True

    def call(self, inputs):
        x, dw, pw = inputs, self.depthwise_kernel, self.pointwise_kernel
        strides, dilations = self.strides, self.dilation_rate
        if self.rank == 1:  # as 2-D convolutions of height 1
            x, dw, pw = A.expand_dims(x, 1), A.expand_dims(dw, 0), A.expand_dims(pw, 0)
            strides, dilations = (1,) + strides, (1,) + dilations
        y = nn.conv2d(nn.depthwise_conv2d(x, dw, strides, self.padding.upper(),
                                          dilations=dilations), pw, 1, "VALID")
        if self.rank == 1:
            y = A.squeeze(y, [1])
        return self.activation(y + self.bias if self.use_bias else y)

    def get_config(self):
        cfg = super().get_config()
        cfg.pop("groups")
        cfg["pointwise_initializer"] = cfg.pop("kernel_initializer")
        cfg.pop("kernel_regularizer", None)
        return cfg | {"depth_multiplier": self.depth_multiplier,
                      "depthwise_initializer": _ser_init(self.depthwise_initializer)}


class SeparableConv2D(_SeparableConv):
    rank = 2


class SeparableConv1D(_SeparableConv):
    rank = 1


class Conv2DTranspose(_Conv):
    """The transpose (gradient) of a Conv2D: upsamples by ``strides``; its kernel is
    [KH, KW, filters, in_channels]."""

    def __init__(self, filters, kernel_size, strides=1, padding="valid", output_padding=None,
                 **kwargs):
        if output_padding is not None:
            raise ValueError(f"{type(self).__name__}: output_padding is not supported; "
                             f"received {output_padding!r}")
        super().__init__(filters, kernel_size, strides, padding, **kwargs)

    def _kernel_shape(self, channels):
        return self.kernel_size + (self.filters, channels)

    def call(self, inputs):
        x, kernel = inputs, self.kernel
        strides, dilations, sizes = self.strides, self.dilation_rate, inputs.shape[1:-1]
        if self.rank == 1:  # as a 2-D one of height 1
            x, kernel = A.expand_dims(x, 1), A.expand_dims(kernel, 0)
            strides, dilations, sizes = (1,) + strides, (1,) + dilations, (1,) + tuple(sizes)
        out = []
        for size, k, s, d in zip(sizes, kernel.shape[:2], strides, dilations):
            eff = (k - 1) * d + 1
            out.append(size * s if self.padding == "same" else size * s + max(eff - s, 0))
        n = inputs.shape[0]
        batch = A.shape(inputs)[0] if n is None else n
        y = nn.conv2d_transpose(x, kernel, [batch, out[0], out[1], self.filters], strides,
                                self.padding.upper(), dilations=dilations)
        if self.rank == 1:
            y = A.squeeze(y, [1])
        return self.activation(y + self.bias if self.use_bias else y)


class Conv1DTranspose(Conv2DTranspose):
    """The transpose of a Conv1D; its kernel is [K, filters, in_channels]."""

    rank = 1


class _Pool(_Ranked, Layer):
    rank, kind = 2, "max"

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        _check_format(type(self).__name__, data_format)
        self.pool_size = _tuple(pool_size, self.rank, "pool_size")
        self.strides = _tuple(strides, self.rank, "strides") if strides is not None else \
            self.pool_size
        self.padding = padding.lower()

    def call(self, inputs):
        fn = {("max", 1): nn.max_pool1d, ("max", 2): nn.max_pool2d,
              ("avg", 1): nn.avg_pool1d, ("avg", 2): nn.avg_pool2d}[self.kind, self.rank]
        return fn(inputs, self.pool_size, self.strides, self.padding.upper())

    def get_config(self):
        return super().get_config() | {"pool_size": list(self.pool_size),
                                       "strides": list(self.strides), "padding": self.padding}


class MaxPooling2D(_Pool):
    rank, kind = 2, "max"


class AveragePooling2D(_Pool):
    rank, kind = 2, "avg"


class MaxPooling1D(_Pool):
    rank, kind = 1, "max"


class AveragePooling1D(_Pool):
    rank, kind = 1, "avg"


class _GlobalPool(_Ranked, Layer):
    rank, kind = 2, "avg"

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        _check_format(type(self).__name__, data_format)
        self.keepdims = keepdims

    def call(self, inputs, mask=None):
        axes = list(range(1, 1 + self.rank))
        if mask is not None:  # only the steps the mask keeps (as Keras's average pooling)
            if self.rank != 1:
                raise MaskError(self.name, f"a mask is used over the steps of 1-D inputs; "
                                           f"received inputs {tuple(inputs.shape)}",
                                tracing.where())
            on = A.expand_dims(M.cast(mask, "bool"), -1)
            if self.kind == "max":
                low = A.constant(np.finfo(inputs.dtype.np).min, inputs.dtype)
                return M.reduce_max(M.where(on, inputs, low), axes, keepdims=self.keepdims)
            w = M.cast(on, inputs.dtype)
            return M.reduce_sum(inputs * w, axes, keepdims=self.keepdims) / \
                M.reduce_sum(w, axes, keepdims=self.keepdims)
        fn = M.reduce_mean if self.kind == "avg" else M.reduce_max
        return fn(inputs, axes, keepdims=self.keepdims)

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return super().get_config() | {"keepdims": self.keepdims}


class GlobalAveragePooling2D(_GlobalPool):
    rank, kind = 2, "avg"


class GlobalAveragePooling1D(_GlobalPool):
    rank, kind = 1, "avg"


class GlobalMaxPooling2D(_GlobalPool):
    rank, kind = 2, "max"


class GlobalMaxPooling1D(_GlobalPool):
    rank, kind = 1, "max"
