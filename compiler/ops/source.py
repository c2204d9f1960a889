"""Source primitives: constant, iota and stateless counter-based random bits.

``random_bits`` is Philox-4x32-10 (Salmon et al., SC'11): element ``i`` of the output is word
``i % 4`` of the block for counter ``(i // 4, 0, 0, 0)`` under the 2x32-bit key given as an
``i32[2]`` input. No state: the same key gives the same bits on every device and every call,
so dropout and initializers work inside compiled graphs. Uniform and normal samples are
composites on top (framework/random.py).
"""

from __future__ import annotations

import numpy as np

from .. import dtypes as dt
from ..errors import AttrError, ShapeError
from ..ir import Dense
from .base import REQUIRED, SOURCE, OpDef, as_dims, norm_axis, register, require_dtype

# -- constant -------------------------------------------------------------------------------------


def _constant_infer(types, attrs):
    v = attrs["value"]
    if not isinstance(v, Dense):
        raise AttrError("constant", f"value must be a dense tensor; received {v!r}")
    from ..ir import TensorType
    return (TensorType(v.shape, v.dtype),)


CONSTANT = register(OpDef("constant", SOURCE, _constant_infer, lambda value: value.array,
                          attrs={"value": REQUIRED}, template="constant", n_inputs=0,
                          vjp="it has no inputs"))


# -- iota -----------------------------------------------------------------------------------------


def _iota_infer(types, attrs):
    from ..ir import TensorType
    shape = as_dims("iota", attrs["shape"])
    norm_axis("iota", attrs["axis"], len(shape))
    d = attrs["dtype"]
    if d not in dt.ALL or d is dt.bool_:
        raise AttrError("iota", f"dtype must be numeric; received {d!r}")
    return (TensorType(shape, d),)


def _iota_ref(shape, axis, dtype):
    r = np.arange(shape[axis], dtype=dtype.np)
    view = [1] * len(shape)
    view[axis] = shape[axis]
    return np.broadcast_to(r.reshape(view), shape).copy()


IOTA = register(OpDef("iota", SOURCE, _iota_infer, _iota_ref,
                      attrs={"shape": REQUIRED, "axis": 0, "dtype": dt.i32},
                      template="iota", n_inputs=0, vjp="it has no inputs"))


# -- random_bits (Philox-4x32-10) -----------------------------------------------------------------

PHILOX_M = (0xD2511F53, 0xCD9E8D57)
PHILOX_W = (0x9E3779B9, 0xBB67AE85)
_MASK = np.uint64(0xFFFFFFFF)


def philox4x32(counter, key, rounds: int = 10):
    """Philox on numpy arrays: ``counter`` 4 arrays and ``key`` 2 values, all < 2**32."""
    c = [np.asarray(x, np.uint64) for x in counter]
    k0, k1 = np.uint64(key[0]), np.uint64(key[1])
    m0, m1 = np.uint64(PHILOX_M[0]), np.uint64(PHILOX_M[1])
    for _ in range(rounds):
        p0, p1 = m0 * c[0], m1 * c[2]
        c = [(p1 >> np.uint64(32)) ^ c[1] ^ k0, p1 & _MASK,
             (p0 >> np.uint64(32)) ^ c[3] ^ k1, p0 & _MASK]
        k0 = (k0 + np.uint64(PHILOX_W[0])) & _MASK
        k1 = (k1 + np.uint64(PHILOX_W[1])) & _MASK
    return c


def _random_infer(types, attrs):
    from ..ir import TensorType
    (key,) = types
    require_dtype("random_bits", key, (dt.i32,), "key")
    if key.shape != (2,):
        raise ShapeError("random_bits", f"key must be i32[2]; received {key}")
    return (TensorType(as_dims("random_bits", attrs["shape"]), dt.i32),)


def _random_ref(key, shape):
    n = int(np.prod(shape, dtype=np.int64))
    k = key.astype(np.int64) & 0xFFFFFFFF
    i = np.arange(n, dtype=np.uint64)
    block = i >> np.uint64(2)
    zero = np.zeros_like(block)
    words = philox4x32((block & _MASK, block >> np.uint64(32), zero, zero), (k[0], k[1]))
    lane = (i & np.uint64(3)).astype(np.int64)
    bits = np.choose(lane, words) if n else np.zeros(0, np.uint64)
    return bits.astype(np.uint32).view(np.int32).reshape(shape)


RANDOM_BITS = register(OpDef("random_bits", SOURCE, _random_infer, _random_ref,
                             attrs={"shape": REQUIRED}, template="random_bits",
                             vjp="its result is integer"))


# -- dim_size: a (possibly symbolic) dimension as a scalar, for means and shape() ----------------


def _dim_size_infer(types, attrs):
    from ..ir import TensorType
    as_dims("dim_size", [attrs["dim"]], "dim")
    if attrs["dtype"] not in dt.ALL or attrs["dtype"] is dt.bool_:
        raise AttrError("dim_size", f"dtype must be numeric; received {attrs['dtype']!r}")
    return (TensorType((), attrs["dtype"]),)


DIM_SIZE = register(OpDef(
    "dim_size", SOURCE, _dim_size_infer,
    lambda dim, dtype: np.asarray(dim, dtype=dtype.np), attrs={"dim": REQUIRED, "dtype": dt.i32},
    template="dim_size", n_inputs=0, vjp="it has no inputs"))
