"""Kiln's float32 GEMM (gemm.py) on raw pointers, for native kernels (render_llvm.py): a
numba ``cfunc`` compiled once per machine (cached on disk beside this file) whose address
the native loader binds to the symbol ``kiln_sgemm_c`` (runtime/native.py), so a kernel
calls the GEMM without optimizing it again inside itself."""

from __future__ import annotations

import numba
from numba import types

from .gemm import kiln_sgemm, workspace_shape

_WS = workspace_shape()
_F32P = types.CPointer(types.float32)


@numba.cfunc(types.void(_F32P, types.int64, types.int64, types.boolean,
                        _F32P, types.int64, types.int64, types.boolean,
                        _F32P, types.int64, types.int64, _F32P), cache=True)
def kiln_sgemm_c(a, am, an, ta, b, bm, bn, tb, c, cm, cn, work):
    """c (cm x cn) = op(a) @ op(b), a: am x an, b: bm x bn, all C-contiguous; ``work`` holds
    ``workspace_shape()`` floats."""
    kiln_sgemm(numba.carray(a, (am, an)), ta, numba.carray(b, (bm, bn)), tb,
               numba.carray(c, (cm, cn)), numba.carray(work, _WS))


SYMBOLS = {"kiln_sgemm_c": kiln_sgemm_c.address}
