"""Activations by name, as ``tf.keras.activations``."""

from __future__ import annotations

from .. import math_ops as m
from .. import nn


def linear(x):
    return x


def relu(x, alpha=0.0, max_value=None, threshold=0.0):
    if alpha == 0.0 and max_value is None and threshold == 0.0:
        return nn.relu(x)
    y = m.where(x >= threshold, x, alpha * (x - threshold)) if alpha else \
        m.where(x >= threshold, x, 0.0)
    return m.minimum(y, max_value) if max_value is not None else y


def gelu(x, approximate=False):
    return nn.gelu(x, approximate=approximate)


def softmax(x, axis=-1):
    return nn.softmax(x, axis=axis)


def log_softmax(x, axis=-1):
    return nn.log_softmax(x, axis=axis)


def leaky_relu(x, negative_slope=0.2):
    return nn.leaky_relu(x, negative_slope)


def swish(x):
    return nn.silu(x)


silu = swish
sigmoid, tanh, elu, selu, softplus, softsign = (m.sigmoid, m.tanh, nn.elu, nn.selu,
                                                 nn.softplus, nn.softsign)
relu6 = nn.relu6

_BY_NAME = {"linear": linear, "relu": relu, "gelu": gelu, "softmax": softmax,
            "log_softmax": log_softmax, "leaky_relu": leaky_relu, "swish": swish, "silu": silu,
            "sigmoid": sigmoid, "tanh": tanh, "elu": elu, "selu": selu, "softplus": softplus,
            "softsign": softsign, "relu6": relu6}


def get(identifier):
    """An activation function from a name, a function or None (linear)."""
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        if identifier not in _BY_NAME:
            raise ValueError(f"unknown activation {identifier!r}; known: {sorted(_BY_NAME)}")
        return _BY_NAME[identifier]
    if callable(identifier):
        return identifier
    raise ValueError(f"cannot interpret {identifier!r} as an activation")


def serialize(fn) -> str:
    for name, f in _BY_NAME.items():
        if f is fn:
            return name
    raise ValueError(f"activation {fn!r} is not a named activation, so it cannot be saved; "
                     "use a name or a Layer")
