"""Kiln's own float32 GEMM for the CPU: packed panels and a register-blocked micro-kernel.

numpy's and scipy's OpenBLAS run whatever kernels the process's ``OPENBLAS_CORETYPE``
names; where that is an AVX2 core type on an AVX-512 CPU, sgemm runs at half the machine's
rate. This GEMM is Kiln's own: the micro-kernel is LLVM IR built here (``_micro``), holding
an MR x NR tile of C in vector registers (12 x 32 floats in 24 zmm registers with AVX-512,
6 x 16 in 12 ymm registers with AVX2) while it streams packed panels of A and B; the blocking
around it follows the BLIS design (NC columns of B packed per KC-deep slice, MC rows of A
packed per block, micro-tiles over both). Threads split C into row or column bands, one
parallel region per call, each thread packing its own panels into its part of the
workspace. Measured numbers are in bench/README.md (``bench/kernels.py``).

Generated kernels call ``kiln_sgemm(a, transpose_a, b, transpose_b, c, workspace)``; the
workspace is a pooled scratch argument of ``workspace_shape()``. Products too small to pay
for a second thread run on one.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.ufunc import parallel as _parallel

from runtime.env import cpu_flags

# A kernel that calls kiln_sgemm may itself be serial; loaded from numba's disk cache, it
# would enter kiln_sgemm's parallel region before anything started numba's thread pool
# (a segfault): start the pool whenever a module that calls it is imported.
_parallel._launch_threads()

VW = 16 if "avx512f" in cpu_flags() else 8   # float32 lanes of one vector register
NV = 2                                        # vectors per row of the micro-tile
MR, NR = (12 if VW == 16 else 6), VW * NV     # micro-tile: MR rows x NR columns of C
KC, MC, NC = 256, 144, 1024                   # depth, row and column blocking
SMALL = 1 << 18                               # m*n*k below this: one thread
WORK = KC * (NC + NR) + KC * (MC + MR) + MR * NR   # float32 workspace per thread

_JIT = dict(error_model="numpy", cache=True, boundscheck=False)


def workspace_shape() -> tuple[int, int]:
    return (numba.config.NUMBA_NUM_THREADS, WORK)


@intrinsic
def _micro(typingctx, kc, ap, aoff, bp, boff, c, coff, ldc, accumulate):
    """C[coff + i*ldc + j] (+)= sum_p A[aoff + p*MR + i] * B[boff + p*NR + j] for the MR x NR
    tile, the accumulators in registers (fused multiply-adds on broadcast A values)."""
    sig = types.void(kc, ap, aoff, bp, boff, c, coff, ldc, accumulate)

    def codegen(context, builder, signature, args):
        kc, ap, aoff, bp, boff, c, coff, ldc, accumulate = args
        vec = ir.VectorType(ir.FloatType(), VW)
        i64, i32 = ir.IntType(64), ir.IntType(32)

        def base(k, value, offset):
            data = context.make_array(signature.args[k])(context, builder, value).data
            return builder.gep(data, [offset])

        pa, pb, pc = base(1, ap, aoff), base(3, bp, boff), base(5, c, coff)
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec] * 3),
                                             f"llvm.fma.v{VW}f32")
        accs = [cgutils.alloca_once_value(builder, ir.Constant(vec, [0.0] * VW))
                for _ in range(MR * NV)]       # promoted to registers by LLVM's mem2reg
        undef = ir.Constant(vec, ir.Undefined)
        lane0 = ir.Constant(ir.VectorType(i32, VW), [0] * VW)
        with cgutils.for_range(builder, kc) as loop:
            p = loop.index
            row_b = builder.gep(pb, [builder.mul(p, ir.Constant(i64, NR))])
            bs = [builder.load(builder.bitcast(builder.gep(row_b, [ir.Constant(i64, v * VW)]),
                                               vec.as_pointer()), align=4) for v in range(NV)]
            row_a = builder.gep(pa, [builder.mul(p, ir.Constant(i64, MR))])
            for i in range(MR):
                a = builder.load(builder.gep(row_a, [ir.Constant(i64, i)]))
                a = builder.shuffle_vector(builder.insert_element(undef, a, ir.Constant(i32, 0)),
                                           undef, lane0)
                for v in range(NV):
                    acc = accs[i * NV + v]
                    builder.store(builder.call(fma, [a, bs[v], builder.load(acc)]), acc)
        add = builder.icmp_signed("!=", accumulate, ir.Constant(accumulate.type, 0))
        for i in range(MR):
            row = builder.gep(pc, [builder.mul(ldc, ir.Constant(i64, i))])
            for v in range(NV):
                at = builder.bitcast(builder.gep(row, [ir.Constant(i64, v * VW)]),
                                     vec.as_pointer())
                value = builder.load(accs[i * NV + v])
                old = builder.load(at, align=4)
                builder.store(builder.select(add, builder.fadd(old, value), value), at, align=4)
        return context.get_dummy_value()

    return sig, codegen


@numba.njit(**_JIT)
def _pack_a(a, ta, i0, mb, p0, kb, out):
    """Rows i0..i0+mb, columns p0..p0+kb of op(A) (A, or A's transpose when ``ta``) as
    MR-row panels, column-major inside each panel (out[panel*kb*MR + p*MR + i]); missing
    rows are zeros. Reads run along A's rows either way, through 1-D views (an index into a
    2-D array carries a negative-index fix-up that stops SIMD)."""
    for r in range(0, mb, MR):
        panel = out[(r // MR) * kb * MR:(r // MR + 1) * kb * MR]
        m = min(MR, mb - r)
        if ta:
            for p in range(kb):
                src = a[p0 + p, i0 + r:i0 + r + m]
                for i in range(m):
                    panel[p * MR + i] = src[i]
        else:
            for i in range(m):
                src = a[i0 + r + i, p0:p0 + kb]
                for p in range(kb):
                    panel[p * MR + i] = src[p]
        for p in range(kb):
            for i in range(m, MR):
                panel[p * MR + i] = 0.0


@numba.njit(**_JIT)
def _pack_b(b, tb, p0, kb, j0, nb, out):
    """Rows p0..p0+kb, columns j0..j0+nb of op(B) as NR-column panels, row-major inside
    each panel (out[panel*kb*NR + p*NR + j]); missing columns are zeros."""
    for s in range(0, nb, NR):
        panel = out[(s // NR) * kb * NR:(s // NR + 1) * kb * NR]
        n = min(NR, nb - s)
        if tb:
            for j in range(n):
                src = b[j0 + s + j, p0:p0 + kb]
                for p in range(kb):
                    panel[p * NR + j] = src[p]
        else:
            for p in range(kb):
                src = b[p0 + p, j0 + s:j0 + s + n]
                dst = panel[p * NR:p * NR + n]
                for j in range(n):
                    dst[j] = src[j]
        if n < NR:
            for p in range(kb):
                for j in range(n, NR):
                    panel[p * NR + j] = 0.0


@numba.njit(**_JIT)
def _gemm_serial(a, ta, b, tb, c, work, r0, r1, c0, c1):
    """c[r0:r1, c0:c1] = op(a)[r0:r1] @ op(b)[:, c0:c1] on one thread (BLIS loop order: NC
    columns, KC depth, MC rows, micro-tiles)."""
    k = a.shape[0] if ta else a.shape[1]
    ldc = c.shape[1]
    bpack = work[:KC * (NC + NR)]
    apack = work[KC * (NC + NR):KC * (NC + NR) + KC * (MC + MR)]
    tile = work[KC * (NC + NR) + KC * (MC + MR):]
    for j0 in range(c0, c1, NC):
        nb = min(NC, c1 - j0)
        for p0 in range(0, k, KC):
            kb = min(KC, k - p0)
            _pack_b(b, tb, p0, kb, j0, nb, bpack)
            for i0 in range(r0, r1, MC):
                mb = min(MC, r1 - i0)
                _pack_a(a, ta, i0, mb, p0, kb, apack)
                _tiles(kb, apack, bpack, tile, c, i0, mb, j0, nb, ldc, p0 > 0)


@numba.njit(**_JIT)
def _tiles(kb, apack, bpack, tile, c, i0, mb, j0, nb, ldc, accumulate):
    """The micro-tiles of one packed MC x NC block of C."""
    for s in range(0, nb, NR):
        for r in range(0, mb, MR):
            ao, bo = (r // MR) * kb * MR, (s // NR) * kb * NR
            if r + MR <= mb and s + NR <= nb:
                _micro(kb, apack, ao, bpack, bo, c, (i0 + r) * ldc + j0 + s, ldc, accumulate)
                continue
            _micro(kb, apack, ao, bpack, bo, tile, 0, NR, False)  # an edge tile
            for i in range(min(MR, mb - r)):
                for j in range(min(NR, nb - s)):
                    if accumulate:
                        c[i0 + r + i, j0 + s + j] += tile[i * NR + j]
                    else:
                        c[i0 + r + i, j0 + s + j] = tile[i * NR + j]


@numba.njit(**_JIT)
def kiln_sgemm(a, ta, b, tb, c, work):
    """c = op(a) @ op(b) in float32, where op transposes when its flag is set. All arrays
    are C-contiguous, so one compiled signature serves every caller (a transposed view's
    own type would compile the whole stack again: ~4 s each). Each thread computes one band
    of C: rows when C is tall, else columns."""
    m, n = c.shape
    k = a.shape[0] if ta else a.shape[1]
    if k == 0:
        c[:, :] = 0.0
    elif m < MR:              # a few rows (inference at batch 1): no packing, no padding
        _gemm_rows(a, ta, b, tb, c)
    elif m * n * k < SMALL:   # one thread
        _gemm_serial(a, ta, b, tb, c, work[0], 0, m, 0, n)
    else:
        by_rows = m >= n
        units = (m + MR - 1) // MR if by_rows else (n + NR - 1) // NR
        # (work's rows, not numba.get_num_threads(), which would keep this from the cache)
        _bands(a, ta, b, tb, c, work, by_rows, units, max(1, min(work.shape[0], units)))


@numba.njit(**_JIT)
def _gemm_rows(a, ta, b, tb, c):
    """c = op(a) @ op(b) row by row, for fewer rows than a micro-tile holds: each row of c
    accumulates scaled rows of B (or dot products with B's rows when B is transposed)."""
    m, n = c.shape
    k = a.shape[0] if ta else a.shape[1]
    for i in range(m):
        out = c[i]
        if tb:
            for j in range(n):
                src = b[j]
                acc = np.float32(0.0)
                for p in range(k):
                    acc += (a[p, i] if ta else a[i, p]) * src[p]
                out[j] = acc
        else:
            out[:] = 0.0
            for p in range(k):
                av = a[p, i] if ta else a[i, p]
                src = b[p]
                for j in range(n):
                    out[j] += av * src[j]


@numba.njit(parallel=True, **_JIT)
def _bands(a, ta, b, tb, c, work, by_rows, units, threads):
    m, n = c.shape
    for t in prange(threads):
        lo, hi = units * t // threads, units * (t + 1) // threads
        if by_rows:
            _gemm_serial(a, ta, b, tb, c, work[t], lo * MR, min(m, hi * MR), 0, n)
        else:
            _gemm_serial(a, ta, b, tb, c, work[t], 0, m, lo * NR, min(n, hi * NR))
