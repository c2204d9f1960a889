"""BatchNormalization (moving statistics updated inside the compiled step) and
LayerNormalization."""

from __future__ import annotations

from ... import array_ops as A
from ... import math_ops as M
from ... import nn
from .. import initializers
from .base import Layer
from .core import _ser_init


def _axes(axis, rank):
    return sorted(a % rank for a in ([axis] if isinstance(axis, int) else axis))


def _bcast(v, axes, shape):
    """A per-feature tensor shaped to broadcast against inputs of ``shape``."""
    if v is None or axes == [len(shape) - 1]:
        return v
    return A.reshape(v, [shape[a] if a in axes else 1 for a in range(len(shape))])


class BatchNormalization(Layer):
    """Normalize with the batch's statistics while training (updating the moving mean and
    variance: ``moving = moving * momentum + batch * (1 - momentum)``), with the moving
    statistics at inference. Masked positions (a Keras mask on the input) are left out of
    the batch's statistics."""

    supports_masking = True

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 **kwargs):
        super().__init__(**kwargs)
        self.axis, self.momentum, self.epsilon = axis, float(momentum), float(epsilon)
        self.center, self.scale = center, scale
        self.inits = {k: initializers.get(v) for k, v in (
            ("beta", beta_initializer), ("gamma", gamma_initializer),
            ("moving_mean", moving_mean_initializer),
            ("moving_variance", moving_variance_initializer))}

    def build(self, input_shape):
        rank = len(input_shape)
        self._feature_axes = _axes(self.axis, rank)
        shape = tuple(input_shape[a] for a in self._feature_axes)
        self.gamma = self.add_weight("gamma", shape, initializer=self.inits["gamma"]) \
            if self.scale else None
        self.beta = self.add_weight("beta", shape, initializer=self.inits["beta"]) \
            if self.center else None
        self.moving_mean = self.add_weight("moving_mean", shape, trainable=False,
                                           initializer=self.inits["moving_mean"])
        self.moving_variance = self.add_weight("moving_variance", shape, trainable=False,
                                               initializer=self.inits["moving_variance"])
        self._reduce = [a for a in range(rank) if a not in self._feature_axes]
        self._shape = tuple(input_shape)
        self.built = True

    def call(self, inputs, training=None, mask=None):
        shape, axes = self._shape, self._feature_axes
        if training and mask is not None:
            mean, var = _masked_moments(inputs, mask, self._reduce, axes)
        if training:
            if mask is None:
                mean, var = nn.moments(inputs, self._reduce)
            m = self.momentum
            self.moving_mean.assign(self.moving_mean * m + mean * (1.0 - m))
            self.moving_variance.assign(self.moving_variance * m + var * (1.0 - m))
        else:
            mean, var = self.moving_mean, self.moving_variance
        return nn.batch_normalization(inputs, _bcast(mean, axes, shape),
                                      _bcast(var, axes, shape), _bcast(self.beta, axes, shape),
                                      _bcast(self.gamma, axes, shape), self.epsilon)

    def get_config(self):
        return super().get_config() | {
            "axis": self.axis, "momentum": self.momentum, "epsilon": self.epsilon,
            "center": self.center, "scale": self.scale,
            **{f"{k}_initializer": _ser_init(v) for k, v in self.inits.items()}}


def _masked_moments(x, mask, axes, features):
    """Mean and variance over ``axes`` of the positions ``mask`` keeps (as Keras)."""
    w = M.cast(mask, x.dtype)
    while w.shape.rank < x.shape.rank:
        w = A.expand_dims(w, -1)
    w = w * A.ones_like(x)
    count = M.reduce_sum(w, axes) + 1e-7
    mean = M.reduce_sum(w * x, axes) / count
    dev = x - _bcast(mean, features, tuple(x.shape))
    return mean, M.reduce_sum(w * M.square(dev), axes) / count


class LayerNormalization(Layer):
    supports_masking = True

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", **kwargs):
        super().__init__(**kwargs)
        self.axis, self.epsilon, self.center, self.scale = axis, float(epsilon), center, scale
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)

    def build(self, input_shape):
        rank = len(input_shape)
        self._axes = _axes(self.axis, rank)
        self._shape = tuple(input_shape)
        shape = tuple(input_shape[a] for a in self._axes)
        self.gamma = self.add_weight("gamma", shape, initializer=self.gamma_initializer) \
            if self.scale else None
        self.beta = self.add_weight("beta", shape, initializer=self.beta_initializer) \
            if self.center else None
        self.built = True

    def call(self, inputs):
        mean, var = nn.moments(inputs, self._axes, keepdims=True)
        y = (inputs - mean) * M.rsqrt(var + self.epsilon)
        shape = self._shape
        if self.gamma is not None:
            y = y * _bcast(self.gamma, self._axes, shape)
        return y + _bcast(self.beta, self._axes, shape) if self.beta is not None else y

    def get_config(self):
        return super().get_config() | {"axis": self.axis, "epsilon": self.epsilon,
                                       "center": self.center, "scale": self.scale}
