"""Kiln's float32 GEMM, built as LLVM IR and compiled once per machine (milliseconds, then
cached as object code like any native module): both CPU backends call it by the symbol
``kiln_sgemm``, so no kernel optimizes a GEMM inside itself.

numpy's OpenBLAS runs the kernels ``OPENBLAS_CORETYPE`` names (an AVX2 type on an AVX-512
CPU: half the rate). Kiln's micro-kernel (``micro``) holds a tile of C in vector registers
(12 x 32 floats in 24 zmm registers with AVX-512, 6 x 16 in 12 ymm with AVX2) while it
streams packed panels of A and B, blocked as BLIS does (NC columns of B packed per KC-deep
slice, MC rows of A per block, micro-tiles over both); A's panels are packed a vector
of depths at a time, by transposing blocks of rows. A product too small to pay for a
second thread runs on one; a larger one splits C into bands of rows (or of columns, when C
is wide), PIECES per thread and within a unit of each other in size, that the pool hands
out, each packing its panels into its row of the workspace; the largest pack each block of
B once, together, for all bands to read; a small C over a long depth splits the depth
(``parallel``). Fewer rows than a micro-tile holds (inference at batch 1) skip packing and
stream the rows of B in order (sgemm_rows.py); on several threads they split the depth,
each thread adding its rows of B into its own partial C, summed at the end. Measured
numbers (KC 512 against 256: +3-10%; the transposing pack, +3-7%; KC 1024 against 512,
one pass over C for depths up to 1024: 1024^3 and 2048^3 +3-5%, the MLP's and CNN's
shapes within 1-2%) are in bench/README.md.

    kiln_sgemm(a, am, an, ta, b, bm, bn, tb, c, cm, cn, work, flags)

c (cm x cn) = op(a) @ op(b), a: am x an, b: bm x bn, all C-contiguous float32, op
transposing where its flag (i8) is set; ``work`` holds ``workspace_shape()`` floats.
``flags`` (i8): ACCUMULATE adds the product to c; SERIAL runs on the calling thread only,
with ``work`` holding that thread's WORK floats (a kernel that runs products in parallel
itself, one per thread, passes each thread's row of the workspace).
"""

from __future__ import annotations

import threading

from llvmlite import ir

from .sgemm_rows import RowProducts
from .simd_ir import (
    F32,
    F32P,
    I1,
    I8,
    I32,
    I64,
    VW,
    _accumulators,
    _at,
    _loop,
    _min,
    masked,
    outer_update,
    prefetch,
    transpose,
)
from .threads import WORKER, chunk_range, declare, parallel_for, pool_size, thread_id

NV = 2                                        # vectors per row of the micro-tile
MR, NR = (12 if VW == 16 else 6), VW * NV     # micro-tile: MR rows x NR columns of C
KC, MC, NC = 1024, 144, 1024                  # depth, row and column blocking
EDGE_ROWS = tuple(r for r in (4, 8) if r < MR)  # narrower micro-kernels for a block's last rows
SPLIT_KC = 256                                # depth unit of a split-depth product's pieces
SMALL = 1 << 18                               # m*n*k below this: one thread
PIECES = 2                                    # bands per thread of a parallel product
UNPACKED_ROWS = 96                            # op(B) read in place (or a transposed one
                                              # packed a panel at a time) by fewer rows of C
COLUMN_PIECES = 1                             # ... of one split by columns
ROW_BAND = 128                                # columns of c a band, fewer rows than MR
DEPTH_PIECE = 64                              # least depth a piece of a split depth
PACK = KC * (NC + NR) + KC * (MC + MR) + MR * NR   # floats a thread packs into
PARTIAL = 1 << 16                             # floats of a thread's partial C (split depth)
WORK = PACK + PARTIAL                         # float32 workspace per thread
SYMBOL = "kiln_sgemm"
SHARED = 1 << 26                              # multiply-adds a block of B, to share its packing
SHARED_MANY, BAND_ROWS = 1 << 24, 64          # ... with at least BAND_ROWS rows a band
CONTEXT = 18                                  # i64 values of a parallel product's context
ACCUMULATE, SERIAL = 1, 2                     # flags

SIGNATURE = ir.FunctionType(ir.VoidType(), [F32P, I64, I64, I8] * 2 + [F32P, I64, I64, F32P, I8])
_lock = threading.Lock()


def workspace_shape() -> tuple[int, int]:
    return (pool_size(), WORK)


