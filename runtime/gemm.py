"""Kiln's float32 GEMM (runtime/sgemm.py) for the numba backend's kernels: a numba function
that calls the native symbol ``kiln_sgemm`` through a pointer-level external call, so a
kernel links the GEMM compiled once per machine instead of optimizing a copy of it inside
itself (0.7-1.4 s per kernel when the GEMM was numba code).

Generated kernels call ``kiln_sgemm(a, transpose_a, b, transpose_b, c, workspace)`` on
C-contiguous float32 arrays; the workspace is a pooled scratch argument of
``workspace_shape()``.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import types

from . import sgemm

# Registered before any kernel that calls it is compiled or loaded from numba's cache.
sgemm.address()

_P = types.intp  # a data pointer, passed as an integer (the same register either way)
_native = types.ExternalFunction(sgemm.SYMBOL, types.void(
    _P, types.int64, types.int64, types.int8, _P, types.int64, types.int64, types.int8,
    _P, types.int64, types.int64, _P, types.int8))


@numba.njit(cache=True, boundscheck=False)
def kiln_sgemm(a, ta, b, tb, c, work):
    """c = op(a) @ op(b) in float32, where op transposes when its flag is set (``c``
    C-contiguous; ``a`` and ``b`` are copied if they are not, which a kernel's arrays are)."""
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    _native(a.ctypes.data, a.shape[0], a.shape[1], np.int8(1 if ta else 0),
            b.ctypes.data, b.shape[0], b.shape[1], np.int8(1 if tb else 0),
            c.ctypes.data, c.shape[0], c.shape[1], work.ctypes.data, np.int8(0))
