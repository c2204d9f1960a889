"""Noise, spatial dropout and PReLU layers with Keras 3's names and formulas: noise and
dropout act only while training (identity at inference), as in Keras."""

from __future__ import annotations

from ... import math_ops as M
from ... import nn
from ...random import normal
from .base import Layer
from .core import dropout_rate


class GaussianNoise(Layer):
    """Adds N(0, stddev) noise while training."""

    supports_masking = True

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.stddev, self.seed = float(stddev), seed

    def call(self, inputs, training=None):
        if not training or not self.stddev:
            return inputs
        return inputs + normal(inputs.ir_type.shape, stddev=self.stddev, dtype=inputs.dtype,
                               seed=self.seed)

    def get_config(self):
        return super().get_config() | {"stddev": self.stddev, "seed": self.seed}


class _RateNoise(Layer):
    """A layer that, while training, applies ``noisy`` with its ``rate`` (identity at
    inference and at rate 0)."""

    supports_masking = True

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate, self.seed = dropout_rate(self, rate), seed

    def call(self, inputs, training=None):
        return self.noisy(inputs) if training and self.rate else inputs

    def get_config(self):
        return super().get_config() | {"rate": self.rate, "seed": self.seed}


class GaussianDropout(_RateNoise):
    """Multiplies by N(1, rate / (1 - rate)) noise while training."""

    def noisy(self, inputs):
        std = (self.rate / (1.0 - self.rate)) ** 0.5
        return inputs * normal(inputs.ir_type.shape, mean=1.0, stddev=std, dtype=inputs.dtype,
                               seed=self.seed)


class AlphaDropout(_RateNoise):
    """Dropout that keeps a SELU network's mean and variance: dropped inputs become SELU's
    negative saturation, then all are scaled and shifted back (Keras's formula)."""

    ALPHA_P = -1.6732632423543772 * 1.0507009873554805  # -alpha * scale of SELU

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(rate, seed, **kwargs)
        self.noise_shape = noise_shape

    def noisy(self, inputs):
        from ...random import uniform
        shape = self.noise_shape or inputs.ir_type.shape
        kept = uniform(shape, dtype=inputs.dtype, seed=self.seed) >= self.rate
        r, alpha = self.rate, self.ALPHA_P
        a = ((1.0 - r) * (1.0 + r * alpha ** 2)) ** -0.5
        return M.where(kept, inputs, alpha) * a - a * alpha * r

    def get_config(self):
        return super().get_config() | {"noise_shape": self.noise_shape}


class _SpatialDropout(_RateNoise):
    """Drops whole feature maps (every step or pixel of a channel together) while
    training."""

    supports_masking = False
    spatial = 1

    def noisy(self, inputs):
        shape = inputs.ir_type.shape
        noise = (shape[0],) + (1,) * self.spatial + (shape[-1],)
        return nn.dropout(inputs, self.rate, noise_shape=noise, seed=self.seed)


class SpatialDropout1D(_SpatialDropout):
    spatial = 1


class SpatialDropout2D(_SpatialDropout):
    spatial = 2


class PReLU(Layer):
    """``max(x, 0) + alpha * min(x, 0)`` with a learned ``alpha`` per element of a sample
    (shared along ``shared_axes``)."""

    def __init__(self, alpha_initializer="zeros", alpha_regularizer=None,
                 alpha_constraint=None, shared_axes=None, **kwargs):
        super().__init__(**kwargs)
        self.alpha_initializer, self.alpha_regularizer = alpha_initializer, alpha_regularizer
        self.shared_axes = None if shared_axes is None else \
            [shared_axes] if isinstance(shared_axes, int) else list(shared_axes)

    def build(self, input_shape):
        shape = list(input_shape[1:])
        for axis in self.shared_axes or ():
            shape[axis - 1] = 1
        self.alpha = self.add_weight("alpha", tuple(shape),
                                     initializer=self.alpha_initializer,
                                     regularizer=self.alpha_regularizer)
        self.built = True

    def call(self, inputs):
        return M.maximum(inputs, 0.0) + self.alpha * M.minimum(inputs, 0.0)

    def get_config(self):
        return super().get_config() | {"alpha_initializer": self.alpha_initializer,
                                       "shared_axes": self.shared_axes}