class _Gemm(RowProducts):
    """The float32 GEMM. A subclass changes the operands' element type: ``src`` (a's and
    b's pointer type), ``packed`` (the packed panels'), ``micro``, ``pack``, ``scalar`` and
    ``vector`` (loads widened to float32) and ``depth`` (the packed depth of kb rows)."""
    symbol, src, packed = SYMBOL, F32P, F32P
    kc, split_kc = KC, SPLIT_KC  # a packed block's depth (its panels fill the workspace)
    # the cost of a float packed from A, from B: as stored / transposed (Gfloat/s of the
    # vector copies: A 5.5-6.6 / 3.1, B 6.0 / 2.9-3.2)
    copy_costs, share_by_rows = ((1, 2), (1, 2)), True

    def __init__(self):
        self.module = ir.Module(name=self.symbol)
        self.vec = ir.VectorType(F32, VW)

    def depth(self, b, kb):
        return kb

    def fma(self):
        return declare(self.module, f"llvm.fma.v{VW}f32", ir.FunctionType(self.vec,
                                                                         [self.vec] * 3))

    def scalar(self, b, p):
        return b.load(p)

    pack_load = scalar  # an operand's value as a panel holds it

    def vector(self, b, p, mask=None):
        """VW float32 values at p (of ``src``), the lanes off in ``mask`` zero."""
        p = b.bitcast(p, self.vec.as_pointer())
        if mask is None:
            return b.load(p, align=4)
        return b.call(masked(self.module, "load", self.vec), [p, I32(4), mask, ir.Constant(self.vec,
                                                                       [0.0] * VW)])

    def function(self, name, args, ret=ir.VoidType(), internal=True):
        fn = ir.Function(self.module, ir.FunctionType(ret, args), name=name)
        fn.attributes.add("nounwind")
        if internal:
            fn.linkage = "internal"
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        return fn, b

    def micro(self, rows=MR):
        """C[i*ldc + j] (+)= sum_p A[p*MR + i] * B[p*NR + j] over the rows x NR tile (the
        first ``rows`` of a panel's MR: EDGE_ROWS for a block's last rows), the
        accumulators in registers (fused multiply-adds on broadcast A values)."""
        vec, vp = self.vec, self.vec.as_pointer()
        fn, b = self.function("micro" if rows == MR else f"micro{rows}",
                              [I64, self.packed, self.packed, F32P, I64, I1, I64])
        kc, pa, pb, pc, ldc, add, ldb = fn.args  # (ldb: NR in a packed panel)
        for i in range(rows):  # C's lines on their way while the tile computes
            for v in range(NV):
                prefetch(b, _at(b, pc, (ldc, i), v * VW), write=True)
        fma = self.fma()
        accs = _accumulators(b, vec, rows * NV)
        with _loop(b, 0, kc) as p:
            bs = [b.load(b.bitcast(_at(b, pb, (p, ldb), v * VW), vp), align=4)
                  for v in range(NV)]
            outer_update(b, fma, accs, rows, lambda i: b.load(_at(b, pa, (p, MR), i)), bs)
        self.store_tile(b, accs, pc, ldc, add)
        b.ret_void()
        return fn

    def store_tile(self, b, accs, pc, ldc, add):
        """C[i*ldc + j] (+)= the rows x NR accumulators."""
        vp = self.vec.as_pointer()
        for i in range(len(accs) // NV):
            for v in range(NV):
                at = b.bitcast(_at(b, pc, (ldc, i), v * VW), vp)
                value = b.load(accs[i * NV + v])
                b.store(b.select(add, b.fadd(b.load(at, align=4), value), value), at, align=4)

    def pack(self, name, width):
        """Rows p0..p0+kb of op(X) for ``width``-wide panels of its other dim [s0, s0+sb)
        (op(A)'s rows for A, op(B)'s columns for B), each panel ordered (p, lane) and
        padded with zeros: out[panel*kb*width + p*width + lane]. ``t``: whether X is
        stored with p along its rows (then a lane's elements are one row apart)."""
        fn, b = self.function(name, [self.src, I64, I1, I64, I64, I64, I64, self.packed])
        x, ld, t, s0, sb, p0, kb, out = fn.args
        kp = self.depth(b, kb)
        whole = I64(0)  # lanes of full panels copied as vectors, row by row of X
        if self.transposes(width):
            whole = b.select(t, b.sub(sb, b.srem(sb, I64(width))), I64(0))
            self.pack_rows(b, x, ld, s0, p0, kb, whole, out, kp, width)
        with _loop(b, 0, sb, width) as s:
            panel = _at(b, out, (b.sdiv(s, I64(width)), kp, width))
            n = _min(b, I64(width), b.sub(sb, s))
            with b.if_else(t) as (along_rows, along_cols):
                with along_rows:  # X[p0+p, s0+s+lane]: lanes contiguous
                    with _loop(b, b.select(b.icmp_signed("<", s, whole), kb, I64(0)),
                               kb) as p:
                        src = _at(b, x, (b.add(p0, p), ld), s0, s)
                        with _loop(b, 0, n) as j:
                            b.store(self.pack_load(b, b.gep(src, [j])),
                                    self.slot(b, panel, p, j, width))
                with along_cols:  # X[s0+s+lane, p0+p]: p contiguous
                    deep = I64(0)  # depths done by transposing blocks of vectors
                    if self.transposes(width):
                        deep = b.select(b.icmp_signed("==", n, I64(width)),
                                        b.sub(kb, b.srem(kb, I64(VW))), I64(0))
                        self.pack_transposed(b, x, ld, b.add(s0, s), p0, deep, panel, width)
                    with _loop(b, 0, n) as j:
                        src = _at(b, x, (b.add(b.add(s0, s), j), ld), p0)
                        with _loop(b, deep, kb) as p:
                            b.store(self.pack_load(b, b.gep(src, [p])),
                                    self.slot(b, panel, p, j, width))
            with _loop(b, 0, kp) as p:  # zeros past the last lane (and depth, if padded)
                with _loop(b, b.select(b.icmp_signed("<", p, kb), n, I64(0)), width) as j:
                    b.store(ir.Constant(self.packed.pointee, 0), self.slot(b, panel, p, j,
                                                                          width))
        b.ret_void()
        return fn

    def transposes(self, width):
        """Whether ``pack`` of ``width``-wide panels copies VW x VW blocks as vectors, by
        a transpose: float32 panels at most a vector wide (A's) or whole vectors wide (B's,
        transposed), in the layout ``slot`` gives (a scalar copy of 12 rows of A, 512
        deep, ran at 2.2 Gfloat/s)."""
        return (width <= VW or width % VW == 0) and self.src is F32P and \
            self.packed is F32P and type(self).slot is _Gemm.slot

    def pack_rows(self, b, x, ld, c0, p0, depth, lanes, out, kp, width):
        """out[(s/width)*kp*width + p*width + j] = x[(p0 + p)*ld + c0 + s + j] for the
        ``lanes`` (whole panels) and p < ``depth``, a row of x at a time, in order (panel
        by panel, 64 rows of 12 apart, A's packing for a weight gradient 9216x64^Tx128
        took a sixth of its time): whole vectors, or one masked vector for a panel
        narrower than a vector."""
        mask = None if width % VW == 0 else ir.Constant(ir.VectorType(I1, VW),
                                                        [j < width for j in range(VW)])
        with _loop(b, 0, depth) as p:
            row = _at(b, x, (b.add(p0, p), ld), c0)
            with _loop(b, 0, lanes, width) as s:
                panel = _at(b, out, (b.sdiv(s, I64(width)), kp, width), (p, width))
                for g in range(0, width, VW):
                    value = self.vector(b, _at(b, row, s, g), mask)
                    at = b.bitcast(_at(b, panel, g), self.vec.as_pointer())
                    if mask is None:
                        b.store(value, at, align=4)
                    else:
                        b.call(masked(self.module, "store", self.vec), [value, at, I32(4),
                                                                         mask])

    def pack_transposed(self, b, x, ld, r0, p0, depth, panel, width):
        """panel[p*width + j] = x[(r0 + j)*ld + p0 + p] for j < width, p < ``depth`` (a
        multiple of VW), VW depths at a time: the rows' VW values, VW rows at a time,
        transposed and stored VW wide. Panels narrower than a vector are stored in order
        (each store's lanes past ``width`` are the next one's, the last store's land past
        the panel's block, in what the packing writes next or spare workspace). Each
        load asks for the next panel's line at its depth into L2."""
        with _loop(b, 0, depth, VW) as p:
            for g in range(0, width, VW):
                rows = [_at(b, x, (b.add(r0, I64(j)), ld), p0, p) if j < width else None
                        for j in range(g, g + VW)]
                for row in rows[:width - g]:
                    prefetch(b, _at(b, row, (ld, width)), locality=2)
                rows = [None if row is None else self.vector(b, row) for row in rows]
                for q, col in enumerate(transpose(b, rows)):
                    at = _at(b, panel, (b.add(p, I64(q)), width), g)
                    b.store(col, b.bitcast(at, self.vec.as_pointer()), align=4)

    def slot(self, b, panel, p, j, width):
        """Where a packed panel holds op(X)'s depth p, lane j."""
        return _at(b, panel, (p, width), j)

    def tiles(self, micros):
        """The micro-tiles of one packed mb x nb block of C at (i0, j0); edge tiles go
        through ``tile`` (MR x NR) and copy their valid part, the last rows computed by the
        narrowest micro-kernel that covers them (``micros``: rows -> kernel; 256 rows end
        in 4, 64 rows too: a whole tile there was 8 wasted rows in 72)."""
        micro = micros[MR]
        fn, b = self.function("tiles", [I64, self.packed, self.packed, F32P, F32P, I64, I64,
                                        I64, I64, I64, I1, I64])
        kb, apack, bpack, tile, c, ldc, i0, mb, j0, nb, add, ldb = fn.args
        kp = self.depth(b, kb)
        unpacked = b.icmp_signed("!=", ldb, I64(NR))  # (op(B)'s rows in place, ldb apart)
        with _loop(b, 0, nb, NR) as s:
            with _loop(b, 0, mb, MR) as r:
                pa = _at(b, apack, (b.sdiv(r, I64(MR)), kp, MR))
                pb = b.select(unpacked, _at(b, bpack, s),
                              _at(b, bpack, (b.sdiv(s, I64(NR)), kp, NR)))
                full = b.and_(b.icmp_signed("<=", b.add(r, I64(MR)), mb),
                              b.icmp_signed("<=", b.add(s, I64(NR)), nb))
                with b.if_else(full) as (whole, edge):
                    with whole:
                        b.call(micro, [kb, pa, pb, _at(b, c, (b.add(i0, r), ldc), j0, s),
                                       ldc, add, ldb])
                    with edge:
                        self.narrowest(b, micros, b.sub(mb, r),
                                       [kb, pa, pb, tile, I64(NR), I1(0), ldb])
                        with _loop(b, 0, _min(b, I64(MR), b.sub(mb, r))) as i:
                            with _loop(b, 0, _min(b, I64(NR), b.sub(nb, s))) as j:
                                at = _at(b, c, (b.add(b.add(i0, r), i), ldc), j0, s, j)
                                v = b.load(_at(b, tile, (i, NR), j))
                                b.store(b.select(add, b.fadd(b.load(at), v), v), at)
        b.ret_void()
        return fn

    @staticmethod
    def narrowest(b, micros, rows, args, sizes=None):
        """Call the micro-kernel of the fewest rows at least ``rows`` (all MR if none)."""
        sizes = sizes or sorted(micros)
        if len(sizes) == 1:
            b.call(micros[sizes[0]], args)
            return
        with b.if_else(b.icmp_signed("<=", rows, I64(sizes[0]))) as (fits, wider):
            with fits:
                b.call(micros[sizes[0]], args)
            with wider:
                _Gemm.narrowest(b, micros, rows, args, sizes[1:])

    def band(self, pack_a, tiles):
        """c[r0:r1, j0:j0+nb] (+)= op(a)[r0:r1, p0:p0+kb] @ the packed kb x nb block of op(b)
        at ``bpack`` (or op(b) itself there, its rows ``ldb`` apart, when ldb is not NR),
        MC rows of A packed at a time into ``work``."""
        fn, b = self.function("band", [self.src, I64, I1, self.packed, F32P, I64, I64, I64,
                                       F32P, I64, I64, I64, I64, I1, I64])
        a, lda, ta, bpack, c, ldc, kb, p0, work, r0, r1, j0, nb, add, ldb = fn.args
        apack, tile = self.areas(b, work)
        with _loop(b, r0, r1, MC) as i0:
            mb = _min(b, I64(MC), b.sub(r1, i0))
            b.call(pack_a, [a, lda, ta, i0, mb, p0, kb, apack])
            b.call(tiles, [kb, apack, bpack, tile, c, ldc, i0, mb, j0, nb,
                           b.or_(add, b.icmp_signed(">", p0, I64(0))), ldb])
        b.ret_void()
        return fn

    def areas(self, b, work):
        """(A's packed block, the edge tile) in a thread's workspace, after B's block."""
        return (b.bitcast(_at(b, work, KC * (NC + NR)), self.packed),
                _at(b, work, KC * (NC + NR) + KC * (MC + MR)))

    def block(self, pack_b, band, pack_a, tiles):
        """c[r0:r1, c0:c1] (+)= op(a)[r0:r1] @ op(b)[:, c0:c1] on one thread (BLIS loop
        order: NC columns, KC depth, MC rows, micro-tiles)."""
        fn, b = self.function("block", [self.src, I64, I1, self.src, I64, I1, F32P, I64, I64,
                                        F32P, I64, I64, I64, I64, I1])
        a, lda, ta, bm, ldb, tb, c, ldc, k, work, r0, r1, c0, c1, add = fn.args
        few = b.icmp_signed("<=", b.sub(r1, r0), I64(UNPACKED_ROWS))
        with b.if_else(b.and_(few, tb)) as (by_panel, by_block):
            with by_panel:
                self.panels(b, pack_a, pack_b, tiles, fn.args)
            with by_block:
                with _loop(b, c0, c1, NC) as j0:
                    nb = _min(b, I64(NC), b.sub(c1, j0))
                    # few rows of C read op(B) in place where its panels are whole rows
                    # of B, ldb apart: a copy would be read only a few times
                    # (64x9216x128, the CNN's dense layer: +4-10%)
                    unpacked = ir.Constant(I1, 0) if (self.src, self.packed) != (
                        F32P, F32P) else b.and_(
                        b.and_(b.not_(tb), b.icmp_signed("==", b.srem(nb, I64(NR)), I64(0))),
                        b.and_(few, b.icmp_signed("!=", ldb, I64(NR))))
                    with _loop(b, 0, k, self.kc) as p0:
                        kb = _min(b, I64(self.kc), b.sub(k, p0))
                        bpack = b.bitcast(work, self.packed)
                        with b.if_then(b.not_(unpacked)):
                            b.call(pack_b, [bm, ldb, b.not_(tb), j0, nb, p0, kb, bpack])
                        src = b.select(unpacked, b.bitcast(_at(b, bm, (p0, ldb), j0),
                                                           self.packed), bpack)
                        b.call(band, [a, lda, ta, src, c, ldc, kb, p0, work, r0, r1, j0, nb,
                                      add, b.select(unpacked, ldb, I64(NR))])
        b.ret_void()
        return fn

    def panels(self, b, pack_a, pack_b, tiles, args):
        """``block`` for at most UNPACKED_ROWS rows of C (one block of A) and a transposed
        op(B): op(A) packed once a depth block, each panel of op(B) packed just before its
        tiles run (it stays in L1; 64x128x9216^T, the CNN's dense input gradient: +3-8%)."""
        a, lda, ta, bm, ldb, tb, c, ldc, k, work, r0, r1, c0, c1, add = args
        (apack, tile), bpack = self.areas(b, work), b.bitcast(work, self.packed)
        mb = b.sub(r1, r0)
        with _loop(b, 0, k, self.kc) as p0:
            kb = _min(b, I64(self.kc), b.sub(k, p0))
            b.call(pack_a, [a, lda, ta, r0, mb, p0, kb, apack])
            with _loop(b, c0, c1, NR) as j0:
                nb = _min(b, I64(NR), b.sub(c1, j0))
                b.call(pack_b, [bm, ldb, b.not_(tb), j0, nb, p0, kb, bpack])
                b.call(tiles, [kb, apack, bpack, tile, c, ldc, r0, mb, j0, nb,
                               b.or_(add, b.icmp_signed(">", p0, I64(0))), I64(NR)])

    def build(self) -> str:
        micros = {rows: self.micro(rows) for rows in (*EDGE_ROWS, MR)}
        pack_a, pack_b = self.pack("pack_a", MR), self.pack("pack_b", NR)
        tiles = self.tiles(micros)
        band = self.band(pack_a, tiles)
        block, rows = self.block(pack_b, band, pack_a, tiles), self.rows()
        worker = self.bands(block, band, pack_b, rows)
        fn = ir.Function(self.module, ir.FunctionType(ir.VoidType(), [
            self.src, I64, I64, I8, self.src, I64, I64, I8, F32P, I64, I64, F32P, I8]),
            name=self.symbol)
        fn.attributes.add("nounwind")
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        a, am, an, ta, bm, _, bn, tb, c, m, n, work, flags = fn.args
        ta, tb = b.icmp_unsigned("!=", ta, I8(0)), b.icmp_unsigned("!=", tb, I8(0))
        add = b.icmp_unsigned("!=", b.and_(flags, I8(ACCUMULATE)), I8(0))
        serial = b.icmp_unsigned("!=", b.and_(flags, I8(SERIAL)), I8(0))
        k = b.select(ta, am, an)
        # fewer rows than a micro-tile: row by row, unpacked, unless op(a)'s rows are
        # columns of a (then each of its values is a strided load, and packing pays)
        few = b.and_(b.icmp_signed("<", m, I64(MR)), b.not_(ta))
        small = b.or_(serial, b.icmp_signed("<", b.mul(b.mul(m, n), k), I64(SMALL)))
        with b.if_else(b.icmp_signed("==", k, I64(0))) as (empty, product):
            with empty:
                with _loop(b, 0, b.select(add, I64(0), b.mul(m, n))) as i:
                    b.store(F32(0.0), b.gep(c, [i]))
            with product:
                with b.if_else(small) as (one, many):
                    with one:
                        with b.if_else(few) as (by_row, tiled):
                            with by_row:
                                b.call(rows, [a, an, ta, bm, bn, tb, c, n, m, I64(0), n,
                                              I64(0), k, add])
                            with tiled:
                                b.call(block, [a, an, ta, bm, bn, tb, c, n, k, work, I64(0),
                                               m, I64(0), n, add])
                    with many:
                        self.parallel(b, worker, fn.args, ta, tb, k, few, add)
        b.ret_void()
        return str(self.module)

    def bands(self, block, band, pack_b, rows):
        """The worker of a parallel product: bands [first, first+count) of C's rows (mode
        0), of its columns (1), of its columns by ``rows`` (2, fewer rows than a
        micro-tile), of the depth into the running thread's partial C (3, ``rows`` again),
        of B's panels packed into the shared block (4), of C's rows on that block (5), or
        of the depth into the thread's partial C on packed tiles (6), on the thread's row
        of the workspace. Its context: a, b, c, work as i64, then lda, ldb, n, k, ta, tb,
        mode, units, m, add, j0, p0 (the shared block's corner), unit, bands."""
        fn, b = self.function("bands", list(WORKER.args))
        first, count = chunk_range(b, fn)
        ctx = b.bitcast(fn.args[3], I64.as_pointer())
        v = [b.load(b.gep(ctx, [I64(j)])) for j in range(CONTEXT)]
        a, bm, c, shared = (b.inttoptr(x, t) for x, t in zip(v[:4], (self.src, self.src,
                                                                    F32P, F32P)))
        lda, ldb, n, k, ta, tb, mode, units, m, add, j0, p0, unit, bands = v[4:]
        ta, tb, add = b.trunc(ta, I1), b.trunc(tb, I1), b.trunc(add, I1)
        # band j: units [j*units/bands, (j+1)*units/bands)
        lo, hi = (b.mul(unit, b.sdiv(b.mul(j, units), bands)) for j in (
            first, b.add(first, count)))
        depth = b.sub(_min(b, hi, k), lo)
        tid = thread_id(b)
        work = _at(b, shared, (tid, WORK))
        nb, kb = _min(b, I64(NC), b.sub(n, j0)), _min(b, I64(self.kc), b.sub(k, p0))
        done = b.append_basic_block("bands.done")
        switch = b.switch(mode, done)
        for case, run in enumerate([
                lambda: b.call(block, [a, lda, ta, bm, ldb, tb, c, n, k, work, lo,
                                       _min(b, hi, m), I64(0), n, add]),
                lambda: b.call(block, [a, lda, ta, bm, ldb, tb, c, n, k, work, I64(0), m,
                                       lo, _min(b, hi, n), add]),
                lambda: b.call(rows, [a, lda, ta, bm, ldb, tb, c, n, m, lo, _min(b, hi, n),
                                      I64(0), k, add]),
                lambda: b.call(rows, [a, lda, ta, bm, ldb, tb, work, n, m, I64(0), n, lo,
                                      _min(b, hi, k), ir.Constant(I1, 1)]),
                lambda: b.call(pack_b, [bm, ldb, b.not_(tb), b.add(j0, lo),
                                        b.sub(_min(b, hi, nb), lo), p0, kb,
                                        _at(b, b.bitcast(shared, self.packed), (
                                            b.sdiv(lo, I64(NR)), self.depth(b, kb), NR))]),
                lambda: b.call(band, [a, lda, ta, b.bitcast(shared, self.packed), c, n, kb, p0,
                                      work, lo, _min(b, hi, m), j0, nb, add, I64(NR)]),
                lambda: b.call(block, [  # depths [lo, hi) of op(a) and op(b), packed
                    b.select(ta, _at(b, a, (lo, lda)), _at(b, a, lo)), lda, ta,
                    b.select(tb, _at(b, bm, lo), _at(b, bm, (lo, ldb))), ldb, tb,
                    _at(b, work, PACK), n, depth, work, I64(0), m, I64(0), n,
                    ir.Constant(I1, 1)])]):
            block_ = b.append_basic_block(f"bands.{case}")
            switch.add_case(I64(case), block_)
            b.position_at_end(block_)
            run()
            b.branch(done)
        b.position_at_end(done)
        b.ret_void()
        return fn

    def parallel(self, b, worker, args, ta, tb, k, few, add):
        """Run a product on the pool, in bands of whole micro-tiles, PIECES per thread
        (COLUMN_PIECES split by columns, where each band packs all of op(A): one a thread
        packs it once, +2-5% on the MLP's 256-row products; by rows two balance better). A
        large product goes in bands of rows BLIS's way: for each KC x NC block of op(B),
        the threads pack its panels into one shared block (at the start of the workspace),
        then each band packs its rows of A and runs its micro-tiles on it, so B is packed
        once however many bands read it. That costs two trips through the pool a block
        (tens of microseconds each in a VM, where a sleeping thread wakes slowly), so a
        product under SHARED multiply-adds a block (SHARED_MANY with BAND_ROWS rows a band,
        enough bands to balance), or one whose columns pack for less than its rows (with
        ``share_by_rows``), instead splits C where each band packs what it reads itself:
        by rows (each band packing all of op(B)) or by columns (all of op(A)), whichever
        packs less, each copy weighed by ``copy_costs`` (columns keep the MLP's 256-row
        products off the shared block, whose trips and cross-core reads ran them at
        137-145 GFLOP/s in some processes, 174-188 by columns). A small C over a long
        depth (at least 8 times C's longer side) splits the depth instead, each thread
        packing its share of A and B and adding the tiles into its partial C (PARTIAL
        floats), summed at the end.
        With fewer rows than a micro-tile, split the depth (each thread streams its own
        rows of B into its partial C) where the partials fit the workspace and B is not
        transposed, else columns in bands of ROW_BAND."""
        a, _, an, _, bm, _, bn, _, c, m, n, work, _ = args
        threads = declare(self.module, "get_num_threads", ir.FunctionType(I32, []))
        team = b.zext(b.call(threads, []), I64)
        pieces = b.mul(team, I64(PIECES))
        rows_ok = b.icmp_signed(">=", m, b.mul(pieces, I64(MR)))
        cols_ok = b.icmp_signed(">=", n, b.mul(pieces, I64(NR)))
        (wa, wa_t), (wb, wb_t) = self.copy_costs
        cheaper = b.icmp_signed("<=", b.mul(n, b.select(tb, I64(wb_t), I64(wb))),
                                b.mul(m, b.select(ta, I64(wa_t), I64(wa))))
        by_rows = b.and_(rows_ok, b.or_(b.not_(cols_ok), cheaper))
        many = b.icmp_signed(">=", m, b.mul(pieces, I64(BAND_ROWS)))
        work_a_block = b.mul(b.mul(m, _min(b, n, I64(NC))), _min(b, k, I64(self.kc)))
        shared = b.and_(by_rows if self.share_by_rows else rows_ok, b.icmp_signed(
            ">=", work_a_block, b.select(many, I64(SHARED_MANY), I64(SHARED))))
        size = b.mul(m, n)
        deep = b.and_(b.and_(few, b.not_(tb)), b.and_(
            b.icmp_signed("<=", size, I64(WORK)),
            b.icmp_signed(">=", k, b.mul(pieces, I64(DEPTH_PIECE)))))
        # a deep product of a small C (a dense layer's input 9216 wide, batch 64): split the
        # depth over packed tiles, each thread packing its share of B once
        skinny = b.and_(b.and_(b.not_(few), b.icmp_signed("<=", size, I64(PARTIAL))), b.and_(
            b.icmp_signed(">=", k, b.mul(pieces, I64(self.split_kc))),
            b.icmp_signed(">=", k, b.mul(I64(8), b.select(b.icmp_signed(">", m, n), m, n)))))
        shared = b.and_(shared, b.not_(skinny))
        mode = b.select(few, b.select(deep, I64(3), I64(2)), b.select(
            skinny, I64(6), b.select(by_rows, I64(0), I64(1))))
        unit = b.select(few, b.select(deep, I64(DEPTH_PIECE), I64(ROW_BAND)), b.select(
            skinny, I64(self.split_kc), b.select(b.or_(by_rows, shared), I64(MR), I64(NR))))
        total = b.select(b.or_(deep, skinny), k, b.select(
            few, n, b.select(b.or_(by_rows, shared), m, n)))
        # by columns every band packs all of op(A): COLUMN_PIECES bands a thread
        units, count = self.split(b, total, unit, b.select(b.icmp_signed(
            "==", mode, I64(1)), b.mul(team, I64(COLUMN_PIECES)), pieces))
        partials = b.or_(deep, skinny)
        at = b.select(skinny, I64(PACK), I64(0))  # (in the thread's row of the workspace)
        with b.if_then(partials):  # the partials start at zero, a row per thread of the pool
            with _loop(b, 0, pool_size()) as t:
                with _loop(b, 0, size) as i:
                    b.store(F32(0.0), _at(b, work, (t, WORK), at, i))
        ctx = b.alloca(I64, size=CONTEXT)
        values = [b.ptrtoint(x, I64) for x in (a, bm, c, work)] + [an, bn, n, k] + \
            [b.zext(x, I64) for x in (ta, tb)] + [mode, units, m, b.zext(add, I64), I64(0),
                                                  I64(0), unit, count]
        for j, x in enumerate(values):
            b.store(x, b.gep(ctx, [I64(j)]))
        data = b.bitcast(ctx, ir.IntType(8).as_pointer())
        with b.if_else(shared) as (on_shared, alone):
            with on_shared:
                with _loop(b, 0, n, NC) as j0:
                    nb = _min(b, I64(NC), b.sub(n, j0))
                    panels, panel_count = self.split(b, nb, I64(NR), pieces)
                    b.store(j0, b.gep(ctx, [I64(14)]))
                    with _loop(b, 0, k, self.kc) as p0:
                        b.store(p0, b.gep(ctx, [I64(15)]))
                        b.store(I64(4), b.gep(ctx, [I64(10)]))
                        for j, x in ((11, panels), (16, I64(NR)), (17, panel_count)):
                            b.store(x, b.gep(ctx, [I64(j)]))
                        parallel_for(b, worker, data, I64(0), panel_count)
                        b.store(I64(5), b.gep(ctx, [I64(10)]))
                        for j, x in ((11, units), (16, unit), (17, count)):
                            b.store(x, b.gep(ctx, [I64(j)]))
                        parallel_for(b, worker, data, I64(0), count)
            with alone:
                parallel_for(b, worker, data, I64(0), count)
        with b.if_then(partials):  # c (+)= the partials' sum
            with _loop(b, 0, size) as i:
                total = b.select(add, b.load(b.gep(c, [i])), F32(0.0))
                for t in range(pool_size()):
                    total = b.fadd(total, b.load(_at(b, work, (t, WORK), at, i)))
                b.store(total, b.gep(c, [i]))

    @staticmethod
    def split(b, total, unit, pieces):
        """(units, bands): at most ``pieces`` bands of whole units covering ``total``, within
        a unit of each other in size (256 rows in bands of 72, 72, 72 and 40: +7-11%)."""
        units = b.sdiv(b.add(total, b.sub(unit, I64(1))), unit)
        return units, _min(b, units, pieces)


def source(gemm=_Gemm) -> str:
    """The GEMM module's LLVM IR text."""
    return gemm().build()


_modules: dict = {}


def address(gemm=_Gemm) -> int:
    """The address of ``gemm.symbol`` (``kiln_sgemm``), compiled (or loaded from the cache)
    once per process and registered as a symbol for the modules that call it."""
    with _lock:
        if gemm.symbol not in _modules:
            import llvmlite.binding as llvm

            from .native import NativeModule
            from .threads import parallel_available
            parallel_available()
            module = _modules[gemm.symbol] = NativeModule(source(gemm), level=2, unroll=True)
            llvm.add_symbol(gemm.symbol, module.address(gemm.symbol))
        return _modules[gemm.symbol].address(gemm.symbol)
