"""Random numbers on top of the stateless ``random_bits`` primitive (Philox-4x32-10).

``stateless_uniform(shape, seed=[a, b])`` always returns the same values for the same seed.
The stateful ops (``uniform``, ``normal``) draw from a ``Generator``, whose state is a
variable ``[seed, counter]``: each draw uses the current key and advances the counter, so
inside a ``@function`` every call gives new numbers while staying reproducible after
``set_seed``.
"""

from __future__ import annotations

import math
import os
import threading

import numpy as np

from compiler import dtypes as dt
from compiler import ops as P
from compiler.errors import AttrError

from . import tracing
from .array_ops import _dims
from .core import apply
from .math_ops import cast, cos, floormod, log, sqrt
from .tensor import as_operand

__all__ = ["set_seed", "uniform", "normal", "stateless_uniform", "stateless_normal",
           "Generator", "get_global_generator"]


def _bits(key, shape):
    return apply(P.RANDOM_BITS, [as_operand(key, dt.i32)], {"shape": _dims("random", shape)})


def _unit(key, shape, dtype):
    """Uniform in [0, 1) with the dtype's full mantissa, from random bits."""
    d = dt.as_dtype(dtype)
    mant = {16: 11, 32: 24, 64: 53}[d.bits]
    if mant <= 24:
        b = floormod(_bits(key, shape), 1 << mant)
        return cast(b, d) * (1.0 / (1 << mant))
    two = _bits(key, (2,) + tuple(_dims("random", shape)))
    hi = cast(floormod(two[0], 1 << 26), dt.f64)
    lo = cast(floormod(two[1], 1 << 27), dt.f64)
    return (hi * float(1 << 27) + lo) * (1.0 / (1 << 53))


def _check_float(name, dtype):
    d = dt.as_dtype(dtype)
    if not d.is_float:
        raise AttrError(name, f"dtype must be a float type; received {d.tf_name}",
                        tracing.where())
    return d


def stateless_uniform(shape, seed, minval=0, maxval=None, dtype=dt.f32, name=None):
    """Uniform samples in [minval, maxval) determined entirely by ``seed`` (two ints).

    Integer dtypes need ``maxval``; they are drawn uniformly (up to a 2**-24 bias).
    """
    d = dt.as_dtype(dtype)
    if d.is_int:
        if maxval is None:
            raise AttrError("stateless_uniform", "integer dtypes need maxval", tracing.where())
        u = _unit(seed, shape, dt.f64)
        return cast(u * float(maxval - minval), d) + minval
    u = _unit(seed, shape, _check_float("stateless_uniform", d))
    maxval = 1 if maxval is None else maxval
    return u * (maxval - minval) + minval if (minval, maxval) != (0, 1) else u


def stateless_normal(shape, seed, mean=0.0, stddev=1.0, dtype=dt.f32, name=None):
    """Normal samples (Box-Muller) determined entirely by ``seed``."""
    d = _check_float("stateless_normal", dtype)
    work = dt.f32 if d.is_narrow else d
    dims = _dims("random", shape)
    u = _unit(seed, (2,) + tuple(dims), work)
    r = sqrt(log(1.0 - u[0]) * -2.0)  # 1 - u is in (0, 1]: log is finite
    z = r * cos(u[1] * (2 * math.pi))
    z = z * stddev + mean if (mean, stddev) != (0.0, 1.0) else z
    return cast(z, d)


class Generator:
    """A random stream with state ``[seed, counter]`` held in a variable (tf.random.Generator).

    Example:
        >>> g = framework.random.Generator.from_seed(1)
        >>> g.normal([2]).shape
        TensorShape([2])
    """

    def __init__(self, seed: int):
        from .variables import Variable
        with tracing.active(None):
            self.state = Variable(np.array([seed & 0x7FFFFFFF, 0], np.int32), trainable=False,
                                  name="rng_state")

    @classmethod
    def from_seed(cls, seed: int) -> Generator:
        return cls(int(seed))

    @classmethod
    def from_non_deterministic_state(cls) -> Generator:
        return cls(int.from_bytes(os.urandom(4), "little"))

    def _next_key(self):
        key = self.state.value()
        self.state.assign_add(np.array([0, 1], np.int32))
        return key

    def uniform(self, shape, minval=0, maxval=None, dtype=dt.f32, name=None):
        return stateless_uniform(shape, self._next_key(), minval, maxval, dtype)

    def normal(self, shape, mean=0.0, stddev=1.0, dtype=dt.f32, name=None):
        return stateless_normal(shape, self._next_key(), mean, stddev, dtype)


_global = {"seed": None, "gen": None, "op": {}}
_lock = threading.Lock()


def set_seed(seed: int) -> None:
    """Make the stateful random ops reproducible from here on (tf.random.set_seed)."""
    with _lock:
        _global.update(seed=int(seed), gen=Generator(int(seed)), op={})


def get_global_generator() -> Generator:
    """The Generator behind the stateful ops (created from OS entropy unless set_seed ran)."""
    with _lock:
        if _global["gen"] is None:
            _global["gen"] = Generator.from_non_deterministic_state()
        return _global["gen"]


def _generator(seed):
    if seed is None:
        return get_global_generator()
    with _lock:  # an op-level seed: its own stream, combined with the global seed
        key = (_global["seed"], int(seed))
        if key not in _global["op"]:
            mixed = ((key[0] or 0) * 1_000_003 + 0x5BD1E995) ^ key[1]
            _global["op"][key] = Generator(mixed & 0x7FFFFFFF)
        return _global["op"][key]


def uniform(shape, minval=0, maxval=None, dtype=dt.f32, seed=None, name=None):
    """Uniform samples in [minval, maxval); new numbers on every call."""
    return _generator(seed).uniform(shape, minval, maxval, dtype)


def normal(shape, mean=0.0, stddev=1.0, dtype=dt.f32, seed=None, name=None):
    """Normal samples; new numbers on every call."""
    return _generator(seed).normal(shape, mean, stddev, dtype)


