"""Batched matmul: ``a[..., M, K] @ b[..., K, N]`` with broadcast batch dims.

``transpose_a``/``transpose_b`` let the layout pass fold transposes into the contraction.
"""

from __future__ import annotations

import numpy as np

from .. import dtypes as dt
from ..errors import ShapeError
from .base import CONTRACTION, OpDef, broadcast_shapes, register, require_dtype, same_dtype
from .elementwise import NUMERIC


def _matmul_infer(types, attrs):
    a, b = types
    for name, t in (("lhs", a), ("rhs", b)):
        require_dtype("matmul", t, NUMERIC, name)
        if t.rank < 2:
            raise ShapeError("matmul", f"{name} must have rank >= 2; received {t}")
    same_dtype("matmul", types)
    m, k1 = a.shape[-2:][::-1] if attrs["transpose_a"] else a.shape[-2:]
    k2, n = b.shape[-2:][::-1] if attrs["transpose_b"] else b.shape[-2:]
    if k1 != k2:
        raise ShapeError("matmul", f"inner dimensions differ: {a} @ {b}")
    batch = broadcast_shapes("matmul", a.with_shape(a.shape[:-2]), b.with_shape(b.shape[:-2]))
    return (a.with_shape(batch + (m, n)),)


def _matmul_ref(a, b, transpose_a, transpose_b):
    if transpose_a:
        a = np.swapaxes(a, -1, -2)
    if transpose_b:
        b = np.swapaxes(b, -1, -2)
    if dt.is_narrow_np(a.dtype):  # accumulate 16-bit floats in f32, as cuBLAS and oneDNN
        return np.matmul(a.astype(np.float32), b.astype(np.float32)).astype(a.dtype)
    return np.matmul(a, b)


def _d_matmul(e, n, g):
    """C = op(A) op(B): each gradient is one matmul, with the transposes folded in."""
    (a, b), ta, tb = n.inputs, n.attrs["transpose_a"], n.attrs["transpose_b"]
    da = db = None
    if n.needs[0]:
        da = e("matmul", b, g, transpose_a=tb, transpose_b=True) if ta else \
            e("matmul", g, b, transpose_a=False, transpose_b=not tb)
    if n.needs[1]:
        db = e("matmul", g, a, transpose_a=True, transpose_b=ta) if tb else \
            e("matmul", a, g, transpose_a=not ta, transpose_b=False)
    return [da, db]


MATMUL = register(OpDef("matmul", CONTRACTION, _matmul_infer, _matmul_ref,
                        attrs={"transpose_a": False, "transpose_b": False},
                        template="matmul", n_inputs=2, vjp=_d_matmul))
