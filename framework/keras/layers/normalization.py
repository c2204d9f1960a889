"""BatchNormalization (moving statistics updated inside the compiled step),
LayerNormalization, GroupNormalization and RMSNormalization."""

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


class GroupNormalization(Layer):
    """Normalization over groups of channels, as ``tf.keras.layers.GroupNormalization``: the
    ``axis`` channels split into ``groups`` groups, each normalized over its channels and
    every other non-batch axis (mean and variance per example and group), then scaled and
    shifted per channel. ``groups=-1`` is a group per channel (instance normalization)."""

    supports_masking = True

    def __init__(self, groups=32, axis=-1, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", **kwargs):
        super().__init__(**kwargs)
        self.groups, self.axis, self.epsilon = int(groups), int(axis), float(epsilon)
        self.center, self.scale = center, scale
        self.inits = {"beta": initializers.get(beta_initializer),
                      "gamma": initializers.get(gamma_initializer)}

    def build(self, input_shape):
        rank = len(input_shape)
        axis = self.axis % rank
        dim = input_shape[axis]
        if axis == 0 or dim is None:
            raise ValueError(f"{self.name}: axis {self.axis} must be a non-batch axis of "
                             f"known size; received input shape {tuple(input_shape)}")
        groups = dim if self.groups == -1 else self.groups
        if not 0 < groups <= dim or dim % groups:
            raise ValueError(f"{self.name}: groups must divide the {dim} channels of axis "
                             f"{self.axis} (and be at most {dim}); received {self.groups}")
        self._axis, self._groups, self._dim = axis, groups, dim
        self.gamma = self.add_weight("gamma", (dim,), initializer=self.inits["gamma"]) \
            if self.scale else None
        self.beta = self.add_weight("beta", (dim,), initializer=self.inits["beta"]) \
            if self.center else None
        self.built = True

    def call(self, inputs):
        shape, axis, g = list(inputs.shape), self._axis, self._groups
        rest = [d if d is not None else -1 for d in shape[1:]]
        grouped = rest[:axis - 1] + [g, self._dim // g] + rest[axis:]
        x = A.reshape(inputs, [-1] + grouped)
        axes = [a for a in range(1, len(grouped) + 1) if a != axis]
        mean, var = nn.moments(x, axes, keepdims=True)
        inv = M.rsqrt(var + self.epsilon)
        per_channel = [1] * len(grouped)
        per_channel[axis - 1:axis + 1] = [g, self._dim // g]
        if self.gamma is not None:
            inv = inv * A.reshape(self.gamma, [1] + per_channel)
        shift = -mean * inv
        if self.beta is not None:
            shift = shift + A.reshape(self.beta, [1] + per_channel)
        return A.reshape(x * inv + shift, [-1] + rest)

    def get_config(self):
        return super().get_config() | {
            "groups": self.groups, "axis": self.axis, "epsilon": self.epsilon,
            "center": self.center, "scale": self.scale,
            **{f"{k}_initializer": _ser_init(v) for k, v in self.inits.items()}}


class RMSNormalization(Layer):
    """``x * rsqrt(mean(x^2 over axis) + epsilon) * scale``, with a learned ``scale`` per
    position of ``axis`` (Keras 3's RMSNormalization)."""

    supports_masking = True

    def __init__(self, axis=-1, epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.axis, self.epsilon = axis, float(epsilon)

    def build(self, input_shape):
        self._axes = _axes(self.axis, len(input_shape))
        self._shape = tuple(input_shape)
        self.scale = self.add_weight("scale", tuple(input_shape[a] for a in self._axes),
                                     initializer="ones")
        self.built = True

    def call(self, inputs):
        rrms = M.rsqrt(M.reduce_mean(M.square(inputs), self._axes, keepdims=True) +
                       self.epsilon)
        return inputs * rrms * _bcast(self.scale, self._axes, self._shape)

    def get_config(self):
        return super().get_config() | {"axis": self.axis, "epsilon": self.epsilon}
