"""The float32 GEMM's products of fewer rows than a micro-tile holds (inference at small
batch sizes): no packing, the rows of B streamed past in order (sgemm.py's ``rows``)."""

from __future__ import annotations

from llvmlite import ir

from .simd_ir import F32, F32P, I1, I32, I64, VW, _at, _loop, masked, splat

DEPTH_ROWS = 4                                # rows of B added at once


class RowProducts:
    """``rows`` and its helpers, for _Gemm (sgemm.py), whose ``function``, ``scalar``,
    ``vector``, ``fma`` and ``vec`` they use."""

    def rows(self):
        """c (+)= op(a) @ op(b) over depths [p_lo, p_hi), row by row, for fewer rows than a
        micro-tile holds (no packing: B is read once per row of c). The rows of B stream
        past in order, DEPTH_ROWS at a time, each adding its scaled columns into the row of
        c (in L1), a vector at a time: B is read as one forward stream, as a B too large for
        L2 needs (walking a block of columns down all rows of B, a cache line or two a row,
        reads it from L3 ~1.3x slower on two threads). The columns after the last whole
        vector accumulate in a register over all the depths, through masked loads. When B
        is transposed, each element is a dot product with a row of B (in any order of
        additions, so it vectorizes)."""
        fn, b = self.function("rows", [self.src, I64, I1, self.src, I64, I1, F32P, I64, I64,
                                       I64, I64, I64, I64, I1])
        a, lda, ta, bm, ldb, tb, c, ldc, m, j_lo, j_hi, p_lo, p_hi, add = fn.args
        flags = ("reassoc", "contract")
        acc, tail = b.alloca(F32), b.alloca(self.vec)
        deep = b.add(p_lo, b.mul(b.sdiv(b.sub(p_hi, p_lo), I64(DEPTH_ROWS)), I64(DEPTH_ROWS)))
        whole = b.add(j_lo, b.mul(b.sdiv(b.sub(j_hi, j_lo), I64(VW)), I64(VW)))

        def a_at(i, p):
            return self.scalar(b, b.select(ta, _at(b, a, (p, lda), i), _at(b, a, (i, lda), p)))
        with _loop(b, 0, m) as i:
            out = _at(b, c, (i, ldc))
            with b.if_else(tb) as (dots, axpys):
                with dots:
                    with _loop(b, j_lo, j_hi) as j:
                        b.store(b.select(add, b.load(b.gep(out, [j])), F32(0.0)), acc)
                        with _loop(b, p_lo, p_hi) as p:
                            prod = b.fmul(a_at(i, p), self.scalar(b, _at(b, bm, (j, ldb), p)),
                                          flags)
                            b.store(b.fadd(b.load(acc), prod, flags), acc)
                        b.store(b.load(acc), b.gep(out, [j]))
                with axpys:
                    with b.if_then(b.not_(add)):
                        with _loop(b, j_lo, whole) as j:
                            b.store(F32(0.0), b.gep(out, [j]))
                    with _loop(b, p_lo, deep, DEPTH_ROWS) as p0:
                        ps = [b.add(p0, I64(r)) for r in range(DEPTH_ROWS)]
                        self.row_update(b, [a_at(i, p) for p in ps],
                                        [_at(b, bm, (p, ldb)) for p in ps], out, j_lo, whole)
                    with _loop(b, deep, p_hi) as p:
                        self.row_update(b, [a_at(i, p)], [_at(b, bm, (p, ldb))], out, j_lo,
                                        whole)
                    with b.if_then(b.icmp_signed("<", whole, j_hi)):
                        self.row_block(b, lambda p: a_at(i, p), bm, ldb, out, whole, p_lo,
                                       p_hi, add, [tail], b.sub(j_hi, whole))
        b.ret_void()
        return fn

    def row_update(self, b, scales, sources, out, j_lo, j_hi):
        """out[j] += sum_r scales[r] * sources[r][j] for j in [j_lo, j_hi), whole vectors,
        two an iteration (as LLVM's vectorizer interleaves)."""
        vp = self.vec.as_pointer()
        fma = self.fma()
        scales = [splat(b, x) for x in scales]

        def update(j):
            at = b.bitcast(b.gep(out, [j]), vp)
            v = b.load(at, align=4)
            for x, src in zip(scales, sources):
                v = b.call(fma, [x, self.vector(b, b.gep(src, [j])), v])
            b.store(v, at, align=4)
        pairs = b.add(j_lo, b.mul(b.sdiv(b.sub(j_hi, j_lo), I64(2 * VW)), I64(2 * VW)))
        with _loop(b, j_lo, pairs, 2 * VW) as j:
            update(j)
            update(b.add(j, I64(VW)))
        with _loop(b, pairs, j_hi, VW) as j:
            update(j)

    def row_block(self, b, a_at, bm, ldb, out, j0, p_lo, p_hi, add, accs, left=None):
        """out[j0:j0 + VW * len(accs)] (+)= sum_p a_at(p) * bm[p, j0:...] over [p_lo, p_hi),
        the block in registers; with ``left`` columns only (fewer than the block), through
        masked loads and stores."""
        vec, vp = self.vec, self.vec.as_pointer()
        fma = self.fma()
        zero = ir.Constant(vec, [0.0] * VW)
        masks = [None] * len(accs)
        if left is not None:
            left = splat(b, left)
            masks = [b.icmp_signed("<", ir.Constant(left.type, [v * VW + j for j in range(VW)]),
                                   left) for v in range(len(accs))]

        def load(p, mask):
            p = b.bitcast(p, vp)
            if mask is None:
                return b.load(p, align=4)
            return b.call(masked(self.module, "load", self.vec), [p, I32(4), mask, zero])

        for v, x in enumerate(accs):
            b.store(b.select(add, load(_at(b, out, j0, v * VW), masks[v]), zero), x)
        with _loop(b, p_lo, p_hi) as p:
            av = splat(b, a_at(p))
            for v, x in enumerate(accs):
                src = self.vector(b, _at(b, bm, (p, ldb), j0, v * VW), masks[v])
                b.store(b.call(fma, [av, src, b.load(x)]), x)
        for v, x in enumerate(accs):
            at = b.bitcast(_at(b, out, j0, v * VW), vp)
            if masks[v] is None:
                b.store(b.load(x), at, align=4)
            else:
                b.call(masked(self.module, "store", self.vec), [b.load(x), at, I32(4), masks[v]])
